//! Builds syntax-tree nodes from pest pairs.
//!
//! The grammar has already accepted the text, so the shape of every pair is
//! known; the few things the grammar cannot check (impossible dates, numbers
//! out of range, interpolation where only plain text is allowed) become
//! diagnostics here, never panics.

use std::sync::Arc;

use pest::iterators::Pair;

use super::ast::*;
use super::parser::Rule;
use crate::diagnostic::{Code, Diagnostic};
use crate::source::SourceFile;

type P<'a> = Pair<'a, Rule>;

/// The furthest a task may be due: ten years.
const MAX_DUE_DAYS: f64 = 3650.0;

/// Builds nodes for one declaration; `base` is the declaration's offset in the
/// file, since each declaration is parsed from its own slice.
pub(crate) struct Builder<'s> {
    source: &'s Arc<SourceFile>,
    base: usize,
    /// The file's comments, by position: pest's spans take in the trivia
    /// after a rule, which [`Builder::span`] trims off.
    comments: &'s [Comment],
    pub diagnostics: Vec<Diagnostic>,
    /// Whether this declaration already has a "too deep" error.
    reported_too_deep: bool,
}

/// The deepest expression tree the builder builds (a leaf counts 1). Brackets
/// and `not` are already limited by the lexical scan (see
/// [`super::lexical::MAX_NESTING`]); this also bounds long chains such as
/// `a or b or c …` (which build a tree as deep as the chain is long) and runs
/// of minus signs, so that no later stage's recursion over a tree can
/// exhaust the stack.
pub(crate) const MAX_EXPR_DEPTH: usize = 256;

impl<'s> Builder<'s> {
    pub fn new(source: &'s Arc<SourceFile>, base: usize, comments: &'s [Comment]) -> Self {
        Builder {
            source,
            base,
            comments,
            diagnostics: Vec::new(),
            reported_too_deep: false,
        }
    }

    /// The span of a pair without the whitespace and comments pest lets a
    /// rule swallow after its last token.
    fn span(&self, p: &P<'_>) -> Span {
        let s = p.as_span();
        let start = self.base + s.start();
        let mut end = self.base + s.end();
        let text = self.source.text.as_str();
        // Most spans end on their last token: a character that is neither
        // whitespace nor the end of a comment (comments end at a line break
        // or the end of the text). Those need no trimming.
        let bytes = text.as_bytes();
        if end > start
            && end < bytes.len()
            && bytes[end] != b'\n'
            && bytes[end - 1].is_ascii_graphic()
        {
            return Span::new(start, end);
        }
        loop {
            end = start + text[start..end].trim_end().len();
            let i = self.comments.partition_point(|c| c.span.start < end);
            match i.checked_sub(1).map(|i| &self.comments[i]) {
                Some(c) if c.span.start >= start && end <= c.span.end => end = c.span.start,
                _ => break,
            }
        }
        Span::new(start, end)
    }

    fn error(&mut self, code: Code, span: Span, message: String, label: &str, help: &str) {
        self.diagnostics
            .push(Diagnostic::error(code, self.source, span, message, label).with_help(help));
    }

    /// An address people are reached at must look like one: `maya`, or
    /// two addresses run together, would send nothing to anyone.
    fn email(&mut self, t: &Text) {
        if looks_like_email(&t.value) {
            return;
        }
        self.error(
            Code::H005,
            t.span,
            format!("`{}` is not an email address", t.value),
            "not an email address",
            "write one whole address in quotes, such as \"maya@example.com\"; separate team members with commas outside the quotes",
        );
    }

    pub fn declaration(&mut self, p: P<'_>) -> Declaration {
        match p.as_rule() {
            Rule::object_decl => Declaration::Object(self.object(p)),
            Rule::user_decl => {
                let span = self.span(&p);
                let mut it = sig(p);
                let name = self.ident(next(&mut it));
                let email = self.text(next(&mut it));
                self.email(&email);
                Declaration::User(UserDecl { name, email, span })
            }
            Rule::team_decl => {
                let span = self.span(&p);
                let mut it = sig(p);
                let name = self.ident(next(&mut it));
                let members = it
                    .map(|m| {
                        let inner = first(m);
                        match inner.as_rule() {
                            Rule::string => {
                                let email = self.text(inner);
                                self.email(&email);
                                Member::Email(email)
                            }
                            _ => Member::User(self.ident(inner)),
                        }
                    })
                    .collect();
                Declaration::Team(TeamDecl {
                    name,
                    members,
                    span,
                })
            }
            Rule::channel_decl => {
                let span = self.span(&p);
                let mut it = sig(p);
                let name = self.ident(next(&mut it));
                let target = self.text(next(&mut it));
                Declaration::Channel(ChannelDecl { name, target, span })
            }
            Rule::calendar_decl => Declaration::Calendar(self.calendar(p)),
            _ => Declaration::Handoff(self.handoff(p)),
        }
    }

    fn object(&mut self, p: P<'_>) -> ObjectDecl {
        let span = self.span(&p);
        let mut it = sig(p);
        let name = self.ident(next(&mut it));
        let fields = it
            .map(|f| {
                let span = self.span(&f);
                let mut it = sig(f);
                let name = self.ident(next(&mut it));
                let ty = self.field_type(next(&mut it));
                let label = it.next().map(|l| self.text(l));
                FieldDecl {
                    name,
                    ty,
                    label,
                    span,
                }
            })
            .collect();
        ObjectDecl { name, fields, span }
    }

    fn field_type(&mut self, p: P<'_>) -> FieldType {
        let inner = first(p);
        let span = self.span(&inner);
        match inner.as_rule() {
            Rule::list_type => {
                let item = sig(inner).next().expect("list item type");
                FieldType::List {
                    item: Box::new(self.field_type(item)),
                    span,
                }
            }
            Rule::one_of_type => FieldType::OneOf {
                values: sig(inner).map(|s| self.text(s)).collect(),
                span,
            },
            _ => FieldType::Scalar {
                kind: ScalarType::from_keyword(inner.as_str()).unwrap_or(ScalarType::Text),
                span,
            },
        }
    }

    fn calendar(&mut self, p: P<'_>) -> CalendarDecl {
        let span = self.span(&p);
        let mut name = None;
        let mut items = Vec::new();
        for item in sig(p) {
            let span = self.span(&item);
            match item.as_rule() {
                Rule::ident => name = Some(self.ident(item)),
                Rule::workdays => {
                    let range = item.clone().into_inner().any(|t| t.as_rule() == Rule::k_to);
                    let days = sig(item).map(|d| weekday(d.as_str())).collect();
                    items.push(CalendarItem::Workdays { days, range, span });
                }
                Rule::timezone => {
                    let name = self.text(sig(item).next().expect("timezone name"));
                    items.push(CalendarItem::Timezone { name, span });
                }
                Rule::holidays => {
                    let dates = sig(item).map(|d| self.date(d)).collect();
                    items.push(CalendarItem::Holidays { dates, span });
                }
                _ => {
                    let mut it = sig(item);
                    let start = self.clock(next(&mut it));
                    let end = self.clock(next(&mut it));
                    items.push(CalendarItem::Hours { start, end, span });
                }
            }
        }
        CalendarDecl { name, items, span }
    }

    fn handoff(&mut self, p: P<'_>) -> HandoffDecl {
        let span = self.span(&p);
        let mut it = sig(p);
        let name = self.text(next(&mut it));
        if name.value.trim().is_empty() {
            self.error(
                Code::H005,
                name.span,
                "a handoff needs a name".to_string(),
                "empty name",
                "name what is handed over, for example `handoff \"Sales to Delivery\" {`: the name shows on tasks, on the pages and in the API",
            );
        }
        let items = it.map(|i| self.handoff_item(i)).collect();
        HandoffDecl { name, items, span }
    }

    fn handoff_item(&mut self, p: P<'_>) -> HandoffItem {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::trigger => {
                let mut event = None;
                let mut filter = None;
                for part in sig(p) {
                    match part.as_rule() {
                        Rule::created_trigger => {
                            let object = self.ident(sig(part).next().expect("object"));
                            event = Some(TriggerEvent::Created { object });
                        }
                        Rule::field_trigger => event = Some(self.field_trigger(part)),
                        _ => filter = Some(self.expr(sig(part).next().expect("filter"))),
                    }
                }
                HandoffItem::Trigger(Trigger {
                    event: event.expect("trigger event"),
                    filter,
                    span,
                })
            }
            Rule::require => HandoffItem::Require(Require {
                fields: sig(p).map(|r| self.reference(r)).collect(),
                span,
            }),
            Rule::if_missing => HandoffItem::IfMissing(self.action_block(p)),
            Rule::then_block => HandoffItem::Then(self.action_block(p)),
            Rule::exception => {
                let mut it = sig(p);
                let name = self.text(next(&mut it));
                let cond = next(&mut it);
                let condition = if cond.as_rule() == Rule::script {
                    let cspan = self.span(&cond);
                    let body = cond
                        .into_inner()
                        .find(|b| b.as_rule() == Rule::script_body)
                        .expect("script body");
                    ExceptionCondition::Script(Script {
                        source: body.as_str().to_string(),
                        source_span: self.span(&body),
                        span: cspan,
                    })
                } else {
                    ExceptionCondition::Expr(self.expr(cond))
                };
                HandoffItem::Exception(Exception {
                    name,
                    condition,
                    span,
                })
            }
            Rule::on_exception => {
                let items = sig(p)
                    .map(|i| {
                        if i.as_rule() == Rule::resume_when {
                            OnExceptionItem::ResumeWhen(self.condition(i))
                        } else {
                            OnExceptionItem::Action(self.action(i))
                        }
                    })
                    .collect();
                HandoffItem::OnException(OnException { items, span })
            }
            Rule::brief => {
                let items = sig(p)
                    .map(|i| {
                        let span = self.span(&i);
                        if i.as_rule() == Rule::ask {
                            let q = sig(i).next().expect("question");
                            BriefItem::Ask {
                                question: self.template(q),
                                span,
                            }
                        } else {
                            let mut it = sig(i);
                            let label = self.template(next(&mut it));
                            let value = self.expr(next(&mut it));
                            BriefItem::Field { label, value, span }
                        }
                    })
                    .collect();
                HandoffItem::Brief(Brief { items, span })
            }
            Rule::escalate_when => HandoffItem::EscalateWhen(self.condition(p)),
            _ => HandoffItem::DoneWhen(self.condition(p)),
        }
    }

    fn condition(&mut self, p: P<'_>) -> Condition {
        let span = self.span(&p);
        let expr = self.expr(sig(p).next().expect("condition"));
        Condition { expr, span }
    }

    fn field_trigger(&mut self, p: P<'_>) -> TriggerEvent {
        let mut it = sig(p);
        let field = self.path(next(&mut it));
        let change = next(&mut it);
        if change.as_rule() == Rule::becomes {
            let value = self.literal(sig(change).next().expect("value"));
            return TriggerEvent::Becomes { field, value };
        }
        let mut from = None;
        let mut to = None;
        let mut slot = None;
        for part in change.into_inner() {
            match part.as_rule() {
                Rule::k_from => slot = Some(true),
                Rule::k_to => slot = Some(false),
                Rule::k_changes => {}
                _ => {
                    let lit = self.literal(part);
                    if slot == Some(true) {
                        from = Some(lit);
                    } else {
                        to = Some(lit);
                    }
                }
            }
        }
        TriggerEvent::Changes { field, from, to }
    }

    fn action_block(&mut self, p: P<'_>) -> ActionBlock {
        let span = self.span(&p);
        let actions = sig(p).map(|a| self.action(a)).collect();
        ActionBlock { actions, span }
    }

    fn action(&mut self, p: P<'_>) -> Action {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::assign => {
                let mut it = sig(p);
                let role = self.ident(next(&mut it));
                let src = next(&mut it);
                let source = if src.as_rule() == Rule::assign_team {
                    let mut it = sig(src);
                    let team = self.ident(next(&mut it));
                    let strategy = match first(next(&mut it)).as_rule() {
                        Rule::round_robin => Strategy::RoundRobin,
                        _ => Strategy::LeastLoaded,
                    };
                    AssignSource::Team { team, strategy }
                } else {
                    AssignSource::To(self.reference(sig(src).next().expect("assignee")))
                };
                Action::Assign(Assign { role, source, span })
            }
            Rule::task => {
                let mut it = sig(p);
                let title = self.template(next(&mut it));
                let assignee = self.reference(next(&mut it));
                let mut task = Task {
                    title,
                    assignee,
                    due: None,
                    checklist: Vec::new(),
                    attach_brief: false,
                    has_body: false,
                    span,
                };
                for part in it {
                    if part.as_rule() == Rule::due {
                        task.due = Some(self.due(part));
                        continue;
                    }
                    task.has_body = true;
                    for line in sig(part) {
                        if line.as_rule() == Rule::checklist {
                            for item in sig(line) {
                                let t = self.template(item);
                                task.checklist.push(t);
                            }
                        } else {
                            task.attach_brief = true;
                        }
                    }
                }
                Action::Task(task)
            }
            Rule::notify => {
                let mut it = sig(p);
                let t = next(&mut it);
                let target = if t.as_rule() == Rule::notify_channel {
                    NotifyTarget::Channel(self.ident(sig(t).next().expect("channel")))
                } else {
                    NotifyTarget::Person(self.reference(t))
                };
                let message = self.template(next(&mut it));
                Action::Notify(Notify {
                    target,
                    message,
                    span,
                })
            }
            Rule::draft_email => {
                let mut it = sig(p);
                let to = self.reference(next(&mut it));
                let subject = self.template(sig(next(&mut it)).next().expect("subject"));
                let body = self.template(sig(next(&mut it)).next().expect("body"));
                Action::DraftEmail(DraftEmail {
                    to,
                    subject,
                    body,
                    span,
                })
            }
            Rule::set_action => {
                let mut it = sig(p);
                let field = self.path(next(&mut it));
                let value = self.expr(next(&mut it));
                Action::Set(SetField { field, value, span })
            }
            _ => Action::Pause { span },
        }
    }

    fn due(&mut self, p: P<'_>) -> Due {
        let span = self.span(&p);
        let mut amount = 0.0;
        let mut business = false;
        let mut unit = TimeUnit::Days;
        let mut number = span;
        for part in p.into_inner() {
            match part.as_rule() {
                Rule::number => {
                    amount = self.number(&part);
                    number = self.span(&part);
                }
                Rule::k_business => business = true,
                Rule::time_unit => unit = time_unit(part.as_str()),
                _ => {}
            }
        }
        self.whole_days(amount, business, unit, number);
        self.due_within_reach(amount, business, unit, number);
        Due {
            amount,
            business,
            unit,
            span,
        }
    }

    // ------------------------------------------------------------ leaves

    fn ident(&self, p: P<'_>) -> Ident {
        Ident {
            name: p.as_str().to_string(),
            span: self.span(&p),
        }
    }

    fn path(&self, p: P<'_>) -> Path {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let object = self.ident(next(&mut it));
        let field = self.ident(next(&mut it));
        Path {
            object,
            field,
            span,
        }
    }

    fn reference(&self, p: P<'_>) -> Reference {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let head = self.ident(next(&mut it));
        let field = it.next().map(|f| self.ident(f));
        Reference { head, field, span }
    }

    fn number(&mut self, p: &P<'_>) -> f64 {
        let cleaned: String = p.as_str().chars().filter(|&c| c != '_').collect();
        match cleaned.parse::<f64>() {
            Ok(v) if v.is_finite() && v < 1e15 => v,
            _ => {
                let span = self.span(p);
                self.error(
                    Code::H005,
                    span,
                    format!("number `{}` is too large", p.as_str()),
                    "too large",
                    "numbers must be below 1,000,000,000,000,000",
                );
                0.0
            }
        }
    }

    /// Days and weeks count whole (a calendar day, or a working day to its
    /// close): `2.5 days` would silently be 3, so it is refused, naming
    /// the whole numbers around it and the same time in a smaller unit.
    fn whole_days(&mut self, amount: f64, business: bool, unit: TimeUnit, span: Span) {
        if !matches!(unit, TimeUnit::Days | TimeUnit::Weeks) || amount.fract() == 0.0 {
            return;
        }
        let b = if business { "business " } else { "" };
        let (lower, upper) = (amount.floor(), amount.ceil());
        let (smaller, per) = match (unit, business) {
            (TimeUnit::Weeks, false) => ("days", 7.0),
            (TimeUnit::Weeks, true) => ("business days", 5.0),
            _ if business => ("business hours", 0.0),
            _ => ("hours", 24.0),
        };
        let instead = if per > 0.0 && (amount * per).fract() == 0.0 {
            format!(", or `{} {smaller}`", amount * per)
        } else {
            format!(", or count in {smaller}")
        };
        self.error(
            Code::H005,
            span,
            format!(
                "`{amount} {b}{}` is not a whole number of {}",
                unit.keyword(amount),
                unit.keyword(2.0)
            ),
            "not whole",
            &format!(
                "days and weeks count whole: write `{lower} {b}{}` or `{upper} {b}{}`{instead}",
                unit.keyword(lower),
                unit.keyword(upper)
            ),
        );
    }

    /// A due time past [`MAX_DUE_DAYS`] is a typo (a task due in 300
    /// years), and past what the calendar counts it would leave the task
    /// with no due date at run time, said only in the trace.
    fn due_within_reach(&mut self, amount: f64, business: bool, unit: TimeUnit, span: Span) {
        let days = match unit {
            TimeUnit::Minutes => amount / (24.0 * 60.0),
            TimeUnit::Hours => amount / 24.0,
            TimeUnit::Days => amount,
            TimeUnit::Weeks => amount * 7.0,
        };
        if days > MAX_DUE_DAYS {
            self.error(
                Code::H005,
                span,
                format!(
                    "a task due in {amount} {}{} is due more than ten years out",
                    if business { "business " } else { "" },
                    unit.keyword(amount)
                ),
                "too far",
                "a due time is at most 3650 days (520 weeks): check the number",
            );
        }
    }

    /// A number literal, exactly: `0.1` is one tenth, not the float
    /// nearest it. Same bound as [`Self::number`].
    fn decimal(&mut self, p: &P<'_>) -> rust_decimal::Decimal {
        let cleaned: String = p.as_str().chars().filter(|&c| c != '_').collect();
        match crate::value::parse_decimal(&cleaned) {
            Some(v) if v < rust_decimal::Decimal::from(1_000_000_000_000_000_i64) => v,
            _ => {
                // Past the bound, or more than 28 digits: say so once.
                let span = self.span(p);
                self.error(
                    Code::H005,
                    span,
                    format!("number `{}` is too large", p.as_str()),
                    "too large",
                    "numbers must be below 1,000,000,000,000,000 with at most 28 digits",
                );
                rust_decimal::Decimal::ZERO
            }
        }
    }

    fn date(&mut self, p: P<'_>) -> DateLit {
        let span = self.span(&p);
        let s = p.as_str();
        let year: i16 = s[0..4].parse().unwrap_or(0);
        let month: i8 = s[5..7].parse().unwrap_or(0);
        let day: i8 = s[8..10].parse().unwrap_or(0);
        if jiff::civil::Date::new(year, month, day).is_err() {
            self.error(
                Code::H005,
                span,
                format!("`{s}` is not a calendar date"),
                "no such date",
                "write dates as YYYY-MM-DD, for example 2026-12-25",
            );
        }
        DateLit {
            year,
            month,
            day,
            span,
        }
    }

    fn clock(&mut self, p: P<'_>) -> ClockTime {
        let span = self.span(&p);
        let s = p.as_str();
        let (h, m) = s.split_once(':').unwrap_or((s, "0"));
        let hour: u8 = h.parse().unwrap_or(99);
        let minute: u8 = m.parse().unwrap_or(99);
        if hour > 24 || minute > 59 || (hour == 24 && minute > 0) {
            self.error(
                Code::H005,
                span,
                format!("`{s}` is not a time of day"),
                "no such time",
                "write times as H:MM on a 24-hour clock, for example 9:00 or 17:30",
            );
        }
        ClockTime { hour, minute, span }
    }

    fn literal(&mut self, p: P<'_>) -> Literal {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::string => Literal::Text(self.text(p)),
            Rule::number => Literal::Number {
                value: self.decimal(&p),
                span,
            },
            Rule::neg_number => {
                let n = first(p);
                Literal::Number {
                    value: -self.decimal(&n),
                    span,
                }
            }
            Rule::boolean => Literal::Bool {
                value: matches!(p.as_str(), "yes" | "true"),
                span,
            },
            Rule::date_lit => Literal::Date(self.date(p)),
            _ => {
                let text = p.as_str().to_string();
                let date = &text[..10];
                // The whole literal must read as the evaluator reads it
                // (`compile::parse_datetime`): seconds past 59 or an offset
                // past ±25:59 would otherwise compile to an empty value,
                // and the condition could never hold.
                let reads = text.parse::<jiff::Timestamp>().is_ok()
                    || text.parse::<jiff::civil::DateTime>().is_ok();
                if jiff::civil::Date::strptime("%Y-%m-%d", date).is_err()
                    || jiff::civil::Time::strptime("%H:%M", &text[11..16]).is_err()
                    || !reads
                {
                    self.error(
                        Code::H005,
                        span,
                        format!("`{text}` is not a valid date and time"),
                        "no such moment",
                        "write date-times as 2026-11-20T15:04:05Z",
                    );
                }
                Literal::DateTime { text, span }
            }
        }
    }

    /// A string where interpolation is not allowed.
    fn text(&mut self, p: P<'_>) -> Text {
        let t = self.template(p);
        let mut value = String::new();
        for part in &t.parts {
            match part {
                TemplatePart::Text(s) => value.push_str(s),
                TemplatePart::Expr(e) => {
                    self.error(
                        Code::H006,
                        e.span,
                        "`{…}` interpolation is not allowed in this string".to_string(),
                        "interpolation here",
                        "names, labels and values are plain text; write `\\{` for a literal brace",
                    );
                }
            }
        }
        Text {
            value,
            span: t.span,
        }
    }

    pub fn template(&mut self, p: P<'_>) -> Template {
        self.template_d(p).0
    }

    /// A template and the depth of its deepest interpolated expression.
    fn template_d(&mut self, p: P<'_>) -> (Template, usize) {
        let span = self.span(&p);
        let mut parts: Vec<TemplatePart> = Vec::new();
        let mut depth = 0;
        for part in p.into_inner() {
            match part.as_rule() {
                Rule::text_chunk => push_text(&mut parts, part.as_str()),
                Rule::escape => {
                    let c = match &part.as_str()[1..] {
                        "n" => "\n",
                        "t" => "\t",
                        other => other,
                    };
                    push_text(&mut parts, c);
                }
                _ => {
                    let (e, d) = self.expr_d(first(part));
                    depth = depth.max(d);
                    parts.push(TemplatePart::Expr(e));
                }
            }
        }
        (Template { parts, span }, depth)
    }

    // ------------------------------------------------------ expressions

    pub fn expr(&mut self, p: P<'_>) -> Expr {
        self.expr_d(p).0
    }

    /// Reports an expression deeper than [`MAX_EXPR_DEPTH`] (once per
    /// declaration); the caller then leaves the rest of it out of the tree.
    fn too_deep(&mut self, at: Span) {
        if !self.reported_too_deep {
            self.reported_too_deep = true;
            self.error(
                Code::H008,
                at,
                format!("expression nested more than {MAX_EXPR_DEPTH} levels deep"),
                "too deep",
                "split the expression; real rules never need this much nesting",
            );
        }
    }

    /// Wraps `e` (of depth `d`) in `n` prefix operators, innermost last in
    /// `starts`; stops at [`MAX_EXPR_DEPTH`].
    fn prefixed(
        &mut self,
        mut e: Expr,
        mut d: usize,
        starts: &[usize],
        wrap: fn(Box<Expr>) -> ExprKind,
    ) -> (Expr, usize) {
        for &start in starts.iter().rev() {
            if d >= MAX_EXPR_DEPTH {
                self.too_deep(Span::new(start, e.span.start));
                break;
            }
            e = Expr {
                span: Span::new(start, e.span.end),
                kind: wrap(Box::new(e)),
            };
            d += 1;
        }
        (e, d)
    }

    /// Builds an expression and returns the depth of its tree (a leaf is 1).
    /// No tree deeper than [`MAX_EXPR_DEPTH`] is built, so that dropping or
    /// walking a tree can never exhaust the stack.
    ///
    /// Each kind of node has its own function, so that the recursion through
    /// brackets and interpolations only passes through small stack frames.
    fn expr_d(&mut self, p: P<'_>) -> (Expr, usize) {
        let p = skip_single(p);
        match p.as_rule() {
            Rule::expr | Rule::sum => {
                let mut it = p.into_inner();
                let first = next(&mut it);
                let mut rest = Vec::new();
                while let Some(op) = it.next() {
                    rest.push((binary_op(&op), next(&mut it)));
                }
                self.chain(first, rest)
            }
            Rule::not_expr => self.not_expr(p),
            Rule::comparison => {
                let whole = p.clone();
                let mut it = p.into_inner();
                let first = next(&mut it);
                let mut rest = Vec::new();
                let mut tail = None;
                while let Some(part) = it.next() {
                    if matches!(part.as_rule(), Rule::mul_op | Rule::add_op) {
                        rest.push((binary_op(&part), next(&mut it)));
                    } else {
                        tail = Some(part);
                    }
                }
                let (lhs, d) = self.chain(first, rest);
                match tail {
                    None => (lhs, d),
                    Some(tail) => {
                        let span = self.span(&whole);
                        self.comparison_tail(lhs, d, tail, span)
                    }
                }
            }
            Rule::unary => self.unary(p),
            Rule::paren => self.paren(p),
            Rule::list_lit => self.list(p),
            Rule::string => self.string_expr(p),
            _ => {
                let span = self.span(&p);
                (self.leaf(p, span), 1)
            }
        }
    }

    /// A flat chain `a op b op c …` (the grammar leaves it flat): the tight
    /// operators (`and`, `*`, `/`) group first, left to right, then the
    /// loose ones (`or`, `+`, `-`), left to right: `a or b and c` is
    /// `a or (b and c)`, `1 - 2 * 3 - 4` is `(1 - (2 * 3)) - 4`.
    fn chain<'i>(&mut self, first: P<'i>, rest: Vec<(BinaryOp, P<'i>)>) -> (Expr, usize) {
        let mut rest = rest.into_iter().peekable();
        let (mut lhs, mut d) = self.tight_chain(first, &mut rest);
        while let Some((op, operand)) = rest.next() {
            let (rhs, rd) = self.tight_chain(operand, &mut rest);
            if d.max(rd) >= MAX_EXPR_DEPTH {
                self.too_deep(rhs.span);
                break;
            }
            lhs = binary(op, lhs, rhs);
            d = d.max(rd) + 1;
        }
        (lhs, d)
    }

    /// `first` and the operands that the tight operators after it bind to
    /// it; leaves `rest` at the next loose operator.
    fn tight_chain<'i>(
        &mut self,
        first: P<'i>,
        rest: &mut std::iter::Peekable<std::vec::IntoIter<(BinaryOp, P<'i>)>>,
    ) -> (Expr, usize) {
        let (mut lhs, mut d) = self.expr_d(first);
        let mut too_deep = false;
        while let Some((op, operand)) = rest.next_if(|(op, _)| is_tight(*op)) {
            if too_deep {
                continue;
            }
            let (rhs, rd) = self.expr_d(operand);
            if d.max(rd) >= MAX_EXPR_DEPTH {
                self.too_deep(rhs.span);
                too_deep = true;
                continue;
            }
            lhs = binary(op, lhs, rhs);
            d = d.max(rd) + 1;
        }
        (lhs, d)
    }

    /// `not not x`: each level is `k_not ~ not_expr`, the last is the
    /// operand. Walks down the levels without recursing.
    fn not_expr(&mut self, p: P<'_>) -> (Expr, usize) {
        let mut starts = Vec::new();
        let mut level = p;
        loop {
            let start = self.base + level.as_span().start();
            let mut inner = level.into_inner();
            let head = next(&mut inner);
            if head.as_rule() == Rule::k_not {
                starts.push(start);
                level = next(&mut inner);
            } else {
                let (operand, d) = self.expr_d(head);
                return self.prefixed(operand, d, &starts, ExprKind::Not);
            }
        }
    }

    /// `- - x`: every minus sign applies to everything after it.
    fn unary(&mut self, p: P<'_>) -> (Expr, usize) {
        let start = self.base + p.as_span().start();
        let mut starts = Vec::new();
        let mut operand = None;
        for part in p.into_inner() {
            if part.as_rule() == Rule::neg_op {
                starts.push(start);
            } else {
                operand = Some(self.expr_d(part));
            }
        }
        let (e, d) = operand.expect("operand");
        self.prefixed(e, d, &starts, ExprKind::Neg)
    }

    fn paren(&mut self, p: P<'_>) -> (Expr, usize) {
        let span = self.span(&p);
        let (inner, d) = self.expr_d(first(p));
        if d >= MAX_EXPR_DEPTH {
            self.too_deep(span);
            return (inner, d);
        }
        let e = Expr {
            kind: ExprKind::Paren(Box::new(inner)),
            span,
        };
        (e, d + 1)
    }

    fn list(&mut self, p: P<'_>) -> (Expr, usize) {
        let span = self.span(&p);
        let mut d = 0;
        let mut items = Vec::new();
        for item in p.into_inner() {
            let (e, id) = self.expr_d(item);
            if id >= MAX_EXPR_DEPTH {
                self.too_deep(e.span);
                continue;
            }
            d = d.max(id);
            items.push(e);
        }
        let e = Expr {
            kind: ExprKind::List(items),
            span,
        };
        (e, d + 1)
    }

    fn string_expr(&mut self, p: P<'_>) -> (Expr, usize) {
        let span = self.span(&p);
        let (mut t, d) = self.template_d(p);
        if d >= MAX_EXPR_DEPTH {
            self.too_deep(span);
            t.parts.clear();
            let e = Expr {
                kind: ExprKind::Template(t),
                span,
            };
            return (e, 1);
        }
        let e = Expr {
            kind: ExprKind::Template(t),
            span,
        };
        (e, d + 1)
    }

    /// An expression without sub-expressions.
    fn leaf(&mut self, p: P<'_>, span: Span) -> Expr {
        match p.as_rule() {
            Rule::duration => {
                let mut amount = 0.0;
                let mut business = false;
                let mut unit = TimeUnit::Days;
                let mut number = span;
                for part in p.into_inner() {
                    match part.as_rule() {
                        Rule::number => {
                            amount = self.number(&part);
                            number = self.span(&part);
                        }
                        Rule::k_business => business = true,
                        _ => unit = time_unit(part.as_str()),
                    }
                }
                self.whole_days(amount, business, unit, number);
                Expr {
                    kind: ExprKind::Duration {
                        amount,
                        business,
                        unit,
                    },
                    span,
                }
            }
            Rule::k_today => Expr {
                kind: ExprKind::Today,
                span,
            },
            Rule::k_now => Expr {
                kind: ExprKind::Now,
                span,
            },
            Rule::path => Expr {
                kind: ExprKind::Path(self.path(p)),
                span,
            },
            Rule::name => Expr {
                kind: ExprKind::Name(self.ident(p)),
                span,
            },
            _ => Expr {
                kind: ExprKind::Literal(self.literal(p)),
                span,
            },
        }
    }

    fn comparison_tail(&mut self, lhs: Expr, ld: usize, tail: P<'_>, span: Span) -> (Expr, usize) {
        let subject = Box::new(lhs);
        // The depth of the operand other than the subject.
        let mut od = 0;
        let kind = match tail.as_rule() {
            Rule::compare_tail => {
                let mut it = tail.into_inner();
                let op = match next(&mut it).as_str() {
                    "==" => BinaryOp::Eq,
                    "!=" => BinaryOp::Ne,
                    "<=" => BinaryOp::Le,
                    ">=" => BinaryOp::Ge,
                    "<" => BinaryOp::Lt,
                    _ => BinaryOp::Gt,
                };
                let (rhs, d) = self.expr_d(next(&mut it));
                od = d;
                ExprKind::Binary {
                    op,
                    lhs: subject,
                    rhs: Box::new(rhs),
                }
            }
            Rule::is_tail => {
                let mut negated = false;
                let mut test = IsTest::Set;
                for part in tail.into_inner() {
                    match part.as_rule() {
                        Rule::k_is => {}
                        Rule::k_not => negated = true,
                        Rule::k_set => test = IsTest::Set,
                        Rule::k_missing => test = IsTest::Missing,
                        Rule::k_empty => test = IsTest::Empty,
                        _ => {
                            let (value, d) = self.expr_d(part);
                            od = d;
                            test = IsTest::Value(Box::new(value));
                        }
                    }
                }
                ExprKind::Is {
                    subject,
                    negated,
                    test,
                }
            }
            Rule::in_tail => {
                let mut negated = false;
                let mut list = None;
                for part in tail.into_inner() {
                    match part.as_rule() {
                        Rule::k_not => negated = true,
                        Rule::k_in => {}
                        _ => {
                            let (l, d) = self.expr_d(part);
                            od = d;
                            list = Some(l);
                        }
                    }
                }
                ExprKind::In {
                    subject,
                    negated,
                    list: Box::new(list.expect("list")),
                }
            }
            _ => {
                let (item, d) = self.expr_d(sig(tail).next().expect("item"));
                od = d;
                ExprKind::Contains {
                    subject,
                    item: Box::new(item),
                }
            }
        };
        let d = ld.max(od);
        if d >= MAX_EXPR_DEPTH {
            self.too_deep(span);
            // Keep the subject alone: the tree stays within the limit.
            let subject = match kind {
                ExprKind::Binary { lhs, .. } => lhs,
                ExprKind::Is { subject, .. }
                | ExprKind::In { subject, .. }
                | ExprKind::Contains { subject, .. } => subject,
                _ => unreachable!("a comparison tail builds one of the four kinds above"),
            };
            return (*subject, ld);
        }
        (Expr { kind, span }, d + 1)
    }
}

fn binary(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
    Expr {
        span: Span::new(lhs.span.start, rhs.span.end),
        kind: ExprKind::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
    }
}

/// The operator an `add_op`, `mul_op`, `k_and` or `k_or` pair stands for.
fn binary_op(p: &P<'_>) -> BinaryOp {
    match p.as_rule() {
        Rule::k_and => BinaryOp::And,
        Rule::k_or => BinaryOp::Or,
        _ => match p.as_str() {
            "+" => BinaryOp::Add,
            "-" => BinaryOp::Sub,
            "*" => BinaryOp::Mul,
            _ => BinaryOp::Div,
        },
    }
}

/// The operators that bind tighter in their pair of levels.
fn is_tight(op: BinaryOp) -> bool {
    matches!(op, BinaryOp::And | BinaryOp::Mul | BinaryOp::Div)
}

fn push_text(parts: &mut Vec<TemplatePart>, s: &str) {
    if let Some(TemplatePart::Text(t)) = parts.last_mut() {
        t.push_str(s);
    } else {
        parts.push(TemplatePart::Text(s.to_string()));
    }
}

fn weekday(s: &str) -> Weekday {
    Weekday::ALL
        .into_iter()
        .find(|d| d.keyword() == s)
        .unwrap_or(Weekday::Monday)
}

fn time_unit(s: &str) -> TimeUnit {
    match s.trim_end_matches('s') {
        "minute" => TimeUnit::Minutes,
        "hour" => TimeUnit::Hours,
        "week" => TimeUnit::Weeks,
        _ => TimeUnit::Days,
    }
}

/// Inner pairs without keyword tokens.
fn sig(p: P<'_>) -> impl Iterator<Item = P<'_>> {
    p.into_inner().filter(|p| {
        !matches!(
            p.as_rule(),
            Rule::lbrace | Rule::rbrace | Rule::equals | Rule::colon | Rule::comma
        ) && super::errors::keyword_text(p.as_rule()).is_none()
    })
}

/// Descends through the rules (`expr`, `not_expr`, … `unary`)
/// that wrap a single operand; they add nothing to the tree.
fn skip_single(mut p: P<'_>) -> P<'_> {
    loop {
        if !matches!(
            p.as_rule(),
            Rule::expr | Rule::not_expr | Rule::comparison | Rule::sum | Rule::unary
        ) {
            return p;
        }
        let mut inner = p.clone().into_inner();
        match (inner.next(), inner.next()) {
            (Some(only), None) => p = only,
            _ => return p,
        }
    }
}

fn first(p: P<'_>) -> P<'_> {
    p.into_inner()
        .next()
        .expect("grammar guarantees an inner pair")
}

fn next<'a>(it: &mut impl Iterator<Item = P<'a>>) -> P<'a> {
    it.next().expect("grammar guarantees this pair")
}

#[cfg(test)]
mod tests {
    use crate::diagnostic::Code;
    use crate::source::SourceFile;

    fn h005(literal: &str) -> bool {
        let text = format!("handoff \"D\" {{\n  done when deal.closed_at > {literal}\n}}\n");
        let parsed = crate::syntax::parse(&SourceFile::new("t.handoff", text));
        parsed.diagnostics.iter().any(|d| d.code == Code::H005)
    }

    #[test]
    fn a_date_time_the_evaluator_cannot_read_is_an_error() {
        // Seconds or an offset out of range compiled to an empty value,
        // so the condition could never hold, and nothing said so.
        for bad in [
            "2026-11-20T15:04:99Z",
            "2026-11-20T15:04:05+26:00",
            "2026-02-30T10:00",
            "2026-11-20T25:00",
        ] {
            assert!(h005(bad), "{bad}");
        }
        for good in [
            "2026-11-20T15:04:05Z",
            "2026-11-20T15:04",
            "2026-11-20T15:04:05-05:00",
        ] {
            assert!(!h005(good), "{good}");
        }
    }
}

/// One address: a name, one `@`, a domain with a dot; no spaces, commas or
/// angle brackets (a display name or a list in one string is not one).
fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let plain = |p: &str| {
        !p.is_empty()
            && !p
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, ',' | ';' | '<' | '>' | '@' | '"'))
    };
    plain(local)
        && plain(domain)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

#[cfg(test)]
mod email_tests {
    use super::looks_like_email;

    #[test]
    fn an_address_is_one_name_at_one_domain() {
        for ok in ["maya@example.com", "ana.b+crm@mail.example.co.uk", "X@Y.io"] {
            assert!(looks_like_email(ok), "{ok}");
        }
        for bad in [
            "maya",
            "maya@",
            "@example.com",
            "maya@example",
            "sam@exmaple,com",
            "a@x.com, b@x.com",
            "Maya <maya@example.com>",
            "maya@@example.com",
            "maya@example.com.",
            "",
        ] {
            assert!(!looks_like_email(bad), "{bad}");
        }
    }
}
