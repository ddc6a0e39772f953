//! Workflow tests: `*.handoff-test` files (TOML) that feed events in order
//! and state what must happen. `handoff test` runs them.
//!
//! ```toml
//! [[test]]
//! name = "Closed Won missing risk notes pauses the handoff"
//!
//! [[test.step]]
//! event = { id = "e1", object = "deal", record_id = "D-1", record = { stage = "Closed Won" } }
//! [[test.step.expect]]
//! workflow = "Sales to Delivery"
//! status = "paused"
//! missing = ["risk_notes"]
//! ```
//!
//! An `expect` table is matched against that workflow's outcome (the JSON of
//! `handoff run --format json`): every key given must match; lists of values
//! must be equal; lists of tables match in order, each expected table against
//! a later actual one (so `actions` may list only the actions that matter);
//! `trace_contains` lists text that must appear in the explain trace. A step
//! may `approve = { workflow = "…", record = "deal/D-1" }` instead of sending
//! an event.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value as J;

use crate::compile::WorkflowSet;
use crate::eval::{Event, State};

mod shape;

/// A test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    #[serde(default)]
    pub test: Vec<TestCase>,
}

/// One scenario.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    /// The default time of steps (else each event's `occurred_at`).
    #[serde(default)]
    pub now: Option<String>,
    #[serde(default)]
    pub step: Vec<Step>,
}

/// One step: an event or an approval, and what must follow.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(default)]
    pub event: Option<toml::Value>,
    #[serde(default)]
    pub approve: Option<Approve>,
    #[serde(default)]
    pub now: Option<String>,
    /// Whether the event must be recognised as a retry.
    #[serde(default)]
    pub duplicate: Option<bool>,
    #[serde(default)]
    pub expect: Vec<toml::Table>,
}

/// A manual approval.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approve {
    pub workflow: String,
    /// `object/record_id`.
    pub record: String,
}

/// The result of one test case.
#[derive(Debug)]
pub struct CaseResult {
    pub file: PathBuf,
    pub name: String,
    /// Empty when the case passed.
    pub failures: Vec<String>,
}

/// Reads a test file.
pub fn read(path: &Path) -> Result<TestFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let bad =
        |e: &dyn std::fmt::Display| format!("`{}` is not a valid test file: {e}", path.display());
    let table: toml::Table = toml::from_str(&text).map_err(|e| bad(&e))?;
    if let Some(problem) = shape::problem(&table) {
        return Err(bad(&problem));
    }
    let file = TestFile::deserialize(toml::Value::Table(table)).map_err(|e| bad(&e))?;
    // A file with no test would pass while checking nothing.
    if file.test.is_empty() {
        return Err(bad(&"it holds no test: write at least one `[[test]]` with a `name` and `[[test.step]]`s (grammar/README.md, \"Workflow tests\")"));
    }
    Ok(file)
}

/// Runs every case of a file against `set`.
pub fn run_file(set: &WorkflowSet, path: &Path, file: &TestFile) -> Vec<CaseResult> {
    file.test
        .iter()
        .map(|case| CaseResult {
            file: path.to_path_buf(),
            name: case.name.clone(),
            failures: run_case(set, case),
        })
        .collect()
}

/// Why a case checks nothing, if it does not: a test that checks nothing
/// would pass whatever the workflows do.
fn checks_nothing(case: &TestCase) -> Option<String> {
    if case.step.is_empty() {
        return Some(
            "the test has no steps, so it checks nothing: add a `[[test.step]]` with an `event`, and a `[[test.step.expect]]` under it"
                .to_string(),
        );
    }
    let idle: Vec<String> = case
        .step
        .iter()
        .enumerate()
        .filter(|(_, s)| s.expect.is_empty() && s.duplicate.is_none())
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    match idle.as_slice() {
        [] => None,
        [one] => Some(format!("step {one} expects nothing: add a `[[test.step.expect]]` under it with the `workflow` and what must happen, such as `status = \"proceeded\"`")),
        many => Some(format!("steps {} expect nothing: add a `[[test.step.expect]]` under each with the `workflow` and what must happen, such as `status = \"proceeded\"`", many.join(", "))),
    }
}

fn run_case(set: &WorkflowSet, case: &TestCase) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(why) = checks_nothing(case) {
        failures.push(why);
        return failures;
    }
    let mut state = State::default();
    for (i, step) in case.step.iter().enumerate() {
        let n = i + 1;
        let now_text = step.now.as_ref().or(case.now.as_ref());
        let now = match now_text.map(|t| crate::compile::parse_datetime(t).ok_or(t)) {
            Some(Ok(t)) => Some(t),
            Some(Err(t)) => {
                failures.push(format!("step {n}: `now = \"{t}\"` is not a date-time"));
                return failures;
            }
            None => None,
        };
        if step.event.is_some() && step.approve.is_some() {
            failures.push(format!(
                "step {n}: give an `event` or an `approve`, not both: put the approval in a step of its own"
            ));
            return failures;
        }
        // The object of this step's event (none for an approval).
        let step_object: Option<String> = step
            .event
            .as_ref()
            .and_then(|ev| toml_to_json(ev)["object"].as_str().map(str::to_string));
        let outcomes: Vec<J> = if let Some(ev) = &step.event {
            let json = toml_to_json(ev);
            let event = match Event::decode(set, json.to_string().as_bytes()) {
                Ok(e) => e,
                Err(e) => {
                    failures.push(format!("step {n}: {e}"));
                    return failures;
                }
            };
            // A step's value outside a `one of` list is a typo in the test
            // (the engine would take it as sent and fire nothing on it).
            if let Some(u) = event.unknown_values.first() {
                failures.push(format!("step {n}: {u}: write one of the listed values"));
                return failures;
            }
            let now = now
                .or(event.occurred_at)
                .unwrap_or_else(|| jiff::Timestamp::from_second(0).unwrap_or_default());
            // Every step is also a replay check: the same state, event and
            // time must give byte-identical outcomes and states.
            let mut replay = state.clone();
            let outcome = match state.step(set, &event, now) {
                Ok(o) => o,
                Err(e) => {
                    failures.push(format!("step {n}: {e}"));
                    return failures;
                }
            };
            if let Some(why) = replay_differs(set, &mut replay, &state, &event, now, &outcome) {
                failures.push(format!(
                    "step {n}: the engine did not replay exactly: {why}"
                ));
            }
            if let Some(d) = step.duplicate {
                if outcome.duplicate != d {
                    failures.push(format!(
                        "step {n}: duplicate: expected {d}, got {}",
                        outcome.duplicate
                    ));
                }
            }
            serde_json::to_value(&outcome)
                .ok()
                .and_then(|v| v.get("handoffs").cloned())
                .and_then(|h| h.as_array().cloned())
                .unwrap_or_default()
        } else if let Some(a) = &step.approve {
            let Some((object, record)) = a.record.split_once('/') else {
                failures.push(format!(
                    "step {n}: approve `record` must read `object/record_id`"
                ));
                return failures;
            };
            let now = now.unwrap_or_else(|| jiff::Timestamp::from_second(0).unwrap_or_default());
            match state.approve(set, &a.workflow, object, record, now) {
                Ok(out) => serde_json::to_value(&out)
                    .map(|v| vec![v])
                    .unwrap_or_default(),
                Err(e) => {
                    failures.push(format!("step {n}: approval refused: {e}"));
                    return failures;
                }
            }
        } else {
            failures.push(format!("step {n}: give an `event` or an `approve`"));
            return failures;
        };
        for expect in &step.expect {
            let Some(workflow) = expect.get("workflow").and_then(|w| w.as_str()) else {
                failures.push(format!("step {n}: each `expect` needs a `workflow`"));
                continue;
            };
            let Some(actual) = outcomes
                .iter()
                .find(|o| o.get("workflow").and_then(J::as_str) == Some(workflow))
            else {
                // A typo in the name reads as a workflow that did not run.
                let names = set.handoffs().iter().map(|h| h.name.as_str());
                let declared = set.handoffs().iter().find(|h| h.name == workflow);
                let hint = match (declared, crate::check::suggest(workflow, names)) {
                    // It exists, and runs on other records than this
                    // step's event is about.
                    (Some(h), _) if step_object.as_deref().is_some_and(|o| o != h.object_name) => {
                        format!(
                            ": it runs on `{}` records, and this step's event is a `{}`",
                            h.object_name,
                            step_object.as_deref().unwrap_or_default()
                        )
                    }
                    // An approval's outcomes are of the handoff approved.
                    (Some(_), _) if step.approve.is_some() => {
                        ": an approval step has only the outcome of the handoff it approves"
                            .to_string()
                    }
                    (Some(_), _) => String::new(),
                    (None, Some(s)) => format!(": did you mean \"{s}\"?"),
                    (None, None) => String::new(),
                };
                failures.push(format!(
                    "step {n}: no outcome for workflow \"{workflow}\"{hint}"
                ));
                continue;
            };
            // A status that does not exist can never match: say so, with
            // the one meant, instead of a plain difference.
            if let Some(want) = expect.get("status").and_then(|s| s.as_str()) {
                let statuses =
                    crate::eval::OutcomeStatus::ALL.map(crate::eval::OutcomeStatus::as_str);
                if !statuses.contains(&want) {
                    let hint = did_you_mean(want, &statuses, '"');
                    failures.push(format!(
                        "step {n}, \"{workflow}\": status \"{want}\" is not a status: {hint}the statuses are {}",
                        statuses.join(", ")
                    ));
                    continue;
                }
            }
            let before = failures.len();
            for (key, want) in expect {
                match key.as_str() {
                    "workflow" => {}
                    "trace_contains" => {
                        let trace: Vec<&str> = actual
                            .get("trace")
                            .and_then(J::as_array)
                            .map(|t| t.iter().filter_map(J::as_str).collect())
                            .unwrap_or_default();
                        // One line or a list of lines; anything else would
                        // check nothing and pass, so it fails.
                        let needles: Vec<&str> = match want {
                            toml::Value::String(line) => vec![line.as_str()],
                            toml::Value::Array(lines) => {
                                lines.iter().filter_map(|l| l.as_str()).collect()
                            }
                            _ => Vec::new(),
                        };
                        let texts = match want {
                            toml::Value::Array(lines) => lines.len(),
                            _ => 1,
                        };
                        if needles.len() != texts || needles.is_empty() {
                            failures.push(format!(
                                "step {n}, \"{workflow}\": `trace_contains` is {want}; write a line of text, or a list of them, such as [\"fired\"]"
                            ));
                        }
                        for needle in needles {
                            if !trace.iter().any(|l| l.contains(needle)) {
                                failures.push(format!(
                                    "step {n}, \"{workflow}\": trace has no line containing \"{needle}\""
                                ));
                            }
                        }
                    }
                    "duplicate" => failures.push(format!(
                        "step {n}, \"{workflow}\": `duplicate` is the step's, not a handoff's: write `duplicate = true` under `[[test.step]]`, next to `event`"
                    )),
                    // A key an outcome never has can never match: say so,
                    // with the one meant, instead of "expected …, got null".
                    _ if !OUTCOME_KEYS.contains(&key.as_str()) => {
                        let hint = did_you_mean(key, &OUTCOME_KEYS, '`');
                        failures.push(format!(
                            "step {n}, \"{workflow}\": `{key}` is not part of an outcome: {hint}the keys are {}, and `trace_contains`",
                            OUTCOME_KEYS.join(", ")
                        ));
                    }
                    // An action type that does not exist can never match.
                    "actions" if !action_type_typos(want).is_empty() => {
                        for typo in action_type_typos(want) {
                            failures.push(format!("step {n}, \"{workflow}\": {typo}"));
                        }
                    }
                    _ => compare(
                        &format!("step {n}, \"{workflow}\": {key}"),
                        &toml_to_json(want),
                        actual.get(key).unwrap_or(&J::Null),
                        &mut failures,
                    ),
                }
            }
            if failures.len() > before {
                let pretty = serde_json::to_string_pretty(actual).unwrap_or_default();
                let mut context = String::from("  the outcome was:");
                for line in pretty.lines() {
                    let _ = write!(context, "\n    {line}");
                }
                failures.push(context);
            }
        }
    }
    failures
}

/// The `type`s an action of an outcome has (`eval::PlannedAction`).
const ACTION_TYPES: [&str; 5] = ["assign", "task", "notify", "email_draft", "set"];

/// For each expected action whose `type` is not one, what it is not and
/// the one meant.
fn action_type_typos(want: &toml::Value) -> Vec<String> {
    let Some(actions) = want.as_array() else {
        return Vec::new();
    };
    actions
        .iter()
        .enumerate()
        .filter_map(|(i, action)| {
            let t = action.get("type")?.as_str()?;
            (!ACTION_TYPES.contains(&t)).then(|| {
                format!(
                    "actions[{i}].type \"{t}\" is not an action type: {}the types are {}",
                    did_you_mean(t, &ACTION_TYPES, '"'),
                    ACTION_TYPES.join(", ")
                )
            })
        })
        .collect()
}

/// `did you mean "x"? ` (quoted with `quote`) for the one of `candidates`
/// closest to `want`, or nothing when none is close.
fn did_you_mean(want: &str, candidates: &[&str], quote: char) -> String {
    crate::check::suggest(want, candidates.iter().copied())
        .map(|s| format!("did you mean {quote}{s}{quote}? "))
        .unwrap_or_default()
}

/// The keys of a handoff's outcome (`eval::HandoffOutcome` as JSON) an
/// `expect` may compare; absent ones (no brief, no answers) read as null.
const OUTCOME_KEYS: [&str; 12] = [
    "workflow",
    "record_id",
    "instance",
    "status",
    "migrated_from",
    "missing",
    "exceptions",
    "exception_errors",
    "actions",
    "brief",
    "answers",
    "trace",
];

/// Compares an expected value with the actual one, recording each mismatch
/// with its path.
fn compare(path: &str, want: &J, got: &J, failures: &mut Vec<String>) {
    match (want, got) {
        (J::Object(w), J::Object(g)) => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => compare(&format!("{path}.{k}"), wv, gv, failures),
                    None if wv.is_null() => {}
                    // A key the outcome does not have: a typo (`too` for
                    // `to`) said as one, not as "expected …, got null".
                    None => {
                        let keys = || g.keys().map(String::as_str);
                        let meant = crate::check::suggest(k, keys())
                            .map(|m| format!(" (did you mean `{m}`?)"))
                            .unwrap_or_default();
                        let listed: Vec<String> = keys().map(|k| format!("`{k}`")).collect();
                        failures.push(format!(
                            "{path}.{k}: expected {wv}, but there is no `{k}` here{meant}; there is {}",
                            if listed.is_empty() { "nothing".to_string() } else { listed.join(", ") }
                        ));
                    }
                }
            }
        }
        (J::Array(w), J::Array(g)) if w.iter().any(J::is_object) => {
            // Tables match in order against later actual entries.
            let mut from = 0;
            // The expectation that matched the last entry, once one did.
            let mut took_last = 0;
            for (i, wv) in w.iter().enumerate() {
                let found = (from..g.len()).find(|&j| {
                    let mut scratch = Vec::new();
                    compare("", wv, &g[j], &mut scratch);
                    scratch.is_empty()
                });
                match found {
                    Some(j) => {
                        from = j + 1;
                        took_last = i;
                    }
                    None => match g.get(from) {
                        // The next unmatched entry, for a useful diff (it
                        // differs, or `find` would have taken it).
                        Some(c) => compare(&format!("{path}[{i}]"), wv, c, failures),
                        // Never an entry an earlier expectation matched:
                        // that one compared equal, and the test would pass
                        // with fewer actions than it expects.
                        None => failures.push(if g.is_empty() {
                            format!("{path}[{i}]: expected {wv}, but there are none")
                        } else {
                            format!(
                                "{path}[{i}]: expected {wv}, but there are no more entries: {} in all, the last of them matched by {path}[{took_last}]",
                                g.len()
                            )
                        }),
                    },
                }
            }
        }
        (J::Number(w), J::Number(g)) if w.as_f64() == g.as_f64() => {}
        // Money is written as text ("5000.00"); a scenario may expect 5000.
        (J::Number(w), J::String(g)) if same_amount(w, g) => {}
        (w, g) if w == g => {}
        (w, g) => failures.push(format!("{path}: expected {w}, got {g}")),
    }
}

/// TOML to JSON, with TOML date-times as RFC 3339 strings.
/// Steps `event` again from the state before it and compares with what the
/// first step gave; says what differed.
fn replay_differs(
    set: &WorkflowSet,
    replay: &mut State,
    after: &State,
    event: &Event,
    now: jiff::Timestamp,
    outcome: &crate::eval::Outcome,
) -> Option<String> {
    let again = match replay.step(set, event, now) {
        Ok(o) => o,
        Err(e) => return Some(e.to_string()),
    };
    fn json<T: serde::Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap_or_else(|e| e.to_string())
    }
    if json(&again) != json(outcome) {
        return Some(format!(
            "the outcome differs:\n{}\n{}",
            json(outcome),
            json(&again)
        ));
    }
    (json(replay) != json(after)).then(|| "the new state differs".to_string())
}

pub fn toml_to_json(v: &toml::Value) -> J {
    match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// Whether `text` is the exact amount `n` (`"5000.00"` and `5000`).
fn same_amount(n: &serde_json::Number, text: &str) -> bool {
    let want = n
        .as_i64()
        .map(crate::value::Decimal::from)
        .or_else(|| n.as_f64().and_then(crate::value::float_decimal));
    matches!((want, crate::value::parse_decimal(text)), (Some(w), Some(g)) if w == g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_type_that_does_not_exist_names_the_one_meant() {
        let want: toml::Value =
            toml::from_str::<toml::Table>(r#"a = [{ type = "task" }, { type = "notification" }]"#)
                .map(|t| t["a"].clone())
                .unwrap_or(toml::Value::Boolean(false));
        let typos = action_type_typos(&want);
        assert_eq!(typos.len(), 1, "{typos:?}");
        assert!(
            typos[0].starts_with(
                r#"actions[1].type "notification" is not an action type: did you mean "notify"?"#
            ),
            "{typos:?}"
        );
    }

    /// Every key an outcome serializes is one `expect` may name.
    #[test]
    fn the_outcome_keys_are_the_outcomes_fields() {
        let outcome = crate::eval::HandoffOutcome {
            workflow: "W".into(),
            record_id: "R".into(),
            instance: Some("h-1".into()),
            status: crate::eval::OutcomeStatus::Proceeded,
            migrated_from: Some("v1".into()),
            missing: vec!["x".into()],
            exceptions: vec!["e".into()],
            exception_errors: Vec::new(),
            actions: Vec::new(),
            brief: None,
            answers: None,
            trace: Default::default(),
        };
        let json = serde_json::to_value(&outcome).unwrap_or_default();
        let keys: Vec<&str> = json
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert!(keys.len() >= 8, "{keys:?}");
        for k in keys {
            assert!(
                OUTCOME_KEYS.contains(&k),
                "`{k}` is missing from OUTCOME_KEYS"
            );
        }
    }

    #[test]
    fn a_key_that_is_not_there_is_named_with_the_one_meant() {
        let mut failures = Vec::new();
        compare(
            "actions[0]",
            &serde_json::json!({ "type": "notify", "too": "sam" }),
            &serde_json::json!({ "type": "notify", "to": "sam", "message": "hi" }),
            &mut failures,
        );
        assert_eq!(
            failures,
            ["actions[0].too: expected \"sam\", but there is no `too` here (did you mean `to`?); there is `message`, `to`, `type`"]
        );
    }

    #[test]
    fn expecting_more_entries_than_came_fails() {
        let got = serde_json::json!([{ "type": "notify", "to": "sam" }]);
        let mut failures = Vec::new();
        compare(
            "actions",
            &serde_json::json!([{ "type": "notify" }, { "type": "notify" }]),
            &got,
            &mut failures,
        );
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(
            failures[0].starts_with("actions[1]: expected {\"type\":\"notify\"}, but there are no more entries: 1 in all, the last of them matched by actions[0]"),
            "{failures:?}"
        );
        // The entry after the last match is the one compared, never the match.
        let mut failures = Vec::new();
        compare(
            "actions",
            &serde_json::json!([{ "type": "notify" }, { "type": "task" }]),
            &got,
            &mut failures,
        );
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].contains("no more entries"), "{failures:?}");
        let mut failures = Vec::new();
        compare(
            "actions",
            &serde_json::json!([{ "type": "task" }]),
            &serde_json::json!([]),
            &mut failures,
        );
        assert!(failures[0].ends_with("but there are none"), "{failures:?}");
    }

    #[test]
    fn an_expected_number_matches_money_written_as_text() {
        let mut failures = Vec::new();
        compare(
            "v",
            &serde_json::json!(5000),
            &serde_json::json!("5000.00"),
            &mut failures,
        );
        compare(
            "v",
            &serde_json::json!(0.5),
            &serde_json::json!("0.50"),
            &mut failures,
        );
        assert!(failures.is_empty(), "{failures:?}");
        compare(
            "v",
            &serde_json::json!(5000),
            &serde_json::json!("5000.01"),
            &mut failures,
        );
        compare(
            "v",
            &serde_json::json!(5000),
            &serde_json::json!("5,000"),
            &mut failures,
        );
        assert_eq!(failures.len(), 2, "{failures:?}");
    }
}
