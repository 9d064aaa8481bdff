//! Exec connector for Liaison: a source read by an external program, in any
//! language, speaking the JSON-lines exec protocol, version 1 (SPEC §2; for
//! plugin authors, `docs/plugin-protocol.md`).
//!
//! Each read starts the configured `command` (an argv list; no shell), writes
//! one start line to its stdin and closes it, and turns the JSON lines it writes
//! to stdout into items: `record`, `deleted`, `error` (a bad record), `log` (a
//! log event) and, last, `end`. The read is complete only when the plugin has
//! written its `end` *and* exited with status 0; the end item is held back
//! until then.
//!
//! ```no_run
//! use std::path::PathBuf;
//! use liaison_plugin_api::{Connector, Item, ReadContext, ReadRequest};
//! use liaison_plugin_exec::{ExecConfig, ExecConnector};
//!
//! let config = ExecConfig::new(
//!     "crm-export",
//!     vec!["python3".into(), "plugins/crm_export.py".into()],
//!     PathBuf::from("/etc/liaison"),
//! );
//! let exec = ExecConnector::new(config);
//! for item in exec.read(&ReadRequest::full(), &ReadContext::default())? {
//!     match item? {
//!         Item::Record(r) => println!("{}: {:?}", r.location, r.key()),
//!         Item::Bad(b) => eprintln!("{}: {}", b.location, b.message),
//!         Item::Deleted(d) => println!("{} left", d.key),
//!         Item::End(end) => println!("read in {}", end.mode),
//!     }
//! }
//! # Ok::<(), liaison_plugin_api::SourceError>(())
//! ```
//!
//! What the host guarantees and enforces:
//! - The plugin runs in a process group of its own, with the environment
//!   cleared but for [`ALLOWED_ENV`] and the source's `env:`, in its working
//!   folder. Secrets reach it only through `env:`, never through argv.
//! - `timeout` bounds the whole run, `idle_timeout` the wait for each stdout
//!   line (time the host spends with the items does not count); when either
//!   runs out the whole group is killed with SIGKILL. So it is when the read is
//!   cancelled, when it fails, when the host drops the stream, and after the
//!   plugin exits (nothing it started outlives it).
//! - A stdout line holds at most `max_line_length` bytes; no more than that is
//!   ever buffered. stderr lines go to the log at `warn`, each cut at 4 KiB.
//! - Any line that breaks the protocol fails the read, naming its line number;
//!   so do a non-zero exit or a signal (quoting the last stderr lines), a
//!   missing `end`, output after `end`, and a program that cannot be run.
//! - Without a runtime in the [`ReadContext`], a read starts a small one of its
//!   own (one worker thread), which lives as long as the stream.
//!
//! [`check`] runs a plugin once for `liaison plugin check`, reporting every
//! violation instead of stopping at the first.

mod check;
mod process;
mod protocol;
mod read;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use liaison_plugin_api::{
    spawn_read, Connector, ItemStream, ReadContext, ReadRequest, SourceError,
};

pub use check::{
    check, CheckFailure, CheckLimits, CheckReport, CheckedDeletion, CheckedEnd, CheckedError,
    CheckedLog, CheckedRecord, Listed,
};
pub use process::Exit;
pub use protocol::{LogLevel, Violation, PROTOCOL_VERSION};

/// The variables a plugin inherits from the host's environment (when set);
/// everything else it gets from its source's `env:`.
pub const ALLOWED_ENV: [&str; 4] = ["PATH", "LANG", "HOME", "TZ"];

/// `timeout` when not configured: ten minutes for the whole run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// `idle_timeout` when not configured: two minutes without a line.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(2 * 60);

/// `max_line_length` when not configured: 1 MiB per stdout line.
pub const DEFAULT_MAX_LINE_LENGTH: usize = 1024 * 1024;

/// The smallest `max_line_length` accepted: 1 KiB.
pub const MIN_MAX_LINE_LENGTH: usize = 1024;

/// The largest `max_line_length` accepted: 1 GiB.
pub const MAX_MAX_LINE_LENGTH: usize = 1024 * 1024 * 1024;

/// Batches waiting between the plugin's task and the host's reader: about
/// [`liaison_plugin_api::DEFAULT_CAPACITY`] items.
const CAPACITY: usize = liaison_plugin_api::DEFAULT_CAPACITY / read::BATCH;

/// The value of one `env:` variable. It may hold a secret resolved from
/// `${env:…}` or `${file:…}`: `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvValue(String);

impl EnvValue {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        EnvValue(value.into())
    }

    /// The value itself, for the plugin's environment only: never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EnvValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Settings of one exec source, already validated by the daemon's config loader.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecConfig {
    /// The source's name: sent in the start line, named in messages and logs.
    pub source: String,
    /// The argv: the program (absolute, or a bare name looked up in `PATH`)
    /// and its arguments. Never through a shell.
    pub command: Vec<String>,
    /// `settings:`, passed through in the start line.
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// `env:`, set in the plugin's environment after [`ALLOWED_ENV`].
    pub env: Vec<(String, EnvValue)>,
    /// The plugin's working folder (absolute).
    pub working_dir: PathBuf,
    /// The whole run's limit.
    pub timeout: Duration,
    /// The longest wait for one stdout line.
    pub idle_timeout: Duration,
    /// The longest stdout line, in bytes.
    pub max_line_length: usize,
}

impl ExecConfig {
    /// The defaults for `source` running `command` in `working_dir`: no
    /// settings, no `env:`, the default timeouts and line length.
    pub fn new(source: impl Into<String>, command: Vec<String>, working_dir: PathBuf) -> Self {
        ExecConfig {
            source: source.into(),
            command,
            settings: serde_json::Map::new(),
            env: Vec::new(),
            working_dir,
            timeout: DEFAULT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_line_length: DEFAULT_MAX_LINE_LENGTH,
        }
    }

    /// `source "NAME" (exec PROGRAM)`: how messages name the plugin.
    fn describe(&self) -> String {
        let program = self.command.first().map_or("", String::as_str);
        format!("source {:?} (exec {program})", self.source)
    }
}

/// The `exec` connector: runs the configured plugin afresh on each
/// [`Connector::read`].
#[derive(Debug, Clone)]
pub struct ExecConnector {
    config: Arc<ExecConfig>,
}

impl ExecConnector {
    /// A connector for one `type: exec` source.
    pub fn new(config: ExecConfig) -> Self {
        ExecConnector {
            config: Arc::new(config),
        }
    }

    /// The settings this connector runs with.
    pub fn config(&self) -> &ExecConfig {
        &self.config
    }
}

impl Connector for ExecConnector {
    fn kind(&self) -> &'static str {
        "exec"
    }

    /// Starts the plugin (on the context's runtime, or on one of the
    /// stream's own) and streams its items. The start line says `changes`
    /// only when the request asks for changes *and* has a cursor; a stored
    /// cursor that is not JSON fails with [`SourceError::CursorExpired`], so
    /// the host reads in full next time.
    fn read(
        &self,
        request: &ReadRequest,
        ctx: &ReadContext,
    ) -> Result<ItemStream<'_>, SourceError> {
        let config = self.config.clone();
        let start = protocol::start_line(&config.source, request, &config.settings)
            .map_err(|why| SourceError::CursorExpired(format!("{}: {why}", config.describe())))?;
        let asked = protocol::effective_mode(request);
        let cancel = ctx.cancel.clone();
        let produce = move |tx| read::read(config, start, asked, cancel, tx);
        if ctx.runtime().is_some() {
            return spawn_read(ctx, CAPACITY, produce);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("liaison-exec")
            .enable_all()
            .build()
            .map_err(|e| SourceError::Io {
                what: format!("{}: starting its runtime", self.config.describe()),
                source: e,
            })?;
        let ctx = ctx.clone().with_runtime(runtime.handle().clone());
        let stream = spawn_read(&ctx, CAPACITY, produce)?;
        Ok(Box::new(OwnRuntime {
            stream: Some(stream),
            runtime: Some(runtime),
        }))
    }
}

/// A stream with the runtime its task runs on, for hosts that gave none.
struct OwnRuntime {
    stream: Option<ItemStream<'static>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Iterator for OwnRuntime {
    type Item = <ItemStream<'static> as Iterator>::Item;

    fn next(&mut self) -> Option<Self::Item> {
        self.stream.as_mut()?.next()
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        // The stream first: that aborts the task, whose drop kills the group.
        drop(self.stream.take());
        if let Some(runtime) = self.runtime.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                // Dropped inside another runtime, where blocking is not allowed.
                runtime.shutdown_background();
            } else {
                runtime.shutdown_timeout(Duration::from_secs(5));
            }
        }
    }
}

/// `d` the way the config writes durations (`10m`, `90s`, `1500ms`).
fn duration_text(d: Duration) -> String {
    let ms = d.as_millis();
    for (size, unit) in [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ] {
        if ms != 0 && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}
