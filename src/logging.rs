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

/// The daemon's filter when neither `RUST_LOG` nor `log.level` sets one: a
/// line per run, reloads and warnings.
pub const DAEMON_DEFAULT: &str = "info";

/// Installs the global subscriber once; later calls are ignored. The filter is
/// `RUST_LOG`, else `log.level`, else `default`. Each closing span logs its
/// timing: each phase of a one-shot run is one span.
pub fn init(config: &LogConfig, default: &str) {
    install(config, default, FmtSpan::CLOSE);
}

/// The daemon's subscriber: no span timings, since every run already ends
/// with one line that holds its counts and duration.
pub fn init_daemon(config: &LogConfig) {
    install(config, DAEMON_DEFAULT, FmtSpan::NONE);
}

fn install(config: &LogConfig, default: &str, spans: FmtSpan) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| config.level.clone())
        .unwrap_or_else(|| default.to_owned());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_span_events(spans)
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
