//! The semantic checker, case by case: every folder under
//! `tests/fixtures/check/` is a project (one or more `.handoff` files) with a
//! mistake the checker must catch. Its exact human output and exit code are
//! snapshots, so adding a case is adding a folder and reviewing the new
//! snapshot. Folders named `ok_*` are the opposite: projects that look like a
//! mistake but are not, pinned at "no problems found".

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{handoff, Run};
use handoff::report::JsonDiagnostic;

/// The folder that holds one folder per case.
fn cases_dir() -> PathBuf {
    common::root().join("tests/fixtures/check")
}

/// Runs `handoff check ARGS…` in `dir`, so paths in the output are the
/// relative paths a person would type.
fn check(dir: &Path, args: &[&str]) -> Run {
    Run::of(
        handoff()
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .arg("check")
            .args(args),
    )
}

/// The case's name: its folder name.
fn case_name(path: &Path) -> &str {
    path.file_name()
        .and_then(|n| n.to_str())
        .expect("case folders have UTF-8 names")
}

/// The diagnostics of a case as `--format json` prints them.
fn json(case: &str, extra: &[&str]) -> (i32, Vec<JsonDiagnostic>) {
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(extra);
    args.push(case);
    let run = check(&cases_dir(), &args);
    let items = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{case}: --format json is not JSON ({e}):\n{}", run.stdout));
    (run.code, items)
}

#[test]
fn every_case_prints_what_is_wrong() {
    insta::glob!("fixtures/check/*", |path| {
        let case = case_name(path);
        let run = check(&cases_dir(), &[case]);
        assert!(run.stdout.is_empty(), "{case}: human output goes to stderr");
        insta::assert_snapshot!("human", format!("exit code: {}\n{}", run.code, run.stderr));
    });
}

#[test]
fn every_case_is_a_semantic_mistake_or_clean() {
    insta::glob!("fixtures/check/*", |path| {
        let case = case_name(path);
        let (code, items) = json(case, &[]);
        // Syntax errors stop the semantic checks: a case with one would
        // test the parser, not the checker.
        let syntax: Vec<_> = items.iter().filter(|d| d.code.as_str() < "H100").collect();
        assert!(syntax.is_empty(), "{case}: syntax errors {syntax:?}");
        if case.starts_with("ok_") {
            assert!(
                items.is_empty(),
                "{case}: expected no diagnostics, got {items:?}"
            );
            assert_eq!(code, 0, "{case}");
        } else {
            assert!(!items.is_empty(), "{case}: expected diagnostics, got none");
            let errors = items.iter().any(|d| d.severity == "error");
            assert_eq!(code, i32::from(errors), "{case}: exit code");
        }
    });
}

#[test]
fn the_cases_cover_every_semantic_code() {
    let mut wanted: BTreeSet<String> = (101..=121).map(|n| format!("H{n}")).collect();
    wanted.extend((201..=210).map(|n| format!("H{n}")));
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(cases_dir()).expect("fixtures/check exists") {
        let path = entry.expect("readable").path();
        let (_, items) = json(case_name(&path), &[]);
        seen.extend(items.into_iter().map(|d| d.code));
    }
    let missing: Vec<_> = wanted.difference(&seen).collect();
    assert!(missing.is_empty(), "no fixture produces {missing:?}");
}

#[test]
fn deny_warnings_fails_a_warnings_only_project() {
    let dir = cases_dir();
    let plain = check(&dir, &["unused_declarations"]);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    assert!(plain.stderr.contains("3 warnings"), "{}", plain.stderr);

    let denied = check(&dir, &["--deny", "warnings", "unused_declarations"]);
    assert_eq!(denied.code, 1, "{}", denied.stderr);
    assert!(denied.stderr.contains("3 errors"), "{}", denied.stderr);

    let (code, items) = json("unused_declarations", &["--deny", "warnings"]);
    assert_eq!(code, 1);
    assert!(items.iter().all(|d| d.severity == "error"), "{items:?}");
}

#[test]
fn deny_warnings_keeps_errors_at_exit_1() {
    let run = check(
        &cases_dir(),
        &["--deny", "warnings", "field_of_other_object"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
}

#[test]
fn json_output_of_a_few_cases() {
    for case in [
        "team_misspelled_across_files",
        "cascade_cycle_three_files",
        "role_only_in_then",
        "script_syntax_error",
    ] {
        let (code, items) = json(case, &[]);
        insta::assert_json_snapshot!(format!("json_{case}"), (code, items));
    }
}

/// `--format sarif` for one case, pinned whole (the schema checks are in
/// `tests/cli_sarif.rs`).
#[test]
fn sarif_output_of_one_case() {
    let run = check(
        &cases_dir(),
        &["--format", "sarif", "team_misspelled_across_files"],
    );
    assert_eq!(run.code, 1);
    let mut log: serde_json::Value = serde_json::from_str(&run.stdout).expect("SARIF is JSON");
    // The version changes with every release; the rest must not drift.
    log["runs"][0]["tool"]["driver"]["version"] = "[version]".into();
    insta::assert_json_snapshot!("sarif_team_misspelled_across_files", log);
}

#[test]
fn the_bundled_workflows_are_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for args in [&["workflows/"][..], &["--deny", "warnings", "workflows/"]] {
        let run = check(root, args);
        assert_eq!(run.code, 0, "{args:?}:\n{}", run.stderr);
        assert!(
            run.stderr.contains("no problems found"),
            "{args:?}:\n{}",
            run.stderr
        );
    }
}

/// Pinned: `require deal.name, lead.name` was reported as `name` required
/// twice, on top of the real mistake (a field of another object).
#[test]
fn regression_require_other_object_is_not_a_repeat() {
    let (_, items) = json("field_of_other_object", &[]);
    assert!(items.iter().all(|d| d.code != "H207"), "{items:?}");
}

/// Pinned: spans of conditions ran on to the next statement, so the
/// underline covered `on exception {` too.
#[test]
fn regression_condition_span_stops_at_its_last_token() {
    let (_, items) = json("date_compared_with_number", &[]);
    let d = items.iter().find(|d| d.code == "H107").expect("an H107");
    assert_eq!(
        (d.line, d.column, d.end_line, d.end_column),
        (11, 41, 11, 64)
    );
}
