//! The `liaison` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = liaison::cli::Cli::parse();
    liaison::cli::run(cli)
}
