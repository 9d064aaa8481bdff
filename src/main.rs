//! The `liaison` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: a million-record run allocates and frees tens of millions of small
/// strings; glibc's allocator spent a fifth of the time there and kept the freed
/// memory resident.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = liaison::cli::Cli::parse();
    liaison::cli::run(cli)
}
