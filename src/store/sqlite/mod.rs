//! The embedded SQLite store (rusqlite, bundled SQLite, WAL).

mod accounts;
mod admin;
mod batch;
mod codec;
mod daemon;
mod journal_mode;
mod lock;
mod migrations;
mod outbox;
mod passwords;
mod read;
mod registration;
mod runs;
mod write;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tracing::info;

pub use daemon::{DaemonLock, DispatchLock};
pub use journal_mode::JournalMode;
pub use write::ApplyReport;

use super::{
    Anchor, DriverError, LockHolder, RunRecord, SourceCursor, StateRequest, Store, StoreError,
    UserDetail, UserFilter, UserView,
};
use crate::reconcile::{Plan, State};
use lock::FileLock;
use migrations::Schema;

/// An SQLite database file holding the whole directory.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    lock: FileLock,
    bulk_threshold: usize,
    scan_threshold: usize,
    last_apply: Option<ApplyReport>,
    rehearsing: bool,
}

/// Runs creating more users than this are written as bulk loads (see
/// [`SqliteStore::set_bulk_threshold`]).
pub const BULK_THRESHOLD: usize = 50_000;

/// Above this many keys, loading a plan's state scans a table once instead of
/// one indexed lookup per key (see [`SqliteStore::set_scan_threshold`]).
pub const SCAN_THRESHOLD: usize = 20_000;

/// How long opening a store that needs migrating waits for another process's
/// writer lock (a migration, or a run of an older build).
const MIGRATION_WAIT: Duration = Duration::from_secs(60);

/// How long [`Store::apply`] waits for the writer lock when its caller did not
/// take it (library callers; the CLI takes it around the whole run).
const APPLY_WAIT: Duration = Duration::from_secs(5);

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens the database at `path`, creating the file if needed (never its
    /// folder: a missing folder is [`StoreError::MissingFolder`]), and
    /// migrates it. A store that must not be touched — newer than this build,
    /// of a schema version Liaison never writes, another program's — is
    /// refused before anything in the file changes.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let name = path.display().to_string();
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.is_dir() {
                return Err(StoreError::MissingFolder {
                    path: name,
                    folder: dir.display().to_string(),
                });
            }
        }
        let mut conn = connect(path)?;
        let mut lock = FileLock::new(path);
        if migrations::inspect(&conn, &name)? != Schema::Current {
            migrate_locked(&mut conn, &mut lock, &name)?;
        }
        // A writer in the middle of a bulk load (rollback journal) keeps the
        // mode; this connection reads and writes all the same.
        journal_mode::switch(&conn, JournalMode::Wal);
        Ok(SqliteStore {
            conn,
            path: path.to_owned(),
            lock,
            bulk_threshold: BULK_THRESHOLD,
            scan_threshold: SCAN_THRESHOLD,
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
            source: DriverError::new(source),
        };
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.execute_batch("PRAGMA busy_timeout = 5000;")
            .map_err(open_err)?;
        let name = path.display().to_string();
        if migrations::inspect(&conn, &name)? != Schema::Current {
            return Err(StoreError::Corrupt {
                what: "schema version",
                detail: format!("{name} is not at this build's schema yet (a sync migrates it)"),
            });
        }
        Ok(SqliteStore {
            conn,
            path: path.to_owned(),
            lock: FileLock::new(path),
            bulk_threshold: BULK_THRESHOLD,
            scan_threshold: SCAN_THRESHOLD,
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

    /// Loading a plan's state with more than `keys` users or e-mails scans
    /// the tables once instead of looking each key up. Default
    /// [`SCAN_THRESHOLD`]; tests lower it to run small data through the
    /// scanning path.
    pub fn set_scan_threshold(&mut self, keys: usize) {
        self.scan_threshold = keys;
    }

    /// How the last applied run was written (for tests and debug logs).
    pub fn last_apply(&self) -> Option<ApplyReport> {
        self.last_apply
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the daemon lock of the store at `db` (one `liaison run` per
    /// store), held until the [`DaemonLock`] is dropped; another daemon
    /// holding it is [`StoreError::DaemonRunning`], naming it. Writers never
    /// take it: it excludes only other daemons.
    pub fn lock_daemon(db: &Path) -> Result<DaemonLock, StoreError> {
        daemon::lock_daemon(db)
    }

    /// Takes the dispatcher lock of the store at `db`, waiting up to `wait`
    /// (see [`DispatchLock`]): the daemon's dispatcher takes it for each
    /// flush, `mail flush` for its own.
    pub fn lock_dispatcher(
        db: &Path,
        wait: std::time::Duration,
        on_wait: &mut dyn FnMut(&LockHolder),
    ) -> Result<DispatchLock, StoreError> {
        daemon::lock_dispatcher(db, wait, on_wait)
    }

    /// Who holds the daemon lock of the store at `db` now, without keeping
    /// it; `None` when no daemon runs on it.
    pub fn daemon_holder(db: &Path) -> Result<Option<LockHolder>, StoreError> {
        daemon::daemon_holder(db)
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
        read::load_state(&self.conn, request, self.scan_threshold)
    }

    fn linked_sources(&mut self, except: &[&str]) -> Result<Vec<(String, usize)>, StoreError> {
        read::linked_sources(&self.conn, except)
    }

    fn active_linked(&mut self, source: &str) -> Result<usize, StoreError> {
        read::active_linked(&self.conn, source)
    }

    fn apply(
        &mut self,
        plan: &Plan,
        run: &RunRecord,
        now_ms: i64,
        cancel: &crate::sync::Cancel,
    ) -> Result<(), StoreError> {
        // A caller that did not take the writer lock still never applies
        // beside another run: the lock is taken for the apply alone.
        // A rehearsal is rolled back: it needs no writer lock.
        let took = !self.rehearsing && !self.lock.is_held();
        if took {
            self.lock_writer(APPLY_WAIT, &mut |holder| {
                info!(%holder, "waiting for the store's writer lock to apply");
            })?;
        }
        let bulk = plan.creates.len() > self.bulk_threshold;
        let applied = write::apply(
            &mut self.conn,
            plan,
            run,
            now_ms,
            bulk,
            self.rehearsing,
            cancel,
        );
        let released = if took { self.lock.release() } else { Ok(()) };
        self.last_apply = Some(applied?);
        released
    }

    fn declare_accounts(
        &mut self,
        accounts: &[crate::model::Account],
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let took = !self.rehearsing && !self.lock.is_held();
        if took {
            self.lock_writer(APPLY_WAIT, &mut |holder| {
                info!(%holder, "waiting for the store's writer lock to write the config's accounts");
            })?;
        }
        let declared = declare_accounts(&mut self.conn, accounts, now_ms);
        let released = if took { self.lock.release() } else { Ok(()) };
        let written = declared?;
        released?;
        Ok(written)
    }

    fn account_for_domain(
        &mut self,
        domain: &str,
    ) -> Result<crate::model::DomainMatch, StoreError> {
        accounts::account_for_domain(&self.conn, domain)
    }

    fn set_password(
        &mut self,
        login: &str,
        hash: &str,
        now_ms: i64,
        actor: &str,
    ) -> Result<bool, StoreError> {
        passwords::set_password(&mut self.conn, login, hash, now_ms, actor)
    }

    fn create_password_token(
        &mut self,
        user: crate::model::UserId,
        token_hash: &str,
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        passwords::create_token(&self.conn, user, token_hash, expires_ms, now_ms)
    }

    fn redeem_password_token(
        &mut self,
        token_hash: &str,
        password_hash: &str,
        now_ms: i64,
        actor: &str,
    ) -> Result<crate::store::TokenCheck, StoreError> {
        passwords::redeem_token(&mut self.conn, token_hash, password_hash, now_ms, actor)
    }

    fn record_run(&mut self, run: &RunRecord) -> Result<(), StoreError> {
        write::record_run(&self.conn, run).map(|_| ())
    }

    fn run_summaries(&mut self) -> Result<Vec<super::RunSummary>, StoreError> {
        runs::run_summaries(&self.conn)
    }

    fn plan_settings(&mut self, source: &str) -> Result<Option<u64>, StoreError> {
        read::plan_settings(&self.conn, source)
    }

    fn source_cursor(&mut self, source: &str) -> Result<Option<SourceCursor>, StoreError> {
        read::source_cursor(&self.conn, source)
    }

    fn anchors_of(
        &mut self,
        source: &str,
        ids: &[&str],
        visit: &mut dyn FnMut(&str, Anchor),
    ) -> Result<(), StoreError> {
        read::anchors_of(&self.conn, source, ids, visit)
    }

    fn begin_rehearsal(&mut self) -> Result<(), StoreError> {
        // IMMEDIATE: the rehearsal sees one state of the store throughout.
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|source| StoreError::Query {
                what: "starting a rehearsal",
                source: DriverError::new(source),
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
                source: DriverError::new(source),
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

    fn lock_writer(
        &mut self,
        wait: Duration,
        on_wait: &mut dyn FnMut(&LockHolder),
    ) -> Result<(), StoreError> {
        let name = self.path.display().to_string();
        let lock = &mut self.lock;
        super::lock::wait_for(&name, wait, &mut || lock.try_acquire(), on_wait)
    }

    fn unlock_writer(&mut self) -> Result<(), StoreError> {
        self.lock.release()
    }
}

/// The config's accounts written in a savepoint of their own (inside a
/// rehearsal's transaction, or a transaction of its own otherwise).
fn declare_accounts(
    conn: &mut Connection,
    accounts: &[crate::model::Account],
    now_ms: i64,
) -> Result<usize, StoreError> {
    let q = |what| {
        move |source| StoreError::Query {
            what,
            source: DriverError::new(source),
        }
    };
    let sp = conn
        .savepoint()
        .map_err(q("starting to write the config's accounts"))?;
    let written = accounts::declare(&sp, accounts, now_ms)?;
    sp.commit().map_err(q("committing the config's accounts"))?;
    Ok(written)
}

/// Opens the connection and sets what is the connection's alone (nothing
/// here writes to the file).
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let open_error = |source| StoreError::Open {
        path: path.display().to_string(),
        source: DriverError::new(source),
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(open_error)?;
    // 16 KiB pages, taken by a database that has none yet (an existing one
    // keeps its own; nothing is written): a quarter of the page writes and
    // B-tree splits of SQLite's 4 KiB default on the long rows of users,
    // contacts and journal. The page cache is bounded (64 MiB) to keep a
    // million-user run inside the memory budget. It comes after the page
    // size: set before it, it counted 4 KiB pages and so held 256 MiB of
    // 16 KiB ones (measured: +235 MB peak RSS on a 1M-row first sync).
    conn.execute_batch(
        "PRAGMA page_size = 16384;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -65536;",
    )
    .map_err(open_error)?;
    Ok(conn)
}

/// Migrates under the writer lock, so that processes opening a fresh or old
/// store at once migrate it one after the other (the later ones find it
/// current). A fresh store is put in WAL mode first.
fn migrate_locked(
    conn: &mut Connection,
    lock: &mut FileLock,
    name: &str,
) -> Result<(), StoreError> {
    let held_before = lock.is_held();
    super::lock::wait_for(
        name,
        MIGRATION_WAIT,
        &mut || lock.try_acquire(),
        &mut |holder| {
            info!(%holder, "waiting for the store's writer lock to migrate it");
        },
    )?;
    let migrated = (|| {
        if migrations::inspect(conn, name)? == Schema::Fresh {
            // WAL: readers (the CLI) never block the daemon's writer; NORMAL
            // is durable across process crashes.
            journal_mode::switch(conn, JournalMode::Wal);
        }
        migrations::migrate(conn, name)
    })();
    let released = if held_before { Ok(()) } else { lock.release() };
    migrated.and(released)
}
