//! The daemon (`liaison run`): sources on cron schedules and file watches,
//! reloads on SIGHUP or a config change, systemd notifications, and the HTTP
//! listener for health and metrics. Runs are the same `run_source` the CLI
//! calls, on blocking threads, cancellable at safe points.

mod mail;
pub mod notify;
pub mod readiness;
pub mod runner;
pub mod scheduler;
mod service;
pub mod signals;
pub mod status;
pub mod watch;
#[cfg(feature = "crm")]
pub mod webhooks;

pub use service::run;
