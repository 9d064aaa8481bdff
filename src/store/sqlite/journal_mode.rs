//! Which journal a run writes through: the write-ahead log as a rule, SQLite's
//! rollback journal for bulk loads.
//!
//! In WAL mode every page a run writes is written twice: to the log, then by
//! the checkpoint into the database. A bulk load (a first sync of a big
//! source) writes mostly new pages, which the rollback journal does not copy
//! at all, so it writes them once (writing a million new users: −34 %,
//! measured; decision record 0007).
//! The price is concurrency: while a run in rollback mode commits, readers
//! wait (they retry within their busy timeout) instead of reading the last
//! commit. Switching needs the database to itself; when another connection
//! has it open the run simply stays in WAL mode.

use rusqlite::Connection;
use tracing::{debug, info};

/// The journal a run was written through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalMode {
    /// SQLite's write-ahead log: readers never wait for the writer.
    Wal,
    /// SQLite's rollback journal (`DELETE`): new pages are written once.
    Rollback,
}

impl JournalMode {
    /// The `PRAGMA journal_mode` value.
    fn pragma(self) -> &'static str {
        match self {
            JournalMode::Wal => "WAL",
            JournalMode::Rollback => "DELETE",
        }
    }

    /// Durability to match: `NORMAL` is durable in WAL mode; the rollback
    /// journal needs `FULL` to survive a power loss at any moment.
    fn synchronous(self) -> &'static str {
        match self {
            JournalMode::Wal => "NORMAL",
            JournalMode::Rollback => "FULL",
        }
    }
}

/// Puts the database in `wanted` mode if it can without waiting, and returns
/// the mode it is in (`None`: one Liaison never sets). Never fails: a mode
/// that cannot be set leaves the one in effect (both are atomic and durable;
/// they differ only in speed and in how readers share the file).
pub fn switch(conn: &Connection, wanted: JournalMode) -> Option<JournalMode> {
    let before = current(conn);
    let now = if before == Some(wanted) {
        before
    } else {
        // Leaving or entering WAL needs an exclusive lock: try once, do not queue.
        let timeout = conn
            .query_row("PRAGMA busy_timeout", [], |r| r.get::<_, i64>(0))
            .unwrap_or(0);
        let _ = conn.execute_batch("PRAGMA busy_timeout = 0");
        let set = conn.query_row(
            &format!("PRAGMA journal_mode = {}", wanted.pragma()),
            [],
            |r| r.get::<_, String>(0),
        );
        let _ = conn.execute_batch(&format!("PRAGMA busy_timeout = {timeout}"));
        match set {
            Ok(mode) => parse(&mode),
            Err(e) => {
                debug!(error = %e, wanted = wanted.pragma(), "journal mode not switched");
                before
            }
        }
    };
    if now != Some(wanted) {
        info!(
            wanted = wanted.pragma(),
            kept = now.map_or("other", JournalMode::pragma),
            "the store is open elsewhere; its journal mode stays as it is"
        );
    }
    let synchronous = now.map_or("FULL", JournalMode::synchronous);
    let _ = conn.execute_batch(&format!("PRAGMA synchronous = {synchronous}"));
    now
}

/// The mode the database is in (`None` if SQLite reports one Liaison never sets).
pub fn current(conn: &Connection) -> Option<JournalMode> {
    conn.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
        .ok()
        .and_then(|m| parse(&m))
}

fn parse(mode: &str) -> Option<JournalMode> {
    if mode.eq_ignore_ascii_case("wal") {
        Some(JournalMode::Wal)
    } else if mode.eq_ignore_ascii_case("delete") {
        Some(JournalMode::Rollback)
    } else {
        None
    }
}
