//! The store's errors, backend-neutral: a driver's own error type (rusqlite's,
//! a PostgreSQL client's) is only ever a [`DriverError`] source, so callers of
//! [`super::Store`] never name a driver.

use std::fmt;

use super::LockHolder;

/// A database driver's error, boxed so that no driver type is part of
/// [`StoreError`]. It shows as the driver's error does, and its `source()` is
/// the driver error's own source, so messages read as before.
pub struct DriverError(Box<dyn std::error::Error + Send + Sync>);

impl DriverError {
    /// Wraps a driver's error.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        DriverError(Box::new(error))
    }

    /// The driver's error itself (to downcast it to the driver's type).
    pub fn inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self.0.as_ref()
    }
}

impl fmt::Debug for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Why the store failed. Carries the operation, so a message says what was being done.
/// The driver's error is the `source`, not part of the text: print the chain
/// (`{:#}` or the CLI's error printer) to see it, once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened.
    #[error("cannot open store {path}")]
    Open {
        /// The database location.
        path: String,
        /// Driver error.
        #[source]
        source: DriverError,
    },
    /// The database's folder could not be created.
    #[error("cannot create the folder of store {path}")]
    Folder {
        /// The database location.
        path: String,
        /// The file-system error.
        #[source]
        source: std::io::Error,
    },
    /// The database was written by a newer Liaison.
    #[error("store schema version {found} is newer than this build knows ({known}); refusing to downgrade")]
    Downgrade {
        /// Version in the database.
        found: i64,
        /// Latest version this build knows.
        known: i64,
    },
    /// A query failed.
    #[error("store: {what}")]
    Query {
        /// What was being done.
        what: &'static str,
        /// Driver error.
        #[source]
        source: DriverError,
    },
    /// Stored data could not be decoded.
    #[error("store: corrupt {what}: {detail}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Details.
        detail: String,
    },
    /// The database's folder does not exist (a typo must not start an empty store).
    #[error("the folder {folder} of store {path} does not exist")]
    MissingFolder {
        /// The database location.
        path: String,
        /// The missing folder.
        folder: String,
    },
    /// The database is some other program's (or no schema Liaison wrote).
    #[error("{path} is not a Liaison store ({detail}); refusing to change it")]
    Foreign {
        /// The database location.
        path: String,
        /// What gave it away.
        detail: String,
    },
    /// Another process held the store's writer lock for longer than we would wait.
    #[error(
        "the store {path} is busy: its writer lock is held by {holder}; gave up after {waited_s} s"
    )]
    Locked {
        /// The database location.
        path: String,
        /// Who holds the lock, as it said.
        holder: LockHolder,
        /// How long we waited.
        waited_s: u64,
    },
    /// Another daemon runs on this store (one daemon per store); `sync --once`
    /// and other writers never see this, only a second `liaison run`.
    #[error("another Liaison daemon holds the store {path}: {holder}")]
    DaemonRunning {
        /// The database location.
        path: String,
        /// The daemon holding it, as it said.
        holder: LockHolder,
    },
    /// An outbox message was not in the state a change moves it from (see
    /// [`crate::store::Outbox`]); `found` is `None` when there is no such message.
    #[error("outbox message {id} is {}, not {expected}", found.as_deref().unwrap_or("not in the outbox"))]
    OutboxState {
        /// The message.
        id: i64,
        /// The state the change moves it from.
        expected: &'static str,
        /// The state it is in.
        found: Option<String>,
    },
    /// The apply was cancelled before it committed: its transaction rolled back.
    #[error("cancelled; nothing applied")]
    Cancelled,
    /// The daemon's state file could not be read or written.
    #[error("cannot use the daemon state file {path}")]
    StateFile {
        /// The state file.
        path: String,
        /// The file-system error.
        #[source]
        source: std::io::Error,
    },
    /// The writer lock could not be used at all (its file cannot be created, say).
    #[error("cannot use the lock file {path}")]
    Lock {
        /// The lock file.
        path: String,
        /// The file-system error.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether a retry may succeed by itself: the database was busy or
    /// locked by another writer (a long apply holds SQLite's write lock).
    pub fn is_busy(&self) -> bool {
        let StoreError::Query { source, .. } = self else {
            return false;
        };
        source
            .inner()
            .downcast_ref::<rusqlite::Error>()
            .and_then(rusqlite::Error::sqlite_error_code)
            .is_some_and(|code| {
                matches!(
                    code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                )
            })
    }
}
