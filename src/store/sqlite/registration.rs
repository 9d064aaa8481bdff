//! Registrations and the admin lifecycle of users in SQLite: each command is
//! one `BEGIN IMMEDIATE` transaction holding the user's change, its journal
//! entry (with the actor) and its outbox rows (see [`crate::store::registration`]).

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::outbox::{cancel_queued, queue, queue_for};
use super::SqliteStore;
use crate::model::{derive_login_base, AccountId, Login, Status, UserId};
use crate::store::registration::{approval, reconfirmation};
use crate::store::search::search_text;
use crate::store::{
    AdminError, Approval, DriverError, MailKind, OutboxPolicy, Queued, Reconfirmation, Registered,
    Registration, RegistrationPolicy, Registrations, StoreError,
};

fn q(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |source| StoreError::Query {
        what,
        source: DriverError::new(source),
    }
}

/// A user as the lifecycle commands need it.
struct Found {
    id: UserId,
    login: String,
    status: Status,
    has_address: bool,
    confirmation_queued_at: Option<i64>,
}

const FOUND_COLUMNS: &str = "id, login, status, email IS NOT NULL, confirmation_queued_at";

fn found_from_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(i64, String, String, bool, Option<i64>)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

/// The user `sql` (selecting [`FOUND_COLUMNS`] with one parameter) finds.
fn find(tx: &Connection, sql: &str, key: &str) -> Result<Option<Found>, StoreError> {
    let row = tx
        .prepare_cached(sql)
        .and_then(|mut s| s.query_row([key], found_from_row).optional())
        .map_err(q("finding a user"))?;
    let Some((id, login, status, has_address, confirmation_queued_at)) = row else {
        return Ok(None);
    };
    let status = status.parse().map_err(|detail| StoreError::Corrupt {
        what: "status",
        detail,
    })?;
    Ok(Some(Found {
        id: UserId(id),
        login,
        status,
        has_address,
        confirmation_queued_at,
    }))
}

fn by_login(tx: &Connection, login: &str) -> Result<Found, AdminError> {
    let sql = format!("SELECT {FOUND_COLUMNS} FROM users WHERE login = ?1");
    find(tx, &sql, login)?.ok_or_else(|| AdminError::NoSuchUser(login.to_owned()))
}

/// The one user with this normalized address; with several (sync refuses to
/// make them, an old store may hold them) the oldest.
fn by_address(tx: &Connection, email_norm: &str) -> Result<Option<Found>, StoreError> {
    let sql =
        format!("SELECT {FOUND_COLUMNS} FROM users WHERE email_norm = ?1 ORDER BY id LIMIT 1");
    find(tx, &sql, email_norm)
}

pub(super) fn begin(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(q("starting an admin write"))
}

pub(super) fn commit(tx: Transaction<'_>) -> Result<(), StoreError> {
    tx.commit().map_err(q("committing an admin write"))
}

/// One journal entry of an admin write; `old` and `new` are JSON texts.
pub(super) struct Entry<'a> {
    pub(super) user: UserId,
    pub(super) action: &'a str,
    pub(super) field: Option<&'a str>,
    pub(super) old: Option<String>,
    pub(super) new: Option<String>,
}

pub(super) fn journal(
    tx: &Connection,
    e: &Entry<'_>,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO journal (run_id, source, user_id, login, at, action, field, old, new, actor) \
         SELECT NULL, NULL, id, login, ?2, ?3, ?4, ?5, ?6, ?7 FROM users WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            e.user.0, now, e.action, e.field, e.old, e.new, actor
        ])
    })
    .map_err(q("writing the journal"))?;
    Ok(())
}

fn json_text(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// A status change, journaled as `action` with the field's old → new.
fn set_status(
    tx: &Connection,
    user: &Found,
    to: Status,
    action: &str,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE users SET status = ?2, updated_at = ?3 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![user.id.0, to.as_str(), now]))
        .map_err(q("changing a user's status"))?;
    let entry = Entry {
        user: user.id,
        action,
        field: Some("status"),
        old: Some(json_text(user.status.as_str())),
        new: Some(json_text(to.as_str())),
    };
    journal(tx, &entry, actor, now)
}

/// Refuses a user not in `needed`.
fn require(user: &Found, needed: Status) -> Result<(), AdminError> {
    if user.status == needed {
        return Ok(());
    }
    Err(AdminError::WrongStatus {
        login: user.login.clone(),
        status: user.status,
        needed,
    })
}

pub(super) fn account_exists(tx: &Connection, id: &AccountId) -> Result<bool, StoreError> {
    tx.prepare_cached("SELECT 1 FROM accounts WHERE id = ?1")
        .and_then(|mut s| s.exists([id.as_str()]))
        .map_err(q("reading an account"))
}

/// The first login from `base` (then `base2`, `base3` …) that no user has
/// and no deleted user had.
pub(super) fn free_login(tx: &Connection, base: &str) -> Result<Login, StoreError> {
    let mut taken = std::collections::HashSet::new();
    let mut stmt = tx
        .prepare_cached(
            "SELECT login FROM users WHERE login >= ?1 AND login < ?2 \
             UNION ALL SELECT login FROM retired_logins WHERE login >= ?1 AND login < ?2",
        )
        .map_err(q("reading taken logins"))?;
    let upper = format!("{base}\u{7f}");
    let rows = stmt
        .query_map(params![base, upper], |r| r.get::<_, String>(0))
        .map_err(q("reading taken logins"))?;
    for login in rows {
        taken.insert(login.map_err(q("reading taken logins"))?);
    }
    let free = (1..)
        .map(|n| Login::with_suffix(base, n))
        .find(|l| !taken.contains(l.as_str()));
    // `taken` is finite, so the search ends.
    Ok(free.unwrap_or_else(|| Login::with_suffix(base, u32::MAX)))
}

/// A new user's row, search text, direct account and journal entry.
struct NewUser<'a> {
    r: &'a Registration,
    login: &'a Login,
    status: Status,
    account: Option<&'a AccountId>,
}

fn insert_user(tx: &Connection, n: &NewUser<'_>, now: i64) -> Result<UserId, StoreError> {
    let last: i64 = tx
        .query_row(
            "UPDATE meta SET value = value + 1 WHERE key = 'last_user_id' RETURNING value",
            [],
            |r| r.get(0),
        )
        .map_err(q("allocating a user id"))?;
    let r = n.r;
    tx.prepare_cached(
        "INSERT INTO users (id, login, title, email, email_norm, locale, status, origin, \
         account_contacts, account_tickets, external_comments, grants, attributes, \
         created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'registration', 0, 0, 0, '[]', '{}', ?8, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            last,
            n.login.as_str(),
            r.name,
            r.email.as_str(),
            r.email.normalized(),
            r.locale,
            n.status.as_str(),
            now
        ])
    })
    .map_err(q("creating a user"))?;
    let text = search_text(
        n.login.as_str(),
        &r.name,
        Some(r.email.as_str()),
        None,
        std::iter::empty(),
    );
    tx.prepare_cached("INSERT INTO user_search (id, text) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![last, text]))
        .map_err(q("indexing a user for search"))?;
    if let Some(account) = n.account {
        tx.prepare_cached(
            "INSERT INTO user_accounts (user_id, account_id, actor, linked_at) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut s| s.execute(params![last, account.as_str(), r.actor, now]))
        .map_err(q("linking an account"))?;
    }
    let record = serde_json::json!({
        "login": n.login.as_str(),
        "title": r.name,
        "email": r.email.as_str(),
        "locale": r.locale,
        "status": n.status.as_str(),
        "origin": "registration",
        "accounts": n.account.map(AccountId::as_str).into_iter().collect::<Vec<_>>(),
    });
    let entry = Entry {
        user: UserId(last),
        action: "create",
        field: None,
        old: None,
        new: Some(record.to_string()),
    };
    journal(tx, &entry, &r.actor, now)?;
    Ok(UserId(last))
}

/// A registration of an address nobody has yet.
fn create(
    tx: &Connection,
    r: &Registration,
    policy: &RegistrationPolicy,
    now: i64,
) -> Result<Registered, AdminError> {
    if let Some(id) = &r.account {
        if !account_exists(tx, id)? {
            return Err(AdminError::UnknownAccount(id.to_string()));
        }
    }
    let domain = r.email.domain();
    let found = super::accounts::account_for_domain(tx, domain)?;
    let approval = approval(r.account.as_ref(), domain, &found);
    let account = match (&r.account, &approval) {
        (Some(named), _) => Some(named.clone()),
        (None, Approval::ByDomain { account, .. }) => Some(account.clone()),
        (None, _) => None,
    };
    let login = free_login(tx, &derive_login_base(&r.name, r.email.local_part()))?;
    let status = approval.status();
    let new = NewUser {
        r,
        login: &login,
        status,
        account: account.as_ref(),
    };
    let user = insert_user(tx, &new, now)?;
    let mut queued = Vec::new();
    if let Some(outbox) = &policy.outbox {
        let confirmation = MailKind::RegistrationConfirmation;
        if queue_for(tx, outbox, confirmation, user, now)? > 0 {
            queued.push(confirmation);
        }
        if status == Status::Active
            && queue(tx, outbox, MailKind::Welcome, &(user.0..=user.0), None, now)? > 0
        {
            queued.push(MailKind::Welcome);
        }
    }
    Ok(Registered::Created {
        user,
        login: login.to_string(),
        account,
        approval,
        queued,
    })
}

/// A registration of an address `known` has: nothing about the user
/// changes; its confirmation may be queued again (journaled).
fn again(
    tx: &Connection,
    known: Found,
    r: &Registration,
    policy: &RegistrationPolicy,
    now: i64,
) -> Result<Registered, AdminError> {
    let last = known.confirmation_queued_at;
    let mut confirmation = reconfirmation(
        known.status,
        last,
        policy.cooldown,
        policy.outbox.is_some(),
        now,
    );
    if let (Reconfirmation::Queued, Some(outbox)) = (confirmation, &policy.outbox) {
        let kind = MailKind::RegistrationConfirmation;
        if queue_for(tx, outbox, kind, known.id, now)? == 0 {
            confirmation = Reconfirmation::NoMail;
        } else {
            let entry = Entry {
                user: known.id,
                action: "confirmation_requeued",
                field: None,
                old: None,
                new: None,
            };
            journal(tx, &entry, &r.actor, now)?;
        }
    }
    Ok(Registered::Known {
        login: known.login,
        status: known.status,
        confirmation,
    })
}

/// Approves a pending user in `tx`; queues its welcome (once in its life).
fn approve_in(
    tx: &Connection,
    login: &str,
    outbox: Option<&OutboxPolicy>,
    actor: &str,
    now: i64,
) -> Result<Queued, AdminError> {
    let user = by_login(tx, login)?;
    require(&user, Status::Pending)?;
    set_status(tx, &user, Status::Active, "approve", actor, now)?;
    let messages = match outbox {
        Some(policy) => queue(
            tx,
            policy,
            MailKind::Welcome,
            &(user.id.0..=user.id.0),
            None,
            now,
        )?,
        None => 0,
    };
    Ok(Queued {
        messages,
        cancelled: 0,
    })
}

fn reject_in(tx: &Connection, login: &str, actor: &str, now: i64) -> Result<Queued, AdminError> {
    let user = by_login(tx, login)?;
    require(&user, Status::Pending)?;
    set_status(tx, &user, Status::Rejected, "reject", actor, now)?;
    let cancelled = cancel_queued(tx, user.id, now)?;
    Ok(Queued {
        messages: 0,
        cancelled,
    })
}

fn resend_in(
    tx: &Connection,
    login: &str,
    kind: MailKind,
    outbox: &OutboxPolicy,
    actor: &str,
    now: i64,
) -> Result<Queued, AdminError> {
    let user = by_login(tx, login)?;
    match kind {
        MailKind::Welcome => require(&user, Status::Active)?,
        // Mail to a disabled or rejected user is never sent.
        MailKind::RegistrationConfirmation => {
            if matches!(user.status, Status::Disabled | Status::Rejected) {
                return Err(AdminError::WrongStatus {
                    login: user.login,
                    status: user.status,
                    needed: Status::Pending,
                });
            }
        }
    }
    if !user.has_address {
        return Err(AdminError::NoAddress(user.login));
    }
    let messages = queue_for(tx, outbox, kind, user.id, now)?;
    let action = match kind {
        MailKind::Welcome => "resend_welcome",
        MailKind::RegistrationConfirmation => "resend_confirmation",
    };
    let entry = Entry {
        user: user.id,
        action,
        field: None,
        old: None,
        new: None,
    };
    journal(tx, &entry, actor, now)?;
    Ok(Queued {
        messages,
        cancelled: 0,
    })
}

impl Registrations for SqliteStore {
    fn register(
        &mut self,
        r: &Registration,
        policy: &RegistrationPolicy,
        now_ms: i64,
    ) -> Result<Registered, AdminError> {
        let tx = begin(&mut self.conn)?;
        let done = match by_address(&tx, r.email.normalized())? {
            Some(known) => again(&tx, known, r, policy, now_ms)?,
            None => create(&tx, r, policy, now_ms)?,
        };
        commit(tx)?;
        Ok(done)
    }

    fn approve(
        &mut self,
        login: &str,
        outbox: Option<&OutboxPolicy>,
        actor: &str,
        now_ms: i64,
    ) -> Result<Queued, AdminError> {
        let tx = begin(&mut self.conn)?;
        let done = approve_in(&tx, login, outbox, actor, now_ms)?;
        commit(tx)?;
        Ok(done)
    }

    fn reject(&mut self, login: &str, actor: &str, now_ms: i64) -> Result<Queued, AdminError> {
        let tx = begin(&mut self.conn)?;
        let done = reject_in(&tx, login, actor, now_ms)?;
        commit(tx)?;
        Ok(done)
    }

    fn resend(
        &mut self,
        login: &str,
        kind: MailKind,
        outbox: &OutboxPolicy,
        actor: &str,
        now_ms: i64,
    ) -> Result<Queued, AdminError> {
        let tx = begin(&mut self.conn)?;
        let done = resend_in(&tx, login, kind, outbox, actor, now_ms)?;
        commit(tx)?;
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;
    use crate::model::{Account, Domain, Email};
    use crate::store::{Outbox, OutboxEntry, OutboxState, Store, UserFilter};

    /// The clock these tests inject.
    const T0: i64 = 1_800_000_000_000;
    const MINUTE: i64 = 60_000;

    fn outbox() -> OutboxPolicy {
        OutboxPolicy {
            max_welcome_per_run: 500,
            confirm_sync_created: false,
            message_domain: "example.com".into(),
        }
    }

    fn policy() -> RegistrationPolicy {
        RegistrationPolicy {
            cooldown: Duration::from_secs(3600),
            outbox: Some(outbox()),
        }
    }

    /// A store knowing account `acme` (ACME, domain `acme.example`) and
    /// `globex` (no domains).
    fn seeded() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let accounts = [
            Account {
                id: AccountId("acme".into()),
                name: Some("ACME".into()),
                domains: vec![Domain::parse("acme.example").unwrap()],
            },
            Account {
                id: AccountId("globex".into()),
                name: Some("Globex".into()),
                domains: vec![],
            },
        ];
        store.declare_accounts(&accounts, T0 - 1).unwrap();
        (dir, store)
    }

    fn registration(name: &str, email: &str) -> Registration {
        Registration {
            name: name.into(),
            email: Email::parse(email).unwrap(),
            account: None,
            locale: "cs".into(),
            actor: "alice".into(),
        }
    }

    /// Every message of the outbox in queue order, whatever its state.
    fn messages(s: &SqliteStore) -> Vec<(MailKind, i64, OutboxState)> {
        let mut stmt = s
            .conn
            .prepare("SELECT kind, user_id, state FROM outbox ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?.parse::<MailKind>().unwrap(),
                r.get(1)?,
                r.get::<_, String>(2)?.parse::<OutboxState>().unwrap(),
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    fn created(r: Registered) -> (UserId, String, Option<AccountId>, Approval, Vec<MailKind>) {
        match r {
            Registered::Created {
                user,
                login,
                account,
                approval,
                queued,
            } => (user, login, account, approval, queued),
            other => panic!("not created: {other:?}"),
        }
    }

    fn due(s: &mut SqliteStore) -> Vec<OutboxEntry> {
        s.outbox_due(i64::MAX, 100).unwrap()
    }

    const CONFIRM: MailKind = MailKind::RegistrationConfirmation;
    const WELCOME: MailKind = MailKind::Welcome;

    #[test]
    fn a_registration_is_a_pending_user_with_its_confirmation_queued() {
        let (_d, mut s) = seeded();
        let r = registration("Jiří Dvořák", "Jiri@Other.example");
        let (user, login, account, approval, queued) =
            created(s.register(&r, &policy(), T0).unwrap());
        assert_eq!(login, "jiri.dvorak");
        assert_eq!(account, None);
        assert_eq!(approval, Approval::NoAccountClaimsDomain);
        assert_eq!(queued, vec![CONFIRM]);
        let d = s.user_detail("jiri.dvorak").unwrap().unwrap();
        assert_eq!(
            (d.user.status, d.user.origin),
            (Status::Pending, crate::model::Origin::Registration)
        );
        assert_eq!(d.user.email.as_deref(), Some("Jiri@Other.example"));
        assert_eq!(d.user.locale, "cs");
        let h = &d.history[0];
        assert_eq!(
            (h.action.as_str(), h.actor.as_deref()),
            ("create", Some("alice"))
        );
        let m = &due(&mut s)[0];
        assert_eq!(
            (m.kind, m.user, m.recipient.as_str(), m.locale.as_str()),
            (CONFIRM, user, "Jiri@Other.example", "cs")
        );
        // A second person of the same name gets the next login.
        let (_, login, ..) = created(
            s.register(
                &registration("Jiri Dvorak", "j2@other.example"),
                &policy(),
                T0,
            )
            .unwrap(),
        );
        assert_eq!(login, "jiri.dvorak2");
    }

    #[test]
    fn an_address_of_a_known_accounts_domain_is_approved_at_once() {
        let (_d, mut s) = seeded();
        let r = registration("Ann Lee", "ann@ACME.example");
        let (user, _, account, approval, queued) = created(s.register(&r, &policy(), T0).unwrap());
        assert_eq!(account, Some(AccountId("acme".into())));
        assert_eq!(
            approval,
            Approval::ByDomain {
                account: AccountId("acme".into()),
                domain: "acme.example".into()
            }
        );
        assert_eq!(queued, vec![CONFIRM, WELCOME]);
        let d = s.user_detail("ann.lee").unwrap().unwrap();
        assert_eq!(d.user.status, Status::Active);
        assert_eq!(d.user.accounts, ["acme"]);
        assert_eq!(d.direct_accounts, ["acme"]);
        assert_eq!(d.linked_accounts[0].name.as_deref(), Some("ACME"));
        // The welcome shows the account (taken from the direct link).
        let addressee = s.outbox_addressee(user).unwrap().unwrap();
        assert_eq!(addressee.accounts, ["ACME"]);
        // `users list --account` finds a directly linked user.
        let filter = UserFilter {
            account: Some("acme".into()),
            ..UserFilter::default()
        };
        let listed = s.list_users(&filter).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].login, "ann.lee");
        // Approving it again is refused: it is active.
        let e = s
            .approve("ann.lee", Some(&outbox()), "bob", T0)
            .unwrap_err();
        assert_eq!(e.to_string(), "user \"ann.lee\" is active, not pending");
    }

    #[test]
    fn a_named_account_must_exist_and_is_linked_without_approving() {
        let (_d, mut s) = seeded();
        let mut r = registration("Bo Ek", "bo@other.example");
        r.account = Some(AccountId("initech".into()));
        let e = s.register(&r, &policy(), T0).unwrap_err();
        assert!(
            matches!(&e, AdminError::UnknownAccount(id) if id == "initech"),
            "{e}"
        );
        assert!(e.is_usage());
        assert!(messages(&s).is_empty(), "nothing written");
        r.account = Some(AccountId("globex".into()));
        let (_, _, account, approval, queued) = created(s.register(&r, &policy(), T0).unwrap());
        assert_eq!(account, Some(AccountId("globex".into())));
        assert_eq!(approval, Approval::NoAccountClaimsDomain);
        assert_eq!(queued, vec![CONFIRM]);
        // Naming another account than the domain's leaves it pending.
        let mut r = registration("Cy Do", "cy@acme.example");
        r.account = Some(AccountId("globex".into()));
        let (_, _, account, approval, _) = created(s.register(&r, &policy(), T0).unwrap());
        assert_eq!(account, Some(AccountId("globex".into())));
        assert_eq!(
            approval,
            Approval::DomainOfAnotherAccount(AccountId("acme".into()))
        );
        assert_eq!(approval.status(), Status::Pending);
    }

    #[test]
    fn a_known_address_changes_nothing_and_is_confirmed_again_after_the_cooldown() {
        let (_d, mut s) = seeded();
        let (user, ..) = created(
            s.register(&registration("Dee", "dee@other.example"), &policy(), T0)
                .unwrap(),
        );
        let again = registration("Someone Else", "DEE@other.EXAMPLE");
        let within = s.register(&again, &policy(), T0 + 59 * MINUTE).unwrap();
        assert_eq!(
            within,
            Registered::Known {
                login: "dee".into(),
                status: Status::Pending,
                confirmation: Reconfirmation::Cooldown {
                    until_ms: T0 + 60 * MINUTE
                },
            }
        );
        assert_eq!(messages(&s).len(), 1, "no second confirmation");
        let after = s.register(&again, &policy(), T0 + 60 * MINUTE).unwrap();
        assert!(matches!(
            after,
            Registered::Known {
                confirmation: Reconfirmation::Queued,
                ..
            }
        ));
        assert_eq!(
            messages(&s),
            [
                (CONFIRM, user.0, OutboxState::Queued),
                (CONFIRM, user.0, OutboxState::Queued)
            ]
        );
        // The cooldown runs from that second confirmation now.
        let soon = s.register(&again, &policy(), T0 + 61 * MINUTE).unwrap();
        assert!(matches!(
            soon,
            Registered::Known {
                confirmation: Reconfirmation::Cooldown { .. },
                ..
            }
        ));
        let d = s.user_detail("dee").unwrap().unwrap();
        assert_eq!(d.user.title, "Dee", "the user is as registered first");
        let actions: Vec<&str> = d.history.iter().map(|h| h.action.as_str()).collect();
        assert_eq!(actions, ["create", "confirmation_requeued"]);
    }

    #[test]
    fn a_known_active_address_is_not_confirmed_again() {
        let (_d, mut s) = seeded();
        s.register(&registration("Eve", "eve@acme.example"), &policy(), T0)
            .unwrap();
        let later = s
            .register(
                &registration("Eve", "eve@acme.example"),
                &policy(),
                T0 + 1000 * MINUTE,
            )
            .unwrap();
        assert_eq!(
            later,
            Registered::Known {
                login: "eve".into(),
                status: Status::Active,
                confirmation: Reconfirmation::NotPending
            }
        );
        assert_eq!(messages(&s).len(), 2, "its confirmation and welcome only");
    }

    #[test]
    fn approval_queues_the_welcome_once_in_a_life() {
        let (_d, mut s) = seeded();
        let (user, ..) = created(
            s.register(&registration("Fay", "fay@other.example"), &policy(), T0)
                .unwrap(),
        );
        let done = s.approve("fay", Some(&outbox()), "bob", T0 + 1).unwrap();
        assert_eq!(
            done,
            Queued {
                messages: 1,
                cancelled: 0
            }
        );
        assert_eq!(
            messages(&s),
            [
                (CONFIRM, user.0, OutboxState::Queued),
                (WELCOME, user.0, OutboxState::Queued)
            ]
        );
        let d = s.user_detail("fay").unwrap().unwrap();
        assert_eq!(d.user.status, Status::Active);
        let h = d.history.last().unwrap();
        assert_eq!(
            (
                h.action.as_str(),
                h.actor.as_deref(),
                h.old.clone(),
                h.new.clone()
            ),
            (
                "approve",
                Some("bob"),
                Some("pending".into()),
                Some("active".into())
            )
        );
        // Welcomed already: a user made pending again and approved again
        // (no command does that today) gets no second welcome.
        s.conn
            .execute(
                "UPDATE users SET status = 'pending' WHERE id = ?1",
                [user.0],
            )
            .unwrap();
        let again = s.approve("fay", Some(&outbox()), "bob", T0 + 2).unwrap();
        assert_eq!(again.messages, 0);
        // Without mail nothing is queued, but the approval stands.
        s.register(&registration("Gus", "gus@other.example"), &policy(), T0)
            .unwrap();
        assert_eq!(s.approve("gus", None, "bob", T0).unwrap().messages, 0);
        assert!(matches!(
            s.approve("nobody", None, "bob", T0).unwrap_err(),
            AdminError::NoSuchUser(l) if l == "nobody"
        ));
    }

    #[test]
    fn a_rejected_users_queued_mail_is_cancelled() {
        let (_d, mut s) = seeded();
        let (user, ..) = created(
            s.register(&registration("Hal", "hal@other.example"), &policy(), T0)
                .unwrap(),
        );
        let done = s.reject("hal", "carol", T0 + 1).unwrap();
        assert_eq!(
            done,
            Queued {
                messages: 0,
                cancelled: 1
            }
        );
        assert_eq!(messages(&s), [(CONFIRM, user.0, OutboxState::Cancelled)]);
        assert!(due(&mut s).is_empty());
        let d = s.user_detail("hal").unwrap().unwrap();
        assert_eq!(d.user.status, Status::Rejected);
        assert_eq!(d.history.last().unwrap().actor.as_deref(), Some("carol"));
        for e in [
            s.reject("hal", "carol", T0).unwrap_err(),
            s.approve("hal", Some(&outbox()), "carol", T0).unwrap_err(),
        ] {
            assert_eq!(e.to_string(), "user \"hal\" is rejected, not pending");
        }
        // Its address stays known: a re-registration changes nothing.
        let again = s
            .register(
                &registration("Hal", "hal@other.example"),
                &policy(),
                T0 + 1000 * MINUTE,
            )
            .unwrap();
        assert!(matches!(
            again,
            Registered::Known {
                status: Status::Rejected,
                confirmation: Reconfirmation::NotPending,
                ..
            }
        ));
        assert_eq!(messages(&s).len(), 1);
    }

    #[test]
    fn resends_queue_again_and_are_journaled() {
        let (_d, mut s) = seeded();
        let (user, ..) = created(
            s.register(&registration("Ida", "ida@other.example"), &policy(), T0)
                .unwrap(),
        );
        let e = s.resend("ida", WELCOME, &outbox(), "dan", T0).unwrap_err();
        assert_eq!(e.to_string(), "user \"ida\" is pending, not active");
        assert_eq!(
            s.resend("ida", CONFIRM, &outbox(), "dan", T0 + 1)
                .unwrap()
                .messages,
            1
        );
        s.approve("ida", Some(&outbox()), "dan", T0 + 2).unwrap();
        // A welcome already went out once; an admin resends it all the same.
        assert_eq!(
            s.resend("ida", WELCOME, &outbox(), "dan", T0 + 3)
                .unwrap()
                .messages,
            1
        );
        let kinds: Vec<MailKind> = messages(&s).iter().map(|m| m.0).collect();
        assert_eq!(kinds, [CONFIRM, CONFIRM, WELCOME, WELCOME]);
        let welcomed: Option<i64> = s
            .conn
            .query_row(
                "SELECT welcome_queued_at FROM users WHERE id = ?1",
                [user.0],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(welcomed, Some(T0 + 2), "the first welcome's time stays");
        let d = s.user_detail("ida").unwrap().unwrap();
        let entries: Vec<(&str, Option<&str>)> = d
            .history
            .iter()
            .map(|h| (h.action.as_str(), h.actor.as_deref()))
            .collect();
        assert_eq!(
            entries,
            [
                ("create", Some("alice")),
                ("resend_confirmation", Some("dan")),
                ("approve", Some("dan")),
                ("resend_welcome", Some("dan"))
            ]
        );
        s.reject_for_test("ida");
        let e = s.resend("ida", CONFIRM, &outbox(), "dan", T0).unwrap_err();
        assert_eq!(e.to_string(), "user \"ida\" is rejected, not pending");
    }

    #[test]
    fn without_mail_a_registration_queues_nothing() {
        let (_d, mut s) = seeded();
        let no_mail = RegistrationPolicy {
            outbox: None,
            ..policy()
        };
        let (_, _, _, _, queued) = created(
            s.register(&registration("Jo", "jo@acme.example"), &no_mail, T0)
                .unwrap(),
        );
        assert!(queued.is_empty());
        assert!(messages(&s).is_empty());
        let again = s
            .register(&registration("Jo", "jo@acme.example"), &no_mail, T0)
            .unwrap();
        assert!(matches!(
            again,
            Registered::Known {
                status: Status::Active,
                ..
            }
        ));
    }

    impl SqliteStore {
        /// Sets a user's status behind the commands' back.
        fn reject_for_test(&mut self, login: &str) {
            self.conn
                .execute(
                    "UPDATE users SET status = 'rejected' WHERE login = ?1",
                    [login],
                )
                .unwrap();
        }
    }
}
