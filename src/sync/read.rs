//! Reading a source through its connector and mapping, sorting records into
//! unchanged, changed and unreadable, and judging whether the read is complete.

use std::collections::HashMap;
use std::hash::BuildHasher;

use hashbrown::HashTable;

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
#[derive(Default)]
pub struct ReadResult {
    /// New and changed records. A record whose id later turned out duplicated
    /// stays here but no longer counts: use [`ReadResult::take_changed`].
    pub changed: Vec<ContactRecord>,
    /// Where each record of `changed` was read.
    changed_at: Vec<Location>,
    /// The hash of each changed record's id: finds it once the records moved on.
    changed_hash: Vec<u64>,
    /// The source's stored contacts, and ids read that are not clean new records.
    pub contacts: ContactMap,
    /// Ids read first as clean new records: indexes into `changed`, found by
    /// the record's own id, so a million new contacts cost 4 bytes each here.
    fresh: HashTable<u32>,
    /// Row errors, in read order.
    pub errors: Vec<RowError>,
    /// Rows read (good, bad and filtered out).
    pub rows: usize,
    /// Rows that could not be read.
    pub bad_rows: usize,
}

impl std::fmt::Debug for ReadResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadResult")
            .field("changed", &self.changed.len())
            .field("contacts", &self.contacts.len())
            .field("fresh", &self.fresh.len())
            .field("errors", &self.errors)
            .field("rows", &self.rows)
            .field("bad_rows", &self.bad_rows)
            .finish()
    }
}

impl ReadResult {
    /// Moves out the changed records that are still valid (not duplicated).
    pub fn take_changed(&mut self) -> Vec<ContactRecord> {
        let changed = std::mem::take(&mut self.changed);
        let valid: Vec<bool> = changed
            .iter()
            .enumerate()
            .map(|(i, r)| {
                self.state_of(r.contact_id(), &changed) == Some(SeenState::Changed(i as u32))
            })
            .collect();
        let mut valid = valid.into_iter();
        let mut changed = changed;
        changed.retain(|_| valid.next().unwrap_or(false));
        changed
    }

    fn hash(&self, id: &str) -> u64 {
        self.contacts.hasher().hash_one(id)
    }

    /// The index in `changed` of fresh id `id`. Once the records are taken,
    /// ids are told apart by their 64-bit hashes (used for messages only).
    fn fresh_index(&self, id: &str, changed: &[ContactRecord]) -> Option<u32> {
        let hash = self.hash(id);
        let found = self.fresh.find(hash, |&i| match changed.get(i as usize) {
            Some(r) => r.contact_id() == id,
            None => changed.is_empty() && self.changed_hash.get(i as usize) == Some(&hash),
        });
        found.copied()
    }

    fn state_of(&self, id: &str, changed: &[ContactRecord]) -> Option<SeenState> {
        match self.contacts.get(id) {
            Some(c) => c.seen.as_ref().map(|s| s.state),
            None => self.fresh_index(id, changed).map(SeenState::Changed),
        }
    }

    /// How contact `id` was read, and where, if it was.
    pub fn seen(&self, id: &str) -> Option<(SeenState, &Location)> {
        if let Some(c) = self.contacts.get(id) {
            return c.seen.as_ref().map(|s| (s.state, &s.location));
        }
        let i = self.fresh_index(id, &self.changed)?;
        Some((SeenState::Changed(i), self.changed_at.get(i as usize)?))
    }

    /// Contact ids read in a state `wanted` accepts, with their anchors. New
    /// ids read cleanly ([`SeenState::Changed`] without an anchor) are listed
    /// only until [`ReadResult::take_changed`] moves their records out.
    pub fn read_as(
        &self,
        wanted: fn(SeenState) -> bool,
    ) -> impl Iterator<Item = (&str, Option<&Anchor>)> {
        let known = self.contacts.iter().filter_map(move |(id, c)| {
            let seen = c.seen.as_ref()?;
            wanted(seen.state).then_some((id.as_str(), c.anchor.as_ref()))
        });
        let fresh = self.fresh.iter().filter_map(move |&i| {
            let r = self.changed.get(i as usize)?;
            wanted(SeenState::Changed(i)).then_some((r.contact_id(), None))
        });
        known.chain(fresh)
    }

    /// Notes that contact `id` was read in `state` at `location`; a second
    /// sighting of one id makes both rows errors and the contact unreadable.
    fn see(&mut self, id: &str, state: SeenState, location: Location) {
        if let Some(first) = self.fresh_index(id, &self.changed) {
            // Seen before as a clean new record: it moves to the map to be judged.
            let hash = self.hash(id);
            if let Ok(entry) = self.fresh.find_entry(hash, |&i| i == first) {
                entry.remove();
            }
            let at = self.changed_at.get(first as usize).cloned();
            if let Some(at) = at {
                let seen = Seen {
                    state: SeenState::Changed(first),
                    location: at,
                };
                let contact = Contact {
                    anchor: None,
                    seen: Some(seen),
                };
                self.contacts.insert(id.to_owned(), contact);
            }
        }
        let Some(contact) = self.contacts.get_mut(id) else {
            match state {
                SeenState::Changed(i) => {
                    let hash = self.hash(id);
                    let changed = &self.changed;
                    let hasher = self.contacts.hasher();
                    self.fresh.insert_unique(hash, i, |&j| {
                        changed
                            .get(j as usize)
                            .map_or(0, |r| hasher.hash_one(r.contact_id()))
                    });
                }
                _ => {
                    let seen = Some(Seen { state, location });
                    self.contacts
                        .insert(id.to_owned(), Contact { anchor: None, seen });
                }
            }
            return;
        };
        let Some(first) = contact.seen.as_mut() else {
            contact.seen = Some(Seen { state, location });
            return;
        };
        // Two rows with one contact id: both are errors, the contact stays as it is.
        let first_at = first.location.to_string();
        let first_ok = first.state != SeenState::Unreadable;
        first.state = SeenState::Unreadable;
        self.errors.push(RowError {
            location: location.to_string(),
            message: format!("duplicate contact id {id:?} (also at {first_at})"),
        });
        self.bad_rows += 1;
        if first_ok {
            self.errors.push(RowError {
                location: first_at,
                message: format!("duplicate contact id {id:?} (also at {location})"),
            });
            self.bad_rows += 1;
        }
    }

    /// Reports a row that could not be read; notes its id when it is known
    /// (the contact then counts as present and keeps its links).
    fn bad_row(&mut self, location: Location, contact_id: Option<&str>, message: String) {
        self.bad_rows += 1;
        self.errors.push(RowError {
            location: location.to_string(),
            message,
        });
        if let Some(id) = contact_id {
            self.see(id, SeenState::Unreadable, location);
        }
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
    // The producer also digests each record: hashing is half of what an
    // unchanged row costs, and the consumer is the busier thread.
    let digest = |item: &Item| match item {
        Item::Record(record) => mapping.fingerprint(record),
        Item::Bad(_) => 0,
    };
    read_ahead(stream, digest, |items| {
        for item in items {
            let (item, fingerprint) = item?;
            take_item(&mut out, item, fingerprint, mapping);
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

/// An item read ahead, with what the producer computed for it.
type Prepared = Result<(Item, u64), liaison_plugin_api::SourceError>;

/// Runs `consume` over the items of `stream` while another thread produces
/// them (and applies `prepare` to each): parsing a source and mapping its
/// records each take one core.
fn read_ahead<T>(
    stream: liaison_plugin_api::ItemStream<'_>,
    prepare: impl Fn(&Item) -> u64 + Send,
    consume: impl FnOnce(&mut dyn Iterator<Item = Prepared>) -> T,
) -> T {
    std::thread::scope(|scope| {
        // A few batches in flight: enough to absorb jitter, little memory.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<_>>(4);
        scope.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            for item in stream {
                let failed = item.is_err();
                batch.push(item.map(|item| {
                    let prepared = prepare(&item);
                    (item, prepared)
                }));
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
/// `fingerprint` is the record's [`Mapping::fingerprint`].
fn take_item(out: &mut ReadResult, item: Item, fingerprint: u64, mapping: &Mapping) {
    out.rows += 1;
    match item {
        Item::Record(record) => {
            // A record whose digest is stored maps to what is stored: skip mapping.
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
                Mapped::Skipped => {}
                Mapped::Contact(mut r) => {
                    r.fingerprint = fingerprint;
                    let at = out.changed.len() as u32;
                    out.changed.push(r);
                    out.changed_at.push(record.location.clone());
                    let id = out.changed[at as usize].contact_id().to_owned();
                    out.changed_hash.push(out.hash(&id));
                    out.see(&id, SeenState::Changed(at), record.location);
                }
                Mapped::Invalid {
                    contact_id,
                    message,
                } => out.bad_row(record.location, contact_id.as_deref(), message),
            }
        }
        Item::Bad(bad) => {
            let contact_id = bad.partial.as_ref().and_then(|p| mapping.contact_id_of(p));
            out.bad_row(bad.location, contact_id.as_deref(), bad.message);
        }
    }
}
