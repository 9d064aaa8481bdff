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

mod record;

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
/// whatever could be read is kept (`partial`) so the daemon can still tell which
/// contact it was and keep that contact's links: a typo never deprovisions anyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// Where the row is.
    pub location: Location,
    /// What is wrong with it, for people.
    pub message: String,
    /// The attributes that could still be read (lossily decoded, short or long rows cut to the header).
    pub partial: Option<Record>,
}

/// What a connector hands out while reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A cleanly read record.
    Record(Record),
    /// A row that could not be read; counts toward the bad-row ratio.
    Bad(BadRow),
}

/// Why a read failed as a whole (not a single bad row): the source then counts as
/// failed and deprovisions nobody.
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
    /// The data is not readable as a whole (e.g. a header row that cannot be decoded).
    #[error("{0}")]
    Invalid(String),
}

/// A stream of items from one read of a source. `Err` ends the read as failed.
pub type ItemStream<'a> = Box<dyn Iterator<Item = Result<Item, SourceError>> + Send + 'a>;

/// A built connector instance: one entry of the config's `sources:`.
///
/// Implementations are cheap to call repeatedly; each `read` is one complete,
/// fresh pass over the source.
pub trait Connector: Send + Sync {
    /// The plugin type name as written in config (`csv`, `ldap`, …).
    fn kind(&self) -> &'static str;

    /// Start a full read of the source.
    fn read(&self) -> Result<ItemStream<'_>, SourceError>;

    /// Probe the source the way a read would begin (open the file, bind, fetch a first
    /// page) without reading it all; used by `validate --online`.
    fn check(&self) -> Result<(), SourceError> {
        let mut items = self.read()?;
        match items.next() {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }
}
