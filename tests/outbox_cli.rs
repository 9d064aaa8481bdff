//! The outbox through the binary: what sync queues, cancels and holds, as
//! `mail status` shows it, and `mail release RUN`.

use std::process::Command;

use serde_json::Value;

use crate::common::{csv_config, Sandbox, HEADER};

/// `mail:` with a file transport; `more` are further keys of it.
fn mail_section(more: &[&str]) -> Vec<String> {
    let mut lines = vec![
        "mail:".to_owned(),
        "  transport: file://mail".to_owned(),
        "  from: \"Support <support@example.com>\"".to_owned(),
    ];
    lines.extend(more.iter().map(|k| format!("  {k}")));
    // Removing a row disables its user: a permissive guard lets 1 of 3 go.
    lines.extend(
        [
            "safety:",
            "  max_deprovision: 100",
            "  max_deprovision_ratio: 1.0",
        ]
        .iter()
        .map(|l| (*l).to_owned()),
    );
    lines
}

fn sandbox(mail_keys: &[&str]) -> Sandbox {
    let sections = mail_section(mail_keys);
    let sections: Vec<&str> = sections.iter().map(String::as_str).collect();
    Sandbox::new(&csv_config("partners.csv", &[], &sections))
}

fn rows(ids: &[usize]) -> String {
    let body: String = ids
        .iter()
        .map(|i| format!("c{i},User {i},u{i}@x.example,,,\n"))
        .collect();
    format!("{HEADER}{body}")
}

#[track_caller]
fn mail_status(s: &Sandbox) -> Value {
    s.run(&["mail", "status", "--format", "json"])
        .expect(0)
        .json()
}

/// (kind, recipient) of each queued message, in send order.
fn queued(status: &Value) -> Vec<(String, String)> {
    status["queued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["recipient"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn welcomes(addresses: &[&str]) -> Vec<(String, String)> {
    addresses
        .iter()
        .map(|a| ("welcome".to_owned(), (*a).to_owned()))
        .collect()
}

#[test]
fn synced_users_get_one_welcome_each_and_a_resync_queues_nothing() {
    let s = sandbox(&[]);
    s.write("partners.csv", &rows(&[1, 2, 3]));
    assert_eq!(s.sync(0)["created"], 3);
    let status = mail_status(&s);
    assert_eq!(status["counts"]["queued"], 3);
    assert_eq!(
        queued(&status),
        welcomes(&["u1@x.example", "u2@x.example", "u3@x.example"])
    );
    let first = &status["queued"][0];
    assert_eq!(first["state"], "queued");
    assert_eq!(first["locale"], "en");
    assert_eq!(first["attempts"], 0);
    let message_id = first["message_id"].as_str().unwrap();
    assert!(
        message_id.starts_with('<') && message_id.ends_with("@example.com>"),
        "{message_id}"
    );
    let human = s.run(&["mail", "status"]).expect(0).stdout;
    assert!(human.contains("3 queued"), "{human}");
    assert!(human.contains("welcome u2@x.example (en)"), "{human}");

    // Unchanged input: no outbox row written, ids and Message-IDs as they were.
    assert_eq!(s.sync(0)["unchanged"], 3);
    assert_eq!(mail_status(&s), status);
}

#[test]
fn a_disabled_users_welcome_is_cancelled_and_reenabling_queues_nothing() {
    let s = sandbox(&[]);
    s.write("partners.csv", &rows(&[1, 2, 3]));
    s.sync(0);
    s.write("partners.csv", &rows(&[1, 3]));
    assert_eq!(s.sync(0)["disabled"], 1);
    let status = mail_status(&s);
    assert_eq!(
        (&status["counts"]["queued"], &status["counts"]["cancelled"]),
        (&Value::from(2), &Value::from(1))
    );
    assert_eq!(queued(&status), welcomes(&["u1@x.example", "u3@x.example"]));

    s.write("partners.csv", &rows(&[1, 2, 3]));
    assert_eq!(s.sync(0)["enabled"], 1);
    let again = mail_status(&s);
    assert_eq!(again["counts"], status["counts"], "re-enabling queued mail");
    assert_eq!(queued(&again), queued(&status));
}

#[test]
fn a_run_over_the_limit_holds_one_batch_released_once() {
    let s = sandbox(&["max_welcome_per_run: 2"]);
    s.write("partners.csv", &rows(&[1, 2, 3]));
    s.sync(0);
    let status = mail_status(&s);
    assert_eq!(status["counts"]["queued"], 0, "{status}");
    let held = status["held"].as_array().unwrap();
    assert_eq!(held.len(), 1, "{status}");
    let batch = &held[0];
    assert_eq!(
        (&batch["source"], &batch["users"], &batch["released_at"]),
        (&Value::from("partners"), &Value::from(3), &Value::Null)
    );
    let run = batch["run"].as_i64().unwrap().to_string();
    let human = s.run(&["mail", "status"]).expect(0).stdout;
    assert!(
        human.contains(&format!("liaison mail release {run}")),
        "{human}"
    );

    // A run within the limit welcomes its users at once, beside the batch.
    s.write("partners.csv", &rows(&[1, 2, 3, 4]));
    s.sync(0);
    assert_eq!(queued(&mail_status(&s)), welcomes(&["u4@x.example"]));

    let released = s.run(&["mail", "release", &run]).expect(0);
    assert!(
        released.stdout.contains("queued 3 welcomes"),
        "{}",
        released.stdout
    );
    let status = mail_status(&s);
    assert_eq!(status["counts"]["queued"], 4);
    assert!(status["held"][0]["released_at"].is_string(), "{status}");
    assert_eq!(status["held"][0]["released"], 3);
    assert_eq!(status["queued"][3]["run"].to_string(), run);

    let again = s.run(&["mail", "release", &run]).expect(1);
    assert!(
        again.stderr.contains("released already"),
        "{}",
        again.stderr
    );
    assert_eq!(
        mail_status(&s)["counts"]["queued"],
        4,
        "a second release queued mail"
    );
    let none = s.run(&["mail", "release", "999"]).expect(1);
    assert!(
        none.stderr.contains("run 999 held no welcomes"),
        "{}",
        none.stderr
    );
}

#[test]
fn a_bulk_first_import_over_the_limit_writes_one_held_batch_and_no_mail() {
    let s = sandbox(&["max_welcome_per_run: 5"]);
    let ids: Vec<usize> = (0..300).collect();
    s.write("partners.csv", &rows(&ids));
    // Through the bulk-load path, as a big first import takes it.
    let out = Command::new(env!("CARGO_BIN_EXE_liaison"))
        .arg("--config")
        .arg(s.config())
        .args(["sync", "--once", "--format", "json"])
        .env("LIAISON_TEST_BULK_THRESHOLD", "0")
        .env_remove("LIAISON_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = mail_status(&s);
    let total: u64 = status["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(total, 0, "{status}");
    assert_eq!(status["held"].as_array().unwrap().len(), 1);
    assert_eq!(status["held"][0]["users"], 300);
    let run = status["held"][0]["run"].to_string();
    s.run(&["mail", "release", &run]).expect(0);
    assert_eq!(mail_status(&s)["counts"]["queued"], 300);
}

#[test]
fn confirm_sync_created_queues_confirmations_too() {
    let s = sandbox(&["confirm_sync_created: true"]);
    s.write("partners.csv", &rows(&[1, 2]));
    s.sync(0);
    let status = mail_status(&s);
    let c = |a: &str| ("registration_confirmation".to_owned(), a.to_owned());
    let w = |a: &str| ("welcome".to_owned(), a.to_owned());
    assert_eq!(
        queued(&status),
        vec![
            c("u1@x.example"),
            c("u2@x.example"),
            w("u1@x.example"),
            w("u2@x.example")
        ]
    );
}

#[test]
fn without_mail_nothing_is_queued_and_nothing_can_be_released() {
    let s = Sandbox::new(&csv_config("partners.csv", &[], &[]));
    // Before any sync there is no store: an empty outbox, nothing created.
    assert_eq!(mail_status(&s)["counts"]["queued"], 0);
    assert!(!s.path().join("liaison.db").exists());
    s.write("partners.csv", &rows(&[1, 2]));
    s.sync(0);
    let status = mail_status(&s);
    assert!(queued(&status).is_empty(), "{status}");
    let human = s.run(&["mail", "status"]).expect(0);
    assert!(
        human.stderr.contains("mail: is not configured"),
        "{}",
        human.stderr
    );
    let release = s.run(&["mail", "release", "1"]).expect(2);
    assert!(
        release.stderr.contains("mail: is not configured"),
        "{}",
        release.stderr
    );
}
