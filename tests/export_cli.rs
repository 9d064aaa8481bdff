//! `users export` through the binary on a store filled by a real sync: 10,000
//! users to XLSX read back with an independent reader (openpyxl, installed by
//! scripts/test), a second sheet past the rows of one, and CSV with a
//! formula-looking title and the BOM option.

use std::process::Command;

use serde_json::Value;

use crate::common::{Sandbox, CONFIG};

/// A sandbox with `n` synced users: the first has a title a spreadsheet
/// would run as a formula, every user a licence key.
fn synced(n: usize) -> Sandbox {
    let s = Sandbox::new(&format!("{CONFIG}safety:\n  max_deprovision_ratio: 1.0\n"));
    let mut csv = String::from("contact_id,name,email,account_id,attributes.licence_key,grants\n");
    csv.push_str(
        "c00000,\"=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",evil@x.example,acme,LIC-0,\n",
    );
    for i in 1..n {
        csv.push_str(&format!(
            "c{i:05},Person {i:05},person{i}@acme.example,acme,LIC-{i},queue-a|queue-b\n"
        ));
    }
    s.write("partners.csv", &csv);
    let report = s.sync(0);
    assert_eq!(report["created"], n, "{report}");
    s
}

/// Runs `python3 -c SCRIPT ARGS…` and parses its stdout as JSON.
fn python(script: &str, args: &[&str]) -> Value {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json from python")
}

/// What openpyxl reads of a workbook: per sheet its name, frozen pane,
/// autofilter, dimensions, header, column widths, and a few cells with
/// their types.
const READ_XLSX: &str = r#"
import json, sys, datetime
import openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
sheets = []
for ws in wb.worksheets:
    rows = list(ws.iter_rows(values_only=False))
    def cell(r, c):
        v = rows[r][c]
        val = v.value
        if isinstance(val, datetime.datetime):
            val = val.isoformat()
        return {"value": val, "type": v.data_type, "is_date": v.is_date}
    sheets.append({
        "name": ws.title,
        "freeze": ws.freeze_panes,
        "filter": ws.auto_filter.ref,
        "rows": ws.max_row,
        "cols": ws.max_column,
        "header": [c.value for c in rows[0]],
        "widths": {k: ws.column_dimensions[k].width for k in ["A", "B", "C", "E", "O", "P"]},
        "first": [cell(1, c) for c in range(len(rows[0]))] if len(rows) > 1 else None,
        "last_login": rows[-1][1].value,
    })
print(json.dumps(sheets))
"#;

#[test]
fn ten_thousand_users_export_to_xlsx_and_read_back() {
    let s = synced(10_000);
    let file = s.path().join("users.xlsx");
    let file_arg = file.to_str().unwrap();
    let run = s
        .run(&["users", "export", "--format", "xlsx", "--output", file_arg])
        .expect(0);
    assert!(
        run.stdout.contains("exported 10000 users"),
        "{}",
        run.stdout
    );
    let sheets = python(READ_XLSX, &[file_arg]);
    let sheets = sheets.as_array().unwrap();
    assert_eq!(sheets.len(), 1);
    let sh = &sheets[0];
    assert_eq!(sh["name"], "users");
    assert_eq!(sh["freeze"], "A2", "the header row is frozen");
    assert_eq!(sh["filter"], "A1:Q10001");
    assert_eq!(sh["rows"], 10_001);
    assert_eq!(sh["cols"], 17);
    assert_eq!(sh["header"][1], "login");
    assert_eq!(sh["header"][15], "created_at");
    // Users by login: the formula's (`hyperlink…`) sorts before `person…`.
    let first = &sh["first"];
    // The formula-looking title is a string, not a formula.
    assert_eq!(
        first[2]["value"],
        "=HYPERLINK(\"http://evil.example\",\"x\")"
    );
    assert_eq!(first[2]["type"], "s");
    assert_eq!(first[0]["type"], "n", "the id is a number");
    assert_eq!(first[10]["value"], false, "flags are booleans");
    assert_eq!(first[15]["is_date"], true, "created_at is a real date");
    assert!(
        first[15]["value"].as_str().unwrap().starts_with("20"),
        "{}",
        first[15]
    );
    assert_eq!(sh["last_login"], "person.09999");
    // Widths fitted to the first rows: wider than the e-mails they hold.
    let w = &sh["widths"];
    assert!(w["E"].as_f64().unwrap() >= 24.0, "{w}");
    assert!(w["B"].as_f64().unwrap() >= 11.0, "{w}");
    // No temp file is left beside it.
    let stray: Vec<_> = std::fs::read_dir(s.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".liaison-export")
        })
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn an_export_past_a_sheets_rows_continues_on_the_next_sheet() {
    let s = synced(25);
    let file = s.path().join("users.xlsx");
    let file_arg = file.to_str().unwrap();
    s.run_with_env(
        &[
            "users", "export", "--output", file_arg, "--search", "person",
        ],
        &[("LIAISON_TEST_XLSX_SHEET_ROWS", "10")],
    )
    .expect(0);
    let sheets = python(READ_XLSX, &[file_arg]);
    let names: Vec<&str> = sheets
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["users", "users 2", "users 3"]);
    let rows: Vec<u64> = sheets
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rows"].as_u64().unwrap())
        .collect();
    assert_eq!(
        rows,
        [11, 11, 5],
        "24 users: 10, 10 and 4, each under a header"
    );
    for sh in sheets.as_array().unwrap() {
        assert_eq!(sh["freeze"], "A2");
        assert_eq!(sh["header"][1], "login");
    }
    assert_eq!(sheets[2]["filter"], "A1:Q5");
    assert_eq!(sheets[2]["last_login"], "person.00024");
}

#[test]
fn a_csv_export_neutralises_formulas_and_takes_a_bom() {
    let s = synced(50);
    let file = s.path().join("out/users.csv");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let file_arg = file.to_str().unwrap();
    s.run(&[
        "users", "export", "--format", "csv", "--output", file_arg, "--bom",
    ])
    .expect(0);
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        bytes.starts_with(b"\xef\xbb\xbfid,login,"),
        "a UTF-8 BOM first"
    );
    let text = String::from_utf8(bytes).unwrap();
    let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 50);
    assert_eq!(&rows[0][2], "'=HYPERLINK(\"http://evil.example\",\"x\")");
    assert_eq!(&rows[1][13], "queue-a|queue-b");
    // Without --bom, no BOM; with the filters of `users list`.
    s.run(&[
        "users",
        "export",
        "--output",
        file_arg,
        "--attribute",
        "licence_key=LIC-7",
    ])
    .expect(0);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("id,login,"), "{text}");
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("person.00007"), "{text}");
}

#[test]
fn a_failed_export_writes_nothing_and_bad_usage_is_exit_2() {
    let s = synced(3);
    let missing = s.path().join("no/such/folder/users.xlsx");
    let run = s
        .run(&["users", "export", "--output", missing.to_str().unwrap()])
        .expect(1);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(!missing.exists());
    // An old file is replaced only by a complete export.
    let file = s.path().join("users.csv");
    std::fs::write(&file, "old").unwrap();
    s.run(&[
        "users",
        "export",
        "--output",
        file.to_str().unwrap(),
        "--account",
        "Initech",
    ])
    .expect(1);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "old");
    let unknown = s.path().join("users.txt");
    s.run(&["users", "export", "--output", unknown.to_str().unwrap()])
        .expect(2);
    s.run(&[
        "users",
        "export",
        "--output",
        file.to_str().unwrap(),
        "--format",
        "pdf",
    ])
    .expect(2);
    s.run(&[
        "users", "export", "--format", "xlsx", "--output", "x.xlsx", "--bom",
    ])
    .expect(2);
}
