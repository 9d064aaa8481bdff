//! Unit and property tests of the pure reconcile core, against the in-memory
//! model of `apply` (`testing::Model`) that follows the same rules as the SQL
//! stores.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::testing::{arb_history, rec, Model, Row, Step, DAY, DELETE_AFTER_DAYS, SOURCES};
use super::*;
use crate::model::{
    Attributes, ContactFields, ContactRecord, DisabledBy, Email, ExternalUser, Flags, Login,
    Origin, Status, UserId,
};

fn input(source: &str, records: Vec<ContactFields>) -> SourceInput {
    SourceInput {
        source: source.into(),
        records: records.into_iter().map(ContactRecord::new).collect(),
        unreadable: Default::default(),
    }
}

fn opts(now_ms: i64) -> PlanOptions {
    PlanOptions {
        source_order: vec!["crm".into(), "csv".into()],
        default_locale: "en".into(),
        delete_after_ms: Some(30 * DAY),
        now_ms,
    }
}

fn no_limits() -> GuardLimits {
    GuardLimits {
        max_deprovision: u32::MAX,
        max_deprovision_ratio: crate::config::Ratio::parse("1.0").unwrap(),
        active_before: 0,
        source_empty: false,
        allow_mass_deprovision: true,
    }
}

fn run(state: &mut Model, source: &str, records: Vec<ContactFields>, now_ms: i64) -> Plan {
    let mut p = plan(input(source, records), state, &opts(now_ms));
    guard(&mut p, &no_limits());
    state.apply(&p, now_ms);
    p
}

/// An active user an admin made, not fed by any source.
fn manual_user(id: i64, login: &str, email: &str) -> ExternalUser {
    ExternalUser {
        id: UserId(id),
        login: Login::parse(login).unwrap(),
        title: login.to_uppercase(),
        description: None,
        email: Some(Email::parse(email).unwrap()),
        locale: "en".into(),
        status: Status::Active,
        disabled_by: None,
        disabled_at: None,
        origin: Origin::Manual,
        flags: Flags::default(),
        grants: vec![],
        attributes: Attributes::new(),
        admin_fields: Default::default(),
    }
}

fn user_by_login<'a>(state: &'a State, login: &str) -> &'a ExternalUser {
    state
        .users
        .values()
        .find(|u| u.login.as_str() == login)
        .unwrap()
}

#[test]
fn creates_users_with_derived_logins_in_contact_id_order() {
    let mut state = Model::default();
    state.taken_logins.insert("ann.smith".into());
    let p = run(
        &mut state,
        "csv",
        vec![
            rec("c2", "Jiří Dvořák", "jiri2@example.com"),
            rec("c1", "Jiří Dvořák", "jiri1@example.com"),
            rec("c3", "Ann Smith", "ann@example.com"),
        ],
        0,
    );
    let logins: Vec<(&str, &str)> = p
        .creates
        .iter()
        .map(|n| (p.contacts_of(n)[0].contact_id(), n.login.as_str()))
        .collect();
    assert_eq!(
        logins,
        [
            ("c1", "jiri.dvorak"),
            ("c2", "jiri.dvorak2"),
            ("c3", "ann.smith2")
        ]
    );
    assert_eq!(p.counts().created, 3);
    assert!(
        plan(input("csv", vec![]), &state, &opts(0))
            .deprovisions
            .len()
            == 3
    );
}

#[test]
fn rows_sharing_an_email_become_one_user_with_least_privilege() {
    let mut a = rec("b-2", "Second Row", "Ann@Example.com");
    a.account_tickets = Some(true);
    a.account_contacts = Some(true);
    a.grants = vec!["sales".into(), "support".into()];
    a.attributes.insert("licence".into(), "L-2".into());
    a.attributes.insert("tier".into(), "gold".into());
    let mut b = rec("a-1", "First Row", "ann@example.com");
    b.account_tickets = Some(true);
    b.grants = vec!["support".into(), "billing".into()];
    b.attributes.insert("licence".into(), "L-1".into());
    b.locale = Some("cs".into());
    let mut state = Model::default();
    let p = run(&mut state, "csv", vec![a, b], 0);
    assert_eq!(p.creates.len(), 1);
    let n = &p.creates[0];
    let fields = p.fields_of(n).unwrap();
    assert_eq!(n.contacts.len(), 2);
    assert_eq!(fields.title, "First Row");
    assert_eq!(fields.email.as_str(), "ann@example.com");
    assert_eq!(fields.locale, "cs");
    assert!(fields.flags.account_tickets);
    assert!(!fields.flags.account_contacts, "one row did not say so");
    assert_eq!(fields.grants, ["billing", "sales", "support"]);
    assert_eq!(fields.attributes.get("licence"), Some("L-1"));
    assert_eq!(fields.attributes.get("tier"), Some("gold"));
    assert_eq!(n.login.as_str(), "first.row");
}

#[test]
fn second_run_on_same_input_is_empty() {
    let mut state = Model::default();
    let records = vec![rec("1", "A B", "a@x.cz"), rec("2", "C D", "c@x.cz")];
    run(&mut state, "csv", records.clone(), 0);
    let p = plan(input("csv", records), &state, &opts(0));
    assert!(p.is_empty(), "{p:#?}");
    assert_eq!(p.counts().unchanged, 2);
}

#[test]
fn field_change_is_an_update_with_old_and_new() {
    let mut state = Model::default();
    run(
        &mut state,
        "csv",
        vec![rec("1", "Ann Smith", "ann@x.cz")],
        0,
    );
    let mut changed = rec("1", "Ann Smith-Jones", "ann@x.cz");
    changed.phone = Some("+420 1".into());
    let p = run(&mut state, "csv", vec![changed], 0);
    assert_eq!(p.updates.len(), 1);
    let ch = &p.updates[0].changes;
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].field, "title");
    assert_eq!(ch[0].old, "Ann Smith");
    assert_eq!(ch[0].new, "Ann Smith-Jones");
    assert_eq!(p.contacts.len(), 1, "the phone changed on the contact");
    assert_eq!(user_by_login(&state, "ann.smith").title, "Ann Smith-Jones");
    assert_eq!(p.counts().updated, 1);
}

#[test]
fn disappearance_disables_then_reappearance_enables() {
    let mut state = Model::default();
    let ann = rec("1", "Ann Smith", "ann@x.cz");
    let bob = rec("2", "Bob Brown", "bob@x.cz");
    run(&mut state, "csv", vec![ann.clone(), bob.clone()], 0);
    let p = run(&mut state, "csv", vec![bob.clone()], DAY);
    assert_eq!(p.deprovisions.len(), 1);
    assert_eq!(p.deprovisions[0].action, DeprovisionAction::Disable);
    assert_eq!(p.deprovisions[0].unlinks, ["1"]);
    let u = user_by_login(&state, "ann.smith");
    assert_eq!(u.status, Status::Disabled);
    assert_eq!(u.disabled_by, Some(DisabledBy::Sync));

    let p = run(&mut state, "csv", vec![ann, bob], 2 * DAY);
    assert_eq!(p.enables.len(), 1);
    assert_eq!(p.counts().enabled, 1);
    assert_eq!(user_by_login(&state, "ann.smith").status, Status::Active);
    assert!(plan(input("csv", vec![]), &state, &opts(0))
        .creates
        .is_empty());
}

#[test]
fn admin_disable_is_never_undone_by_sync() {
    let mut state = Model::default();
    let ann = rec("1", "Ann Smith", "ann@x.cz");
    run(&mut state, "csv", vec![ann.clone()], 0);
    for u in state.users.values_mut() {
        u.status = Status::Disabled;
        u.disabled_by = Some(DisabledBy::Admin);
    }
    let p = run(&mut state, "csv", vec![ann], DAY);
    assert!(p.enables.is_empty());
    assert!(p.is_empty());
    assert_eq!(user_by_login(&state, "ann.smith").status, Status::Disabled);
}

#[test]
fn delete_after_grace_period_with_injected_clock() {
    let mut state = Model::default();
    run(
        &mut state,
        "csv",
        vec![rec("1", "Ann Smith", "ann@x.cz")],
        0,
    );
    run(&mut state, "csv", vec![], DAY);
    let early = run(&mut state, "csv", vec![], 30 * DAY);
    assert!(early.deprovisions.is_empty(), "29 days is within the grace");
    let late = run(&mut state, "csv", vec![], 31 * DAY);
    assert_eq!(late.deprovisions.len(), 1);
    assert_eq!(late.deprovisions[0].action, DeprovisionAction::Delete);
    assert!(state.users.is_empty());
    assert!(
        state.taken_logins.contains("ann.smith"),
        "logins are never reused"
    );
    let again = run(
        &mut state,
        "csv",
        vec![rec("9", "Ann Smith", "ann@x.cz")],
        32 * DAY,
    );
    assert_eq!(again.creates[0].login.as_str(), "ann.smith2");
}

#[test]
fn correlates_by_email_case_insensitively_and_anchor_wins() {
    let mut state = Model::default();
    state
        .users
        .insert(UserId(7), manual_user(7, "ann", "ANN@x.cz"));
    let p = run(
        &mut state,
        "csv",
        vec![rec("1", "Ann Smith", "ann@x.cz")],
        0,
    );
    assert!(p.creates.is_empty());
    assert!(matches!(
        &p.contacts[0],
        ContactChange::Upsert {
            user: UserId(7),
            linked_now: true,
            ..
        }
    ));
    // The anchor now wins over the e-mail: a new address follows the contact.
    let p = run(
        &mut state,
        "csv",
        vec![rec("1", "Ann Smith", "ann.smith@x.cz")],
        0,
    );
    assert!(p.creates.is_empty());
    assert_eq!(
        state.users[&UserId(7)].email.as_ref().unwrap().as_str(),
        "ann.smith@x.cz"
    );
    // A manual user is never disabled by sync.
    let p = run(&mut state, "csv", vec![], 0);
    assert!(p.deprovisions.is_empty());
    assert_eq!(state.users[&UserId(7)].status, Status::Active);
}

#[test]
fn ambiguous_email_is_a_conflict_not_a_guess() {
    let mut state = Model::default();
    for (id, login) in [(1, "a1"), (2, "a2")] {
        state
            .users
            .insert(UserId(id), manual_user(id, login, "a@x.cz"));
    }
    let p = run(&mut state, "csv", vec![rec("c", "A", "a@x.cz")], 0);
    assert!(p.is_empty());
    assert_eq!(p.conflicts.len(), 1);
    assert!(
        p.conflicts[0].message.contains("matches 2 users (a1, a2)"),
        "{}",
        p.conflicts[0].message
    );
}

#[test]
fn email_change_onto_another_users_address_is_a_conflict() {
    let mut state = Model::default();
    run(
        &mut state,
        "csv",
        vec![rec("1", "Ann", "ann@x.cz"), rec("2", "Bob", "bob@x.cz")],
        0,
    );
    // Bob's address appears on a crm contact of another user, and ann's csv row
    // now claims it too: both users would share it.
    let p = run(
        &mut state,
        "csv",
        vec![rec("1", "Ann", "ann@x.cz"), rec("2", "Bob", "ann@x.cz")],
        0,
    );
    assert_eq!(p.conflicts.len(), 2, "{p:#?}");
    assert!(p.is_empty());
    assert_eq!(state.users.len(), 2);
}

#[test]
fn unreadable_rows_keep_their_links() {
    let mut state = Model::default();
    run(
        &mut state,
        "csv",
        vec![rec("1", "Ann", "ann@x.cz"), rec("2", "Bob", "bob@x.cz")],
        0,
    );
    let mut inp = input("csv", vec![rec("2", "Bob", "bob@x.cz")]);
    inp.unreadable.insert("1".into());
    let p = plan(inp, &state, &opts(0));
    assert!(p.is_empty(), "{p:#?}");
}

#[test]
fn requested_login_is_used_or_refused_when_taken() {
    let mut state = Model::default();
    state.taken_logins.insert("partner".into());
    let mut a = rec("1", "Ann", "ann@x.cz");
    a.login = Some(Login::parse("ann-login").unwrap());
    let mut b = rec("2", "Bob", "bob@x.cz");
    b.login = Some(Login::parse("partner").unwrap());
    let mut c = rec("3", "Ann Login", "c@x.cz");
    c.login = None;
    let p = run(&mut state, "csv", vec![a, b, c], 0);
    let logins: Vec<&str> = p.creates.iter().map(|n| n.login.as_str()).collect();
    assert_eq!(logins, ["ann-login", "ann.login"]);
    assert_eq!(p.conflicts.len(), 1);
    assert_eq!(p.conflicts[0].contact_id, "2");
}

#[test]
fn multi_source_precedence_follows_config_order() {
    let mut state = Model::default();
    run(&mut state, "csv", vec![rec("x", "From CSV", "ann@x.cz")], 0);
    let p = run(&mut state, "crm", vec![rec("y", "From CRM", "ann@x.cz")], 0);
    assert!(p.creates.is_empty());
    assert_eq!(
        p.updates[0].fields.title, "From CRM",
        "crm is first in source_order"
    );
    // The csv contact leaving does not disable: the crm contact remains.
    let p = run(&mut state, "csv", vec![], 0);
    assert!(p.deprovisions.is_empty());
    assert_eq!(state.users.values().next().unwrap().status, Status::Active);
}

#[test]
fn guard_holds_mass_deprovision_but_not_creations() {
    let mut state = Model::default();
    let all: Vec<_> = (0..10)
        .map(|i| rec(&i.to_string(), "N", &format!("n{i}@x.cz")))
        .collect();
    run(&mut state, "csv", all, 0);
    let mut p = plan(
        input(
            "csv",
            vec![rec("new", "New", "new@x.cz"), rec("0", "N", "n0@x.cz")],
        ),
        &state,
        &opts(0),
    );
    let limits = GuardLimits {
        max_deprovision: 50,
        max_deprovision_ratio: crate::config::Ratio::parse("0.10").unwrap(),
        active_before: 10,
        source_empty: false,
        allow_mass_deprovision: false,
    };
    assert!(guard(&mut p, &limits));
    assert!(p.deprovisions.is_empty());
    assert_eq!(p.held.len(), 9);
    assert!(
        p.held[0].reason.contains("max_deprovision_ratio"),
        "{}",
        p.held[0].reason
    );
    assert_eq!(p.creates.len(), 1, "new partners still get access");

    let mut p = plan(input("csv", vec![]), &state, &opts(0));
    let abs = GuardLimits {
        max_deprovision: 5,
        max_deprovision_ratio: crate::config::Ratio::parse("1.0").unwrap(),
        ..limits
    };
    assert!(guard(&mut p, &abs));
    assert!(p.held[0].reason.contains("max_deprovision = 5"));

    let mut p = plan(input("csv", vec![]), &state, &opts(0));
    let empty = GuardLimits {
        max_deprovision: 100,
        max_deprovision_ratio: crate::config::Ratio::parse("1.0").unwrap(),
        source_empty: true,
        ..limits
    };
    assert!(guard(&mut p, &empty));
    assert!(p.held[0].reason.contains("returned no records"));

    let mut p = plan(input("csv", vec![]), &state, &opts(0));
    assert!(!guard(
        &mut p,
        &GuardLimits {
            allow_mass_deprovision: true,
            ..empty
        }
    ));
    assert_eq!(p.deprovisions.len(), 10);

    let mut p = plan(
        input(
            "csv",
            (1..10)
                .map(|i| rec(&i.to_string(), "N", &format!("n{i}@x.cz")))
                .collect(),
        ),
        &state,
        &opts(0),
    );
    assert!(!guard(&mut p, &limits), "1 of 10 is exactly 10 %: allowed");
}

#[test]
fn a_row_that_maps_the_same_only_renews_its_digest() {
    let mut state = Model::default();
    let mut a = rec("c1", "Ann Smith", "ann@example.com");
    a.fingerprint = 1;
    run(&mut state, "csv", vec![a.clone()], 0);
    // Another column of the row changed: same contact, new digest.
    a.fingerprint = 2;
    let p = plan(input("csv", vec![a.clone()]), &state, &opts(0));
    assert!(p.is_empty(), "{p:#?}");
    assert_eq!(p.refreshed, [("c1".to_owned(), 2)]);
    assert_eq!(p.counts().updated, 0);
    assert_eq!(p.unchanged, 1);
    // A real change still is one.
    a.fingerprint = 3;
    a.phone = Some("+420 1".into());
    let p = plan(input("csv", vec![a]), &state, &opts(0));
    assert_eq!(p.contacts.len(), 1);
    assert!(p.refreshed.is_empty());
}

// ---- regressions: the grace period and logins -------------------------------

#[test]
fn a_contact_back_after_the_grace_period_enables_its_user_instead_of_deleting_it() {
    let mut state = Model::default();
    let ann = rec("1", "Ann Smith", "ann@x.cz");
    run(&mut state, "csv", vec![ann.clone()], 0);
    run(&mut state, "csv", vec![], DAY);
    // 39 days after the disable, 30 days of grace: expired, but ann is back.
    let p = run(&mut state, "csv", vec![ann.clone()], 40 * DAY);
    assert_eq!(
        p.deprovisions,
        [],
        "a present contact's user is never deleted"
    );
    assert_eq!(p.counts().enabled, 1);
    let u = user_by_login(&state, "ann.smith");
    assert_eq!(u.status, Status::Active);
    let p = run(&mut state, "csv", vec![ann], 41 * DAY);
    assert!(p.is_empty(), "{p:#?}");
}

#[test]
fn a_new_contact_with_an_expired_users_email_enables_that_user() {
    let mut state = Model::default();
    run(
        &mut state,
        "csv",
        vec![rec("1", "Ann Smith", "ann@x.cz")],
        0,
    );
    run(&mut state, "csv", vec![], DAY);
    let p = run(
        &mut state,
        "csv",
        vec![rec("9", "Ann Smith", "ann@x.cz")],
        40 * DAY,
    );
    assert_eq!(p.deprovisions, []);
    assert_eq!(p.creates, []);
    assert_eq!(p.counts().enabled, 1);
    assert_eq!(user_by_login(&state, "ann.smith").status, Status::Active);
}

/// Two sync users of one source, both disabled on day 1; on day 40 (both
/// expired) the first's contact comes back with the second's e-mail.
fn expired_pair_and_the_first_back_with_the_seconds_email() -> (Model, Plan) {
    let mut state = Model::default();
    run(
        &mut state,
        "csv",
        vec![
            rec("1", "Ann Smith", "ann@x.cz"),
            rec("2", "Ann Smith", "ann2@x.cz"),
        ],
        0,
    );
    run(&mut state, "csv", vec![], DAY);
    let p = run(
        &mut state,
        "csv",
        vec![rec("1", "Ann Smith", "ann2@x.cz")],
        40 * DAY,
    );
    (state, p)
}

#[test]
fn a_user_whose_contact_is_present_but_in_conflict_is_not_deleted() {
    let (state, p) = expired_pair_and_the_first_back_with_the_seconds_email();
    let deleted: Vec<&str> = p
        .deprovisions
        .iter()
        .filter(|d| d.action == DeprovisionAction::Delete)
        .map(|d| d.login.as_str())
        .collect();
    assert!(!deleted.contains(&"ann.smith"), "{p:#?}");
    let anchor = state.anchor("csv", "1").map(|a| a.user);
    assert_eq!(anchor, Some(user_by_login(&state, "ann.smith").id));
}

#[test]
fn a_second_run_after_expired_deletes_changes_nothing() {
    let (state, _) = expired_pair_and_the_first_back_with_the_seconds_email();
    let again = plan(
        input("csv", vec![rec("1", "Ann Smith", "ann2@x.cz")]),
        &state,
        &opts(40 * DAY),
    );
    assert!(again.is_empty(), "{again:#?}");
}

#[test]
fn losing_the_contact_that_gave_a_users_email_never_gives_two_users_one_email() {
    let mut state = Model::default();
    run(&mut state, "csv", vec![rec("0", "Ann Smith", "u0@x.cz")], 0);
    // crm wins: ann.smith keeps u0 although its csv contact now says u3.
    run(&mut state, "crm", vec![rec("2", "Ann Smith", "u0@x.cz")], 0);
    run(&mut state, "csv", vec![rec("0", "Bob", "u3@x.cz")], 0);
    // crm's c2 leaves (ann.smith now takes u3 from csv) and a new crm contact says u3.
    let p = run(&mut state, "crm", vec![rec("0", "Ann Smith", "u3@x.cz")], 0);
    let holders: Vec<&str> = state
        .users
        .values()
        .filter(|u| u.email.as_ref().is_some_and(|e| e.as_str() == "u3@x.cz"))
        .map(|u| u.login.as_str())
        .collect();
    assert!(holders.len() <= 1, "{holders:?} share u3@x.cz: {p:#?}");
}

/// `sync` loads logins only for the names of records without an anchor, so
/// the state of a contact that leaves its user's shared e-mail holds that
/// user but not its login among the taken ones: the planner must not hand
/// the login out again (it did, and the store failed every following run
/// with `UNIQUE constraint failed: users.login`).
#[test]
fn a_new_user_never_gets_the_login_of_a_user_in_the_state() {
    let mut full = Model::default();
    let one = rec("1", "Ann Smith", "ann@x.cz");
    run(
        &mut full,
        "csv",
        vec![one.clone(), rec("2", "Ann Smith", "ann@x.cz")],
        0,
    );
    let moved = vec![one, rec("2", "Ann Smith", "ann.smith@x.cz")];
    // What sync loads: both contacts' user, no taken logins.
    let mut partial = full.state.clone();
    partial.taken_logins.clear();
    for state in [&full.state, &partial] {
        let p = plan(input("csv", moved.clone()), state, &opts(DAY));
        let logins: Vec<&str> = p.creates.iter().map(|n| n.login.as_str()).collect();
        assert_eq!(logins, ["ann.smith2"], "{p:#?}");
    }
}

// ---- properties over random multi-source histories ----------------------------
//
// Each runs random histories (see `testing::History`) through the planner
// and the in-memory apply model, and asserts what must hold of the
// directory; a planner that plans nothing fails every one of them.

fn history_opts(now_ms: i64) -> PlanOptions {
    PlanOptions {
        source_order: SOURCES.iter().map(|s| s.to_string()).collect(),
        default_locale: "en".into(),
        delete_after_ms: Some(DELETE_AFTER_DAYS * DAY),
        now_ms,
    }
}

fn rows_input(source: &str, rows: &[Row]) -> SourceInput {
    input(source, rows.iter().map(Row::fields).collect())
}

/// Plans one run of `source` on `rows` and applies it (no guard limits).
fn run_rows(model: &mut Model, source: &str, rows: &[Row], now_ms: i64) -> Plan {
    let mut p = plan(rows_input(source, rows), model, &history_opts(now_ms));
    guard(&mut p, &no_limits());
    model.apply(&p, now_ms);
    p
}

/// Every row read in a run is linked to one active user, as read, or is
/// reported as a conflict by the run's plan `p`.
fn rows_are_linked_or_conflicts(
    after: &Model,
    source: &str,
    rows: &[Row],
    p: &Plan,
) -> Result<(), TestCaseError> {
    let conflicts: BTreeSet<&str> = p.conflicts.iter().map(|c| c.contact_id.as_str()).collect();
    for r in rows {
        let id = r.contact_id();
        if conflicts.contains(id.as_str()) {
            continue;
        }
        // The model keeps one anchor per (source, contact id).
        let anchor = after.anchor(source, &id);
        let Some(a) = anchor.filter(|a| a.linked) else {
            return Err(TestCaseError::fail(format!(
                "contact {source}:{id} was read but is neither linked nor a conflict (anchor {anchor:?})"
            )));
        };
        let user = after.users.get(&a.user);
        prop_assert!(
            user.is_some_and(|u| u.status == Status::Active),
            "contact {}:{} is linked to {:?}, not to an active user",
            source,
            id,
            user
        );
        prop_assert!(
            a.record.same_content(&ContactRecord::new(r.fields())),
            "contact {}:{} is stored as {:?}, not as read",
            source,
            id,
            a.record
        );
    }
    Ok(())
}

/// What must hold after one run of `source` on `rows`, planned as `p`, took
/// the directory from `before` to `after`; `ever` holds every login handed
/// out before this run.
fn run_keeps_invariants(
    before: &Model,
    after: &Model,
    source: &str,
    rows: &[Row],
    p: &Plan,
    ever: &BTreeSet<String>,
) -> Result<(), TestCaseError> {
    let mut logins = BTreeSet::new();
    let mut emails = std::collections::BTreeMap::new();
    for u in after.users.values() {
        prop_assert!(logins.insert(u.login.as_str()), "two users are {}", u.login);
        if let Some(e) = &u.email {
            if let Some(other) = emails.insert(e.normalized(), u.login.as_str()) {
                return Err(TestCaseError::fail(format!(
                    "users {other} and {} share the e-mail {}",
                    u.login,
                    e.as_str()
                )));
            }
        }
        if let Some(old) = before.users.get(&u.id) {
            prop_assert_eq!(&old.login, &u.login, "a login changed");
        }
    }
    for n in &p.creates {
        prop_assert!(
            !ever.contains(n.login.as_str()),
            "login {} is handed out again",
            n.login
        );
    }
    rows_are_linked_or_conflicts(after, source, rows, p)?;
    let linked = after.linked_contacts();
    for u in after.users.values() {
        if u.origin == Origin::Sync && u.status == Status::Active {
            prop_assert!(
                linked.contains_key(&u.id),
                "user {} is active without a linked contact",
                u.login
            );
        }
    }
    for d in &p.deprovisions {
        if d.action != DeprovisionAction::Delete {
            continue;
        }
        let email = before.users.get(&d.user).and_then(|u| u.email.clone());
        for r in rows {
            let anchor = before.anchor(source, &r.contact_id());
            prop_assert!(
                anchor.is_none_or(|a| a.user != d.user),
                "user {} is deleted although its contact {}:{} is present in this run",
                d.login,
                source,
                r.contact_id()
            );
            // A new contact with the user's e-mail takes it back, unless its
            // group belongs to another user by anchor (it is linked there).
            let went_elsewhere = after
                .anchor(source, &r.contact_id())
                .is_some_and(|a| a.linked);
            prop_assert!(
                anchor.is_some()
                    || went_elsewhere
                    || email.as_ref() != Email::parse(&r.email()).ok().as_ref(),
                "user {} is deleted although the new contact {}:{} carries its e-mail",
                d.login,
                source,
                r.contact_id()
            );
        }
    }
    Ok(())
}

/// No user fed by one source only whose contact of that source is in `step`
/// is deleted during the step, by whichever source's run — an earlier
/// source's run must not delete it (issue 8, item 18). Per run, a present
/// contact or a new contact with the user's e-mail is checked by
/// [`run_keeps_invariants`]; across sources that feed one user, a run sees
/// only its own source's rows, so nothing more is promised there.
fn step_deletes_no_present_user(
    start: &Model,
    end: &Model,
    step: &Step,
) -> Result<(), TestCaseError> {
    for (id, u) in &start.users {
        if end.users.contains_key(id) {
            continue;
        }
        let fed_by: BTreeSet<&str> = start
            .contacts
            .iter()
            .filter(|c| c.user == *id)
            .map(|c| c.source.as_str())
            .collect();
        for (source, rows) in SOURCES.iter().zip(&step.sources) {
            if fed_by.iter().any(|s| s != source) {
                continue;
            }
            for r in rows {
                let present = start
                    .anchor(source, &r.contact_id())
                    .is_some_and(|a| a.user == *id);
                prop_assert!(
                    !present,
                    "user {} is deleted although contact {}:{} is in this step's files",
                    u.login,
                    source,
                    r.contact_id()
                );
            }
        }
    }
    Ok(())
}

/// The rows in an order drawn from `seed` (xorshift; deterministic).
fn shuffled(rows: &[Row], seed: u64) -> Vec<Row> {
    let mut out = rows.to_vec();
    let mut s = seed | 1;
    for i in (1..out.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.swap(i, (s % (i as u64 + 1)) as usize);
    }
    out
}

/// Adds where a failure happened to its message.
fn at(step: usize, source: &str) -> impl Fn(TestCaseError) -> TestCaseError + '_ {
    move |e| TestCaseError::fail(format!("step {}, source {source}: {e}", step + 1))
}

proptest! {
    // A failing case prints its shrunk history, readable as it is; pin one
    // worth keeping as a named test rather than a seed file.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Logins unique and never reused, no two users with one e-mail, every
    /// contact read linked or a conflict, no active `sync` user without a
    /// contact, no user deleted whose contact is present — after every run
    /// (and the last over the whole step).
    #[test]
    fn every_run_keeps_the_directory_invariants(history in arb_history(1..=6)) {
        let mut model = Model::default();
        let mut ever: BTreeSet<String> = BTreeSet::new();
        for (i, now, step) in history.timed() {
            let start = model.clone();
            for (source, rows) in SOURCES.iter().zip(&step.sources) {
                let before = model.clone();
                let p = run_rows(&mut model, source, rows, now);
                run_keeps_invariants(&before, &model, source, rows, &p, &ever)
                    .map_err(at(i, source))?;
                ever.extend(model.users.values().map(|u| u.login.to_string()));
            }
            step_deletes_no_present_user(&start, &model, step).map_err(at(i, "(all)"))?;
        }
    }

    /// A second run of a source on the same input plans nothing, right after
    /// the first — and the first did its work: every row is linked or a
    /// conflict. Across sources a step may need more rounds (a later source
    /// frees an address, or deletes a user, an earlier one could not take), but
    /// it settles: within three more rounds of every source a round plans
    /// nothing, and never oscillates.
    #[test]
    fn a_second_run_of_every_step_changes_nothing(history in arb_history(1..=5)) {
        let mut model = Model::default();
        for (i, now, step) in history.timed() {
            for (source, rows) in SOURCES.iter().zip(&step.sources) {
                run_rows(&mut model, source, rows, now);
                let again = plan(rows_input(source, rows), &model, &history_opts(now));
                prop_assert!(again.is_empty(), "step {}: a second run of {} plans {:#?}", i + 1, source, again);
                rows_are_linked_or_conflicts(&model, source, rows, &again).map_err(at(i, source))?;
            }
            let mut settled = false;
            for _ in 0..3 {
                let mut quiet = true;
                for (source, rows) in SOURCES.iter().zip(&step.sources) {
                    quiet &= run_rows(&mut model, source, rows, now).is_empty();
                }
                if quiet {
                    settled = true;
                    break;
                }
            }
            prop_assert!(settled, "step {}: rounds of every source never stop changing", i + 1);
        }
    }

    /// Shuffling every run's rows gives the same plans, run after run — and
    /// those plans do their work: every row is linked or a conflict.
    #[test]
    fn record_order_does_not_matter(history in arb_history(1..=4), seed in any::<u64>()) {
        let (mut a, mut b) = (Model::default(), Model::default());
        for (i, now, step) in history.timed() {
            for (k, (source, rows)) in SOURCES.iter().zip(&step.sources).enumerate() {
                let mixed = shuffled(rows, seed ^ ((i * 2 + k) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                let pa = run_rows(&mut a, source, rows, now);
                let pb = run_rows(&mut b, source, &mixed, now);
                prop_assert_eq!(&pa, &pb, "step {}, {}: rows {:?} and {:?} plan differently", i + 1, source, rows, mixed);
                rows_are_linked_or_conflicts(&a, source, rows, &pa).map_err(at(i, source))?;
            }
        }
    }
}

#[test]
fn a_user_whose_email_a_new_contact_in_a_conflict_carries_is_not_deleted() {
    // Day 31: one group holds contacts anchored to two users (a conflict) and
    // a new contact c0 with the expired ann.smith2's address: it stays.
    let a = "Ann Smith";
    let mut model = Model::default();
    let crm = |rows: &[(u8, u8)]| -> Vec<Row> {
        rows.iter()
            .map(|&(id, mail)| Row::new(id, a, mail))
            .collect()
    };
    run_rows(&mut model, "crm", &crm(&[(4, 0), (1, 1), (3, 1)]), 0);
    run_rows(&mut model, "crm", &crm(&[(2, 2)]), 0);
    assert!(model
        .users
        .values()
        .any(|u| u.login.as_str() == "ann.smith2"));
    let p = run_rows(&mut model, "crm", &crm(&[(1, 0), (2, 0), (0, 0)]), 31 * DAY);
    assert!(!p.conflicts.is_empty(), "{p:#?}");
    assert!(
        model
            .users
            .values()
            .any(|u| u.login.as_str() == "ann.smith2"),
        "deleted: {:#?}",
        p.deprovisions
    );
}

/// The one user `state` holds.
fn only_user(state: &mut Model) -> &mut ExternalUser {
    state.users.values_mut().next().unwrap()
}

#[test]
fn fields_an_admin_set_that_no_contact_gives_are_kept_by_sync() {
    let mut state = Model::default();
    let mut ann = rec("1", "Ann Smith", "ann@x.cz");
    ann.attributes.insert("licence".into(), "L-1".into());
    run(&mut state, "csv", vec![ann.clone()], 0);
    {
        let u = only_user(&mut state);
        u.grants = vec!["sales".into()];
        u.flags.account_tickets = true;
        u.description = Some("VIP".into());
        u.attributes.insert("tier".into(), "gold".into());
        u.admin_fields = [
            "grants",
            "account_tickets",
            "description",
            "attributes.tier",
        ]
        .map(String::from)
        .into();
    }
    // A changed record replans the user: what the admin set stays.
    ann.name = "Ann Smith-Lee".into();
    let p = run(&mut state, "csv", vec![ann.clone()], DAY);
    let fields: Vec<&str> = p.updates[0].changes.iter().map(|c| &*c.field).collect();
    assert_eq!(fields, ["title"], "{:#?}", p.updates);
    let u = only_user(&mut state);
    assert_eq!(u.grants, ["sales"]);
    assert!(u.flags.account_tickets);
    assert_eq!(u.description.as_deref(), Some("VIP"));
    assert_eq!(u.attributes.get("tier"), Some("gold"));
    assert_eq!(u.attributes.get("licence"), Some("L-1"));
    // Idempotent: the same record again changes nothing.
    assert!(run(&mut state, "csv", vec![ann.clone()], DAY).is_empty());
    // Once the source gives a field, the source's value wins.
    ann.grants = vec!["support".into()];
    run(&mut state, "csv", vec![ann], 2 * DAY);
    assert_eq!(only_user(&mut state).grants, ["support"]);
    assert!(only_user(&mut state).flags.account_tickets);
}

#[test]
fn a_sync_user_without_admin_fields_follows_its_contacts_entirely() {
    let mut state = Model::default();
    let mut ann = rec("1", "Ann Smith", "ann@x.cz");
    ann.description = Some("Buyer".into());
    run(&mut state, "csv", vec![ann.clone()], 0);
    ann.description = None;
    run(&mut state, "csv", vec![ann], DAY);
    assert_eq!(
        only_user(&mut state).description,
        None,
        "a cleared cell clears it"
    );
}

#[test]
fn a_manual_user_keeps_every_field_its_contact_does_not_give() {
    let mut state = Model::default();
    let mut u = manual_user(7, "ann", "ann@x.cz");
    u.description = Some("Partner".into());
    u.locale = "cs".into();
    u.grants = vec!["recordings".into()];
    state.users.insert(UserId(7), u);
    let p = run(
        &mut state,
        "csv",
        vec![rec("1", "Ann Smith", "ann@x.cz")],
        0,
    );
    let fields: Vec<&str> = p.updates[0].changes.iter().map(|c| &*c.field).collect();
    assert_eq!(
        fields,
        ["title"],
        "the contact gives the title, nothing else"
    );
    let u = only_user(&mut state);
    assert_eq!(
        (
            u.description.as_deref(),
            u.locale.as_str(),
            u.grants.clone()
        ),
        (Some("Partner"), "cs", vec!["recordings".to_owned()])
    );
}

#[test]
fn held_contacts_and_unlinked_accounts_are_left_out_of_a_plan() {
    let mut state = Model::default();
    let mut ann = rec("1", "Ann Smith", "ann@x.cz");
    ann.account_id = Some("acme".into());
    let mut bob = rec("2", "Bob Berg", "bob@x.cz");
    bob.account_id = Some("acme".into());
    run(&mut state, "csv", vec![ann.clone(), bob.clone()], 0);
    let id_of = |state: &Model, login: &str| user_by_login(state, login).id;
    let ann_id = id_of(&state, "ann.smith");
    // An admin unlinked Ann from acme and Bob's contact by hand.
    for c in state.contacts.iter_mut() {
        c.linked = false;
    }
    state.unlinked_accounts.insert((ann_id, "acme".into()));
    state.held_contacts.insert("2".into());
    let p = run(&mut state, "csv", vec![ann.clone(), bob.clone()], DAY);
    assert!(p.is_empty(), "neither linked again nor made a user: {p:#?}");
    // Another account's contact of Ann is no longer that company's.
    ann.account_id = Some("globex".into());
    let p = run(&mut state, "csv", vec![ann, bob], DAY);
    assert!(
        matches!(&p.contacts[..], [ContactChange::Upsert { user, linked_now: true, .. }] if *user == ann_id),
        "{p:#?}"
    );
    assert!(p.creates.is_empty(), "the held contact makes no user");
}
