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
    Some(
        cx.error(
            Code::H001,
            Span::new(cx.at, cx.at + value.len()),
            format!("expected a value in double quotes, found `{value}`"),
            "put this value in double quotes".to_string(),
        )
        .with_help(format!(
            "text values go in double quotes: `{head} \"{value}\"`"
        )),
    )
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
