//! A light lexical scan that runs before the pest parser.
//!
//! It finds what the grammar cannot describe well in an error message:
//! comments (kept for the formatter), strings and scripts that are never
//! closed, brackets that are never closed, and nesting so deep that the
//! recursive parser could exhaust the stack. It never fails: it only reports.

use super::ast::{Comment, Span};

/// How deep `(`, `[`, `{` and interpolations may nest. Real workflows nest
/// three or four levels; the limit keeps the recursive parser's stack bounded
/// on hostile input. The prefix words `not` and `list` (as in `list of`)
/// recurse in the grammar like a bracket does, so a run of them counts as
/// nesting too: `not not x` is two levels deep, `(not x)` two, `list of list
/// of text` two.
pub const MAX_NESTING: usize = 64;

/// What the scan found.
#[derive(Debug, Default)]
pub struct Scan {
    pub comments: Vec<Comment>,
    /// Opening quotes of strings that reach the end of their line.
    pub unterminated_strings: Vec<Span>,
    /// Opening fences of scripts that reach the end of the file.
    pub unterminated_scripts: Vec<Span>,
    /// Byte ranges of script bodies (fences included): not code.
    pub scripts: Vec<Span>,
    /// The first bracket (or `not` / `list`) that goes past
    /// [`MAX_NESTING`], if any.
    pub too_deep: Option<Span>,
    /// Whether runs of `not` / `list of` counted towards [`Self::too_deep`]
    /// (so that the message can name them even when a bracket crossed the
    /// limit).
    pub too_deep_counts_words: bool,
    /// Every bracket in code, in order: `(offset, byte)`.
    pub brackets: Vec<(usize, u8)>,
}

/// The nesting at the current position: open brackets, plus the runs of
/// prefix words (`not`, `list`) that each open bracket interrupted, plus the
/// run in progress. A run ends at any other token; the part of it that a
/// bracket interrupted stays counted until that bracket closes.
#[derive(Default)]
struct Nesting {
    /// One entry per open bracket: the prefix run it interrupted.
    open: Vec<usize>,
    /// The sum of `open`.
    pinned: usize,
    /// Prefix words since the last other token.
    run: usize,
}

impl Nesting {
    fn level(&self) -> usize {
        self.open.len() + self.pinned + self.run
    }
    fn open(&mut self) {
        self.open.push(self.run);
        self.pinned += self.run;
        self.run = 0;
    }
    fn close(&mut self) {
        if let Some(run) = self.open.pop() {
            self.pinned -= run;
        }
        self.run = 0;
    }
    /// Closes `n` levels at once (an unterminated string's interpolations).
    fn close_many(&mut self, n: usize) {
        for _ in 0..n.min(self.open.len()) {
            self.close();
        }
        self.run = 0;
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Code,
    /// Inside a string that opened at this offset.
    Str(usize),
}

/// Scan `src`.
pub fn scan(src: &str) -> Scan {
    let bytes = src.as_bytes();
    let mut out = Scan::default();
    // The context stack: strings push Str, interpolations push Code.
    let mut ctx = vec![Ctx::Code];
    let mut nesting = Nesting::default();
    let too_deep = |out: &mut Scan, nesting: &Nesting, at: usize, len: usize| {
        if nesting.level() > MAX_NESTING && out.too_deep.is_none() {
            out.too_deep = Some(Span::new(at, at + len));
            out.too_deep_counts_words = nesting.pinned + nesting.run > 0;
        }
    };
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match ctx.last().copied().unwrap_or(Ctx::Code) {
            Ctx::Code => match b {
                b'#' => {
                    let end = memchr_newline(bytes, i);
                    out.comments.push(Comment {
                        text: src[i..end].trim_end_matches('\r').to_string(),
                        span: Span::new(i, end),
                    });
                    i = end;
                    continue;
                }
                b'`' if bytes[i..].starts_with(b"```") => {
                    nesting.run = 0;
                    let body = i + 3;
                    match find(bytes, body, b"```") {
                        Some(close) => {
                            out.scripts.push(Span::new(i, close + 3));
                            i = close + 3;
                        }
                        None => {
                            out.unterminated_scripts.push(Span::new(i, body));
                            out.scripts.push(Span::new(i, bytes.len()));
                            i = bytes.len();
                        }
                    }
                    continue;
                }
                b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'0'..=b'9' => {
                    // A whole word (or number) at once.
                    let end = bytes[i..]
                        .iter()
                        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_'))
                        .map_or(bytes.len(), |p| i + p);
                    match &bytes[i..end] {
                        b"not" | b"list" => {
                            nesting.run += 1;
                            too_deep(&mut out, &nesting, i, end - i);
                        }
                        // `list of`: the `of` continues the run.
                        b"of" => {}
                        _ => nesting.run = 0,
                    }
                    i = end;
                    continue;
                }
                b'"' => {
                    nesting.run = 0;
                    ctx.push(Ctx::Str(i));
                }
                // Strings, interpolations included, end on their line.
                b'\n' if ctx.len() > 1 => {
                    let start = string_start(&ctx);
                    out.unterminated_strings.push(Span::new(start, start + 1));
                    nesting.close_many(ctx.len() / 2);
                    ctx.truncate(1);
                }
                b'{' | b'(' | b'[' => {
                    out.brackets.push((i, b));
                    nesting.open();
                    too_deep(&mut out, &nesting, i, 1);
                }
                b'}' | b')' | b']' => {
                    out.brackets.push((i, b));
                    nesting.close();
                    // Closing an interpolation returns to its string.
                    if b == b'}' && ctx.len() > 1 {
                        ctx.pop();
                    }
                }
                b' ' | b'\t' | b'\r' | b'\n' => {}
                // A byte order mark is whitespace to the grammar.
                0xEF if bytes[i..].starts_with("\u{feff}".as_bytes()) => {
                    i += 3;
                    continue;
                }
                _ => nesting.run = 0,
            },
            Ctx::Str(_) if !matches!(b, b'\\' | b'"' | b'\n' | b'\r' | b'{') => {
                // Plain text: skip to the next byte that matters.
                i = bytes[i..]
                    .iter()
                    .position(|&c| matches!(c, b'\\' | b'"' | b'\n' | b'\r' | b'{'))
                    .map_or(bytes.len(), |p| i + p);
                continue;
            }
            Ctx::Str(start) => match b {
                b'\\' => {
                    i += 2;
                    continue;
                }
                b'"' => {
                    ctx.pop();
                }
                b'\n' | b'\r' => {
                    let start = string_start(&ctx).min(start);
                    out.unterminated_strings.push(Span::new(start, start + 1));
                    nesting.close_many(ctx.len() / 2);
                    ctx.truncate(1);
                }
                b'{' => {
                    out.brackets.push((i, b));
                    nesting.open();
                    too_deep(&mut out, &nesting, i, 1);
                    ctx.push(Ctx::Code);
                }
                _ => {}
            },
        }
        i += 1;
    }
    if ctx.len() > 1 {
        let start = string_start(&ctx);
        out.unterminated_strings.push(Span::new(start, start + 1));
    }
    out
}

/// The offset of the outermost open string.
fn string_start(ctx: &[Ctx]) -> usize {
    ctx.iter()
        .find_map(|c| match c {
            Ctx::Str(s) => Some(*s),
            Ctx::Code => None,
        })
        .unwrap_or(0)
}

fn memchr_newline(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| from + p)
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_outside_strings_only() {
        let s = scan("a \"# not\" # yes\n\"x {y} # z\"");
        assert_eq!(s.comments.len(), 1);
        assert_eq!(s.comments[0].text, "# yes");
    }

    #[test]
    fn unterminated_string_stops_at_line_end() {
        let s = scan("x \"abc\ny \"ok\"");
        assert_eq!(s.unterminated_strings, vec![Span::new(2, 3)]);
    }

    #[test]
    fn open_interpolation_ends_string_at_line_end() {
        let s = scan("h \"X {\n  when \"a\"\n");
        assert_eq!(s.unterminated_strings, vec![Span::new(2, 3)]);
    }

    #[test]
    fn unterminated_script_runs_to_end() {
        let s = scan("script ```\n1 + 1\n");
        assert_eq!(s.unterminated_scripts, vec![Span::new(7, 10)]);
        assert_eq!(s.scripts, vec![Span::new(7, 17)]);
    }

    #[test]
    fn nesting_limit() {
        let deep = "(".repeat(MAX_NESTING + 1);
        assert_eq!(
            scan(&deep).too_deep,
            Some(Span::new(MAX_NESTING, MAX_NESTING + 1))
        );
        assert!(scan(&"(".repeat(MAX_NESTING)).too_deep.is_none());
    }

    #[test]
    fn prefix_words_count_as_nesting() {
        let deep = |src: &str| scan(src).too_deep;
        let n = MAX_NESTING;
        assert!(deep(&format!("{}x", "not ".repeat(n))).is_none());
        let too_many = format!("{}x", "not ".repeat(n + 1));
        assert_eq!(deep(&too_many), Some(Span::new(4 * n, 4 * n + 3)));
        // Comments, line breaks and byte order marks do not end a run.
        assert!(deep(&"not # c\n\u{feff}".repeat(n + 1)).is_some());
        // Any other token does.
        assert!(deep(&"not x and ".repeat(10 * n)).is_none());
        assert!(deep(&"not (x) ".repeat(10 * n)).is_none());
        // A bracket keeps the run before it counted until it closes.
        assert!(deep(&format!("{}x", "not (".repeat(n / 2 + 1))).is_some());
        assert!(deep(&format!("{}x", "not (".repeat(n / 2))).is_none());
        // `list of list of …`.
        assert!(deep(&format!("f: {}text", "list of ".repeat(n))).is_none());
        assert!(deep(&format!("f: {}text", "list of ".repeat(n + 1))).is_some());
        // Inside strings, comments and scripts the words are text.
        let words = "not list ".repeat(n);
        assert!(deep(&format!("\"{words}\" # {words}\n```{words}```")).is_none());
        // Words that merely start with `not` are names.
        assert!(deep(&"notes nothing ".repeat(n)).is_none());
    }

    #[test]
    fn brackets_in_code_and_interpolations_are_recorded() {
        // Error recovery walks these to find the blocks still open.
        let s = scan("a { b \"x {y} (z)\" [c] }");
        let brackets: Vec<(usize, char)> =
            s.brackets.iter().map(|&(o, b)| (o, b as char)).collect();
        assert_eq!(
            brackets,
            [
                (2, '{'),
                (9, '{'),
                (11, '}'),
                (18, '['),
                (20, ']'),
                (22, '}')
            ]
        );
    }
}
