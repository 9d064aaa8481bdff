//! The CSV connector through the binary: layouts, encodings, bad rows, templates.

use serde_json::json;

use crate::common::{csv_config, Sandbox, CONFIG, HEADER};

#[test]
fn bad_rows_are_reported_with_physical_lines_and_skipped() {
    let s = Sandbox::new(&csv_config(
        "partners.csv",
        &["max_bad_row_ratio: 0.5"],
        &[],
    ));
    // CRLF line ends, a quoted field spanning two lines, a blank line.
    let csv = "contact_id,name,email,description\r\n\
               c1,Ann Smith,ann@x.example,\"two\r\nlines\"\r\n\
               c2,Bob Brown,not-an-email,x\r\n\
               \r\n\
               c3,Carl,carl@x.example\r\n\
               c4,Dana,dana@x.example,\"quoted, with comma\"\r\n";
    s.write("partners.csv", csv);
    let r = s.sync(0);
    assert_eq!(r["created"], 2);
    let file = s.path().join("partners.csv").display().to_string();
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0]["location"], format!("{file}:4"));
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("not-an-email"),
        "{errors:?}"
    );
    assert_eq!(errors[1]["location"], format!("{file}:6"));
    assert_eq!(s.user("dana")["description"], "quoted, with comma");
    assert_eq!(s.user("ann.smith")["description"], "two\r\nlines");
}

#[test]
fn a_typo_never_deprovisions_its_contact() {
    let s = Sandbox::new(CONFIG);
    let rows: String = (0..40)
        .map(|i| format!("c{i},User {i},u{i}@x.example,,,\n"))
        .collect();
    s.write("partners.csv", &format!("{HEADER}{rows}"));
    s.sync(0);
    // One row's e-mail gets a typo: reported, skipped, but the contact stays linked.
    s.write(
        "partners.csv",
        &format!("{HEADER}{}", rows.replace("u7@x.example", "u7@@x.example")),
    );
    let r = s.sync(0);
    assert_eq!(r["disabled"], 0);
    assert_eq!(r["errors"].as_array().unwrap().len(), 1);
    assert_eq!(s.user("user.7")["status"], "active");
}

#[test]
fn too_many_bad_rows_fail_the_read_and_apply_nothing() {
    let s = Sandbox::new(CONFIG);
    s.write(
        "partners.csv",
        &format!("{HEADER}c1,A,a@x.example,,,\nc2,B,bad,,,\n"),
    );
    let r = s.sync(1);
    assert_eq!(r["status"], "failed");
    assert_eq!(r["created"], 0);
    assert!(
        r["failure"].as_str().unwrap().contains("1 of 2 rows"),
        "{r}"
    );
    assert_eq!(r["errors"].as_array().unwrap().len(), 1);
    assert!(s.users().is_empty());
}

#[test]
fn duplicate_contact_ids_are_both_errors() {
    let s = Sandbox::new(CONFIG);
    let rows: String = (0..60)
        .map(|i| format!("c{i},User {i},u{i}@x.example,,,\n"))
        .collect();
    s.write(
        "partners.csv",
        &format!("{HEADER}{rows}c5,Other,other@x.example,,,\n"),
    );
    let r = s.sync(0);
    assert_eq!(r["created"], 59);
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().all(|e| e["message"]
        .as_str()
        .unwrap()
        .contains("duplicate contact id")));
}

#[test]
fn windows_1250_semicolons_and_bom_free_headers() {
    let s = Sandbox::new(&csv_config(
        "export.csv",
        &["delimiter: \";\"", "encoding: windows-1250"],
        &[],
    ));
    let (bytes, _, _) = encoding_rs::WINDOWS_1250
        .encode("contact_id;name;email\r\n7;Jiří Dvořák;jiri@x.example\r\n");
    s.write_bytes("export.csv", &bytes);
    s.sync(0);
    assert_eq!(s.user("jiri.dvorak")["title"], "Jiří Dvořák");
}

#[test]
fn utf8_bom_and_a_glob_of_files() {
    let s = Sandbox::new(&csv_config("exports/*.csv", &[], &[]));
    s.write_bytes(
        "exports/a.csv",
        format!("\u{feff}{HEADER}c1,Ann,ann@x.example,,,\n").as_bytes(),
    );
    s.write(
        "exports/b.csv",
        &format!("{HEADER}c2,Bob,bob@x.example,,,\n"),
    );
    let r = s.sync(0);
    assert_eq!(r["created"], 2);
}

#[test]
fn custom_files_map_through_templates_and_when() {
    let s = Sandbox::new(
        "store: sqlite://liaison.db\n\
         sources:\n\
         \x20 - name: crm\n\
         \x20   type: csv\n\
         \x20   path: crm-export.csv\n\
         \x20   map:\n\
         \x20     contact_id: \"{{ Id }}\"\n\
         \x20     name: \"{{ record['First Name'] | trim }} {{ record['Last Name'] | trim }}\"\n\
         \x20     email: \"{{ Mail | lower }}\"\n\
         \x20     account_id: \"{{ Company | slug }}\"\n\
         \x20     account_name: \"{{ Company }}\"\n\
         \x20     grants: \"{{ Queues | default('support', true) }}\"\n\
         \x20     attributes.licence_key: \"{{ Licence | regex_replace('[^A-Z0-9]', '') }}\"\n\
         \x20   when: \"Portal == 'yes'\"\n",
    );
    s.write(
        "crm-export.csv",
        "Id,First Name,Last Name,Mail,Company,Queues,Licence,Portal\n\
         101, Jiří ,Dvořák,JIRI@ACME.EXAMPLE,ACME s.r.o. Praha,,lic-AB 12,yes\n\
         102,Eva,Malá,eva@acme.example,ACME s.r.o. Praha,sales|vip,,no\n",
    );
    let r = s.sync(0);
    assert_eq!(r["created"], 1);
    let u = s.user("jiri.dvorak");
    assert_eq!(u["email"], "jiri@acme.example");
    assert_eq!(u["accounts"], json!(["acme-s-r-o-praha"]));
    assert_eq!(u["grants"], json!(["support"]));
    assert_eq!(u["attributes"], json!({"licence_key": "AB12"}));
}

#[test]
fn conflicts_of_new_rows_name_their_lines() {
    let s = Sandbox::new(&csv_config("partners.csv", &[], &[]));
    // Two new rows ask for one login: both are left out, each named by its line.
    s.write(
        "partners.csv",
        "contact_id,name,email,login\n\
         c1,Ann Smith,ann@x.example,\n\
         c2,Bob Brown,bob@x.example,partner\n\
         c3,Carl Cox,carl@x.example,partner\n",
    );
    let r = s.sync(0);
    assert_eq!(r["created"], 2, "{r}");
    let file = s.path().join("partners.csv").display().to_string();
    let errors = r["errors"].as_array().unwrap();
    let at: Vec<&str> = errors
        .iter()
        .map(|e| e["location"].as_str().unwrap())
        .collect();
    assert_eq!(at, [format!("{file}:4")], "{errors:?}");
    assert!(errors[0]["message"]
        .as_str()
        .unwrap()
        .contains("login partner is taken"));
}

#[test]
fn a_duplicate_names_both_lines_also_for_new_contacts() {
    let s = Sandbox::new(&csv_config(
        "partners.csv",
        &["max_bad_row_ratio: 0.9"],
        &[],
    ));
    s.write(
        "partners.csv",
        &format!("{HEADER}c1,A,a@x.example,,,\nc2,B,b@x.example,,,\nc1,C,c@x.example,,,\n"),
    );
    let r = s.sync(0);
    assert_eq!(r["created"], 1, "only c2 is clean: {r}");
    let file = s.path().join("partners.csv").display().to_string();
    let mut at: Vec<String> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["location"].as_str().unwrap().to_owned())
        .collect();
    at.sort();
    assert_eq!(at, [format!("{file}:2"), format!("{file}:4")]);
}
