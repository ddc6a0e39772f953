//! The types of field values and expressions.

use std::fmt;
use std::sync::Arc;

use crate::syntax::{FieldType, ScalarType};

/// The type of a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    Text,
    Number,
    Money,
    Date,
    DateTime,
    Email,
    /// A CRM user (an id or email).
    User,
    YesNo,
    /// Text restricted to the listed values.
    OneOf(Arc<Vec<String>>),
    List(Box<Type>),
    Duration,
    /// A person named in the workflow: a declared user or an assigned role.
    Person,
    /// Not known (after an error, or an empty list): fits anything, so one
    /// mistake is reported once.
    Unknown,
}

impl Type {
    /// The type of a declared field.
    pub fn of_field(ty: &FieldType) -> Type {
        match ty {
            FieldType::Scalar { kind, .. } => match kind {
                ScalarType::Text => Type::Text,
                ScalarType::Number => Type::Number,
                ScalarType::Money => Type::Money,
                ScalarType::Date => Type::Date,
                ScalarType::DateTime => Type::DateTime,
                ScalarType::Email => Type::Email,
                ScalarType::User => Type::User,
                ScalarType::YesNo => Type::YesNo,
            },
            FieldType::OneOf { values, .. } => {
                Type::OneOf(Arc::new(values.iter().map(|v| v.value.clone()).collect()))
            }
            FieldType::List { item, .. } => Type::List(Box::new(Type::of_field(item))),
        }
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Type::Unknown)
    }

    /// Numbers and money.
    pub fn is_numeric(&self) -> bool {
        matches!(self, Type::Number | Type::Money | Type::Unknown)
    }

    /// Dates and date-times.
    pub fn is_temporal(&self) -> bool {
        matches!(self, Type::Date | Type::DateTime | Type::Unknown)
    }

    /// Types whose values are text.
    pub fn is_textual(&self) -> bool {
        matches!(
            self,
            Type::Text | Type::Email | Type::User | Type::OneOf(_) | Type::Person | Type::Unknown
        )
    }

    /// Whether a person can be reached through a value of this type.
    pub fn is_person(&self) -> bool {
        matches!(
            self,
            Type::User | Type::Email | Type::Person | Type::Unknown
        )
    }

    /// Whether values of the two types can be compared with `==`, `is`, `in`.
    pub fn comparable(&self, other: &Type) -> bool {
        use Type::*;
        match (self, other) {
            (Unknown, _) | (_, Unknown) => true,
            (a, b) if a.is_numeric() && b.is_numeric() => true,
            (a, b) if a.is_temporal() && b.is_temporal() => true,
            (a, b) if a.is_textual() && b.is_textual() => true,
            (YesNo, YesNo) | (Duration, Duration) => true,
            (List(a), List(b)) => a.comparable(b),
            _ => false,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Text => f.write_str("text"),
            Type::Number => f.write_str("number"),
            Type::Money => f.write_str("money"),
            Type::Date => f.write_str("date"),
            Type::DateTime => f.write_str("datetime"),
            Type::Email => f.write_str("email"),
            Type::User => f.write_str("user"),
            Type::YesNo => f.write_str("yes/no"),
            Type::OneOf(_) => f.write_str("one of"),
            Type::List(t) => write!(f, "list of {t}"),
            Type::Duration => f.write_str("duration"),
            Type::Person => f.write_str("person"),
            Type::Unknown => f.write_str("unknown"),
        }
    }
}
