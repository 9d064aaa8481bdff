//! The daemon and the one-shot commands under signals, through the real binary.

use crate::common::daemon::{free_port, write_atomically, Daemon, PATIENCE};
use crate::common::http;
use crate::common::prometheus::Scrape;
use crate::common::{csv_config, Sandbox, HEADER};

/// `n` standard-layout rows, contact ids `c0…`, one account per 100.
pub fn rows(n: usize) -> String {
    let mut csv = String::with_capacity(n * 60 + HEADER.len());
    csv.push_str(HEADER);
    for i in 0..n {
        csv.push_str(&format!(
            "c{i},Person {i},person{i}@example.com,a{},Company {},portal\n",
            i / 100,
            i / 100
        ));
    }
    csv
}

#[test]
fn sync_once_stopped_by_sigterm_applies_nothing_and_exits_143() {
    let s = Sandbox::new(&csv_config("big.csv", &[], &[]));
    s.write("big.csv", &rows(200_000));
    let mut run = Daemon::command(
        &s,
        &["sync", "--once", "--format", "json"],
        &[("RUST_LOG", "liaison=debug")],
    );
    run.wait_for_log(&["anchors loaded"], 1);
    run.signal("TERM");
    let status = run.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(143), "log:\n{}", run.log());
    let report: serde_json::Value = serde_json::from_str(&run.stdout()).expect("JSON report");
    assert_eq!(report["failure_kind"], "cancelled", "{report}");
    assert!(s.users().is_empty(), "a cancelled run applied users");
}

#[test]
fn sync_once_stopped_by_sigint_exits_130_and_the_next_run_converges() {
    let s = Sandbox::new(&csv_config("big.csv", &[], &[]));
    s.write("big.csv", &rows(20_000));
    let mut run = Daemon::command(&s, &["sync", "--once"], &[("RUST_LOG", "liaison=debug")]);
    run.wait_for_log(&["anchors loaded"], 1);
    run.signal("INT");
    assert_eq!(
        run.wait_exit(PATIENCE).code(),
        Some(130),
        "log:\n{}",
        run.log()
    );
    let report = s.sync(0);
    assert_eq!(report["created"], 20_000, "{report}");
}

/// A config around one watched CSV source `partners` reading `path`, with
/// `keys` more keys of that source and `sections` more top-level lines.
fn daemon_config(path: &str, keys: &[&str], sections: &[&str]) -> String {
    csv_config(path, keys, sections)
}

const FAST_WATCH: &str = "watch: { quiet: 1s, rescan: 60s }";

fn row(i: usize) -> String {
    format!("c{i},Person {i},person{i}@example.com,a1,Company,portal\n")
}

fn csv_of(n: usize) -> String {
    let mut text = HEADER.to_owned();
    for i in 0..n {
        text.push_str(&row(i));
    }
    text
}

#[test]
fn a_csv_renamed_into_place_is_synced_within_seconds() {
    let s = Sandbox::new(&daemon_config(
        "in/partners.csv",
        &[FAST_WATCH, "run_on_start: false"],
        &[],
    ));
    s.write("in/other.txt", "not a source file");
    let daemon = Daemon::start(&s, &[]);
    daemon.wait_for_log(&["daemon started"], 1);
    write_atomically(&s.path().join("in/partners.csv"), &csv_of(3));
    daemon.wait_for_log(&["run finished", "created=3"], 1);
    assert_eq!(s.users().len(), 3);
    // A second drop replaces the file again: one more run, one more user.
    write_atomically(&s.path().join("in/partners.csv"), &csv_of(4));
    daemon.wait_for_log(&["run finished", "created=1"], 1);
    assert_eq!(s.users().len(), 4);
}

#[test]
fn a_new_file_matching_the_glob_triggers_a_run() {
    let s = Sandbox::new(&daemon_config(
        "drop/*.csv",
        &[FAST_WATCH, "run_on_start: false"],
        &[],
    ));
    s.write("drop/first.csv", &csv_of(2));
    let daemon = Daemon::start(&s, &[]);
    daemon.wait_for_log(&["daemon started"], 1);
    let mut second = HEADER.to_owned();
    second.push_str(&row(7));
    write_atomically(&s.path().join("drop/second.csv"), &second);
    daemon.wait_for_log(&["run finished", "created=3"], 1);
    assert_eq!(s.users().len(), 3);
}

#[test]
fn a_file_written_slowly_is_read_only_once_it_is_quiet() {
    let s = Sandbox::new(&daemon_config(
        "partners.csv",
        &["watch: { quiet: 2s, rescan: 60s }", "run_on_start: false"],
        &[],
    ));
    let daemon = Daemon::start(&s, &[]);
    daemon.wait_for_log(&["daemon started"], 1);
    // 40 rows, one every 150 ms: the writer is never quiet for 2 s.
    let path = s.path().join("partners.csv");
    let mut file = std::fs::File::create(&path).expect("create");
    use std::io::Write;
    file.write_all(HEADER.as_bytes()).expect("write");
    for i in 0..40 {
        file.write_all(row(i).as_bytes()).expect("write");
        file.flush().expect("flush");
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    drop(file);
    daemon.wait_for_log(&["run finished", "created=40"], 1);
    assert_eq!(
        daemon.count_log(&["run finished"]),
        1,
        "a half-written file was read; the log:\n{}",
        daemon.log()
    );
    assert_eq!(s.users().len(), 40);
}

#[test]
fn two_sources_run_on_their_own_schedules() {
    let config = "\
store: sqlite://liaison.db
sources:
  - name: fast
    type: csv
    path: fast.csv
    schedule: \"*/2 * * * * *\"
    run_on_start: false
  - name: slow
    type: csv
    path: slow.csv
    schedule: \"0 0 1 1 *\"
";
    let s = Sandbox::new(config);
    s.write("fast.csv", &csv_of(2));
    let mut slow = HEADER.to_owned();
    slow.push_str("s1,Slow One,slow1@example.com,a2,Other,portal\n");
    s.write("slow.csv", &slow);
    let daemon = Daemon::start(&s, &[]);
    // `fast` fires every 2 s; `slow` once, at start-up only.
    daemon.wait_for_log(&["run finished", "source=\"fast\""], 3);
    assert_eq!(daemon.count_log(&["run finished", "source=\"slow\""]), 1);
    assert_eq!(s.users().len(), 3);
}

#[test]
fn sighup_with_a_broken_config_keeps_the_old_one_running() {
    let s = Sandbox::new(&daemon_config(
        "partners.csv",
        &["schedule: \"*/2 * * * * *\""],
        &[],
    ));
    s.write("partners.csv", &csv_of(2));
    let daemon = Daemon::start(&s, &[]);
    daemon.wait_for_log(&["run finished"], 1);
    // `type` misspelt: the entry that starts on line 3 lacks it.
    s.write(
        "liaison.yaml",
        "store: sqlite://liaison.db\nsources:\n  - name: partners\n    tipe: csv\n    path: partners.csv\n",
    );
    daemon.signal("HUP");
    let log = daemon.wait_for_log(&["still running the previous one"], 1);
    assert!(
        log.contains("liaison.yaml:3:5: sources[0]: missing required key"),
        "the refusal names FILE:LINE:COLUMN; the log:\n{log}"
    );
    // Still serving the old config: its schedule keeps firing.
    let runs = daemon.count_log(&["run finished"]);
    daemon.wait_for_log(&["run finished"], runs + 2);
}

#[test]
fn a_config_edit_that_adds_a_source_runs_it() {
    let s = Sandbox::new(&daemon_config("partners.csv", &[], &[]));
    s.write("partners.csv", &csv_of(2));
    let daemon = Daemon::start(&s, &[]);
    daemon.wait_for_log(&["run finished", "source=\"partners\""], 1);
    let mut vendors = HEADER.to_owned();
    vendors.push_str("v1,Vendor One,vendor1@example.com,a9,Vendor Co,portal\n");
    s.write("vendors.csv", &vendors);
    let mut config = daemon_config("partners.csv", &[], &[]);
    config.push_str("  - name: vendors\n    type: csv\n    path: vendors.csv\n");
    write_atomically(&s.config(), &config);
    let log = daemon.wait_for_log(&["run finished", "source=\"vendors\""], 1);
    assert!(log.contains("source `vendors` added"), "the log:\n{log}");
    assert_eq!(s.users().len(), 3);
}

#[test]
fn sigterm_during_a_200k_row_sync_exits_0_and_the_next_run_converges() {
    let s = Sandbox::new(&daemon_config("big.csv", &[], &[]));
    s.write("big.csv", &rows(200_000));
    let mut daemon = Daemon::start(&s, &[("RUST_LOG", "liaison=debug")]);
    daemon.wait_for_log(&["anchors loaded"], 1);
    daemon.signal("TERM");
    let status = daemon.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "log:\n{}", daemon.log());
    assert!(daemon.log().contains("stopped"), "log:\n{}", daemon.log());
    // The store is intact and nothing was half-applied.
    let db = rusqlite::Connection::open(s.path().join("liaison.db")).expect("open");
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity check");
    assert_eq!(check, "ok");
    let users: i64 = db
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .expect("count");
    assert!(
        users == 0 || users == 200_000,
        "{users} users: half-applied"
    );
    drop(db);
    let report = s.sync(0);
    assert_eq!(
        report["created"].as_u64().unwrap_or(0) + report["unchanged"].as_u64().unwrap_or(0),
        200_000,
        "{report}"
    );
    assert_eq!(s.sync(0)["unchanged"], 200_000);
}

#[test]
fn notify_socket_hears_ready_reloading_and_stopping() {
    let s = Sandbox::new(&daemon_config("partners.csv", &[], &[]));
    s.write("partners.csv", &csv_of(1));
    let socket_path = s.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).expect("bind");
    socket.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let socket_env = socket_path.to_string_lossy().into_owned();
    let mut daemon = Daemon::start(
        &s,
        &[("NOTIFY_SOCKET", &socket_env), ("WATCHDOG_USEC", "1000000")],
    );
    let mut heard = Vec::new();
    let hear_until = |wanted: &str, heard: &mut Vec<String>| {
        let mut buf = [0u8; 4096];
        while !heard.iter().any(|m| m.contains(wanted)) {
            let n = socket.recv(&mut buf).unwrap_or_else(|e| {
                panic!("no {wanted} ({e}); heard {heard:?}; log:\n{}", daemon.log())
            });
            heard.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    };
    hear_until("READY=1", &mut heard);
    hear_until("WATCHDOG=1", &mut heard);
    hear_until("STATUS=partners: applied", &mut heard);
    daemon.signal("HUP");
    hear_until("RELOADING=1", &mut heard);
    let reloading = heard.iter().rposition(|m| m.contains("RELOADING=1"));
    let mut after = heard.split_off(reloading.map_or(0, |i| i + 1));
    hear_until("READY=1", &mut after);
    daemon.signal("TERM");
    hear_until("STOPPING=1", &mut after);
    assert_eq!(daemon.wait_exit(PATIENCE).code(), Some(0));
}

#[test]
fn a_second_daemon_on_the_same_store_is_refused_naming_the_first() {
    let s = Sandbox::new(&daemon_config("partners.csv", &[], &[]));
    s.write("partners.csv", &csv_of(1));
    let first = Daemon::start(&s, &[]);
    first.wait_for_log(&["daemon started"], 1);
    let second = s.run(&["run"]).expect(1);
    assert!(
        second.stderr.contains(&format!("process {}", first.pid())),
        "the refusal names the holder: {}",
        second.stderr
    );
    // A one-shot writer is not refused by the daemon lock.
    s.sync(0);
}

#[test]
fn the_daemon_serves_health_readiness_and_metrics_that_parse() {
    let port = free_port();
    let s = Sandbox::new(&daemon_config(
        "partners.csv",
        &[],
        &[&format!("api:\n  listen: 127.0.0.1:{port}")],
    ));
    s.write("partners.csv", &csv_of(3));
    let daemon = Daemon::start(&s, &[]);
    daemon.wait_for_log(&["run finished"], 1);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let health = http::get(addr, "/healthz");
    assert_eq!(health.status, 200, "{}", daemon.log());
    assert_eq!(http::get(addr, "/readyz").status, 200);
    let metrics = http::get(addr, "/metrics");
    assert_eq!(metrics.status, 200);
    let parsed = Scrape::parse(&metrics.body);
    assert_eq!(
        parsed.value(
            "liaison_runs_total",
            &[("source", "partners"), ("outcome", "applied")]
        ),
        1.0,
        "{}",
        metrics.body
    );
    assert_eq!(
        parsed.value(
            "liaison_changes_total",
            &[("source", "partners"), ("kind", "created")]
        ),
        3.0
    );
    assert_eq!(
        parsed.value(
            "liaison_run_duration_seconds_count",
            &[("source", "partners")]
        ),
        1.0
    );
}

#[test]
fn status_reads_the_running_daemon_from_the_store() {
    let s = Sandbox::new(&daemon_config(
        "partners.csv",
        &["schedule: \"0 3 * * *\""],
        &[],
    ));
    s.write("partners.csv", &csv_of(2));
    let daemon = Daemon::start(&s, &[]);
    daemon.wait_for_log(&["run finished"], 1);
    let status = crate::common::daemon::eventually(|| {
        let json = s.run(&["status", "--format", "json"]).expect(0).json();
        (json["sources"][0]["next_run"].is_string()).then_some(json)
    })
    .expect("status shows the next run");
    assert_eq!(status["daemon"]["running"], true, "{status}");
    assert_eq!(status["daemon"]["pid"], daemon.pid(), "{status}");
    let partners = &status["sources"][0];
    assert_eq!(partners["source"], "partners");
    assert_eq!(partners["last_run"]["status"], "applied", "{status}");
    assert_eq!(partners["last_run"]["created"], 2);
    assert!(
        partners["next_run"]
            .as_str()
            .is_some_and(|t| t.contains("T03:00:00")),
        "{status}"
    );
}

#[test]
fn secrets_in_the_config_never_appear_in_anything_the_daemon_prints() {
    const SECRET: &str = "hunter2-5f0c1d-not-for-logs";
    let port = free_port();
    let config = |extra: &str| {
        daemon_config(
            "partners.csv",
            &[],
            &[
                &format!("api:\n  listen: 127.0.0.1:{port}\n  token: ${{env:LIAISON_TEST_TOKEN}}"),
                "mail:\n  transport: smtp://robot:${env:LIAISON_TEST_TOKEN}@127.0.0.1:1\n  from: Support <support@example.com>",
                "log:\n  format: json\n  level: debug",
                extra,
            ],
        )
    };
    let s = Sandbox::new(&config(""));
    s.write("partners.csv", &csv_of(2));
    let mut daemon = Daemon::start(&s, &[("LIAISON_TEST_TOKEN", SECRET)]);
    daemon.wait_for_log(&["run finished"], 1);
    let _ = http::get(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        "/metrics",
    );
    // A reload that changes the secret-holding keys, then a broken one.
    write_atomically(
        &s.config(),
        &config("safety:\n  max_deprovision: 7").replace("127.0.0.1:1", "127.0.0.1:2"),
    );
    daemon.wait_for_log(&["configuration changed"], 1);
    write_atomically(&s.config(), &format!("{}\n  bogus: {SECRET}\n", config("")));
    daemon.wait_for_log(&["still running the previous one"], 1);
    daemon.signal("TERM");
    daemon.wait_exit(PATIENCE);
    let everything = format!("{}{}", daemon.log(), daemon.stdout());
    for line in everything.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "log.format json: every line is JSON: {line}"
        );
    }
    assert!(
        !everything.contains(SECRET),
        "a secret was printed:\n{everything}"
    );
}

#[test]
fn a_failing_source_is_retried_with_growing_waits_and_readyz_says_so() {
    let port = free_port();
    let s = Sandbox::new(&daemon_config(
        "missing.csv",
        &[],
        &[
            "retry:\n  initial: 300ms\n  max: 1s",
            "readiness:\n  max_failed_runs: 1",
            &format!("api:\n  listen: 127.0.0.1:{port}"),
        ],
    ));
    let daemon = Daemon::start(&s, &[]);
    let log = daemon.wait_for_log(&["the run will be retried"], 4);
    let waits: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("the run will be retried"))
        .filter_map(|l| l.split("retry_in_s=").nth(1)?.split_whitespace().next())
        .collect();
    assert_eq!(waits[..4], ["0.3", "0.6", "1.0", "1.0"], "{log}");
    assert!(log.contains("failure_kind=\"source_unreachable\""), "{log}");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let ready = http::get(addr, "/readyz");
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(ready.body.contains("partners"), "{}", ready.body);
    // The source comes back: the next retry applies, and readiness returns.
    s.write("missing.csv", &csv_of(2));
    daemon.wait_for_log(&["run finished", "created=2"], 1);
    assert_eq!(http::get(addr, "/readyz").status, 200);
}

#[test]
fn the_rescan_finds_a_file_in_a_folder_that_could_not_be_watched_at_start() {
    let s = Sandbox::new(&daemon_config(
        "later/partners.csv",
        &["watch: { quiet: 300ms, rescan: 1s }", "run_on_start: false"],
        &[],
    ));
    let daemon = Daemon::start(&s, &[]);
    daemon.wait_for_log(&["cannot watch the folder"], 1);
    // No watch is on `later/` yet: only the rescan can see this file.
    s.write("later/partners.csv", &csv_of(2));
    daemon.wait_for_log(&["run finished", "created=2"], 1);
}

#[test]
fn the_daemon_creates_a_missing_store_folder_beside_its_config_as_sync_does() {
    let config = daemon_config("partners.csv", &[], &[])
        .replace("sqlite://liaison.db", "sqlite://state/liaison.db");
    let s = Sandbox::new(&config);
    s.write("partners.csv", &csv_of(1));
    let daemon = Daemon::start(&s, &[]);
    daemon.wait_for_log(&["run finished", "created=1"], 1);
    assert!(s.path().join("state/liaison.db.daemon").exists());
}

#[test]
fn rows_a_run_skips_are_logged_with_their_location() {
    let s = Sandbox::new(&daemon_config(
        "partners.csv",
        &["max_bad_row_ratio: 0.5"],
        &[],
    ));
    let mut text = csv_of(3);
    text.push_str("c-bad,Bad Row,not-an-address,a1,Company,portal\n");
    s.write("partners.csv", &text);
    let daemon = Daemon::start(&s, &[]);
    let log = daemon.wait_for_log(&["run finished", "created=3", "errors=1"], 1);
    assert!(
        log.lines()
            .any(|l| l.contains("row skipped") && l.contains("partners.csv:5")),
        "{log}"
    );
}

#[test]
fn the_daemons_first_bulk_import_takes_the_rollback_journal() {
    let s = Sandbox::new(&daemon_config("partners.csv", &[], &[]));
    s.write("partners.csv", &csv_of(50));
    let daemon = Daemon::start(
        &s,
        &[
            ("RUST_LOG", "liaison=debug"),
            ("LIAISON_TEST_BULK_THRESHOLD", "10"),
        ],
    );
    let log = daemon.wait_for_log(&["run finished", "created=50"], 1);
    // The daemon holds no connection of its own between runs, so nothing
    // keeps the import in WAL.
    assert!(
        log.lines().any(|l| l.contains("writing the run")
            && l.contains("bulk=true")
            && l.contains("Rollback")),
        "{log}"
    );
    assert!(!log.contains("the store is open elsewhere"), "{log}");
}

#[test]
fn a_source_removed_mid_run_and_added_back_never_runs_twice_at_once() {
    let with_big = "\
store: sqlite://liaison.db
sources:
  - name: small
    type: csv
    path: small.csv
  - name: big
    type: csv
    path: big.csv
";
    let without_big = "\
store: sqlite://liaison.db
sources:
  - name: small
    type: csv
    path: small.csv
";
    let s = Sandbox::new(with_big);
    s.write("small.csv", &csv_of(1));
    let mut big = HEADER.to_owned();
    for i in 0..100_000 {
        big.push_str(&format!(
            "b{i},Big {i},big{i}@example.com,b1,Big Co,portal\n"
        ));
    }
    s.write("big.csv", &big);
    let mut daemon = Daemon::start(&s, &[("RUST_LOG", "liaison=debug")]);
    daemon.wait_for_log(&["source=big", "anchors loaded"], 1);
    write_atomically(&s.config(), without_big);
    daemon.wait_for_log(&["source `big` removed"], 1);
    write_atomically(&s.config(), with_big);
    daemon.wait_for_log(&["source `big` added"], 1);
    let log = daemon.wait_for_log(&["run finished", "source=\"big\""], 2);
    // The re-added source's task started only after the old one's run
    // ended: it never queued behind it for the writer lock (`small` only
    // runs at start-up, so nothing else holds the lock by then).
    let after_re_add = log
        .lines()
        .skip_while(|l| !l.contains("source `big` added"))
        .filter(|l| {
            l.contains("waiting for the store's writer lock") && l.contains("source=\"big\"")
        })
        .count();
    assert_eq!(after_re_add, 0, "{log}");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(PATIENCE).code(), Some(0));
    assert_eq!(daemon.count_log(&["run finished", "source=\"big\""]), 2);
}

#[test]
fn a_change_seen_just_before_an_unrelated_reload_is_still_synced() {
    let s = Sandbox::new(&daemon_config(
        "partners.csv",
        &["watch: { quiet: 1s, rescan: 60s }", "run_on_start: false"],
        &[],
    ));
    s.write("partners.csv", &csv_of(2));
    let daemon = Daemon::start(&s, &[]);
    daemon.wait_for_log(&["daemon started"], 1);
    s.write("partners.csv", &csv_of(3));
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Only the schedule changes: the watch must keep what it has seen.
    write_atomically(
        &s.config(),
        &daemon_config(
            "partners.csv",
            &[
                "watch: { quiet: 1s, rescan: 60s }",
                "run_on_start: false",
                "schedule: \"0 3 * * *\"",
            ],
            &[],
        ),
    );
    daemon.wait_for_log(&["configuration changed"], 1);
    daemon.wait_for_log(&["run finished", "created=3"], 1);
}

#[test]
fn a_scheduled_run_of_a_watched_source_waits_for_a_file_being_written() {
    let s = Sandbox::new(&daemon_config(
        "partners.csv",
        &[
            "watch: { quiet: 2s, rescan: 60s }",
            "run_on_start: false",
            "schedule: \"* * * * * *\"",
        ],
        &[],
    ));
    s.write("partners.csv", HEADER);
    let daemon = Daemon::start(&s, &[]);
    daemon.wait_for_log(&["run finished"], 1);
    let path = s.path().join("partners.csv");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    use std::io::Write;
    for i in 0..30 {
        file.write_all(row(i).as_bytes()).expect("write");
        file.flush().expect("flush");
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    drop(file);
    let log = daemon.wait_for_log(&["run finished", "created=30"], 1);
    let partial: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("run finished") && !l.contains("created=0") && !l.contains("created=30")
        })
        .collect();
    assert!(
        partial.is_empty(),
        "a cron run read a half-written file: {partial:?}"
    );
}
