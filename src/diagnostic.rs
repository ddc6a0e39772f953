//! Diagnostics: what every stage reports, with a stable code, a span into a
//! named source file and a help line. They render with miette for people and
//! serialize for machines (see `report`).

use std::fmt;
use std::sync::Arc;

use miette::{LabeledSpan, SourceCode};
use serde::Serialize;

// Re-exported so `diagnostic::SourceFile` keeps working.
pub use crate::source::SourceFile;
use crate::source::Span;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// Every diagnostic code. Codes are stable: never renumber, only add.
/// `grammar/README.md` lists each with an example.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// Syntax error: the text does not fit the grammar here.
    H001,
    /// A string literal is not closed before the end of its line.
    H002,
    /// A script block is not closed before the end of the file.
    H003,
    /// A `{` block is never closed.
    H004,
    /// A literal is malformed: an impossible date, time or number, or an empty handoff name.
    H005,
    /// `{…}` interpolation where only plain text is allowed.
    H006,
    /// The file declares nothing.
    H007,
    /// Nested too deeply: brackets, `not`s or `list of`s past 64 levels, or an expression past 256.
    H008,
    /// A name is declared twice.
    H101,
    /// An object that is not declared.
    H102,
    /// A field that the object does not declare.
    H103,
    /// A name that is neither a user, a role assigned on this path, nor a template variable.
    H104,
    /// A team that is not declared.
    H105,
    /// A channel that is not declared.
    H106,
    /// Operand types do not fit the operator.
    H107,
    /// A value that is not one of the field's listed values.
    H108,
    /// A condition that is not yes/no.
    H109,
    /// A handoff without a `when` trigger.
    H110,
    /// A statement that may appear once appears twice.
    H111,
    /// A field of another object than the one the handoff runs on.
    H112,
    /// A person reference that is not a person (user, role or user/email field).
    H113,
    /// Business time without a calendar.
    H114,
    /// A calendar that cannot work (bad timezone, no workdays, hours backwards).
    H115,
    /// A script that rhai cannot compile.
    H116,
    /// A script that reads a field the object does not declare.
    H117,
    /// Handoffs that trigger each other in a cycle.
    H118,
    /// Two handoffs on the same trigger that assign the same role or set the same field.
    H119,
    /// `{missing}` or `{exception}` outside the block that defines it.
    H120,
    /// A script that reads or waits on the clock (`timestamp()`, `elapsed`, `sleep`).
    H121,
    /// A block that can never run (warning).
    H201,
    /// A `resume when` that can never be true (warning).
    H202,
    /// A `done when` that is already true when the handoff starts, or never can be (warning).
    H203,
    /// A declaration nothing uses (warning).
    H204,
    /// A `require` list longer than 12 fields (warning).
    H205,
    /// Exceptions without an `on exception` block (warning).
    H206,
    /// A field required twice (warning).
    H207,
    /// A handoff that creates tasks but has no `done when` (warning).
    H208,
    /// An `escalate when` that is always true, never true, or true at the trigger (warning).
    H209,
    /// A timezone that is a fixed offset (`EST`, `GMT`), not a place (warning).
    H210,
}

impl Code {
    /// The code as shown (`H001`).
    pub fn as_str(self) -> &'static str {
        match self {
            Code::H001 => "H001",
            Code::H002 => "H002",
            Code::H003 => "H003",
            Code::H004 => "H004",
            Code::H005 => "H005",
            Code::H006 => "H006",
            Code::H007 => "H007",
            Code::H008 => "H008",
            Code::H101 => "H101",
            Code::H102 => "H102",
            Code::H103 => "H103",
            Code::H104 => "H104",
            Code::H105 => "H105",
            Code::H106 => "H106",
            Code::H107 => "H107",
            Code::H108 => "H108",
            Code::H109 => "H109",
            Code::H110 => "H110",
            Code::H111 => "H111",
            Code::H112 => "H112",
            Code::H113 => "H113",
            Code::H114 => "H114",
            Code::H115 => "H115",
            Code::H116 => "H116",
            Code::H117 => "H117",
            Code::H118 => "H118",
            Code::H119 => "H119",
            Code::H120 => "H120",
            Code::H121 => "H121",
            Code::H201 => "H201",
            Code::H202 => "H202",
            Code::H203 => "H203",
            Code::H204 => "H204",
            Code::H205 => "H205",
            Code::H206 => "H206",
            Code::H207 => "H207",
            Code::H208 => "H208",
            Code::H209 => "H209",
            Code::H210 => "H210",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secondary label: "declared here", "opened here".
#[derive(Debug, Clone)]
pub struct Label {
    pub span: Span,
    pub text: String,
}

/// One finding about one source file.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    /// Lowercase, no final period; names in backticks.
    pub message: String,
    /// The primary span and its label text.
    pub span: Span,
    pub label: String,
    pub help: Option<String>,
    pub related: Vec<Label>,
    pub file: Arc<SourceFile>,
}

impl Diagnostic {
    /// An error with a primary label.
    pub fn error(
        code: Code,
        source: &Arc<SourceFile>,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            span,
            label: label.into(),
            help: None,
            related: Vec::new(),
            file: source.clone(),
        }
    }

    /// The same diagnostic as a warning.
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// Adds a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a secondary label.
    pub fn with_related(mut self, span: Span, text: impl Into<String>) -> Self {
        self.related.push(Label {
            span,
            text: text.into(),
        });
        self
    }

    /// 1-based (line, column) of the start of the primary span.
    pub fn start(&self) -> (usize, usize) {
        self.file.line_col(self.span.start)
    }

    /// 1-based (line, column) of the end of the primary span.
    pub fn end(&self) -> (usize, usize) {
        self.file.line_col(self.span.end)
    }
}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let primary = LabeledSpan::new_primary_with_span(
            Some(self.label.clone()).filter(|l| !l.is_empty()),
            self.span,
        );
        let related = self
            .related
            .iter()
            .map(|l| LabeledSpan::new_with_span(Some(l.text.clone()), l.span));
        Some(Box::new(std::iter::once(primary).chain(related)))
    }
}

// Lets miette print `file:line:col` headers without copying the text.
impl SourceCode for Diagnostic {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner =
            self.file
                .text
                .as_str()
                .read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.file.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            inner.column(),
            inner.line_count(),
        )))
    }
}
