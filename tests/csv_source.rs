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
    // Bad data stays bad until someone fixes it: no point retrying.
    assert_eq!(r["failure_kind"], "bad_rows", "{r}");
    assert_eq!(r["retryable"], false, "{r}");
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

/// The standard layout's header and `n` clean rows `c0` … `c{n-1}`.
fn clean_rows(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("c{i},User {i},u{i}@x.example,,,"))
        .collect()
}

fn file_of(rows: &[String]) -> String {
    format!("{HEADER}{}\n", rows.join("\n"))
}

#[test]
fn a_stray_quote_fails_the_read_and_disables_nobody() {
    let s = Sandbox::new(CONFIG);
    let mut rows = clean_rows(100);
    s.write("partners.csv", &file_of(&rows));
    assert_eq!(s.sync(0)["created"], 100);
    // Row c95 (line 97) opens a quote that nothing closes.
    rows[95] = "c95,\"User 95,u95@x.example,,,".to_owned();
    s.write("partners.csv", &file_of(&rows));
    let r = s.sync(1);
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["disabled"], 0);
    let file = s.path().join("partners.csv").display().to_string();
    let failure = r["failure"].as_str().unwrap();
    assert!(failure.contains(&format!("{file}:97: ")), "{failure}");
    assert!(failure.contains("unterminated quoted field"), "{failure}");
    let users = s.users();
    assert_eq!(users.len(), 100);
    assert!(users.iter().all(|u| u["status"] == "active"), "{users:?}");
}

#[test]
fn a_contact_id_or_email_spanning_lines_is_a_bad_row() {
    let s = Sandbox::new(&csv_config(
        "partners.csv",
        &["max_bad_row_ratio: 0.5"],
        &[],
    ));
    // Two stray quotes close each other and merge lines into one value; the
    // merged row still has the right number of fields.
    let mut rows = clean_rows(6);
    rows[1] = "\"c1,x\nc1b\",User 1,u1@x.example,,,".to_owned();
    rows[3] = "c3,User 3,\"u3@x.example\nu3b@x.example\",,,".to_owned();
    s.write("partners.csv", &file_of(&rows));
    let r = s.sync(0);
    assert_eq!(r["created"], 4, "{r}");
    let file = s.path().join("partners.csv").display().to_string();
    let errors = r["errors"].as_array().unwrap();
    let at: Vec<&str> = errors
        .iter()
        .map(|e| e["location"].as_str().unwrap())
        .collect();
    assert_eq!(at, [format!("{file}:3"), format!("{file}:6")], "{errors:?}");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(message.contains("contact_id"), "{message}");
    assert!(message.contains("line break"), "{message}");
}

/// Runs `liaison ARGS` in `s` with at most `kib` KiB of address space, so a
/// large allocation fails instead of succeeding.
#[cfg(unix)]
fn run_limited(s: &Sandbox, kib: u64, args: &[&str]) -> crate::common::Run {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {kib} && exec \"$@\""))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_liaison"))
        .arg("--config")
        .arg(s.config())
        .args(args)
        .env_remove("LIAISON_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    crate::common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// 300 MB of address space: a run on a small file needs under 100 MB.
#[cfg(unix)]
const ADDRESS_SPACE_KIB: u64 = 300_000;

#[cfg(unix)]
#[test]
fn a_file_of_nul_bytes_fails_the_read_in_bounded_memory() {
    let s = Sandbox::new(CONFIG);
    s.write("partners.csv", &file_of(&clean_rows(3)));
    s.sync(0);
    s.write_bytes("partners.csv", &vec![0u8; 8 << 20]);
    let run = run_limited(
        &s,
        ADDRESS_SPACE_KIB,
        &["sync", "--once", "--format", "json"],
    );
    let r = run.expect(1).json();
    assert_eq!(r["status"], "failed", "{r}");
    let failure = r["failure"].as_str().unwrap();
    assert!(failure.contains("partners.csv:1: "), "{failure}");
    assert!(failure.contains("longer than"), "{failure}");
    // The NUL bytes after a good header: one bad row, and the read failed.
    let mut bytes = HEADER.as_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(0u8, 8 << 20));
    s.write_bytes("partners.csv", &bytes);
    let run = run_limited(
        &s,
        ADDRESS_SPACE_KIB,
        &["sync", "--once", "--format", "json"],
    );
    let r = run.expect(1).json();
    assert!(
        r["failure"].as_str().unwrap().contains("1 of 1 rows"),
        "{r}"
    );
    assert!(s.users().iter().all(|u| u["status"] == "active"));
}

#[cfg(unix)]
#[test]
fn a_symlink_to_dev_zero_is_refused() {
    let s = Sandbox::new(CONFIG);
    std::os::unix::fs::symlink("/dev/zero", s.path().join("partners.csv")).unwrap();
    let run = run_limited(
        &s,
        ADDRESS_SPACE_KIB,
        &["sync", "--once", "--format", "json"],
    );
    let r = run.expect(1).json();
    let failure = r["failure"].as_str().unwrap();
    assert!(failure.contains("partners.csv"), "{failure}");
    assert!(failure.contains("not a regular file"), "{failure}");
}

#[test]
fn bad_rows_count_rows_not_messages() {
    let s = Sandbox::new(CONFIG);
    // 100 rows, 4 bad: two invalid e-mails, and two rows that are both a bad
    // row and a duplicate of a clean row (which becomes unreadable too).
    let mut rows = clean_rows(98);
    rows[10] = "c10,User 10,not-an-email,,,".to_owned();
    rows[11] = "c11,User 11,also-bad,,,".to_owned();
    rows.push("c20,Again,bad-again,,,".to_owned());
    rows.push("c21,Again,bad-too,,,".to_owned());
    s.write("partners.csv", &file_of(&rows));
    let r = s.sync(1);
    let failure = r["failure"].as_str().unwrap();
    // Rows 10, 11, both c20 and both c21: 6 of 100, over the 5 % default.
    assert!(failure.starts_with("6 of 100 rows"), "{failure}");
    assert!(failure.contains("(6.0 %)"), "{failure}");
    rows.truncate(99);
    s.write("partners.csv", &file_of(&rows));
    // Rows 10, 11 and both c20: 4 of 99, within the limit.
    let r = s.sync(0);
    assert_eq!(r["errors"].as_array().unwrap().len(), 5, "{r}");
    assert_eq!(r["created"], 98 - 3);
}

#[test]
fn undecodable_ids_that_decode_alike_are_not_duplicates() {
    let s = Sandbox::new(&csv_config(
        "partners.csv",
        &["max_bad_row_ratio: 0.9"],
        &[],
    ));
    let mut bytes = HEADER.as_bytes().to_vec();
    bytes.extend_from_slice(b"c\xFF,A,a@x.example,,,\nc\xFE,B,b@x.example,,,\n");
    s.write_bytes("partners.csv", &bytes);
    let r = s.sync(1);
    let failure = r["failure"].as_str().unwrap();
    assert!(failure.starts_with("2 of 2 rows"), "{failure}");
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .all(|e| e["message"].as_str().unwrap().contains("invalid UTF-8")),
        "{errors:?}"
    );
}

#[test]
fn bad_row_ratio_boundaries_are_exact() {
    // Neither 0.29 nor 0.07 is exact in binary: 0.29 * 100 is 28.999… in f64.
    for (ratio, limit) in [("0.29", 29), ("0.07", 7), ("0.5", 50)] {
        let s = Sandbox::new(&csv_config(
            "partners.csv",
            &[&format!("max_bad_row_ratio: {ratio}")],
            &[],
        ));
        let with_bad = |bad: usize| {
            let mut rows = clean_rows(100);
            for row in rows.iter_mut().take(bad) {
                *row = row.replace("@x.example", "@");
            }
            file_of(&rows)
        };
        s.write("partners.csv", &with_bad(limit));
        let r = s.sync(0);
        assert_eq!(r["status"], "applied", "{ratio}: {r}");
        s.write("partners.csv", &with_bad(limit + 1));
        let r = s.sync(1);
        let failure = r["failure"].as_str().unwrap();
        assert!(
            failure.starts_with(&format!("{} of 100 rows", limit + 1)),
            "{ratio}: {failure}"
        );
    }
}

#[test]
fn duplicate_header_names_fail_the_read() {
    let s = Sandbox::new(CONFIG);
    s.write(
        "partners.csv",
        "contact_id,name,email,email\nc1,Ann,ann@x.example,other@x.example\n",
    );
    let r = s.sync(1);
    let file = s.path().join("partners.csv").display().to_string();
    let failure = r["failure"].as_str().unwrap();
    assert!(failure.starts_with(&format!("{file}:1: ")), "{failure}");
    assert!(
        failure.contains("duplicate column name \"email\""),
        "{failure}"
    );
    assert!(s.users().is_empty());
}

#[test]
fn cr_only_files_report_their_lines() {
    let s = Sandbox::new(&csv_config(
        "partners.csv",
        &["max_bad_row_ratio: 0.5"],
        &[],
    ));
    s.write(
        "partners.csv",
        "contact_id,name,email\rc1,Ann,ann@x.example\r\rc2,Bob,not-an-email\rc3,Cyd,cyd@x.example\r",
    );
    let r = s.sync(0);
    assert_eq!(r["created"], 2);
    let file = s.path().join("partners.csv").display().to_string();
    assert_eq!(r["errors"][0]["location"], format!("{file}:4"), "{r}");
}

#[test]
fn undefined_windows_1250_bytes_are_bad_rows() {
    let s = Sandbox::new(&csv_config(
        "export.csv",
        &[
            "delimiter: \";\"",
            "encoding: windows-1250",
            "max_bad_row_ratio: 0.5",
        ],
        &[],
    ));
    let mut bytes = b"contact_id;name;email\r\n1;Ann;ann@x.example\r\n2;B".to_vec();
    bytes.push(0x98);
    bytes.extend_from_slice(b"b;bob@x.example\r\n3;Cyd;cyd@x.example\r\n");
    s.write_bytes("export.csv", &bytes);
    let r = s.sync(0);
    assert_eq!(r["created"], 2, "{r}");
    let file = s.path().join("export.csv").display().to_string();
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["location"], format!("{file}:3"));
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("undefined Windows-1250 byte in column \"name\""),
        "{errors:?}"
    );
}
