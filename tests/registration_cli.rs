//! Registration without HTTP through the binary: `users register`, `approve`,
//! `reject`, `resend-welcome`, `resend-confirmation`, as `mail status`,
//! `users show` and `mail flush` (file transport) see them.

use serde_json::Value;

use crate::common::{csv_config, Sandbox, HEADER};

/// A sandbox with mail on a file transport, the config's account `acme`
/// (domain `acme.example`) and `more` top-level sections.
fn sandbox(more: &[&str]) -> Sandbox {
    let mut sections = vec![
        "accounts:\n  - {id: acme, name: ACME s.r.o., domains: [acme.example]}",
        "mail:\n  transport: file://mail\n  from: \"Support <support@example.com>\"\n  \
         welcome:\n    set_password_url: https://liaison.example.com/password",
    ];
    sections.extend_from_slice(more);
    let s = Sandbox::new(&csv_config("partners.csv", &[], &sections));
    s.write("partners.csv", HEADER);
    s
}

#[track_caller]
fn register(s: &Sandbox, name: &str, email: &str, more: &[&str]) -> Value {
    let mut args = vec![
        "users", "register", "--name", name, "--email", email, "--format", "json",
    ];
    args.extend_from_slice(more);
    s.run(&args).expect(0).json()
}

#[track_caller]
fn mail_status(s: &Sandbox) -> Value {
    s.run(&["mail", "status", "--format", "json"])
        .expect(0)
        .json()
}

/// (kind, recipient) of each queued message, in send order.
fn queued(s: &Sandbox) -> Vec<(String, String)> {
    mail_status(s)["queued"]
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

#[track_caller]
fn show(s: &Sandbox, login: &str) -> Value {
    s.run(&["users", "show", login, "--format", "json"])
        .expect(0)
        .json()
}

fn pair(kind: &str, to: &str) -> (String, String) {
    (kind.to_owned(), to.to_owned())
}

#[test]
fn a_registration_is_pending_with_its_confirmation_queued() {
    let s = sandbox(&[]);
    let got = register(&s, "Jiří Dvořák", "jiri@other.example", &["--locale", "cs"]);
    assert_eq!(got["result"], "created", "{got}");
    assert_eq!(got["login"], "jiri.dvorak");
    assert_eq!(got["status"], "pending");
    assert_eq!(
        got["queued"],
        serde_json::json!(["registration_confirmation"])
    );
    let status = mail_status(&s);
    assert_eq!(status["counts"]["queued"], 1, "{status}");
    let m = &status["queued"][0];
    assert_eq!(
        (&m["kind"], &m["recipient"], &m["locale"]),
        (
            &Value::from("registration_confirmation"),
            &Value::from("jiri@other.example"),
            &Value::from("cs")
        )
    );
    let u = s.user("jiri.dvorak");
    assert_eq!(
        (&u["status"], &u["origin"]),
        (&Value::from("pending"), &Value::from("registration"))
    );
    let human = s
        .run(&[
            "users",
            "register",
            "--name",
            "Bo",
            "--email",
            "bo@other.example",
        ])
        .expect(0);
    assert!(
        human.stdout.contains("registered bo (pending)")
            && human.stdout.contains("liaison users approve bo"),
        "{}",
        human.stdout
    );
}

#[test]
fn a_known_accounts_domain_is_approved_at_once_and_its_welcome_shows_the_account() {
    let s = sandbox(&[]);
    let got = register(&s, "Ann Lee", "ann@ACME.example", &["--actor", "helpdesk"]);
    assert_eq!(got["status"], "active", "{got}");
    assert_eq!(got["account"], "acme");
    assert_eq!(got["approved_by_domain"]["domain"], "acme.example");
    assert_eq!(
        queued(&s),
        [
            pair("registration_confirmation", "ann@ACME.example"),
            pair("welcome", "ann@ACME.example")
        ]
    );
    let d = show(&s, "ann.lee");
    assert_eq!(d["accounts"], serde_json::json!(["acme"]), "{d}");
    assert_eq!(d["direct_accounts"], serde_json::json!(["acme"]));
    assert_eq!(d["linked_accounts"][0]["name"], "ACME s.r.o.");
    assert_eq!(d["history"][0]["actor"], "helpdesk");
    let human = s.run(&["users", "show", "ann.lee"]).expect(0).stdout;
    assert!(
        human.contains("acme  ACME s.r.o.  domains acme.example  (direct)"),
        "{human}"
    );
    assert!(human.contains("by helpdesk"), "{human}");
    // `users list --account` finds a user linked directly.
    let listed = s
        .run(&["users", "list", "--account", "acme", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    // The welcome names the account, taken from the direct link.
    s.run(&["mail", "flush"]).expect(0);
    let mail = std::fs::read_dir(s.path().join("mail"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .find(|m| m.contains("set-password") || m.contains("/password?token="))
        .expect("a welcome");
    assert!(mail.contains("Company: ACME s.r.o."), "{mail}");
}

#[test]
fn an_unknown_account_is_a_usage_error_and_writes_nothing() {
    let s = sandbox(&[]);
    let run = s
        .run(&[
            "users",
            "register",
            "--name",
            "Cy",
            "--email",
            "cy@x.example",
            "--account",
            "initech",
        ])
        .expect(2);
    assert!(
        run.stderr.contains("no account with id \"initech\""),
        "{}",
        run.stderr
    );
    assert!(s.users().is_empty());
    let got = register(&s, "Cy", "cy@x.example", &["--account", "acme"]);
    assert_eq!(
        (&got["status"], &got["account"]),
        (&Value::from("pending"), &Value::from("acme"))
    );
    s.run(&[
        "users",
        "register",
        "--name",
        "Cy",
        "--email",
        "not-an-address",
    ])
    .expect(2);
}

#[test]
fn approve_queues_the_welcome_and_reject_cancels_queued_mail() {
    let s = sandbox(&[]);
    register(&s, "Dee", "dee@x.example", &[]);
    register(&s, "Eve", "eve@x.example", &[]);
    let out = s
        .run(&["users", "approve", "dee", "--actor", "boss"])
        .expect(0);
    assert!(
        out.stdout.contains("approved dee (active); welcome queued"),
        "{}",
        out.stdout
    );
    let again = s.run(&["users", "approve", "dee"]).expect(1);
    assert!(
        again.stderr.contains("user \"dee\" is active, not pending"),
        "{}",
        again.stderr
    );
    let out = s.run(&["users", "reject", "eve"]).expect(0);
    assert!(
        out.stdout.contains("1 queued message cancelled"),
        "{}",
        out.stdout
    );
    assert_eq!(
        queued(&s),
        [
            pair("registration_confirmation", "dee@x.example"),
            pair("welcome", "dee@x.example")
        ]
    );
    assert_eq!(mail_status(&s)["counts"]["cancelled"], 1);
    let rejected = s.run(&["users", "approve", "eve"]).expect(1);
    assert!(
        rejected
            .stderr
            .contains("user \"eve\" is rejected, not pending"),
        "{}",
        rejected.stderr
    );
    s.run(&["users", "reject", "nobody"]).expect(1);
    let d = show(&s, "dee");
    let last = d["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["action"], &last["actor"]),
        (&Value::from("approve"), &Value::from("boss"))
    );
    assert_eq!(show(&s, "eve")["status"], "rejected");
}

#[test]
fn resends_queue_again_a_welcome_only_for_an_active_user() {
    let s = sandbox(&[]);
    register(&s, "Fay", "fay@x.example", &[]);
    let pending = s.run(&["users", "resend-welcome", "fay"]).expect(1);
    assert!(
        pending
            .stderr
            .contains("user \"fay\" is pending, not active"),
        "{}",
        pending.stderr
    );
    s.run(&["users", "resend-confirmation", "fay"]).expect(0);
    s.run(&["users", "approve", "fay"]).expect(0);
    s.run(&["users", "resend-welcome", "fay", "--actor", "ops"])
        .expect(0);
    let kinds: Vec<String> = queued(&s).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        kinds,
        [
            "registration_confirmation",
            "registration_confirmation",
            "welcome",
            "welcome"
        ]
    );
    let d = show(&s, "fay");
    let actions: Vec<&str> = d["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["create", "resend_confirmation", "approve", "resend_welcome"]
    );
}

#[test]
fn a_second_registration_changes_nothing_and_waits_for_the_cooldown() {
    let s = sandbox(&["registration:\n  cooldown: 2s"]);
    register(&s, "Gus", "gus@x.example", &[]);
    let again = register(&s, "Someone Else", "GUS@X.example", &["--locale", "cs"]);
    assert_eq!(again["result"], "known", "{again}");
    assert_eq!(
        (&again["login"], &again["confirmation"]),
        (&Value::from("gus"), &Value::from("cooldown"))
    );
    assert_eq!(
        queued(&s).len(),
        1,
        "no second confirmation within the cooldown"
    );
    let u = s.user("gus");
    assert_eq!(
        (&u["title"], &u["locale"]),
        (&Value::from("Gus"), &Value::from("en"))
    );
    let human = s
        .run(&[
            "users",
            "register",
            "--name",
            "Gus",
            "--email",
            "gus@x.example",
        ])
        .expect(0);
    assert!(
        human
            .stdout
            .contains("already registered as gus (pending); nothing changed"),
        "{}",
        human.stdout
    );
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let later = register(&s, "Gus", "gus@x.example", &[]);
    assert_eq!(later["confirmation"], "queued", "{later}");
    assert_eq!(queued(&s).len(), 2);
    assert_eq!(s.users().len(), 1);
}

#[test]
fn mail_flush_writes_the_confirmation_as_an_eml() {
    let s = sandbox(&["portal:\n  url: https://portal.example.com/login"]);
    register(&s, "Hal Jordan", "hal@x.example", &["--account", "acme"]);
    let flushed = s
        .run(&["mail", "flush", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(flushed["sent"]["registration_confirmation"], 1, "{flushed}");
    let files: Vec<_> = std::fs::read_dir(s.path().join("mail"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let id = files[0].file_stem().unwrap().to_string_lossy().into_owned();
    assert!(text.contains(&format!("Message-ID: <{id}>")), "{text}");
    assert!(
        text.contains("To: \"Hal Jordan\" <hal@x.example>"),
        "{text}"
    );
    assert!(text.contains("Login: hal.jordan"), "{text}");
    assert!(text.contains("Company: ACME s.r.o."), "{text}");
    assert_eq!(mail_status(&s)["counts"]["sent"], 1);
}

#[test]
fn without_mail_a_registration_queues_nothing_and_a_resend_is_refused() {
    let s = Sandbox::new(&csv_config("partners.csv", &[], &[]));
    s.write("partners.csv", HEADER);
    let run = s
        .run(&[
            "users",
            "register",
            "--name",
            "Ida",
            "--email",
            "ida@x.example",
        ])
        .expect(0);
    assert!(
        run.stderr.contains("mail: is not configured"),
        "{}",
        run.stderr
    );
    s.run(&["users", "resend-confirmation", "ida"]).expect(2);
    s.run(&["users", "approve", "ida"]).expect(0);
    assert_eq!(mail_status(&s)["counts"]["queued"], 0);
}

#[test]
fn a_source_contact_with_a_registered_address_joins_that_user() {
    let s = sandbox(&[]);
    register(&s, "Kim", "kim@acme.example", &[]);
    s.write(
        "partners.csv",
        &format!("{HEADER}c1,Kim Kay,KIM@acme.example,acme,ACME,portal\n"),
    );
    let run = s.sync(0);
    assert_eq!(
        (&run["created"], &run["updated"]),
        (&Value::from(0), &Value::from(1)),
        "{run}"
    );
    let users = s.users();
    assert_eq!(users.len(), 1, "{users:?}");
    let u = &users[0];
    assert_eq!(
        (&u["origin"], &u["status"], &u["contacts"], &u["accounts"]),
        (
            &Value::from("registration"),
            &Value::from("active"),
            &serde_json::json!(["c1"]),
            &serde_json::json!(["acme"])
        )
    );
    // Welcomed at registration: sync queues no second welcome.
    let kinds: Vec<String> = queued(&s).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["registration_confirmation", "welcome"]);
}
