//! Reading the run history: a summary per source in a few indexed lookups
//! each (`runs_source_started`), however long the history is.

use rusqlite::{Connection, OptionalExtension, Row};

use crate::reconcile::PlanCounts;
use crate::store::{DriverError, RunRow, RunSummary, StoreError};
use crate::sync::{FailureKind, RunFailure};

fn q(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |source| StoreError::Query {
        what,
        source: DriverError::new(source),
    }
}

/// One summary per source that has runs, ordered by source name.
pub fn run_summaries(conn: &Connection) -> Result<Vec<RunSummary>, StoreError> {
    let err = q("reading the run history");
    // A loose index scan: one seek per source, not one step per run.
    let mut next = conn
        .prepare_cached("SELECT source FROM runs WHERE source > ?1 ORDER BY source LIMIT 1")
        .map_err(&err)?;
    let mut last = conn
        .prepare_cached(
            "SELECT id, started_at, finished_at, status, counts, errors, failure, failure_kind, \
             retryable FROM runs WHERE source = ?1 ORDER BY started_at DESC, id DESC LIMIT 1",
        )
        .map_err(&err)?;
    let mut success = conn
        .prepare_cached(
            "SELECT id, started_at, finished_at FROM runs \
             WHERE source = ?1 AND (status = 'applied' OR status = 'held') \
             ORDER BY started_at DESC, id DESC LIMIT 1",
        )
        .map_err(&err)?;
    let mut failed_since = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM runs WHERE source = ?1 AND (started_at, id) > (?2, ?3) \
             AND status = 'failed' AND failure_kind IS NOT 'cancelled'",
        )
        .map_err(&err)?;
    let mut out = Vec::new();
    let mut after = String::new();
    while let Some(source) = next
        .query_row([&after], |r| r.get::<_, String>(0))
        .optional()
        .map_err(&err)?
    {
        let Some(row) = last
            .query_row([&source], |r| Ok(read_row(r)))
            .optional()
            .map_err(&err)?
        else {
            break;
        };
        let row = row?;
        let last_success = success
            .query_row([&source], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .optional()
            .map_err(&err)?;
        let (since_started, since_id) = last_success.map_or((i64::MIN, i64::MIN), |s| (s.1, s.0));
        let failed: i64 = failed_since
            .query_row(rusqlite::params![source, since_started, since_id], |r| {
                r.get(0)
            })
            .map_err(&err)?;
        out.push(RunSummary {
            source: source.clone(),
            last: row,
            failed_in_a_row: u32::try_from(failed).unwrap_or(u32::MAX),
            last_success_ms: last_success.map(|s| s.2),
        });
        after = source;
    }
    Ok(out)
}

/// A row of the `last` query.
fn read_row(r: &Row<'_>) -> Result<RunRow, StoreError> {
    let err = q("reading a run");
    let get_i64 = |i| r.get::<_, i64>(i).map_err(&err);
    let counts: String = r.get(4).map_err(&err)?;
    let failure: Option<String> = r.get(6).map_err(&err)?;
    let kind: Option<String> = r.get(7).map_err(&err)?;
    let retryable: Option<bool> = r.get(8).map_err(&err)?;
    Ok(RunRow {
        started_ms: get_i64(1)?,
        finished_ms: get_i64(2)?,
        status: r.get(3).map_err(&err)?,
        counts: counts_of(&counts)?,
        errors: usize::try_from(get_i64(5)?).unwrap_or(0),
        failure: failure_of(failure, kind.as_deref(), retryable)?,
    })
}

/// The stored counts (JSON written from [`PlanCounts`]).
fn counts_of(json: &str) -> Result<PlanCounts, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "run counts",
        detail,
    };
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| corrupt(e.to_string()))?;
    let n = |key: &str| {
        value
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0) as usize
    };
    Ok(PlanCounts {
        created: n("created"),
        updated: n("updated"),
        disabled: n("disabled"),
        enabled: n("enabled"),
        deleted: n("deleted"),
        unchanged: n("unchanged"),
        held: n("held"),
    })
}

/// The stored failure; a run recorded before schema version 3 has none.
fn failure_of(
    message: Option<String>,
    kind: Option<&str>,
    retryable: Option<bool>,
) -> Result<Option<RunFailure>, StoreError> {
    let (Some(message), Some(word)) = (message, kind) else {
        return Ok(None);
    };
    let kind = FailureKind::parse(word).ok_or_else(|| StoreError::Corrupt {
        what: "run failure kind",
        detail: format!("{word:?} is no kind this build knows"),
    })?;
    Ok(Some(RunFailure {
        kind,
        message,
        retryable: retryable.unwrap_or_else(|| kind.retryable_by_default()),
        // A wait the source asked for matters to the next retry only.
        retry_after: None,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::{RunRecord, SqliteStore, Store};

    fn run(
        source: &str,
        started_ms: i64,
        status: &'static str,
        failure: Option<RunFailure>,
    ) -> RunRecord {
        RunRecord {
            source: source.into(),
            started_ms,
            finished_ms: started_ms + 5,
            status,
            counts: PlanCounts {
                created: 2,
                unchanged: 1,
                ..PlanCounts::default()
            },
            errors: 1,
            settings: 0,
            failure,
            cursor: None,
        }
    }

    #[test]
    fn each_source_has_its_last_run_failures_in_a_row_and_last_success() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("x.db")).unwrap();
        assert!(store.run_summaries().unwrap().is_empty());
        let down = RunFailure::new(FailureKind::SourceUnreachable, "no file matches x*.csv");
        store
            .record_run(&run("b", 10, "failed", Some(down.clone())))
            .unwrap();
        store.record_run(&run("b", 20, "applied", None)).unwrap();
        store.record_run(&run("b", 30, "held", None)).unwrap();
        store
            .record_run(&run("b", 40, "failed", Some(down.clone())))
            .unwrap();
        store
            .record_run(&run("b", 50, "failed", Some(RunFailure::cancelled())))
            .unwrap();
        let mut auth = RunFailure::new(FailureKind::SourceAuth, "refused");
        auth.retryable = true;
        store
            .record_run(&run("b", 60, "failed", Some(auth.clone())))
            .unwrap();
        store
            .record_run(&run("a", 5, "failed", Some(down.clone())))
            .unwrap();

        let got = store.run_summaries().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (
                got[0].source.as_str(),
                got[0].failed_in_a_row,
                got[0].last_success_ms
            ),
            ("a", 1, None)
        );
        let b = &got[1];
        assert_eq!(
            (b.source.as_str(), b.failed_in_a_row),
            ("b", 2),
            "cancelled runs are not counted"
        );
        assert_eq!(b.last_success_ms, Some(35), "the held run finished last");
        assert_eq!(
            b.last,
            RunRow {
                started_ms: 60,
                finished_ms: 65,
                status: "failed".into(),
                counts: PlanCounts {
                    created: 2,
                    unchanged: 1,
                    ..PlanCounts::default()
                },
                errors: 1,
                failure: Some(auth),
            },
            "the stored retryable wins over the kind's default"
        );
    }

    #[test]
    fn the_lookups_use_the_index_not_a_scan_of_the_history() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(&dir.path().join("x.db")).unwrap());
        let conn = Connection::open(dir.path().join("x.db")).unwrap();
        for sql in [
            "SELECT source FROM runs WHERE source > 'a' ORDER BY source LIMIT 1",
            "SELECT id FROM runs WHERE source = 'a' ORDER BY started_at DESC, id DESC LIMIT 1",
            "SELECT COUNT(*) FROM runs WHERE source = 'a' AND (started_at, id) > (1, 1)",
        ] {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> = stmt
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("; ");
            assert!(plan.contains("runs_source_started"), "{sql}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
        }
    }
}
