//! From a raw row's bytes to attribute values: UTF-8 checked once per row on the
//! fast path, field by field only when something is wrong, so that a bad byte names
//! its column and the rest of the row is still kept (lossily) for the bad row.

use liaison_plugin_api::Value;

use crate::reader::RawRow;

/// A row whose bytes are not all valid UTF-8.
#[derive(Debug)]
pub(crate) struct Undecodable {
    /// Index of the first field that is not valid UTF-8.
    pub(crate) column: usize,
    /// Every field, invalid sequences replaced by U+FFFD.
    pub(crate) lossy: Vec<Value>,
}

/// Decodes every field of `row` as UTF-8.
pub(crate) fn fields(row: &RawRow<'_>) -> Result<Vec<Value>, Undecodable> {
    let (bytes, ends) = row.parts();
    if let Ok(text) = std::str::from_utf8(bytes) {
        // The whole row is valid; it splits into valid fields unless a field
        // boundary falls inside a character (e.g. `\xC3` then `\xA9`).
        if ends.iter().all(|&end| text.is_char_boundary(end)) {
            let mut start = 0;
            return Ok(ends
                .iter()
                .map(|&end| {
                    let field = &text[start..end];
                    start = end;
                    Value::One(field.to_owned())
                })
                .collect());
        }
    }
    let mut column = None;
    let lossy = row
        .fields()
        .enumerate()
        .map(|(i, field)| {
            if column.is_none() && std::str::from_utf8(field).is_err() {
                column = Some(i);
            }
            Value::One(String::from_utf8_lossy(field).into_owned())
        })
        .collect();
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
