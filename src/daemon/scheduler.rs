//! One task per source: it waits for the next cron fire, a trigger (start-up,
//! a file watch) or a retry, and runs the source — never twice at once. A
//! failed run that a retry can help is retried with capped exponential
//! backoff; a failed run deprovisions nobody (the run applies nothing).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use tracing::info;

use super::runner::{run_once, Finished};
use crate::config::{Config, RetryConfig, SourceConfig};
use crate::sync::Cancel;
use crate::telemetry::Metrics;

/// What every source task shares.
#[derive(Debug)]
pub struct Shared {
    /// Set once, at shutdown: runs stop at their next safe point.
    pub cancel: Cancel,
    /// The daemon's metrics.
    pub metrics: Arc<Metrics>,
    /// How long a run waits for the store's writer lock.
    pub lock_wait: Duration,
    /// What each source did last and does next, for `STATUS=` and `status`.
    pub board: Mutex<Board>,
    /// Poked when the board changed.
    pub board_changed: Notify,
}

/// The last and next run of every source.
#[derive(Debug, Default, Clone)]
pub struct Board {
    /// By source name.
    pub sources: BTreeMap<String, SourceBoard>,
}

/// One source on the board.
#[derive(Debug, Default, Clone)]
pub struct SourceBoard {
    /// When it runs next (ms since the Unix epoch), if it is scheduled.
    pub next_run_ms: Option<i64>,
    /// Whether a run is in progress.
    pub running: bool,
    /// The last run, if any since start-up.
    pub last: Option<Finished>,
}

/// A running source task and the way to poke it.
#[derive(Debug)]
pub struct SourceTask {
    /// Asks for a run now (a full channel already holds one: triggers merge).
    pub trigger: mpsc::Sender<()>,
    task: JoinHandle<()>,
}

impl SourceTask {
    /// Starts the task of source `name`; it follows `config` and stops when
    /// `stop` turns true, the source leaves the config or its [`Retiring`]
    /// handle is dropped. `after` is the task of a source of the same name
    /// that was removed and is still finishing a run: this one starts only
    /// once that one has ended, so one source never runs twice at once.
    pub fn spawn(
        name: String,
        config: watch::Receiver<Arc<Config>>,
        stop: watch::Receiver<bool>,
        shared: Arc<Shared>,
        after: Option<Retiring>,
    ) -> SourceTask {
        let (trigger, triggers) = mpsc::channel(1);
        let task = tokio::spawn(async move {
            if let Some(previous) = after {
                previous.join().await;
            }
            source_loop(name, config, triggers, stop, shared).await;
        });
        SourceTask { trigger, task }
    }

    /// Stops asking it for runs: it ends after the run in progress, if any.
    pub fn retire(self) -> Retiring {
        Retiring { task: self.task }
    }

    /// Waits for the task to end (after a stop).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// The task of a removed source, finishing its run in progress.
#[derive(Debug)]
pub struct Retiring {
    task: JoinHandle<()>,
}

impl Retiring {
    /// Waits for it to end.
    pub async fn join(self) {
        let _ = self.task.await;
    }

    /// Whether it has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

async fn source_loop(
    name: String,
    mut config: watch::Receiver<Arc<Config>>,
    mut triggers: mpsc::Receiver<()>,
    mut stop: watch::Receiver<bool>,
    shared: Arc<Shared>,
) {
    let mut retry = Retry::default();
    let mut planned: Option<Planned> = None;
    loop {
        let current = Arc::clone(&config.borrow_and_update());
        let Some(source) = current.sources.iter().find(|s| s.name == name) else {
            shared
                .board
                .lock()
                .map(|mut b| b.sources.remove(&name))
                .ok();
            info!(source = %name, "source removed; its schedule stopped");
            return;
        };
        let now = Utc::now();
        let fire = Planned::next(planned.take(), source, now);
        let next = earliest(fire.as_ref().map(|p| p.at), retry.at);
        publish_next(&shared, &name, next);
        let sleep = next.map(|t| until(t, now));
        let run = tokio::select! {
            _ = stop.changed() => return,
            changed = config.changed() => {
                if changed.is_err() {
                    return;
                }
                // A reload keeps the planned fire while the schedule stays.
                planned = fire;
                false
            }
            trigger = triggers.recv() => match trigger {
                Some(()) => true,
                // The daemon let go of this task (the source was removed).
                None => return,
            },
            () = sleep_for(sleep), if sleep.is_some() => true,
        };
        if !run || *stop.borrow() {
            continue;
        }
        mark_running(&shared, &name, true);
        let finished = run_once(Arc::clone(&current), name.clone(), Arc::clone(&shared)).await;
        retry.after(&finished, &current.retry, Utc::now());
        record(&shared, &name, finished);
        if *stop.borrow() {
            return;
        }
    }
}

/// The next cron fire of a source, and the schedule it was computed from.
#[derive(Debug, Clone, PartialEq)]
struct Planned {
    schedule: String,
    timezone: chrono_tz::Tz,
    at: DateTime<Utc>,
}

impl Planned {
    /// `kept` while the source's schedule and zone are the ones it came
    /// from (a reload at the instant of a fire must not skip it), else the
    /// first fire after `now`.
    fn next(kept: Option<Planned>, source: &SourceConfig, now: DateTime<Utc>) -> Option<Planned> {
        let schedule = source.schedule.as_ref()?;
        if let Some(p) = kept {
            if p.schedule == schedule.as_str() && p.timezone == source.timezone {
                return Some(p);
            }
        }
        Some(Planned {
            schedule: schedule.as_str().to_owned(),
            timezone: source.timezone,
            at: schedule.next_after_tz(now, source.timezone)?,
        })
    }
}

/// The sooner of a cron fire and a pending retry.
fn earliest(fire: Option<DateTime<Utc>>, retry_at: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (fire, retry_at) {
        (Some(f), Some(r)) => Some(f.min(r)),
        (f, r) => f.or(r),
    }
}

fn until(t: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (t - now).to_std().unwrap_or(Duration::ZERO)
}

async fn sleep_for(d: Option<Duration>) {
    if let Some(d) = d {
        tokio::time::sleep(d).await;
    }
}

fn publish_next(shared: &Shared, name: &str, next: Option<DateTime<Utc>>) {
    if let Ok(mut board) = shared.board.lock() {
        let entry = board.sources.entry(name.to_owned()).or_default();
        entry.next_run_ms = next.map(|t| t.timestamp_millis());
    }
    shared.board_changed.notify_one();
}

fn mark_running(shared: &Shared, name: &str, running: bool) {
    if let Ok(mut board) = shared.board.lock() {
        board.sources.entry(name.to_owned()).or_default().running = running;
    }
    shared.board_changed.notify_one();
}

fn record(shared: &Shared, name: &str, finished: Finished) {
    if let Ok(mut board) = shared.board.lock() {
        let entry = board.sources.entry(name.to_owned()).or_default();
        entry.running = false;
        entry.last = Some(finished);
    }
    shared.board_changed.notify_one();
}

/// Backoff after failed runs a retry can help: `initial`, then doubling, at
/// most `max`; a success or a failure no retry helps clears it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Retry {
    failures: u32,
    at: Option<DateTime<Utc>>,
}

impl Retry {
    fn after(&mut self, finished: &Finished, config: &RetryConfig, now: DateTime<Utc>) {
        match &finished.failure {
            Some(f) if f.retryable => {
                self.failures = self.failures.saturating_add(1);
                // A source that said how long to wait is not asked sooner.
                let delay = backoff(self.failures, config).max(f.retry_after.unwrap_or_default());
                info!(
                    retry_in_s = delay.as_secs_f64(),
                    attempt = self.failures,
                    "the run will be retried"
                );
                // Far-off retries (a huge `retry.max`) saturate instead of
                // overflowing the calendar.
                self.at = chrono::Duration::from_std(delay)
                    .ok()
                    .and_then(|d| now.checked_add_signed(d))
                    .or(Some(DateTime::<Utc>::MAX_UTC));
            }
            _ => *self = Retry::default(),
        }
    }
}

/// The wait before retry number `failures` (1 = the first).
fn backoff(failures: u32, config: &RetryConfig) -> Duration {
    let exponent = failures.saturating_sub(1).min(30);
    config
        .initial
        .checked_mul(1u32 << exponent)
        .unwrap_or(config.max)
        .min(config.max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::{FailureKind, RunFailure, RunStatus};

    fn config() -> RetryConfig {
        RetryConfig {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(600),
        }
    }

    fn finished(failure: Option<RunFailure>) -> Finished {
        Finished {
            status: if failure.is_some() {
                RunStatus::Failed
            } else {
                RunStatus::Applied
            },
            failure,
            finished_ms: 0,
            summary: String::new(),
        }
    }

    #[test]
    fn backoff_doubles_from_initial_and_stops_at_max() {
        let waits: Vec<u64> = (1..=7).map(|n| backoff(n, &config()).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(backoff(u32::MAX, &config()).as_secs(), 600);
    }

    #[test]
    fn a_rate_limited_source_is_not_retried_before_it_said() {
        let now = Utc::now();
        let mut retry = Retry::default();
        let mut limited = RunFailure::new(FailureKind::SourceRateLimited, "429");
        limited.retry_after = Some(Duration::from_secs(300));
        retry.after(&finished(Some(limited.clone())), &config(), now);
        assert_eq!(retry.at, Some(now + chrono::Duration::seconds(300)));
        // A shorter wait than the backoff's does not shorten it.
        limited.retry_after = Some(Duration::from_secs(1));
        retry.after(&finished(Some(limited)), &config(), now);
        assert_eq!(retry.at, Some(now + chrono::Duration::seconds(60)));
    }

    #[test]
    fn a_retryable_failure_schedules_a_retry_and_a_success_clears_it() {
        let now = Utc::now();
        let mut retry = Retry::default();
        let unreachable = RunFailure::new(FailureKind::SourceUnreachable, "down");
        retry.after(&finished(Some(unreachable.clone())), &config(), now);
        retry.after(&finished(Some(unreachable)), &config(), now);
        assert_eq!(retry.failures, 2);
        assert_eq!(retry.at, Some(now + chrono::Duration::seconds(60)));
        retry.after(&finished(None), &config(), now);
        assert_eq!(retry, Retry::default());
    }

    #[test]
    fn a_failure_no_retry_helps_waits_for_the_schedule() {
        let mut retry = Retry::default();
        let bad_config = RunFailure::new(FailureKind::Config, "bad template");
        assert!(!bad_config.retryable);
        retry.after(&finished(Some(bad_config)), &config(), Utc::now());
        assert_eq!(retry.at, None);
    }
}
