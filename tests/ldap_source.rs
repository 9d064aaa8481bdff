//! The LDAP connector through the real binary against a real slapd
//! (`tests/common/slapd.rs`): full reads, paging, anchors, groups.

use serde_json::Value;

use crate::common::slapd::{self, group, person, Slapd, PEOPLE, READER, READER_PASSWORD};
use crate::common::Sandbox;

/// A config whose one source `dir` reads people from `slapd`, with `keys`
/// (more source keys, each one line, already indented by four spaces).
pub fn config(url: &str, keys: &[&str]) -> String {
    let mut c = format!(
        "store: sqlite://liaison.db
sources:
  - name: dir
    type: ldap
    url: {url}
    bind_dn: {READER}
    bind_password: ${{env:LDAP_PASSWORD}}
    base_dn: {PEOPLE}
    filter: (objectClass=inetOrgPerson)
"
    );
    for k in keys {
        c.push_str(&format!("    {k}\n"));
    }
    if !keys.iter().any(|k| k.starts_with("map:")) {
        c.push_str(
            "    map:
      name: \"{{ cn }}\"
      email: \"{{ mail | lower }}\"
      account_id: \"{{ o | slug }}\"
      account_name: \"{{ o }}\"
",
        );
    }
    c.push_str("safety:\n  max_deprovision: 100\n  max_deprovision_ratio: 1.0\n");
    c
}

/// Runs `liaison ARGS` with the bind password in the environment.
pub fn run(s: &Sandbox, args: &[&str]) -> crate::common::Run {
    s.run_with_env(args, &[("LDAP_PASSWORD", READER_PASSWORD)])
}

/// `sync --once --format json`, expecting `code`.
#[track_caller]
pub fn sync(s: &Sandbox, code: i32) -> Value {
    run(s, &["sync", "--once", "--format", "json"])
        .expect(code)
        .json()
}

/// `users list --format json`.
#[track_caller]
pub fn users(s: &Sandbox) -> Vec<Value> {
    match run(s, &["users", "list", "--format", "json"])
        .expect(0)
        .json()
    {
        Value::Array(v) => v,
        other => panic!("not an array: {other}"),
    }
}

#[track_caller]
pub fn user(s: &Sandbox, email: &str) -> Value {
    users(s)
        .into_iter()
        .find(|u| u["email"] == email)
        .unwrap_or_else(|| panic!("no user {email}"))
}

fn three() -> String {
    [
        person("ann", "Ann Lee", "Ann@Acme.example", "ACME Corp"),
        person("jiri", "Jiří Dvořák", "jiri@dvorak.example", "Dvořák & Syn"),
        person("bob", "Bob Berg", "bob@acme.example", "ACME Corp"),
    ]
    .concat()
}

#[test]
fn a_full_sync_reads_every_entry_keyed_by_its_entry_uuid() {
    let slapd = Slapd::with(&three());
    let s = Sandbox::new(&config(&slapd.url(), &[]));
    let out = sync(&s, 0);
    assert_eq!(out["status"], "applied", "{out}");
    assert_eq!(out["created"], 3, "{out}");
    assert_eq!(out["read"]["mode"], "full", "{out}");
    let jiri = user(&s, "jiri@dvorak.example");
    assert_eq!(jiri["title"], "Jiří Dvořák");
    assert_eq!(jiri["accounts"], serde_json::json!(["dvorak-syn"]));
    let uuid = slapd.entry_uuid(&format!("uid=jiri,{PEOPLE}"));
    assert_eq!(
        jiri["contacts"],
        serde_json::json!([uuid]),
        "the anchor is the entryUUID"
    );
    assert_eq!(user(&s, "ann@acme.example")["login"], "ann.lee");
    // A second run reads the (no) changes since the cookie and changes nothing.
    let again = sync(&s, 0);
    assert_eq!(again["read"]["mode"], "changes", "{again}");
    assert_eq!(
        (again["created"].as_u64(), again["updated"].as_u64()),
        (Some(0), Some(0)),
        "{again}"
    );
    // A full read finds every entry unchanged.
    let full = run(&s, &["sync", "--once", "--full", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(full["unchanged"], 3, "{full}");
    let _ = slapd::SUFFIX;
    let _ = group;
}
