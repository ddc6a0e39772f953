//! Where statements and blocks are: which keyword starts the statement
//! around an offset, which `{` blocks are still open, what each block may
//! contain, and where the next declaration begins.

use super::*;

// ---------------------------------------------------------- statements ---

/// Words that start a statement or declaration. When one of them ends up
/// somewhere the parser takes a name, it was almost always meant to start
/// the next statement.
pub(super) const STATEMENT_WORDS: [&str; 32] = [
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
    "escalate",
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

pub(super) const ACTION_WORDS: [&str; 6] = ["assign", "task", "notify", "draft", "set", "pause"];
pub(super) const HANDOFF_WORDS: [&str; 9] = [
    "when",
    "require",
    "if",
    "exception",
    "on",
    "brief",
    "then",
    "done",
    "escalate",
];

/// A statement keyword as the author writes it.
pub(super) fn statement_name(word: &str) -> &str {
    match word {
        "if" => "if missing",
        "on" => "on exception",
        "done" => "done when",
        "escalate" => "escalate when",
        "resume" => "resume when",
        "draft" => "draft email",
        "attach" => "attach brief",
        other => other,
    }
}

/// The statement keyword that begins the line at `line`: a statement word,
/// or `field` for an object's `name: type` line.
pub(super) fn line_statement(src: &str, line: usize) -> Option<&'static str> {
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
pub(super) fn statement_of(src: &str, floor: usize, offset: usize) -> Option<&'static str> {
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
pub(super) struct Block {
    pub(super) brace: usize,
    pub(super) kind: &'static str,
}

/// The `{` blocks still open at `at`, outermost first, counting from the
/// declaration's start.
pub(super) fn open_blocks(src: &str, scan: &Scan, start: usize, at: usize) -> Vec<Block> {
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
pub(super) fn block_words(kind: &str) -> &'static [&'static str] {
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
pub(super) fn block_allows(kind: &str, word: &str) -> bool {
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
    // A line that continues a condition (`where` under its `when`, `and`
    // or `or` under a condition) belongs to the statement before it: after
    // an error in that statement it is no new one (`where` would read as
    // a typo of `when`, and be reported a second time).
    if matches!(word, "where" | "and" | "or") {
        return None;
    }
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
pub(super) fn declaration_closes(
    src: &str,
    scan: &Scan,
    start: usize,
    at: usize,
    limit: usize,
) -> bool {
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
