//! The administration of users in SQLite (see [`crate::store::admin`]): each
//! command is one `BEGIN IMMEDIATE` transaction holding the user's change,
//! its journal entries (with the actor), its outbox rows and what sync must
//! respect afterwards (`admin_fields`, `contact_holds`, `account_unlinks`).
//!
//! A user's fields follow its linked contacts by the merge sync makes
//! ([`merge_fields`], keeping what an admin owns), computed here the moment
//! a link changes, so the next sync finds nothing to do about it.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use super::codec::{
    attributes_json, contact_from_row, grants_json, user_from_row, CONTACT_COLUMNS, USER_COLUMNS,
};
use super::outbox::{cancel_queued, queue};
use super::registration::{account_exists, begin, commit, free_login, journal, Entry};
use super::write::upsert_contact;
use super::SqliteStore;
use crate::model::{
    derive_login_base, AccountId, ContactRecord, DisabledBy, ExternalUser, Login, Origin, Status,
    UserId,
};
use crate::reconcile::{attribute_field, gives, merge_fields, ContactChange, FieldChange, Plan};
use crate::store::search::search_text;
use crate::store::{
    AddedUser, Admin, AdminChange, AdminError, ContactRef, DeletedUser, DriverError, Edit,
    FoundContact, HistoryEntry, MailKind, MergeRules, NewManualUser, OutboxPolicy, StatusChanged,
    StoreError, StoredContactInfo, UnlinkedAccount,
};

fn q(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |source| StoreError::Query {
        what,
        source: DriverError::new(source),
    }
}

/// A user as stored, with its linked contacts (source, record), by source
/// and contact id.
struct Loaded {
    user: ExternalUser,
    contacts: Vec<(String, ContactRecord)>,
}

fn load(tx: &Connection, login: &str) -> Result<Loaded, AdminError> {
    let user = tx
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE login = ?1"
        ))
        .map_err(q("reading a user"))?
        .query([login])
        .map_err(q("reading a user"))?
        .next()
        .map_err(q("reading a user"))?
        .map(user_from_row)
        .transpose()?
        .map(|(u, _, _)| u)
        .ok_or_else(|| AdminError::NoSuchUser(login.to_owned()))?;
    let contacts = linked_contacts(tx, user.id)?;
    Ok(Loaded { user, contacts })
}

fn linked_contacts(
    tx: &Connection,
    user: UserId,
) -> Result<Vec<(String, ContactRecord)>, StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT source, {CONTACT_COLUMNS} FROM contacts WHERE user_id = ?1 AND linked = 1 \
             ORDER BY source, contact_id"
        ))
        .map_err(q("reading a user's contacts"))?;
    let mut rows = stmt
        .query([user.0])
        .map_err(q("reading a user's contacts"))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(q("reading a user's contacts"))? {
        let source: String = r.get(0).map_err(q("reading a user's contacts"))?;
        out.push((source, contact_from_row(r, 1)?));
    }
    Ok(out)
}

/// Every contact anchored to `user`, linked or not, as `SOURCE:ID`.
fn anchors_of(tx: &Connection, user: UserId) -> Result<Vec<String>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT source || ':' || contact_id FROM contacts WHERE user_id = ?1 \
             ORDER BY source, contact_id",
        )
        .map_err(q("reading a user's contacts"))?;
    let rows = stmt
        .query_map([user.0], |r| r.get::<_, String>(0))
        .map_err(q("reading a user's contacts"))?;
    rows.collect::<Result<_, _>>()
        .map_err(q("reading a user's contacts"))
}

fn anchor(source: &str, id: &str) -> String {
    format!("{source}:{id}")
}

/// The login of another user than `except` with this normalized address.
fn address_holder(
    tx: &Connection,
    email_norm: &str,
    except: Option<UserId>,
) -> Result<Option<String>, StoreError> {
    tx.prepare_cached(
        "SELECT login FROM users WHERE email_norm = ?1 AND id IS NOT ?2 ORDER BY id LIMIT 1",
    )
    .and_then(|mut s| {
        s.query_row(params![email_norm, except.map(|u| u.0)], |r| r.get(0))
            .optional()
    })
    .map_err(q("finding a user by e-mail"))
}

/// The user a stored contact is anchored to, and whether it is linked.
fn contact_owner(
    tx: &Connection,
    source: &str,
    id: &str,
) -> Result<Option<(UserId, bool, String)>, StoreError> {
    tx.prepare_cached(
        "SELECT c.user_id, c.linked, u.login FROM contacts c JOIN users u ON u.id = c.user_id \
         WHERE c.source = ?1 AND c.contact_id = ?2",
    )
    .and_then(|mut s| {
        s.query_row([source, id], |r| {
            Ok((UserId(r.get(0)?), r.get(1)?, r.get(2)?))
        })
        .optional()
    })
    .map_err(q("reading a contact"))
}

/// The rank of `source` in the config's order (unknown sources last).
fn rank(rules: &MergeRules, source: &str) -> usize {
    rules
        .source_order
        .iter()
        .position(|s| s == source)
        .unwrap_or(usize::MAX)
}

/// `user`'s fields after its linked `contacts` changed: what sync's merge
/// makes of them, keeping what is not the contacts' ([`UserFields::keep_admin_fields`]).
/// No contact: the fields stay as they are (as sync leaves them).
///
/// [`UserFields::keep_admin_fields`]: crate::reconcile::UserFields::keep_admin_fields
fn follow_contacts(
    user: &mut ExternalUser,
    contacts: &[(String, ContactRecord)],
    rules: &MergeRules,
) {
    let ranked: Vec<(usize, &ContactRecord)> =
        contacts.iter().map(|(s, r)| (rank(rules, s), r)).collect();
    let Some(mut f) = merge_fields(&ranked, &rules.default_locale) else {
        return;
    };
    let records: Vec<&ContactRecord> = contacts.iter().map(|(_, r)| r).collect();
    f.keep_admin_fields(user, &records);
    user.title = f.title;
    user.description = f.description;
    user.email = Some(f.email);
    user.locale = f.locale;
    user.flags = f.flags;
    user.grants = f.grants;
    user.attributes = f.attributes;
}

/// Each changed field of `new` against `old`, as sync journals them.
fn field_changes(old: &ExternalUser, new: &ExternalUser) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut check = |field: &'static str, a: Value, b: Value| {
        if a != b {
            out.push(FieldChange {
                field: field.into(),
                old: a,
                new: b,
            });
        }
    };
    check("title", json!(old.title), json!(new.title));
    check(
        "description",
        json!(old.description),
        json!(new.description),
    );
    if old.email != new.email {
        check(
            "email",
            json!(old.email.as_ref().map(|e| e.as_str())),
            json!(new.email.as_ref().map(|e| e.as_str())),
        );
    }
    check("locale", json!(old.locale), json!(new.locale));
    check(
        "account_contacts",
        json!(old.flags.account_contacts),
        json!(new.flags.account_contacts),
    );
    check(
        "account_tickets",
        json!(old.flags.account_tickets),
        json!(new.flags.account_tickets),
    );
    check(
        "external_comments",
        json!(old.flags.external_comments),
        json!(new.flags.external_comments),
    );
    check("grants", json!(old.grants), json!(new.grants));
    check("attributes", json!(old.attributes), json!(new.attributes));
    out
}

/// Writes `user`'s fields (and what an admin owns of them) and its search text.
fn write_fields(tx: &Connection, user: &ExternalUser, now: i64) -> Result<(), StoreError> {
    let email = user.email.as_ref();
    let grants = grants_json(user.grants.iter().map(String::as_str));
    let attributes = attributes_json(
        user.attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let admin_fields = match user.admin_fields.is_empty() {
        true => None,
        false => Some(serde_json::to_string(&user.admin_fields).unwrap_or_default()),
    };
    tx.prepare_cached(
        "UPDATE users SET title = ?2, description = ?3, email = ?4, email_norm = ?5, \
         locale = ?6, account_contacts = ?7, account_tickets = ?8, external_comments = ?9, \
         grants = ?10, attributes = ?11, admin_fields = ?12, updated_at = ?13 WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            user.id.0,
            user.title,
            user.description,
            email.map(|e| e.as_str()),
            email.map(|e| e.normalized()),
            user.locale,
            user.flags.account_contacts,
            user.flags.account_tickets,
            user.flags.external_comments,
            grants,
            attributes,
            admin_fields,
            now
        ])
    })
    .map_err(q("updating a user"))?;
    write_search(tx, user)
}

fn write_search(tx: &Connection, user: &ExternalUser) -> Result<(), StoreError> {
    let text = search_text(
        user.login.as_str(),
        &user.title,
        user.email.as_ref().map(|e| e.as_str()),
        user.description.as_deref(),
        user.attributes.iter().map(|(_, v)| v.as_str()),
    );
    tx.prepare_cached(
        "INSERT INTO user_search (id, text) VALUES (?1, ?2) \
         ON CONFLICT (id) DO UPDATE SET text = excluded.text",
    )
    .and_then(|mut s| s.execute(params![user.id.0, text]))
    .map_err(q("indexing a user for search"))?;
    Ok(())
}

/// What one admin transaction journals, in order, for its report.
struct Changes<'t> {
    tx: &'t Connection,
    user: UserId,
    actor: &'t str,
    now: i64,
    done: Vec<AdminChange>,
}

impl<'t> Changes<'t> {
    fn new(tx: &'t Connection, user: UserId, actor: &'t str, now: i64) -> Self {
        Changes {
            tx,
            user,
            actor,
            now,
            done: Vec::new(),
        }
    }

    fn record(
        &mut self,
        action: &'static str,
        field: &'static str,
        old: Value,
        new: Value,
    ) -> Result<(), StoreError> {
        let text = |v: &Value| (!v.is_null()).then(|| v.to_string());
        let entry = Entry {
            user: self.user,
            action,
            field: Some(field),
            old: text(&old),
            new: text(&new),
        };
        journal(self.tx, &entry, self.actor, self.now)?;
        self.done.push(AdminChange {
            action,
            change: FieldChange {
                field: field.into(),
                old,
                new,
            },
        });
        Ok(())
    }

    fn fields(&mut self, old: &ExternalUser, new: &ExternalUser) -> Result<(), StoreError> {
        for c in field_changes(old, new) {
            let text = |v: &Value| Some(v.to_string());
            let entry = Entry {
                user: self.user,
                action: "update",
                field: Some(&c.field),
                old: text(&c.old),
                new: text(&c.new),
            };
            journal(self.tx, &entry, self.actor, self.now)?;
            self.done.push(AdminChange {
                action: "update",
                change: c,
            });
        }
        Ok(())
    }
}

/// Sets `user`'s status (and who disabled it), journaled as `action`.
fn set_status(
    ch: &mut Changes<'_>,
    user: &ExternalUser,
    to: Status,
    by: Option<DisabledBy>,
    action: &'static str,
) -> Result<(), StoreError> {
    ch.tx
        .prepare_cached(
            "UPDATE users SET status = ?2, disabled_by = ?3, disabled_at = ?4, updated_at = ?5 \
             WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute(params![
                user.id.0,
                to.as_str(),
                by.map(|b| b.as_str()),
                by.map(|_| ch.now),
                ch.now
            ])
        })
        .map_err(q("changing a user's status"))?;
    ch.record(
        action,
        "status",
        json!(user.status.as_str()),
        json!(to.as_str()),
    )
}

/// After its links changed: a `sync` user left with no contact is disabled
/// (its queued mail cancelled), as when its sources drop it; one sync
/// disabled for that reason is enabled again when a contact is linked.
/// Returns whether it was disabled.
fn settle_status(
    ch: &mut Changes<'_>,
    user: &ExternalUser,
    linked: usize,
) -> Result<bool, StoreError> {
    let orphaned = user.origin == Origin::Sync
        && linked == 0
        && matches!(user.status, Status::Active | Status::Pending);
    if orphaned {
        set_status(
            ch,
            user,
            Status::Disabled,
            Some(DisabledBy::Sync),
            "disable",
        )?;
        cancel_queued(ch.tx, user.id, ch.now)?;
        return Ok(true);
    }
    let back =
        linked > 0 && user.status == Status::Disabled && user.disabled_by == Some(DisabledBy::Sync);
    if back {
        set_status(ch, user, Status::Active, None, "enable")?;
    }
    Ok(false)
}

/// Brings the accounts a link change of `source` touched in step (their
/// domains come from their linked contacts), as a sync run does.
fn settle_accounts(
    tx: &Connection,
    source: &str,
    changes: Vec<ContactChange>,
    now: i64,
) -> Result<(), StoreError> {
    let plan = Plan {
        source: source.to_owned(),
        contacts: changes,
        ..Plan::default()
    };
    let touched = super::accounts::touched_by(tx, &plan)?;
    super::accounts::settle(tx, &plan, &touched, now)?;
    Ok(())
}

/// Links contact `c` to `user` (moving a stored, unlinked row of it), lifts
/// any hold of it and the user's unlink of its account, and journals it.
fn link_contact(
    ch: &mut Changes<'_>,
    user: &ExternalUser,
    c: &FoundContact,
) -> Result<(), AdminError> {
    let id = c.record.contact_id();
    if let Some((owner, linked, login)) = contact_owner(ch.tx, &c.source, id)? {
        if linked && owner != user.id {
            return Err(AdminError::ContactLinked {
                contact: c.anchor(),
                login,
            });
        }
        if linked {
            return Ok(());
        }
    }
    upsert_contact(ch.tx, &c.source, user.id, &c.record)?;
    ch.tx
        .prepare_cached("DELETE FROM contact_holds WHERE source = ?1 AND contact_id = ?2")
        .and_then(|mut s| s.execute([&c.source, id]))
        .map_err(q("lifting a contact's hold"))?;
    if let Some(account) = c.record.account_id() {
        ch.tx
            .prepare_cached("DELETE FROM account_unlinks WHERE user_id = ?1 AND account_id = ?2")
            .and_then(|mut s| s.execute(params![user.id.0, account]))
            .map_err(q("lifting an account's unlink"))?;
    }
    ch.record("link", "contacts", Value::Null, json!(c.anchor()))?;
    let change = ContactChange::Upsert {
        user: user.id,
        login: user.login.clone(),
        record: Box::new(c.record.clone()),
        linked_now: true,
        changes: Vec::new(),
    };
    settle_accounts(ch.tx, &c.source, vec![change], ch.now)?;
    Ok(())
}

/// Unlinks the linked contact `id` of `source` from `user`; `hold` keeps
/// sync from linking it again.
fn unlink_contact(
    ch: &mut Changes<'_>,
    user: &ExternalUser,
    source: &str,
    id: &str,
    hold: bool,
) -> Result<(), StoreError> {
    let change = ContactChange::Unlink {
        user: user.id,
        login: user.login.clone(),
        contact_id: id.to_owned(),
    };
    let plan = Plan {
        source: source.to_owned(),
        contacts: vec![change],
        ..Plan::default()
    };
    let touched = super::accounts::touched_by(ch.tx, &plan)?;
    ch.tx
        .prepare_cached("UPDATE contacts SET linked = 0 WHERE source = ?1 AND contact_id = ?2")
        .and_then(|mut s| s.execute([source, id]))
        .map_err(q("unlinking a contact"))?;
    if hold {
        ch.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO contact_holds (source, contact_id, user_id, reason, actor, at) \
                 VALUES (?1, ?2, ?3, 'unlink', ?4, ?5)",
            )
            .and_then(|mut s| s.execute(params![source, id, user.id.0, ch.actor, ch.now]))
            .map_err(q("holding a contact"))?;
    }
    ch.record("unlink", "contacts", json!(anchor(source, id)), Value::Null)?;
    super::accounts::settle(ch.tx, &plan, &touched, ch.now)?;
    Ok(())
}

/// Refuses a change of `field` that one of `contacts` gives.
fn not_owned(
    login: &str,
    field: &str,
    contacts: &[(String, ContactRecord)],
) -> Result<(), AdminError> {
    match contacts.iter().find(|(_, r)| gives(r, field)) {
        Some((source, r)) => Err(AdminError::SourceOwned {
            login: login.to_owned(),
            field: field.to_owned(),
            owner: source.clone(),
            contact: anchor(source, r.contact_id()),
        }),
        None => Ok(()),
    }
}

/// The user's new row, search text, direct account and journal entry.
fn insert_manual(
    tx: &Connection,
    user: &ExternalUser,
    account: Option<&AccountId>,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    let email = user.email.as_ref();
    tx.prepare_cached(
        "INSERT INTO users (id, login, title, description, email, email_norm, locale, status, \
         origin, account_contacts, account_tickets, external_comments, grants, attributes, \
         created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'active', 'manual', ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
    )
    .and_then(|mut s| {
        s.execute(params![
            user.id.0,
            user.login.as_str(),
            user.title,
            user.description,
            email.map(|e| e.as_str()),
            email.map(|e| e.normalized()),
            user.locale,
            user.flags.account_contacts,
            user.flags.account_tickets,
            user.flags.external_comments,
            grants_json(user.grants.iter().map(String::as_str)),
            attributes_json(
                user.attributes
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
            ),
            now
        ])
    })
    .map_err(q("creating a user"))?;
    write_search(tx, user)?;
    if let Some(account) = account {
        tx.prepare_cached(
            "INSERT INTO user_accounts (user_id, account_id, actor, linked_at) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut s| s.execute(params![user.id.0, account.as_str(), actor, now]))
        .map_err(q("linking an account"))?;
    }
    let record = json!({
        "login": user.login.as_str(),
        "title": user.title,
        "description": user.description,
        "email": email.map(|e| e.as_str()),
        "locale": user.locale,
        "status": "active",
        "origin": "manual",
        "account_contacts": user.flags.account_contacts,
        "account_tickets": user.flags.account_tickets,
        "external_comments": user.flags.external_comments,
        "grants": user.grants,
        "attributes": user.attributes,
        "accounts": account.map(AccountId::as_str).into_iter().collect::<Vec<_>>(),
    });
    let entry = Entry {
        user: user.id,
        action: "create",
        field: None,
        old: None,
        new: Some(record.to_string()),
    };
    journal(tx, &entry, actor, now)
}

fn next_user_id(tx: &Connection) -> Result<UserId, StoreError> {
    tx.query_row(
        "UPDATE meta SET value = value + 1 WHERE key = 'last_user_id' RETURNING value",
        [],
        |r| r.get(0),
    )
    .map(UserId)
    .map_err(q("allocating a user id"))
}

/// The login for a new manual user: the one asked for, when free and never
/// retired, else derived from the title.
fn login_for(tx: &Connection, new: &NewManualUser) -> Result<Login, AdminError> {
    let Some(login) = &new.login else {
        let base = derive_login_base(&new.title, new.email.local_part());
        return Ok(free_login(tx, &base)?);
    };
    let taken = |sql: &str| {
        tx.prepare_cached(sql)
            .and_then(|mut s| s.exists([login.as_str()]))
            .map_err(q("checking a login"))
    };
    if taken("SELECT 1 FROM users WHERE login = ?1")? {
        return Err(AdminError::LoginTaken(login.to_string()));
    }
    if taken("SELECT 1 FROM retired_logins WHERE login = ?1")? {
        return Err(AdminError::LoginRetired(login.to_string()));
    }
    Ok(login.clone())
}

fn add_in(
    tx: &Connection,
    new: &NewManualUser,
    rules: &MergeRules,
    outbox: Option<&OutboxPolicy>,
    actor: &str,
    now: i64,
) -> Result<AddedUser, AdminError> {
    if let Some(c) = &new.contact {
        if let Some((_, true, login)) = contact_owner(tx, &c.source, c.record.contact_id())? {
            return Err(AdminError::ContactLinked {
                contact: c.anchor(),
                login,
            });
        }
    }
    if let Some(login) = address_holder(tx, new.email.normalized(), None)? {
        return Err(AdminError::DuplicateEmail {
            email: new.email.as_str().to_owned(),
            login,
        });
    }
    if let Some(id) = &new.account {
        if !account_exists(tx, id)? {
            return Err(AdminError::UnknownAccount(id.to_string()));
        }
    }
    let contacts: Vec<(String, ContactRecord)> = new
        .contact
        .iter()
        .map(|c| (c.source.clone(), c.record.clone()))
        .collect();
    let login = login_for(tx, new)?;
    for (field, given) in [
        ("description", new.description.is_some()),
        ("locale", new.locale.is_some()),
        ("grants", !new.grants.is_empty()),
    ] {
        if given {
            not_owned(login.as_str(), field, &contacts)?;
        }
    }
    let mut user = ExternalUser {
        id: next_user_id(tx)?,
        login,
        title: new.title.clone(),
        description: new.description.clone(),
        email: Some(new.email.clone()),
        locale: new
            .locale
            .clone()
            .unwrap_or_else(|| rules.default_locale.clone()),
        status: Status::Active,
        disabled_by: None,
        disabled_at: None,
        origin: Origin::Manual,
        flags: Default::default(),
        grants: new.grants.clone(),
        attributes: Default::default(),
        admin_fields: BTreeSet::new(),
    };
    follow_contacts(&mut user, &contacts, rules);
    insert_manual(tx, &user, new.account.as_ref(), actor, now)?;
    if let Some(c) = &new.contact {
        let mut ch = Changes::new(tx, user.id, actor, now);
        link_contact(&mut ch, &user, c)?;
    }
    let welcome_queued = match outbox {
        Some(policy) => {
            queue(
                tx,
                policy,
                MailKind::Welcome,
                &(user.id.0..=user.id.0),
                None,
                now,
            )? > 0
        }
        None => false,
    };
    Ok(AddedUser {
        user: user.id,
        login: user.login.to_string(),
        status: user.status,
        welcome_queued,
    })
}

fn set_enabled_in(
    tx: &Connection,
    login: &str,
    enable: bool,
    actor: &str,
    now: i64,
) -> Result<StatusChanged, AdminError> {
    let Loaded { user, contacts } = load(tx, login)?;
    let mut ch = Changes::new(tx, user.id, actor, now);
    let wrong = |needed| AdminError::WrongStatus {
        login: user.login.to_string(),
        status: user.status,
        needed,
    };
    if !enable {
        return match (user.status, user.disabled_by) {
            (Status::Active, _) => {
                set_status(
                    &mut ch,
                    &user,
                    Status::Disabled,
                    Some(DisabledBy::Admin),
                    "disable",
                )?;
                let cancelled = cancel_queued(tx, user.id, now)?;
                Ok(StatusChanged::Changed {
                    from: Status::Active,
                    cancelled,
                })
            }
            (Status::Disabled, Some(DisabledBy::Admin)) => Ok(StatusChanged::Already),
            (Status::Disabled, _) => {
                tx.prepare_cached(
                    "UPDATE users SET disabled_by = 'admin', updated_at = ?2 WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![user.id.0, now]))
                .map_err(q("changing who disabled a user"))?;
                ch.record("disable", "disabled_by", json!("sync"), json!("admin"))?;
                Ok(StatusChanged::TakenOver)
            }
            _ => Err(wrong(Status::Active)),
        };
    }
    match user.status {
        Status::Active => return Ok(StatusChanged::Already),
        Status::Disabled => {}
        _ => return Err(wrong(Status::Disabled)),
    }
    if user.origin == Origin::Sync && contacts.is_empty() {
        let anchors = anchors_of(tx, user.id)?;
        if anchors.is_empty() {
            return Err(AdminError::Refused(format!(
                "user {:?} is a sync user with no contact in any source: it would be active \
                 with nothing to keep it in step",
                user.login.as_str()
            )));
        }
        return Err(AdminError::ContactsLeft {
            login: user.login.to_string(),
            contacts: anchors,
        });
    }
    set_status(&mut ch, &user, Status::Active, None, "enable")?;
    Ok(StatusChanged::Changed {
        from: Status::Disabled,
        cancelled: 0,
    })
}

fn delete_in(
    tx: &Connection,
    login: &str,
    actor: &str,
    now: i64,
) -> Result<DeletedUser, AdminError> {
    let Loaded { user, .. } = load(tx, login)?;
    let record: String = tx
        .query_row(
            "SELECT json_object('login', login, 'title', title, 'description', description, \
             'email', email, 'locale', locale, 'status', status, 'origin', origin, \
             'grants', json(grants), 'attributes', json(attributes)) FROM users WHERE id = ?1",
            [user.id.0],
            |r| r.get(0),
        )
        .map_err(q("reading a user to delete"))?;
    let entry = Entry {
        user: user.id,
        action: "delete",
        field: None,
        old: Some(record),
        new: None,
    };
    journal(tx, &entry, actor, now)?;
    // Its contacts stay out of sync: without the hold, the next run would
    // make a new user (and welcome it) of a contact still in its source.
    let mut by_source: BTreeMap<String, Vec<ContactChange>> = BTreeMap::new();
    let mut held = Vec::new();
    {
        let mut stmt = tx
            .prepare_cached(
                "SELECT source, contact_id FROM contacts WHERE user_id = ?1 ORDER BY source, contact_id",
            )
            .map_err(q("reading a user's contacts"))?;
        let rows = stmt
            .query_map([user.id.0], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(q("reading a user's contacts"))?;
        for row in rows {
            let (source, id) = row.map_err(q("reading a user's contacts"))?;
            held.push(anchor(&source, &id));
            by_source
                .entry(source)
                .or_default()
                .push(ContactChange::Unlink {
                    user: user.id,
                    login: user.login.clone(),
                    contact_id: id,
                });
        }
    }
    let mut touched = Vec::new();
    for (source, changes) in by_source {
        let plan = Plan {
            source,
            contacts: changes,
            ..Plan::default()
        };
        let accounts = super::accounts::touched_by(tx, &plan)?;
        touched.push((plan, accounts));
    }
    let cancelled = cancel_queued(tx, user.id, now)?;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO contact_holds (source, contact_id, user_id, reason, actor, at) \
         SELECT source, contact_id, user_id, 'delete', ?2, ?3 FROM contacts WHERE user_id = ?1",
    )
    .and_then(|mut s| s.execute(params![user.id.0, actor, now]))
    .map_err(q("holding a deleted user's contacts"))?;
    tx.prepare_cached("INSERT OR IGNORE INTO retired_logins (login) VALUES (?1)")
        .and_then(|mut s| s.execute([user.login.as_str()]))
        .map_err(q("retiring a login"))?;
    for sql in [
        "DELETE FROM contacts WHERE user_id = ?1",
        "DELETE FROM user_search WHERE id = ?1",
        "DELETE FROM user_accounts WHERE user_id = ?1",
        "DELETE FROM account_unlinks WHERE user_id = ?1",
        "DELETE FROM password_tokens WHERE user_id = ?1",
        "DELETE FROM users WHERE id = ?1",
    ] {
        tx.prepare_cached(sql)
            .and_then(|mut s| s.execute([user.id.0]))
            .map_err(q("deleting a user"))?;
    }
    for (plan, accounts) in touched {
        super::accounts::settle(tx, &plan, &accounts, now)?;
    }
    Ok(DeletedUser {
        user: user.id,
        held,
        cancelled,
    })
}

fn unlink_account_in(
    tx: &Connection,
    login: &str,
    account: &AccountId,
    rules: &MergeRules,
    actor: &str,
    now: i64,
) -> Result<UnlinkedAccount, AdminError> {
    let Loaded { user, contacts } = load(tx, login)?;
    let (gone, kept): (Vec<_>, Vec<_>) = contacts
        .into_iter()
        .partition(|(_, r)| r.account_id() == Some(account.as_str()));
    let direct = tx
        .prepare_cached("DELETE FROM user_accounts WHERE user_id = ?1 AND account_id = ?2")
        .and_then(|mut s| s.execute(params![user.id.0, account.as_str()]))
        .map_err(q("unlinking an account"))?
        > 0;
    if gone.is_empty() && !direct {
        return Err(AdminError::NotLinked {
            login: user.login.to_string(),
            account: account.to_string(),
        });
    }
    let mut ch = Changes::new(tx, user.id, actor, now);
    for (source, r) in &gone {
        unlink_contact(&mut ch, &user, source, r.contact_id(), false)?;
    }
    if direct {
        ch.record("unlink", "accounts", json!(account.as_str()), Value::Null)?;
    }
    tx.prepare_cached(
        "INSERT OR REPLACE INTO account_unlinks (user_id, account_id, actor, at) \
         VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut s| s.execute(params![user.id.0, account.as_str(), actor, now]))
    .map_err(q("remembering an account's unlink"))?;
    let mut after = user.clone();
    follow_contacts(&mut after, &kept, rules);
    if let Some(e) = &after.email {
        if let Some(holder) = address_holder(tx, e.normalized(), Some(user.id))? {
            return Err(AdminError::DuplicateEmail {
                email: e.as_str().to_owned(),
                login: holder,
            });
        }
    }
    if after != user {
        write_fields(tx, &after, now)?;
        ch.fields(&user, &after)?;
    }
    let disabled = settle_status(&mut ch, &user, kept.len())?;
    Ok(UnlinkedAccount {
        contacts: gone
            .iter()
            .map(|(s, r)| anchor(s, r.contact_id()))
            .collect(),
        direct,
        disabled,
    })
}

/// Finds `r` among `contacts` (the user's linked ones).
fn find_linked<'c>(
    login: &str,
    r: &ContactRef,
    contacts: &'c [(String, ContactRecord)],
) -> Result<&'c (String, ContactRecord), AdminError> {
    let found: Vec<&(String, ContactRecord)> = contacts
        .iter()
        .filter(|(s, c)| c.contact_id() == r.id && r.source.as_ref().is_none_or(|want| want == s))
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(AdminError::Refused(format!(
            "contact {r} is not linked to user {login:?}"
        ))),
        _ => Err(AdminError::Refused(format!(
            "several linked contacts of user {login:?} have the id {:?}; name the source, as SOURCE:{}",
            r.id, r.id
        ))),
    }
}

fn edit_in(
    tx: &Connection,
    login: &str,
    edit: &Edit,
    rules: &MergeRules,
    actor: &str,
    now: i64,
) -> Result<Vec<AdminChange>, AdminError> {
    let Loaded { user, mut contacts } = load(tx, login)?;
    let login = user.login.to_string();
    let mut ch = Changes::new(tx, user.id, actor, now);
    let links_before = contacts.len();
    let mut relinked = false;
    for r in &edit.unlink_contacts {
        let (source, c) = find_linked(&login, r, &contacts)?.clone();
        unlink_contact(&mut ch, &user, &source, c.contact_id(), true)?;
        contacts.retain(|(s, x)| !(s == &source && x.contact_id() == c.contact_id()));
        relinked = true;
    }
    for c in &edit.link_contacts {
        if contacts
            .iter()
            .any(|(s, x)| s == &c.source && x.contact_id() == c.record.contact_id())
        {
            continue;
        }
        link_contact(&mut ch, &user, c)?;
        contacts.push((c.source.clone(), c.record.clone()));
        relinked = true;
    }
    contacts.sort_by(|a, b| (&a.0, a.1.contact_id()).cmp(&(&b.0, b.1.contact_id())));
    for account in &edit.link_accounts {
        if !account_exists(tx, account)? {
            return Err(AdminError::UnknownAccount(account.to_string()));
        }
        let added = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO user_accounts (user_id, account_id, actor, linked_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![user.id.0, account.as_str(), actor, now]))
            .map_err(q("linking an account"))?;
        tx.prepare_cached("DELETE FROM account_unlinks WHERE user_id = ?1 AND account_id = ?2")
            .and_then(|mut s| s.execute(params![user.id.0, account.as_str()]))
            .map_err(q("lifting an account's unlink"))?;
        if added > 0 {
            ch.record("link", "accounts", Value::Null, json!(account.as_str()))?;
        }
    }
    for r in &edit.unlink_accounts {
        let removed = tx
            .prepare_cached("DELETE FROM user_accounts WHERE user_id = ?1 AND account_id = ?2")
            .and_then(|mut s| s.execute(params![user.id.0, r.as_str()]))
            .map_err(q("unlinking an account"))?;
        if removed == 0 {
            return Err(AdminError::NotLinked {
                login: login.clone(),
                account: r.to_string(),
            });
        }
        ch.record("unlink", "accounts", json!(r.as_str()), Value::Null)?;
    }

    // The fields asked for, each refused when a contact (as linked now) gives it.
    let mut after = user.clone();
    let own = |after: &mut ExternalUser, field: &str| -> Result<(), AdminError> {
        not_owned(&login, field, &contacts)?;
        if after.origin == Origin::Sync {
            after.admin_fields.insert(field.to_owned());
        }
        Ok(())
    };
    if let Some(title) = &edit.title {
        own(&mut after, "title")?;
        after.title = title.clone();
    }
    if let Some(description) = &edit.description {
        own(&mut after, "description")?;
        after.description = description.clone();
    }
    if let Some(email) = &edit.email {
        own(&mut after, "email")?;
        after.email = Some(email.clone());
    }
    if let Some(locale) = &edit.locale {
        own(&mut after, "locale")?;
        after.locale = locale.clone();
    }
    if let Some(v) = edit.account_contacts {
        own(&mut after, "account_contacts")?;
        after.flags.account_contacts = v;
    }
    if let Some(v) = edit.account_tickets {
        own(&mut after, "account_tickets")?;
        after.flags.account_tickets = v;
    }
    if let Some(v) = edit.external_comments {
        own(&mut after, "external_comments")?;
        after.flags.external_comments = v;
    }
    if !edit.grant.is_empty() || !edit.revoke.is_empty() {
        own(&mut after, "grants")?;
        after.grants.extend(edit.grant.iter().cloned());
        after.grants.retain(|g| !edit.revoke.contains(g));
        after.grants.sort();
        after.grants.dedup();
    }
    for (key, value) in &edit.attributes {
        own(&mut after, &attribute_field(key))?;
        match value {
            Some(v) => {
                after.attributes.insert(key.clone(), v.clone());
            }
            None => after.attributes = without(&after.attributes, key),
        }
    }
    if relinked {
        follow_contacts(&mut after, &contacts, rules);
    }
    if let Some(e) = &after.email {
        if after.email != user.email {
            if let Some(holder) = address_holder(tx, e.normalized(), Some(user.id))? {
                return Err(AdminError::DuplicateEmail {
                    email: e.as_str().to_owned(),
                    login: holder,
                });
            }
        }
    }
    if after != user {
        write_fields(tx, &after, now)?;
        ch.fields(&user, &after)?;
    }
    if contacts.len() != links_before || relinked {
        settle_status(&mut ch, &user, contacts.len())?;
    }
    Ok(ch.done)
}

/// `attributes` without `key`.
fn without(attributes: &crate::model::Attributes, key: &str) -> crate::model::Attributes {
    let mut out = crate::model::Attributes::new();
    for (k, v) in attributes.iter().filter(|(k, _)| k.as_str() != key) {
        out.insert(k.clone(), v.clone());
    }
    out
}

fn stored_contacts_in(
    conn: &Connection,
    r: &ContactRef,
) -> Result<Vec<StoredContactInfo>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT source, {CONTACT_COLUMNS}, \
             (SELECT u.login FROM users u WHERE u.id = contacts.user_id AND contacts.linked = 1) \
             FROM contacts WHERE contact_id = ?1 AND (?2 IS NULL OR source = ?2) ORDER BY source"
        ))
        .map_err(q("finding a contact"))?;
    let mut rows = stmt
        .query(params![r.id, r.source])
        .map_err(q("finding a contact"))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(q("finding a contact"))? {
        let source: String = row.get(0).map_err(q("finding a contact"))?;
        let record = contact_from_row(row, 1)?;
        let linked_to: Option<String> = row.get(17).map_err(q("finding a contact"))?;
        out.push(StoredContactInfo {
            contact: FoundContact { source, record },
            linked_to,
        });
    }
    Ok(out)
}

fn accounts_named_in(conn: &Connection, text: &str) -> Result<Vec<AccountId>, StoreError> {
    let err = q("finding an account");
    let exact = conn
        .prepare_cached("SELECT 1 FROM accounts WHERE id = ?1")
        .and_then(|mut s| s.exists([text]))
        .map_err(&err)?;
    if exact {
        return Ok(vec![AccountId(text.to_owned())]);
    }
    // Accounts are few (companies, not people): compared in Rust, so any
    // case of any script matches.
    let wanted = text.to_lowercase();
    let mut stmt = conn
        .prepare_cached("SELECT id, config_name, name FROM accounts ORDER BY id")
        .map_err(&err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .map_err(&err)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, config_name, name) = row.map_err(&err)?;
        if [config_name, name]
            .iter()
            .flatten()
            .any(|n| n.to_lowercase() == wanted)
        {
            out.push(AccountId(id));
        }
    }
    Ok(out)
}

fn history_in(conn: &Connection, login: &str) -> Result<Option<Vec<HistoryEntry>>, StoreError> {
    let id: Option<i64> = conn
        .prepare_cached("SELECT id FROM users WHERE login = ?1")
        .and_then(|mut s| s.query_row([login], |r| r.get(0)).optional())
        .map_err(q("reading history"))?;
    // A deleted user: its entries still carry its login (a scan of the
    // journal, for a login that is no longer anyone's).
    let id = match id {
        Some(id) => Some(id),
        None => conn
            .prepare_cached("SELECT user_id FROM journal WHERE login = ?1 ORDER BY id DESC LIMIT 1")
            .and_then(|mut s| s.query_row([login], |r| r.get(0)).optional())
            .map_err(q("reading history"))?,
    };
    match id {
        Some(id) => Ok(Some(super::read::history_of(conn, UserId(id), None)?)),
        None => Ok(None),
    }
}

impl Admin for SqliteStore {
    fn add_user(
        &mut self,
        new: &NewManualUser,
        rules: &MergeRules,
        outbox: Option<&OutboxPolicy>,
        actor: &str,
        now_ms: i64,
    ) -> Result<AddedUser, AdminError> {
        let tx = begin(&mut self.conn)?;
        let done = add_in(&tx, new, rules, outbox, actor, now_ms)?;
        commit(tx)?;
        Ok(done)
    }

    fn stored_contacts(&mut self, r: &ContactRef) -> Result<Vec<StoredContactInfo>, AdminError> {
        Ok(stored_contacts_in(&self.conn, r)?)
    }

    fn set_enabled(
        &mut self,
        login: &str,
        enable: bool,
        actor: &str,
        now_ms: i64,
    ) -> Result<StatusChanged, AdminError> {
        let tx = begin(&mut self.conn)?;
        let done = set_enabled_in(&tx, login, enable, actor, now_ms)?;
        commit(tx)?;
        Ok(done)
    }

    fn delete_user(
        &mut self,
        login: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<DeletedUser, AdminError> {
        let tx = begin(&mut self.conn)?;
        let done = delete_in(&tx, login, actor, now_ms)?;
        commit(tx)?;
        Ok(done)
    }

    fn unlink_account(
        &mut self,
        login: &str,
        account: &AccountId,
        rules: &MergeRules,
        actor: &str,
        now_ms: i64,
    ) -> Result<UnlinkedAccount, AdminError> {
        let tx = begin(&mut self.conn)?;
        let done = unlink_account_in(&tx, login, account, rules, actor, now_ms)?;
        commit(tx)?;
        Ok(done)
    }

    fn edit_user(
        &mut self,
        login: &str,
        edit: &Edit,
        rules: &MergeRules,
        actor: &str,
        now_ms: i64,
    ) -> Result<Vec<AdminChange>, AdminError> {
        let tx = begin(&mut self.conn)?;
        let done = edit_in(&tx, login, edit, rules, actor, now_ms)?;
        commit(tx)?;
        Ok(done)
    }

    fn accounts_named(&mut self, text: &str) -> Result<Vec<AccountId>, AdminError> {
        Ok(accounts_named_in(&self.conn, text)?)
    }

    fn history(&mut self, login: &str) -> Result<Option<Vec<HistoryEntry>>, AdminError> {
        Ok(history_in(&self.conn, login)?)
    }
}
