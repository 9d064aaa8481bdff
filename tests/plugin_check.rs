//! `liaison plugin check`: a plugin run once, everything it sent reported,
//! every protocol violation with its line number, nothing written.

use std::time::{Duration, Instant};

use crate::common::Sandbox;

/// A plugin doing both kinds of read, as `docs/plugin-protocol.md` shows.
const GOOD: &str = r#"import json, sys
start = json.loads(sys.stdin.readline())
def out(**line):
    print(json.dumps(line), flush=True)
out(type="log", level="info", message="asked for " + start["mode"])
out(type="record", key="c-1", attributes={"name": "Ann Lee", "email": "ann@example.com",
    "groups": ["sales", "support"], "table": start["settings"].get("table", "")})
out(type="record", key="c-2", attributes={"name": "Bo Berg", "email": "bo@example.com",
    "groups": [], "table": ""})
if start["mode"] == "changes":
    out(type="deleted", key="c-7")
    out(type="end", mode="changes", cursor={"since": start["cursor"]["since"] + 10})
else:
    out(type="error", location="export row 3", message="no e-mail", key="c-3")
    out(type="end", mode="full", cursor={"since": 10})
"#;

/// Five problems: a line that is not JSON, an unknown type, a record
/// without a key, a deletion in a full read, output after the end.
const BROKEN: &str = r#"import sys
sys.stdin.read()
print('{"type": "record", "key": "c-1", "attributes": {"name": "Ann"}}')
print('{"type": "record", "key": "c-2", "attributes": {"name": "Bo"')
print('{"type": "recrod", "key": "c-3", "attributes": {}}')
print('{"type": "record", "attributes": {"name": "Cy"}}')
print('{"type": "deleted", "key": "c-4"}')
print('{"type": "end", "mode": "full", "cursor": null}')
print('{"type": "record", "key": "c-5", "attributes": {}}')
sys.stderr.write("done, badly\n")
"#;

fn plugin(s: &Sandbox, name: &str, script: &str) -> String {
    s.write(name, script);
    s.path().join(name).display().to_string()
}

#[test]
fn a_good_plugin_is_reported_and_exits_zero() {
    let s = Sandbox::new(crate::common::CONFIG);
    let p = plugin(&s, "good.py", GOOD);
    let r = s
        .run(&[
            "plugin",
            "check",
            "--settings",
            r#"{"table": "contacts"}"#,
            "--",
            "python3",
            &p,
        ])
        .expect(0);
    let out = &r.stdout;
    assert!(out.contains(r#"start line: {"type":"start","protocol":1,"source":"check","mode":"full","cursor":null,"settings":{"table":"contacts"}}"#), "{out}");
    assert!(out.contains("exited with status 0"), "{out}");
    assert!(
        out.contains("records: 2 (attributes: name, email, groups, table)"),
        "{out}"
    );
    assert!(
        out.contains(r#"line 2  key "c-1"  name="Ann Lee"  email="ann@example.com"  groups=["sales", "support"]  table="contacts""#),
        "{out}"
    );
    assert!(
        out.contains(r#"line 4  export row 3: no e-mail (key "c-3")"#),
        "{out}"
    );
    assert!(out.contains("line 1  info   asked for full"), "{out}");
    assert!(
        out.contains(r#"end: line 5, mode full, cursor {"since": 10}"#),
        "{out}"
    );
    assert!(out.contains("violations: 0"), "{out}");
    assert!(
        out.trim_end().ends_with("cleanly (full read, 2 records)"),
        "{out}"
    );
    assert!(
        !s.path().join("liaison.db").exists(),
        "a check writes nothing, not even a store"
    );

    let json = s
        .run(&[
            "plugin",
            "check",
            "--cursor",
            r#"{"since": 5}"#,
            "--format",
            "json",
            "--",
            "python3",
            &p,
        ])
        .expect(0)
        .json();
    assert_eq!(json["ok"], true);
    assert_eq!(json["asked"], "changes");
    assert_eq!(json["exit"]["code"], 0);
    assert_eq!(json["records"]["count"], 2);
    assert_eq!(
        json["records"]["shown"][0]["attributes"]["groups"],
        serde_json::json!(["sales", "support"])
    );
    assert_eq!(
        json["deletions"]["items"][0],
        serde_json::json!({"line": 4, "key": "c-7"})
    );
    assert_eq!(
        json["end"],
        serde_json::json!({"line": 5, "mode": "changes", "cursor": {"since": 15}})
    );
    assert_eq!(json["violations"]["count"], 0);
}

#[test]
fn a_broken_plugin_has_every_violation_reported_with_its_line() {
    let s = Sandbox::new(crate::common::CONFIG);
    let p = plugin(&s, "broken.py", BROKEN);
    let r = s.run(&["plugin", "check", "--", "python3", &p]).expect(1);
    let out = &r.stdout;
    for want in [
        "line 2: not JSON",
        "line 3: unknown type \"recrod\"",
        "line 4: a record needs \"key\"",
        "line 5: a deleted line in a full read",
        "line 7: output after the end line (line 6)",
        "violations: 5",
        "done, badly",
        "FAILED: 5 protocol violations; a read of this plugin would fail and apply nothing",
    ] {
        assert!(out.contains(want), "{want:?} not in:\n{out}");
    }
    assert!(
        out.contains("records: 1"),
        "the good record still counts:\n{out}"
    );

    let json = s
        .run(&["plugin", "check", "--format", "json", "--", "python3", &p])
        .expect(1)
        .json();
    assert_eq!(json["ok"], false);
    let lines: Vec<i64> = json["violations"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, [2, 3, 4, 5, 7]);
}

#[test]
fn a_plugin_that_exits_non_zero_without_an_end_fails() {
    let s = Sandbox::new(crate::common::CONFIG);
    let p = plugin(
        &s,
        "fails.sh",
        "cat > /dev/null\necho '{\"type\": \"record\", \"key\": \"k\", \"attributes\": {}}'\necho 'cannot reach the database' >&2\nexit 4\n",
    );
    let r = s.run(&["plugin", "check", "--", "sh", &p]).expect(1);
    assert!(r.stdout.contains("exited with status 4"), "{}", r.stdout);
    assert!(r.stdout.contains("no end line"), "{}", r.stdout);
    assert!(
        r.stdout.contains("cannot reach the database"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_hanging_plugin_is_killed_with_its_children_at_the_idle_timeout() {
    let s = Sandbox::new(crate::common::CONFIG);
    let child_pid = s.path().join("child.pid");
    let p = plugin(
        &s,
        "hangs.sh",
        &format!(
            "cat > /dev/null\nsleep 1000 &\necho $! > {}\necho '{{\"type\": \"record\", \"key\": \"k\", \"attributes\": {{}}}}'\nsleep 1000\n",
            child_pid.display()
        ),
    );
    let began = Instant::now();
    let r = s
        .run(&[
            "plugin",
            "check",
            "--idle-timeout",
            "1s",
            "--format",
            "json",
            "--",
            "sh",
            &p,
        ])
        .expect(1);
    assert!(began.elapsed() < Duration::from_secs(20));
    let json = r.json();
    let failure = json["failure"].as_str().unwrap();
    assert!(
        failure.contains("after 1s without a line (idle_timeout)"),
        "{failure}"
    );
    assert_eq!(json["records"]["count"], 1);
    let pid: u32 = std::fs::read_to_string(&child_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let gone = |pid: u32| match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    };
    let waited = Instant::now();
    while !gone(pid) {
        assert!(
            waited.elapsed() < Duration::from_secs(5),
            "the plugin's child {pid} lives on"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_configured_exec_source_is_checked_as_a_sync_runs_it() {
    let s = Sandbox::new(
        "store: sqlite://liaison.db\n\
         sources:\n\
         \x20 - name: crm\n\
         \x20   type: exec\n\
         \x20   command: [python3, plugins/good.py]\n\
         \x20   settings: {table: people}\n\
         \x20   env:\n\
         \x20     CRM_TOKEN: ${env:TEST_CRM_TOKEN}\n",
    );
    std::fs::create_dir(s.path().join("plugins")).unwrap();
    plugin(&s, "plugins/good.py", GOOD);
    let r = s
        .run_with_env(
            &["plugin", "check", "--source", "crm"],
            &[("TEST_CRM_TOKEN", "t0k3n")],
        )
        .expect(0);
    assert!(r.stdout.contains(r#""source":"crm""#), "{}", r.stdout);
    assert!(r.stdout.contains(r#"table="people""#), "{}", r.stdout);
    assert!(!r.stdout.contains("t0k3n") && !r.stderr.contains("t0k3n"));

    let r = s
        .run_with_env(
            &["plugin", "check", "--source", "nope"],
            &[("TEST_CRM_TOKEN", "t0k3n")],
        )
        .expect(2);
    assert!(
        r.stderr
            .contains("unknown source \"nope\" (configured: crm)"),
        "{}",
        r.stderr
    );
}

#[test]
fn usage_errors_exit_two() {
    let s = Sandbox::new(crate::common::CONFIG);
    let r = s
        .run(&["plugin", "check", "--mode", "changes", "--", "true"])
        .expect(2);
    assert!(
        r.stderr.contains("--mode changes needs --cursor"),
        "{}",
        r.stderr
    );
    let r = s
        .run(&["plugin", "check", "--settings", "[1]", "--", "true"])
        .expect(2);
    assert!(
        r.stderr.contains("--settings: expected a JSON object"),
        "{}",
        r.stderr
    );
    s.run(&["plugin", "check"]).expect(2);
    let r = s
        .run(&["plugin", "check", "--", "liaison-no-such-plugin"])
        .expect(1);
    assert!(
        r.stdout.contains("cannot run \"liaison-no-such-plugin\""),
        "{}",
        r.stdout
    );
}
