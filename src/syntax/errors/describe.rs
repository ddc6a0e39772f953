//! What each grammar rule looks like to an author, and how a set of
//! expected rules reads as one phrase ("a handoff statement (`when`, …)").

use super::*;
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
        k_escalate => "escalate",
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

/// How an expected rule reads to an author: in a message, in a short label,
/// and the words to compare a misspelling with.
pub(super) struct Desc {
    pub(super) long: String,
    pub(super) short: String,
    pub(super) words: Vec<&'static str>,
}

impl Desc {
    pub(super) fn new(long: &str, short: &str, words: &[&'static str]) -> Self {
        Desc {
            long: long.to_string(),
            short: short.to_string(),
            words: words.to_vec(),
        }
    }
}

/// A list of descriptions, to join with "or".
pub(super) struct Descs(pub(super) Vec<Desc>);

impl Descs {
    pub(super) fn long(&self) -> Vec<String> {
        self.0.iter().map(|d| d.long.clone()).collect()
    }
    pub(super) fn short(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for d in &self.0 {
            if !out.contains(&d.short) {
                out.push(d.short.clone());
            }
        }
        out
    }
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub(super) const FIELD_TYPES: [&str; 10] = [
    "text", "number", "money", "date", "datetime", "email", "user", "yes/no", "list", "one",
];
pub(super) const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
pub(super) const TIME_UNITS: [&str; 8] = [
    "days", "day", "hours", "hour", "minutes", "minute", "weeks", "week",
];

/// What one rule looks like to an author. `statement` is the keyword of the
/// statement being parsed, to say "a condition" rather than "a value".
pub(super) fn describe(rule: Rule, statement: Option<&str>) -> Desc {
    use Rule::*;
    if let Some(k) = keyword_text(rule) {
        let text = format!("`{}`", statement_name(k));
        return Desc {
            long: text.clone(),
            short: text,
            words: vec![k],
        };
    }
    match rule {
        field_decl => Desc::new("a field such as `amount: money`", "a field", &[]),
        field_type | list_type | one_of_type | scalar_type => Desc::new(
            "a field type such as `text`, `money` or `one of \"A\", \"B\"`",
            "a field type",
            &FIELD_TYPES,
        ),
        ident if matches!(statement, Some("object" | "field")) => {
            Desc::new("a field such as `amount: money`", "a field", &[])
        }
        ident => Desc::new("a name", "a name", &[]),
        member => Desc::new(
            "a team member (an email in double quotes, or a user's name)",
            "a team member",
            &[],
        ),
        workdays => Desc::new("`workdays`", "`workdays`", &["workdays"]),
        weekday => Desc::new("a day such as `monday`", "a day", &WEEKDAYS),
        timezone => Desc::new("`timezone`", "`timezone`", &["timezone"]),
        holidays => Desc::new("`holidays`", "`holidays`", &["holidays"]),
        work_hours => Desc::new("`hours`", "`hours`", &["hours"]),
        clock_time => Desc::new("a time such as `9:00`", "a time", &[]),
        created_trigger | field_trigger => Desc::new(
            "a trigger such as `deal.stage becomes \"Closed Won\"`",
            "a trigger",
            &[],
        ),
        becomes => Desc::new("`becomes`", "`becomes`", &["becomes"]),
        changes => Desc::new("`changes`", "`changes`", &["changes"]),
        where_clause => Desc::new("`where`", "`where`", &["where"]),
        field_ref => Desc::new("a field name", "a field name", &[]),
        script => Desc::new("`script`", "`script`", &["script"]),
        resume_when => Desc::new("`resume when`", "`resume when`", &["resume"]),
        brief_field => Desc::new(
            "a brief line such as `\"Client\" = deal.name`",
            "a brief line",
            &[],
        ),
        ask => Desc::new("`ask`", "`ask`", &["ask"]),
        assign_team => Desc::new("`from team`", "`from team`", &["from"]),
        assign_to => Desc::new("`to`", "`to`", &["to"]),
        strategy | round_robin | least_loaded => Desc::new(
            "`round robin` or `least loaded`",
            "`round robin` or `least loaded`",
            &["round", "least"],
        ),
        due => Desc::new("`due`", "`due`", &["due"]),
        time_unit => Desc::new(
            "a time unit (`minutes`, `hours`, `days` or `weeks`)",
            "a time unit",
            &TIME_UNITS,
        ),
        task_body => Desc::new("`{`", "`{`", &[]),
        checklist => Desc::new("`checklist`", "`checklist`", &["checklist"]),
        attach_brief => Desc::new("`attach brief`", "`attach brief`", &["attach"]),
        notify_channel => Desc::new("`channel`", "`channel`", &["channel"]),
        email_subject => Desc::new("`subject`", "`subject`", &["subject"]),
        email_body => Desc::new("`body`", "`body`", &["body"]),
        reference => Desc::new(
            "a person, role or field such as `deal.owner`",
            "a person",
            &[],
        ),
        path => Desc::new("a field such as `deal.stage`", "a field", &[]),
        expr | not_expr | comparison | sum | unary | paren | list_lit | duration | name => {
            match statement {
                Some("done" | "escalate" | "resume" | "where" | "when" | "exception") => Desc::new(
                    "a condition such as `deal.amount > 0`",
                    "a condition",
                    &["not", "today", "now", "yes", "no"],
                ),
                _ => Desc::new(
                    "a value such as `deal.amount`, `100` or `\"Closed Won\"`",
                    "a value",
                    &["not", "today", "now", "yes", "no"],
                ),
            }
        }
        compare_tail | compare_op => Desc::new("a comparison such as `>`", "a comparison", &[]),
        is_tail => Desc::new("`is`", "`is`", &["is"]),
        in_tail => Desc::new("`in`", "`in`", &["in"]),
        contains_tail => Desc::new("`contains`", "`contains`", &["contains"]),
        add_op | mul_op => Desc::new("an operator such as `+`", "an operator", &[]),
        literal | neg_number | boolean | datetime_lit => Desc::new(
            "a value such as `\"Closed Won\"`, `yes` or `100`",
            "a value",
            &["yes", "no"],
        ),
        number => Desc::new("a number such as `2`", "a number", &[]),
        date_lit => Desc::new("a date such as `2026-12-25`", "a date", &[]),
        // After a field's type, the optional label.
        string if statement == Some("field") => {
            Desc::new("a label in double quotes", "a label in double quotes", &[])
        }
        string | string_part | text_chunk | escape => {
            Desc::new("text in double quotes", "text in double quotes", &[])
        }
        interpolation | lbrace => Desc::new("`{`", "`{`", &[]),
        rbrace => Desc::new("`}`", "`}`", &[]),
        equals => Desc::new("`=`", "`=`", &[]),
        colon => Desc::new("`:`", "`:`", &[]),
        comma => Desc::new("`,`", "`,`", &[]),
        EOI => Desc::new("the end of the file", "the end of the file", &[]),
        _ => Desc::new("more input", "more input", &[]),
    }
}

pub(super) const HANDOFF_STATEMENTS: [Rule; 9] = [
    Rule::k_when,
    Rule::k_require,
    Rule::k_if,
    Rule::k_exception,
    Rule::k_on,
    Rule::k_brief,
    Rule::k_then,
    Rule::k_done,
    Rule::k_escalate,
];
pub(super) const DECLARATIONS: [Rule; 6] = [
    Rule::k_object,
    Rule::k_user,
    Rule::k_team,
    Rule::k_channel,
    Rule::k_calendar,
    Rule::k_handoff,
];
pub(super) const ACTIONS: [Rule; 6] = [
    Rule::k_assign,
    Rule::k_task,
    Rule::k_notify,
    Rule::k_draft,
    Rule::k_set,
    Rule::k_pause,
];
/// Literal rules that read as one "value" when several are expected.
pub(super) const LITERALS: [Rule; 6] = [
    Rule::datetime_lit,
    Rule::date_lit,
    Rule::number,
    Rule::string,
    Rule::boolean,
    Rule::neg_number,
];
/// What may follow a value in an expression: folded into one phrase, since
/// listing them all drowns the alternatives that matter.
pub(super) const OPERATORS: [Rule; 9] = [
    Rule::k_and,
    Rule::k_or,
    Rule::compare_op,
    Rule::add_op,
    Rule::mul_op,
    Rule::k_is,
    Rule::k_in,
    Rule::k_contains,
    Rule::k_not,
];

/// A statement rule stands for the keyword that starts it, so that groups
/// fold the same whichever pest reports.
pub(super) fn lead_keyword(rule: Rule) -> Rule {
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
        escalate_when => k_escalate,
        assign => k_assign,
        task => k_task,
        notify => k_notify,
        draft_email => k_draft,
        set_action => k_set,
        pause => k_pause,
        compare_tail => compare_op,
        is_tail => k_is,
        in_tail => k_in,
        contains_tail => k_contains,
        other => other,
    }
}

/// The expected rules, normalized, with `}` and the end of file last.
pub(super) fn normalize(expected: &[Rule]) -> Vec<Rule> {
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

pub(super) fn contains_group(expected: &[Rule], group: &[Rule]) -> bool {
    group.iter().all(|r| expected.contains(r))
}

/// Every keyword or word the expected rules could have matched, for
/// did-you-mean.
pub(super) fn expected_words(expected: &[Rule]) -> Vec<&'static str> {
    let mut words = Vec::new();
    for r in expected {
        for w in describe(*r, None).words {
            if !words.contains(&w) {
                words.push(w);
            }
        }
    }
    words
}

/// Describes every expected rule, folding the usual groups into one phrase.
pub(super) fn describe_all(expected: &[Rule], statement: Option<&str>) -> Descs {
    let mut rules: Vec<Rule> = expected.to_vec();
    let mut out = Vec::new();
    let groups: [(&[Rule], &str, &str, &[&'static str]); 3] = [
        (
            &DECLARATIONS,
            "a declaration (`object`, `user`, `team`, `channel`, `calendar` or `handoff`)",
            "a declaration",
            &["object", "user", "team", "channel", "calendar", "handoff"],
        ),
        (
            &HANDOFF_STATEMENTS,
            "a handoff statement (`when`, `require`, `if missing`, `exception`, `on exception`, `brief`, `then` or `done when`)",
            "a handoff statement",
            &HANDOFF_WORDS,
        ),
        (
            &ACTIONS,
            "an action (`assign`, `task`, `notify`, `draft email`, `set` or `pause`)",
            "an action",
            &ACTION_WORDS,
        ),
    ];
    for (group, long, short, words) in groups {
        if contains_group(&rules, group) {
            rules.retain(|r| !group.contains(r));
            out.push(Desc::new(long, short, words));
        }
    }
    if LITERALS.iter().filter(|r| rules.contains(r)).count() >= 2 {
        rules.retain(|r| !LITERALS.contains(r));
        out.push(describe(Rule::literal, statement));
    }
    if OPERATORS.iter().filter(|r| rules.contains(r)).count() >= 3 {
        // Name the first few operators that really fit here.
        let examples: Vec<String> = [
            (Rule::k_and, "and"),
            (Rule::k_or, "or"),
            (Rule::k_is, "is"),
            (Rule::compare_op, ">"),
            (Rule::k_in, "in"),
            (Rule::k_contains, "contains"),
            (Rule::add_op, "+"),
            (Rule::mul_op, "*"),
        ]
        .iter()
        .filter(|(r, _)| rules.contains(r))
        .take(4)
        .map(|(_, op)| format!("`{op}`"))
        .collect();
        rules.retain(|r| !OPERATORS.contains(r));
        out.push(Desc::new(
            &format!("an operator such as {}", join_or(&examples)),
            "an operator",
            &["and", "or", "is", "in", "not", "contains"],
        ));
    }
    for r in rules {
        let d = describe(r, statement);
        if !out.iter().any(|o| o.long == d.long) {
            out.push(d);
        }
    }
    Descs(out)
}

pub(super) fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
