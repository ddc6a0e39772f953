//! Tokens as an author sees them, for quoting in messages: a word (with
//! `yes/no` and `deal.owner` kept whole), a number or date, a string to its
//! closing quote, a quoted thing in the wrong quotes, an operator. Also the
//! walk back to the previous token over whitespace and comments.

use super::*;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
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
pub(super) struct Tok {
    pub(super) kind: Kind,
    pub(super) span: Span,
}

impl Tok {
    pub(super) fn end(at: usize) -> Self {
        Tok {
            kind: Kind::End,
            span: Span::new(at, at),
        }
    }

    pub(super) fn text(self, src: &str) -> &str {
        src.get(self.span.start..self.span.end).unwrap_or("")
    }
}

pub(super) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The token that starts at `at`, never running past its line.
pub(super) fn token_at(src: &str, at: usize) -> Tok {
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
pub(super) fn word_len(line: &str) -> usize {
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
pub(super) fn number_len(line: &str) -> usize {
    let run = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || "_.:/-".contains(c)))
        .unwrap_or(line.len());
    line[..run].trim_end_matches(['.', ':', '/', '-']).len()
}

/// A string to its closing quote, or to the end of the line.
pub(super) fn string_len(line: &str) -> usize {
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
pub(super) fn skip_trivia(src: &str, scan: &Scan, mut at: usize, limit: usize) -> usize {
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
pub(super) fn comment_at(scan: &Scan, offset: usize) -> Option<Span> {
    let i = scan
        .comments
        .partition_point(|c| c.span.start <= offset)
        .checked_sub(1)?;
    let span = scan.comments[i].span;
    (offset < span.end.max(span.start + 1)).then_some(span)
}

/// The last token before `at` and at or after `floor`, skipping whitespace
/// and comments.
pub(super) fn prev_token(src: &str, scan: &Scan, floor: usize, at: usize) -> Option<Tok> {
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
pub(super) fn line_start(src: &str, floor: usize, offset: usize) -> usize {
    let offset = offset.min(src.len());
    src.get(floor..offset)
        .and_then(|s| s.rfind('\n'))
        .map_or(floor.min(offset), |i| floor + i + 1)
}

/// The first token on the line that starts at `line`, if the line has one.
pub(super) fn first_token(src: &str, line: usize) -> Option<Tok> {
    let rest = src.get(line..)?;
    let indent = rest.len() - rest.trim_start_matches([' ', '\t', '\u{feff}']).len();
    let t = token_at(src, line + indent);
    (!matches!(t.kind, Kind::End) && !src[t.span.start..].starts_with(['\n', '\r', '#']))
        .then_some(t)
}

/// How a token is quoted in a message.
pub(super) fn describe_token(src: &str, t: Tok) -> String {
    let text = t.text(src);
    match t.kind {
        Kind::End => "the end of the file".to_string(),
        _ if text.contains('`') => "a backtick".to_string(),
        Kind::Str if text.chars().count() > 40 => "a string".to_string(),
        _ => format!("`{text}`"),
    }
}
