//! Where diagnostics go: human output on stderr, machine formats (JSON,
//! GitHub Actions, SARIF) on stdout. The rendering is the library's
//! (`handoff::report`); this file only picks the stream.

use std::io::Write;

use handoff::diagnostic::Diagnostic;
use handoff::project::LoadError;
pub use handoff::report::Summary;
use handoff::report::{self, sarif};

use super::Format;

/// Prints load errors (always on stderr, whatever the format).
pub fn print_load_errors(errors: &[LoadError]) {
    let mut err = std::io::stderr().lock();
    for e in errors {
        let _ = write!(err, "{}", report::render_load_error(e));
    }
}

/// Prints load errors as GitHub Actions annotations on stdout, so that a
/// file that cannot be read shows up next to the others' problems.
pub fn print_github_load_errors(errors: &[LoadError]) {
    let mut out = std::io::stdout().lock();
    for e in errors {
        let _ = writeln!(out, "{}", report::github_load_line(e));
    }
}

/// Prints diagnostics in `format`, then (for humans) the summary line.
pub fn print(format: Format, diagnostics: &[Diagnostic], summary: &Summary) {
    match format {
        Format::Human => {
            let mut err = std::io::stderr().lock();
            for d in diagnostics {
                let _ = write!(err, "{}", report::render_human(d));
            }
            if summary.files > 0 || summary.unreadable > 0 {
                let _ = writeln!(err, "{}", report::summary_line(summary));
            }
        }
        Format::Json => println!("{}", report::to_json(diagnostics)),
        Format::Github => {
            let mut out = std::io::stdout().lock();
            for d in diagnostics {
                let _ = writeln!(out, "{}", report::github_line(d));
            }
        }
        Format::Sarif => println!("{}", sarif::to_json(diagnostics)),
    }
}
