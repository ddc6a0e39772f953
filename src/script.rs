//! The rhai sandbox for `script` exception tests.
//!
//! One engine configuration serves the checker (which compiles every script
//! to report errors at check time), the compiler (which keeps the compiled
//! AST) and the evaluator (which runs it). Scripts cannot do I/O, load
//! modules or `eval`, and are bounded in operations, string and array sizes
//! and call depth; a script that exceeds a bound fails with an error for its
//! exception, never a hang.
//!
//! Decisions must replay: the same workflow version, record, event and time
//! give the same outcome. So the engine starts raw (`Engine::new_raw`) with
//! only the packages grammar/README.md documents, none of which reads the
//! clock, waits, or draws random numbers; the only bounds are counts and
//! sizes, never wall time; and "today" comes from the event being handled.

use std::cell::Cell;

use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicFnPackage, BasicIteratorPackage, BasicMapPackage,
    BasicMathPackage, BasicStringPackage, LogicPackage, MoreStringPackage, Package,
};
use rhai::{Dynamic, Engine, Position, Scope, AST};

/// Operations a script may perform per evaluation.
pub const MAX_OPERATIONS: u64 = 200_000;

/// rhai's functions that read or wait on the wall clock (its time package,
/// and `sleep` from its core package). The sandbox has none of them; the
/// checker refuses them by name (H121) so an author learns at check time,
/// not at the first event.
pub const CLOCK_FUNCTIONS: [&str; 3] = ["timestamp", "elapsed", "sleep"];

thread_local! {
    // The evaluation's "today" (days since 1970-01-01); set by `with_clock`
    // around each run so helper functions see the event's time.
    static TODAY: Cell<i64> = const { Cell::new(0) };
}

/// The sandboxed engine.
pub fn engine() -> Engine {
    let mut e = Engine::new_raw();
    // What grammar/README.md ("Scripts") promises: operators, numbers and
    // math, text, lists, maps, ranges for `for`, and function pointers for
    // list methods such as `filter`. Not `LanguageCorePackage` (it has
    // `sleep`) and not `BasicTimePackage` (`timestamp`, `elapsed`).
    for package in [
        ArithmeticPackage::new().as_shared_module(),
        LogicPackage::new().as_shared_module(),
        BasicMathPackage::new().as_shared_module(),
        BasicStringPackage::new().as_shared_module(),
        MoreStringPackage::new().as_shared_module(),
        BasicIteratorPackage::new().as_shared_module(),
        BasicArrayPackage::new().as_shared_module(),
        BasicMapPackage::new().as_shared_module(),
        BasicFnPackage::new().as_shared_module(),
    ] {
        e.register_global_module(package);
    }
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

/// What a compiled script uses, found by walking its AST (so text in
/// strings and comments never counts).
#[derive(Debug, Default, PartialEq)]
pub struct Uses {
    /// Every read of `OBJECT.FIELD` or `OBJECT["FIELD"]`, in the order
    /// written, with where the field's name starts.
    pub fields: Vec<(String, Position)>,
    /// Every call of one of [`CLOCK_FUNCTIONS`] as a function, a method or
    /// a property (`t.elapsed`), unless the script defines a function of
    /// that name.
    pub clock: Vec<(String, Position)>,
}

/// What `ast` uses, for a script over the record variable `object`.
///
/// A script that handles the record whole (`let d = deal; d.notes`) reads
/// fields that this cannot name; the only such uses rhai allows are
/// aliases and map methods, which the reference does not document.
pub fn uses(ast: &AST, object: &str) -> Uses {
    use rhai::{ASTNode, Expr};
    let own: Vec<String> = ast.iter_functions().map(|f| f.name.to_string()).collect();
    let clock = |name: &str| CLOCK_FUNCTIONS.contains(&name) && !own.iter().any(|o| o == name);
    let mut out = Uses::default();
    ast.walk(&mut |path: &[ASTNode]| {
        let Some(ASTNode::Expr(expr)) = path.last() else {
            return true;
        };
        match expr {
            Expr::Dot(b, ..) | Expr::Index(b, ..) if is_variable(&b.lhs, object) => {
                let by_name = matches!(expr, Expr::Dot(..));
                // `deal.a.b()` is Dot(deal, Dot(a, b())): the field is the
                // first link of the chain.
                let first = match &b.rhs {
                    Expr::Dot(inner, ..) | Expr::Index(inner, ..) => &inner.lhs,
                    other => other,
                };
                match first {
                    Expr::Property(p, pos) if by_name => out.fields.push((p.2.to_string(), *pos)),
                    Expr::StringConstant(s, pos) if !by_name => {
                        out.fields.push((s.to_string(), *pos))
                    }
                    _ => {}
                }
            }
            Expr::FnCall(f, pos) if f.namespace.is_empty() && clock(&f.name) => {
                out.clock.push((f.name.to_string(), *pos))
            }
            Expr::MethodCall(f, pos) if clock(&f.name) => {
                out.clock.push((f.name.to_string(), *pos))
            }
            // `t.elapsed`, but not a field called `elapsed` (`deal.elapsed`).
            Expr::Property(p, pos) if clock(&p.2) && !first_link(path, object) => {
                out.clock.push((p.2.to_string(), *pos))
            }
            _ => {}
        }
        true
    });
    out
}

/// Whether the node at the end of `path` is the field in a record read:
/// the `a` of `deal.a` or of `deal.a.b`.
fn first_link(path: &[rhai::ASTNode], object: &str) -> bool {
    use rhai::{ASTNode, Expr};
    let [.., grand, parent, ASTNode::Expr(node)] = path else {
        return false;
    };
    let on_record =
        |e: &ASTNode| matches!(e, ASTNode::Expr(Expr::Dot(b, ..)) if is_variable(&b.lhs, object));
    match parent {
        ASTNode::Expr(Expr::Dot(b, ..)) if is_variable(&b.lhs, object) => {
            std::ptr::eq(&b.rhs, *node)
        }
        ASTNode::Expr(Expr::Dot(b, ..) | Expr::Index(b, ..)) => {
            std::ptr::eq(&b.lhs, *node) && on_record(grand)
        }
        _ => false,
    }
}

fn is_variable(e: &rhai::Expr, name: &str) -> bool {
    matches!(e, rhai::Expr::Variable(v, ..) if v.1 == name)
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

/// Runs `f` with the script clock set to `today`, the day of the event.
pub fn with_clock<T>(today: jiff::civil::Date, f: impl FnOnce() -> T) -> T {
    let days = i64::from((today - jiff::civil::date(1970, 1, 1)).get_days());
    TODAY.with(|t| t.set(days));
    f()
}

/// If a string literal or a comment starts at `i`, the offset just past it.
/// The checker's scan for misspelled helpers uses it to look at code only.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn uses_of(src: &str) -> (Vec<String>, Vec<String>) {
        let ast = compile(&engine(), "deal", src).expect("compiles");
        let u = uses(&ast, "deal");
        (
            u.fields.into_iter().map(|f| f.0).collect(),
            u.clock.into_iter().map(|f| f.0).collect(),
        )
    }

    #[test]
    fn uses_lists_field_reads_in_order_from_the_ast() {
        let (fields, clock) = uses_of(
            r#"deal.new_amount > deal.amount * 1.2 && deal["risk"].len() > 0 && "deal.fake" != deal.x.y // deal.no"#,
        );
        assert_eq!(fields, ["new_amount", "amount", "risk", "x"]);
        assert!(clock.is_empty());
        // Positions are rhai's (line, column) of the field's name.
        let ast = compile(&engine(), "deal", "1 < 2 &&\n  deal.amount > 3").unwrap();
        assert_eq!(
            uses(&ast, "deal").fields,
            [("amount".to_string(), Position::new(2, 8))]
        );
    }

    #[test]
    fn uses_finds_the_clock_however_it_is_called() {
        let (_, clock) = uses_of(
            "let t = timestamp(); t.elapsed > 1.0 || t.elapsed() > 2.0 || elapsed(t) > 0.0 || sleep(1)",
        );
        assert_eq!(
            clock,
            ["timestamp", "elapsed", "elapsed", "elapsed", "sleep"]
        );
        // Not a variable, a field or a function the script defines.
        let (fields, clock) = uses_of(
            "fn sleep(n) { n } let elapsed = 3; deal.elapsed > elapsed && deal.elapsed.len() > sleep(1)",
        );
        assert_eq!(fields, ["elapsed", "elapsed"]);
        assert!(clock.is_empty(), "{clock:?}");
    }

    #[test]
    fn the_clock_is_not_in_the_sandbox() {
        // Even past the checker, a script cannot read the time or wait.
        let e = engine();
        for src in ["timestamp()", "sleep(1)", "sleep(0.5)"] {
            let ast = compile(&e, "deal", src).unwrap();
            let mut scope = compile_scope("deal");
            let err = e
                .eval_ast_with_scope::<Dynamic>(&mut scope, &ast)
                .unwrap_err();
            assert!(
                matches!(*err, rhai::EvalAltResult::ErrorFunctionNotFound(..)),
                "{src}: {err}"
            );
        }
    }

    #[test]
    fn the_documented_surface_works() {
        // grammar/README.md, "Scripts": operators, text, lists, maps,
        // numbers, loops, functions, the helpers.
        let e = engine();
        let src = r#"
            let notes = deal.notes.to_lower();
            let tags = deal.tags.filter(|t| t.len() > 2);
            let m = #{a: 1, b: 2};
            let n = 0;
            for i in 0..10 { n += i; }
            fn twice(x) { x * 2 }
            notes.contains("blocker") && tags.len() == 1 && m.keys().len() == 2
                && n == 45 && twice(deal.amount) == 24000 && abs(-2) == 2
                && floor(2.5) == 2.0 && `${deal.amount}` == "12000"
                && days_until("2026-12-01") == 6 && today() == "2026-11-25"
                && !(1 > 2 || false) && 7 % 3 == 1 && sub_string("abc", 1) == "bc"
        "#;
        let ast = compile(&e, "deal", src).unwrap();
        let mut record = rhai::Map::new();
        record.insert("notes".into(), "A BLOCKER".into());
        record.insert(
            "tags".into(),
            vec![Dynamic::from("legal"), Dynamic::from("x")].into(),
        );
        record.insert("amount".into(), (12_000_i64).into());
        let mut scope = Scope::new();
        scope.push_constant("deal", record);
        let ok: bool = with_clock(jiff::civil::date(2026, 11, 25), || {
            e.eval_ast_with_scope(&mut scope, &ast)
        })
        .unwrap();
        assert!(ok);
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
