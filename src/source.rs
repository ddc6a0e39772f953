//! Source text and places in it: [`SourceFile`] and [`Span`].
//!
//! The leaf every stage shares. The parser puts spans in the syntax tree,
//! diagnostics point with them into a source file, and later stages carry
//! them along. This module must import nothing from the rest of the crate,
//! so that `syntax` and `diagnostic` can both use it without depending on
//! each other.

use std::sync::Arc;

/// A byte range in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }
    /// True for a zero-length span (a point).
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(s: Span) -> Self {
        (s.start, s.len()).into()
    }
}

/// A source file as loaded: its display name and its text.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as the user gave it (or as found under a directory).
    pub name: String,
    /// The text, as read (no line-ending normalization: spans index it).
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// A source file from its name and text.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Self> {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Arc::new(SourceFile {
            name: name.into(),
            text,
            line_starts,
        })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let before = self.text.get(start..offset);
        let col = before.map_or(offset - start, |s| {
            // A byte-order mark is no column: editors do not show it, so
            // the first line's columns count from after it.
            s.strip_prefix('\u{feff}').unwrap_or(s).chars().count()
        });
        (line + 1, col + 1)
    }
}
