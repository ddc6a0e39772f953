//! The syntax tree of a `.handoff` file. Every node carries the byte span of
//! the source text it came from, so any later stage can point at it.
//!
//! The tree serializes without its spans (see [`Span`]'s `Serialize`): two
//! trees that differ only in layout serialize to the same JSON, which is how
//! the formatter's round trip is tested.

use serde::Serialize;

// Re-exported so `syntax::Span` keeps working.
pub use crate::source::Span;

// Spans are layout, not meaning: leave them out of the serialized tree.
impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

/// A name written in the source (`deal`, `risk_notes`, `delivery_owner`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// One parsed file: its declarations and its comments, in source order.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct File {
    pub declarations: Vec<Declaration>,
    pub comments: Vec<Comment>,
}

/// A `# ...` comment; `text` includes the `#`, not the line break.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comment {
    pub text: String,
    pub span: Span,
}

/// A top-level declaration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Declaration {
    Object(ObjectDecl),
    User(UserDecl),
    Team(TeamDecl),
    Channel(ChannelDecl),
    Calendar(CalendarDecl),
    Handoff(HandoffDecl),
}

impl Declaration {
    /// The span of the whole declaration.
    pub fn span(&self) -> Span {
        match self {
            Declaration::Object(d) => d.span,
            Declaration::User(d) => d.span,
            Declaration::Team(d) => d.span,
            Declaration::Channel(d) => d.span,
            Declaration::Calendar(d) => d.span,
            Declaration::Handoff(d) => d.span,
        }
    }
}

/// `object deal { ... }`: the shape of a CRM record type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectDecl {
    pub name: Ident,
    pub fields: Vec<FieldDecl>,
    pub span: Span,
}

/// `amount: money "Deal amount"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldDecl {
    pub name: Ident,
    pub ty: FieldType,
    pub label: Option<Text>,
    pub span: Span,
}

/// The type of a record field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum FieldType {
    Scalar { kind: ScalarType, span: Span },
    OneOf { values: Vec<Text>, span: Span },
    List { item: Box<FieldType>, span: Span },
}

impl FieldType {
    /// The span of the type as written.
    pub fn span(&self) -> Span {
        match self {
            FieldType::Scalar { span, .. }
            | FieldType::OneOf { span, .. }
            | FieldType::List { span, .. } => *span,
        }
    }
}

/// The built-in field types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ScalarType {
    Text,
    Number,
    Money,
    Date,
    DateTime,
    Email,
    User,
    YesNo,
}

impl ScalarType {
    /// The keyword that names this type in the language.
    pub fn keyword(self) -> &'static str {
        match self {
            ScalarType::Text => "text",
            ScalarType::Number => "number",
            ScalarType::Money => "money",
            ScalarType::Date => "date",
            ScalarType::DateTime => "datetime",
            ScalarType::Email => "email",
            ScalarType::User => "user",
            ScalarType::YesNo => "yes/no",
        }
    }
    /// The type named by `keyword`, if any.
    pub fn from_keyword(keyword: &str) -> Option<Self> {
        Some(match keyword {
            "text" => ScalarType::Text,
            "number" => ScalarType::Number,
            "money" => ScalarType::Money,
            "date" => ScalarType::Date,
            "datetime" => ScalarType::DateTime,
            "email" => ScalarType::Email,
            "user" => ScalarType::User,
            "yes/no" => ScalarType::YesNo,
            _ => return None,
        })
    }
}

/// A string literal without interpolation (labels, `one of` values, emails).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Text {
    pub value: String,
    pub span: Span,
}

/// `user founder = "maya@example.com"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserDecl {
    pub name: Ident,
    pub email: Text,
    pub span: Span,
}

/// `team delivery = "ana@example.com", founder`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamDecl {
    pub name: Ident,
    pub members: Vec<Member>,
    pub span: Span,
}

/// A team member: an email address or the name of a declared user.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Member {
    Email(Text),
    User(Ident),
}

/// `channel delivery_feed = "#delivery"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelDecl {
    pub name: Ident,
    pub target: Text,
    pub span: Span,
}

/// `calendar [name] { workdays ...; timezone ...; holidays ...; hours ... }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalendarDecl {
    pub name: Option<Ident>,
    pub items: Vec<CalendarItem>,
    pub span: Span,
}

/// One line of a calendar.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum CalendarItem {
    /// `workdays monday to friday` (`range: true`) or `workdays monday, wednesday`.
    Workdays {
        days: Vec<Weekday>,
        range: bool,
        span: Span,
    },
    Timezone {
        name: Text,
        span: Span,
    },
    Holidays {
        dates: Vec<DateLit>,
        span: Span,
    },
    /// `hours 9:00 to 17:00`.
    Hours {
        start: ClockTime,
        end: ClockTime,
        span: Span,
    },
}

impl CalendarItem {
    /// The span of the whole line.
    pub fn span(&self) -> Span {
        match self {
            CalendarItem::Workdays { span, .. }
            | CalendarItem::Timezone { span, .. }
            | CalendarItem::Holidays { span, .. }
            | CalendarItem::Hours { span, .. } => *span,
        }
    }
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    /// All days, Monday first.
    pub const ALL: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];
    /// The keyword for this day.
    pub fn keyword(self) -> &'static str {
        match self {
            Weekday::Monday => "monday",
            Weekday::Tuesday => "tuesday",
            Weekday::Wednesday => "wednesday",
            Weekday::Thursday => "thursday",
            Weekday::Friday => "friday",
            Weekday::Saturday => "saturday",
            Weekday::Sunday => "sunday",
        }
    }
}

/// A time of day, `9:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClockTime {
    pub hour: u8,
    pub minute: u8,
    pub span: Span,
}

/// A calendar date, `2026-12-25`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DateLit {
    pub year: i16,
    pub month: i8,
    pub day: i8,
    pub span: Span,
}

/// `handoff "Sales to Delivery" { ... }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HandoffDecl {
    pub name: Text,
    pub items: Vec<HandoffItem>,
    pub span: Span,
}

/// One statement in a handoff block, in source order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum HandoffItem {
    Trigger(Trigger),
    Require(Require),
    IfMissing(ActionBlock),
    Exception(Exception),
    OnException(OnException),
    Brief(Brief),
    Then(ActionBlock),
    DoneWhen(Condition),
    /// `escalate when CONDITION`: delivery came back for missing context.
    EscalateWhen(Condition),
}

impl HandoffItem {
    /// The span of the whole statement.
    pub fn span(&self) -> Span {
        match self {
            HandoffItem::Trigger(t) => t.span,
            HandoffItem::Require(r) => r.span,
            HandoffItem::IfMissing(b) | HandoffItem::Then(b) => b.span,
            HandoffItem::Exception(e) => e.span,
            HandoffItem::OnException(o) => o.span,
            HandoffItem::Brief(b) => b.span,
            HandoffItem::DoneWhen(c) | HandoffItem::EscalateWhen(c) => c.span,
        }
    }
}

/// `when deal.stage becomes "Closed Won" where deal.amount > 0`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trigger {
    pub event: TriggerEvent,
    pub filter: Option<Expr>,
    pub span: Span,
}

/// What change fires a handoff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum TriggerEvent {
    /// `when deal is created`.
    Created { object: Ident },
    /// `when deal.stage becomes "Closed Won"`.
    Becomes { field: Path, value: Literal },
    /// `when deal.stage changes [from A] [to B]`.
    Changes {
        field: Path,
        from: Option<Literal>,
        to: Option<Literal>,
    },
}

/// `OBJECT.FIELD`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Path {
    pub object: Ident,
    pub field: Ident,
    pub span: Span,
}

/// A name that may be qualified: `founder`, `delivery_owner`, `deal.owner`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reference {
    pub head: Ident,
    pub field: Option<Ident>,
    pub span: Span,
}

/// `require buyer_goals, deal.main_contact`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Require {
    pub fields: Vec<Reference>,
    pub span: Span,
}

/// A `{ ... }` of actions (`if missing`, `then`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionBlock {
    pub actions: Vec<Action>,
    pub span: Span,
}

/// `exception "Custom Scope" when deal.custom_scope is yes`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exception {
    pub name: Text,
    pub condition: ExceptionCondition,
    pub span: Span,
}

/// An exception's test: a built-in expression or a rhai script.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ExceptionCondition {
    Expr(Expr),
    Script(Script),
}

/// ```` script ``` ... ``` ````: rhai source, kept verbatim.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Script {
    pub source: String,
    /// Span of `source` alone (inside the fences), so rhai errors map back.
    pub source_span: Span,
    pub span: Span,
}

/// `on exception { ... resume when ... }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OnException {
    pub items: Vec<OnExceptionItem>,
    pub span: Span,
}

/// A statement in an `on exception` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum OnExceptionItem {
    Action(Action),
    ResumeWhen(Condition),
}

/// A condition statement (`done when`, `resume when`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Condition {
    pub expr: Expr,
    pub span: Span,
}

/// `brief { "Client" = deal.name  ask "..." }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Brief {
    pub items: Vec<BriefItem>,
    pub span: Span,
}

/// A line of a brief.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum BriefItem {
    Field {
        label: Template,
        value: Expr,
        span: Span,
    },
    Ask {
        question: Template,
        span: Span,
    },
}

impl BriefItem {
    /// The span of the line.
    pub fn span(&self) -> Span {
        match self {
            BriefItem::Field { span, .. } | BriefItem::Ask { span, .. } => *span,
        }
    }
}

/// An action the engine plans when a handoff runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Action {
    Assign(Assign),
    Task(Task),
    Notify(Notify),
    DraftEmail(DraftEmail),
    Set(SetField),
    Pause { span: Span },
}

impl Action {
    /// The span of the whole action.
    pub fn span(&self) -> Span {
        match self {
            Action::Assign(a) => a.span,
            Action::Task(t) => t.span,
            Action::Notify(n) => n.span,
            Action::DraftEmail(d) => d.span,
            Action::Set(s) => s.span,
            Action::Pause { span } => *span,
        }
    }
}

/// `assign delivery_owner from team delivery by round robin` or
/// `assign delivery_owner to deal.owner`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assign {
    pub role: Ident,
    pub source: AssignSource,
    pub span: Span,
}

/// Where an assignment picks its person.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum AssignSource {
    Team { team: Ident, strategy: Strategy },
    To(Reference),
}

/// How a person is picked from a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Strategy {
    RoundRobin,
    LeastLoaded,
}

/// `task "Kickoff" for delivery_owner due in 2 business days { ... }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    pub title: Template,
    pub assignee: Reference,
    pub due: Option<Due>,
    pub checklist: Vec<Template>,
    pub attach_brief: bool,
    /// Whether a `{ }` body was written (kept so the formatter can keep it).
    pub has_body: bool,
    pub span: Span,
}

/// `due in 2 business days`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Due {
    pub amount: f64,
    pub business: bool,
    pub unit: TimeUnit,
    pub span: Span,
}

/// The unit of a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TimeUnit {
    Minutes,
    Hours,
    Days,
    Weeks,
}

impl TimeUnit {
    /// The keyword, singular for one and plural otherwise.
    pub fn keyword(self, amount: f64) -> &'static str {
        let one = amount == 1.0;
        match (self, one) {
            (TimeUnit::Minutes, true) => "minute",
            (TimeUnit::Minutes, false) => "minutes",
            (TimeUnit::Hours, true) => "hour",
            (TimeUnit::Hours, false) => "hours",
            (TimeUnit::Days, true) => "day",
            (TimeUnit::Days, false) => "days",
            (TimeUnit::Weeks, true) => "week",
            (TimeUnit::Weeks, false) => "weeks",
        }
    }
}

/// `notify deal.owner "..."` or `notify channel delivery_feed "..."`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notify {
    pub target: NotifyTarget,
    pub message: Template,
    pub span: Span,
}

/// Who a notification goes to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum NotifyTarget {
    Channel(Ident),
    Person(Reference),
}

/// `draft email to deal.main_contact for review { subject "..." body "..." }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DraftEmail {
    pub to: Reference,
    pub subject: Template,
    pub body: Template,
    pub span: Span,
}

/// `set deal.stage = "Onboarding"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetField {
    pub field: Path,
    pub value: Expr,
    pub span: Span,
}

/// A string with `{expr}` interpolations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Template {
    pub parts: Vec<TemplatePart>,
    pub span: Span,
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum TemplatePart {
    /// Literal text, escapes already resolved.
    Text(String),
    /// `{expr}`.
    Expr(Expr),
}

/// A literal value (trigger values).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Literal {
    Text(Text),
    /// Exact: `0.1` is one tenth.
    Number {
        #[serde(serialize_with = "number_json")]
        value: rust_decimal::Decimal,
        span: Span,
    },
    Bool {
        value: bool,
        span: Span,
    },
    Date(DateLit),
    DateTime {
        text: String,
        span: Span,
    },
}

impl Literal {
    /// The span of the literal.
    pub fn span(&self) -> Span {
        match self {
            Literal::Text(t) => t.span,
            Literal::Number { span, .. }
            | Literal::Bool { span, .. }
            | Literal::DateTime { span, .. } => *span,
            Literal::Date(d) => d.span,
        }
    }
}

/// An expression.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// The kinds of expression.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ExprKind {
    Literal(Literal),
    Template(Template),
    Duration {
        amount: f64,
        business: bool,
        unit: TimeUnit,
    },
    Today,
    Now,
    /// `deal.amount`.
    Path(Path),
    /// A bare name: a role, user, or a template variable such as `missing`.
    Name(Ident),
    List(Vec<Expr>),
    /// `( expr )`, kept so the formatter writes back what was written.
    Paren(Box<Expr>),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `x is [not] set|missing|empty|value`.
    Is {
        subject: Box<Expr>,
        negated: bool,
        test: IsTest,
    },
    /// `x [not] in [..]`.
    In {
        subject: Box<Expr>,
        negated: bool,
        list: Box<Expr>,
    },
    Contains {
        subject: Box<Expr>,
        item: Box<Expr>,
    },
}

/// What an `is` tests for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum IsTest {
    Set,
    Missing,
    Empty,
    Value(Box<Expr>),
}

/// Binary operators, lowest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
}

impl BinaryOp {
    /// How the operator is written.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
        }
    }
}

/// A number literal in the tree's JSON as a number value is written: by
/// value, so `2.50` and `2.5` are the same tree.
fn number_json<S: serde::Serializer>(d: &rust_decimal::Decimal, s: S) -> Result<S::Ok, S::Error> {
    crate::value::Value::Number(*d).serialize(s)
}
