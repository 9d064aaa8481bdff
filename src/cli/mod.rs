//! The command line (SPEC §5): argument parsing and the commands. Output to
//! stdout goes through the `output` module only; logs go to stderr.

mod admin;
mod args;
mod commands;
mod export;
mod find;
mod interrupt;
mod mail;
mod mail_flush;
mod mail_test;
pub(crate) mod output;
mod password;
#[cfg(feature = "exec")]
mod plugin_check;
mod preview;
mod register;
mod status;
mod table;
mod text;

pub use args::Cli;
pub use commands::run;
pub(crate) use commands::{
    create_state_folder, declare_accounts, lock_wait, open_store, print_config_errors,
};

/// Process exit codes (SPEC §5).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A runtime failure (a source failed, the store is unreachable).
    pub const FAILURE: u8 = 1;
    /// Invalid config or usage.
    pub const INVALID: u8 = 2;
    /// A run was held by the safety guard.
    pub const HELD: u8 = 3;
}
