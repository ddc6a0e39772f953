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
//!
//! This file holds the translators, one per kind of mistake, tried in
//! order. Beside it: `tokens` (a token as an author sees it), `layout`
//! (statements, open blocks, where declarations begin), `describe` (grammar
//! rules in words) and `help` (the help line).

use std::sync::Arc;

use pest::error::{Error, ErrorVariant, InputLocation};

use super::ast::Span;
use super::lexical::Scan;
use super::parser::{Rule, DECLARATION_KEYWORDS};
use crate::diagnostic::{Code, Diagnostic};
use crate::source::SourceFile;

mod describe;
mod help;
mod layout;
mod slips;
mod tokens;

pub(crate) use describe::keyword_text;
use describe::*;
use help::*;
use layout::*;
pub(crate) use layout::{
    block_kind, declaration_line_from, in_script, is_interpolation, next_declaration_line,
    starts_declaration, statement_start,
};
use slips::*;
use tokens::*;

/// The byte offset (relative to the parsed slice) where pest failed.
pub(crate) fn error_offset(err: &Error<Rule>) -> usize {
    match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    }
}

/// Where a declaration failed to parse.
pub(crate) struct Site<'a> {
    /// The file being parsed.
    pub source: &'a Arc<SourceFile>,
    /// What the lexical pre-scan found in it.
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
    let d = lookalike_space(&cx)
        .or_else(|| non_ascii_name(&cx))
        .or_else(|| thousands_separator(&cx))
        .or_else(|| hash_comment(&cx))
        .or_else(|| unknown_escape(&cx))
        .or_else(|| code_operators(&cx))
        .or_else(|| business_after_unit(&cx))
        .or_else(|| unreadable_due(&cx))
        .or_else(|| quoted_email(&cx))
        .or_else(|| bare_email(&cx))
        .or_else(|| swallowed_keyword(&cx))
        .or_else(|| missing_brace(&cx))
        .or_else(|| unclosed_bracket(&cx))
        .or_else(|| stray_brace(&cx))
        .or_else(|| quotes(&cx))
        .or_else(|| single_equals(&cx))
        .or_else(|| strategy(&cx))
        .or_else(|| unquoted_value(&cx))
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
        // The author's own condition, with `is` in place of `=`. The line
        // runs to the next line feed: a lone carriage return before the `=`
        // is whitespace to the grammar, so it must not end the line here
        // (the fuzzer found that it did, and the slicing below panicked).
        let ls = line_start(cx.src, cx.site.start, cx.at);
        let line = cx.src[ls..].split('\n').next().unwrap_or("");
        let k = cx.at - ls;
        let fixed = match (line.get(..k), line.get(k + 1..)) {
            (Some(before), Some(after)) => format!("{before}is{after}").replace('\r', " "),
            _ => String::new(),
        };
        let fixed = fixed.split(" #").next().unwrap_or("").trim();
        let help = if fixed.is_empty() {
            "compare with `is` or `==`; a single `=` only gives a value, in `set` and `brief`"
                .to_string()
        } else {
            format!("compare with `is` or `==`: `{fixed}`; a single `=` only gives a value, in `set` and `brief`")
        };
        return Some(
            cx.error(
                Code::H001,
                cx.found.span,
                "expected a comparison such as `is`, `==` or `>`, found `=`".to_string(),
                "`=` does not compare".to_string(),
            )
            .with_help(help),
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
