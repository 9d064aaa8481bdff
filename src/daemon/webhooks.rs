//! From accepted webhook calls to runs: each source with `webhook:` gets a
//! debouncer that, at the first call of a burst, waits [`DEBOUNCE`] for the
//! rest of it and then asks the source's task for one run (a run in
//! progress meanwhile leaves one more queued: a burst of 500 calls is one or
//! two runs). The run is the source's usual run — a changes read unless a
//! full one is due — so a webhook never deprovisions anything by itself.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::api::hooks::Hook;
use crate::config::{ConnectorConfig, SourceConfig};

/// How long after the first call of a burst the run is asked for.
pub const DEBOUNCE: Duration = Duration::from_secs(1);

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
        tokio::time::sleep(DEBOUNCE).await;
        // The burst's other calls are in this one run.
        while calls.try_recv().is_ok() {}
        // Full: a run is already asked for.
        let _ = trigger.try_send(());
    }
}

/// The hooks of running sources, by name.
pub type HookMap = HashMap<String, Hook>;
