//! `users list` filters and formats, `users show`.

use serde_json::json;

use crate::common::{Sandbox, CONFIG, HEADER};

fn seeded() -> Sandbox {
    let s = Sandbox::new(CONFIG);
    s.write(
        "partners.csv",
        "contact_id,name,email,account_id,description,attributes.licence_key,account_tickets\n\
         c1,Jiří Dvořák,jiri@acme.example,acme,Purchasing,LIC-1,yes\n\
         c2,Anna Nováková,anna@acme.example,acme,,LIC-2,no\n\
         c3,Max Weber,max@vendor.example,vendor,Service partner,,\n",
    );
    s.sync(0);
    s
}

fn logins(s: &Sandbox, args: &[&str]) -> Vec<String> {
    let mut all = vec!["users", "list", "--format", "json"];
    all.extend_from_slice(args);
    s.run(&all)
        .expect(0)
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["login"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn list_json_has_the_spec_fields() {
    let s = seeded();
    let u = s.user("jiri.dvorak");
    for field in [
        "id",
        "login",
        "title",
        "description",
        "email",
        "locale",
        "status",
        "contacts",
        "accounts",
        "account_contacts",
        "account_tickets",
        "external_comments",
        "grants",
        "attributes",
        "origin",
    ] {
        assert!(u.get(field).is_some(), "missing {field} in {u}");
    }
    assert_eq!(u["account_tickets"], true);
    assert_eq!(u["attributes"], json!({"licence_key": "LIC-1"}));
    assert_eq!(u["locale"], "en");
}

#[test]
fn filters_combine() {
    let s = seeded();
    assert_eq!(
        logins(&s, &["--account", "acme"]),
        ["anna.novakova", "jiri.dvorak"]
    );
    assert_eq!(
        logins(&s, &["--attribute", "licence_key=LIC-2"]),
        ["anna.novakova"]
    );
    assert_eq!(
        logins(&s, &["--search", "lic-1"]),
        ["jiri.dvorak"],
        "attribute values are searched"
    );
    assert_eq!(
        logins(&s, &["--search", "SERVICE"]),
        ["max.weber"],
        "descriptions too"
    );
    assert_eq!(logins(&s, &["--search", "vendor.example"]), ["max.weber"]);
    assert_eq!(
        logins(&s, &["--status", "active", "--origin", "sync"]).len(),
        3
    );
    assert!(logins(&s, &["--status", "disabled"]).is_empty());
    assert!(logins(&s, &["--origin", "manual"]).is_empty());
    assert!(
        logins(&s, &["--search", "100%_"]).is_empty(),
        "LIKE wildcards are literal"
    );
}

#[test]
fn csv_export_quotes_and_joins() {
    let s = seeded();
    let r = s
        .run(&["users", "list", "--format", "csv", "--account", "acme"])
        .expect(0);
    let mut rows = csv::Reader::from_reader(r.stdout.as_bytes());
    let headers = rows.headers().unwrap().clone();
    assert_eq!(&headers[1], "login");
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 2);
    assert_eq!(&records[1][2], "Jiří Dvořák");
}

#[test]
fn show_prints_contacts_and_history() {
    let s = seeded();
    s.write(
        "partners.csv",
        "contact_id,name,email,account_id,description,attributes.licence_key,account_tickets\n\
         c1,Jiří Dvořák,jiri@acme.example,acme,Head of purchasing,LIC-1,yes\n\
         c2,Anna Nováková,anna@acme.example,acme,,LIC-2,no\n\
         c3,Max Weber,max@vendor.example,vendor,Service partner,,\n",
    );
    s.sync(0);
    let d = s
        .run(&["users", "show", "jiri.dvorak", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(d["login"], "jiri.dvorak");
    assert_eq!(d["linked_contacts"][0]["source"], "partners");
    assert_eq!(d["linked_contacts"][0]["account"], "acme");
    let history = d["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["action"], "create");
    assert_eq!(history[1]["action"], "update");
    assert_eq!(history[1]["field"], "description");
    assert_eq!(history[1]["old"], "Purchasing");
    assert_eq!(history[1]["new"], "Head of purchasing");

    let human = s.run(&["users", "show", "jiri.dvorak"]).expect(0);
    assert!(human.stdout.contains("partners:c1"), "{}", human.stdout);
    assert!(
        human
            .stdout
            .contains("description: \"Purchasing\" → \"Head of purchasing\""),
        "{}",
        human.stdout
    );
    s.run(&["users", "show", "nobody"]).expect(1);
}

#[test]
fn listings_carry_each_users_links_ordered_and_distinct() {
    let s = Sandbox::new(CONFIG);
    let rows: String = (0..200)
        .map(|i| format!("c{i},User {i},u{i}@x.example,acc{},Acc,\n", i % 7))
        .collect();
    // User 3 gets a second contact with another account, and a third with the same.
    s.write(
        "partners.csv",
        &format!(
            "{HEADER}{rows}c-extra,User 3,u3@x.example,other,Other,\n\
             b-more,User 3,U3@X.example,acc3,Acc,\n"
        ),
    );
    assert_eq!(s.sync(0)["created"], 200);
    let all = s.users();
    assert_eq!(all.len(), 200);
    let user3 = all.iter().find(|u| u["login"] == "user.3").unwrap().clone();
    assert_eq!(user3["contacts"], json!(["b-more", "c-extra", "c3"]));
    assert_eq!(
        user3["accounts"],
        json!(["acc3", "other"]),
        "distinct, sorted"
    );
    assert_eq!(
        all[1]["contacts"],
        json!(["c1"]),
        "one contact, by login order"
    );
    // A filtered listing shows the same user the same way.
    let few = s
        .run(&["users", "list", "--account", "other", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(few, json!([user3]));
}

#[test]
fn search_folds_case_and_diacritics_on_both_sides() {
    let s = Sandbox::new(CONFIG);
    s.write(
        "partners.csv",
        "contact_id,name,email,description,attributes.licence_key\n\
         c1,Jiří Dvořák,jiri@acme.example,Nákup,ŽLUŤ-7\n\
         c2,Łukasz Wiśniewski,lw@vendor.example,,\n\
         c3,Štěpán Novák,stepan@acme.example,Servis ÚDRŽBA,\n\
         c4,Ольга Иванова,olga@ru.example,,\n\
         c5,Max Weber,max@vendor.example,,\n",
    );
    s.sync(0);
    let cases: &[(&str, &[&str])] = &[
        ("dvorak", &["jiri@acme.example"]),
        ("DVOŘÁK", &["jiri@acme.example"]),
        ("vořá", &["jiri@acme.example"]),
        ("łukasz", &["lw@vendor.example"]),
        ("LUKASZ", &["lw@vendor.example"]),
        ("ŠTĚPÁN", &["stepan@acme.example"]),
        ("údržba", &["stepan@acme.example"]),
        ("udrzba", &["stepan@acme.example"]),
        ("zlut-7", &["jiri@acme.example"]),
        ("nakup", &["jiri@acme.example"]),
        ("ОЛЬГА", &["olga@ru.example"]),
        ("novák", &["stepan@acme.example"]),
        // In login order: lukasz.wisniewski, max.weber.
        ("vendor", &["lw@vendor.example", "max@vendor.example"]),
        // Two letters: too short for any index, found all the same.
        ("ák", &["jiri@acme.example", "stepan@acme.example"]),
        ("weberx", &[]),
    ];
    for (term, expected) in cases {
        let found: Vec<String> = s
            .run(&["users", "list", "--format", "json", "--search", term])
            .expect(0)
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(&found, expected, "--search {term}");
    }
}
