//! The LDAP connector through the real binary against a real slapd
//! (`tests/common/slapd.rs`): full reads, paging, anchors, groups.

use serde_json::{json, Value};

use crate::common::slapd::{
    self, group, person, Slapd, SlapdOptions, GROUPS, PEOPLE, READER, READER_PASSWORD,
};
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

pub fn three() -> String {
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
}

/// The grants of the user with `email`.
fn grants(s: &Sandbox, email: &str) -> Value {
    user(s, email)["grants"].clone()
}

#[test]
fn paged_reads_go_past_the_page_size_and_the_servers_size_limit() {
    let options = SlapdOptions {
        size_limit: Some(30),
        paged_past_limit: true,
        ..SlapdOptions::default()
    };
    let slapd = Slapd::start(options, &slapd::generated(120));
    let s = Sandbox::new(&config(&slapd.url(), &["page_size: 25"]));
    let out = sync(&s, 0);
    assert_eq!(out["created"], 120, "{out}");
    assert_eq!(users(&s).len(), 120);
    // The server served five pages of at most 25.
    let pages = slapd.log().matches("SEARCH RESULT tag=101 err=0").count();
    assert!(pages >= 5, "{pages} search results:\n{}", slapd.log());
}

#[test]
fn multi_valued_attributes_the_dn_and_its_components_reach_the_mapping() {
    let ldif = format!(
        "dn: ou=ACME Corp,{PEOPLE}\nobjectClass: organizationalUnit\nou: ACME Corp\n\n\
         dn: uid=ann,ou=ACME Corp,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: ann\ncn: Ann Lee\nsn: Lee\n\
         mail: ann@acme.example\nmail: a.lee@acme.example\ntelephoneNumber: +1 555 0100\n\
         telephoneNumber: +1 555 0101\n\n"
    );
    let slapd = Slapd::with(&ldif);
    let s = Sandbox::new(&config(
        &slapd.url(),
        &[
            "attributes: [cn, mail, telephoneNumber]",
            "map:",
            "  name: \"{{ cn }}\"",
            "  email: \"{{ mail | first }}\"",
            "  phone: \"{{ telephoneNumber | join(', ') }}\"",
            "  account_id: \"{{ dn_ou | first | slug }}\"",
            "  account_name: \"{{ dn_ou | first }}\"",
            "  description: \"{{ dn }} ({{ mail | length }} addresses)\"",
        ],
    ));
    sync(&s, 0);
    let ann = user(&s, "ann@acme.example");
    assert_eq!(ann["accounts"], json!(["acme-corp"]), "{ann}");
    assert_eq!(
        ann["description"],
        format!("uid=ann,ou=ACME Corp,{PEOPLE} (2 addresses)")
    );
    let shown = run(&s, &["users", "show", "ann.lee"]).expect(0).stdout;
    assert!(shown.contains("+1 555 0100, +1 555 0101"), "{shown}");
}

fn gold_and_silver() -> String {
    [
        three(),
        group("gold", &["ann", "jiri"]),
        group("silver", &["ann"]),
    ]
    .concat()
}

#[test]
fn group_membership_from_member_of_becomes_grants_and_a_change_reads_in_full() {
    // The memberof overlay fills memberOf on writes, not for slapadd.
    let slapd = Slapd::with(&three());
    slapd.add(&[group("gold", &["ann", "jiri"]), group("silver", &["ann"])].concat());
    let s = Sandbox::new(&config(
        &slapd.url(),
        &[
            &format!("groups: {{base_dn: \"{GROUPS}\", member_of: true}}"),
            "map:",
            "  name: \"{{ cn }}\"",
            "  email: \"{{ mail | lower }}\"",
            "  grants: \"{{ groups }}\"",
        ],
    ));
    sync(&s, 0);
    assert_eq!(grants(&s, "ann@acme.example"), json!(["gold", "silver"]));
    assert_eq!(grants(&s, "jiri@dvorak.example"), json!(["gold"]));
    assert_eq!(grants(&s, "bob@acme.example"), json!([]));

    // memberOf changes no entry's CSN or timestamp: the group's does.
    slapd.modify(&format!(
        "dn: cn=silver,{GROUPS}\nchangetype: modify\nadd: member\nmember: uid=bob,{PEOPLE}\n"
    ));
    let out = sync(&s, 0);
    assert_eq!(out["read"]["mode"], "full", "{out}");
    assert_eq!(out["updated"], 1, "{out}");
    assert_eq!(grants(&s, "bob@acme.example"), json!(["silver"]));
    // Nothing changed since: a changes read again.
    let out = sync(&s, 0);
    assert_eq!(out["read"]["mode"], "changes", "{out}");
}

#[test]
fn group_membership_from_a_group_search_becomes_grants() {
    let slapd = Slapd::with(&gold_and_silver());
    let s = Sandbox::new(&config(
        &slapd.url(),
        &[
            "groups:",
            &format!("  base_dn: {GROUPS}"),
            "  filter: (objectClass=groupOfNames)",
            "map:",
            "  name: \"{{ cn }}\"",
            "  email: \"{{ mail | lower }}\"",
            "  grants: \"{{ groups }}\"",
        ],
    ));
    sync(&s, 0);
    assert_eq!(grants(&s, "ann@acme.example"), json!(["gold", "silver"]));
    assert_eq!(grants(&s, "jiri@dvorak.example"), json!(["gold"]));
    slapd.modify(&format!(
        "dn: cn=gold,{GROUPS}\nchangetype: modify\ndelete: member\nmember: uid=jiri,{PEOPLE}\n"
    ));
    let out = sync(&s, 0);
    assert_eq!(out["read"]["mode"], "full", "{out}");
    assert_eq!(grants(&s, "jiri@dvorak.example"), json!([]));
}

#[test]
fn an_entry_without_its_anchor_is_a_row_error_with_its_dn() {
    let slapd = Slapd::with(&three());
    let s = Sandbox::new(&config(
        &slapd.url(),
        &["anchor: employeeNumber", "max_bad_row_ratio: 1.0"],
    ));
    slapd.replace(&format!("uid=ann,{PEOPLE}"), "employeeNumber", &["E-1"]);
    let out = sync(&s, 0);
    assert_eq!(out["created"], 1, "{out}");
    let errors = out["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{out}");
    assert!(
        errors
            .iter()
            .any(|e| e["location"] == format!("uid=bob,{PEOPLE}")
                && e["message"].as_str().unwrap().contains("no employeeNumber")),
        "{out}"
    );
    assert_eq!(user(&s, "ann@acme.example")["contacts"], json!(["E-1"]));
}

#[test]
fn source_preview_shows_an_ldap_source_as_read_and_mapped() {
    let slapd = Slapd::with(&gold_and_silver());
    let s = Sandbox::new(&config(
        &slapd.url(),
        &[
            "attributes: [cn, mail, o, memberOf]",
            &format!("groups: {{base_dn: \"{GROUPS}\"}}"),
        ],
    ));
    let out = run(
        &s,
        &[
            "source", "preview", "dir", "--limit", "2", "--format", "json",
        ],
    )
    .expect(0)
    .json();
    let records = out["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{out}");
    let ann = &records[0];
    assert_eq!(ann["location"], format!("uid=ann,{PEOPLE}"));
    assert_eq!(ann["key"], slapd.entry_uuid(&format!("uid=ann,{PEOPLE}")));
    assert_eq!(ann["read"]["dn"], format!("uid=ann,{PEOPLE}"));
    assert_eq!(ann["read"]["groups"], json!(["gold", "silver"]));
    assert_eq!(ann["read"]["dn_uid"], "ann");
    assert_eq!(ann["fields"]["email"], "ann@acme.example");
    assert_eq!(ann["fields"]["account_id"], "acme-corp");
    assert!(
        ann["read"].get("modifyTimestamp").is_none(),
        "asked for by the connector only"
    );
    let human = run(&s, &["source", "preview", "dir", "--limit", "1"])
        .expect(0)
        .stdout;
    assert!(human.contains("uid=ann,ou=people"), "{human}");
    // Nothing was written.
    assert!(!s.path().join("liaison.db").exists());
}

#[test]
fn validate_online_binds_and_reads_a_first_page_of_every_source() {
    let slapd = Slapd::with(&three());
    let good = config(&slapd.url(), &[]);
    let s = Sandbox::new(&good);
    s.write(
        "partners.csv",
        "contact_id,name,email\nc-1,Ann,ann@x.example\n",
    );
    let mut both = good.replace(
        "safety:",
        "  - name: partners\n    type: csv\n    path: partners.csv\nsafety:",
    );
    s.write("liaison.yaml", &both);
    let out = run(&s, &["validate", "--online"]).expect(0);
    assert!(
        out.stdout.contains("source dir (ldap): OK"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("source partners (csv): OK"),
        "{}",
        out.stdout
    );
    // A bind in clear text to another host is worth a warning.
    s.write("liaison.yaml", &config("ldap://ldap.example.com", &[]));
    let out = run(&s, &["validate"]).expect(0);
    assert!(
        out.stderr.contains("warning: sources: dir: the bind password goes to ldap://ldap.example.com:389 in clear text"),
        "{}",
        out.stderr
    );
    s.write(
        "liaison.yaml",
        &config("ldap://ldap.example.com", &["starttls: true"]),
    );
    assert!(!run(&s, &["validate"])
        .expect(0)
        .stderr
        .contains("clear text"));
    // Offline validate does not connect: it passes with the server down too.
    both = both.replace(&slapd.url(), "ldap://127.0.0.1:1");
    s.write("liaison.yaml", &both);
    run(&s, &["validate"]).expect(0);
    let out = run(&s, &["validate", "--online"]).expect(1);
    assert!(
        out.stdout.contains("source partners (csv): OK"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("source dir (ldap): FAILED [source_unreachable]")
            && out.stderr.contains("connection refused"),
        "{}",
        out.stderr
    );
    // A wrong password: FAILED, never the password.
    s.write("liaison.yaml", &good);
    let out = s
        .run_with_env(
            &["validate", "--online"],
            &[("LDAP_PASSWORD", "wrong-pw-123")],
        )
        .expect(1);
    assert!(
        out.stderr.contains("[source_auth]") && out.stderr.contains("invalidCredentials"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("wrong-pw-123") && !out.stdout.contains("wrong-pw-123"));
}
