//! The embedded SQLite store (rusqlite, bundled SQLite, WAL).

mod batch;
mod codec;
mod migrations;
mod read;
mod write;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::{Anchor, RunRecord, StateRequest, Store, StoreError, UserDetail, UserFilter, UserView};
use crate::reconcile::{Plan, State};

/// An SQLite database file holding the whole directory.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

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
        // WAL: readers (the CLI) never block the daemon's writer; NORMAL is durable
        // across process crashes. The page cache is bounded (64 MiB) to keep a
        // million-user run inside the memory budget.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -65536;",
        )
        .map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        migrations::migrate(&mut conn)?;
        Ok(SqliteStore {
            conn,
            path: path.to_owned(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Store for SqliteStore {
    fn anchors(&mut self, source: &str) -> Result<Vec<(String, Anchor)>, StoreError> {
        read::anchors(&self.conn, source)
    }

    fn load_state(&mut self, request: &StateRequest<'_>) -> Result<State, StoreError> {
        read::load_state(&self.conn, request)
    }

    fn active_linked(&mut self, source: &str) -> Result<usize, StoreError> {
        read::active_linked(&self.conn, source)
    }

    fn apply(&mut self, plan: &Plan, run: &RunRecord, now_ms: i64) -> Result<(), StoreError> {
        write::apply(&mut self.conn, plan, run, now_ms)
    }

    fn record_run(&mut self, run: &RunRecord) -> Result<(), StoreError> {
        write::record_run(&self.conn, run).map(|_| ())
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
