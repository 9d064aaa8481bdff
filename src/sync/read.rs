//! Reading a source through its connector and mapping, sorting records into
//! unchanged, changed and unreadable, and judging whether the read is complete.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use liaison_plugin_api::{Connector, Item, Location};
use serde::Serialize;

use crate::mapping::{Mapped, Mapping};
use crate::model::ContactRecord;
use crate::store::Anchor;

/// A row that was reported and skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// Where: `file:line`, a DN, a CRM id.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

/// What happened to a contact id during the read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Same fingerprint as stored: nothing to do unless a sibling changed.
    Unchanged,
    /// New or changed: handed to the planner.
    Changed,
    /// Present but unreadable (bad row or duplicate id): kept as it is.
    Unreadable,
}

/// The outcome of a complete read.
#[derive(Debug, Default)]
pub struct ReadResult {
    /// New and changed records.
    pub changed: Vec<ContactRecord>,
    /// Contact ids whose rows could not be read (they keep their links).
    pub unreadable: Vec<String>,
    /// Contact ids whose records are identical to the stored ones.
    pub unchanged: Vec<String>,
    /// Where each contact id was read, for messages.
    pub locations: HashMap<String, Location>,
    /// Row errors, in read order.
    pub errors: Vec<RowError>,
    /// Rows read (good, bad and filtered out).
    pub rows: usize,
    /// Rows that could not be read.
    pub bad_rows: usize,
}

/// Why a read did not complete; nothing is applied.
#[derive(Debug, thiserror::Error)]
pub enum ReadFailure {
    /// The connector failed.
    #[error("{0}")]
    Source(#[from] liaison_plugin_api::SourceError),
    /// Too many bad rows for the read to count as complete.
    #[error("{bad} of {rows} rows could not be read ({:.1} %), more than the allowed {:.1} %", 100.0 * *bad as f64 / *rows as f64, 100.0 * limit)]
    TooManyBadRows {
        /// Bad rows.
        bad: usize,
        /// All rows.
        rows: usize,
        /// `max_bad_row_ratio`.
        limit: f64,
        /// The row errors, each with its location.
        errors: Vec<RowError>,
    },
}

/// Reads the whole source, mapping every record and comparing it with `anchors`.
pub fn read_source(
    connector: &dyn Connector,
    mapping: &Mapping,
    anchors: &HashMap<String, Anchor>,
    max_bad_row_ratio: f64,
) -> Result<ReadResult, ReadFailure> {
    let mut out = ReadResult::default();
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut changed_at: HashMap<String, usize> = HashMap::new();
    for item in connector.read()? {
        out.rows += 1;
        let (location, mapped) = match item? {
            Item::Record(record) => {
                let mapped = mapping.apply(&record);
                (record.location, mapped)
            }
            Item::Bad(bad) => {
                let contact_id = bad.partial.as_ref().and_then(|p| mapping.contact_id_of(p));
                (
                    bad.location,
                    Mapped::Invalid {
                        contact_id,
                        message: bad.message,
                    },
                )
            }
        };
        let (contact_id, record) = match mapped {
            Mapped::Skipped => continue,
            Mapped::Invalid {
                contact_id,
                message,
            } => {
                out.bad_rows += 1;
                out.errors.push(RowError {
                    location: location.to_string(),
                    message,
                });
                match contact_id {
                    Some(id) => (id, None),
                    None => continue,
                }
            }
            Mapped::Contact(r) => (r.contact_id.clone(), Some(r)),
        };
        match seen.entry(contact_id) {
            Entry::Occupied(mut e) => {
                // Two rows with one contact id: both are errors, the contact stays as it is.
                let first = out
                    .locations
                    .get(e.key())
                    .map(ToString::to_string)
                    .unwrap_or_default();
                out.errors.push(RowError {
                    location: location.to_string(),
                    message: format!("duplicate contact id {:?} (also at {first})", e.key()),
                });
                out.bad_rows += 1;
                if *e.get() != Seen::Unreadable {
                    out.errors.push(RowError {
                        location: first,
                        message: format!("duplicate contact id {:?} (also at {location})", e.key()),
                    });
                    out.bad_rows += 1;
                    e.insert(Seen::Unreadable);
                }
            }
            Entry::Vacant(e) => {
                let state = match record {
                    None => Seen::Unreadable,
                    Some(r) => {
                        let same = anchors
                            .get(&r.contact_id)
                            .is_some_and(|a| a.linked && a.fingerprint == r.fingerprint());
                        if same {
                            Seen::Unchanged
                        } else {
                            changed_at.insert(r.contact_id.clone(), out.changed.len());
                            out.changed.push(r);
                            Seen::Changed
                        }
                    }
                };
                out.locations.insert(e.key().clone(), location);
                e.insert(state);
            }
        }
    }
    if out.rows > 0 && out.bad_rows as f64 > max_bad_row_ratio * out.rows as f64 {
        return Err(ReadFailure::TooManyBadRows {
            bad: out.bad_rows,
            rows: out.rows,
            limit: max_bad_row_ratio,
            errors: out.errors,
        });
    }
    // Duplicates found after their first row was taken as changed: drop that record.
    let mut drop = vec![false; out.changed.len()];
    for (id, state) in seen {
        match state {
            Seen::Unchanged => out.unchanged.push(id),
            Seen::Unreadable => {
                if let Some(i) = changed_at.get(&id) {
                    drop[*i] = true;
                }
                out.unreadable.push(id);
            }
            Seen::Changed => {}
        }
    }
    if drop.iter().any(|d| *d) {
        let mut i = 0;
        out.changed.retain(|_| {
            i += 1;
            !drop[i - 1]
        });
    }
    out.unreadable.sort();
    Ok(out)
}
