//! `/readyz`: the store answers and no source has failed more runs in a row
//! than `readiness.max_failed_runs`. Asked of the store on a connection of
//! its own, read-only, so it never waits for a running apply.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

use crate::api::Readiness;
use crate::config::Config;
use crate::store::{SqliteStore, Store};

/// Readiness read from an SQLite store's run history.
#[derive(Debug, Clone)]
pub struct StoreReadiness {
    /// The database file.
    pub db: PathBuf,
    /// The running config: `readiness.max_failed_runs` follows reloads.
    pub config: watch::Receiver<Arc<Config>>,
}

impl Readiness for StoreReadiness {
    fn check(&self) -> Result<(), String> {
        let max_failed_runs = self.config.borrow().readiness.max_failed_runs;
        let mut store = SqliteStore::open_read_only(&self.db)
            .map_err(|e| format!("the store is not reachable: {}", chain(&e)))?;
        let summaries = store
            .run_summaries()
            .map_err(|e| format!("the store is not reachable: {}", chain(&e)))?;
        let failing: Vec<String> = summaries
            .iter()
            .filter(|s| s.failed_in_a_row > max_failed_runs)
            .map(|s| format!("{} ({} failed runs in a row)", s.source, s.failed_in_a_row))
            .collect();
        if failing.is_empty() {
            Ok(())
        } else {
            Err(format!("failing sources: {}", failing.join(", ")))
        }
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        text.push_str(": ");
        text.push_str(&e.to_string());
        next = e.source();
    }
    text
}
