//! What the planner reads: one source's records and the relevant slice of the store.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{ContactRecord, ExternalUser, UserId};

/// One complete read of one source, after mapping.
#[derive(Debug, Clone, Default)]
pub struct SourceInput {
    /// The source's name (the first half of every anchor).
    pub source: String,
    /// Valid records. Order does not matter.
    pub records: Vec<ContactRecord>,
    /// Contact ids of rows that could not be read but whose id was readable: they
    /// count as present, so their links and state are kept as they are.
    pub unreadable: BTreeSet<String>,
}

/// A contact link as stored: which user a (source, contact id) anchor belongs to
/// and what the source said about it last time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredContact {
    /// Source name.
    pub source: String,
    /// The user the anchor points to.
    pub user: UserId,
    /// Whether the contact is currently linked (present in its source). An unlinked
    /// anchor is remembered so the contact comes back to the same user.
    pub linked: bool,
    /// The record as last read.
    pub record: ContactRecord,
}

/// The slice of the store a plan needs. The caller must include, at least: every
/// anchor of the planned source; every user those anchors point to, with all of
/// that user's contacts from every source; every user whose e-mail equals a
/// record's e-mail; sync-disabled users without contacts (for `delete_after`); and
/// every login in use or retired that a new user's login could collide with.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Users by id.
    pub users: BTreeMap<UserId, ExternalUser>,
    /// Contacts of every source that belong to the users above, and all anchors of the planned source.
    pub contacts: Vec<StoredContact>,
    /// Logins taken by existing users or retired with deleted ones.
    pub taken_logins: BTreeSet<String>,
    /// Contact ids of the planned source an admin took out of sync (unlinked
    /// from their user by hand, or their user deleted): their records are
    /// left alone — not linked, not made into users — until an admin links
    /// them again.
    pub held_contacts: BTreeSet<String>,
    /// (user, account id) pairs an admin unlinked (`users unlink --account`):
    /// a contact of that account anchored to that user and not linked now
    /// stays unlinked.
    pub unlinked_accounts: BTreeSet<(UserId, String)>,
}

/// Settings and facts the plan depends on that are not records or state.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Precedence of sources: earlier names win a clash of scalar fields.
    pub source_order: Vec<String>,
    /// Locale for users whose sources give none.
    pub default_locale: String,
    /// Delete sync-disabled users after this many milliseconds; `None` = never.
    pub delete_after_ms: Option<i64>,
    /// The run's time, ms since the Unix epoch.
    pub now_ms: i64,
}
