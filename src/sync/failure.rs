//! Why a run failed, typed: who is at fault and whether trying again can help
//! (as arroyo's errors say). The scheduler decides backoff and the metrics
//! label from the kind; people read the message. SPEC §5 names the kinds.

use std::fmt;
use std::time::Duration;

use liaison_plugin_api::{SourceError, SourceErrorKind};

use super::read::ReadFailure;
use crate::store::StoreError;

/// Who is at fault for a failed run (SPEC §5 `failure_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureKind {
    /// The config cannot run (a mapping that does not compile).
    Config,
    /// The store failed (unreachable, busy, corrupt).
    Store,
    /// The run was stopped by a signal or a shutdown before it applied.
    Cancelled,
    /// More bad rows than `max_bad_row_ratio`.
    BadRows,
    /// The source could not be reached or opened.
    SourceUnreachable,
    /// The source refused our credentials.
    SourceAuth,
    /// The source asked us to slow down.
    SourceRateLimited,
    /// The source's read ended early.
    SourceIncomplete,
    /// The source's data is unreadable as a whole.
    SourceInvalid,
    /// The stored change cursor is no longer valid.
    CursorExpired,
}

impl FailureKind {
    /// Every kind, in SPEC order.
    pub const ALL: [FailureKind; 10] = [
        FailureKind::Config,
        FailureKind::Store,
        FailureKind::Cancelled,
        FailureKind::BadRows,
        FailureKind::SourceUnreachable,
        FailureKind::SourceAuth,
        FailureKind::SourceRateLimited,
        FailureKind::SourceIncomplete,
        FailureKind::SourceInvalid,
        FailureKind::CursorExpired,
    ];

    /// The kind's word, as in JSON, the run history and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Config => "config",
            FailureKind::Store => "store",
            FailureKind::Cancelled => "cancelled",
            FailureKind::BadRows => "bad_rows",
            FailureKind::SourceUnreachable => "source_unreachable",
            FailureKind::SourceAuth => "source_auth",
            FailureKind::SourceRateLimited => "source_rate_limited",
            FailureKind::SourceIncomplete => "source_incomplete",
            FailureKind::SourceInvalid => "source_invalid",
            FailureKind::CursorExpired => "cursor_expired",
        }
    }

    /// The kind named by [`FailureKind::as_str`].
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == word)
    }

    /// Whether a retry of the same run can help, when nothing more specific is
    /// known: a source or store that was away may be back; a config, bad data
    /// or wrong credentials stay as they are until someone changes them.
    pub fn retryable_by_default(self) -> bool {
        match self {
            FailureKind::Store
            | FailureKind::Cancelled
            | FailureKind::SourceUnreachable
            | FailureKind::SourceRateLimited
            | FailureKind::SourceIncomplete
            | FailureKind::CursorExpired => true,
            FailureKind::Config
            | FailureKind::BadRows
            | FailureKind::SourceAuth
            | FailureKind::SourceInvalid => false,
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed run: its kind, what people read, and whether a retry can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFailure {
    /// Who is at fault.
    pub kind: FailureKind,
    /// What happened, for people (`failure` in JSON).
    pub message: String,
    /// Whether the same run may succeed if tried again.
    pub retryable: bool,
    /// How long the source asked us to wait before trying again (a rate
    /// limit's `Retry-After`): the retry waits at least this long.
    pub retry_after: Option<Duration>,
}

impl RunFailure {
    /// A failure of `kind`, retryable as the kind is by default.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        RunFailure {
            kind,
            message: message.into(),
            retryable: kind.retryable_by_default(),
            retry_after: None,
        }
    }

    /// A run stopped by a signal or shutdown before it applied anything.
    pub fn cancelled() -> Self {
        RunFailure::new(
            FailureKind::Cancelled,
            "the run was cancelled; nothing was applied",
        )
    }

    /// The store failed during the run; every cause is said, once.
    pub fn from_store(error: &StoreError) -> Self {
        RunFailure::new(FailureKind::Store, chain(error))
    }

    /// The read failed.
    pub fn from_read(failure: &ReadFailure) -> Self {
        let kind = match failure {
            ReadFailure::TooManyBadRows { .. } => FailureKind::BadRows,
            ReadFailure::Cancelled => FailureKind::Cancelled,
            ReadFailure::Source(e) => source_kind(e),
            ReadFailure::Store(e) => return RunFailure::from_store(e),
        };
        let mut run = RunFailure::new(kind, failure.to_string());
        if let ReadFailure::Source(e) = failure {
            run.retry_after = e.retry_after();
        }
        run
    }
}

impl fmt::Display for RunFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl FailureKind {
    /// Who is at fault for a connector's error.
    pub fn of_source(error: &SourceError) -> FailureKind {
        source_kind(error)
    }
}

/// Who is at fault for a connector's error.
fn source_kind(error: &SourceError) -> FailureKind {
    match error.kind() {
        SourceErrorKind::Unreachable => FailureKind::SourceUnreachable,
        SourceErrorKind::Auth => FailureKind::SourceAuth,
        SourceErrorKind::RateLimited => FailureKind::SourceRateLimited,
        SourceErrorKind::Incomplete => FailureKind::SourceIncomplete,
        SourceErrorKind::Invalid => FailureKind::SourceInvalid,
        SourceErrorKind::CursorExpired => FailureKind::CursorExpired,
    }
}

/// `error` and each of its causes, joined by `: `, skipping a cause the text
/// before it already says.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_word() {
        for kind in FailureKind::ALL {
            assert_eq!(FailureKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(FailureKind::parse("nope"), None);
    }

    #[test]
    fn a_missing_file_is_unreachable_and_retryable_and_bad_data_is_not() {
        let missing = ReadFailure::Source(SourceError::NotFound("no file matches x*.csv".into()));
        let f = RunFailure::from_read(&missing);
        assert_eq!(
            (f.kind, f.retryable),
            (FailureKind::SourceUnreachable, true)
        );
        let invalid = ReadFailure::Source(SourceError::Invalid("header undecodable".into()));
        let f = RunFailure::from_read(&invalid);
        assert_eq!((f.kind, f.retryable), (FailureKind::SourceInvalid, false));
    }

    #[test]
    fn a_rate_limit_is_retryable_after_the_wait_the_source_asked_for() {
        let limited = ReadFailure::Source(SourceError::RateLimited {
            message: "429 Too Many Requests".into(),
            retry_after: Some(Duration::from_secs(30)),
        });
        let f = RunFailure::from_read(&limited);
        assert_eq!(
            (f.kind, f.retryable, f.retry_after),
            (
                FailureKind::SourceRateLimited,
                true,
                Some(Duration::from_secs(30))
            )
        );
        let refused = RunFailure::from_read(&ReadFailure::Source(SourceError::Auth("401".into())));
        assert_eq!(
            (refused.kind, refused.retryable),
            (FailureKind::SourceAuth, false)
        );
    }
}
