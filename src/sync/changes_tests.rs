//! The host semantics of change reads and cursors (SPEC §2 "Full reads,
//! change reads and cursors"), driven through [`run_source_with`] on a real
//! SQLite store with a scripted connector and an injected clock: every
//! connector that reads changes (exec, LDAP, the CRM) inherits them.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use liaison_plugin_api::{
    BadRow, Connector, Cursor, Deletion, Item, ItemStream, Location, ReadContext, ReadEnd,
    ReadMode, ReadRequest, Record, Schema, SourceError,
};

use super::{
    read_source, run_source_with, AnchorLookup, FailureKind, ReadFailure, ReadResult, Reading,
    RunOptions, RunReport, RunStatus, StoredContacts,
};
use crate::config::{self, Config, Ratio, StoreLocation};
use crate::mapping::Mapping;
use crate::model::{Status, UserId};
use crate::store::{Anchor, SqliteStore, Store, StoreError, UserFilter};

/// Tuesday 2026-12-01 10:00 UTC.
const T0: i64 = 1_796_119_200_000;
const HOUR: i64 = 3_600_000;

/// One scripted answer: the items of a read (an end item included or not).
type Answer = Vec<Result<Item, SourceError>>;

/// A connector that answers each read from a script and keeps the requests.
#[derive(Default)]
struct Scripted {
    answers: Mutex<VecDeque<Answer>>,
    requests: Mutex<Vec<ReadRequest>>,
}

impl Connector for Scripted {
    fn kind(&self) -> &'static str {
        "scripted"
    }

    fn read(&self, request: &ReadRequest, _: &ReadContext) -> Result<ItemStream<'_>, SourceError> {
        self.requests.lock().unwrap().push(request.clone());
        let answer = self.answers.lock().unwrap().pop_front();
        let answer = answer.expect("a scripted answer for every read");
        Ok(Box::new(answer.into_iter()))
    }
}

fn record(key: &str, name: &str) -> Item {
    let schema = Arc::new(Schema::new(vec![
        "name".into(),
        "email".into(),
        "kind".into(),
    ]));
    let email = format!("{}@acme.example", name.to_lowercase().replace(' ', "."));
    let values = vec![name.into(), email.into(), "partner".into()];
    let location = Location::Remote {
        kind: "record",
        id: key.to_owned(),
    };
    Item::Record(Record::new(location, schema, values).with_key(key))
}

/// A record whose `kind` is not `partner` (the `when:` of [`Setup::with_when`]).
fn vendor(key: &str, name: &str) -> Item {
    let Item::Record(r) = record(key, name) else {
        unreachable!()
    };
    let schema = Arc::clone(&r.schema);
    let values = vec![name.into(), r.get("email").unwrap().into(), "vendor".into()];
    Item::Record(Record::new(r.location.clone(), schema, values).with_key(key))
}

/// A record of `name` whose e-mail is `email`, whatever its name.
fn with_email(key: &str, name: &str, email: &str) -> Item {
    let Item::Record(r) = record(key, name) else {
        unreachable!()
    };
    let schema = Arc::clone(&r.schema);
    let values = vec![name.into(), email.into(), "partner".into()];
    Item::Record(Record::new(r.location.clone(), schema, values).with_key(key))
}

fn deleted(key: &str) -> Item {
    Item::Deleted(Deletion {
        key: key.to_owned(),
        location: Location::Remote {
            kind: "deletion",
            id: key.to_owned(),
        },
    })
}

fn bad(key: &str) -> Item {
    Item::Bad(BadRow {
        location: Location::Remote {
            kind: "record",
            id: key.to_owned(),
        },
        message: "unreadable".into(),
        partial: None,
        key: Some(key.to_owned()),
    })
}

fn end(mode: ReadMode, cursor: &str) -> Item {
    Item::End(ReadEnd {
        mode,
        cursor: Some(Cursor::new(cursor)),
    })
}

fn answer(items: Vec<Item>) -> Answer {
    items.into_iter().map(Ok).collect()
}

/// Writes the config, its one source with `keys`, and loads it.
fn write_config(dir: &tempfile::TempDir, keys: &str) -> Config {
    let text = format!(
        "store: sqlite://liaison.db
sources:
  - name: partners
    type: csv
    path: partners.csv
{keys}portal:
  url: https://portal.example.com/login
safety:
  max_deprovision: 2
  max_deprovision_ratio: 1.0
"
    );
    let path = dir.path().join("liaison.yaml");
    std::fs::write(&path, text).unwrap();
    config::load(&path).unwrap()
}

/// A config with one source, a store, and a clock.
struct Setup {
    dir: tempfile::TempDir,
    config: Config,
    source: Scripted,
    now: i64,
}

impl Setup {
    fn new() -> Setup {
        Setup::with_source_keys("")
    }

    /// Only records whose `kind` is `partner` are kept.
    fn with_when() -> Setup {
        Setup::with_source_keys("    when: kind == 'partner'\n")
    }

    fn with_source_keys(keys: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(&dir, keys);
        Setup {
            config,
            dir,
            source: Scripted::default(),
            now: T0,
        }
    }

    /// The source configured anew with `keys`, on the same store.
    fn reconfigure(&mut self, keys: &str) {
        self.config = write_config(&self.dir, keys);
    }

    fn store(&self) -> SqliteStore {
        let StoreLocation::Sqlite(path) = &self.config.store else {
            panic!("sqlite");
        };
        SqliteStore::open(path).unwrap()
    }

    /// Runs the source once on `answer`, an hour after the last run.
    fn run(&mut self, answer: Answer) -> RunReport {
        self.run_with(answer, RunOptions::default())
    }

    fn run_with(&mut self, answer: Answer, opts: RunOptions) -> RunReport {
        self.now += HOUR;
        self.source.answers.lock().unwrap().push_back(answer);
        let opts = RunOptions {
            now_ms: self.now,
            ..opts
        };
        let mut store = self.store();
        let source = &self.config.sources[0];
        run_source_with(&self.config, source, &self.source, &mut store, opts).unwrap()
    }

    /// The request of the last read.
    fn last_request(&self) -> ReadRequest {
        self.source
            .requests
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap()
    }

    /// Each user's (status, contacts) by title.
    fn users(&self) -> BTreeMap<String, (Status, Vec<String>)> {
        let users = self.store().list_users(&UserFilter::default()).unwrap();
        users
            .into_iter()
            .map(|u| (u.title, (u.status, u.contacts)))
            .collect()
    }

    fn cursor(&self) -> Option<String> {
        let stored = self.store().source_cursor("partners").unwrap()?;
        stored.cursor.map(Cursor::into_string)
    }

    /// A first full read of Ann (a), Bob (b) and Cid (c), ending at `c1`.
    fn seeded(mut self) -> Setup {
        let report = self.run(answer(vec![
            record("a", "Ann"),
            record("b", "Bob"),
            record("c", "Cid"),
            end(ReadMode::Full, "c1"),
        ]));
        assert_eq!(report.status, RunStatus::Applied);
        assert_eq!(report.counts.created, 3);
        self
    }
}

fn active(contacts: &[&str]) -> (Status, Vec<String>) {
    (
        Status::Active,
        contacts.iter().map(|c| c.to_string()).collect(),
    )
}

#[test]
fn the_first_read_is_full_and_stores_its_cursor() {
    let s = Setup::new().seeded();
    assert_eq!(s.last_request(), ReadRequest::full());
    assert_eq!(s.cursor().as_deref(), Some("c1"));
    let stored = s.store().source_cursor("partners").unwrap().unwrap();
    assert_eq!(stored.last_full_ms, Some(T0 + HOUR));
}

#[test]
fn a_changes_read_updates_and_deletes_only_what_it_names() {
    let mut s = Setup::new().seeded();
    let report = s.run(answer(vec![
        record("b", "Bob Brown"),
        deleted("c"),
        end(ReadMode::Changes, "c2"),
    ]));
    assert_eq!(s.last_request(), ReadRequest::changes(Cursor::new("c1")));
    assert_eq!(report.status, RunStatus::Applied);
    assert_eq!((report.counts.updated, report.counts.disabled), (1, 1));
    let read = report.read.unwrap();
    assert_eq!((read.mode, read.deletions), (ReadMode::Changes, 1));
    let users = s.users();
    // Ann was not mentioned: she has not left.
    assert_eq!(users["Ann"], active(&["a"]));
    assert_eq!(users["Bob Brown"], active(&["b"]));
    assert_eq!(users["Cid"].0, Status::Disabled);
    assert_eq!(s.cursor().as_deref(), Some("c2"));
}

#[test]
fn an_empty_changes_read_changes_nothing_and_moves_the_cursor() {
    let mut s = Setup::new().seeded();
    let report = s.run(answer(vec![end(ReadMode::Changes, "c2")]));
    // Not "suddenly empty": a changes read says nothing about the rest.
    assert_eq!(report.status, RunStatus::Applied);
    assert_eq!(report.counts.disabled, 0);
    assert_eq!(s.users().len(), 3);
    assert_eq!(s.cursor().as_deref(), Some("c2"));
}

#[test]
fn a_key_repeated_in_a_changes_read_keeps_its_last_reading() {
    let mut s = Setup::new().seeded();
    let report = s.run(answer(vec![
        record("b", "Bob One"),
        record("b", "Bob Two"),
        end(ReadMode::Changes, "c2"),
    ]));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.counts.updated, 1);
    assert_eq!(s.users()["Bob Two"], active(&["b"]));
}

#[test]
fn a_key_repeated_in_a_full_read_is_still_an_error() {
    let mut s = Setup::new();
    let report = s.run(answer(vec![
        record("a", "Ann"),
        record("a", "Ann Again"),
        end(ReadMode::Full, "c1"),
    ]));
    assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
}

#[test]
fn a_record_that_when_now_leaves_out_has_left_in_a_changes_read() {
    let mut s = Setup::with_when().seeded();
    let report = s.run(answer(vec![
        vendor("a", "Ann"),
        end(ReadMode::Changes, "c2"),
    ]));
    assert_eq!(report.counts.disabled, 1);
    assert_eq!(s.users()["Ann"].0, Status::Disabled);
    assert_eq!(s.users()["Bob"], active(&["b"]));
}

#[test]
fn unchanged_contacts_of_a_touched_user_stay_in_its_merge() {
    let mut s = Setup::new();
    // Two contacts with one address are one user.
    s.run(answer(vec![
        record("a1", "Ann"),
        record("a2", "Ann"),
        record("b", "Bob"),
        end(ReadMode::Full, "c1"),
    ]));
    assert_eq!(s.users()["Ann"], active(&["a1", "a2"]));
    // A new name for a1 alone, same address: a2, not mentioned, still
    // belongs to the user (not split off, not unlinked).
    let Item::Record(a1) = record("a1", "Ann") else {
        unreachable!()
    };
    let schema = Arc::clone(&a1.schema);
    let values = vec![
        "Ann Smith".into(),
        "ann@acme.example".into(),
        "partner".into(),
    ];
    let changed = Record::new(a1.location.clone(), schema, values).with_key("a1");
    let report = s.run(answer(vec![
        Item::Record(changed),
        end(ReadMode::Changes, "c2"),
    ]));
    assert_eq!(report.status, RunStatus::Applied);
    assert_eq!((report.counts.updated, report.counts.disabled), (1, 0));
    let users = s.users();
    assert_eq!(users.len(), 2, "{users:?}");
    assert!(
        users.values().any(|u| *u == active(&["a1", "a2"])),
        "{users:?}"
    );
}

#[test]
fn a_held_run_keeps_the_cursor_so_the_same_changes_come_again() {
    let mut s = Setup::new().seeded();
    // Three deletions, more than max_deprovision (2): held.
    let deletions = || {
        answer(vec![
            deleted("a"),
            deleted("b"),
            deleted("c"),
            end(ReadMode::Changes, "c2"),
        ])
    };
    let report = s.run(deletions());
    assert_eq!(report.status, RunStatus::Held);
    assert_eq!(s.cursor().as_deref(), Some("c1"));
    s.run(deletions());
    assert_eq!(s.last_request(), ReadRequest::changes(Cursor::new("c1")));
    let allowed = RunOptions {
        allow_mass_deprovision: true,
        ..RunOptions::default()
    };
    let report = s.run_with(deletions(), allowed);
    assert_eq!(report.status, RunStatus::Applied);
    assert_eq!(report.counts.disabled, 3);
    assert_eq!(s.cursor().as_deref(), Some("c2"));
}

#[test]
fn a_run_with_conflicts_keeps_the_cursor_so_the_refused_record_comes_again() {
    let mut s = Setup::new().seeded();
    // Ann takes Bob's address: her record is refused as a conflict and left
    // as it was. A full read would bring it again next time; a changes read
    // brings it again only from a cursor before it.
    let report = s.run(answer(vec![
        with_email("a", "Ann", "bob@acme.example"),
        end(ReadMode::Changes, "c2"),
    ]));
    assert_eq!(report.status, RunStatus::Applied);
    // Both contacts sharing the address are left as they were.
    assert_eq!(
        report.plan.conflicts.len(),
        2,
        "{:?}",
        report.plan.conflicts
    );
    assert_eq!(s.cursor().as_deref(), Some("c1"));
    // Bob moves to a new address: since c1, Ann's change comes again and now
    // applies.
    let report = s.run(answer(vec![
        with_email("a", "Ann", "bob@acme.example"),
        with_email("b", "Bob", "bob2@acme.example"),
        end(ReadMode::Changes, "c3"),
    ]));
    assert_eq!(s.last_request(), ReadRequest::changes(Cursor::new("c1")));
    assert!(
        report.plan.conflicts.is_empty(),
        "{:?}",
        report.plan.conflicts
    );
    let emails: BTreeMap<String, Option<String>> = s
        .store()
        .list_users(&UserFilter::default())
        .unwrap()
        .into_iter()
        .map(|u| (u.title, u.email))
        .collect();
    assert_eq!(emails["Ann"].as_deref(), Some("bob@acme.example"));
    assert_eq!(emails["Bob"].as_deref(), Some("bob2@acme.example"));
    assert_eq!(s.cursor().as_deref(), Some("c3"));
}

#[test]
fn a_read_without_its_end_fails_and_keeps_the_cursor() {
    let mut s = Setup::new().seeded();
    let report = s.run(answer(vec![deleted("a"), record("b", "Bob Brown")]));
    assert_eq!(report.status, RunStatus::Failed);
    let failure = report.failure.unwrap();
    assert_eq!(failure.kind, FailureKind::SourceIncomplete, "{failure}");
    assert!(failure.retryable);
    assert_eq!(s.users()["Ann"], active(&["a"]));
    assert_eq!(s.cursor().as_deref(), Some("c1"));
}

#[test]
fn a_source_error_mid_read_fails_with_its_kind_and_deprovisions_nobody() {
    let mut s = Setup::new().seeded();
    let mut items = answer(vec![deleted("a")]);
    items.push(Err(SourceError::Auth("401 Unauthorized".into())));
    let report = s.run(items);
    let failure = report.failure.unwrap();
    assert_eq!(
        (failure.kind, failure.retryable),
        (FailureKind::SourceAuth, false)
    );
    assert_eq!(s.users()["Ann"], active(&["a"]));
    assert_eq!(s.cursor().as_deref(), Some("c1"));
}

#[test]
fn a_dry_run_keeps_the_cursor() {
    let mut s = Setup::new().seeded();
    let dry = RunOptions {
        dry_run: true,
        ..RunOptions::default()
    };
    let report = s.run_with(answer(vec![end(ReadMode::Changes, "c2")]), dry);
    assert_eq!(report.status, RunStatus::DryRun);
    assert_eq!(s.cursor().as_deref(), Some("c1"));
}

#[test]
fn a_changes_request_answered_in_full_deprovisions_what_it_left_out() {
    let mut s = Setup::new().seeded();
    let report = s.run(answer(vec![
        record("a", "Ann"),
        record("b", "Bob"),
        end(ReadMode::Full, "c2"),
    ]));
    assert_eq!(s.last_request().mode, ReadMode::Changes);
    let read = report.read.unwrap();
    assert_eq!(read.mode, ReadMode::Full);
    assert_eq!(read.full_because, Some(super::run::ANSWERED_IN_FULL));
    assert_eq!(report.counts.disabled, 1);
    assert_eq!(s.users()["Cid"].0, Status::Disabled);
    assert_eq!(s.users()["Ann"], active(&["a"]));
}

#[test]
fn a_full_read_is_forced_by_the_option_by_full_every_and_by_a_mapping_change() {
    let mut s = Setup::new().seeded();
    let full = RunOptions {
        full: true,
        ..RunOptions::default()
    };
    let unchanged = || {
        answer(vec![
            record("a", "Ann"),
            record("b", "Bob"),
            record("c", "Cid"),
            end(ReadMode::Full, "c2"),
        ])
    };
    let report = s.run_with(unchanged(), full);
    assert_eq!(s.last_request(), ReadRequest::full());
    assert_eq!(
        report.read.unwrap().full_because,
        Some("a full read was asked for")
    );
    // full_every (1d by default) since the last full read.
    for _ in 0..23 {
        s.run(answer(vec![end(ReadMode::Changes, "c3")]));
        assert_eq!(s.last_request().mode, ReadMode::Changes);
    }
    s.run(unchanged());
    assert_eq!(s.last_request(), ReadRequest::full());
    // Another mapping: the cursor read under the old one is not used.
    s.run(answer(vec![end(ReadMode::Changes, "c4")]));
    assert_eq!(s.last_request().mode, ReadMode::Changes);
    s.reconfigure("    when: kind == 'partner'\n");
    let report = s.run(unchanged());
    assert_eq!(s.last_request(), ReadRequest::full());
    assert_eq!(
        report.read.unwrap().full_because,
        Some("the mapping or the connector settings changed since the cursor was stored")
    );
}

#[test]
fn an_expired_cursor_is_read_again_in_full_in_the_same_run() {
    let mut s = Setup::new().seeded();
    s.source
        .answers
        .lock()
        .unwrap()
        .push_back(vec![Err(SourceError::CursorExpired(
            "the server no longer knows cookie c1".into(),
        ))]);
    let report = s.run(answer(vec![
        record("a", "Ann"),
        record("b", "Bob"),
        end(ReadMode::Full, "c9"),
    ]));
    let requests = s.source.requests.lock().unwrap().clone();
    assert_eq!(
        requests[1..],
        [ReadRequest::changes(Cursor::new("c1")), ReadRequest::full()]
    );
    assert_eq!(report.status, RunStatus::Applied, "{:?}", report.failure);
    let read = report.read.unwrap();
    assert_eq!(
        (read.mode, read.full_because),
        (ReadMode::Full, Some("the stored cursor expired"))
    );
    // Cid was not in the full read: he left.
    assert_eq!(s.users()["Cid"].0, Status::Disabled);
    assert_eq!(s.cursor().as_deref(), Some("c9"));
}

#[test]
fn full_every_never_reads_changes_until_asked() {
    let mut s = Setup::with_source_keys("    full_every: never\n").seeded();
    for _ in 0..30 {
        s.run(answer(vec![end(ReadMode::Changes, "c2")]));
        assert_eq!(s.last_request().mode, ReadMode::Changes);
    }
}

#[test]
fn a_changes_read_fails_on_its_own_bad_rows_only() {
    let mut s = Setup::with_source_keys("    max_bad_row_ratio: 0.1\n").seeded();
    // One bad record of two: 50 %, over the ratio (10 %).
    let report = s.run(answer(vec![
        record("b", "Bob Brown"),
        bad("c"),
        end(ReadMode::Changes, "c2"),
    ]));
    assert_eq!(report.failure.unwrap().kind, FailureKind::BadRows);
    // One of eleven (9.1 %) is within it. A bad record with its key counts as present: Cid keeps his links.
    let report = s.run(answer(vec![
        record("b", "Bob Brown"),
        record("a", "Ann Smith"),
        record("d", "Dan"),
        record("e", "Eve"),
        record("f", "Fay"),
        record("g", "Gus"),
        record("h", "Hal"),
        record("i", "Ida"),
        record("j", "Jon"),
        record("k", "Kim"),
        bad("c"),
        end(ReadMode::Changes, "c2"),
    ]));
    assert_eq!(report.status, RunStatus::Applied, "{:?}", report.failure);
    assert_eq!(report.errors.len(), 1);
    assert_eq!(s.users()["Cid"], active(&["c"]));
}

/// Counts what a changes read looks up.
#[derive(Default)]
struct CountingLookup {
    stored: BTreeMap<String, Anchor>,
    asked: Vec<String>,
    all: usize,
}

impl AnchorLookup for CountingLookup {
    fn anchors_of(
        &mut self,
        ids: &[&str],
        found: &mut dyn FnMut(&str, Anchor),
    ) -> Result<(), StoreError> {
        for id in ids {
            self.asked.push((*id).to_owned());
            if let Some(anchor) = self.stored.get(*id) {
                found(id, *anchor);
            }
        }
        Ok(())
    }

    fn all_anchors(&mut self, found: &mut dyn FnMut(&str, Anchor)) -> Result<(), StoreError> {
        self.all += 1;
        for (id, anchor) in &self.stored {
            found(id, *anchor);
        }
        Ok(())
    }
}

/// `items` read for `request` with `lookup` (a changes read) or not.
fn read_items(
    request: &ReadRequest,
    items: Vec<Item>,
    lookup: Option<&mut dyn AnchorLookup>,
) -> Result<ReadResult, ReadFailure> {
    let connector = Scripted::default();
    connector.answers.lock().unwrap().push_back(answer(items));
    let reading = Reading {
        request,
        ctx: &ReadContext::default(),
        mapping: &Mapping::standard(),
        max_bad_row_ratio: Ratio::percent(100),
    };
    read_source(&connector, &reading, StoredContacts::default(), lookup)
}

fn thousand_stored() -> CountingLookup {
    let stored = (0..1000)
        .map(|i| {
            let anchor = Anchor {
                user: UserId(i + 1),
                linked: true,
                fingerprint: 0,
                content: 0,
            };
            (format!("k{i}"), anchor)
        })
        .collect();
    CountingLookup {
        stored,
        ..CountingLookup::default()
    }
}

#[test]
fn a_changes_read_looks_up_only_the_keys_it_names() {
    let mut lookup = thousand_stored();
    let request = ReadRequest::changes(Cursor::new("c1"));
    let items = vec![
        record("k1", "Ann"),
        deleted("k2"),
        record("new", "Dan"),
        end(ReadMode::Changes, "c2"),
    ];
    let read = read_items(&request, items, Some(&mut lookup)).unwrap();
    lookup.asked.sort();
    assert_eq!(lookup.asked, ["k1", "k2", "new"]);
    assert_eq!(lookup.all, 0);
    assert_eq!(read.left().count(), 1);
    assert!(read.still_present("k500"));
    assert!(!read.still_present("k2"));
}

#[test]
fn a_changes_request_answered_in_full_loads_every_anchor_once() {
    let mut lookup = thousand_stored();
    let request = ReadRequest::changes(Cursor::new("c1"));
    let items = vec![record("k1", "Ann"), end(ReadMode::Full, "c2")];
    let read = read_items(&request, items, Some(&mut lookup)).unwrap();
    assert_eq!(lookup.all, 1);
    // Everyone but k1 left.
    assert_eq!(read.left().count(), 999);
    assert!(!read.still_present("k500"));
}

#[test]
fn reads_that_break_the_contract_fail_as_invalid() {
    let full = ReadRequest::full();
    let changes = ReadRequest::changes(Cursor::new("c1"));
    let cases: Vec<(&ReadRequest, Vec<Item>, &str)> = vec![
        (
            &full,
            vec![end(ReadMode::Full, "a"), end(ReadMode::Full, "b")],
            "a second end item",
        ),
        (
            &full,
            vec![end(ReadMode::Full, "a"), record("k1", "Ann")],
            "record k1: a record after the end item",
        ),
        (
            &full,
            vec![deleted("k1"), end(ReadMode::Full, "a")],
            "deletion k1: a deletion in a full read",
        ),
        (
            &full,
            vec![end(ReadMode::Changes, "a")],
            "asked for a full read, the connector delivered only changes",
        ),
    ];
    for (request, items, expected) in cases {
        let mut lookup = CountingLookup::default();
        let lookup =
            (request.mode == ReadMode::Changes).then_some(&mut lookup as &mut dyn AnchorLookup);
        match read_items(request, items, lookup) {
            Err(ReadFailure::Source(SourceError::Invalid(message))) => {
                assert!(message.contains(expected), "{message:?} lacks {expected:?}");
            }
            other => panic!("{expected}: {other:?}"),
        }
    }
    // A changes request may be answered with a changes read.
    let mut lookup = CountingLookup::default();
    let read = read_items(
        &changes,
        vec![end(ReadMode::Changes, "c2")],
        Some(&mut lookup),
    );
    assert_eq!(read.unwrap().cursor(), Some(&Cursor::new("c2")));
}

#[test]
fn a_read_without_its_end_is_incomplete_unless_cancelled() {
    let read = read_items(&ReadRequest::full(), vec![record("k1", "Ann")], None);
    assert!(
        matches!(read, Err(ReadFailure::Source(SourceError::Incomplete(_)))),
        "{read:?}"
    );
}
