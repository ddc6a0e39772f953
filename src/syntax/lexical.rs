//! A light lexical scan that runs before the pest parser.
//!
//! It finds what the grammar cannot describe well in an error message:
//! comments (kept for the formatter), strings and scripts that are never
//! closed, brackets that are never closed, and nesting so deep that the
//! recursive parser could exhaust the stack. It never fails: it only reports.

use super::ast::{Comment, Span};

/// How deep `(`, `[`, `{` and interpolations may nest. Real workflows nest
/// three or four levels; the limit keeps the recursive parser's stack bounded
/// on hostile input.
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
    /// The first bracket that goes past [`MAX_NESTING`], if any.
    pub too_deep: Option<Span>,
    /// Every bracket in code, in order: `(offset, byte)`.
    pub brackets: Vec<(usize, u8)>,
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
    let mut depth = 0usize;
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
                b'"' => ctx.push(Ctx::Str(i)),
                // Strings, interpolations included, end on their line.
                b'\n' if ctx.len() > 1 => {
                    let start = string_start(&ctx);
                    out.unterminated_strings.push(Span::new(start, start + 1));
                    depth = depth.saturating_sub(ctx.len() / 2);
                    ctx.truncate(1);
                }
                b'{' | b'(' | b'[' => {
                    out.brackets.push((i, b));
                    depth += 1;
                    if depth > MAX_NESTING && out.too_deep.is_none() {
                        out.too_deep = Some(Span::new(i, i + 1));
                    }
                }
                b'}' | b')' | b']' => {
                    out.brackets.push((i, b));
                    depth = depth.saturating_sub(1);
                    // Closing an interpolation returns to its string.
                    if b == b'}' && ctx.len() > 1 {
                        ctx.pop();
                    }
                }
                _ => {}
            },
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
                    depth = depth.saturating_sub(ctx.len() / 2);
                    ctx.truncate(1);
                }
                b'{' => {
                    out.brackets.push((i, b));
                    depth += 1;
                    if depth > MAX_NESTING && out.too_deep.is_none() {
                        out.too_deep = Some(Span::new(i, i + 1));
                    }
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
