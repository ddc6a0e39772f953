//! Values of record fields and expressions, typed by the schema.

use std::fmt;

use serde::Serialize;

/// A field or expression value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Absent or null.
    Null,
    Text(String),
    /// Numbers and money.
    Number(f64),
    Bool(bool),
    Date(jiff::civil::Date),
    DateTime(jiff::Timestamp),
    List(Vec<Value>),
    /// A length of time; business durations count working time.
    Duration(Duration),
}

/// A duration as written: `2 business days`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Duration {
    pub amount: f64,
    pub business: bool,
    pub unit: crate::syntax::TimeUnit,
}

impl Duration {
    /// The duration in seconds of calendar time (business flag ignored).
    pub fn seconds(&self) -> f64 {
        use crate::syntax::TimeUnit::*;
        self.amount
            * match self.unit {
                Minutes => 60.0,
                Hours => 3600.0,
                Days => 86400.0,
                Weeks => 7.0 * 86400.0,
            }
    }
}

impl Value {
    /// Missing in the sense of `require`: absent, null, empty text (after
    /// trimming) or an empty list.
    #[inline(always)]
    pub fn is_missing(&self) -> bool {
        match self {
            Value::Null => true,
            // Same as `trim().is_empty()`, but decided by the first byte
            // when that is ASCII and not whitespace (a letter, a digit, a
            // sign): this runs for every required field of every event.
            Value::Text(s) => match s.as_bytes().first() {
                None => true,
                Some(&b) if b.is_ascii() && !(b as char).is_whitespace() => false,
                Some(_) => blank(s),
            },
            Value::List(l) => l.is_empty(),
            _ => false,
        }
    }

    /// The value as a bool, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    /// How a value reads in a template or a trace.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str(""),
            Value::Text(s) => f.write_str(s),
            Value::Number(n) => write!(f, "{n}"),
            Value::Bool(true) => f.write_str("yes"),
            Value::Bool(false) => f.write_str("no"),
            Value::Date(d) => write!(f, "{d}"),
            Value::DateTime(t) => write!(f, "{t}"),
            Value::List(items) => {
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                Ok(())
            }
            Value::Duration(d) => {
                let business = if d.business { "business " } else { "" };
                write!(f, "{} {business}{}", d.amount, d.unit.keyword(d.amount))
            }
        }
    }
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_none(),
            Value::Text(t) => s.serialize_str(t),
            Value::Number(n) => {
                if n.fract() == 0.0 && n.abs() < 9e15 {
                    s.serialize_i64(*n as i64)
                } else {
                    s.serialize_f64(*n)
                }
            }
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Date(_) | Value::DateTime(_) | Value::Duration(_) => s.collect_str(self),
            Value::List(items) => s.collect_seq(items),
        }
    }
}

/// Text that is whitespace only, past a first byte that did not decide.
#[cold]
#[inline(never)]
fn blank(s: &str) -> bool {
    s.chars().all(char::is_whitespace)
}

impl<'de> serde::Deserialize<'de> for Value {
    /// Plain JSON back to a value, as an outcome carries it: strings read
    /// as text (a date in an outcome was written as its text).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde_json::Value as J;
        fn from(j: J) -> Value {
            match j {
                J::Null => Value::Null,
                J::Bool(b) => Value::Bool(b),
                J::Number(n) => n.as_f64().map_or(Value::Null, Value::Number),
                J::String(s) => Value::Text(s),
                J::Array(items) => Value::List(items.into_iter().map(from).collect()),
                J::Object(_) => Value::Null,
            }
        }
        Ok(from(J::deserialize(d)?))
    }
}
