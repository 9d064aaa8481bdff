//! LDAP connector for Liaison: a directory read the way its admin expects —
//! over TLS, paged, anchored on an immutable id, and incremental (SPEC §2;
//! the choices are in `docs/decisions/0028-ldap-connector.md`).
//!
//! - **Connection**: `ldap://` (optionally upgraded with StartTLS, never
//!   downgraded) or `ldaps://`; certificates are always verified, against the
//!   system roots plus `ca_file`; a simple bind with `bind_dn` and its
//!   password, or anonymous.
//! - **Full reads**: a paged search (RFC 2696) under `base_dn` with `filter`,
//!   `page_size` entries at a time; each page goes to the host in batches, so a
//!   100,000-entry directory is never held whole.
//! - **Records**: keyed by the anchor attribute (`entryUUID` by default;
//!   binary ones such as `objectGUID` in base64), never by the DN; located by
//!   DN. Every attribute is a list of its values; `dn` is an attribute too, and
//!   so are `dn_ou`, `dn_o`, … (the values of the DN's components of that
//!   type, the entry's own first) and `groups` (the names of the entry's
//!   groups, when `groups:` is configured).
//! - **Changes reads**: RFC 4533 content synchronisation (refreshOnly, the
//!   cookie as the cursor) where the server offers it and the anchor is
//!   `entryUUID`; else `modifyTimestamp` at least the highest value the last
//!   read saw, minus [`TIMESTAMP_OVERLAP`]. A cookie the server no longer
//!   accepts, a present phase (which names what is left, not what left), a
//!   membership change, or a cursor of another change feed all make the
//!   connector read in full by itself and say so in its end item.
//! - **Isolation**: the whole LDAP session runs in a task of its own, so a
//!   panic in the LDAP library's decoders (it has them for malformed replies)
//!   ends the read as failed, not the daemon.
//!
//! ```no_run
//! use std::time::Duration;
//! use liaison_plugin_api::{Connector, ReadContext, ReadRequest};
//! use liaison_plugin_ldap::{Filter, LdapConfig, LdapConnector, LdapUrl};
//!
//! let config = LdapConfig::new(
//!     "directory",
//!     LdapUrl::parse("ldaps://ldap.example.com")?,
//!     "ou=people,dc=example,dc=com",
//!     Filter::parse("(objectClass=inetOrgPerson)").map_err(|e| e.to_string())?,
//! );
//! let runtime = tokio::runtime::Runtime::new()?;
//! let ctx = ReadContext::default().with_runtime(runtime.handle().clone());
//! for item in LdapConnector::new(config).read(&ReadRequest::full(), &ctx)? {
//!     println!("{:?}", item?);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod conn;
mod cursor;
pub mod dn;
mod entry;
mod filter;
mod read;
mod search;
mod sync;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use liaison_plugin_api::{
    spawn_read, Connector, ItemStream, ReadContext, ReadRequest, SourceError,
};

pub use cursor::Timestamp;
pub use filter::{Filter, FilterError};

/// `page_size` when not configured.
pub const DEFAULT_PAGE_SIZE: u32 = 500;

/// The largest `page_size` accepted.
pub const MAX_PAGE_SIZE: u32 = 100_000;

/// `connect_timeout` when not configured: TCP connect, TLS and StartTLS.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `timeout` when not configured: the longest wait for the server's answer
/// to one request, or for the next entry of a search.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// `anchor` when not configured.
pub const DEFAULT_ANCHOR: &str = "entryUUID";

/// `filter` when not configured: every entry under the base.
pub const DEFAULT_FILTER: &str = "(objectClass=*)";

/// `groups.filter` when not configured: the usual group classes.
pub const DEFAULT_GROUP_FILTER: &str =
    "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=group))";

/// `groups.member_attribute` when not configured.
pub const DEFAULT_MEMBER_ATTRIBUTE: &str = "member";

/// How far back a `modifyTimestamp` changes read starts before the highest
/// value the last read saw: timestamps have one-second steps, a read takes
/// time while entries change, and replicas' clocks differ a little. An entry
/// read twice costs a digest comparison.
pub const TIMESTAMP_OVERLAP: Duration = Duration::from_secs(60);

/// Anchor attributes whose values are binary, and so reach the host in base64
/// (whether or not a value happens to be valid UTF-8).
pub const BINARY_ANCHORS: &[&str] = &[
    "objectGUID",
    "objectSid",
    "msDS-ConsistencyGuid",
    "mS-DS-ConsistencyGuid",
    "GUID",
];

/// Attributes never passed on, even when the bind DN may read them: a
/// mapping has no use for password hashes, and a preview would show them.
pub const WITHHELD_ATTRIBUTES: &[&str] = &[
    "userPassword",
    "authPassword",
    "unicodePwd",
    "sambaNTPassword",
    "sambaLMPassword",
];

/// The server and how to reach it: `ldap://host[:port]` or `ldaps://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapUrl {
    /// `ldaps://`: TLS from the first byte.
    pub tls: bool,
    /// The host name or address (what the certificate must name).
    pub host: String,
    /// The port (default 389, or 636 for `ldaps://`).
    pub port: u16,
}

impl LdapUrl {
    /// Parses an `ldap://` or `ldaps://` URL with a host and nothing after
    /// the port (the base DN has its own key).
    pub fn parse(text: &str) -> Result<LdapUrl, String> {
        let url = url::Url::parse(text.trim()).map_err(|e| format!("not a URL: {e}"))?;
        let tls = match url.scheme() {
            "ldap" => false,
            "ldaps" => true,
            other => {
                return Err(format!(
                    "the scheme must be ldap:// or ldaps://, not {other}://"
                ))
            }
        };
        let host = match url.host_str() {
            Some(h) if !h.is_empty() => h.to_owned(),
            _ => return Err("the URL has no host".to_owned()),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "credentials do not belong in the URL: use bind_dn and bind_password".into(),
            );
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(
                "nothing may follow the host and port (the base DN goes in base_dn)".into(),
            );
        }
        let port = url.port().unwrap_or(if tls { 636 } else { 389 });
        Ok(LdapUrl { tls, host, port })
    }
}

impl fmt::Display for LdapUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "ldaps" } else { "ldap" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// How deep under the base a search goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// The base entry only.
    Base,
    /// The base's immediate children.
    One,
    /// The base and everything below it.
    #[default]
    Sub,
}

impl Scope {
    /// `base`, `one` or `sub`.
    pub fn parse(word: &str) -> Option<Scope> {
        match word {
            "base" => Some(Scope::Base),
            "one" => Some(Scope::One),
            "sub" => Some(Scope::Sub),
            _ => None,
        }
    }

    fn ldap(self) -> ldap3::Scope {
        match self {
            Scope::Base => ldap3::Scope::Base,
            Scope::One => ldap3::Scope::OneLevel,
            Scope::Sub => ldap3::Scope::Subtree,
        }
    }
}

/// The bind password: `Debug` prints `***`, and no message ever holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct BindPassword(String);

impl BindPassword {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        BindPassword(password.into())
    }

    /// The password, for the bind request only: never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BindPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A simple bind (RFC 4513).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// The DN to bind as.
    pub dn: String,
    /// Its password.
    pub password: BindPassword,
}

/// Which change feed a changes read uses (`change_detection:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChangeDetection {
    /// RFC 4533 when the server offers it and the anchor is `entryUUID`,
    /// else `modifyTimestamp`.
    #[default]
    Auto,
    /// RFC 4533 content synchronisation only (a server without it fails the read).
    Sync,
    /// `modifyTimestamp` only; deletions then come with full reads.
    ModifyTimestamp,
    /// No changes reads: every read is full.
    None,
}

impl ChangeDetection {
    /// `auto`, `sync`, `modify_timestamp` or `none`.
    pub fn parse(word: &str) -> Option<ChangeDetection> {
        match word {
            "auto" => Some(ChangeDetection::Auto),
            "sync" => Some(ChangeDetection::Sync),
            "modify_timestamp" => Some(ChangeDetection::ModifyTimestamp),
            "none" => Some(ChangeDetection::None),
            _ => None,
        }
    }
}

/// `groups:`: where the groups are and how their members are listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupsConfig {
    /// Where groups are searched (and, with `member_of`, which of an entry's
    /// groups count).
    pub base_dn: String,
    /// How deep under `base_dn`.
    pub scope: Scope,
    /// Which entries are groups.
    pub filter: Filter,
    /// The group attribute that lists member DNs (`member`, `uniqueMember`);
    /// read with `member_of` too, to notice membership changes.
    pub member_attribute: String,
    /// Take the entries' own `memberOf` (OpenLDAP's memberof overlay, Active
    /// Directory) instead of the groups' member lists.
    pub member_of: bool,
}

impl GroupsConfig {
    /// Groups under `base_dn` with the default filter, listed by `member`.
    pub fn new(base_dn: impl Into<String>) -> Self {
        GroupsConfig {
            base_dn: base_dn.into(),
            scope: Scope::Sub,
            filter: default_group_filter(),
            member_attribute: DEFAULT_MEMBER_ATTRIBUTE.to_owned(),
            member_of: false,
        }
    }
}

/// The default group filter (a unit test checks that it parses).
fn default_group_filter() -> Filter {
    Filter::built_in(DEFAULT_GROUP_FILTER)
}

/// Settings of one `type: ldap` source, already validated by the daemon's
/// config loader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapConfig {
    /// The source's name, in messages and logs.
    pub source: String,
    /// The server.
    pub url: LdapUrl,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    pub starttls: bool,
    /// PEM certificates trusted besides the system roots (a private CA).
    pub ca_file: Option<PathBuf>,
    /// The bind; `None` reads anonymously.
    pub bind: Option<Bind>,
    /// Where the entries are.
    pub base_dn: String,
    /// How deep under `base_dn`.
    pub scope: Scope,
    /// Which entries are read.
    pub filter: Filter,
    /// The attributes asked for; `None`: all user attributes. The anchor and
    /// what the change feed and groups need are asked for besides.
    pub attributes: Option<Vec<String>>,
    /// The attribute whose value is each record's key.
    pub anchor: String,
    /// Entries per page of a paged search.
    pub page_size: u32,
    /// TCP connect, TLS handshake and StartTLS.
    pub connect_timeout: Duration,
    /// The longest wait for one answer of the server.
    pub timeout: Duration,
    /// Group membership, as the `groups` attribute.
    pub groups: Option<GroupsConfig>,
    /// Which change feed changes reads use.
    pub change_detection: ChangeDetection,
}

impl LdapConfig {
    /// The defaults for a source reading `base_dn` with `filter` on `url`:
    /// anonymous, all user attributes, `entryUUID` anchors, the default page
    /// size and timeouts, no groups, automatic change detection.
    pub fn new(
        source: impl Into<String>,
        url: LdapUrl,
        base_dn: impl Into<String>,
        filter: Filter,
    ) -> Self {
        LdapConfig {
            source: source.into(),
            url,
            starttls: false,
            ca_file: None,
            bind: None,
            base_dn: base_dn.into(),
            scope: Scope::Sub,
            filter,
            attributes: None,
            anchor: DEFAULT_ANCHOR.to_owned(),
            page_size: DEFAULT_PAGE_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            groups: None,
            change_detection: ChangeDetection::Auto,
        }
    }

    /// `source "NAME" (ldaps://host:port)`: how messages name the source.
    fn describe(&self) -> String {
        format!("source {:?} ({})", self.source, self.url)
    }

    /// Whether the anchor is `entryUUID`, what RFC 4533 names entries by.
    fn anchor_is_entry_uuid(&self) -> bool {
        self.anchor.eq_ignore_ascii_case("entryUUID")
    }

    /// Whether the anchor's values are binary (base64 in keys).
    fn anchor_is_binary(&self) -> bool {
        BINARY_ANCHORS
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&self.anchor))
    }
}

/// Reads `path` as PEM certificates, for `ca_file`: how many it holds, or why
/// it cannot be used.
pub fn check_ca_file(path: &Path) -> Result<usize, String> {
    conn::ca_certificates(path).map(|certs| certs.len())
}

/// Batches waiting between the LDAP task and the host's reader: about
/// [`liaison_plugin_api::DEFAULT_CAPACITY`] items.
const CAPACITY: usize = liaison_plugin_api::DEFAULT_CAPACITY / read::BATCH;

/// The `ldap` connector: one search session per read.
#[derive(Debug, Clone)]
pub struct LdapConnector {
    config: Arc<LdapConfig>,
}

impl LdapConnector {
    /// A connector for one `type: ldap` source.
    pub fn new(config: LdapConfig) -> Self {
        LdapConnector {
            config: Arc::new(config),
        }
    }

    /// The settings this connector reads with.
    pub fn config(&self) -> &LdapConfig {
        &self.config
    }
}

impl Connector for LdapConnector {
    fn kind(&self) -> &'static str {
        "ldap"
    }

    /// Connects, binds and streams the entries on the context's runtime. A
    /// changes request is answered with changes when its cursor and the
    /// server allow, else in full; the end item says which.
    fn read(
        &self,
        request: &ReadRequest,
        ctx: &ReadContext,
    ) -> Result<ItemStream<'_>, SourceError> {
        let config = self.config.clone();
        let request = request.clone();
        let cancel = ctx.cancel.clone();
        spawn_read(ctx, CAPACITY, move |tx| {
            read::isolated(config, request, cancel, tx)
        })
    }

    /// What a read does first, and no more: connect, bind, read the root
    /// DSE, the first page of the search (and of the groups), and a sync
    /// cookie where RFC 4533 would be used.
    fn check(&self, ctx: &ReadContext) -> Result<(), SourceError> {
        let config = self.config.clone();
        let mut items = spawn_read(ctx, 1, move |_tx| read::isolated_check(config))?;
        match items.next() {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_take_ldap_and_ldaps_with_default_ports() {
        let u = LdapUrl::parse("ldaps://ldap.example.com").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port),
            (true, "ldap.example.com", 636)
        );
        assert_eq!(u.to_string(), "ldaps://ldap.example.com:636");
        let u = LdapUrl::parse("ldap://127.0.0.1:3389/").unwrap();
        assert_eq!((u.tls, u.port), (false, 3389));
        for (bad, why) in [
            ("http://x", "scheme"),
            ("ldap://", "host"),
            ("ldap://u:p@x", "bind_dn"),
            ("ldap://x/dc=example,dc=com", "base_dn"),
            ("ldap://x?cn", "base_dn"),
            ("x", "not a URL"),
        ] {
            let e = LdapUrl::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn the_password_never_prints() {
        let bind = Bind {
            dn: "cn=reader".into(),
            password: BindPassword::new("hunter2"),
        };
        let mut config = LdapConfig::new(
            "d",
            LdapUrl::parse("ldap://x").unwrap(),
            "dc=x",
            Filter::parse(DEFAULT_FILTER).unwrap(),
        );
        config.bind = Some(bind);
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"));
    }

    #[test]
    fn built_in_filters_parse_and_words_read() {
        assert!(Filter::parse(DEFAULT_GROUP_FILTER).is_ok());
        assert!(Filter::parse(DEFAULT_FILTER).is_ok());
        assert_eq!(Scope::parse("one"), Some(Scope::One));
        assert_eq!(Scope::parse("subtree"), None);
        assert_eq!(
            ChangeDetection::parse("modify_timestamp"),
            Some(ChangeDetection::ModifyTimestamp)
        );
        let config = LdapConfig::new(
            "d",
            LdapUrl::parse("ldap://x").unwrap(),
            "dc=x",
            Filter::parse(DEFAULT_FILTER).unwrap(),
        );
        assert!(config.anchor_is_entry_uuid());
        assert!(!config.anchor_is_binary());
        assert_eq!(config.describe(), "source \"d\" (ldap://x:389)");
    }
}
