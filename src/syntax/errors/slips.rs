//! Ordinary slips of a new author, each with a message that names the fix
//! in the author's own words: `due in 3 days business`, a `#channel` that
//! the grammar reads as a comment, an email where a person's name goes, an
//! email left unquoted, a bare word where a quoted value goes.
//!
//! Each translator returns `None` unless the text around the failure is
//! exactly its slip, so the general translators still see everything else.

use super::*;

/// `due in 3 days business`: `business` goes before the unit.
pub(super) fn business_after_unit(cx: &Cx<'_>) -> Option<Diagnostic> {
    let src = cx.src;
    let prev = cx.prev?;
    if cx.found.kind != Kind::Word
        || !cx.text(cx.found).eq_ignore_ascii_case("business")
        || prev.kind != Kind::Word
        || !TIME_UNITS.contains(&cx.text(prev))
        || cx.line(prev.span.end) != cx.line(cx.at)
    {
        return None;
    }
    let number = prev_token(src, cx.site.scan, cx.site.start, prev.span.start)
        .filter(|t| t.kind == Kind::Number)
        .map_or("2", |t| t.text(src));
    let unit = cx.text(prev);
    let written = &src[prev.span.start..cx.found.span.end];
    Some(
        cx.error(
            Code::H001,
            Span::new(prev.span.start, cx.found.span.end),
            format!("expected `business` before the unit, found `{written}`"),
            format!("write `{number} business {unit}`"),
        )
        .with_help(format!(
            "`business` goes between the number and the unit: write `due in {number} business {unit}`"
        )),
    )
}

/// A value that starts with `#` right after the last word the parser took,
/// on the same line: the grammar reads `#renewals` as a comment, so the
/// statement looks unfinished.
pub(super) fn hash_comment(cx: &Cx<'_>) -> Option<Diagnostic> {
    let src = cx.src;
    let prev = cx.prev?;
    let line_end = src[prev.span.end..]
        .find(['\n', '\r'])
        .map_or(src.len(), |i| prev.span.end + i);
    if cx.at < line_end {
        // The parser stopped on this line: no comment swallowed the rest.
        return None;
    }
    let after = &src[prev.span.end..line_end];
    let hash = prev.span.end + (after.len() - after.trim_start().len());
    let tail = src.get(hash..line_end)?;
    let name = tail.strip_prefix('#')?;
    let name_len = name
        .find(|c: char| !(is_word_char(c) || c == '-'))
        .unwrap_or(name.len());
    if name_len == 0 || prev.kind == Kind::Str {
        return None;
    }
    let written = &tail[..1 + name_len];
    let name: String = written[1..]
        .chars()
        .map(|c| if c == '-' { '_' } else { c })
        .collect();
    let span = Span::new(hash, hash + written.len());
    let statement = cx.statement();
    let (expected, help) = if cx.text(prev) == "channel" && statement == Some("notify") {
        (
            "the channel's declared name".to_string(),
            format!(
                "use the channel's declared name: declare `channel {name} = \"{written}\"` and write `notify channel {name} \"…\"`"
            ),
        )
    } else {
        let ls = line_start(src, cx.site.start, prev.span.start);
        let head = src[ls..prev.span.end].trim_start();
        let rest = tail.split(" #").next().unwrap_or(tail).trim_end();
        (
            "text in double quotes".to_string(),
            format!("put it in double quotes: `{head} \"{rest}\"`"),
        )
    };
    Some(
        cx.error(
            Code::H001,
            span,
            format!(
                "expected {expected} after `{}`, found the comment `{written}`",
                cx.text(prev)
            ),
            "`#` starts a comment: the rest of the line is not read".to_string(),
        )
        .with_help(format!("`#` starts a comment; {help}")),
    )
}

/// An email in double quotes where a person goes (`task "…" for
/// "finance@example.com"`): people are declared once as users.
pub(super) fn quoted_email(cx: &Cx<'_>) -> Option<Diagnostic> {
    let text = cx.text(cx.found);
    // Only after the words that introduce a person: `for`, `to`, `notify`.
    let after_person_word = cx
        .prev
        .is_some_and(|p| matches!(cx.text(p), "for" | "to" | "notify"));
    if cx.found.kind != Kind::Str
        || !text.contains('@')
        || cx.expects(Rule::string)
        || !after_person_word
    {
        return None;
    }
    let email = text.trim_matches('"');
    let name = user_name(email);
    let src = cx.src;
    let ls = line_start(src, cx.site.start, cx.at);
    let head = src[ls..cx.at].trim();
    let rest = src[cx.found.span.end..]
        .split(['\n', '\r'])
        .next()
        .unwrap_or("")
        .split(" #")
        .next()
        .unwrap_or("")
        .trim();
    let fixed = format!("{head} {name} {rest}");
    Some(
        cx.error(
            Code::H001,
            cx.found.span,
            format!("expected a person's name, found the email {text}"),
            "a user, a role or a field such as `deal.owner` goes here".to_string(),
        )
        .with_help(format!(
            "declare a user for the address, `user {name} = {text}`, and write `{}`",
            fixed.trim_end()
        )),
    )
}

/// An email without quotes (`team finance = bob@example.com`): the `@`
/// ends the word.
pub(super) fn bare_email(cx: &Cx<'_>) -> Option<Diagnostic> {
    let src = cx.src;
    // The word before the `@`, whether the parser stopped at the word or
    // took it (as a team member's name) and stopped at the `@`.
    // took it (as a team member's name) and stopped at the `@`; the `@` may
    // then start a new declaration, so look back past the site's start.
    let start = match (cx.found.kind, cx.text(cx.found)) {
        (Kind::Punct, "@") => src[..cx.at]
            .rfind(|c: char| !(is_word_char(c) || matches!(c, '.' | '+' | '-')))
            .map_or(0, |i| i + 1),
        (Kind::Word, _) if src[cx.found.span.end..].starts_with('@') => cx.found.span.start,
        _ => return None,
    };
    if start >= cx.at && cx.text(cx.found) == "@" {
        return None;
    }
    let far = start.saturating_sub(LOOK_BACK);
    let ls = line_start(src, far, start);
    let statement = first_token(src, ls).map(|t| t.text(src));
    if !matches!(statement, Some("team" | "user")) {
        return None;
    }
    let end = src[start..]
        .find(|c: char| c.is_whitespace() || c == ',' || c == '#')
        .map_or(src.len(), |i| start + i);
    let email = &src[start..end];
    let line = src[ls..]
        .split(['\n', '\r'])
        .next()
        .unwrap_or("")
        .split(" #")
        .next()
        .unwrap_or("")
        .trim();
    let fixed = match line.split_once('=') {
        Some((head, items)) => {
            let items: Vec<String> = items
                .split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(|i| {
                    if i.starts_with('"') {
                        i.to_string()
                    } else {
                        format!("\"{i}\"")
                    }
                })
                .collect();
            format!("{} = {}", head.trim_end(), items.join(", "))
        }
        None => format!("\"{email}\""),
    };
    let what = if statement == Some("team") {
        "put each email in double quotes"
    } else {
        "put the email in double quotes"
    };
    Some(
        cx.error(
            Code::H001,
            Span::new(start, end),
            format!("expected an email in double quotes, found `{email}` without quotes"),
            "quote this email".to_string(),
        )
        .with_help(format!("{what}: `{fixed}`")),
    )
}

/// A bare word where only a literal value goes (`becomes Renewing`): it was
/// meant as text.
pub(super) fn unquoted_value(cx: &Cx<'_>) -> Option<Diagnostic> {
    if cx.found.kind != Kind::Word
        || !is_literal_only(&cx.expected)
        || cx.expected.len() < 2
        || !cx.expects(Rule::string)
        || cx.found_on_later_line()
        || matches!(cx.text(cx.found), "yes" | "no")
    {
        return None;
    }
    let src = cx.src;
    let line_end = src[cx.at..]
        .find(['\n', '\r', '#', '{'])
        .map_or(src.len(), |i| cx.at + i);
    // The value runs to the end of the line, or to a `where` after it.
    let mut value = src[cx.at..line_end].trim_end();
    if let Some(i) = value.find(" where ") {
        value = value[..i].trim_end();
    }
    let ls = line_start(src, cx.site.start, cx.at);
    let head = src[ls..cx.at].trim();
    // `Closed Won"`: only the opening quote is missing.
    let bare = value.trim_end_matches('"');
    let help = if bare.len() < value.len() {
        format!("the opening quote is missing: `{head} \"{bare}\"`")
    } else {
        format!("text values go in double quotes: `{head} \"{value}\"`")
    };
    Some(
        cx.error(
            Code::H001,
            Span::new(cx.at, cx.at + value.len()),
            format!("expected a value in double quotes, found `{value}`"),
            "put this value in double quotes".to_string(),
        )
        .with_help(help),
    )
}

/// Characters that look like a space, or like nothing, but are not
/// whitespace to the grammar: pasted from a chat, a document or a web page.
const LOOKALIKE_SPACES: [(char, &str); 11] = [
    ('\u{00a0}', "a non-breaking space (U+00A0)"),
    ('\u{2002}', "an en space (U+2002)"),
    ('\u{2003}', "an em space (U+2003)"),
    ('\u{2009}', "a thin space (U+2009)"),
    ('\u{200a}', "a hair space (U+200A)"),
    ('\u{200b}', "a zero-width space (U+200B)"),
    ('\u{200c}', "a zero-width non-joiner (U+200C)"),
    ('\u{200d}', "a zero-width joiner (U+200D)"),
    ('\u{2060}', "a word joiner (U+2060)"),
    ('\u{202f}', "a narrow non-breaking space (U+202F)"),
    ('\u{3000}', "an ideographic space (U+3000)"),
];

/// A look-alike space between the last token taken and the one that
/// failed (or inside it): the message would quote text that looks right.
pub(super) fn lookalike_space(cx: &Cx<'_>) -> Option<Diagnostic> {
    let from = cx.prev.map_or(cx.site.start, |p| p.span.end);
    let to = cx.found.span.end.max(cx.at);
    let text = cx.src.get(from..to)?;
    let (i, c, name) = text.char_indices().find_map(|(i, c)| {
        LOOKALIKE_SPACES
            .iter()
            .find(|(l, _)| *l == c)
            .map(|(_, name)| (i, c, *name))
    })?;
    let at = from + i;
    Some(
        cx.error(
            Code::H001,
            Span::new(at, at + c.len_utf8()),
            format!("{name} here, which is not a space to handoff"),
            "not a plain space".to_string(),
        )
        .with_help(
            "replace it with a plain space (or delete it): text pasted from chat, documents or web pages often carries these",
        ),
    )
}

/// `due in 2d`, `due in 1 month`, `due in two days`: the `due` clause did
/// not parse, so the parser stopped at `due` and asked for an action.
pub(super) fn unreadable_due(cx: &Cx<'_>) -> Option<Diagnostic> {
    if cx.found.kind != Kind::Word || cx.text(cx.found) != "due" {
        return None;
    }
    let src = cx.src;
    let start = cx.found.span.start;
    let line_end = src[start..]
        .find(['\n', '\r', '#', '{'])
        .map_or(src.len(), |i| start + i);
    let written = src[start..line_end].trim_end();
    let rest = written["due".len()..].trim_start();
    let Some(time) = rest.strip_prefix("in").filter(|t| t.starts_with(' ')) else {
        return Some(due_error(
            cx,
            start,
            written,
            "write `due in` and a time, such as `due in 2 days`".to_string(),
        ));
    };
    let time = time.trim();
    let digits = time
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(time.len());
    let (number, unit) = (&time[..digits], time[digits..].trim());
    let unit_word = unit.split_whitespace().last().unwrap_or("");
    let business = unit.split_whitespace().any(|w| w == "business");
    // A due time that reads fine failed for another reason (`task "…"
    // due in 2 days` without `for`): the general translators say which.
    let words: Vec<&str> = unit.split_whitespace().collect();
    let fine = !number.is_empty()
        && match words.as_slice() {
            [u] | ["business", u] => TIME_UNITS.contains(u),
            _ => false,
        };
    if fine {
        return None;
    }
    let b = if business { "business " } else { "" };
    let n = if number.is_empty() { "2" } else { number };
    let help = if number.is_empty() {
        format!("the time is a number and a unit, in digits: `due in {n} {b}days`")
    } else {
        super::help::unit_help(n, b, unit_word).unwrap_or_else(|| {
            format!(
                "the unit is minutes, hours, days or weeks, optionally `business`: `due in {n} {b}days`"
            )
        })
    };
    Some(due_error(cx, start, written, help))
}

fn due_error(cx: &Cx<'_>, start: usize, written: &str, help: String) -> Diagnostic {
    cx.error(
        Code::H001,
        Span::new(start, start + written.len()),
        format!("expected a due time such as `due in 2 business days`, found `{written}`"),
        "not a due time".to_string(),
    )
    .with_help(help)
}

/// A user name made from an email's local part: `finance@…` → `finance`.
fn user_name(email: &str) -> String {
    let local = email.split('@').next().unwrap_or("");
    let name: String = local
        .chars()
        .map(|c| {
            if is_word_char(c) {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        "someone".to_string()
    } else {
        name
    }
}

/// A name with a letter outside ASCII (`café`, `propriétaire`): the
/// grammar took the ASCII part as the name and stopped at the letter, so
/// the general messages would quote a fragment (`étaire`) and suggest
/// `caf_é`.
pub(super) fn non_ascii_name(cx: &Cx<'_>) -> Option<Diagnostic> {
    let src = cx.src;
    let c = src.get(cx.at..)?.chars().next()?;
    if c.is_ascii() || !c.is_alphabetic() {
        return None;
    }
    // The whole word around it, as the author wrote it.
    let start = src[..cx.at]
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_word_char(c))
        .last()
        .map_or(cx.at, |(i, _)| i);
    let end = src[cx.at..]
        .find(|c: char| !is_word_char(c))
        .map_or(src.len(), |i| cx.at + i);
    let word = &src[start..end];
    let ascii: String = word.chars().map(ascii_letter).collect();
    Some(
        cx.error(
            Code::H001,
            Span::new(cx.at, cx.at + c.len_utf8()),
            format!("`{c}` cannot be part of the name `{word}`: names are ASCII letters, digits and `_`"),
            "not an ASCII letter".to_string(),
        )
        .with_help(format!(
            "write `{ascii}`; labels and values in quotes may use any letters, such as `\"{word}\"`"
        )),
    )
}

/// The ASCII letters an accented Latin letter is usually written as.
fn ascii_letter(c: char) -> String {
    let plain = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => "a",
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' => "A",
        'ç' | 'ć' | 'č' => "c",
        'Ç' | 'Ć' | 'Č' => "C",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ę' | 'Ě' => "E",
        'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ī' => "I",
        'ñ' | 'ń' | 'ň' => "n",
        'Ñ' | 'Ń' | 'Ň' => "N",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => "o",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' => "O",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' => "u",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ū' | 'Ů' => "U",
        'ý' | 'ÿ' => "y",
        'Ý' => "Y",
        'ß' => "ss",
        'æ' => "ae",
        'Æ' => "AE",
        'œ' => "oe",
        'Œ' => "OE",
        'ł' => "l",
        'Ł' => "L",
        'š' | 'ś' => "s",
        'Š' | 'Ś' => "S",
        'ž' | 'ź' | 'ż' => "z",
        'Ž' | 'Ź' | 'Ż' => "Z",
        c if c.is_ascii() => return c.to_string(),
        _ => "_",
    };
    plain.to_string()
}

/// `&&`, `||` or `!` from a programming language, and comparisons chained
/// as in maths (`0 < deal.amount < 10`): the language writes `and`, `or`
/// and `not`, and compares two values at a time.
pub(super) fn code_operators(cx: &Cx<'_>) -> Option<Diagnostic> {
    let rest = &cx.src[cx.at..];
    let (written, word) = if rest.starts_with("&&") {
        ("&&", "and")
    } else if rest.starts_with("||") {
        ("||", "or")
    } else if rest.starts_with('&') {
        ("&", "and")
    } else if rest.starts_with('|') {
        ("|", "or")
    } else if rest.starts_with('!') && !rest.starts_with("!=") {
        ("!", "not")
    } else {
        return chained_comparison(cx);
    };
    // Between two operands only (`a && b`, `!deal.custom`): a `!` ending
    // a line of text, or a stray `|`, is some other slip.
    let after = cx.src[cx.at + written.len()..].trim_start_matches([' ', '\t']);
    let operand_follows = after
        .chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '(' | '"' | '['));
    let operand_before = word == "not"
        || cx.prev.is_some_and(|p| {
            matches!(p.kind, Kind::Word | Kind::Number | Kind::Str)
                || matches!(cx.text(p), ")" | "]")
        });
    if !operand_follows || !operand_before {
        return None;
    }
    Some(
        cx.error(
            Code::H001,
            Span::new(cx.at, cx.at + written.len()),
            format!("expected `{word}`, found `{written}`"),
            format!("write `{word}`"),
        )
        .with_help(format!(
            "conditions join with the words `and`, `or` and `not`: write `{word}` in place of `{written}`"
        )),
    )
}

/// `deal.amount > 0 > 1`: a second comparison right after a first.
fn chained_comparison(cx: &Cx<'_>) -> Option<Diagnostic> {
    const COMPARE: [&str; 6] = ["<=", ">=", "==", "!=", "<", ">"];
    let found = cx.text(cx.found);
    if cx.found.kind != Kind::Op || !COMPARE.contains(&found) {
        return None;
    }
    // The comparison the parser took just before, on the same line, not
    // inside text (`exception "amount < 0" when > 5` is another slip).
    let line = &cx.src[line_start(cx.src, cx.site.start, cx.at)..cx.at];
    let mut code = String::with_capacity(line.len());
    let mut in_text = false;
    let mut escaped = false;
    for c in line.chars() {
        match (in_text, escaped, c) {
            (true, false, '\\') => escaped = true,
            (true, true, _) => escaped = false,
            (_, false, '"') => in_text = !in_text,
            (false, _, c) => code.push(c),
            _ => {}
        }
    }
    if !COMPARE.iter().any(|op| code.contains(op)) {
        return None;
    }
    Some(
        cx.error(
            Code::H001,
            cx.found.span,
            format!("expected `and` or `or` before a second comparison, found `{found}`"),
            "comparisons do not chain".to_string(),
        )
        .with_help(
            "compare two values at a time and join the comparisons: write `a < b and b < c`",
        ),
    )
}

/// `"C:\temp"`, `"50\% off"`: a backslash in text starts an escape, and
/// only a few follow it.
pub(super) fn unknown_escape(cx: &Cx<'_>) -> Option<Diagnostic> {
    // Only inside text: elsewhere a backslash is some other slip.
    if !(cx.expects(Rule::escape) || cx.expects(Rule::text_chunk)) {
        return None;
    }
    let rest = &cx.src[cx.at..];
    let next = rest.strip_prefix('\\')?.chars().next()?;
    if matches!(next, '"' | '\\' | 'n' | 't' | '{' | '}' | '\n' | '\r') {
        return None;
    }
    let end = cx.at + 1 + next.len_utf8();
    Some(
        cx.error(
            Code::H001,
            Span::new(cx.at, end),
            format!("expected an escape such as `\\n`, found `\\{next}`"),
            "not an escape".to_string(),
        )
        .with_help(format!(
            "in text, `\\` starts an escape: `\\\"`, `\\\\`, `\\n`, `\\t`, `\\{{` or `\\}}`; for a backslash itself write `\\\\{next}`"
        )),
    )
}
