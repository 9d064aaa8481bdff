//! Orchestrating one run of one source against a store, as named phases:
//! load anchors → read → load state → siblings → plan → guard → commit. Each
//! phase is a `tracing` span (`RUST_LOG=liaison=debug` shows its timing).

use std::collections::HashSet;

use liaison_plugin_api::{Connector, ReadMode, ReadRequest};
use serde::Serialize;
use tracing::{debug, debug_span, info, info_span, warn};

use super::cancel::Cancel;
use super::context::{read_context, ReadRuntime};
use super::failure::{FailureKind, RunFailure};
use super::read::{
    read_source, AnchorLookup, ReadFailure, ReadResult, Reading, RowError, SeenState,
    StoredContacts,
};
use super::settings::{plan_settings_digest, read_digest};
use crate::config::{Config, SourceConfig};
use crate::mapping::Mapping;
use crate::model::{derive_login_base, ContactRecord};
use crate::reconcile::{self, GuardLimits, Plan, PlanCounts, PlanOptions, SourceInput, State};
use crate::store::{Anchor, CursorWrite, RunRecord, StateRequest, Store, StoreError};

/// Above this many changed records every taken login is loaded at once
/// (cheaper than one range query per login base); see
/// [`RunOptions::all_logins_above`].
pub const ALL_LOGINS_THRESHOLD: usize = 20_000;

/// How a run should behave.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Plan only; write nothing at all (inside a store rehearsal, the plan is
    /// applied to the rehearsal, so the next source plans on top of it).
    pub dry_run: bool,
    /// Apply deprovisions even when the guard would hold them.
    pub allow_mass_deprovision: bool,
    /// The run's time (ms since the Unix epoch).
    pub now_ms: i64,
    /// Above this many changed records every taken login is loaded at once;
    /// [`ALL_LOGINS_THRESHOLD`] by default, settable so tests cover both paths.
    pub all_logins_above: usize,
    /// Set from another thread to stop the run at its next safe point; a
    /// cancelled run applies nothing.
    pub cancel: Cancel,
    /// Read in full whatever the stored cursor (`sync --once --full`).
    pub full: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            dry_run: false,
            allow_mass_deprovision: false,
            now_ms: 0,
            all_logins_above: ALL_LOGINS_THRESHOLD,
            cancel: Cancel::default(),
            full: false,
        }
    }
}

/// How a run ended (SPEC §5 `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Applied in full.
    Applied,
    /// Applied except the deprovisions the guard held.
    Held,
    /// Nothing applied: the source failed or read partially.
    Failed,
    /// Nothing applied on purpose.
    DryRun,
}

impl RunStatus {
    /// The status word, as in the run history and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Applied => "applied",
            RunStatus::Held => "held",
            RunStatus::Failed => "failed",
            RunStatus::DryRun => "dry_run",
        }
    }
}

/// The outcome of one run of one source.
#[derive(Debug)]
pub struct RunReport {
    /// The source.
    pub source: String,
    /// How it ended.
    pub status: RunStatus,
    /// The plan (empty when the read failed).
    pub plan: Plan,
    /// Users per kind of change (what was applied, or would be for a dry run).
    pub counts: PlanCounts,
    /// Row errors and conflicts.
    pub errors: Vec<RowError>,
    /// Why the run failed, if it did.
    pub failure: Option<RunFailure>,
    /// How the source was read (`None` when the read failed).
    pub read: Option<ReadSummary>,
}

/// [`ReadSummary::full_because`] of a changes request the connector answered
/// in full by itself.
pub const ANSWERED_IN_FULL: &str = "the connector answered the changes request in full";

/// How a run read its source: the mode delivered and why it was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSummary {
    /// What the connector delivered.
    pub mode: ReadMode,
    /// Why the run asked for a full read, when it did, or
    /// [`ANSWERED_IN_FULL`] when it asked for changes and got a full read.
    pub full_because: Option<&'static str>,
    /// Deletions the read named (changes reads only).
    pub deletions: usize,
}

/// Runs one source: reads it, plans, guards and (unless a dry run) applies.
/// Store errors abort; a failing source is a report with status `failed`.
pub fn run_source(
    config: &Config,
    source: &SourceConfig,
    store: &mut dyn Store,
    opts: RunOptions,
) -> Result<RunReport, StoreError> {
    let connector = crate::plugins::build(&source.connector);
    run_source_with(config, source, connector.as_ref(), store, opts)
}

/// [`run_source`] reading through `connector` instead of the one the
/// source's config builds: the seam library tests drive a fake source through.
pub fn run_source_with(
    config: &Config,
    source: &SourceConfig,
    connector: &dyn Connector,
    store: &mut dyn Store,
    opts: RunOptions,
) -> Result<RunReport, StoreError> {
    let _run = info_span!("run", source = %source.name).entered();
    let opts = &opts;
    let mapping = match compile_mapping(source) {
        Ok(m) => m,
        Err(msg) => {
            let failure = RunFailure::new(FailureKind::Config, msg);
            return fail(store, &source.name, opts, Vec::new(), failure);
        }
    };
    let settings = plan_settings_digest(config);
    let read_with = read_digest(source, &mapping);
    let choice = choose_read(store, source, settings, read_with, opts)?;
    let (choice, outcome) = read_falling_back(choice, |choice| {
        let phase = ReadPhase {
            config,
            source,
            connector,
            mapping: &mapping,
            choice,
        };
        read_phase(&phase, store, opts)
    });
    let mut read = match outcome {
        Ok(r) => r,
        Err((errors, failure)) => return fail(store, &source.name, opts, errors, failure),
    };
    // Emptiness is judged by the records kept (`when:` may drop every row);
    // a changes read says nothing about the rest of the source.
    let source_empty = read.delivered() == ReadMode::Full
        && read.read_as(|s| s != SeenState::Left).next().is_none();
    let summary = ReadSummary {
        mode: read.delivered(),
        full_because: choice.full_because.or_else(|| {
            // The connector's own decision (an expired LDAP cookie, a
            // cursor it cannot use); it logs why.
            (read.delivered() == ReadMode::Full && choice.request.mode == ReadMode::Changes)
                .then_some(ANSWERED_IN_FULL)
        }),
        deletions: read.deletions,
    };
    let cursor = CursorWrite {
        cursor: read.cursor().cloned(),
        read_with,
        full: summary.mode == ReadMode::Full,
    };
    if opts.cancel.is_cancelled() {
        return cancelled(store, &source.name, opts);
    }
    let mut state = load_state_phase(config, source, store, &read, opts)?;
    let all_logins = read.changed.len() > opts.all_logins_above;
    let (input, skipped, first_sibling) = siblings(&mut read, &state, &source.name);
    if !all_logins {
        let siblings = input.records.get(first_sibling..).unwrap_or_default();
        load_sibling_logins(store, &source.name, siblings, &mut state)?;
    }
    if opts.cancel.is_cancelled() {
        return cancelled(store, &source.name, opts);
    }
    let mut plan = plan_phase(config, input, &state, opts);
    plan.unchanged += skipped;
    plan.refreshed
        .extend(read.renewed().map(|(id, f)| (id.to_owned(), f)));
    let held = guard_phase(config, &source.name, store, &mut plan, source_empty, opts)?;
    let errors = row_errors(read, &plan, &source.name);
    drop(state);
    if opts.cancel.is_cancelled() {
        return cancelled(store, &source.name, opts);
    }
    let marks = Marks {
        settings,
        cursor: Some(cursor),
    };
    let mut report = commit(store, &source.name, plan, errors, held, marks, opts)?;
    report.read = Some(summary);
    Ok(report)
}

/// A store error during the run of one of several sources.
#[derive(Debug, thiserror::Error)]
#[error("source {name}")]
pub struct SourceRunError {
    /// The source whose run failed.
    pub name: String,
    /// What the store said.
    #[source]
    pub error: StoreError,
}

/// Runs `sources` one after another on one store, as `sync --once` does. A
/// dry run over several sources rehearses: each source plans on top of what
/// the ones before it would apply (undone at the end), so `plan` shows
/// exactly what `sync` then does.
pub fn run_sources(
    config: &Config,
    sources: &[&SourceConfig],
    store: &mut dyn Store,
    opts: RunOptions,
) -> Result<Vec<RunReport>, SourceRunError> {
    let rehearse = opts.dry_run && sources.len() > 1;
    let name_of = |i: usize| sources.get(i).map(|s| s.name.clone()).unwrap_or_default();
    if rehearse {
        store.begin_rehearsal().map_err(|error| SourceRunError {
            name: name_of(0),
            error,
        })?;
    }
    let mut reports = Vec::with_capacity(sources.len());
    let mut outcome = Ok(());
    for s in sources {
        match run_source(config, s, store, opts.clone()) {
            Ok(report) => reports.push(report),
            Err(error) => {
                outcome = Err(SourceRunError {
                    name: s.name.clone(),
                    error,
                });
                break;
            }
        }
    }
    if rehearse {
        // Undone whatever happened; a failed undo is the error to report.
        store.end_rehearsal().map_err(|error| SourceRunError {
            name: name_of(reports.len().min(sources.len().saturating_sub(1))),
            error,
        })?;
    }
    outcome.map(|()| reports)
}

/// Retires a source that is no longer in the config: as if it returned
/// nothing, its contacts are unlinked and `sync` users left without contacts
/// are disabled (and, past `delete_after`, deleted), through the safety guard
/// — except the "suddenly empty" rule, since emptiness is what was asked for.
pub fn retire_source(
    config: &Config,
    source: &str,
    store: &mut dyn Store,
    opts: RunOptions,
) -> Result<RunReport, StoreError> {
    let _run = info_span!("retire", source).entered();
    let opts = &opts;
    let settings = plan_settings_digest(config);
    let mut request = StateRequest {
        source: source.to_owned(),
        disabled_before: config
            .deprovision
            .delete_after
            .map(|d| opts.now_ms.saturating_sub(d.as_millis() as i64)),
        ..StateRequest::default()
    };
    store.for_each_anchor(source, &mut |_, anchor| {
        if anchor.linked {
            request.users.insert(anchor.user);
        }
    })?;
    let state = store.load_state(&request)?;
    let input = SourceInput {
        source: source.to_owned(),
        ..SourceInput::default()
    };
    let mut plan = plan_phase(config, input, &state, opts);
    let held = guard_phase(config, source, store, &mut plan, false, opts)?;
    drop(state);
    // A retired source forgets its cursor: added back, it reads in full.
    let forget = CursorWrite {
        cursor: None,
        read_with: 0,
        full: false,
    };
    let marks = Marks {
        settings,
        cursor: Some(forget),
    };
    commit(store, source, plan, Vec::new(), held, marks, opts)
}

/// The source's mapping: its `map:` compiled, or the standard layout.
pub fn compile_mapping(source: &SourceConfig) -> Result<Mapping, String> {
    match &source.map {
        Some(spec) => Mapping::compile(spec).map_err(|errs| {
            // validate refuses such a config; keep the daemon honest anyway.
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        }),
        None => Ok(Mapping::standard()),
    }
}

/// How a run reads its source: the request, and why it is a full one.
struct ReadChoice {
    request: ReadRequest,
    /// Why the read is full (`None` for a changes read).
    full_because: Option<&'static str>,
    /// The plan settings changed since the source's last applied run: every
    /// record is planned again once (an unchanged row would otherwise never
    /// see the new settings), which takes a full read.
    replan: bool,
}

/// Decides how the run reads (SPEC §2): changes since the stored cursor,
/// unless a full read is asked for, there is no cursor, the mapping or the
/// connector settings or the plan settings changed since it was stored, or
/// `full_every` has passed since the last full read.
fn choose_read(
    store: &mut dyn Store,
    source: &SourceConfig,
    settings: u64,
    read_with: u64,
    opts: &RunOptions,
) -> Result<ReadChoice, StoreError> {
    let replan = store.plan_settings(&source.name)? != Some(settings);
    let stored = store.source_cursor(&source.name)?;
    let full_because = match &stored {
        _ if opts.full => Some("a full read was asked for"),
        None => Some("no cursor is stored"),
        Some(stored) if stored.cursor.is_none() => Some("the source gives no cursor"),
        Some(stored) if stored.read_with != read_with => {
            Some("the mapping or the connector settings changed since the cursor was stored")
        }
        _ if replan => Some("the plan settings changed"),
        Some(stored) => match (source.full_every, stored.last_full_ms) {
            (None, _) => None,
            (Some(_), None) => Some("full_every: no full read is recorded"),
            (Some(every), Some(last)) => (opts.now_ms.saturating_sub(last)
                >= every.as_millis() as i64)
                .then_some("full_every has passed since the last full read"),
        },
    };
    let request = match (&full_because, stored.and_then(|s| s.cursor)) {
        (None, Some(cursor)) => ReadRequest::changes(cursor),
        _ => ReadRequest::full(),
    };
    if let Some(why) = full_because {
        debug!(why, "reading in full");
    }
    Ok(ReadChoice {
        request,
        full_because,
        replan,
    })
}

/// What a read phase gives: the read, or its row errors and why it failed.
type ReadOutcome = Result<ReadResult, (Vec<RowError>, RunFailure)>;

/// Reads as `choice` asks (with `read`); a changes read whose cursor the
/// source no longer knows is read again in full at once, rather than failing
/// every run until someone forces one.
fn read_falling_back(
    choice: ReadChoice,
    mut read: impl FnMut(&ReadChoice) -> ReadOutcome,
) -> (ReadChoice, ReadOutcome) {
    let outcome = read(&choice);
    match &outcome {
        Err((_, failure))
            if failure.kind == FailureKind::CursorExpired
                && choice.request.mode == ReadMode::Changes =>
        {
            info!(reason = %failure, "the stored cursor expired: reading in full");
            let full = ReadChoice {
                request: ReadRequest::full(),
                full_because: Some("the stored cursor expired"),
                replan: choice.replan,
            };
            let outcome = read(&full);
            (full, outcome)
        }
        _ => (choice, outcome),
    }
}

/// Phase 1: the source's stored anchors, for a full read: all of them. A
/// changes read starts from none and looks up those it names.
fn load_anchors(
    store: &mut dyn Store,
    source: &str,
    choice: &ReadChoice,
) -> Result<StoredContacts, StoreError> {
    let _phase = debug_span!("load_anchors").entered();
    let mut known = StoredContacts::default();
    if choice.request.mode == ReadMode::Changes {
        return Ok(known);
    }
    store.for_each_anchor(source, &mut |id, anchor| known.push(id, anchor))?;
    if !known.is_empty() && choice.replan {
        info!(
            source,
            "plan settings changed since the last run: every record is planned again"
        );
        known.replan_all();
    }
    debug!(anchors = known.len(), "anchors loaded");
    Ok(known)
}

/// Looks up the anchors a changes read names in the store.
struct StoreAnchors<'s> {
    store: &'s mut dyn Store,
    source: &'s str,
}

impl AnchorLookup for StoreAnchors<'_> {
    fn anchors_of(
        &mut self,
        ids: &[&str],
        found: &mut dyn FnMut(&str, Anchor),
    ) -> Result<(), StoreError> {
        self.store.anchors_of(self.source, ids, found)
    }

    fn all_anchors(&mut self, found: &mut dyn FnMut(&str, Anchor)) -> Result<(), StoreError> {
        self.store.for_each_anchor(self.source, found)
    }
}

/// What phase 2 reads the source with.
#[derive(Clone, Copy)]
struct ReadPhase<'a> {
    config: &'a Config,
    source: &'a SourceConfig,
    connector: &'a dyn Connector,
    mapping: &'a Mapping,
    choice: &'a ReadChoice,
}

/// Phase 2: the source read and digested as `choice` asks; an incomplete
/// read is the row errors and the reason.
fn read_phase(
    phase: &ReadPhase<'_>,
    store: &mut dyn Store,
    opts: &RunOptions,
) -> Result<ReadResult, (Vec<RowError>, RunFailure)> {
    let ReadPhase {
        config,
        source,
        connector,
        mapping,
        choice,
    } = *phase;
    let store_failed = |e: StoreError| (Vec::new(), RunFailure::from_store(&e));
    let known = load_anchors(store, &source.name, choice).map_err(store_failed)?;
    let _phase = debug_span!("read", mode = %choice.request.mode).entered();
    let runtime = ReadRuntime::get().map_err(|e| {
        let message = format!("cannot start the runtime the connector reads on: {e}");
        (
            Vec::new(),
            RunFailure::new(FailureKind::SourceUnreachable, message),
        )
    })?;
    let ctx = read_context(opts.cancel.clone(), opts.now_ms, &runtime);
    let reading = Reading {
        request: &choice.request,
        ctx: &ctx,
        mapping,
        max_bad_row_ratio: source
            .max_bad_row_ratio
            .unwrap_or(config.safety.max_bad_row_ratio),
    };
    let mut lookup = StoreAnchors {
        store,
        source: &source.name,
    };
    let lookup =
        (choice.request.mode == ReadMode::Changes).then_some(&mut lookup as &mut dyn AnchorLookup);
    match read_source(connector, &reading, known, lookup) {
        Ok(read) => {
            debug!(
                rows = read.rows,
                changed = read.changed.len(),
                bad = read.bad_rows,
                deletions = read.deletions,
                delivered = %read.delivered(),
                "source read"
            );
            Ok(read)
        }
        Err(ReadFailure::TooManyBadRows {
            bad,
            rows,
            limit,
            errors,
        }) => {
            // The row errors are the useful part: keep them in the report.
            let failure = RunFailure::from_read(&ReadFailure::TooManyBadRows {
                bad,
                rows,
                limit,
                errors: Vec::new(),
            });
            Err((errors, failure))
        }
        Err(ReadFailure::Cancelled) => Err((Vec::new(), RunFailure::cancelled())),
        Err(e) => Err((Vec::new(), RunFailure::from_read(&e))),
    }
}

/// Phase 3: the slice of the store the plan needs — the users the changed
/// records and the contacts that left touch, the users sharing their e-mails,
/// the expired users of this source, and every login a new user could want.
fn load_state_phase(
    config: &Config,
    source: &SourceConfig,
    store: &mut dyn Store,
    read: &ReadResult,
    opts: &RunOptions,
) -> Result<State, StoreError> {
    let _phase = debug_span!("load_state").entered();
    let mut request = StateRequest {
        source: source.name.clone(),
        all_logins: read.changed.len() > opts.all_logins_above,
        // A changed record may share its address with an unchanged contact
        // of this source whose user has another one (a first load has none).
        // (A changes read knows only the stored contacts it named.)
        contacts_by_email: !read.changed.is_empty()
            && (read.has_stored_contacts() || read.delivered() == ReadMode::Changes),
        disabled_before: config
            .deprovision
            .delete_after
            .map(|d| opts.now_ms.saturating_sub(d.as_millis() as i64)),
        ..StateRequest::default()
    };
    for r in &read.changed {
        request.emails.insert(r.email_normalized());
        if let Some(a) = read.anchor(r.contact_id()) {
            request.users.insert(a.user);
        }
        // Any changed record may need a new user, anchored or not: an
        // e-mail change can split a contact off its user.
        if !request.all_logins {
            request
                .login_bases
                .insert(derive_login_base(r.name(), r.email_local_part()));
            if let Some(l) = r.login() {
                request.login_bases.insert(l.to_string());
            }
        }
    }
    // Contacts that left the source: their users lose them.
    request
        .users
        .extend(read.left().filter(|a| a.linked).map(|a| a.user));
    let mut state = store.load_state(&request)?;
    drop(request);
    close_over_addresses(store, &source.name, &mut state)?;
    debug!(
        users = state.users.len(),
        contacts = state.contacts.len(),
        rss_mb = crate::clock::rss_mb(),
        peak_mb = crate::clock::peak_rss_mb(),
        "state loaded"
    );
    Ok(state)
}

/// Rounds of [`close_over_addresses`] at most; each round adds the users
/// holding addresses of the contacts loaded so far (measured: histories of
/// two sources need at most two).
const ADDRESS_ROUNDS: usize = 8;

/// Loads the users holding an address of any loaded contact (as their own
/// address, or a linked contact's of this source), with their contacts, until
/// no new one turns up: a touched user may end the run with any of its
/// contacts' addresses, and the planner must see who holds it and group the
/// contacts sharing it.
fn close_over_addresses(
    store: &mut dyn Store,
    source: &str,
    state: &mut State,
) -> Result<(), StoreError> {
    for _ in 0..ADDRESS_ROUNDS {
        let held: HashSet<&str> = state
            .users
            .values()
            .filter_map(|u| u.email.as_ref().map(|e| e.normalized()))
            .collect();
        let wanted: HashSet<String> = state
            .contacts
            .iter()
            .map(|c| c.record.email_normalized())
            .filter(|e| !held.contains(e))
            .map(str::to_owned)
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let request = StateRequest {
            source: source.to_owned(),
            emails: wanted.iter().map(String::as_str).collect(),
            contacts_by_email: true,
            ..StateRequest::default()
        };
        let more = store.load_state(&request)?;
        state.unlinked_accounts.extend(more.unlinked_accounts);
        let before = state.users.len();
        for (id, user) in more.users {
            state.users.entry(id).or_insert(user);
        }
        if state.users.len() == before {
            return Ok(());
        }
        let known: HashSet<(String, String)> = state
            .contacts
            .iter()
            .map(|c| (c.source.clone(), c.record.contact_id().to_owned()))
            .collect();
        state.contacts.extend(
            more.contacts
                .into_iter()
                .filter(|c| !known.contains(&(c.source.clone(), c.record.contact_id().to_owned()))),
        );
    }
    Ok(())
}

/// Phase 4: the planner's input — the changed records plus the unchanged
/// contacts of the users they touch, so grouping by e-mail sees every row of
/// those users. Also returns how many users stay unchanged unseen, and
/// where the siblings start in the input's records.
fn siblings(read: &mut ReadResult, state: &State, source: &str) -> (SourceInput, usize, usize) {
    let _phase = debug_span!("siblings").entered();
    let mut records = read.take_changed();
    let first_sibling = records.len();
    let mut in_plan: HashSet<&str> = HashSet::new();
    for c in &state.contacts {
        // Read unchanged, or (in a changes read) not mentioned: still there.
        if c.source == source && c.linked && read.still_present(c.record.contact_id()) {
            records.push(c.record.clone());
            in_plan.insert(c.record.contact_id());
        }
    }
    // Users behind unchanged contacts that the planner never saw: unchanged too.
    let mut skipped: Vec<i64> = read
        .read_as(|s| s == SeenState::Unchanged)
        .filter(|(id, _)| !in_plan.contains(id))
        .filter_map(|(_, a)| a.map(|a| a.user))
        .filter(|u| !state.users.contains_key(u))
        .map(|u| u.0)
        .collect();
    skipped.sort_unstable();
    skipped.dedup();
    let input = SourceInput {
        source: source.to_owned(),
        records,
        unreadable: read
            .read_as(|s| s == SeenState::Unreadable)
            .map(|(id, _)| id.to_owned())
            .collect(),
    };
    (input, skipped.len(), first_sibling)
}

/// Phase 4b: the taken logins the siblings could collide with. An unchanged
/// contact can be split off its user (a changed sibling with another address
/// keeps the user) and become a new user, whose login must be checked against
/// every taken one, not only those the changed records asked for.
fn load_sibling_logins(
    store: &mut dyn Store,
    source: &str,
    siblings: &[ContactRecord],
    state: &mut State,
) -> Result<(), StoreError> {
    if siblings.is_empty() {
        return Ok(());
    }
    let mut request = StateRequest {
        source: source.to_owned(),
        ..StateRequest::default()
    };
    for r in siblings {
        request
            .login_bases
            .insert(derive_login_base(r.name(), r.email_local_part()));
        if let Some(l) = r.login() {
            request.login_bases.insert(l.to_owned());
        }
    }
    let logins = store.load_state(&request)?.taken_logins;
    state.taken_logins.extend(logins);
    Ok(())
}

/// Phase 5: the pure planner.
fn plan_phase(config: &Config, input: SourceInput, state: &State, opts: &RunOptions) -> Plan {
    let _phase = debug_span!("plan", records = input.records.len()).entered();
    let plan_opts = PlanOptions {
        source_order: config.sources.iter().map(|s| s.name.clone()).collect(),
        default_locale: config.default_locale.clone(),
        delete_after_ms: config
            .deprovision
            .delete_after
            .map(|d| d.as_millis() as i64),
        now_ms: opts.now_ms,
    };
    let mut plan = reconcile::plan(input, state, &plan_opts);
    plan.outbox = crate::store::OutboxPolicy::of(config.mail.as_ref());
    debug!(
        rss_mb = crate::clock::rss_mb(),
        peak_mb = crate::clock::peak_rss_mb(),
        "planned"
    );
    plan
}

/// Phase 6: the safety guard; true when it held the plan's deprovisions.
fn guard_phase(
    config: &Config,
    source: &str,
    store: &mut dyn Store,
    plan: &mut Plan,
    source_empty: bool,
    opts: &RunOptions,
) -> Result<bool, StoreError> {
    let _phase = debug_span!("guard").entered();
    let limits = GuardLimits {
        max_deprovision: config.safety.max_deprovision,
        max_deprovision_ratio: config.safety.max_deprovision_ratio,
        // Only a plan that deprovisions needs the ratio's base (a full count).
        active_before: if plan.deprovisions.is_empty() {
            0
        } else {
            store.active_linked(source)?
        },
        source_empty,
        allow_mass_deprovision: opts.allow_mass_deprovision,
    };
    let held = reconcile::guard(plan, &limits);
    if let Some(first) = plan.held.first() {
        warn!(held = plan.held.len(), reason = %first.reason, "deprovisions held by the safety guard");
    }
    Ok(held)
}

/// The read's row errors followed by the plan's conflicts, each located.
fn row_errors(mut read: ReadResult, plan: &Plan, source: &str) -> Vec<RowError> {
    let mut errors = std::mem::take(&mut read.errors);
    for c in &plan.conflicts {
        errors.push(RowError {
            location: read
                .seen(&c.contact_id)
                .map(|(_, at)| at.to_string())
                .unwrap_or_else(|| format!("{source}: contact {}", c.contact_id)),
            message: c.message.clone(),
        });
    }
    errors
}

/// What a run stores beside its plan: the plan settings it was planned with
/// and the cursor its read ended with.
struct Marks {
    settings: u64,
    cursor: Option<CursorWrite>,
}

/// Phase 7: applies the plan with its run record in one transaction (a dry
/// run writes nothing, not even its run record, unless the store rehearses).
fn commit(
    store: &mut dyn Store,
    source: &str,
    plan: Plan,
    errors: Vec<RowError>,
    held: bool,
    marks: Marks,
    opts: &RunOptions,
) -> Result<RunReport, StoreError> {
    let _phase = debug_span!("commit").entered();
    let status = match (opts.dry_run, held) {
        (true, _) => RunStatus::DryRun,
        (false, true) => RunStatus::Held,
        (false, false) => RunStatus::Applied,
    };
    let counts = plan.counts();
    if !opts.dry_run || store.rehearsing() {
        let run = RunRecord {
            source: source.to_owned(),
            started_ms: opts.now_ms,
            finished_ms: crate::clock::now_ms(),
            status: status.as_str(),
            counts,
            errors: errors.len(),
            settings: marks.settings,
            failure: None,
            // Only an applied run moves the cursor: a held one reads the
            // same changes (and its held deletions) again next time. So does
            // a run with conflicts: their records were left as they were, and
            // a changes read past them would never bring them again (a full
            // read would, every time, until the clash is gone).
            cursor: marks
                .cursor
                .filter(|_| status == RunStatus::Applied && plan.conflicts.is_empty()),
        };
        match store.apply(&plan, &run, opts.now_ms, &opts.cancel) {
            // Rolled back before its commit: nothing applied.
            Err(StoreError::Cancelled) => return cancelled(store, source, opts),
            applied => applied?,
        }
        debug!(
            rss_mb = crate::clock::rss_mb(),
            peak_mb = crate::clock::peak_rss_mb(),
            "applied"
        );
        debug!(
            status = status.as_str(),
            created = counts.created,
            updated = counts.updated,
            disabled = counts.disabled,
            enabled = counts.enabled,
            deleted = counts.deleted,
            "run applied"
        );
    }
    Ok(RunReport {
        source: source.to_owned(),
        status,
        plan,
        counts,
        errors,
        failure: None,
        read: None,
    })
}

/// A run stopped at a safe point by [`RunOptions::cancel`]: nothing applied.
fn cancelled(
    store: &mut dyn Store,
    source: &str,
    opts: &RunOptions,
) -> Result<RunReport, StoreError> {
    fail(store, source, opts, Vec::new(), RunFailure::cancelled())
}

/// A run that applied nothing; recorded in the run history unless it was a dry run.
fn fail(
    store: &mut dyn Store,
    source: &str,
    opts: &RunOptions,
    errors: Vec<RowError>,
    failure: RunFailure,
) -> Result<RunReport, StoreError> {
    // The caller reports it (the CLI's report, the daemon's one line per run).
    debug!(kind = %failure.kind, error = %failure, "source run failed; nothing applied");
    if !opts.dry_run {
        store.record_run(&RunRecord {
            source: source.to_owned(),
            started_ms: opts.now_ms,
            finished_ms: crate::clock::now_ms(),
            status: RunStatus::Failed.as_str(),
            counts: PlanCounts::default(),
            errors: errors.len(),
            settings: 0,
            failure: Some(failure.clone()),
            cursor: None,
        })?;
    }
    Ok(RunReport {
        source: source.to_owned(),
        status: RunStatus::Failed,
        plan: Plan {
            source: source.to_owned(),
            ..Plan::default()
        },
        counts: PlanCounts::default(),
        errors,
        failure: Some(failure),
        read: None,
    })
}
