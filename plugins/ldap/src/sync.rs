//! A changes read by RFC 4533 content synchronisation: a refreshOnly search
//! with the stored cookie.
//!
//! The server answers with one of two refresh phases (RFC 4533 §3.4):
//! - a **delete phase**: the entries changed since the cookie, and the
//!   entryUUIDs of those deleted (or no longer matching) — exactly a changes
//!   read's records and deletions;
//! - a **present phase**: the changed entries and the entryUUIDs of every
//!   entry still there; whatever is named neither way was deleted. Turning
//!   that into deletions needs the previous key set, which only the host's
//!   store holds, so the connector reads in full instead (the host then
//!   finds the deletions itself). OpenLDAP answers with a delete phase when
//!   its session log (`syncprov-sessionlog`) covers the cookie.
//!
//! Which phase it is may only be known at the end (changed entries come
//! first when nothing was deleted), so items are held back until the phase
//! is known, at most [`MAX_HELD`] of them; more changes than that are read in
//! full too, which costs about as much. Once it is known (OpenLDAP sends a
//! delete phase's deletions first), entries go to the host as they come.
//!
//! The search cannot be paged (RFC 4533 and paged results do not combine),
//! and ldap3 queues a search's replies without a bound as fast as the
//! server sends them; so the connection is read at this reader's pace
//! ([`crate::conn::Pace`]): only when it has taken every decoded message,
//! a few socket reads at a time. What is in memory is then the held items,
//! the batches for the host and a few buffers' worth of decoded entries —
//! not the change set, however large.

use ldap3::controls::{parse_syncinfo, Control, ControlType, EntryState, SyncInfo, SyncState};
use liaison_plugin_api::{Deletion, Item, Location, SourceError};

use crate::conn::{result_name, server_said, Session};
use crate::entry::{parse_entry, requested, uuid_text, RawEntry, Shaper};
use crate::read::Out;
use crate::search::{sync_done, sync_request};
use crate::LdapConfig;

/// Changed entries held back while the phase is unknown.
pub(crate) const MAX_HELD: usize = 10_000;

/// How a sync changes read ended.
#[derive(Debug)]
pub(crate) enum SyncEnd {
    /// The changes went to the host; the cookie to store (`None`: nothing
    /// changed, keep the old one).
    Delivered(Option<Vec<u8>>),
    /// Nothing went to the host: read in full, for this reason.
    ReadInFull(String),
}

/// Which refresh phase the server is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Unknown,
    Deletes,
}

/// Reads the changes since `cookie` into `out`.
pub(crate) async fn changes(
    session: &mut Session,
    config: &LdapConfig,
    cookie: Vec<u8>,
    shaper: &mut Shaper,
    out: &mut Out,
) -> Result<SyncEnd, SourceError> {
    let name = config.describe();
    let doing = "reading changes by RFC 4533 content synchronisation";
    let started = session
        .op(config.timeout)
        .with_controls(vec![sync_request(Some(cookie))])
        .streaming_search(
            &config.base_dn,
            config.scope.ldap(),
            config.filter.as_str(),
            requested(config),
        )
        .await;
    let mut stream = match started {
        Ok(stream) => stream,
        Err(e) => return Err(session.failed(config, doing, &e).await),
    };
    let mut phase = Phase::Unknown;
    let mut held: Vec<Item> = Vec::new();
    let mut cookie_seen: Option<Vec<u8>> = None;
    // Why the read must be full instead, once known.
    let mut full: Option<String> = None;
    // One unpaged search: the connection is read only when this loop has
    // taken every decoded message, never while it hands entries to the host,
    // so what the server sends meanwhile waits in the TCP buffers.
    let pace = session.pace();
    loop {
        let message = match pace.next(&mut stream).await {
            Ok(Some(message)) => message,
            Ok(None) => break,
            Err(e) => return Err(session.failed(config, doing, &e).await),
        };
        let mut items = Vec::new();
        if message.is_ref() {
            continue;
        }
        if message.is_intermediate() {
            match parse_syncinfo(message) {
                SyncInfo::NewCookie(c) => cookie_seen = Some(c),
                SyncInfo::RefreshDelete { cookie, .. } => {
                    cookie_seen = cookie.or(cookie_seen);
                    phase = Phase::Deletes;
                }
                SyncInfo::RefreshPresent { .. } => {
                    full = Some(present_phase());
                }
                SyncInfo::SyncIdSet {
                    cookie,
                    refresh_deletes,
                    sync_uuids,
                } => {
                    cookie_seen = cookie.or(cookie_seen);
                    if !refresh_deletes {
                        full = Some(present_phase());
                    } else {
                        phase = Phase::Deletes;
                        let mut keys: Vec<String> =
                            sync_uuids.iter().map(|u| uuid_text(u)).collect();
                        // The set has no order; the host's result does not depend on it.
                        keys.sort_unstable();
                        for key in keys {
                            items.push(Item::Deleted(Deletion {
                                location: Location::Remote {
                                    kind: "entryUUID",
                                    id: key.clone(),
                                },
                                key,
                            }));
                        }
                    }
                }
            }
        } else {
            let state = sync_state(&message.1);
            let mut entry = parse_entry(message.0)
                .map_err(|why| SourceError::Invalid(format!("{name}: {why} while {doing}")))?;
            let Some(state) = state else {
                return Err(SourceError::Invalid(format!(
                    "{name}: the entry {:?} came without its Sync State control while {doing}",
                    entry.dn
                )));
            };
            if let Some(c) = state.cookie {
                cookie_seen = Some(c);
            }
            let uuid = uuid_text(&state.entry_uuid);
            match state.state {
                EntryState::Add | EntryState::Modify => {
                    give_uuid(&mut entry, &uuid, config, shaper);
                    items.push(shaper.item(&entry));
                }
                EntryState::Delete => {
                    phase = Phase::Deletes;
                    items.push(Item::Deleted(Deletion {
                        key: uuid,
                        location: Location::Entry { dn: entry.dn },
                    }));
                }
                EntryState::Present => full = Some(present_phase()),
            }
        }
        if full.is_none() && phase == Phase::Unknown && held.len() + items.len() > MAX_HELD {
            full = Some(format!(
                "more than {MAX_HELD} entries changed since the last read"
            ));
        }
        if let Some(why) = full {
            drop(pace);
            abandon(session, stream).await;
            return Ok(SyncEnd::ReadInFull(why));
        }
        match phase {
            Phase::Unknown => held.extend(items),
            Phase::Deletes => {
                for item in held.drain(..).chain(items) {
                    out.push(item).await?;
                }
            }
        }
    }
    drop(pace);
    let result = stream.finish().await;
    match result.rc {
        0 => {}
        4096 => {
            return Ok(SyncEnd::ReadInFull(format!(
                "the server no longer accepts the stored sync cookie ({}{})",
                result_name(4096),
                server_said(&result.text)
            )))
        }
        // OpenLDAP: "consumer state is newer than provider!" (a restored backup).
        53 => {
            return Ok(SyncEnd::ReadInFull(format!(
                "the server refused the stored sync cookie ({}{})",
                result_name(53),
                server_said(&result.text)
            )))
        }
        4 => {
            return Ok(SyncEnd::ReadInFull(format!(
                "more entries changed than the server's size limit allows in one search ({})",
                result_name(4)
            )))
        }
        3 => {
            return Err(SourceError::Incomplete(format!(
                "{name}: the server's time limit ran out while {doing}: {}{}",
                result_name(3),
                server_said(&result.text)
            )))
        }
        rc => {
            return Err(SourceError::Invalid(format!(
                "{name}: the server refused the changes search: {}{}",
                result_name(rc),
                server_said(&result.text)
            )))
        }
    }
    let Some(done) = sync_done(&result.ctrls) else {
        return Err(SourceError::Invalid(format!(
            "{name}: the server ended the changes search without its Sync Done control"
        )));
    };
    if !done.refresh_deletes {
        // A present phase that named no entry present: held items only.
        return Ok(SyncEnd::ReadInFull(present_phase()));
    }
    for item in held {
        out.push(item).await?;
    }
    Ok(SyncEnd::Delivered(done.cookie.or(cookie_seen)))
}

fn present_phase() -> String {
    "the server answered with a present phase (its session log does not cover the stored \
     cookie), which names the entries left, not those that left"
        .to_owned()
}

/// The Sync State control of an entry, if it has one.
fn sync_state(controls: &[Control]) -> Option<SyncState> {
    controls.iter().find_map(|c| match c {
        Control(Some(ControlType::SyncState), raw) => Some(raw.parse::<SyncState>()),
        _ => None,
    })
}

/// An entry whose anchor (entryUUID, which RFC 4533 sync requires) was not
/// returned gets the one its Sync State control gives.
fn give_uuid(entry: &mut RawEntry, uuid: &str, config: &LdapConfig, shaper: &Shaper) {
    if shaper.key(entry).is_none() {
        entry
            .attrs
            .push((config.anchor.clone(), vec![uuid.as_bytes().to_vec()]));
    }
}

/// Stops a search the connector no longer needs.
async fn abandon(
    session: &mut Session,
    mut stream: ldap3::SearchStream<'static, String, Vec<String>>,
) {
    let id = stream.ldap_handle().last_id();
    let _ = stream.finish().await;
    let _ = session.ldap.abandon(id).await;
}
