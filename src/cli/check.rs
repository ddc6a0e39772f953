//! `handoff check`: parse every file and report every problem.

use super::report::{self, Summary};
use super::{CheckArgs, Deny, Exit};
use crate::diagnostic::Severity;
use crate::project;

/// Runs `handoff check`.
pub fn run(args: &CheckArgs) -> Exit {
    let loaded = project::load(&args.paths);
    let mut diagnostics = crate::check::analyze(&loaded.sources).diagnostics;
    let deny_warnings = args.deny == Some(Deny::Warnings);
    if deny_warnings {
        for d in &mut diagnostics {
            d.severity = Severity::Error;
        }
    }
    report::print_load_errors(&loaded.errors);
    let summary = Summary::of(&diagnostics, loaded.sources.len());
    report::print(args.format, &diagnostics, &summary);
    if !loaded.errors.is_empty() {
        Exit::Failure
    } else if summary.errors > 0 {
        Exit::Problems
    } else {
        Exit::Ok
    }
}
