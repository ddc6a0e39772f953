//! Translates pest's parse errors into diagnostics in the language's own words.
//!
//! pest reports where it stopped and which rules it tried there. That is
//! rarely what an author needs to read: the place where the parser stopped is
//! often a line after the mistake, and the rules it tried are grammar
//! internals. This module looks at the text around the failure and names the
//! common mistakes in the author's terms (a block left open, a keyword
//! swallowed after a dangling `,` or `>`, `=` where `is` was meant, curly
//! quotes pasted from a document, a misspelled keyword) and otherwise says
//! "expected X, found Y", pointing at the right token.
//!
//! It never shows a grammar rule name and never panics, whatever the input:
//! every offset it computes is clamped to the text and to char boundaries.

use std::sync::Arc;

use pest::error::{Error, ErrorVariant, InputLocation};

use super::ast::Span;
use super::lexical::Scan;
use super::parser::{Rule, DECLARATION_KEYWORDS};
use crate::diagnostic::{Code, Diagnostic, SourceFile};

/// The byte offset (relative to the parsed slice) where pest failed.
pub(crate) fn error_offset(err: &Error<Rule>) -> usize {
    match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    }
}

/// Where a declaration failed to parse.
pub(crate) struct Site<'a> {
    pub source: &'a Arc<SourceFile>,
    pub scan: &'a Scan,
    /// Offset of the broken declaration's first token.
    pub start: usize,
    /// Absolute offset where pest stopped.
    pub at: usize,
    /// End of the text the parser was given: the file's end, or the start
    /// of the line where nesting got too deep.
    pub limit: usize,
}

/// The diagnostic for a parse error, or `None` when the error is only an
/// artifact of the parser having been stopped early at `site.limit` (the
/// nesting-depth error already explains it).
pub(crate) fn translate(site: &Site<'_>, err: &Error<Rule>) -> Option<Diagnostic> {
    let expected = match &err.variant {
        ErrorVariant::ParsingError { positives, .. } => normalize(positives),
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    translate_expected(site, expected)
}

/// The diagnostic for a token at `site.at` that cannot start a statement in
/// a `kind` block (see [`block_kind`]): recovery found it without pest.
pub(crate) fn unexpected_in_block(site: &Site<'_>, kind: &str) -> Option<Diagnostic> {
    use Rule::*;
    let mut expected: Vec<Rule> = match kind {
        "handoff" => HANDOFF_STATEMENTS.to_vec(),
        "then" | "if missing" => ACTIONS.to_vec(),
        "on exception" => [&ACTIONS[..], &[k_resume]].concat(),
        "object" => vec![field_decl],
        "calendar" => vec![k_workdays, k_timezone, k_holidays, k_hours],
        "brief" => vec![k_ask, brief_field],
        "task" => vec![k_checklist, k_attach],
        "draft email" => vec![k_subject, k_body],
        _ => Vec::new(),
    };
    expected.push(rbrace);
    translate_expected(site, expected)
}

fn translate_expected(site: &Site<'_>, expected: Vec<Rule>) -> Option<Diagnostic> {
    if let Some(d) = lexical_problem(site) {
        return Some(d);
    }
    let src = site.source.text.as_str();
    // pest sometimes reports the position before the whitespace it skips.
    let at = skip_trivia(src, site.scan, site.at.min(site.limit), site.limit);
    if at >= site.limit && site.limit < src.len() {
        return None;
    }
    let found = if at >= site.limit {
        Tok::end(at)
    } else {
        token_at(src, at)
    };
    let cx = Cx {
        site,
        src,
        at,
        expected,
        found,
        prev: prev_token(src, site.scan, site.start, at),
    };
    let d = thousands_separator(&cx)
        .or_else(|| swallowed_keyword(&cx))
        .or_else(|| missing_brace(&cx))
        .or_else(|| unclosed_bracket(&cx))
        .or_else(|| stray_brace(&cx))
        .or_else(|| quotes(&cx))
        .or_else(|| single_equals(&cx))
        .or_else(|| strategy(&cx))
        .unwrap_or_else(|| generic(&cx));
    Some(d)
}

// ------------------------------------------------------------- context ---

/// Everything the translators look at.
struct Cx<'a> {
    site: &'a Site<'a>,
    src: &'a str,
    /// Where the unexpected token starts (after whitespace and comments).
    at: usize,
    /// What the grammar would have accepted, normalized.
    expected: Vec<Rule>,
    /// The token the parser could not take.
    found: Tok,
    /// The last token it did take, within this declaration.
    prev: Option<Tok>,
}

impl Cx<'_> {
    fn text(&self, t: Tok) -> &str {
        t.text(self.src)
    }

    fn line(&self, offset: usize) -> usize {
        self.site.source.line_col(offset).0
    }

    fn error(&self, code: Code, span: Span, message: String, label: String) -> Diagnostic {
        Diagnostic::error(code, self.site.source, span, message, label)
    }

    fn expects(&self, rule: Rule) -> bool {
        self.expected.contains(&rule)
    }

    /// True when the parser could also have ended a block or started a new
    /// statement here: the found token is then judged as a statement start.
    fn statement_level(&self) -> bool {
        self.expected.iter().any(|r| {
            matches!(r, Rule::rbrace | Rule::EOI)
                || DECLARATIONS.contains(r)
                || HANDOFF_STATEMENTS.contains(r)
                || ACTIONS.contains(r)
        })
    }

    /// True when the found token sits on a later line than the last token
    /// the parser took: the statement was left unfinished at a line end.
    fn found_on_later_line(&self) -> bool {
        match self.prev {
            Some(p) => self.found.kind == Kind::End || self.line(p.span.end) < self.line(self.at),
            None => false,
        }
    }

    /// The keyword of the statement the previous token belongs to.
    fn statement(&self) -> Option<&'static str> {
        let p = self.prev?;
        statement_of(self.src, self.site.start, p.span.start)
    }

    fn found_text(&self) -> String {
        describe_token(self.src, self.found)
    }
}

// -------------------------------------------------------------- tokens ---

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    End,
    Word,
    Number,
    Str,
    SingleQuoted,
    CurlyQuoted,
    Op,
    Punct,
}

/// A token as an author sees it (not as the grammar does).
#[derive(Debug, Clone, Copy)]
struct Tok {
    kind: Kind,
    span: Span,
}

impl Tok {
    fn end(at: usize) -> Self {
        Tok {
            kind: Kind::End,
            span: Span::new(at, at),
        }
    }

    fn text(self, src: &str) -> &str {
        src.get(self.span.start..self.span.end).unwrap_or("")
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The token that starts at `at`, never running past its line.
fn token_at(src: &str, at: usize) -> Tok {
    let rest = src.get(at..).unwrap_or("");
    let Some(c) = rest.chars().next() else {
        return Tok::end(at.min(src.len()));
    };
    let line = &rest[..rest.find(['\n', '\r']).unwrap_or(rest.len())];
    let (kind, len) = match c {
        c if c.is_alphabetic() || c == '_' => (Kind::Word, word_len(line)),
        c if c.is_ascii_digit() => (Kind::Number, number_len(line)),
        '"' => (Kind::Str, string_len(line)),
        '\'' => (
            Kind::SingleQuoted,
            line[1..].find('\'').map_or(1, |i| i + 2),
        ),
        '“' | '”' | '„' | '‘' | '’' => {
            let open = c.len_utf8();
            let close = line[open..]
                .char_indices()
                .find(|&(_, c)| matches!(c, '“' | '”' | '‘' | '’'))
                .map(|(i, c)| open + i + c.len_utf8());
            (Kind::CurlyQuoted, close.unwrap_or(open))
        }
        '=' | '<' | '>' | '!' | '+' | '-' | '*' | '/' => {
            let len = line
                .bytes()
                .take(2)
                .take_while(|b| b"=<>!+-*/".contains(b))
                .count();
            // `>=` is one operator, `>-` is two.
            let len = if len == 2 && !matches!(&line[..2], "==" | "!=" | "<=" | ">=") {
                1
            } else {
                len
            };
            (Kind::Op, len)
        }
        c => (Kind::Punct, c.len_utf8()),
    };
    Tok {
        kind,
        span: Span::new(at, at + len.max(1).min(rest.len())),
    }
}

/// A word, including `/` between letters (`yes/no`) and `.` in a field
/// path (`deal.owner`).
fn word_len(line: &str) -> usize {
    let mut end = 0;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let joins = (c == '/' || c == '.')
            && end == i
            && chars.peek().is_some_and(|&(_, n)| {
                n.is_alphabetic() || n == '_' || (c == '/' && n.is_alphanumeric())
            });
        if is_word_char(c) || joins {
            end = i + c.len_utf8();
        } else {
            break;
        }
    }
    end
}

/// A number-like run: `2`, `2.5`, `2026-13-45`, `9:00`, `12/25/2026`.
fn number_len(line: &str) -> usize {
    let run = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || "_.:/-".contains(c)))
        .unwrap_or(line.len());
    line[..run].trim_end_matches(['.', ':', '/', '-']).len()
}

/// A string to its closing quote, or to the end of the line.
fn string_len(line: &str) -> usize {
    let bytes = line.as_bytes();
    // Interpolations may hold strings of their own: track the nesting.
    let mut stack: Vec<u8> = vec![b'"'];
    let mut i = 1;
    while i < bytes.len() {
        match (stack.last().copied(), bytes[i]) {
            (Some(b'"'), b'\\') => i += 1,
            (Some(b'"'), b'"') => {
                stack.pop();
                if stack.is_empty() {
                    return i + 1;
                }
            }
            (Some(b'"'), b'{') => stack.push(b'{'),
            (Some(b'{'), b'}') => {
                stack.pop();
            }
            (Some(b'{'), b'"') => stack.push(b'"'),
            _ => {}
        }
        i += 1;
    }
    line.len()
}

/// Skips whitespace and comments from `at`, up to `limit`.
fn skip_trivia(src: &str, scan: &Scan, mut at: usize, limit: usize) -> usize {
    while at < limit {
        let Some(c) = src.get(at..).and_then(|r| r.chars().next()) else {
            break;
        };
        if c.is_whitespace() || c == '\u{feff}' {
            at += c.len_utf8();
        } else if let Some(comment) = comment_at(scan, at) {
            at = comment.end.max(at + 1);
        } else {
            break;
        }
    }
    at.min(limit)
}

/// The comment that covers `offset`, if any.
fn comment_at(scan: &Scan, offset: usize) -> Option<Span> {
    let i = scan
        .comments
        .partition_point(|c| c.span.start <= offset)
        .checked_sub(1)?;
    let span = scan.comments[i].span;
    (offset < span.end.max(span.start + 1)).then_some(span)
}

/// The last token before `at` and at or after `floor`, skipping whitespace
/// and comments.
fn prev_token(src: &str, scan: &Scan, floor: usize, at: usize) -> Option<Tok> {
    let mut p = at.min(src.len());
    loop {
        let before = src.get(floor..p)?;
        let trimmed = before.trim_end_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        p = floor + trimmed.len();
        if p <= floor {
            return None;
        }
        match comment_at(scan, p - 1) {
            Some(c) if c.start >= floor && c.start < p => p = c.start,
            _ => break,
        }
    }
    // Lex the line forward to find the token that ends at `p`: strings and
    // operators are only recognized reliably from their start.
    let line = line_start(src, floor, p - 1);
    let mut i = line;
    let mut last = None;
    while i < p {
        let c = src[i..].chars().next()?;
        if c == ' ' || c == '\t' || c == '\u{feff}' {
            i += c.len_utf8();
            continue;
        }
        let t = token_at(src, i);
        if t.span.end >= p {
            let t = if t.span.end == p {
                t
            } else {
                // The token runs past `p` (an unclosed string): take what
                // lies before it.
                Tok {
                    kind: t.kind,
                    span: Span::new(t.span.start, p),
                }
            };
            return Some(t);
        }
        last = Some(t);
        i = t.span.end;
    }
    last
}

/// The start of the line holding `offset`, but not before `floor`.
fn line_start(src: &str, floor: usize, offset: usize) -> usize {
    let offset = offset.min(src.len());
    src.get(floor..offset)
        .and_then(|s| s.rfind('\n'))
        .map_or(floor.min(offset), |i| floor + i + 1)
}

/// The first token on the line that starts at `line`, if the line has one.
fn first_token(src: &str, line: usize) -> Option<Tok> {
    let rest = src.get(line..)?;
    let indent = rest.len() - rest.trim_start_matches([' ', '\t', '\u{feff}']).len();
    let t = token_at(src, line + indent);
    (!matches!(t.kind, Kind::End) && !src[t.span.start..].starts_with(['\n', '\r', '#']))
        .then_some(t)
}

/// How a token is quoted in a message.
fn describe_token(src: &str, t: Tok) -> String {
    let text = t.text(src);
    match t.kind {
        Kind::End => "the end of the file".to_string(),
        _ if text.contains('`') => "a backtick".to_string(),
        Kind::Str if text.chars().count() > 40 => "a string".to_string(),
        _ => format!("`{text}`"),
    }
}

// ---------------------------------------------------------- statements ---

/// Words that start a statement or declaration. When one of them ends up
/// somewhere the parser takes a name, it was almost always meant to start
/// the next statement.
const STATEMENT_WORDS: [&str; 31] = [
    "object",
    "user",
    "team",
    "channel",
    "calendar",
    "handoff",
    "when",
    "where",
    "require",
    "if",
    "exception",
    "on",
    "resume",
    "brief",
    "ask",
    "then",
    "done",
    "assign",
    "task",
    "checklist",
    "attach",
    "notify",
    "draft",
    "subject",
    "body",
    "set",
    "pause",
    "workdays",
    "timezone",
    "holidays",
    "hours",
];

const ACTION_WORDS: [&str; 6] = ["assign", "task", "notify", "draft", "set", "pause"];
const HANDOFF_WORDS: [&str; 8] = [
    "when",
    "require",
    "if",
    "exception",
    "on",
    "brief",
    "then",
    "done",
];

/// A statement keyword as the author writes it.
fn statement_name(word: &str) -> &str {
    match word {
        "if" => "if missing",
        "on" => "on exception",
        "done" => "done when",
        "resume" => "resume when",
        "draft" => "draft email",
        "attach" => "attach brief",
        other => other,
    }
}

/// The statement keyword that begins the line at `line`: a statement word,
/// or `field` for an object's `name: type` line.
fn line_statement(src: &str, line: usize) -> Option<&'static str> {
    let t = first_token(src, line)?;
    if t.kind != Kind::Word {
        return None;
    }
    let word = t.text(src);
    if let Some(w) = STATEMENT_WORDS.iter().find(|w| **w == word) {
        return Some(w);
    }
    let after = src[t.span.end..].trim_start_matches([' ', '\t']);
    after.starts_with(':').then_some("field")
}

/// The keyword of the statement that `offset` belongs to: the nearest line
/// at or above it that starts with a statement keyword.
fn statement_of(src: &str, floor: usize, offset: usize) -> Option<&'static str> {
    let mut line = line_start(src, floor, offset);
    // Statements span a few lines at most; the bound keeps this linear.
    for _ in 0..20 {
        if let Some(s) = line_statement(src, line) {
            return Some(s);
        }
        if line <= floor {
            return None;
        }
        line = line_start(src, floor, line - 1);
    }
    None
}

/// True when the line starting at `line` reads like the start of a
/// declaration: a declaration keyword followed by a name, a string or `{`
/// (not `:`, which makes it a field named like a keyword).
pub(crate) fn starts_declaration(line: &str) -> bool {
    let t = line.trim_start_matches([' ', '\t', '\u{feff}']);
    DECLARATION_KEYWORDS.iter().any(|k| {
        t.strip_prefix(k).is_some_and(|rest| {
            rest.starts_with([' ', '\t'])
                && rest
                    .trim_start_matches([' ', '\t'])
                    .starts_with(|c: char| c.is_alphabetic() || c == '_' || c == '"' || c == '{')
                || (*k == "calendar" && rest.trim_start_matches([' ', '\t']).starts_with('{'))
        })
    })
}

// -------------------------------------------------------------- blocks ---

/// An open `{` and the kind of block it opens.
#[derive(Debug, Clone, Copy)]
struct Block {
    brace: usize,
    kind: &'static str,
}

/// The `{` blocks still open at `at`, outermost first, counting from the
/// declaration's start.
fn open_blocks(src: &str, scan: &Scan, start: usize, at: usize) -> Vec<Block> {
    let from = scan.brackets.partition_point(|&(o, _)| o < start);
    let mut stack: Vec<(usize, u8)> = Vec::new();
    for &(o, b) in scan.brackets[from..].iter().take_while(|&&(o, _)| o < at) {
        match b {
            b'{' | b'(' | b'[' => stack.push((o, b)),
            _ => {
                stack.pop();
            }
        }
    }
    stack
        .into_iter()
        .filter(|&(_, b)| b == b'{')
        .filter(|&(o, _)| !is_interpolation(src, start, o))
        .map(|(o, _)| Block {
            brace: o,
            kind: block_kind(src, start, o),
        })
        .collect()
}

/// True when the `{` at `offset` opens an interpolation inside a string.
pub(crate) fn is_interpolation(src: &str, floor: usize, offset: usize) -> bool {
    let line = line_start(src, floor, offset);
    let mut i = line;
    while i < offset {
        let t = token_at(src, i);
        if t.span.start <= offset && offset < t.span.end {
            return t.kind == Kind::Str;
        }
        i = t.span.end.max(i + 1);
        while src[i..].starts_with([' ', '\t']) {
            i += 1;
        }
    }
    false
}

/// What a `{` opens, named by the statement it belongs to.
pub(crate) fn block_kind(src: &str, floor: usize, brace: usize) -> &'static str {
    let line = line_start(src, floor, brace);
    let word = match first_token(src, line) {
        // A brace on a line of its own belongs to the line above.
        Some(t) if t.span.start == brace && line > floor => {
            let above = line_start(src, floor, line - 1);
            first_token(src, above).map(|t| t.text(src))
        }
        Some(t) => Some(t.text(src)),
        None => None,
    };
    match word {
        Some("handoff") => "handoff",
        Some("object") => "object",
        Some("calendar") => "calendar",
        Some("then") => "then",
        Some("if") => "if missing",
        Some("on") => "on exception",
        Some("brief") => "brief",
        Some("task") => "task",
        Some("draft") => "draft email",
        _ => "block",
    }
}

/// The keywords that start a statement directly inside a `kind` block.
fn block_words(kind: &str) -> &'static [&'static str] {
    match kind {
        "handoff" => &HANDOFF_WORDS,
        "then" | "if missing" => &ACTION_WORDS,
        "on exception" => &[
            "assign", "task", "notify", "draft", "set", "pause", "resume",
        ],
        "task" => &["checklist", "attach"],
        "draft email" => &["subject", "body"],
        "brief" => &["ask"],
        "calendar" => &["workdays", "timezone", "holidays", "hours"],
        _ => &[],
    }
}

/// True when `word` can start a statement directly inside a `kind` block.
fn block_allows(kind: &str, word: &str) -> bool {
    block_words(kind).contains(&word)
}

/// Where recovery may resume inside a `kind` block: the first token of the
/// line at `line`, when it starts a statement of that block (or misspells
/// the keyword of one, which then gets its own error) and does not continue
/// the line above it after a dangling `,` or operator.
pub(crate) fn statement_start(
    src: &str,
    scan: &Scan,
    floor: usize,
    line: usize,
    kind: &str,
) -> Option<usize> {
    if in_script(scan, line) {
        return None;
    }
    let t = first_token(src, line)?;
    let word = t.text(src);
    let starts = match (kind, t.kind) {
        ("object", Kind::Word) => true,
        ("brief", Kind::Str) => true,
        (_, Kind::Word) => {
            block_allows(kind, word) || did_you_mean(word, block_words(kind)).is_some()
        }
        _ => false,
    };
    if !starts {
        return None;
    }
    let continues =
        prev_token(src, scan, floor, t.span.start).is_some_and(|p| DANGLING.contains(&p.text(src)));
    (!continues).then_some(t.span.start)
}

/// True when the declaration's outermost `{` is closed before the next
/// declaration after `at`: its braces balance, so a statement in the wrong
/// block is misplaced rather than a `}` missing.
fn declaration_closes(src: &str, scan: &Scan, start: usize, at: usize, limit: usize) -> bool {
    let bound = next_declaration_line(src, scan, at, limit);
    let from = scan.brackets.partition_point(|&(o, _)| o < start);
    let mut depth = 0usize;
    for &(o, b) in scan.brackets[from..]
        .iter()
        .take_while(|&&(o, _)| o < bound)
    {
        match b {
            b'{' | b'(' | b'[' => depth += 1,
            _ => {
                depth = depth.saturating_sub(1);
                if depth == 0 && o > start {
                    return true;
                }
            }
        }
    }
    false
}

/// The start of the first line after the one holding `at` that begins a
/// declaration (outside scripts), or `limit`.
pub(crate) fn next_declaration_line(src: &str, scan: &Scan, at: usize, limit: usize) -> usize {
    let at = at.min(limit);
    match src[at..limit].find('\n') {
        Some(nl) => declaration_line_from(src, scan, at + nl + 1, limit),
        None => limit,
    }
}

/// The start of the first line, from the one starting at `line` on, that
/// begins a declaration (outside scripts), or `limit`.
pub(crate) fn declaration_line_from(src: &str, scan: &Scan, line: usize, limit: usize) -> usize {
    let mut line = line.min(limit);
    loop {
        if line < limit && !in_script(scan, line) && starts_declaration(&src[line..limit]) {
            return line;
        }
        match src[line..limit].find('\n') {
            Some(nl) => line += nl + 1,
            None => return limit,
        }
    }
}

/// True when `offset` lies inside a script body.
pub(crate) fn in_script(scan: &Scan, offset: usize) -> bool {
    let i = scan.scripts.partition_point(|s| s.start < offset);
    i > 0 && offset < scan.scripts[i - 1].end
}

// ------------------------------------------------------------ lexical ---

/// A string or script left open explains any error that follows it.
fn lexical_problem(site: &Site<'_>) -> Option<Diagnostic> {
    let src = site.source.text.as_str();
    let within = |s: &Span| s.start >= site.start && s.start <= site.at;
    if let Some(s) = site.scan.unterminated_scripts.iter().find(|s| within(s)) {
        return Some(
            Diagnostic::error(
                Code::H003,
                site.source,
                *s,
                "unterminated script: no closing ``` before the end of the file",
                "this script is never closed",
            )
            .with_help("end the script with ``` on the line after its last line"),
        );
    }
    let s = site.scan.unterminated_strings.iter().find(|s| within(s))?;
    let line_end = src[s.start..]
        .find(['\n', '\r'])
        .map_or(src.len(), |i| s.start + i);
    if let Some(open) = unclosed_interpolation(&src[s.start..line_end]) {
        let open = s.start + open;
        // The placeholder as far as it reads like one: `{deal.name`.
        let body = &src[open + 1..line_end];
        let name_len = body
            .find(|c: char| !(is_word_char(c) || c == '.'))
            .unwrap_or(body.len());
        let placeholder = &src[open..open + 1 + name_len];
        let after = skip_trivia(src, site.scan, open + 1 + name_len, line_end);
        let found = if after >= line_end {
            "the end of the line".to_string()
        } else {
            describe_token(src, token_at(src, after))
        };
        let help = if name_len > 0 {
            format!("close the placeholder: `{placeholder}}}`; write `\\{{` for a literal brace")
        } else {
            "close the placeholder with `}`, as in `{deal.name}`; write `\\{` for a literal brace"
                .to_string()
        };
        return Some(
            Diagnostic::error(
                Code::H001,
                site.source,
                Span::new(open, open + 1 + name_len),
                format!("expected `}}` after `{placeholder}`, found {found}"),
                "this placeholder is never closed",
            )
            .with_help(help),
        );
    }
    Some(
        Diagnostic::error(
            Code::H002,
            site.source,
            Span::new(s.start, line_end.max(s.start + 1)),
            "unterminated string: expected a closing `\"` before the end of the line",
            "this string is never closed",
        )
        .with_help(
            "close the string with `\"` on the same line; write `\\\"` for a quote inside it",
        ),
    )
}

/// The offset (in `line`, which starts with `"`) of the first `{` that is
/// still open at the end of the line, if any.
fn unclosed_interpolation(line: &str) -> Option<usize> {
    // The context stack, as in the lexical scan: `"` strings and `{` holes.
    let mut stack: Vec<(u8, usize)> = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match (stack.last().map(|s| s.0), bytes[i]) {
            (None, b'"') | (Some(b'{'), b'"') => stack.push((b'"', i)),
            (Some(b'"'), b'\\') => i += 1,
            (Some(b'"'), b'"') => {
                stack.pop();
            }
            (Some(b'"'), b'{') => stack.push((b'{', i)),
            (Some(b'{'), b'}') => {
                stack.pop();
            }
            _ => {}
        }
        i += 1;
    }
    stack.iter().find(|s| s.0 == b'{').map(|s| s.1)
}

// --------------------------------------------------------- translators ---

/// How far before a declaration the translators look for context (the line
/// above it). A bound, so that a file written on one huge line does not make
/// each error cost a scan back to the start of the file.
const LOOK_BACK: usize = 1 << 16;

/// Tokens after which the parser needs one more value: at the end of a line
/// they swallow the next line's first word as that value.
const DANGLING: [&str; 23] = [
    ",", "=", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "and", "or", "not", "is", "in",
    "contains", "to", "for", "require", "where", "when",
];

/// A line ends with a dangling `,`, operator or `is`, so the parser took the
/// next line's statement keyword as the missing value and failed after it:
/// `where deal.amount >` / `require buyer_goals`.
fn swallowed_keyword(cx: &Cx<'_>) -> Option<Diagnostic> {
    let src = cx.src;
    // The swallowing statement may have parsed: `team t = "a",` then
    // `user founder = …` makes `user` a member, and the next declaration
    // fails at `founder`. So look before the failing declaration too (a
    // line back is enough).
    let far = cx.site.start.saturating_sub(LOOK_BACK);
    let line = line_start(src, far, cx.at);
    let floor = line_start(src, far, line.saturating_sub(1)).min(cx.site.start);
    let first = first_token(src, line)?;
    let word = first.text(src);
    if first.kind != Kind::Word || first.span.start >= cx.at || !STATEMENT_WORDS.contains(&word) {
        return None;
    }
    let dangling = prev_token(src, cx.site.scan, floor, first.span.start)?;
    let op = dangling.text(src);
    if !DANGLING.contains(&op) || cx.line(dangling.span.end) >= cx.line(first.span.start) {
        return None;
    }
    let statement = statement_of(src, floor, dangling.span.start);
    let what = match (op, statement) {
        (",", Some("require")) => "a field name",
        (",", Some("team")) | ("=", Some("team")) => "a team member",
        (",", Some("checklist")) => "another checklist item in double quotes",
        (",", Some("holidays")) => "a date such as `2026-12-25`",
        (",", Some("workdays")) => "a day such as `friday`",
        (",", Some("field")) => "another choice in double quotes",
        ("=", Some("user" | "channel")) => "text in double quotes",
        ("to" | "for", _) => "a person, role or field such as `deal.owner`",
        ("is", _) => "a value, `set`, `missing` or `empty`",
        ("require", _) => "a field name",
        ("where" | "when", _) => "a condition",
        _ => "a value",
    };
    let help = match op {
        "," => format!(
            "remove the `,` at the end of line {}, or add {what} after it",
            cx.line(dangling.span.start)
        ),
        "is" => "say what it should be: `is yes`, `is \"Closed Won\"`, `is set` or `is missing`"
            .to_string(),
        "to" | "for" => format!("say who, for example `{op} deal.owner`"),
        "require" => {
            "list the fields the next owner needs: `require buyer_goals, main_contact`".to_string()
        }
        "where" | "when" => {
            format!("give the condition after `{op}`, for example `{op} deal.amount > 0`")
        }
        "=" => "give the value after `=` on the same line".to_string(),
        _ => format!("finish the condition, for example `deal.amount {op} 0`"),
    };
    Some(
        cx.error(
            Code::H001,
            dangling.span,
            format!("expected {what} after `{op}`, found `{word}`"),
            format!("expected {what} after this"),
        )
        .with_related(
            first.span,
            format!("`{}` starts the next statement", statement_name(word)),
        )
        .with_help(help),
    )
}

/// `50,000`: a thousands separator, where `,` separates list items.
fn thousands_separator(cx: &Cx<'_>) -> Option<Diagnostic> {
    let prev = cx.prev?;
    let after = &cx.src[cx.at..];
    let groups = after
        .strip_prefix(',')?
        .split(',')
        .take_while(|g| g.len() >= 3 && g.as_bytes()[..3].iter().all(u8::is_ascii_digit))
        .count();
    if cx.text(cx.found) != ","
        || cx.expects(Rule::comma)
        || prev.kind != Kind::Number
        || prev.span.end != cx.at
        || groups == 0
        || !cx.text(prev).bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let end = cx.at + groups * 4;
    let written = &cx.src[prev.span.start..end];
    let plain: String = written.chars().filter(|c| *c != ',').collect();
    let grouped = written.replace(',', "_");
    Some(
        cx.error(
            Code::H001,
            Span::new(prev.span.start, end),
            format!("expected a number without `,` separators, found `{written}`"),
            format!("write `{plain}`"),
        )
        .with_help(format!(
            "write `{plain}` or `{grouped}`: a `,` separates the items of a list"
        )),
    )
}

/// A block left open: the parser ran into the end of the file, the next
/// declaration, or a statement that belongs to an enclosing block.
fn missing_brace(cx: &Cx<'_>) -> Option<Diagnostic> {
    let src = cx.src;
    let site = cx.site;
    let line = line_start(src, site.start, cx.at);
    let first = first_token(src, line);
    let at_line_start = first.is_some_and(|t| t.span.start == cx.at);
    let decl_line = line > site.start && starts_declaration(&src[line..site.limit]);
    let (point, blocks) = if cx.found.kind == Kind::End && cx.expects(Rule::rbrace) {
        (cx.found, open_blocks(src, site.scan, site.start, cx.at))
    } else if decl_line {
        // The declaration keyword may have been taken for a field name; the
        // block must be closed before the line starts.
        let t = first?;
        (t, open_blocks(src, site.scan, site.start, line))
    } else if cx.found.kind == Kind::Word && at_line_start && cx.expects(Rule::rbrace) {
        let word = cx.text(cx.found);
        if !STATEMENT_WORDS.contains(&word) || expected_words(&cx.expected).contains(&word) {
            return None;
        }
        let blocks = open_blocks(src, site.scan, site.start, cx.at);
        let (inner, outer) = blocks.split_last()?;
        let home = outer.iter().rev().find(|b| block_allows(b.kind, word))?;
        if declaration_closes(src, site.scan, site.start, cx.at, site.limit) {
            // The braces balance: the statement is in the wrong block.
            return Some(misplaced(cx, word, inner.kind, home.kind));
        }
        (cx.found, blocks)
    } else {
        return None;
    };
    let (inner, outer) = blocks.split_last()?;
    let opened = cx.line(inner.brace);
    let block = match inner.kind {
        "block" => "block".to_string(),
        kind => format!("`{kind}` block"),
    };
    let found = describe_token(src, point);
    let help = if point.kind == Kind::End {
        format!("add `}}` at the end of the file to close the {block}")
    } else {
        format!(
            "add `}}` to close the {block} before line {}",
            cx.line(point.span.start)
        )
    };
    let mut d = cx
        .error(
            Code::H004,
            point.span,
            format!("missing `}}`: the {block} opened on line {opened} is never closed"),
            format!("expected `}}` before {found}"),
        )
        .with_related(
            Span::new(inner.brace, inner.brace + 1),
            "this `{` is never closed",
        );
    for b in outer.iter().rev() {
        if cx.found.kind == Kind::End || decl_line {
            d = d.with_related(
                Span::new(b.brace, b.brace + 1),
                "this `{` is not closed either",
            );
        }
    }
    Some(d.with_help(help))
}

/// A `(` or `[` left open: pest cannot name the `)` it wanted (brackets are
/// plain strings in the grammar), so the open bracket is found by the scan.
fn unclosed_bracket(cx: &Cx<'_>) -> Option<Diagnostic> {
    let scan = cx.site.scan;
    let from = scan.brackets.partition_point(|&(o, _)| o < cx.site.start);
    let mut stack: Vec<(usize, u8)> = Vec::new();
    for &(o, b) in scan.brackets[from..]
        .iter()
        .take_while(|&&(o, _)| o < cx.at)
    {
        match b {
            b'{' | b'(' | b'[' => stack.push((o, b)),
            _ => {
                stack.pop();
            }
        }
    }
    let &(open, b) = stack.last()?;
    if b == b'{' || matches!(cx.text(cx.found), ")" | "]") {
        return None;
    }
    let close = if b == b'(' { ')' } else { ']' };
    let opener = b as char;
    let found = cx.found_text();
    let (span, label) = match cx.prev {
        Some(p) if cx.found_on_later_line() => (p.span, format!("expected `{close}` after this")),
        _ => (
            if cx.found.kind == Kind::End {
                Span::new(cx.at, cx.at)
            } else {
                cx.found.span
            },
            format!("expected `{close}`"),
        ),
    };
    let after = cx.prev.map(|p| describe_token(cx.src, p));
    let help = match after {
        Some(a) if a != "a string" && a != "a backtick" => {
            format!(
                "add `{close}` after {a} to close the `{opener}` from line {}",
                cx.line(open)
            )
        }
        _ => format!(
            "add `{close}` to close the `{opener}` from line {}",
            cx.line(open)
        ),
    };
    Some(
        cx.error(
            Code::H001,
            span,
            format!(
                "expected `{close}` to close the `{opener}` opened on line {}, found {found}",
                cx.line(open)
            ),
            label,
        )
        .with_related(
            Span::new(open, open + 1),
            format!("this `{opener}` is never closed"),
        )
        .with_help(help),
    )
}

/// A `}` with no block open, between declarations.
fn stray_brace(cx: &Cx<'_>) -> Option<Diagnostic> {
    if cx.text(cx.found) != "}" || !contains_group(&cx.expected, &DECLARATIONS) {
        return None;
    }
    let far = cx.site.start.saturating_sub(LOOK_BACK);
    let help = match prev_token(cx.src, cx.site.scan, far, cx.at) {
        Some(p) if p.text(cx.src) == "}" => format!(
            "remove this `}}`: the block above already ends on line {}",
            cx.line(p.span.start)
        ),
        _ => "remove this `}`".to_string(),
    };
    Some(
        cx.error(
            Code::H001,
            cx.found.span,
            "expected a declaration, found `}` with no block open".to_string(),
            "nothing to close here".to_string(),
        )
        .with_help(help),
    )
}

/// A statement inside a block where it cannot go, in a declaration whose
/// braces balance.
fn misplaced(cx: &Cx<'_>, word: &str, inner: &str, home: &str) -> Diagnostic {
    let name = statement_name(word);
    let help = if home == "handoff" {
        format!("`{name}` goes directly inside the `handoff` block, not inside `{inner}`: move it below the `}}` that closes `{inner}`")
    } else {
        format!("`{name}` cannot go inside `{inner}`; it belongs in a `{home}` block")
    };
    let list = join_or(&describe_all(&cx.expected, None).long());
    cx.error(
        Code::H001,
        cx.found.span,
        format!("expected {list}, found `{word}`"),
        format!("`{name}` does not belong inside `{inner}`"),
    )
    .with_help(help)
}

/// Single or curly quotes where text was expected.
fn quotes(cx: &Cx<'_>) -> Option<Diagnostic> {
    if !matches!(cx.found.kind, Kind::SingleQuoted | Kind::CurlyQuoted) {
        return None;
    }
    let text = cx.text(cx.found);
    let inner: String = text
        .chars()
        .skip(1)
        .take_while(|c| !matches!(c, '\'' | '“' | '”' | '‘' | '’'))
        .collect();
    let (what, why) = if cx.found.kind == Kind::SingleQuoted {
        ("single quotes", "")
    } else {
        (
            "curly quotes",
            "; documents and chat apps often turn `\"` into `“`",
        )
    };
    Some(
        cx.error(
            Code::H001,
            cx.found.span,
            format!("expected text in straight double quotes, found {what}: `{text}`"),
            "use `\"` here".to_string(),
        )
        .with_help(format!("write `\"{inner}\"`{why}")),
    )
}

/// `=` where a comparison or a trigger was expected.
fn single_equals(cx: &Cx<'_>) -> Option<Diagnostic> {
    let text = cx.text(cx.found);
    if cx.found.kind != Kind::Op || !matches!(text, "=" | "==") {
        return None;
    }
    if cx.expects(Rule::compare_op) || cx.expects(Rule::compare_tail) {
        if text != "=" {
            return None;
        }
        // The author's own condition, with `is` in place of `=`.
        let ls = line_start(cx.src, cx.site.start, cx.at);
        let line = cx.src[ls..].split(['\n', '\r']).next().unwrap_or("");
        let k = cx.at - ls;
        let fixed = format!("{}is{}", &line[..k], &line[k + 1..]);
        let fixed = fixed.split(" #").next().unwrap_or("").trim();
        return Some(
            cx.error(
                Code::H001,
                cx.found.span,
                "expected a comparison such as `is`, `==` or `>`, found `=`".to_string(),
                "`=` does not compare".to_string(),
            )
            .with_help(format!("compare with `is` or `==`: `{fixed}`; a single `=` only gives a value, in `set` and `brief`")),
        );
    }
    if cx.expects(Rule::becomes) || cx.expects(Rule::k_becomes) {
        return Some(trigger_error(cx));
    }
    None
}

/// A trigger without `becomes`/`changes`: `when deal.stage "Won"`,
/// `when deal.stage is "Won"`, `when deal.stage = "Won"`.
fn trigger_error(cx: &Cx<'_>) -> Diagnostic {
    let src = cx.src;
    let found = cx.text(cx.found);
    // Rebuild the trigger the author meant, from their own words.
    let path = cx.prev.map(|p| p.text(src)).unwrap_or("deal.stage");
    let path_start = cx.prev.map_or(cx.at, |p| {
        src[..p.span.start]
            .rfind(|c: char| !(is_word_char(c) || c == '.'))
            .map_or(0, |i| i + 1)
    });
    let path = src
        .get(path_start..cx.prev.map_or(cx.at, |p| p.span.end))
        .unwrap_or(path);
    let value_from = if matches!(cx.found.kind, Kind::Op) || found == "is" || found == "to" {
        cx.found.span.end
    } else {
        cx.found.span.start
    };
    let value = src[value_from..]
        .split(['\n', '\r', '#'])
        .next()
        .unwrap_or("")
        .trim();
    let value = if value.is_empty() {
        "\"Closed Won\""
    } else {
        value
    };
    let mut d = cx.error(
        Code::H001,
        cx.found.span,
        format!(
            "expected `becomes` or `changes` after `{path}`, found {}",
            cx.found_text()
        ),
        "expected `becomes` or `changes`".to_string(),
    );
    if let Some(s) = did_you_mean(found, &["becomes", "changes"]) {
        d = d.with_help(format!("did you mean `{s}`?"));
    } else {
        d = d.with_help(format!(
            "a trigger fires when a value changes: write `when {path} becomes {value}`"
        ));
    }
    d
}

/// `by round-robin`, `by roundrobin`, `by least_loaded`.
fn strategy(cx: &Cx<'_>) -> Option<Diagnostic> {
    if !(cx.expects(Rule::strategy) || cx.expects(Rule::k_robin) || cx.expects(Rule::k_loaded)) {
        return None;
    }
    let src = cx.src;
    // Take the whole phrase after `by`, hyphens and all.
    let by = if cx.expects(Rule::strategy) {
        cx.at
    } else {
        cx.prev.map_or(cx.at, |p| p.span.start)
    };
    let rest = &src[by..];
    let len = rest
        .find(|c: char| !(is_word_char(c) || c == '-'))
        .unwrap_or(rest.len());
    let len = if len == 0 { cx.found.span.len() } else { len };
    let span = Span::new(by, by + len);
    let written = &src[span.start..span.end];
    let squashed: String = written
        .chars()
        .filter(|c| is_word_char(*c) && *c != '_')
        .flat_map(char::to_lowercase)
        .collect();
    let phrase = if written.is_empty() {
        describe_token(src, cx.found)
    } else {
        format!("`{written}`")
    };
    let closest = match squashed.as_str() {
        "roundrobin" | "leastloaded" => Some(if squashed == "roundrobin" {
            "roundrobin"
        } else {
            "leastloaded"
        }),
        _ => did_you_mean(&squashed, &["roundrobin", "leastloaded"]),
    };
    let help = match closest {
        Some("roundrobin") => "write it as two words: `by round robin`".to_string(),
        Some(_) => "write it as two words: `by least loaded`".to_string(),
        None => "pick a person with `by round robin` (take turns) or `by least loaded` (fewest open tasks)".to_string(),
    };
    Some(
        cx.error(
            Code::H001,
            span,
            format!("expected `round robin` or `least loaded`, found {phrase}"),
            "expected `round robin` or `least loaded`".to_string(),
        )
        .with_help(help),
    )
}

/// "expected X, found Y", pointing at Y, or at the end of the previous
/// token when the statement was left unfinished at the end of a line.
fn generic(cx: &Cx<'_>) -> Diagnostic {
    let statement = cx.statement();
    let mut expected = cx.expected.clone();
    // `business` is an optional word before the unit: naming the unit says
    // enough, and the help shows both.
    if expected.contains(&Rule::time_unit) {
        expected.retain(|r| *r != Rule::k_business);
    }
    let descs = describe_all(&expected, statement);
    let found = cx.found_text();
    let unfinished = cx.found_on_later_line() && !cx.statement_level();
    let descs = if cx.prev.is_some_and(|p| cx.text(p) == "of") && cx.expects(Rule::string) {
        Descs(vec![Desc::new(
            "a choice in double quotes",
            "a choice in double quotes",
            &[],
        )])
    } else {
        descs
    };
    if (cx.expects(Rule::becomes) || cx.expects(Rule::k_becomes)) && !unfinished {
        return trigger_error(cx);
    }
    let help = help_for(cx, statement, unfinished);
    // With a did-you-mean, the groups' keyword lists are noise.
    let listed = if help.as_ref().is_some_and(|h| h.starts_with("did you mean")) {
        descs.short()
    } else {
        descs.long()
    };
    let (span, message, label) = match cx.prev {
        Some(prev) if unfinished => {
            let after = match cx.text(prev) {
                "of" => "`one of`".to_string(),
                _ if prev.kind == Kind::Str || cx.text(prev).contains('`') => "this".to_string(),
                text => format!("`{text}`"),
            };
            (
                prev.span,
                format!("expected {} after {after}, found {found}", join_or(&listed)),
                format!("expected {} after this", join_or(&descs.short())),
            )
        }
        _ => {
            let span = if cx.found.kind == Kind::End {
                Span::new(cx.at, cx.at)
            } else {
                cx.found.span
            };
            let message = if descs.is_empty() {
                format!("unexpected {found}")
            } else {
                format!("expected {}, found {found}", join_or(&listed))
            };
            let short = descs.short();
            let label = if short.is_empty() {
                "unexpected here".to_string()
            } else if short.len() <= 4 {
                format!("expected {}", join_or(&short))
            } else {
                "not valid here".to_string()
            };
            (span, message, label)
        }
    };
    let d = cx.error(Code::H001, span, message, label);
    match help {
        Some(h) => d.with_help(h),
        None => d,
    }
}

// -------------------------------------------------------------- helps ---

/// A did-you-mean for a misspelled word, else a hint for the construct.
fn help_for(cx: &Cx<'_>, statement: Option<&str>, unfinished: bool) -> Option<String> {
    let src = cx.src;
    let found = cx.text(cx.found);
    let expected = &cx.expected;
    let has = |r: Rule| expected.contains(&r);
    let is_expr = expected.iter().any(|r| {
        use Rule::*;
        matches!(
            r,
            expr | or_expr
                | and_expr
                | not_expr
                | comparison
                | sum
                | product
                | unary
                | paren
                | list_lit
                | duration
                | name
        )
    });

    let prev_text = cx.prev.map(|p| cx.text(p)).unwrap_or("");
    let same_line = cx
        .prev
        .is_some_and(|p| cx.found.kind != Kind::End && cx.line(p.span.end) == cx.line(cx.at));
    if let Some(h) = punctuation_help(cx, statement, prev_text, same_line) {
        return Some(h);
    }

    // When the statement was left unfinished, the found token starts the
    // next line: it is no misspelling of what was expected.
    if cx.found.kind == Kind::Word && !unfinished {
        let words = expected_words(expected);
        if let Some(s) = did_you_mean(found, &words) {
            if s.eq_ignore_ascii_case(found) {
                return Some(format!("keywords and types are lowercase: write `{s}`"));
            }
            return Some(format!("did you mean `{}`?", statement_name(s)));
        }
        let starts_line = first_token(src, line_start(src, cx.site.start, cx.at))
            .is_some_and(|t| t.span.start == cx.at);
        if let Some(name) = STATEMENT_WORDS.iter().find(|w| **w == found && starts_line) {
            if let Some(h) = wrong_place(name) {
                return Some(h);
            }
        }
    }
    let line_text = |offset: usize| {
        let ls = line_start(src, cx.site.start, offset);
        src[ls..]
            .split(['\n', '\r'])
            .next()
            .unwrap_or("")
            .split(" #")
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    };

    if has(Rule::time_unit) && (prev_text == "business" || statement == Some("task")) {
        let n = if cx.prev.is_some_and(|p| p.kind == Kind::Number) {
            prev_text
        } else {
            "2"
        };
        return Some(format!(
            "give a unit after the number: `due in {n} days`, `due in {n} business days` or `due in {n} hours`"
        ));
    }
    if has(Rule::number) && expected.len() <= 2 {
        if let Some(n) = number_word(found) {
            let rest = src[cx.found.span.end..]
                .split(['\n', '#'])
                .next()
                .unwrap_or("")
                .trim();
            let rest = if rest.is_empty() { "days" } else { rest };
            return Some(format!("write the number in digits: `due in {n} {rest}`"));
        }
        return Some(
            "write the number in digits, for example `due in 2 business days`".to_string(),
        );
    }
    if has(Rule::date_lit) && !has(Rule::string) {
        if let Some(iso) = us_date(found) {
            return Some(format!("write dates as YEAR-MONTH-DAY: `{iso}`"));
        }
        return Some("write dates as YEAR-MONTH-DAY, for example `2026-12-25`".to_string());
    }
    if has(Rule::field_type) || has(Rule::scalar_type) {
        return Some("field types are `text`, `number`, `money`, `date`, `datetime`, `email`, `user`, `yes/no`, `list of …` and `one of \"A\", \"B\"`".to_string());
    }
    if has(Rule::colon) {
        let name = if prev_text.is_empty() {
            "amount"
        } else {
            prev_text
        };
        let rest = if cx.found.kind == Kind::Word {
            found
        } else {
            "text"
        };
        return Some(format!(
            "a field reads `name: type`: write `{name}: {rest}`"
        ));
    }
    if has(Rule::equals) && cx.prev.is_some() {
        if statement == Some("field") || statement.is_none() {
            return Some("write `=` between the name and its value".to_string());
        }
        let line = line_text(cx.prev.map_or(cx.at, |p| p.span.start));
        if let Some(p) = cx.prev {
            if cx.found.kind == Kind::Word
                && p.kind == Kind::Word
                && cx.line(p.span.end) == cx.line(cx.at)
                && statement != Some("brief")
            {
                return Some(format!("a name is one word: write `{prev_text}_{found}`"));
            }
            let ls = line_start(src, cx.site.start, p.span.start);
            let head = src[ls..p.span.end].trim_start();
            let tail = line.strip_prefix(head).unwrap_or("").trim();
            if !tail.is_empty() && cx.line(p.span.end) == cx.line(cx.at) {
                return Some(format!(
                    "write `=` between the name and its value: `{head} = {tail}`"
                ));
            }
        }
        return Some("write `=` between the name and its value".to_string());
    }
    if has(Rule::lbrace) && expected.len() == 1 {
        if let Some(p) = cx.prev {
            let same_line = cx.line(p.span.end) == cx.line(cx.at);
            if same_line
                && cx.found.kind == Kind::Word
                && p.kind == Kind::Word
                && matches!(statement, Some("object" | "calendar"))
            {
                return Some(format!("a name is one word: write `{prev_text}_{found}`"));
            }
            let ls = line_start(src, cx.site.start, p.span.start);
            let head = src[ls..p.span.end].trim_start();
            let block = statement.map_or("block", statement_name);
            if same_line {
                let rest = line_text(cx.at);
                let rest = rest.strip_prefix(head).unwrap_or(&rest).trim();
                return Some(format!(
                    "put what belongs to `{block}` between `{{` and `}}`: `{head} {{ {rest} }}`"
                ));
            }
            return Some(format!(
                "start the `{block}` block with `{{` at the end of the line: `{head} {{`"
            ));
        }
    }
    if has(Rule::clock_time) && cx.found.kind == Kind::Number && !found.contains(':') {
        let lower = found.to_lowercase();
        let (digits, pm) = match (lower.strip_suffix("am"), lower.strip_suffix("pm")) {
            (Some(d), _) => (d.to_string(), false),
            (_, Some(d)) => (d.to_string(), true),
            _ => (lower.clone(), false),
        };
        if let Ok(h) = digits.parse::<u32>() {
            let h = if pm && h < 12 { h + 12 } else { h };
            return Some(format!(
                "write times as hours and minutes on a 24-hour clock: `{h}:00`"
            ));
        }
        return Some(
            "write times as hours and minutes on a 24-hour clock, such as `9:00` or `17:30`"
                .to_string(),
        );
    }
    if has(Rule::string) {
        if let Some(h) = string_help(cx, statement, unfinished) {
            return Some(h);
        }
    }
    if is_literal_only(expected) && expected.len() > 1 {
        return Some(
            "write the value, such as `\"Closed Won\"`, `yes`, `100` or `2026-12-25`".to_string(),
        );
    }
    if has(Rule::string) && statement == Some("handoff") && cx.found.kind == Kind::Word {
        let line = line_text(cx.at);
        let name = line
            .strip_prefix("handoff")
            .unwrap_or("")
            .trim()
            .trim_end_matches('{')
            .trim();
        return Some(format!(
            "put the handoff's name in double quotes: `handoff \"{name}\" {{`"
        ));
    }
    if has(Rule::string) && prev_text == "of" {
        return Some(
            "list the choices in double quotes: `one of \"smb\", \"mid\", \"enterprise\"`"
                .to_string(),
        );
    }

    if has(Rule::k_for) && statement == Some("task") {
        return Some("a task reads `task \"Title\" for someone due in 2 days`".to_string());
    }
    if has(Rule::k_for) && statement == Some("draft") {
        return Some("a draft reads `draft email to deal.main_contact for review { subject \"…\" body \"…\" }`".to_string());
    }
    if has(Rule::k_by) {
        let line = line_text(cx.prev.map_or(cx.at, |p| p.span.start));
        return Some(format!(
            "say how to pick the person: `{line} by round robin` or `… by least loaded`"
        ));
    }
    if is_expr {
        return Some(match statement {
            Some("done") => "`done when` needs a condition, for example `done when deal.kickoff_scheduled_at is set`".to_string(),
            Some("resume") => "`resume when` needs a condition, for example `resume when deal.review_approved is yes`".to_string(),
            Some("where") | Some("when") => "`where` needs a condition, for example `where deal.amount > 0`".to_string(),
            Some("exception") => "an exception needs a condition, for example `when deal.custom_scope is yes`".to_string(),
            _ => "write a value such as `deal.amount`, `100` or `\"Closed Won\"`".to_string(),
        });
    }
    if contains_group(expected, &DECLARATIONS) {
        return Some("each declaration starts with `object`, `user`, `team`, `channel`, `calendar` or `handoff`; comments start with `#`".to_string());
    }
    None
}

/// True when only a literal value fits here (after `becomes`, `from`, `to`).
fn is_literal_only(expected: &[Rule]) -> bool {
    !expected.is_empty()
        && expected
            .iter()
            .all(|r| LITERALS.contains(r) || matches!(r, Rule::literal))
}

/// Help for punctuation where it does not belong, and for the habits of
/// other notations (JSON commas, brackets, `:` for `=`, quoted names).
fn punctuation_help(
    cx: &Cx<'_>,
    statement: Option<&str>,
    prev_text: &str,
    same_line: bool,
) -> Option<String> {
    let found = cx.text(cx.found);
    let expects = |r: Rule| cx.expects(r);
    let line = {
        let ls = line_start(cx.src, cx.site.start, cx.at);
        cx.src[ls..]
            .split(['\n', '\r'])
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let block = block_of(cx);
    match (cx.found.kind, found) {
        (Kind::Punct, ":") if expects(Rule::equals) => {
            let fixed = line.replacen(':', " =", 1).replacen("  =", " =", 1);
            return Some(format!("write `=` instead of `:`: `{fixed}`"));
        }
        (Kind::Punct, ",") if !expects(Rule::comma) && block == Some("object") => {
            return Some(
                "remove the `,`: each field goes on its own line, with no commas between fields"
                    .to_string(),
            );
        }
        (Kind::Punct, ",") if !expects(Rule::comma) => {
            return Some("remove this `,`".to_string());
        }
        (Kind::Punct, "[" | "]") if statement == Some("team") => {
            return Some(
                "list the members without brackets: `team delivery = \"ana@example.com\", \"raj@example.com\"`"
                    .to_string(),
            );
        }
        (Kind::Punct, "$" | "€" | "£") => {
            return Some(
                "write amounts as plain numbers, without a currency sign: `50000`".to_string(),
            );
        }
        (Kind::Str, _) if block == Some("object") && expects(Rule::ident) => {
            let name = found.trim_matches('"');
            return Some(format!("field names are not quoted: write `{name}: …`"));
        }
        _ => {}
    }
    // Two items of a list with no `,` between them.
    if expects(Rule::comma) && same_line {
        if let Some(p) = cx.prev {
            if p.kind == cx.found.kind && matches!(p.kind, Kind::Str | Kind::Number) {
                return Some(format!(
                    "separate the items with `,`: `{prev_text}, {found}`"
                ));
            }
        }
    }
    // `notify channel "#delivery" "…"`: the channel's declared name, not its
    // address, goes after `channel`.
    if statement == Some("notify") && line.starts_with("notify channel \"") {
        return Some(
            "name the channel as declared, without quotes: `notify channel delivery_feed \"…\"` for `channel delivery_feed = \"#delivery\"`"
                .to_string(),
        );
    }
    if block == Some("brief") && cx.found.kind == Kind::Word && expects(Rule::k_ask) {
        return Some(format!(
            "a brief line reads `\"Label\" = deal.field`: put the label in double quotes, as in `\"{found}\" = …`"
        ));
    }
    // `50k`, `2.5m`
    if cx.found.kind == Kind::Number {
        let lower = found.to_lowercase();
        let factor = match lower.chars().last() {
            Some('k') => 1_000.0,
            Some('m') => 1_000_000.0,
            _ => 0.0,
        };
        if let Ok(n) = lower[..lower.len() - 1].parse::<f64>() {
            if factor > 0.0 {
                return Some(format!("write the whole number: `{}`", n * factor));
            }
        }
    }
    if expects(Rule::k_is) && statement == Some("when") {
        return Some(format!(
            "a creation trigger reads `when {prev_text} is created`"
        ));
    }
    None
}

/// The kind of the innermost block open at the error.
fn block_of(cx: &Cx<'_>) -> Option<&'static str> {
    open_blocks(cx.src, cx.site.scan, cx.site.start, cx.at)
        .last()
        .map(|b| b.kind)
}

/// What goes in the quotes a statement needs.
fn string_help(cx: &Cx<'_>, statement: Option<&str>, unfinished: bool) -> Option<String> {
    let src = cx.src;
    // The rest of the line, as the author wrote it, is usually the text
    // they meant to quote.
    let rest = || {
        let r = src[cx.at..]
            .split(['\n', '\r'])
            .next()
            .unwrap_or("")
            .split(" #")
            .next()
            .unwrap_or("")
            .trim();
        (!r.is_empty() && !unfinished && cx.found.kind != Kind::Punct).then(|| r.to_string())
    };
    let head = || {
        let end = cx.prev.map_or(cx.at, |p| p.span.end);
        let ls = line_start(src, cx.site.start, end);
        src[ls..end].trim().to_string()
    };
    Some(match statement? {
        "user" => format!(
            "give the user's email in double quotes: `{} \"{}\"`",
            head(),
            rest().unwrap_or_else(|| "maya@example.com".to_string())
        ),
        "channel" => format!(
            "give the channel in double quotes: `{} \"{}\"`",
            head(),
            rest().unwrap_or_else(|| "#delivery".to_string())
        ),
        "timezone" => {
            "give the time zone in double quotes: `timezone \"America/New_York\"`".to_string()
        }
        "notify" | "ask" | "subject" | "body" => format!(
            "write the text in double quotes: `{} \"{}\"`",
            head(),
            rest().unwrap_or_else(|| "…".to_string())
        ),
        "exception" => {
            "give the exception a name in double quotes: `exception \"Custom Scope\" when …`"
                .to_string()
        }
        "task" => "give the task a title in double quotes: `task \"Kickoff\" for …`".to_string(),
        "checklist" => {
            "write each item in double quotes: `checklist \"Confirm scope\", \"Book the call\"`"
                .to_string()
        }
        _ => return None,
    })
}

/// Where a statement keyword found in the wrong place belongs.
fn wrong_place(word: &str) -> Option<String> {
    let name = statement_name(word);
    if ACTION_WORDS.contains(&word) {
        return Some(format!(
            "`{name}` is an action: it goes inside `then {{ … }}`, `if missing {{ … }}` or `on exception {{ … }}`"
        ));
    }
    if HANDOFF_WORDS.contains(&word) {
        return Some(format!("`{name}` goes directly inside a `handoff` block"));
    }
    match word {
        "checklist" | "attach" => Some(format!(
            "`{name}` goes inside a task's block: `task \"…\" for someone {{ {name} … }}`"
        )),
        "ask" => Some("`ask` goes inside a `brief` block".to_string()),
        "resume" => Some("`resume when` goes inside an `on exception` block".to_string()),
        "subject" | "body" => Some(format!("`{word}` goes inside a `draft email` block")),
        "workdays" | "timezone" | "holidays" | "hours" => {
            Some(format!("`{word}` goes inside a `calendar` block"))
        }
        _ => None,
    }
}

/// The closest candidate to a misspelled word, when one is clearly closest.
fn did_you_mean<'c>(found: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let f = found.to_lowercase();
    if f.chars().count() < 2 {
        return None;
    }
    // An abbreviation (`mon`, `fri`, `num`) of exactly one candidate.
    let mut prefixed = candidates
        .iter()
        .filter(|c| f.chars().count() >= 3 && c.starts_with(f.as_str()) && **c != f);
    if let (Some(c), None) = (prefixed.next(), prefixed.next()) {
        return Some(c);
    }
    let mut best: Vec<(&str, usize)> = Vec::new();
    for &c in candidates {
        let d = strsim::damerau_levenshtein(&f, c);
        let allowed = match c.chars().count() {
            0..=3 => 1,
            4..=8 => 2,
            _ => 3,
        };
        if d > allowed || d >= f.chars().count().max(c.chars().count()) {
            continue;
        }
        match best.first() {
            Some(&(_, b)) if d > b => {}
            Some(&(_, b)) if d == b => best.push((c, d)),
            _ => best = vec![(c, d)],
        }
    }
    let (first, _) = *best.first()?;
    // A tie is only fine between forms of one word (`day`, `days`).
    let clear = best
        .iter()
        .all(|(c, _)| c.starts_with(first) || first.starts_with(c));
    (clear && first != found).then_some(first)
}

/// `two` → `2`, for `due in two days`.
fn number_word(word: &str) -> Option<u32> {
    const WORDS: [&str; 13] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve",
    ];
    let w = word.to_lowercase();
    WORDS.iter().position(|x| *x == w).map(|n| n as u32)
}

/// `12/25/2026` → `2026-12-25`, when it reads as a month/day/year date.
fn us_date(text: &str) -> Option<String> {
    let mut parts = text.split('/');
    let (m, d, y) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 {
        return None;
    }
    let (m, d): (u32, u32) = (m.parse().ok()?, d.parse().ok()?);
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then(|| format!("{y}-{m:02}-{d:02}"))
}

// ------------------------------------------------------- descriptions ---

/// The keyword a keyword rule matches.
pub(crate) fn keyword_text(rule: Rule) -> Option<&'static str> {
    use Rule::*;
    Some(match rule {
        k_and => "and",
        k_ask => "ask",
        k_assign => "assign",
        k_attach => "attach",
        k_becomes => "becomes",
        k_body => "body",
        k_brief => "brief",
        k_business => "business",
        k_by => "by",
        k_calendar => "calendar",
        k_changes => "changes",
        k_channel => "channel",
        k_checklist => "checklist",
        k_contains => "contains",
        k_created => "created",
        k_done => "done",
        k_draft => "draft",
        k_due => "due",
        k_email => "email",
        k_empty => "empty",
        k_exception => "exception",
        k_for => "for",
        k_from => "from",
        k_handoff => "handoff",
        k_holidays => "holidays",
        k_hours => "hours",
        k_if => "if",
        k_in => "in",
        k_is => "is",
        k_least => "least",
        k_list => "list",
        k_loaded => "loaded",
        k_missing => "missing",
        k_not => "not",
        k_notify => "notify",
        k_now => "now",
        k_object => "object",
        k_of => "of",
        k_on => "on",
        k_one => "one",
        k_or => "or",
        k_pause => "pause",
        k_require => "require",
        k_resume => "resume",
        k_review => "review",
        k_robin => "robin",
        k_round => "round",
        k_script => "script",
        k_set => "set",
        k_subject => "subject",
        k_task => "task",
        k_team => "team",
        k_then => "then",
        k_timezone => "timezone",
        k_to => "to",
        k_today => "today",
        k_user => "user",
        k_when => "when",
        k_where => "where",
        k_workdays => "workdays",
        _ => return None,
    })
}

/// How an expected rule reads to an author: in a message, in a short label,
/// and the words to compare a misspelling with.
struct Desc {
    long: String,
    short: String,
    words: Vec<&'static str>,
}

impl Desc {
    fn new(long: &str, short: &str, words: &[&'static str]) -> Self {
        Desc {
            long: long.to_string(),
            short: short.to_string(),
            words: words.to_vec(),
        }
    }
}

/// A list of descriptions, to join with "or".
struct Descs(Vec<Desc>);

impl Descs {
    fn long(&self) -> Vec<String> {
        self.0.iter().map(|d| d.long.clone()).collect()
    }
    fn short(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for d in &self.0 {
            if !out.contains(&d.short) {
                out.push(d.short.clone());
            }
        }
        out
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

const FIELD_TYPES: [&str; 10] = [
    "text", "number", "money", "date", "datetime", "email", "user", "yes/no", "list", "one",
];
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const TIME_UNITS: [&str; 8] = [
    "days", "day", "hours", "hour", "minutes", "minute", "weeks", "week",
];

/// What one rule looks like to an author. `statement` is the keyword of the
/// statement being parsed, to say "a condition" rather than "a value".
fn describe(rule: Rule, statement: Option<&str>) -> Desc {
    use Rule::*;
    if let Some(k) = keyword_text(rule) {
        let text = format!("`{}`", statement_name(k));
        return Desc {
            long: text.clone(),
            short: text,
            words: vec![k],
        };
    }
    match rule {
        field_decl => Desc::new("a field such as `amount: money`", "a field", &[]),
        field_type | list_type | one_of_type | scalar_type => Desc::new(
            "a field type such as `text`, `money` or `one of \"A\", \"B\"`",
            "a field type",
            &FIELD_TYPES,
        ),
        ident if matches!(statement, Some("object" | "field")) => {
            Desc::new("a field such as `amount: money`", "a field", &[])
        }
        ident => Desc::new("a name", "a name", &[]),
        member => Desc::new(
            "a team member (an email in double quotes, or a user's name)",
            "a team member",
            &[],
        ),
        workdays => Desc::new("`workdays`", "`workdays`", &["workdays"]),
        weekday => Desc::new("a day such as `monday`", "a day", &WEEKDAYS),
        timezone => Desc::new("`timezone`", "`timezone`", &["timezone"]),
        holidays => Desc::new("`holidays`", "`holidays`", &["holidays"]),
        work_hours => Desc::new("`hours`", "`hours`", &["hours"]),
        clock_time => Desc::new("a time such as `9:00`", "a time", &[]),
        created_trigger | field_trigger => Desc::new(
            "a trigger such as `deal.stage becomes \"Closed Won\"`",
            "a trigger",
            &[],
        ),
        becomes => Desc::new("`becomes`", "`becomes`", &["becomes"]),
        changes => Desc::new("`changes`", "`changes`", &["changes"]),
        where_clause => Desc::new("`where`", "`where`", &["where"]),
        field_ref => Desc::new("a field name", "a field name", &[]),
        script => Desc::new("`script`", "`script`", &["script"]),
        resume_when => Desc::new("`resume when`", "`resume when`", &["resume"]),
        brief_field => Desc::new(
            "a brief line such as `\"Client\" = deal.name`",
            "a brief line",
            &[],
        ),
        ask => Desc::new("`ask`", "`ask`", &["ask"]),
        assign_team => Desc::new("`from team`", "`from team`", &["from"]),
        assign_to => Desc::new("`to`", "`to`", &["to"]),
        strategy | round_robin | least_loaded => Desc::new(
            "`round robin` or `least loaded`",
            "`round robin` or `least loaded`",
            &["round", "least"],
        ),
        due => Desc::new("`due`", "`due`", &["due"]),
        time_unit => Desc::new(
            "a time unit (`minutes`, `hours`, `days` or `weeks`)",
            "a time unit",
            &TIME_UNITS,
        ),
        task_body => Desc::new("`{`", "`{`", &[]),
        checklist => Desc::new("`checklist`", "`checklist`", &["checklist"]),
        attach_brief => Desc::new("`attach brief`", "`attach brief`", &["attach"]),
        notify_channel => Desc::new("`channel`", "`channel`", &["channel"]),
        email_subject => Desc::new("`subject`", "`subject`", &["subject"]),
        email_body => Desc::new("`body`", "`body`", &["body"]),
        reference => Desc::new(
            "a person, role or field such as `deal.owner`",
            "a person",
            &[],
        ),
        path => Desc::new("a field such as `deal.stage`", "a field", &[]),
        expr | or_expr | and_expr | not_expr | comparison | sum | product | unary | paren
        | list_lit | duration | name => match statement {
            Some("done" | "resume" | "where" | "when" | "exception") => Desc::new(
                "a condition such as `deal.amount > 0`",
                "a condition",
                &["not", "today", "now", "yes", "no"],
            ),
            _ => Desc::new(
                "a value such as `deal.amount`, `100` or `\"Closed Won\"`",
                "a value",
                &["not", "today", "now", "yes", "no"],
            ),
        },
        compare_tail | compare_op => Desc::new("a comparison such as `>`", "a comparison", &[]),
        is_tail => Desc::new("`is`", "`is`", &["is"]),
        in_tail => Desc::new("`in`", "`in`", &["in"]),
        contains_tail => Desc::new("`contains`", "`contains`", &["contains"]),
        add_op | mul_op => Desc::new("an operator such as `+`", "an operator", &[]),
        literal | neg_number | boolean | datetime_lit => Desc::new(
            "a value such as `\"Closed Won\"`, `yes` or `100`",
            "a value",
            &["yes", "no"],
        ),
        number => Desc::new("a number such as `2`", "a number", &[]),
        date_lit => Desc::new("a date such as `2026-12-25`", "a date", &[]),
        // After a field's type, the optional label.
        string if statement == Some("field") => {
            Desc::new("a label in double quotes", "a label in double quotes", &[])
        }
        string | string_part | text_chunk | escape => {
            Desc::new("text in double quotes", "text in double quotes", &[])
        }
        interpolation | lbrace => Desc::new("`{`", "`{`", &[]),
        rbrace => Desc::new("`}`", "`}`", &[]),
        equals => Desc::new("`=`", "`=`", &[]),
        colon => Desc::new("`:`", "`:`", &[]),
        comma => Desc::new("`,`", "`,`", &[]),
        EOI => Desc::new("the end of the file", "the end of the file", &[]),
        _ => Desc::new("more input", "more input", &[]),
    }
}

const HANDOFF_STATEMENTS: [Rule; 8] = [
    Rule::k_when,
    Rule::k_require,
    Rule::k_if,
    Rule::k_exception,
    Rule::k_on,
    Rule::k_brief,
    Rule::k_then,
    Rule::k_done,
];
const DECLARATIONS: [Rule; 6] = [
    Rule::k_object,
    Rule::k_user,
    Rule::k_team,
    Rule::k_channel,
    Rule::k_calendar,
    Rule::k_handoff,
];
const ACTIONS: [Rule; 6] = [
    Rule::k_assign,
    Rule::k_task,
    Rule::k_notify,
    Rule::k_draft,
    Rule::k_set,
    Rule::k_pause,
];
/// Literal rules that read as one "value" when several are expected.
const LITERALS: [Rule; 6] = [
    Rule::datetime_lit,
    Rule::date_lit,
    Rule::number,
    Rule::string,
    Rule::boolean,
    Rule::neg_number,
];
/// What may follow a value in an expression: folded into one phrase, since
/// listing them all drowns the alternatives that matter.
const OPERATORS: [Rule; 9] = [
    Rule::k_and,
    Rule::k_or,
    Rule::compare_op,
    Rule::add_op,
    Rule::mul_op,
    Rule::k_is,
    Rule::k_in,
    Rule::k_contains,
    Rule::k_not,
];

/// A statement rule stands for the keyword that starts it, so that groups
/// fold the same whichever pest reports.
fn lead_keyword(rule: Rule) -> Rule {
    use Rule::*;
    match rule {
        object_decl => k_object,
        user_decl => k_user,
        team_decl => k_team,
        channel_decl => k_channel,
        calendar_decl => k_calendar,
        handoff_decl => k_handoff,
        trigger => k_when,
        require => k_require,
        if_missing => k_if,
        exception => k_exception,
        on_exception => k_on,
        brief => k_brief,
        then_block => k_then,
        done_when => k_done,
        assign => k_assign,
        task => k_task,
        notify => k_notify,
        draft_email => k_draft,
        set_action => k_set,
        pause => k_pause,
        compare_tail => compare_op,
        is_tail => k_is,
        in_tail => k_in,
        contains_tail => k_contains,
        other => other,
    }
}

/// The expected rules, normalized, with `}` and the end of file last.
fn normalize(expected: &[Rule]) -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::new();
    // At the top level pest names the whole rule; say what starts one.
    let expanded = expected.iter().flat_map(|r| match r {
        Rule::single_declaration | Rule::file => DECLARATIONS.to_vec(),
        other => vec![lead_keyword(*other)],
    });
    for r in expanded {
        if !rules.contains(&r) {
            rules.push(r);
        }
    }
    rules.sort_by_key(|r| matches!(r, Rule::rbrace | Rule::EOI));
    rules
}

fn contains_group(expected: &[Rule], group: &[Rule]) -> bool {
    group.iter().all(|r| expected.contains(r))
}

/// Every keyword or word the expected rules could have matched, for
/// did-you-mean.
fn expected_words(expected: &[Rule]) -> Vec<&'static str> {
    let mut words = Vec::new();
    for r in expected {
        for w in describe(*r, None).words {
            if !words.contains(&w) {
                words.push(w);
            }
        }
    }
    words
}

/// Describes every expected rule, folding the usual groups into one phrase.
fn describe_all(expected: &[Rule], statement: Option<&str>) -> Descs {
    let mut rules: Vec<Rule> = expected.to_vec();
    let mut out = Vec::new();
    let groups: [(&[Rule], &str, &str, &[&'static str]); 3] = [
        (
            &DECLARATIONS,
            "a declaration (`object`, `user`, `team`, `channel`, `calendar` or `handoff`)",
            "a declaration",
            &["object", "user", "team", "channel", "calendar", "handoff"],
        ),
        (
            &HANDOFF_STATEMENTS,
            "a handoff statement (`when`, `require`, `if missing`, `exception`, `on exception`, `brief`, `then` or `done when`)",
            "a handoff statement",
            &HANDOFF_WORDS,
        ),
        (
            &ACTIONS,
            "an action (`assign`, `task`, `notify`, `draft email`, `set` or `pause`)",
            "an action",
            &ACTION_WORDS,
        ),
    ];
    for (group, long, short, words) in groups {
        if contains_group(&rules, group) {
            rules.retain(|r| !group.contains(r));
            out.push(Desc::new(long, short, words));
        }
    }
    if LITERALS.iter().filter(|r| rules.contains(r)).count() >= 2 {
        rules.retain(|r| !LITERALS.contains(r));
        out.push(describe(Rule::literal, statement));
    }
    if OPERATORS.iter().filter(|r| rules.contains(r)).count() >= 3 {
        // Name the first few operators that really fit here.
        let examples: Vec<String> = [
            (Rule::k_and, "and"),
            (Rule::k_or, "or"),
            (Rule::k_is, "is"),
            (Rule::compare_op, ">"),
            (Rule::k_in, "in"),
            (Rule::k_contains, "contains"),
            (Rule::add_op, "+"),
            (Rule::mul_op, "*"),
        ]
        .iter()
        .filter(|(r, _)| rules.contains(r))
        .take(4)
        .map(|(_, op)| format!("`{op}`"))
        .collect();
        rules.retain(|r| !OPERATORS.contains(r));
        out.push(Desc::new(
            &format!("an operator such as {}", join_or(&examples)),
            "an operator",
            &["and", "or", "is", "in", "not", "contains"],
        ));
    }
    for r in rules {
        let d = describe(r, statement);
        if !out.iter().any(|o| o.long == d.long) {
            out.push(d);
        }
    }
    Descs(out)
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_what_an_author_sees() {
        let src = "a yes/no 2026-13-45, 9:00 \"x {y \"z\"} w\" >= 'q' “r” -5";
        let mut at = 0;
        let mut seen = Vec::new();
        while at < src.len() {
            if src[at..].starts_with(' ') {
                at += 1;
                continue;
            }
            let t = token_at(src, at);
            seen.push(t.text(src).to_string());
            at = t.span.end;
        }
        assert_eq!(
            seen,
            [
                "a",
                "yes/no",
                "2026-13-45",
                ",",
                "9:00",
                "\"x {y \"z\"} w\"",
                ">=",
                "'q'",
                "“r”",
                "-",
                "5"
            ]
        );
    }

    #[test]
    fn previous_token_skips_comments() {
        let src = "a = b # note\n  # more\n  c";
        let scan = super::super::lexical::scan(src);
        let t = prev_token(src, &scan, 0, src.len() - 1).map(|t| t.text(src));
        assert_eq!(t, Some("b"));
        assert!(prev_token(src, &scan, 4, 4).is_none());
    }

    #[test]
    fn did_you_mean_needs_a_clear_winner() {
        assert_eq!(
            did_you_mean("requre", &["require", "when"]),
            Some("require")
        );
        assert_eq!(did_you_mean("dayz", &TIME_UNITS), Some("days"));
        assert_eq!(did_you_mean("yes/No", &FIELD_TYPES), Some("yes/no"));
        assert_eq!(did_you_mean("xyz", &["require"]), None);
        // `of` is as close to `on` as to `or`: no suggestion.
        assert_eq!(did_you_mean("of", &["on", "or"]), None);
    }

    #[test]
    fn unclosed_interpolation_is_found() {
        assert_eq!(unclosed_interpolation("\"a {b c\""), Some(3));
        assert_eq!(unclosed_interpolation("\"a {b} c"), None);
    }

    #[test]
    fn us_dates_convert() {
        assert_eq!(us_date("12/25/2026").as_deref(), Some("2026-12-25"));
        assert_eq!(us_date("25/12/2026"), None);
    }
}
