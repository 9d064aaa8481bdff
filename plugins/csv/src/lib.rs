//! CSV connector for Liaison. (Being built: see issue 2.)

use std::path::PathBuf;

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
