//! Diagnostics as people and machines read them: human (miette), JSON,
//! GitHub Actions workflow commands, and SARIF (`sarif`). Rendering only:
//! this module returns text and never prints (the `handoff` binary decides
//! where output goes). Machine formats are never coloured.

pub mod sarif;

use std::io::IsTerminal;

use miette::{GraphicalReportHandler, GraphicalTheme};
use serde::{Deserialize, Serialize};

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
    /// Paths that could not be read (missing, unreadable, not UTF-8).
    pub unreadable: usize,
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
            unreadable: 0,
        }
    }

    /// The same counts, noting `n` paths that could not be read.
    pub fn with_unreadable(mut self, n: usize) -> Self {
        self.unreadable = n;
        self
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
    themed(colour)
}

fn themed(colour: bool) -> GraphicalReportHandler {
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
    let _ = handler().render_report(&mut out, &Windowed(d));
    out
}

/// Renders one diagnostic as [`render_human`] does, never coloured: for
/// text that is not headed to a terminal (a server's `/workflows` answer).
pub fn render_plain(d: &Diagnostic) -> String {
    let mut out = String::new();
    // Rendering into a String cannot fail.
    let _ = themed(false).render_report(&mut out, &Windowed(d));
    out
}

/// Renders a load error as [`render_load_error`] does, never coloured.
pub fn render_load_error_plain(e: &LoadError) -> String {
    let mut out = String::new();
    // Rendering into a String cannot fail.
    let _ = themed(false).render_report(&mut out, e);
    out
}

/// A diagnostic whose source snippet is read from a window of a few lines
/// around each span. miette's own `str` source scans the text from its
/// start for every snippet, so a big file with many diagnostics would
/// render in quadratic time; this reads only the lines it shows, and
/// renders exactly the same text.
struct Windowed<'a>(&'a Diagnostic);

impl std::fmt::Debug for Windowed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for Windowed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self.0, f)
    }
}

impl std::error::Error for Windowed<'_> {}

impl miette::Diagnostic for Windowed<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        miette::Diagnostic::code(self.0)
    }

    fn severity(&self) -> Option<miette::Severity> {
        miette::Diagnostic::severity(self.0)
    }

    fn help<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        miette::Diagnostic::help(self.0)
    }

    fn url<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        miette::Diagnostic::url(self.0)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        miette::Diagnostic::labels(self.0)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(self)
    }
}

impl miette::SourceCode for Windowed<'_> {
    fn read_span<'b>(
        &'b self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'b> + 'b>, miette::MietteError> {
        let file = &self.0.file;
        let text = file.text.as_str();
        let start = span.offset().min(text.len());
        let end = (span.offset() + span.len()).min(text.len());
        // Whole lines, one more each side than asked, so that miette sees
        // the same context it would in the whole text. (Searching bytes for
        // `\n` keeps every cut on a character boundary.)
        let bytes = text.as_bytes();
        let line_start = |at: usize| {
            bytes[..at]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1)
        };
        let mut from = line_start(start);
        for _ in 0..=context_lines_before {
            if from == 0 {
                break;
            }
            from = line_start(from - 1);
        }
        let mut to = end;
        for _ in 0..=context_lines_after + 1 {
            match bytes[to..].iter().position(|&b| b == b'\n') {
                Some(i) => to += i + 1,
                None => {
                    to = text.len();
                    break;
                }
            }
        }
        let window = &text[from..to];
        let local = miette::SourceSpan::new((start - from).into(), end - start);
        let inner = window.read_span(&local, context_lines_before, context_lines_after)?;
        let base_line = file.line_col(from).0 - 1;
        // The column in characters, as `--format json`, SARIF and GitHub
        // give it (miette's own count is in bytes, so a line with `é`
        // before the span would head the report with another column).
        let at = from + inner.span().offset();
        let (line, column) = file.line_col(at);
        Ok(Box::new(miette::MietteSpanContents::new_named(
            file.name.clone(),
            inner.data(),
            miette::SourceSpan::new(at.into(), inner.span().len()),
            line - 1,
            column - 1,
            base_line + inner.line_count(),
        )))
    }
}

/// Renders a path that could not be loaded as a person reads it.
pub fn render_load_error(e: &LoadError) -> String {
    let mut out = String::new();
    // Rendering into a String cannot fail.
    let _ = handler().render_report(&mut out, e);
    out
}

/// Diagnostics as the JSON array `--format json` prints.
pub fn to_json(diagnostics: &[Diagnostic]) -> String {
    let items: Vec<JsonDiagnostic> = diagnostics.iter().map(Into::into).collect();
    // Plain structs of strings and numbers always serialize.
    serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".into())
}

/// A GitHub Actions `::error` command for a path that could not be loaded.
pub fn github_load_line(e: &LoadError) -> String {
    let mut props = format!("file={}", escape_property(e.path()));
    if let Some((line, col)) = e.position() {
        props.push_str(&format!(",line={line},col={col}"));
    }
    let mut message = e.to_string();
    if let Some(h) = miette::Diagnostic::help(e) {
        message.push_str(&format!("\nhelp: {h}"));
    }
    format!(
        "::error {props},title=cannot read::{}",
        escape_data(&message)
    )
}

/// The closing line of human output.
pub fn summary_line(s: &Summary) -> String {
    let files = plural(s.files, "file");
    let found = match (s.errors, s.warnings) {
        (0, 0) => format!("checked {files}: no problems found"),
        (0, w) => format!("checked {files}: {}", plural(w, "warning")),
        (e, 0) => format!("checked {files}: {}", plural(e, "error")),
        (e, w) => format!(
            "checked {files}: {} and {}",
            plural(e, "error"),
            plural(w, "warning")
        ),
    };
    let unreadable = match s.unreadable {
        0 => return found,
        1 => "1 path could not be read".to_string(),
        n => format!("{n} paths could not be read"),
    };
    if s.files == 0 {
        format!("nothing checked: {unreadable}")
    } else {
        format!("{found}; {unreadable}")
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

#[cfg(test)]
mod tests {
    use crate::diagnostic::{Code, Diagnostic};
    use crate::source::{SourceFile, Span};

    #[test]
    fn the_human_header_gives_the_column_json_gives() {
        // `é` and `à` are two bytes each, `🙂` four: the span's column in
        // characters differs from its byte offset in the line.
        for (text, needle) in [
            ("notify ops \"Déjà vu {deal.nme}\"\n", "deal.nme"),
            ("a\n  🙂 x = bad\n", "bad"),
            ("\u{feff}object x {}\nhandoff y\n", "y"),
            ("\u{feff}objet x {}\n", "objet"),
        ] {
            let file = SourceFile::new("t.handoff", text);
            let at = text.find(needle).unwrap();
            let d = Diagnostic::error(
                Code::H001,
                &file,
                Span::new(at, at + needle.len()),
                "m",
                "l",
            );
            let (line, col) = file.line_col(at);
            if text.starts_with('\u{feff}') && line == 1 {
                assert_eq!(col, at - 2, "the byte-order mark (3 bytes) is no column");
            }
            let plain = super::render_plain(&d);
            assert!(
                plain.contains(&format!("[t.handoff:{line}:{col}]")),
                "{line}:{col} in {plain}"
            );
        }
    }
}
