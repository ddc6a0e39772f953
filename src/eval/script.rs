//! Running `script` exception tests in the rhai sandbox.

use rhai::{Dynamic, Scope, AST};

use crate::check::ObjectSchema;
use crate::compile::WorkflowSet;
use crate::value::Value;

/// Runs a compiled script over the record; `Ok(flag)` or a readable error
/// (a script that fails, runs too long, or returns something other than
/// true/false).
pub(super) fn run(
    set: &WorkflowSet,
    ast: &AST,
    object: &ObjectSchema,
    record: &[Value],
    today: jiff::civil::Date,
) -> Result<bool, String> {
    let mut map = rhai::Map::new();
    for (f, v) in object.fields.iter().zip(record) {
        map.insert(f.name.as_str().into(), crate::script::to_dynamic(v));
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
            rhai::EvalAltResult::ErrorTooManyOperations(_) => {
                "the script ran too long and was stopped".to_string()
            }
            rhai::EvalAltResult::ErrorTerminated(..) => {
                "the script ran past its time limit and was stopped".to_string()
            }
            other => other.to_string(),
        }),
    }
}
