//! `handoff check`: parse every file and report every problem.

use super::report::{self, Summary};
use super::{CheckArgs, Deny, Exit, Format};
use handoff::diagnostic::Severity;
use handoff::project;

/// Runs `handoff check`.
pub fn run(args: &CheckArgs) -> Exit {
    let loaded = project::load(&args.paths);
    let mut diagnostics = handoff::check::analyze(&loaded.sources).diagnostics;
    let deny_warnings = args.deny == Some(Deny::Warnings);
    if deny_warnings {
        for d in &mut diagnostics {
            d.severity = Severity::Error;
        }
    }
    // Load errors go to stderr in every format (a GitHub run shows stderr
    // in its log); in the GitHub format they also become annotations.
    report::print_load_errors(&loaded.errors);
    if args.format == Format::Github {
        report::print_github_load_errors(&loaded.errors);
    }
    let summary =
        Summary::of(&diagnostics, loaded.sources.len()).with_unreadable(loaded.errors.len());
    report::print(args.format, &diagnostics, &summary);
    if !loaded.errors.is_empty() {
        Exit::Failure
    } else if summary.errors > 0 {
        Exit::Problems
    } else {
        Exit::Ok
    }
}
