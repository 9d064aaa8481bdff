//! `type: exec` sources through the binary: `validate`, and a sync reading a
//! plugin (the host's semantics of changes reads are tested with the sync).

use crate::common::Sandbox;

fn config(command: &str, keys: &[&str]) -> String {
    let mut c = format!(
        "store: sqlite://liaison.db\nsources:\n  - name: crm\n    type: exec\n    command: {command}\n"
    );
    for k in keys {
        c.push_str(&format!("    {k}\n"));
    }
    c
}

const PEOPLE: &str = r#"import json, sys
start = json.loads(sys.stdin.readline())
for i, name in enumerate(start["settings"]["names"]):
    print(json.dumps({"type": "record", "key": f"p-{i}", "attributes": {
        "contact_id": f"p-{i}", "name": name, "email": name.split()[0].lower() + "@example.com"}}))
print(json.dumps({"type": "end", "mode": "full", "cursor": None}))
"#;

#[test]
fn validate_accepts_an_exec_source_and_locates_its_errors() {
    let s = Sandbox::new(&config(
        "[python3, people.py]",
        &[
            "settings: {names: [Ann Lee]}",
            "timeout: 5m",
            "idle_timeout: 30s",
        ],
    ));
    let r = s.run(&["validate"]).expect(0);
    assert!(r.stdout.contains("OK (1 source)"), "{}", r.stdout);

    let s = Sandbox::new(&config(
        "python3 people.py",
        &[
            "idle_timout: 30s",
            "env: {TOKEN: \"${env:LIAISON_TEST_UNSET_VAR}\"}",
        ],
    ));
    let r = s.run(&["validate"]).expect(2);
    let file = s.config().display().to_string();
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stderr);
    assert!(
        lines[0].starts_with(&format!("{file}:5:14: sources[0].command: expected a list")),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with(&format!("{file}:6:5: sources[0].idle_timout: unknown key for an exec source; did you mean \"idle_timeout\"?")), "{}", lines[1]);
    assert!(
        lines[2].contains(
            "sources[0].env.TOKEN: environment variable \"LIAISON_TEST_UNSET_VAR\" is not set"
        ),
        "{}",
        lines[2]
    );
}

#[test]
fn a_sync_reads_users_from_a_plugin() {
    let s = Sandbox::new(&config(
        "[python3, people.py]",
        &["settings: {names: [Ann Lee, Bo Berg]}"],
    ));
    s.write("people.py", PEOPLE);
    let report = s.sync(0);
    assert_eq!(report["status"], "applied", "{report}");
    assert_eq!(report["created"], 2, "{report}");
    assert_eq!(s.user("ann.lee")["email"], "ann@example.com");
    assert_eq!(s.sync(0)["unchanged"], 2);
}

#[test]
fn a_failing_plugin_fails_the_run_and_applies_nothing() {
    let s = Sandbox::new(&config("[sh, fails.sh]", &[]));
    s.write(
        "fails.sh",
        "cat > /dev/null\necho '{\"type\": \"record\", \"key\": \"p-0\", \"attributes\": {\"contact_id\": \"p-0\", \"name\": \"Ann\", \"email\": \"ann@example.com\"}}'\necho '{\"type\": \"end\", \"mode\": \"full\", \"cursor\": null}'\necho 'lost the database' >&2\nexit 3\n",
    );
    let report = s.sync(1);
    assert_eq!(report["status"], "failed", "{report}");
    assert_eq!(report["failure_kind"], "source_unreachable", "{report}");
    assert_eq!(report["retryable"], true, "{report}");
    let failure = report["failure"].as_str().unwrap();
    assert!(failure.contains("exited with status 3"), "{failure}");
    assert!(failure.contains("lost the database"), "{failure}");
    assert!(s.users().is_empty());

    s.write(
        "fails.sh",
        "cat > /dev/null\necho '{\"type\": \"record\", \"key\": \"p-0\", \"attributes\": {}}'\necho '{\"type\": \"recrod\"}'\n",
    );
    let report = s.sync(1);
    assert_eq!(report["failure_kind"], "source_invalid", "{report}");
    let failure = report["failure"].as_str().unwrap();
    assert!(
        failure.contains("line 2: unknown type \"recrod\""),
        "{failure}"
    );
}
