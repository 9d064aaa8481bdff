//! Applying a plan: users, links, journal and the run record in one transaction.

use rusqlite::{params, Connection, Transaction};
use serde_json::json;

use super::codec::{attributes_json, grants_json};
use crate::model::{ContactRecord, Login, UserId};
use crate::reconcile::{ContactChange, DeprovisionAction, Plan, UserFields};
use crate::store::{RunRecord, StoreError};

fn q(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

/// Creating more users than this in one run rebuilds the secondary indexes once
/// after the rows instead of updating them row by row.
const BULK_CREATES: usize = 50_000;

/// Secondary indexes dropped and rebuilt around bulk loads.
const BULK_INDEXES: &[(&str, &str)] = &[
    (
        "users_email_norm",
        "CREATE INDEX users_email_norm ON users (email_norm)",
    ),
    (
        "contacts_user",
        "CREATE INDEX contacts_user ON contacts (user_id)",
    ),
    (
        "journal_user",
        "CREATE INDEX journal_user ON journal (user_id)",
    ),
];

pub fn record_run(conn: &Connection, run: &RunRecord) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO runs (source, started_at, finished_at, status, counts, errors) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            run.source,
            run.started_ms,
            run.finished_ms,
            run.status,
            serde_json::to_string(&run.counts).unwrap_or_default(),
            run.errors as i64
        ])
    })
    .map_err(q("recording the run"))?;
    Ok(conn.last_insert_rowid())
}

/// Journal writer bound to one run.
struct Journal<'t> {
    tx: &'t Transaction<'t>,
    run: i64,
    source: &'t str,
    now: i64,
}

impl Journal<'_> {
    fn write(
        &self,
        user: UserId,
        login: &Login,
        action: &str,
        field: Option<&str>,
        old: Option<&serde_json::Value>,
        new: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "INSERT INTO journal (run_id, source, user_id, login, at, action, field, old, new) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(q("writing the journal"))?;
        stmt.execute(params![
            self.run,
            self.source,
            user.0,
            login.as_str(),
            self.now,
            action,
            field,
            old.map(|v| v.to_string()),
            new.map(|v| v.to_string()),
        ])
        .map_err(q("writing the journal"))?;
        Ok(())
    }
}

fn fields_json(f: &UserFields) -> serde_json::Value {
    json!({
        "title": f.title,
        "description": f.description,
        "email": f.email.as_str(),
        "locale": f.locale,
        "account_contacts": f.flags.account_contacts,
        "account_tickets": f.flags.account_tickets,
        "external_comments": f.flags.external_comments,
        "grants": f.grants,
        "attributes": f.attributes,
    })
}

pub fn apply(
    conn: &mut Connection,
    plan: &Plan,
    run: &RunRecord,
    now: i64,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction()
        .map_err(q("starting the run's transaction"))?;
    let run_id = record_run(&tx, run)?;
    let journal = Journal {
        tx: &tx,
        run: run_id,
        source: &plan.source,
        now,
    };
    let bulk = plan.creates.len() > BULK_CREATES;
    if bulk {
        for (name, _) in BULK_INDEXES {
            tx.execute_batch(&format!("DROP INDEX IF EXISTS {name}"))
                .map_err(q("dropping an index for a bulk load"))?;
        }
    }
    create_users(&tx, &journal, plan, now)?;
    for u in &plan.updates {
        update_user(&tx, u.user, &u.fields, now)?;
        for c in &u.changes {
            journal.write(
                u.user,
                &u.login,
                "update",
                Some(c.field),
                Some(&c.old),
                Some(&c.new),
            )?;
        }
    }
    for c in &plan.contacts {
        match c {
            ContactChange::Upsert {
                user,
                login,
                record,
                linked_now,
            } => {
                upsert_contact(&tx, &plan.source, *user, record)?;
                if *linked_now {
                    journal.write(
                        *user,
                        login,
                        "link",
                        Some("contacts"),
                        None,
                        Some(&json!(anchor(&plan.source, record))),
                    )?;
                }
            }
            ContactChange::Unlink {
                user,
                login,
                contact_id,
            } => {
                unlink(&tx, &plan.source, contact_id)?;
                journal.write(
                    *user,
                    login,
                    "unlink",
                    Some("contacts"),
                    Some(&json!(format!("{}:{contact_id}", plan.source))),
                    None,
                )?;
            }
        }
    }
    for (user, login) in &plan.enables {
        tx.prepare_cached(
            "UPDATE users SET status = 'active', disabled_by = NULL, disabled_at = NULL, updated_at = ?2 WHERE id = ?1",
        )
        .and_then(|mut s| s.execute(params![user.0, now]))
        .map_err(q("enabling a user"))?;
        journal.write(
            *user,
            login,
            "enable",
            Some("status"),
            Some(&json!("disabled")),
            Some(&json!("active")),
        )?;
    }
    for d in &plan.deprovisions {
        for cid in &d.unlinks {
            unlink(&tx, &plan.source, cid)?;
            journal.write(
                d.user,
                &d.login,
                "unlink",
                Some("contacts"),
                Some(&json!(format!("{}:{cid}", plan.source))),
                None,
            )?;
        }
        match d.action {
            DeprovisionAction::Disable => {
                let old: String = tx
                    .query_row("SELECT status FROM users WHERE id = ?1", [d.user.0], |r| {
                        r.get(0)
                    })
                    .map_err(q("disabling a user"))?;
                tx.prepare_cached(
                    "UPDATE users SET status = 'disabled', disabled_by = 'sync', disabled_at = ?2, updated_at = ?2 WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![d.user.0, now]))
                .map_err(q("disabling a user"))?;
                journal.write(
                    d.user,
                    &d.login,
                    "disable",
                    Some("status"),
                    Some(&json!(old)),
                    Some(&json!("disabled")),
                )?;
            }
            DeprovisionAction::Delete => delete_user(&tx, &journal, d.user, &d.login)?,
        }
    }
    if bulk {
        for (_, create) in BULK_INDEXES {
            tx.execute_batch(create)
                .map_err(q("rebuilding an index after a bulk load"))?;
        }
    }
    tx.commit().map_err(q("committing the run"))
}

fn anchor(source: &str, r: &ContactRecord) -> String {
    format!("{source}:{}", r.contact_id)
}

fn create_users(
    tx: &Transaction<'_>,
    journal: &Journal<'_>,
    plan: &Plan,
    now: i64,
) -> Result<(), StoreError> {
    if plan.creates.is_empty() {
        return Ok(());
    }
    let last: i64 = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'last_user_id'",
            [],
            |r| r.get(0),
        )
        .map_err(q("allocating user ids"))?;
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO users (id, login, title, description, email, email_norm, locale, status, \
             origin, account_contacts, account_tickets, external_comments, grants, attributes, \
             created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'active', 'sync', ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
        )
        .map_err(q("creating users"))?;
    let mut id = last;
    for n in &plan.creates {
        id += 1;
        let f = &n.fields;
        stmt.execute(params![
            id,
            n.login.as_str(),
            f.title,
            f.description,
            f.email.as_str(),
            f.email.normalized(),
            f.locale,
            f.flags.account_contacts,
            f.flags.account_tickets,
            f.flags.external_comments,
            grants_json(&f.grants),
            attributes_json(&f.attributes),
            now,
        ])
        .map_err(q("creating users"))?;
        for r in &n.contacts {
            upsert_contact(tx, &plan.source, UserId(id), r)?;
        }
        let mut record = fields_json(f);
        record["login"] = json!(n.login.as_str());
        record["status"] = json!("active");
        record["origin"] = json!("sync");
        record["contacts"] = json!(n
            .contacts
            .iter()
            .map(|r| anchor(&plan.source, r))
            .collect::<Vec<_>>());
        journal.write(UserId(id), &n.login, "create", None, None, Some(&record))?;
    }
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'last_user_id'",
        [id],
    )
    .map_err(q("allocating user ids"))?;
    Ok(())
}

fn update_user(
    tx: &Transaction<'_>,
    user: UserId,
    f: &UserFields,
    now: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE users SET title = ?2, description = ?3, email = ?4, email_norm = ?5, locale = ?6, \
         account_contacts = ?7, account_tickets = ?8, external_comments = ?9, grants = ?10, \
         attributes = ?11, updated_at = ?12 WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            user.0,
            f.title,
            f.description,
            f.email.as_str(),
            f.email.normalized(),
            f.locale,
            f.flags.account_contacts,
            f.flags.account_tickets,
            f.flags.external_comments,
            grants_json(&f.grants),
            attributes_json(&f.attributes),
            now
        ])
    })
    .map_err(q("updating a user"))?;
    Ok(())
}

fn upsert_contact(
    tx: &Transaction<'_>,
    source: &str,
    user: UserId,
    r: &ContactRecord,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO contacts (source, contact_id, user_id, linked, fingerprint, name, email, phone, \
         account_id, account_name, login, description, locale, account_contacts, account_tickets, \
         external_comments, grants, attributes) \
         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) \
         ON CONFLICT (source, contact_id) DO UPDATE SET user_id = excluded.user_id, linked = 1, \
         fingerprint = excluded.fingerprint, name = excluded.name, email = excluded.email, \
         phone = excluded.phone, account_id = excluded.account_id, account_name = excluded.account_name, \
         login = excluded.login, description = excluded.description, locale = excluded.locale, \
         account_contacts = excluded.account_contacts, account_tickets = excluded.account_tickets, \
         external_comments = excluded.external_comments, grants = excluded.grants, \
         attributes = excluded.attributes",
    )
    .and_then(|mut s| {
        s.execute(params![
            source,
            r.contact_id,
            user.0,
            r.fingerprint() as i64,
            r.name,
            r.email.as_str(),
            r.phone,
            r.account_id,
            r.account_name,
            r.login.as_ref().map(Login::as_str),
            r.description,
            r.locale,
            r.account_contacts,
            r.account_tickets,
            r.external_comments,
            grants_json(&r.grants),
            attributes_json(&r.attributes),
        ])
    })
    .map_err(q("writing a contact"))?;
    Ok(())
}

fn unlink(tx: &Transaction<'_>, source: &str, contact_id: &str) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE contacts SET linked = 0 WHERE source = ?1 AND contact_id = ?2")
        .and_then(|mut s| s.execute(params![source, contact_id]))
        .map_err(q("unlinking a contact"))?;
    Ok(())
}

fn delete_user(
    tx: &Transaction<'_>,
    journal: &Journal<'_>,
    user: UserId,
    login: &Login,
) -> Result<(), StoreError> {
    let record: serde_json::Value = tx
        .query_row(
            "SELECT json_object('login', login, 'title', title, 'description', description, \
             'email', email, 'locale', locale, 'status', status, 'origin', origin, \
             'grants', json(grants), 'attributes', json(attributes)) FROM users WHERE id = ?1",
            [user.0],
            |r| r.get::<_, String>(0),
        )
        .map(|s| serde_json::from_str(&s).unwrap_or(serde_json::Value::Null))
        .map_err(q("reading a user to delete"))?;
    tx.execute(
        "INSERT OR IGNORE INTO retired_logins (login) VALUES (?1)",
        [login.as_str()],
    )
    .map_err(q("retiring a login"))?;
    tx.execute("DELETE FROM contacts WHERE user_id = ?1", [user.0])
        .map_err(q("deleting a user's contacts"))?;
    tx.execute("DELETE FROM users WHERE id = ?1", [user.0])
        .map_err(q("deleting a user"))?;
    journal.write(user, login, "delete", None, Some(&record), None)
}
