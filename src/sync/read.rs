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
pub enum SeenState {
    /// Same fingerprint as stored: nothing to do unless a sibling changed.
    Unchanged,
    /// New or changed: at this index of [`ReadResult::changed`].
    Changed(u32),
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

/// One contact id of the source: stored, read, or both. One map holds them
/// all, so a million unchanged contacts cost one lookup each.
#[derive(Debug, Clone)]
pub struct Contact {
    /// Its anchor in the store, if it has one.
    pub anchor: Option<Anchor>,
    /// How the read saw it; `None`: it was not read (it left the source).
    pub seen: Option<Seen>,
}

/// Contact ids of one source.
pub type ContactMap = HashMap<String, Contact, foldhash::fast::RandomState>;

/// The outcome of a complete read.
#[derive(Debug, Default)]
pub struct ReadResult {
    /// New and changed records. A record whose id later turned out duplicated
    /// stays here but is no longer named by a [`SeenState::Changed`]: use
    /// [`ReadResult::take_changed`].
    pub changed: Vec<ContactRecord>,
    /// Every contact id stored for the source or read now.
    pub contacts: ContactMap,
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
                    .and_then(|c| c.seen.as_ref())
                    .is_some_and(|s| s.state == SeenState::Changed(*i as u32))
            })
            .map(|(_, r)| r)
            .collect()
    }

    /// How contact `id` was read, if it was.
    pub fn seen(&self, id: &str) -> Option<&Seen> {
        self.contacts.get(id).and_then(|c| c.seen.as_ref())
    }

    /// Contact ids read in a state `wanted` accepts, with their anchors.
    pub fn read_as(
        &self,
        wanted: fn(SeenState) -> bool,
    ) -> impl Iterator<Item = (&str, Option<&Anchor>)> {
        self.contacts.iter().filter_map(move |(id, c)| {
            let seen = c.seen.as_ref()?;
            wanted(seen.state).then_some((id.as_str(), c.anchor.as_ref()))
        })
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

/// Reads the whole source, mapping every new or changed record; `anchors`
/// are the source's stored contacts, each with the fingerprint it was read with.
pub fn read_source(
    connector: &dyn Connector,
    mapping: &Mapping,
    anchors: Vec<(String, Anchor)>,
    max_bad_row_ratio: f64,
) -> Result<ReadResult, ReadFailure> {
    let stream = connector.read()?;
    let mut out = ReadResult::default();
    // Most of a big source is already anchored: size the map once.
    out.contacts.reserve(anchors.len() + anchors.len() / 8);
    out.contacts.extend(anchors.into_iter().map(|(id, anchor)| {
        let contact = Contact {
            anchor: Some(anchor),
            seen: None,
        };
        (id, contact)
    }));
    read_ahead(stream, |items| {
        for item in items {
            take_item(&mut out, item?, mapping);
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
    })
}

/// Items read ahead by this many at a time.
const BATCH: usize = 1024;

/// Runs `consume` over the items of `stream` while another thread produces
/// them: parsing a source and mapping its records each take one core.
fn read_ahead<T>(
    stream: liaison_plugin_api::ItemStream<'_>,
    consume: impl FnOnce(&mut dyn Iterator<Item = Result<Item, liaison_plugin_api::SourceError>>) -> T,
) -> T {
    std::thread::scope(|scope| {
        // A few batches in flight: enough to absorb jitter, little memory.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<_>>(4);
        scope.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            for item in stream {
                let failed = item.is_err();
                batch.push(item);
                if batch.len() == BATCH || failed {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    // The consumer stopped (it hit an error): stop reading too.
                    if tx.send(full).is_err() || failed {
                        return;
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
        });
        let mut items = rx.into_iter().flatten();
        consume(&mut items)
    })
}

/// Sorts one item into `out`.
fn take_item(out: &mut ReadResult, item: Item, mapping: &Mapping) {
    out.rows += 1;
    let (location, contact_id, state) = match item {
        Item::Record(record) => {
            // A record whose digest is stored maps to what is stored: skip mapping.
            let fingerprint = mapping.fingerprint(&record);
            if let Some(id) = mapping.contact_id_of(&record) {
                if let Some(c) = out.contacts.get_mut(&*id) {
                    let same = c
                        .anchor
                        .is_some_and(|a| a.linked && a.fingerprint == fingerprint);
                    if same && c.seen.is_none() {
                        c.seen = Some(Seen {
                            state: SeenState::Unchanged,
                            location: record.location,
                        });
                        return;
                    }
                }
            }
            match mapping.apply(&record) {
                Mapped::Skipped => return,
                Mapped::Contact(mut r) => {
                    r.fingerprint = fingerprint;
                    let id = r.contact_id.clone();
                    let at = out.changed.len() as u32;
                    out.changed.push(r);
                    (record.location, id, SeenState::Changed(at))
                }
                Mapped::Invalid {
                    contact_id,
                    message,
                } => match out.bad_row(record.location, contact_id, message) {
                    Some((location, id)) => (location, id, SeenState::Unreadable),
                    None => return,
                },
            }
        }
        Item::Bad(bad) => {
            let contact_id = bad
                .partial
                .as_ref()
                .and_then(|p| mapping.contact_id_of(p))
                .map(|id| id.into_owned());
            match out.bad_row(bad.location, contact_id, bad.message) {
                Some((location, id)) => (location, id, SeenState::Unreadable),
                None => return,
            }
        }
    };
    let mut entry = match out.contacts.entry(contact_id) {
        Entry::Occupied(e) => e,
        Entry::Vacant(e) => {
            e.insert(Contact {
                anchor: None,
                seen: Some(Seen { state, location }),
            });
            return;
        }
    };
    if entry.get().seen.is_none() {
        entry.get_mut().seen = Some(Seen { state, location });
        return;
    }
    // Two rows with one contact id: both are errors, the contact stays as it is.
    let id = entry.key().clone();
    let Some(first) = entry.get_mut().seen.as_mut() else {
        return;
    };
    let first_at = first.location.to_string();
    out.errors.push(RowError {
        location: location.to_string(),
        message: format!("duplicate contact id {id:?} (also at {first_at})"),
    });
    out.bad_rows += 1;
    if first.state != SeenState::Unreadable {
        out.errors.push(RowError {
            location: first_at,
            message: format!("duplicate contact id {id:?} (also at {location})"),
        });
        out.bad_rows += 1;
        first.state = SeenState::Unreadable;
    }
}

impl ReadResult {
    /// Reports a row that could not be read; returns its location and contact
    /// id when the id is known (the contact then counts as present).
    fn bad_row(
        &mut self,
        location: Location,
        contact_id: Option<String>,
        message: String,
    ) -> Option<(Location, String)> {
        self.bad_rows += 1;
        self.errors.push(RowError {
            location: location.to_string(),
            message,
        });
        contact_id.map(|id| (location, id))
    }
}
