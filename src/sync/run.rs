//! Orchestrating one run of one source against a store.

use std::collections::HashSet;

use serde::Serialize;
use tracing::{debug, info, warn};

use super::read::{read_source, ReadFailure, RowError, SeenState, StoredContacts};
use crate::config::{Config, SourceConfig};
use crate::mapping::Mapping;
use crate::model::derive_login_base;
use crate::reconcile::{self, GuardLimits, Plan, PlanCounts, PlanOptions, SourceInput};
use crate::store::{RunRecord, StateRequest, Store, StoreError};

/// Above this many changed records every taken login is loaded at once.
const ALL_LOGINS_THRESHOLD: usize = 20_000;

/// How a run should behave.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Plan only; write nothing at all.
    pub dry_run: bool,
    /// Apply deprovisions even when the guard would hold them.
    pub allow_mass_deprovision: bool,
    /// The run's time (ms since the Unix epoch).
    pub now_ms: i64,
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
    pub failure: Option<String>,
}

/// Runs one source: reads it, plans, guards and (unless a dry run) applies.
/// Store errors abort; a failing source is a report with status `failed`.
pub fn run_source(
    config: &Config,
    source: &SourceConfig,
    store: &mut dyn Store,
    opts: RunOptions,
) -> Result<RunReport, StoreError> {
    let started = opts.now_ms;
    let mapping = match &source.map {
        Some(spec) => match Mapping::compile(spec) {
            Ok(m) => m,
            Err(errs) => {
                // validate refuses such a config; keep the daemon honest anyway.
                let msg = errs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                return fail(store, source, opts, Vec::new(), msg);
            }
        },
        None => Mapping::standard(),
    };
    let connector = crate::plugins::build(&source.connector);
    let clock = std::time::Instant::now();
    let mut known = StoredContacts::default();
    store.for_each_anchor(&source.name, &mut |id, anchor| known.push(id, anchor))?;
    debug!(
        ms = clock.elapsed().as_millis() as u64,
        anchors = known.len(),
        "anchors loaded"
    );
    let ratio = source
        .max_bad_row_ratio
        .unwrap_or(config.safety.max_bad_row_ratio);
    let mut read = match read_source(connector.as_ref(), &mapping, known, ratio) {
        Ok(r) => r,
        Err(ReadFailure::TooManyBadRows {
            bad,
            rows,
            limit,
            errors,
        }) => {
            // The row errors are the useful part: keep them in the report.
            let msg = ReadFailure::TooManyBadRows {
                bad,
                rows,
                limit,
                errors: Vec::new(),
            }
            .to_string();
            return fail(store, source, opts, errors, msg);
        }
        Err(e) => return fail(store, source, opts, Vec::new(), e.to_string()),
    };
    info!(source = %source.name, rows = read.rows, changed = read.changed.len(), bad = read.bad_rows, "source read");

    // Which users the changed records and the contacts that left touch.
    let mut request = StateRequest {
        source: source.name.clone(),
        all_logins: read.changed.len() > ALL_LOGINS_THRESHOLD,
        disabled_before: config
            .deprovision
            .delete_after
            .map(|d| opts.now_ms.saturating_sub(d.as_millis() as i64)),
        ..StateRequest::default()
    };
    for r in &read.changed {
        request.emails.insert(r.email_normalized());
        match read.anchor(r.contact_id()) {
            Some(a) => {
                request.users.insert(a.user);
            }
            None if !request.all_logins => {
                request
                    .login_bases
                    .insert(derive_login_base(r.name(), r.email_local_part()));
                if let Some(l) = r.login() {
                    request.login_bases.insert(l.to_string());
                }
            }
            None => {}
        }
    }
    // Contacts that left the source: their users lose them.
    for a in read.left() {
        if a.linked {
            request.users.insert(a.user);
        }
    }
    debug!(
        ms = clock.elapsed().as_millis() as u64,
        rss_mb = crate::clock::rss_mb(),
        peak_mb = crate::clock::peak_rss_mb(),
        "source read"
    );
    let state = store.load_state(&request)?;
    drop(request);
    debug!(
        ms = clock.elapsed().as_millis() as u64,
        users = state.users.len(),
        contacts = state.contacts.len(),
        "state loaded"
    );

    // Unchanged contacts of the touched users take part as records, so that
    // grouping by e-mail sees every row of those users.
    let mut records = read.take_changed();
    let is_unchanged = |id: &str| {
        read.seen(id)
            .is_some_and(|(state, _)| state == SeenState::Unchanged)
    };
    let mut in_plan: HashSet<&str> = HashSet::new();
    for c in &state.contacts {
        if c.source == source.name && c.linked && is_unchanged(c.record.contact_id()) {
            records.push(c.record.clone());
            in_plan.insert(c.record.contact_id());
        }
    }
    // Users behind unchanged contacts that the planner never saw: unchanged too.
    let mut skipped_users: Vec<i64> = read
        .read_as(|s| s == SeenState::Unchanged)
        .filter(|(id, _)| !in_plan.contains(id))
        .filter_map(|(_, a)| a.map(|a| a.user))
        .filter(|u| !state.users.contains_key(u))
        .map(|u| u.0)
        .collect();
    skipped_users.sort_unstable();
    skipped_users.dedup();
    let input = SourceInput {
        source: source.name.clone(),
        records,
        unreadable: read
            .read_as(|s| s == SeenState::Unreadable)
            .map(|(id, _)| id.to_owned())
            .collect(),
    };
    let plan_opts = PlanOptions {
        source_order: config.sources.iter().map(|s| s.name.clone()).collect(),
        default_locale: config.default_locale.clone(),
        delete_after_ms: config
            .deprovision
            .delete_after
            .map(|d| d.as_millis() as i64),
        now_ms: opts.now_ms,
    };
    let mut plan = reconcile::plan(input, &state, &plan_opts);
    debug!(
        ms = clock.elapsed().as_millis() as u64,
        rss_mb = crate::clock::rss_mb(),
        peak_mb = crate::clock::peak_rss_mb(),
        "planned"
    );
    plan.unchanged += skipped_users.len();
    plan.refreshed.extend(
        read.renewed()
            .map(|(id, fingerprint)| (id.to_owned(), fingerprint)),
    );

    let limits = GuardLimits {
        max_deprovision: config.safety.max_deprovision,
        max_deprovision_ratio: config.safety.max_deprovision_ratio.as_f64(),
        // Only a plan that deprovisions needs the ratio's base (a full count).
        active_before: if plan.deprovisions.is_empty() {
            0
        } else {
            store.active_linked(&source.name)?
        },
        source_empty: read.rows == 0,
        allow_mass_deprovision: opts.allow_mass_deprovision,
    };
    let held = reconcile::guard(&mut plan, &limits);
    if held {
        warn!(source = %source.name, held = plan.held.len(), reason = %plan.held[0].reason, "deprovisions held by the safety guard");
    }
    let mut errors = std::mem::take(&mut read.errors);
    for c in &plan.conflicts {
        errors.push(RowError {
            location: read
                .seen(&c.contact_id)
                .map(|(_, at)| at.to_string())
                .unwrap_or_else(|| format!("{}: contact {}", source.name, c.contact_id)),
            message: c.message.clone(),
        });
    }
    // What the read held is no longer needed: free it before the store writes.
    drop(read);
    drop(state);
    let status = match (opts.dry_run, held) {
        (true, _) => RunStatus::DryRun,
        (false, true) => RunStatus::Held,
        (false, false) => RunStatus::Applied,
    };
    let counts = plan.counts();
    // A dry run (and `plan`) writes nothing, not even its run record.
    if !opts.dry_run {
        let run = RunRecord {
            source: source.name.clone(),
            started_ms: started,
            finished_ms: crate::clock::now_ms(),
            status: status.as_str(),
            counts,
            errors: errors.len(),
        };
        store.apply(&plan, &run, opts.now_ms)?;
        debug!(
            ms = clock.elapsed().as_millis() as u64,
            rss_mb = crate::clock::rss_mb(),
            peak_mb = crate::clock::peak_rss_mb(),
            "applied"
        );
        info!(source = %source.name, status = status.as_str(), created = counts.created, updated = counts.updated,
              disabled = counts.disabled, enabled = counts.enabled, deleted = counts.deleted, "run applied");
    }
    Ok(RunReport {
        source: source.name.clone(),
        status,
        plan,
        counts,
        errors,
        failure: None,
    })
}

/// A run that applied nothing; recorded in the run history unless it was a dry run.
fn fail(
    store: &mut dyn Store,
    source: &SourceConfig,
    opts: RunOptions,
    errors: Vec<RowError>,
    failure: String,
) -> Result<RunReport, StoreError> {
    warn!(source = %source.name, error = %failure, "source run failed; nothing applied");
    if !opts.dry_run {
        store.record_run(&RunRecord {
            source: source.name.clone(),
            started_ms: opts.now_ms,
            finished_ms: crate::clock::now_ms(),
            status: RunStatus::Failed.as_str(),
            counts: PlanCounts::default(),
            errors: errors.len(),
        })?;
    }
    Ok(RunReport {
        source: source.name.clone(),
        status: RunStatus::Failed,
        plan: Plan {
            source: source.name.clone(),
            ..Plan::default()
        },
        counts: PlanCounts::default(),
        errors,
        failure: Some(failure),
    })
}
