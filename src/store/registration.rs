//! Registrations made by an operator and the admin lifecycle of a registered
//! user (SPEC §1, §4, §5): `users register`, `approve`, `reject`,
//! `resend-welcome` and `resend-confirmation`.
//!
//! The rules live here as pure functions over plain values — who is approved
//! at once ([`approval`]), when a re-registration queues its confirmation
//! again ([`reconfirmation`]) — and the [`Registrations`] trait is what a
//! store implements to apply them in one transaction each, with the outbox
//! and the journal (decision 0024).

use std::time::Duration;

use crate::model::{AccountId, DomainMatch, Email, Status, UserId};
use crate::store::{MailKind, OutboxPolicy, StoreError};

/// What `users register` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The person's name: the user's title, and where its login comes from.
    pub name: String,
    /// The address: the user's identity (case-insensitive) and where mail goes.
    pub email: Email,
    /// An account to link directly (`--account`): it must exist.
    pub account: Option<AccountId>,
    /// The language of its mail.
    pub locale: String,
    /// Who registered it, for the journal.
    pub actor: String,
}

/// How registrations are handled, from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationPolicy {
    /// `registration.cooldown`: a re-registration within this time of the
    /// last confirmation queues none.
    pub cooldown: Duration,
    /// What is queued (`None`: mail is not configured, nothing is queued).
    pub outbox: Option<OutboxPolicy>,
}

/// Whether a new registration is approved at once, and why (not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// The e-mail's domain is one of this account's domains: active at once,
    /// linked to it.
    ByDomain {
        /// The account claiming the domain.
        account: AccountId,
        /// The domain.
        domain: String,
    },
    /// No account claims the domain: pending.
    NoAccountClaimsDomain,
    /// Several accounts claim the domain (sorted): none is chosen, pending.
    AmbiguousDomain(Vec<AccountId>),
    /// `--account` named another account than the one claiming the domain:
    /// pending, linked to the named one.
    DomainOfAnotherAccount(AccountId),
}

impl Approval {
    /// The status a registration with this approval starts in.
    pub fn status(&self) -> Status {
        match self {
            Approval::ByDomain { .. } => Status::Active,
            _ => Status::Pending,
        }
    }
}

/// Who approves a registration at once: the one account claiming the
/// e-mail's `domain` (`found`), when no other account was named
/// (`explicit`). Naming the claiming account is the same as naming none.
pub fn approval(explicit: Option<&AccountId>, domain: &str, found: &DomainMatch) -> Approval {
    match (found, explicit) {
        (DomainMatch::One(claims), Some(named)) if claims != named => {
            Approval::DomainOfAnotherAccount(claims.clone())
        }
        (DomainMatch::One(claims), _) => Approval::ByDomain {
            account: claims.clone(),
            domain: domain.to_owned(),
        },
        (DomainMatch::Ambiguous(ids), _) => Approval::AmbiguousDomain(ids.clone()),
        (DomainMatch::None, _) => Approval::NoAccountClaimsDomain,
    }
}

/// What a re-registration of a known address did about its confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconfirmation {
    /// The confirmation was queued again.
    Queued,
    /// The last one was queued within the cooldown: none until this time.
    Cooldown {
        /// When a re-registration would queue one again (ms since the epoch).
        until_ms: i64,
    },
    /// The user is not pending (active, disabled, rejected): a confirmation
    /// of a registration is not what it needs.
    NotPending,
    /// Mail is not configured: nothing is queued.
    NoMail,
}

/// Whether a re-registration of a `status` user, whose last confirmation
/// was queued at `last_ms` (`None`: never), queues one again at `now_ms`.
pub fn reconfirmation(
    status: Status,
    last_ms: Option<i64>,
    cooldown: Duration,
    mail: bool,
    now_ms: i64,
) -> Reconfirmation {
    if status != Status::Pending {
        return Reconfirmation::NotPending;
    }
    if !mail {
        return Reconfirmation::NoMail;
    }
    let cooldown_ms = i64::try_from(cooldown.as_millis()).unwrap_or(i64::MAX);
    match last_ms {
        Some(last) if now_ms < last.saturating_add(cooldown_ms) => Reconfirmation::Cooldown {
            until_ms: last.saturating_add(cooldown_ms),
        },
        _ => Reconfirmation::Queued,
    }
}

/// What [`Registrations::register`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// A new user.
    Created {
        /// Its id.
        user: UserId,
        /// Its login, derived from the name.
        login: String,
        /// The account linked directly, if any.
        account: Option<AccountId>,
        /// Approved at once or pending, and why.
        approval: Approval,
        /// The mail queued, in queue order.
        queued: Vec<MailKind>,
    },
    /// The address belongs to a user already: nothing about it changed.
    Known {
        /// That user's login.
        login: String,
        /// Its status.
        status: Status,
        /// Whether its confirmation was queued again.
        confirmation: Reconfirmation,
    },
}

/// Why an admin write was refused (nothing written), or the store failing.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No user has the login.
    #[error("no user with login {0:?}")]
    NoSuchUser(String),
    /// The user is not in the status the command needs.
    #[error("user {login:?} is {status}, not {needed}")]
    WrongStatus {
        /// The user.
        login: String,
        /// Its status.
        status: Status,
        /// The status the command acts on.
        needed: Status,
    },
    /// `--account` names an account the store does not know.
    #[error(
        "no account with id {0:?} (accounts come from the sources and the config's accounts:)"
    )]
    UnknownAccount(String),
    /// The user has no e-mail address to send to.
    #[error("user {0:?} has no e-mail address")]
    NoAddress(String),
    /// The login asked for is another user's.
    #[error("login {0:?} is taken by another user")]
    LoginTaken(String),
    /// The login asked for was a deleted user's: a login is never given again.
    #[error("login {0:?} belonged to a deleted user and is never given again")]
    LoginRetired(String),
    /// Another user has the address (compared without case).
    #[error("e-mail {email:?} is the address of user {login:?}")]
    DuplicateEmail {
        /// The address.
        email: String,
        /// The user who has it.
        login: String,
    },
    /// The contact is linked to a user already.
    #[error("contact {contact} is already linked to user {login:?}")]
    ContactLinked {
        /// The contact, as `SOURCE:ID`.
        contact: String,
        /// The user it is linked to.
        login: String,
    },
    /// A field one of the user's linked contacts gives: the next sync would
    /// undo an edit of it.
    #[error(
        "{field} of user {login:?} is given by source {owner} (contact {contact}): \
         the next sync would undo the edit; change it in the source"
    )]
    SourceOwned {
        /// The user.
        login: String,
        /// The field (SPEC §1 name, `attributes.KEY` for an attribute).
        field: String,
        /// The source giving it.
        owner: String,
        /// The contact giving it, as `SOURCE:ID`.
        contact: String,
    },
    /// A `sync` user none of whose contacts is linked: enabling it would
    /// give access no source grants.
    #[error(
        "user {login:?} is a sync user none of whose contacts is linked: every one has left \
         source {} ({}); sync enables it when one comes back, or an admin links one \
         (liaison users edit {login} --link-contact SOURCE:ID)",
        sources_of(.contacts), .contacts.join(", ")
    )]
    ContactsLeft {
        /// The user.
        login: String,
        /// Its contacts, as `SOURCE:ID`.
        contacts: Vec<String>,
    },
    /// The user is not linked to the account.
    #[error("user {login:?} is not linked to account {account:?}")]
    NotLinked {
        /// The user.
        login: String,
        /// The account.
        account: String,
    },
    /// Anything else the command cannot do, said whole.
    #[error("{0}")]
    Refused(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The distinct sources of `SOURCE:ID` anchors, joined for a message.
fn sources_of(contacts: &[String]) -> String {
    let mut sources: Vec<&str> = contacts
        .iter()
        .map(|c| c.split_once(':').map_or(c.as_str(), |(s, _)| s))
        .collect();
    sources.dedup();
    sources.sort_unstable();
    sources.dedup();
    sources.join(", ")
}

impl AdminError {
    /// Whether the caller got the command wrong (an unknown account), rather
    /// than the directory being in another state than it needs.
    pub fn is_usage(&self) -> bool {
        matches!(self, AdminError::UnknownAccount(_))
    }
}

/// What an admin write that may queue mail did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    /// How many messages it queued.
    pub messages: u64,
    /// How many queued messages it cancelled.
    pub cancelled: u64,
}

/// Registration and the admin lifecycle of users, each one transaction
/// with its journal entry (by `actor`) and its outbox rows.
pub trait Registrations {
    /// Registers `r`: a new user, `pending` (origin `registration`) with its
    /// confirmation queued, or approved at once — `active`, linked to the
    /// account claiming its e-mail's domain, confirmation and welcome queued
    /// — when [`approval`] says so. An address a user has already changes
    /// nothing; its confirmation is queued again when [`reconfirmation`]
    /// says so. A `--account` the store does not know is
    /// [`AdminError::UnknownAccount`].
    fn register(
        &mut self,
        r: &Registration,
        policy: &RegistrationPolicy,
        now_ms: i64,
    ) -> Result<Registered, AdminError>;

    /// `pending` → `active`, journaled by `actor`; queues the welcome, once
    /// in the user's life (the outbox rule sync follows).
    fn approve(
        &mut self,
        login: &str,
        outbox: Option<&OutboxPolicy>,
        actor: &str,
        now_ms: i64,
    ) -> Result<Queued, AdminError>;

    /// `pending` → `rejected`, journaled by `actor`; its queued mail is
    /// cancelled.
    fn reject(&mut self, login: &str, actor: &str, now_ms: i64) -> Result<Queued, AdminError>;

    /// Queues `kind` for the user again, whatever was sent before (a welcome
    /// only for an active user), journaled by `actor`.
    fn resend(
        &mut self,
        login: &str,
        kind: MailKind,
        outbox: &OutboxPolicy,
        actor: &str,
        now_ms: i64,
    ) -> Result<Queued, AdminError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn id(s: &str) -> AccountId {
        AccountId(s.to_owned())
    }

    #[test]
    fn the_one_account_claiming_the_domain_approves() {
        let one = DomainMatch::One(id("acme"));
        let by_domain = Approval::ByDomain {
            account: id("acme"),
            domain: "acme.example".into(),
        };
        assert_eq!(approval(None, "acme.example", &one), by_domain);
        assert_eq!(approval(Some(&id("acme")), "acme.example", &one), by_domain);
        assert_eq!(by_domain.status(), Status::Active);
        let other = approval(Some(&id("globex")), "acme.example", &one);
        assert_eq!(other, Approval::DomainOfAnotherAccount(id("acme")));
        assert_eq!(other.status(), Status::Pending);
        let two = DomainMatch::Ambiguous(vec![id("a"), id("b")]);
        assert_eq!(
            approval(None, "x.example", &two),
            Approval::AmbiguousDomain(vec![id("a"), id("b")])
        );
        assert_eq!(
            approval(None, "x.example", &DomainMatch::None),
            Approval::NoAccountClaimsDomain
        );
    }

    #[test]
    fn a_confirmation_is_queued_again_only_after_the_cooldown() {
        let t0 = 1_800_000_000_000;
        let hour = 3_600_000;
        let at = |now| reconfirmation(Status::Pending, Some(t0), HOUR, true, now);
        assert_eq!(
            at(t0 + hour - 1),
            Reconfirmation::Cooldown {
                until_ms: t0 + hour
            }
        );
        assert_eq!(at(t0 + hour), Reconfirmation::Queued);
        assert_eq!(
            reconfirmation(Status::Pending, None, HOUR, true, t0),
            Reconfirmation::Queued
        );
        assert_eq!(
            reconfirmation(Status::Pending, None, HOUR, false, t0),
            Reconfirmation::NoMail
        );
        for s in [Status::Active, Status::Disabled, Status::Rejected] {
            assert_eq!(
                reconfirmation(s, None, HOUR, true, t0),
                Reconfirmation::NotPending
            );
        }
    }
}
