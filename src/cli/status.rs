//! `liaison status`: what the store and a running daemon know, read without
//! taking any lock or creating anything, so it works while a daemon runs and
//! applies (WAL readers, see `BENCHMARKS.md`, "Readers during a first bulk
//! import").

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::config::{Config, SourceConfig};
use crate::store::{
    DaemonState, LockHolder, Outbox, OutboxState, RunSummary, SourceCursor, SqliteStore, Store,
    StoreError,
};

/// Everything `status` shows.
#[derive(Debug)]
pub struct StatusView {
    /// The store file.
    pub store: PathBuf,
    /// Whether the store file exists (no file: no runs yet).
    pub store_exists: bool,
    /// The daemon holding the store, if one runs.
    pub daemon: Option<DaemonView>,
    /// Each configured source in config order, then sources the history
    /// knows that the config no longer has.
    pub sources: Vec<SourceStatus>,
    /// The outbox depth: each state with its count, in the order of a
    /// message's life (all zero before the store exists).
    pub outbox: Vec<(OutboxState, u64)>,
    /// Notes for stderr (a daemon state file that cannot be read, say).
    pub notes: Vec<String>,
    /// When the status was gathered (ms since the Unix epoch): cursor ages
    /// are counted to it.
    pub now_ms: i64,
}

/// The daemon holding the store's daemon lock.
#[derive(Debug)]
pub struct DaemonView {
    /// Who holds the lock, as it said.
    pub holder: LockHolder,
    /// When it started, from the lock (else its state file).
    pub since_ms: Option<i64>,
    /// The config it runs, from its state file.
    pub config: Option<PathBuf>,
}

/// One source's line.
#[derive(Debug)]
pub struct SourceStatus {
    /// The source name.
    pub source: String,
    /// Whether the config has it.
    pub configured: bool,
    /// Its run history in brief; `None`: it never ran.
    pub runs: Option<RunSummary>,
    /// When it runs next: the daemon's plan while one runs, else the next
    /// time its `schedule` fires.
    pub next_run_ms: Option<i64>,
    /// Its stored cursor and last full read; `None`: no applied run yet.
    pub cursor: Option<SourceCursor>,
}

/// Gathers the status of the SQLite store at `db` for `config`, at `now`.
pub fn gather(config: &Config, db: &Path, now: DateTime<Utc>) -> Result<StatusView, StoreError> {
    let mut notes = Vec::new();
    let store_exists = db.exists();
    let mut store = store_exists
        .then(|| SqliteStore::open_read_only(db))
        .transpose()?;
    let (summaries, counts) = match store.as_mut() {
        Some(store) => (store.run_summaries()?, store.outbox_counts()?),
        None => Default::default(),
    };
    let outbox = OutboxState::ALL
        .iter()
        .map(|&state| (state, counts.get(state.as_str()).copied().unwrap_or(0)))
        .collect();
    let holder = SqliteStore::daemon_holder(db)?;
    let state = match &holder {
        Some(h) => daemon_state(db, h, &mut notes),
        None => None,
    };
    let daemon = holder.map(|holder| DaemonView {
        since_ms: holder.since_ms.or(state.as_ref().map(|s| s.started_ms)),
        config: state.as_ref().map(|s| s.config.clone()),
        holder,
    });
    let mut sources = source_lines(config, summaries, state.as_ref(), now);
    if let Some(store) = store.as_mut() {
        for s in &mut sources {
            s.cursor = store.source_cursor(&s.source)?;
        }
    }
    Ok(StatusView {
        store: db.to_owned(),
        store_exists,
        daemon,
        sources,
        outbox,
        notes,
        now_ms: now.timestamp_millis(),
    })
}

/// The running daemon's state file, when it is the lock holder's (a daemon
/// that died leaves its file behind; the lock tells).
fn daemon_state(db: &Path, holder: &LockHolder, notes: &mut Vec<String>) -> Option<DaemonState> {
    match DaemonState::read(db) {
        Ok(Some(state)) if holder.pid.is_none_or(|pid| pid == state.pid) => Some(state),
        Ok(_) => None,
        Err(e) => {
            notes.push(format!(
                "note: the daemon's next runs are not shown: {}",
                super::text::error_chain(&anyhow::Error::new(e))
            ));
            None
        }
    }
}

/// Configured sources in config order, then the others the history knows.
fn source_lines(
    config: &Config,
    mut summaries: Vec<RunSummary>,
    state: Option<&DaemonState>,
    now: DateTime<Utc>,
) -> Vec<SourceStatus> {
    let mut lines: Vec<SourceStatus> = config
        .sources
        .iter()
        .map(|source| {
            let runs = summaries
                .iter()
                .position(|s| s.source == source.name)
                .map(|i| summaries.remove(i));
            SourceStatus {
                source: source.name.clone(),
                configured: true,
                runs,
                next_run_ms: next_run(source, state, now),
                cursor: None,
            }
        })
        .collect();
    lines.extend(summaries.into_iter().map(|s| SourceStatus {
        source: s.source.clone(),
        configured: false,
        runs: Some(s),
        next_run_ms: None,
        cursor: None,
    }));
    lines
}

/// The daemon's next run of `source` while one runs (and wrote its state),
/// else the next time the source's schedule fires after `now`.
fn next_run(source: &SourceConfig, state: Option<&DaemonState>, now: DateTime<Utc>) -> Option<i64> {
    match state {
        Some(state) => state.next_runs.get(&source.name).copied(),
        None => source
            .schedule
            .as_ref()
            .and_then(|s| s.next_after_tz(now, source.timezone))
            .map(|t| t.timestamp_millis()),
    }
}

/// `ms` as RFC 3339 in UTC, to the second.
pub fn rfc3339(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}
