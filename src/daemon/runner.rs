//! One run of one source inside the daemon: the same `run_source` the CLI
//! calls, on a blocking thread, with the writer lock taken for the run and
//! released after, one structured log line, and the metrics updated.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::{info, warn};

use super::scheduler::Shared;
use crate::config::Config;
use crate::store::Store;
use crate::sync::{
    lock_writer_cancellable, run_source, FailureKind, RunFailure, RunOptions, RunReport, RunStatus,
};
use crate::telemetry::RunOutcome;

/// What the scheduler needs to know about a finished run.
#[derive(Debug, Clone)]
pub struct Finished {
    /// How it ended.
    pub status: RunStatus,
    /// Why it failed, if it did.
    pub failure: Option<RunFailure>,
    /// When it ended (ms since the Unix epoch).
    pub finished_ms: i64,
    /// A short human summary for `STATUS=` and logs.
    pub summary: String,
}

/// Runs source `name` of `config` once, off the async threads.
pub async fn run_once(config: Arc<Config>, name: String, shared: Arc<Shared>) -> Finished {
    let started = Instant::now();
    let worker = {
        let shared = Arc::clone(&shared);
        let name = name.clone();
        tokio::task::spawn_blocking(move || run_blocking(&config, &name, &shared))
    };
    let result = worker.await.unwrap_or_else(|e| {
        Err(RunFailure::new(
            FailureKind::Store,
            format!("the run stopped unexpectedly: {e}"),
        ))
    });
    let elapsed = started.elapsed();
    if let Ok(report) = &result {
        log_row_errors(&name, &report.errors);
    }
    let finished = finish(&name, result, elapsed, &shared);
    shared.board_changed.notify_one();
    finished
}

/// At most this many row errors of a run are logged one by one; `liaison
/// plan` or `sync --once --dry-run` lists them all.
const ROW_ERRORS_LOGGED: usize = 20;

/// The daemon has no report to print: the rows it skipped go to the log.
fn log_row_errors(name: &str, errors: &[crate::sync::RowError]) {
    for e in errors.iter().take(ROW_ERRORS_LOGGED) {
        warn!(source = name, location = %e.location, error = %e.message, "row skipped");
    }
    if errors.len() > ROW_ERRORS_LOGGED {
        warn!(
            source = name,
            more = errors.len() - ROW_ERRORS_LOGGED,
            "more rows skipped; `liaison plan --source {name}` lists them all"
        );
    }
}

/// Opens the store, takes the writer lock (waiting within the bound, and
/// giving up when the daemon stops), runs, releases.
fn run_blocking(config: &Config, name: &str, shared: &Shared) -> Result<RunReport, RunFailure> {
    let Some(source) = config.sources.iter().find(|s| s.name == name) else {
        return Err(RunFailure::new(
            FailureKind::Config,
            format!("source {name} is no longer configured"),
        ));
    };
    wait_until_quiet(source, shared);
    if shared.cancel.is_cancelled() {
        return Err(RunFailure::cancelled());
    }
    let mut store = crate::cli::open_store(config)
        .map_err(|e| RunFailure::new(FailureKind::Store, format!("{e:#}")))?;
    let store = store.as_mut();
    let locked = lock_writer_cancellable(store, shared.lock_wait, &shared.cancel, &mut |holder| {
        info!(source = name, %holder, "waiting for the store's writer lock");
    })
    .map_err(|e| RunFailure::from_store(&e))?;
    if !locked {
        return Err(RunFailure::cancelled());
    }
    if let Err(e) = crate::cli::declare_accounts(config, store) {
        unlock(store, name);
        return Err(RunFailure::new(FailureKind::Store, format!("{e:#}")));
    }
    let opts = RunOptions {
        now_ms: crate::clock::now_ms(),
        cancel: shared.cancel.clone(),
        ..RunOptions::default()
    };
    let report = run_source(config, source, store, opts).map_err(|e| RunFailure::from_store(&e));
    unlock(store, name);
    report
}

/// The longest a run of a watched source waits for its files to be quiet; a
/// file written to without pause is read anyway after this, with a warning.
const QUIET_WAIT_MAX: Duration = Duration::from_secs(600);

/// Whatever started it (cron, a retry, start-up), a run of a watched source
/// does not read a file still being written: it waits for the quiet period.
fn wait_until_quiet(source: &crate::config::SourceConfig, shared: &Shared) {
    let Some((path, options)) = super::service::watched(source) else {
        return;
    };
    let started = Instant::now();
    while let Some(wait) = super::watch::recently_modified(&path, options.quiet) {
        if shared.cancel.is_cancelled() {
            return;
        }
        if started.elapsed() > QUIET_WAIT_MAX {
            warn!(
                source = %source.name,
                waited_s = started.elapsed().as_secs(),
                "the source's files never went quiet; reading them anyway"
            );
            return;
        }
        std::thread::sleep(wait.min(Duration::from_secs(1)));
    }
}

fn unlock(store: &mut dyn Store, name: &str) {
    if let Err(e) = store.unlock_writer() {
        // The lock goes with the store's handle, dropped right after.
        warn!(source = name, error = %e, "the writer lock was not released cleanly");
    }
}

/// Logs the one line of the run and counts it.
fn finish(
    name: &str,
    result: Result<RunReport, RunFailure>,
    elapsed: Duration,
    shared: &Shared,
) -> Finished {
    let finished_ms = crate::clock::now_ms();
    let duration_ms = elapsed.as_millis() as u64;
    match result {
        Ok(report) if report.failure.is_none() => {
            let c = &report.counts;
            info!(
                source = name,
                status = report.status.as_str(),
                created = c.created,
                updated = c.updated,
                disabled = c.disabled,
                enabled = c.enabled,
                deleted = c.deleted,
                unchanged = c.unchanged,
                held = report.plan.held.len(),
                errors = report.errors.len(),
                duration_ms,
                "run finished"
            );
            let outcome = match report.status {
                RunStatus::Held => RunOutcome::Held,
                RunStatus::DryRun => RunOutcome::DryRun,
                _ => RunOutcome::Applied,
            };
            shared.metrics.run_finished(
                name,
                outcome,
                c,
                report.errors.len(),
                report.plan.held.len() as u64,
                elapsed,
                SystemTime::now(),
            );
            Finished {
                status: report.status,
                failure: None,
                finished_ms,
                summary: format!(
                    "{} ({} created, {} updated, {} disabled)",
                    report.status.as_str(),
                    c.created,
                    c.updated,
                    c.disabled
                ),
            }
        }
        Ok(report) => {
            let failure = report.failure.clone().unwrap_or_else(RunFailure::cancelled);
            failed(
                name,
                failure,
                report.errors.len(),
                elapsed,
                finished_ms,
                shared,
            )
        }
        Err(failure) => failed(name, failure, 0, elapsed, finished_ms, shared),
    }
}

fn failed(
    name: &str,
    failure: RunFailure,
    row_errors: usize,
    elapsed: Duration,
    finished_ms: i64,
    shared: &Shared,
) -> Finished {
    warn!(
        source = name,
        status = "failed",
        failure_kind = failure.kind.as_str(),
        retryable = failure.retryable,
        errors = row_errors,
        duration_ms = elapsed.as_millis() as u64,
        error = %failure.message,
        "run failed; nothing applied"
    );
    shared.metrics.run_finished(
        name,
        RunOutcome::Failed(failure.kind),
        &Default::default(),
        row_errors,
        0,
        elapsed,
        SystemTime::now(),
    );
    Finished {
        status: RunStatus::Failed,
        summary: format!("failed ({})", failure.kind.as_str()),
        failure: Some(failure),
        finished_ms,
    }
}
