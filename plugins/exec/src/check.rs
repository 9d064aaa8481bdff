//! `liaison plugin check`: one run of a plugin, reporting everything it sent
//! and every line that breaks the protocol. Unlike a read, a check does not
//! stop at the first bad line: it reads on to the end, so an author sees all
//! the problems at once. The line parser is the connector's own.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use liaison_plugin_api::{Cancel, ReadMode, ReadRequest, Value};

use crate::process::{Collected, Exit, Next, Plugin, SpawnError, StderrSink, Stop};
use crate::protocol::{self, LogLevel, Message, Session, Violation};
use crate::ExecConfig;

/// How much of a plugin's output a check keeps to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckLimits {
    /// Records shown with their attributes (the rest are counted).
    pub records: usize,
    /// Entries kept of each list (errors, deletions, logs, stderr, violations).
    pub listed: usize,
}

impl Default for CheckLimits {
    fn default() -> Self {
        CheckLimits {
            records: 5,
            listed: 1000,
        }
    }
}

/// The first entries of a list, and how many there were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed<T> {
    /// The entries kept, in order.
    pub items: Vec<T>,
    /// How many there were in all.
    pub total: u64,
    max: usize,
}

impl<T> Listed<T> {
    fn new(max: usize) -> Self {
        Listed {
            items: Vec::new(),
            total: 0,
            max,
        }
    }

    fn push(&mut self, item: T) {
        self.total += 1;
        if self.items.len() < self.max {
            self.items.push(item);
        }
    }
}

/// A record the plugin sent, as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedRecord {
    /// Its stdout line.
    pub line: u64,
    /// Its key.
    pub key: String,
    /// Its attributes in the order sent.
    pub attributes: Vec<(String, Value)>,
}

/// An `error` line the plugin sent: a bad record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedError {
    /// Its stdout line.
    pub line: u64,
    /// The plugin's location for it.
    pub location: String,
    /// The plugin's message.
    pub message: String,
    /// The record's key, if given.
    pub key: Option<String>,
}

/// A `deleted` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedDeletion {
    /// Its stdout line.
    pub line: u64,
    /// The key that left.
    pub key: String,
}

/// A `log` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedLog {
    /// Its stdout line.
    pub line: u64,
    /// Its level.
    pub level: LogLevel,
    /// Its message.
    pub message: String,
}

/// The `end` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedEnd {
    /// Its stdout line.
    pub line: u64,
    /// The mode it says the read delivered.
    pub mode: ReadMode,
    /// The cursor's JSON text; `None` for `null`.
    pub cursor: Option<String>,
}

/// Why a check's run failed as a whole (beside its protocol violations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckFailure {
    /// The plugin could not be started.
    NotStarted(String),
    /// The plugin exited non-zero or was killed by a signal.
    Exit(Exit),
    /// `timeout` or `idle_timeout` ran out and the plugin was killed.
    TimedOut(String),
    /// The check was cancelled (a signal) and the plugin was stopped.
    Cancelled,
    /// Reading its output failed.
    Io(String),
}

impl std::fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckFailure::NotStarted(why) | CheckFailure::TimedOut(why) => f.write_str(why),
            CheckFailure::Exit(exit) => write!(f, "the plugin {exit}"),
            CheckFailure::Cancelled => f.write_str("cancelled; the plugin was stopped"),
            CheckFailure::Io(why) => write!(f, "reading its output failed: {why}"),
        }
    }
}

/// What one run of a plugin sent, and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The mode the start line asked for.
    pub asked: ReadMode,
    /// The start line the plugin was given.
    pub start_line: String,
    /// How many records it sent.
    pub records: u64,
    /// The first records, with their attributes.
    pub shown: Vec<CheckedRecord>,
    /// Every attribute name the records used, in first-seen order.
    pub attribute_names: Vec<String>,
    /// `error` lines.
    pub errors: Listed<CheckedError>,
    /// `deleted` lines.
    pub deletions: Listed<CheckedDeletion>,
    /// `log` lines.
    pub logs: Listed<CheckedLog>,
    /// The `end` line, if one came (and parsed).
    pub end: Option<CheckedEnd>,
    /// stderr lines (each cut at 4 KiB).
    pub stderr: Listed<String>,
    /// Lines that break the protocol, and a missing end.
    pub violations: Listed<Violation>,
    /// Fields the protocol does not know (ignored by a read).
    pub warnings: Listed<Violation>,
    /// How the plugin exited, when it did by itself.
    pub exit: Option<Exit>,
    /// Why the run failed as a whole, if it did.
    pub failure: Option<CheckFailure>,
    /// Stdout lines read.
    pub lines: u64,
    /// Wall time from start to exit.
    pub elapsed: Duration,
}

impl CheckReport {
    /// Whether the plugin ran cleanly: no violation, an end, exit status 0.
    pub fn is_clean(&self) -> bool {
        self.violations.total == 0 && self.failure.is_none()
    }
}

/// Runs the plugin of `config` once as `request` asks and reports on it.
/// Writes nothing anywhere; `cancel` stops it (the plugin is killed). Runs
/// on a runtime of its own, so call it from a plain thread.
pub fn check(
    config: &ExecConfig,
    request: &ReadRequest,
    cancel: &Cancel,
    limits: CheckLimits,
) -> CheckReport {
    let asked = protocol::effective_mode(request);
    let mut report = CheckReport {
        asked,
        start_line: String::new(),
        records: 0,
        shown: Vec::new(),
        attribute_names: Vec::new(),
        errors: Listed::new(limits.listed),
        deletions: Listed::new(limits.listed),
        logs: Listed::new(limits.listed),
        end: None,
        stderr: Listed::new(limits.listed),
        violations: Listed::new(limits.listed),
        warnings: Listed::new(limits.listed),
        exit: None,
        failure: None,
        lines: 0,
        elapsed: Duration::ZERO,
    };
    let start = match protocol::start_line(&config.source, request, &config.settings) {
        Ok(start) => start,
        Err(why) => {
            report.failure = Some(CheckFailure::NotStarted(format!("--cursor: {why}")));
            return report;
        }
    };
    report.start_line = String::from_utf8_lossy(&start).into_owned();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            report.failure = Some(CheckFailure::NotStarted(format!(
                "no async runtime could be started: {e}"
            )));
            return report;
        }
    };
    let began = Instant::now();
    runtime.block_on(run(config, start, cancel, limits, &mut report));
    report.elapsed = began.elapsed();
    report
}

async fn run(
    config: &ExecConfig,
    start: Vec<u8>,
    cancel: &Cancel,
    limits: CheckLimits,
    report: &mut CheckReport,
) {
    let collected = Arc::new(Mutex::new(Collected::default()));
    let sink = StderrSink::Collect(collected.clone(), limits.listed);
    let mut plugin = match Plugin::spawn(config, start, sink, cancel.clone(), true) {
        Ok(plugin) => plugin,
        Err(e) => {
            let program = config.command.first().map_or("", String::as_str);
            let why = match e {
                SpawnError::WorkingDir(why) => why,
                SpawnError::Program(e) => format!("cannot run {program:?}: {e}"),
            };
            report.failure = Some(CheckFailure::NotStarted(why));
            return;
        }
    };
    let mut session = Session::new(report.asked);
    let mut stop = None;
    loop {
        match plugin.next().await {
            Ok(Next::Eof) => break,
            Ok(Next::TooLong(line)) => report.violations.push(Violation::at(
                line,
                format!(
                    "longer than max_line_length ({} bytes); skipped",
                    config.max_line_length
                ),
            )),
            Ok(Next::Line(line, bytes)) => {
                let taken = session.take(line, bytes);
                for field in session.unknown_fields() {
                    report.warnings.push(Violation::at(
                        line,
                        format!("unknown field {field:?} (ignored)"),
                    ));
                }
                match taken {
                    Ok(None) => {}
                    Ok(Some(message)) => note(report, limits, line, message),
                    Err(violation) => report.violations.push(violation),
                }
            }
            Err(s) => {
                stop = Some(s);
                break;
            }
        }
    }
    report.lines = plugin.lines();
    if stop.is_none() {
        match plugin.wait().await {
            Ok(exit) => {
                report.exit = Some(exit);
                if !exit.success() {
                    report.failure = Some(CheckFailure::Exit(exit));
                }
            }
            Err(s) => stop = Some(s),
        }
    }
    if let Some(s) = stop {
        report.failure = Some(match s {
            Stop::Cancelled => CheckFailure::Cancelled,
            Stop::Io(e) => CheckFailure::Io(e.to_string()),
            s @ (Stop::Timeout(_) | Stop::Idle(_)) => CheckFailure::TimedOut(s.to_string()),
        });
    }
    plugin.kill().await;
    let _ = plugin.stderr_tail().await;
    // A plugin stopped by a timeout or a signal had no chance to end; one
    // that exited by itself (even non-zero) should have.
    let exited = matches!(report.failure, None | Some(CheckFailure::Exit(_)));
    if session.end_line().is_none() && exited {
        report.violations.push(Violation {
            line: None,
            message: format!(
                "no end line: the plugin's output stopped after {} lines without \
                 {{\"type\": \"end\", …}}, so a read would fail and apply nothing",
                report.lines
            ),
        });
    }
    let kept = collected.lock().map(|c| (c.lines.clone(), c.total));
    if let Ok((lines, total)) = kept {
        report.stderr.items = lines;
        report.stderr.total = total;
    }
}

/// Adds one understood line to the report.
fn note(report: &mut CheckReport, limits: CheckLimits, line: u64, message: Message) {
    match message {
        Message::Record(record) => {
            report.records += 1;
            for name in record.schema.names() {
                if report.attribute_names.len() < limits.listed
                    && !report.attribute_names.contains(name)
                {
                    report.attribute_names.push(name.clone());
                }
            }
            if report.shown.len() < limits.records {
                report.shown.push(CheckedRecord {
                    line,
                    key: record.key().unwrap_or_default().to_owned(),
                    attributes: record
                        .attributes()
                        .map(|(n, v)| (n.to_owned(), v.to_value()))
                        .collect(),
                });
            }
        }
        Message::Bad(bad) => {
            let location = match &bad.location {
                liaison_plugin_api::Location::Output { at: Some(at), .. } => at.to_string(),
                other => other.to_string(),
            };
            report.errors.push(CheckedError {
                line,
                location,
                message: bad.message,
                key: bad.key,
            });
        }
        Message::Deleted(deletion) => report.deletions.push(CheckedDeletion {
            line,
            key: deletion.key,
        }),
        Message::Log { level, message } => report.logs.push(CheckedLog {
            line,
            level,
            message,
        }),
        Message::End(end) => {
            report.end = Some(CheckedEnd {
                line,
                mode: end.mode,
                cursor: end.cursor.map(|c| c.into_string()),
            })
        }
    }
}
