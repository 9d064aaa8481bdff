//! Raw rows of one file: RFC 4180 parsing with `csv-core` over a buffered,
//! optionally transcoding reader, with the physical line of each row.
//!
//! We drive `csv-core` (the parser inside the `csv` crate) ourselves rather than
//! use `csv::Reader`, because exact line numbers need the bytes each record
//! consumed (see [`crate::lines`]). The field and end-offset buffers are reused
//! from row to row and never outgrow [`MAX_RECORD_BYTES`].
//!
//! csv-core never fails: at the end of the input it ends an open quoted field
//! there, so one stray quote would take the rest of the file as one field. We
//! probe the parser's state at the end (and at the length limit) and fail
//! instead. (Probing a clone is not an option: csv-core 0.1.13's `Clone` for
//! its DFA copies only the transition table, and the clone misparses.)

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use csv_core::ReadRecordResult;
use encoding_rs_io::DecodeReaderBytesBuilder;

use crate::lines::LineTracker;
use crate::{CsvConfig, Encoding, MAX_RECORD_BYTES};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const READ_BUFFER: usize = 64 * 1024;

/// One parsed row, borrowed from the reader's buffers until the next row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRow<'a> {
    /// Physical line where the row starts.
    pub(crate) line: u64,
    /// The fields' bytes, unquoted, one after the other.
    bytes: &'a [u8],
    /// Where each field ends in `bytes`.
    ends: &'a [usize],
}

impl<'a> RawRow<'a> {
    /// Number of fields.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The fields' bytes in order.
    pub(crate) fn fields(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let bytes = self.bytes;
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let field = &bytes[start..end];
            start = end;
            field
        })
    }

    /// All fields' bytes concatenated, and the end offsets.
    pub(crate) fn parts(&self) -> (&'a [u8], &'a [usize]) {
        (self.bytes, self.ends)
    }

    /// True when every field is empty or whitespace.
    pub(crate) fn is_blank(&self) -> bool {
        self.bytes.iter().all(u8::is_ascii_whitespace)
    }
}

/// What [`RowReader::next_row`] found.
#[derive(Debug)]
pub(crate) enum Next<'a> {
    /// A row.
    Row(RawRow<'a>),
    /// A row longer than [`MAX_RECORD_BYTES`], skipped up to the next line
    /// break; `complete` holds the fields read whole before the limit.
    TooLong {
        /// Physical line where the row starts.
        line: u64,
        /// The fields before the one that was cut.
        complete: RawRow<'a>,
    },
    /// The end of the file.
    End,
}

/// Why a file cannot be read on: every one ends the read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Reading the file failed.
    Io(io::Error),
    /// A quoted field is still open at the end of the file.
    Unterminated {
        /// Physical line where the field starts.
        line: u64,
    },
    /// A quoted field is still open after [`MAX_RECORD_BYTES`]: no line
    /// break can be trusted to end its record, so there is nowhere to resume.
    QuotedTooLong {
        /// Physical line where the field starts.
        line: u64,
    },
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Reads raw rows from one file.
pub(crate) struct RowReader {
    input: BufReader<Box<dyn Read + Send>>,
    parser: csv_core::Reader,
    quote: u8,
    fields: Vec<u8>,
    ends: Vec<usize>,
    lines: LineTracker,
    /// The line break fed at the end of the input was taken.
    fed_final_break: bool,
    done: bool,
}

impl RowReader {
    /// Opens `file`, decoding it as `config.encoding` and skipping a UTF-8 BOM.
    pub(crate) fn open(file: File, config: &CsvConfig) -> io::Result<Self> {
        let inner: Box<dyn Read + Send> = match config.encoding {
            // Raw bytes: fields are decoded one by one so that bad bytes make a bad
            // row, not a failed read.
            Encoding::Utf8 => Box::new(file),
            Encoding::Windows1250 => Box::new(
                DecodeReaderBytesBuilder::new()
                    .encoding(Some(encoding_rs::WINDOWS_1250))
                    .build(file),
            ),
        };
        Self::from_reader(inner, config)
    }

    /// Reads rows from any byte source, already in UTF-8 (or to be decoded
    /// field by field as UTF-8).
    pub(crate) fn from_reader(inner: Box<dyn Read + Send>, config: &CsvConfig) -> io::Result<Self> {
        let mut input = BufReader::with_capacity(READ_BUFFER, inner);
        skip_bom(&mut input)?;
        let parser = csv_core::ReaderBuilder::new()
            .delimiter(config.delimiter)
            .quote(config.quote)
            .build();
        Ok(RowReader {
            input,
            parser,
            quote: config.quote,
            fields: vec![0; 4 * 1024],
            ends: vec![0; 64],
            lines: LineTracker::new(),
            fed_final_break: false,
            done: false,
        })
    }

    /// The next row. At most [`MAX_RECORD_BYTES`] of the file are held for
    /// one row, so memory stays bounded whatever the file holds.
    pub(crate) fn next_row(&mut self) -> Result<Next<'_>, ReadError> {
        if self.done {
            return Ok(Next::End);
        }
        self.lines.begin_record();
        // `consumed`: bytes of this row so far (blank lines before it left out).
        let (mut nfields, mut nends, mut consumed) = (0, 0, 0);
        loop {
            let at_end = match self.input.fill_buf() {
                Ok(input) => input.is_empty(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.done = true;
                    return Err(e.into());
                }
            };
            // At the end of the file one line break is fed before the end
            // itself. Where csv-core would end an open quoted field at the end
            // (taking the rest of the file as one field), the break is copied
            // into the field instead, which tells us; in any other state it
            // ends the row exactly as the end of the file would.
            let final_break = at_end && !self.fed_final_break;
            let input: &[u8] = match final_break {
                true => b"\n",
                // One byte past the limit at most, to see it is passed.
                false => {
                    let buffered = self.input.buffer();
                    &buffered[..buffered.len().min(MAX_RECORD_BYTES + 1 - consumed)]
                }
            };
            let (result, nin, nout, nend) = self.parser.read_record(
                input,
                &mut self.fields[nfields..],
                &mut self.ends[nends..],
            );
            if final_break {
                // Not taken when a buffer was full: fed again once it grew.
                self.fed_final_break = nin == 1;
            } else {
                let before = self.lines.advance(&input[..nin]);
                self.input.consume(nin);
                consumed += nin - before;
            }
            nfields += nout;
            nends += nend;
            if final_break && nout == 1 && result == ReadRecordResult::InputEmpty {
                self.done = true;
                // The copied break is ours, not the file's.
                let line = self.open_field_line(nfields - 1, nends);
                return Err(ReadError::Unterminated { line });
            }
            match result {
                ReadRecordResult::Record => {
                    return Ok(Next::Row(RawRow {
                        line: self.lines.record_line(),
                        bytes: &self.fields[..nfields],
                        ends: &self.ends[..nends],
                    }));
                }
                ReadRecordResult::End => {
                    self.done = true;
                    return Ok(Next::End);
                }
                _ if consumed > MAX_RECORD_BYTES => return self.too_long(nfields, nends),
                ReadRecordResult::InputEmpty => {}
                // Neither buffer outgrows the limit: each holds at most one
                // entry per byte of the row, and the limit is checked first.
                ReadRecordResult::OutputFull => grow(&mut self.fields),
                ReadRecordResult::OutputEndsFull => grow(&mut self.ends),
            }
        }
    }

    /// The current row passed [`MAX_RECORD_BYTES`]: skips to the next line
    /// break (in bounded memory) unless a field opened with a quote is still
    /// going, where no line break can be trusted to end the row.
    fn too_long(&mut self, nfields: usize, nends: usize) -> Result<Next<'_>, ReadError> {
        // The row is given up, so the parser may be probed: fed a quote and a
        // line break, inside quotes it ends the row having copied nothing
        // (the quote closed the field), right after a quote inside quotes
        // (`""` half read, or the closing quote) it copies both; any other
        // state copies the quote or ends the row without it.
        let (mut out, mut ends) = ([0u8; 4], [0usize; 4]);
        let probe = [self.quote, b'\n'];
        let (result, _, nout, _) = self.parser.read_record(&probe, &mut out, &mut ends);
        self.parser.reset();
        let quoted = match result {
            ReadRecordResult::Record => nout == 0,
            _ => nout == 2,
        };
        if quoted {
            self.done = true;
            let line = self.open_field_line(nfields, nends);
            return Err(ReadError::QuotedTooLong { line });
        }
        let line = self.lines.record_line();
        self.skip_line()?;
        let end = match nends {
            0 => 0,
            n => self.ends.get(n - 1).map_or(0, |&e| e.min(nfields)),
        };
        Ok(Next::TooLong {
            line,
            complete: RawRow {
                line,
                bytes: &self.fields[..end],
                ends: &self.ends[..nends],
            },
        })
    }

    /// Consumes the rest of the current line, up to and including its break.
    fn skip_line(&mut self) -> io::Result<()> {
        loop {
            let input = match self.input.fill_buf() {
                Ok(input) => input,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            };
            if input.is_empty() {
                return Ok(());
            }
            let (n, found) = match input.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(at) => (at + 1, true),
                None => (input.len(), false),
            };
            self.lines.advance(&input[..n]);
            self.input.consume(n);
            if found {
                return Ok(());
            }
        }
    }

    /// The line where the last field read so far (the open one) starts: its
    /// content holds its line breaks as written.
    fn open_field_line(&self, nfields: usize, nends: usize) -> u64 {
        let start = match nends {
            0 => 0,
            n => self.ends.get(n - 1).copied().unwrap_or(0),
        };
        let open = self.fields.get(start..nfields).unwrap_or(&[]);
        self.lines.line_before(open)
    }
}

/// Doubles `buffer`, up to one entry per byte of the longest record.
fn grow<T: Copy + Default>(buffer: &mut Vec<T>) {
    let len = (buffer.len() * 2).min(MAX_RECORD_BYTES + 1);
    buffer.resize(len, T::default());
}

fn skip_bom(input: &mut BufReader<Box<dyn Read + Send>>) -> io::Result<()> {
    loop {
        match input.fill_buf() {
            Ok(buf) => {
                if buf.starts_with(UTF8_BOM) {
                    input.consume(UTF8_BOM.len());
                }
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}
