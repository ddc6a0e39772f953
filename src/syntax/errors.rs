//! Translates pest's parse errors into diagnostics in the language's own words.
//!
//! A user never sees a grammar rule name: every rule that can appear in an
//! error is described here ("a field type such as `text`…"), and the found
//! token is quoted from the source.

use std::sync::Arc;

use pest::error::{Error, ErrorVariant, InputLocation};

use super::ast::Span;
use super::lexical::Scan;
use super::parser::{Rule, DECLARATION_KEYWORDS};
use crate::diagnostic::{Code, Diagnostic, SourceFile};

/// The byte offset (relative to the parsed slice) where pest failed.
pub(crate) fn error_offset(err: &Error<Rule>) -> usize {
    match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    }
}

/// The diagnostic for a parse error at absolute offset `at` in the
/// declaration that starts at `start`.
pub(crate) fn translate(
    source: &Arc<SourceFile>,
    scan: &Scan,
    start: usize,
    at: usize,
    err: &Error<Rule>,
) -> Diagnostic {
    let src = source.text.as_str();

    // A string or script left open explains any error that follows it.
    if let Some(s) = scan
        .unterminated_scripts
        .iter()
        .find(|s| s.start >= start && s.start <= at)
    {
        return Diagnostic::error(
            Code::H003,
            source,
            *s,
            "unterminated script: no closing ``` before the end of the file",
            "script starts here",
        )
        .with_help("end the script with ``` after its last line");
    }
    if let Some(s) = scan
        .unterminated_strings
        .iter()
        .find(|s| s.start >= start && s.start <= at)
    {
        return Diagnostic::error(
            Code::H002,
            source,
            *s,
            "unterminated string: no closing `\"` on this line",
            "string starts here",
        )
        .with_help(
            "close the string with `\"` on the same line; write `\\\"` for a quote inside it",
        );
    }

    let expected = match &err.variant {
        ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let found = found_token(src, at);
    let found_text = match &found {
        Found::End => "end of file".to_string(),
        Found::Word(w) => format!("`{w}`"),
        Found::String => "a string".to_string(),
        Found::Char(c) => format!("`{c}`"),
    };

    // A block left open: the parser runs into the next declaration (whose
    // keyword it may first take for a field name) or the end of the file.
    let line = line_start(src, at);
    let decl_line = line > start && starts_declaration(&src[line..]);
    if found == Found::End || decl_line {
        let at = if decl_line {
            first_token(src, line)
        } else {
            at
        };
        let found_text = if decl_line {
            format!("`{}`", &src[at..].split_whitespace().next().unwrap_or(""))
        } else {
            found_text.clone()
        };
        if let Some(open) = scan.unclosed_brace(start, at) {
            let (line, _) = source.line_col(open.start);
            return Diagnostic::error(
                Code::H004,
                source,
                point(src, at),
                format!("missing `}}`: the block opened on line {line} is never closed"),
                format!("expected `}}` before {found_text}"),
            )
            .with_related(open, "this `{` is never closed")
            .with_help("add `}` at the end of the block");
        }
    }

    let described = describe_all(&expected);
    let message = if described.is_empty() {
        format!("unexpected {found_text}")
    } else {
        format!("expected {}, found {found_text}", join_or(&described))
    };
    let span = match &found {
        Found::Word(w) => Span::new(at, at + w.len()),
        Found::End => Span::new(at, at),
        Found::String => Span::new(at, at + 1),
        Found::Char(c) => Span::new(at, at + c.len_utf8()),
    };
    let label = if described.is_empty() {
        "unexpected here".to_string()
    } else {
        short_label(&expected)
    };
    let mut diag = Diagnostic::error(Code::H001, source, span, message, label);
    if let Some(help) = help_for(&expected, &found) {
        diag = diag.with_help(help);
    }
    diag
}

#[derive(Debug, PartialEq)]
enum Found {
    End,
    Word(String),
    String,
    Char(char),
}

fn found_token(src: &str, at: usize) -> Found {
    let rest = &src[at.min(src.len())..];
    let Some(c) = rest.chars().next() else {
        return Found::End;
    };
    if c.is_alphanumeric() || c == '_' {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '/'))
            .unwrap_or(rest.len());
        // `yes/no` is one word; a lone `/` at the end is not part of it.
        let word = rest[..end].trim_end_matches('/');
        return Found::Word(word.to_string());
    }
    if c == '"' {
        return Found::String;
    }
    Found::Char(c)
}

fn line_start(src: &str, at: usize) -> usize {
    src[..at].rfind('\n').map_or(0, |i| i + 1)
}

fn first_token(src: &str, line: usize) -> usize {
    line + (src[line..].len() - src[line..].trim_start().len())
}

/// True when a line reads like the start of a declaration: a declaration
/// keyword followed by a name or string (not `:`, which makes it a field).
fn starts_declaration(line: &str) -> bool {
    let t = line.trim_start();
    DECLARATION_KEYWORDS.iter().any(|k| {
        t.strip_prefix(k).is_some_and(|rest| {
            rest.starts_with([' ', '\t'])
                && rest
                    .trim_start()
                    .starts_with(|c: char| c.is_alphabetic() || c == '_' || c == '"' || c == '{')
        })
    })
}

fn point(src: &str, at: usize) -> Span {
    // Point at the token if there is one, else at the end.
    let end = src[at..]
        .find(char::is_whitespace)
        .map_or(src.len(), |e| at + e);
    Span::new(at, end.max(at))
}

/// The keyword a keyword rule matches.
pub(crate) fn keyword_text(rule: Rule) -> Option<&'static str> {
    use Rule::*;
    Some(match rule {
        k_and => "and",
        k_ask => "ask",
        k_assign => "assign",
        k_attach => "attach",
        k_becomes => "becomes",
        k_body => "body",
        k_brief => "brief",
        k_business => "business",
        k_by => "by",
        k_calendar => "calendar",
        k_changes => "changes",
        k_channel => "channel",
        k_checklist => "checklist",
        k_contains => "contains",
        k_created => "created",
        k_done => "done",
        k_draft => "draft",
        k_due => "due",
        k_email => "email",
        k_empty => "empty",
        k_exception => "exception",
        k_for => "for",
        k_from => "from",
        k_handoff => "handoff",
        k_holidays => "holidays",
        k_hours => "hours",
        k_if => "if",
        k_in => "in",
        k_is => "is",
        k_least => "least",
        k_list => "list",
        k_loaded => "loaded",
        k_missing => "missing",
        k_not => "not",
        k_notify => "notify",
        k_now => "now",
        k_object => "object",
        k_of => "of",
        k_on => "on",
        k_one => "one",
        k_or => "or",
        k_pause => "pause",
        k_require => "require",
        k_resume => "resume",
        k_review => "review",
        k_robin => "robin",
        k_round => "round",
        k_script => "script",
        k_set => "set",
        k_subject => "subject",
        k_task => "task",
        k_team => "team",
        k_then => "then",
        k_timezone => "timezone",
        k_to => "to",
        k_today => "today",
        k_user => "user",
        k_when => "when",
        k_where => "where",
        k_workdays => "workdays",
        _ => return None,
    })
}

/// What a rule looks like to an author, and the word to suggest for a typo.
fn describe(rule: Rule) -> (String, Vec<&'static str>) {
    use Rule::*;
    if let Some(k) = keyword_text(rule) {
        return (format!("`{k}`"), vec![k]);
    }
    let (text, words): (&str, &[&'static str]) = match rule {
        object_decl => ("`object`", &["object"]),
        user_decl => ("`user`", &["user"]),
        team_decl => ("`team`", &["team"]),
        channel_decl => ("`channel`", &["channel"]),
        calendar_decl => ("`calendar`", &["calendar"]),
        handoff_decl => ("`handoff`", &["handoff"]),
        field_decl => ("a field such as `amount: money`", &[]),
        field_type | list_type | one_of_type | scalar_type => (
            "a field type such as `text` or `one of \"A\", \"B\"`",
            &[
                "text", "number", "money", "date", "datetime", "email", "user", "yes/no", "list",
                "one",
            ],
        ),
        ident => ("a name", &[]),
        member => ("a team member (an email in quotes or a user's name)", &[]),
        workdays => ("`workdays`", &["workdays"]),
        weekday => (
            "a day such as `monday`",
            &[
                "monday",
                "tuesday",
                "wednesday",
                "thursday",
                "friday",
                "saturday",
                "sunday",
            ],
        ),
        timezone => ("`timezone`", &["timezone"]),
        holidays => ("`holidays`", &["holidays"]),
        work_hours => ("`hours`", &["hours"]),
        clock_time => ("a time such as `9:00`", &[]),
        trigger => ("`when`", &["when"]),
        created_trigger | field_trigger => ("a trigger such as `deal.stage becomes \"Won\"`", &[]),
        becomes => ("`becomes`", &["becomes"]),
        changes => ("`changes`", &["changes"]),
        where_clause => ("`where`", &["where"]),
        require => ("`require`", &["require"]),
        field_ref => ("a field name", &[]),
        if_missing => ("`if missing`", &["if"]),
        exception => ("`exception`", &["exception"]),
        script => ("`script`", &["script"]),
        on_exception => ("`on exception`", &["on"]),
        resume_when => ("`resume when`", &["resume"]),
        brief => ("`brief`", &["brief"]),
        brief_field => ("a brief line such as `\"Client\" = deal.name`", &[]),
        ask => ("`ask`", &["ask"]),
        then_block => ("`then`", &["then"]),
        done_when => ("`done when`", &["done"]),
        assign => ("`assign`", &["assign"]),
        assign_team => ("`from team`", &["from"]),
        assign_to => ("`to`", &["to"]),
        strategy | round_robin | least_loaded => {
            ("`round robin` or `least loaded`", &["round", "least"])
        }
        task => ("`task`", &["task"]),
        due => ("`due`", &["due"]),
        time_unit => (
            "a time unit (`minutes`, `hours`, `days` or `weeks`)",
            &[
                "minutes", "hours", "days", "weeks", "minute", "hour", "day", "week",
            ],
        ),
        task_body => ("`{`", &[]),
        checklist => ("`checklist`", &["checklist"]),
        attach_brief => ("`attach brief`", &["attach"]),
        notify => ("`notify`", &["notify"]),
        notify_channel => ("`channel`", &["channel"]),
        draft_email => ("`draft email`", &["draft"]),
        email_subject => ("`subject`", &["subject"]),
        email_body => ("`body`", &["body"]),
        set_action => ("`set`", &["set"]),
        pause => ("`pause`", &["pause"]),
        reference => ("a person, role or field such as `deal.owner`", &[]),
        path => ("a field such as `deal.stage`", &[]),
        expr | or_expr | and_expr | not_expr | comparison | sum | product | unary | paren
        | list_lit | duration | name => ("a value or expression", &[]),
        compare_tail | compare_op => ("a comparison such as `>`", &[]),
        is_tail => ("`is`", &["is"]),
        in_tail => ("`in`", &["in"]),
        contains_tail => ("`contains`", &["contains"]),
        add_op | mul_op => ("an operator", &[]),
        literal | neg_number | boolean | number | date_lit | datetime_lit => (
            "a value such as `\"Closed Won\"`, `yes` or `100`",
            &["yes", "no"],
        ),
        string | string_part | text_chunk | escape => ("a string in quotes", &[]),
        interpolation => ("`{`", &[]),
        lbrace => ("`{`", &[]),
        rbrace => ("`}`", &[]),
        equals => ("`=`", &[]),
        colon => ("`:`", &[]),
        comma => ("`,`", &[]),
        EOI => ("the end of the file", &[]),
        _ => ("more input", &[]),
    };
    (text.to_string(), words.to_vec())
}

const HANDOFF_STATEMENTS: [Rule; 8] = [
    Rule::k_when,
    Rule::k_require,
    Rule::k_if,
    Rule::k_exception,
    Rule::k_on,
    Rule::k_brief,
    Rule::k_then,
    Rule::k_done,
];
const DECLARATIONS: [Rule; 6] = [
    Rule::k_object,
    Rule::k_user,
    Rule::k_team,
    Rule::k_channel,
    Rule::k_calendar,
    Rule::k_handoff,
];
const ACTIONS: [Rule; 6] = [
    Rule::k_assign,
    Rule::k_task,
    Rule::k_notify,
    Rule::k_draft,
    Rule::k_set,
    Rule::k_pause,
];

/// A statement rule stands for the keyword that starts it, so that groups
/// fold the same whichever pest reports.
fn lead_keyword(rule: Rule) -> Rule {
    use Rule::*;
    match rule {
        object_decl => k_object,
        user_decl => k_user,
        team_decl => k_team,
        channel_decl => k_channel,
        calendar_decl => k_calendar,
        handoff_decl => k_handoff,
        trigger => k_when,
        require => k_require,
        if_missing => k_if,
        exception => k_exception,
        on_exception => k_on,
        brief => k_brief,
        then_block => k_then,
        done_when => k_done,
        assign => k_assign,
        task => k_task,
        notify => k_notify,
        draft_email => k_draft,
        set_action => k_set,
        pause => k_pause,
        other => other,
    }
}

/// The expected rules, normalized, with `}` and the end of file last.
fn normalize(expected: &[Rule]) -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::new();
    // At the top level pest names the whole rule; say what starts one.
    let expanded = expected.iter().flat_map(|r| match r {
        Rule::single_declaration | Rule::file => DECLARATIONS.to_vec(),
        other => vec![lead_keyword(*other)],
    });
    for r in expanded {
        if !rules.contains(&r) {
            rules.push(r);
        }
    }
    rules.sort_by_key(|r| matches!(r, Rule::rbrace | Rule::EOI));
    rules
}

fn contains_group(expected: &[Rule], group: &[Rule]) -> bool {
    let n = normalize(expected);
    group.iter().all(|r| n.contains(r))
}

/// Describes every expected rule, folding the usual groups into one phrase.
fn describe_all(expected: &[Rule]) -> Vec<String> {
    let mut rules: Vec<Rule> = normalize(expected);
    let mut out = Vec::new();
    let groups: [(&[Rule], &str); 3] = [
        (
            &DECLARATIONS,
            "a declaration (`object`, `user`, `team`, `channel`, `calendar` or `handoff`)",
        ),
        (
            &HANDOFF_STATEMENTS,
            "a handoff statement (`when`, `require`, `if missing`, `exception`, `on exception`, `brief`, `then` or `done when`)",
        ),
        (
            &ACTIONS,
            "an action (`assign`, `task`, `notify`, `draft email`, `set` or `pause`)",
        ),
    ];
    for (group, phrase) in groups {
        if group.iter().all(|r| rules.contains(r)) {
            rules.retain(|r| !group.contains(r));
            out.push(phrase.to_string());
        }
    }
    for r in rules {
        let (d, _) = describe(r);
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

fn short_label(expected: &[Rule]) -> String {
    let d = describe_all(expected);
    if d.len() == 1 {
        // Keep the label short: drop the parenthesised list.
        format!("expected {}", d[0].split(" (").next().unwrap_or(&d[0]))
    } else {
        "not valid here".to_string()
    }
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// A did-you-mean for a misspelled word, else a hint for the construct.
fn help_for(expected: &[Rule], found: &Found) -> Option<String> {
    if let Found::Word(w) = found {
        let mut best: Option<(&str, f64)> = None;
        for r in expected {
            for cand in describe(*r).1 {
                let score = strsim::jaro_winkler(w, cand);
                if score > 0.8 && best.is_none_or(|(_, s)| score > s) {
                    best = Some((cand, score));
                }
            }
        }
        if let Some((cand, _)) = best {
            if cand != w {
                return Some(format!("did you mean `{cand}`?"));
            }
        }
    }
    let hint = |r: Rule| -> Option<&'static str> {
        Some(match r {
            Rule::time_unit => "give a unit after the number: `due in 2 business days`",
            Rule::field_type | Rule::scalar_type => {
                "field types are `text`, `number`, `money`, `date`, `datetime`, `email`, `user`, `yes/no`, `list of T` and `one of \"A\", \"B\"`"
            }
            Rule::strategy | Rule::round_robin | Rule::least_loaded => {
                "pick a person with `by round robin` or `by least loaded`"
            }
            Rule::becomes | Rule::changes => {
                "a trigger reads `when deal.stage becomes \"Closed Won\"`, `when deal.stage changes`, or `when deal is created`"
            }
            Rule::rbrace => "every `{` needs a matching `}`",
            Rule::colon => "a field reads `name: type`, for example `amount: money`",
            Rule::equals => "write `=` between the name and its value",
            Rule::string => "text goes in double quotes: \"like this\"",
            Rule::k_for => "a task reads `task \"Title\" for someone due in 2 days`",
            _ => return None,
        })
    };
    if let Some(h) = expected.iter().find_map(|r| hint(*r)) {
        return Some(h.to_string());
    }
    if contains_group(expected, &DECLARATIONS) {
        return Some(
            "each declaration starts with `object`, `user`, `team`, `channel`, `calendar` or `handoff`; comments start with `#`"
                .to_string(),
        );
    }
    if contains_group(expected, &HANDOFF_STATEMENTS) {
        return Some("see grammar/README.md for what a handoff block may contain".to_string());
    }
    None
}
