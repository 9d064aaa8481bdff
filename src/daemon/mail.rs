//! The daemon's mail dispatcher: a task that flushes the outbox on
//! `mail.schedule` (in `mail.timezone`), with one pooled transport and one
//! set of templates per config generation, rebuilt when a reload changes the
//! config. A flush runs on a blocking thread under the store's dispatcher
//! lock; a `mail flush` holding it makes the task skip that fire.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use super::scheduler::Shared;
use crate::config::Config;
use crate::mail::dispatch::{DispatchSettings, Dispatcher, Flush};
use crate::mail::{MailKind, Templates, Transport};
use crate::store::{Outbox, SqliteStore};

/// One config generation's dispatcher, and the config it was built from.
struct Generation {
    config: Arc<Config>,
    dispatcher: Arc<Dispatcher<Transport>>,
}

/// Starts the dispatcher task; it ends when `stop` turns true.
pub fn spawn(
    db: PathBuf,
    config: watch::Receiver<Arc<Config>>,
    stop: watch::Receiver<bool>,
    shared: Arc<Shared>,
) -> JoinHandle<()> {
    tokio::spawn(mail_loop(db, config, stop, shared))
}

async fn mail_loop(
    db: PathBuf,
    mut config: watch::Receiver<Arc<Config>>,
    mut stop: watch::Receiver<bool>,
    shared: Arc<Shared>,
) {
    let mut generation: Option<Generation> = None;
    publish_outbox(&db, &shared).await;
    loop {
        let current = Arc::clone(&config.borrow_and_update());
        if !generation
            .as_ref()
            .is_some_and(|g| Arc::ptr_eq(&g.config, &current))
        {
            generation = build(&current, &shared).map(|dispatcher| Generation {
                config: Arc::clone(&current),
                dispatcher: Arc::new(dispatcher),
            });
        }
        let next = generation.as_ref().and_then(|g| next_fire(&g.config));
        let sleep = next.map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO));
        tokio::select! {
            _ = stop.changed() => return,
            changed = config.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            () = sleep_for(sleep), if sleep.is_some() => {}
        }
        if *stop.borrow() {
            return;
        }
        if let Some(g) = &generation {
            flush(&db, Arc::clone(&g.dispatcher), &shared).await;
        }
    }
}

/// The dispatcher of `config`; `None` (logged) without `mail:` or when its
/// transport or templates cannot be built: then nothing is sent until a
/// reload fixes it, and the outbox keeps everything.
fn build(config: &Config, shared: &Shared) -> Option<Dispatcher<Transport>> {
    let mail = config.mail.as_ref()?;
    let settings = DispatchSettings::of(config)?;
    let templates = match Templates::for_config(config) {
        Ok(t) => t,
        Err(e) => {
            error!(error = %e, "mail templates failed to load; no mail is sent until a reload");
            return None;
        }
    };
    match Transport::from_config(mail) {
        Ok(transport) => {
            info!(transport = %transport.describe(), schedule = %mail.schedule.as_str(), "mail dispatcher ready");
            Some(Dispatcher::new(transport, templates, settings).with_cancel(shared.cancel.clone()))
        }
        Err(e) => {
            error!(error = %e, "the mail transport cannot be built; no mail is sent until a reload");
            None
        }
    }
}

/// The next fire of `mail.schedule` after now.
fn next_fire(config: &Config) -> Option<chrono::DateTime<Utc>> {
    let mail = config.mail.as_ref()?;
    let zone = mail.timezone.parse().unwrap_or(chrono_tz::UTC);
    mail.schedule.next_after_tz(Utc::now(), zone)
}

async fn sleep_for(d: Option<Duration>) {
    if let Some(d) = d {
        tokio::time::sleep(d).await;
    }
}

/// One flush off the async threads, logged and counted.
async fn flush(db: &std::path::Path, dispatcher: Arc<Dispatcher<Transport>>, shared: &Arc<Shared>) {
    let handle = tokio::runtime::Handle::current();
    let path = db.to_path_buf();
    let worker = tokio::task::spawn_blocking(move || {
        let _lock = match SqliteStore::lock_dispatcher(&path, Duration::ZERO, &mut |_| {}) {
            Ok(lock) => lock,
            Err(e) => return Err(format!("skipped: {e}")),
        };
        let store = SqliteStore::open(&path).map_err(|e| e.to_string())?;
        Ok(dispatcher.flush(store, &crate::clock::now_ms, &handle))
    });
    match worker.await {
        Ok(Ok(done)) => report(&done, shared),
        Ok(Err(why)) => info!(why = %why, "mail flush"),
        Err(e) => error!(error = %e, "the mail flush stopped unexpectedly"),
    }
    publish_outbox(db, shared).await;
}

/// Logs what a flush did and adds it to the metrics.
fn report(done: &Flush, shared: &Shared) {
    for kind in MailKind::ALL {
        shared
            .metrics
            .mail_dispatched(kind.as_str(), done.sent.of(kind), done.failed.of(kind));
    }
    let stopped = done.stopped.as_ref().map(ToString::to_string);
    if done.is_error() {
        warn!(
            sent = done.sent.total(),
            failed = done.failed.total(),
            retried = done.retried,
            stopped = stopped.as_deref().unwrap_or(""),
            "mail flush stopped"
        );
    } else if done.sent.total() + done.failed.total() + done.retried + done.cancelled > 0
        || stopped.is_some()
    {
        info!(
            sent = done.sent.total(),
            failed = done.failed.total(),
            retried = done.retried,
            cancelled = done.cancelled,
            stopped = stopped.as_deref().unwrap_or(""),
            "mail flushed"
        );
    }
}

/// Sets the outbox gauge from the store.
async fn publish_outbox(db: &std::path::Path, shared: &Arc<Shared>) {
    let path = db.to_path_buf();
    let counts = tokio::task::spawn_blocking(move || {
        SqliteStore::open_read_only(&path).and_then(|mut s| s.outbox_counts())
    })
    .await;
    match counts {
        Ok(Ok(counts)) => {
            for (state, depth) in counts {
                shared.metrics.set_outbox(&state, depth);
            }
        }
        Ok(Err(e)) => warn!(error = %e, "the outbox could not be counted"),
        Err(_) => {}
    }
}
