//! The daemon's metrics: what its runs did, per source, and how deep the
//! outbox is, kept in memory and printed in the Prometheus text format for
//! `/metrics`.
//!
//! A small own registry rather than the `metrics`/`prometheus` crates
//! (decision 0015): the families are few and known, so each is a field of a
//! per-source struct behind one lock, and the text encoder has its own tests.

mod histogram;
mod text;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use histogram::{Histogram, RUN_DURATION_BUCKETS};
use text::{Kind, TextWriter, Value};

use crate::reconcile::PlanCounts;
use crate::sync::{FailureKind, RunReport, RunStatus};

/// How a run ended, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// Applied in full.
    Applied,
    /// Applied except the deprovisions the safety guard held.
    Held,
    /// Nothing applied, for this reason.
    Failed(FailureKind),
    /// Planned only, on purpose.
    DryRun,
}

/// The kind a failed report counts under should it carry no failure; the run
/// path always fills one in (`fail` in `sync/run.rs`), so this only keeps the
/// run counted.
const FAILURE_WITHOUT_REASON: FailureKind = FailureKind::Store;

impl RunOutcome {
    /// How `report`'s run ended.
    pub fn from_report(report: &RunReport) -> RunOutcome {
        match (report.status, &report.failure) {
            (_, Some(failure)) => RunOutcome::Failed(failure.kind),
            (RunStatus::Applied, None) => RunOutcome::Applied,
            (RunStatus::Held, None) => RunOutcome::Held,
            (RunStatus::DryRun, None) => RunOutcome::DryRun,
            (RunStatus::Failed, None) => RunOutcome::Failed(FAILURE_WITHOUT_REASON),
        }
    }

    /// The `outcome` label's value.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Applied => "applied",
            RunOutcome::Held => "held",
            RunOutcome::Failed(_) => "failed",
            RunOutcome::DryRun => "dry_run",
        }
    }

    /// Whether the run changed the store (and so counts as a success).
    fn applied(self) -> bool {
        matches!(self, RunOutcome::Applied | RunOutcome::Held)
    }

    /// Position in [`OUTCOMES`].
    fn index(self) -> usize {
        match self {
            RunOutcome::Applied => 0,
            RunOutcome::DryRun => 1,
            RunOutcome::Failed(_) => 2,
            RunOutcome::Held => 3,
        }
    }
}

/// `outcome` label values, sorted (the order they print in).
const OUTCOMES: [&str; 4] = ["applied", "dry_run", "failed", "held"];

/// `kind` label values of `liaison_changes_total`, sorted.
const CHANGE_KINDS: [&str; 5] = ["created", "deleted", "disabled", "enabled", "updated"];

/// One source's series.
#[derive(Debug, Clone)]
struct SourceSeries {
    /// Runs by outcome, indexed like [`OUTCOMES`].
    runs: [u64; OUTCOMES.len()],
    /// Failed runs by kind, indexed like [`FailureKind::ALL`].
    failures: [u64; FailureKind::ALL.len()],
    /// Users changed by applied runs, indexed like [`CHANGE_KINDS`].
    changes: [u64; CHANGE_KINDS.len()],
    row_errors: u64,
    held_deprovisions: u64,
    duration: Histogram,
    /// Seconds since the Unix epoch of the last applied run's end.
    last_success: Option<f64>,
}

impl SourceSeries {
    fn new() -> Self {
        SourceSeries {
            runs: [0; OUTCOMES.len()],
            failures: [0; FailureKind::ALL.len()],
            changes: [0; CHANGE_KINDS.len()],
            row_errors: 0,
            held_deprovisions: 0,
            duration: Histogram::new(&RUN_DURATION_BUCKETS),
            last_success: None,
        }
    }

    fn count_changes(&mut self, counts: &PlanCounts) {
        let by_kind = [
            counts.created,
            counts.deleted,
            counts.disabled,
            counts.enabled,
            counts.updated,
        ];
        for (total, n) in self.changes.iter_mut().zip(by_kind) {
            *total += n as u64;
        }
    }
}

/// Everything behind the lock.
#[derive(Debug, Default)]
struct Registry {
    sources: BTreeMap<String, SourceSeries>,
    outbox: BTreeMap<String, u64>,
    /// Messages the dispatcher sent, by kind.
    mail_sent: BTreeMap<String, u64>,
    /// Messages that ended `failed`, by kind.
    mail_failed: BTreeMap<String, u64>,
    /// Webhook calls, by source and outcome (`accepted`, `forged`, …).
    webhooks: BTreeMap<(String, &'static str), u64>,
}

impl Registry {
    fn source(&mut self, name: &str) -> &mut SourceSeries {
        self.sources
            .entry(name.to_owned())
            .or_insert_with(SourceSeries::new)
    }
}

/// The daemon's metrics. Share it in an `Arc`; every method takes `&self` and
/// holds one lock briefly (a run reports once, a scrape encodes once).
#[derive(Debug, Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
}

impl Metrics {
    /// No series yet.
    pub fn new() -> Self {
        Metrics::default()
    }

    /// A source is configured: its series show, zeroed, before its first run.
    pub fn source_configured(&self, source: &str) {
        self.lock().source(source);
    }

    /// A source left the config (a reload removed it): its series go, so a
    /// scrape no longer shows a source that will not run again.
    pub fn source_removed(&self, source: &str) {
        self.lock().sources.remove(source);
    }

    /// Counts one finished run of `source`. Changes and held deprovisions count
    /// only for runs that applied (`applied`, `held`); row errors and the
    /// duration count for every run; the last success time moves for runs
    /// that applied.
    #[allow(clippy::too_many_arguments)] // the run's facts, each named at the call
    pub fn run_finished(
        &self,
        source: &str,
        outcome: RunOutcome,
        counts: &PlanCounts,
        row_errors: usize,
        held_deprovisions: u64,
        duration: Duration,
        finished: SystemTime,
    ) {
        let mut registry = self.lock();
        let series = registry.source(source);
        series.runs[outcome.index()] += 1;
        if let RunOutcome::Failed(kind) = outcome {
            if let Some(i) = FailureKind::ALL.iter().position(|k| *k == kind) {
                series.failures[i] += 1;
            }
        }
        if outcome.applied() {
            series.count_changes(counts);
            series.held_deprovisions += held_deprovisions;
            series.last_success = Some(unix_seconds(finished));
        }
        series.row_errors += row_errors as u64;
        series.duration.observe(duration.as_secs_f64());
    }

    /// Counts a finished run from its report (outcome, counts, row errors and
    /// held deprovisions as the report says them).
    pub fn run_reported(&self, report: &RunReport, duration: Duration, finished: SystemTime) {
        self.run_finished(
            &report.source,
            RunOutcome::from_report(report),
            &report.counts,
            report.errors.len(),
            report.counts.held as u64,
            duration,
            finished,
        );
    }

    /// The outbox holds `depth` messages in `state` (queued, sent, failed…).
    pub fn set_outbox(&self, state: &str, depth: u64) {
        self.lock().outbox.insert(state.to_owned(), depth);
    }

    /// The dispatcher sent `sent` and failed `failed` more messages of `kind`.
    pub fn mail_dispatched(&self, kind: &str, sent: u64, failed: u64) {
        let mut registry = self.lock();
        *registry.mail_sent.entry(kind.to_owned()).or_default() += sent;
        *registry.mail_failed.entry(kind.to_owned()).or_default() += failed;
    }

    /// Counts one webhook call to `source`: `accepted`, or why it was
    /// refused (`forged`, `stale`, `missing`, `oversized`, `unknown`).
    pub fn webhook(&self, source: &str, outcome: &'static str) {
        *self
            .lock()
            .webhooks
            .entry((source.to_owned(), outcome))
            .or_default() += 1;
    }

    /// Every series in the Prometheus text format 0.0.4, families sorted by
    /// name and series by label values, so two scrapes of the same state are
    /// the same text. A family without series is left out.
    pub fn encode(&self) -> String {
        let registry = self.lock();
        let sources = &registry.sources;
        let mut w = TextWriter::default();
        // In name order; a unit test checks it.
        write_build_info(&mut w);
        write_changes(&mut w, sources);
        write_per_source(&mut w, sources, &HELD);
        write_per_source(&mut w, sources, &LAST_SUCCESS);
        write_mail(
            &mut w,
            "liaison_mail_failed_total",
            "Messages that ended failed, by kind.",
            &registry.mail_failed,
        );
        write_mail(
            &mut w,
            "liaison_mail_sent_total",
            "Messages the dispatcher sent, by kind.",
            &registry.mail_sent,
        );
        write_outbox(&mut w, &registry.outbox);
        write_per_source(&mut w, sources, &ROW_ERRORS);
        write_durations(&mut w, sources);
        write_failures(&mut w, sources);
        write_runs(&mut w, sources);
        write_webhooks(&mut w, &registry.webhooks);
        w.finish()
    }

    /// The registry; a panic elsewhere while holding it leaves counters that
    /// are still whole numbers, so a poisoned lock is used as it is.
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn write_build_info(w: &mut TextWriter) {
    w.family(
        "liaison_build_info",
        Kind::Gauge,
        "Always 1; the version label says which build runs.",
    );
    w.sample(
        "liaison_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        Value::Int(1),
    );
}

/// A family with one sample per source.
struct PerSource {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    value: fn(&SourceSeries) -> Value,
}

const HELD: PerSource = PerSource {
    name: "liaison_deprovisions_held_total",
    kind: Kind::Counter,
    help: "Deprovisions the safety guard held.",
    value: |s| Value::Int(s.held_deprovisions),
};

const LAST_SUCCESS: PerSource = PerSource {
    name: "liaison_last_success_timestamp_seconds",
    kind: Kind::Gauge,
    help:
        "When the last run that applied ended, in seconds since the Unix epoch; 0 before the first.",
    value: |s| Value::Float(s.last_success.unwrap_or(0.0)),
};

const ROW_ERRORS: PerSource = PerSource {
    name: "liaison_row_errors_total",
    kind: Kind::Counter,
    help: "Rows a run could not use (bad rows and conflicts).",
    value: |s| Value::Int(s.row_errors),
};

fn write_per_source(w: &mut TextWriter, sources: &BTreeMap<String, SourceSeries>, f: &PerSource) {
    if sources.is_empty() {
        return;
    }
    w.family(f.name, f.kind, f.help);
    for (source, s) in sources {
        w.sample(f.name, &[("source", source)], (f.value)(s));
    }
}

fn write_changes(w: &mut TextWriter, sources: &BTreeMap<String, SourceSeries>) {
    if sources.is_empty() {
        return;
    }
    let name = "liaison_changes_total";
    w.family(
        name,
        Kind::Counter,
        "Users changed by runs that applied, by kind of change.",
    );
    for (source, s) in sources {
        for (kind, n) in CHANGE_KINDS.iter().zip(s.changes) {
            w.sample(name, &[("source", source), ("kind", kind)], Value::Int(n));
        }
    }
}

fn write_durations(w: &mut TextWriter, sources: &BTreeMap<String, SourceSeries>) {
    if sources.is_empty() {
        return;
    }
    let name = "liaison_run_duration_seconds";
    w.family(name, Kind::Histogram, "How long runs took, every outcome.");
    for (source, s) in sources {
        s.duration.write(w, name, &[("source", source)]);
    }
}

fn write_failures(w: &mut TextWriter, sources: &BTreeMap<String, SourceSeries>) {
    if sources.is_empty() {
        return;
    }
    let name = "liaison_run_failures_total";
    w.family(name, Kind::Counter, "Failed runs, by who is at fault.");
    let mut kinds: Vec<(usize, &str)> = FailureKind::ALL
        .iter()
        .enumerate()
        .map(|(i, k)| (i, k.as_str()))
        .collect();
    kinds.sort_by_key(|&(_, word)| word);
    for (source, s) in sources {
        for &(i, kind) in &kinds {
            let n = s.failures[i];
            w.sample(name, &[("source", source), ("kind", kind)], Value::Int(n));
        }
    }
}

fn write_mail(w: &mut TextWriter, name: &str, help: &str, by_kind: &BTreeMap<String, u64>) {
    if by_kind.is_empty() {
        return;
    }
    w.family(name, Kind::Counter, help);
    for (kind, n) in by_kind {
        w.sample(name, &[("kind", kind)], Value::Int(*n));
    }
}

fn write_outbox(w: &mut TextWriter, outbox: &BTreeMap<String, u64>) {
    if outbox.is_empty() {
        return;
    }
    let name = "liaison_outbox_messages";
    w.family(name, Kind::Gauge, "Messages in the outbox, by state.");
    for (state, depth) in outbox {
        w.sample(name, &[("state", state)], Value::Int(*depth));
    }
}

fn write_runs(w: &mut TextWriter, sources: &BTreeMap<String, SourceSeries>) {
    if sources.is_empty() {
        return;
    }
    let name = "liaison_runs_total";
    w.family(name, Kind::Counter, "Finished runs, by outcome.");
    for (source, s) in sources {
        for (outcome, n) in OUTCOMES.iter().zip(s.runs) {
            w.sample(
                name,
                &[("source", source), ("outcome", outcome)],
                Value::Int(n),
            );
        }
    }
}

fn write_webhooks(w: &mut TextWriter, calls: &BTreeMap<(String, &'static str), u64>) {
    if calls.is_empty() {
        return;
    }
    let name = "liaison_webhook_requests_total";
    w.family(
        name,
        Kind::Counter,
        "Webhook calls, by source and outcome (accepted, or why refused).",
    );
    for ((source, outcome), n) in calls {
        w.sample(
            name,
            &[("source", source), ("outcome", outcome)],
            Value::Int(*n),
        );
    }
}

#[cfg(test)]
mod tests;
