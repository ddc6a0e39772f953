//! `handoff check --format sarif`: the log validates against the official
//! SARIF 2.1.0 JSON schema and says what the other formats say.
//!
//! The schema, `tests/schemas/sarif-2.1.0.json`, is the OASIS schema
//! (`$id` …/oasis-tcs/sarif-spec/master/Schemata/sarif-schema-2.1.0.json) as
//! shipped in the `serde-sarif` 0.8.0 crate (`src/schema.json`, from which
//! that crate generates its types). It matches, field for field, the
//! 2.1.0-rtm.5 schema bundled in the npm package `@microsoft/jest-sarif`
//! except for its title and one typo fixed in a description.

mod common;

use std::sync::OnceLock;

use common::{handoff, root, Run};
use handoff::report::sarif::Log;
use handoff::report::JsonDiagnostic;
use serde_json::Value;

/// The compiled schema, with `format` keywords (`uri`, `uri-reference`)
/// checked too.
fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let text = std::fs::read_to_string(root().join("tests/schemas/sarif-2.1.0.json"))
            .expect("the vendored schema is there");
        let mut schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
        // The official `language` patterns (on `run` and `toolComponent`)
        // have a stray `]`, which ECMAScript reads as a literal and the
        // crate's meta-schema check rejects as a bad regex. Escaping it keeps
        // the meaning and lets the schema compile; the vendored file stays as
        // published.
        assert_eq!(
            escape_language_patterns(&mut schema),
            2,
            "the vendored schema changed"
        );
        jsonschema::draft7::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("the schema compiles")
    })
}

/// The `language` pattern as published.
const LANGUAGE_PATTERN: &str = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$";

/// Escapes the stray `]` of every `language` pattern; returns how many.
fn escape_language_patterns(v: &mut Value) -> usize {
    match v {
        Value::Object(map) => map
            .iter_mut()
            .map(|(k, v)| {
                if k == "pattern" && v == LANGUAGE_PATTERN {
                    *v = Value::from(LANGUAGE_PATTERN.replace("]?$", "\\]?$"));
                    1
                } else {
                    escape_language_patterns(v)
                }
            })
            .sum(),
        Value::Array(items) => items.iter_mut().map(escape_language_patterns).sum(),
        _ => 0,
    }
}

/// Every schema violation in `log`, one per line.
fn violations(log: &Value) -> Vec<String> {
    validator()
        .iter_errors(log)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Runs `handoff check ARGS…` from the crate root.
fn check(args: &[&str]) -> (i32, String, String) {
    let run = Run::of(
        handoff()
            .current_dir(root())
            .env("NO_COLOR", "1")
            .arg("check")
            .args(args),
    );
    (run.code, run.stdout, run.stderr)
}

/// The SARIF log for `path`, checked against the schema, with its exit code.
fn sarif(path: &str, extra: &[&str]) -> (i32, Log) {
    let mut args = vec!["--format", "sarif"];
    args.extend_from_slice(extra);
    args.push(path);
    let (code, stdout, stderr) = check(&args);
    assert!(stderr.is_empty(), "{path}: stderr: {stderr}");
    let value: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{path}: not JSON ({e}):\n{stdout}"));
    let problems = violations(&value);
    assert!(problems.is_empty(), "{path}: {problems:#?}\n{stdout}");
    let log: Log = serde_json::from_value(value).expect("the log has the expected shape");
    (code, log)
}

/// The same project as `--format json` prints it.
fn json(path: &str) -> (i32, Vec<JsonDiagnostic>) {
    let (code, stdout, _) = check(&["--format", "json", path]);
    (code, serde_json::from_str(&stdout).expect("JSON output"))
}

const CASES: [&str; 6] = [
    "tests/fixtures/check/team_misspelled_across_files",
    "tests/fixtures/check/cascade_cycle_three_files",
    "tests/fixtures/check/duplicate_field_and_value",
    "tests/fixtures/check/unused_declarations",
    "tests/fixtures/check/script_unknown_names",
    "workflows",
];

#[test]
fn logs_validate_and_match_the_json_output() {
    for path in CASES {
        let (code, log) = sarif(path, &[]);
        let (json_code, items) = json(path);
        assert_eq!(code, json_code, "{path}: exit code");

        assert_eq!(log.version, "2.1.0");
        assert_eq!(log.runs.len(), 1);
        let run = &log.runs[0];
        assert_eq!(run.tool.driver.name, "handoff");
        assert_eq!(run.tool.driver.version, env!("CARGO_PKG_VERSION"));

        // One rule per code that occurs, each with a description.
        let mut codes: Vec<&str> = items.iter().map(|d| d.code.as_str()).collect();
        codes.sort();
        codes.dedup();
        let rule_ids: Vec<&str> = run
            .tool
            .driver
            .rules
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(rule_ids, codes, "{path}: rules");
        for rule in &run.tool.driver.rules {
            assert!(!rule.short_description.text.is_empty(), "{}", rule.id);
        }

        // One result per diagnostic, in the same order and place.
        assert_eq!(run.results.len(), items.len(), "{path}: results");
        for (r, d) in run.results.iter().zip(&items) {
            assert_eq!(r.rule_id, d.code);
            assert_eq!(run.tool.driver.rules[r.rule_index].id, r.rule_id);
            assert_eq!(r.level, d.severity);
            assert!(r.message.text.starts_with(&d.message), "{}", r.message.text);
            if let Some(help) = &d.help {
                assert!(r.message.text.ends_with(&format!("help: {help}")));
            }
            let loc = &r.locations[0].physical_location;
            assert_eq!(loc.artifact_location.uri, d.file, "relative path as given");
            let region = loc.region;
            assert_eq!(
                (
                    region.start_line,
                    region.start_column,
                    region.end_line,
                    region.end_column
                ),
                (d.line, d.column, d.end_line, d.end_column),
                "{path}: {}",
                d.message
            );
        }
    }
}

#[test]
fn clean_project_has_no_results() {
    let (code, log) = sarif("workflows", &[]);
    assert_eq!(code, 0);
    assert!(log.runs[0].results.is_empty());
    assert!(log.runs[0].tool.driver.rules.is_empty());
}

#[test]
fn warnings_are_warnings_unless_denied() {
    let path = "tests/fixtures/check/unused_declarations";
    let (code, log) = sarif(path, &[]);
    assert_eq!(code, 0);
    let run = &log.runs[0];
    assert!(run.results.iter().all(|r| r.level == "warning"));
    assert_eq!(
        run.tool.driver.rules[0].default_configuration.level,
        "warning"
    );

    let (code, log) = sarif(path, &["--deny", "warnings"]);
    assert_eq!(code, 1);
    assert!(log.runs[0].results.iter().all(|r| r.level == "error"));
}

#[test]
fn related_labels_become_related_locations() {
    let (_, log) = sarif("tests/fixtures/check/duplicate_field_and_value", &[]);
    let result = &log.runs[0].results[0];
    assert_eq!(result.rule_id, "H101");
    let related = &result.related_locations[0];
    assert_eq!(
        related.message.as_ref().map(|m| m.text.as_str()),
        Some("first listed here")
    );
    assert_eq!(related.physical_location.region.start_line, 3);
    assert_eq!(related.physical_location.region.start_column, 19);
}

/// Syntax errors are reported too, and a path outside the working
/// directory (here absolute, with a space) becomes a `file:` URI.
#[test]
fn syntax_errors_in_an_absolute_path() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("new rules.handoff");
    std::fs::write(
        &file,
        "handoff \"x\" {\n  when deal.stage becoms \"Won\"\n}\n",
    )
    .expect("writes");
    let path = file.to_str().expect("a UTF-8 temp path");
    let (code, log) = sarif(path, &[]);
    assert_eq!(code, 1);
    let result = &log.runs[0].results[0];
    assert!(result.rule_id.starts_with("H0"), "{}", result.rule_id);
    let uri = &result.locations[0].physical_location.artifact_location.uri;
    assert!(uri.starts_with("file:///"), "{uri}");
    assert!(uri.ends_with("/new%20rules.handoff"), "{uri}");
}

/// The validation can fail: a log with the wrong version, a result without
/// a message, a region starting at column 0 or a malformed URI is rejected.
#[test]
fn the_schema_rejects_a_broken_log() {
    let (_, log) = sarif("tests/fixtures/check/team_misspelled_across_files", &[]);
    let good = serde_json::to_value(&log).expect("serializes");
    assert!(violations(&good).is_empty());

    let mut wrong_version = good.clone();
    wrong_version["version"] = Value::from("2.0.0");
    assert!(!violations(&wrong_version).is_empty());

    let mut no_message = good.clone();
    no_message["runs"][0]["results"][0]
        .as_object_mut()
        .expect("a result object")
        .remove("message");
    assert!(!violations(&no_message).is_empty());

    let mut column_zero = good.clone();
    column_zero["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]
        ["startColumn"] = Value::from(0);
    assert!(!violations(&column_zero).is_empty());

    // `format` is checked too: a raw space is not allowed in a URI.
    let mut bad_uri = good;
    bad_uri["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
        ["uri"] = Value::from("my flows/won.handoff");
    assert!(!violations(&bad_uri).is_empty());
}
