//! Turns `.handoff` text into the syntax tree.
//!
//! The file is parsed one declaration at a time so that a syntax error in one
//! declaration does not hide the errors in the next: after an error the parser
//! skips to the next line that starts a declaration and carries on.

use std::sync::Arc;

use pest::Parser as _;

use super::ast::*;
use super::builder::Builder;
use super::errors;
use super::lexical::{self, Scan};
use crate::diagnostic::{Code, Diagnostic};
use crate::source::SourceFile;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/handoff.pest"]
pub(crate) struct Grammar;

/// The result of parsing one file: the declarations that parsed, the file's
/// comments, and a diagnostic for each problem found.
#[derive(Debug)]
pub struct Parsed {
    pub file: File,
    pub diagnostics: Vec<Diagnostic>,
}

/// The keywords that start a declaration; recovery resumes at a line that
/// starts with one of them.
pub(crate) const DECLARATION_KEYWORDS: [&str; 6] =
    ["object", "user", "team", "channel", "calendar", "handoff"];

/// Parses one source file.
pub fn parse(source: &Arc<SourceFile>) -> Parsed {
    let src = source.text.as_str();
    if let Some(at) = lone_carriage_return(src) {
        // Lines ended by CR alone (classic Mac editors) are one line to
        // the grammar: a comment on the first would hide every rule after
        // it and the file would check clean. Refused, naming the fix.
        return Parsed {
            file: File {
                declarations: Vec::new(),
                comments: Vec::new(),
            },
            diagnostics: vec![Diagnostic::error(
                Code::H001,
                source,
                Span::new(at, at + 1),
                "this line ends with a carriage return alone (CR), which does not end a line here".to_string(),
                "CR without LF",
            )
            .with_help("save the file with LF (or CRLF) line endings; most editors offer it under \"line endings\"")],
        };
    }
    let scan = lexical::scan(src);
    let mut diagnostics = Vec::new();
    let mut declarations = Vec::new();

    if let Some(span) = scan.too_deep {
        // Nothing past this point can be parsed safely: report and stop.
        let token = src.get(span.start..span.end);
        let (what, help) = match token {
            Some("not") => (
                "`not`s and brackets",
                "each `not` counts as a level, like a bracket: `not not x` is `x`, and `not (a or b)` is `not a and not b`",
            ),
            Some("list") => (
                "`list of`s",
                "a field holds a list of values; a list of lists is as deep as a field needs",
            ),
            // A bracket crossed the limit, but `not`s counted too.
            _ if scan.too_deep_counts_words => (
                "brackets and `not`s",
                "each `not` counts as a level, like a bracket: `not not x` is `x`, and `not (a or b)` is `not a and not b`",
            ),
            _ => (
                "brackets",
                "split the expression; real rules never need this much nesting",
            ),
        };
        diagnostics.push(
            Diagnostic::error(
                Code::H008,
                source,
                span,
                format!(
                    "{what} nested more than {} levels deep",
                    lexical::MAX_NESTING
                ),
                "too deep",
            )
            .with_help(help),
        );
    }

    let limit = scan
        .too_deep
        .map_or(src.len(), |s| line_start(src, 0, s.start));
    let mut pos = skip_trivia(src, 0);
    let mut newline = None;
    while pos < limit {
        match parse_windowed(
            Rule::single_declaration,
            src,
            &scan,
            pos,
            limit,
            &mut newline,
        ) {
            Ok(mut pairs) => {
                let outer = pairs.next().expect("single_declaration matched");
                let consumed = outer.as_span().end();
                let decl = outer
                    .into_inner()
                    .find(|p| p.as_rule() != Rule::EOI)
                    .expect("a declaration");
                let mut b = Builder::new(source, pos, &scan.comments);
                let built = b.declaration(decl);
                diagnostics.append(&mut b.diagnostics);
                declarations.push(built);
                pos = skip_trivia(src, pos + consumed);
            }
            Err(err) => {
                let at = (pos + errors::error_offset(&err)).min(limit);
                let site = errors::Site {
                    source,
                    scan: &scan,
                    start: pos,
                    at,
                    limit,
                };
                diagnostics.extend(errors::translate(&site, &err));
                diagnostics.extend(recover_statements(source, &scan, pos, at, limit));
                pos = recover(src, &scan, pos, at, limit);
            }
        }
    }

    if declarations.is_empty() && diagnostics.is_empty() {
        // Point at the start: there is no token to point at, and the end of
        // a comment-only file is an empty line after the last comment.
        let message = if scan.comments.is_empty() {
            "this file declares nothing"
        } else {
            "this file declares nothing: it holds only comments"
        };
        diagnostics.push(
            Diagnostic::error(Code::H007, source, Span::new(0, 0), message, "")
                .warning()
                .with_help(
                    "add an `object`, `user`, `team`, `channel`, `calendar` or `handoff` declaration, or delete the file",
                ),
        );
    }

    Parsed {
        file: File {
            declarations,
            comments: scan.comments,
        },
        diagnostics,
    }
}

/// The offset of the first `\r` not followed by `\n`.
fn lone_carriage_return(src: &str) -> Option<usize> {
    let bytes = src.as_bytes();
    bytes
        .iter()
        .enumerate()
        .find(|&(i, &b)| b == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
        .map(|(i, _)| i)
}

/// Parses `rule` at `pos`, in a window of the text that ends at the next
/// line that starts a declaration, widened (doubling) until the parse ends
/// inside it.
///
/// Why: to build an error, pest finds the start of the error's line by
/// scanning back from the *end* of its input, so parsing every declaration
/// with the whole rest of the file makes a file with many errors quadratic.
///
/// The result is the one the whole text would give:
/// - A window ends at a line that begins with a declaration keyword and a
///   name, so the text beyond it starts with a word. A failed parse that
///   would have gone on past the window tried a rule on that word at the
///   window's end; pest reports the furthest such attempt, so the error
///   sits at the window's end, and that widens the window. (Words are only
///   ever matched by rules, which pest records; tokens never span lines, and
///   script bodies, which do, are never window ends.)
/// - A parse that succeeds is kept only when nothing but whitespace and
///   comments lies between its end and the window's end. Otherwise a
///   repetition may have stopped early because the window cut it short
///   (`team t = "a",` with `user …` on the next line takes `user` as a
///   member), so the window widens.
///
/// `newline` caches the first line break at or after the last `pos` (or
/// `limit`): `pos` only grows, and without the cache a file written on one
/// line would be searched to its end once per declaration.
fn parse_windowed<'s>(
    rule: Rule,
    src: &'s str,
    scan: &Scan,
    pos: usize,
    limit: usize,
    newline: &mut Option<usize>,
) -> Result<pest::iterators::Pairs<'s, Rule>, pest::error::Error<Rule>> {
    let nl = match *newline {
        Some(nl) if nl >= pos => nl,
        _ => src[pos..limit].find('\n').map_or(limit, |i| pos + i),
    };
    *newline = Some(nl);
    let mut end = if nl >= limit {
        limit
    } else {
        errors::declaration_line_from(src, scan, nl + 1, limit)
    };
    loop {
        let result = Grammar::parse(rule, &src[pos..end]);
        let complete = end == limit
            || match &result {
                Err(err) => pos + errors::error_offset(err) < end,
                Ok(pairs) => pairs
                    .clone()
                    .next()
                    .is_some_and(|p| skip_trivia(src, pos + p.as_span().end()) >= end),
            };
        if complete {
            return result;
        }
        let mut wider = pos + 2 * (end - pos);
        while wider < limit && !src.is_char_boundary(wider) {
            wider += 1;
        }
        end = if wider >= limit {
            limit
        } else {
            errors::next_declaration_line(src, scan, wider, limit)
        };
    }
}

/// Where to resume after a syntax error at `at` in the declaration that
/// started at `start`: the next line (from the error's line on) that begins a
/// declaration outside a script, or `limit`. When the broken declaration's
/// braces balance before that line, parsing resumes right after its closing
/// brace instead, so that stray text after it is reported too.
fn recover(src: &str, scan: &Scan, start: usize, at: usize, limit: usize) -> usize {
    if scan
        .unterminated_scripts
        .iter()
        .any(|s| s.start >= start && s.start <= at)
    {
        // Everything after an open script is script: nothing to resume at.
        return limit;
    }
    let line = line_start(src, start, at);
    let resume = if line > start && starts_declaration_at(src, scan, line, limit) {
        line
    } else {
        errors::next_declaration_line(src, scan, at, limit)
    };
    if let Some(close) = closing_brace(scan, start, at, resume) {
        let after = skip_trivia(src, close + 1);
        if after < resume {
            return after;
        }
    }
    resume
}

/// At most this many further errors are reported from inside one broken
/// declaration: past that, the author is better served by fixing the first
/// ones and checking again than by a screenful of guesses.
const MAX_ERRORS_PER_DECLARATION: usize = 20;

/// Looks for more errors in the rest of a broken declaration, one statement
/// at a time, so that two typos in one handoff are both reported.
///
/// After an error the parser resumes at the next line, in the same block,
/// that starts one of the block's statements; statements then parse one after
/// another until the block's `}` (and on into the enclosing block) or the next
/// error. This only runs when the declaration's braces balance: when a `}` is
/// missing, the block structure is a guess and so would every later error be.
fn recover_statements(
    source: &Arc<SourceFile>,
    scan: &Scan,
    start: usize,
    first_error: usize,
    limit: usize,
) -> Vec<Diagnostic> {
    let src = source.text.as_str();
    let mut out = Vec::new();
    let in_open_script = scan
        .unterminated_scripts
        .iter()
        .any(|s| s.start >= start && s.start <= first_error);
    let end = errors::next_declaration_line(src, scan, first_error, limit);
    if in_open_script || closing_brace(scan, start, first_error, end).is_none() {
        return out;
    }
    let site = |at: usize| errors::Site {
        source,
        scan,
        start,
        at,
        limit,
    };
    let mut cursor = Brackets::new(scan, start);
    let mut next = Resume::Search(first_error);
    while out.len() < MAX_ERRORS_PER_DECLARATION {
        match next {
            Resume::Search(after) => {
                cursor.advance_to(after);
                let Some((level, brace)) = cursor.innermost_block(src, start) else {
                    break;
                };
                let kind = errors::block_kind(src, start, brace);
                next = match search(src, scan, start, &mut cursor, after, level, kind, end) {
                    Some(n) => n,
                    None => break,
                };
            }
            Resume::Statement(p) => {
                let p = skip_trivia(src, p);
                if p >= end {
                    break;
                }
                cursor.advance_to(p);
                let Some((_, brace)) = cursor.innermost_block(src, start) else {
                    break;
                };
                if src.as_bytes()[p] == b'}' {
                    // This block is done; carry on in the one around it.
                    next = Resume::Statement(p + 1);
                    continue;
                }
                let kind = errors::block_kind(src, start, brace);
                let Some(rule) = statement_rule(kind, src, p) else {
                    out.extend(errors::unexpected_in_block(&site(p), kind));
                    next = Resume::Search(p);
                    continue;
                };
                next = match Grammar::parse(rule, &src[p..end]) {
                    Ok(mut pairs) => match pairs.next().map(|pair| pair.as_span().end()) {
                        Some(len) if len > 0 => Resume::Statement(p + len),
                        _ => Resume::Search(p),
                    },
                    Err(err) => {
                        let at = p + errors::error_offset(&err);
                        if at >= end {
                            // The statement runs on past the declaration:
                            // the first error already says why.
                            break;
                        }
                        out.extend(errors::translate(&site(at), &err));
                        Resume::Search(at)
                    }
                };
            }
        }
    }
    out
}

/// Where statement recovery goes on.
#[derive(Debug, Clone, Copy)]
enum Resume {
    /// Look for the next statement on a line after the one holding this
    /// offset.
    Search(usize),
    /// A statement (or a block's `}`) starts here.
    Statement(usize),
}

/// Finds where the block at bracket depth `level` goes on after the line
/// holding `after`: the next line at that depth that starts one of its
/// statements, or just after the block's `}`.
#[allow(clippy::too_many_arguments)]
fn search(
    src: &str,
    scan: &Scan,
    start: usize,
    cursor: &mut Brackets<'_>,
    after: usize,
    level: usize,
    kind: &str,
    end: usize,
) -> Option<Resume> {
    let mut line = after;
    loop {
        line += src.get(line..end)?.find('\n')? + 1;
        if let Some(close) = cursor.advance_until_below(line, level) {
            return Some(Resume::Statement(close + 1));
        }
        if cursor.depth() == level {
            if let Some(p) = errors::statement_start(src, scan, start, line, kind) {
                return Some(Resume::Statement(p));
            }
        }
    }
}

/// The rule that parses the statement starting at `p` in a `kind` block, by
/// its first word. `None` when the word starts no statement there.
fn statement_rule(kind: &str, src: &str, p: usize) -> Option<Rule> {
    let rest = &src[p..];
    let word = &rest[..rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len())];
    Some(match (kind, word) {
        ("handoff", "when") => Rule::trigger,
        ("handoff", "require") => Rule::require,
        ("handoff", "if") => Rule::if_missing,
        ("handoff", "exception") => Rule::exception,
        ("handoff", "on") => Rule::on_exception,
        ("handoff", "brief") => Rule::brief,
        ("handoff", "then") => Rule::then_block,
        ("handoff", "done") => Rule::done_when,
        ("handoff", "escalate") => Rule::escalate_when,
        ("then" | "if missing" | "on exception", w) => match w {
            "assign" => Rule::assign,
            "task" => Rule::task,
            "notify" => Rule::notify,
            "draft" => Rule::draft_email,
            "set" => Rule::set_action,
            "pause" => Rule::pause,
            "resume" if kind == "on exception" => Rule::resume_when,
            _ => return None,
        },
        ("object", w) if !w.is_empty() => Rule::field_decl,
        ("calendar", "workdays") => Rule::workdays,
        ("calendar", "timezone") => Rule::timezone,
        ("calendar", "holidays") => Rule::holidays,
        ("calendar", "hours") => Rule::work_hours,
        ("brief", "ask") => Rule::ask,
        ("brief", "") if rest.starts_with('"') => Rule::brief_field,
        ("task", "checklist") => Rule::checklist,
        ("task", "attach") => Rule::attach_brief,
        ("draft email", "subject") => Rule::email_subject,
        ("draft email", "body") => Rule::email_body,
        _ => return None,
    })
}

/// A forward-only walk over the brackets of a declaration, keeping the
/// stack of those still open. Recovery only ever moves forward, so one walk
/// serves a whole declaration: linear however many errors it holds.
struct Brackets<'s> {
    brackets: &'s [(usize, u8)],
    next: usize,
    stack: Vec<usize>,
}

impl<'s> Brackets<'s> {
    fn new(scan: &'s Scan, start: usize) -> Self {
        let next = scan.brackets.partition_point(|&(o, _)| o < start);
        Brackets {
            brackets: &scan.brackets,
            next,
            stack: Vec::new(),
        }
    }

    fn depth(&self) -> usize {
        self.stack.len()
    }

    /// Takes in every bracket before `offset`.
    fn advance_to(&mut self, offset: usize) {
        self.advance_until_below(offset, 0);
    }

    /// Takes in the brackets before `offset`, stopping at the first close
    /// that leaves fewer than `level` open; returns that close's offset.
    fn advance_until_below(&mut self, offset: usize, level: usize) -> Option<usize> {
        while let Some(&(o, b)) = self.brackets.get(self.next) {
            if o >= offset {
                break;
            }
            self.next += 1;
            match b {
                b'{' | b'(' | b'[' => self.stack.push(o),
                _ => {
                    self.stack.pop();
                    if self.stack.len() < level {
                        return Some(o);
                    }
                }
            }
        }
        None
    }

    /// The innermost open `{` that opens a block (not an interpolation),
    /// with the depth just inside it.
    fn innermost_block(&self, src: &str, start: usize) -> Option<(usize, usize)> {
        self.stack
            .iter()
            .enumerate()
            .rev()
            .find(|&(_, &o)| src.as_bytes()[o] == b'{' && !errors::is_interpolation(src, start, o))
            .map(|(i, &o)| (i + 1, o))
    }
}

/// True when the line at `line` starts a declaration, outside a script.
fn starts_declaration_at(src: &str, scan: &Scan, line: usize, limit: usize) -> bool {
    !errors::in_script(scan, line) && errors::starts_declaration(&src[line..limit])
}

/// The `}` that closes the first `{` at or after `from`, provided that `{`
/// opens before `at` (the declaration's own block) and closes before `bound`.
fn closing_brace(scan: &Scan, from: usize, at: usize, bound: usize) -> Option<usize> {
    let first = scan.brackets.partition_point(|&(o, _)| o < from);
    let mut depth = 0usize;
    for &(pos, b) in scan.brackets[first..]
        .iter()
        .take_while(|&&(o, _)| o < bound)
    {
        match b {
            b'{' | b'(' | b'[' => {
                if depth == 0 && pos >= at {
                    return None;
                }
                depth += 1;
            }
            _ => {
                if depth == 0 {
                    continue;
                }
                depth -= 1;
                if depth == 0 {
                    return Some(pos);
                }
            }
        }
    }
    None
}

/// The start of the line holding `at`, but not before `floor` (a bounded
/// search: a huge file on one line must not make every error cost O(n)).
fn line_start(src: &str, floor: usize, at: usize) -> usize {
    src[floor..at].rfind('\n').map_or(floor, |i| floor + i + 1)
}

/// Skips whitespace and comments.
fn skip_trivia(src: &str, mut pos: usize) -> usize {
    let bytes = src.as_bytes();
    while pos < bytes.len() {
        match bytes[pos] {
            b' ' | b'\t' | b'\r' | b'\n' => pos += 1,
            b'#' => {
                pos = bytes[pos..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |p| pos + p)
            }
            _ if src[pos..].starts_with('\u{feff}') => pos += 3,
            _ => break,
        }
    }
    pos
}
