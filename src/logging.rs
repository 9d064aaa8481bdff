//! Logging to stderr via `tracing`, human or JSON, filtered by `log.level` or `RUST_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// The filter of one-shot commands when neither `RUST_LOG` nor `log.level`
/// sets one. What a one-shot run would warn about (a failed source, held
/// deprovisions) is in the report it prints, and its error is printed once as
/// `error:`; a log line at `warn` would only say it a second time.
pub const ONE_SHOT_DEFAULT: &str = "error";

/// Installs the global subscriber once; later calls are ignored. The filter is
/// `RUST_LOG`, else `log.level`, else `default`.
pub fn init(config: &LogConfig, default: &str) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| config.level.clone())
        .unwrap_or_else(|| default.to_owned());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        // A closing span logs its timing: each phase of a run is one span.
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
