//! Accounts in the SQLite store: kept in step with the contacts a run writes
//! (in the run's transaction), declared by the config's `accounts:`, and read
//! for `users show` and for matching a registration's e-mail domain.
//!
//! An account's row holds what its sources say (`name`, `domains`) apart from
//! what the config says (`config_name`, `config_domains`); `account_domains`
//! indexes the union of both by domain. Every write compares first: an
//! account nothing changed is not written.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{params, Connection, OptionalExtension};

use crate::model::{Account, AccountId, Domain, DomainMatch};
use crate::reconcile::{ContactChange, DeprovisionAction, FieldChange, Plan};
use crate::store::{DriverError, StoreError};

fn q(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |source| StoreError::Query {
        what,
        source: DriverError::new(source),
    }
}

/// An account row as stored.
#[derive(Debug, Default, PartialEq, Eq)]
struct Row {
    name: Option<String>,
    domains: String,
    config_name: Option<String>,
    config_domains: Option<String>,
}

impl Row {
    /// The domains `account_domains` holds for it: the sources' and the config's.
    fn effective(&self) -> BTreeSet<&str> {
        split(&self.domains)
            .chain(self.config_domains.as_deref().into_iter().flat_map(split))
            .collect()
    }
}

/// The domains of a `|`-joined text (empty text: none).
fn split(text: &str) -> impl Iterator<Item = &str> {
    text.split('|').filter(|d| !d.is_empty())
}

fn read_row(tx: &Connection, id: &str) -> Result<Option<Row>, StoreError> {
    tx.prepare_cached(
        "SELECT name, domains, config_name, config_domains FROM accounts WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.query_row([id], |r| {
            Ok(Row {
                name: r.get(0)?,
                domains: r.get(1)?,
                config_name: r.get(2)?,
                config_domains: r.get(3)?,
            })
        })
        .optional()
    })
    .map_err(q("reading an account"))
}

/// Writes `row` for account `id` and brings `account_domains` from what
/// `old` claimed to what `row` claims.
fn write_row(
    tx: &Connection,
    id: &str,
    old: Option<&Row>,
    row: &Row,
    now: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO accounts (id, name, domains, config_name, config_domains, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
         domains = excluded.domains, config_name = excluded.config_name, \
         config_domains = excluded.config_domains, updated_at = excluded.updated_at",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            row.name,
            row.domains,
            row.config_name,
            row.config_domains,
            now
        ])
    })
    .map_err(q("writing an account"))?;
    let before = old.map(Row::effective).unwrap_or_default();
    let after = row.effective();
    for gone in before.difference(&after) {
        tx.prepare_cached("DELETE FROM account_domains WHERE domain = ?1 AND account_id = ?2")
            .and_then(|mut s| s.execute(params![gone, id]))
            .map_err(q("removing an account's domain"))?;
    }
    for new in after.difference(&before) {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO account_domains (domain, account_id) VALUES (?1, ?2)",
        )
        .and_then(|mut s| s.execute(params![new, id]))
        .map_err(q("adding an account's domain"))?;
    }
    Ok(())
}

/// The account of a stored contact of `source`, when that row gives its
/// account domains (only those rows count towards an account's domains).
fn stored_account(
    tx: &Connection,
    source: &str,
    contact_id: &str,
) -> Result<Option<String>, StoreError> {
    tx.prepare_cached(
        "SELECT account_id FROM contacts WHERE source = ?1 AND contact_id = ?2 \
         AND account_domains IS NOT NULL",
    )
    .and_then(|mut s| {
        s.query_row([source, contact_id], |r| r.get::<_, Option<String>>(0))
            .optional()
    })
    .map(Option::flatten)
    .map_err(q("reading a contact's account"))
}

/// The accounts `plan` may change, found before it is written: those its
/// contacts name, and those whose domains a contact it rewrites, unlinks or
/// deletes gave until now (read now, before the rows change).
pub(super) fn touched_by(tx: &Connection, plan: &Plan) -> Result<BTreeSet<String>, StoreError> {
    let mut touched = BTreeSet::new();
    let source = plan.source.as_str();
    for r in &plan.new_contacts {
        // A big creation names each account many times: copy it once.
        match r.account_id() {
            Some(id) if !touched.contains(id) => {
                touched.insert(id.to_owned());
            }
            _ => {}
        }
    }
    for c in &plan.contacts {
        let contact_id = match c {
            ContactChange::Upsert {
                record,
                linked_now,
                changes,
                ..
            } => {
                if let Some(id) = record.account_id() {
                    touched.insert(id.to_owned());
                }
                if !linked_now {
                    // The same user's contact, changed: the journal's old
                    // `account_id` names the account it leaves, if any.
                    touched.extend(old_account(changes));
                    continue;
                }
                record.contact_id()
            }
            ContactChange::Unlink { contact_id, .. } | ContactChange::Moved { contact_id, .. } => {
                contact_id
            }
        };
        touched.extend(stored_account(tx, source, contact_id)?);
    }
    for d in &plan.deprovisions {
        for contact_id in &d.unlinks {
            touched.extend(stored_account(tx, source, contact_id)?);
        }
        if d.action == DeprovisionAction::Delete {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT DISTINCT account_id FROM contacts WHERE user_id = ?1 \
                     AND account_domains IS NOT NULL AND account_id IS NOT NULL",
                )
                .map_err(q("reading a user's accounts"))?;
            let ids = stmt
                .query_map([d.user.0], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(q("reading a user's accounts"))?;
            touched.extend(ids);
        }
    }
    Ok(touched)
}

/// The account a contact had before, when its changes say it changed.
fn old_account(changes: &[FieldChange]) -> Option<String> {
    let change = changes.iter().find(|c| c.field.ends_with(" account_id"))?;
    change.old.as_str().map(str::to_owned)
}

/// The name each account gets from `plan`'s contacts: the non-empty
/// `account_name` of its contact with the smallest id (so the result never
/// depends on the order the plan lists them in).
fn names_in(plan: &Plan) -> BTreeMap<&str, (&str, &str)> {
    let upserted = plan.contacts.iter().filter_map(|c| match c {
        ContactChange::Upsert { record, .. } => Some(&**record),
        _ => None,
    });
    let mut names: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for r in plan.new_contacts.iter().chain(upserted) {
        let (Some(id), Some(name)) = (r.account_id(), r.account_name()) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        let entry = names.entry(id).or_insert((r.contact_id(), name));
        if r.contact_id() < entry.0 {
            *entry = (r.contact_id(), name);
        }
    }
    names
}

/// The domains the linked contacts of account `id` give, sorted, `|`-joined.
fn source_domains(tx: &Connection, id: &str) -> Result<String, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT account_domains FROM contacts WHERE account_id = ?1 \
             AND account_domains IS NOT NULL AND linked = 1",
        )
        .map_err(q("reading an account's domains"))?;
    let mut rows = stmt
        .query([id])
        .map_err(q("reading an account's domains"))?;
    let mut all = BTreeSet::new();
    while let Some(r) = rows.next().map_err(q("reading an account's domains"))? {
        let text: String = r.get(0).map_err(q("reading an account's domains"))?;
        all.extend(split(&text).map(str::to_owned));
    }
    Ok(join(all.iter().map(String::as_str)))
}

fn join<'a>(domains: impl Iterator<Item = &'a str>) -> String {
    domains.collect::<Vec<_>>().join("|")
}

/// Brings the accounts `touched` (see [`touched_by`]) in step with the
/// contacts `plan` has just written, inside the run's transaction: a name
/// from the plan's contacts replaces the stored one, and the domains are
/// those the account's linked contacts give now. Accounts that come out as
/// they were are not written. Returns how many were written.
pub(super) fn settle(
    tx: &Connection,
    plan: &Plan,
    touched: &BTreeSet<String>,
    now: i64,
) -> Result<usize, StoreError> {
    let names = names_in(plan);
    let mut written = 0;
    for id in touched {
        let old = read_row(tx, id)?;
        let base = old.as_ref();
        let row = Row {
            name: names
                .get(id.as_str())
                .map(|(_, n)| (*n).to_owned())
                .or_else(|| base.and_then(|r| r.name.clone())),
            domains: source_domains(tx, id)?,
            config_name: base.and_then(|r| r.config_name.clone()),
            config_domains: base.and_then(|r| r.config_domains.clone()),
        };
        if old.as_ref() != Some(&row) {
            write_row(tx, id, base, &row, now)?;
            written += 1;
        }
    }
    Ok(written)
}

/// Makes the config's `accounts:` the store's: each listed account's
/// `config_name` and `config_domains` become the listed ones, and accounts
/// the config no longer lists lose theirs (what sources gave stays).
/// Accounts already as listed are not written. Returns how many were written.
pub(super) fn declare(
    tx: &Connection,
    accounts: &[Account],
    now: i64,
) -> Result<usize, StoreError> {
    let mut listed_before: BTreeSet<String> = BTreeSet::new();
    {
        let mut stmt = tx
            .prepare_cached(
                "SELECT id FROM accounts WHERE config_name IS NOT NULL \
                 OR config_domains IS NOT NULL",
            )
            .map_err(q("reading the config's accounts"))?;
        let ids = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(q("reading the config's accounts"))?;
        listed_before.extend(ids);
    }
    let mut written = 0;
    for a in accounts {
        listed_before.remove(a.id.as_str());
        let mut domains: Vec<&str> = a.domains.iter().map(Domain::as_str).collect();
        domains.sort_unstable();
        domains.dedup();
        let old = read_row(tx, a.id.as_str())?;
        let row = Row {
            config_name: a.name.clone(),
            config_domains: Some(domains.join("|")),
            ..old.as_ref().map(keep_sources).unwrap_or_default()
        };
        if old.as_ref() != Some(&row) {
            write_row(tx, a.id.as_str(), old.as_ref(), &row, now)?;
            written += 1;
        }
    }
    for id in listed_before {
        let Some(old) = read_row(tx, &id)? else {
            continue;
        };
        let row = keep_sources(&old);
        write_row(tx, &id, Some(&old), &row, now)?;
        written += 1;
    }
    Ok(written)
}

/// A row's source part alone (the config part cleared).
fn keep_sources(row: &Row) -> Row {
    Row {
        name: row.name.clone(),
        domains: row.domains.clone(),
        config_name: None,
        config_domains: None,
    }
}

/// Which account `domain` (any case) belongs to.
pub(super) fn account_for_domain(
    conn: &Connection,
    domain: &str,
) -> Result<DomainMatch, StoreError> {
    let domain = domain.trim().to_lowercase();
    let mut stmt = conn
        .prepare_cached(
            "SELECT account_id FROM account_domains WHERE domain = ?1 ORDER BY account_id",
        )
        .map_err(q("matching a domain"))?;
    let mut ids = stmt
        .query_map([domain], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(q("matching a domain"))?;
    Ok(match ids.len() {
        0 => DomainMatch::None,
        1 => DomainMatch::One(AccountId(ids.remove(0))),
        _ => DomainMatch::Ambiguous(ids.into_iter().map(AccountId).collect()),
    })
}

/// The accounts with these ids, in the order given; an id the store has no
/// row for (none is written so) shows with no name and no domains.
pub(super) fn accounts(conn: &Connection, ids: &[String]) -> Result<Vec<Account>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let row = read_row(conn, id)?.unwrap_or_default();
        out.push(Account {
            id: AccountId(id.clone()),
            name: row.config_name.clone().or_else(|| row.name.clone()),
            domains: row
                .effective()
                .into_iter()
                .map(|d| Domain::from_trusted(d.to_owned()))
                .collect(),
        });
    }
    Ok(out)
}
