//! One read through a plugin: its lines become items, and the read ends only
//! when the plugin has said `end` and exited with status 0.

use std::sync::Arc;

use liaison_plugin_api::{Cancel, Item, ItemSender, ReadMode, SourceError};

use crate::process::{Next, Plugin, SpawnError, StderrSink, Stop};
use crate::protocol::{LogLevel, Message, Session};
use crate::ExecConfig;

/// Items handed to the host at a time.
pub(crate) const BATCH: usize = 256;

/// Runs the plugin and sends its items; an `Err` fails the read. Every way
/// out kills the plugin's process group (dropping [`Plugin`] does too, when
/// the host drops the stream and this task is aborted).
pub(crate) async fn read(
    config: Arc<ExecConfig>,
    start: Vec<u8>,
    asked: ReadMode,
    cancel: Cancel,
    tx: ItemSender,
) -> Result<(), SourceError> {
    let name = config.describe();
    let sink = StderrSink::Log(Arc::from(config.source.as_str()));
    let mut plugin = Plugin::spawn(&config, start, sink, cancel, false)
        .map_err(|e| spawn_failure(&config, e))?;
    let mut session = Session::new(asked);
    let mut end = None;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        // Hand the items over when the batch is full, and before waiting for
        // the plugin: a slow plugin's records are not held back.
        if batch.len() == BATCH || (!batch.is_empty() && !plugin.has_line()) {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if tx.send_batch(full).await.is_err() {
                // The host stopped reading (it failed elsewhere, or was cancelled).
                plugin.kill().await;
                return Ok(());
            }
        }
        let item = match plugin.next().await {
            Ok(Next::Eof) => break,
            Ok(Next::TooLong(line)) => {
                let why = format!(
                    "line {line} is longer than max_line_length ({} bytes)",
                    config.max_line_length
                );
                return Err(fail(&mut plugin, &name, SourceError::Invalid, why).await);
            }
            Ok(Next::Line(line, bytes)) => match session.take(line, bytes) {
                Ok(None) => continue,
                Ok(Some(Message::Record(record))) => Item::Record(record),
                Ok(Some(Message::Bad(bad))) => Item::Bad(bad),
                Ok(Some(Message::Deleted(deletion))) => Item::Deleted(deletion),
                Ok(Some(Message::Log { level, message })) => {
                    log(&config.source, line, level, &message);
                    continue;
                }
                Ok(Some(Message::End(read_end))) => {
                    // Held until the plugin has exited with status 0.
                    end = Some(read_end);
                    continue;
                }
                Err(violation) => {
                    let why = violation.to_string();
                    return Err(fail(&mut plugin, &name, SourceError::Invalid, why).await);
                }
            },
            Err(stop) => return Err(stopped(&mut plugin, &name, stop).await),
        };
        batch.push(item);
    }
    if tx.send_batch(batch).await.is_err() {
        plugin.kill().await;
        return Ok(());
    }
    let exit = match plugin.wait().await {
        Ok(exit) => exit,
        Err(stop) => return Err(stopped(&mut plugin, &name, stop).await),
    };
    if !exit.success() {
        let why = format!("the plugin {exit}");
        return Err(fail(&mut plugin, &name, SourceError::Unreachable, why).await);
    }
    let Some(end) = end else {
        let why = format!(
            "the plugin exited (status 0) without its end line, after {} lines: \
             the read is incomplete and nothing is applied",
            plugin.lines()
        );
        return Err(fail(&mut plugin, &name, SourceError::Incomplete, why).await);
    };
    // Every stderr line logged before the read ends.
    plugin.stderr_tail().await;
    // The reader may be gone; then there is no one to tell.
    let _ = tx.send(Item::End(end)).await;
    Ok(())
}

/// Kills the plugin and makes the read's error: `name: why`, with the last
/// stderr lines when there are any.
async fn fail(
    plugin: &mut Plugin,
    name: &str,
    kind: fn(String) -> SourceError,
    why: String,
) -> SourceError {
    plugin.kill().await;
    let tail = plugin.stderr_tail().await;
    kind(format!("{name}: {why}{}", stderr_text(&tail)))
}

/// The error of a read stopped by a timeout, a cancellation or a broken pipe.
async fn stopped(plugin: &mut Plugin, name: &str, stop: Stop) -> SourceError {
    let kind = match stop {
        Stop::Cancelled => SourceError::Incomplete,
        Stop::Timeout(_) | Stop::Idle(_) | Stop::Io(_) => SourceError::Unreachable,
    };
    let why = format!("{stop} ({} lines read)", plugin.lines());
    fail(plugin, name, kind, why).await
}

/// The error of a plugin that could not be started.
fn spawn_failure(config: &ExecConfig, e: SpawnError) -> SourceError {
    let name = config.describe();
    let program = config.command.first().map_or("", String::as_str);
    match e {
        SpawnError::WorkingDir(why) => SourceError::Unreachable(format!("{name}: {why}")),
        SpawnError::Program(e) => {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound if program.contains('/') => {
                    "not found (or its #! interpreter is missing)".to_owned()
                }
                std::io::ErrorKind::NotFound => {
                    "not found in PATH (or its #! interpreter is missing)".to_owned()
                }
                std::io::ErrorKind::PermissionDenied => {
                    "permission denied (is it executable?)".to_owned()
                }
                _ => e.to_string(),
            };
            SourceError::Unreachable(format!("{name}: cannot run {program:?}: {why}"))
        }
    }
}

/// `; last stderr lines: "…" | "…"`, or nothing.
pub(crate) fn stderr_text(tail: &[String]) -> String {
    /// A failure message quotes at most this much of stderr.
    const MAX: usize = 600;
    if tail.is_empty() {
        return String::new();
    }
    let mut text = String::from("; last stderr lines: ");
    for (i, line) in tail.iter().enumerate() {
        if i > 0 {
            text.push_str(" | ");
        }
        let shown: String = line.chars().take(MAX / tail.len()).collect();
        text.push_str(&format!("{shown:?}"));
    }
    text
}

/// A plugin's `log` line as a log event at its level, naming the source.
pub(crate) fn log(source: &str, line: u64, level: LogLevel, message: &str) {
    match level {
        LogLevel::Error => tracing::error!(source, line, "plugin: {message}"),
        LogLevel::Warn => tracing::warn!(source, line, "plugin: {message}"),
        LogLevel::Info => tracing::info!(source, line, "plugin: {message}"),
        LogLevel::Debug => tracing::debug!(source, line, "plugin: {message}"),
    }
}
