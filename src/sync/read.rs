//! Reading a source through its connector and mapping, sorting records into
//! unchanged, changed, unreadable and left, and judging whether the read is
//! complete (SPEC §2 "Full reads, change reads and cursors").
//!
//! A full read starts from every stored anchor of the source: what it does not
//! return has left. A changes read starts from none and looks up only the
//! anchors its items name, a batch at a time ([`AnchorLookup`]); what it does
//! not mention stays as it is, and a key it repeats (paging by modification
//! time does) keeps its last reading.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::mpsc::{sync_channel, Receiver};

use hashbrown::HashTable;

use liaison_plugin_api::{
    Connector, Cursor, Item, Location, ReadContext, ReadEnd, ReadMode, ReadRequest, SourceError,
};
use serde::Serialize;

use super::cancel::Cancel;
use crate::config::Ratio;
use crate::mapping::{Mapped, Mapping};
use crate::model::ContactRecord;
use crate::store::{Anchor, StoreError};

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
    /// Left the source, said explicitly: a deletion, or a changes read's
    /// record that `when:` now leaves out.
    Left,
}

/// A contact id that was read: how, and where (for messages).
#[derive(Debug, Clone)]
pub struct Seen {
    /// How it was read.
    pub state: SeenState,
    /// Where it was read first.
    pub location: Location,
}

/// A source's stored contacts, fixed for the duration of a read: each id has
/// a slot that numbers its anchor here and its sighting in the read's result.
/// The ids live in one string (a million contacts: four allocations, not a
/// million), in the order the store listed them.
#[derive(Default)]
pub struct StoredContacts {
    /// Every id, one after the other.
    ids: String,
    /// Where each slot's id ends in `ids`.
    ends: Vec<usize>,
    /// Slots, found by their ids.
    index: HashTable<u32>,
    anchors: Vec<Anchor>,
    hasher: foldhash::fast::RandomState,
    /// Every record counts as changed: the plan settings changed since the
    /// stored digests were made ([`StoredContacts::replan_all`]).
    replan: bool,
}

impl StoredContacts {
    /// Adds stored contact `id` (ids are unique per source in the store).
    pub fn push(&mut self, id: &str, anchor: Anchor) {
        let slot = self.anchors.len() as u32;
        self.ids.push_str(id);
        self.ends.push(self.ids.len());
        self.anchors.push(anchor);
        let hash = self.hasher.hash_one(id);
        let (ids, ends, hasher) = (&self.ids, &self.ends, &self.hasher);
        self.index
            .insert_unique(hash, slot, |&s| hasher.hash_one(id_in(ids, ends, s)));
    }

    /// Makes every record of the read count as changed, so that it is mapped
    /// and planned again once, whatever its stored digests say.
    pub fn replan_all(&mut self) {
        self.replan = true;
    }

    /// How many contacts are stored.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// True when the source has no stored contacts.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// The slot of stored contact `id`.
    fn slot(&self, id: &str) -> Option<u32> {
        if self.index.is_empty() {
            return None;
        }
        let hash = self.hasher.hash_one(id);
        self.index.find(hash, |&s| self.id(s) == id).copied()
    }

    /// The id in `slot`.
    fn id(&self, slot: u32) -> &str {
        id_in(&self.ids, &self.ends, slot)
    }

    /// The anchor in `slot`.
    fn anchor(&self, slot: u32) -> Option<&Anchor> {
        self.anchors.get(slot as usize)
    }
}

/// The id in `slot` of ids laid out as in [`StoredContacts`].
fn id_in<'a>(ids: &'a str, ends: &[usize], slot: u32) -> &'a str {
    let slot = slot as usize;
    let start = match slot {
        0 => 0,
        _ => ends.get(slot - 1).copied().unwrap_or(0),
    };
    let end = ends.get(slot).copied().unwrap_or(start);
    ids.get(start..end).unwrap_or("")
}

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
    /// The source's stored contacts.
    known: StoredContacts,
    /// How each stored contact was read, by slot; `None`: it left the source.
    seen: Vec<Option<Seen>>,
    /// Ids without an anchor read as anything but a clean new record.
    others: HashMap<String, Seen, foldhash::fast::RandomState>,
    /// Ids without an anchor read first as clean new records: indexes into
    /// `changed`, found by the record's own id (4 bytes a contact).
    fresh: HashTable<u32>,
    /// Stored contacts whose rows changed but map to the contact as stored:
    /// by slot, with the new digest.
    renewed: Vec<(u32, u64)>,
    /// Row errors, in read order.
    pub errors: Vec<RowError>,
    /// Rows read (good, bad and filtered out).
    pub rows: usize,
    /// Rows that could not be read (bad rows and duplicated ids), each
    /// counted once: never more than `rows`.
    pub bad_rows: usize,
    /// Deletions read (changes reads only).
    pub deletions: usize,
    /// How the read ended: the mode delivered and the cursor to store.
    end: Option<ReadEnd>,
    /// A changes read was asked for: a repeated key keeps its last reading.
    keep_last: bool,
}

impl std::fmt::Debug for ReadResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadResult")
            .field("changed", &self.changed.len())
            .field("known", &self.known.len())
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
        let mut changed = std::mem::take(&mut self.changed);
        // Valid: a record still indexed as its id's reading. (A duplicated id
        // was marked unreadable and left the fresh index.)
        let mut valid = vec![false; changed.len()];
        let indexed = self
            .fresh
            .iter()
            .copied()
            .chain(
                self.seen
                    .iter()
                    .flatten()
                    .filter_map(|seen| match seen.state {
                        SeenState::Changed(i) => Some(i),
                        _ => None,
                    }),
            );
        for i in indexed {
            if let Some(v) = valid.get_mut(i as usize) {
                *v = true;
            }
        }
        let mut valid = valid.into_iter();
        changed.retain(|_| valid.next().unwrap_or(false));
        changed
    }

    fn hash(&self, id: &str) -> u64 {
        self.others.hasher().hash_one(id)
    }

    /// The index in `changed` of fresh id `id`. Once the records are taken,
    /// ids are told apart by their 64-bit hashes (used for messages only).
    fn fresh_index(&self, id: &str, changed: &[ContactRecord]) -> Option<u32> {
        self.fresh_index_hashed(id, self.hash(id), changed)
    }

    /// [`ReadResult::fresh_index`] with the id's hash at hand.
    fn fresh_index_hashed(&self, id: &str, hash: u64, changed: &[ContactRecord]) -> Option<u32> {
        let found = self.fresh.find(hash, |&i| match changed.get(i as usize) {
            Some(r) => r.contact_id() == id,
            None => changed.is_empty() && self.changed_hash.get(i as usize) == Some(&hash),
        });
        found.copied()
    }

    /// Whether the read found stored contacts of the source (all of them for a
    /// full read, those it named for a changes read).
    pub fn has_stored_contacts(&self) -> bool {
        !self.known.is_empty()
    }

    /// The mode the connector delivered (a complete read always says).
    pub fn delivered(&self) -> ReadMode {
        self.end.as_ref().map_or(ReadMode::Full, |e| e.mode)
    }

    /// The cursor the read ended with, to store when its run applies.
    pub fn cursor(&self) -> Option<&Cursor> {
        self.end.as_ref().and_then(|e| e.cursor.as_ref())
    }

    /// Whether stored contact `id`, not among the read's changed records, is
    /// still in the source: read unchanged, or (in a changes read) not
    /// mentioned at all.
    pub fn still_present(&self, id: &str) -> bool {
        match self.seen(id) {
            Some((state, _)) => state == SeenState::Unchanged,
            None => self.delivered() == ReadMode::Changes,
        }
    }

    /// The stored anchor of contact `id`, if it has one.
    pub fn anchor(&self, id: &str) -> Option<Anchor> {
        self.known.anchor(self.known.slot(id)?).copied()
    }

    /// How contact `id` was read, and where, if it was.
    pub fn seen(&self, id: &str) -> Option<(SeenState, &Location)> {
        if let Some(slot) = self.known.slot(id) {
            let seen = self.seen.get(slot as usize)?.as_ref()?;
            return Some((seen.state, &seen.location));
        }
        if let Some(seen) = self.others.get(id) {
            return Some((seen.state, &seen.location));
        }
        let i = self.fresh_index(id, &self.changed)?;
        Some((SeenState::Changed(i), self.changed_at.get(i as usize)?))
    }

    /// Stored contacts read unchanged from changed rows, with their rows' new
    /// digests (to store, so the next run needs no mapping).
    pub fn renewed(&self) -> impl Iterator<Item = (&str, u64)> {
        self.renewed.iter().filter_map(|&(slot, fingerprint)| {
            let seen = self.seen.get(slot as usize)?.as_ref()?;
            // A duplicated id is unreadable now: it keeps its stored digest.
            (seen.state == SeenState::Unchanged).then(|| (self.known.id(slot), fingerprint))
        })
    }

    /// Stored contacts that left the source: named as left, or (in a full
    /// read) not seen at all.
    pub fn left(&self) -> impl Iterator<Item = &Anchor> {
        let full = self.delivered() == ReadMode::Full;
        self.known
            .anchors
            .iter()
            .zip(&self.seen)
            .filter_map(move |(anchor, seen)| {
                let gone = match seen {
                    None => full,
                    Some(seen) => seen.state == SeenState::Left,
                };
                gone.then_some(anchor)
            })
    }

    /// Contact ids read in a state `wanted` accepts, with their anchors. New
    /// ids read cleanly ([`SeenState::Changed`] without an anchor) are listed
    /// only until [`ReadResult::take_changed`] moves their records out.
    pub fn read_as(
        &self,
        wanted: fn(SeenState) -> bool,
    ) -> impl Iterator<Item = (&str, Option<&Anchor>)> {
        let known = (0..self.known.len() as u32).filter_map(move |slot| {
            let seen = self.seen.get(slot as usize)?.as_ref()?;
            let anchor = self.known.anchor(slot);
            wanted(seen.state).then_some((self.known.id(slot), anchor))
        });
        let others = self
            .others
            .iter()
            .filter_map(move |(id, seen)| wanted(seen.state).then_some((id.as_str(), None)));
        let fresh = self.fresh.iter().filter_map(move |&i| {
            let r = self.changed.get(i as usize)?;
            wanted(SeenState::Changed(i)).then_some((r.contact_id(), None))
        });
        known.chain(others).chain(fresh)
    }

    /// Notes that stored contact `id` (in `slot`) was read in `state` at `location`.
    fn see_known(&mut self, id: &str, slot: u32, state: SeenState, location: Location) {
        let Some(entry) = self.seen.get_mut(slot as usize) else {
            return;
        };
        match entry {
            None => *entry = Some(Seen { state, location }),
            // A changes read repeats a key when it changed twice: the last wins.
            Some(first) if self.keep_last => *first = Seen { state, location },
            Some(first) => duplicate(
                &mut self.errors,
                &mut self.bad_rows,
                id,
                first,
                state,
                &location,
            ),
        }
    }

    /// Notes that contact `id` (no anchor) was read in `state` at `location`;
    /// a second sighting of one id makes both rows errors.
    fn see_other(&mut self, id: &str, state: SeenState, location: Location) {
        let hash = match state {
            SeenState::Changed(i) => self.changed_hash.get(i as usize).copied(),
            _ => None,
        }
        .unwrap_or_else(|| self.hash(id));
        if self.keep_last {
            self.forget_other(id, hash);
        }
        if let Some(first) = self.fresh_index_hashed(id, hash, &self.changed) {
            // Seen before as a clean new record: it moves over to be judged.
            if let Ok(entry) = self.fresh.find_entry(hash, |&i| i == first) {
                entry.remove();
            }
            if let Some(at) = self.changed_at.get(first as usize).cloned() {
                let seen = Seen {
                    state: SeenState::Changed(first),
                    location: at,
                };
                self.others.insert(id.to_owned(), seen);
            }
        }
        if let Some(first) = self.others.get_mut(id) {
            duplicate(
                &mut self.errors,
                &mut self.bad_rows,
                id,
                first,
                state,
                &location,
            );
            return;
        }
        match state {
            SeenState::Changed(i) => {
                // Growing rehashes from the kept hashes, not the records' ids.
                let hashes = &self.changed_hash;
                self.fresh.insert_unique(hash, i, |&j| {
                    hashes.get(j as usize).copied().unwrap_or_default()
                });
            }
            _ => {
                self.others.insert(id.to_owned(), Seen { state, location });
            }
        }
    }

    /// Forgets how contact `id` (no anchor, hashing to `hash`) was read before,
    /// so that its next reading replaces it.
    fn forget_other(&mut self, id: &str, hash: u64) {
        if let Some(first) = self.fresh_index_hashed(id, hash, &self.changed) {
            if let Ok(entry) = self.fresh.find_entry(hash, |&i| i == first) {
                entry.remove();
            }
        }
        self.others.remove(id);
    }

    /// Notes contact `id` (in `slot` of `known` if stored) read in `state` at `location`.
    fn see(&mut self, id: &str, slot: Option<u32>, state: SeenState, location: Location) {
        match slot.or_else(|| self.known.slot(id)) {
            Some(slot) => self.see_known(id, slot, state, location),
            None => self.see_other(id, state, location),
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
            self.see(id, None, SeenState::Unreadable, location);
        }
    }

    /// Takes a new or changed contact read at `location`. A stored, linked
    /// contact the row maps to unchanged (the mapping or an unread column
    /// changed) only renews its digest.
    fn take_contact(&mut self, mut r: ContactRecord, fingerprint: u64, location: Location) {
        let slot = self.known.slot(r.contact_id());
        if let Some((s, anchor)) = slot.and_then(|s| Some((s, self.known.anchor(s)?))) {
            if !self.known.replan && anchor.linked && r.content_digest() == anchor.content {
                self.renewed.push((s, fingerprint));
                let id = r.contact_id().to_owned();
                self.see_known(&id, s, SeenState::Unchanged, location);
                return;
            }
        }
        r.fingerprint = fingerprint;
        let at = self.changed.len() as u32;
        let id = r.contact_id().to_owned();
        self.changed_hash.push(self.hash(&id));
        self.changed.push(r);
        self.changed_at.push(location.clone());
        self.see(&id, slot, SeenState::Changed(at), location);
    }
}

/// A second row with the id first read as `first`, read itself in `state`.
/// Both rows become errors and the contact stays as it is. Each row counts
/// once among the bad rows: a row already counted (a bad row, or an earlier
/// duplicate) is not counted again, and two unreadable rows are not reported as
/// duplicates of each other (their ids may be lossy readings that only look
/// alike, and both are reported already).
fn duplicate(
    errors: &mut Vec<RowError>,
    bad_rows: &mut usize,
    id: &str,
    first: &mut Seen,
    state: SeenState,
    location: &Location,
) {
    let this_counted = state == SeenState::Unreadable;
    let first_counted = first.state == SeenState::Unreadable;
    if this_counted && first_counted {
        return;
    }
    let first_at = first.location.to_string();
    errors.push(RowError {
        location: location.to_string(),
        message: format!("duplicate contact id {id:?} (also at {first_at})"),
    });
    if !this_counted {
        *bad_rows += 1;
    }
    if !first_counted {
        errors.push(RowError {
            location: first_at,
            message: format!("duplicate contact id {id:?} (also at {location})"),
        });
        *bad_rows += 1;
        first.state = SeenState::Unreadable;
    }
}

/// Why a read did not complete; nothing is applied.
#[derive(Debug, thiserror::Error)]
pub enum ReadFailure {
    /// The connector failed, or broke the contract (SPEC §2).
    #[error("{0}")]
    Source(#[from] SourceError),
    /// Too many bad rows for the read to count as complete.
    #[error("{bad} of {rows} rows could not be read ({:.1} %), more than the allowed {:.1} %", 100.0 * *bad as f64 / *rows as f64, 100.0 * limit.as_f64())]
    TooManyBadRows {
        /// Bad rows: each counted once, however many errors it has.
        bad: usize,
        /// All rows.
        rows: usize,
        /// `max_bad_row_ratio`.
        limit: Ratio,
        /// The row errors, each with its location.
        errors: Vec<RowError>,
    },
    /// The store could not say which anchors a changes read names.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The run was cancelled while it read.
    #[error("the read was cancelled")]
    Cancelled,
}

/// Finds a source's stored anchors while a changes read runs, so that a
/// delta of ten records looks up ten anchors, not the source's million.
pub trait AnchorLookup {
    /// Calls `found` with each of `ids` that is stored, and its anchor.
    fn anchors_of(
        &mut self,
        ids: &[&str],
        found: &mut dyn FnMut(&str, Anchor),
    ) -> Result<(), StoreError>;

    /// Calls `found` with every stored contact of the source: a changes
    /// request that the connector answered in full needs them all.
    fn all_anchors(&mut self, found: &mut dyn FnMut(&str, Anchor)) -> Result<(), StoreError>;
}

/// What one read asks for, besides the connector and the stored contacts.
pub struct Reading<'a> {
    /// The mode and cursor asked for.
    pub request: &'a ReadRequest,
    /// Cancellation, clock and runtime handed to the connector.
    pub ctx: &'a ReadContext,
    /// The source's mapping.
    pub mapping: &'a Mapping,
    /// `max_bad_row_ratio`.
    pub max_bad_row_ratio: Ratio,
}

/// Reads the source as `reading` asks, mapping every new or changed record.
/// `known` are the source's stored contacts with the fingerprints they were
/// read with: all of them, or (given `lookup`) none yet, each looked up when
/// the read names it.
pub fn read_source(
    connector: &dyn Connector,
    reading: &Reading<'_>,
    known: StoredContacts,
    lookup: Option<&mut dyn AnchorLookup>,
) -> Result<ReadResult, ReadFailure> {
    let stream = connector.read(reading.request, reading.ctx)?;
    let mut out = ReadResult {
        seen: vec![None; known.len()],
        keep_last: reading.request.mode == ReadMode::Changes,
        known,
        ..ReadResult::default()
    };
    let mapping = reading.mapping;
    let mut sorting = Sorting {
        out: &mut out,
        mapping,
        lookup,
        first_deletion: None,
    };
    std::thread::scope(|scope| {
        let rx = read_ahead(scope, stream, mapping);
        sorting.consume(rx, &reading.ctx.cancel)
    })?;
    let first_deletion = sorting.first_deletion.take();
    let lookup = sorting.lookup.take();
    check_end(&out, reading, first_deletion)?;
    if let (ReadMode::Full, Some(lookup)) = (out.delivered(), lookup) {
        // Answered in full: whatever it did not return has left.
        out.know_all(lookup)?;
    }
    debug_assert!(out.bad_rows <= out.rows, "a row counts once");
    if out.rows > 0
        && reading
            .max_bad_row_ratio
            .exceeded_by(out.bad_rows, out.rows)
    {
        return Err(ReadFailure::TooManyBadRows {
            bad: out.bad_rows,
            rows: out.rows,
            limit: reading.max_bad_row_ratio,
            errors: std::mem::take(&mut out.errors),
        });
    }
    Ok(out)
}

/// Checks how a read that went through ended: with its end item, in a mode
/// the request allows, and without deletions in a full read.
fn check_end(
    out: &ReadResult,
    reading: &Reading<'_>,
    first_deletion: Option<Location>,
) -> Result<(), ReadFailure> {
    let Some(end) = &out.end else {
        if reading.ctx.cancel.is_cancelled() {
            return Err(ReadFailure::Cancelled);
        }
        return Err(SourceError::Incomplete(
            "the read stopped without saying it ended (no end item): nothing is applied".into(),
        )
        .into());
    };
    if reading.request.mode == ReadMode::Full && end.mode == ReadMode::Changes {
        return Err(SourceError::Invalid(
            "asked for a full read, the connector delivered only changes".into(),
        )
        .into());
    }
    if let (ReadMode::Full, Some(at)) = (end.mode, first_deletion) {
        return Err(SourceError::Invalid(format!(
            "{at}: a deletion in a full read (deletions belong to changes reads)"
        ))
        .into());
    }
    Ok(())
}

impl ReadResult {
    /// Adds every stored contact of the source not known yet (none of them
    /// was read, so each counts as left).
    fn know_all(&mut self, lookup: &mut dyn AnchorLookup) -> Result<(), StoreError> {
        let (known, seen) = (&mut self.known, &mut self.seen);
        lookup.all_anchors(&mut |id, anchor| {
            if known.slot(id).is_none() {
                known.push(id, anchor);
                seen.push(None);
            }
        })
    }
}

/// Items handed over this many at a time.
const BATCH: usize = 1024;

/// A batch is handed over early once its records hold this much text, so the
/// batches in flight stay small however long the rows (a CSV row may hold up
/// to 1 MiB): 1024 rows of the benchmark file hold ~120 KB.
const BATCH_BYTES: usize = 1024 * 1024;

/// An item with its digest ([`Mapping::fingerprint`], 0 for anything but a record).
type Digested = Result<(Item, u64), SourceError>;

/// Parses `stream` on a scoped thread that also digests each record: parsing
/// and hashing there, looking up and mapping here, each thread has about half
/// the work of an unchanged row. Stops after the first source error.
fn read_ahead<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    stream: liaison_plugin_api::ItemStream<'scope>,
    mapping: &'scope Mapping,
) -> Receiver<Vec<Digested>> {
    // A few batches in flight: enough to absorb jitter, little memory.
    let (tx, rx) = sync_channel(4);
    scope.spawn(move || {
        let mut batch = Vec::with_capacity(BATCH);
        let mut bytes = 0;
        for item in stream {
            let failed = item.is_err();
            batch.push(item.map(|item| {
                bytes += text_len(&item);
                let fingerprint = match &item {
                    Item::Record(record) => mapping.fingerprint(record),
                    Item::Bad(_) | Item::Deleted(_) | Item::End(_) => 0,
                };
                (item, fingerprint)
            }));
            if batch.len() == BATCH || bytes >= BATCH_BYTES || failed {
                bytes = 0;
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
    rx
}

/// The text an item holds (its record's, or its bad row's partial record's).
fn text_len(item: &Item) -> usize {
    let record = match item {
        Item::Record(record) => Some(record),
        Item::Bad(bad) => bad.partial.as_ref(),
        Item::Deleted(_) | Item::End(_) => None,
    };
    record.map_or(0, |r| r.text().len())
}

/// The sorting side of a read: what the parsing thread sends goes into `out`.
struct Sorting<'r, 'm, 'l> {
    out: &'r mut ReadResult,
    mapping: &'m Mapping,
    /// Where a changes read looks up the anchors its items name.
    lookup: Option<&'l mut dyn AnchorLookup>,
    /// Where the read's first deletion was (a full read may have none).
    first_deletion: Option<Location>,
}

impl Sorting<'_, '_, '_> {
    /// Sorts every batch; a stored contact whose row has its stored digest
    /// is unchanged and not mapped.
    fn consume(&mut self, rx: Receiver<Vec<Digested>>, cancel: &Cancel) -> Result<(), ReadFailure> {
        for batch in rx {
            // Between batches is a safe point: nothing is written while reading.
            // Returning drops the receiver, which stops the parsing thread.
            if cancel.is_cancelled() {
                return Err(ReadFailure::Cancelled);
            }
            let batch = batch.into_iter().collect::<Result<Vec<_>, _>>()?;
            self.look_up(&batch)?;
            for (item, fingerprint) in batch {
                self.sort(item, fingerprint)?;
            }
        }
        Ok(())
    }

    /// Adds the stored anchors of the ids `batch` names that are not known yet.
    fn look_up(&mut self, batch: &[(Item, u64)]) -> Result<(), ReadFailure> {
        let Some(lookup) = self.lookup.as_deref_mut() else {
            return Ok(());
        };
        let mapping = self.mapping;
        let known = &mut self.out.known;
        let mut ids: Vec<Cow<'_, str>> = batch
            .iter()
            .filter_map(|(item, _)| item_id(item, mapping))
            .filter(|id| known.slot(id).is_none())
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        ids.sort_unstable();
        ids.dedup();
        let ids: Vec<&str> = ids.iter().map(|id| id.as_ref()).collect();
        let seen = &mut self.out.seen;
        lookup.anchors_of(&ids, &mut |id, anchor| {
            if known.slot(id).is_none() {
                known.push(id, anchor);
                seen.push(None);
            }
        })?;
        Ok(())
    }

    /// Sorts one item.
    fn sort(&mut self, item: Item, fingerprint: u64) -> Result<(), ReadFailure> {
        if let Some(end) = &self.out.end {
            let what = match &item {
                Item::End(_) => "a second end item".to_owned(),
                other => format!("{} after the end item", describe(other)),
            };
            let mode = end.mode;
            return Err(SourceError::Invalid(format!("{what} (the read ended as {mode})")).into());
        }
        match item {
            Item::End(end) => self.out.end = Some(end),
            Item::Deleted(deletion) => {
                self.out.deletions += 1;
                self.first_deletion
                    .get_or_insert_with(|| deletion.location.clone());
                self.out
                    .see(&deletion.key, None, SeenState::Left, deletion.location);
            }
            item => {
                self.out.rows += 1;
                if !self.unchanged(&item, fingerprint) {
                    self.take_item(item, fingerprint);
                }
            }
        }
        Ok(())
    }

    /// Whether `item` is a stored contact's record with its stored digest;
    /// if so it is noted unchanged.
    fn unchanged(&mut self, item: &Item, fingerprint: u64) -> bool {
        let Item::Record(record) = item else {
            return false;
        };
        let Some(id) = self.mapping.contact_id_of(record) else {
            return false;
        };
        let known = &self.out.known;
        let Some(slot) = known.slot(&id) else {
            return false;
        };
        let unchanged = known
            .anchor(slot)
            .is_some_and(|a| !known.replan && a.linked && a.fingerprint == fingerprint);
        if unchanged {
            self.out
                .see_known(&id, slot, SeenState::Unchanged, record.location.clone());
        }
        unchanged
    }

    /// Maps a new or changed record (or reports a bad row) into the result.
    fn take_item(&mut self, item: Item, fingerprint: u64) {
        let out = &mut *self.out;
        match item {
            Item::Record(record) => match self.mapping.apply(&record) {
                // In a changes read a record `when:` now leaves out has left;
                // in a full read, not being read says so already.
                Mapped::Skipped if out.keep_last => {
                    if let Some(id) = self.mapping.contact_id_of(&record) {
                        let location = record.location.clone();
                        out.see(&id, None, SeenState::Left, location);
                    }
                }
                Mapped::Skipped => {}
                Mapped::Contact(r) => out.take_contact(r, fingerprint, record.location),
                Mapped::Invalid {
                    contact_id,
                    message,
                } => out.bad_row(record.location, contact_id.as_deref(), message),
            },
            Item::Bad(bad) => {
                let partial = bad.partial.as_ref();
                let contact_id = bad.key.clone().or_else(|| {
                    partial.and_then(|p| self.mapping.contact_id_of(p).map(Cow::into_owned))
                });
                out.bad_row(bad.location, contact_id.as_deref(), bad.message);
            }
            Item::Deleted(_) | Item::End(_) => {}
        }
    }
}

/// The contact id an item names, if it names one.
fn item_id<'i>(item: &'i Item, mapping: &Mapping) -> Option<Cow<'i, str>> {
    match item {
        Item::Record(record) => mapping.contact_id_of(record),
        Item::Bad(bad) => match &bad.key {
            Some(key) => Some(Cow::Borrowed(key.as_str())),
            None => bad.partial.as_ref().and_then(|p| mapping.contact_id_of(p)),
        },
        Item::Deleted(deletion) => Some(Cow::Borrowed(deletion.key.as_str())),
        Item::End(_) => None,
    }
}

/// What an item is, for messages.
fn describe(item: &Item) -> String {
    match item {
        Item::Record(record) => format!("{}: a record", record.location),
        Item::Bad(bad) => format!("{}: a bad record", bad.location),
        Item::Deleted(deletion) => format!("{}: a deletion", deletion.location),
        Item::End(_) => "an end item".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::{HashMap, HashSet};
    use std::sync::Arc;

    use liaison_plugin_api::{
        BadRow, Cancel, Connector, Item, ItemStream, Location, ReadContext, ReadEnd, ReadMode,
        ReadRequest, Record, Schema,
    };
    use proptest::prelude::*;

    use super::{read_source, ReadFailure, ReadResult, Reading, StoredContacts};
    use crate::config::Ratio;
    use crate::mapping::Mapping;
    use crate::model::UserId;
    use crate::store::Anchor;

    /// A connector handing out fixed items, then the end of a full read.
    struct Items(Vec<Item>);

    impl Connector for Items {
        fn kind(&self) -> &'static str {
            "test"
        }

        fn read(
            &self,
            _: &ReadRequest,
            _: &ReadContext,
        ) -> Result<ItemStream<'_>, liaison_plugin_api::SourceError> {
            let end = Item::End(ReadEnd {
                mode: ReadMode::Full,
                cursor: None,
            });
            Ok(Box::new(self.0.iter().cloned().chain([end]).map(Ok)))
        }
    }

    /// A full read of `connector` with every stored contact in `known`.
    fn read_full(
        connector: &dyn Connector,
        mapping: &Mapping,
        known: StoredContacts,
        max_bad_row_ratio: Ratio,
    ) -> Result<ReadResult, ReadFailure> {
        let reading = Reading {
            request: &ReadRequest::full(),
            ctx: &ReadContext::new(Cancel::new()),
            mapping,
            max_bad_row_ratio,
        };
        read_source(connector, &reading, known, None)
    }

    /// How a generated row is read.
    #[derive(Debug, Clone, Copy)]
    enum Kind {
        /// A clean record.
        Clean,
        /// A record the mapping rejects (bad e-mail); its id is still known.
        BadEmail,
        /// A row the connector could not read, its id read lossily.
        BadWithId,
        /// A row the connector could not read at all.
        BadWithoutId,
    }

    fn record(line: u64, id: &str, email: &str) -> Record {
        let schema = Arc::new(Schema::new(vec![
            "contact_id".into(),
            "name".into(),
            "email".into(),
        ]));
        let location = Location::line("t.csv", line);
        Record::new(
            location,
            schema,
            vec![id.into(), format!("User {id}").into(), email.into()],
        )
    }

    fn item(line: u64, id: &str, kind: Kind) -> Item {
        let good = record(line, id, &format!("{id}@x.example"));
        let location = good.location.clone();
        let bad = |partial| {
            Item::Bad(BadRow {
                location: location.clone(),
                message: "unreadable".into(),
                partial,
                key: None,
            })
        };
        match kind {
            Kind::Clean => Item::Record(good),
            Kind::BadEmail => Item::Record(record(line, id, "not-an-email")),
            Kind::BadWithId => bad(Some(good)),
            Kind::BadWithoutId => bad(None),
        }
    }

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![
            4 => Just(Kind::Clean),
            1 => Just(Kind::BadEmail),
            1 => Just(Kind::BadWithId),
            1 => Just(Kind::BadWithoutId),
        ]
    }

    proptest! {
        /// Bad rows are rows, each counted once: a row is bad when it has a
        /// defect or shares its (readable) id with another row, and each bad row
        /// has an error at its line.
        #[test]
        fn bad_rows_count_each_row_once(
            rows in proptest::collection::vec((0u8..6, kind()), 1..40),
            stored in proptest::collection::vec(any::<bool>(), 6),
        ) {
            let ids: Vec<String> = rows.iter().map(|(id, _)| format!("c{id}")).collect();
            let items: Vec<Item> = rows
                .iter()
                .zip(&ids)
                .enumerate()
                .map(|(i, ((_, kind), id))| item(i as u64 + 2, id, *kind))
                .collect();
            // Some ids are stored, with the digest of their clean row, so that
            // clean rows of them take the unchanged path.
            let mapping = Mapping::standard();
            let mut known = StoredContacts::default();
            for (n, _) in stored.iter().enumerate().filter(|(_, s)| **s) {
                let clean = record(0, &format!("c{n}"), &format!("c{n}@x.example"));
                known.push(&format!("c{n}"), Anchor {
                    user: UserId(n as i64 + 1),
                    linked: true,
                    fingerprint: mapping.fingerprint(&clean),
                    content: 0,
                });
            }
            // The model: who carries a readable id, and how often each id is read.
            let readable = |kind: Kind| !matches!(kind, Kind::BadWithoutId);
            let mut sightings: HashMap<&str, usize> = HashMap::new();
            for ((_, kind), id) in rows.iter().zip(&ids) {
                if readable(*kind) {
                    *sightings.entry(id.as_str()).or_default() += 1;
                }
            }
            let expected: HashSet<String> = rows
                .iter()
                .zip(&ids)
                .enumerate()
                .filter(|(_, ((_, kind), id))| {
                    !matches!(kind, Kind::Clean)
                        || (readable(*kind) && sightings[id.as_str()] > 1)
                })
                .map(|(i, _)| format!("t.csv:{}", i + 2))
                .collect();

            let result = read_full(&Items(items), &mapping, known, Ratio::percent(100));
            let read = match result {
                Ok(read) => read,
                Err(ReadFailure::TooManyBadRows { bad, rows, .. }) => {
                    return Err(TestCaseError::fail(format!("{bad} of {rows} over 100 %")));
                }
                Err(e) => return Err(TestCaseError::fail(e.to_string())),
            };
            prop_assert_eq!(read.rows, rows.len());
            prop_assert_eq!(read.bad_rows, expected.len());
            let located: HashSet<String> =
                read.errors.iter().map(|e| e.location.clone()).collect();
            prop_assert_eq!(located, expected);
        }
    }

    #[test]
    fn batches_in_flight_stay_small_however_long_the_rows() {
        // Each record: id, name and e-mail made from a 100 KB id (~300 KB).
        let long = "x".repeat(100_000);
        let items = Items(
            (0..20)
                .map(|i| item(i + 2, &format!("c{i}{long}"), Kind::Clean))
                .collect(),
        );
        let mapping = Mapping::standard();
        let sizes: Vec<(usize, usize)> = std::thread::scope(|scope| {
            let ctx = ReadContext::default();
            let rx = super::read_ahead(
                scope,
                items.read(&ReadRequest::full(), &ctx).unwrap(),
                &mapping,
            );
            rx.into_iter()
                .map(|batch| {
                    let bytes = batch
                        .iter()
                        .map(|d| super::text_len(&d.as_ref().unwrap().0))
                        .sum::<usize>();
                    (batch.len(), bytes)
                })
                .collect()
        });
        // 20 records and the end item.
        assert_eq!(sizes.iter().map(|(n, _)| n).sum::<usize>(), 21);
        // Each batch stops at the first record that takes it to 1 MiB.
        assert!(sizes.len() >= 5, "{sizes:?}");
        assert!(
            sizes
                .iter()
                .all(|&(_, bytes)| bytes < super::BATCH_BYTES + 310_000),
            "{sizes:?}"
        );
    }

    #[test]
    fn the_bad_row_limit_is_exact() {
        let mapping = Mapping::standard();
        let items = |bad: usize| {
            let all = (0..100).map(|i| {
                let kind = if i < bad { Kind::BadEmail } else { Kind::Clean };
                item(i as u64 + 2, &format!("c{i}"), kind)
            });
            Items(all.collect())
        };
        let limit = Ratio::parse("0.29").unwrap();
        let at = read_full(&items(29), &mapping, StoredContacts::default(), limit);
        assert_eq!(at.unwrap().bad_rows, 29);
        let over = read_full(&items(30), &mapping, StoredContacts::default(), limit);
        assert!(
            matches!(
                over,
                Err(ReadFailure::TooManyBadRows {
                    bad: 30,
                    rows: 100,
                    ..
                })
            ),
            "{over:?}"
        );
    }

    fn anchor(user: i64) -> Anchor {
        Anchor {
            user: UserId(user),
            linked: user % 2 == 0,
            fingerprint: user as u64 * 31,
            content: user as u64 * 7,
        }
    }

    #[test]
    fn stored_contacts_find_every_id_and_only_those() {
        let mut known = StoredContacts::default();
        // Enough ids to grow the index several times; prefixes of each other.
        let ids: Vec<String> = (0..5000)
            .map(|i| match i % 3 {
                0 => format!("c-{i}"),
                1 => format!("c-{i}-Dvořák"),
                _ => "x".repeat(i % 40),
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for (i, id) in ids.iter().enumerate() {
            known.push(id, anchor(i as i64));
        }
        assert_eq!(known.len(), ids.len());
        for (i, id) in ids.iter().enumerate() {
            let slot = known.slot(id).unwrap();
            assert_eq!(known.id(slot), id);
            assert_eq!(known.anchor(slot), Some(&anchor(i as i64)));
        }
        for missing in ["c-", "c-5000", "c-1-Dvorak", "y"] {
            assert_eq!(known.slot(missing), None, "{missing}");
        }
    }
}
