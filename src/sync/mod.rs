//! One run of one source: read → map → correlate → plan → guard → apply.
//!
//! Reading streams the source once. Each record's fingerprint is compared with
//! the one stored for its anchor, so an unchanged record costs a hash and a map
//! lookup; only changed records, and the users they touch, reach the planner.

mod cancel;
mod context;
mod failure;
mod read;
mod run;
mod settings;

#[cfg(test)]
mod changes_differential_tests;
#[cfg(test)]
mod changes_tests;
#[cfg(test)]
mod differential_tests;

pub use cancel::{lock_writer_cancellable, Cancel};
pub use context::{read_context, ReadRuntime};
pub use failure::{FailureKind, RunFailure};
pub use read::{
    read_source, AnchorLookup, ReadFailure, ReadResult, Reading, RowError, Seen, SeenState,
    StoredContacts,
};
pub use run::{
    compile_mapping, retire_source, run_source, run_source_with, run_sources, ReadSummary,
    RunOptions, RunReport, RunStatus, SourceRunError, ALL_LOGINS_THRESHOLD, ANSWERED_IN_FULL,
};
pub use settings::{plan_settings_digest, read_digest};
