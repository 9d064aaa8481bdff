//! What a read is asked for and how it ends (SPEC §2 "Full reads, change reads
//! and cursors"): a mode, the stored cursor, and a context the connector reads in.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::Cancel;

/// How much of the source a read returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadMode {
    /// Everything the source holds: a contact not returned has left.
    Full,
    /// Only what changed since the cursor: a contact not mentioned has not left.
    Changes,
}

impl ReadMode {
    /// The mode's word, as in the exec protocol and `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadMode::Full => "full",
            ReadMode::Changes => "changes",
        }
    }

    /// The mode named by [`ReadMode::as_str`].
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "full" => Some(ReadMode::Full),
            "changes" => Some(ReadMode::Changes),
            _ => None,
        }
    }
}

impl fmt::Display for ReadMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An opaque position in a source's history, made by its connector at the end
/// of a read and handed back on the next: an LDAP sync cookie, a CRM's last
/// modification time, an exec plugin's JSON value (as JSON text). Only the
/// connector that made it reads it; the host stores it as given.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Cursor(String);

impl Cursor {
    /// A cursor holding `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Cursor(text.into())
    }

    /// The cursor's text, as the connector made it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The cursor's text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Cursors can be long (LDAP cookies); a debug line shows their start.
        const SHOWN: usize = 40;
        match self.0.char_indices().nth(SHOWN) {
            Some((cut, _)) => write!(f, "Cursor({:?}…)", &self.0[..cut]),
            None => write!(f, "Cursor({:?})", self.0),
        }
    }
}

/// What the host asks of one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    /// The mode wanted. A connector may deliver a full read instead of
    /// changes (and says so in its [`ReadEnd`]), never changes instead of full.
    pub mode: ReadMode,
    /// The cursor the last committed read ended with; `None` before the first
    /// one (a changes read without a cursor is answered in full).
    pub cursor: Option<Cursor>,
}

impl ReadRequest {
    /// A full read, as the first read of a source and `sync --full` ask.
    pub fn full() -> Self {
        ReadRequest {
            mode: ReadMode::Full,
            cursor: None,
        }
    }

    /// A changes read since `cursor`.
    pub fn changes(cursor: Cursor) -> Self {
        ReadRequest {
            mode: ReadMode::Changes,
            cursor: Some(cursor),
        }
    }
}

/// The last item of every complete read: the mode actually delivered and the
/// cursor to store for the next changes read (`None`: the source has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadEnd {
    /// What the read returned: a full read or only changes.
    pub mode: ReadMode,
    /// Where the next changes read starts.
    pub cursor: Option<Cursor>,
}

/// The time a connector reads at. Injected, so that tests of a connector that
/// makes time-based cursors (a CRM's modification time) run at a fixed time.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// What a connector reads in: the run's cancellation flag, a clock, and the
/// tokio runtime async connectors run their I/O on.
#[derive(Clone)]
pub struct ReadContext {
    /// Set when the run is to stop: a connector stops reading at its next item.
    pub cancel: Cancel,
    clock: Clock,
    runtime: Option<tokio::runtime::Handle>,
}

impl fmt::Debug for ReadContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadContext")
            .field("cancel", &self.cancel)
            .field("runtime", &self.runtime.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for ReadContext {
    fn default() -> Self {
        ReadContext::new(Cancel::new())
    }
}

impl ReadContext {
    /// A context on the system clock, without a runtime (enough for
    /// synchronous connectors such as CSV).
    pub fn new(cancel: Cancel) -> Self {
        ReadContext {
            cancel,
            clock: Arc::new(SystemTime::now),
            runtime: None,
        }
    }

    /// This context reading its time from `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// This context running async connectors on `runtime` (a multi-thread
    /// runtime: the reading side blocks on a thread of its own, not on it).
    pub fn with_runtime(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// The time now, by the context's clock.
    pub fn now(&self) -> SystemTime {
        (self.clock)()
    }

    /// The runtime async connectors run on, if the host gave one.
    pub fn runtime(&self) -> Option<&tokio::runtime::Handle> {
        self.runtime.as_ref()
    }
}
