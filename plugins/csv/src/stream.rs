//! The item stream of one read: the files one after the other, each with its own
//! header and schema, every row turned into a record or a bad row.

use std::path::PathBuf;
use std::sync::Arc;

use liaison_plugin_api::{BadRow, Item, Location, Record, Schema, SourceError};

use crate::reader::{RawRow, RowReader};
use crate::{decode, CsvConfig};

/// Streams the items of every file in turn. After an `Err` it ends.
pub(crate) struct CsvStream<'a> {
    config: &'a CsvConfig,
    pending: std::vec::IntoIter<PathBuf>,
    current: Option<FileRows>,
    failed: bool,
}

impl<'a> CsvStream<'a> {
    /// A stream over `files`, with the first one already open so that opening
    /// errors surface before any item.
    pub(crate) fn open(config: &'a CsvConfig, files: Vec<PathBuf>) -> Result<Self, SourceError> {
        let mut stream = CsvStream {
            config,
            pending: files.into_iter(),
            current: None,
            failed: false,
        };
        if let Some(first) = stream.pending.next() {
            stream.current = Some(FileRows::open(first, config)?);
        }
        Ok(stream)
    }
}

impl Iterator for CsvStream<'_> {
    type Item = Result<Item, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed {
            let rows = match &mut self.current {
                Some(rows) => rows,
                None => {
                    let path = self.pending.next()?;
                    match FileRows::open(path, self.config) {
                        Ok(rows) => self.current.insert(rows),
                        Err(e) => {
                            self.failed = true;
                            return Some(Err(e));
                        }
                    }
                }
            };
            match rows.next_item(self.config) {
                Ok(Some(item)) => return Some(Ok(item)),
                Ok(None) => self.current = None,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// The rows of one open file.
struct FileRows {
    reader: RowReader,
    /// The file as found, for locations and errors.
    file: Arc<str>,
    /// Known once the header (or, without one, the first row) has been read.
    schema: Option<Arc<Schema>>,
}

impl FileRows {
    fn open(path: PathBuf, config: &CsvConfig) -> Result<Self, SourceError> {
        let file: Arc<str> = path.display().to_string().into();
        let reader = RowReader::open(&path, config).map_err(|source| SourceError::Io {
            what: file.to_string(),
            source,
        })?;
        Ok(FileRows {
            reader,
            file,
            schema: None,
        })
    }

    fn next_item(&mut self, config: &CsvConfig) -> Result<Option<Item>, SourceError> {
        loop {
            let row = match self.reader.next_row() {
                Ok(Some(row)) => row,
                Ok(None) => return Ok(None),
                Err(source) => {
                    return Err(SourceError::Io {
                        what: self.file.to_string(),
                        source,
                    })
                }
            };
            if row.is_blank() {
                continue;
            }
            let schema = match &self.schema {
                Some(schema) => Arc::clone(schema),
                None => {
                    let names = match (&config.columns, config.header) {
                        (Some(columns), _) => columns.clone(),
                        (None, true) => decode::header(&row).map_err(|column| {
                            SourceError::Invalid(format!(
                                "{}:{}: header row is not valid UTF-8 (column {})",
                                self.file,
                                row.line,
                                column + 1
                            ))
                        })?,
                        (None, false) => (1..=row.len()).map(|i| format!("col{i}")).collect(),
                    };
                    let schema = Arc::new(Schema::new(names));
                    self.schema = Some(Arc::clone(&schema));
                    if config.header {
                        continue;
                    }
                    schema
                }
            };
            return Ok(Some(to_item(&row, schema, &self.file)));
        }
    }
}

/// A record when the row decodes and has one field per column, else a bad row
/// keeping what could be read (lossily decoded, cut to the schema).
fn to_item(row: &RawRow<'_>, schema: Arc<Schema>, file: &Arc<str>) -> Item {
    let location = Location::Line {
        file: Arc::clone(file),
        line: row.line,
    };
    let expected = schema.len();
    let found = row.len();
    let count_problem =
        (found != expected).then(|| format!("expected {expected} fields, found {found}"));
    let (mut fields, problem) = match decode::fields(row) {
        Ok(fields) => match count_problem {
            None => {
                return match record(location.clone(), schema, fields) {
                    Some(record) => Item::Record(record),
                    None => Item::Bad(BadRow {
                        location,
                        message: "the row could not be split into fields".to_owned(),
                        partial: None,
                    }),
                }
            }
            Some(problem) => (fields, problem),
        },
        Err(bad) => {
            let column = match schema.names().get(bad.column) {
                Some(name) => format!("column {:?} ({})", name, bad.column + 1),
                None => format!("column {}", bad.column + 1),
            };
            let utf8 = format!("invalid UTF-8 in {column}");
            let problem = match count_problem {
                Some(count) => format!("{count}; {utf8}"),
                None => utf8,
            };
            (bad.lossy, problem)
        }
    };
    fields.truncate(expected);
    Item::Bad(BadRow {
        location: location.clone(),
        message: problem,
        partial: record(location, schema, fields),
    })
}

/// The record of decoded `fields`. Their ends are character boundaries by
/// construction; `None` would mean a bug in decoding, not in the file.
fn record(location: Location, schema: Arc<Schema>, fields: decode::Fields) -> Option<Record> {
    Record::from_text(location, schema, fields.text, fields.ends)
}
