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
    // The user's description, and the linked contact's own description.
    assert_eq!(history.len(), 3);
    assert_eq!(history[0]["action"], "create");
    assert_eq!(history[1]["action"], "update");
    assert_eq!(history[1]["field"], "description");
    assert_eq!(history[1]["old"], "Purchasing");
    assert_eq!(history[1]["new"], "Head of purchasing");
    assert_eq!(history[2]["field"], "contact partners:c1 description");
    assert_eq!(history[2]["new"], "Head of purchasing");

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

/// Whether `text` holds a character that acts on a terminal: a control
/// character other than the line ends, or a bidirectional override.
fn has_terminal_controls(text: &str) -> bool {
    text.chars()
        .any(|c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
}

#[test]
fn csv_export_neutralises_cells_a_spreadsheet_would_run() {
    let s = Sandbox::new(CONFIG);
    s.write(
        "partners.csv",
        "contact_id,name,email,account_id,description,grants\n\
         @c1,\"=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",-ann@x.example,+acme,Buyer,@admin|x\n\
         c2,Plain Name,=bob@x.example,-5,-2+3,\n",
    );
    s.sync(0);
    let r = s.run(&["users", "list", "--format", "csv"]).expect(0);
    let mut rows = csv::Reader::from_reader(r.stdout.as_bytes());
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    let row = |login: &str| {
        records
            .iter()
            .find(|r| &r[1] == login)
            .unwrap_or_else(|| panic!("no {login} in\n{}", r.stdout))
    };
    let evil = row("hyperlink.http.evil.example.x");
    assert_eq!(
        &evil[2], "'=HYPERLINK(\"http://evil.example\",\"x\")",
        "title"
    );
    assert_eq!(&evil[3], "Buyer", "a plain cell is as it was");
    assert_eq!(&evil[4], "'-ann@x.example", "e-mail");
    assert_eq!(&evil[8], "'@c1", "contacts");
    assert_eq!(&evil[9], "'+acme", "accounts");
    assert_eq!(&evil[13], "'@admin|x", "grants");
    let plain = row("plain.name");
    assert_eq!(&plain[2], "Plain Name");
    assert_eq!(&plain[3], "'-2+3");
    assert_eq!(&plain[4], "'=bob@x.example");
    assert_eq!(&plain[9], "'-5");
    assert!(plain[0].parse::<u64>().is_ok(), "ids stay numbers");
    // JSON is exact.
    let json = s.user("hyperlink.http.evil.example.x");
    assert_eq!(json["title"], "=HYPERLINK(\"http://evil.example\",\"x\")");
    assert_eq!(json["contacts"], json!(["@c1"]));
}

#[test]
fn human_output_escapes_terminal_controls() {
    let s = Sandbox::new(CONFIG);
    s.write(
        "partners.csv",
        "contact_id,name,email,account_id,description,attributes.note\n\
         c1,\u{1b}[2JGone\u{9b}31m,ann@x.example,\u{1b}]0;pwned\u{7},\"two\nlines\",abc\u{202e}fed\n",
    );
    s.sync(0);
    let list = s.run(&["users", "list"]).expect(0);
    assert!(!has_terminal_controls(&list.stdout), "{:?}", list.stdout);
    assert!(
        list.stdout.contains("\\u{1b}[2JGone\\u{9b}31m"),
        "{}",
        list.stdout
    );
    let login = s.users()[0]["login"].as_str().unwrap().to_owned();
    let show = s.run(&["users", "show", &login]).expect(0);
    assert!(!has_terminal_controls(&show.stdout), "{:?}", show.stdout);
    assert!(
        show.stdout.contains("title:       \\u{1b}[2JGone"),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout.contains("description: two\\nlines"),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout.contains("\\u{1b}]0;pwned\\u{7}"),
        "{}",
        show.stdout
    );
    assert!(show.stdout.contains("abc\\u{202e}fed"), "{}", show.stdout);
    // JSON is exact.
    let u = s.user(&login);
    assert_eq!(u["title"], "\u{1b}[2JGone\u{9b}31m");
    assert_eq!(u["description"], "two\nlines");
    assert_eq!(u["attributes"]["note"], "abc\u{202e}fed");
}

#[test]
fn a_bad_filter_value_is_named_once() {
    let s = Sandbox::new(CONFIG);
    for (args, hint) in [
        (&["--status", "bogus"][..], "disabled"),
        (&["--origin", "bogus"], "registration"),
        (&["--attribute", "bogus"], "KEY=VALUE"),
        (&["--attribute", "=bogus"], "KEY=VALUE"),
    ] {
        let mut all = vec!["users", "list"];
        all.extend_from_slice(args);
        let r = s.run(&all).expect(2);
        assert_eq!(r.stderr.matches("bogus").count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains(hint), "{}", r.stderr);
    }
}

#[test]
fn a_reader_that_stops_early_gets_no_error() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let s = Sandbox::new(CONFIG);
    // Far more than a pipe holds (64 KiB), so the writer is still writing
    // when the reader goes.
    let rows: String = (0..5000)
        .map(|i| format!("c{i},User {i},u{i}@x.example,,,\n"))
        .collect();
    s.write("partners.csv", &format!("{HEADER}{rows}"));
    s.sync(0);
    for format in ["human", "json", "csv"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_liaison"))
            .arg("--config")
            .arg(s.config())
            .args(["users", "list", "--format", format])
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        // The reader is dropped here, as `| head -1` closes its end.
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{format}: {stderr}");
        assert_eq!(stderr, "", "{format}");
    }
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
