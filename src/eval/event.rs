//! CRM events: the generic JSON shape, decoded straight into the schema's
//! typed, slot-indexed records.
//!
//! Field names are looked up once per field while decoding; after that the
//! engine reads values by slot. A value that does not fit its field's type
//! is a per-field error naming the field, the value and what was expected.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::check::{ObjectSchema, Type};
use crate::compile::{parse_datetime, WorkflowSet};
use crate::value::{parse_decimal, Value};

/// One CRM event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The CRM's id for this event; a retry carries the same id.
    pub id: String,
    /// The object name (`deal`) and its index in the schema.
    pub object: String,
    pub object_index: usize,
    pub record_id: String,
    pub occurred_at: Option<jiff::Timestamp>,
    /// The fields the event carries, by slot; `None` where the event says
    /// nothing about a field (records may be partial).
    pub record: Vec<Option<Value>>,
    /// Before-values the event states explicitly, by slot.
    pub previous: Vec<Option<Value>>,
    /// The version of the workflow set that decoded the event: slots mean
    /// something only under it, so stepping it with another set is refused.
    pub version: String,
    /// Fields left out because their value did not fit the type (only a
    /// [`Event::decode_lenient`] event carries any).
    pub field_errors: Vec<FieldError>,
    /// Values outside their field's `one of` list: applied as sent, but a
    /// stage renamed in the CRM would stop handoffs firing, so they are
    /// worth showing someone.
    pub unknown_values: Vec<FieldError>,
}

/// Why an event could not be decoded.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum EventError {
    /// Not JSON, or not the event shape.
    #[error("the event is not valid: {0}")]
    #[diagnostic(
        code(event::shape),
        help("an event is a JSON object with `id`, `object`, `record_id`, `record` and optionally `occurred_at` and `previous`")
    )]
    Shape(String),
    /// An event of a list could not be decoded.
    #[error("event {position}{id} of the list: {error}")]
    #[diagnostic(code(event::in_list))]
    InList {
        /// 1-based.
        position: usize,
        /// ` (`evt-7`)`, or nothing when the event has no id.
        id: String,
        error: Box<EventError>,
    },
    /// The object is not declared.
    #[error("the event is for object `{object}`, which the workflows do not declare: {hint}")]
    #[diagnostic(code(event::object))]
    UnknownObject {
        object: String,
        /// The one meant, or the objects there are.
        hint: String,
    },
    /// One or more fields have values of the wrong type.
    #[error("{} field value(s) do not fit the schema: {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    #[diagnostic(code(event::fields))]
    Fields(Vec<FieldError>),
}

/// A field whose value does not fit its type.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FieldError {
    /// `record.start_date` or `previous.stage`.
    pub field: String,
    pub value: String,
    pub expected: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is {}, expected {}",
            self.field, self.value, self.expected
        )
    }
}

/// The keys of an event, in the order the reference lists them.
const EVENT_KEYS: [&str; 6] = [
    "id",
    "object",
    "record_id",
    "occurred_at",
    "record",
    "previous",
];

/// What an event looks like, for messages about one that does not.
const EVENT_EXAMPLE: &str = r#"{"id": "evt-1001", "object": "deal", "record_id": "D-42", "occurred_at": "2026-11-20T15:04:05Z", "record": {"stage": "Closed Won"}, "previous": {"stage": "Proposal"}}"#;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent<'a> {
    #[serde(default)]
    id: Option<serde_json::Value>,
    object: String,
    record_id: serde_json::Value,
    #[serde(default)]
    occurred_at: Option<serde_json::Value>,
    #[serde(borrow)]
    record: &'a RawValue,
    #[serde(default, borrow)]
    previous: Option<&'a RawValue>,
}

impl Event {
    /// Decodes one event from JSON bytes; a field value that does not fit
    /// its type refuses the whole event (the CLI's dry run says so).
    pub fn decode(set: &WorkflowSet, bytes: &[u8]) -> Result<Event, EventError> {
        let event = Self::decode_lenient(set, bytes)?;
        if event.field_errors.is_empty() {
            Ok(event)
        } else {
            Err(EventError::Fields(event.field_errors))
        }
    }

    /// Decodes one event from JSON bytes, leaving out the fields whose
    /// values do not fit their types (listed in `field_errors`, with an
    /// unreadable `occurred_at`): a server keeps the event and applies the
    /// rest. Only a malformed event or an unknown object is an error.
    pub fn decode_lenient(set: &WorkflowSet, bytes: &[u8]) -> Result<Event, EventError> {
        let raw: RawEvent<'_> = serde_json::from_slice(bytes)
            .map_err(|e| EventError::Shape(shape_problem(bytes, &e)))?;
        Self::from_raw(set, raw)
    }

    /// Decodes a JSON array of events, or a single event.
    pub fn decode_many(set: &WorkflowSet, bytes: &[u8]) -> Result<Vec<Event>, EventError> {
        // A file saved by some Windows editors starts with a byte-order
        // mark, which JSON does not allow; `.handoff` files accept it too.
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let trimmed = bytes.iter().position(|b| !b.is_ascii_whitespace());
        if trimmed.is_some_and(|i| bytes[i] == b'[') {
            let raws: Vec<&RawValue> =
                serde_json::from_slice(bytes).map_err(|e| EventError::Shape(e.to_string()))?;
            raws.into_iter()
                .enumerate()
                .map(|(i, r)| {
                    Self::decode(set, r.get().as_bytes()).map_err(|error| {
                        // Which one, in a list of many: its place and id.
                        let id = serde_json::from_str::<serde_json::Value>(r.get())
                            .ok()
                            .and_then(|v| match &v["id"] {
                                serde_json::Value::String(s) => Some(s.clone()),
                                serde_json::Value::Number(n) => Some(n.to_string()),
                                _ => None,
                            });
                        EventError::InList {
                            position: i + 1,
                            id: id.map(|id| format!(" (`{id}`)")).unwrap_or_default(),
                            error: Box::new(error),
                        }
                    })
                })
                .collect()
        } else {
            Ok(vec![Self::decode(set, bytes)?])
        }
    }

    fn from_raw(set: &WorkflowSet, raw: RawEvent<'_>) -> Result<Event, EventError> {
        // The record id names the record the state is kept under: text or a
        // number, never empty, null or a structure.
        let record_id = match raw.record_id {
            // A NUL ends text in many tools the id passes through; other
            // control characters (a CSV's `\r`) stay part of the id, as
            // records stored under them before were kept.
            serde_json::Value::String(s) if s.contains('\0') => {
                return Err(EventError::Shape(format!(
                    "`record_id` {s:?} has a NUL character: send the record's id as the CRM shows it"
                )))
            }
            serde_json::Value::String(s) if !s.trim().is_empty() => s,
            serde_json::Value::Number(n) => whole(&n).ok_or_else(|| {
                EventError::Shape(format!(
                    "`record_id` is {n}: a number id must be a whole number that fits in 64 bits; send a longer or fractional id as text, in quotes, so it is kept exactly"
                ))
            })?,
            other => {
                return Err(EventError::Shape(format!(
                    "`record_id` is {other}, expected the record's id as text or a number"
                )))
            }
        };
        let object_index = set
            .schema()
            .objects
            .iter()
            .position(|o| o.name == raw.object)
            .ok_or_else(|| {
                let names = || set.schema().objects.iter().map(|o| o.name.as_str());
                let hint = match crate::check::suggest(&raw.object, names()) {
                    Some(meant) => format!("did you mean `{meant}`?"),
                    None if names().next().is_none() => {
                        "they declare no object: add `object NAME { … }`".to_string()
                    }
                    None => format!(
                        "the declared objects are {}",
                        names()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                EventError::UnknownObject {
                    object: raw.object.clone(),
                    hint,
                }
            })?;
        let schema = &set.schema().objects[object_index];
        let mut errors = Vec::new();
        let mut unknown = Vec::new();
        let record = decode_fields(schema, raw.record, "record", &mut errors, &mut unknown)?;
        let previous = match raw.previous {
            Some(p) => decode_fields(schema, p, "previous", &mut errors, &mut unknown)?,
            None => vec![None; schema.fields.len()],
        };
        // Like a field: a value that is not a time (text or otherwise) is
        // reported, and the event reads as undated (its values are not
        // ordered against others).
        let occurred_at = match raw.occurred_at {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => {
                // Text, or epoch milliseconds as date-time fields take them.
                let parsed = match &v {
                    serde_json::Value::String(s) => parse_datetime(s),
                    serde_json::Value::Number(n) => n
                        .as_i64()
                        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()),
                    _ => None,
                };
                if parsed.is_none() {
                    errors.push(FieldError {
                        field: "occurred_at".into(),
                        value: v.to_string(),
                        expected: "a date-time such as 2026-11-20T15:04:05Z, or epoch milliseconds"
                            .into(),
                    });
                }
                parsed
            }
        };
        let id = match raw.id {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Number(n)) => whole(&n).ok_or_else(|| {
                EventError::Shape(format!(
                    "`id` is {n}: a number id must be a whole number that fits in 64 bits; send it as text, in quotes"
                ))
            })?,
            Some(other) => {
                return Err(EventError::Shape(format!(
                    "`id` is {other}, expected the event's id as text or a whole number"
                )))
            }
        };
        Ok(Event {
            id,
            object: raw.object,
            object_index,
            record_id,
            occurred_at,
            record,
            previous,
            version: set.version().to_string(),
            field_errors: errors,
            unknown_values: unknown,
        })
    }
}

/// A JSON number as an id: whole numbers only, written as they were sent.
/// (A fraction or a number past 64 bits reaches here as a float: `1.0`
/// would name another record than `1`, and two ids of 23 digits the same
/// rounded one.)
fn whole(n: &serde_json::Number) -> Option<String> {
    n.as_u64()
        .map(|u| u.to_string())
        .or_else(|| n.as_i64().map(|i| i.to_string()))
}

/// Why `bytes` is not an event, in the author's words: serde's message
/// names Rust types (`expected struct RawEvent`). Only runs on the error
/// path, so reading the event twice costs nothing on good events.
fn shape_problem(bytes: &[u8], err: &serde_json::Error) -> String {
    use serde_json::Value as J;
    let json: J = match serde_json::from_slice(bytes) {
        Ok(j) => j,
        // Not JSON at all: serde's syntax message, with its line and column,
        // is the right one.
        Err(_) => return err.to_string(),
    };
    let J::Object(map) = json else {
        let found = match json {
            J::Array(_) => "a list",
            J::String(_) => "text",
            J::Number(_) => "a number",
            J::Bool(_) => "yes/no",
            _ => "null",
        };
        return format!("an event is a JSON object such as {EVENT_EXAMPLE}, found {found}");
    };
    for key in map.keys() {
        if !EVENT_KEYS.contains(&key.as_str()) {
            let known = EVENT_KEYS.map(|k| format!("`{k}`")).join(", ");
            return match crate::check::suggest(key, EVENT_KEYS.into_iter()) {
                Some(s) => format!("unknown key `{key}`: did you mean `{s}`? an event's keys are {known}"),
                None => format!("unknown key `{key}`: an event's keys are {known}; put the record's fields inside `record`"),
            };
        }
    }
    for key in ["object", "record_id", "record"] {
        if !map.contains_key(key) {
            let what = match key {
                "object" => "`\"object\": \"deal\"` (the object the record is)",
                "record_id" => "`\"record_id\": \"D-42\"` (the CRM's id of the record)",
                _ => "`\"record\": { … }` (the record's fields, or only the changed ones)",
            };
            return format!("the event has no `{key}`: add {what}");
        }
    }
    let wrong = |key: &str, expected: &str| {
        map.get(key)
            .map(|v| format!("`{key}` is {v}, expected {expected}"))
    };
    match (
        map.get("object"),
        map.get("record"),
        map.get("previous"),
        map.get("occurred_at"),
    ) {
        (Some(o), ..) if !o.is_string() => {
            wrong("object", "the object's name as text, such as \"deal\"")
        }
        (_, Some(r), ..) if !r.is_object() => wrong(
            "record",
            "an object of field values, such as {\"stage\": \"Closed Won\"}",
        ),
        (_, _, Some(p), _) if !(p.is_object() || p.is_null()) => wrong(
            "previous",
            "an object of the fields' values before the change, such as {\"stage\": \"Proposal\"}",
        ),
        (_, _, _, Some(t)) if !(t.is_string() || t.is_null()) => wrong(
            "occurred_at",
            "a date-time such as \"2026-11-20T15:04:05Z\"",
        ),
        _ => None,
    }
    .unwrap_or_else(|| err.to_string())
}

fn decode_fields(
    schema: &ObjectSchema,
    raw: &RawValue,
    prefix: &str,
    errors: &mut Vec<FieldError>,
    unknown: &mut Vec<FieldError>,
) -> Result<Vec<Option<Value>>, EventError> {
    let mut slots = vec![None; schema.fields.len()];
    let seed = FieldsSeed {
        schema,
        slots: &mut slots,
        errors,
        unknown,
        prefix,
    };
    let mut de = serde_json::Deserializer::from_str(raw.get());
    // Values are read as any JSON, so the only way to fail here is a
    // `record` or `previous` that is not an object.
    seed.deserialize(&mut de).map_err(|_| {
        let found: String = raw.get().chars().take(60).collect();
        EventError::Shape(format!(
            "`{prefix}` is {found}, expected an object of field values, such as {{\"stage\": \"Closed Won\"}}"
        ))
    })?;
    Ok(slots)
}

/// Decodes a JSON object of fields into slots, typing each value.
struct FieldsSeed<'a> {
    schema: &'a ObjectSchema,
    slots: &'a mut Vec<Option<Value>>,
    errors: &'a mut Vec<FieldError>,
    unknown: &'a mut Vec<FieldError>,
    prefix: &'a str,
}

impl<'de> DeserializeSeed<'de> for FieldsSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldsSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of field values")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Fields given in this object, to name one given twice (JSON
        // readers differ on which of the two counts; here the last does).
        let mut given = vec![false; self.slots.len()];
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.schema.slot(&key) {
                Some(slot) => {
                    if std::mem::replace(&mut given[slot], true) {
                        self.errors.push(FieldError {
                            field: format!("{}.{key}", self.prefix),
                            value: "two values".into(),
                            expected: "one value: the key is in the event twice, and the last value was taken"
                                .into(),
                        });
                    }
                    let ty = &self.schema.fields[slot].ty;
                    // Numbers are read from their JSON text, so a number a
                    // double cannot hold keeps its digits; other values go
                    // through serde_json's value, parsed once.
                    let value = if holds_numbers(ty) {
                        typed_raw(ty, map.next_value::<&RawValue>()?)
                    } else {
                        typed(ty, map.next_value()?)
                    };
                    match value {
                        Ok(v) => {
                            if let (Type::OneOf(allowed), Value::Text(t)) = (ty, &v) {
                                if !t.trim().is_empty() && !allowed.iter().any(|a| a == t) {
                                    let listed = allowed
                                        .iter()
                                        .map(|a| format!("\"{a}\""))
                                        .collect::<Vec<_>>()
                                        .join(", ");
                                    // A typo (`Closed Wonn`) names the value
                                    // meant; a renamed CRM stage names none.
                                    let expected = match crate::check::suggest(
                                        t,
                                        allowed.iter().map(String::as_str),
                                    ) {
                                        Some(s) => {
                                            format!("one of {listed} (did you mean \"{s}\"?)")
                                        }
                                        None => format!("one of {listed}"),
                                    };
                                    self.unknown.push(FieldError {
                                        field: format!("{}.{key}", self.prefix),
                                        value: format!("\"{t}\""),
                                        expected,
                                    });
                                }
                            }
                            self.slots[slot] = Some(v)
                        }
                        Err((value, expected)) => self.errors.push(FieldError {
                            field: format!("{}.{key}", self.prefix),
                            value,
                            expected,
                        }),
                    }
                }
                // Fields the workflows don't declare are none of their business.
                None => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Whether values of `ty` are numbers or lists of them.
fn holds_numbers(ty: &Type) -> bool {
    match ty {
        Type::Number | Type::Money => true,
        Type::List(item) => holds_numbers(item),
        _ => false,
    }
}

/// [`typed`] for a value still in its JSON text: a JSON number is read
/// exactly from its digits, a list item by item.
fn typed_raw(ty: &Type, raw: &RawValue) -> Result<Value, (String, String)> {
    let text = raw.get();
    let unreadable = || (text.to_string(), "JSON".to_string());
    match (ty, text.as_bytes().first()) {
        (Type::Number | Type::Money, Some(b'-' | b'0'..=b'9')) => match parse_decimal(text) {
            Some(d) if *ty == Type::Money => Ok(Value::Money(d)),
            Some(d) => Ok(Value::Number(d)),
            None => Err((text.to_string(), number_expected(ty).to_string())),
        },
        (Type::List(item), Some(b'[')) => serde_json::from_str::<Vec<&RawValue>>(text)
            .map_err(|_| unreadable())?
            .into_iter()
            .map(|r| typed_raw(item, r))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::List),
        _ => typed(ty, serde_json::from_str(text).map_err(|_| unreadable())?),
    }
}

/// A JSON number as serde_json holds it: whole numbers exactly, others as
/// the shortest digits of their double (exact up to 15 significant
/// digits; events are read from their text instead, see [`typed_raw`]).
fn json_number(n: &serde_json::Number) -> Option<rust_decimal::Decimal> {
    match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => Some(i.into()),
        (_, Some(u), _) => Some(u.into()),
        (_, _, Some(f)) => crate::value::float_decimal(f),
        _ => None,
    }
}

fn number_expected(ty: &Type) -> &'static str {
    if *ty == Type::Money {
        MONEY
    } else {
        NUMBER
    }
}

/// Types one JSON value by its field type. Errors are (what was found, what
/// was expected).
pub fn typed(ty: &Type, json: serde_json::Value) -> Result<Value, (String, String)> {
    use serde_json::Value as J;
    // Text and lists take their strings over instead of copying them; all
    // else is as `typed_ref` says.
    match (ty, json) {
        (Type::Text | Type::Email | Type::User | Type::OneOf(_) | Type::Person, J::String(s)) => {
            Ok(Value::Text(s))
        }
        (Type::List(item), J::Array(items)) => items
            .into_iter()
            .map(|j| typed(item, j))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::List),
        (ty, json) => typed_ref(ty, &json),
    }
}

/// [`typed`] for a borrowed JSON value (a snapshot's), copying only what
/// the typed value keeps.
pub(crate) fn typed_ref(ty: &Type, json: &serde_json::Value) -> Result<Value, (String, String)> {
    use serde_json::Value as J;
    if json.is_null() {
        return Ok(Value::Null);
    }
    let found = |j: &J| match j {
        J::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    };
    let fail = |j: &J, expected: &str| Err((found(j), expected.to_string()));
    match ty {
        Type::Text | Type::Email | Type::User | Type::OneOf(_) | Type::Person => match json {
            J::String(s) => Ok(Value::Text(s.clone())),
            J::Number(n) => Ok(Value::Text(n.to_string())),
            J::Bool(b) => Ok(Value::Text(b.to_string())),
            other => fail(other, "text"),
        },
        Type::Number => match json {
            // Exactly from the JSON text (serde_json keeps it).
            J::Number(n) => json_number(n)
                .map(Value::Number)
                .ok_or(())
                .or_else(|_| fail(json, NUMBER)),
            J::String(s) => lenient_number(s)
                .map(Value::Number)
                .ok_or(())
                .or_else(|_| fail(json, NUMBER)),
            _ => fail(json, NUMBER),
        },
        Type::Money => match json {
            J::Number(n) => json_number(n)
                .map(Value::Money)
                .ok_or(())
                .or_else(|_| fail(json, MONEY)),
            J::String(s) => match strict_money(s) {
                Ok(m) => Ok(Value::Money(m)),
                Err(expected) => fail(json, expected),
            },
            _ => fail(json, MONEY),
        },
        Type::YesNo => match json {
            J::Bool(b) => Ok(Value::Bool(*b)),
            J::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "yes" | "true" | "1" | "y" => Ok(Value::Bool(true)),
                "no" | "false" | "0" | "n" | "" => Ok(Value::Bool(false)),
                _ => fail(json, "yes or no"),
            },
            J::Number(n) if n.as_f64() == Some(0.0) => Ok(Value::Bool(false)),
            J::Number(n) if n.as_f64() == Some(1.0) => Ok(Value::Bool(true)),
            _ => fail(json, "yes or no"),
        },
        Type::Date => match json {
            J::String(s) if s.trim().is_empty() => Ok(Value::Null),
            J::String(s) => s
                .get(..10)
                .and_then(|d| d.parse::<jiff::civil::Date>().ok())
                .filter(|_| s.len() == 10 || parse_datetime(s).is_some())
                .map(Value::Date)
                .ok_or(())
                .or_else(|_| fail(json, "a date such as 2026-12-01")),
            // CRMs such as HubSpot send dates as epoch milliseconds.
            J::Number(n) => n
                .as_i64()
                .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                .map(|t| Value::Date(t.to_zoned(jiff::tz::TimeZone::UTC).date()))
                .ok_or(())
                .or_else(|_| fail(json, "a date such as 2026-12-01")),
            _ => fail(json, "a date such as 2026-12-01"),
        },
        Type::DateTime => match json {
            J::String(s) if s.trim().is_empty() => Ok(Value::Null),
            J::String(s) => parse_datetime(s)
                .map(Value::DateTime)
                .ok_or(())
                .or_else(|_| fail(json, "a date-time such as 2026-11-20T15:04:05Z")),
            J::Number(n) => n
                .as_i64()
                .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                .map(Value::DateTime)
                .ok_or(())
                .or_else(|_| fail(json, "a date-time such as 2026-11-20T15:04:05Z")),
            _ => fail(json, "a date-time such as 2026-11-20T15:04:05Z"),
        },
        Type::List(item) => match json {
            J::Array(items) => items
                .iter()
                .map(|j| typed_ref(item, j))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List),
            // Multi-select values often arrive as "a;b;c".
            J::String(s) => s
                .split(';')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| typed(item, J::String(p.to_string())))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List),
            other => fail(other, "a list"),
        },
        Type::Duration | Type::Unknown => Ok(Value::Null),
    }
}

const NUMBER: &str = "a number";
const MONEY: &str = "an amount such as 1000.50";
const AMBIGUOUS: &str = "an amount with a dot for decimals and no thousands separators, \
     such as 1000.50 (separators like these can be read two ways)";

/// A `number` sent as text, leniently: `12,000.50`, `1 500`, `1_000`,
/// `+3`, `.5` (commas, spaces and underscores are dropped). Counts come
/// this way from spreadsheets; money does not get this leniency.
fn lenient_number(s: &str) -> Option<rust_decimal::Decimal> {
    let mut cleaned: String = s
        .trim()
        .chars()
        .filter(|c| !matches!(c, ',' | '_' | ' '))
        .collect();
    if cleaned.starts_with('+') {
        cleaned.remove(0);
    }
    // `.5` and `5.` read as a float parser reads them.
    let unsigned = cleaned.strip_prefix('-').unwrap_or(&cleaned);
    if unsigned.starts_with('.') {
        let at = cleaned.len() - unsigned.len();
        cleaned.insert(at, '0');
    }
    if cleaned.ends_with('.') {
        cleaned.push('0');
    }
    parse_decimal(&cleaned)
}

/// `money` sent as text, strictly: an optional minus, digits, and
/// optionally a dot and more digits (`1000`, `1000.50`, `-12.30`),
/// surrounding spaces allowed. Text with thousands separators or a decimal
/// comma (`"1.000,50"`, `"1 000,5"`, `"12,000"`) is refused rather than
/// guessed at: the error is what to send instead.
fn strict_money(s: &str) -> Result<rust_decimal::Decimal, &'static str> {
    let t = s.trim();
    let unsigned = t.strip_prefix('-').unwrap_or(t);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if digits(int) && digits(frac) {
        return parse_decimal(t).ok_or(MONEY);
    }
    // Digits with separators in them: a European, Swiss or Indian way of
    // writing an amount, or a US one, and we cannot tell which.
    let separator = |c: char| matches!(c, ',' | '.' | '\'' | '_') || c.is_whitespace();
    let has_digit = unsigned.chars().any(|c| c.is_ascii_digit());
    if has_digit
        && unsigned.chars().all(|c| c.is_ascii_digit() || separator(c))
        && unsigned.chars().any(|c| separator(c) && c != '.')
        || unsigned.matches('.').count() > 1
    {
        return Err(AMBIGUOUS);
    }
    Err(MONEY)
}
