//! Values of record fields and expressions, typed by the schema, and
//! their JSON form (the outcome contract and the state's snapshots).
//!
//! `number` and `money` are exact decimals (28 significant digits), so
//! `0.1 + 0.2 == 0.3` and a 17-digit amount keeps its digits. This module
//! reads decimals from plain text; the lenient and strict rules of what a
//! CRM may send are in `eval::event`.

use std::fmt;

/// The exact decimal of `number` and `money` values.
pub use rust_decimal::Decimal;
use rust_decimal::RoundingStrategy;
use serde::{Deserialize, Serialize};

/// A field or expression value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Absent or null.
    Null,
    Text(String),
    /// A `number`: renders without trailing zeros (`2.5`).
    Number(Decimal),
    /// A `money` amount, kept exact: renders with two decimals (`1000.50`),
    /// rounded half to even when it has more.
    Money(Decimal),
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

    /// The decimal of a number or an amount of money.
    #[inline]
    pub fn decimal(&self) -> Option<Decimal> {
        match self {
            Value::Number(d) | Value::Money(d) => Some(*d),
            _ => None,
        }
    }

    /// Reads plain JSON: null, yes/no, a number (exactly as written when
    /// it has at most 15 significant digits or is whole, and always for the
    /// numbers the engine writes), text, and lists of these. Dates, money
    /// and durations are written as text and read back as text: only a
    /// field's type says what text means (see `eval::event`). An object, or
    /// a number beyond a decimal's range, is an error naming it.
    pub fn from_json(json: &serde_json::Value) -> Result<Value, String> {
        Value::deserialize(json).map_err(|e| e.to_string())
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
            Value::Number(n) => write!(f, "{}", n.normalize()),
            Value::Money(m) => write!(f, "{}", money_rendered(*m)),
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
                // Two decimals at most (the time between two date-times
                // is a float of hours: 471.06805555555553 read as noise).
                let rounded = (d.amount * 100.0).round() / 100.0;
                let mut amount = format!("{rounded:.2}");
                while amount.contains('.') && (amount.ends_with('0') || amount.ends_with('.')) {
                    amount.pop();
                }
                if amount == "-0" {
                    amount = "0".into();
                }
                write!(f, "{amount} {business}{}", d.unit.keyword(rounded))
            }
        }
    }
}

/// The JSON form: a number is a JSON number when one reads back as exactly
/// the same decimal (`5`, `0.3`, `1000.5`) and otherwise the JSON text of
/// its exact digits (`"0.3333333333333333333333333333"`), because JSON
/// readers, serde_json's too, read numbers as doubles. Money is always
/// the JSON text of its exact value with at least two decimals
/// (`"1000.50"`, `"0.125"`), so no reader rounds an amount through a
/// float. Dates, date-times and durations are their text. Reading the
/// JSON back with [`Value::from_json`] and writing it again gives the same
/// bytes.
impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_none(),
            Value::Text(t) => s.serialize_str(t),
            Value::Number(n) => {
                let n = n.normalize();
                if n.is_integer() {
                    if let Ok(i) = i64::try_from(n) {
                        return s.serialize_i64(i);
                    }
                    if let Ok(u) = u64::try_from(n) {
                        return s.serialize_u64(u);
                    }
                }
                match exact_f64(n) {
                    Some(f) => s.serialize_f64(f),
                    None => s.collect_str(&n),
                }
            }
            Value::Money(m) => s.collect_str(&money_exact(*m)),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Date(_) | Value::DateTime(_) | Value::Duration(_) => s.collect_str(self),
            Value::List(items) => s.collect_seq(items),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    /// Plain JSON, as [`Value::from_json`] describes.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

/// The key under which serde_json passes a number's text when its
/// `arbitrary_precision` feature is on (some crate may turn it on).
const JSON_NUMBER_KEY: &str = "$serde_json::private::Number";

impl<'de> serde::de::Visitor<'de> for JsonVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null, yes/no, a number, text or a list of these")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Number(i.into()))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(Value::Number(u.into()))
    }
    fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<Value, E> {
        // The shortest digits that read back as this double: what the JSON
        // text said whenever a double could hold it.
        float_decimal(f).map(Value::Number).ok_or_else(|| {
            E::custom(format!(
                "the number {f} does not fit a decimal of 28 digits"
            ))
        })
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Text(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::Text(s))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        use serde::de::Error;
        match map.next_key::<String>()? {
            Some(k) if k == JSON_NUMBER_KEY => {
                let text: String = map.next_value()?;
                parse_decimal(&text).map(Value::Number).ok_or_else(|| {
                    A::Error::custom(format!("the number {text} has more than 28 digits"))
                })
            }
            _ => Err(A::Error::custom("an object is not a value")),
        }
    }
}

/// The double that reads back as exactly `n`, if there is one.
fn exact_f64(n: Decimal) -> Option<f64> {
    let f: f64 = n.to_string().parse().ok()?;
    (float_decimal(f)? == n).then_some(f)
}

/// A double as the decimal of its shortest round-trip digits (`0.1` is
/// one tenth); `None` past a decimal's range.
pub fn float_decimal(f: f64) -> Option<Decimal> {
    if !f.is_finite() {
        return None;
    }
    // `{}` writes those digits without an exponent.
    parse_decimal(&format!("{f}"))
}

/// Money as it reads: two decimals, rounded half to even past them
/// (`1000.5` → `1000.50`, `0.125` → `0.12`).
pub fn money_rendered(m: Decimal) -> Decimal {
    let mut r = m.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
    r.rescale(2);
    r
}

/// Money exactly, with at least two decimals (`1000.5` → `1000.50`,
/// `0.125` stays): the form it is stored and sent in.
pub fn money_exact(m: Decimal) -> Decimal {
    let mut r = m.normalize();
    if r.scale() < 2 {
        r.rescale(2);
    }
    r
}

/// A decimal read exactly from plain decimal text: `-12.30`, `1000`,
/// `1.5e3` (a JSON number's forms). `None` for anything else, and for a
/// value a decimal cannot hold exactly (more than 28 significant digits,
/// beyond ±7.9e28): a number is never silently rounded.
pub fn parse_decimal(text: &str) -> Option<Decimal> {
    let (base, exp) = match text.split_once(['e', 'E']) {
        Some((b, e)) => (b, e.parse::<i32>().ok()?),
        None => (text, 0),
    };
    // Decimal's own parser also takes `_` and a leading `+`; plain text
    // has neither.
    let digits = base.strip_prefix('-').unwrap_or(base);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !plain(int) || !plain(frac) {
        return None;
    }
    let mut d = Decimal::from_str_exact(base).ok()?;
    if exp < 0 {
        let scale = d.scale().checked_add(exp.unsigned_abs())?;
        d.set_scale(scale).ok()?;
    } else if !d.is_zero() {
        for _ in 0..exp {
            d = d.checked_mul(Decimal::TEN)?;
        }
    }
    Some(d)
}

/// Text that is whitespace only, past a first byte that did not decide.
#[cold]
#[inline(never)]
fn blank(s: &str) -> bool {
    s.chars().all(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_duration_reads_with_two_decimals_at_most() {
        let d = |amount: f64, unit| {
            Value::Duration(Duration {
                amount,
                business: false,
                unit,
            })
            .to_string()
        };
        use crate::syntax::TimeUnit::{Days, Hours};
        assert_eq!(d(471.06805555555553, Hours), "471.07 hours");
        assert_eq!(d(14.0, Days), "14 days");
        assert_eq!(d(1.0, Days), "1 day");
        assert_eq!(d(1.001, Hours), "1 hour");
        assert_eq!(d(2.5, Hours), "2.5 hours");
        assert_eq!(d(-17.0, Days), "-17 days");
        assert_eq!(d(-0.001, Hours), "0 hours");
    }

    fn json(v: &Value) -> String {
        serde_json::to_string(v).expect("values serialize")
    }

    /// serialize → deserialize → serialize gives the same bytes.
    fn round_trips(v: &Value) -> Result<(), String> {
        let first = json(v);
        let back: Value = serde_json::from_str(&first).map_err(|e| format!("{first}: {e}"))?;
        let second = json(&back);
        if first == second {
            Ok(())
        } else {
            Err(format!("{v:?}: {first} then {second}"))
        }
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn every_kind_of_value_round_trips_byte_for_byte() {
        let third = Decimal::ONE / Decimal::from(3);
        let values = [
            Value::Null,
            Value::Bool(true),
            Value::Text("Straße \"quoted\" {x}\n".into()),
            Value::Number(d("0.3")),
            Value::Number(d("2.50")),
            Value::Number(d("-0")),
            Value::Number(d("0.0000001")),
            Value::Number(third),
            Value::Number(Decimal::MAX),
            Value::Number(Decimal::MIN),
            Value::Number(d("10000000000000000001")),
            Value::Number(d("100000000000000000000")),
            Value::Number(d("123456789012345.67")),
            Value::Money(d("1000.5")),
            Value::Money(d("0.125")),
            Value::Money(third),
            Value::Date(jiff::civil::date(2026, 12, 1)),
            Value::DateTime("2026-11-20T15:04:05Z".parse().unwrap()),
            Value::Duration(Duration {
                amount: 2.0,
                business: true,
                unit: crate::syntax::TimeUnit::Days,
            }),
            Value::List(vec![
                Value::Number(third),
                Value::Money(d("1")),
                Value::Null,
            ]),
        ];
        for v in &values {
            round_trips(v).unwrap();
        }
    }

    #[test]
    fn numbers_read_from_json_exactly_as_written() {
        let read = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        assert_eq!(read("0.3"), Value::Number(d("0.3")));
        assert_eq!(read("1e3"), Value::Number(d("1000")));
        assert_eq!(
            read("18446744073709551615"),
            Value::Number(d("18446744073709551615"))
        );
        assert_eq!(
            read("[null, true, \"x\"]"),
            Value::List(vec![
                Value::Null,
                Value::Bool(true),
                Value::Text("x".into())
            ])
        );
        assert_eq!(json(&Value::Number(d("0.30"))), "0.3");
        assert_eq!(
            json(&Value::Number(Decimal::ONE / Decimal::from(3))),
            "\"0.3333333333333333333333333333\""
        );
        assert_eq!(json(&Value::Money(d("1000.5"))), "\"1000.50\"");
        assert!(serde_json::from_str::<Value>("{\"a\": 1}").is_err());
        assert!(serde_json::from_str::<Value>("1e300").is_err());
    }

    #[test]
    fn plain_decimal_text_only() {
        assert_eq!(parse_decimal("-12.30"), Some(d("-12.30")));
        assert_eq!(parse_decimal("1.5e3"), Some(d("1500")));
        assert_eq!(parse_decimal("15E-1"), Some(d("1.5")));
        for not_plain in [
            "", "-", ".5", "5.", "+5", "1_000", "1,5", "1e", "0x10", "1e400",
        ] {
            assert_eq!(parse_decimal(not_plain), None, "{not_plain}");
        }
        // Past 28 decimals or a decimal's range: refused, not rounded.
        assert_eq!(parse_decimal("1.00000000000000000000000000001"), None);
        assert_eq!(parse_decimal("99999999999999999999999999999"), None);
        assert!(parse_decimal("1.0000000000000000000000000001").is_some());
    }

    fn decimal() -> impl Strategy<Value = Decimal> {
        // Any mantissa a decimal holds (96 bits), any scale.
        (any::<i128>(), 0u32..=28)
            .prop_map(|(m, scale)| Decimal::from_i128_with_scale(m % (1i128 << 96), scale))
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            ".{0,8}".prop_map(Value::Text),
            decimal().prop_map(Value::Number),
            decimal().prop_map(Value::Money),
            (-9999i16..=9999, 1i8..=12, 1i8..=28)
                .prop_map(|(y, m, d)| Value::Date(jiff::civil::date(y.rem_euclid(9999) + 1, m, d))),
        ];
        leaf.prop_recursive(2, 16, 4, |inner| {
            proptest::collection::vec(inner, 0..4).prop_map(Value::List)
        })
    }

    proptest! {
        #[test]
        fn generated_values_round_trip_byte_for_byte(v in value()) {
            prop_assert_eq!(round_trips(&v), Ok(()));
        }
    }
}
