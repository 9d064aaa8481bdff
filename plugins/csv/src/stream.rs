//! The item stream of one read: the files one after the other, each with its own
//! header and schema, every row turned into a record or a bad row.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use liaison_plugin_api::{BadRow, Item, Location, Record, Schema, SourceError};

use crate::reader::{Next, RawRow, ReadError, RowReader};
use crate::{decode, CsvConfig, Encoding, MAX_RECORD_BYTES};

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
    /// Opens `path` if it is a regular file (after symlinks): a device such as
    /// `/dev/zero`, a FIFO or a directory is refused before it is read.
    fn open(path: PathBuf, config: &CsvConfig) -> Result<Self, SourceError> {
        let file: Arc<str> = path.display().to_string().into();
        let io_error = |source| SourceError::Io {
            what: file.to_string(),
            source,
        };
        // Checked before opening (opening a FIFO waits for a writer) and again
        // on what was opened, in case the path changed in between.
        check_regular(&file, &std::fs::metadata(&path).map_err(io_error)?)?;
        let opened = File::open(&path).map_err(io_error)?;
        check_regular(&file, &opened.metadata().map_err(io_error)?)?;
        let reader = RowReader::open(opened, config).map_err(io_error)?;
        Ok(FileRows {
            reader,
            file,
            schema: None,
        })
    }

    fn next_item(&mut self, config: &CsvConfig) -> Result<Option<Item>, SourceError> {
        loop {
            let row = match self.reader.next_row() {
                Ok(Next::Row(row)) => row,
                Ok(Next::TooLong { line, complete }) => {
                    match too_long(&self.file, &mut self.schema, config, line, &complete)? {
                        Some(item) => return Ok(Some(item)),
                        None => continue,
                    }
                }
                Ok(Next::End) => return Ok(None),
                Err(e) => return Err(read_error(&self.file, e)),
            };
            if row.is_blank() {
                continue;
            }
            let schema = match &self.schema {
                Some(schema) => Arc::clone(schema),
                None => {
                    let schema = Arc::new(Schema::new(names(&self.file, config, &row)?));
                    self.schema = Some(Arc::clone(&schema));
                    if config.header {
                        continue;
                    }
                    schema
                }
            };
            return Ok(Some(to_item(&row, schema, &self.file, config.encoding)));
        }
    }
}

/// The column names of `file`, from the config or from `row`, its first row.
fn names(file: &str, config: &CsvConfig, row: &RawRow<'_>) -> Result<Vec<String>, SourceError> {
    let at = |message: String| SourceError::Invalid(format!("{file}:{}: {message}", row.line));
    match (&config.columns, config.header) {
        (Some(columns), _) => Ok(columns.clone()),
        (None, true) => {
            let names = decode::header(row, config.encoding).map_err(|column| {
                let encoding = encoding_name(config.encoding);
                at(format!(
                    "header row is not valid {encoding} (column {})",
                    column + 1
                ))
            })?;
            match first_duplicate(&names) {
                Some((first, second)) => Err(at(format!(
                    "duplicate column name {:?} in the header row (columns {} and {})",
                    names[second],
                    first + 1,
                    second + 1
                ))),
                None => Ok(names),
            }
        }
        (None, false) => Ok((1..=row.len()).map(|i| format!("col{i}")).collect()),
    }
}

/// A row of `file` longer than the limit: a bad row keeping the fields read
/// whole before it. A header row that long fails the read, unless `columns`
/// name the fields (the header row is then skipped anyway).
fn too_long(
    file: &Arc<str>,
    schema: &mut Option<Arc<Schema>>,
    config: &CsvConfig,
    line: u64,
    complete: &RawRow<'_>,
) -> Result<Option<Item>, SourceError> {
    let location = Location::Line {
        file: Arc::clone(file),
        line,
    };
    let partial = match (schema.as_ref(), &config.columns, config.header) {
        (Some(schema), _, _) => {
            let fields = match decode::fields(complete, config.encoding) {
                Ok(fields) => fields,
                Err(bad) => bad.lossy,
            };
            record(
                location.clone(),
                Arc::clone(schema),
                cut(fields, schema.len()),
            )
        }
        (None, None, true) => {
            return Err(SourceError::Invalid(format!(
                "{file}:{line}: the header row is longer than {MAX_RECORD_BYTES} bytes"
            )));
        }
        (None, Some(columns), true) => {
            *schema = Some(Arc::new(Schema::new(columns.clone())));
            return Ok(None);
        }
        // No header: the next row that fits fixes the schema.
        (None, _, false) => None,
    };
    Ok(Some(Item::Bad(BadRow {
        location,
        message: format!("the row is longer than {MAX_RECORD_BYTES} bytes"),
        partial,
        key: None,
    })))
}

/// Refuses anything but a regular file.
fn check_regular(file: &str, metadata: &std::fs::Metadata) -> Result<(), SourceError> {
    if metadata.is_file() {
        return Ok(());
    }
    let kind = if metadata.is_dir() {
        "a directory"
    } else {
        "a device, FIFO or socket"
    };
    Err(SourceError::Invalid(format!(
        "{file}: not a regular file ({kind}); a CSV source reads regular files only"
    )))
}

/// The read error of `file` as the connector reports it.
fn read_error(file: &str, e: ReadError) -> SourceError {
    match e {
        ReadError::Io(source) => SourceError::Io {
            what: file.to_owned(),
            source,
        },
        ReadError::Unterminated { line } => SourceError::Invalid(format!(
            "{file}:{line}: unterminated quoted field: the quote opened here is never \
             closed (a stray quote?); nothing after it can be trusted"
        )),
        ReadError::QuotedTooLong { line } => SourceError::Invalid(format!(
            "{file}:{line}: quoted field still open after {MAX_RECORD_BYTES} bytes (a stray \
             quote?); nothing after it can be trusted"
        )),
    }
}

/// Positions of the first name repeated in `names` (empty names, as trailing
/// delimiters give, name nothing and may repeat).
fn first_duplicate(names: &[String]) -> Option<(usize, usize)> {
    let mut seen = std::collections::HashMap::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            continue;
        }
        if let Some(&first) = seen.get(name.as_str()) {
            return Some((first, i));
        }
        seen.insert(name.as_str(), i);
    }
    None
}

fn encoding_name(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Utf8 => "UTF-8",
        Encoding::Windows1250 => "Windows-1250",
    }
}

/// `fields` cut to the first `n`.
fn cut(mut fields: decode::Fields, n: usize) -> decode::Fields {
    fields.truncate(n);
    fields
}

/// A record when the row decodes and has one field per column, else a bad row
/// keeping what could be read (lossily decoded, cut to the schema).
fn to_item(row: &RawRow<'_>, schema: Arc<Schema>, file: &Arc<str>, encoding: Encoding) -> Item {
    let location = Location::Line {
        file: Arc::clone(file),
        line: row.line,
    };
    let expected = schema.len();
    let found = row.len();
    let count_problem =
        (found != expected).then(|| format!("expected {expected} fields, found {found}"));
    let (mut fields, problem) = match decode::fields(row, encoding) {
        Ok(fields) => match count_problem {
            None => {
                return match record(location.clone(), schema, fields) {
                    Some(record) => Item::Record(record),
                    None => Item::Bad(BadRow {
                        location,
                        message: "the row could not be split into fields".to_owned(),
                        partial: None,
                        key: None,
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
            let undecodable = match encoding {
                Encoding::Utf8 => format!("invalid UTF-8 in {column}"),
                Encoding::Windows1250 => format!("undefined Windows-1250 byte in {column}"),
            };
            let problem = match count_problem {
                Some(count) => format!("{count}; {undecodable}"),
                None => undecodable,
            };
            (bad.lossy, problem)
        }
    };
    fields.truncate(expected);
    Item::Bad(BadRow {
        location: location.clone(),
        message: problem,
        partial: record(location, schema, fields),
        key: None,
    })
}

/// The record of decoded `fields`. Their ends are character boundaries by
/// construction; `None` would mean a bug in decoding, not in the file.
fn record(location: Location, schema: Arc<Schema>, fields: decode::Fields) -> Option<Record> {
    Record::from_text(location, schema, fields.text, fields.ends)
}
