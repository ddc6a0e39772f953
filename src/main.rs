//! The `handoff` command line. Argument parsing only: every command lives in
//! `handoff::cli`, so tests and embedders run the same code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = handoff::cli::Cli::parse();
    ExitCode::from(handoff::cli::run(cli) as u8)
}
