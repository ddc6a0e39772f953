//! The line printer under the formatter: indentation, blank lines and,
//! above all, comments.
//!
//! The syntax tree does not hold comments; the file keeps them as a flat list
//! with spans. The printer walks that list with a cursor while the layout code
//! emits lines in source order, and places each comment by where it sat in
//! the source:
//!
//! - a comment with code before it on its line is *trailing*: it follows the
//!   line of the item that ends there, after two spaces;
//! - any other comment is emitted on its own line before the next line of
//!   code, at that line's indentation; one inside a construct that is printed
//!   differently (a wrapped list, a statement broken over lines) moves to just
//!   before the construct;
//! - what is left before a `}` goes above it, at the block's inner
//!   indentation, and what is left at the end of the file ends the file.
//!
//! Because the cursor only moves forward and every comment is emitted once,
//! comments can move but are never lost or reordered.

use crate::syntax::ast::{Comment, Span};

/// Spaces per indentation level.
pub(super) const INDENT: usize = 2;
/// The column limit for lists that may wrap.
pub(super) const WIDTH: usize = 100;

/// Whether the next line may be preceded by a blank line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blank {
    /// Never: at the start of the file, after `{`, before `}`.
    Never,
    /// Exactly when the source had at least one blank line there.
    Source,
    /// Always: between top-level declarations.
    Always,
}

/// Accumulates the formatted text.
pub(super) struct Printer<'a> {
    src: &'a str,
    comments: &'a [Comment],
    /// The first comment not printed yet.
    next: usize,
    out: String,
    /// End of the source text printed last (code or comment), for blank lines.
    last_end: usize,
    blank: Blank,
}

impl<'a> Printer<'a> {
    /// A printer for a file with source `src` and comments `comments` (in
    /// source order, as the parser collects them).
    pub fn new(src: &'a str, comments: &'a [Comment]) -> Self {
        Printer {
            src,
            comments,
            next: 0,
            out: String::new(),
            last_end: 0,
            blank: Blank::Never,
        }
    }

    /// Prints the comments left at the end of the file and returns the text.
    pub fn finish(mut self) -> String {
        self.own_comments(usize::MAX, usize::MAX, 0, false);
        self.out
    }

    /// Makes the next line (a comment or code) follow a blank line.
    pub fn separate(&mut self) {
        self.blank = Blank::Always;
    }

    /// Prints own-line comments that start before `pos`, at `indent`.
    pub fn comments_before(&mut self, pos: usize, indent: usize) {
        self.own_comments(pos, pos, indent, false);
    }

    /// Prints `text` at `indent` as the code for the source range
    /// `start..end`: comments before `end` go above it, a comment right after
    /// `end` on the same source line goes after it.
    ///
    /// `text` may hold several lines; lines after the first are written as
    /// they are (wrapped lists carry their own alignment, scripts are
    /// verbatim).
    pub fn line(&mut self, indent: usize, text: &str, start: usize, end: usize) {
        // A span should end at the construct's last token, but pest's spans
        // take in the whitespace and comments after it (it skips trivia
        // before an optional part that then does not match). Trimming here
        // keeps comments and blank lines right whatever the tree's spans do.
        let end = self.code_end_before(end).max(start);
        self.own_comments(end, start, indent, false);
        self.blank_before(start);
        self.push(indent, text);
        self.trailing(end);
        self.out.push('\n');
        self.last_end = self.last_end.max(end);
    }

    /// Like [`Printer::line`], for the second line of a statement printed
    /// over two lines (`where` under `when`): comments between the two stay
    /// between them, and no blank line separates them.
    pub fn continuation(&mut self, indent: usize, text: &str, start: usize, end: usize) {
        self.own_comments(end, start, indent, true);
        self.blank = Blank::Never;
        self.line(indent, text, start, end);
    }

    /// Prints a `header { ... }` block at `indent`. `span` covers the whole
    /// construct (it ends with the `}`), `brace` is the offset of the `{`,
    /// and `body` prints the items one level deeper. A block with no items
    /// and no comments inside prints as `header {}`.
    pub fn block(
        &mut self,
        indent: usize,
        header: &str,
        span: Span,
        brace: usize,
        has_items: bool,
        body: impl FnOnce(&mut Self),
    ) {
        let close = span.end.saturating_sub(1).max(brace);
        if !has_items && !self.comment_within(brace, close) {
            self.line(indent, &format!("{header} {{}}"), span.start, span.end);
            return;
        }
        self.line(indent, &format!("{header} {{"), span.start, brace + 1);
        self.blank = Blank::Never;
        body(self);
        self.comments_before(close, indent + INDENT);
        self.blank = Blank::Never;
        self.line(indent, "}", close, span.end);
    }

    // ------------------------------------------------- finding source text

    /// The offset of the first `{` at or after `from` outside comments (the
    /// caller starts after the last string of a block's header).
    pub fn brace_after(&self, from: usize) -> usize {
        let bytes = self.src.as_bytes();
        let mut i = from;
        while i < bytes.len() {
            match bytes[i] {
                b'{' => return i,
                b'#' => {
                    i = bytes[i..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(bytes.len(), |p| i + p)
                }
                _ => i += 1,
            }
        }
        from
    }

    /// The offset of the last keyword `word` in `from..to` that is not part
    /// of a longer name, a comment, or one of the `skip` spans (strings).
    pub fn find_keyword(&self, from: usize, to: usize, word: &str, skip: &[Span]) -> Option<usize> {
        let hay = self.src.get(from..to)?;
        let ident = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
        let bytes = self.src.as_bytes();
        hay.rmatch_indices(word).map(|(i, _)| from + i).find(|&at| {
            let end = at + word.len();
            !ident(at.checked_sub(1).and_then(|p| bytes.get(p)))
                && !ident(bytes.get(end))
                && !self.in_comment(at)
                && !skip.iter().any(|s| s.start <= at && at < s.end)
        })
    }

    /// The offset of the next code after `pos`, past whitespace and comments.
    pub fn skip_trivia(&self, mut pos: usize) -> usize {
        loop {
            let rest = self.src.get(pos..).unwrap_or("");
            pos += rest.len() - rest.trim_start().len();
            match self.comment_at(pos) {
                Some(c) if c.span.start == pos => pos = c.span.end,
                _ => return pos,
            }
        }
    }

    /// The end of the code before `pos`, back past whitespace and comments.
    pub fn code_end_before(&self, mut pos: usize) -> usize {
        loop {
            pos = self.src.get(..pos).map_or(pos, |s| s.trim_end().len());
            match pos.checked_sub(1).and_then(|p| self.comment_at(p)) {
                Some(c) => pos = c.span.start,
                None => return pos,
            }
        }
    }

    fn comment_at(&self, offset: usize) -> Option<&Comment> {
        let i = self.comments.partition_point(|c| c.span.end <= offset);
        self.comments.get(i).filter(|c| c.span.start <= offset)
    }

    fn in_comment(&self, offset: usize) -> bool {
        self.comment_at(offset).is_some()
    }

    /// The offset just past the `,` that follows `pos` (over blanks), or
    /// `pos` when no comma follows.
    pub fn after_comma(&self, pos: usize) -> usize {
        let rest = self.src.get(pos..).unwrap_or("");
        let blanks = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        if rest[blanks..].starts_with(',') {
            pos + blanks + 1
        } else {
            pos
        }
    }

    /// True when a comment not printed yet starts inside `from..to`.
    pub fn comment_within(&self, from: usize, to: usize) -> bool {
        self.comments[self.next..]
            .iter()
            .take_while(|c| c.span.start < to)
            .any(|c| c.span.start > from)
    }

    // ------------------------------------------------------------ output

    /// Prints own-line comments starting before `before`. `item_start` is
    /// where the code they precede starts: blank lines are counted only in
    /// the gap before it, so a comment moved out of a construct does not
    /// pick up a blank line from inside it. `tight` forbids blank lines.
    fn own_comments(&mut self, before: usize, item_start: usize, indent: usize, tight: bool) {
        while let Some(c) = self.comments.get(self.next) {
            if c.span.start >= before {
                break;
            }
            if tight {
                self.blank = Blank::Never;
            }
            self.blank_before(c.span.start.min(item_start));
            self.push(indent, c.text.trim_end());
            self.out.push('\n');
            self.last_end = self.last_end.max(c.span.end);
            self.next += 1;
        }
    }

    /// Attaches the next comment to the current line if only spaces separate
    /// it from `end` in the source.
    fn trailing(&mut self, end: usize) {
        let Some(c) = self.comments.get(self.next) else {
            return;
        };
        let between = self.src.get(end..c.span.start);
        if between.is_some_and(|s| s.bytes().all(|b| b == b' ' || b == b'\t')) {
            self.out.push_str("  ");
            self.out.push_str(c.text.trim_end());
            self.last_end = self.last_end.max(c.span.end);
            self.next += 1;
        }
    }

    /// Writes a blank line if the policy (or the source gap before `at`)
    /// asks for one.
    fn blank_before(&mut self, at: usize) {
        let blank = match self.blank {
            Blank::Never => false,
            Blank::Always => true,
            Blank::Source => self.src.get(self.last_end..at).is_some_and(has_blank_line),
        };
        self.blank = Blank::Source;
        if blank {
            self.out.push('\n');
        }
    }

    fn push(&mut self, indent: usize, text: &str) {
        self.out.extend(std::iter::repeat_n(' ', indent));
        self.out.push_str(text);
    }
}

/// True when `gap` holds a line with nothing but whitespace on it.
fn has_blank_line(gap: &str) -> bool {
    let mut after_newline = false;
    for b in gap.bytes() {
        match b {
            b'\n' if after_newline => return true,
            b'\n' => after_newline = true,
            b' ' | b'\t' | b'\r' => {}
            _ => after_newline = false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::has_blank_line;

    #[test]
    fn blank_lines() {
        assert!(has_blank_line("\n\n"));
        assert!(has_blank_line("x\n  \t\r\n  y"));
        assert!(!has_blank_line("\n  y\n"));
        assert!(!has_blank_line(""));
    }
}
