//! The planner: correlate one source's records with users and compute the diff.
//!
//! Steps, each deterministic and independent of record order:
//! 1. group records by e-mail (rows sharing an address become one user);
//! 2. give each group a user — by anchor first, else by e-mail, else a new one —
//!    and report every ambiguity as a conflict instead of guessing;
//! 3. per touched user, merge its contacts from all sources and diff the fields;
//! 4. unlink contacts that left, disable `sync` users left without contacts and
//!    delete those past `delete_after`;
//! 5. give new users logins: the source's if free, else derived with a suffix.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::contact_diff::contact_changes;
use super::merge::merge_fields;
use super::plan::{
    Conflict, ContactChange, Deprovision, DeprovisionAction, NewUser, Plan, UserUpdate,
};
use super::state::{PlanOptions, SourceInput, State, StoredContact};
use crate::model::{
    derive_login_base, ContactRecord, DisabledBy, ExternalUser, Login, Origin, Status, UserId,
};

/// Computes what a run of `input` would change in `state`.
pub fn plan(input: SourceInput, state: &State, opts: &PlanOptions) -> Plan {
    let source = input.source.clone();
    Planner::new(&source, state, opts).run(input)
}

struct Planner<'a> {
    source: &'a str,
    state: &'a State,
    opts: &'a PlanOptions,
    rank: HashMap<&'a str, usize>,
    /// This source's anchors by contact id (only those pointing at known users).
    anchors: HashMap<&'a str, &'a StoredContact>,
    /// Linked contacts of every source, per user.
    linked: BTreeMap<UserId, Vec<&'a StoredContact>>,
    /// Users by normalized e-mail.
    by_email: HashMap<&'a str, Vec<UserId>>,
    /// Users anchored by a record this run read (see [`Planner::present`]).
    read_anchored: BTreeSet<UserId>,
    /// Users with a linked contact of this source: this run plans them.
    linked_here: BTreeSet<UserId>,
    /// Users with an anchor of this source: the ones its runs may delete.
    fed_here: BTreeSet<UserId>,
    /// Logins of the loaded users: taken, whatever `State::taken_logins` holds.
    user_logins: HashSet<&'a str>,
    /// Moves of contacts to users created in this run: the index of the
    /// [`ContactChange::Moved`] in the plan, and the contact id, until the new
    /// user's login is known.
    moves_to_new: Vec<(usize, String)>,
    plan: Plan,
}

/// A set of records of the planned source that share an e-mail address: a run
/// of the records sorted by e-mail, so a million groups cost a million slices.
struct Group<'r> {
    /// Where the run starts in the sorted records.
    start: usize,
    records: &'r [ContactRecord],
}

impl Group<'_> {
    /// The group's normalized e-mail.
    fn email(&self) -> &str {
        self.records
            .first()
            .map(|r| r.email_normalized())
            .unwrap_or("")
    }

    fn first_id(&self) -> &str {
        self.records.first().map(|r| r.contact_id()).unwrap_or("")
    }
}

/// Who would hold an address after the run.
#[derive(Debug, Clone, Copy)]
enum Holder {
    /// An existing user.
    User(UserId),
    /// The user a group of records would create (the group's index).
    New(usize),
}

/// What one existing user keeps and loses in a run ([`Planner::contacts_after`]).
#[derive(Default)]
struct ContactsAfter<'r> {
    /// Its contacts after the run, with their sources' ranks.
    contacts: Vec<(usize, &'r ContactRecord)>,
    /// Contacts of this source that left it.
    unlinks: Vec<String>,
    /// Contacts of this source that moved to another user (`None`: a new one).
    moves: Vec<(&'r str, Option<UserId>)>,
}

/// The contact that gives a user its title and address: the smallest
/// (source rank, contact id), as [`merge_fields`] picks it.
fn primary<'r>(contacts: &[(usize, &'r ContactRecord)]) -> Option<&'r ContactRecord> {
    contacts
        .iter()
        .min_by(|a, b| (a.0, a.1.contact_id()).cmp(&(b.0, b.1.contact_id())))
        .map(|(_, r)| *r)
}

/// Sorts records by (normalized e-mail, contact id): one sort of compact keys,
/// then the records themselves move once. Returns, per new position, the
/// record's position before, and where each run of one e-mail ends.
fn sort_by_email(records: &mut [ContactRecord]) -> (Vec<u32>, Vec<u32>) {
    // The first 24 bytes of the address order the keys (the key is 32 bytes
    // either way, alignment rounds it up); ties — the same person's address,
    // or one group's — compare the records themselves.
    let mut keys: Vec<(u128, u64, u32)> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let email = r.email_normalized();
            (prefix(email), infix(email), i as u32)
        })
        .collect();
    let full = |i: u32| {
        let r = &records[i as usize];
        (r.email_normalized(), r.contact_id())
    };
    // Contact ids are unique in a read: an unstable sort is deterministic.
    keys.sort_unstable_by(|a, b| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then_with(|| full(a.2).cmp(&full(b.2)))
    });
    // Different prefixes end a run without reading the records.
    let mut ends: Vec<u32> = (1..keys.len())
        .filter(|&k| {
            let (a, b) = (keys[k - 1], keys[k]);
            (a.0, a.1) != (b.0, b.1) || full(a.2).0 != full(b.2).0
        })
        .map(|k| k as u32)
        .collect();
    if !keys.is_empty() {
        ends.push(keys.len() as u32);
    }
    let mut order: Vec<usize> = keys.into_iter().map(|(_, _, i)| i as usize).collect();
    let before: Vec<u32> = order.iter().map(|&i| i as u32).collect();
    permute(records, &mut order);
    (before, ends)
}

/// Moves the record runs `runs` to the front of `records`, one after another,
/// and drops the rest (in place: no record is copied). Returns the records and
/// where each run now is.
fn gather(
    mut records: Vec<ContactRecord>,
    runs: &[std::ops::Range<usize>],
) -> (Vec<ContactRecord>, Vec<std::ops::Range<usize>>) {
    let mut order: Vec<usize> = runs.iter().flat_map(|r| r.clone()).collect();
    let kept = order.len();
    let mut taken = vec![false; records.len()];
    for i in &order {
        taken[*i] = true;
    }
    order.extend((0..records.len()).filter(|i| !taken[*i]));
    permute(&mut records, &mut order);
    records.truncate(kept);
    let mut at = 0;
    let moved = runs
        .iter()
        .map(|r| {
            at += r.len();
            at - r.len()..at
        })
        .collect();
    (records, moved)
}

/// The first sixteen bytes of `s` as a number that orders like `s` does:
/// most comparisons of a sort end here, without following the string (eight
/// bytes were too few: `veronika.` starts many addresses).
fn prefix(s: &str) -> u128 {
    let mut bytes = [0u8; 16];
    let n = s.len().min(16);
    bytes[..n].copy_from_slice(&s.as_bytes()[..n]);
    u128::from_be_bytes(bytes)
}

/// Bytes 16 to 24 of `s` as a number that orders like them (see [`prefix`]).
fn infix(s: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let tail = s.as_bytes().get(16..).unwrap_or(&[]);
    let n = tail.len().min(8);
    bytes[..n].copy_from_slice(&tail[..n]);
    u64::from_be_bytes(bytes)
}

/// Reorders `items` so that `items[k]` becomes the old `items[order[k]]`, in
/// place: `order` must be a permutation of `0..items.len()` (it is consumed).
fn permute<T>(items: &mut [T], order: &mut [usize]) {
    for start in 0..items.len() {
        let mut at = start;
        while order[at] != at {
            let from = order[at];
            order[at] = at;
            if from == start {
                break;
            }
            items.swap(at, from);
            at = from;
        }
    }
}

impl<'a> Planner<'a> {
    fn new(source: &'a str, state: &'a State, opts: &'a PlanOptions) -> Self {
        let rank = opts
            .source_order
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i))
            .collect();
        let mut anchors = HashMap::new();
        let mut linked: BTreeMap<UserId, Vec<&StoredContact>> = BTreeMap::new();
        for c in &state.contacts {
            if !state.users.contains_key(&c.user) {
                continue;
            }
            if c.source == source {
                anchors.insert(c.record.contact_id(), c);
            }
            if c.linked {
                linked.entry(c.user).or_default().push(c);
            }
        }
        let mut by_email: HashMap<&str, Vec<UserId>> = HashMap::new();
        for u in state.users.values() {
            if let Some(e) = &u.email {
                by_email.entry(e.normalized()).or_default().push(u.id);
            }
        }
        let user_logins = state.users.values().map(|u| u.login.as_str()).collect();
        let fed_here = anchors.values().map(|a: &&StoredContact| a.user).collect();
        let linked_here = anchors
            .values()
            .filter(|a: &&&StoredContact| a.linked)
            .map(|a| a.user)
            .collect();
        Planner {
            source,
            state,
            opts,
            rank,
            anchors,
            linked,
            by_email,
            fed_here,
            linked_here,
            read_anchored: BTreeSet::new(),
            user_logins,
            moves_to_new: Vec::new(),
            plan: Plan {
                source: source.to_owned(),
                default_locale: opts.default_locale.clone(),
                ..Plan::default()
            },
        }
    }

    fn rank_of(&self, source: &str) -> usize {
        self.rank.get(source).copied().unwrap_or(usize::MAX)
    }

    fn user(&self, id: UserId) -> Option<&'a ExternalUser> {
        self.state.users.get(&id)
    }

    fn login(&self, id: UserId) -> Login {
        self.user(id)
            .map(|u| u.login.clone())
            .unwrap_or_else(|| Login::from_trusted(id.to_string()))
    }

    fn ambiguity(&self, group: &Group, users: &[UserId]) -> String {
        let logins: Vec<String> = users.iter().map(|u| self.login(*u).to_string()).collect();
        format!(
            "e-mail {} matches {} users ({}); left as it was",
            group.records[0].email_str(),
            users.len(),
            logins.join(", ")
        )
    }

    fn conflict(&mut self, group: &Group, frozen: &mut BTreeSet<String>, message: String) {
        for r in group.records {
            frozen.insert(r.contact_id().to_owned());
            self.plan.conflicts.push(Conflict {
                contact_id: r.contact_id().to_owned(),
                message: message.clone(),
            });
        }
    }

    fn run(mut self, input: SourceInput) -> Plan {
        // 1. Group by e-mail; within a group, by contact id. One sort, no map:
        // a big creation run has a million groups.
        let mut records = input.records;
        self.drop_held(&mut records);
        // Sources usually list contacts by id; then read order is id order.
        let ids_sorted = records.is_sorted_by(|a, b| a.contact_id() <= b.contact_id());
        let (read_order, ends) = sort_by_email(&mut records);
        let id_order = |start: usize| ids_sorted.then(|| read_order[start]);
        let creates = self.correlate(&records, &ends, input.unreadable, id_order);
        // 5. New users, in (source, contact id) order; their records move into
        // the plan in that order, without a copy.
        let (records, creates) = gather(records, &creates);
        self.plan_creates(records, &creates);
        self.resolve_moves_to_new();
        self.plan
    }

    /// Leaves out the records an admin took out of sync: contacts held by
    /// hand ([`State::held_contacts`]) and unlinked contacts of an account an
    /// admin unlinked their user from ([`State::unlinked_accounts`]). They
    /// are neither linked nor made into users, as if the source had not
    /// sent them (SPEC §5 `users unlink`).
    fn drop_held(&self, records: &mut Vec<ContactRecord>) {
        let state = self.state;
        if state.held_contacts.is_empty() && state.unlinked_accounts.is_empty() {
            return;
        }
        records.retain(|r| {
            if state.held_contacts.contains(r.contact_id()) {
                return false;
            }
            let Some(anchor) = self.anchors.get(r.contact_id()) else {
                return true;
            };
            let unlinked = |account: &str| {
                state
                    .unlinked_accounts
                    .contains(&(anchor.user, account.to_owned()))
            };
            anchor.linked || !r.account_id().is_some_and(unlinked)
        });
    }

    /// Names the new users that contacts moved to; a contact whose new user was
    /// refused (its login was taken) stays where it was, so its move is dropped.
    fn resolve_moves_to_new(&mut self) {
        if self.moves_to_new.is_empty() {
            return;
        }
        let wanted: HashSet<&str> = self
            .moves_to_new
            .iter()
            .map(|(_, id)| id.as_str())
            .collect();
        let mut found: HashMap<String, Login> = HashMap::new();
        for n in &self.plan.creates {
            for r in self.plan.contacts_of(n) {
                if wanted.contains(r.contact_id()) {
                    found.insert(r.contact_id().to_owned(), n.login.clone());
                }
            }
        }
        let mut dropped = BTreeSet::new();
        for (at, id) in std::mem::take(&mut self.moves_to_new) {
            match (found.get(&id), self.plan.contacts.get_mut(at)) {
                (Some(login), Some(ContactChange::Moved { to, .. })) => *to = login.clone(),
                _ => {
                    dropped.insert(at);
                }
            }
        }
        let mut at = 0;
        self.plan.contacts.retain(|_| {
            at += 1;
            !dropped.contains(&(at - 1))
        });
    }

    /// Steps 1–4 over records sorted by (e-mail, contact id); returns the runs
    /// of records that need new users, in contact-id order.
    /// `ends` are where the runs of one e-mail end; `id_order(i)`, when
    /// known, ranks record `i` in contact-id order.
    fn correlate(
        &mut self,
        records: &[ContactRecord],
        ends: &[u32],
        unreadable: BTreeSet<String>,
        id_order: impl Fn(usize) -> Option<u32>,
    ) -> Vec<std::ops::Range<usize>> {
        let mut start = 0;
        let groups: Vec<Group> = ends
            .iter()
            .map(|&end| {
                let group = Group {
                    start,
                    records: &records[start..end as usize],
                };
                start = end as usize;
                group
            })
            .collect();
        // Contacts present but not to be touched: unreadable rows and conflicts.
        let mut frozen: BTreeSet<String> = unreadable;
        if !self.anchors.is_empty() {
            self.read_anchored = self.present_in_read(&groups, &frozen);
        }

        // 2a. Each group claims a user: by anchor, else by e-mail. A group
        // anchored to several users, or matching several by e-mail, is a conflict.
        let mut claims: BTreeMap<UserId, Vec<usize>> = BTreeMap::new();
        let mut to_create: Vec<usize> = Vec::new();
        // A first load (nothing stored) has nothing to look up: the records,
        // now in e-mail order, are not even read.
        let (no_anchors, no_users) = (self.anchors.is_empty(), self.by_email.is_empty());
        for (gi, g) in groups.iter().enumerate() {
            let anchored: BTreeSet<UserId> = match no_anchors {
                true => BTreeSet::new(),
                false => g
                    .records
                    .iter()
                    .filter_map(|r| self.anchors.get(r.contact_id()).map(|a| a.user))
                    .collect(),
            };
            let users: Vec<UserId> = if !anchored.is_empty() {
                anchored.into_iter().collect()
            } else if no_users {
                Vec::new()
            } else {
                self.by_email.get(g.email()).cloned().unwrap_or_default()
            };
            match users.as_slice() {
                [] => to_create.push(gi),
                [u] => claims.entry(*u).or_default().push(gi),
                many => {
                    let msg = self.ambiguity(g, many);
                    self.conflict(g, &mut frozen, msg);
                }
            }
        }
        // 2b. A user claimed by several groups keeps the one with its own e-mail
        // (else the smallest contact id); the others look for another user with
        // their e-mail that no group claimed, else get a new one.
        let mut assigned: BTreeMap<UserId, usize> = BTreeMap::new();
        let mut losers: Vec<(usize, UserId)> = Vec::new();
        for (user, gis) in &claims {
            let own = self
                .user(*user)
                .and_then(|u| u.email.as_ref())
                .map(|e| e.normalized());
            let keep = gis
                .iter()
                .copied()
                .min_by_key(|gi| (Some(groups[*gi].email()) != own, groups[*gi].first_id()))
                .unwrap_or(gis[0]);
            assigned.insert(*user, keep);
            losers.extend(
                gis.iter()
                    .copied()
                    .filter(|gi| *gi != keep)
                    .map(|gi| (gi, *user)),
            );
        }
        losers.sort();
        for (gi, left) in losers {
            // A group holding a contact anchored to the user it lost splits off
            // into a new user: the anchor wins over the e-mail, so it never
            // moves to another existing user by address (2c settles a clash).
            if groups[gi]
                .records
                .iter()
                .any(|r| self.anchors.contains_key(r.contact_id()))
            {
                to_create.push(gi);
                continue;
            }
            let candidates: Vec<UserId> = self
                .by_email
                .get(groups[gi].email())
                .map(|v| {
                    v.iter()
                        .copied()
                        .filter(|u| *u != left && !claims.contains_key(u))
                        .collect()
                })
                .unwrap_or_default();
            match candidates.as_slice() {
                [] => to_create.push(gi),
                [u] => {
                    assigned.insert(*u, gi);
                }
                many => {
                    let msg = self.ambiguity(&groups[gi], many);
                    self.conflict(&groups[gi], &mut frozen, msg);
                }
            }
        }
        to_create.sort();
        // 2c. No two users may end the run with one address.
        // A refused split stays with its user, which may change the address
        // that user ends with: settle again until nothing more is refused.
        let keep_email = loop {
            let keep =
                self.settle_emails(&groups, &claims, &mut assigned, &mut to_create, &mut frozen);
            if !self.refuse_taken_splits(&groups, &mut to_create, &mut frozen) {
                break keep;
            }
        };
        // 3./4. Every user touched by this source: assigned ones and those whose
        // anchors of this source were linked before.
        let mut touched: BTreeSet<UserId> = assigned.keys().copied().collect();
        touched.extend(self.linked_here.iter().copied());
        let placed = self.placed(&groups, &assigned, &to_create);
        let present = self.present(&groups, &assigned, &frozen);
        for user in touched {
            let records = assigned
                .get(&user)
                .map_or(&[][..], |gi| groups[*gi].records);
            let keep = keep_email.contains(&user);
            self.plan_user(user, records, &placed, &frozen, keep);
        }
        self.plan_expired_deletes(&present);

        // Contact ids are unique in a read: an unstable sort is deterministic.
        // Ranks when known (integers sort fast), else the ids themselves.
        let mut by_id: Vec<(u32, u128, u32)> = to_create
            .into_iter()
            .map(|gi| {
                let rank = id_order(groups[gi].start).unwrap_or(0);
                (rank, prefix(groups[gi].first_id()), gi as u32)
            })
            .collect();
        by_id.sort_unstable_by(|a, b| {
            (a.0, a.1).cmp(&(b.0, b.1)).then_with(|| {
                groups[a.2 as usize]
                    .first_id()
                    .cmp(groups[b.2 as usize].first_id())
            })
        });
        by_id
            .into_iter()
            .map(|(_, _, gi)| {
                let g = &groups[gi as usize];
                g.start..g.start + g.records.len()
            })
            .collect()
    }

    /// Settles the addresses users end the run with, so that no two share one.
    /// A new user whose address another user will hold is not created (its
    /// records are a conflict); an existing user whose address would change to
    /// one another user holds keeps its own: the group bringing the address is
    /// a conflict, or, when the address comes from one of its other contacts
    /// (it lost the one that gave its address), the user's address is kept —
    /// returned. Users deleted in this run hold nothing. Each settlement can
    /// change another user's contacts, so repeat until nothing clashes.
    fn settle_emails(
        &mut self,
        groups: &[Group<'_>],
        claims: &BTreeMap<UserId, Vec<usize>>,
        assigned: &mut BTreeMap<UserId, usize>,
        to_create: &mut Vec<usize>,
        frozen: &mut BTreeSet<String>,
    ) -> BTreeSet<UserId> {
        let mut keep_email: BTreeSet<UserId> = BTreeSet::new();
        if self.state.users.is_empty() {
            // A first load: new groups have distinct addresses by construction.
            return keep_email;
        }
        // Addresses two users held before the run (never by this planner's
        // doing): left as they are, and not settled again.
        let mut tolerated: BTreeSet<String> = BTreeSet::new();
        loop {
            let clash = self.first_email_clash(
                groups,
                assigned,
                to_create,
                frozen,
                &keep_email,
                &tolerated,
            );
            let Some((email, holders)) = clash else {
                return keep_email;
            };
            let settled = self.settle_clash(
                groups,
                claims,
                assigned,
                to_create,
                frozen,
                &mut keep_email,
                &email,
                &holders,
            );
            if !settled {
                tolerated.insert(email);
            }
        }
    }

    /// The first address (in order) that two users would hold after the run,
    /// with who would hold it.
    fn first_email_clash(
        &self,
        groups: &[Group<'_>],
        assigned: &BTreeMap<UserId, usize>,
        to_create: &[usize],
        frozen: &BTreeSet<String>,
        keep_email: &BTreeSet<UserId>,
        tolerated: &BTreeSet<String>,
    ) -> Option<(String, Vec<Holder>)> {
        let placed = self.placed(groups, assigned, to_create);
        let present = self.present(groups, assigned, frozen);
        let mut holders: BTreeMap<&str, Vec<Holder>> = BTreeMap::new();
        for u in self.state.users.values() {
            if self.expires(u, &present) {
                continue;
            }
            let current = u.email.as_ref().map(|e| e.normalized());
            // Only users this run plans can change address.
            let touched = assigned.contains_key(&u.id) || self.linked_here.contains(&u.id);
            let after = match (keep_email.contains(&u.id) || !touched, assigned.get(&u.id)) {
                (true, _) => current,
                (false, gi) => {
                    let records = gi.map_or(&[][..], |gi| groups[*gi].records);
                    let kept = self.contacts_after(u.id, records, &placed, frozen);
                    primary(&kept.contacts)
                        .map(|r| r.email_normalized())
                        .or(current)
                }
            };
            if let Some(e) = after {
                holders.entry(e).or_default().push(Holder::User(u.id));
            }
        }
        for &gi in to_create {
            holders
                .entry(groups[gi].email())
                .or_default()
                .push(Holder::New(gi));
        }
        holders
            .into_iter()
            .find(|(e, h)| h.len() > 1 && !tolerated.contains(*e))
            .map(|(e, h)| (e.to_owned(), h))
    }

    /// Resolves one clash on `email` (see [`Planner::settle_emails`]); false
    /// when there was nothing this run could change.
    #[allow(clippy::too_many_arguments)]
    fn settle_clash(
        &mut self,
        groups: &[Group<'_>],
        claims: &BTreeMap<UserId, Vec<usize>>,
        assigned: &mut BTreeMap<UserId, usize>,
        to_create: &mut Vec<usize>,
        frozen: &mut BTreeSet<String>,
        keep_email: &mut BTreeSet<UserId>,
        email: &str,
        holders: &[Holder],
    ) -> bool {
        let existing: Vec<UserId> = holders
            .iter()
            .filter_map(|h| match h {
                Holder::User(u) => Some(*u),
                Holder::New(_) => None,
            })
            .collect();
        // Who had the address before the run keeps it.
        let owner = existing.iter().copied().find(|u| {
            self.user(*u)
                .and_then(|u| u.email.as_ref())
                .is_some_and(|e| e.normalized() == email)
        });
        let owner_login = owner.map(|u| self.login(u).to_string());
        let new_groups: Vec<usize> = holders
            .iter()
            .filter_map(|h| match h {
                Holder::New(gi) => Some(*gi),
                Holder::User(_) => None,
            })
            .collect();
        // A group of new contacts with the address one unclaimed user ends the
        // run with joins that user, as it would by e-mail on the next run (a
        // group splitting off its user is anchored: it never moves by address).
        if let ([gi], [u]) = (new_groups.as_slice(), existing.as_slice()) {
            let anchored = groups[*gi]
                .records
                .iter()
                .any(|r| self.anchors.contains_key(r.contact_id()));
            if !anchored && !assigned.contains_key(u) {
                to_create.retain(|g| g != gi);
                assigned.insert(*u, *gi);
                return true;
            }
        }
        // One kind at a time, each settling may leave the next nothing to do:
        // users whose address changes only because they lost a contact keep
        // theirs (that change vanishes once they are not planned), then new
        // users are refused, last the groups bringing the address.
        let changers: Vec<UserId> = existing
            .iter()
            .copied()
            .filter(|u| Some(*u) != owner)
            .collect();
        let brings = |u: &UserId| {
            assigned
                .get(u)
                .is_some_and(|gi| groups[*gi].email() == email)
        };
        let passive: Vec<UserId> = changers.iter().copied().filter(|u| !brings(u)).collect();
        let before = keep_email.len();
        keep_email.extend(passive);
        if keep_email.len() > before {
            return true;
        }
        if !new_groups.is_empty() {
            for gi in new_groups {
                to_create.retain(|g| *g != gi);
                let msg = format!(
                    "e-mail {} is the address of user {}; left as it was",
                    groups[gi].records[0].email_str(),
                    owner_login
                        .clone()
                        .unwrap_or_else(|| self.holders_text(&existing)),
                );
                self.conflict(&groups[gi], frozen, msg);
            }
            return true;
        }
        let mut settled = false;
        for u in changers {
            let Some(gi) = assigned.remove(&u) else {
                continue;
            };
            let other = owner.or_else(|| existing.iter().copied().find(|o| *o != u));
            let other = other.map(|o| self.login(o).to_string()).unwrap_or_default();
            let msg = format!(
                "changing the e-mail of user {} to {} would give it the address of user {other}; left as it was",
                self.login(u),
                groups[gi].records[0].email_str(),
            );
            self.conflict(&groups[gi], frozen, msg);
            self.reoffer(u, groups, claims, assigned, to_create, frozen);
            settled = true;
        }
        settled
    }

    /// `user` lost the group it kept in step 2b to a conflict: another group
    /// that claimed it and was split off for that reason gets it back, by the
    /// rule of step 2b (its own address first, else the smallest contact id).
    fn reoffer(
        &self,
        user: UserId,
        groups: &[Group<'_>],
        claims: &BTreeMap<UserId, Vec<usize>>,
        assigned: &mut BTreeMap<UserId, usize>,
        to_create: &mut Vec<usize>,
        frozen: &BTreeSet<String>,
    ) {
        let own = self
            .user(user)
            .and_then(|u| u.email.as_ref())
            .map(|e| e.normalized());
        let next = claims
            .get(&user)
            .into_iter()
            .flatten()
            .copied()
            .filter(|gi| to_create.contains(gi))
            .filter(|gi| {
                !groups[*gi]
                    .records
                    .iter()
                    .any(|r| frozen.contains(r.contact_id()))
            })
            .min_by_key(|gi| (Some(groups[*gi].email()) != own, groups[*gi].first_id()));
        if let Some(gi) = next {
            to_create.retain(|g| *g != gi);
            assigned.insert(user, gi);
        }
    }

    fn holders_text(&self, users: &[UserId]) -> String {
        users
            .iter()
            .map(|u| self.login(*u).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Contacts of this source placed with some user in this run (`None`: a new
    /// one). Only anchored contacts can have been linked elsewhere before.
    fn placed<'g>(
        &self,
        groups: &[Group<'g>],
        assigned: &BTreeMap<UserId, usize>,
        to_create: &[usize],
    ) -> HashMap<&'g str, Option<UserId>> {
        let mut placed: HashMap<&'g str, Option<UserId>> = HashMap::new();
        for (u, gi) in assigned {
            placed.extend(
                groups[*gi]
                    .records
                    .iter()
                    .map(|r| (r.contact_id(), Some(*u))),
            );
        }
        for gi in to_create {
            placed.extend(
                groups[*gi]
                    .records
                    .iter()
                    .filter(|r| self.anchors.contains_key(r.contact_id()))
                    .map(|r| (r.contact_id(), None)),
            );
        }
        placed
    }

    /// Users a record of this read points to by its anchor (valid,
    /// unreadable or, later, a conflict). A new contact with a user's e-mail
    /// makes that user present by claiming it (step 2a), unless its group
    /// belongs to another user by anchor.
    fn present_in_read(
        &self,
        groups: &[Group<'_>],
        unreadable: &BTreeSet<String>,
    ) -> BTreeSet<UserId> {
        let read = groups
            .iter()
            .flat_map(|g| g.records.iter().map(|r| r.contact_id()))
            .chain(unreadable.iter().map(String::as_str));
        read.filter_map(|id| self.anchors.get(id).map(|a| a.user))
            .collect()
    }

    /// Users with a contact of this source present in this run — anchoring
    /// any record read (valid, unreadable or a conflict), or assigned a group
    /// (by e-mail too) — and the users whose e-mail a new contact in a
    /// conflict carries (it could not claim them, it did not go elsewhere):
    /// never deleted by the grace period.
    fn present(
        &self,
        groups: &[Group<'_>],
        assigned: &BTreeMap<UserId, usize>,
        frozen: &BTreeSet<String>,
    ) -> BTreeSet<UserId> {
        let mut present = self.read_anchored.clone();
        present.extend(assigned.keys().copied());
        if self.opts.delete_after_ms.is_none() || frozen.is_empty() {
            return present;
        }
        for g in groups {
            let conflict = frozen.contains(g.first_id());
            let new_contact = g
                .records
                .iter()
                .any(|r| !self.anchors.contains_key(r.contact_id()));
            if conflict && new_contact {
                present.extend(self.by_email.get(g.email()).into_iter().flatten().copied());
            }
        }
        present
    }

    /// Whether this run deletes `u`: a sync-disabled `sync` user without
    /// contacts whose grace period has passed, that this source fed (it has an
    /// anchor of it) and that has no contact `present` in this run.
    fn expires(&self, u: &ExternalUser, present: &BTreeSet<UserId>) -> bool {
        let Some(after) = self.opts.delete_after_ms else {
            return false;
        };
        u.origin == Origin::Sync
            && u.status == Status::Disabled
            && u.disabled_by == Some(DisabledBy::Sync)
            && u.disabled_at
                .is_some_and(|at| at.saturating_add(after) <= self.opts.now_ms)
            && !self.linked.contains_key(&u.id)
            && self.fed_here.contains(&u.id)
            && !present.contains(&u.id)
    }

    /// What `user` keeps after the run: its linked contacts of other sources,
    /// its frozen ones of this source and `records`; the contacts of this
    /// source that left (unlinks) and that moved to another user.
    fn contacts_after<'r>(
        &self,
        user_id: UserId,
        records: &'r [ContactRecord],
        placed: &HashMap<&str, Option<UserId>>,
        frozen: &BTreeSet<String>,
    ) -> ContactsAfter<'r>
    where
        'a: 'r,
    {
        let my_rank = self.rank_of(self.source);
        let mut after = ContactsAfter::default();
        let linked: &[&'a StoredContact] = self.linked.get(&user_id).map_or(&[], Vec::as_slice);
        for &c in linked {
            if c.source != self.source {
                after.contacts.push((self.rank_of(&c.source), &c.record));
            } else if frozen.contains(c.record.contact_id()) {
                after.contacts.push((my_rank, &c.record));
            } else if let Some(to) = placed.get(c.record.contact_id()) {
                if *to != Some(user_id) {
                    after.moves.push((c.record.contact_id(), *to));
                }
            } else {
                after.unlinks.push(c.record.contact_id().to_owned());
            }
        }
        after.contacts.extend(records.iter().map(|r| (my_rank, r)));
        after
    }

    /// A group that splits off its user (it holds an anchored contact) but asks
    /// for a login that is taken, or that a group with a smaller contact id
    /// asks for, gets no new user (see [`Planner::plan_creates`]): its records
    /// become conflicts here, before the users are planned, so they stay with
    /// the user they belong to as they were instead of leaving it.
    fn refuse_taken_splits<'r>(
        &mut self,
        groups: &[Group<'r>],
        to_create: &mut Vec<usize>,
        frozen: &mut BTreeSet<String>,
    ) -> bool {
        // Only anchored contacts can split off a user (a first load has none).
        if self.anchors.is_empty() {
            return false;
        }
        let wanted =
            |g: &Group<'r>| -> Option<&'r str> { g.records.iter().find_map(|r| r.login()) };
        let splits: Vec<usize> = to_create
            .iter()
            .copied()
            .filter(|gi| {
                let g = &groups[*gi];
                wanted(g).is_some()
                    && g.records
                        .iter()
                        .any(|r| self.anchors.contains_key(r.contact_id()))
            })
            .collect();
        if splits.is_empty() {
            return false;
        }
        let asked: HashSet<&str> = splits
            .iter()
            .filter_map(|gi| wanted(&groups[*gi]))
            .collect();
        // The smallest contact id asking for each of those logins claims it.
        let mut first: HashMap<&str, &str> = HashMap::new();
        for gi in to_create.iter() {
            let g = &groups[*gi];
            if let Some(login) = wanted(g).filter(|l| asked.contains(l)) {
                let id = first.entry(login).or_insert(g.first_id());
                if g.first_id() < *id {
                    *id = g.first_id();
                }
            }
        }
        let mut refused = BTreeSet::new();
        for gi in splits {
            let g = &groups[gi];
            let Some(login) = wanted(g) else {
                continue;
            };
            let taken = self.state.taken_logins.contains(login)
                || self.user_logins.contains(login)
                || first.get(login).is_some_and(|id| *id != g.first_id());
            if taken {
                refused.insert(gi);
                self.conflict(g, frozen, format!("login {login} is taken by another user"));
            }
        }
        to_create.retain(|gi| !refused.contains(gi));
        !refused.is_empty()
    }

    /// Plans one existing user: its contacts of this source now are `records`
    /// (plus frozen ones it already had); others of this source left or moved.
    /// `keep_email`: its address stays as it is (see [`Planner::settle_emails`]).
    fn plan_user(
        &mut self,
        user_id: UserId,
        records: &[ContactRecord],
        placed: &HashMap<&str, Option<UserId>>,
        frozen: &BTreeSet<String>,
        keep_email: bool,
    ) {
        let Some(user) = self.user(user_id) else {
            return;
        };
        let ContactsAfter {
            contacts,
            unlinks,
            moves,
        } = self.contacts_after(user_id, records, placed, frozen);
        let moved_away = !moves.is_empty();
        for (contact_id, to) in moves {
            self.push_move(user, contact_id, to);
        }
        let had_changes = !unlinks.is_empty() || moved_away;

        if contacts.is_empty() {
            let deprovision = user.origin == Origin::Sync
                && matches!(user.status, Status::Active | Status::Pending);
            if deprovision {
                self.plan.deprovisions.push(Deprovision {
                    user: user_id,
                    login: user.login.clone(),
                    action: DeprovisionAction::Disable,
                    unlinks,
                });
            } else {
                self.push_unlinks(user, unlinks);
            }
            return;
        }

        let mut changed = had_changes;
        self.push_unlinks(user, unlinks);
        for r in records {
            let anchor = self.anchors.get(r.contact_id());
            let linked_now = !matches!(anchor, Some(a) if a.linked && a.user == user_id);
            let changes = match anchor {
                Some(a) if !linked_now && !a.record.same_content(r) => {
                    contact_changes(self.source, &a.record, r)
                }
                _ => Vec::new(),
            };
            if linked_now || !changes.is_empty() {
                changed = true;
                self.plan.contacts.push(ContactChange::Upsert {
                    user: user_id,
                    login: user.login.clone(),
                    record: Box::new(r.clone()),
                    linked_now,
                    changes,
                });
            } else if anchor.is_some_and(|a| a.record.fingerprint != r.fingerprint) {
                // The source row changed in ways that map to the same contact
                // (a column no mapping reads): only its digest is new.
                self.plan
                    .refreshed
                    .push((r.contact_id().to_owned(), r.fingerprint));
            }
        }
        if let Some(mut fields) = merge_fields(&contacts, &self.opts.default_locale) {
            let records: Vec<&ContactRecord> = contacts.iter().map(|(_, r)| *r).collect();
            fields.keep_admin_fields(user, &records);
            if let (true, Some(own)) = (keep_email, &user.email) {
                if fields.email != *own {
                    if let Some(p) = primary(&contacts) {
                        self.plan.conflicts.push(Conflict {
                            contact_id: p.contact_id().to_owned(),
                            message: format!(
                                "user {} would take the e-mail {} of another user from this contact; its e-mail is left as it was",
                                user.login,
                                p.email_str()
                            ),
                        });
                    }
                    fields.email = own.clone();
                }
            }
            let changes = fields.diff_from(user);
            if !changes.is_empty() {
                changed = true;
                self.plan.updates.push(UserUpdate {
                    user: user_id,
                    login: user.login.clone(),
                    changes,
                    fields,
                });
            }
        }
        if user.status == Status::Disabled && user.disabled_by == Some(DisabledBy::Sync) {
            changed = true;
            self.plan.enables.push((user_id, user.login.clone()));
        }
        if !changed {
            self.plan.unchanged += 1;
        }
    }

    /// Notes that `user`'s contact `contact_id` now belongs to user `to`
    /// (`None`: one this run creates, named once its login is known).
    fn push_move(&mut self, user: &ExternalUser, contact_id: &str, to: Option<UserId>) {
        let to_login = match to {
            Some(id) => self.login(id),
            None => {
                let at = self.plan.contacts.len();
                self.moves_to_new.push((at, contact_id.to_owned()));
                Login::from_trusted(String::new())
            }
        };
        self.plan.contacts.push(ContactChange::Moved {
            user: user.id,
            login: user.login.clone(),
            contact_id: contact_id.to_owned(),
            to: to_login,
        });
    }

    fn push_unlinks(&mut self, user: &ExternalUser, unlinks: Vec<String>) {
        for contact_id in unlinks {
            self.plan.contacts.push(ContactChange::Unlink {
                user: user.id,
                login: user.login.clone(),
                contact_id,
            });
        }
    }

    /// The users [`Planner::expires`] says this run deletes.
    fn plan_expired_deletes(&mut self, present: &BTreeSet<UserId>) {
        let already: BTreeSet<UserId> = self.plan.deprovisions.iter().map(|d| d.user).collect();
        for u in self.state.users.values() {
            let expired = self.expires(u, present) && !already.contains(&u.id);
            if expired {
                self.plan.deprovisions.push(Deprovision {
                    user: u.id,
                    login: u.login.clone(),
                    action: DeprovisionAction::Delete,
                    unlinks: Vec::new(),
                });
            }
        }
    }

    /// Creates users for the runs `groups` of `records` (the records of new
    /// users, in contact-id order). Logins the source asks for are claimed
    /// first, so a derived login never takes one.
    fn plan_creates(&mut self, records: Vec<ContactRecord>, groups: &[std::ops::Range<usize>]) {
        let fast = foldhash::fast::RandomState::default;
        let mut claims = Claims::with_capacity(groups.len());
        let mut logins: Vec<Option<Login>> = vec![None; groups.len()];
        let mut refused = vec![false; groups.len()];
        // Next suffix to try per derived base that collided, so many equal
        // names stay linear (a base that never collides costs no entry).
        let mut next_suffix: HashMap<String, u32, _> = HashMap::with_hasher(fast());
        let mut creates: Vec<NewUser> = Vec::with_capacity(groups.len());
        let mut kept = vec![true; records.len()];
        for (i, g) in groups.iter().enumerate() {
            let group = &records[g.clone()];
            let Some(wanted) = group.iter().find_map(|r| r.login()) else {
                continue;
            };
            let wanted = Login::from_trusted(wanted.to_owned());
            if self.state.taken_logins.contains(wanted.as_str())
                || self.user_logins.contains(wanted.as_str())
                || !claims.claim_requested(wanted.clone(), &creates)
            {
                refused[i] = true;
                for (r, keep) in group.iter().zip(&mut kept[g.clone()]) {
                    *keep = false;
                    self.plan.conflicts.push(Conflict {
                        contact_id: r.contact_id().to_owned(),
                        message: format!("login {wanted} is taken by another user"),
                    });
                }
            } else {
                logins[i] = Some(wanted);
            }
        }
        // Ranges into the records that remain once refused groups are gone.
        let mut at = 0;
        for (i, g) in groups.iter().enumerate() {
            if refused[i] {
                continue;
            }
            let group = &records[g.clone()];
            // The title and e-mail come from the group's first record: one
            // source, so the smallest contact id (see `merge_fields`).
            let Some(primary) = group.first() else {
                continue;
            };
            let (login, derived) = match logins[i].take() {
                Some(l) => (l, false),
                None => {
                    let base = derive_login_base(primary.name(), primary.email_local_part());
                    let (taken, users) = (&self.state.taken_logins, &self.user_logins);
                    let free = |l: &str| {
                        !taken.contains(l) && !users.contains(l) && !claims.contains(l, &creates)
                    };
                    let login = if !next_suffix.contains_key(&base) && free(&base) {
                        Login::from_trusted(base)
                    } else {
                        let n = next_suffix.entry(base.clone()).or_insert(2);
                        loop {
                            let candidate = Login::with_suffix(&base, *n);
                            *n += 1;
                            if free(candidate.as_str()) {
                                break candidate;
                            }
                        }
                    };
                    (login, true)
                }
            };
            creates.push(NewUser {
                login,
                contacts: at..at + group.len(),
            });
            if derived {
                claims.claim_created(creates.len() - 1, &creates);
            }
            at += group.len();
        }
        let mut keep = kept.into_iter();
        let mut records = records;
        records.retain(|_| keep.next().unwrap_or(false));
        self.plan.creates = creates;
        self.plan.new_contacts = records;
    }
}

/// The logins one plan hands out: a table of references to the logins
/// themselves (a source's requested ones, or those of users to create), so a
/// million new logins are stored once, not twice.
struct Claims {
    table: HashTable<u32>,
    requested: Vec<Login>,
    hasher: foldhash::fast::RandomState,
}

/// Marks a [`Claims`] entry as an index into `requested` (else into the creates).
const REQUESTED: u32 = 1 << 31;

impl Claims {
    fn with_capacity(n: usize) -> Self {
        Claims {
            table: HashTable::with_capacity(n),
            requested: Vec::new(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn login<'a>(requested: &'a [Login], creates: &'a [NewUser], entry: u32) -> &'a str {
        let found = if entry & REQUESTED != 0 {
            requested.get((entry & !REQUESTED) as usize)
        } else {
            creates.get(entry as usize).map(|n| &n.login)
        };
        found.map_or("", Login::as_str)
    }

    fn contains(&self, login: &str, creates: &[NewUser]) -> bool {
        let hash = self.hasher.hash_one(login);
        self.table
            .find(hash, |&e| Self::login(&self.requested, creates, e) == login)
            .is_some()
    }

    fn insert(&mut self, entry: u32, creates: &[NewUser]) {
        let Claims {
            table,
            requested,
            hasher,
        } = self;
        let hash = hasher.hash_one(Self::login(requested, creates, entry));
        table.insert_unique(hash, entry, |&e| {
            hasher.hash_one(Self::login(requested, creates, e))
        });
    }

    /// Claims a login a source asks for; false if it is claimed already.
    fn claim_requested(&mut self, login: Login, creates: &[NewUser]) -> bool {
        if self.contains(login.as_str(), creates) {
            return false;
        }
        self.requested.push(login);
        let entry = (self.requested.len() - 1) as u32 | REQUESTED;
        self.insert(entry, creates);
        true
    }

    /// Claims the login of `creates[k]`.
    fn claim_created(&mut self, k: usize, creates: &[NewUser]) {
        self.insert(k as u32, creates);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{infix, permute, prefix};

    proptest! {
        #[test]
        fn permute_applies_any_order(order in Just((0..40usize).collect::<Vec<_>>()).prop_shuffle()) {
            let items: Vec<usize> = (100..140).collect();
            let want: Vec<usize> = order.iter().map(|&i| items[i]).collect();
            let (mut got, mut order) = (items, order);
            permute(&mut got, &mut order);
            prop_assert_eq!(got, want);
        }

        #[test]
        fn prefixes_order_like_their_strings(a in "[a-c\\x00]{0,30}", b in "[a-c\\x00]{0,30}") {
            if prefix(&a) != prefix(&b) {
                prop_assert_eq!(prefix(&a) < prefix(&b), a < b);
            }
            let key = |s: &str| (prefix(s), infix(s));
            if key(&a) != key(&b) {
                prop_assert_eq!(key(&a) < key(&b), a < b);
            }
        }
    }
}
