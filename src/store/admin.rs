//! Administration of users from the command line (SPEC §5): manual users,
//! enable, disable, delete, unlink from an account, edits. Each command is
//! one transaction of the store holding the change, its journal entries (by
//! the admin's actor) and its outbox rows, written under the store's writer
//! lock like a sync run (decision 0024 for the registration commands it
//! grows from).
//!
//! What sync must respect afterwards is written down with the change and
//! read by the planner ([`crate::reconcile::State`]): the fields an admin set
//! that no contact gives ([`crate::model::ExternalUser::admin_fields`]), the
//! contacts an admin took out of sync, and the accounts an admin unlinked.

use std::fmt;

use crate::model::{AccountId, ContactRecord, Email, Login, Status, UserId};
use crate::reconcile::FieldChange;
use crate::store::{AdminError, OutboxPolicy};

/// A contact as an admin names it: `SOURCE:ID`, or a bare id that one source
/// must know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRef {
    /// The source, when given.
    pub source: Option<String>,
    /// The contact's id within its source.
    pub id: String,
}

impl ContactRef {
    /// Parses `[SOURCE:]ID`. Only the first `:` separates: contact ids may
    /// hold colons (`SOURCE:` must then be given).
    pub fn parse(text: &str) -> Result<ContactRef, String> {
        let text = text.trim();
        let (source, id) = match text.split_once(':') {
            Some((s, id)) if !s.is_empty() => (Some(s.to_owned()), id),
            Some((_, id)) => (None, id),
            None => (None, text),
        };
        if id.is_empty() {
            return Err(format!(
                "expected [SOURCE:]ID, e.g. partners:c-7, found {text:?}"
            ));
        }
        Ok(ContactRef {
            source,
            id: id.to_owned(),
        })
    }
}

impl fmt::Display for ContactRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(s) => write!(f, "{s}:{}", self.id),
            None => f.write_str(&self.id),
        }
    }
}

/// A contact found for an admin command, with what its source says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundContact {
    /// Its source.
    pub source: String,
    /// The contact as its source (or the store, from the last read) gives it.
    pub record: ContactRecord,
}

impl FoundContact {
    /// `SOURCE:ID`.
    pub fn anchor(&self) -> String {
        format!("{}:{}", self.source, self.record.contact_id())
    }
}

/// A contact the store knows, as [`Admin::stored_contacts`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredContactInfo {
    /// The contact.
    pub contact: FoundContact,
    /// The login of the user it is linked to now, if any.
    pub linked_to: Option<String>,
}

/// How a user's fields follow its linked contacts, from the config: the same
/// merge sync makes ([`crate::reconcile::merge_fields`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeRules {
    /// Source precedence, earlier first (the config's order).
    pub source_order: Vec<String>,
    /// The locale of a user whose contacts give none.
    pub default_locale: String,
}

/// `users add`: a user of origin `manual`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewManualUser {
    /// Its title (`--name`, or the contact's name).
    pub title: String,
    /// Its address (`--email`, or the contact's).
    pub email: Email,
    /// The login asked for (`--login`); `None`: derived from the title.
    pub login: Option<Login>,
    /// The language of its mail; `None`: the contact's, else the default.
    pub locale: Option<String>,
    /// A free note.
    pub description: Option<String>,
    /// Grants, sorted and unique.
    pub grants: Vec<String>,
    /// An account linked directly (it must be known to the store).
    pub account: Option<AccountId>,
    /// The contact it is made from (`--from-contact`), linked to it.
    pub contact: Option<FoundContact>,
}

/// What [`Admin::add_user`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedUser {
    /// Its id.
    pub user: UserId,
    /// Its login.
    pub login: String,
    /// Its status (`active`).
    pub status: Status,
    /// Whether its welcome was queued.
    pub welcome_queued: bool,
}

/// What [`Admin::set_enabled`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChanged {
    /// The status changed; `cancelled` queued messages were cancelled.
    Changed {
        /// The status before.
        from: Status,
        /// Queued messages cancelled (a disable's).
        cancelled: u64,
    },
    /// A user sync had disabled is now disabled by an admin: sync no longer
    /// enables it when its contacts come back.
    TakenOver,
    /// It was already so: nothing was written.
    Already,
}

/// What [`Admin::delete_user`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedUser {
    /// The deleted user's id (its journal keeps it).
    pub user: UserId,
    /// Its contacts, as `SOURCE:ID`: held, so sync does not make a user of
    /// them again.
    pub held: Vec<String>,
    /// Queued messages cancelled.
    pub cancelled: u64,
}

/// What [`Admin::unlink_account`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlinkedAccount {
    /// The contacts unlinked, as `SOURCE:ID`.
    pub contacts: Vec<String>,
    /// Whether a direct link to the account was removed too.
    pub direct: bool,
    /// Whether the user was disabled for having no contact left (a `sync` user).
    pub disabled: bool,
}

/// `users edit`: each `Some` (or non-empty list) is a change asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edit {
    /// A new title.
    pub title: Option<String>,
    /// A new description; `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// A new address.
    pub email: Option<Email>,
    /// A new locale.
    pub locale: Option<String>,
    /// `account_contacts`.
    pub account_contacts: Option<bool>,
    /// `account_tickets`.
    pub account_tickets: Option<bool>,
    /// `external_comments`.
    pub external_comments: Option<bool>,
    /// Grants to add.
    pub grant: Vec<String>,
    /// Grants to remove.
    pub revoke: Vec<String>,
    /// Attributes to set (`Some`) or remove (`None`).
    pub attributes: Vec<(String, Option<String>)>,
    /// Contacts to link (taken out of any hold).
    pub link_contacts: Vec<FoundContact>,
    /// Contacts to unlink (held: sync does not link them again).
    pub unlink_contacts: Vec<ContactRef>,
    /// Accounts to link directly (any unlink of them by an admin is lifted).
    pub link_accounts: Vec<AccountId>,
    /// Accounts to unlink directly.
    pub unlink_accounts: Vec<AccountId>,
}

impl Edit {
    /// Whether it asks for nothing.
    pub fn is_empty(&self) -> bool {
        *self == Edit::default()
    }
}

/// One change an admin command made, as journaled.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminChange {
    /// `update`, `link`, `unlink`, `enable`, `disable`.
    pub action: &'static str,
    /// The field's old → new value.
    pub change: FieldChange,
}

/// The administration of users, each method one transaction with its
/// journal entries by `actor` and its outbox rows; a refusal writes nothing.
pub trait Admin {
    /// Creates a manual user (origin `manual`, status `active`): its login
    /// the one asked for (refused when taken, or retired with a deleted
    /// user) or derived from its title; a duplicate e-mail is refused. From
    /// a contact, links it (refused when it is linked to a user) and takes
    /// what the contact gives as sync would. Queues its welcome (`outbox`).
    fn add_user(
        &mut self,
        new: &NewManualUser,
        rules: &MergeRules,
        outbox: Option<&OutboxPolicy>,
        actor: &str,
        now_ms: i64,
    ) -> Result<AddedUser, AdminError>;

    /// The contacts the store knows with `r`'s id (and source, when given),
    /// by source.
    fn stored_contacts(&mut self, r: &ContactRef) -> Result<Vec<StoredContactInfo>, AdminError>;

    /// `enable` (disabled → active; refused for a `sync` user none of whose
    /// contacts is linked, naming their sources) or `disable` (active →
    /// disabled by an admin, which sync never undoes; its queued mail is
    /// cancelled).
    fn set_enabled(
        &mut self,
        login: &str,
        enable: bool,
        actor: &str,
        now_ms: i64,
    ) -> Result<StatusChanged, AdminError>;

    /// Deletes a user for good: the journal keeps its record, its login is
    /// retired, its contacts are held (sync does not make a user of them
    /// again), its queued mail is cancelled.
    fn delete_user(
        &mut self,
        login: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<DeletedUser, AdminError>;

    /// Unlinks a user from `account`: its linked contacts of that account and
    /// a direct link; remembered, so sync does not link those contacts again
    /// until an admin does. A `sync` user left with no contact is disabled,
    /// as when a source drops it.
    fn unlink_account(
        &mut self,
        login: &str,
        account: &AccountId,
        rules: &MergeRules,
        actor: &str,
        now_ms: i64,
    ) -> Result<UnlinkedAccount, AdminError>;

    /// Applies `edit`, all or nothing: a field one of the user's linked
    /// contacts gives is refused naming its source (the next sync would undo
    /// it). Returns what changed (empty: it already was so).
    fn edit_user(
        &mut self,
        login: &str,
        edit: &Edit,
        rules: &MergeRules,
        actor: &str,
        now_ms: i64,
    ) -> Result<Vec<AdminChange>, AdminError>;

    /// The accounts `text` names: the one with that id, else those whose
    /// name (the config's or a source's) is `text` in any case, by id.
    fn accounts_named(&mut self, text: &str) -> Result<Vec<AccountId>, AdminError>;

    /// The journal of the user who has or had `login`, oldest first; `None`
    /// when no user ever had it.
    fn history(
        &mut self,
        login: &str,
    ) -> Result<Option<Vec<crate::store::HistoryEntry>>, AdminError>;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn contact_references_parse() {
        let r = ContactRef::parse("crm:123").unwrap();
        assert_eq!((r.source.as_deref(), r.id.as_str()), (Some("crm"), "123"));
        let r = ContactRef::parse("c-7").unwrap();
        assert_eq!((r.source, r.id.as_str()), (None, "c-7"));
        let r = ContactRef::parse("ldap:uid=a:b").unwrap();
        assert_eq!(r.id, "uid=a:b");
        assert!(ContactRef::parse("crm:").is_err());
        assert!(ContactRef::parse("").is_err());
        assert_eq!(ContactRef::parse(":x").unwrap().to_string(), "x");
    }
}
