//! The shape of a `*.handoff-test` file, checked before it is read into
//! [`TestFile`](super::TestFile): unknown keys get a did-you-mean, and a
//! table written where a list of tables goes (`[test.step.expect]` for
//! `[[test.step.expect]]`) is named as such. serde's own messages speak of
//! Rust types (`invalid type: map, expected a sequence`); these speak of
//! the file the author wrote.

use toml::{Table, Value};

const FILE_KEYS: [&str; 1] = ["test"];
const TEST_KEYS: [&str; 3] = ["name", "now", "step"];
const STEP_KEYS: [&str; 5] = ["event", "approve", "now", "duplicate", "expect"];
const APPROVE_KEYS: [&str; 2] = ["workflow", "record"];

/// Where a problem is: `test 2 ("Closed Won pauses"), step 3`.
fn place(test: usize, name: Option<&str>, step: Option<usize>) -> String {
    let mut p = match name {
        Some(n) => format!("test {test} (\"{n}\")"),
        None => format!("test {test}"),
    };
    if let Some(s) = step {
        p.push_str(&format!(", step {s}"));
    }
    p
}

/// The first problem with the shape of a test file, if any.
pub(super) fn problem(file: &Table) -> Option<String> {
    if let Some(p) = unknown_keys(file, &FILE_KEYS, "the file") {
        return Some(p);
    }
    let tests = match file.get("test") {
        None => return None,
        Some(v) => match list_of_tables(v, "[[test]]", "the file") {
            Ok(t) => t,
            Err(p) => return Some(p),
        },
    };
    for (i, test) in tests.iter().enumerate() {
        let name = test.get("name").and_then(Value::as_str);
        let here = place(i + 1, name, None);
        if let Some(p) = unknown_keys(test, &TEST_KEYS, &here) {
            return Some(p);
        }
        match test.get("name") {
            None => {
                return Some(format!(
                    "{here} has no name: add `name = \"what the test shows\"` under its `[[test]]`"
                ))
            }
            Some(v) if !v.is_str() => {
                return Some(format!("{here}: `name` must be text in double quotes"))
            }
            _ => {}
        }
        if let Some(p) = text(test, "now", &here) {
            return Some(p);
        }
        let Some(steps) = test.get("step") else {
            continue;
        };
        let steps = match list_of_tables(steps, "[[test.step]]", &here) {
            Ok(s) => s,
            Err(p) => return Some(p),
        };
        for (j, step) in steps.iter().enumerate() {
            let here = place(i + 1, name, Some(j + 1));
            if let Some(p) = unknown_keys(step, &STEP_KEYS, &here) {
                return Some(p);
            }
            if let Some(p) = text(step, "now", &here) {
                return Some(p);
            }
            if step.get("duplicate").is_some_and(|d| !d.is_bool()) {
                return Some(format!(
                    "{here}: `duplicate` is `true` (the event must be seen as a retry) or `false`"
                ));
            }
            if step.get("event").is_some_and(|e| !e.is_table()) {
                return Some(format!(
                    "{here}: `event` is a table, such as `event = {{ id = \"e1\", object = \"deal\", record_id = \"D-1\", record = {{ stage = \"Closed Won\" }} }}`"
                ));
            }
            if let Some(a) = step.get("approve") {
                let Some(a) = a.as_table() else {
                    return Some(format!(
                        "{here}: write `approve = {{ workflow = \"…\", record = \"deal/D-1\" }}`"
                    ));
                };
                if let Some(p) = unknown_keys(a, &APPROVE_KEYS, &format!("{here}, `approve`")) {
                    return Some(p);
                }
                for key in APPROVE_KEYS {
                    if !a.get(key).is_some_and(Value::is_str) {
                        return Some(format!("{here}: `approve` needs `{key}` as text: `approve = {{ workflow = \"…\", record = \"deal/D-1\" }}`"));
                    }
                }
            }
            if let Some(e) = step.get("expect") {
                if let Err(p) = list_of_tables(e, "[[test.step.expect]]", &here) {
                    return Some(p);
                }
            }
        }
    }
    None
}

/// A `now` that is not text.
fn text(table: &Table, key: &str, here: &str) -> Option<String> {
    table.get(key).filter(|v| !v.is_str()).map(|_| {
        format!("{here}: `{key}` is a date-time in double quotes, such as `{key} = \"2026-11-20T15:04:05Z\"`")
    })
}

/// A key the table may not have, with the closest one it may.
fn unknown_keys(table: &Table, known: &[&str], here: &str) -> Option<String> {
    let key = table.keys().find(|k| !known.contains(&k.as_str()))?;
    let list = known
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(match crate::check::suggest(key, known.iter().copied()) {
        Some(s) => {
            format!("{here}: unknown key `{key}`: did you mean `{s}`? (the keys here are {list})")
        }
        None => format!("{here}: unknown key `{key}`: the keys here are {list}"),
    })
}

/// A value that must be an array of tables, written `[[header]]`.
fn list_of_tables<'v>(v: &'v Value, header: &str, here: &str) -> Result<Vec<&'v Table>, String> {
    let single = header.trim_start_matches('[').trim_end_matches(']');
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_table().ok_or_else(|| {
                    format!("{here}: each `{single}` is a table: write it as `{header}` followed by its keys")
                })
            })
            .collect(),
        Value::Table(_) => Err(format!(
            "{here}: write `{header}` with two brackets: `[{single}]` is a single table, and there may be several"
        )),
        _ => Err(format!(
            "{here}: `{single}` is written as `{header}` followed by its keys"
        )),
    }
}
