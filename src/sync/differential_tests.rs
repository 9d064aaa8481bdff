//! The differential test of `sync`: random multi-step histories of two CSV
//! sources (adds, removals, e-mail changes, shared e-mails, returns after the
//! grace period) run through [`run_source`] on a real SQLite store — real
//! files written per step, a config loaded from YAML, an injected clock —
//! must leave, after every run, the same directory as the pure planner on
//! the full state ([`Model`]: every user and contact, every record of the
//! step, planned by `reconcile::plan` and applied in memory). `run_source`
//! plans only what changed against the slice of the store it loads, so any
//! difference is a slice that missed something, or a store that applies a
//! plan differently.
//!
//! And `plan` over all sources (each source's dry run, in config order, as
//! `liaison plan` does) must show exactly what `sync` then does.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proptest::prelude::*;

use super::{run_source, run_sources, RunOptions, RunReport, RunStatus, ALL_LOGINS_THRESHOLD};
use crate::config::{self, Config, SourceConfig, StoreLocation};
use crate::model::{ContactRecord, Email, Origin, Status};
use crate::reconcile::testing::{
    arb_history, History, Model, Row, Step, DELETE_AFTER_DAYS, SOURCES,
};
use crate::reconcile::{self, DeprovisionAction, Plan, PlanCounts, PlanOptions, SourceInput};
use crate::store::{SqliteStore, Store, UserFilter, BULK_THRESHOLD};

/// The config of every history: the two sources of [`History`], in its order.
fn config_text() -> String {
    format!(
        "store: sqlite://liaison.db
sources:
  - name: crm
    type: csv
    path: crm.csv
  - name: partners
    type: csv
    path: partners.csv
deprovision:
  delete_after: {DELETE_AFTER_DAYS}d
"
    )
}

/// A temp folder with the config, the two source files and the store.
struct Sandbox {
    dir: tempfile::TempDir,
    config: Config,
    store: SqliteStore,
    /// A second connection, for what the `Store` trait does not show.
    sql: rusqlite::Connection,
    /// [`RunOptions::all_logins_above`] of its runs.
    all_logins_above: usize,
}

impl Sandbox {
    /// A fresh store; `bulk` takes every fast path a threshold guards: each
    /// creating run is a bulk load and loads every taken login at once.
    fn new(bulk: bool) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("liaison.yaml");
        std::fs::write(&file, config_text()).unwrap();
        let config = config::load(&file).unwrap();
        let StoreLocation::Sqlite(path) = &config.store else {
            panic!("not an SQLite store: {:?}", config.store);
        };
        let mut store = SqliteStore::open(path).unwrap();
        store.set_bulk_threshold(if bulk { 0 } else { BULK_THRESHOLD });
        let sql = rusqlite::Connection::open(path).unwrap();
        Sandbox {
            dir,
            config,
            store,
            sql,
            all_logins_above: if bulk { 0 } else { ALL_LOGINS_THRESHOLD },
        }
    }

    /// Writes each source's file as the step has it.
    fn write(&self, step: &Step) {
        for (source, rows) in self.config.sources.iter().zip(&step.sources) {
            write_csv(&self.dir.path().join(format!("{}.csv", source.name)), rows);
        }
    }

    /// One `sync --once --source S --allow-mass-deprovision` at `now_ms`.
    fn sync(&mut self, source: usize, now_ms: i64) -> Result<RunReport, String> {
        let opts = RunOptions {
            dry_run: false,
            allow_mass_deprovision: true,
            now_ms,
            all_logins_above: self.all_logins_above,
            ..RunOptions::default()
        };
        let s = &self.config.sources[source];
        run_source(&self.config, s, &mut self.store, opts)
            .map_err(|e| format!("sync of {} failed: {e}", s.name))
    }

    /// What `liaison plan` shows at `now_ms`: the dry run of every source,
    /// in config order, as `cli::commands::plan` runs them.
    fn plan(&mut self, now_ms: i64) -> Result<Vec<RunReport>, String> {
        let opts = RunOptions {
            dry_run: true,
            allow_mass_deprovision: true,
            now_ms,
            all_logins_above: self.all_logins_above,
            ..RunOptions::default()
        };
        let sources: Vec<&SourceConfig> = self.config.sources.iter().collect();
        run_sources(&self.config, &sources, &mut self.store, opts)
            .map_err(|e| format!("plan failed: {e:#}"))
    }

    /// The directory as the store holds it.
    fn directory(&mut self) -> Directory {
        let mut users = BTreeMap::new();
        for u in self.store.list_users(&UserFilter::default()).unwrap() {
            let detail = self.store.user_detail(&u.login).unwrap().unwrap();
            let contacts = detail
                .linked_contacts
                .iter()
                .map(|c| (c.source.clone(), c.id.clone()))
                .collect();
            let user = UserRow {
                status: u.status,
                origin: u.origin,
                title: u.title,
                email: u.email,
                locale: u.locale,
                contacts,
            };
            users.insert(u.login, user);
        }
        let mut stmt = self
            .sql
            .prepare("SELECT login FROM retired_logins ORDER BY login")
            .unwrap();
        let retired = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut stmt = self
            .sql
            .prepare(
                "SELECT c.source, c.contact_id, u.login, c.linked FROM contacts c \
                 JOIN users u ON u.id = c.user_id",
            )
            .unwrap();
        let anchors = stmt
            .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), (r.get(2)?, r.get(3)?))))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        Directory {
            users,
            retired,
            anchors,
        }
    }
}

/// A source file in the standard layout.
fn write_csv(path: &Path, rows: &[Row]) {
    let mut text = String::from("contact_id,name,email\n");
    for r in rows {
        text.push_str(&format!("{},{},{}\n", r.contact_id(), r.name, r.email()));
    }
    std::fs::write(path, text).unwrap();
}

/// What the comparison looks at: users by login, retired logins, anchors.
#[derive(Debug, PartialEq)]
struct Directory {
    users: BTreeMap<String, UserRow>,
    retired: BTreeSet<String>,
    /// Every stored (source, contact id): its user's login, and whether it
    /// is linked (an unlinked anchor brings its contact back to that user).
    anchors: BTreeMap<(String, String), (String, bool)>,
}

/// One user as compared: what `users list` shows that sources decide.
#[derive(Debug, PartialEq)]
struct UserRow {
    status: Status,
    origin: Origin,
    title: String,
    email: Option<String>,
    locale: String,
    /// Linked contacts as (source, contact id), sorted.
    contacts: Vec<(String, String)>,
}

impl Directory {
    /// The directory the model holds.
    fn of(model: &Model) -> Directory {
        let linked = model.linked_contacts();
        let users: BTreeMap<String, UserRow> = model
            .users
            .values()
            .map(|u| {
                let row = UserRow {
                    status: u.status,
                    origin: u.origin,
                    title: u.title.clone(),
                    email: u.email.as_ref().map(|e| e.as_str().to_owned()),
                    locale: u.locale.clone(),
                    contacts: linked.get(&u.id).cloned().unwrap_or_default(),
                };
                (u.login.to_string(), row)
            })
            .collect();
        let retired = model
            .taken_logins
            .iter()
            .filter(|l| !users.contains_key(*l))
            .cloned()
            .collect();
        let anchors = model
            .contacts
            .iter()
            .map(|c| {
                let key = (c.source.clone(), c.record.contact_id().to_owned());
                (key, (model.users[&c.user].login.to_string(), c.linked))
            })
            .collect();
        Directory {
            users,
            retired,
            anchors,
        }
    }

    /// Where `self` (the store) and `model` differ, for people.
    fn diff(&self, model: &Directory) -> String {
        let mut out = String::new();
        let logins: BTreeSet<&String> = self.users.keys().chain(model.users.keys()).collect();
        for login in logins {
            let (s, m) = (self.users.get(login), model.users.get(login));
            if s != m {
                out.push_str(&format!("  {login}:\n    store: {s:?}\n    model: {m:?}\n"));
            }
        }
        let keys: BTreeSet<_> = self.anchors.keys().chain(model.anchors.keys()).collect();
        for key in keys {
            let (s, m) = (self.anchors.get(key), model.anchors.get(key));
            if s != m {
                out.push_str(&format!(
                    "  anchor {}:{}:\n    store: {s:?}\n    model: {m:?}\n",
                    key.0, key.1
                ));
            }
        }
        if self.retired != model.retired {
            out.push_str(&format!(
                "  retired logins:\n    store: {:?}\n    model: {:?}\n",
                self.retired, model.retired
            ));
        }
        out
    }
}

/// One run of `source` on `rows` in the model: the pure planner on the full
/// state, with the options `sync` derives from `config`, applied in memory
/// (no guard: every run allows mass deprovisioning).
fn model_run(model: &mut Model, config: &Config, source: &str, rows: &[Row], now_ms: i64) -> Plan {
    let opts = PlanOptions {
        source_order: config.sources.iter().map(|s| s.name.clone()).collect(),
        default_locale: config.default_locale.clone(),
        delete_after_ms: config
            .deprovision
            .delete_after
            .map(|d| d.as_millis() as i64),
        now_ms,
    };
    let input = SourceInput {
        source: source.to_owned(),
        records: rows
            .iter()
            .map(|r| ContactRecord::new(r.fields()))
            .collect(),
        unreadable: BTreeSet::new(),
    };
    let p = reconcile::plan(input, model, &opts);
    model.apply(&p, now_ms);
    p
}

/// The conflicts of a run, as their messages, sorted.
fn conflicts(p: &Plan) -> Vec<String> {
    let mut out: Vec<String> = p.conflicts.iter().map(|c| c.message.clone()).collect();
    out.sort();
    out
}

/// What must hold of the store after a run of `source` on `rows`, reported
/// as `got`, took its directory from `before` to `after` — whatever the
/// model says (the model plans with the same planner, so a planner bug shows
/// here, not in the comparison).
fn store_keeps_invariants(
    before: &Directory,
    after: &Directory,
    source: &str,
    rows: &[Row],
    got: &RunReport,
) -> Result<(), String> {
    for n in &got.plan.creates {
        let login = n.login.as_str();
        if before.users.contains_key(login) || before.retired.contains(login) {
            return Err(format!("login {login} is handed out again"));
        }
    }
    let mut emails: BTreeMap<String, &str> = BTreeMap::new();
    for (login, u) in &after.users {
        let Some(email) = &u.email else { continue };
        let normalized = Email::parse(email).map_err(|e| e.to_string())?;
        if let Some(other) = emails.insert(normalized.normalized().to_owned(), login) {
            return Err(format!(
                "users {other} and {login} share the e-mail {email}"
            ));
        }
        if u.origin == Origin::Sync && u.status == Status::Active && u.contacts.is_empty() {
            return Err(format!("user {login} is active without a linked contact"));
        }
    }
    let conflicts: BTreeSet<&str> = got
        .plan
        .conflicts
        .iter()
        .map(|c| c.contact_id.as_str())
        .collect();
    for r in rows {
        let anchor = (source.to_owned(), r.contact_id());
        let linked = after
            .users
            .iter()
            .find(|(_, u)| u.contacts.contains(&anchor));
        match linked {
            _ if conflicts.contains(anchor.1.as_str()) => {}
            Some((_, u)) if u.status == Status::Active => {}
            other => {
                return Err(format!(
                    "contact {source}:{} was read but is neither linked to an active user nor a conflict ({other:?})",
                    anchor.1
                ))
            }
        }
    }
    Ok(())
}

/// No user fed by one source only whose contact of that source is in `step`
/// is deleted during the step, by whichever source's run: an earlier source
/// must not delete it (issue 8, item 18). Each run checks its own rows, new
/// contacts with a user's e-mail included; across sources that feed one user,
/// a run sees only its own source's rows, so nothing more is promised there.
fn step_deletes_no_present_user(
    start: &Directory,
    end: &Directory,
    step: &Step,
) -> Result<(), String> {
    for login in start.users.keys() {
        if end.users.contains_key(login) {
            continue;
        }
        let fed_by: BTreeSet<&str> = start
            .anchors
            .iter()
            .filter(|(_, (owner, _))| owner == login)
            .map(|((source, _), _)| source.as_str())
            .collect();
        for (source, rows) in SOURCES.iter().zip(&step.sources) {
            if fed_by.iter().any(|s| s != source) {
                continue;
            }
            for r in rows {
                let key = (source.to_string(), r.contact_id());
                if start
                    .anchors
                    .get(&key)
                    .is_some_and(|(owner, _)| owner == login)
                {
                    return Err(format!(
                        "user {login} is deleted although contact {source}:{} is in this step's files",
                        r.contact_id()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Runs `history` through `sync` on SQLite and through the model, checking
/// after every run the store's invariants, then comparing the status, the
/// counts, the conflicts and the directory with the model's.
fn sync_matches_the_model(history: &History, bulk: bool) -> Result<(), TestCaseError> {
    let mut sandbox = Sandbox::new(bulk);
    let mut model = Model::default();
    let config = sandbox.config.clone();
    let mut before = sandbox.directory();
    for (i, now, step) in history.timed() {
        sandbox.write(step);
        let start = sandbox.directory();
        for (k, (source, rows)) in config.sources.iter().zip(&step.sources).enumerate() {
            let at = format!("step {}, source {}", i + 1, source.name);
            let want = model_run(&mut model, &config, &source.name, rows, now);
            let got = sandbox.sync(k, now).map_err(|e| fail(&at, &e))?;
            prop_assert_eq!(
                got.status,
                RunStatus::Applied,
                "{}: {:?} {:?}",
                &at,
                got.failure,
                got.errors
            );
            let errors: Vec<String> = {
                let mut v: Vec<String> = got.errors.iter().map(|e| e.message.clone()).collect();
                v.sort();
                v
            };
            // The model plans every row again; the store plans only changed
            // rows (and their users' siblings), so it may report fewer
            // conflicts of rows it did not need to look at — never others.
            let modelled = conflicts(&want);
            let unexpected: Vec<&String> =
                errors.iter().filter(|e| !modelled.contains(e)).collect();
            prop_assert!(
                unexpected.is_empty(),
                "{}: conflicts the model does not have: {:?} (model: {:?})",
                &at,
                unexpected,
                modelled
            );
            let store = sandbox.directory();
            store_keeps_invariants(&before, &store, &source.name, rows, &got)
                .map_err(|e| fail(&at, &e))?;
            let wanted = Directory::of(&model);
            prop_assert!(
                store == wanted,
                "{}: the store and the model differ:\n{}",
                at,
                store.diff(&wanted)
            );
            prop_assert_eq!(got.counts, want.counts(), "{}: counts differ", &at);
            before = store;
        }
        step_deletes_no_present_user(&start, &before, step)
            .map_err(|e| fail(&format!("step {}", i + 1), &e))?;
    }
    Ok(())
}

/// What a run does, as `plan` and `sync` both report it.
#[derive(Debug, PartialEq)]
struct Outcome {
    counts: PlanCounts,
    created: Vec<String>,
    enabled: Vec<String>,
    deprovisioned: Vec<(String, DeprovisionAction)>,
    conflicts: Vec<String>,
}

impl Outcome {
    fn of(r: &RunReport) -> Outcome {
        let p = &r.plan;
        Outcome {
            counts: r.counts,
            created: p.creates.iter().map(|n| n.login.to_string()).collect(),
            enabled: p.enables.iter().map(|(_, l)| l.to_string()).collect(),
            deprovisioned: p
                .deprovisions
                .iter()
                .map(|d| (d.login.to_string(), d.action))
                .collect(),
            conflicts: conflicts(p),
        }
    }
}

/// Runs `history`; at every step, first `plan` over all sources, then `sync`
/// of each: each source's run must do what the plan showed.
fn plan_matches_sync(history: &History) -> Result<(), TestCaseError> {
    let mut sandbox = Sandbox::new(false);
    for (i, now, step) in history.timed() {
        sandbox.write(step);
        let at = format!("step {}", i + 1);
        let planned = sandbox.plan(now).map_err(|e| fail(&at, &e))?;
        for (k, shown) in planned.iter().enumerate() {
            let at = format!("step {}, source {}", i + 1, shown.source);
            let done = sandbox.sync(k, now).map_err(|e| fail(&at, &e))?;
            prop_assert_eq!(
                Outcome::of(shown),
                Outcome::of(&done),
                "{}: `plan` showed the left, `sync` did the right",
                at
            );
        }
    }
    Ok(())
}

fn fail(at: &str, message: &str) -> TestCaseError {
    TestCaseError::fail(format!("{at}: {message}"))
}

proptest! {
    // Each case writes files and runs a real store: few cases, short
    // histories (well under 20 s in a debug build on 2 cores). A failing case
    // prints its shrunk history; pin one worth keeping as a named test below.
    #![proptest_config(ProptestConfig {
        cases: 48,
        max_shrink_time: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn sync_on_sqlite_ends_where_the_planner_on_full_state_does(
        history in arb_history(1..=5),
        bulk in any::<bool>(),
    ) {
        sync_matches_the_model(&history, bulk)?;
    }

    #[test]
    fn plan_over_all_sources_shows_what_sync_then_does(history in arb_history(1..=4)) {
        plan_matches_sync(&history)?;
    }
}

// ---- regressions: minimal histories the properties found --------------------

/// `Row::new`, short: the regression histories below are tables of rows.
fn row(id: u8, name: &'static str, mail: u8) -> Row {
    Row::new(id, name, mail)
}

/// Runs a fixed history through [`sync_matches_the_model`], both ways of
/// writing, and fails with the history when it fails.
fn check_sync(steps: Vec<Step>) {
    let history = History(steps);
    for bulk in [false, true] {
        if let Err(e) = sync_matches_the_model(&history, bulk) {
            panic!("{e}\n(bulk writes: {bulk})\n{history:?}");
        }
    }
}

#[test]
fn a_contact_leaving_its_users_shared_email_does_not_wedge_the_source() {
    // One user of two contacts sharing an e-mail; the second moves to its
    // own address and needs a new user, with the base login of the first.
    let before = [row(0, "Ann Smith", 0), row(1, "Ann Smith", 0)];
    let after = [row(0, "Ann Smith", 0), row(1, "Ann Smith", 1)];
    check_sync(vec![
        Step::new(0, &[], &before),
        Step::new(1, &[], &after),
        Step::new(1, &[], &after),
    ]);
}

#[test]
fn a_contact_losing_its_user_to_a_new_contact_with_its_old_email_does_not_wedge_the_source() {
    // c0 moves to u0; the new c1 takes ann.smith by its e-mail u3 (a user
    // claimed twice keeps the group with its own e-mail), so c0 needs a new
    // user whose base login is ann.smith; c0 has an anchor, so sync loads
    // no logins for it.
    check_sync(vec![
        Step::new(0, &[row(0, "Ann Smith", 3)], &[]),
        Step::new(0, &[row(0, "Ann Smith", 0), row(1, "Jiří Dvořák", 3)], &[]),
    ]);
}

#[test]
fn a_contact_leaving_its_users_shared_email_never_gets_a_retired_login() {
    // crm's ann.smith expires and is deleted (its login retired) in the run
    // before partners' c2 leaves the e-mail it shared with c1.
    let shared = [row(1, "Ann Smith", 1), row(2, "Ann Smith", 1)];
    let split = [row(1, "Ann Smith", 1), row(2, "Ann Smith", 2)];
    check_sync(vec![
        Step::new(0, &[row(0, "Ann Smith", 0)], &shared),
        Step::new(0, &[], &shared),
        Step::new(31, &[], &split),
    ]);
}

#[test]
fn a_contact_back_after_the_grace_period_re_enables_its_user() {
    // Disabled on day 1, back on day 40 with 30 days of grace.
    let ann = [row(0, "Ann Smith", 0)];
    check_sync(vec![
        Step::new(0, &ann, &[]),
        Step::new(1, &[], &[]),
        Step::new(39, &ann, &[]),
        Step::new(1, &ann, &[]),
    ]);
}

#[test]
fn an_earlier_sources_run_never_deletes_a_user_whose_contact_is_back_in_a_later_one() {
    // As above, in partners: crm, which runs first, deleted ann.smith
    // (expired deletes ignore the source being run), and partners then
    // created ann.smith2 for the contact that came back.
    let ann = [row(0, "Ann Smith", 0)];
    check_sync(vec![
        Step::new(0, &[], &ann),
        Step::new(1, &[], &[]),
        Step::new(39, &[], &ann),
    ]);
}

#[test]
fn losing_the_contact_that_gave_a_users_email_never_gives_two_users_one_email() {
    // ann.smith's e-mail comes from crm's c2 (crm wins over partners); when
    // c2 leaves, partners' c0 gives it u3, which crm's new c0 carries too.
    check_sync(vec![
        Step::new(0, &[], &[row(0, "Ann Smith", 0)]),
        Step::new(0, &[row(2, "Ann Smith", 0)], &[row(0, "Bob", 3)]),
        Step::new(0, &[row(0, "Ann Smith", 3)], &[row(0, "Bob", 3)]),
    ]);
}

#[test]
fn plan_over_two_sources_shows_the_second_joining_the_first_by_email() {
    let history = History(vec![Step::new(
        0,
        &[row(0, "Ann Smith", 0)],
        &[row(0, "Ann Smith", 0)],
    )]);
    if let Err(e) = plan_matches_sync(&history) {
        panic!("{e}\n{history:?}");
    }
}

#[test]
fn a_new_contact_sharing_the_address_of_an_unchanged_sibling_joins_its_user() {
    // Partners' c1 (unchanged) has u0, but its user's address is u1 (crm's
    // c0 wins); partners' new c2 with u0 must be grouped with c1 although no
    // user has u0 as its own address.
    check_sync(vec![
        Step::new(
            0,
            &[row(1, "Ann Smith", 3), row(0, "Ann Smith", 2)],
            &[row(1, "Ann Smith", 2)],
        ),
        Step::new(0, &[], &[row(1, "Ann Smith", 0)]),
        Step::new(
            31,
            &[row(0, "Ann Smith", 1)],
            &[row(2, "Ann Smith", 0), row(1, "Ann Smith", 0)],
        ),
    ]);
}
