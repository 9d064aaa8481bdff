//! The store as the binary opens it: what it refuses before touching a file,
//! which folders it creates, the writer lock between processes, and search.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

use rusqlite::Connection;

use crate::common::{Sandbox, CONFIG};

/// `users list --format json` on a store that must be refused: exit 1, and stderr.
fn refused(s: &Sandbox) -> String {
    s.run(&["users", "list", "--format", "json"])
        .expect(1)
        .stderr
}

/// A store made by the binary, then changed behind its back by `sql`.
fn store_then(s: &Sandbox, sql: &str) -> std::path::PathBuf {
    s.run(&["users", "list"]).expect(0);
    let db = s.path().join("liaison.db");
    Connection::open(&db).unwrap().execute_batch(sql).unwrap();
    db
}

/// Every file in `dir` with its length and a digest of its bytes.
fn files(dir: &Path) -> Vec<(String, usize, u64)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap();
            let mut digest = DefaultHasher::new();
            bytes.hash(&mut digest);
            (
                e.file_name().to_string_lossy().into_owned(),
                bytes.len(),
                digest.finish(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_newer_store_is_refused_before_anything_is_written() {
    let s = Sandbox::new(CONFIG);
    // A newer Liaison's store, left in the rollback journal (as a bulk load does
    // while it runs): switching it to WAL would rewrite its header.
    store_then(&s, "PRAGMA journal_mode = DELETE; PRAGMA user_version = 99;");
    let before = files(s.path());
    let err = refused(&s);
    assert!(err.contains("newer"), "{err}");
    assert_eq!(
        files(s.path()),
        before,
        "the refused store's folder, byte for byte"
    );
}

#[test]
fn a_negative_schema_version_is_refused() {
    let s = Sandbox::new(CONFIG);
    store_then(&s, "PRAGMA user_version = -1;");
    let err = refused(&s);
    assert!(err.contains("-1"), "{err}");
}

#[test]
fn another_programs_database_is_refused_without_sql_and_untouched() {
    for schema in [
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);",
        // A table named like one of ours: the migration would fail on it.
        "CREATE TABLE meta (k TEXT, v TEXT); PRAGMA user_version = 3;",
        "CREATE TABLE settings (k TEXT); PRAGMA application_id = 42; PRAGMA user_version = 1;",
    ] {
        let s = Sandbox::new(CONFIG);
        let db = s.path().join("liaison.db");
        Connection::open(&db).unwrap().execute_batch(schema).unwrap();
        let before = files(s.path());
        let err = refused(&s);
        assert!(err.contains("not a Liaison store"), "{schema}: {err}");
        for leak in ["CREATE", "already exists", "UNIQUE"] {
            assert!(!err.contains(leak), "{schema}: {leak:?} in {err}");
        }
        assert_eq!(files(s.path()), before, "{schema}: the file is untouched");
    }
}

#[test]
fn a_missing_folder_of_an_absolute_store_path_is_an_error_naming_it() {
    let s = Sandbox::new("sources: []\n");
    let folder = s.path().join("typo").join("state");
    s.write(
        "liaison.yaml",
        &format!(
            "store: sqlite://{}/liaison.db\nsources: []\n",
            folder.display()
        ),
    );
    let err = refused(&s);
    assert!(err.contains(&folder.display().to_string()), "{err}");
    assert!(err.contains("does not exist"), "{err}");
    assert!(!s.path().join("typo").exists(), "nothing created");
}

#[test]
fn a_store_folder_relative_to_the_config_is_created_and_said_so() {
    let s = Sandbox::new("store: sqlite://state/liaison.db\nsources: []\n");
    let r = s.run(&["users", "list"]).expect(0);
    assert!(s.path().join("state").join("liaison.db").exists());
    assert!(
        r.stderr.contains("created") && r.stderr.contains("state"),
        "{}",
        r.stderr
    );
    // Only the first time.
    let again = s.run(&["users", "list"]).expect(0);
    assert!(!again.stderr.contains("created"), "{}", again.stderr);
}

#[test]
fn a_store_url_with_a_query_string_is_a_config_error() {
    let s = Sandbox::new("store: sqlite://liaison.db?mode=rwc\nsources: []\n");
    let r = s.run(&["validate"]).expect(2);
    assert!(
        r.stderr.contains("liaison.yaml:1:8") && r.stderr.contains("?mode=rwc"),
        "{}",
        r.stderr
    );
    s.run(&["users", "list"]).expect(2);
    assert_eq!(
        std::fs::read_dir(s.path()).unwrap().count(),
        1,
        "no store file made"
    );
}
