//! Read models of the directory: what `users list` and `users show` print.

use serde::Serialize;

use crate::model::{Account, Attributes, Origin, Status};

/// Filters of `users list`; every given filter must match.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Only users in this status.
    pub status: Option<Status>,
    /// Only users linked to this account id, through a contact or directly.
    pub account: Option<String>,
    /// Only users of this origin.
    pub origin: Option<Origin>,
    /// Only users having every one of these attribute values.
    pub attributes: Vec<(String, String)>,
    /// Case-insensitive substring of login, title, e-mail, description or an attribute value.
    pub search: Option<String>,
}

/// One user as `users list --format json` prints it (SPEC §5 field names).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserView {
    /// Internal id.
    pub id: i64,
    /// Login.
    pub login: String,
    /// Display name.
    pub title: String,
    /// Free note.
    pub description: Option<String>,
    /// Notification address.
    pub email: Option<String>,
    /// Language of e-mails.
    pub locale: String,
    /// Lifecycle state.
    pub status: Status,
    /// Who owns the user.
    pub origin: Origin,
    /// Linked contact ids, as the sources gave them.
    pub contacts: Vec<String>,
    /// Account ids of the linked contacts and those linked directly
    /// (a registration, an admin), sorted, each once.
    pub accounts: Vec<String>,
    /// May see other external users of the same account.
    pub account_contacts: bool,
    /// May see all tickets of the account.
    pub account_tickets: bool,
    /// May write external comments.
    pub external_comments: bool,
    /// Grants.
    pub grants: Vec<String>,
    /// Custom attributes.
    pub attributes: Attributes,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last changed (RFC 3339).
    pub updated_at: String,
}

/// A linked contact as `users show` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkedContact {
    /// Source name.
    pub source: String,
    /// Contact id within the source.
    pub id: String,
    /// Contact name.
    pub name: String,
    /// Contact e-mail.
    pub email: String,
    /// Phone.
    pub phone: Option<String>,
    /// Account id.
    pub account: Option<String>,
    /// Account name.
    pub account_name: Option<String>,
}

/// One journal entry of a user.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// When (RFC 3339).
    pub at: String,
    /// The run that made it, if a sync did.
    pub run: Option<i64>,
    /// Source of the run.
    pub source: Option<String>,
    /// Who made it: an admin write's `--actor` (default the OS user), or
    /// `sync:SOURCE` for a sync run's.
    pub actor: Option<String>,
    /// `create`, `update`, `link`, `unlink`, `enable`, `disable`, `delete`,
    /// `approve`, `reject`, `password_set`, `resend_welcome`,
    /// `resend_confirmation`, `confirmation_requeued`.
    pub action: String,
    /// Changed field, for updates.
    pub field: Option<String>,
    /// Old value (JSON).
    pub old: Option<serde_json::Value>,
    /// New value (JSON).
    pub new: Option<serde_json::Value>,
}

/// `users show`: the user, its contacts and its history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserDetail {
    /// The user as listed.
    #[serde(flatten)]
    pub user: UserView,
    /// Linked contacts in full.
    pub linked_contacts: Vec<LinkedContact>,
    /// The user's accounts (`accounts`) in full: id, name, domains.
    pub linked_accounts: Vec<Account>,
    /// The ids of the accounts linked to the user directly, not through a
    /// contact (a registration's, an admin's), sorted.
    pub direct_accounts: Vec<String>,
    /// Its mail (outbox rows), newest first: the latest 20.
    pub mail: Vec<crate::store::OutboxEntry>,
    /// Its latest journal entries (20), oldest first; `users history` has all.
    pub history: Vec<HistoryEntry>,
    /// How many journal entries it has in all.
    pub history_total: u64,
}
