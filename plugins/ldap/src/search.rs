//! Searches: the root DSE, a paged search one page at a time (RFC 2696),
//! the groups, and a fresh RFC 4533 cookie.

use std::collections::HashMap;

use ldap3::controls::{
    Control, ControlType, PagedResults, RawControl, RefreshMode, SyncDone, SyncRequest,
};
use ldap3::LdapResult;
use liaison_plugin_api::SourceError;

use crate::conn::{result_name, server_said, Session};
use crate::cursor::GroupsMark;
use crate::dn::{self, Dn};
use crate::entry::{parse_entry, Groups, RawEntry};
use crate::{GroupsConfig, LdapConfig, Scope};

/// The OID of the Sync Request control (RFC 4533).
pub(crate) const SYNC_OID: &str = "1.3.6.1.4.1.4203.1.9.1.1";

/// The OID of the Paged Results control (RFC 2696).
const PAGED_OID: &str = "1.2.840.113556.1.4.319";

/// What the root DSE says the server can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerInfo {
    /// RFC 4533 content synchronisation (OpenLDAP's syncprov).
    pub sync: bool,
    /// Paged results.
    pub paged: bool,
}

/// Reads the root DSE's `supportedControl`. A server that hides it is taken
/// to page and not to sync.
pub(crate) async fn root_dse(
    session: &mut Session,
    config: &LdapConfig,
) -> Result<ServerInfo, SourceError> {
    let unknown = ServerInfo {
        sync: false,
        paged: true,
    };
    let searched = session
        .op(config.timeout)
        .search(
            "",
            ldap3::Scope::Base,
            "(objectClass=*)",
            vec!["supportedControl"],
        )
        .await;
    let result = match searched {
        Ok(result) => result,
        Err(e) => return Err(session.failed(config, "reading the root DSE", &e).await),
    };
    if result.1.rc != 0 {
        tracing::debug!(source = %config.source, rc = result.1.rc, "the root DSE is not readable");
        return Ok(unknown);
    }
    let mut info = ServerInfo {
        sync: false,
        paged: false,
    };
    let mut seen = false;
    for raw in result.0 {
        let Ok(dse) = parse_entry(raw.0) else {
            continue;
        };
        for value in dse.values("supportedControl").unwrap_or(&[]) {
            seen = true;
            match value.as_slice() {
                v if v == SYNC_OID.as_bytes() => info.sync = true,
                v if v == PAGED_OID.as_bytes() => info.paged = true,
                _ => {}
            }
        }
    }
    Ok(if seen { info } else { unknown })
}

/// A paged search, one page per [`Paged::next_page`].
pub(crate) struct Paged {
    /// What it is, in messages (`the search`, `the group search`).
    what: &'static str,
    base: String,
    scope: Scope,
    filter: String,
    attrs: Vec<String>,
    size: i32,
    /// Page with the control (the server offers it).
    paging: bool,
    /// The server's cookie for the next page; `None` before the first.
    cookie: Option<Vec<u8>>,
    done: bool,
    /// Pages read so far.
    pub pages: u32,
    /// Entries read so far.
    pub entries: u64,
    /// Referrals skipped.
    pub referrals: u64,
}

impl Paged {
    /// A search of `base` as `what` says.
    pub fn new(
        what: &'static str,
        base: &str,
        scope: Scope,
        filter: String,
        attrs: Vec<String>,
        config: &LdapConfig,
        info: ServerInfo,
    ) -> Self {
        Paged {
            what,
            base: base.to_owned(),
            scope,
            filter,
            attrs,
            size: i32::try_from(config.page_size).unwrap_or(i32::MAX),
            paging: info.paged,
            cookie: None,
            done: false,
            pages: 0,
            entries: 0,
            referrals: 0,
        }
    }

    /// The next page's entries; `None` after the last page.
    pub async fn next_page(
        &mut self,
        session: &mut Session,
        config: &LdapConfig,
    ) -> Result<Option<Vec<RawEntry>>, SourceError> {
        if self.done {
            return Ok(None);
        }
        let doing = format!(
            "reading page {} of {} under {:?}",
            self.pages + 1,
            self.what,
            self.base
        );
        let ldap = session.op(config.timeout);
        if self.paging {
            let control = PagedResults {
                size: self.size,
                cookie: self.cookie.clone().unwrap_or_default(),
            };
            ldap.with_controls(vec![RawControl::from(control)]);
        }
        let started = ldap
            .streaming_search(
                &self.base,
                self.scope.ldap(),
                &self.filter,
                self.attrs.clone(),
            )
            .await;
        let mut stream = match started {
            Ok(stream) => stream,
            Err(e) => return Err(session.failed(config, &doing, &e).await),
        };
        let mut entries = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0).min(4096));
        loop {
            match stream.next().await {
                Ok(Some(item)) if item.is_ref() => self.referrals += 1,
                Ok(Some(item)) if item.is_intermediate() => {}
                Ok(Some(item)) => {
                    let entry = parse_entry(item.0).map_err(|why| {
                        SourceError::Invalid(format!("{}: {why} while {doing}", config.describe()))
                    })?;
                    entries.push(entry);
                }
                Ok(None) => break,
                Err(e) => return Err(session.failed(config, &doing, &e).await),
            }
        }
        let result = stream.finish().await;
        self.pages += 1;
        if result.rc != 0 {
            return Err(self.failed(config, &result, entries.len()));
        }
        self.entries += entries.len() as u64;
        self.cookie = paged_cookie(&result.ctrls);
        if self.cookie.as_ref().is_none_or(Vec::is_empty) {
            self.done = true;
        }
        Ok(Some(entries))
    }

    /// The error of a page the server ended with result `result`.
    fn failed(&self, config: &LdapConfig, result: &LdapResult, in_page: usize) -> SourceError {
        let name = config.describe();
        let said = server_said(&result.text);
        let read = self.entries + in_page as u64;
        let stopped = format!(
            "{} under {:?} stopped at page {} after {read} entries: {}{said}",
            self.what,
            self.base,
            self.pages,
            result_name(result.rc)
        );
        match result.rc {
            4 => SourceError::Incomplete(format!(
                "{name}: {stopped}; the bind DN's size limit is below the number of entries \
                 (allow paged searches past it, e.g. OpenLDAP's `limits … size.prtotal=unlimited`, \
                 or narrow base_dn or filter); nothing is applied"
            )),
            3 => SourceError::Incomplete(format!(
                "{name}: {stopped}; the server's time limit ran out; nothing is applied"
            )),
            11 => SourceError::Incomplete(format!(
                "{name}: {stopped}; an administrative limit of the server (page_size {} may be \
                 above its largest page); nothing is applied",
                config.page_size
            )),
            32 => SourceError::Invalid(format!(
                "{name}: {} {:?} does not exist (noSuchObject){said}",
                if self.what == "the search" {
                    "base_dn"
                } else {
                    "groups.base_dn"
                },
                self.base
            )),
            50 => SourceError::Auth(format!(
                "{name}: the bind DN may not search {:?} (insufficientAccessRights){said}",
                self.base
            )),
            51 | 52 => SourceError::Unreachable(format!("{name}: {stopped}")),
            _ => SourceError::Invalid(format!("{name}: {stopped}")),
        }
    }
}

/// The paged-results cookie of a search result, if it has the control.
fn paged_cookie(controls: &[Control]) -> Option<Vec<u8>> {
    controls.iter().find_map(|c| match c {
        Control(Some(ControlType::PagedResults), raw) => Some(raw.parse::<PagedResults>().cookie),
        _ => None,
    })
}

/// A Sync Request control (RFC 4533) for a refreshOnly search, critical so
/// that a server without it refuses instead of answering a plain search.
pub(crate) fn sync_request(cookie: Option<Vec<u8>>) -> RawControl {
    let mut raw = RawControl::from(SyncRequest {
        mode: RefreshMode::RefreshOnly,
        cookie,
        reload_hint: false,
    });
    raw.crit = true;
    raw
}

/// The sync cookie of now, from a refreshOnly search without a cookie that
/// matches nothing: taken before a full read, it is where the next changes
/// read starts (changes made while the full read runs come again).
pub(crate) async fn fresh_cookie(
    session: &mut Session,
    config: &LdapConfig,
) -> Result<Vec<u8>, SourceError> {
    let name = config.describe();
    let doing = "asking for a sync cookie";
    let searched = session
        .op(config.timeout)
        .with_controls(vec![sync_request(None)])
        .search(
            &config.base_dn,
            ldap3::Scope::Base,
            "(entryUUID=00000000-0000-0000-0000-000000000000)",
            vec!["1.1"],
        )
        .await;
    let result = match searched {
        Ok(result) => result,
        Err(e) => return Err(session.failed(config, doing, &e).await),
    };
    let done = result.1;
    if done.rc != 0 {
        return Err(match done.rc {
            32 => SourceError::Invalid(format!(
                "{name}: base_dn {:?} does not exist (noSuchObject){}",
                config.base_dn,
                server_said(&done.text)
            )),
            rc => SourceError::Invalid(format!(
                "{name}: the server refused RFC 4533 content synchronisation: {}{}",
                result_name(rc),
                server_said(&done.text)
            )),
        });
    }
    sync_done(&done.ctrls)
        .and_then(|d| d.cookie)
        .ok_or_else(|| {
            SourceError::Invalid(format!(
                "{name}: the server answered a sync search without a cookie"
            ))
        })
}

/// The Sync Done control of a search result, if it has one.
pub(crate) fn sync_done(controls: &[Control]) -> Option<SyncDone> {
    controls.iter().find_map(|c| match c {
        Control(Some(ControlType::SyncDone), raw) => Some(raw.parse::<SyncDone>()),
        _ => None,
    })
}

/// The groups as one read sees them.
pub(crate) struct GroupsRead {
    /// What entries' `groups` attribute is made from.
    pub groups: Groups,
    /// Their state, for the cursor.
    pub mark: GroupsMark,
}

/// Reads the groups under `g.base_dn` (paged): their members (unless the
/// entries' `memberOf` says), and a digest of them all. Their member lists
/// are read either way: the digest is how a changes read notices a
/// membership change, which neither the member's CSN nor its
/// `modifyTimestamp` shows.
pub(crate) async fn read_groups(
    session: &mut Session,
    config: &LdapConfig,
    g: &GroupsConfig,
    info: ServerInfo,
) -> Result<GroupsRead, SourceError> {
    let mut search = Paged::new(
        "the group search",
        &g.base_dn,
        g.scope,
        g.filter.as_str().to_owned(),
        vec![g.member_attribute.clone()],
        config,
        info,
    );
    let mut members: HashMap<String, Vec<String>> = HashMap::new();
    let mut mark = GroupsMark {
        digest: 0,
        count: 0,
    };
    while let Some(page) = search.next_page(session, config).await? {
        for group in page {
            let mut listed: Vec<String> = group
                .values(&g.member_attribute)
                .unwrap_or(&[])
                .iter()
                .map(|m| dn::normalize(&String::from_utf8_lossy(m)))
                .collect();
            listed.sort_unstable();
            listed.dedup();
            mark.count += 1;
            // Summed, so the order groups come in does not matter.
            mark.digest = mark.digest.wrapping_add(group_digest(&group.dn, &listed));
            if g.member_of {
                continue;
            }
            let Some(name) = Dn::parse(&group.dn)
                .ok()
                .and_then(|d| d.first_value().map(str::to_owned))
            else {
                continue;
            };
            for member in listed {
                let names = members.entry(member).or_default();
                if !names.contains(&name) {
                    names.push(name.clone());
                }
            }
        }
    }
    let groups = if g.member_of {
        Groups::MemberOf(Dn::parse(&g.base_dn).unwrap_or_default())
    } else {
        Groups::Members(members)
    };
    Ok(GroupsRead { groups, mark })
}

/// A digest of one group: its DN and its sorted, normalized members.
fn group_digest(dn: &str, members: &[String]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(dn::normalize(dn).as_bytes());
    for m in members {
        h.update(&[0]);
        h.update(m.as_bytes());
    }
    h.digest()
}
