//! LDAP changes reads through the binary against a real slapd: RFC 4533
//! content synchronisation (delete phases from syncprov's session log, a
//! present phase, an expired cookie) and the modifyTimestamp fallback.

use serde_json::json;

use crate::common::slapd::{fixed_uuids, generated, person, uuid_of, Slapd, SlapdOptions, PEOPLE};
use crate::common::Sandbox;
use crate::ldap_source::{config, run, sync, three, user, users};

fn dn(uid: &str) -> String {
    format!("uid={uid},{PEOPLE}")
}

/// (status, contacts) of the user with `email`.
fn state(s: &Sandbox, email: &str) -> (String, serde_json::Value) {
    let u = user(s, email);
    (
        u["status"].as_str().unwrap().to_owned(),
        u["contacts"].clone(),
    )
}

/// `sync --once` logging the connector's decisions (exit 0).
fn logged_sync(s: &Sandbox) -> crate::common::Run {
    s.run_with_env(
        &["sync", "--once", "--format", "json"],
        &[
            ("LDAP_PASSWORD", crate::common::slapd::READER_PASSWORD),
            ("RUST_LOG", "liaison_plugin_ldap=info"),
        ],
    )
    .expect(0)
}

#[test]
fn a_sync_changes_read_applies_adds_modifications_and_deletions() {
    let slapd = Slapd::with(&three());
    let s = Sandbox::new(&config(&slapd.url(), &[]));
    assert_eq!(sync(&s, 0)["created"], 3);
    let bob = slapd.entry_uuid(&dn("bob"));

    slapd.replace(&dn("ann"), "cn", &["Ann Lee-Smith"]);
    slapd.delete(&dn("bob"));
    slapd.add(&person("carl", "Carl Cox", "carl@cox.example", "Cox Ltd"));
    let out = sync(&s, 0);
    assert_eq!(out["read"]["mode"], "changes", "{out}");
    assert_eq!(out["read"]["deletions"], 1, "{out}");
    assert_eq!(
        (&out["created"], &out["updated"], &out["disabled"]),
        (&json!(1), &json!(1), &json!(1)),
        "{out}"
    );
    assert_eq!(user(&s, "ann@acme.example")["title"], "Ann Lee-Smith");
    assert_eq!(
        state(&s, "bob@acme.example"),
        ("disabled".to_owned(), json!([]))
    );
    assert_eq!(user(&s, "carl@cox.example")["status"], "active");
    assert_eq!(user(&s, "jiri@dvorak.example")["status"], "active");
    // Bob comes back under the same entryUUID? A new entry has a new one;
    // adding him again creates a new contact, and his user comes back.
    slapd.add(&person("bob", "Bob Berg", "bob@acme.example", "ACME Corp"));
    let out = sync(&s, 0);
    assert_eq!(out["enabled"], 1, "{out}");
    let (status, contacts) = state(&s, "bob@acme.example");
    assert_eq!(status, "active");
    assert_ne!(contacts, json!([bob]), "a new entry, a new anchor");
    // Nothing changed: nothing read, nothing written.
    let out = sync(&s, 0);
    assert_eq!(out["read"]["mode"], "changes");
    assert_eq!((&out["created"], &out["updated"]), (&json!(0), &json!(0)));
}

#[test]
fn a_delete_phase_bigger_than_the_bridge_streams_every_change_and_its_cookie() {
    // A deletion first, so the server's delete phase is known at once and
    // the changed entries go to the host as they come: more of them than
    // the bridge to the host holds, so the reader waits for the host with
    // the connection held (it is read only at the reader's pace).
    const N: usize = 3000;
    let options = SlapdOptions {
        sessionlog_size: 10_000,
        ..SlapdOptions::default()
    };
    let slapd = Slapd::start(options, &generated(N));
    let s = Sandbox::new(&config(&slapd.url(), &[]));
    assert_eq!(sync(&s, 0)["created"], N);
    let mut ldif = format!("dn: {}\nchangetype: delete\n\n", dn("user000001"));
    for i in 2..=N {
        ldif.push_str(&format!(
            "dn: {}\nchangetype: modify\nreplace: cn\ncn: Renamed {i}\n\n",
            dn(&format!("user{i:06}"))
        ));
    }
    slapd.modify(&ldif);
    let debug = [
        ("LDAP_PASSWORD", crate::common::slapd::READER_PASSWORD),
        ("RUST_LOG", "liaison=debug"),
    ];
    let run = s
        .run_with_env(&["sync", "--once", "--format", "json"], &debug)
        .expect(0);
    let out = run.json();
    assert_eq!(out["read"]["mode"], "changes", "{out}");
    assert_eq!(out["read"]["deletions"], 1, "{out}");
    assert_eq!(
        (&out["updated"], &out["disabled"], &out["created"]),
        (&json!(N - 1), &json!(1), &json!(0)),
        "{out}"
    );
    assert!(
        run.stderr.contains(&format!("source read rows={}", N - 1)),
        "{}",
        run.stderr
    );
    let last = users(&s)
        .into_iter()
        .find(|u| u["title"] == format!("Renamed {N}"));
    assert!(last.is_some(), "the last change arrived");
    // The cookie came after all of them: the next read has nothing to read.
    let run = s
        .run_with_env(&["sync", "--once", "--format", "json"], &debug)
        .expect(0);
    assert_eq!(run.json()["read"]["mode"], "changes");
    assert!(run.stderr.contains("source read rows=0 "), "{}", run.stderr);
}

#[test]
fn a_renamed_or_moved_entry_keeps_its_user() {
    let ldif = format!(
        "{}dn: ou=former,{PEOPLE}\nobjectClass: organizationalUnit\nou: former\n\n",
        three()
    );
    let slapd = Slapd::with(&ldif);
    let s = Sandbox::new(&config(
        &slapd.url(),
        &[
            "map:",
            "  name: \"{{ cn }}\"",
            "  email: \"{{ mail | lower }}\"",
            "  description: \"{{ dn }}\"",
        ],
    ));
    sync(&s, 0);
    let before = user(&s, "ann@acme.example");
    slapd.rename(&dn("ann"), "uid=ann.lee", None);
    let out = sync(&s, 0);
    assert_eq!(out["read"]["mode"], "changes", "{out}");
    assert_eq!(
        (&out["updated"], &out["created"], &out["disabled"]),
        (&json!(1), &json!(0), &json!(0)),
        "{out}"
    );
    let after = user(&s, "ann@acme.example");
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["login"], before["login"]);
    assert_eq!(
        after["contacts"], before["contacts"],
        "the entryUUID, not the DN"
    );
    assert_eq!(after["description"], dn("ann.lee"));
    // Moved to another branch under the base: still the same user.
    slapd.rename(
        &dn("ann.lee"),
        "uid=ann.lee",
        Some(&format!("ou=former,{PEOPLE}")),
    );
    sync(&s, 0);
    let moved = user(&s, "ann@acme.example");
    assert_eq!(moved["id"], before["id"]);
    assert_eq!(
        moved["description"],
        format!("uid=ann.lee,ou=former,{PEOPLE}")
    );
    assert_eq!(users(&s).len(), 3);
}

#[test]
fn an_expired_cookie_reads_in_full_by_itself() {
    let data = fixed_uuids(&three());
    let mut slapd = Slapd::with(&data);
    let s = Sandbox::new(&config(&slapd.url(), &[]));
    sync(&s, 0);
    assert_eq!(
        user(&s, "bob@acme.example")["contacts"],
        json!([uuid_of("bob")])
    );
    // The server's database is rebuilt: every entry has a newer CSN than the
    // stored cookie and the session log is gone, so the cookie is stale
    // (syncprov-reloadhint TRUE: e-syncRefreshRequired). Bob is gone and
    // Jiří renamed in the new data.
    let rebuilt = fixed_uuids(
        &[
            person("ann", "Ann Lee", "Ann@Acme.example", "ACME Corp"),
            person(
                "jiri",
                "Jiří Dvořák-Novák",
                "jiri@dvorak.example",
                "Dvořák & Syn",
            ),
        ]
        .concat(),
    );
    // slapadd stamps entries with CSNs of its start's second: rebuilt in the
    // same second as the cookie, some would look older than it (slapd then
    // answers with a present phase, tested below).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    slapd.reload_with(&rebuilt);
    let run = logged_sync(&s);
    assert!(
        run.stderr.contains("e-syncRefreshRequired (4096)"),
        "{}",
        run.stderr
    );
    let out = run.json();
    assert_eq!(out["status"], "applied", "{out}");
    assert_eq!(
        out["read"]["mode"], "full",
        "the connector fell back: {out}"
    );
    assert_eq!(
        (&out["updated"], &out["disabled"]),
        (&json!(1), &json!(1)),
        "{out}"
    );
    assert_eq!(
        user(&s, "jiri@dvorak.example")["title"],
        "Jiří Dvořák-Novák"
    );
    assert_eq!(user(&s, "bob@acme.example")["status"], "disabled");
    // The new cookie works: changes again.
    slapd.replace(&dn("ann"), "cn", &["Ann L."]);
    let out = sync(&s, 0);
    assert_eq!(out["read"]["mode"], "changes", "{out}");
    assert_eq!(out["updated"], 1, "{out}");
}

#[test]
fn a_present_phase_is_read_in_full_so_deletions_are_not_missed() {
    // Without a session log syncprov answers a cookie with a present phase:
    // the entries still there, not those that left.
    let options = SlapdOptions {
        sessionlog: false,
        ..SlapdOptions::default()
    };
    let slapd = Slapd::start(options, &three());
    let s = Sandbox::new(&config(&slapd.url(), &[]));
    sync(&s, 0);
    slapd.delete(&dn("bob"));
    slapd.replace(&dn("ann"), "cn", &["Ann Lee-Smith"]);
    let run = logged_sync(&s);
    assert!(run.stderr.contains("present phase"), "{}", run.stderr);
    let out = run.json();
    assert_eq!(out["read"]["mode"], "full", "{out}");
    assert_eq!(
        (&out["updated"], &out["disabled"]),
        (&json!(1), &json!(1)),
        "{out}"
    );
    assert_eq!(user(&s, "bob@acme.example")["status"], "disabled");
}

#[test]
fn without_syncprov_changes_come_by_modify_timestamp_and_deletions_with_full_reads() {
    let options = SlapdOptions {
        syncprov: false,
        ..SlapdOptions::default()
    };
    let slapd = Slapd::start(options, &three());
    let s = Sandbox::new(&config(&slapd.url(), &[]));
    let first = sync(&s, 0);
    assert_eq!(first["read"]["mode"], "full");
    slapd.replace(&dn("ann"), "cn", &["Ann Lee-Smith"]);
    slapd.add(&person("carl", "Carl Cox", "carl@cox.example", "Cox Ltd"));
    slapd.delete(&dn("bob"));
    let out = sync(&s, 0);
    assert_eq!(out["read"]["mode"], "changes", "{out}");
    assert_eq!(
        (&out["created"], &out["updated"], &out["disabled"]),
        (&json!(1), &json!(1), &json!(0)),
        "{out}"
    );
    assert_eq!(user(&s, "ann@acme.example")["title"], "Ann Lee-Smith");
    assert_eq!(
        user(&s, "bob@acme.example")["status"],
        "active",
        "deletions wait for a full read"
    );
    // The periodic (here: forced) full read finds Bob gone.
    let out = run(&s, &["sync", "--once", "--full", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(out["disabled"], 1, "{out}");
    assert_eq!(user(&s, "bob@acme.example")["status"], "disabled");
    // change_detection: sync on this server is an error naming the overlay.
    s.write(
        "liaison.yaml",
        &config(&slapd.url(), &["change_detection: sync"]),
    );
    let out = sync(&s, 1);
    assert_eq!(out["failure_kind"], "source_invalid", "{out}");
    assert!(
        out["failure"].as_str().unwrap().contains("syncprov"),
        "{out}"
    );
}

#[test]
fn the_daemon_reads_an_ldap_source_on_its_runtime_and_then_its_changes() {
    let slapd = Slapd::with(&three());
    let s = Sandbox::new(&config(&slapd.url(), &["schedule: \"*/2 * * * * *\""]));
    let mut daemon = crate::common::daemon::Daemon::start(
        &s,
        &[
            ("LDAP_PASSWORD", crate::common::slapd::READER_PASSWORD),
            ("RUST_LOG", "liaison=info"),
        ],
    );
    daemon.wait_for_log(&["run finished", "created=3"], 1);
    slapd.replace(&dn("bob"), "cn", &["Robert Berg"]);
    daemon.wait_for_log(&["run finished", "updated=1"], 1);
    daemon.signal("TERM");
    assert_eq!(
        daemon.wait_exit(crate::common::daemon::PATIENCE).code(),
        Some(0)
    );
    assert_eq!(user(&s, "bob@acme.example")["title"], "Robert Berg");
}
