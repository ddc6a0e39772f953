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
use crate::diagnostic::{Code, Diagnostic, SourceFile};

type P<'a> = Pair<'a, Rule>;

/// Builds nodes for one declaration; `base` is the declaration's offset in the
/// file, since each declaration is parsed from its own slice.
pub(crate) struct Builder<'s> {
    source: &'s Arc<SourceFile>,
    base: usize,
    pub diagnostics: Vec<Diagnostic>,
}

impl<'s> Builder<'s> {
    pub fn new(source: &'s Arc<SourceFile>, base: usize) -> Self {
        Builder {
            source,
            base,
            diagnostics: Vec::new(),
        }
    }

    fn span(&self, p: &P<'_>) -> Span {
        let s = p.as_span();
        Span::new(self.base + s.start(), self.base + s.end())
    }

    fn error(&mut self, code: Code, span: Span, message: String, label: &str, help: &str) {
        self.diagnostics
            .push(Diagnostic::error(code, self.source, span, message, label).with_help(help));
    }

    pub fn declaration(&mut self, p: P<'_>) -> Declaration {
        match p.as_rule() {
            Rule::object_decl => Declaration::Object(self.object(p)),
            Rule::user_decl => {
                let span = self.span(&p);
                let mut it = sig(p);
                let name = self.ident(next(&mut it));
                let email = self.text(next(&mut it));
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
                            Rule::string => Member::Email(self.text(inner)),
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
        for part in p.into_inner() {
            match part.as_rule() {
                Rule::number => amount = self.number(&part),
                Rule::k_business => business = true,
                Rule::time_unit => unit = time_unit(part.as_str()),
                _ => {}
            }
        }
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
                value: self.number(&p),
                span,
            },
            Rule::neg_number => {
                let n = first(p);
                Literal::Number {
                    value: -self.number(&n),
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
                if jiff::civil::Date::strptime("%Y-%m-%d", date).is_err()
                    || jiff::civil::Time::strptime("%H:%M", &text[11..16]).is_err()
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
        let span = self.span(&p);
        let mut parts: Vec<TemplatePart> = Vec::new();
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
                    let e = self.expr(first(part));
                    parts.push(TemplatePart::Expr(e));
                }
            }
        }
        Template { parts, span }
    }

    // ------------------------------------------------------ expressions

    pub fn expr(&mut self, p: P<'_>) -> Expr {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::expr => self.expr(first(p)),
            Rule::or_expr | Rule::and_expr => {
                let op = if p.as_rule() == Rule::or_expr {
                    BinaryOp::Or
                } else {
                    BinaryOp::And
                };
                let mut it = sig(p);
                let mut lhs = self.expr(next(&mut it));
                for rhs in it {
                    let rhs = self.expr(rhs);
                    lhs = binary(op, lhs, rhs);
                }
                lhs
            }
            Rule::not_expr => {
                // `not not x`: the keywords come first, then the operand.
                let mut nots = 0;
                let mut operand = None;
                for part in p.into_inner() {
                    if part.as_rule() == Rule::k_not {
                        nots += 1;
                    } else {
                        operand = Some(self.expr(part));
                    }
                }
                let mut e = operand.expect("operand of not");
                for _ in 0..nots {
                    e = Expr {
                        span: Span::new(span.start, e.span.end),
                        kind: ExprKind::Not(Box::new(e)),
                    };
                }
                e
            }
            Rule::comparison => {
                let mut it = p.into_inner();
                let lhs = self.expr(next(&mut it));
                match it.next() {
                    None => lhs,
                    Some(tail) => self.comparison_tail(lhs, tail, span),
                }
            }
            Rule::sum | Rule::product => {
                let mut it = p.into_inner();
                let mut lhs = self.expr(next(&mut it));
                while let Some(op) = it.next() {
                    let op = match op.as_str() {
                        "+" => BinaryOp::Add,
                        "-" => BinaryOp::Sub,
                        "*" => BinaryOp::Mul,
                        _ => BinaryOp::Div,
                    };
                    let rhs = self.expr(next(&mut it));
                    lhs = binary(op, lhs, rhs);
                }
                lhs
            }
            Rule::unary => {
                let mut negs = 0;
                let mut operand = None;
                for part in p.into_inner() {
                    if part.as_rule() == Rule::neg_op {
                        negs += 1;
                    } else {
                        operand = Some(self.expr(part));
                    }
                }
                let mut e = operand.expect("operand");
                for _ in 0..negs {
                    e = Expr {
                        span: Span::new(span.start, e.span.end),
                        kind: ExprKind::Neg(Box::new(e)),
                    };
                }
                e
            }
            Rule::paren => Expr {
                kind: ExprKind::Paren(Box::new(self.expr(first(p)))),
                span,
            },
            Rule::list_lit => Expr {
                kind: ExprKind::List(p.into_inner().map(|e| self.expr(e)).collect()),
                span,
            },
            Rule::duration => {
                let mut amount = 0.0;
                let mut business = false;
                let mut unit = TimeUnit::Days;
                for part in p.into_inner() {
                    match part.as_rule() {
                        Rule::number => amount = self.number(&part),
                        Rule::k_business => business = true,
                        _ => unit = time_unit(part.as_str()),
                    }
                }
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
            Rule::string => Expr {
                kind: ExprKind::Template(self.template(p)),
                span,
            },
            _ => Expr {
                kind: ExprKind::Literal(self.literal(p)),
                span,
            },
        }
    }

    fn comparison_tail(&mut self, lhs: Expr, tail: P<'_>, span: Span) -> Expr {
        let subject = Box::new(lhs);
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
                let rhs = self.expr(next(&mut it));
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
                        _ => test = IsTest::Value(Box::new(self.expr(part))),
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
                        _ => list = Some(self.expr(part)),
                    }
                }
                ExprKind::In {
                    subject,
                    negated,
                    list: Box::new(list.expect("list")),
                }
            }
            _ => {
                let item = self.expr(sig(tail).next().expect("item"));
                ExprKind::Contains {
                    subject,
                    item: Box::new(item),
                }
            }
        };
        Expr { kind, span }
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

fn first(p: P<'_>) -> P<'_> {
    p.into_inner()
        .next()
        .expect("grammar guarantees an inner pair")
}

fn next<'a>(it: &mut impl Iterator<Item = P<'a>>) -> P<'a> {
    it.next().expect("grammar guarantees this pair")
}
