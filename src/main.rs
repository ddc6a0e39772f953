//! The `handoff` command line: argument parsing (clap) and one file per
//! command under `cli/`, printing what the library returns. All the logic
//! lives in the library, so tests and embedders run the same code; an
//! embedder that depends on `handoff` without the default `cli` feature
//! does not compile clap.

use std::process::ExitCode;

use clap::Parser;

mod cli;

/// mimalloc rather than the system allocator: see its entry in Cargo.toml
/// and "Allocator" in benches/README.md for the measurements.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    ExitCode::from(cli::run(args) as u8)
}
