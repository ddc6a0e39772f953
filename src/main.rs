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
    #[cfg(unix)]
    if !args.serves() {
        stop_quietly_when_the_reader_leaves();
    }
    ExitCode::from(cli::run(args) as u8)
}

/// A command whose reader went away (`handoff run … | head`) stops the way
/// Unix tools do, by SIGPIPE, instead of panicking in `println!` with a
/// backtrace. Rust ignores SIGPIPE so that a server sees a closed socket as
/// an error it can handle: `serve` keeps it ignored.
#[cfg(unix)]
fn stop_quietly_when_the_reader_leaves() {
    // SAFETY: restores the default disposition of one signal before any
    // other thread exists; no handler of ours runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
