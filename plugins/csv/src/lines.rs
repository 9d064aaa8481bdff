//! Physical line numbers, counted from the bytes the parser consumes.
//!
//! csv's own `Position::line()` is one too low for every record of a CRLF file
//! (BurntSushi/rust-csv#395) and drifts after blank lines (#208), and its byte
//! position points at the blank lines *before* a record. So we watch every byte
//! the parser consumes: a line break (`\n`, `\r\n`, or `\r` alone as old Mac
//! files write it) advances the line, and the first byte of a record that is not
//! a line break marks the line where the record starts. Quoted fields holding
//! line breaks are counted like any other byte, so the next record's line is
//! still right.

/// Tracks the physical (1-based) line of the parser's position and where the
/// current record started.
#[derive(Debug, Clone)]
pub(crate) struct LineTracker {
    /// Line of the next byte to be consumed, not counting `cr_pending`.
    line: u64,
    /// Line of the current record's first byte, once seen.
    start: Option<u64>,
    /// The last byte consumed was `\r`: a line break of its own unless the next
    /// byte is `\n` (then the pair is one break, counted at the `\n`).
    cr_pending: bool,
}

impl LineTracker {
    /// At the start of a file.
    pub(crate) fn new() -> Self {
        LineTracker {
            line: 1,
            start: None,
            cr_pending: false,
        }
    }

    /// A new record begins with the next consumed byte (after any line breaks).
    pub(crate) fn begin_record(&mut self) {
        self.start = None;
    }

    /// Accounts for bytes the parser consumed, in order. Returns how many of
    /// them came before the record's first byte (line breaks between records).
    pub(crate) fn advance(&mut self, consumed: &[u8]) -> usize {
        let Some(&first_byte) = consumed.first() else {
            return 0;
        };
        if std::mem::take(&mut self.cr_pending) && first_byte != b'\n' {
            self.line += 1;
        }
        if self.start.is_some() {
            self.count(consumed);
            return 0;
        }
        match consumed.iter().position(|&b| b != b'\n' && b != b'\r') {
            Some(first) => {
                // Up to and including the record's first byte, so that a `\r`
                // right before it is seen to stand alone.
                self.line += line_breaks(&consumed[..=first]);
                self.start = Some(self.line);
                self.count(&consumed[first..]);
                first
            }
            None => {
                self.count(consumed);
                consumed.len()
            }
        }
    }

    /// The line where the current record starts.
    pub(crate) fn record_line(&self) -> u64 {
        self.start.unwrap_or(self.line)
    }

    /// The line where `text` starts, when `text` holds the last bytes consumed
    /// as written (e.g. a quoted field's content: line breaks are copied as they
    /// are).
    pub(crate) fn line_before(&self, text: &[u8]) -> u64 {
        self.line.saturating_sub(line_breaks(text)).max(1)
    }

    fn count(&mut self, bytes: &[u8]) {
        self.line += line_breaks(bytes);
        self.cr_pending = bytes.last() == Some(&b'\r');
    }
}

/// Line breaks ending inside `bytes`: every `\n`, and every `\r` followed by
/// a byte other than `\n` (a `\r` at the very end is left to the caller).
fn line_breaks(bytes: &[u8]) -> u64 {
    let Some((&last, _)) = bytes.split_last() else {
        return 0;
    };
    let mut total = u64::from(last == b'\n');
    // Each byte against its successor, in blocks whose sums fit a u32: the
    // compiler vectorises this branch-free loop (measured: 124 MB of CSV in
    // ~60 ms, under the ~100 ms of a plain `\n` filter-count it replaces).
    for (bytes, next) in bytes.chunks(BLOCK).zip(bytes[1..].chunks(BLOCK)) {
        let mut breaks = 0u32;
        for (&b, &n) in bytes.iter().zip(next) {
            breaks += u32::from((b == b'\n') | ((b == b'\r') & (n != b'\n')));
        }
        total += u64::from(breaks);
    }
    total
}

/// Bytes summed at a time by [`line_breaks`].
const BLOCK: usize = 4096;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

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

    #[test]
    fn a_lone_cr_is_a_line_break_also_across_chunks() {
        let mut t = LineTracker::new();
        t.begin_record();
        t.advance(b"a\r");
        t.begin_record();
        t.advance(b"\r");
        t.advance(b"b");
        assert_eq!(t.record_line(), 3);
        t.begin_record();
        t.advance(b"\r");
        t.advance(b"\n");
        t.advance(b"c\r");
        assert_eq!(t.record_line(), 4);
        assert_eq!(t.line_before(b"x\ry"), 3);
    }

    /// Lines as an editor counts them: split at `\r\n`, `\n` or `\r`.
    fn model_line_of(text: &[u8], offset: usize) -> u64 {
        let before = &text[..offset];
        let mut line = 1;
        let mut i = 0;
        while i < before.len() {
            match before[i] {
                b'\n' => line += 1,
                b'\r' if text.get(i + 1) != Some(&b'\n') => line += 1,
                _ => {}
            }
            i += 1;
        }
        line
    }

    proptest! {
        #[test]
        fn lines_match_an_editor_whatever_the_chunking(
            text in proptest::collection::vec(prop_oneof![
                Just(b'\n'), Just(b'\r'), Just(b'x')
            ], 0..200),
            cuts in proptest::collection::vec(0usize..200, 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= text.len()).collect();
            cuts.push(0);
            cuts.push(text.len());
            cuts.sort_unstable();
            let mut t = LineTracker::new();
            t.begin_record();
            for w in cuts.windows(2) {
                t.advance(&text[w[0]..w[1]]);
            }
            match text.iter().position(|&b| b == b'x') {
                Some(first) => prop_assert_eq!(t.record_line(), model_line_of(&text, first)),
                // A final `\r` waits for the next byte: `\n` would join it.
                None if text.last() == Some(&b'\r') => {}
                None => prop_assert_eq!(t.record_line(), model_line_of(&text, text.len())),
            }
        }
    }
}
