//! `liaison source preview` through the binary: records as read beside the
//! fields their mapping made, row errors, `when:`, the limit, and that nothing
//! is written.

use serde_json::json;

use crate::common::{csv_config, Sandbox};

fn sandbox() -> Sandbox {
    let s = Sandbox::new(&csv_config(
        "partners.csv",
        &[
            "when: \"kind != 'skip'\"",
            "map:",
            "  contact_id: \"{{ id }}\"",
            "  name: \"{{ first }} {{ last }}\"",
            "  email: \"{{ mail | lower }}\"",
            "  account_id: \"{{ company | slug }}\"",
            "  grants: \"{{ roles }}\"",
        ],
        &[],
    ));
    s.write(
        "partners.csv",
        "id,first,last,mail,company,kind,roles\n\
         1,Jiří,Dvořák,JIRI@Acme.example,ACME s.r.o.,p,support|sales\n\
         2,Ann,Bee,not-an-email,ACME,p,\n\
         3,Cid,Sea,cid@x.example,X,skip,\n\
         4,Dan,Dee,dan@x.example,X,no,\n",
    );
    s
}

#[test]
fn preview_shows_records_beside_their_fields_errors_and_when() {
    let s = sandbox();
    let got = s
        .run(&["source", "preview", "partners", "--format", "json"])
        .expect(0)
        .json();
    let records = got["records"].as_array().unwrap();
    assert_eq!(records.len(), 4);
    let first = &records[0];
    assert!(first["location"]
        .as_str()
        .unwrap()
        .ends_with("partners.csv:2"));
    assert_eq!(first["read"]["mail"], "JIRI@Acme.example");
    assert_eq!(first["kept"], true);
    assert_eq!(
        first["fields"],
        json!({"contact_id": "1", "name": "Jiří Dvořák", "email": "jiri@acme.example",
               "account_id": "acme-s-r-o", "grants": "support|sales"})
    );
    assert_eq!(
        records[1]["error"],
        "email: invalid e-mail \"not-an-email\""
    );
    assert_eq!(records[1]["fields"], json!(null));
    assert_eq!(
        (&records[2]["kept"], &records[2]["skipped_because"]),
        (&json!(false), &json!("when"))
    );
    assert_eq!(records[3]["kept"], true);
    assert_eq!(got["failure"], json!(null));

    let text = s.run(&["source", "preview", "partners"]).expect(0).stdout;
    assert!(text.contains("partners.csv:2 · mapped"), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("JIRI@Acme.example"))
        .unwrap();
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>()[..2],
        ["mail", "JIRI@Acme.example"]
    );
    assert!(text.contains("email = jiri@acme.example"), "{text}");
    assert!(
        text.contains("partners.csv:3 · row error: email: invalid e-mail"),
        "{text}"
    );
    assert!(
        text.contains("partners.csv:4 · left out by when:"),
        "{text}"
    );
    // Nothing written: no store, no cursor.
    assert!(!s.path().join("liaison.db").exists());
}

#[test]
fn preview_stops_at_the_limit_and_reports_a_failing_source() {
    let s = sandbox();
    let two = s
        .run(&[
            "source", "preview", "partners", "--limit", "2", "--format", "json",
        ])
        .expect(0)
        .json();
    assert_eq!(two["records"].as_array().unwrap().len(), 2);

    // A broken row after two good ones: those are shown, the read fails.
    let mut csv = std::fs::read_to_string(s.path().join("partners.csv")).unwrap();
    csv.push_str("5,\"broken,x\n");
    s.write("partners.csv", &csv);
    let run = s
        .run(&["source", "preview", "partners", "--format", "json"])
        .expect(1);
    assert!(
        run.stderr.contains("unterminated quoted field"),
        "{}",
        run.stderr
    );
    let got = run.json();
    assert_eq!(got["records"].as_array().unwrap().len(), 4);
    assert_eq!(got["failure_kind"], "source_invalid");
}

#[test]
fn preview_of_an_unknown_source_names_the_known_ones() {
    let s = sandbox();
    let run = s.run(&["source", "preview", "crm"]).expect(2);
    assert!(
        run.stderr
            .contains("no source \"crm\" in the config (it has: partners)"),
        "{}",
        run.stderr
    );
}
