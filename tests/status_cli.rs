//! `liaison status` through the binary: before any run, after a sync, after a
//! failed run, its JSON shape, and a daemon holding the store.

use std::collections::BTreeMap;

use chrono::DateTime;
use liaison::store::{DaemonState, SqliteStore, Store};
use serde_json::Value;

use crate::common::{csv_config, Sandbox, HEADER};

/// Two sources: `partners` on a schedule, `hr` without one.
fn config() -> String {
    csv_config(
        "partners.csv",
        &["schedule: \"*/15 * * * *\""],
        &["  - name: hr", "    type: csv", "    path: hr.csv"],
    )
}

fn rows(n: usize) -> String {
    let rows: String = (0..n)
        .map(|i| format!("c{i},Person {i},p{i}@x.example,acc,Acme,\n"))
        .collect();
    format!("{HEADER}{rows}")
}

fn status(s: &Sandbox) -> Value {
    s.run(&["status", "--format", "json"]).expect(0).json()
}

fn source<'v>(status: &'v Value, name: &str) -> &'v Value {
    status["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == name)
        .unwrap_or_else(|| panic!("no source {name} in {status:#}"))
}

/// An RFC 3339 time, in ms since the Unix epoch.
fn ms(time: &Value) -> i64 {
    let text = time
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {time}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_millis()
}

#[test]
fn before_any_run_every_source_is_listed_and_no_store_is_made() {
    let s = Sandbox::new(&config());
    let got = status(&s);
    assert_eq!(
        got["daemon"],
        serde_json::json!({"running": false, "pid": null, "since": null, "config": null})
    );
    let names: Vec<&str> = got["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["partners", "hr"], "config order");
    let partners = source(&got, "partners");
    assert_eq!(partners["last_run"], Value::Null);
    assert_eq!(partners["failed_in_a_row"], 0);
    assert_eq!(partners["last_success"], Value::Null);
    let next = ms(&partners["next_run"]);
    let now = chrono::Utc::now().timestamp_millis();
    assert!(
        next > now - 1_000 && next <= now + 15 * 60_000,
        "{next} vs {now}"
    );
    assert_eq!(next % (15 * 60_000), 0, "on the quarter hour");
    assert_eq!(source(&got, "hr")["next_run"], Value::Null, "no schedule");

    let human = s.run(&["status"]).expect(0).stdout;
    assert!(human.contains("daemon: not running"), "{human}");
    assert!(human.contains("no runs yet"), "{human}");
    assert!(human.contains("never run"), "{human}");
    assert!(
        !s.path().join("liaison.db").exists(),
        "status creates no store"
    );
}

#[test]
fn a_sync_then_a_failed_run_show_counts_failure_kind_and_failures_in_a_row() {
    let s = Sandbox::new(&config());
    s.write("partners.csv", &rows(3));
    s.write("hr.csv", &rows(0));
    s.sync(0);
    let got = status(&s);
    let partners = source(&got, "partners");
    let last = &partners["last_run"];
    let keys: Vec<&str> = last
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "started",
        "finished",
        "status",
        "created",
        "updated",
        "disabled",
        "enabled",
        "deleted",
        "unchanged",
        "errors",
        "failure",
        "failure_kind",
        "retryable",
    ] {
        assert!(keys.contains(&key), "{key} missing from {last:#}");
    }
    assert_eq!(last["status"], "applied");
    assert_eq!(
        (last["created"].as_u64(), last["errors"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(
        (&last["failure"], &last["failure_kind"], &last["retryable"]),
        (&Value::Null, &Value::Null, &Value::Null)
    );
    assert!(ms(&last["started"]) <= ms(&last["finished"]));
    let success = ms(&partners["last_success"]);
    assert_eq!(success, ms(&last["finished"]));
    assert_eq!(partners["failed_in_a_row"], 0);
    let human = s.run(&["status"]).expect(0).stdout;
    assert!(human.contains("applied  3 created"), "{human}");

    std::fs::remove_file(s.path().join("partners.csv")).unwrap();
    s.sync(1);
    s.sync(1);
    let got = status(&s);
    let partners = source(&got, "partners");
    let last = &partners["last_run"];
    assert_eq!(last["status"], "failed");
    assert_eq!(last["failure_kind"], "source_unreachable");
    assert_eq!(last["retryable"], true);
    assert!(
        last["failure"].as_str().unwrap().contains("partners.csv"),
        "{last:#}"
    );
    assert_eq!(partners["failed_in_a_row"], 2);
    assert_eq!(
        ms(&partners["last_success"]),
        success,
        "the last success stays"
    );
    assert_eq!(source(&got, "hr")["last_run"]["status"], "applied");

    let human = s.run(&["status"]).expect(0).stdout;
    assert!(human.contains("source_unreachable, retryable"), "{human}");
}

#[test]
fn a_daemon_holding_the_store_is_named_with_its_next_runs() {
    let s = Sandbox::new(&config());
    s.write("partners.csv", &rows(2));
    s.write("hr.csv", &rows(0));
    s.sync(0);
    let db = s.path().join("liaison.db");
    let _daemon = SqliteStore::lock_daemon(&db).unwrap();
    // A daemon's runs hold the writer lock; status takes neither.
    let mut writer = SqliteStore::open(&db).unwrap();
    writer
        .lock_writer(std::time::Duration::ZERO, &mut |h| panic!("held by {h}"))
        .unwrap();
    let next = 4_102_444_800_000; // 2100-01-01T00:00:00Z
    DaemonState {
        pid: std::process::id(),
        started_ms: 1_000,
        config: s.config(),
        next_runs: BTreeMap::from([("partners".to_owned(), next)]),
        updated_ms: 2_000,
    }
    .write(&db)
    .unwrap();

    let got = status(&s);
    let daemon = &got["daemon"];
    assert_eq!(daemon["running"], true);
    assert_eq!(daemon["pid"], std::process::id());
    assert!(daemon["since"].is_string(), "{daemon}");
    assert_eq!(daemon["config"], s.config().display().to_string());
    assert_eq!(source(&got, "partners")["next_run"], "2100-01-01T00:00:00Z");
    assert_eq!(source(&got, "hr")["next_run"], Value::Null);
    assert_eq!(source(&got, "partners")["last_run"]["created"], 2);

    let human = s.run(&["status"]).expect(0).stdout;
    let pid = format!("daemon: running, process {}", std::process::id());
    assert!(human.contains(&pid), "{human}");
    assert!(human.contains("2100-01-01T00:00:00Z"), "{human}");

    // A state file left by another process is not believed.
    DaemonState {
        pid: std::process::id() + 1,
        started_ms: 1_000,
        config: s.config(),
        next_runs: BTreeMap::new(),
        updated_ms: 2_000,
    }
    .write(&db)
    .unwrap();
    let got = status(&s);
    assert_ne!(source(&got, "partners")["next_run"], "2100-01-01T00:00:00Z");
}

#[test]
fn a_source_no_longer_configured_is_listed_after_the_configured_ones() {
    let s = Sandbox::new(&config());
    s.write("partners.csv", &rows(1));
    s.write("hr.csv", &rows(1));
    s.sync(0);
    s.write("liaison.yaml", &csv_config("partners.csv", &[], &[]));
    let got = status(&s);
    let hr = source(&got, "hr");
    assert_eq!(hr["configured"], false);
    assert_eq!(hr["last_run"]["status"], "applied");
    assert_eq!(source(&got, "partners")["configured"], true);
    assert!(s
        .run(&["status"])
        .expect(0)
        .stdout
        .contains("hr (not in config)"));
}

#[test]
fn status_shows_how_each_source_is_read_and_its_last_full_read() {
    let s = Sandbox::new(&config());
    s.write("partners.csv", &rows(2));
    s.write("hr.csv", &rows(1));
    let at = |time: &str| [("LIAISON_TEST_NOW", time.to_owned())];
    let sync = at("2026-12-01T10:00:00Z");
    let env: Vec<(&str, &str)> = sync.iter().map(|(k, v)| (*k, v.as_str())).collect();
    s.run_with_env(&["sync", "--once", "--source", "partners", "--full"], &env)
        .expect(0);
    let later = at("2026-12-01T13:00:30Z");
    let env: Vec<(&str, &str)> = later.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let got = s
        .run_with_env(&["status", "--format", "json"], &env)
        .expect(0)
        .json();
    let cursor = &source(&got, "partners")["cursor"];
    assert_eq!(cursor["present"], false, "CSV keeps no cursor: {cursor}");
    assert_eq!(ms(&cursor["last_full_read"]) / 1000, 1_796_119_200);
    assert!(
        (10_825..=10_830).contains(&cursor["age_s"].as_i64().unwrap()),
        "{cursor}"
    );
    assert_eq!(source(&got, "hr")["cursor"], Value::Null, "never run");
    let human = s.run_with_env(&["status"], &env).expect(0).stdout;
    assert!(
        human.contains(
            "partners: full reads only (no cursor), last full read 3h ago (2026-12-01T10:00:00"
        ),
        "{human}"
    );
    assert!(!human.contains("hr: full reads only"), "{human}");
}
