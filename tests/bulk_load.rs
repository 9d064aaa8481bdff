//! Bulk loads (a first sync of a big source) on a real SQLite store: written
//! through the rollback journal when the store is Liaison's alone, in WAL mode
//! when it is shared, with the same result either way. The threshold is
//! lowered so that a few rows make a bulk load.

use liaison::config::{self, Config};
use liaison::store::{JournalMode, SqliteStore, Store, UserFilter};
use liaison::sync::{run_source, RunOptions, RunStatus};
use rusqlite::Connection;

use crate::common::{csv_config, Sandbox, HEADER};

const T0: i64 = 1_800_000_000_000;

const ROWS: &str = "c1,Ann Smith,ann@x.example,a1,Acme,\n\
                    c2,Bob Brown,bob@x.example,a1,Acme,billing\n\
                    c3,Ann Smith,ann.smith@y.example,a2,Initech,\n\
                    c4,Cecile Dvořák,cecile@z.example,,,\n";

fn sandbox() -> (Sandbox, Config) {
    let s = Sandbox::new(&csv_config("partners.csv", &[], &[]));
    s.write("partners.csv", &format!("{HEADER}{ROWS}"));
    let config = config::load(&s.config()).unwrap();
    (s, config)
}

fn store(s: &Sandbox, name: &str, bulk_threshold: usize) -> SqliteStore {
    let mut store = SqliteStore::open(&s.path().join(name)).unwrap();
    store.set_bulk_threshold(bulk_threshold);
    store
}

fn sync(config: &Config, store: &mut SqliteStore) -> RunStatus {
    let opts = RunOptions {
        dry_run: false,
        allow_mass_deprovision: false,
        now_ms: T0,
        ..RunOptions::default()
    };
    run_source(config, &config.sources[0], store, opts)
        .unwrap()
        .status
}

fn journal_mode(db: &std::path::Path) -> String {
    Connection::open(db)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap()
}

/// Everything a user list shows, plus each user's history, as text.
fn directory(store: &mut SqliteStore) -> Vec<String> {
    let users = store.list_users(&UserFilter::default()).unwrap();
    users
        .iter()
        .map(|u| {
            let detail = store.user_detail(u.login.as_str()).unwrap().unwrap();
            format!("{u:?} {:?}", detail.history)
        })
        .collect()
}

#[test]
fn a_bulk_load_goes_through_the_rollback_journal_and_leaves_the_store_in_wal() {
    let (s, config) = sandbox();
    let mut bulk = store(&s, "bulk.db", 2);
    assert_eq!(sync(&config, &mut bulk), RunStatus::Applied);
    let report = bulk.last_apply().unwrap();
    assert!(report.bulk, "{report:?}");
    assert_eq!(report.journal, Some(JournalMode::Rollback));
    assert_eq!(journal_mode(&s.path().join("bulk.db")), "wal");

    // The same rows, row by row: the same directory, journal included.
    let mut plain = store(&s, "plain.db", usize::MAX);
    assert_eq!(sync(&config, &mut plain), RunStatus::Applied);
    let report = plain.last_apply().unwrap();
    assert!(!report.bulk);
    assert_eq!(report.journal, Some(JournalMode::Wal));
    let listed = directory(&mut bulk);
    assert_eq!(listed.len(), 4, "{listed:#?}");
    assert_eq!(listed, directory(&mut plain));

    // The rebuilt unique login index is there and enforced.
    let conn = Connection::open(s.path().join("bulk.db")).unwrap();
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'users' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(indexes.contains(&"users_login".to_owned()), "{indexes:?}");
    assert!(
        indexes.contains(&"users_email_norm".to_owned()),
        "{indexes:?}"
    );
    let duplicate = conn.execute(
        "INSERT INTO users (login, title, locale, status, origin, account_contacts, \
         account_tickets, external_comments, grants, attributes, created_at, updated_at) \
         SELECT login, title, locale, status, origin, 0, 0, 0, '[]', '{}', 0, 0 FROM users LIMIT 1",
        [],
    );
    assert!(duplicate.is_err(), "a second user with a taken login");

    // A run after the load is unchanged and written through the WAL.
    assert_eq!(sync(&config, &mut bulk), RunStatus::Applied);
    assert_eq!(bulk.last_apply().unwrap().journal, Some(JournalMode::Wal));
}

#[test]
fn a_bulk_load_on_a_shared_store_stays_in_wal_and_readers_keep_their_snapshot() {
    let (s, config) = sandbox();
    let db = s.path().join("liaison.db");
    let mut store = store(&s, "liaison.db", 2);
    // Another process reading the store, in the middle of a read transaction.
    let reader = Connection::open(&db).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let count = |c: &Connection| -> i64 {
        c.query_row("SELECT count(*) FROM users", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count(&reader), 0);

    assert_eq!(sync(&config, &mut store), RunStatus::Applied);
    let report = store.last_apply().unwrap();
    assert!(report.bulk);
    assert_eq!(report.journal, Some(JournalMode::Wal), "the file is shared");
    assert_eq!(count(&reader), 0, "the reader's snapshot");
    reader.execute_batch("COMMIT").unwrap();
    assert_eq!(count(&reader), 4);
    assert_eq!(journal_mode(&db), "wal");
}

#[test]
fn a_store_opens_while_another_process_writes_through_the_rollback_journal() {
    let (s, config) = sandbox();
    let db = s.path().join("liaison.db");
    let mut first = store(&s, "liaison.db", usize::MAX);
    assert_eq!(sync(&config, &mut first), RunStatus::Applied);
    drop(first);

    // A writer in the middle of a bulk load: rollback journal, write lock held.
    let writer = Connection::open(&db).unwrap();
    let mode: String = writer
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    writer
        .execute_batch(
            "BEGIN IMMEDIATE; UPDATE users SET title = 'Changing' WHERE login = 'bob.brown';",
        )
        .unwrap();

    // Opening does not wait for it nor fail; reading sees the last commit.
    let mut store = store(&s, "liaison.db", usize::MAX);
    let bob = store.user_detail("bob.brown").unwrap().unwrap();
    assert_eq!(bob.user.title, "Bob Brown");

    writer.execute_batch("COMMIT").unwrap();
    drop(writer);
    // The next run puts the store back in WAL mode.
    assert_eq!(sync(&config, &mut store), RunStatus::Applied);
    assert_eq!(store.last_apply().unwrap().journal, Some(JournalMode::Wal));
    assert_eq!(journal_mode(&db), "wal");
}

#[test]
fn a_bulk_load_that_fails_partway_leaves_the_store_in_wal() {
    let (s, config) = sandbox();
    let db = s.path().join("liaison.db");
    let mut store = store(&s, "liaison.db", 2);
    // An injected failure in the middle of the load: the journal entry of the
    // second new user is refused.
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER injected_failure BEFORE INSERT ON journal \
             WHEN new.login = 'bob.brown' BEGIN SELECT RAISE(FAIL, 'injected failure'); END;",
        )
        .unwrap();
    let opts = RunOptions {
        dry_run: false,
        allow_mass_deprovision: false,
        now_ms: T0,
        ..RunOptions::default()
    };
    let outcome = run_source(&config, &config.sources[0], &mut store, opts);
    let failed = match &outcome {
        Err(e) => {
            // The driver's words are the error's cause, not its text.
            let mut chain = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                chain.push_str(&c.to_string());
                cause = c.source();
            }
            chain.contains("injected failure")
        }
        Ok(report) => report.status == RunStatus::Failed,
    };
    assert!(failed, "the run fails: {:?}", outcome.map(|r| r.status));
    assert_eq!(journal_mode(&db), "wal");
    assert!(store.list_users(&UserFilter::default()).unwrap().is_empty());
}
