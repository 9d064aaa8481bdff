//! Change reads and cursors through the binary, with the example plugins of
//! `examples/plugins/`: the Python one reading a JSON export with a
//! modification column, wrapped so the test sees every start line the host
//! sent; and the shell one, which reads in full.

use serde_json::{json, Value};

use crate::common::Sandbox;

/// The example plugin, as shipped.
fn example(name: &str) -> String {
    format!("{}/examples/plugins/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A config whose one source runs the JSON-export example through a wrapper
/// that appends the start line it receives to `starts.jsonl`.
fn config(keys: &[&str]) -> String {
    let mut c = format!(
        "store: sqlite://liaison.db
sources:
  - name: crm
    type: exec
    command: [sh, wrapper.sh, {}]
    settings: {{export: contacts.json}}
",
        example("json_export.py")
    );
    for k in keys {
        c.push_str(&format!("    {k}\n"));
    }
    c.push_str("safety:\n  max_deprovision: 2\n  max_deprovision_ratio: 1.0\n");
    c
}

fn sandbox(keys: &[&str]) -> Sandbox {
    let s = Sandbox::new(&config(keys));
    s.write(
        "wrapper.sh",
        "IFS= read -r start\nprintf '%s\\n' \"$start\" >> starts.jsonl\nprintf '%s\\n' \"$start\" | exec python3 \"$1\"\n",
    );
    s
}

/// A contact of the export, modified at `minute` past 10:00.
fn contact(id: &str, name: &str, minute: u32) -> Value {
    let email = format!(
        "{}@acme.example",
        name.split(' ').next().unwrap().to_lowercase()
    );
    json!({"id": id, "name": name, "email": email, "account_id": "acme",
           "account_name": "ACME", "modified": format!("2026-12-01T10:{minute:02}:00Z")})
}

fn tombstone(id: &str, minute: u32) -> Value {
    json!({"id": id, "deleted": true, "modified": format!("2026-12-01T10:{minute:02}:00Z")})
}

fn export(s: &Sandbox, rows: &[Value]) {
    s.write("contacts.json", &Value::Array(rows.to_vec()).to_string());
}

/// The start lines the plugin received, in order.
fn starts(s: &Sandbox) -> Vec<Value> {
    let text = std::fs::read_to_string(s.path().join("starts.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn last_start(s: &Sandbox) -> (String, Value) {
    let start = starts(s).pop().expect("a start line");
    assert_eq!(start["protocol"], 1);
    assert_eq!(start["source"], "crm");
    assert_eq!(start["settings"], json!({"export": "contacts.json"}));
    (
        start["mode"].as_str().unwrap().to_owned(),
        start["cursor"].clone(),
    )
}

fn since(minute: u32) -> Value {
    json!({"modified_since": format!("2026-12-01T10:{minute:02}:00Z")})
}

/// (status, contacts) of the user with `login`.
fn state(s: &Sandbox, login: &str) -> (String, Value) {
    let u = s.user(login);
    (
        u["status"].as_str().unwrap().to_owned(),
        u["contacts"].clone(),
    )
}

fn three() -> Vec<Value> {
    vec![
        contact("c-1", "Ann Lee", 1),
        contact("c-2", "Bob Berg", 2),
        contact("c-3", "Cid Moss", 3),
    ]
}

#[test]
fn a_changes_read_applies_updates_and_deletions_and_leaves_everyone_else_alone() {
    let s = sandbox(&[]);
    export(&s, &three());
    let first = s.sync(0);
    assert_eq!(first["created"], 3, "{first}");
    assert_eq!(first["read"]["mode"], "full");
    assert_eq!(last_start(&s), ("full".into(), Value::Null));

    // Bob renamed, Cid deleted; Ann untouched.
    let mut rows = three();
    rows[1] = contact("c-2", "Bob Bergman", 10);
    rows[2] = tombstone("c-3", 11);
    export(&s, &rows);
    let second = s.sync(0);
    assert_eq!(last_start(&s), ("changes".into(), since(3)));
    assert_eq!(
        second["read"],
        json!({"mode": "changes", "full_because": null, "deletions": 1})
    );
    assert_eq!(
        (&second["updated"], &second["disabled"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(state(&s, "ann.lee"), ("active".into(), json!(["c-1"])));
    assert_eq!(s.user("bob.berg")["title"], "Bob Bergman");
    assert_eq!(state(&s, "cid.moss"), ("disabled".into(), json!([])));

    // Nothing new: the next read starts after the deletion, and finds nothing.
    let third = s.sync(0);
    assert_eq!(last_start(&s), ("changes".into(), since(11)));
    assert_eq!(third["status"], "applied");
    let status = s.run(&["status", "--format", "json"]).expect(0).json();
    assert_eq!(status["sources"][0]["cursor"]["present"], true, "{status}");
    let human = s.run(&["status"]).expect(0).stdout;
    assert!(
        human.contains("crm: changes since a cursor stored"),
        "{human}"
    );
}

#[test]
fn failed_and_held_runs_do_not_advance_the_cursor() {
    let s = sandbox(&[]);
    export(&s, &three());
    s.sync(0);

    // A broken export: the plugin exits 1, the run fails, nothing moves.
    s.write("contacts.json", "[{\"id\": ");
    let failed = s.sync(1);
    assert_eq!(failed["failure_kind"], "source_unreachable", "{failed}");
    assert!(
        failed["failure"]
            .as_str()
            .unwrap()
            .contains("cannot read the export"),
        "{failed}"
    );
    export(&s, &three());
    s.sync(0);
    assert_eq!(last_start(&s), ("changes".into(), since(3)));

    // Three deletions, over max_deprovision (2): held, and asked again.
    let gone: Vec<Value> = ["c-1", "c-2", "c-3"]
        .iter()
        .enumerate()
        .map(|(i, id)| tombstone(id, 20 + i as u32))
        .collect();
    export(&s, &gone);
    let held = s.sync(3);
    assert_eq!(held["status"], "held", "{held}");
    s.sync(3);
    assert_eq!(last_start(&s), ("changes".into(), since(3)));
    let released = s
        .run(&[
            "sync",
            "--once",
            "--allow-mass-deprovision",
            "--format",
            "json",
        ])
        .expect(0)
        .json();
    assert_eq!(released["disabled"], 3, "{released}");
    s.sync(0);
    assert_eq!(last_start(&s), ("changes".into(), since(22)));
}

#[test]
fn a_mapping_change_or_full_forces_a_full_read() {
    let s = sandbox(&[]);
    export(&s, &three());
    s.sync(0);
    s.sync(0);
    assert_eq!(last_start(&s).0, "changes");

    let full = s
        .run(&["sync", "--once", "--full", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(last_start(&s), ("full".into(), Value::Null));
    assert_eq!(full["read"]["full_because"], "a full read was asked for");
    assert_eq!(full["unchanged"], 3, "{full}");

    // Another mapping: the stored cursor was read under the old one.
    s.write(
        "liaison.yaml",
        &config(&[
            "map:",
            "  name: \"{{ name | upper }}\"",
            "  email: \"{{ email }}\"",
        ]),
    );
    let remapped = s.sync(0);
    assert_eq!(last_start(&s), ("full".into(), Value::Null));
    assert_eq!(remapped["updated"], 3, "{remapped}");
    assert_eq!(s.user("ann.lee")["title"], "ANN LEE");
}

#[test]
fn a_keyed_source_refuses_a_contact_id_in_its_map() {
    let s = sandbox(&[
        "map:",
        "  contact_id: \"{{ id }}\"",
        "  name: \"{{ name }}\"",
        "  email: \"{{ email }}\"",
    ]);
    let r = s.run(&["validate"]).expect(2);
    assert!(
        r.stderr.contains("sources[0].map.contact_id: this source gives each record a key, which is its contact id: remove contact_id from map"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_shell_example_reads_in_full() {
    let s = Sandbox::new(&format!(
        "store: sqlite://liaison.db
sources:
  - name: people
    type: exec
    command: [sh, {}]
    env: {{PEOPLE_FILE: people.txt}}
    max_bad_row_ratio: 0.5
safety:
  max_deprovision_ratio: 1.0
",
        example("people_file.sh")
    ));
    s.write(
        "people.txt",
        "# id:name:email:company\nc1:Ann Lee:ann@x.example:ACME\nnot a record\nc2:Bob \"Q\" Berg:bob@x.example:Vendor\n",
    );
    let report = s.sync(0);
    assert_eq!(report["created"], 2, "{report}");
    assert_eq!(report["read"]["mode"], "full");
    assert_eq!(report["errors"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(
        report["errors"][0]["location"], "people.txt:3 (output line 2)",
        "{report}"
    );
    assert_eq!(s.user("bob.q.berg")["title"], "Bob \"Q\" Berg");
    // Without a cursor every read is full, and Bob's removal deprovisions him.
    s.write("people.txt", "c1:Ann Lee:ann@x.example:ACME\n");
    let report = s.sync(0);
    assert_eq!(report["read"]["full_because"], "the source gives no cursor");
    assert_eq!(report["disabled"], 1, "{report}");
}

#[test]
fn the_exec_example_config_syncs() {
    let s = Sandbox::new("");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for file in [
        "exec/liaison.yaml",
        "exec/contacts.json",
        "plugins/json_export.py",
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        s.write(file, &text);
    }
    let config = s.path().join("exec/liaison.yaml");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_liaison"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove("LIAISON_CONFIG")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let report: Value =
        serde_json::from_str(&run(&["sync", "--once", "--format", "json"])).unwrap();
    assert_eq!(report["created"], 3, "{report}");
    let preview = run(&["source", "preview", "crm-export", "--limit", "1"]);
    assert!(preview.contains("key c-1 · mapped"), "{preview}");
    assert!(preview.contains("grants = support|sales"), "{preview}");
}
