//! `liaison mail flush`: sends the outbox's due mail now, as the daemon's
//! dispatcher does on `mail.schedule`, and says what it did.

use serde_json::json;
use tracing::info;

use super::args::Format;
use super::commands::naming_the_store;
use super::{exit, output};
use crate::config::{Config, StoreLocation};
use crate::mail::dispatch::{DispatchSettings, Dispatcher, Flush};
use crate::mail::{Templates, Transport};
use crate::store::SqliteStore;

/// `mail flush`: exit 0 when the due mail was handled (sent, retried later or
/// failed for good: `mail status` shows which), 1 when the store or the
/// transport stopped it, 2 without `mail:`.
pub fn flush(config: &Config, format: Format) -> anyhow::Result<u8> {
    let (Some(mail), Some(settings)) = (config.mail.as_ref(), DispatchSettings::of(config)) else {
        output::error_line("error: mail: is not configured, so there is no mail to send");
        return Ok(exit::INVALID);
    };
    let StoreLocation::Sqlite(db) = &config.store else {
        anyhow::bail!("the PostgreSQL store is not part of this build yet; use sqlite://");
    };
    let named = |e: crate::store::StoreError| naming_the_store(e.into(), &db.display().to_string());
    super::create_state_folder(config, db)?;
    let _dispatching = SqliteStore::lock_dispatcher(db, super::lock_wait()?, &mut |holder| {
        info!(%holder, "waiting for the other dispatcher of this store to finish");
    })
    .map_err(named)?;
    let store = SqliteStore::open(db).map_err(named)?;
    let templates = Templates::for_config(config)?;
    // Deliveries are driven from the dispatcher's own threads: the runtime
    // needs a worker of its own for their I/O.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("liaison-mail")
        .enable_all()
        .build()?;
    // lettre's SMTP pool starts a task when it is built (and when dropped:
    // see `close`).
    let transport = {
        let _inside = runtime.enter();
        Transport::from_config(mail)?
    };
    let via = transport.describe().to_owned();
    let dispatcher = Dispatcher::new(transport, templates, settings);
    let done = dispatcher.flush(store, &crate::clock::now_ms, runtime.handle());
    close(&runtime, dispatcher);
    report(&done, &via, format)?;
    Ok(if done.is_error() {
        exit::FAILURE
    } else {
        exit::OK
    })
}

/// Drops the dispatcher inside `runtime`: lettre's SMTP pool closes its
/// connections from a task it spawns when dropped, which panics outside a
/// runtime (after the mail went out, as exit 101).
fn close(runtime: &tokio::runtime::Runtime, dispatcher: Dispatcher<Transport>) {
    runtime.block_on(async move {
        drop(dispatcher);
        // Let the closing task start before the runtime goes away.
        tokio::task::yield_now().await;
    });
}

fn report(done: &Flush, via: &str, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => output::json_out(&json!({
            "via": via,
            "requeued": done.requeued,
            "sent": {
                "welcome": done.sent.welcome,
                "registration_confirmation": done.sent.registration_confirmation,
            },
            "failed": {
                "welcome": done.failed.welcome,
                "registration_confirmation": done.failed.registration_confirmation,
            },
            "retried": done.retried,
            "cancelled": done.cancelled,
            "stopped": done.stopped.as_ref().map(ToString::to_string),
        }))?,
        Format::Human => {
            if done.requeued > 0 {
                output::error_line(&format!(
                    "note: {} left sending by a stopped dispatcher queued again (it may have been delivered)",
                    messages(done.requeued)
                ));
            }
            let mut said = format!("sent {} via {via}", messages(done.sent.total()));
            for (n, what) in [
                (done.retried, "to retry later"),
                (done.failed.total(), "failed (see `liaison mail status`)"),
                (done.cancelled, "cancelled"),
            ] {
                if n > 0 {
                    said.push_str(&format!(", {n} {what}"));
                }
            }
            output::line(&said);
            match &done.stopped {
                Some(stop) if done.is_error() => output::error_line(&format!("error: {stop}")),
                Some(stop) => output::line(&format!("note: {stop}")),
                None => {}
            }
        }
    }
    Ok(())
}

fn messages(n: u64) -> String {
    if n == 1 {
        "1 message".to_owned()
    } else {
        format!("{n} messages")
    }
}
