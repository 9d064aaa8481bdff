//! The decision of one run, as a value: printed by `plan`, applied by `sync`.

use std::borrow::Cow;
use std::ops::Range;

use serde::Serialize;

use super::merge::{merge_fields, UserFields};
use crate::model::{ContactRecord, Login, UserId};

/// Everything one run of one source would change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The source this plan is for.
    pub source: String,
    /// Users to create, in (source, contact id) order.
    pub creates: Vec<NewUser>,
    /// The contacts of `creates`, user after user: each record is held once, so
    /// a plan for a million new users costs little more than its records.
    pub new_contacts: Vec<ContactRecord>,
    /// The locale of users whose contacts give none (`fields_of`).
    pub default_locale: String,
    /// Field changes of existing users.
    pub updates: Vec<UserUpdate>,
    /// Contact links to write or remove for existing users.
    pub contacts: Vec<ContactChange>,
    /// Sync-disabled users whose contacts came back.
    pub enables: Vec<(UserId, Login)>,
    /// Users to disable or delete, with the unlinks that lead there.
    pub deprovisions: Vec<Deprovision>,
    /// Deprovisions the guard held back (not applied).
    pub held: Vec<Held>,
    /// Records left as they were because correlating them would mean guessing.
    pub conflicts: Vec<Conflict>,
    /// Contacts whose source row changed but maps to the same contact: their
    /// stored digest is renewed, nothing else (not a change anyone sees).
    pub refreshed: Vec<(String, u64)>,
    /// Users this source feeds that need no change.
    pub unchanged: usize,
    /// What applying the plan queues in the outbox for the users it creates
    /// (from `mail:`; `None`: nothing).
    pub outbox: Option<crate::store::OutboxPolicy>,
}

/// A user to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    /// The login it gets (given by the source, or derived with a collision suffix).
    pub login: Login,
    /// Its contacts: this range of [`Plan::new_contacts`], by contact id.
    pub contacts: Range<usize>,
}

/// Field changes of one existing user.
#[derive(Debug, Clone, PartialEq)]
pub struct UserUpdate {
    /// The user.
    pub user: UserId,
    /// Its login, for people.
    pub login: Login,
    /// Each changed field, old → new.
    pub changes: Vec<FieldChange>,
    /// The complete new field values.
    pub fields: UserFields,
}

/// One field's old and new value, as JSON so that lists and maps print faithfully.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    /// Field name as in SPEC §1 (`title`, `email`, `grants`, …), or a linked
    /// contact's own field as SPEC §3 names it (`contact partners:c-7 phone`).
    pub field: Cow<'static, str>,
    /// Value before.
    pub old: serde_json::Value,
    /// Value after.
    pub new: serde_json::Value,
}

/// A change to a contact link of an existing user.
#[derive(Debug, Clone, PartialEq)]
pub enum ContactChange {
    /// Link the contact to the user, or store what the source now says about it.
    Upsert {
        /// The user it belongs to.
        user: UserId,
        /// Its login, for people.
        login: Login,
        /// The record as read.
        record: Box<ContactRecord>,
        /// The contact was not linked to this user before (new, moved or back).
        linked_now: bool,
        /// The contact's own fields that changed, old → new (empty for a new link).
        changes: Vec<FieldChange>,
    },
    /// The contact left its source: remove the link, remember the anchor.
    Unlink {
        /// The user it belonged to.
        user: UserId,
        /// Its login, for people.
        login: Login,
        /// The contact id.
        contact_id: String,
    },
    /// The contact now belongs to another user: the user it left keeps a trace.
    /// (The new link is written by the destination's upsert or creation.)
    Moved {
        /// The user it belonged to.
        user: UserId,
        /// Its login, for people.
        login: Login,
        /// The contact id.
        contact_id: String,
        /// The login of the user it moved to.
        to: Login,
    },
}

impl ContactChange {
    /// The existing user this change is about.
    pub fn user(&self) -> UserId {
        match self {
            ContactChange::Upsert { user, .. }
            | ContactChange::Unlink { user, .. }
            | ContactChange::Moved { user, .. } => *user,
        }
    }
}

/// Disable or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeprovisionAction {
    /// Deactivate, reversibly; links are removed, anchors kept.
    Disable,
    /// Delete for good (after `deprovision.delete_after`).
    Delete,
}

/// A user that loses access in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deprovision {
    /// The user.
    pub user: UserId,
    /// Its login.
    pub login: Login,
    /// Disable or delete.
    pub action: DeprovisionAction,
    /// Contacts of the planned source unlinked with it.
    pub unlinks: Vec<String>,
}

/// A deprovision the guard did not apply, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// What would have happened.
    pub deprovision: Deprovision,
    /// Which limit held it.
    pub reason: String,
}

/// A record left as it was because correlating it would mean guessing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// The record's contact id.
    pub contact_id: String,
    /// What clashes.
    pub message: String,
}

/// How many users each kind of change touches; each user counts once, in its
/// most significant kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PlanCounts {
    /// Users created.
    pub created: usize,
    /// Users with changed fields or contacts.
    pub updated: usize,
    /// Users disabled.
    pub disabled: usize,
    /// Users enabled again.
    pub enabled: usize,
    /// Users deleted.
    pub deleted: usize,
    /// Users that need no change.
    pub unchanged: usize,
    /// Deprovisions held by the guard.
    pub held: usize,
}

impl Plan {
    /// The contacts of a user to create, by contact id.
    pub fn contacts_of(&self, user: &NewUser) -> &[ContactRecord] {
        self.new_contacts
            .get(user.contacts.clone())
            .unwrap_or_default()
    }

    /// The fields of a user to create, merged from its contacts. Derived on
    /// demand rather than stored, so a big plan holds each value once.
    pub fn fields_of(&self, user: &NewUser) -> Option<UserFields> {
        let contacts: Vec<(usize, &ContactRecord)> =
            self.contacts_of(user).iter().map(|r| (0, r)).collect();
        merge_fields(&contacts, &self.default_locale)
    }

    /// True when applying the plan would write nothing.
    pub fn is_empty(&self) -> bool {
        self.creates.is_empty()
            && self.updates.is_empty()
            && self.contacts.is_empty()
            && self.enables.is_empty()
            && self.deprovisions.is_empty()
    }

    /// Per-kind user counts.
    pub fn counts(&self) -> PlanCounts {
        use std::collections::BTreeSet;
        let disabled: BTreeSet<UserId> = self
            .deprovisions
            .iter()
            .filter(|d| d.action == DeprovisionAction::Disable)
            .map(|d| d.user)
            .collect();
        let deleted: BTreeSet<UserId> = self
            .deprovisions
            .iter()
            .filter(|d| d.action == DeprovisionAction::Delete)
            .map(|d| d.user)
            .collect();
        let enabled: BTreeSet<UserId> = self.enables.iter().map(|(u, _)| *u).collect();
        let mut updated: BTreeSet<UserId> = self.updates.iter().map(|u| u.user).collect();
        updated.extend(self.contacts.iter().map(ContactChange::user));
        let updated = updated
            .iter()
            .filter(|u| !disabled.contains(u) && !deleted.contains(u) && !enabled.contains(u))
            .count();
        PlanCounts {
            created: self.creates.len(),
            updated,
            disabled: disabled.len(),
            enabled: enabled.len(),
            deleted: deleted.len(),
            unchanged: self.unchanged,
            held: self.held.len(),
        }
    }
}
