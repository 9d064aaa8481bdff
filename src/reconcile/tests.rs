//! Unit and property tests of the pure reconcile core, against an in-memory
//! model of `apply` that follows the same rules as the SQL stores.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;
use crate::model::{
    Attributes, ContactFields, ContactRecord, DisabledBy, Email, ExternalUser, Flags, Login,
    Origin, Status, UserId,
};

const DAY: i64 = 86_400_000;

fn rec(id: &str, name: &str, email: &str) -> ContactFields {
    ContactFields {
        contact_id: id.into(),
        name: name.into(),
        email: Email::parse(email).unwrap(),
        phone: None,
        account_id: None,
        account_name: None,
        login: None,
        description: None,
        locale: None,
        account_contacts: None,
        account_tickets: None,
        external_comments: None,
        grants: vec![],
        attributes: Attributes::new(),
        fingerprint: 0,
    }
}

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
        max_deprovision_ratio: crate::config::Ratio::from_f64(1.0).unwrap(),
        active_before: 0,
        source_empty: false,
        allow_mass_deprovision: true,
    }
}

/// The apply rules, in memory: what every store implementation must do.
fn apply(state: &mut State, plan: &Plan, now_ms: i64) {
    let first = state.users.keys().map(|u| u.0).max().unwrap_or(0) + 1;
    for (next, n) in (first..).zip(&plan.creates) {
        let id = UserId(next);
        let f = plan.fields_of(n).unwrap();
        state.taken_logins.insert(n.login.to_string());
        state.users.insert(
            id,
            ExternalUser {
                id,
                login: n.login.clone(),
                title: f.title.clone(),
                description: f.description.clone(),
                email: Some(f.email.clone()),
                locale: f.locale.clone(),
                status: Status::Active,
                disabled_by: None,
                disabled_at: None,
                origin: Origin::Sync,
                flags: f.flags,
                grants: f.grants.clone(),
                attributes: f.attributes.clone(),
            },
        );
        for r in plan.contacts_of(n) {
            upsert_contact(state, &plan.source, id, r.clone());
        }
    }
    for u in &plan.updates {
        let user = state.users.get_mut(&u.user).unwrap();
        user.title = u.fields.title.clone();
        user.description = u.fields.description.clone();
        user.email = Some(u.fields.email.clone());
        user.locale = u.fields.locale.clone();
        user.flags = u.fields.flags;
        user.grants = u.fields.grants.clone();
        user.attributes = u.fields.attributes.clone();
    }
    for c in &plan.contacts {
        match c {
            ContactChange::Upsert { user, record, .. } => {
                upsert_contact(state, &plan.source, *user, (**record).clone())
            }
            ContactChange::Unlink { contact_id, .. } => unlink(state, &plan.source, contact_id),
            // The destination's upsert or creation moves the contact's row.
            ContactChange::Moved { .. } => {}
        }
    }
    for (id, fingerprint) in &plan.refreshed {
        for c in &mut state.contacts {
            if c.source == plan.source && c.record.contact_id() == id {
                c.record.fingerprint = *fingerprint;
            }
        }
    }
    for (u, _) in &plan.enables {
        let user = state.users.get_mut(u).unwrap();
        user.status = Status::Active;
        user.disabled_by = None;
        user.disabled_at = None;
    }
    for d in &plan.deprovisions {
        for cid in &d.unlinks {
            unlink(state, &plan.source, cid);
        }
        match d.action {
            DeprovisionAction::Disable => {
                let user = state.users.get_mut(&d.user).unwrap();
                user.status = Status::Disabled;
                user.disabled_by = Some(DisabledBy::Sync);
                user.disabled_at = Some(now_ms);
            }
            DeprovisionAction::Delete => {
                state.users.remove(&d.user);
                state.contacts.retain(|c| c.user != d.user);
            }
        }
    }
}

fn upsert_contact(state: &mut State, source: &str, user: UserId, record: ContactRecord) {
    state
        .contacts
        .retain(|c| !(c.source == source && c.record.contact_id() == record.contact_id()));
    state.contacts.push(StoredContact {
        source: source.into(),
        user,
        linked: true,
        record,
    });
}

fn unlink(state: &mut State, source: &str, contact_id: &str) {
    for c in &mut state.contacts {
        if c.source == source && c.record.contact_id() == contact_id {
            c.linked = false;
        }
    }
}

fn run(state: &mut State, source: &str, records: Vec<ContactFields>, now_ms: i64) -> Plan {
    let mut p = plan(input(source, records), state, &opts(now_ms));
    guard(&mut p, &no_limits());
    apply(state, &p, now_ms);
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
    let mut state = State::default();
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
    let mut state = State::default();
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
    let mut state = State::default();
    let records = vec![rec("1", "A B", "a@x.cz"), rec("2", "C D", "c@x.cz")];
    run(&mut state, "csv", records.clone(), 0);
    let p = plan(input("csv", records), &state, &opts(0));
    assert!(p.is_empty(), "{p:#?}");
    assert_eq!(p.counts().unchanged, 2);
}

#[test]
fn field_change_is_an_update_with_old_and_new() {
    let mut state = State::default();
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
    let mut state = State::default();
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
    let mut state = State::default();
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
    let mut state = State::default();
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
    let mut state = State::default();
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
    let mut state = State::default();
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
    let mut state = State::default();
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
    let mut state = State::default();
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
    let mut state = State::default();
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
    let mut state = State::default();
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
    let mut state = State::default();
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
        max_deprovision_ratio: crate::config::Ratio::from_f64(0.10).unwrap(),
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
        max_deprovision_ratio: crate::config::Ratio::from_f64(1.0).unwrap(),
        ..limits
    };
    assert!(guard(&mut p, &abs));
    assert!(p.held[0].reason.contains("max_deprovision = 5"));

    let mut p = plan(input("csv", vec![]), &state, &opts(0));
    let empty = GuardLimits {
        max_deprovision: 100,
        max_deprovision_ratio: crate::config::Ratio::from_f64(1.0).unwrap(),
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
    let mut state = State::default();
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

// ---- properties -------------------------------------------------------------

fn arb_record() -> impl Strategy<Value = ContactFields> {
    (
        0..12u8,
        prop::sample::select(vec!["Jiří Dvořák", "Ann Smith", "Łukasz", "Иван", ""]),
        0..6u8,
        prop::option::of(any::<bool>()),
        prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 0..3),
        prop::option::of(prop::sample::select(vec!["en", "cs"])),
    )
        .prop_map(|(id, name, mail, flag, grants, locale)| {
            let mut r = rec(&format!("c{id}"), name, &format!("u{mail}@x.cz"));
            r.account_tickets = flag;
            r.grants = grants.into_iter().map(String::from).collect();
            r.locale = locale.map(String::from);
            r
        })
}

/// Records with unique contact ids (duplicates are row errors before planning).
fn arb_records() -> impl Strategy<Value = Vec<ContactFields>> {
    prop::collection::vec(arb_record(), 0..14).prop_map(|v| {
        let mut seen = std::collections::BTreeSet::new();
        v.into_iter()
            .filter(|r| seen.insert(r.contact_id.clone()))
            .collect()
    })
}

proptest! {
    #[test]
    fn second_run_is_a_no_op(first in arb_records(), second in arb_records()) {
        let mut state = State::default();
        run(&mut state, "csv", first, 0);
        run(&mut state, "csv", second.clone(), DAY);
        let again = plan(input("csv", second), &state, &opts(DAY));
        prop_assert!(again.is_empty(), "{:#?}", again);
    }

    #[test]
    fn record_order_does_not_matter(first in arb_records(), second in arb_records(), seed in any::<u64>()) {
        let mut state = State::default();
        run(&mut state, "csv", first, 0);
        let mut shuffled = second.clone();
        // A deterministic shuffle driven by the seed.
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let a = plan(input("csv", second), &state, &opts(DAY));
        let b = plan(input("csv", shuffled), &state, &opts(DAY));
        prop_assert_eq!(a, b);
    }
}
