//! From a raw row's bytes to attribute values: UTF-8 checked once per row on the
//! fast path, field by field only when something is wrong, so that a bad byte names
//! its column and the rest of the row is still kept (lossily) for the bad row.
//!
//! Windows-1250 files arrive here already transcoded to UTF-8. encoding_rs
//! (following the WHATWG index) turns the five bytes Windows-1250 leaves
//! undefined (0x81, 0x83, 0x88, 0x90, 0x98) into the C1 controls U+0081 …
//! U+0098 instead of failing; no defined byte maps to U+0080–U+009F, so a C1
//! control in the decoded text is exactly an undefined byte in the file.

use crate::reader::RawRow;
use crate::Encoding;

/// A row's fields as text: all of them one after the other, and where each ends
/// (what [`liaison_plugin_api::Record::from_text`] takes).
#[derive(Debug)]
pub(crate) struct Fields {
    pub(crate) text: String,
    pub(crate) ends: Vec<usize>,
}

impl Fields {
    /// Keeps the first `n` fields.
    pub(crate) fn truncate(&mut self, n: usize) {
        if n < self.ends.len() {
            self.ends.truncate(n);
            self.text.truncate(self.ends.last().copied().unwrap_or(0));
        }
    }
}

/// A row whose bytes are not all valid UTF-8.
#[derive(Debug)]
pub(crate) struct Undecodable {
    /// Index of the first field that is not valid UTF-8.
    pub(crate) column: usize,
    /// Every field, invalid sequences replaced by U+FFFD.
    pub(crate) lossy: Fields,
}

/// Decodes every field of `row` (read as `encoding`): one copy of the row, not
/// one string per field.
pub(crate) fn fields(row: &RawRow<'_>, encoding: Encoding) -> Result<Fields, Undecodable> {
    let (bytes, ends) = row.parts();
    if let Ok(text) = std::str::from_utf8(bytes) {
        // The whole row is valid; it splits into valid fields unless a field
        // boundary falls inside a character (e.g. `\xC3` then `\xA9`).
        if ends.iter().all(|&end| text.is_char_boundary(end)) && !undefined(bytes, encoding) {
            return Ok(Fields {
                text: text.to_owned(),
                ends: ends.to_vec(),
            });
        }
    }
    let mut column = None;
    let mut lossy = Fields {
        text: String::with_capacity(bytes.len()),
        ends: Vec::with_capacity(ends.len()),
    };
    for (i, field) in row.fields().enumerate() {
        let text = String::from_utf8_lossy(field);
        let bad = matches!(text, std::borrow::Cow::Owned(_)) || undefined(field, encoding);
        if column.is_none() && bad {
            column = Some(i);
        }
        match encoding {
            Encoding::Utf8 => lossy.text.push_str(&text),
            Encoding::Windows1250 => {
                lossy
                    .text
                    .extend(text.chars().map(|c| if is_c1(c) { '\u{FFFD}' } else { c }))
            }
        }
        lossy.ends.push(lossy.text.len());
    }
    Err(Undecodable {
        column: column.unwrap_or(0),
        lossy,
    })
}

/// Decodes a header row into trimmed column names; `Err` holds the index of the
/// first field that is not valid text in `encoding`.
pub(crate) fn header(row: &RawRow<'_>, encoding: Encoding) -> Result<Vec<String>, usize> {
    row.fields()
        .enumerate()
        .map(|(i, field)| match std::str::from_utf8(field) {
            Ok(name) if !undefined(field, encoding) => Ok(name.trim().to_owned()),
            _ => Err(i),
        })
        .collect()
}

/// Whether `bytes`, transcoded from `encoding`, hold a byte the encoding does
/// not define. Only Windows-1250 has such bytes; its check looks at each 0xC2
/// (the lead byte of U+0080–U+00BF) only.
fn undefined(bytes: &[u8], encoding: Encoding) -> bool {
    if encoding == Encoding::Utf8 {
        return false;
    }
    let mut rest = bytes;
    while let Some(at) = rest.iter().position(|&b| b == 0xC2) {
        if rest.get(at + 1).is_some_and(|b| (0x80..0xA0).contains(b)) {
            return true;
        }
        rest = &rest[at + 1..];
    }
    false
}

/// A C1 control character (U+0080–U+009F).
fn is_c1(c: char) -> bool {
    ('\u{80}'..='\u{9F}').contains(&c)
}
