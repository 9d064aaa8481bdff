//! Configuration: the YAML file, validated with locations, secrets resolved.
//!
//! [`load`] reads the file, [`load_str`] a text already in memory. Both parse
//! the YAML into a tree that keeps every node's line and column (serde-saphyr,
//! see `docs/decisions/0001-yaml-parser.md`), walk it section by section, and
//! either build the typed [`Config`] or return every problem found, each as
//! `FILE:LINE:COLUMN: key.path: message` ([`ConfigErrors`]).
//!
//! What the walk guarantees:
//! - unknown keys are errors in every section, with a "did you mean" when close;
//! - booleans are `true`/`false` only (`yes`, `off` are strings);
//! - relative paths (`sqlite://x.db`, `file://mail`, a CSV `path`,
//!   `mail.templates`, `${file:…}`) are relative to the config file's folder;
//! - `${env:NAME}` and `${file:PATH}` resolve in `store`, `mail.transport`,
//!   `api.token` (into [`Secret`]s, which never print themselves) and an exec
//!   source's `env:` values (which print as `***` too); `$${` is a literal `${`;
//! - cron expressions ([`Schedule`]), time zones, durations, URLs, addresses
//!   and `map:` templates are checked; source data is never read.
//!
//! [`diff`] compares two loaded configs for a reload ([`ConfigDiff`]: what to
//! log, what needs a restart, which sources changed).
//!
//! ```
//! # use std::path::Path;
//! let text = "store: sqlite://liaison.db\nsources: []\n";
//! let config = liaison::config::load_str(text, Path::new("/etc/liaison/liaison.yaml")).unwrap();
//! assert_eq!(config.default_locale, "en");
//!
//! let errors = liaison::config::load_str("store: 1\nsourcs: []\n", Path::new("l.yaml")).unwrap_err();
//! assert_eq!(errors.to_string().lines().count(), 3);
//! ```

mod accounts;
mod diff;
mod duration;
mod error;
#[cfg(feature = "ldap")]
mod ldap;
mod load;
mod mail;
mod model;
mod password;
mod ratio;
mod schedule;
mod secret;
mod source;
mod walk;
mod yaml;

#[cfg(all(test, feature = "exec"))]
mod exec_tests;
#[cfg(all(test, feature = "ldap"))]
mod ldap_tests;
#[cfg(test)]
mod tests;

use std::path::Path;

pub use diff::{diff, ConfigDiff};
#[cfg(feature = "exec")]
pub(crate) use duration::parse_duration;
pub use error::{ConfigError, ConfigErrors, Span};
pub use mail::DEFAULT_MAIL_SCHEDULE;
pub use model::*;
pub use password::PasswordPolicy;
pub use ratio::{Ratio, RatioError};
pub use schedule::{Schedule, ScheduleError};
pub use secret::{redact_url, Secret};

/// Reads and validates the config file at `path`.
///
/// Relative paths inside it resolve against its folder; `path` itself may be
/// relative to the working directory ([`Config::file`] is made absolute).
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => load_str(&text, path),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            span: Span::START,
            message: format!("cannot read the config file: {e}"),
        }])),
    }
}

/// Validates `text` as if it were the config file `file` (used in messages and
/// as the folder relative paths start from). `${env:…}` reads the process
/// environment.
pub fn load_str(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    let env = |name: &str| std::env::var(name).ok();
    load::load_with(text, file, &absolute(file), &env)
}

/// `file` made absolute against the working directory, without touching the
/// file system (no symlink resolution); unchanged if that fails.
fn absolute(file: &Path) -> std::path::PathBuf {
    std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf())
}
