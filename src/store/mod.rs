//! The store: the single source of truth for users, contact links, journal and
//! run history. [`Store`] is the seam a PostgreSQL implementation joins; SQLite is
//! the embedded default.

pub mod admin;
mod cursors;
pub mod daemon_state;
mod error;
pub mod lock;
pub mod outbox;
mod passwords;
pub mod registration;
mod runs;
pub mod search;
mod sqlite;
mod views;

use std::collections::{BTreeSet, HashSet};
use std::ops::ControlFlow;
use std::time::Duration;

pub use admin::{
    AddedUser, Admin, AdminChange, ContactRef, DeletedUser, Edit, FoundContact, MergeRules,
    NewManualUser, StatusChanged, StoredContactInfo, UnlinkedAccount,
};
pub use cursors::{CursorWrite, SourceCursor};
pub use daemon_state::DaemonState;
pub use error::{DriverError, StoreError};
pub use lock::LockHolder;
pub use outbox::{
    Addressee, HeldBatch, MailKind, Outbox, OutboxEntry, OutboxPolicy, OutboxState, Release,
    DEFAULT_MAX_WELCOME_PER_RUN,
};
pub use passwords::TokenCheck;
pub use registration::{
    AdminError, Approval, Queued, Reconfirmation, Registered, Registration, RegistrationPolicy,
    Registrations,
};
pub use runs::{succeeded, RunRow, RunSummary};
pub use sqlite::{
    ApplyReport, DaemonLock, DispatchLock, JournalMode, SqliteStore, BULK_THRESHOLD, SCAN_THRESHOLD,
};
pub use views::{HistoryEntry, LinkedContact, UserDetail, UserFilter, UserView};

use crate::model::UserId;
use crate::reconcile::{Plan, PlanCounts, State};

/// A stored anchor in compact form: enough to tell unchanged records from changed ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// The user the contact belongs to.
    pub user: UserId,
    /// Whether the contact is currently linked.
    pub linked: bool,
    /// Fingerprint of the record as last read.
    pub fingerprint: u64,
    /// [`ContactRecord::content_digest`] of the contact as stored.
    ///
    /// [`ContactRecord::content_digest`]: crate::model::ContactRecord::content_digest
    pub content: u64,
}

/// Which slice of the store a plan needs (see [`State`]).
#[derive(Debug, Clone, Default)]
pub struct StateRequest<'a> {
    /// The source being planned: all of its anchors are loaded.
    pub source: String,
    /// Users to load with all their contacts.
    pub users: BTreeSet<UserId>,
    /// Users with these normalized e-mails are loaded too (borrowed from the
    /// records read: a big run asks for a million).
    pub emails: HashSet<&'a str, foldhash::fast::RandomState>,
    /// Logins that new users may want: load every taken login equal to one of
    /// these or to one of these plus a numeric suffix.
    pub login_bases: BTreeSet<String>,
    /// Load every taken login instead (cheaper for large creations).
    pub all_logins: bool,
    /// Also load the users a linked contact of `source` with one of `emails`
    /// belongs to: an unchanged contact sharing a changed record's address
    /// must be grouped with it, though its user may have another address.
    pub contacts_by_email: bool,
    /// Also load sync-disabled users without contacts disabled at or before this time.
    pub disabled_before: Option<i64>,
}

/// One run of one source, as recorded in the run history.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// Source name.
    pub source: String,
    /// When the run started (ms since the Unix epoch).
    pub started_ms: i64,
    /// When it finished.
    pub finished_ms: i64,
    /// `applied`, `held`, `failed` or `dry_run`.
    pub status: &'static str,
    /// What was applied.
    pub counts: PlanCounts,
    /// Number of row errors.
    pub errors: usize,
    /// The digest of the plan settings the run was planned with
    /// ([`crate::sync::plan_settings_digest`]); stored by an applied run.
    pub settings: u64,
    /// Why the run failed, when it did.
    pub failure: Option<crate::sync::RunFailure>,
    /// The cursor to store with the run: only an applied run (not held, not
    /// failed, not a dry run) stores one.
    pub cursor: Option<CursorWrite>,
}

/// Persistence of users, links, journal, runs, the outbox ([`Outbox`]), the
/// admin lifecycle of registered users ([`Registrations`]) and the
/// administration of users ([`Admin`]). Implementations apply a
/// plan atomically: either everything in it is written, with its journal,
/// outbox and run record, or nothing is.
pub trait Store: Outbox + Registrations + Admin + Send {
    /// Calls `visit` with every anchor of `source` and its contact id, without
    /// collecting them (a big source has a million).
    fn for_each_anchor(
        &mut self,
        source: &str,
        visit: &mut dyn FnMut(&str, Anchor),
    ) -> Result<(), StoreError>;

    /// Every anchor of `source`, by contact id, collected.
    fn anchors(&mut self, source: &str) -> Result<Vec<(String, Anchor)>, StoreError> {
        let mut out = Vec::new();
        self.for_each_anchor(source, &mut |id, anchor| out.push((id.to_owned(), anchor)))?;
        Ok(out)
    }

    /// The slice of the store a plan needs.
    fn load_state(&mut self, request: &StateRequest<'_>) -> Result<State, StoreError>;

    /// Every source but those in `except` (the configured ones) with linked
    /// contacts in the store, with how many: shows sources removed from the
    /// config whose contacts are still linked.
    fn linked_sources(&mut self, except: &[&str]) -> Result<Vec<(String, usize)>, StoreError>;

    /// Active users linked to `source` now (the guard's ratio base).
    fn active_linked(&mut self, source: &str) -> Result<usize, StoreError>;

    /// Applies `plan` and records the run, in one transaction; `now_ms` stamps it.
    /// `cancel` is looked at between write batches: once set, the transaction
    /// rolls back and this is [`StoreError::Cancelled`]. Once the commit has
    /// begun it finishes.
    fn apply(
        &mut self,
        plan: &Plan,
        run: &RunRecord,
        now_ms: i64,
        cancel: &crate::sync::Cancel,
    ) -> Result<(), StoreError>;

    /// Makes `accounts` (the config's `accounts:`) the store's declared
    /// accounts, in one transaction: each one's name and domains as listed
    /// (its name wins over the sources'; its domains join theirs), and
    /// accounts no longer listed keep only what sources gave. Writes nothing
    /// when the store already says so; returns how many accounts it wrote.
    /// Takes the writer lock for itself when its caller does not hold it.
    fn declare_accounts(
        &mut self,
        accounts: &[crate::model::Account],
        now_ms: i64,
    ) -> Result<usize, StoreError>;

    /// Which account claims the e-mail domain `domain` (matched exactly,
    /// any case; a subdomain is another domain): one, none, or several — the
    /// caller reports an ambiguous domain rather than pick one.
    fn account_for_domain(&mut self, domain: &str)
        -> Result<crate::model::DomainMatch, StoreError>;

    /// Records a run that applied nothing because it failed.
    fn record_run(&mut self, run: &RunRecord) -> Result<(), StoreError>;

    /// Each source's run history in brief ([`RunSummary`]), one per source
    /// that has runs, by source name: what `status` and readiness show.
    fn run_summaries(&mut self) -> Result<Vec<RunSummary>, StoreError>;

    /// The plan-settings digest ([`RunRecord::settings`]) of `source`'s last
    /// applied run; `None` if it has none.
    fn plan_settings(&mut self, source: &str) -> Result<Option<u64>, StoreError>;

    /// `source`'s stored cursor ([`RunRecord::cursor`]), if a run stored one.
    fn source_cursor(&mut self, source: &str) -> Result<Option<SourceCursor>, StoreError>;

    /// Calls `visit` with each of `ids` that is a stored contact of `source`,
    /// and its anchor: what a changes read looks up, a batch at a time.
    fn anchors_of(
        &mut self,
        source: &str,
        ids: &[&str],
        visit: &mut dyn FnMut(&str, Anchor),
    ) -> Result<(), StoreError>;

    /// Starts a rehearsal: until [`Store::end_rehearsal`], applied plans are
    /// visible to this store handle only, and all of them are undone then.
    /// `plan` over several sources rehearses, so each source plans on top of
    /// what the ones before it would have done.
    fn begin_rehearsal(&mut self) -> Result<(), StoreError>;

    /// Undoes everything applied since [`Store::begin_rehearsal`].
    fn end_rehearsal(&mut self) -> Result<(), StoreError>;

    /// Whether a rehearsal is under way.
    fn rehearsing(&self) -> bool;

    /// Visits the users matching `filter`, ordered by login, one at a time;
    /// `visit` may stop early. Listing a big directory holds one user at a time.
    fn for_each_user(
        &mut self,
        filter: &UserFilter,
        visit: &mut dyn FnMut(UserView) -> ControlFlow<()>,
    ) -> Result<(), StoreError>;

    /// Users matching `filter`, ordered by login, collected.
    fn list_users(&mut self, filter: &UserFilter) -> Result<Vec<UserView>, StoreError> {
        let mut users = Vec::new();
        self.for_each_user(filter, &mut |u| {
            users.push(u);
            ControlFlow::Continue(())
        })?;
        Ok(users)
    }

    /// One user with contacts and history.
    fn user_detail(&mut self, login: &str) -> Result<Option<UserDetail>, StoreError>;

    /// Takes the store's writer lock (see [`lock`]), waiting up to `wait` for
    /// another holder; `on_wait` hears who holds it while this waits. Held
    /// until [`Store::unlock_writer`], or until the store is dropped or its
    /// process dies. An applying run takes it before it loads anything it
    /// plans against and keeps it through [`Store::apply`]. Taking it again
    /// while held is a no-op.
    fn lock_writer(
        &mut self,
        wait: Duration,
        on_wait: &mut dyn FnMut(&LockHolder),
    ) -> Result<(), StoreError>;

    /// Releases the writer lock if this store holds it.
    fn unlock_writer(&mut self) -> Result<(), StoreError>;

    /// Stores `hash` (an Argon2id PHC string) as `login`'s password, revokes
    /// the user's open set-password tokens and journals "password_set" by
    /// `actor` (never the hash), in one transaction. `false`: no such login.
    fn set_password(
        &mut self,
        login: &str,
        hash: &str,
        now_ms: i64,
        actor: &str,
    ) -> Result<bool, StoreError>;

    /// Records a set-password token of `user` by its hash, good until `expires_ms`.
    fn create_password_token(
        &mut self,
        user: UserId,
        token_hash: &str,
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// Redeems the token with `token_hash`: when it is valid, marks it used
    /// and sets the password to `password_hash` as [`Store::set_password`]
    /// does, all in one transaction (a token is good once, even under
    /// concurrent use); otherwise writes nothing and says why not.
    fn redeem_password_token(
        &mut self,
        token_hash: &str,
        password_hash: &str,
        now_ms: i64,
        actor: &str,
    ) -> Result<TokenCheck, StoreError>;
}
