//! Printing diagnostics: human (miette, stderr), JSON and GitHub Actions
//! (stdout). Machine formats are never coloured.

use std::io::{IsTerminal, Write};

use miette::{GraphicalReportHandler, GraphicalTheme};
use serde::{Deserialize, Serialize};

use super::Format;
use crate::diagnostic::{Diagnostic, Severity};
use crate::project::LoadError;

/// One diagnostic as printed by `--format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonDiagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub severity: String,
    pub code: String,
    pub message: String,
    pub help: Option<String>,
}

impl From<&Diagnostic> for JsonDiagnostic {
    fn from(d: &Diagnostic) -> Self {
        let (line, column) = d.start();
        let (end_line, end_column) = d.end();
        JsonDiagnostic {
            file: d.file.name.clone(),
            line,
            column,
            end_line,
            end_column,
            severity: match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            }
            .to_string(),
            code: d.code.to_string(),
            message: d.message.clone(),
            help: d.help.clone(),
        }
    }
}

/// Counts for the closing line.
#[derive(Debug, Default)]
pub struct Summary {
    pub files: usize,
    pub errors: usize,
    pub warnings: usize,
}

impl Summary {
    /// Counts `diagnostics` over `files` files.
    pub fn of(diagnostics: &[Diagnostic], files: usize) -> Self {
        let errors = diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        Summary {
            files,
            errors,
            warnings: diagnostics.len() - errors,
        }
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn handler() -> GraphicalReportHandler {
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let theme = if colour {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    // A fixed width keeps the output identical on every terminal and in tests.
    GraphicalReportHandler::new_themed(theme).with_width(100)
}

/// Renders one diagnostic as a person reads it.
pub fn render_human(d: &Diagnostic) -> String {
    let mut out = String::new();
    // Rendering into a String cannot fail.
    let _ = handler().render_report(&mut out, d);
    out
}

/// Prints load errors (always on stderr, whatever the format).
pub fn print_load_errors(errors: &[LoadError]) {
    let h = handler();
    let mut err = std::io::stderr().lock();
    for e in errors {
        let mut out = String::new();
        let _ = h.render_report(&mut out, e);
        let _ = write!(err, "{out}");
    }
}

/// Prints diagnostics in `format`, then (for humans) the summary line.
pub fn print(format: Format, diagnostics: &[Diagnostic], summary: &Summary) {
    match format {
        Format::Human => {
            let mut err = std::io::stderr().lock();
            for d in diagnostics {
                let _ = write!(err, "{}", render_human(d));
            }
            if summary.files > 0 {
                let _ = writeln!(err, "{}", summary_line(summary));
            }
        }
        Format::Json => {
            let items: Vec<JsonDiagnostic> = diagnostics.iter().map(Into::into).collect();
            let json = serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".into());
            println!("{json}");
        }
        Format::Github => {
            let mut out = std::io::stdout().lock();
            for d in diagnostics {
                let _ = writeln!(out, "{}", github_line(d));
            }
        }
        Format::Sarif => super::sarif::print(diagnostics),
    }
}

/// The closing line of human output.
pub fn summary_line(s: &Summary) -> String {
    let files = plural(s.files, "file");
    match (s.errors, s.warnings) {
        (0, 0) => format!("checked {files}: no problems found"),
        (0, w) => format!("checked {files}: {}", plural(w, "warning")),
        (e, 0) => format!("checked {files}: {}", plural(e, "error")),
        (e, w) => format!(
            "checked {files}: {} and {}",
            plural(e, "error"),
            plural(w, "warning")
        ),
    }
}

/// A GitHub Actions workflow command for one diagnostic.
pub fn github_line(d: &Diagnostic) -> String {
    let (line, col) = d.start();
    let (end_line, end_col) = d.end();
    let level = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut message = d.message.clone();
    if let Some(h) = &d.help {
        message.push_str("\nhelp: ");
        message.push_str(h);
    }
    format!(
        "::{level} file={},line={line},col={col},endLine={end_line},endColumn={end_col},title={}::{}",
        escape_property(&d.file.name),
        d.code,
        escape_data(&message)
    )
}

// GitHub's workflow-command escaping: data escapes %, CR, LF; properties
// also escape `:` and `,`.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}
