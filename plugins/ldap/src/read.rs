//! One read: connect, find out what the server offers, read the groups, then
//! either the changes since the cursor or everything, and end with the mode
//! delivered and the next cursor.

use std::sync::Arc;

use liaison_plugin_api::{
    Cancel, Cursor, Item, ItemSender, ReadEnd, ReadMode, ReadRequest, SourceError,
};

use crate::conn::{self, Session};
use crate::cursor::{GroupsMark, Position, State, Timestamp};
use crate::entry::{self, Shaper};
use crate::search::{self, Paged, ServerInfo};
use crate::sync::{self, SyncEnd};
use crate::{ChangeDetection, LdapConfig, TIMESTAMP_OVERLAP};

/// Items handed to the host at a time.
pub(crate) const BATCH: usize = 256;

/// Where a read's items go: in batches, to the host's reader.
pub(crate) struct Out {
    tx: ItemSender,
    batch: Vec<Item>,
}

impl Out {
    fn new(tx: ItemSender) -> Self {
        Out {
            tx,
            batch: Vec::with_capacity(BATCH),
        }
    }

    /// Adds an item, handing the batch over when it is full.
    pub async fn push(&mut self, item: Item) -> Result<(), SourceError> {
        self.batch.push(item);
        if self.batch.len() >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    /// Hands over what is waiting.
    pub async fn flush(&mut self) -> Result<(), SourceError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.tx.send_batch(batch).await.map_err(|_| reader_gone())
    }
}

/// The host stopped reading (it failed elsewhere, or has what it wanted):
/// the read stops; no one is left to see this error.
fn reader_gone() -> SourceError {
    SourceError::Incomplete("the reader stopped".to_owned())
}

/// Aborts a task when dropped: the read's task goes when its stream goes.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `work` as a task of its own and turns its panic into a failed read.
async fn isolate<F>(config: &LdapConfig, work: F) -> Result<(), SourceError>
where
    F: std::future::Future<Output = Result<(), SourceError>> + Send + 'static,
{
    let mut task = AbortOnDrop(tokio::spawn(work));
    match (&mut task.0).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => {
            let why = panic_text(e.into_panic());
            tracing::error!(source = %config.source, "the LDAP session panicked: {why}");
            Err(SourceError::Invalid(format!(
                "{}: a reply of the server could not be decoded (the LDAP library gave up: \
                 {why}); the read failed and nothing is applied",
                config.describe()
            )))
        }
        Err(_) => Err(SourceError::Incomplete(format!(
            "{}: the read was stopped",
            config.describe()
        ))),
    }
}

pub(crate) fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "a panic".to_owned(),
        },
    }
}

/// A read, isolated: what [`crate::LdapConnector`] spawns.
pub(crate) async fn isolated(
    config: Arc<LdapConfig>,
    request: ReadRequest,
    cancel: Cancel,
    tx: ItemSender,
) -> Result<(), SourceError> {
    let inner = config.clone();
    isolate(
        &config,
        async move { read(inner, request, cancel, tx).await },
    )
    .await
}

/// A check, isolated: what `validate --online` runs.
pub(crate) async fn isolated_check(config: Arc<LdapConfig>) -> Result<(), SourceError> {
    let inner = config.clone();
    isolate(&config, async move { check(&inner).await }).await
}

/// Which change feed this read uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    Sync,
    Modify,
    None,
}

/// The change feed `config` and the server allow.
fn feed(config: &LdapConfig, info: ServerInfo) -> Result<Feed, SourceError> {
    Ok(match config.change_detection {
        ChangeDetection::None => Feed::None,
        ChangeDetection::ModifyTimestamp => Feed::Modify,
        ChangeDetection::Sync if info.sync => Feed::Sync,
        ChangeDetection::Sync => {
            return Err(SourceError::Invalid(format!(
                "{}: change_detection is sync, but the server does not offer RFC 4533 content \
                 synchronisation (its root DSE lists no {}; OpenLDAP: the syncprov overlay)",
                config.describe(),
                search::SYNC_OID
            )))
        }
        ChangeDetection::Auto if info.sync && config.anchor_is_entry_uuid() => Feed::Sync,
        ChangeDetection::Auto => Feed::Modify,
    })
}

/// What the request and its cursor allow: changes from a position, or a
/// full read (with the reason, when it is the connector's own decision).
enum Plan {
    Sync(Vec<u8>),
    Modify(Timestamp),
    Full(Option<String>),
}

fn plan(request: &ReadRequest, feed: Feed, groups: Option<GroupsMark>) -> Plan {
    let cursor = match (request.mode, &request.cursor) {
        (ReadMode::Changes, Some(cursor)) if feed != Feed::None => cursor,
        _ => return Plan::Full(None),
    };
    let state = match State::decode(cursor.as_str()) {
        Ok(state) => state,
        Err(why) => {
            return Plan::Full(Some(format!(
                "the stored cursor is not one this connector made ({why})"
            )))
        }
    };
    if state.groups != groups {
        return Plan::Full(Some("the groups changed since the last read".to_owned()));
    }
    match (state.position, feed) {
        (Position::Sync(cookie), Feed::Sync) => Plan::Sync(cookie),
        (Position::Modify(since), Feed::Modify) => Plan::Modify(since),
        _ => Plan::Full(Some(
            "the change feed is not the one the stored cursor was made with".to_owned(),
        )),
    }
}

/// The read itself.
async fn read(
    config: Arc<LdapConfig>,
    request: ReadRequest,
    cancel: Cancel,
    tx: ItemSender,
) -> Result<(), SourceError> {
    let mut out = Out::new(tx);
    let mut session = conn::open(&config).await?;
    let info = search::root_dse(&mut session, &config).await?;
    let feed = feed(&config, info)?;
    let (groups, mark) = match &config.groups {
        Some(g) => {
            let read = search::read_groups(&mut session, &config, g, info).await?;
            (read.groups, Some(read.mark))
        }
        None => (entry::Groups::None, None),
    };
    let mut shaper = Shaper::new(&config, groups);
    let end = match plan(&request, feed, mark) {
        Plan::Sync(cookie) => {
            match sync::changes(&mut session, &config, cookie.clone(), &mut shaper, &mut out)
                .await?
            {
                SyncEnd::Delivered(new) => ReadEnd {
                    mode: ReadMode::Changes,
                    cursor: Some(cursor(Position::Sync(new.unwrap_or(cookie)), mark)),
                },
                SyncEnd::ReadInFull(why) => {
                    reading_in_full(&config, &why);
                    full(
                        &mut session,
                        &config,
                        feed,
                        info,
                        &mut shaper,
                        &mut out,
                        &cancel,
                        mark,
                    )
                    .await?
                }
            }
        }
        Plan::Modify(since) => {
            let newest = timestamp_changes(
                &mut session,
                &config,
                since,
                info,
                &mut shaper,
                &mut out,
                &cancel,
            )
            .await?;
            ReadEnd {
                mode: ReadMode::Changes,
                cursor: Some(cursor(Position::Modify(newest), mark)),
            }
        }
        Plan::Full(why) => {
            if let Some(why) = why {
                reading_in_full(&config, &why);
            }
            full(
                &mut session,
                &config,
                feed,
                info,
                &mut shaper,
                &mut out,
                &cancel,
                mark,
            )
            .await?
        }
    };
    out.flush().await?;
    session.close().await;
    // The reader may be gone; then there is no one to tell.
    let _ = out.tx.send(Item::End(end)).await;
    Ok(())
}

fn reading_in_full(config: &LdapConfig, why: &str) {
    tracing::info!(source = %config.source, "reading in full: {why}");
}

fn cursor(position: Position, groups: Option<GroupsMark>) -> Cursor {
    Cursor::new(State { position, groups }.encode())
}

fn cancelled(config: &LdapConfig) -> SourceError {
    SourceError::Incomplete(format!("{}: the read was cancelled", config.describe()))
}

/// Every entry, paged; ends with the feed's cursor: a cookie taken before
/// the search, or the newest `modifyTimestamp` seen.
#[allow(clippy::too_many_arguments)]
async fn full(
    session: &mut Session,
    config: &LdapConfig,
    feed: Feed,
    info: ServerInfo,
    shaper: &mut Shaper,
    out: &mut Out,
    cancel: &Cancel,
    mark: Option<GroupsMark>,
) -> Result<ReadEnd, SourceError> {
    let cookie = match feed {
        Feed::Sync => Some(search::fresh_cookie(session, config).await?),
        Feed::Modify | Feed::None => None,
    };
    let filter = config.filter.as_str().to_owned();
    let newest = paged(session, config, filter, info, shaper, out, cancel).await?;
    let position = match (feed, cookie) {
        (Feed::Sync, Some(cookie)) => Some(Position::Sync(cookie)),
        (Feed::Modify, _) => newest.map(Position::Modify),
        _ => None,
    };
    Ok(ReadEnd {
        mode: ReadMode::Full,
        cursor: position.map(|p| cursor(p, mark)),
    })
}

/// The entries modified since `since` (less the overlap); returns the newest
/// `modifyTimestamp` seen, or `since`.
async fn timestamp_changes(
    session: &mut Session,
    config: &LdapConfig,
    since: Timestamp,
    info: ServerInfo,
    shaper: &mut Shaper,
    out: &mut Out,
    cancel: &Cancel,
) -> Result<Timestamp, SourceError> {
    let from = since.minus(TIMESTAMP_OVERLAP.as_secs() as i64);
    let filter = config.filter.and(&format!("(modifyTimestamp>={from})"));
    let newest = paged(session, config, filter, info, shaper, out, cancel).await?;
    Ok(newest.map_or(since, |n| n.max(since)))
}

/// A paged search with `filter`, every entry to `out`; the newest
/// `modifyTimestamp` seen.
async fn paged(
    session: &mut Session,
    config: &LdapConfig,
    filter: String,
    info: ServerInfo,
    shaper: &mut Shaper,
    out: &mut Out,
    cancel: &Cancel,
) -> Result<Option<Timestamp>, SourceError> {
    let mut search = Paged::new(
        "the search",
        &config.base_dn,
        config.scope,
        filter,
        entry::requested(config),
        config,
        info,
    );
    let mut newest: Option<Timestamp> = None;
    while let Some(page) = search.next_page(session, config).await? {
        for raw in &page {
            if let Some(at) = entry::modified(raw) {
                newest = Some(newest.map_or(at, |n| n.max(at)));
            }
            out.push(shaper.item(raw)).await?;
        }
        // A page is handed over whole before the next is asked for.
        out.flush().await?;
        if cancel.is_cancelled() {
            return Err(cancelled(config));
        }
    }
    if search.referrals > 0 {
        tracing::warn!(
            source = %config.source,
            referrals = search.referrals,
            "the server returned referrals; they are not followed"
        );
    }
    tracing::debug!(source = %config.source, pages = search.pages, entries = search.entries, "search done");
    Ok(newest)
}

/// Connects, binds, reads the root DSE, a first page of the groups and of
/// the entries, and a sync cookie when RFC 4533 would be used.
async fn check(config: &LdapConfig) -> Result<(), SourceError> {
    let mut session = conn::open(config).await?;
    let info = search::root_dse(&mut session, config).await?;
    let feed = feed(config, info)?;
    if let Some(g) = &config.groups {
        let attrs = vec![g.member_attribute.clone()];
        let mut groups = Paged::new(
            "the group search",
            &g.base_dn,
            g.scope,
            g.filter.as_str().to_owned(),
            attrs,
            config,
            info,
        );
        groups.next_page(&mut session, config).await?;
    }
    if feed == Feed::Sync {
        search::fresh_cookie(&mut session, config).await?;
    }
    let mut search = Paged::new(
        "the search",
        &config.base_dn,
        config.scope,
        config.filter.as_str().to_owned(),
        entry::requested(config),
        config,
        info,
    );
    search.next_page(&mut session, config).await?;
    session.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sync_cursor(groups: Option<GroupsMark>) -> ReadRequest {
        ReadRequest::changes(cursor(Position::Sync(b"c".to_vec()), groups))
    }

    #[test]
    fn a_changes_read_needs_a_cursor_of_the_same_feed_and_groups() {
        assert!(matches!(
            plan(&ReadRequest::full(), Feed::Sync, None),
            Plan::Full(None)
        ));
        assert!(matches!(plan(&sync_cursor(None), Feed::Sync, None), Plan::Sync(c) if c == b"c"));
        assert!(matches!(
            plan(&sync_cursor(None), Feed::None, None),
            Plan::Full(None)
        ));
        assert!(matches!(
            plan(&sync_cursor(None), Feed::Modify, None),
            Plan::Full(Some(_))
        ));
        let junk = ReadRequest::changes(Cursor::new("{\"x\":1}"));
        assert!(
            matches!(plan(&junk, Feed::Sync, None), Plan::Full(Some(w)) if w.contains("not one"))
        );
        let mark = GroupsMark {
            digest: 1,
            count: 2,
        };
        let newer = GroupsMark {
            digest: 2,
            count: 2,
        };
        assert!(matches!(
            plan(&sync_cursor(Some(mark)), Feed::Sync, Some(mark)),
            Plan::Sync(_)
        ));
        assert!(matches!(
            plan(&sync_cursor(Some(mark)), Feed::Sync, Some(newer)),
            Plan::Full(Some(w)) if w.contains("groups")
        ));
        assert!(matches!(
            plan(&sync_cursor(None), Feed::Sync, Some(mark)),
            Plan::Full(Some(_))
        ));
        let t = Timestamp::parse("20261204205244Z").unwrap();
        let modify = ReadRequest::changes(cursor(Position::Modify(t), None));
        assert!(matches!(plan(&modify, Feed::Modify, None), Plan::Modify(at) if at == t));
    }

    #[test]
    fn the_feed_follows_the_setting_the_server_and_the_anchor() {
        let mut config = LdapConfig::new(
            "d",
            crate::LdapUrl::parse("ldap://x").unwrap(),
            "dc=x",
            crate::Filter::parse("(objectClass=*)").unwrap(),
        );
        let sync = ServerInfo {
            sync: true,
            paged: true,
        };
        let plain = ServerInfo {
            sync: false,
            paged: true,
        };
        assert_eq!(feed(&config, sync).unwrap(), Feed::Sync);
        assert_eq!(feed(&config, plain).unwrap(), Feed::Modify);
        config.anchor = "uid".into();
        assert_eq!(
            feed(&config, sync).unwrap(),
            Feed::Modify,
            "sync names entries by entryUUID"
        );
        config.change_detection = ChangeDetection::Sync;
        config.anchor = "entryUUID".into();
        let e = feed(&config, plain).unwrap_err().to_string();
        assert!(e.contains("syncprov"), "{e}");
        config.change_detection = ChangeDetection::None;
        assert_eq!(feed(&config, sync).unwrap(), Feed::None);
    }
}
