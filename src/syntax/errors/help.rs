//! The `help` line: a did-you-mean for a misspelled word, or advice built
//! from the author's own line for the construct that went wrong.

use super::*;
/// A did-you-mean for a misspelled word, else a hint for the construct.
pub(super) fn help_for(cx: &Cx<'_>, statement: Option<&str>, unfinished: bool) -> Option<String> {
    let src = cx.src;
    let found = cx.text(cx.found);
    let expected = &cx.expected;
    let has = |r: Rule| expected.contains(&r);
    let is_expr = expected.iter().any(|r| {
        use Rule::*;
        matches!(
            r,
            expr | not_expr | comparison | sum | unary | paren | list_lit | duration | name
        )
    });

    let prev_text = cx.prev.map(|p| cx.text(p)).unwrap_or("");
    let same_line = cx
        .prev
        .is_some_and(|p| cx.found.kind != Kind::End && cx.line(p.span.end) == cx.line(cx.at));
    if let Some(h) = punctuation_help(cx, statement, prev_text, same_line) {
        return Some(h);
    }

    // When the statement was left unfinished, the found token starts the
    // next line: it is no misspelling of what was expected.
    if cx.found.kind == Kind::Word && !unfinished {
        let words = expected_words(expected);
        if let Some(s) = did_you_mean(found, &words) {
            if s.eq_ignore_ascii_case(found) {
                return Some(format!("keywords and types are lowercase: write `{s}`"));
            }
            return Some(format!("did you mean `{}`?", statement_name(s)));
        }
        let starts_line = first_token(src, line_start(src, cx.site.start, cx.at))
            .is_some_and(|t| t.span.start == cx.at);
        if let Some(name) = STATEMENT_WORDS.iter().find(|w| **w == found && starts_line) {
            if let Some(h) = wrong_place(name) {
                return Some(h);
            }
        }
    }
    let line_text = |offset: usize| {
        let ls = line_start(src, cx.site.start, offset);
        src[ls..]
            .split(['\n', '\r'])
            .next()
            .unwrap_or("")
            .split(" #")
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    };

    if has(Rule::time_unit) && (prev_text == "business" || statement == Some("task")) {
        let n = if cx.prev.is_some_and(|p| p.kind == Kind::Number) {
            prev_text
        } else {
            "2"
        };
        let b = if prev_text == "business" {
            "business "
        } else {
            ""
        };
        if let Some(h) = unit_help(n, b, found) {
            return Some(h);
        }
        return Some(format!(
            "give a unit after the number: `due in {n} days`, `due in {n} business days` or `due in {n} hours`"
        ));
    }
    if has(Rule::number) && expected.len() <= 2 {
        if let Some(n) = number_word(found) {
            let rest = src[cx.found.span.end..]
                .split(['\n', '#'])
                .next()
                .unwrap_or("")
                .trim();
            let rest = if rest.is_empty() { "days" } else { rest };
            return Some(format!("write the number in digits: `due in {n} {rest}`"));
        }
        // `2d`, `3hrs`: a number and an abbreviated unit written together.
        let digits = found
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(found.len());
        if digits > 0 {
            if let Some(h) = unit_help(&found[..digits], "", &found[digits..]) {
                return Some(h);
            }
        }
        return Some(
            "write the number in digits, for example `due in 2 business days`".to_string(),
        );
    }
    if has(Rule::date_lit) && !has(Rule::string) {
        if let Some(iso) = us_date(found) {
            return Some(format!("write dates as YEAR-MONTH-DAY: `{iso}`"));
        }
        return Some("write dates as YEAR-MONTH-DAY, for example `2026-12-25`".to_string());
    }
    if has(Rule::field_type) || has(Rule::scalar_type) {
        return Some("field types are `text`, `number`, `money`, `date`, `datetime`, `email`, `user`, `yes/no`, `list of …` and `one of \"A\", \"B\"`".to_string());
    }
    if has(Rule::colon) {
        let name = if prev_text.is_empty() {
            "amount"
        } else {
            prev_text
        };
        let rest = if cx.found.kind == Kind::Word {
            found
        } else {
            "text"
        };
        return Some(format!(
            "a field reads `name: type`: write `{name}: {rest}`"
        ));
    }
    if has(Rule::equals) && cx.prev.is_some() {
        if statement == Some("field") || statement.is_none() {
            return Some("write `=` between the name and its value".to_string());
        }
        let line = line_text(cx.prev.map_or(cx.at, |p| p.span.start));
        if let Some(p) = cx.prev {
            if cx.found.kind == Kind::Word
                && p.kind == Kind::Word
                && cx.line(p.span.end) == cx.line(cx.at)
                && statement != Some("brief")
            {
                return Some(format!("a name is one word: write `{prev_text}_{found}`"));
            }
            let ls = line_start(src, cx.site.start, p.span.start);
            let head = src[ls..p.span.end].trim_start();
            let tail = line.strip_prefix(head).unwrap_or("").trim();
            if !tail.is_empty() && cx.line(p.span.end) == cx.line(cx.at) {
                return Some(format!(
                    "write `=` between the name and its value: `{head} = {tail}`"
                ));
            }
        }
        return Some("write `=` between the name and its value".to_string());
    }
    if has(Rule::lbrace) && expected.len() == 1 {
        if let Some(p) = cx.prev {
            let same_line = cx.line(p.span.end) == cx.line(cx.at);
            if same_line
                && cx.found.kind == Kind::Word
                && p.kind == Kind::Word
                && matches!(statement, Some("object" | "calendar"))
            {
                return Some(format!("a name is one word: write `{prev_text}_{found}`"));
            }
            let ls = line_start(src, cx.site.start, p.span.start);
            let head = src[ls..p.span.end].trim_start();
            let block = statement.map_or("block", statement_name);
            if same_line {
                let rest = line_text(cx.at);
                let rest = rest.strip_prefix(head).unwrap_or(&rest).trim();
                return Some(format!(
                    "put what belongs to `{block}` between `{{` and `}}`: `{head} {{ {rest} }}`"
                ));
            }
            return Some(format!(
                "start the `{block}` block with `{{` at the end of the line: `{head} {{`"
            ));
        }
    }
    if has(Rule::clock_time) && cx.found.kind == Kind::Number && !found.contains(':') {
        let lower = found.to_lowercase();
        let (digits, pm) = match (lower.strip_suffix("am"), lower.strip_suffix("pm")) {
            (Some(d), _) => (d.to_string(), false),
            (_, Some(d)) => (d.to_string(), true),
            _ => (lower.clone(), false),
        };
        if let Ok(h) = digits.parse::<u32>() {
            let h = if pm && h < 12 { h + 12 } else { h };
            return Some(format!(
                "write times as hours and minutes on a 24-hour clock: `{h}:00`"
            ));
        }
        return Some(
            "write times as hours and minutes on a 24-hour clock, such as `9:00` or `17:30`"
                .to_string(),
        );
    }
    if has(Rule::string) {
        if let Some(h) = string_help(cx, statement, unfinished) {
            return Some(h);
        }
    }
    if is_literal_only(expected) && expected.len() > 1 {
        return Some(
            "write the value, such as `\"Closed Won\"`, `yes`, `100` or `2026-12-25`".to_string(),
        );
    }
    if has(Rule::string) && statement == Some("handoff") && cx.found.kind == Kind::Word {
        let line = line_text(cx.at);
        let name = line
            .strip_prefix("handoff")
            .unwrap_or("")
            .trim()
            .trim_end_matches('{')
            .trim();
        return Some(format!(
            "put the handoff's name in double quotes: `handoff \"{name}\" {{`"
        ));
    }
    if has(Rule::string) && prev_text == "of" {
        return Some(
            "list the choices in double quotes: `one of \"smb\", \"mid\", \"enterprise\"`"
                .to_string(),
        );
    }

    if has(Rule::k_for) && statement == Some("task") {
        return Some("a task reads `task \"Title\" for someone due in 2 days`".to_string());
    }
    if has(Rule::k_for) && statement == Some("draft") {
        return Some("a draft reads `draft email to deal.main_contact for review { subject \"…\" body \"…\" }`".to_string());
    }
    if has(Rule::k_by) {
        let line = line_text(cx.prev.map_or(cx.at, |p| p.span.start));
        return Some(format!(
            "say how to pick the person: `{line} by round robin` or `… by least loaded`"
        ));
    }
    if is_expr {
        return Some(match statement {
            Some("done") => "`done when` needs a condition, for example `done when deal.kickoff_scheduled_at is set`".to_string(),
            Some("escalate") => "`escalate when` needs a condition, for example `escalate when deal.delivery_blocked is yes`".to_string(),
            Some("resume") => "`resume when` needs a condition, for example `resume when deal.review_approved is yes`".to_string(),
            Some("where") | Some("when") => "`where` needs a condition, for example `where deal.amount > 0`".to_string(),
            Some("exception") => "an exception needs a condition, for example `when deal.custom_scope is yes`".to_string(),
            _ => "write a value such as `deal.amount`, `100` or `\"Closed Won\"`".to_string(),
        });
    }
    if contains_group(expected, &DECLARATIONS) {
        return Some("each declaration starts with `object`, `user`, `team`, `channel`, `calendar` or `handoff`; comments start with `#`".to_string());
    }
    None
}

/// True when only a literal value fits here (after `becomes`, `from`, `to`).
pub(super) fn is_literal_only(expected: &[Rule]) -> bool {
    !expected.is_empty()
        && expected
            .iter()
            .all(|r| LITERALS.contains(r) || matches!(r, Rule::literal))
}

/// Help for punctuation where it does not belong, and for the habits of
/// other notations (JSON commas, brackets, `:` for `=`, quoted names).
pub(super) fn punctuation_help(
    cx: &Cx<'_>,
    statement: Option<&str>,
    prev_text: &str,
    same_line: bool,
) -> Option<String> {
    let found = cx.text(cx.found);
    let expects = |r: Rule| cx.expects(r);
    let line = {
        let ls = line_start(cx.src, cx.site.start, cx.at);
        cx.src[ls..]
            .split(['\n', '\r'])
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let block = block_of(cx);
    match (cx.found.kind, found) {
        (Kind::Punct, ":") if expects(Rule::lbrace) => {
            let head = line.split(':').next().unwrap_or("").trim_end();
            return Some(format!("remove the `:`: write `{head} {{`"));
        }
        (Kind::Punct, ":") if expects(Rule::equals) => {
            let fixed = line.replacen(':', " =", 1).replacen("  =", " =", 1);
            return Some(format!("write `=` instead of `:`: `{fixed}`"));
        }
        (Kind::Punct, ",") if !expects(Rule::comma) && block == Some("object") => {
            return Some(
                "remove the `,`: each field goes on its own line, with no commas between fields"
                    .to_string(),
            );
        }
        (Kind::Punct, ",") if !expects(Rule::comma) => {
            return Some("remove this `,`".to_string());
        }
        (Kind::Punct, "[" | "]") if statement == Some("team") => {
            return Some(
                "list the members without brackets: `team delivery = \"ana@example.com\", \"raj@example.com\"`"
                    .to_string(),
            );
        }
        (Kind::Punct, "$" | "€" | "£") => {
            return Some(
                "write amounts as plain numbers, without a currency sign: `50000`".to_string(),
            );
        }
        (Kind::Str, _) if block == Some("object") && expects(Rule::ident) => {
            let name = found.trim_matches('"');
            return Some(format!("field names are not quoted: write `{name}: …`"));
        }
        _ => {}
    }
    // Two items of a list with no `,` between them.
    if expects(Rule::comma) && same_line {
        if let Some(p) = cx.prev {
            if p.kind == cx.found.kind && matches!(p.kind, Kind::Str | Kind::Number) {
                return Some(format!(
                    "separate the items with `,`: `{prev_text}, {found}`"
                ));
            }
        }
    }
    // `notify channel "#delivery" "…"`: the channel's declared name, not its
    // address, goes after `channel`.
    if statement == Some("notify") && line.starts_with("notify channel \"") {
        // The author's own channel, named as a declaration would name it.
        let address = line["notify channel \"".len()..]
            .split('"')
            .next()
            .unwrap_or("");
        let name: String = address
            .trim_start_matches('#')
            .chars()
            .map(|c| {
                if is_word_char(c) {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let name = if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            "team_feed".to_string()
        } else {
            name
        };
        return Some(format!(
            "name the channel as declared, without quotes: declare `channel {name} = \"{address}\"` and write `notify channel {name} \"…\"`"
        ));
    }
    if block == Some("brief") && cx.found.kind == Kind::Word && expects(Rule::k_ask) {
        return Some(format!(
            "a brief line reads `\"Label\" = deal.field`: put the label in double quotes, as in `\"{found}\" = …`"
        ));
    }
    // `50k`, `2.5m`
    if cx.found.kind == Kind::Number {
        let lower = found.to_lowercase();
        let factor = match lower.chars().last() {
            Some('k') => 1_000.0,
            Some('m') => 1_000_000.0,
            _ => 0.0,
        };
        if let Ok(n) = lower[..lower.len() - 1].parse::<f64>() {
            if factor > 0.0 {
                return Some(format!("write the whole number: `{}`", n * factor));
            }
        }
    }
    if expects(Rule::k_is) && statement == Some("when") {
        return Some(format!(
            "a creation trigger reads `when {prev_text} is created`"
        ));
    }
    None
}

/// The kind of the innermost block open at the error.
pub(super) fn block_of(cx: &Cx<'_>) -> Option<&'static str> {
    open_blocks(cx.src, cx.site.scan, cx.site.start, cx.at)
        .last()
        .map(|b| b.kind)
}

/// What goes in the quotes a statement needs.
pub(super) fn string_help(
    cx: &Cx<'_>,
    statement: Option<&str>,
    unfinished: bool,
) -> Option<String> {
    let src = cx.src;
    // The rest of the line, as the author wrote it, is usually the text
    // they meant to quote.
    let rest = || {
        let r = src[cx.at..]
            .split(['\n', '\r'])
            .next()
            .unwrap_or("")
            .split(" #")
            .next()
            .unwrap_or("")
            .trim();
        (!r.is_empty() && !unfinished && cx.found.kind != Kind::Punct).then(|| r.to_string())
    };
    let head = || {
        let end = cx.prev.map_or(cx.at, |p| p.span.end);
        let ls = line_start(src, cx.site.start, end);
        src[ls..end].trim().to_string()
    };
    Some(match statement? {
        "user" => format!(
            "give the user's email in double quotes: `{} \"{}\"`",
            head(),
            rest().unwrap_or_else(|| "maya@example.com".to_string())
        ),
        "channel" => format!(
            "give the channel in double quotes: `{} \"{}\"`",
            head(),
            rest().unwrap_or_else(|| "#delivery".to_string())
        ),
        "timezone" => {
            "give the time zone in double quotes: `timezone \"America/New_York\"`".to_string()
        }
        "notify" | "ask" | "subject" | "body" => format!(
            "write the text in double quotes: `{} \"{}\"`",
            head(),
            rest().unwrap_or_else(|| "…".to_string())
        ),
        "exception" => {
            "give the exception a name in double quotes: `exception \"Custom Scope\" when …`"
                .to_string()
        }
        "task" => "give the task a title in double quotes: `task \"Kickoff\" for …`".to_string(),
        "checklist" => {
            "write each item in double quotes: `checklist \"Confirm scope\", \"Book the call\"`"
                .to_string()
        }
        _ => return None,
    })
}

/// Where a statement keyword found in the wrong place belongs.
pub(super) fn wrong_place(word: &str) -> Option<String> {
    let name = statement_name(word);
    if ACTION_WORDS.contains(&word) {
        return Some(format!(
            "`{name}` is an action: it goes inside `then {{ … }}`, `if missing {{ … }}` or `on exception {{ … }}`"
        ));
    }
    if HANDOFF_WORDS.contains(&word) {
        return Some(format!("`{name}` goes directly inside a `handoff` block"));
    }
    match word {
        "checklist" | "attach" => Some(format!(
            "`{name}` goes inside a task's block: `task \"…\" for someone {{ {name} … }}`"
        )),
        "ask" => Some("`ask` goes inside a `brief` block".to_string()),
        "resume" => Some("`resume when` goes inside an `on exception` block".to_string()),
        "subject" | "body" => Some(format!("`{word}` goes inside a `draft email` block")),
        "workdays" | "timezone" | "holidays" | "hours" => {
            Some(format!("`{word}` goes inside a `calendar` block"))
        }
        _ => None,
    }
}

/// The closest candidate to a misspelled word, when one is clearly closest.
pub(super) fn did_you_mean<'c>(found: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let f = found.to_lowercase();
    if f.chars().count() < 2 {
        return None;
    }
    // An abbreviation (`mon`, `fri`, `num`) of exactly one candidate.
    let mut prefixed = candidates
        .iter()
        .filter(|c| f.chars().count() >= 3 && c.starts_with(f.as_str()) && **c != f);
    if let (Some(c), None) = (prefixed.next(), prefixed.next()) {
        return Some(c);
    }
    let mut best: Vec<(&str, usize)> = Vec::new();
    for &c in candidates {
        let d = strsim::damerau_levenshtein(&f, c);
        let allowed = match c.chars().count() {
            0..=3 => 1,
            4..=8 => 2,
            _ => 3,
        };
        if d > allowed || d >= f.chars().count().max(c.chars().count()) {
            continue;
        }
        match best.first() {
            Some(&(_, b)) if d > b => {}
            Some(&(_, b)) if d == b => best.push((c, d)),
            _ => best = vec![(c, d)],
        }
    }
    let (first, _) = *best.first()?;
    // A tie is only fine between forms of one word (`day`, `days`).
    let clear = best
        .iter()
        .all(|(c, _)| c.starts_with(first) || first.starts_with(c));
    (clear && first != found).then_some(first)
}

/// `two` → `2`, for `due in two days`.
pub(super) fn number_word(word: &str) -> Option<u32> {
    const WORDS: [&str; 13] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve",
    ];
    let w = word.to_lowercase();
    WORDS.iter().position(|x| *x == w).map(|n| n as u32)
}

/// `12/25/2026` → `2026-12-25`, when it reads as a month/day/year date.
pub(super) fn us_date(text: &str) -> Option<String> {
    let mut parts = text.split('/');
    let (m, d, y) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 {
        return None;
    }
    let (m, d): (u32, u32) = (m.parse().ok()?, d.parse().ok()?);
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then(|| format!("{y}-{m:02}-{d:02}"))
}

/// The fix for a unit handoff does not take: an abbreviation (`d`, `hrs`)
/// written in full, months and years said to be no unit. `None` for a
/// word that is no unit at all.
pub(super) fn unit_help(n: &str, business: &str, unit: &str) -> Option<String> {
    let full = match unit.to_ascii_lowercase().as_str() {
        "month" | "months" | "mo" | "mos" => {
            let weeks = n.parse::<f64>().map_or(4.0, |m| (m * 4.0).round().max(1.0));
            return Some(format!(
                "months are not a unit (their length varies): write weeks or days, such as `due in {weeks} {business}weeks`"
            ));
        }
        "year" | "years" | "yr" | "yrs" => {
            return Some("years are not a unit: write weeks, such as `due in 52 weeks`".to_string())
        }
        "d" | "dy" | "dys" => "days",
        "w" | "wk" | "wks" => "weeks",
        "h" | "hr" | "hrs" => "hours",
        "m" | "min" | "mins" => "minutes",
        _ => return None,
    };
    Some(format!(
        "write the unit in full, after a space: `due in {n} {business}{full}`"
    ))
}
