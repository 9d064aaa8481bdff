//! The store as the binary opens it: what it refuses before touching a file,
//! which folders it creates, the writer lock between processes, and search.

use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use liaison::config;
use liaison::store::{SqliteStore, Store, UserFilter};
use liaison::sync::{run_source, RunOptions, RunStatus};
use rusqlite::Connection;

use crate::common::{csv_config, Sandbox, CONFIG, HEADER};

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
    store_then(
        &s,
        "PRAGMA journal_mode = DELETE; PRAGMA user_version = 99;",
    );
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
        Connection::open(&db)
            .unwrap()
            .execute_batch(schema)
            .unwrap();
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
    // Outside the config's folder: there, a missing folder is an error.
    let elsewhere = tempfile::tempdir().unwrap();
    let folder = elsewhere.path().join("typo").join("state");
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
    assert!(!elsewhere.path().join("typo").exists(), "nothing created");
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

/// `liaison --config <s's config> ARGS` as a command not yet started, as
/// [`Sandbox::run`] runs it, plus `env`.
fn command(s: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_liaison"));
    c.arg("--config")
        .arg(s.config())
        .args(args)
        .current_dir(std::env::temp_dir())
        .env_remove("LIAISON_CONFIG")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Waits for a started command: exit code, stdout, stderr.
fn finish(child: Child) -> (i32, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A source of `n` new contacts, each its own user.
fn contacts(n: usize) -> String {
    let rows: String = (0..n)
        .map(|i| format!("c{i},Person {i},p{i}@x.example,acc,Acme,\n"))
        .collect();
    format!("{HEADER}{rows}")
}

#[test]
fn two_syncs_at_once_create_each_user_once() {
    let s = Sandbox::new(CONFIG);
    s.write("partners.csv", &contacts(200));
    s.run(&["users", "list"]).expect(0);
    let args = ["sync", "--once", "--format", "json"];
    let children: Vec<Child> = (0..2)
        .map(|_| command(&s, &args, &[]).spawn().unwrap())
        .collect();
    let mut created = 0;
    for child in children {
        let (code, stdout, stderr) = finish(child);
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        created += report["created"].as_u64().unwrap();
    }
    assert_eq!(created, 200, "one of the runs created them all");
    let users = s.users();
    assert_eq!(users.len(), 200);
    let emails: BTreeSet<&str> = users.iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(emails.len(), 200, "no user twice");
    assert!(users
        .iter()
        .all(|u| u["contacts"].as_array().unwrap().len() == 1));
}

#[test]
fn racing_first_opens_of_a_fresh_store_all_succeed() {
    for _ in 0..4 {
        let s = Sandbox::new(CONFIG);
        let children: Vec<Child> = (0..6)
            .map(|_| command(&s, &["users", "list"], &[]).spawn().unwrap())
            .collect();
        for child in children {
            let (code, stdout, stderr) = finish(child);
            assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}");
        }
    }
}

/// The writer lock of the store in `s`, held by this test process.
fn hold_lock(s: &Sandbox) -> SqliteStore {
    let mut store = SqliteStore::open(&s.path().join("liaison.db")).unwrap();
    store
        .lock_writer(Duration::ZERO, &mut |h| panic!("held by {h}"))
        .unwrap();
    store
}

#[test]
fn a_sync_gives_up_on_a_held_lock_naming_the_holder() {
    let s = Sandbox::new(CONFIG);
    s.write("partners.csv", &contacts(3));
    let held = hold_lock(&s);
    let started = Instant::now();
    let (code, _, stderr) = finish(
        command(&s, &["sync", "--once"], &[("LIAISON_STORE_LOCK_WAIT", "1")])
            .spawn()
            .unwrap(),
    );
    assert_eq!(code, 1, "{stderr}");
    let pid = format!("process {}", std::process::id());
    assert!(
        stderr.contains("waiting for the store's writer lock"),
        "{stderr}"
    );
    assert!(stderr.contains(&pid), "names the holder: {stderr}");
    assert!(stderr.contains("gave up after 1 s"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(s.users().is_empty(), "nothing applied");

    // A plan and a dry run write nothing and need no lock.
    s.run(&["plan"]).expect(0);
    s.run(&["sync", "--once", "--dry-run"]).expect(0);
    drop(held);
    assert_eq!(s.sync(0)["created"], 3);
}

#[test]
fn a_waiting_sync_runs_once_the_lock_is_released() {
    let s = Sandbox::new(CONFIG);
    s.write("partners.csv", &contacts(3));
    let mut held = hold_lock(&s);
    let child = command(
        &s,
        &["sync", "--once", "--format", "json"],
        &[("LIAISON_STORE_LOCK_WAIT", "60")],
    )
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    held.unlock_writer().unwrap();
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("waiting for the store's writer lock, held by process"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["created"], 3);
}

/// Logins `--search term` finds, straight from the store.
fn found(store: &mut SqliteStore, term: &str) -> Vec<String> {
    let filter = UserFilter {
        search: Some(term.to_owned()),
        ..UserFilter::default()
    };
    store
        .list_users(&filter)
        .unwrap()
        .into_iter()
        .map(|u| u.login)
        .collect()
}

#[test]
fn search_follows_every_write_path() {
    const DAY: i64 = 86_400_000;
    let s = Sandbox::new(&csv_config(
        "partners.csv",
        &[],
        &["deprovision:", "  delete_after: 30d"],
    ));
    let db = s.path().join("liaison.db");
    let config = config::load(&s.config()).unwrap();
    let mut store = SqliteStore::open(&db).unwrap();
    let sync = |store: &mut SqliteStore, rows: &str, now_ms: i64| {
        s.write("partners.csv", &format!("{HEADER}{rows}"));
        let opts = RunOptions {
            dry_run: false,
            allow_mass_deprovision: true,
            now_ms,
            ..RunOptions::default()
        };
        let report = run_source(&config, &config.sources[0], store, opts).unwrap();
        assert_eq!(report.status, RunStatus::Applied);
    };
    let t0 = 1_800_000_000_000;
    sync(
        &mut store,
        "c1,Jiří Dvořák,jiri@x.example,a1,Acme,\nc2,Anna Nová,anna@x.example,a1,Acme,\n",
        t0,
    );
    assert_eq!(found(&mut store, "dvorak"), ["jiri.dvorak"], "created");
    // An update: the old title is no longer found, the new one is.
    sync(
        &mut store,
        "c1,Jiří Dvořáček,jiri@x.example,a1,Acme,\nc2,Anna Nová,anna@x.example,a1,Acme,\n",
        t0 + DAY,
    );
    assert_eq!(found(&mut store, "DVOŘÁČEK"), ["jiri.dvorak"], "updated");
    assert!(found(&mut store, "dvorak ").is_empty());
    assert!(found(&mut store, "dvorak\u{1f}").is_empty());
    // Disabled: still found.
    sync(
        &mut store,
        "c1,Jiří Dvořáček,jiri@x.example,a1,Acme,\n",
        t0 + 2 * DAY,
    );
    assert_eq!(found(&mut store, "nova"), ["anna.nova"], "disabled");
    // Deleted after the grace period: gone, with its search text.
    sync(
        &mut store,
        "c1,Jiří Dvořáček,jiri@x.example,a1,Acme,\n",
        t0 + 40 * DAY,
    );
    assert!(found(&mut store, "nova").is_empty(), "deleted");
    let conn = Connection::open(&db).unwrap();
    let orphans: i64 = conn
        .query_row(
            "SELECT count(*) FROM user_search WHERE id NOT IN (SELECT id FROM users)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
}

/// One sandbox's history through the binary with `env`: two syncs (creations,
/// a shared e-mail, then a title change, a removal and an addition) and some
/// searches. Returns what the runs reported and left, and the debug log.
fn key_scenarios(env: &[(&str, &str)]) -> (Vec<serde_json::Value>, String) {
    let s = Sandbox::new(CONFIG);
    let mut env = env.to_vec();
    env.push(("RUST_LOG", "liaison::store=debug"));
    let mut seen = Vec::new();
    let mut log = String::new();
    let mut run = |args: &[&str]| {
        let (code, stdout, stderr) = finish(command(&s, args, &env).spawn().unwrap());
        assert_eq!(code, 0, "{args:?}: {stderr}");
        log.push_str(&stderr);
        let mut value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        // Times differ between sandboxes; everything else must not.
        if let Some(users) = value.as_array_mut() {
            for u in users {
                u["created_at"] = serde_json::Value::Null;
                u["updated_at"] = serde_json::Value::Null;
            }
        }
        seen.push(value);
    };
    // One removal of four users is more than the guard lets through by default.
    let sync = [
        "sync",
        "--once",
        "--allow-mass-deprovision",
        "--format",
        "json",
    ];
    let list = ["users", "list", "--format", "json"];
    s.write(
        "partners.csv",
        &format!(
            "{HEADER}c1,Jiří Dvořák,jiri@x.example,a1,Acme,\n\
             c2,Anna Nová,anna@x.example,a1,Acme,billing\n\
             c3,Max Weber,max@y.example,a2,Initech,\n\
             c4,Anna Nová,ANNA@x.example,a2,Initech,\n\
             c5,Łukasz Nowak,lukasz@z.example,,,\n"
        ),
    );
    run(&sync);
    s.write(
        "partners.csv",
        &format!(
            "{HEADER}c1,Jiří Dvořáček,jiri@x.example,a1,Acme,\n\
             c2,Anna Nová,anna@x.example,a1,Acme,billing\n\
             c4,Anna Nová,ANNA@x.example,a2,Initech,\n\
             c5,Łukasz Nowak,lukasz@z.example,,,\n\
             c6,Eva Malá,eva@z.example,,,\n"
        ),
    );
    run(&sync);
    run(&list);
    for term in ["DVOŘÁČEK", "nova", "weber", "lukasz", "z.example"] {
        let mut args = list.to_vec();
        args.extend(["--search", term]);
        run(&args);
    }
    (seen, log)
}

#[test]
fn key_scenarios_agree_through_both_paths_of_every_threshold() {
    let (lookups, lookup_log) = key_scenarios(&[]);
    let (scans, scan_log) = key_scenarios(&[
        ("LIAISON_TEST_SCAN_THRESHOLD", "0"),
        ("LIAISON_TEST_BULK_THRESHOLD", "0"),
    ]);
    // The paths were taken: default thresholds look keys up and write row by
    // row; thresholds of 0 scan and bulk-load.
    for what in [
        "finding users by e-mail",
        "loading users",
        "loading contacts",
    ] {
        let line = |log: &str, scan: bool| {
            log.lines()
                .any(|l| l.contains(what) && l.contains(&format!("scan={scan}")))
        };
        assert!(
            line(&lookup_log, false) && !line(&lookup_log, true),
            "{what}: {lookup_log}"
        );
        assert!(
            line(&scan_log, true) && !line(&scan_log, false),
            "{what}: {scan_log}"
        );
    }
    assert!(lookup_log.contains("bulk=false") && !lookup_log.contains("bulk=true"));
    assert!(scan_log.contains("bulk=true"));
    // The same directory either way, and the one expected.
    assert_eq!(lookups, scans);
    let [first, second, list, dvoracek, nova, weber, lukasz, domain] = &lookups[..] else {
        panic!("{lookups:?}");
    };
    assert_eq!(
        (&first["created"], &first["unchanged"]),
        (&4.into(), &0.into())
    );
    assert_eq!(
        (&second["created"], &second["updated"], &second["disabled"]),
        (&1.into(), &1.into(), &1.into()),
        "{second}"
    );
    let logins = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|u| u["login"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(logins(list).len(), 5);
    assert_eq!(logins(dvoracek), ["jiri.dvorak"]);
    assert_eq!(logins(nova), ["anna.nova"]);
    assert_eq!(logins(weber), ["max.weber"]);
    assert_eq!(weber[0]["status"], "disabled");
    assert_eq!(logins(lukasz), ["lukasz.nowak"]);
    assert_eq!(logins(domain), ["eva.mala", "lukasz.nowak"]);
    assert_eq!(nova[0]["contacts"], serde_json::json!(["c2", "c4"]));
}

#[test]
fn a_second_daemon_is_refused_naming_the_first_and_writers_are_not() {
    let s = Sandbox::new(CONFIG);
    s.write("partners.csv", &contacts(3));
    let db = s.path().join("liaison.db");
    assert!(SqliteStore::daemon_holder(&db).unwrap().is_none());
    assert!(
        !s.path().join("liaison.db.daemon").exists(),
        "looking creates nothing"
    );
    let daemon = SqliteStore::lock_daemon(&db).unwrap();
    let holder = SqliteStore::daemon_holder(&db).unwrap().expect("held");
    assert_eq!(holder.pid, Some(std::process::id()));
    assert!(holder.since_ms.is_some() && holder.command.is_some());

    let err = SqliteStore::lock_daemon(&db).unwrap_err();
    let said = err.to_string();
    assert!(
        said.starts_with(&format!(
            "another Liaison daemon holds the store {}: process {}",
            db.display(),
            std::process::id()
        )),
        "{said}"
    );

    // Writers take the writer lock per transaction and never this one.
    assert_eq!(s.sync(0)["created"], 3);
    s.run(&["users", "list"]).expect(0);

    drop(daemon);
    assert!(SqliteStore::daemon_holder(&db).unwrap().is_none());
    drop(SqliteStore::lock_daemon(&db).unwrap());
}

#[test]
fn readers_do_not_wait_for_a_write_transaction_in_progress() {
    let s = Sandbox::new(CONFIG);
    s.write("partners.csv", &contacts(3));
    s.sync(0);
    let db = s.path().join("liaison.db");
    let (started_tx, started) = std::sync::mpsc::channel();
    let (done, done_rx) = std::sync::mpsc::channel::<()>();
    let writer_db = db.clone();
    let writer = std::thread::spawn(move || {
        let mut conn = Connection::open(&writer_db).unwrap();
        // A small page cache: the writes spill to the file (to the WAL; in a
        // rollback journal they would lock every reader out) before commit.
        conn.execute_batch("PRAGMA cache_size = 10;").unwrap();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        tx.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
             INSERT INTO runs (source, started_at, finished_at, status, counts, errors)
             SELECT 'bulk', i, i, 'applied', printf('{\"pad\": \"%.*c\"}', 2000, 'x'), 0 FROM n;
             UPDATE users SET title = 'changed';",
        )
        .unwrap();
        started_tx.send(()).unwrap();
        // Commits only once the reader is done (or after a minute, and the
        // reader's assertions fail): a reader that waited would time out.
        let _ = done_rx.recv_timeout(Duration::from_secs(60));
        tx.commit().unwrap();
    });
    started.recv().unwrap();
    let mut reader = SqliteStore::open_read_only(&db).unwrap();
    let users = reader.list_users(&UserFilter::default()).unwrap();
    let runs = reader.run_summaries().unwrap();
    done.send(()).unwrap();
    writer.join().unwrap();
    assert_eq!(users.len(), 3);
    assert!(
        users.iter().all(|u| u.title != "changed"),
        "sees the last commit"
    );
    let sources: Vec<&str> = runs.iter().map(|r| r.source.as_str()).collect();
    assert_eq!(sources, ["partners"]);
    let mut after = SqliteStore::open_read_only(&db).unwrap();
    assert_eq!(after.run_summaries().unwrap().len(), 2, "then the commit");
}

#[test]
fn a_cancelled_apply_rolls_back_and_the_next_one_applies() {
    use liaison::reconcile::PlanCounts;
    use liaison::store::{JournalMode, RunRecord, StoreError};
    use liaison::sync::Cancel;

    let s = Sandbox::new(CONFIG);
    s.write("partners.csv", &contacts(3000));
    let db = s.path().join("liaison.db");
    let config = config::load(&s.config()).unwrap();
    let mut store = SqliteStore::open(&db).unwrap();
    let dry = RunOptions {
        dry_run: true,
        now_ms: 1_800_000_000_000,
        ..RunOptions::default()
    };
    let plan = run_source(&config, &config.sources[0], &mut store, dry)
        .unwrap()
        .plan;
    assert_eq!(plan.creates.len(), 3000);
    let run = RunRecord {
        source: "partners".into(),
        started_ms: 1_800_000_000_000,
        finished_ms: 1_800_000_000_001,
        status: "applied",
        counts: PlanCounts::default(),
        errors: 0,
        settings: 0,
        failure: None,
        cursor: None,
    };
    let cancel = Cancel::new();
    cancel.cancel();
    for bulk_above in [usize::MAX, 1] {
        store.set_bulk_threshold(bulk_above);
        let err = store
            .apply(&plan, &run, 1_800_000_000_000, &cancel)
            .unwrap_err();
        assert!(matches!(err, StoreError::Cancelled), "{err}");
        assert_eq!(err.to_string(), "cancelled; nothing applied");
        assert!(store.list_users(&UserFilter::default()).unwrap().is_empty());
        assert!(store.run_summaries().unwrap().is_empty(), "no run recorded");
    }
    store
        .apply(&plan, &run, 1_800_000_000_000, &Cancel::new())
        .unwrap();
    assert_eq!(
        store.last_apply().unwrap().journal,
        Some(JournalMode::Rollback)
    );
    assert_eq!(
        store.list_users(&UserFilter::default()).unwrap().len(),
        3000
    );
    let mode: String = Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal", "back to WAL after the bulk load");
}
