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
use crate::diagnostic::{Code, Diagnostic, SourceFile};

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
    let scan = lexical::scan(src);
    let mut diagnostics = Vec::new();
    let mut declarations = Vec::new();

    if let Some(span) = scan.too_deep {
        // Nothing past this point can be parsed safely: report and stop.
        diagnostics.push(
            Diagnostic::error(
                Code::H008,
                source,
                span,
                format!(
                    "brackets nested more than {} levels deep",
                    lexical::MAX_NESTING
                ),
                "too deep",
            )
            .with_help("split the expression; real rules never need this much nesting"),
        );
    }

    let limit = scan
        .too_deep
        .map_or(src.len(), |s| line_start(src, s.start));
    let mut pos = skip_trivia(src, 0);
    while pos < limit {
        let chunk = &src[pos..limit];
        match Grammar::parse(Rule::single_declaration, chunk) {
            Ok(mut pairs) => {
                let outer = pairs.next().expect("single_declaration matched");
                let consumed = outer.as_span().end();
                let decl = outer
                    .into_inner()
                    .find(|p| p.as_rule() != Rule::EOI)
                    .expect("a declaration");
                let mut b = Builder::new(source, pos);
                let built = b.declaration(decl);
                diagnostics.append(&mut b.diagnostics);
                declarations.push(built);
                pos = skip_trivia(src, pos + consumed);
            }
            Err(err) => {
                let at = pos + errors::error_offset(&err);
                diagnostics.push(errors::translate(source, &scan, pos, at, &err));
                pos = recover(src, &scan, pos, at, limit);
            }
        }
    }

    if declarations.is_empty() && diagnostics.is_empty() {
        let end = src.len();
        diagnostics.push(
            Diagnostic::error(
                Code::H007,
                source,
                Span::new(end, end),
                "this file declares nothing",
                "",
            )
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

/// Where to resume after a syntax error at `at` in the declaration that
/// started at `start`: the next line (at or after the error's line) that
/// begins with a declaration keyword outside a script, or `limit`.
fn recover(src: &str, scan: &Scan, start: usize, at: usize, limit: usize) -> usize {
    if scan
        .unterminated_scripts
        .iter()
        .any(|s| s.start >= start && s.start <= at)
    {
        return limit;
    }
    // When the broken declaration's braces balance before the next
    // declaration keyword, resume right after its closing brace so stray
    // text after it is reported too.
    let close = scan.closing_brace(start, at);
    let mut line = line_start(src, at.min(limit));
    loop {
        if line > start && line < limit && !scan.in_script(line) {
            let text = src[line..limit].trim_start_matches([' ', '\t', '\u{feff}']);
            let word_end = text
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(text.len());
            if DECLARATION_KEYWORDS.contains(&&text[..word_end]) {
                let resume = limit - text.len();
                if let Some(close) = close.filter(|&c| c < resume) {
                    let after = skip_trivia(src, close + 1);
                    if after < resume {
                        return after;
                    }
                }
                return resume;
            }
        }
        match src[line..limit].find('\n') {
            Some(nl) => line += nl + 1,
            None => {
                if let Some(close) = close {
                    let after = skip_trivia(src, close + 1);
                    if after < limit {
                        return after;
                    }
                }
                return limit;
            }
        }
    }
}

fn line_start(src: &str, at: usize) -> usize {
    src[..at].rfind('\n').map_or(0, |i| i + 1)
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
