//! Physical line numbers, counted from the bytes the parser consumes.
//!
//! csv's own `Position::line()` is one too low for every record of a CRLF file
//! (BurntSushi/rust-csv#395) and drifts after blank lines (#208), and its byte
//! position points at the blank lines *before* a record. So we watch every byte
//! the parser consumes: `\n` advances the line, and the first byte of a record
//! that is not a line break marks the line where the record starts. Quoted fields
//! holding line breaks are counted like any other byte, so the next record's line
//! is still right.

/// Tracks the physical (1-based) line of the parser's position and where the
/// current record started.
#[derive(Debug, Clone)]
pub(crate) struct LineTracker {
    /// Line of the next byte to be consumed.
    line: u64,
    /// Line of the current record's first byte, once seen.
    start: Option<u64>,
}

impl LineTracker {
    /// At the start of a file.
    pub(crate) fn new() -> Self {
        LineTracker {
            line: 1,
            start: None,
        }
    }

    /// A new record begins with the next consumed byte (after any line breaks).
    pub(crate) fn begin_record(&mut self) {
        self.start = None;
    }

    /// Accounts for bytes the parser consumed, in order.
    pub(crate) fn advance(&mut self, consumed: &[u8]) {
        let mut rest = consumed;
        if self.start.is_none() {
            match rest.iter().position(|&b| b != b'\n' && b != b'\r') {
                Some(first) => {
                    self.line += count_newlines(&rest[..first]);
                    self.start = Some(self.line);
                    rest = &rest[first..];
                }
                None => {
                    self.line += count_newlines(rest);
                    return;
                }
            }
        }
        self.line += count_newlines(rest);
    }

    /// The line where the current record starts.
    pub(crate) fn record_line(&self) -> u64 {
        self.start.unwrap_or(self.line)
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    // A plain filter-count: the compiler vectorises it, which is what matters here.
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_start_skips_leading_line_breaks_split_across_chunks() {
        let mut t = LineTracker::new();
        t.begin_record();
        t.advance(b"a,b\r");
        assert_eq!(t.record_line(), 1);
        t.begin_record();
        t.advance(b"\n\r");
        t.advance(b"\n\nc,\"x\ny\"\n");
        assert_eq!(t.record_line(), 4);
        t.begin_record();
        t.advance(b"d\n");
        assert_eq!(t.record_line(), 6);
    }
}
