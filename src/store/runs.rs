//! The run history as `liaison status` and the daemon's readiness read it:
//! per source, its last run, how many runs in a row failed, and when it last
//! succeeded.

use crate::reconcile::PlanCounts;
use crate::sync::RunFailure;

/// One run as the run history holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    /// When the run started (ms since the Unix epoch).
    pub started_ms: i64,
    /// When it finished.
    pub finished_ms: i64,
    /// `applied`, `held` or `failed` (a rehearsal's `dry_run` never stays).
    pub status: String,
    /// What was applied.
    pub counts: PlanCounts,
    /// Number of row errors.
    pub errors: usize,
    /// Why it failed; `None` for a run that did not, and for failed runs
    /// recorded before the history kept the reason (schema version 3).
    pub failure: Option<RunFailure>,
}

/// One source's run history in brief.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// The source.
    pub source: String,
    /// Its latest run.
    pub last: RunRow,
    /// Failed runs since its last successful one (`applied` or `held`), not
    /// counting cancelled runs: a shutdown is no fault of the source.
    pub failed_in_a_row: u32,
    /// When its last successful run finished (ms since the Unix epoch).
    pub last_success_ms: Option<i64>,
}

/// Whether a run of this status succeeded (applied, in full or but for the
/// deprovisions the guard held).
pub fn succeeded(status: &str) -> bool {
    status == "applied" || status == "held"
}
