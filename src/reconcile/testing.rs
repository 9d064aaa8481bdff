//! Test-only support shared by the reconcile property tests and the
//! differential test of `sync`:
//! - [`Model`]: the apply rules in memory — what every store implementation
//!   must do with a [`Plan`] — over a [`State`] that holds the whole directory
//!   (the pure planner on full state is the model the SQLite store is compared
//!   with);
//! - [`History`]: random multi-step, two-source histories of source contents
//!   (adds, removals, e-mail changes, shared e-mails, returns after the grace
//!   period), printed readably when a property fails.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::{Deref, DerefMut};

use proptest::prelude::*;

use super::{ContactChange, DeprovisionAction, Plan, State, StoredContact};
use crate::model::{
    Attributes, ContactFields, ContactRecord, DisabledBy, Email, ExternalUser, Origin, Status,
    UserId,
};

/// A whole directory in memory, and the ids it has handed out.
#[derive(Debug, Clone, Default)]
pub(crate) struct Model {
    /// Every user, every contact (linked or not) and every taken or retired login.
    pub state: State,
    /// The next user id to hand out: ids are never reused, as in the stores.
    next_id: i64,
}

impl Deref for Model {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl DerefMut for Model {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

impl Model {
    /// Applies `plan` as a store would (creates, updates, contact changes,
    /// digests, enables, then deprovisions), stamping disables with `now_ms`.
    pub fn apply(&mut self, plan: &Plan, now_ms: i64) {
        let highest = self.state.users.keys().map(|u| u.0).max().unwrap_or(0);
        let first = self.next_id.max(highest + 1);
        self.next_id = first + plan.creates.len() as i64;
        let state = &mut self.state;
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
                    admin_fields: Default::default(),
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

    /// The user a (source, contact id) anchor points to, and whether it is linked.
    pub fn anchor(&self, source: &str, contact_id: &str) -> Option<&StoredContact> {
        self.state
            .contacts
            .iter()
            .find(|c| c.source == source && c.record.contact_id() == contact_id)
    }

    /// The linked contacts of every user, as (source, contact id), sorted.
    pub fn linked_contacts(&self) -> BTreeMap<UserId, Vec<(String, String)>> {
        let mut out: BTreeMap<UserId, Vec<(String, String)>> = BTreeMap::new();
        for c in self.state.contacts.iter().filter(|c| c.linked) {
            out.entry(c.user)
                .or_default()
                .push((c.source.clone(), c.record.contact_id().to_owned()));
        }
        for v in out.values_mut() {
            v.sort();
        }
        out
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

/// One day in milliseconds.
pub(crate) const DAY: i64 = 86_400_000;

/// The grace period of every history: `deprovision.delete_after: 30d`.
pub(crate) const DELETE_AFTER_DAYS: i64 = 30;

/// When the first step of a history runs (2027-01-15, ms since the epoch).
pub(crate) const T0: i64 = 1_800_000_000_000;

/// One row of a source file: a contact id, a name and an e-mail from small
/// pools, so that e-mails are shared, ids come back and logins collide.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Row {
    /// The contact id is `c{id}`.
    pub id: u8,
    /// The contact's name (a user's title; its login is derived from it).
    pub name: &'static str,
    /// The e-mail is `u{mail}@x.cz`.
    pub mail: u8,
    /// Spell the e-mail in upper case (correlation ignores case).
    pub upper: bool,
}

impl Row {
    /// Row `c{id},{name},u{mail}@x.cz`.
    pub fn new(id: u8, name: &'static str, mail: u8) -> Row {
        Row {
            id,
            name,
            mail,
            upper: false,
        }
    }

    /// The contact id.
    pub fn contact_id(&self) -> String {
        format!("c{}", self.id)
    }

    /// The e-mail as the source spells it.
    pub fn email(&self) -> String {
        match self.upper {
            true => format!("U{}@X.cz", self.mail),
            false => format!("u{}@x.cz", self.mail),
        }
    }

    /// The contact as the standard mapping makes it of a row
    /// `contact_id,name,email` (no other column).
    pub fn fields(&self) -> ContactFields {
        rec(&self.contact_id(), self.name, &self.email())
    }
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?} <{}>",
            self.contact_id(),
            self.name,
            self.email()
        )
    }
}

/// One step of a history: time passes, then every source runs once, in
/// order, on what its file holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// Days since the step before (since [`T0`] for the first).
    pub after_days: i64,
    /// The rows of each source, in file order; contact ids unique per source.
    pub sources: [Vec<Row>; 2],
}

impl Step {
    /// `after_days` days after the step before, the two sources hold these rows.
    pub fn new(after_days: i64, crm: &[Row], partners: &[Row]) -> Step {
        Step {
            after_days,
            sources: [crm.to_vec(), partners.to_vec()],
        }
    }
}

/// A random history: the contents of two sources over several runs.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct History(pub Vec<Step>);

impl History {
    /// Each step with the time it runs at.
    pub fn timed(&self) -> impl Iterator<Item = (usize, i64, &Step)> {
        let mut now = T0;
        self.0.iter().enumerate().map(move |(i, step)| {
            now += step.after_days * DAY;
            (i, now, step)
        })
    }
}

/// `day N: source: rows` per step, one line per source: what a failing case
/// prints (proptest shows inputs with `{:?}`).
impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "History (delete_after {DELETE_AFTER_DAYS}d; sources run in this order each step):"
        )?;
        for (i, now, step) in self.timed() {
            writeln!(f, "  step {} at day {}:", i + 1, (now - T0) / DAY)?;
            for (name, rows) in SOURCES.iter().zip(&step.sources) {
                writeln!(f, "    {name}: {rows:?}")?;
            }
        }
        Ok(())
    }
}

/// The two sources of every history, in precedence order.
pub(crate) const SOURCES: [&str; 2] = ["crm", "partners"];

fn arb_row() -> impl Strategy<Value = Row> {
    (
        0..5u8,
        prop::sample::select(vec!["Ann Smith", "Jiří Dvořák", "Bob"]),
        0..4u8,
        prop::bool::weighted(0.15),
    )
        .prop_map(|(id, name, mail, upper)| Row {
            id,
            name,
            mail,
            upper,
        })
}

/// A source's rows: unique contact ids (a repeated id is a row error before
/// planning, not what these histories are about).
fn arb_rows() -> impl Strategy<Value = Vec<Row>> {
    prop::collection::vec(arb_row(), 0..5).prop_map(|rows| {
        let mut seen = BTreeSet::new();
        rows.into_iter().filter(|r| seen.insert(r.id)).collect()
    })
}

fn arb_step() -> impl Strategy<Value = Step> {
    (
        // Often no time or a day passes; sometimes more than the grace period.
        prop::sample::select(vec![0i64, 1, 1, 15, 31, 40]),
        arb_rows(),
        arb_rows(),
    )
        .prop_map(|(after_days, a, b)| Step {
            after_days,
            sources: [a, b],
        })
}

/// Histories of `steps` steps.
pub(crate) fn arb_history(
    steps: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = History> {
    prop::collection::vec(arb_step(), steps).prop_map(History)
}

/// A contact with only the required fields set.
pub fn rec(id: &str, name: &str, email: &str) -> ContactFields {
    ContactFields {
        contact_id: id.into(),
        name: name.into(),
        email: Email::parse(email).unwrap(),
        phone: None,
        account_id: None,
        account_name: None,
        account_domains: Vec::new(),
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
