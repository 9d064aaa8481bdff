//! The e-mail outbox (SPEC §4): messages queued in the same transaction as the
//! change that causes them, and what the dispatcher and `mail status` ask of it.
//!
//! The store never sends anything. It queues (`welcome` the first time a user
//! becomes active, `registration_confirmation` after a registration or, when
//! configured, a sync creation), cancels the queued mail of users that lose
//! access, and moves each message through its states for the dispatcher:
//! `queued` → `sending` (claimed) → `sent`, or back to `queued` to retry, or
//! `failed`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::StoreError;
use crate::config::MailConfig;
use crate::model::UserId;

/// The kind of a message: one type with the templates' (`crate::mail`).
pub use crate::mail::MailKind;

/// Where a message is on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutboxState {
    /// Waiting for its not-before time and the dispatcher.
    Queued,
    /// Claimed by a dispatcher that is sending it now.
    Sending,
    /// Accepted by the mail server (or written by the file transport).
    Sent,
    /// Given up on: a permanent refusal, or its attempts ran out.
    Failed,
    /// Its user was disabled, rejected or deleted before it went out.
    Cancelled,
}

impl OutboxState {
    /// Every state, in the order of a message's life.
    pub const ALL: &'static [OutboxState] = &[
        OutboxState::Queued,
        OutboxState::Sending,
        OutboxState::Sent,
        OutboxState::Failed,
        OutboxState::Cancelled,
    ];

    /// The name in the store, `mail status` and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Queued => "queued",
            OutboxState::Sending => "sending",
            OutboxState::Sent => "sent",
            OutboxState::Failed => "failed",
            OutboxState::Cancelled => "cancelled",
        }
    }
}

macro_rules! text_impls {
    ($name:ident, $what:literal) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| {
                        let known: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                        format!(
                            "unknown {} {s:?}, expected one of: {}",
                            $what,
                            known.join(", ")
                        )
                    })
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

text_impls!(OutboxState, "outbox state");

/// One message of the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxEntry {
    /// Allocated in queue order, never reused.
    pub id: i64,
    /// What it is.
    pub kind: MailKind,
    /// The user it is for (the row stays after the user is deleted).
    #[serde(serialize_with = "user_id")]
    pub user: UserId,
    /// The address, copied when it was queued.
    pub recipient: String,
    /// The language, copied when it was queued.
    pub locale: String,
    /// Not to be sent before this time (ms since the Unix epoch).
    pub not_before_ms: i64,
    /// Sends tried so far.
    pub attempts: u32,
    /// Why the last attempt did not succeed.
    pub last_error: Option<String>,
    /// Where it is.
    pub state: OutboxState,
    /// Its Message-ID header, made at queue time: every attempt sends the same.
    pub message_id: String,
    /// The run that queued it, if a run did.
    pub run: Option<i64>,
    /// When it was queued.
    pub created_ms: i64,
    /// When its state last changed.
    pub updated_ms: i64,
    /// When it was sent.
    pub sent_ms: Option<i64>,
}

fn user_id<S: serde::Serializer>(id: &UserId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(id.0)
}

/// The user a message is for, as its templates need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressee {
    /// The login (the welcome tells it).
    pub login: String,
    /// The display name, also the name in `To`.
    pub title: String,
    /// The user's status now: mail to a disabled or rejected user is not sent.
    pub status: crate::model::Status,
    /// The names of the user's accounts (an account without a name by id),
    /// sorted.
    pub accounts: Vec<String>,
}

/// A run's welcomes held back because it created more than
/// `mail.max_welcome_per_run` users (SPEC §4), until `mail release RUN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldBatch {
    /// The run (its id in the run history), as `mail release` takes it.
    pub run: i64,
    /// The source of the run.
    pub source: String,
    /// How many users the run created.
    pub users: u64,
    /// Whether their registration confirmations are held too
    /// (`mail.confirm_sync_created` when the run applied).
    pub confirmations: bool,
    /// When the run held them.
    pub held_ms: i64,
    /// When the batch was released; `None`: still held.
    pub released_ms: Option<i64>,
    /// How many messages the release queued.
    pub released: Option<u64>,
}

/// What `mail release RUN` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// The batch's mail is queued now.
    Queued {
        /// Welcomes queued.
        welcomes: u64,
        /// Registration confirmations queued.
        confirmations: u64,
    },
    /// It had been released before: nothing queued this time.
    AlreadyReleased {
        /// When.
        at_ms: i64,
        /// How many messages that release queued.
        messages: u64,
    },
    /// That run held no batch.
    NoBatch,
}

/// What a write queues, from `mail:` (`None` when mail is not configured:
/// then nothing is queued, and users created meanwhile are not welcomed later
/// unless an admin resends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxPolicy {
    /// A run creating more users than this holds their welcomes in one batch.
    pub max_welcome_per_run: usize,
    /// Users created by sync get a registration confirmation too.
    pub confirm_sync_created: bool,
    /// The domain part of the Message-IDs made (`mail.from`'s domain).
    pub message_domain: String,
}

/// `mail.max_welcome_per_run` when not given (SPEC §4).
pub const DEFAULT_MAX_WELCOME_PER_RUN: usize = 500;

impl OutboxPolicy {
    /// The policy of `mail`; `None` when mail is not configured.
    pub fn of(mail: Option<&MailConfig>) -> Option<OutboxPolicy> {
        let mail = mail?;
        Some(OutboxPolicy {
            max_welcome_per_run: mail.max_welcome_per_run,
            confirm_sync_created: mail.confirm_sync_created,
            message_domain: mailbox_domain(&mail.from).unwrap_or("liaison").to_owned(),
        })
    }
}

/// The domain of a mailbox (`Name <a@example.com>` or `a@example.com`), if
/// it has one that can stand in a Message-ID.
fn mailbox_domain(mailbox: &str) -> Option<&str> {
    let address = mailbox.trim().trim_end_matches('>');
    let (_, domain) = address.rsplit_once('@')?;
    let domain = domain.trim();
    let fits = !domain.is_empty()
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
    fits.then_some(domain)
}

/// The outbox as the dispatcher and `mail status` use it. Every state change
/// moves a message from one given state only, so two dispatchers never both
/// own one; a change from any other state is [`StoreError::OutboxState`].
pub trait Outbox {
    /// Queued messages whose not-before time is at or before `now_ms`, in
    /// not-before then queue order, at most `limit`.
    fn outbox_due(&mut self, now_ms: i64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Claims a message for sending: `queued` → `sending`, atomically. False
    /// when it is not queued (claimed by another dispatcher, cancelled).
    fn outbox_claim(&mut self, id: i64, now_ms: i64) -> Result<bool, StoreError>;

    /// `sending` → `sent`. An error here must stop the dispatcher: the
    /// message went out, and a retry would send it again.
    fn outbox_sent(&mut self, id: i64, now_ms: i64) -> Result<(), StoreError>;

    /// `sending` → `queued` again, not before `not_before_ms`, one attempt more,
    /// with why this one failed.
    fn outbox_retry(
        &mut self,
        id: i64,
        error: &str,
        not_before_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// `sending` → `failed`, one attempt more, with why.
    fn outbox_failed(&mut self, id: i64, error: &str, now_ms: i64) -> Result<(), StoreError>;

    /// `sending` → `cancelled`: its user lost access between the claim and
    /// the send (a queued message is cancelled with the change itself).
    fn outbox_cancel_claimed(&mut self, id: i64, now_ms: i64) -> Result<(), StoreError>;

    /// What a message to `user` is rendered from; `None` when the user is
    /// gone (deleted).
    fn outbox_addressee(&mut self, user: UserId) -> Result<Option<Addressee>, StoreError>;

    /// How many messages were sent after `since_ms`: what
    /// `mail.rate_per_minute` is measured against (the minute before now).
    fn outbox_sent_since(&mut self, since_ms: i64) -> Result<u64, StoreError>;

    /// How many messages are in each state; every state is there, zero or not.
    fn outbox_counts(&mut self) -> Result<BTreeMap<String, u64>, StoreError>;

    /// The latest failed messages (most recent first), at most `limit`, with
    /// their reasons in [`OutboxEntry::last_error`].
    fn outbox_failures(&mut self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Messages left `sending` by a process that died go back to `queued`
    /// (one attempt more); call it when a dispatcher starts, while no other
    /// dispatcher runs on the store. A message whose server said `250` just
    /// before the process died is sent again: the documented duplicate window
    /// (`docs/decisions/0021-outbox.md`). Returns how many were requeued.
    fn outbox_requeue_sending(&mut self, now_ms: i64) -> Result<u64, StoreError>;

    /// Every held batch, still held or released, oldest first.
    fn outbox_held(&mut self) -> Result<Vec<HeldBatch>, StoreError>;

    /// Queues the mail `run` held (once): the welcomes of its users that are
    /// still active and were never welcomed, and their confirmations when the
    /// batch held those too. `policy` gives the Message-ID domain.
    fn outbox_release(
        &mut self,
        run: i64,
        policy: &OutboxPolicy,
        now_ms: i64,
    ) -> Result<Release, StoreError>;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in MailKind::ALL {
            assert_eq!(k.as_str().parse::<MailKind>(), Ok(k));
        }
        for s in OutboxState::ALL {
            assert_eq!(s.as_str().parse::<OutboxState>(), Ok(*s));
        }
        assert!("mailed".parse::<OutboxState>().is_err());
    }

    #[test]
    fn message_domains_come_from_the_sender() {
        assert_eq!(
            mailbox_domain("Support <support@example.com>"),
            Some("example.com")
        );
        assert_eq!(mailbox_domain("a@x.example"), Some("x.example"));
        assert_eq!(mailbox_domain("nobody"), None);
        assert_eq!(mailbox_domain("a@[127.0.0.1]"), None);
    }
}
