//! CSV connector for Liaison: one file or a glob of files, RFC 4180 quoting (fields
//! may hold delimiters, quotes and line breaks), a header row or configured column
//! names, UTF-8 (with or without BOM) or Windows-1250.
//!
//! Reading streams: one record in memory at a time, whatever the file size. Rows
//! that cannot be read cleanly — a wrong number of fields, bytes that are not valid
//! text in the declared encoding, a row over the length limit — become
//! [`Item::Bad`](liaison_plugin_api::Item::Bad) with whatever could be read, never
//! a failed read. Every item carries the *physical* line where its
//! row starts, as an editor shows it (CRLF files, quoted line breaks and blank lines
//! included), so an admin can jump straight to it.
//!
//! ```no_run
//! use liaison_plugin_api::{Connector, Item, ReadContext, ReadRequest};
//! use liaison_plugin_csv::{CsvConfig, CsvConnector};
//!
//! let csv = CsvConnector::new(CsvConfig::new("/var/lib/liaison/partners-*.csv"));
//! for item in csv.read(&ReadRequest::full(), &ReadContext::default())? {
//!     match item? {
//!         Item::Record(r) => println!("{}: {:?}", r.location, r.get("email")),
//!         Item::Bad(b) => eprintln!("{}: {}", b.location, b.message),
//!         Item::Deleted(d) => println!("{} left", d.key),
//!         Item::End(end) => println!("read in {}", end.mode),
//!     }
//! }
//! # Ok::<(), liaison_plugin_api::SourceError>(())
//! ```
//!
//! Decisions worth knowing:
//! - Line breaks are `\n`, `\r\n` or `\r` alone (old Mac files), also inside
//!   quoted fields, where they are kept as written.
//! - A row whose fields are all blank (a line of spaces, or `;;;` as spreadsheets
//!   write below the data) is skipped like a blank line.
//! - Header names are trimmed; a name given twice fails the read (empty names,
//!   as trailing delimiters give, may repeat). With `header: true` *and*
//!   `columns`, the header row is skipped and `columns` name the fields.
//! - With `header: false` and no `columns`, fields are named `col1`, `col2`, … and
//!   the first row fixes how many there are.
//! - An empty file (or one holding only a header) yields no records; a header that
//!   is not valid text fails the read. In Windows-1250, the five bytes the code
//!   page leaves undefined are undecodable like invalid UTF-8.
//! - A quoted field that is never closed fails the read, naming the line where
//!   it opens: otherwise it would take every following row as its content.
//! - A row takes at most [`MAX_RECORD_BYTES`] of the file; a longer one is a bad
//!   row and reading resumes after its line (a quoted field still open at the
//!   limit fails the read instead). Memory stays bounded whatever the input.
//! - Only regular files are read: a device (a symlink to `/dev/zero`), a FIFO
//!   or a directory fails the read.

mod decode;
mod files;
mod lines;
mod reader;
mod stream;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use liaison_plugin_api::{
    ending_with, Connector, ItemStream, ReadContext, ReadEnd, ReadMode, ReadRequest, SourceError,
};

/// The most bytes one record may take in the file (quotes and line breaks
/// included): 1 MiB. A longer row is a bad row; a longer header, or a quoted
/// field still open after this many bytes, fails the read. This bounds the
/// memory a read takes whatever the file holds.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// Character encoding of a CSV file: declared in config, never guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// UTF-8, with or without a byte-order mark.
    #[default]
    Utf8,
    /// Windows-1250 (Central European), as older Excel exports write it.
    Windows1250,
}

/// Settings of one CSV source, already validated by the daemon's config loader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvConfig {
    /// A file path or a glob pattern (`*`, `?`, `[..]`), absolute.
    pub path: PathBuf,
    /// Field delimiter (default `,`).
    pub delimiter: u8,
    /// Quote character (default `"`).
    pub quote: u8,
    /// Whether the first row names the columns (default true).
    pub header: bool,
    /// Column names for files without a header row; `col1`, `col2`, … when absent.
    pub columns: Option<Vec<String>>,
    /// Character encoding.
    pub encoding: Encoding,
}

impl CsvConfig {
    /// The defaults for `path`: comma-separated, `"`-quoted, header row, UTF-8.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvConfig {
            path: path.into(),
            delimiter: b',',
            quote: b'"',
            header: true,
            columns: None,
            encoding: Encoding::Utf8,
        }
    }
}

/// The `csv` connector: reads the configured file (or every file its glob
/// matches, in sorted order) afresh on each [`Connector::read`].
#[derive(Debug, Clone)]
pub struct CsvConnector {
    config: CsvConfig,
}

impl CsvConnector {
    /// A connector for one `type: csv` source.
    pub fn new(config: CsvConfig) -> Self {
        CsvConnector { config }
    }

    /// The settings this connector reads with.
    pub fn config(&self) -> &CsvConfig {
        &self.config
    }
}

impl Connector for CsvConnector {
    fn kind(&self) -> &'static str {
        "csv"
    }

    /// Resolves the path or glob and opens the first file, so that a missing file
    /// or an empty glob fails here; later files are opened as the stream reaches
    /// them, and a failure there ends the stream with an `Err`. A file has no
    /// change feed: every read is full, without a cursor, whatever was asked.
    fn read(
        &self,
        _request: &ReadRequest,
        ctx: &ReadContext,
    ) -> Result<ItemStream<'_>, SourceError> {
        let files = files::resolve(&self.config.path)?;
        let stream = stream::CsvStream::open(&self.config, files)?;
        let cancel = ctx.cancel.clone();
        // A cancelled read stops at the next row, without its end: failed.
        let rows = stream.take_while(move |_| !cancel.is_cancelled());
        let end = ReadEnd {
            mode: ReadMode::Full,
            cursor: None,
        };
        Ok(ending_with(rows, end))
    }
}
