//! What a connector reads in, as the host builds it: the tokio runtime async
//! connectors run on and the clock they read at.

use std::sync::Arc;
use std::time::Duration;

use liaison_plugin_api::{Cancel, Clock, ReadContext};

/// A read context for a run at `now_ms`, cancelled by `cancel`, on `runtime`.
pub fn read_context(cancel: Cancel, now_ms: i64, runtime: &ReadRuntime) -> ReadContext {
    ReadContext::new(cancel)
        .with_clock(run_clock(now_ms))
        .with_runtime(runtime.handle())
}

/// The clock a connector reads at: the run's time (injected in tests, see
/// [`super::RunOptions::now_ms`]), moving on as the read goes.
pub fn run_clock(now_ms: i64) -> Clock {
    let started = std::time::Instant::now();
    let at = std::time::UNIX_EPOCH + Duration::from_millis(now_ms.max(0) as u64);
    Arc::new(move || at + started.elapsed())
}

/// The tokio runtime async connectors read on: the caller's (the daemon's),
/// else one of the run's own with a single worker (the CLI).
pub enum ReadRuntime {
    /// The caller's runtime (the daemon's).
    Current(tokio::runtime::Handle),
    /// One made for this read (the CLI).
    Own(tokio::runtime::Runtime),
}

impl ReadRuntime {
    /// The current runtime, else a new one.
    pub fn get() -> std::io::Result<Self> {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            return Ok(ReadRuntime::Current(handle));
        }
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("liaison-read")
            .enable_all()
            .build()
            .map(ReadRuntime::Own)
    }

    /// A handle to spawn the connector's tasks on.
    pub fn handle(&self) -> tokio::runtime::Handle {
        match self {
            ReadRuntime::Current(handle) => handle.clone(),
            ReadRuntime::Own(runtime) => runtime.handle().clone(),
        }
    }
}
