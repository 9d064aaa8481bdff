//! `liaison mail status` and `liaison mail release RUN`: the outbox as the
//! store holds it, and the release of a run's held welcomes.

use std::path::Path;

use anyhow::bail;
use serde_json::{json, Value};
use tracing::info;

use super::args::Format;
use super::commands::naming_the_store;
use super::exit;
use super::output;
use super::status::rfc3339;
use super::text::visible;
use crate::config::{Config, StoreLocation};
use crate::store::{
    HeldBatch, OutboxEntry, OutboxPolicy, OutboxState, Release, SqliteStore, Store, StoreError,
};

/// Failed messages `mail status` lists (the latest).
const FAILURES_SHOWN: usize = 20;
/// Queued messages `mail status` lists (the next to go).
const QUEUED_SHOWN: usize = 20;

/// Everything `mail status` shows.
struct MailStatus {
    counts: std::collections::BTreeMap<String, u64>,
    held: Vec<HeldBatch>,
    queued: Vec<OutboxEntry>,
    failures: Vec<OutboxEntry>,
}

/// `mail status`: read-only, like `status` (no lock, nothing created), so it
/// works while a daemon runs.
pub fn status(config: &Config, format: Format) -> anyhow::Result<u8> {
    let path = sqlite_path(config)?;
    let view = gather(path).map_err(|e| naming_the_store(e.into(), &path.display().to_string()))?;
    match format {
        Format::Json => output::json_out(&status_json(&view))?,
        Format::Human => {
            if config.mail.is_none() {
                output::error_line("note: mail: is not configured, so nothing is queued or sent");
            }
            for line in status_lines(&view) {
                output::line(&line);
            }
        }
    }
    Ok(exit::OK)
}

/// `mail release RUN`: queues the mail `run` held, once.
pub fn release(config: &Config, run: i64) -> anyhow::Result<u8> {
    let Some(policy) = OutboxPolicy::of(config.mail.as_ref()) else {
        output::error_line(
            "error: mail: is not configured, so the held welcomes would never be sent; configure mail: first",
        );
        return Ok(exit::INVALID);
    };
    let mut store = super::open_store(config)?;
    store.lock_writer(super::lock_wait()?, &mut |holder| {
        info!(%holder, "waiting for the store's writer lock to release held welcomes");
    })?;
    let released = store.outbox_release(run, &policy, crate::clock::now_ms());
    store.unlock_writer()?;
    match released? {
        Release::Queued {
            welcomes,
            confirmations,
        } => {
            let mut said = format!("run {run}: queued {}", plural(welcomes, "welcome"));
            if confirmations > 0 {
                said.push_str(&format!(
                    " and {}",
                    plural(confirmations, "registration confirmation")
                ));
            }
            output::line(&said);
            Ok(exit::OK)
        }
        Release::AlreadyReleased { at_ms, messages } => {
            output::error_line(&format!(
                "error: the welcomes held by run {run} were released already, at {} ({} queued then); nothing queued",
                rfc3339(at_ms).unwrap_or_else(|| at_ms.to_string()),
                plural(messages, "message")
            ));
            Ok(exit::FAILURE)
        }
        Release::NoBatch => {
            output::error_line(&format!(
                "error: run {run} held no welcomes (`liaison mail status` lists the held batches)"
            ));
            Ok(exit::FAILURE)
        }
    }
}

fn sqlite_path(config: &Config) -> anyhow::Result<&Path> {
    match &config.store {
        StoreLocation::Sqlite(path) => Ok(path),
        StoreLocation::Postgres(_) => {
            bail!("the PostgreSQL store is not part of this build yet; use sqlite://")
        }
    }
}

/// Reads the outbox of the store at `db`; a store not created yet has an
/// empty one.
fn gather(db: &Path) -> Result<MailStatus, StoreError> {
    if !db.exists() {
        return Ok(MailStatus {
            counts: OutboxState::ALL
                .iter()
                .map(|s| (s.as_str().to_owned(), 0))
                .collect(),
            held: Vec::new(),
            queued: Vec::new(),
            failures: Vec::new(),
        });
    }
    let mut store = SqliteStore::open_read_only(db)?;
    let store: &mut dyn Store = &mut store;
    Ok(MailStatus {
        counts: store.outbox_counts()?,
        held: store.outbox_held()?,
        queued: store.outbox_due(i64::MAX, QUEUED_SHOWN)?,
        failures: store.outbox_failures(FAILURES_SHOWN)?,
    })
}

fn plural(n: u64, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn time(ms: i64) -> String {
    rfc3339(ms).unwrap_or_else(|| ms.to_string())
}

fn status_lines(view: &MailStatus) -> Vec<String> {
    // In the order of a message's life, not alphabetically.
    let counts: Vec<String> = OutboxState::ALL
        .iter()
        .map(|state| {
            let n = view.counts.get(state.as_str()).copied().unwrap_or(0);
            format!("{n} {state}")
        })
        .collect();
    let mut lines = vec![format!("outbox: {}", counts.join(", "))];
    for b in &view.held {
        let what = if b.confirmations {
            "welcomes and registration confirmations"
        } else {
            "welcomes"
        };
        let head = format!(
            "run {} ({}): {} of {} held at {}",
            b.run,
            visible(&b.source),
            what,
            plural(b.users, "new user"),
            time(b.held_ms)
        );
        lines.push(match (b.released_ms, b.released) {
            (Some(at), n) => format!(
                "{head}; released at {} ({} queued)",
                time(at),
                plural(n.unwrap_or(0), "message")
            ),
            (None, _) => format!("{head}; release with: liaison mail release {}", b.run),
        });
    }
    if !view.queued.is_empty() {
        lines.push("queued next:".to_owned());
        for e in &view.queued {
            lines.push(format!(
                "  {} {} {} ({}), not before {}{}",
                e.id,
                e.kind,
                visible(&e.recipient),
                visible(&e.locale),
                time(e.not_before_ms),
                retry_note(e)
            ));
        }
    }
    if !view.failures.is_empty() {
        lines.push("failed:".to_owned());
        for e in &view.failures {
            lines.push(format!(
                "  {} {} {} after {}: {}",
                e.id,
                e.kind,
                visible(&e.recipient),
                plural(u64::from(e.attempts), "attempt"),
                visible(e.last_error.as_deref().unwrap_or("no reason recorded"))
            ));
        }
    }
    lines
}

fn retry_note(e: &OutboxEntry) -> String {
    match (&e.last_error, e.attempts) {
        (Some(why), n) if n > 0 => format!(
            ", {} so far, last: {}",
            plural(u64::from(n), "attempt"),
            visible(why)
        ),
        _ => String::new(),
    }
}

fn entry_json(e: &OutboxEntry) -> Value {
    json!({
        "id": e.id,
        "kind": e.kind,
        "user_id": e.user.0,
        "recipient": e.recipient,
        "locale": e.locale,
        "state": e.state,
        "not_before": rfc3339(e.not_before_ms),
        "attempts": e.attempts,
        "last_error": e.last_error,
        "message_id": e.message_id,
        "run": e.run,
        "queued_at": rfc3339(e.created_ms),
        "updated_at": rfc3339(e.updated_ms),
    })
}

fn status_json(view: &MailStatus) -> Value {
    let held: Vec<Value> = view
        .held
        .iter()
        .map(|b| {
            json!({
                "run": b.run,
                "source": b.source,
                "users": b.users,
                "confirmations": b.confirmations,
                "held_at": rfc3339(b.held_ms),
                "released_at": b.released_ms.and_then(rfc3339),
                "released": b.released,
            })
        })
        .collect();
    json!({
        "counts": view.counts,
        "held": held,
        "queued": view.queued.iter().map(entry_json).collect::<Vec<_>>(),
        "failures": view.failures.iter().map(entry_json).collect::<Vec<_>>(),
    })
}
