//! From accepted webhook calls to runs: each source with `webhook:` gets a
//! debouncer that, after the first call of a burst, waits until no call came
//! for [`DEBOUNCE`] (but no longer than [`MAX_DELAY`] after that first call)
//! and then asks the source's task for one run (a run in progress meanwhile
//! leaves one more queued: a burst of 500 calls is one or two runs). The run is the source's usual run — a changes read unless a
//! full one is due — so a webhook never deprovisions anything by itself.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::api::hooks::Hook;
use crate::config::{ConnectorConfig, SourceConfig};

/// A burst is over when no call came for this long.
pub const DEBOUNCE: Duration = Duration::from_secs(1);

/// The longest a call waits for its run to be asked for, however long the
/// burst goes on (a steady stream of calls still runs the source this often).
pub const MAX_DELAY: Duration = Duration::from_secs(5);

/// A source's debouncer; dropping it stops it.
#[derive(Debug)]
pub struct Debouncer {
    task: JoinHandle<()>,
}

impl Drop for Debouncer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The hook of `source` when it takes webhooks, and its debouncer feeding
/// `trigger` (the source task's). Must run inside the runtime.
pub fn hook(source: &SourceConfig, trigger: mpsc::Sender<()>) -> Option<(Hook, Debouncer)> {
    #[allow(irrefutable_let_patterns)]
    let ConnectorConfig::Crm(crm) = &source.connector
    else {
        return None;
    };
    let check = crm.webhook.clone()?;
    let (announce, calls) = mpsc::channel(1);
    let task = tokio::spawn(debounce(calls, trigger));
    Some((Hook { check, announce }, Debouncer { task }))
}

async fn debounce(mut calls: mpsc::Receiver<()>, trigger: mpsc::Sender<()>) {
    while calls.recv().await.is_some() {
        let deadline = tokio::time::Instant::now() + MAX_DELAY;
        // The burst's other calls are in this one run.
        loop {
            let quiet = tokio::time::sleep(DEBOUNCE);
            let latest = tokio::time::sleep_until(deadline);
            tokio::select! {
                call = calls.recv() => if call.is_none() { return },
                () = quiet => break,
                () = latest => break,
            }
        }
        // Full: a run is already asked for.
        let _ = trigger.try_send(());
    }
}

/// The hooks of running sources, by name.
pub type HookMap = HashMap<String, Hook>;
