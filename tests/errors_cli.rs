//! What a failing command tells a person: each error once, on one `error:`
//! line, with every cause in its chain said once.

use crate::common::{Run, Sandbox, CONFIG, HEADER};

/// How often `needle` occurs in `text`.
fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

/// Asserts `run` failed with exactly one stderr line, an `error:` line that
/// holds each of `parts` exactly once, and no driver noise.
#[track_caller]
fn said_once(run: &Run, parts: &[&str]) {
    assert_eq!(
        run.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr:\n{}", run.stderr);
    assert!(lines[0].starts_with("error: "), "{}", run.stderr);
    for part in parts {
        assert_eq!(
            count(&run.stderr, part),
            1,
            "{part:?} once in:\n{}",
            run.stderr
        );
    }
    assert!(!run.stderr.contains("Error code"), "{}", run.stderr);
}

#[test]
fn a_store_that_is_not_a_database_is_reported_once() {
    let s = Sandbox::new(CONFIG);
    s.write(
        "partners.csv",
        &format!("{HEADER}c1,Ann Smith,ann@x.example,,,\n"),
    );
    s.write(
        "liaison.db",
        &"this is a text file, not SQLite\n".repeat(200),
    );
    let path = s.path().join("liaison.db").display().to_string();
    for args in [
        &["sync", "--once"][..],
        &["plan"],
        &["users", "list"],
        &["users", "show", "ann.smith"],
    ] {
        said_once(&s.run(args), &["file is not a database", &path]);
    }
}

#[test]
fn a_foreign_database_is_reported_without_the_migration_sql() {
    let s = Sandbox::new(CONFIG);
    s.write(
        "partners.csv",
        &format!("{HEADER}c1,Ann Smith,ann@x.example,,,\n"),
    );
    let db = rusqlite::Connection::open(s.path().join("liaison.db")).unwrap();
    db.execute_batch("CREATE TABLE meta (a, b); CREATE TABLE users (x);")
        .unwrap();
    drop(db);
    let r = s.run(&["sync", "--once"]);
    said_once(&r, &["liaison.db"]);
    assert!(!r.stderr.contains("CREATE"), "{}", r.stderr);
}

#[cfg(target_os = "linux")]
#[test]
fn a_store_in_a_read_only_folder_is_reported_once() {
    // /proc takes no new files, not even from root (the tests may run as root,
    // which a chmod'ed folder would not stop).
    let s = Sandbox::new(&CONFIG.replace("sqlite://liaison.db", "sqlite:///proc/liaison.db"));
    s.write(
        "partners.csv",
        &format!("{HEADER}c1,Ann Smith,ann@x.example,,,\n"),
    );
    said_once(
        &s.run(&["sync", "--once"]),
        &["unable to open database file", "/proc/liaison.db"],
    );
}

#[test]
fn a_failed_run_is_reported_once_in_its_report() {
    let s = Sandbox::new(CONFIG);
    let r = s.run(&["sync", "--once"]).expect(1);
    assert_eq!(count(&r.stdout, "partners.csv"), 1, "{}", r.stdout);
    assert!(r.stdout.contains("failed, nothing applied"), "{}", r.stdout);
    assert_eq!(r.stderr, "", "the report said it; no log line repeats it");
    let r = s.run(&["sync", "--once", "--format", "json"]).expect(1);
    assert!(r.json()["failure"]
        .as_str()
        .unwrap()
        .contains("partners.csv"));
    assert_eq!(r.stderr, "");
}

#[test]
fn held_deprovisions_are_reported_once_in_the_report() {
    let s = Sandbox::new(CONFIG);
    let rows = |from: usize| -> String {
        let body: String = (from..10)
            .map(|i| format!("c{i},User {i},u{i}@x.example,,,\n"))
            .collect();
        format!("{HEADER}{body}")
    };
    s.write("partners.csv", &rows(0));
    s.sync(0);
    s.write("partners.csv", &rows(3));
    let r = s.run(&["sync", "--once"]).expect(3);
    assert_eq!(count(&r.stdout, "held: disable"), 3, "{}", r.stdout);
    assert_eq!(r.stderr, "", "the report said it; no log line repeats it");
}

#[test]
fn a_configured_log_level_still_logs() {
    // The one-shot default keeps stderr for errors; an admin who asks for
    // the log gets it.
    let s = Sandbox::new(&format!("{CONFIG}log:\n  level: warn\n"));
    let r = s.run(&["sync", "--once"]).expect(1);
    assert!(r.stderr.contains("source run failed"), "{}", r.stderr);
}
