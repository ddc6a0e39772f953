//! Evaluating compiled expressions and templates against a record.

use std::borrow::Cow;
use std::fmt::Write as _;

use jiff::tz::TimeZone;

use crate::compile::{CExpr, CIsTest, CPart, CTemplate, Calendar, PersonRef};
use crate::syntax::BinaryOp;
use crate::value::Value;

/// A record by slot, read without copying: the values an event carries
/// over the values known before it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Values given for this moment, by slot; `None` where nothing is said.
    pub overlay: &'a [Option<Value>],
    /// The values known otherwise, by slot; a slot past the end is empty.
    pub base: &'a [Value],
}

static NULL: Value = Value::Null;

/// Writes a value as a template shows it (its `Display`) at the end of
/// `out`; text, the common case, is copied without the formatting machinery.
pub(super) fn push_value(out: &mut String, v: &Value) {
    match v {
        Value::Text(t) => out.push_str(t),
        Value::Null => {}
        // Writing to a String cannot fail.
        v => {
            let _ = write!(out, "{v}");
        }
    }
}

impl<'a> Record<'a> {
    /// A record that is just `values`.
    pub fn from_slice(values: &'a [Value]) -> Self {
        Record {
            overlay: &[],
            base: values,
        }
    }

    /// The value of a slot.
    #[inline]
    pub fn get(&self, slot: usize) -> &'a Value {
        match self.overlay.get(slot) {
            Some(Some(v)) => v,
            _ => self.base.get(slot).unwrap_or(&NULL),
        }
    }

    /// The slots among `slots` whose values are missing in the sense of
    /// `require`, in order. A plain loop rather than an iterator chain:
    /// this is the gate of every triggered handoff.
    pub fn missing(&self, slots: &[usize]) -> Vec<usize> {
        let mut out = Vec::new();
        for &s in slots {
            if self.get(s).is_missing() {
                out.push(s);
            }
        }
        out
    }
}

/// What an expression can see.
pub struct Ctx<'a> {
    /// The record after the event, by slot.
    pub record: Record<'a>,
    pub now: jiff::Timestamp,
    /// The calendar: its timezone says what day `today` is.
    pub calendar: &'a Calendar,
    /// Roles assigned so far: role → person.
    pub roles: &'a std::collections::BTreeMap<String, String>,
    /// Labels of missing required fields (for `{missing}`).
    pub missing: &'a [String],
    /// Names of flagged exceptions (for `{exception}`).
    pub exceptions: &'a [String],
}

impl Ctx<'_> {
    /// Today's date in the calendar's timezone. Computed when a rule asks,
    /// not per event: most rules never read `today`, and the timezone
    /// lookup costs more than evaluating a whole rule.
    pub fn today(&self) -> jiff::civil::Date {
        self.tz().to_datetime(self.now).date()
    }

    /// The calendar's timezone: the one days are counted in.
    #[inline]
    fn tz(&self) -> &TimeZone {
        self.calendar.timezone()
    }

    /// The value of a field slot.
    pub fn field(&self, slot: usize) -> &Value {
        self.record.get(slot)
    }

    /// The person (email or CRM user) a reference names, if known.
    pub fn person(&self, p: &PersonRef) -> Option<String> {
        match p {
            PersonRef::User { email, .. } => Some(email.clone()),
            PersonRef::Role(r) => self.roles.get(r).cloned(),
            PersonRef::Field(s) => match self.field(*s) {
                Value::Null => None,
                Value::Text(t) => Some(t.clone()).filter(|s| !s.trim().is_empty()),
                v => Some(v.to_string()).filter(|s| !s.trim().is_empty()),
            },
        }
    }

    /// Renders a template.
    pub fn render(&self, t: &CTemplate) -> String {
        // Sized for the text and a short value per `{…}`, so most renders
        // allocate once instead of growing.
        let size = t
            .parts
            .iter()
            .map(|p| match p {
                CPart::Text(s) => s.len(),
                CPart::Expr(_) => 24,
            })
            .sum();
        let mut out = String::with_capacity(size);
        self.render_into(&mut out, t);
        out
    }

    /// Renders a template at the end of `out`.
    pub fn render_into(&self, out: &mut String, t: &CTemplate) {
        for p in &t.parts {
            match p {
                CPart::Text(s) => out.push_str(s),
                CPart::Expr(e) => push_value(out, &self.value(e)),
            }
        }
    }

    /// Evaluates an expression, borrowing constants and fields rather than
    /// cloning them.
    fn value<'b>(&'b self, e: &'b CExpr) -> Cow<'b, Value> {
        match e {
            CExpr::Const(v) => Cow::Borrowed(v),
            CExpr::Field(s) => Cow::Borrowed(self.field(*s)),
            other => Cow::Owned(self.eval(other)),
        }
    }

    /// Evaluates an expression. Operations on absent values yield absent or
    /// false rather than failing: a record with gaps is normal.
    pub fn eval(&self, e: &CExpr) -> Value {
        match e {
            CExpr::Const(v) => v.clone(),
            CExpr::Field(s) => self.field(*s).clone(),
            CExpr::Today => Value::Date(self.today()),
            CExpr::Now => Value::DateTime(self.now),
            CExpr::Person(p) => self.person(p).map_or(Value::Null, Value::Text),
            CExpr::Missing => Value::Text(self.missing.join(", ")),
            CExpr::Exception => Value::Text(self.exceptions.join(", ")),
            CExpr::Template(t) => Value::Text(self.render(t)),
            CExpr::List(items) => Value::List(items.iter().map(|i| self.eval(i)).collect()),
            CExpr::Not(x) => Value::Bool(!self.truth(x)),
            CExpr::And(a, b) => Value::Bool(self.truth(a) && self.truth(b)),
            CExpr::Or(a, b) => Value::Bool(self.truth(a) || self.truth(b)),
            CExpr::Neg(x) => match self.eval(x) {
                Value::Number(n) => Value::Number(-n),
                Value::Money(m) => Value::Money(-m),
                Value::Duration(mut d) => {
                    d.amount = -d.amount;
                    Value::Duration(d)
                }
                _ => Value::Null,
            },
            CExpr::Binary(op, a, b) => self.binary(*op, &self.value(a), &self.value(b)),
            CExpr::FieldTest { .. }
            | CExpr::Is { .. }
            | CExpr::In { .. }
            | CExpr::Contains { .. } => Value::Bool(self.truth(e)),
        }
    }

    /// Evaluates a condition; anything but `yes` is false. Conditions are
    /// decided here without building a `Value` for each step: this is the
    /// hot path of every trigger, filter and exception.
    #[inline]
    pub fn truth(&self, e: &CExpr) -> bool {
        // The common shapes are decided in this small function; the rest
        // in `truth_other`, whose larger frame the common path then does
        // not pay for.
        match e {
            CExpr::FieldTest { slot, op, value } => self.field_test(*slot, *op, value),
            CExpr::And(a, b) => self.operand(a) && self.operand(b),
            CExpr::Or(a, b) => self.operand(a) || self.operand(b),
            CExpr::Not(x) => !self.operand(x),
            other => self.truth_other(other),
        }
    }

    /// An operand of `and`, `or` or `not`: a field test is decided in
    /// place rather than by another call.
    #[inline(always)]
    fn operand(&self, e: &CExpr) -> bool {
        match e {
            CExpr::FieldTest { slot, op, value } => self.field_test(*slot, *op, value),
            other => self.truth(other),
        }
    }

    #[inline(always)]
    fn field_test(&self, slot: usize, op: BinaryOp, value: &Value) -> bool {
        let v = self.field(slot);
        match op {
            BinaryOp::Eq => equal(self.tz(), v, value),
            BinaryOp::Ne => !equal(self.tz(), v, value),
            op => compare(self.tz(), op, v, value),
        }
    }

    #[inline(never)]
    fn truth_other(&self, e: &CExpr) -> bool {
        match e {
            CExpr::Binary(op, a, b) => match op {
                BinaryOp::Eq => equal(self.tz(), &self.value(a), &self.value(b)),
                BinaryOp::Ne => !equal(self.tz(), &self.value(a), &self.value(b)),
                BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                    compare(self.tz(), *op, &self.value(a), &self.value(b))
                }
                op => self
                    .binary(*op, &self.value(a), &self.value(b))
                    .as_bool()
                    .unwrap_or(false),
            },
            CExpr::Is {
                subject,
                negated,
                test,
            } => {
                let v = self.value(subject);
                let r = match test {
                    CIsTest::Set => !v.is_missing(),
                    CIsTest::Missing => v.is_missing(),
                    CIsTest::Empty => match &*v {
                        Value::Text(s) => s.trim().is_empty(),
                        Value::List(l) => l.is_empty(),
                        Value::Null => true,
                        _ => false,
                    },
                };
                r != *negated
            }
            CExpr::In {
                subject,
                negated,
                list,
            } => {
                let v = self.value(subject);
                let found = match &*self.value(list) {
                    Value::List(items) => items.iter().any(|i| equal(self.tz(), &v, i)),
                    _ => false,
                };
                found != *negated
            }
            CExpr::Contains { subject, item } => {
                let item = self.value(item);
                match &*self.value(subject) {
                    Value::List(items) => items.iter().any(|i| equal(self.tz(), i, &item)),
                    Value::Text(s) => match &*item {
                        Value::Text(t) => s.to_lowercase().contains(&t.to_lowercase()),
                        _ => false,
                    },
                    _ => false,
                }
            }
            other => self.value(other).as_bool().unwrap_or(false),
        }
    }

    fn binary(&self, op: BinaryOp, a: &Value, b: &Value) -> Value {
        use BinaryOp::*;
        use Value::*;
        match op {
            Eq => Bool(equal(self.tz(), a, b)),
            Ne => Bool(!equal(self.tz(), a, b)),
            Lt | Le | Gt | Ge => Bool(compare(self.tz(), op, a, b)),
            Add | Sub | Mul | Div => match (a, b) {
                (Number(x) | Money(x), Number(y) | Money(y)) => {
                    // Exact; an overflow or a division by zero is no value,
                    // never a panic. Anything with money in it is money,
                    // as the checker types it.
                    let r = match op {
                        Add => x.checked_add(*y),
                        Sub => x.checked_sub(*y),
                        Mul => x.checked_mul(*y),
                        _ => x.checked_div(*y),
                    };
                    match r {
                        None => Null,
                        Some(r) if matches!(a, Money(_)) || matches!(b, Money(_)) => Money(r),
                        Some(r) => Number(r),
                    }
                }
                // `3 days + today`, as the checker allows: the sum either way.
                (Duration(_), Date(_) | DateTime(_)) if op == Add => self.binary(op, b, a),
                // A date and a date-time: the date-time's date in the
                // calendar's timezone, as comparisons read it, so
                // `kickoff_at - start_date` is whole days like two dates.
                (DateTime(t), Date(_)) if op == Sub => {
                    self.binary(op, &Date(self.tz().to_datetime(*t).date()), b)
                }
                (Date(_), DateTime(t)) if op == Sub => {
                    self.binary(op, a, &Date(self.tz().to_datetime(*t).date()))
                }
                (Date(d), Duration(dur)) if matches!(op, Add | Sub) => {
                    let mut dur = *dur;
                    if op == Sub {
                        dur.amount = -dur.amount;
                    }
                    self.shift_date(*d, &dur).map_or(Null, Date)
                }
                (DateTime(t), Duration(dur)) if matches!(op, Add | Sub) => {
                    let mut dur = *dur;
                    if op == Sub {
                        dur.amount = -dur.amount;
                    }
                    self.calendar.add(*t, &dur).map_or(Null, DateTime)
                }
                (Date(x), Date(y)) if op == Sub => Duration(crate::value::Duration {
                    amount: f64::from((*x - *y).get_days()),
                    business: false,
                    unit: crate::syntax::TimeUnit::Days,
                }),
                (DateTime(x), DateTime(y)) if op == Sub => Duration(crate::value::Duration {
                    amount: x.duration_since(*y).as_secs_f64() / 3600.0,
                    business: false,
                    unit: crate::syntax::TimeUnit::Hours,
                }),
                (Duration(x), Duration(y)) if matches!(op, Add | Sub) => {
                    let secs = if op == Add {
                        x.seconds() + y.seconds()
                    } else {
                        x.seconds() - y.seconds()
                    };
                    Duration(crate::value::Duration {
                        amount: secs / 3600.0,
                        business: false,
                        unit: crate::syntax::TimeUnit::Hours,
                    })
                }
                _ => Null,
            },
            And => Bool(a.as_bool() == Some(true) && b.as_bool() == Some(true)),
            Or => Bool(a.as_bool() == Some(true) || b.as_bool() == Some(true)),
        }
    }

    fn shift_date(
        &self,
        d: jiff::civil::Date,
        dur: &crate::value::Duration,
    ) -> Option<jiff::civil::Date> {
        if dur.business {
            let start = d
                .to_zoned(self.calendar.timezone().clone())
                .ok()?
                .timestamp();
            let end = self.calendar.add(start, dur)?;
            return Some(end.to_zoned(self.calendar.timezone().clone()).date());
        }
        let days = (dur.seconds() / 86400.0).round() as i64;
        // Out of the calendar's range: no date rather than a panic.
        d.checked_add(jiff::Span::new().try_days(days).ok()?).ok()
    }
}

/// Equality across compatible kinds: numbers and money exactly (`1000`
/// equals `1000.00`), text exactly, a date
/// with a date-time by the day the date-time falls on in `tz` (the
/// calendar's timezone, the one `today` is in).
#[inline]
pub fn equal(tz: &TimeZone, a: &Value, b: &Value) -> bool {
    // Text, numbers and yes/no inline: the comparisons of stages, segments,
    // amounts and flags that rules make on every event.
    match (a, b) {
        (Value::Text(x), Value::Text(y)) => x == y,
        (Value::Number(x) | Value::Money(x), Value::Number(y) | Value::Money(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        _ => equal_other(tz, a, b),
    }
}

#[inline(never)]
fn equal_other(tz: &TimeZone, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Date(d), Value::DateTime(t)) | (Value::DateTime(t), Value::Date(d)) => {
            tz.to_datetime(*t).date() == *d
        }
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(tz, a, b))
        }
        _ => a == b,
    }
}

/// An ordering comparison; values that do not order are never less,
/// greater or equal. Dates and date-times order as in [`equal`].
#[inline]
fn compare(tz: &TimeZone, op: BinaryOp, a: &Value, b: &Value) -> bool {
    // Numbers inline: amounts and counts are what rules compare most.
    let o = match (a, b) {
        (Value::Number(x) | Value::Money(x), Value::Number(y) | Value::Money(y)) => Some(x.cmp(y)),
        _ => order(tz, a, b),
    };
    match (o, op) {
        (None, _) => false,
        (Some(o), BinaryOp::Lt) => o.is_lt(),
        (Some(o), BinaryOp::Le) => o.is_le(),
        (Some(o), BinaryOp::Gt) => o.is_gt(),
        (Some(o), _) => o.is_ge(),
    }
}

#[inline(never)]
fn order(tz: &TimeZone, a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Date(x), Value::Date(y)) => Some(x.cmp(y)),
        (Value::DateTime(x), Value::DateTime(y)) => Some(x.cmp(y)),
        (Value::Date(d), Value::DateTime(t)) => Some(d.cmp(&tz.to_datetime(*t).date())),
        (Value::DateTime(t), Value::Date(d)) => Some(tz.to_datetime(*t).date().cmp(d)),
        (Value::Duration(x), Value::Duration(y)) => x.seconds().partial_cmp(&y.seconds()),
        (Value::Text(x), Value::Text(y)) => Some(x.cmp(y)),
        _ => None,
    }
}
