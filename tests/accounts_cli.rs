//! Accounts through the binary: the standard column `account_domains`, the
//! config's `accounts:`, `users show`, and `Store::account_for_domain`.

use serde_json::{json, Value};

use liaison::model::{AccountId, DomainMatch};
use liaison::store::{SqliteStore, Store};

use crate::common::{csv_config, Sandbox};

const HEADER: &str = "contact_id,name,email,account_id,account_name,account_domains\n";

fn show(s: &Sandbox, login: &str) -> Value {
    s.run(&["users", "show", login, "--format", "json"])
        .expect(0)
        .json()
}

fn count(s: &Sandbox, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(s.path().join("liaison.db")).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// A config around `partners.csv` with `sections` appended.
fn config(sections: &[&str]) -> String {
    csv_config("partners.csv", &[], sections)
}

#[test]
fn a_csv_with_account_domains_gives_the_account_its_domains() {
    let s = Sandbox::new(&config(&[]));
    s.write(
        "partners.csv",
        &format!(
            "{HEADER}\
             c1,Ann Smith,ann@acme.example,acme,ACME s.r.o., ACME.example | acme.cz\n\
             c2,Bob Brown,bob@acme.example,acme,,acme.example|acme-group.example\n\
             c3,Cyril Cook,cyril@vendor.example,vendor,Vendor,\n"
        ),
    );
    s.sync(0);
    let ann = show(&s, "ann.smith");
    assert_eq!(
        ann["linked_accounts"],
        json!([{"id": "acme", "name": "ACME s.r.o.",
                "domains": ["acme-group.example", "acme.cz", "acme.example"]}]),
        "the union of its contacts' domains, lower-cased and sorted"
    );
    assert_eq!(ann["accounts"], json!(["acme"]));
    assert_eq!(
        show(&s, "cyril.cook")["linked_accounts"],
        json!([{"id": "vendor", "name": "Vendor", "domains": []}])
    );
    let text = s.run(&["users", "show", "bob.brown"]).expect(0).stdout;
    assert!(
        text.contains("  acme  ACME s.r.o.  domains acme-group.example, acme.cz, acme.example\n"),
        "{text}"
    );

    // A contact that drops a domain takes it away; the other contact's stay.
    s.write(
        "partners.csv",
        &format!(
            "{HEADER}\
             c1,Ann Smith,ann@acme.example,acme,ACME Group,acme.example\n\
             c2,Bob Brown,bob@acme.example,acme,,acme.example|acme-group.example\n\
             c3,Cyril Cook,cyril@vendor.example,vendor,Vendor,\n"
        ),
    );
    s.sync(0);
    assert_eq!(
        show(&s, "ann.smith")["linked_accounts"],
        json!([{"id": "acme", "name": "ACME Group",
                "domains": ["acme-group.example", "acme.example"]}]),
        "the latest non-empty name wins"
    );
}

#[test]
fn a_config_account_shows_up_and_its_name_wins() {
    let s = Sandbox::new(&config(&[
        "accounts:",
        "  - id: acme",
        "    name: ACME (config)",
        "    domains: [Acme.example, acme.de]",
        "  - id: lonely",
        "    name: Lonely Ltd",
    ]));
    s.write(
        "partners.csv",
        &format!("{HEADER}c1,Ann Smith,ann@acme.example,acme,ACME s.r.o.,acme.cz\n"),
    );
    s.sync(0);
    assert_eq!(
        show(&s, "ann.smith")["linked_accounts"],
        json!([{"id": "acme", "name": "ACME (config)",
                "domains": ["acme.cz", "acme.de", "acme.example"]}])
    );
    assert_eq!(
        count(&s, "SELECT COUNT(*) FROM accounts WHERE id = 'lonely'"),
        1,
        "an account no contact names is stored all the same"
    );

    // Taken out of the config, the account keeps what its source says.
    s.write("liaison.yaml", &config(&[]));
    s.sync(0);
    assert_eq!(
        show(&s, "ann.smith")["linked_accounts"],
        json!([{"id": "acme", "name": "ACME s.r.o.", "domains": ["acme.cz"]}])
    );
}

#[test]
fn a_bad_domain_is_a_row_error_naming_the_column() {
    let s = Sandbox::new(&config(&["safety:", "  max_bad_row_ratio: 0.5"]));
    s.write(
        "partners.csv",
        &format!(
            "{HEADER}\
             c1,Ann Smith,ann@acme.example,acme,ACME,acme.example|not a domain\n\
             c2,Bob Brown,bob@acme.example,acme,ACME,acme.example\n"
        ),
    );
    let r = s.sync(0);
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{r}");
    let file = s.path().join("partners.csv").display().to_string();
    assert_eq!(errors[0]["location"], format!("{file}:2"));
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("account_domains: ") && message.contains("\"not a domain\""),
        "{message}"
    );
    assert_eq!(r["created"], 1);
}

#[test]
fn validate_locates_bad_accounts_entries() {
    let s = Sandbox::new(&config(&[
        "accounts:",
        "  - id: acme",
        "    name: ACME",
        "    domains: [acme.example, \"no domain\"]",
        "  - id: acme",
        "    name: ACME again",
        "  - id: other",
        "    name: Other",
        "    domains: [ACME.example]",
        "  - id: nameless",
    ]));
    let r = s.run(&["validate"]).expect(2);
    let file = s.config().display().to_string();
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{}", r.stderr);
    assert!(
        lines[0].starts_with(&format!("{file}:9:29: accounts[0].domains[1]: "))
            && lines[0].contains("\"no domain\" is not an e-mail domain"),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[1],
        format!("{file}:10:9: accounts[1].id: duplicate account id \"acme\" (first at line 7)")
    );
    assert!(
        lines[2].starts_with(&format!(
            "{file}:14:15: accounts[2].domains: domain \"acme.example\""
        )) && lines[2].contains("account \"acme\"'s (line 9)"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].starts_with(&format!(
            "{file}:15:5: accounts[3]: missing required key \"name\""
        )),
        "{}",
        lines[3]
    );
}

/// Triggers that count every write to the account tables: the test sees
/// what the binary writes.
fn count_account_writes(s: &Sandbox) {
    let conn = rusqlite::Connection::open(s.path().join("liaison.db")).unwrap();
    let mut sql = String::from("CREATE TABLE account_writes (what TEXT);");
    for table in ["accounts", "account_domains"] {
        for op in ["INSERT", "UPDATE", "DELETE"] {
            sql.push_str(&format!(
                "CREATE TRIGGER count_{table}_{op} AFTER {op} ON {table} \
                 BEGIN INSERT INTO account_writes VALUES ('{table} {op}'); END;"
            ));
        }
    }
    conn.execute_batch(&sql).unwrap();
}

#[test]
fn a_no_op_resync_writes_no_account() {
    let s = Sandbox::new(&config(&[
        "accounts:",
        "  - {id: acme, name: ACME, domains: [acme.de]}",
    ]));
    let csv = format!(
        "{HEADER}\
         c1,Ann Smith,ann@acme.example,acme,ACME s.r.o.,acme.example\n\
         c2,Bob Brown,bob@vendor.example,vendor,Vendor,vendor.example\n"
    );
    s.write("partners.csv", &csv);
    s.sync(0);
    count_account_writes(&s);
    let second = s.sync(0);
    assert_eq!(second["unchanged"], 2, "{second}");
    assert_eq!(count(&s, "SELECT COUNT(*) FROM account_writes"), 0);

    // The triggers do count: a changed domain is written.
    s.write(
        "partners.csv",
        &csv.replace("vendor.example\n", "vendor.cz\n"),
    );
    s.sync(0);
    assert!(count(&s, "SELECT COUNT(*) FROM account_writes") > 0);
}

#[test]
fn account_for_domain_finds_one_none_or_several() {
    let s = Sandbox::new(&config(&[
        "accounts:",
        "  - {id: shared-b, name: B, domains: [shared.example]}",
    ]));
    s.write(
        "partners.csv",
        &format!(
            "{HEADER}\
             c1,Ann Smith,ann@acme.example,acme,ACME,acme.example\n\
             c2,Bob Brown,bob@x.example,shared-a,A,shared.example\n"
        ),
    );
    s.sync(0);
    let mut store = SqliteStore::open(&s.path().join("liaison.db")).unwrap();
    assert_eq!(
        store.account_for_domain("ACME.Example").unwrap(),
        DomainMatch::One(AccountId("acme".into())),
        "any case"
    );
    assert_eq!(
        store.account_for_domain("mail.acme.example").unwrap(),
        DomainMatch::None,
        "exact: a subdomain is another domain"
    );
    assert_eq!(
        store.account_for_domain("nobody.example").unwrap(),
        DomainMatch::None
    );
    assert_eq!(
        store.account_for_domain("shared.example").unwrap(),
        DomainMatch::Ambiguous(vec![
            AccountId("shared-a".into()),
            AccountId("shared-b".into())
        ])
    );
}

#[test]
fn a_contact_that_leaves_takes_its_domains_away() {
    let s = Sandbox::new(&config(&["safety:", "  max_deprovision_ratio: 1.0"]));
    s.write(
        "partners.csv",
        &format!(
            "{HEADER}\
             c1,Ann Smith,ann@acme.example,acme,ACME,acme.example\n\
             c2,Bob Brown,bob@acme.example,acme,ACME,acme.cz\n"
        ),
    );
    s.sync(0);
    s.write(
        "partners.csv",
        &format!("{HEADER}c1,Ann Smith,ann@acme.example,acme,ACME,acme.example\n"),
    );
    let r = s.sync(0);
    assert_eq!(r["disabled"], 1, "{r}");
    assert_eq!(
        show(&s, "ann.smith")["linked_accounts"],
        json!([{"id": "acme", "name": "ACME", "domains": ["acme.example"]}])
    );
    let mut store = SqliteStore::open(&s.path().join("liaison.db")).unwrap();
    assert_eq!(
        store.account_for_domain("acme.cz").unwrap(),
        DomainMatch::None
    );
}

#[test]
fn a_contact_that_changes_account_takes_its_domains_along() {
    let s = Sandbox::new(&config(&[]));
    s.write(
        "partners.csv",
        &format!("{HEADER}c1,Ann Smith,ann@acme.example,acme,ACME,acme.example\n"),
    );
    s.sync(0);
    s.write(
        "partners.csv",
        &format!("{HEADER}c1,Ann Smith,ann@acme.example,acme-group,ACME Group,acme.example\n"),
    );
    s.sync(0);
    let mut store = SqliteStore::open(&s.path().join("liaison.db")).unwrap();
    assert_eq!(
        store.account_for_domain("acme.example").unwrap(),
        DomainMatch::One(AccountId("acme-group".into())),
        "the account it left no longer claims the domain"
    );
    assert_eq!(
        show(&s, "ann.smith")["linked_accounts"],
        json!([{"id": "acme-group", "name": "ACME Group", "domains": ["acme.example"]}])
    );
}
