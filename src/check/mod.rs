//! Stage two: names, types and graph checks over a whole project.
//!
//! Input: every parsed file of the project (declarations in one file are
//! visible in all). Output: diagnostics, and when there are no errors a
//! [`Checked`] project that the compiler can trust: every name resolves and
//! every expression is well typed.

mod cascade;
mod expr;
mod handoff;
mod script;
pub mod symbols;
mod timezone;
pub mod types;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::diagnostic::{Code, Diagnostic, Severity, SourceFile};
use crate::syntax::{self, Span};

pub use cascade::{CascadeEdge, CascadeGraph};
pub use symbols::{Calendar, Directory, FieldSchema, ObjectSchema, Schema};
pub use types::Type;

/// One parsed file of a project.
#[derive(Debug, Clone)]
pub struct Unit {
    pub source: Arc<SourceFile>,
    pub file: syntax::File,
}

/// A place in a project: a file (index into the units) and a span in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Loc {
    pub file: usize,
    pub span: Span,
}

impl Loc {
    pub fn new(file: usize, span: Span) -> Self {
        Loc { file, span }
    }
}

/// What the checker learned about one handoff.
#[derive(Debug, Clone)]
pub struct HandoffInfo {
    /// Index of the file in [`Checked::units`].
    pub unit: usize,
    /// Index of the declaration in that file.
    pub decl: usize,
    pub name: String,
    /// The object the handoff runs on (index into the schema's objects).
    pub object: usize,
    /// Roles the handoff assigns, with where.
    pub roles: Vec<(String, Loc)>,
    /// Fields the handoff's actions set: (slot, value when it is a literal).
    pub sets: Vec<(usize, Option<syntax::Literal>, Loc)>,
}

/// A project that passed the checks: the compiler's input.
#[derive(Debug, Clone)]
pub struct Checked {
    pub units: Vec<Unit>,
    pub schema: Schema,
    pub directory: Directory,
    pub handoffs: Vec<HandoffInfo>,
    pub cascade: CascadeGraph,
}

impl Checked {
    /// The syntax of handoff `h`.
    pub fn handoff_decl(&self, h: &HandoffInfo) -> &syntax::HandoffDecl {
        match &self.units[h.unit].file.declarations[h.decl] {
            syntax::Declaration::Handoff(d) => d,
            // HandoffInfo is only built for handoff declarations.
            _ => unreachable!("HandoffInfo points at a handoff"),
        }
    }
}

/// The result of checking: diagnostics, and the checked project if there
/// were no errors.
#[derive(Debug)]
pub struct Analysis {
    pub checked: Option<Checked>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses and checks a whole project. Files with syntax errors stop the
/// semantic checks: names declared in a broken file would otherwise show up
/// as a cascade of "unknown" errors elsewhere.
pub fn analyze(sources: &[Arc<SourceFile>]) -> Analysis {
    let mut units = Vec::with_capacity(sources.len());
    let mut diagnostics = Vec::new();
    for source in sources {
        let parsed = syntax::parse(source);
        diagnostics.extend(parsed.diagnostics);
        units.push(Unit {
            source: source.clone(),
            file: parsed.file,
        });
    }
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        return Analysis {
            checked: None,
            diagnostics,
        };
    }
    let mut analysis = check(units);
    diagnostics.append(&mut analysis.diagnostics);
    analysis.diagnostics = diagnostics;
    analysis
}

/// Checks a whole project.
pub fn check(units: Vec<Unit>) -> Analysis {
    let mut c = Checker {
        units: &units,
        schema: Schema::default(),
        directory: Directory::default(),
        declared: HashMap::new(),
        used: HashSet::new(),
        diagnostics: Vec::new(),
        handoffs: Vec::new(),
        wants_person: false,
    };
    c.collect_symbols();
    c.check_handoffs();
    let cascade = c.cascade();
    c.unused();
    let Checker {
        schema,
        directory,
        mut diagnostics,
        handoffs,
        ..
    } = c;
    for d in &mut diagnostics {
        tighten(d);
    }
    sort(&mut diagnostics, &units);
    let ok = !diagnostics.iter().any(|d| d.severity == Severity::Error);
    Analysis {
        checked: ok.then_some(Checked {
            units,
            schema,
            directory,
            handoffs,
            cascade,
        }),
        diagnostics,
    }
}

/// Trims the spans of a diagnostic to the text they point at.
///
/// The parser's spans for expressions and statements run up to the next
/// token, so they take in trailing blanks, line breaks and comments; an
/// underline that spills onto the next statement points at the wrong thing.
fn tighten(d: &mut Diagnostic) {
    let text = d.file.text.as_str();
    d.span = trim_span(text, d.span);
    for l in &mut d.related {
        l.span = trim_span(text, l.span);
    }
}

/// `span` without trailing whitespace and `#` comments. A span that would
/// become empty is kept as it is (it points at a place, not at text).
fn trim_span(text: &str, span: Span) -> Span {
    let Some(s) = text.get(span.start..span.end) else {
        return span;
    };
    let mut end = s.len();
    loop {
        end = s[..end].trim_end().len();
        // Strings end on their line, so a `#` outside quotes on the last
        // line starts a comment.
        let line_start = s[..end].rfind('\n').map_or(0, |i| i + 1);
        match comment_start(&s[line_start..end]) {
            Some(i) => end = line_start + i,
            None => break,
        }
    }
    if end == 0 {
        span
    } else {
        Span::new(span.start, span.start + end)
    }
}

/// The offset of a `#` comment in one line of source, if any (a `#` inside
/// a string is text).
pub(crate) fn comment_start(line: &str) -> Option<usize> {
    let (mut in_string, mut escaped) = (false, false);
    for (i, c) in line.char_indices() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if c == '#' {
            return Some(i);
        }
    }
    None
}

/// Orders diagnostics errors first, then by file and position, so output
/// is stable and an error is never read after a warning it explains (an
/// unknown team makes the team the author meant look unused).
fn sort(diagnostics: &mut [Diagnostic], units: &[Unit]) {
    let order: HashMap<*const SourceFile, usize> = units
        .iter()
        .enumerate()
        .map(|(i, u)| (Arc::as_ptr(&u.source), i))
        .collect();
    diagnostics.sort_by_key(|d| {
        (
            std::cmp::Reverse(d.severity),
            order
                .get(&Arc::as_ptr(&d.file))
                .copied()
                .unwrap_or(usize::MAX),
            d.span.start,
            d.code,
        )
    });
}

pub(crate) struct Checker<'u> {
    pub(crate) units: &'u [Unit],
    pub(crate) schema: Schema,
    pub(crate) directory: Directory,
    /// (kind, name) → first declaration.
    pub(crate) declared: HashMap<(&'static str, String), Loc>,
    /// (kind, name) of declarations something refers to.
    pub(crate) used: HashSet<(&'static str, String)>,
    pub(crate) diagnostics: Vec<Diagnostic>,
    pub(crate) handoffs: Vec<HandoffInfo>,
    /// While a reference that must name a person is checked: an unknown
    /// name is then offered only the users and roles, not `missing` or
    /// `exception` (text, never a person).
    pub(crate) wants_person: bool,
}

impl Checker<'_> {
    pub(crate) fn diag(
        &self,
        code: Code,
        loc: Loc,
        message: String,
        label: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::error(code, &self.units[loc.file].source, loc.span, message, label)
    }

    pub(crate) fn warn(&mut self, code: Code, loc: Loc, message: String, label: &str, help: &str) {
        let d = self
            .diag(code, loc, message, label)
            .warning()
            .with_help(help);
        self.diagnostics.push(d);
    }

    /// Adds a secondary location: a label when it is in the same file, else a
    /// note with its file, line and column.
    pub(crate) fn relate(&self, d: Diagnostic, loc: Loc, text: &str) -> Diagnostic {
        let file = &self.units[loc.file].source;
        if Arc::ptr_eq(file, &d.file) {
            d.with_related(loc.span, text)
        } else {
            let (line, col) = file.line_col(loc.span.start);
            let note = format!("{text}: {}:{line}:{col}", file.name);
            let help = match d.help.clone() {
                Some(h) => format!("{h}\n{note}"),
                None => note,
            };
            Diagnostic {
                help: Some(help),
                ..d
            }
        }
    }

    /// Reports an unknown name, with a did-you-mean when one candidate is
    /// clearly closest.
    pub(crate) fn unknown(
        &mut self,
        code: Code,
        loc: Loc,
        kind: &str,
        name: &str,
        candidates: &[String],
        fallback_help: &str,
    ) {
        // "field on `deal`" reads as "unknown field `x` on `deal`".
        let (noun, owner) = kind.split_once(' ').map_or((kind, ""), |(n, o)| (n, o));
        let owner = if owner.is_empty() {
            String::new()
        } else {
            format!(" {owner}")
        };
        let label = if noun == "name" {
            "not a user, nor a role assigned before this point".to_string()
        } else {
            format!("no {noun} called `{name}`{owner}")
        };
        let mut d = self.diag(code, loc, format!("unknown {noun} `{name}`{owner}"), label);
        // Teams, channels, people and objects are few: listing them all
        // shows the author the names to pick from.
        let listed = match noun {
            "team" => Some(("team", "teams")),
            "channel" => Some(("channel", "channels")),
            "name" => Some(("user or role", "users and roles")),
            "object" => Some(("object", "objects")),
            _ => None,
        };
        let declared = listed.map(|(one, many)| declared_list(one, many, candidates));
        d = match suggest(name, candidates.iter().map(String::as_str)) {
            Some(s) => {
                // The declaration the author meant is not unused: warning
                // about it too would report one typo twice.
                // A bare name's candidates are roles and users.
                let kind = if noun == "name" { "user" } else { noun };
                if let Some(kind) = ["user", "team", "channel"].into_iter().find(|k| *k == kind) {
                    self.used.insert((kind, s.to_string()));
                }
                match declared {
                    Some(list) => d.with_help(format!("did you mean `{s}`? {list}")),
                    None => d.with_help(format!("did you mean `{s}`?")),
                }
            }
            None => match declared {
                Some(list) => d.with_help(format!("{fallback_help}; {list}")),
                None => d.with_help(fallback_help),
            },
        };
        self.diagnostics.push(d);
    }
}

/// `the declared teams are `delivery` and `sales``, or that there is none.
fn declared_list(one: &str, many: &str, names: &[String]) -> String {
    let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [] => format!("no {many} are declared"),
        [only] => format!("the only declared {one} is {only}"),
        [init @ .., last] => format!("the declared {many} are {} and {last}", init.join(", ")),
    }
}

/// The candidate closest to `name`, when it is close and clearly closer than
/// the next one.
pub fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut scored: Vec<(f64, &str)> = candidates
        .map(|c| {
            (
                strsim::jaro_winkler(&name.to_lowercase(), &c.to_lowercase()),
                c,
            )
        })
        .filter(|(s, _)| *s >= 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    match scored.as_slice() {
        [] => None,
        [(_, only)] => Some(only),
        [(a, best), (b, _), ..] => (a - b >= 0.02).then_some(*best),
    }
}
