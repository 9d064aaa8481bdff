//! Raw rows of one file: RFC 4180 parsing with `csv-core` over a buffered,
//! optionally transcoding reader, with the physical line of each row.
//!
//! We drive `csv-core` (the parser inside the `csv` crate) ourselves rather than
//! use `csv::Reader`, because exact line numbers need the bytes each record
//! consumed (see [`crate::lines`]). The field and end-offset buffers are reused
//! from row to row.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use csv_core::ReadRecordResult;
use encoding_rs_io::DecodeReaderBytesBuilder;

use crate::lines::LineTracker;
use crate::{CsvConfig, Encoding};

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

/// Reads raw rows from one file.
pub(crate) struct RowReader {
    input: BufReader<Box<dyn Read + Send>>,
    parser: csv_core::Reader,
    fields: Vec<u8>,
    ends: Vec<usize>,
    lines: LineTracker,
    done: bool,
}

impl RowReader {
    /// Opens `path`, decoding it as `config.encoding` and skipping a UTF-8 BOM.
    pub(crate) fn open(path: &Path, config: &CsvConfig) -> io::Result<Self> {
        let file = File::open(path)?;
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
            fields: vec![0; 4 * 1024],
            ends: vec![0; 64],
            lines: LineTracker::new(),
            done: false,
        })
    }

    /// The next row, or `None` at the end of the file.
    pub(crate) fn next_row(&mut self) -> io::Result<Option<RawRow<'_>>> {
        if self.done {
            return Ok(None);
        }
        self.lines.begin_record();
        let (mut nfields, mut nends) = (0, 0);
        loop {
            let input = match self.input.fill_buf() {
                Ok(input) => input,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            };
            let (result, nin, nout, nend) = self.parser.read_record(
                input,
                &mut self.fields[nfields..],
                &mut self.ends[nends..],
            );
            self.lines.advance(&input[..nin]);
            self.input.consume(nin);
            nfields += nout;
            nends += nend;
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    let len = self.fields.len();
                    self.fields.resize(len * 2, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let len = self.ends.len();
                    self.ends.resize(len * 2, 0);
                }
                ReadRecordResult::Record => {
                    return Ok(Some(RawRow {
                        line: self.lines.record_line(),
                        bytes: &self.fields[..nfields],
                        ends: &self.ends[..nends],
                    }));
                }
                ReadRecordResult::End => {
                    self.done = true;
                    return Ok(None);
                }
            }
        }
    }
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
