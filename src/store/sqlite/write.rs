//! Applying a plan: users, links, journal, outbox and the run record in one
//! transaction.
//!
//! The hot statements are prepared once per run and journal records are
//! serialized straight from borrowed fields: a million-user creation is three
//! prepared inserts per user and no intermediate JSON trees.

use std::sync::mpsc::{sync_channel, Receiver};

use rusqlite::types::ToSqlOutput;
use rusqlite::{params, params_from_iter, Connection, Statement, ToSql};
use serde::Serialize;
use tracing::debug;

use super::batch::{int, opt_bool, opt_text, owned, text, BatchInsert, Sql};
use super::codec::{attributes_json, grants_json, PairsJson};
use super::journal_mode::{self, JournalMode};
use crate::model::{ContactRecord, Flags, Login, UserId};
use crate::reconcile::{ContactChange, DeprovisionAction, FieldChange, NewUser, Plan, UserFields};
use crate::store::search::search_text;
use crate::store::{CursorWrite, DriverError, RunRecord, StoreError};
use crate::sync::Cancel;
use liaison_plugin_api::Cursor;

fn q(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |source| StoreError::Query {
        what,
        source: DriverError::new(source),
    }
}

/// Secondary indexes dropped and rebuilt around bulk loads: those whose keys
/// arrive in random order. (`contacts_user` and `journal_user` are not among
/// them: new users get ascending ids, so their entries are appended.)
const BULK_INDEXES: &[(&str, &str)] = &[
    (
        "users_login",
        "CREATE UNIQUE INDEX users_login ON users (login)",
    ),
    (
        "users_email_norm",
        "CREATE INDEX users_email_norm ON users (email_norm)",
    ),
    // As migration 0004 creates it; new contacts come in account order only
    // by chance.
    (
        "contacts_account_domains",
        "CREATE INDEX contacts_account_domains ON contacts (account_id, linked, account_domains) \
         WHERE account_domains IS NOT NULL",
    ),
];

// The batch inserts say `OR FAIL`: a failed constraint fails the whole run
// (its transaction is rolled back), so no statement needs undoing on its own,
// and SQLite then keeps no statement journal — with `ABORT`, the default, it
// copies each page a multi-row insert touches first, to undo just that insert.

/// Users created by a run, many rows per statement.
const INSERT_USERS: Sql = Sql {
    head: "INSERT OR FAIL INTO users (id, login, title, description, email, email_norm, locale, status, \
           origin, account_contacts, account_tickets, external_comments, grants, attributes, \
           created_at, updated_at)",
    row: "(?, ?, ?, ?, ?, ?, ?, 'active', 'sync', ?, ?, ?, ?, ?, ?, ?)",
    tail: "",
    width: 14,
};

/// The contacts of created users, many rows per statement. A contact may have
/// a row already (it was unlinked, or its user moved), hence the upsert.
const UPSERT_CONTACTS: Sql = Sql {
    head:
        "INSERT OR FAIL INTO contacts (source, contact_id, user_id, linked, fingerprint, content, \
           name, email, phone, account_id, account_name, login, description, locale, \
           account_contacts, account_tickets, external_comments, grants, attributes, \
           account_domains)",
    row: "(?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    tail: UPSERT_TAIL,
    width: 19,
};

/// What an existing contact row takes from the new one.
const UPSERT_TAIL: &str = "ON CONFLICT (source, contact_id) DO UPDATE SET user_id = excluded.user_id, \
     linked = 1, fingerprint = excluded.fingerprint, content = excluded.content, \
     name = excluded.name, email = excluded.email, \
     phone = excluded.phone, account_id = excluded.account_id, account_name = excluded.account_name, \
     login = excluded.login, description = excluded.description, locale = excluded.locale, \
     account_contacts = excluded.account_contacts, account_tickets = excluded.account_tickets, \
     external_comments = excluded.external_comments, grants = excluded.grants, \
     attributes = excluded.attributes, account_domains = excluded.account_domains";

/// One journal entry per created user, holding the whole record.
const JOURNAL_CREATES: Sql = Sql {
    head: "INSERT OR FAIL INTO journal (run_id, source, user_id, login, at, action, new)",
    row: "(?, ?, ?, ?, ?, 'create', ?)",
    tail: "",
    width: 6,
};

/// The search text of each created user (see [`crate::store::search`]).
const INSERT_SEARCH: Sql = Sql {
    head: "INSERT OR FAIL INTO user_search (id, text)",
    row: "(?, ?)",
    tail: "",
    width: 2,
};

const INSERT_JOURNAL: &str = "INSERT INTO journal (run_id, source, user_id, login, at, action, \
     field, old, new) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

pub fn record_run(conn: &Connection, run: &RunRecord) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO runs (source, started_at, finished_at, status, counts, errors, \
         failure, failure_kind, retryable) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        let failure = run.failure.as_ref();
        s.execute(params![
            run.source,
            run.started_ms,
            run.finished_ms,
            run.status,
            serde_json::to_string(&run.counts).unwrap_or_default(),
            run.errors as i64,
            failure.map(|f| f.message.as_str()),
            failure.map(|f| f.kind.as_str()),
            failure.map(|f| f.retryable),
        ])
    })
    .map_err(q("recording the run"))?;
    Ok(conn.last_insert_rowid())
}

/// A created user as its journal entry holds it. Empty values are left out:
/// a million creations are a million entries, each as small as it can be.
#[derive(Serialize)]
struct UserRecord<'a> {
    login: &'a str,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    email: &'a str,
    locale: &'a str,
    status: &'static str,
    origin: &'static str,
    #[serde(skip_serializing_if = "is_false")]
    account_contacts: bool,
    #[serde(skip_serializing_if = "is_false")]
    account_tickets: bool,
    #[serde(skip_serializing_if = "is_false")]
    external_comments: bool,
    #[serde(skip_serializing_if = "<[&str]>::is_empty")]
    grants: &'a [&'a str],
    #[serde(skip_serializing_if = "no_pairs")]
    attributes: PairsJson<'a>,
    contacts: Vec<String>,
}

/// A new user's fields, borrowed: from its one contact, or from the merge of
/// several.
struct NewFields<'a> {
    title: &'a str,
    description: Option<&'a str>,
    email: &'a str,
    email_normalized: &'a str,
    locale: &'a str,
    flags: Flags,
    /// Sorted, without duplicates.
    grants: Vec<&'a str>,
    attributes: Vec<(&'a str, &'a str)>,
}

impl<'a> NewFields<'a> {
    /// The fields a single contact gives its user — what `merge_fields` makes
    /// of one contact, without copying it.
    fn of_contact(r: &'a ContactRecord, default_locale: &'a str) -> Self {
        let mut grants: Vec<&str> = r.grants().collect();
        grants.sort_unstable();
        grants.dedup();
        NewFields {
            title: r.name(),
            description: r.description(),
            email: r.email_str(),
            email_normalized: r.email_normalized(),
            locale: r.locale().unwrap_or(default_locale),
            flags: Flags {
                account_contacts: r.account_contacts == Some(true),
                account_tickets: r.account_tickets == Some(true),
                external_comments: r.external_comments == Some(true),
            },
            grants,
            attributes: r.attributes().collect(),
        }
    }

    fn of_merged(f: &'a UserFields) -> Self {
        NewFields {
            title: &f.title,
            description: f.description.as_deref(),
            email: f.email.as_str(),
            email_normalized: f.email.normalized(),
            locale: &f.locale,
            flags: f.flags,
            grants: f.grants.iter().map(String::as_str).collect(),
            attributes: f
                .attributes
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        }
    }
}

fn no_pairs(p: &PairsJson<'_>) -> bool {
    p.0.is_empty()
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// How many writes of one kind pass between two looks at the cancel flag
/// (an atomic load): a cancelled run writes at most this many more rows of a
/// kind before it rolls back.
const CANCEL_EVERY: usize = 1024;

/// [`StoreError::Cancelled`] when `cancel` is set, looked at on every
/// [`CANCEL_EVERY`]-th write `i` of a kind (and always for `i` = 0).
fn checkpoint(cancel: &Cancel, i: usize) -> Result<(), StoreError> {
    if i.is_multiple_of(CANCEL_EVERY) && cancel.is_cancelled() {
        Err(StoreError::Cancelled)
    } else {
        Ok(())
    }
}

/// The statements of one run, prepared once.
struct Writer<'t> {
    tx: &'t Connection,
    upsert_contact: Statement<'t>,
    journal: Statement<'t>,
    run: i64,
    source: &'t str,
    now: i64,
}

impl<'t> Writer<'t> {
    fn new(tx: &'t Connection, run: i64, source: &'t str, now: i64) -> Result<Self, StoreError> {
        let prepare = |sql| tx.prepare(sql).map_err(q("preparing the run's statements"));
        Ok(Writer {
            tx,
            upsert_contact: prepare(&UPSERT_CONTACTS.with_rows(1))?,
            journal: prepare(INSERT_JOURNAL)?,
            run,
            source,
            now,
        })
    }

    /// One journal row; `old` and `new` are JSON texts.
    fn journal(
        &mut self,
        user: UserId,
        login: &Login,
        action: &str,
        field: Option<&str>,
        old: Option<&str>,
        new: Option<&str>,
    ) -> Result<(), StoreError> {
        self.journal
            .execute(params![
                self.run,
                self.source,
                user.0,
                login.as_str(),
                self.now,
                action,
                field,
                old,
                new
            ])
            .map_err(q("writing the journal"))?;
        Ok(())
    }

    fn anchor_json(&self, contact_id: &str) -> String {
        json_text(&format!("{}:{contact_id}", self.source))
    }

    fn upsert_contact(&mut self, user: UserId, r: &ContactRecord) -> Result<(), StoreError> {
        let row = contact_row(self.source, user.0, r);
        for (i, v) in row.iter().enumerate() {
            self.upsert_contact
                .raw_bind_parameter(i + 1, v)
                .map_err(q("writing a contact"))?;
        }
        self.upsert_contact
            .raw_execute()
            .map_err(q("writing a contact"))?;
        Ok(())
    }

    /// Renews a contact's stored digest (its row changed, its contact did not).
    fn refresh(&mut self, contact_id: &str, fingerprint: u64) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "UPDATE contacts SET fingerprint = ?3 WHERE source = ?1 AND contact_id = ?2",
            )
            .and_then(|mut s| s.execute(params![self.source, contact_id, fingerprint as i64]))
            .map_err(q("renewing a contact's digest"))?;
        Ok(())
    }

    fn unlink(&mut self, user: UserId, login: &Login, contact_id: &str) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("UPDATE contacts SET linked = 0 WHERE source = ?1 AND contact_id = ?2")
            .and_then(|mut s| s.execute(params![self.source, contact_id]))
            .map_err(q("unlinking a contact"))?;
        let anchor = self.anchor_json(contact_id);
        self.journal(user, login, "unlink", Some("contacts"), Some(&anchor), None)
    }

    /// One journal row per changed field, old → new.
    fn journal_changes(
        &mut self,
        user: UserId,
        login: &Login,
        changes: &[FieldChange],
    ) -> Result<(), StoreError> {
        for c in changes {
            let (old, new) = (c.old.to_string(), c.new.to_string());
            self.journal(
                user,
                login,
                "update",
                Some(&c.field),
                Some(&old),
                Some(&new),
            )?;
        }
        Ok(())
    }

    /// Writes one change of an existing user's contacts, with its journal.
    fn contact_change(&mut self, change: &ContactChange) -> Result<(), StoreError> {
        match change {
            ContactChange::Upsert {
                user,
                login,
                record,
                linked_now,
                changes,
            } => {
                self.upsert_contact(*user, record)?;
                if *linked_now {
                    let anchor = self.anchor_json(record.contact_id());
                    self.journal(*user, login, "link", Some("contacts"), None, Some(&anchor))?;
                }
                self.journal_changes(*user, login, changes)
            }
            ContactChange::Unlink {
                user,
                login,
                contact_id,
            } => self.unlink(*user, login, contact_id),
            // The contact's row moves with its new user's upsert or creation;
            // the user it left journals where it went.
            ContactChange::Moved {
                user,
                login,
                contact_id,
                to,
            } => {
                let anchor = self.anchor_json(contact_id);
                let to = json_text(to.as_str());
                self.journal(
                    *user,
                    login,
                    "unlink",
                    Some("contacts"),
                    Some(&anchor),
                    Some(&to),
                )
            }
        }
    }

    fn create_users(&mut self, plan: &Plan, cancel: &Cancel) -> Result<(), StoreError> {
        if plan.creates.is_empty() {
            return Ok(());
        }
        let last: i64 = self
            .tx
            .query_row(
                "SELECT value FROM meta WHERE key = 'last_user_id'",
                [],
                |r| r.get(0),
            )
            .map_err(q("allocating user ids"))?;
        let mut users = BatchInsert::new(self.tx, INSERT_USERS, "creating users")?;
        let mut contacts = BatchInsert::new(self.tx, UPSERT_CONTACTS, "writing contacts")?;
        let mut journal = BatchInsert::new(self.tx, JOURNAL_CREATES, "writing the journal")?;
        let mut search = BatchInsert::new(self.tx, INSERT_SEARCH, "indexing users for search")?;
        let mut id = last;
        std::thread::scope(|scope| {
            // The journal entries (JSON) and search texts are made on the
            // other core while this one writes.
            let mut entries = creation_entries(scope, plan).into_iter().flatten();
            for (i, n) in plan.creates.iter().enumerate() {
                checkpoint(cancel, i)?;
                id += 1;
                let members = plan.contacts_of(n);
                for r in members {
                    contacts.push(contact_row(self.source, id, r))?;
                }
                let (entry, search_text) = entries.next().ok_or_else(|| corrupt_plan(n))?;
                search.push([int(id), owned(search_text)])?;
                journal.push([
                    int(self.run),
                    text(self.source),
                    int(id),
                    text(n.login.as_str()),
                    int(self.now),
                    owned(entry),
                ])?;
                let merged;
                let f = match members {
                    [one] => NewFields::of_contact(one, &plan.default_locale),
                    _ => {
                        merged = plan.fields_of(n).ok_or_else(|| corrupt_plan(n))?;
                        NewFields::of_merged(&merged)
                    }
                };
                let texts = match members {
                    // Borrowed from the plan, which outlives the batch.
                    [one] => [
                        text(one.name()),
                        opt_text(one.description()),
                        text(one.email_str()),
                        text(one.email_normalized()),
                        text(one.locale().unwrap_or(&plan.default_locale)),
                    ],
                    _ => [
                        owned(f.title.to_owned()),
                        f.description
                            .map_or(opt_text(None), |d| owned(d.to_owned())),
                        owned(f.email.to_owned()),
                        owned(f.email_normalized.to_owned()),
                        owned(f.locale.to_owned()),
                    ],
                };
                let [title, description, email, email_norm, locale] = texts;
                users.push([
                    int(id),
                    text(n.login.as_str()),
                    title,
                    description,
                    email,
                    email_norm,
                    locale,
                    int(i64::from(f.flags.account_contacts)),
                    int(i64::from(f.flags.account_tickets)),
                    int(i64::from(f.flags.external_comments)),
                    grants_value(f.grants.iter().copied()),
                    attributes_value(f.attributes.iter().copied()),
                    int(self.now),
                    int(self.now),
                ])?;
            }
            Ok::<_, StoreError>(())
        })?;
        users.finish()?;
        contacts.finish()?;
        journal.finish()?;
        search.finish()?;
        self.tx
            .execute(
                "UPDATE meta SET value = ?1 WHERE key = 'last_user_id'",
                [id],
            )
            .map_err(q("allocating user ids"))?;
        Ok(())
    }

    fn update_user(
        &mut self,
        user: UserId,
        login: &Login,
        f: &UserFields,
    ) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "UPDATE users SET title = ?2, description = ?3, email = ?4, email_norm = ?5, \
                 locale = ?6, account_contacts = ?7, account_tickets = ?8, external_comments = ?9, \
                 grants = ?10, attributes = ?11, updated_at = ?12 WHERE id = ?1",
            )
            .and_then(|mut s| {
                let grants = grants_json(f.grants.iter().map(String::as_str));
                let attributes =
                    attributes_json(f.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                let texts = [f.email.as_str(), f.email.normalized(), &grants, &attributes];
                s.execute(params_from_iter(
                    [&user.0 as &dyn ToSql]
                        .into_iter()
                        .chain(field_params(f, &texts))
                        .chain([&self.now as &dyn ToSql]),
                ))
            })
            .map_err(q("updating a user"))?;
        let text = search_text(
            login.as_str(),
            &f.title,
            Some(f.email.as_str()),
            f.description.as_deref(),
            f.attributes.iter().map(|(_, v)| v.as_str()),
        );
        self.tx
            .prepare_cached(
                "INSERT INTO user_search (id, text) VALUES (?1, ?2) \
                 ON CONFLICT (id) DO UPDATE SET text = excluded.text",
            )
            .and_then(|mut s| s.execute(params![user.0, text]))
            .map_err(q("indexing a user for search"))?;
        Ok(())
    }

    fn set_status(&mut self, user: UserId, login: &Login, disable: bool) -> Result<(), StoreError> {
        let old: String = self
            .tx
            .query_row("SELECT status FROM users WHERE id = ?1", [user.0], |r| {
                r.get(0)
            })
            .map_err(q("reading a user's status"))?;
        let (sql, new) = if disable {
            (
                "UPDATE users SET status = 'disabled', disabled_by = 'sync', disabled_at = ?2, \
                 updated_at = ?2 WHERE id = ?1",
                "disabled",
            )
        } else {
            (
                "UPDATE users SET status = 'active', disabled_by = NULL, disabled_at = NULL, \
                 updated_at = ?2 WHERE id = ?1",
                "active",
            )
        };
        self.tx
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(params![user.0, self.now]))
            .map_err(q("changing a user's status"))?;
        let action = if disable { "disable" } else { "enable" };
        self.journal(
            user,
            login,
            action,
            Some("status"),
            Some(&json_text(&old)),
            Some(&json_text(new)),
        )
    }

    fn delete_user(&mut self, user: UserId, login: &Login) -> Result<(), StoreError> {
        let record: String = self
            .tx
            .query_row(
                "SELECT json_object('login', login, 'title', title, 'description', description, \
                 'email', email, 'locale', locale, 'status', status, 'origin', origin, \
                 'grants', json(grants), 'attributes', json(attributes)) FROM users WHERE id = ?1",
                [user.0],
                |r| r.get(0),
            )
            .map_err(q("reading a user to delete"))?;
        self.tx
            .execute(
                "INSERT OR IGNORE INTO retired_logins (login) VALUES (?1)",
                [login.as_str()],
            )
            .map_err(q("retiring a login"))?;
        self.tx
            .execute("DELETE FROM contacts WHERE user_id = ?1", [user.0])
            .map_err(q("deleting a user's contacts"))?;
        self.tx
            .execute("DELETE FROM user_search WHERE id = ?1", [user.0])
            .map_err(q("deleting a user's search text"))?;
        self.tx
            .execute("DELETE FROM user_accounts WHERE user_id = ?1", [user.0])
            .map_err(q("deleting a user's direct accounts"))?;
        self.tx
            .execute("DELETE FROM users WHERE id = ?1", [user.0])
            .map_err(q("deleting a user"))?;
        self.journal(user, login, "delete", None, Some(&record), None)
    }
}

/// A user's source-decided fields as statement parameters, in the column order
/// shared by the insert and the update (title … attributes). `texts` holds the
/// derived text columns: e-mail as spelled, normalized, grants JSON, attributes JSON.
fn field_params<'a>(f: &'a UserFields, texts: &'a [&'a str; 4]) -> [&'a dyn ToSql; 10] {
    [
        &f.title,
        &f.description,
        &texts[0],
        &texts[1],
        &f.locale,
        &f.flags.account_contacts,
        &f.flags.account_tickets,
        &f.flags.external_comments,
        &texts[2],
        &texts[3],
    ]
}

/// Writes contact `r` of `source` as linked to `user` (an admin's link),
/// with [`UPSERT_CONTACTS`]: a stored row of it moves to `user`.
pub(super) fn upsert_contact(
    tx: &Connection,
    source: &str,
    user: UserId,
    r: &ContactRecord,
) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached(&UPSERT_CONTACTS.with_rows(1))
        .map_err(q("writing a contact"))?;
    for (i, v) in contact_row(source, user.0, r).iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, v)
            .map_err(q("writing a contact"))?;
    }
    stmt.raw_execute().map_err(q("writing a contact"))?;
    Ok(())
}

/// One row of [`UPSERT_CONTACTS`]: contact `r` of `source`, linked to `user`.
fn contact_row<'r>(source: &'r str, user: i64, r: &'r ContactRecord) -> [ToSqlOutput<'r>; 19] {
    [
        text(source),
        text(r.contact_id()),
        int(user),
        int(r.fingerprint as i64),
        int(r.content_digest() as i64),
        text(r.name()),
        text(r.email_str()),
        opt_text(r.phone()),
        opt_text(r.account_id()),
        opt_text(r.account_name()),
        opt_text(r.login()),
        opt_text(r.description()),
        opt_text(r.locale()),
        opt_bool(r.account_contacts),
        opt_bool(r.account_tickets),
        opt_bool(r.external_comments),
        grants_value(r.grants()),
        attributes_value(r.attributes()),
        opt_text(r.account_domains_text()),
    ]
}

/// Grants as a stored value; none (the usual case) is a constant, so most rows
/// allocate nothing for them.
fn grants_value<'a>(grants: impl Iterator<Item = &'a str>) -> ToSqlOutput<'static> {
    let mut grants = grants.peekable();
    match grants.peek() {
        None => text("[]"),
        Some(_) => owned(grants_json(grants)),
    }
}

/// Attributes as a stored value; none is a constant (see [`grants_value`]).
fn attributes_value<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> ToSqlOutput<'static> {
    let mut pairs = pairs.peekable();
    match pairs.peek() {
        None => text("{}"),
        Some(_) => owned(attributes_json(pairs)),
    }
}

/// A plan whose new user has no contacts: a bug, reported rather than written.
fn corrupt_plan(n: &NewUser) -> StoreError {
    StoreError::Corrupt {
        what: "plan",
        detail: format!("user {} to create has no contacts", n.login),
    }
}

/// Users created at a time by [`creation_entries`].
const ENTRY_BATCH: usize = 1024;

/// The journal entry and search text of each user `plan` creates, in order,
/// made on a scoped thread and handed over a batch at a time (a few batches
/// ahead). A user whose fields cannot be derived gets none: the writer
/// reports it.
fn creation_entries<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    plan: &'s Plan,
) -> Receiver<Vec<(String, String)>> {
    let (tx, rx) = sync_channel(4);
    scope.spawn(move || {
        for chunk in plan.creates.chunks(ENTRY_BATCH) {
            let mut entries = Vec::with_capacity(chunk.len());
            for n in chunk {
                match creation_entry(plan, n) {
                    Some(entry) => entries.push(entry),
                    None => break,
                }
            }
            let short = entries.len() < chunk.len();
            // The writer stopped (it failed): stop too.
            if tx.send(entries).is_err() || short {
                return;
            }
        }
    });
    rx
}

/// The journal entry of new user `n` (the whole record, as JSON) and its
/// search text.
fn creation_entry(plan: &Plan, n: &NewUser) -> Option<(String, String)> {
    let members = plan.contacts_of(n);
    let merged;
    let f = match members {
        [one] => NewFields::of_contact(one, &plan.default_locale),
        _ => {
            merged = plan.fields_of(n)?;
            NewFields::of_merged(&merged)
        }
    };
    let record = UserRecord {
        login: n.login.as_str(),
        title: f.title,
        description: f.description,
        email: f.email,
        locale: f.locale,
        status: "active",
        origin: "sync",
        account_contacts: f.flags.account_contacts,
        account_tickets: f.flags.account_tickets,
        external_comments: f.flags.external_comments,
        grants: &f.grants,
        attributes: PairsJson(&f.attributes),
        contacts: members
            .iter()
            .map(|r| format!("{}:{}", plan.source, r.contact_id()))
            .collect(),
    };
    let text = search_text(
        n.login.as_str(),
        f.title,
        Some(f.email),
        f.description,
        f.attributes.iter().map(|(_, v)| *v),
    );
    Some((serde_json::to_string(&record).ok()?, text))
}

/// A string as a JSON text.
fn json_text(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// How a run was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyReport {
    /// Written as a bulk load: random-order indexes rebuilt after the rows.
    pub bulk: bool,
    /// The journal the run went through (`None`: a mode Liaison never sets).
    pub journal: Option<JournalMode>,
}

/// Applies `plan` in one transaction; `bulk` writes it as a bulk load (see
/// [`super::SqliteStore::set_bulk_threshold`]). A bulk load's rollback
/// journal is switched back to WAL however the run ends. In a `rehearsal` (an
/// open transaction the caller rolls back) the plan goes into a savepoint of
/// it and the journal mode stays as it is.
pub fn apply(
    conn: &mut Connection,
    plan: &Plan,
    run: &RunRecord,
    now: i64,
    bulk: bool,
    rehearsal: bool,
    cancel: &Cancel,
) -> Result<ApplyReport, StoreError> {
    if rehearsal {
        let sp = conn
            .savepoint()
            .map_err(q("starting the run's savepoint"))?;
        write_run(&sp, plan, run, now, bulk, cancel)?;
        sp.commit().map_err(q("ending the run's savepoint"))?;
        return Ok(ApplyReport {
            bulk,
            journal: None,
        });
    }
    let wanted = if bulk {
        JournalMode::Rollback
    } else {
        JournalMode::Wal
    };
    let journal = journal_mode::switch(conn, wanted);
    debug!(bulk, journal = ?journal, "writing the run");
    let written = commit_run(conn, plan, run, now, bulk, cancel);
    if journal == Some(JournalMode::Rollback) {
        // Back to WAL for the readers, whether the run committed or rolled
        // back; if one holds the file now, the next run (or open) switches.
        journal_mode::switch(conn, JournalMode::Wal);
    }
    written.map(|()| ApplyReport { bulk, journal })
}

/// The run's transaction: everything in `plan`, its journal and run record.
fn commit_run(
    conn: &mut Connection,
    plan: &Plan,
    run: &RunRecord,
    now: i64,
    bulk: bool,
    cancel: &Cancel,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction()
        .map_err(q("starting the run's transaction"))?;
    write_run(&tx, plan, run, now, bulk, cancel)?;
    // The last look: once the commit has begun it finishes (a rollback
    // after that point is SQLite's alone, on a crash).
    checkpoint(cancel, 0)?;
    let clock = std::time::Instant::now();
    tx.commit().map_err(q("committing the run"))?;
    debug!(ms = clock.elapsed().as_millis() as u64, "run committed");
    Ok(())
}

/// Stores `source`'s cursor as read by the run that started at `at`; a
/// full read also becomes the source's last full read.
fn store_cursor(
    tx: &Connection,
    source: &str,
    cursor: &CursorWrite,
    at: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO source_cursors (source, cursor, read_with, stored_at, last_full_at) \
         VALUES (?1, ?2, ?3, ?4, CASE WHEN ?5 THEN ?4 END) \
         ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, \
         read_with = excluded.read_with, stored_at = excluded.stored_at, \
         last_full_at = COALESCE(excluded.last_full_at, last_full_at)",
    )
    .and_then(|mut s| {
        s.execute(params![
            source,
            cursor.cursor.as_ref().map(Cursor::as_str),
            cursor.read_with as i64,
            at,
            cursor.full,
        ])
    })
    .map_err(q("storing the source's cursor"))?;
    Ok(())
}

/// Writes everything `plan` changes, its run record, the source's plan
/// settings and its cursor, inside the caller's transaction.
fn write_run(
    tx: &Connection,
    plan: &Plan,
    run: &RunRecord,
    now: i64,
    bulk: bool,
    cancel: &Cancel,
) -> Result<(), StoreError> {
    let run_id = record_run(tx, run)?;
    tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
        .and_then(|mut s| {
            s.execute(params![
                super::read::settings_key(&plan.source),
                run.settings as i64
            ])
        })
        .map_err(q("storing the plan settings"))?;
    if let Some(cursor) = &run.cursor {
        store_cursor(tx, &plan.source, cursor, run.started_ms)?;
    }
    if bulk {
        for (name, _) in BULK_INDEXES {
            tx.execute_batch(&format!("DROP INDEX IF EXISTS {name}"))
                .map_err(q("dropping an index for a bulk load"))?;
        }
    }
    let accounts = super::accounts::touched_by(tx, plan)?;
    let mut w = Writer::new(tx, run_id, &plan.source, now)?;
    let clock = std::time::Instant::now();
    w.create_users(plan, cancel)?;
    debug!(
        ms = clock.elapsed().as_millis() as u64,
        users = plan.creates.len(),
        "users created"
    );
    for (i, u) in plan.updates.iter().enumerate() {
        checkpoint(cancel, i)?;
        w.update_user(u.user, &u.login, &u.fields)?;
        w.journal_changes(u.user, &u.login, &u.changes)?;
    }
    for (i, c) in plan.contacts.iter().enumerate() {
        checkpoint(cancel, i)?;
        w.contact_change(c)?;
    }
    for (i, (contact_id, fingerprint)) in plan.refreshed.iter().enumerate() {
        checkpoint(cancel, i)?;
        w.refresh(contact_id, *fingerprint)?;
    }
    for (i, (user, login)) in plan.enables.iter().enumerate() {
        checkpoint(cancel, i)?;
        w.set_status(*user, login, false)?;
    }
    for (i, d) in plan.deprovisions.iter().enumerate() {
        checkpoint(cancel, i)?;
        for cid in &d.unlinks {
            w.unlink(d.user, &d.login, cid)?;
        }
        match d.action {
            DeprovisionAction::Disable => w.set_status(d.user, &d.login, true)?,
            DeprovisionAction::Delete => w.delete_user(d.user, &d.login)?,
        }
    }
    drop(w);
    super::outbox::write_plan(tx, plan, run_id, now)?;
    if bulk {
        let clock = std::time::Instant::now();
        for (_, create) in BULK_INDEXES {
            checkpoint(cancel, 0)?;
            tx.execute_batch(create)
                .map_err(q("rebuilding an index after a bulk load"))?;
        }
        debug!(ms = clock.elapsed().as_millis() as u64, "indexes rebuilt");
    }
    settle_accounts(tx, plan, &accounts, now, cancel)
}

/// The accounts the run touched, brought in step with the contacts just
/// written (after a bulk load's index rebuild: they are read by an index).
fn settle_accounts(
    tx: &Connection,
    plan: &Plan,
    touched: &std::collections::BTreeSet<String>,
    now: i64,
    cancel: &Cancel,
) -> Result<(), StoreError> {
    checkpoint(cancel, 0)?;
    let clock = std::time::Instant::now();
    let written = super::accounts::settle(tx, plan, touched, now)?;
    debug!(
        ms = clock.elapsed().as_millis() as u64,
        touched = touched.len(),
        written,
        "accounts settled"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::NewFields;
    use crate::model::{ContactFields, ContactRecord, Email};
    use crate::reconcile::merge_fields;

    /// The one-contact shortcut must say exactly what the merge says.
    #[test]
    fn one_contact_fields_equal_the_merge_of_one() {
        let cases = [
            (None, None, vec![], vec![]),
            (
                Some("cs"),
                Some(true),
                vec!["sales", "billing", "sales"],
                vec![("tier", "gold"), ("licence", "L-1")],
            ),
            (None, Some(false), vec!["x"], vec![("k", "")]),
        ];
        for (locale, flag, grants, attributes) in cases {
            let r = ContactRecord::new(ContactFields {
                contact_id: "c1".into(),
                name: "Ann Smith".into(),
                email: Email::parse("Ann@Example.com").unwrap(),
                phone: None,
                account_id: None,
                account_name: None,
                account_domains: Vec::new(),
                login: None,
                description: locale.map(|_| "note".to_owned()),
                locale: locale.map(str::to_owned),
                account_contacts: flag,
                account_tickets: Some(true),
                external_comments: None,
                grants: grants.into_iter().map(str::to_owned).collect(),
                attributes: attributes.into_iter().collect(),
                fingerprint: 0,
            });
            let merged = merge_fields(&[(0, &r)], "en").unwrap();
            let (a, b) = (
                NewFields::of_contact(&r, "en"),
                NewFields::of_merged(&merged),
            );
            assert_eq!(
                (
                    a.title,
                    a.description,
                    a.email,
                    a.email_normalized,
                    a.locale
                ),
                (
                    b.title,
                    b.description,
                    b.email,
                    b.email_normalized,
                    b.locale
                )
            );
            assert_eq!(a.flags, b.flags);
            assert_eq!(a.grants, b.grants);
            assert_eq!(a.attributes, b.attributes);
        }
    }
}
