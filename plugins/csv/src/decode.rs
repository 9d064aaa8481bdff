//! From a raw row's bytes to attribute values: UTF-8 checked once per row on the
//! fast path, field by field only when something is wrong, so that a bad byte names
//! its column and the rest of the row is still kept (lossily) for the bad row.

use crate::reader::RawRow;

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

/// Decodes every field of `row` as UTF-8: one copy of the row, not one
/// string per field.
pub(crate) fn fields(row: &RawRow<'_>) -> Result<Fields, Undecodable> {
    let (bytes, ends) = row.parts();
    if let Ok(text) = std::str::from_utf8(bytes) {
        // The whole row is valid; it splits into valid fields unless a field
        // boundary falls inside a character (e.g. `\xC3` then `\xA9`).
        if ends.iter().all(|&end| text.is_char_boundary(end)) {
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
        if column.is_none() && std::str::from_utf8(field).is_err() {
            column = Some(i);
        }
        lossy.text.push_str(&String::from_utf8_lossy(field));
        lossy.ends.push(lossy.text.len());
    }
    Err(Undecodable {
        column: column.unwrap_or(0),
        lossy,
    })
}

/// Decodes a header row into trimmed column names; `Err` holds the index of the
/// first field that is not valid UTF-8.
pub(crate) fn header(row: &RawRow<'_>) -> Result<Vec<String>, usize> {
    row.fields()
        .enumerate()
        .map(|(i, field)| {
            std::str::from_utf8(field)
                .map(|name| name.trim().to_owned())
                .map_err(|_| i)
        })
        .collect()
}
