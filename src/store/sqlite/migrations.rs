//! Versioned schema migrations: each runs in its own write transaction and
//! bumps `PRAGMA user_version`. Before anything is written the database is
//! inspected: a store newer than this build, a schema version Liaison never
//! writes, or another program's database is refused without touching the file.

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::codec::search_text_of_row;
use crate::store::{DriverError, StoreError};

/// `PRAGMA application_id` of a Liaison store ("LIAS"): tells our databases
/// from other programs'. Stores of schema version 1 predate it and get it with
/// version 2.
pub const APPLICATION_ID: i32 = 0x4c49_4153;

/// A migration's step in Rust: fills what SQL cannot compute.
type Fill = fn(&Transaction<'_>) -> Result<(), StoreError>;

/// One schema version: its SQL, then an optional step in Rust, in the same
/// transaction.
struct Migration {
    sql: &'static str,
    fill: Option<Fill>,
}

/// The migrations, in order; version N is the N-th entry.
const MIGRATIONS: &[Migration] = &[
    Migration {
        sql: include_str!("migrations/0001_initial.sql"),
        fill: None,
    },
    Migration {
        sql: include_str!("migrations/0002_search.sql"),
        fill: Some(fill_search),
    },
    Migration {
        sql: include_str!("migrations/0003_run_failures.sql"),
        fill: None,
    },
    Migration {
        sql: include_str!("migrations/0004_accounts.sql"),
        fill: None,
    },
    Migration {
        sql: include_str!("migrations/0005_outbox.sql"),
        fill: None,
    },
    Migration {
        sql: include_str!("migrations/0006_passwords.sql"),
        fill: None,
    },
    Migration {
        sql: include_str!("migrations/0007_registration.sql"),
        fill: None,
    },
    Migration {
        sql: include_str!("migrations/0008_source_cursors.sql"),
        fill: None,
    },
    Migration {
        sql: include_str!("migrations/0009_admin.sql"),
        fill: None,
    },
];

/// The latest schema version this build knows.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// What [`inspect`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// An empty database: nothing in it yet.
    Fresh,
    /// A Liaison store at this (older) version.
    Outdated(i64),
    /// A Liaison store at the latest version.
    Current,
}

fn q(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |source| StoreError::Query {
        what,
        source: DriverError::new(source),
    }
}

/// Reads what the database is, writing nothing; refuses what must not be
/// touched. `path` names it in errors. Its reads share one snapshot: read
/// one statement at a time, a first migration committed by another process
/// between them showed version 0 with tables — a "foreign" store.
pub fn inspect(conn: &Connection, path: &str) -> Result<Schema, StoreError> {
    if !conn.is_autocommit() {
        return inspect_snapshot(conn, path);
    }
    conn.execute_batch("BEGIN DEFERRED")
        .map_err(q("reading the schema version"))?;
    let found = inspect_snapshot(conn, path);
    // A read transaction: ending it cannot lose anything.
    let _ = conn.execute_batch("COMMIT");
    found
}

fn inspect_snapshot(conn: &Connection, path: &str) -> Result<Schema, StoreError> {
    let pragma = |name: &str| -> Result<i64, StoreError> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .map_err(q("reading the schema version"))
    };
    let version = pragma("user_version")?;
    let application = pragma("application_id")?;
    let foreign = |detail: String| StoreError::Foreign {
        path: path.to_owned(),
        detail,
    };
    if version < 0 {
        return Err(foreign(format!(
            "its schema version is {version}, which no Liaison writes"
        )));
    }
    if application != i64::from(APPLICATION_ID) && application != 0 {
        return Err(foreign(format!(
            "its application id is {application:#x}, another program's"
        )));
    }
    let tables = table_names(conn)?;
    if version == 0 && tables.is_empty() {
        return Ok(Schema::Fresh);
    }
    // Stores of version 1 predate the application id; they have its tables.
    let ours = ["meta", "users", "contacts", "journal", "runs"];
    if version == 0 || (application == 0 && !ours.iter().all(|t| tables.iter().any(|n| n == t))) {
        let mut shown: Vec<&str> = tables.iter().map(String::as_str).take(5).collect();
        if tables.len() > shown.len() {
            shown.push("…");
        }
        return Err(foreign(format!(
            "schema version {version}, tables {}",
            shown.join(", ")
        )));
    }
    let known = latest();
    if version > known {
        return Err(StoreError::Downgrade {
            found: version,
            known,
        });
    }
    Ok(if version == known {
        Schema::Current
    } else {
        Schema::Outdated(version)
    })
}

/// The names of the tables in the database, sorted.
fn table_names(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let err = q("reading the schema");
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .map_err(&err)?;
    let names = stmt
        .query_map([], |r| r.get(0))
        .map_err(&err)?
        .collect::<Result<Vec<String>, _>>()
        .map_err(&err);
    names
}

/// Brings the schema up to date. Each migration's transaction starts by
/// taking the write lock and reads the version again inside it, so a
/// migration another process finished meanwhile is not run twice.
pub fn migrate(conn: &mut Connection, path: &str) -> Result<(), StoreError> {
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(q("starting migration"))?;
        let found = match inspect(&tx, path)? {
            Schema::Current => return Ok(()),
            Schema::Fresh => 0,
            Schema::Outdated(v) => v,
        };
        let migration = &MIGRATIONS[found as usize];
        tx.execute_batch(migration.sql)
            .map_err(q("running migration"))?;
        if let Some(fill) = migration.fill {
            fill(&tx)?;
        }
        tx.pragma_update(None, "user_version", found + 1)
            .map_err(q("recording schema version"))?;
        tx.commit().map_err(q("committing migration"))?;
    }
}

/// Version 2: every user's search text (see [`crate::store::search`]).
fn fill_search(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let err = q("indexing users for search");
    let mut read = tx
        .prepare("SELECT id, login, title, email, description, attributes FROM users")
        .map_err(&err)?;
    let mut write = tx
        .prepare("INSERT INTO user_search (id, text) VALUES (?1, ?2)")
        .map_err(&err)?;
    let mut rows = read.query([]).map_err(&err)?;
    while let Some(r) = rows.next().map_err(&err)? {
        let id: i64 = r.get(0).map_err(&err)?;
        let text = search_text_of_row(r)?;
        write.execute(rusqlite::params![id, text]).map_err(&err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn migrates_once_and_refuses_downgrade() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(inspect(&conn, "m").unwrap(), Schema::Fresh);
        migrate(&mut conn, "m").unwrap();
        migrate(&mut conn, "m").unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        assert_eq!(inspect(&conn, "m").unwrap(), Schema::Current);
        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(
            migrate(&mut conn, "m"),
            Err(StoreError::Downgrade { found: 99, .. })
        ));
    }

    #[test]
    fn a_version_1_store_gets_its_users_indexed_for_search() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0].sql).unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO users (id, login, title, email, description, locale, status, origin,
                 account_contacts, account_tickets, external_comments, grants, attributes,
                 created_at, updated_at)
             VALUES (1, 'jiri.dvorak', 'Jiří Dvořák', 'Jiri@X.example', NULL, 'cs', 'active',
                 'sync', 0, 0, 0, '[]', '{\"licence\":\"LIC-Ž\"}', 0, 0);",
        )
        .unwrap();
        assert_eq!(inspect(&conn, "m").unwrap(), Schema::Outdated(1));
        migrate(&mut conn, "m").unwrap();
        let text: String = conn
            .query_row("SELECT text FROM user_search WHERE id = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(
            text,
            "\u{1f}jiri.dvorak\u{1f}jiri dvorak\u{1f}jiri@x.example\u{1f}lic-z\u{1f}"
        );
        let app: i32 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .unwrap();
        assert_eq!(app, APPLICATION_ID);
    }

    #[test]
    fn a_version_2_stores_runs_read_back_without_a_failure() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0].sql).unwrap();
        conn.execute_batch(MIGRATIONS[1].sql).unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 2;
             INSERT INTO runs (source, started_at, finished_at, status, counts, errors)
             VALUES ('crm', 1, 2, 'failed', '{\"created\":0}', 0);",
        )
        .unwrap();
        migrate(&mut conn, "m").unwrap();
        let got = super::super::runs::run_summaries(&conn).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].last.status.as_str(), got[0].failed_in_a_row),
            ("failed", 1)
        );
        assert_eq!(got[0].last.failure, None);
    }

    #[test]
    fn a_version_3_store_gets_an_account_for_each_account_id() {
        let mut conn = Connection::open_in_memory().unwrap();
        for m in &MIGRATIONS[..3] {
            conn.execute_batch(m.sql).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 3;
             INSERT INTO contacts (source, contact_id, user_id, linked, fingerprint, content,
                 name, email, account_id, account_name, grants, attributes)
             VALUES ('p', 'c2', 1, 1, 0, 0, 'B', 'b@x.example', 'acme', 'ACME late', '[]', '{}'),
                    ('p', 'c1', 1, 1, 0, 0, 'A', 'a@x.example', 'acme', 'ACME', '[]', '{}'),
                    ('p', 'c0', 1, 1, 0, 0, 'Z', 'z@x.example', 'acme', '', '[]', '{}'),
                    ('p', 'c3', 2, 0, 0, 0, 'C', 'c@x.example', 'nameless', NULL, '[]', '{}'),
                    ('p', 'c4', 2, 1, 0, 0, 'D', 'd@x.example', NULL, 'No id', '[]', '{}');",
        )
        .unwrap();
        migrate(&mut conn, "m").unwrap();
        let mut stmt = conn
            .prepare("SELECT id, name, domains FROM accounts ORDER BY id")
            .unwrap();
        let got: Vec<(String, Option<String>, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            got,
            [
                ("acme".into(), Some("ACME".into()), String::new()),
                ("nameless".into(), None, String::new()),
            ]
        );
    }
    #[test]
    fn a_version_6_store_reads_back_without_direct_accounts_or_actors() {
        let mut conn = Connection::open_in_memory().unwrap();
        for m in &MIGRATIONS[..6] {
            conn.execute_batch(m.sql).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 6;
             INSERT INTO users (id, login, title, email, email_norm, locale, status, origin,
                 account_contacts, account_tickets, external_comments, grants, attributes,
                 created_at, updated_at)
             VALUES (1, 'ann', 'Ann', 'ann@x.example', 'ann@x.example', 'en', 'active',
                 'sync', 0, 0, 0, '[]', '{}', 0, 0);
             INSERT INTO journal (run_id, source, user_id, login, at, action)
             VALUES (1, 'p', 1, 'ann', 0, 'create');",
        )
        .unwrap();
        migrate(&mut conn, "m").unwrap();
        let d = super::super::read::user_detail(&conn, "ann")
            .unwrap()
            .unwrap();
        assert!(d.direct_accounts.is_empty() && d.user.accounts.is_empty());
        // A sync entry's actor is its source's, `sync:SOURCE`.
        assert_eq!(d.history[0].actor.as_deref(), Some("sync:p"));
        let confirmed: Option<i64> = conn
            .query_row("SELECT confirmation_queued_at FROM users", [], |r| r.get(0))
            .unwrap();
        assert_eq!(confirmed, None);
    }
}
