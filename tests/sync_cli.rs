//! `sync --once` and `plan` through the binary: JSON shapes, idempotence, updates.

use serde_json::json;

use liaison::store::{SqliteStore, Store};

use crate::common::{csv_config, Sandbox, CONFIG, HEADER};

fn partners() -> String {
    format!(
        "{HEADER}\
         c1,Jiří Dvořák,jiri@acme.example,acme,ACME s.r.o.,support|sales\n\
         c2,Anna Nováková,anna@acme.example,acme,ACME s.r.o.,support\n\
         c3,Jiří Dvořák,jiri.d@vendor.example,vendor,Vendor,\n"
    )
}

#[test]
fn first_run_creates_second_run_changes_nothing() {
    let s = Sandbox::new(CONFIG);
    s.write("partners.csv", &partners());
    let first = s.sync(0);
    assert_eq!(
        first,
        json!({"source": "partners", "status": "applied", "created": 3, "updated": 0,
               "disabled": 0, "enabled": 0, "deleted": 0, "unchanged": 0, "errors": [],
               "read": {"mode": "full", "full_because": "no cursor is stored", "deletions": 0},
               "held": []})
    );
    let second = s.sync(0);
    assert_eq!(
        second["read"],
        json!({"mode": "full", "full_because": "the source gives no cursor", "deletions": 0})
    );
    assert_eq!(second["created"], 0);
    assert_eq!(second["updated"], 0);
    assert_eq!(second["unchanged"], 3);

    let jiri = s.user("jiri.dvorak");
    assert_eq!(jiri["contacts"], json!(["c1"]));
    assert_eq!(jiri["accounts"], json!(["acme"]));
    assert_eq!(jiri["grants"], json!(["sales", "support"]));
    assert_eq!(jiri["status"], "active");
    assert_eq!(jiri["origin"], "sync");
    assert_eq!(jiri["account_tickets"], false);
    assert_eq!(s.user("jiri.dvorak2")["email"], "jiri.d@vendor.example");
    assert!(
        s.path().join("liaison.db").exists(),
        "sqlite://liaison.db is relative to the config"
    );
}

#[test]
fn changed_rows_update_and_missing_rows_disable() {
    let s = Sandbox::new(CONFIG);
    s.write("partners.csv", &partners());
    s.sync(0);
    s.write(
        "partners.csv",
        &format!(
            "{HEADER}\
             c1,Jiří Dvořák-Nový,jiri@acme.example,acme,ACME s.r.o.,support\n\
             c2,Anna Nováková,anna@acme.example,acme,ACME s.r.o.,support\n"
        ),
    );
    // 1 of 3 is more than 10 %: the guard holds it unless released.
    let r = s
        .run(&[
            "sync",
            "--once",
            "--format",
            "json",
            "--allow-mass-deprovision",
        ])
        .expect(0)
        .json();
    assert_eq!(r["updated"], 1);
    assert_eq!(r["disabled"], 1);
    let jiri = s.user("jiri.dvorak");
    assert_eq!(jiri["title"], "Jiří Dvořák-Nový");
    assert_eq!(jiri["grants"], json!(["support"]));
    let gone = s.user("jiri.dvorak2");
    assert_eq!(gone["status"], "disabled");
    assert_eq!(gone["contacts"], json!([]));

    // It comes back: re-enabled, same login.
    s.write("partners.csv", &partners());
    let r = s.sync(0);
    assert_eq!(r["enabled"], 1);
    assert_eq!(s.user("jiri.dvorak2")["status"], "active");
}

#[test]
fn plan_shows_changes_and_changes_nothing() {
    let s = Sandbox::new(CONFIG);
    s.write("partners.csv", &partners());
    let p = s.run(&["plan", "--format", "json"]).expect(0).json();
    assert_eq!(p["status"], "dry_run");
    assert_eq!(p["created"], 3);
    let logins: Vec<&str> = p["changes"]["create"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["login"].as_str().unwrap())
        .collect();
    assert_eq!(logins, ["jiri.dvorak", "anna.novakova", "jiri.dvorak2"]);
    assert!(s.users().is_empty(), "plan wrote nothing");

    let human = s.run(&["plan"]).expect(0);
    assert!(
        human.stdout.contains("+ create jiri.dvorak"),
        "{}",
        human.stdout
    );

    let dry = s
        .run(&["sync", "--once", "--dry-run", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(dry["status"], "dry_run");
    assert!(s.users().is_empty(), "a dry run wrote nothing");
    let db = rusqlite::Connection::open(s.path().join("liaison.db")).unwrap();
    let runs: i64 = db
        .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(runs, 0, "not even a run record");
}

#[test]
fn several_sources_print_an_array_and_share_users() {
    let s = Sandbox::new(
        "store: sqlite://liaison.db\n\
         sources:\n\
         \x20 - name: crm\n\
         \x20   type: csv\n\
         \x20   path: crm.csv\n\
         \x20 - name: partners\n\
         \x20   type: csv\n\
         \x20   path: partners.csv\n",
    );
    s.write(
        "crm.csv",
        &format!("{HEADER}k1,Anna N.,ANNA@acme.example,acme,ACME,crm\n"),
    );
    s.write("partners.csv", &partners());
    let r = s.sync(0);
    let runs = r.as_array().expect("an array for several sources");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["source"], "crm");
    assert_eq!(runs[0]["created"], 1);
    assert_eq!(runs[1]["created"], 2, "anna joins the crm user by e-mail");
    let anna = s.user("anna.n");
    assert_eq!(anna["contacts"], json!(["k1", "c2"]));
    assert_eq!(anna["title"], "Anna N.", "crm comes first in config order");
    assert_eq!(anna["grants"], json!(["crm", "support"]));

    let only = s
        .run(&["sync", "--once", "--source", "partners", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(only["source"], "partners");
    assert_eq!(only["unchanged"], 3);
}

#[test]
fn a_column_no_mapping_reads_changes_nothing_but_its_digest() {
    let s = Sandbox::new(CONFIG);
    s.write(
        "partners.csv",
        "contact_id,name,email,notes\nc1,Ann Smith,ann@x.example,first\n",
    );
    assert_eq!(s.sync(0)["created"], 1);
    s.write(
        "partners.csv",
        "contact_id,name,email,notes\nc1,Ann Smith,ann@x.example,second\n",
    );
    let r = s.sync(0);
    assert_eq!(
        (r["updated"].as_u64(), r["unchanged"].as_u64()),
        (Some(0), Some(1)),
        "{r}"
    );
    let d = s
        .run(&["users", "show", "ann.smith", "--format", "json"])
        .expect(0)
        .json();
    let history = d["history"].as_array().unwrap();
    assert_eq!(
        history.len(),
        1,
        "only the creation is journaled: {history:?}"
    );
    // The new digest was stored: the row is unchanged for the next run.
    let digest = || {
        let mut store = SqliteStore::open(&s.path().join("liaison.db")).unwrap();
        store.anchors("partners").unwrap()[0].1.fingerprint
    };
    let stored = digest();
    s.write(
        "partners.csv",
        "contact_id,name,email,notes\nc1,Ann Smith,ann@x.example,third\n",
    );
    s.sync(0);
    assert_ne!(digest(), stored, "a changed row renews its digest");
}

#[test]
fn a_changed_mapping_maps_every_row_again() {
    let s = Sandbox::new(&csv_config(
        "partners.csv",
        &[
            "map:",
            "  contact_id: \"{{ contact_id }}\"",
            "  name: \"{{ name }}\"",
            "  email: \"{{ email }}\"",
        ],
        &[],
    ));
    s.write(
        "partners.csv",
        "contact_id,name,email\nc1,Ann Smith,ann@x.example\n",
    );
    assert_eq!(s.sync(0)["created"], 1);
    // Same rows, another template: the stored digests no longer match.
    s.write(
        "liaison.yaml",
        &csv_config(
            "partners.csv",
            &[
                "map:",
                "  contact_id: \"{{ contact_id }}\"",
                "  name: \"{{ name | upper }}\"",
                "  email: \"{{ email }}\"",
            ],
            &[],
        ),
    );
    let r = s.sync(0);
    assert_eq!(r["updated"], 1, "{r}");
    assert_eq!(s.user("ann.smith")["title"], "ANN SMITH");
}

/// The read of `s`'s only source against the store as it is.
fn read_again(s: &Sandbox) -> liaison::sync::ReadResult {
    let config = liaison::config::load(&s.config()).unwrap();
    let source = &config.sources[0];
    let mapping = match &source.map {
        Some(spec) => liaison::mapping::Mapping::compile(spec).unwrap(),
        None => liaison::mapping::Mapping::standard(),
    };
    let mut store = SqliteStore::open(&s.path().join("liaison.db")).unwrap();
    let mut known = liaison::sync::StoredContacts::default();
    store
        .for_each_anchor("partners", &mut |id, anchor| known.push(id, anchor))
        .unwrap();
    let connector = liaison::plugins::build(&source.connector);
    let reading = liaison::sync::Reading {
        request: &liaison_plugin_api::ReadRequest::full(),
        ctx: &liaison_plugin_api::ReadContext::default(),
        mapping: &mapping,
        max_bad_row_ratio: liaison::config::Ratio::percent(50),
    };
    liaison::sync::read_source(connector.as_ref(), &reading, known, None).unwrap()
}

#[test]
fn rows_that_map_to_their_stored_contacts_only_renew_their_digests() {
    let map = |name: &str| {
        csv_config(
            "partners.csv",
            &[
                "map:",
                "  contact_id: \"{{ contact_id }}\"",
                &format!("  name: \"{name}\""),
                "  email: \"{{ email }}\"",
            ],
            &[],
        )
    };
    let s = Sandbox::new(&map("{{ name }}"));
    s.write(
        "partners.csv",
        "contact_id,name,email\nc1,Ann Smith,ann@x.example\nc2,Bob Brown,bob@x.example\n",
    );
    assert_eq!(s.sync(0)["created"], 2);

    // Another template that renders the same contacts: every row's digest
    // changed, no contact did. The read settles them itself: nothing reaches
    // the planner, both digests are renewed.
    s.write("liaison.yaml", &map("{{ name | trim }}"));
    let read = read_again(&s);
    assert!(read.changed.is_empty(), "{:?}", read.changed);
    let mut renewed: Vec<&str> = read.renewed().map(|(id, _)| id).collect();
    renewed.sort_unstable();
    assert_eq!(renewed, ["c1", "c2"]);
    let r = s.sync(0);
    assert_eq!(
        (r["updated"].as_u64(), r["unchanged"].as_u64()),
        (Some(0), Some(2)),
        "{r}"
    );
    let read = read_again(&s);
    assert_eq!(read.renewed().count(), 0, "the new digests were stored");
    assert!(read.changed.is_empty());

    // A template that changes a contact is a change.
    s.write("liaison.yaml", &map("{{ name | upper }}"));
    let read = read_again(&s);
    assert_eq!(read.changed.len(), 2);
    assert_eq!(read.renewed().count(), 0);
    assert_eq!(s.sync(0)["updated"], 2);
    assert_eq!(s.user("bob.brown")["title"], "BOB BROWN");
}
