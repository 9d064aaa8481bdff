//! Reading a source through its connector and mapping, sorting records into
//! unchanged, changed and unreadable, and judging whether the read is complete.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use liaison_plugin_api::{Connector, Item, Location};
use serde::Serialize;

use crate::mapping::{Mapped, Mapping};
use crate::model::ContactRecord;
use crate::store::AnchorMap;

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
pub enum SeenState {
    /// Same fingerprint as stored: nothing to do unless a sibling changed.
    Unchanged,
    /// New or changed: at this index of [`ReadResult::changed`].
    Changed(usize),
    /// Present but unreadable (bad row or duplicate id): kept as it is.
    Unreadable,
}

/// A contact id that was read: how, and where (for messages).
#[derive(Debug, Clone)]
pub struct Seen {
    /// How it was read.
    pub state: SeenState,
    /// Where it was read first.
    pub location: Location,
}

/// The outcome of a complete read.
#[derive(Debug, Default)]
pub struct ReadResult {
    /// New and changed records. A record whose id later turned out duplicated
    /// stays here but is no longer named by a [`SeenState::Changed`]: use
    /// [`ReadResult::take_changed`].
    pub changed: Vec<ContactRecord>,
    /// Every contact id read, good or bad.
    pub contacts: HashMap<String, Seen, foldhash::fast::RandomState>,
    /// Row errors, in read order.
    pub errors: Vec<RowError>,
    /// Rows read (good, bad and filtered out).
    pub rows: usize,
    /// Rows that could not be read.
    pub bad_rows: usize,
}

impl ReadResult {
    /// Moves out the changed records that are still valid (not duplicated).
    pub fn take_changed(&mut self) -> Vec<ContactRecord> {
        let contacts = &self.contacts;
        std::mem::take(&mut self.changed)
            .into_iter()
            .enumerate()
            .filter(|(i, r)| {
                contacts
                    .get(&r.contact_id)
                    .is_some_and(|s| s.state == SeenState::Changed(*i))
            })
            .map(|(_, r)| r)
            .collect()
    }

    /// Contact ids in `state`.
    pub fn ids_in(&self, wanted: fn(SeenState) -> bool) -> impl Iterator<Item = &str> {
        self.contacts
            .iter()
            .filter(move |(_, s)| wanted(s.state))
            .map(|(id, _)| id.as_str())
    }
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
    anchors: &AnchorMap,
    max_bad_row_ratio: f64,
) -> Result<ReadResult, ReadFailure> {
    let mut out = ReadResult::default();
    // Most of a big source is already anchored: size the map once.
    out.contacts.reserve(anchors.len());
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
        match out.contacts.entry(contact_id) {
            Entry::Occupied(mut e) => {
                // Two rows with one contact id: both are errors, the contact stays as it is.
                let first = e.get().location.to_string();
                out.errors.push(RowError {
                    location: location.to_string(),
                    message: format!("duplicate contact id {:?} (also at {first})", e.key()),
                });
                out.bad_rows += 1;
                if e.get().state != SeenState::Unreadable {
                    out.errors.push(RowError {
                        location: first,
                        message: format!("duplicate contact id {:?} (also at {location})", e.key()),
                    });
                    out.bad_rows += 1;
                    e.get_mut().state = SeenState::Unreadable;
                }
            }
            Entry::Vacant(e) => {
                let state = match record {
                    None => SeenState::Unreadable,
                    Some(r) => {
                        let same = anchors
                            .get(&r.contact_id)
                            .is_some_and(|a| a.linked && a.fingerprint == r.fingerprint());
                        if same {
                            SeenState::Unchanged
                        } else {
                            out.changed.push(r);
                            SeenState::Changed(out.changed.len() - 1)
                        }
                    }
                };
                e.insert(Seen { state, location });
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
    Ok(out)
}
