//! `handoff fmt`: rewrite files in the canonical layout.

use super::{Exit, FmtArgs};

/// Runs `handoff fmt`.
pub fn run(_args: &FmtArgs) -> Exit {
    Exit::Failure
}
