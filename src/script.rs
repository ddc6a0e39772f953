//! The rhai sandbox for `script` exception tests.
//!
//! One engine configuration serves the checker (which compiles every script
//! to report errors at check time), the compiler (which keeps the compiled
//! AST) and the evaluator (which runs it). Scripts cannot do I/O, load
//! modules or `eval`, and are bounded in operations, string and array sizes,
//! call depth and wall time; a script that exceeds a bound fails with an
//! error for its exception, never a hang.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, Scope, AST};

/// Operations a script may perform per evaluation.
pub const MAX_OPERATIONS: u64 = 200_000;
/// Wall time a script may run per evaluation.
pub const MAX_TIME: Duration = Duration::from_millis(50);

thread_local! {
    // The evaluation's "today" (days since 1970-01-01) and deadline; set by
    // `with_clock` around each run so helper functions see the event's time.
    static TODAY: Cell<i64> = const { Cell::new(0) };
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The sandboxed engine.
pub fn engine() -> Engine {
    let mut e = Engine::new();
    e.set_strict_variables(true);
    e.set_max_operations(MAX_OPERATIONS);
    e.set_max_string_size(64 * 1024);
    e.set_max_array_size(10_000);
    e.set_max_map_size(10_000);
    e.set_max_call_levels(32);
    e.set_max_expr_depths(64, 32);
    e.set_max_variables(256);
    e.set_max_functions(64);
    e.set_max_modules(0);
    e.disable_symbol("eval");
    // Scripts are single tests: no modules, even the built-in ones.
    e.disable_symbol("import");
    e.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    e.on_print(|_| {});
    e.on_debug(|_, _, _| {});
    e.on_progress(|_| {
        let late = DEADLINE.with(|d| d.get().is_some_and(|t| Instant::now() > t));
        late.then(|| Dynamic::from("time limit"))
    });
    e.register_fn(
        "days_until",
        |date: &str| -> Result<i64, Box<rhai::EvalAltResult>> {
            Ok(day_number(date)? - TODAY.with(Cell::get))
        },
    );
    e.register_fn(
        "days_since",
        |date: &str| -> Result<i64, Box<rhai::EvalAltResult>> {
            Ok(TODAY.with(Cell::get) - day_number(date)?)
        },
    );
    e.register_fn("today", || -> String {
        let days = TODAY.with(Cell::get);
        jiff::Span::new()
            .try_days(days)
            .and_then(|span| jiff::civil::date(1970, 1, 1).checked_add(span))
            .map(|d| d.to_string())
            .unwrap_or_default()
    });
    e
}

fn day_number(date: &str) -> Result<i64, Box<rhai::EvalAltResult>> {
    let d: jiff::civil::Date = date
        .get(..10)
        .unwrap_or(date)
        .parse()
        .map_err(|_| format!("`{date}` is not a date"))?;
    let epoch = jiff::civil::date(1970, 1, 1);
    Ok(i64::from((d - epoch).get_days()))
}

/// A scope declaring the record variable, so strict-variable compilation
/// accepts it.
///
/// The variable is not a constant here: rhai's optimizer folds constants
/// of the compile scope into the script, so `days_until(deal.start_date)`
/// would be compiled to `days_until(())` from this empty placeholder map.
/// The evaluator pushes the real record as a constant at run time.
pub fn compile_scope(object: &str) -> Scope<'static> {
    let mut scope = Scope::new();
    scope.push(object.to_string(), rhai::Map::new());
    scope
}

/// Compiles a script as an expression-or-statements body.
pub fn compile(engine: &Engine, object: &str, source: &str) -> Result<AST, rhai::ParseError> {
    engine.compile_with_scope(&compile_scope(object), source)
}

/// A record value as a script sees it: text, whole numbers and amounts as
/// integers (so `deal.seats == 3` holds), others as floats (scripts do not
/// get exact decimals), yes/no, arrays; dates, date-times and durations as
/// their text; absent as `()`.
pub fn to_dynamic(v: &crate::value::Value) -> Dynamic {
    use crate::value::Value;
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Text(s) => s.clone().into(),
        Value::Number(n) | Value::Money(n) => match i64::try_from(*n) {
            Ok(i) if n.is_integer() => i.into(),
            _ => f64::try_from(*n).unwrap_or(f64::NAN).into(),
        },
        Value::Bool(b) => (*b).into(),
        Value::List(items) => items.iter().map(to_dynamic).collect::<rhai::Array>().into(),
        other => other.to_string().into(),
    }
}

/// Runs `f` with the script clock set to `today` and a deadline of
/// [`MAX_TIME`] from now.
pub fn with_clock<T>(today: jiff::civil::Date, f: impl FnOnce() -> T) -> T {
    let days = i64::from((today - jiff::civil::date(1970, 1, 1)).get_days());
    TODAY.with(|t| t.set(days));
    DEADLINE.with(|d| d.set(Some(Instant::now() + MAX_TIME)));
    let out = f();
    DEADLINE.with(|d| d.set(None));
    out
}

/// If a string literal or a comment starts at `i`, the offset just past it.
/// Scanners of script text use it to look at code only.
pub(crate) fn skip_non_code(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    match b.get(i)? {
        q @ (b'"' | b'\'' | b'`') => {
            j += 1;
            while j < b.len() && b[j] != *q {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            Some((j + 1).min(b.len()))
        }
        b'/' if b.get(i + 1) == Some(&b'/') => {
            while j < b.len() && b[j] != b'\n' {
                j += 1;
            }
            Some(j)
        }
        b'/' if b.get(i + 1) == Some(&b'*') => {
            j += 2;
            while j + 1 < b.len() && !(b[j] == b'*' && b[j + 1] == b'/') {
                j += 1;
            }
            Some((j + 2).min(b.len()))
        }
        _ => None,
    }
}

/// The fields a script reads as `OBJECT.FIELD`, with their byte offsets in
/// the script (strings and comments skipped).
pub fn field_reads(source: &str, object: &str) -> Vec<(String, usize)> {
    let b = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        if let Some(next) = skip_non_code(b, i) {
            i = next;
            continue;
        }
        match b[i] {
            c if ident(c) => {
                let start = i;
                while i < b.len() && ident(b[i]) {
                    i += 1;
                }
                let preceded_by_dot = start > 0 && b[start - 1] == b'.';
                // `deal["field"]` reads a field too.
                if !preceded_by_dot && &source[start..i] == object && b.get(i) == Some(&b'[') {
                    let rest = &source[i + 1..];
                    let inner = rest.trim_start();
                    if let Some(body) = inner.strip_prefix('"') {
                        if let Some(end) = body.find('"') {
                            let fstart = i + 1 + (rest.len() - inner.len()) + 1;
                            out.push((body[..end].to_string(), fstart));
                            i = fstart + end + 1;
                            continue;
                        }
                    }
                }
                if !preceded_by_dot && &source[start..i] == object && b.get(i) == Some(&b'.') {
                    let fstart = i + 1;
                    let mut j = fstart;
                    while j < b.len() && ident(b[j]) {
                        j += 1;
                    }
                    if j > fstart {
                        out.push((source[fstart..j].to_string(), fstart));
                    }
                    i = j;
                }
            }
            _ => i += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_field_reads_outside_strings() {
        let src = "deal.amount > 5 && \"deal.fake\" != deal.segment // deal.no\n";
        let reads: Vec<String> = field_reads(src, "deal").into_iter().map(|r| r.0).collect();
        assert_eq!(reads, vec!["amount", "segment"]);
        let src = r#"deal["risk"] == "x""#;
        assert_eq!(field_reads(src, "deal"), vec![("risk".to_string(), 6)]);
    }

    #[test]
    fn import_is_rejected_at_compile_time() {
        assert!(compile(&engine(), "deal", r#"import "x" as y; true"#).is_err());
    }

    #[test]
    fn strict_variables_reject_unknown_names() {
        let e = engine();
        assert!(compile(&e, "deal", "deal.amount > 1").is_ok());
        assert!(compile(&e, "deal", "lead.amount > 1").is_err());
    }

    #[test]
    fn regression_compiled_scripts_read_the_record_given_at_run_time() {
        // Field reads in arguments and operators used to be folded into
        // `()` at compile time.
        let e = engine();
        let ast = compile(&e, "deal", "days_until(deal.start_date) + deal.amount * 2").unwrap();
        let mut record = rhai::Map::new();
        record.insert("start_date".into(), "2026-12-01".into());
        record.insert("amount".into(), (10_i64).into());
        let mut scope = Scope::new();
        scope.push_constant("deal", record);
        let n: i64 = with_clock(jiff::civil::date(2026, 11, 25), || {
            e.eval_ast_with_scope(&mut scope, &ast).unwrap()
        });
        assert_eq!(n, 26);
    }

    #[test]
    fn days_until_uses_the_clock() {
        let e = engine();
        let ast = compile(&e, "deal", r#"days_until("2026-12-01")"#).unwrap();
        let mut scope = compile_scope("deal");
        let n: i64 = with_clock(jiff::civil::date(2026, 11, 25), || {
            e.eval_ast_with_scope(&mut scope, &ast).unwrap()
        });
        assert_eq!(n, 6);
    }
}
