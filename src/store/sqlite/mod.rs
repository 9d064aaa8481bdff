//! The embedded SQLite store (rusqlite, bundled SQLite, WAL).

mod batch;
mod codec;
mod journal_mode;
mod migrations;
mod read;
mod write;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

pub use journal_mode::JournalMode;
pub use write::ApplyReport;

use super::{Anchor, RunRecord, StateRequest, Store, StoreError, UserDetail, UserFilter, UserView};
use crate::reconcile::{Plan, State};

/// An SQLite database file holding the whole directory.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    bulk_threshold: usize,
    last_apply: Option<ApplyReport>,
    rehearsing: bool,
}

/// Runs creating more users than this are written as bulk loads (see
/// [`SqliteStore::set_bulk_threshold`]).
pub const BULK_THRESHOLD: usize = 50_000;

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
                    path: path.display().to_string(),
                    source,
                })?;
            }
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn =
            Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
                path: path.display().to_string(),
                source,
            })?;
        // 16 KiB pages (set before the file has any): a quarter of the page
        // writes and B-tree splits of SQLite's 4 KiB default on the long rows
        // of users, contacts and journal. WAL: readers (the CLI) never block
        // the daemon's writer; NORMAL is durable across process crashes. The
        // page cache is bounded (64 MiB) to keep a million-user run inside the
        // memory budget.
        conn.execute_batch(
            "PRAGMA page_size = 16384;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -65536;",
        )
        .map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        // A writer in the middle of a bulk load (rollback journal) keeps the
        // mode; this connection reads and writes all the same.
        journal_mode::switch(&conn, JournalMode::Wal);
        migrations::migrate(&mut conn)?;
        Ok(SqliteStore {
            conn,
            path: path.to_owned(),
            bulk_threshold: BULK_THRESHOLD,
            last_apply: None,
            rehearsing: false,
        })
    }

    /// Opens an existing store for reading only: nothing is created, migrated
    /// or written (`validate` looks into the store this way).
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.execute_batch("PRAGMA busy_timeout = 5000;")
            .map_err(open_err)?;
        migrations::check_current(&conn)?;
        Ok(SqliteStore {
            conn,
            path: path.to_owned(),
            bulk_threshold: BULK_THRESHOLD,
            last_apply: None,
            rehearsing: false,
        })
    }

    /// Runs creating more than `users` users are written as bulk loads: the
    /// random-order indexes are rebuilt once after the rows, and the run goes
    /// through the rollback journal when the store is not open elsewhere.
    /// Default [`BULK_THRESHOLD`].
    pub fn set_bulk_threshold(&mut self, users: usize) {
        self.bulk_threshold = users;
    }

    /// How the last applied run was written (for tests and debug logs).
    pub fn last_apply(&self) -> Option<ApplyReport> {
        self.last_apply
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Store for SqliteStore {
    fn for_each_anchor(
        &mut self,
        source: &str,
        visit: &mut dyn FnMut(&str, Anchor),
    ) -> Result<(), StoreError> {
        read::for_each_anchor(&self.conn, source, visit)
    }

    fn load_state(&mut self, request: &StateRequest<'_>) -> Result<State, StoreError> {
        read::load_state(&self.conn, request)
    }

    fn linked_sources(&mut self, except: &[&str]) -> Result<Vec<(String, usize)>, StoreError> {
        read::linked_sources(&self.conn, except)
    }

    fn active_linked(&mut self, source: &str) -> Result<usize, StoreError> {
        read::active_linked(&self.conn, source)
    }

    fn apply(&mut self, plan: &Plan, run: &RunRecord, now_ms: i64) -> Result<(), StoreError> {
        let bulk = plan.creates.len() > self.bulk_threshold;
        let report = write::apply(&mut self.conn, plan, run, now_ms, bulk, self.rehearsing)?;
        self.last_apply = Some(report);
        Ok(())
    }

    fn record_run(&mut self, run: &RunRecord) -> Result<(), StoreError> {
        write::record_run(&self.conn, run).map(|_| ())
    }

    fn plan_settings(&mut self, source: &str) -> Result<Option<u64>, StoreError> {
        read::plan_settings(&self.conn, source)
    }

    fn begin_rehearsal(&mut self) -> Result<(), StoreError> {
        // IMMEDIATE: the rehearsal sees one state of the store throughout.
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|source| StoreError::Query {
                what: "starting a rehearsal",
                source,
            })?;
        self.rehearsing = true;
        Ok(())
    }

    fn end_rehearsal(&mut self) -> Result<(), StoreError> {
        if !std::mem::take(&mut self.rehearsing) {
            return Ok(());
        }
        self.conn
            .execute_batch("ROLLBACK")
            .map_err(|source| StoreError::Query {
                what: "ending a rehearsal",
                source,
            })
    }

    fn rehearsing(&self) -> bool {
        self.rehearsing
    }

    fn for_each_user(
        &mut self,
        filter: &UserFilter,
        visit: &mut dyn FnMut(UserView) -> std::ops::ControlFlow<()>,
    ) -> Result<(), StoreError> {
        read::for_each_user(&self.conn, filter, visit)
    }

    fn user_detail(&mut self, login: &str) -> Result<Option<UserDetail>, StoreError> {
        read::user_detail(&self.conn, login)
    }
}
