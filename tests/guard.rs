//! The safety guard and failing sources, through the binary.

use crate::common::{csv_config, Sandbox, CONFIG, HEADER};

fn rows(range: std::ops::Range<usize>) -> String {
    let body: String = range
        .map(|i| format!("c{i},User {i},u{i}@x.example,,,\n"))
        .collect();
    format!("{HEADER}{body}")
}

#[test]
fn mass_deprovision_is_held_but_creations_apply() {
    let s = Sandbox::new(CONFIG);
    s.write("partners.csv", &rows(0..20));
    s.sync(0);
    // 5 of 20 leave (25 % > 10 %), one arrives.
    s.write(
        "partners.csv",
        &format!("{}c99,New Partner,new@x.example,,,\n", rows(5..20)),
    );
    let r = s.sync(3);
    assert_eq!(r["status"], "held");
    assert_eq!(r["created"], 1, "a held guard must not stop new partners");
    assert_eq!(r["disabled"], 0);
    let held = r["held"].as_array().unwrap();
    assert_eq!(held.len(), 5);
    assert_eq!(held[0]["action"], "disable");
    assert!(held[0]["reason"]
        .as_str()
        .unwrap()
        .contains("max_deprovision_ratio"));
    assert_eq!(s.user("user.0")["status"], "active");
    assert_eq!(
        s.user("user.0")["contacts"],
        serde_json::json!(["c0"]),
        "held unlinks are not applied"
    );

    // plan lists the held deprovisions; releasing applies them.
    let p = s.run(&["plan", "--format", "json"]).expect(3).json();
    assert_eq!(p["held"].as_array().unwrap().len(), 5);
    let r = s
        .run(&[
            "sync",
            "--once",
            "--allow-mass-deprovision",
            "--format",
            "json",
        ])
        .expect(0)
        .json();
    assert_eq!(r["status"], "applied");
    assert_eq!(r["disabled"], 5);
    assert_eq!(s.user("user.0")["status"], "disabled");
}

#[test]
fn absolute_limit_holds_too() {
    let s = Sandbox::new(&csv_config(
        "partners.csv",
        &[],
        &[
            "safety:",
            "  max_deprovision: 2",
            "  max_deprovision_ratio: 1.0",
        ],
    ));
    s.write("partners.csv", &rows(0..10));
    s.sync(0);
    s.write("partners.csv", &rows(3..10));
    let r = s.sync(3);
    assert!(
        r["held"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("max_deprovision = 2"),
        "{r}"
    );
    s.write("partners.csv", &rows(2..10));
    let r = s.sync(0);
    assert_eq!(r["disabled"], 2);
}

#[test]
fn a_suddenly_empty_source_is_held() {
    let s = Sandbox::new(&csv_config(
        "partners.csv",
        &[],
        &[
            "safety:",
            "  max_deprovision: 1000",
            "  max_deprovision_ratio: 1.0",
        ],
    ));
    s.write("partners.csv", &rows(0..3));
    s.sync(0);
    s.write("partners.csv", HEADER);
    let r = s.sync(3);
    assert_eq!(r["held"].as_array().unwrap().len(), 3);
    assert!(r["held"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("no records"));
    assert!(s.users().iter().all(|u| u["status"] == "active"));
}

#[test]
fn a_failing_source_deprovisions_nobody() {
    let s = Sandbox::new(CONFIG);
    s.write("partners.csv", &rows(0..3));
    s.sync(0);
    std::fs::remove_file(s.path().join("partners.csv")).unwrap();
    let r = s.sync(1);
    assert_eq!(r["status"], "failed");
    assert!(
        r["failure"].as_str().unwrap().contains("partners.csv"),
        "{r}"
    );
    // Typed: a missing file is the source's fault, and may be back next time.
    assert_eq!(r["failure_kind"], "source_unreachable", "{r}");
    assert_eq!(r["retryable"], true, "{r}");
    assert!(s.users().iter().all(|u| u["status"] == "active"));
    let human = s.run(&["sync", "--once"]).expect(1);
    assert!(
        human.stdout.contains("failed, nothing applied"),
        "{}",
        human.stdout
    );
}
