//! The connector contract every Liaison source plugin implements.
//!
//! A connector reads one source (a CSV file, an LDAP directory, a CRM) and yields
//! [`Record`]s: named attributes plus the [`Location`] they came from. It never
//! sees the store or the mailer; mapping attributes to users happens in the
//! daemon. Reads are streaming: a connector hands out one record at a time so a
//! million-row source never sits whole in memory.
//!
//! ```
//! use liaison_plugin_api::{Record, Location, Schema};
//! use std::sync::Arc;
//!
//! let schema = Arc::new(Schema::new(vec!["contact_id".into(), "email".into()]));
//! let rec = Record::new(
//!     Location::line("partners.csv", 2),
//!     schema,
//!     vec!["c-1".into(), "ann@example.com".into()],
//! );
//! assert_eq!(rec.get("email"), Some("ann@example.com"));
//! assert_eq!(rec.location.to_string(), "partners.csv:2");
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

mod bridge;
mod cancel;
mod read;
mod record;

pub use bridge::{ending_with, spawn_read, ItemSender, ReaderGone, DEFAULT_CAPACITY};
pub use cancel::Cancel;
pub use read::{Clock, Cursor, ReadContext, ReadEnd, ReadMode, ReadRequest};
pub use record::{Many, Record, Value, ValueRef};

/// Where a record (or a bad row) came from, printed the way an admin looks it up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Location {
    /// A physical line of a text file, 1-based, as an editor shows it.
    Line {
        /// The file as named in the config (or found by its glob).
        file: Arc<str>,
        /// Physical line where the record starts.
        line: u64,
    },
    /// A directory entry, by distinguished name.
    Entry {
        /// The entry's DN.
        dn: String,
    },
    /// A remote object, by the remote system's own id (e.g. a CRM record id).
    Remote {
        /// What kind of object (`contact`, `account`).
        kind: &'static str,
        /// The remote id.
        id: String,
    },
    /// A line of an external plugin's output (exec's stdout), 1-based: what
    /// `liaison plugin check` numbers too. A bad record also carries the
    /// plugin's own location for it (its `error` line's `location`).
    Output {
        /// The line on the plugin's stdout.
        line: u64,
        /// Where the plugin says the record is in its own source, if it said.
        at: Option<Box<str>>,
    },
}

impl Location {
    /// A file line location.
    pub fn line(file: impl Into<Arc<str>>, line: u64) -> Self {
        Location::Line {
            file: file.into(),
            line,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line { file, line } => write!(f, "{file}:{line}"),
            Location::Entry { dn } => write!(f, "{dn}"),
            Location::Remote { kind, id } => write!(f, "{kind} {id}"),
            Location::Output { line, at: None } => write!(f, "output line {line}"),
            Location::Output { line, at: Some(at) } => write!(f, "{at} (output line {line})"),
        }
    }
}

/// The attribute names of a batch of records, shared so that a CSV file's header
/// is stored once, not once per row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Schema {
    /// A schema from attribute names in column order. A repeated name keeps its
    /// first position for lookups by name.
    pub fn new(names: Vec<String>) -> Self {
        let mut index = HashMap::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            index.entry(n.clone()).or_insert(i);
        }
        Schema { names, index }
    }

    /// Attribute names in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Position of an attribute by exact name.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when there are no attributes.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// A row the connector could not read cleanly. It is reported and skipped, but
/// whatever could be read is kept (`partial`, or the connector's `key`) so the
/// daemon can still tell which contact it was and keep that contact's links: a
/// typo never deprovisions anyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// Where the row is.
    pub location: Location,
    /// What is wrong with it, for people.
    pub message: String,
    /// The attributes that could still be read (lossily decoded, short or long rows cut to the header).
    pub partial: Option<Record>,
    /// The record's key, when the connector could still tell it (exec's `error`
    /// with a `key`): the contact then counts as present.
    pub key: Option<String>,
}

/// A contact that left the source, named by its key: only in a changes read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// The key of the record that left.
    pub key: String,
    /// Where the deletion was read (an exec line, a CRM deletion listing).
    pub location: Location,
}

/// What a connector hands out while reading. A complete read ends with exactly
/// one [`Item::End`]; a stream that stops without one is a failed read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A cleanly read record.
    Record(Record),
    /// A row that could not be read; counts toward the bad-row ratio.
    Bad(BadRow),
    /// A contact that left (changes reads only).
    Deleted(Deletion),
    /// The read is complete: the mode delivered and the cursor to store.
    End(ReadEnd),
}

/// Why a read failed as a whole (not a single bad row): the source then counts as
/// failed and deprovisions nobody. Each variant says whose fault it is and so
/// whether a retry can help ([`SourceError::kind`]).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source could not be opened or read (file missing, connection refused).
    #[error("{what}: {source}")]
    Io {
        /// What was being read (a path, a URL).
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Nothing matched (e.g. a glob that found no file).
    #[error("{0}")]
    NotFound(String),
    /// The source could not be reached (a server down, a plugin that failed
    /// or timed out): a retry may succeed.
    #[error("{0}")]
    Unreachable(String),
    /// The source refused the credentials: retrying changes nothing.
    #[error("{0}")]
    Auth(String),
    /// The source asked us to slow down, for `retry_after` if it said.
    #[error("{message}")]
    RateLimited {
        /// What the source said.
        message: String,
        /// How long the source asked us to wait (HTTP `Retry-After`).
        retry_after: Option<std::time::Duration>,
    },
    /// The read stopped before its end (a dropped connection, a plugin that
    /// exited without its end line).
    #[error("{0}")]
    Incomplete(String),
    /// The data is not readable as a whole (e.g. a header row that cannot be
    /// decoded, a plugin line that breaks the protocol).
    #[error("{0}")]
    Invalid(String),
    /// The stored cursor is no longer valid and the connector cannot fall back
    /// to a full read by itself; the host then reads in full at once, in the
    /// same run.
    #[error("{0}")]
    CursorExpired(String),
}

/// Whose fault a [`SourceError`] is: the source values of SPEC §5's `failure_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceErrorKind {
    /// Not reachable or not openable: a retry may help.
    Unreachable,
    /// Credentials refused: a retry does not help.
    Auth,
    /// Asked to slow down: a retry later helps.
    RateLimited,
    /// The read ended early: a retry may help.
    Incomplete,
    /// The data is unreadable: a retry does not help.
    Invalid,
    /// The cursor expired: the next read is a full one.
    CursorExpired,
}

impl SourceError {
    /// Whose fault the error is.
    pub fn kind(&self) -> SourceErrorKind {
        match self {
            SourceError::Io { .. } | SourceError::NotFound(_) | SourceError::Unreachable(_) => {
                SourceErrorKind::Unreachable
            }
            SourceError::Auth(_) => SourceErrorKind::Auth,
            SourceError::RateLimited { .. } => SourceErrorKind::RateLimited,
            SourceError::Incomplete(_) => SourceErrorKind::Incomplete,
            SourceError::Invalid(_) => SourceErrorKind::Invalid,
            SourceError::CursorExpired(_) => SourceErrorKind::CursorExpired,
        }
    }

    /// How long the source asked us to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            SourceError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A stream of items from one read of a source. `Err` ends the read as failed;
/// so does the stream's end without an [`Item::End`].
pub type ItemStream<'a> = Box<dyn Iterator<Item = Result<Item, SourceError>> + Send + 'a>;

/// A built connector instance: one entry of the config's `sources:`.
///
/// Implementations are cheap to call repeatedly; each `read` is one fresh
/// pass over the source (or over its changes since the request's cursor).
pub trait Connector: Send + Sync {
    /// The plugin type name as written in config (`csv`, `ldap`, …).
    fn kind(&self) -> &'static str;

    /// Starts a read as `request` asks. A connector without a change feed
    /// answers every request with a full read and says so in its end item.
    fn read(&self, request: &ReadRequest, ctx: &ReadContext)
        -> Result<ItemStream<'_>, SourceError>;

    /// Probes the source the way a read would begin (open the file, bind, fetch a first
    /// page) without reading it all; used by `validate --online`.
    fn check(&self, ctx: &ReadContext) -> Result<(), SourceError> {
        let mut items = self.read(&ReadRequest::full(), ctx)?;
        match items.next() {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }
}
