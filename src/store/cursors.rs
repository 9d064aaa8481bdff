//! Each source's change cursor as the store keeps it (SPEC §2 "Full reads,
//! change reads and cursors"): written only with an applied run, read to
//! decide how the next run reads.

use liaison_plugin_api::Cursor;

/// A source's stored cursor and when it was last read in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCursor {
    /// Where the next changes read starts; `None`: the connector gave none
    /// (CSV), so every read is full.
    pub cursor: Option<Cursor>,
    /// The digest of the mapping and connector settings the cursor was read
    /// with ([`crate::sync::read_digest`]): another digest reads in full.
    pub read_with: u64,
    /// When the cursor was stored (ms since the Unix epoch).
    pub stored_ms: i64,
    /// When the source was last read in full by an applied run.
    pub last_full_ms: Option<i64>,
}

/// The cursor an applied run stores, in the run's own transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorWrite {
    /// The cursor the read ended with.
    pub cursor: Option<Cursor>,
    /// [`SourceCursor::read_with`].
    pub read_with: u64,
    /// The read was full: the last full read becomes the run's time.
    pub full: bool,
}
