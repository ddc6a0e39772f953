//! Deciding `script` exception tests: the empty-field rule, running the
//! script in the rhai sandbox, and the trace line that explains the result.
//!
//! The decision is a pure function of the script, the record and the day of
//! the event: the sandbox has no clock and is bounded by counts, not time.

use std::fmt::Write as _;

use rhai::{Dynamic, Scope, AST};

use super::expr::Record;
use crate::check::ObjectSchema;
use crate::compile::WorkflowSet;

/// What a script exception decided.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Decision {
    /// Whether the exception is flagged for review.
    pub flagged: bool,
    /// Why it is flagged without the script saying so: the script failed,
    /// or could not run because a field it reads is empty.
    pub error: Option<String>,
    /// The trace line: `exception "NAME": script → true (deal.amount = 3)`.
    pub trace: String,
}

/// Decides the exception `name`, tested by the compiled script `ast` that
/// reads the slots `reads` (see `compile::ExceptionKind::Script`).
///
/// A script that reads an empty field does not run, and the exception is
/// flagged for review: a script such as `deal.notes.contains("blocker")`
/// would otherwise fail or, worse, quietly say false for a deal nobody
/// checked. Requiring the field makes the handoff wait for it instead.
pub(super) fn decide(
    set: &WorkflowSet,
    name: &str,
    ast: &AST,
    reads: &[usize],
    object: &ObjectSchema,
    record: Record<'_>,
    today: jiff::civil::Date,
) -> Decision {
    let empty = record.missing(reads);
    if !empty.is_empty() {
        let fields = field_list(object, &empty);
        let (is, them) = if empty.len() == 1 {
            ("is", "it")
        } else {
            ("are", "them")
        };
        return Decision {
            flagged: true,
            error: Some(format!(
                "the script reads {fields}, which {is} empty; require {them} so the handoff waits for a value"
            )),
            trace: format!(
                "exception \"{name}\": script reads {fields}, which {is} empty → flagged for review"
            ),
        };
    }
    match run(set, ast, object, record, today) {
        Ok(flag) => {
            let mut trace = format!("exception \"{name}\": script → {flag}");
            for (i, &s) in reads.iter().enumerate() {
                trace.push_str(if i == 0 { " (" } else { ", " });
                // Writing to a String cannot fail.
                let _ = write!(
                    trace,
                    "{}.{} = {}",
                    object.name,
                    field_name(object, s),
                    super::trace::show(record.get(s))
                );
            }
            if !reads.is_empty() {
                trace.push(')');
            }
            Decision {
                flagged: flag,
                error: None,
                trace,
            }
        }
        Err(err) => Decision {
            flagged: true,
            trace: format!("exception \"{name}\": script failed ({err}) → flagged for review"),
            error: Some(err),
        },
    }
}

fn field_name(object: &ObjectSchema, slot: usize) -> &str {
    object.fields.get(slot).map_or("?", |f| f.name.as_str())
}

/// `deal.a`, `deal.a and deal.b`, `deal.a, deal.b and deal.c`.
fn field_list(object: &ObjectSchema, slots: &[usize]) -> String {
    let names: Vec<String> = slots
        .iter()
        .map(|&s| format!("{}.{}", object.name, field_name(object, s)))
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// Runs a compiled script over the record; `Ok(flag)` or a readable error
/// (a script that fails, breaks a limit, or returns something other than
/// true/false).
fn run(
    set: &WorkflowSet,
    ast: &AST,
    object: &ObjectSchema,
    record: Record<'_>,
    today: jiff::civil::Date,
) -> Result<bool, String> {
    let mut map = rhai::Map::new();
    for (s, f) in object.fields.iter().enumerate() {
        map.insert(
            f.name.as_str().into(),
            crate::script::to_dynamic(record.get(s)),
        );
    }
    let mut scope = Scope::new();
    scope.push_constant(object.name.clone(), map);
    let result = crate::script::with_clock(today, || {
        set.engine().eval_ast_with_scope::<Dynamic>(&mut scope, ast)
    });
    match result {
        Ok(d) => d
            .as_bool()
            .map_err(|t| format!("the script returned {t}, not true/false")),
        Err(e) => Err(match *e {
            rhai::EvalAltResult::ErrorTooManyOperations(_) => format!(
                "the script ran past {} operations and was stopped",
                thousands(crate::script::MAX_OPERATIONS)
            ),
            other => other.to_string(),
        }),
    }
}

/// `200000` as `200,000`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(200_000), "200,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
    }
}
