//! The administration of users through the binary, on a store filled by a
//! real sync: `users add` (also `--from-contact`), `enable`, `disable`,
//! `delete`, `unlink`, `edit`, `list`, `show`, `history`, and the guard
//! between admin and sync — an admin disable survives the next sync and one
//! racing it, a field a source owns is refused, an unlinked account stays
//! unlinked, a deleted user's contact makes no new user.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{csv_config, Run, Sandbox};

/// Mail on a file transport, the config's account `acme`, and a guard that
/// lets one of three users go.
const SECTIONS: [&str; 3] = [
    "safety:\n  max_deprovision_ratio: 1.0",
    "accounts:\n  - {id: acme, name: ACME s.r.o., domains: [acme.example]}",
    "mail:\n  transport: file://mail\n  from: \"Support <support@example.com>\"\n  \
     welcome:\n    set_password_url: https://liaison.example.com/password",
];

const HEADER: &str = "contact_id,name,email,account_id,account_name,attributes.licence_key\n";

/// Three partners: two of ACME (with licence keys), one of Vendor.
const ROWS: &str = "c1,Jiří Dvořák,jiri@acme.example,acme,ACME,LIC-1001\n\
                    c2,Anna Nováková,anna@acme.example,acme,ACME,LIC-2002\n\
                    c3,Max Weber,max@vendor.example,vendor,Vendor,\n";

/// A sandbox whose source `partners` holds `rows`, synced once.
fn synced(rows: &str) -> Sandbox {
    let s = Sandbox::new(&csv_config("partners.csv", &[], &SECTIONS));
    s.write("partners.csv", &format!("{HEADER}{rows}"));
    s.sync(0);
    s
}

/// `liaison ARGS` as the admin `alice`.
#[track_caller]
fn admin(s: &Sandbox, args: &[&str]) -> Run {
    s.run_with_env(args, &[("USER", "alice")])
}

#[track_caller]
fn show(s: &Sandbox, login: &str) -> Value {
    admin(s, &["users", "show", login, "--format", "json"])
        .expect(0)
        .json()
}

#[track_caller]
fn history(s: &Sandbox, login: &str) -> Vec<Value> {
    match admin(s, &["users", "history", login, "--format", "json"])
        .expect(0)
        .json()
    {
        Value::Array(v) => v,
        other => panic!("not an array: {other}"),
    }
}

/// The kinds and recipients of the queued mail.
fn queued(s: &Sandbox) -> Vec<(String, String)> {
    let status = s
        .run(&["mail", "status", "--format", "json"])
        .expect(0)
        .json();
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

/// Asserts a refusal: `code`, one `error:` line naming `what`, nothing on stdout.
#[track_caller]
fn refused(run: Run, code: i32, what: &str) {
    let run = run.expect(code);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", run.stderr);
    assert!(lines[0].starts_with("error: "), "{}", run.stderr);
    assert!(run.stderr.contains(what), "{what:?} in {}", run.stderr);
    assert_eq!(run.stdout, "");
}

#[test]
fn add_makes_an_active_manual_user_with_its_welcome_queued() {
    let s = synced(ROWS);
    let before = queued(&s).len();
    let out = admin(
        &s,
        &[
            "users",
            "add",
            "--name",
            "Łukasz Partner",
            "--email",
            "Lukasz@Partner.example",
            "--account",
            "acme",
            "--locale",
            "cs",
            "--description",
            "Integrator",
            "--grant",
            "recordings",
            "--grant",
            "billing",
            "--format",
            "json",
        ],
    )
    .expect(0)
    .json();
    assert_eq!(out["login"], "lukasz.partner");
    assert_eq!(out["status"], "active");
    assert_eq!(out["origin"], "manual");
    assert_eq!(out["queued"], serde_json::json!(["welcome"]));
    let u = show(&s, "lukasz.partner");
    assert_eq!(u["origin"], "manual");
    assert_eq!(u["email"], "Lukasz@Partner.example");
    assert_eq!(u["locale"], "cs");
    assert_eq!(u["description"], "Integrator");
    assert_eq!(u["grants"], serde_json::json!(["billing", "recordings"]));
    assert_eq!(u["accounts"], serde_json::json!(["acme"]));
    assert_eq!(u["direct_accounts"], serde_json::json!(["acme"]));
    assert_eq!(u["mail"][0]["kind"], "welcome");
    assert_eq!(u["history"][0]["action"], "create");
    assert_eq!(u["history"][0]["actor"], "alice");
    assert_eq!(queued(&s).len(), before + 1);
    assert!(queued(&s).contains(&("welcome".into(), "Lukasz@Partner.example".into())));
    // A sync leaves it alone: no source feeds it.
    let report = s.sync(0);
    assert_eq!(report["unchanged"], 3, "{report}");
    assert_eq!(show(&s, "lukasz.partner")["status"], "active");
    // An explicit login is taken in lower case.
    let out = admin(
        &s,
        &[
            "users",
            "add",
            "--name",
            "Bo",
            "--email",
            "bo@x.example",
            "--login",
            "Bo@Ext",
        ],
    )
    .expect(0);
    assert!(out.stdout.contains("added bo@ext"), "{}", out.stdout);
}

#[test]
fn add_refuses_a_taken_or_retired_login_a_duplicate_or_invalid_email_writing_nothing() {
    let s = synced(ROWS);
    let count = s.users().len();
    let add = |more: &[&str]| {
        let mut args = vec!["users", "add"];
        args.extend_from_slice(more);
        admin(&s, &args)
    };
    refused(
        add(&[
            "--name",
            "X",
            "--email",
            "x@x.example",
            "--login",
            "max.weber",
        ]),
        1,
        "login \"max.weber\" is taken",
    );
    refused(
        add(&["--name", "X", "--email", "JIRI@acme.example"]),
        1,
        "is the address of user \"jiri.dvorak\"",
    );
    refused(add(&["--name", "X", "--email", "x@"]), 1, "--email");
    refused(
        add(&["--name", "X", "--email", "x@x.example", "--login", "a b"]),
        1,
        "--login",
    );
    refused(
        add(&[
            "--name",
            "X",
            "--email",
            "x@x.example",
            "--locale",
            "english!",
        ]),
        1,
        "--locale",
    );
    refused(
        add(&["--name", "X", "--email", "x@x.example", "--account", "nope"]),
        2,
        "no account with id \"nope\"",
    );
    // Bad usage: clap's own message, exit 2.
    add(&["--name", "X"]).expect(2);
    add(&["--email", "x@x.example"]).expect(2);
    assert_eq!(s.users().len(), count, "nothing written");
    // A deleted user's login is never given again.
    admin(&s, &["users", "delete", "max.weber", "--yes"]).expect(0);
    refused(
        add(&[
            "--name",
            "Max",
            "--email",
            "m2@x.example",
            "--login",
            "max.weber",
        ]),
        1,
        "belonged to a deleted user",
    );
    // Derived, it gets a suffix instead.
    let out = add(&["--name", "Max Weber", "--email", "m2@x.example"]).expect(0);
    assert!(out.stdout.contains("added max.weber2"), "{}", out.stdout);
    // Unknown logins, for every command that takes one.
    for args in [
        &["users", "show", "nobody"][..],
        &["users", "disable", "nobody"],
        &["users", "enable", "nobody"],
        &["users", "delete", "nobody", "--yes"],
        &["users", "edit", "nobody", "--title", "T"],
        &["users", "unlink", "nobody", "--account", "acme"],
        &["users", "history", "nobody"],
    ] {
        let run = admin(&s, args).expect(1);
        assert!(
            run.stderr.contains("no user with login \"nobody\""),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
    }
}

#[test]
fn add_from_a_contact_takes_its_fields_and_leaves_the_rest_editable() {
    let s = synced(ROWS);
    // A contact the source has but sync has not read yet.
    s.write(
        "partners.csv",
        &format!("{HEADER}{ROWS}c9,Eva Svobodová,eva@vendor.example,vendor,Vendor,LIC-9009\n"),
    );
    let out = admin(
        &s,
        &[
            "users",
            "add",
            "--from-contact",
            "partners:c9",
            "--grant",
            "support",
            "--format",
            "json",
        ],
    )
    .expect(0)
    .json();
    assert_eq!(out["login"], "eva.svobodova");
    assert_eq!(out["contact"], "partners:c9");
    let u = show(&s, "eva.svobodova");
    assert_eq!(u["origin"], "manual");
    assert_eq!(u["title"], "Eva Svobodová");
    assert_eq!(u["contacts"], serde_json::json!(["c9"]));
    assert_eq!(u["accounts"], serde_json::json!(["vendor"]));
    assert_eq!(u["attributes"]["licence_key"], "LIC-9009");
    assert_eq!(u["grants"], serde_json::json!(["support"]));
    // The next sync finds it linked: no second user, nothing to change.
    let report = s.sync(0);
    assert_eq!(
        (report["created"].as_u64(), report["updated"].as_u64()),
        (Some(0), Some(0)),
        "{report}"
    );
    // What the contact gives belongs to its source; the rest is the admin's.
    refused(
        admin(&s, &["users", "edit", "eva.svobodova", "--title", "Eva S."]),
        1,
        "given by source partners (contact partners:c9)",
    );
    refused(
        admin(
            &s,
            &[
                "users",
                "edit",
                "eva.svobodova",
                "--attribute",
                "licence_key=X",
            ],
        ),
        1,
        "source partners",
    );
    admin(
        &s,
        &[
            "users",
            "edit",
            "eva.svobodova",
            "--description",
            "Vendor's lead",
            "--account-tickets",
            "on",
        ],
    )
    .expect(0);
    s.run(&["sync", "--once", "--full"]).expect(0);
    let u = show(&s, "eva.svobodova");
    assert_eq!(u["description"], "Vendor's lead", "kept by sync");
    assert_eq!(u["account_tickets"], true);
    assert_eq!(u["grants"], serde_json::json!(["support"]));
    // A contact linked to a user is refused, naming that user.
    refused(
        admin(&s, &["users", "add", "--from-contact", "c1"]),
        1,
        "contact partners:c1 is already linked to user \"jiri.dvorak\"",
    );
    refused(
        admin(&s, &["users", "add", "--from-contact", "partners:c404"]),
        1,
        "no source has a contact",
    );
    // Its contact leaves the source: unlinked, never disabled (manual).
    s.write("partners.csv", &format!("{HEADER}{ROWS}"));
    s.sync(0);
    let u = show(&s, "eva.svobodova");
    assert_eq!(u["status"], "active");
    assert_eq!(u["contacts"], serde_json::json!([]));
    // Now no source gives anything: everything is editable.
    admin(&s, &["users", "edit", "eva.svobodova", "--title", "Eva S."]).expect(0);
    assert_eq!(show(&s, "eva.svobodova")["title"], "Eva S.");
}

#[test]
fn an_admin_disable_survives_sync_and_enable_is_refused_once_every_contact_left() {
    let s = synced(ROWS);
    let out = admin(&s, &["users", "disable", "jiri.dvorak"]).expect(0);
    assert!(
        out.stdout.contains("disabled jiri.dvorak"),
        "{}",
        out.stdout
    );
    assert!(
        !queued(&s).iter().any(|(_, to)| to == "jiri@acme.example"),
        "its queued welcome is cancelled"
    );
    // The next sync (its contact unchanged, or changed) does not enable it.
    s.sync(0);
    s.write(
        "partners.csv",
        &format!("{HEADER}{}", ROWS.replace("Jiří Dvořák", "Jiří Dvořák Jr.")),
    );
    let report = s
        .run(&["sync", "--once", "--full", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(report["enabled"], 0, "{report}");
    let u = show(&s, "jiri.dvorak");
    assert_eq!(u["status"], "disabled");
    assert_eq!(u["title"], "Jiří Dvořák Jr.", "the source still feeds it");
    // Disabling again changes nothing.
    let again = admin(&s, &["users", "disable", "jiri.dvorak"]).expect(0);
    assert!(
        again.stdout.contains("already disabled"),
        "{}",
        again.stdout
    );
    admin(&s, &["users", "enable", "jiri.dvorak"]).expect(0);
    assert_eq!(show(&s, "jiri.dvorak")["status"], "active");
    // Enabling queues no second welcome (SPEC §4).
    assert!(!queued(&s).iter().any(|(_, to)| to == "jiri@acme.example"));
    // Max's contact leaves: sync disables him; an admin enable is refused,
    // naming the source.
    s.write(
        "partners.csv",
        &format!(
            "{HEADER}{}",
            ROWS.lines().take(2).collect::<Vec<_>>().join("\n")
        ),
    );
    let report = s.sync(0);
    assert_eq!(report["disabled"], 1, "{report}");
    refused(
        admin(&s, &["users", "enable", "max.weber"]),
        1,
        "has left source partners (partners:c3)",
    );
    // An admin disable of a sync-disabled user keeps it disabled when its
    // contact comes back.
    admin(&s, &["users", "disable", "max.weber"]).expect(0);
    s.write("partners.csv", &format!("{HEADER}{ROWS}"));
    s.sync(0);
    assert_eq!(show(&s, "max.weber")["status"], "disabled");
    // A pending or rejected user is not the disable's to handle.
    s.run(&[
        "users",
        "register",
        "--name",
        "Pen Ding",
        "--email",
        "pen@other.example",
    ])
    .expect(0);
    refused(
        admin(&s, &["users", "disable", "pen.ding"]),
        1,
        "is pending, not active",
    );
}

/// `liaison ARGS` spawned as a child (stdout and stderr captured).
fn spawn(s: &Sandbox, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_liaison"))
        .arg("--config")
        .arg(s.config())
        .args(args)
        .env_remove("LIAISON_CONFIG")
        .env_remove("RUST_LOG")
        .env("USER", "alice")
        .env("LIAISON_STORE_LOCK_WAIT", "120")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> Run {
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_admin_disable_racing_a_sync_waits_for_it_and_survives_the_next() {
    // An exec source that holds its read until the test says `go`: the sync
    // holds the writer lock meanwhile.
    let s = Sandbox::new(&format!(
        "store: sqlite://liaison.db
sources:
  - name: people
    type: exec
    command: [sh, held.sh, {}/examples/plugins/people_file.sh]
    env: {{PEOPLE_FILE: people.txt}}
",
        env!("CARGO_MANIFEST_DIR")
    ));
    s.write(
        "held.sh",
        ": > started\nwhile [ ! -e go ]; do sleep 0.02; done\nexec sh \"$1\"\n",
    );
    s.write(
        "people.txt",
        "c1:Ann Lee:ann@x.example:ACME\nc2:Bob Berg:bob@x.example:ACME\n",
    );
    s.write("go", "");
    s.sync(0);
    std::fs::remove_file(s.path().join("go")).unwrap();
    std::fs::remove_file(s.path().join("started")).unwrap();
    // The racing sync also changes Ann: both changes must land.
    s.write(
        "people.txt",
        "c1:Ann Lee-Berg:ann@x.example:ACME\nc2:Bob Berg:bob@x.example:ACME\n",
    );
    let sync = spawn(&s, &["sync", "--once", "--format", "json"]);
    wait_for("the sync to read", || s.path().join("started").exists());
    let disable = spawn(&s, &["users", "disable", "ann.lee"]);
    // It waits for the writer lock (and says so) rather than failing.
    std::thread::sleep(Duration::from_millis(600));
    s.write("go", "");
    let (sync, disable) = (finish(sync), finish(disable));
    assert_eq!(sync.code, 0, "{}", sync.stderr);
    assert_eq!(disable.code, 0, "{}", disable.stderr);
    assert!(
        disable
            .stderr
            .contains("waiting for the store's writer lock"),
        "{}",
        disable.stderr
    );
    let report: Value = serde_json::from_str(&sync.stdout).unwrap();
    assert_eq!(report["updated"], 1, "{report}");
    let u = show(&s, "ann.lee");
    assert_eq!(
        (u["status"].as_str(), u["title"].as_str()),
        (Some("disabled"), Some("Ann Lee-Berg"))
    );
    // And the next sync leaves it disabled.
    let report = s.sync(0);
    assert_eq!(report["enabled"], 0, "{report}");
    assert_eq!(show(&s, "ann.lee")["status"], "disabled");
    let actions: Vec<(String, String)> = history(&s, "ann.lee")
        .iter()
        .map(|h| {
            (
                h["action"].as_str().unwrap().to_owned(),
                h["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // The sync's entries (the title, the contact's name), then the disable.
    let (last, sync) = actions.split_last().unwrap();
    assert_eq!(last, &("disable".to_owned(), "alice".to_owned()));
    assert_eq!(sync[0].0, "create");
    assert!(
        sync.iter().all(|(_, by)| by == "sync:people"),
        "{actions:?}"
    );
    assert!(sync.len() > 1, "{actions:?}");
}

#[test]
fn delete_asks_or_needs_yes_and_the_journal_keeps_the_user() {
    let s = synced(ROWS);
    refused(
        admin(&s, &["users", "delete", "max.weber"]),
        2,
        "pass --yes",
    );
    assert_eq!(show(&s, "max.weber")["status"], "active", "not deleted");
    let out = admin(
        &s,
        &["users", "delete", "max.weber", "--yes", "--actor", "bob"],
    )
    .expect(0);
    assert!(out.stdout.contains("deleted max.weber"), "{}", out.stdout);
    assert!(out.stdout.contains("partners:c3"), "{}", out.stdout);
    admin(&s, &["users", "show", "max.weber"]).expect(1);
    let h = history(&s, "max.weber");
    let last = h.last().unwrap();
    assert_eq!(
        (last["action"].as_str(), last["actor"].as_str()),
        (Some("delete"), Some("bob"))
    );
    assert_eq!(
        last["old"]["email"], "max@vendor.example",
        "the journal keeps its record"
    );
    // Its contact is still in the source: sync makes no new user of it.
    let report = s.sync(0);
    assert_eq!(report["created"], 0, "{report}");
    assert_eq!(logins(&s, &[]), ["anna.novakova", "jiri.dvorak"]);
    // An admin brings it back, as a manual user with a new login.
    let out = admin(
        &s,
        &[
            "users",
            "add",
            "--from-contact",
            "partners:c3",
            "--format",
            "json",
        ],
    )
    .expect(0)
    .json();
    assert_eq!(out["login"], "max.weber2");
    let report = s.sync(0);
    assert_eq!(report["created"], 0, "{report}");
    assert_eq!(
        show(&s, "max.weber2")["contacts"],
        serde_json::json!(["c3"])
    );
}

#[test]
fn an_account_unlink_is_remembered_until_an_admin_links_again() {
    let s = synced(ROWS);
    let out = admin(
        &s,
        &["users", "unlink", "anna.novakova", "--account", "acme"],
    )
    .expect(0);
    assert!(out.stdout.contains("partners:c2"), "{}", out.stdout);
    let u = show(&s, "anna.novakova");
    assert_eq!(u["contacts"], serde_json::json!([]));
    assert_eq!(u["accounts"], serde_json::json!([]));
    assert_eq!(u["status"], "disabled", "a sync user left with no contact");
    // Sync, even a full one with a changed row, does not link it again.
    s.write(
        "partners.csv",
        &format!("{HEADER}{}", ROWS.replace("LIC-2002", "LIC-2003")),
    );
    for args in [&["sync", "--once"][..], &["sync", "--once", "--full"]] {
        s.run(args).expect(0);
        let u = show(&s, "anna.novakova");
        assert_eq!(u["contacts"], serde_json::json!([]), "{args:?}");
        assert_eq!(u["status"], "disabled");
    }
    assert_eq!(logins(&s, &["--account", "acme"]), ["jiri.dvorak"]);
    refused(
        admin(
            &s,
            &["users", "unlink", "anna.novakova", "--account", "acme"],
        ),
        1,
        "is not linked to account \"acme\"",
    );
    // An admin links it again: linked, enabled, up to date with its source,
    // and sync keeps it so.
    let out = admin(
        &s,
        &[
            "users",
            "edit",
            "anna.novakova",
            "--link-contact",
            "partners:c2",
        ],
    )
    .expect(0);
    assert!(out.stdout.contains("enable"), "{}", out.stdout);
    s.sync(0);
    let u = show(&s, "anna.novakova");
    assert_eq!(u["contacts"], serde_json::json!(["c2"]));
    assert_eq!(u["status"], "active");
    assert_eq!(u["attributes"]["licence_key"], "LIC-2003");
    // An unlinked contact (`--unlink-contact`) is held the same way.
    admin(
        &s,
        &["users", "edit", "jiri.dvorak", "--unlink-contact", "c1"],
    )
    .expect(0);
    s.run(&["sync", "--once", "--full"]).expect(0);
    assert_eq!(show(&s, "jiri.dvorak")["contacts"], serde_json::json!([]));
    assert_eq!(
        logins(&s, &["--search", "jiri"]),
        ["jiri.dvorak"],
        "no new user of c1"
    );
}

#[test]
fn edit_refuses_a_field_a_source_owns_all_or_nothing_and_edits_the_rest() {
    let s = synced(ROWS);
    // A title from a source: refused, naming it, and the grant asked for in
    // the same command is not written either.
    refused(
        admin(
            &s,
            &[
                "users",
                "edit",
                "jiri.dvorak",
                "--grant",
                "sales",
                "--title",
                "J. D.",
            ],
        ),
        1,
        "title of user \"jiri.dvorak\" is given by source partners (contact partners:c1)",
    );
    assert_eq!(show(&s, "jiri.dvorak")["grants"], serde_json::json!([]));
    refused(
        admin(
            &s,
            &["users", "edit", "jiri.dvorak", "--email", "j@x.example"],
        ),
        1,
        "source partners",
    );
    // What the source does not give is the admin's, and sync keeps it.
    let out = admin(
        &s,
        &[
            "users",
            "edit",
            "jiri.dvorak",
            "--grant",
            "sales",
            "--grant",
            "billing",
            "--revoke",
            "billing",
            "--account-contacts",
            "on",
            "--external-comments",
            "on",
            "--attribute",
            "tier=gold",
            "--locale",
            "cs",
            "--description",
            "Purchasing",
            "--format",
            "json",
        ],
    )
    .expect(0)
    .json();
    let fields: Vec<&str> = out["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "description",
            "locale",
            "account_contacts",
            "external_comments",
            "grants",
            "attributes"
        ]
    );
    s.write(
        "partners.csv",
        &format!("{HEADER}{}", ROWS.replace("LIC-1001", "LIC-1002")),
    );
    s.run(&["sync", "--once", "--full"]).expect(0);
    let u = show(&s, "jiri.dvorak");
    assert_eq!(u["grants"], serde_json::json!(["sales"]));
    assert_eq!(u["account_contacts"], true);
    assert_eq!(u["external_comments"], true);
    assert_eq!(u["account_tickets"], false);
    assert_eq!(u["locale"], "cs");
    assert_eq!(u["description"], "Purchasing");
    assert_eq!(
        u["attributes"],
        serde_json::json!({"licence_key": "LIC-1002", "tier": "gold"})
    );
    // The same values again: nothing changes, nothing is journaled.
    let n = history(&s, "jiri.dvorak").len();
    let out = admin(&s, &["users", "edit", "jiri.dvorak", "--grant", "sales"]).expect(0);
    assert!(out.stdout.contains("nothing changed"), "{}", out.stdout);
    assert_eq!(history(&s, "jiri.dvorak").len(), n);
    // A manual user: everything is editable; an e-mail stays unique.
    admin(
        &s,
        &[
            "users",
            "add",
            "--name",
            "Pat",
            "--email",
            "pat@x.example",
            "--description",
            "Old",
        ],
    )
    .expect(0);
    admin(
        &s,
        &[
            "users",
            "edit",
            "pat",
            "--title",
            "Pat Partner",
            "--email",
            "Pat@Y.example",
            "--description",
            "",
        ],
    )
    .expect(0);
    let u = show(&s, "pat");
    assert_eq!(
        (u["title"].as_str(), u["email"].as_str()),
        (Some("Pat Partner"), Some("Pat@Y.example"))
    );
    assert_eq!(u["description"], Value::Null);
    assert_eq!(
        logins(&s, &["--search", "y.example"]),
        ["pat"],
        "the search text follows"
    );
    refused(
        admin(
            &s,
            &["users", "edit", "pat", "--email", "MAX@vendor.example"],
        ),
        1,
        "is the address of user \"max.weber\"",
    );
    refused(
        admin(&s, &["users", "edit", "pat", "--email", "nope"]),
        1,
        "--email",
    );
    // Usage: no change asked for, or a login change.
    refused(admin(&s, &["users", "edit", "pat"]), 2, "needs a change");
    refused(
        admin(&s, &["users", "edit", "pat", "--login", "pat2"]),
        2,
        "a login never changes",
    );
    admin(&s, &["users", "edit", "pat", "--account-tickets", "maybe"]).expect(2);
    // Linking an account directly.
    admin(&s, &["users", "edit", "pat", "--link-account", "acme"]).expect(0);
    assert_eq!(
        logins(&s, &["--account", "acme"]),
        ["anna.novakova", "jiri.dvorak", "pat"]
    );
    refused(
        admin(&s, &["users", "edit", "pat", "--link-account", "nope"]),
        2,
        "no account with id",
    );
}

#[test]
fn list_filters_by_every_spec_filter_sorted_by_login_and_pages() {
    let s = synced(ROWS);
    admin(
        &s,
        &[
            "users",
            "add",
            "--name",
            "Zed",
            "--email",
            "zed@x.example",
            "--account",
            "acme",
        ],
    )
    .expect(0);
    admin(&s, &["users", "disable", "anna.novakova"]).expect(0);
    assert_eq!(
        logins(&s, &[]),
        ["anna.novakova", "jiri.dvorak", "max.weber", "zed"]
    );
    assert_eq!(logins(&s, &["--status", "disabled"]), ["anna.novakova"]);
    assert_eq!(logins(&s, &["--origin", "manual"]), ["zed"]);
    assert_eq!(
        logins(&s, &["--account", "acme"]),
        ["anna.novakova", "jiri.dvorak", "zed"]
    );
    // An account by its name (the config's, or a source's), any case.
    assert_eq!(
        logins(&s, &["--account", "acme s.r.o."]),
        ["anna.novakova", "jiri.dvorak", "zed"]
    );
    assert_eq!(logins(&s, &["--account", "VENDOR"]), ["max.weber"]);
    refused(
        s.run(&["users", "list", "--account", "Initech"]),
        1,
        "no account with id or name",
    );
    // A licence key, by attribute and by search (any case, a substring).
    assert_eq!(
        logins(&s, &["--attribute", "licence_key=LIC-2002"]),
        ["anna.novakova"]
    );
    assert_eq!(logins(&s, &["--search", "lic-100"]), ["jiri.dvorak"]);
    assert_eq!(
        logins(&s, &["--search", "lic", "--status", "active"]),
        ["jiri.dvorak"]
    );
    // Pages.
    assert_eq!(
        logins(&s, &["--limit", "2"]),
        ["anna.novakova", "jiri.dvorak"]
    );
    assert_eq!(
        logins(&s, &["--limit", "2", "--offset", "2"]),
        ["max.weber", "zed"]
    );
    assert_eq!(logins(&s, &["--offset", "9"]), Vec::<String>::new());
    let csv = s
        .run(&["users", "list", "--format", "csv", "--offset", "3"])
        .expect(0)
        .stdout;
    assert_eq!(csv.lines().count(), 2, "{csv}");
    // The table fits the terminal, cutting long cells with an ellipsis.
    let table = s
        .run_with_env(&["users", "list"], &[("COLUMNS", "60")])
        .expect(0)
        .stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("LOGIN"), "{table}");
    for l in &lines {
        assert!(l.chars().count() <= 60, "{l:?} is wider than 60\n{table}");
    }
    assert!(table.contains('…'), "{table}");
    assert_eq!(lines.last(), Some(&"4 users"));
}

#[test]
fn show_lists_mail_and_the_latest_entries_and_history_the_whole_journal() {
    let s = synced(ROWS);
    for i in 0..25 {
        admin(
            &s,
            &[
                "users",
                "edit",
                "max.weber",
                "--attribute",
                &format!("n={i}"),
            ],
        )
        .expect(0);
    }
    let u = show(&s, "max.weber");
    assert_eq!(u["history"].as_array().unwrap().len(), 20);
    assert_eq!(u["history_total"], 26);
    assert_eq!(u["mail"][0]["kind"], "welcome");
    assert_eq!(u["mail"][0]["state"], "queued");
    let human = admin(&s, &["users", "show", "max.weber"]).expect(0).stdout;
    assert!(human.contains("mail:\n  "), "{human}");
    assert!(
        human.contains("6 earlier: liaison users history max.weber"),
        "{human}"
    );
    let h = history(&s, "max.weber");
    assert_eq!(h.len(), 26);
    assert_eq!(
        (h[0]["action"].as_str(), h[0]["actor"].as_str()),
        (Some("create"), Some("sync:partners"))
    );
    assert_eq!(h[25]["new"], serde_json::json!({"n": "24"}));
    let text = admin(&s, &["users", "history", "max.weber"])
        .expect(0)
        .stdout;
    assert!(text.contains("by alice"), "{text}");
    assert!(text.ends_with("26 entries\n"), "{text}");
}

#[test]
fn every_admin_write_is_journaled_with_its_actor() {
    let s = synced(ROWS);
    let run = |args: &[&str]| s.run_with_env(args, &[("USER", "carol")]).expect(0);
    run(&["users", "add", "--name", "Ida", "--email", "ida@x.example"]);
    run(&[
        "users",
        "edit",
        "ida",
        "--grant",
        "g",
        "--actor",
        "ticket-4711",
    ]);
    run(&["users", "disable", "ida"]);
    run(&["users", "enable", "ida", "--actor", "dave"]);
    run(&["users", "unlink", "jiri.dvorak", "--account", "acme"]);
    let actors = |login: &str| -> Vec<(String, String)> {
        history(&s, login)
            .iter()
            .map(|h| {
                (
                    h["action"].as_str().unwrap().to_owned(),
                    h["actor"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        actors("ida"),
        pairs(&[
            ("create", "carol"),
            ("update", "ticket-4711"),
            ("disable", "carol"),
            ("enable", "dave")
        ])
    );
    assert_eq!(
        actors("jiri.dvorak"),
        pairs(&[
            ("create", "sync:partners"),
            ("unlink", "carol"),
            ("disable", "carol")
        ])
    );
    refused(
        s.run(&["users", "disable", "ida", "--actor", " "]),
        2,
        "--actor must not be empty",
    );
}

#[test]
fn a_contact_the_mapping_leaves_out_or_linked_elsewhere_is_refused() {
    let s = Sandbox::new(&csv_config(
        "partners.csv",
        &[
            "map:",
            "  contact_id: \"{{ contact_id }}\"",
            "  name: \"{{ name }}\"",
            "  email: \"{{ email }}\"",
            "when: \"portal == 'yes'\"",
        ],
        &SECTIONS,
    ));
    s.write(
        "partners.csv",
        "contact_id,name,email,portal\nc1,Ann,ann@x.example,yes\nc2,Bob,bob@x.example,no\n",
    );
    s.sync(0);
    refused(
        admin(&s, &["users", "add", "--from-contact", "c2"]),
        1,
        "leaves it out",
    );
    admin(
        &s,
        &["users", "add", "--name", "Cy", "--email", "cy@x.example"],
    )
    .expect(0);
    refused(
        admin(
            &s,
            &["users", "edit", "cy", "--link-contact", "partners:c1"],
        ),
        1,
        "contact partners:c1 is already linked to user \"ann\"",
    );
    refused(
        admin(&s, &["users", "edit", "cy", "--link-contact", "ldap:c1"]),
        1,
        "no source \"ldap\"",
    );
    refused(
        admin(&s, &["users", "edit", "cy", "--unlink-contact", "c1"]),
        1,
        "contact c1 is not linked to user \"cy\"",
    );
    assert_eq!(logins(&s, &[]), ["ann", "cy"], "nothing written");
}
