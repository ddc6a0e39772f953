//! Compiled expressions: names resolved to record slots, users and roles;
//! literals turned into values. Evaluation never looks a name up.

use crate::check::{Directory, ObjectSchema};
use crate::syntax::{self, BinaryOp, Expr, ExprKind, IsTest, Literal, TemplatePart};
use crate::value::{Duration, Value};

/// A compiled expression.
#[derive(Debug, Clone)]
pub enum CExpr {
    Const(Value),
    /// A field of the record, by slot.
    Field(usize),
    Today,
    Now,
    Person(PersonRef),
    /// `{missing}`: the labels of the missing required fields.
    Missing,
    /// `{exception}`: the names of the flagged exceptions.
    Exception,
    Template(CTemplate),
    List(Vec<CExpr>),
    Not(Box<CExpr>),
    And(Box<CExpr>, Box<CExpr>),
    Or(Box<CExpr>, Box<CExpr>),
    Neg(Box<CExpr>),
    /// Comparisons and arithmetic.
    Binary(BinaryOp, Box<CExpr>, Box<CExpr>),
    /// A field compared with a constant (`deal.amount > 50000`,
    /// `deal.segment is "enterprise"`): the commonest condition, lowered
    /// so that deciding it is one slot read and one comparison. `op` is
    /// `==`, `!=`, `<`, `<=`, `>` or `>=`.
    FieldTest {
        slot: usize,
        op: BinaryOp,
        value: Value,
    },
    Is {
        subject: Box<CExpr>,
        negated: bool,
        test: CIsTest,
    },
    In {
        subject: Box<CExpr>,
        negated: bool,
        list: Box<CExpr>,
    },
    Contains {
        subject: Box<CExpr>,
        item: Box<CExpr>,
    },
}

/// What `is` tests. `is VALUE` and `is not VALUE` are not here: they lower
/// to `==` and `!=` (a [`CExpr::FieldTest`] when a field is compared with a
/// constant, else a [`CExpr::Binary`]).
#[derive(Debug, Clone)]
pub enum CIsTest {
    Set,
    Missing,
    Empty,
}

/// A person an action names.
#[derive(Debug, Clone, PartialEq)]
pub enum PersonRef {
    /// A declared user: name and email.
    User { name: String, email: String },
    /// A role assigned earlier on the path.
    Role(String),
    /// A user or email field of the record.
    Field(usize),
}

/// A template: text with interpolated expressions.
#[derive(Debug, Clone, Default)]
pub struct CTemplate {
    pub parts: Vec<CPart>,
}

/// A piece of a template.
#[derive(Debug, Clone)]
pub enum CPart {
    Text(String),
    Expr(CExpr),
}

/// A condition with its source text and the fields it reads, for traces.
#[derive(Debug, Clone)]
pub struct Cond {
    pub expr: CExpr,
    /// The condition as written.
    pub text: String,
    /// Slots the condition reads, in order of first use.
    pub reads: Vec<usize>,
}

/// Lowers expressions of one handoff.
pub(crate) struct Lower<'a> {
    pub object: &'a ObjectSchema,
    pub directory: &'a Directory,
    pub source: &'a str,
}

impl Lower<'_> {
    pub fn cond(&self, e: &Expr) -> Cond {
        let expr = self.expr(e);
        let mut reads = Vec::new();
        collect_reads(&expr, &mut reads);
        Cond {
            expr,
            text: as_written(
                self.source
                    .get(e.span.start..e.span.end)
                    .unwrap_or_default(),
            ),
            reads,
        }
    }

    pub fn expr(&self, e: &Expr) -> CExpr {
        match &e.kind {
            ExprKind::Literal(l) => CExpr::Const(literal(l)),
            ExprKind::Template(t) => {
                let t = self.template(t);
                // A string without `{…}` is a constant: rendering it per
                // event would allocate for nothing.
                let mut text = String::new();
                for part in &t.parts {
                    match part {
                        CPart::Text(s) => text.push_str(s),
                        CPart::Expr(_) => return CExpr::Template(t),
                    }
                }
                CExpr::Const(Value::Text(text))
            }
            ExprKind::Duration {
                amount,
                business,
                unit,
            } => CExpr::Const(Value::Duration(Duration {
                amount: *amount,
                business: *business,
                unit: *unit,
            })),
            ExprKind::Today => CExpr::Today,
            ExprKind::Now => CExpr::Now,
            ExprKind::Path(p) => self
                .object
                .slot(&p.field.name)
                .map_or(CExpr::Const(Value::Null), CExpr::Field),
            ExprKind::Name(n) => match n.name.as_str() {
                "missing" => CExpr::Missing,
                "exception" => CExpr::Exception,
                name => CExpr::Person(self.person_name(name)),
            },
            ExprKind::List(items) => {
                let items: Vec<CExpr> = items.iter().map(|i| self.expr(i)).collect();
                // A list of constants (`in ["smb", "mid"]`) is one constant,
                // not a list built per event.
                if items.iter().all(|i| matches!(i, CExpr::Const(_))) {
                    let values = items.into_iter().filter_map(|i| match i {
                        CExpr::Const(v) => Some(v),
                        _ => None,
                    });
                    CExpr::Const(Value::List(values.collect()))
                } else {
                    CExpr::List(items)
                }
            }
            ExprKind::Paren(x) => self.expr(x),
            ExprKind::Neg(x) => CExpr::Neg(Box::new(self.expr(x))),
            ExprKind::Not(x) => CExpr::Not(Box::new(self.expr(x))),
            ExprKind::Binary { op, lhs, rhs } => {
                let (l, r) = (self.expr(lhs), self.expr(rhs));
                match op {
                    BinaryOp::And => CExpr::And(Box::new(l), Box::new(r)),
                    BinaryOp::Or => CExpr::Or(Box::new(l), Box::new(r)),
                    op if is_comparison(*op) => field_test(*op, l, r),
                    op => CExpr::Binary(*op, Box::new(l), Box::new(r)),
                }
            }
            ExprKind::Is {
                subject,
                negated,
                test,
            } => {
                let subject = self.expr(subject);
                let test = match test {
                    IsTest::Set => CIsTest::Set,
                    IsTest::Missing => CIsTest::Missing,
                    IsTest::Empty => CIsTest::Empty,
                    IsTest::Value(v) => {
                        let op = if *negated { BinaryOp::Ne } else { BinaryOp::Eq };
                        return field_test(op, subject, self.expr(v));
                    }
                };
                CExpr::Is {
                    subject: Box::new(subject),
                    negated: *negated,
                    test,
                }
            }
            ExprKind::In {
                subject,
                negated,
                list,
            } => CExpr::In {
                subject: Box::new(self.expr(subject)),
                negated: *negated,
                list: Box::new(self.expr(list)),
            },
            ExprKind::Contains { subject, item } => CExpr::Contains {
                subject: Box::new(self.expr(subject)),
                item: Box::new(self.expr(item)),
            },
        }
    }

    pub fn template(&self, t: &syntax::Template) -> CTemplate {
        CTemplate {
            parts: t
                .parts
                .iter()
                .map(|p| match p {
                    TemplatePart::Text(s) => CPart::Text(s.clone()),
                    TemplatePart::Expr(e) => CPart::Expr(self.expr(e)),
                })
                .collect(),
        }
    }

    pub fn person(&self, r: &syntax::Reference) -> PersonRef {
        match &r.field {
            Some(f) => self
                .object
                .slot(&f.name)
                .map_or(PersonRef::Role(f.name.clone()), PersonRef::Field),
            None => self.person_name(&r.head.name),
        }
    }

    fn person_name(&self, name: &str) -> PersonRef {
        match self.directory.users.get(name) {
            Some(u) => PersonRef::User {
                name: name.to_string(),
                email: u.value.clone(),
            },
            None => PersonRef::Role(name.to_string()),
        }
    }
}

fn is_comparison(op: BinaryOp) -> bool {
    use BinaryOp::*;
    matches!(op, Eq | Ne | Lt | Le | Gt | Ge)
}

/// `lhs op rhs` for a comparison `op`: a [`CExpr::FieldTest`] when it
/// compares a field with a constant, on either side. `x is v` means `x == v` and
/// `x is not v` means `x != v`, so both lower here.
fn field_test(op: BinaryOp, lhs: CExpr, rhs: CExpr) -> CExpr {
    match (lhs, rhs) {
        (CExpr::Field(slot), CExpr::Const(value)) => CExpr::FieldTest { slot, op, value },
        // `0 < deal.amount` is `deal.amount > 0`.
        (CExpr::Const(value), CExpr::Field(slot)) => CExpr::FieldTest {
            slot,
            op: mirrored(op),
            value,
        },
        (l, r) => CExpr::Binary(op, Box::new(l), Box::new(r)),
    }
}

/// The comparison with its operands swapped: `a < b` is `b > a`.
fn mirrored(op: BinaryOp) -> BinaryOp {
    use BinaryOp::*;
    match op {
        Lt => Gt,
        Le => Ge,
        Gt => Lt,
        Ge => Le,
        other => other,
    }
}

/// The value of a literal.
pub fn literal(l: &Literal) -> Value {
    match l {
        Literal::Text(t) => Value::Text(t.value.clone()),
        Literal::Number { value, .. } => Value::Number(*value),
        Literal::Bool { value, .. } => Value::Bool(*value),
        Literal::Date(d) => {
            jiff::civil::Date::new(d.year, d.month, d.day).map_or(Value::Null, Value::Date)
        }
        Literal::DateTime { text, .. } => parse_datetime(text).map_or(Value::Null, Value::DateTime),
    }
}

/// Source text as a label or an explanation shows it: on one line, without
/// the author's `#` comments. A span of the parser runs up to the next token,
/// so it takes in a trailing comment (`is yes  # the human override`).
pub(crate) fn as_written(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let end = crate::check::comment_start(line).unwrap_or(line.len());
        out.push(' ');
        out.push_str(&line[..end]);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses `2026-11-20T15:04[:05][Z|±hh:mm]`; without an offset it is UTC.
pub fn parse_datetime(text: &str) -> Option<jiff::Timestamp> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Some(t);
    }
    let civil: jiff::civil::DateTime = text.parse().ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

fn collect_reads(e: &CExpr, out: &mut Vec<usize>) {
    let push = |s: usize, out: &mut Vec<usize>| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    match e {
        CExpr::Field(s) | CExpr::FieldTest { slot: s, .. } => push(*s, out),
        CExpr::Person(PersonRef::Field(s)) => push(*s, out),
        CExpr::Template(t) => {
            for p in &t.parts {
                if let CPart::Expr(x) = p {
                    collect_reads(x, out);
                }
            }
        }
        CExpr::List(items) => items.iter().for_each(|i| collect_reads(i, out)),
        CExpr::Not(x) | CExpr::Neg(x) => collect_reads(x, out),
        CExpr::And(a, b) | CExpr::Or(a, b) | CExpr::Binary(_, a, b) => {
            collect_reads(a, out);
            collect_reads(b, out);
        }
        CExpr::Is { subject, .. } => collect_reads(subject, out),
        CExpr::In { subject, list, .. } => {
            collect_reads(subject, out);
            collect_reads(list, out);
        }
        CExpr::Contains { subject, item } => {
            collect_reads(subject, out);
            collect_reads(item, out);
        }
        _ => {}
    }
}
