//! Configuration: the YAML file, validated with locations, secrets resolved.
//!
//! INTERFACE PLACEHOLDER — to be implemented (issue 2).

mod model;

pub use model::*;

/// A position in the config file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Span {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

/// A secret value: `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A parsed cron schedule (5-field crontab form).
#[derive(Debug, Clone)]
pub struct Schedule {}
