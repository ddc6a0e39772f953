//! `handoff fmt` end to end, through the real binary: golden files, `--check`,
//! rewriting in place, files with syntax errors, and the shipped workflows.
//!
//! Golden files: every `tests/fixtures/fmt/NAME.in.handoff` must format to
//! `NAME.out.handoff`. After an intended layout change, regenerate the
//! expected files with `HANDOFF_BLESS=1 cargo test --test fmt` and review the
//! diff.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;

fn handoff() -> Command {
    Command::new(env!("CARGO_BIN_EXE_handoff"))
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fmt")
}

/// The `(input, expected output)` pairs, sorted by name.
fn golden_pairs() -> Vec<(PathBuf, PathBuf)> {
    let mut pairs: Vec<(PathBuf, PathBuf)> = fs::read_dir(fixtures())
        .expect("tests/fixtures/fmt exists")
        .map(|e| e.expect("readable fixture dir").path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.strip_suffix(".in.handoff")?;
            let out = p.with_file_name(format!("{name}.out.handoff"));
            Some((p, out))
        })
        .collect();
    pairs.sort();
    pairs
}

/// A temporary directory holding `files` (name, text).
fn temp_dir(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        fs::write(dir.path().join(name), text).expect("write temp file");
    }
    dir
}

const FORMATTED: &str = "user founder = \"maya@example.com\"\n\nchannel feed = \"#delivery\"\n";
const UNFORMATTED: &str = "user   founder=\"maya@example.com\"\nchannel feed = \"#delivery\"";

#[test]
fn golden_files() {
    let pairs = golden_pairs();
    assert!(
        pairs.len() >= 8,
        "expected the golden fixtures, found {pairs:?}"
    );
    let bless = std::env::var_os("HANDOFF_BLESS").is_some();
    let mut failures = Vec::new();
    for (input, expected) in &pairs {
        // Format a copy in place with the real binary.
        let dir = tempfile::tempdir().expect("temp dir");
        let copy = dir.path().join("input.handoff");
        fs::copy(input, &copy).expect("copy fixture");
        handoff().arg("fmt").arg(&copy).assert().success();
        let actual = fs::read_to_string(&copy).expect("read formatted copy");
        if bless {
            fs::write(expected, &actual).expect("write expected output");
            continue;
        }
        let want = fs::read_to_string(expected)
            .unwrap_or_else(|_| panic!("missing {}; run with HANDOFF_BLESS=1", expected.display()));
        if actual != want {
            failures.push(format!(
                "{}:\n--- expected\n{want}\n--- actual\n{actual}",
                input.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn golden_outputs_are_already_formatted() {
    for (_, expected) in golden_pairs() {
        handoff()
            .args(["fmt", "--check"])
            .arg(&expected)
            .assert()
            .code(0)
            .stdout("");
    }
}

#[test]
fn golden_outputs_are_canonical_text() {
    for (_, expected) in golden_pairs() {
        let text = fs::read_to_string(&expected).expect("read expected output");
        let name = expected.display();
        assert!(
            text.ends_with('\n') && !text.ends_with("\n\n"),
            "{name}: one final newline"
        );
        assert!(
            !text.contains("\n\n\n"),
            "{name}: at most one blank line in a row"
        );
        // Script bodies (between ``` fences) are rhai, kept verbatim.
        let code = text
            .split("```")
            .step_by(2)
            .collect::<Vec<_>>()
            .join("<script>");
        assert!(!code.contains('\r'), "{name}: no carriage returns");
        for line in code.lines() {
            assert_eq!(line, line.trim_end(), "{name}: trailing whitespace");
            assert!(
                !line.trim_start_matches(' ').starts_with('\t'),
                "{name}: tab indentation"
            );
        }
    }
}

#[test]
fn crlf_fixture_really_has_crlf_and_tabs() {
    // Guards the CRLF golden test against an editor normalizing the input.
    let input = fs::read_to_string(fixtures().join("crlf.in.handoff")).expect("read fixture");
    assert!(input.contains("\r\n") && input.contains('\t'));
}

#[test]
fn check_passes_on_formatted_files() {
    let dir = temp_dir(&[("a.handoff", FORMATTED), ("b.handoff", FORMATTED)]);
    handoff()
        .args(["fmt", "--check"])
        .arg(dir.path())
        .assert()
        .code(0)
        .stdout("")
        .stderr("2 files already formatted\n");
}

#[test]
fn check_lists_unformatted_files_and_writes_nothing() {
    let dir = temp_dir(&[("good.handoff", FORMATTED), ("messy.handoff", UNFORMATTED)]);
    let messy = dir.path().join("messy.handoff");
    handoff()
        .args(["fmt", "--check"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stdout(format!("{}\n", messy.display()))
        .stderr(
            predicate::str::contains("-user   founder=\"maya@example.com\"")
                .and(predicate::str::contains(
                    "+user founder = \"maya@example.com\"",
                ))
                .and(predicate::str::contains("1 file would be reformatted")),
        );
    assert_eq!(fs::read_to_string(&messy).expect("read"), UNFORMATTED);
}

#[test]
fn fmt_rewrites_only_files_that_change() {
    let dir = temp_dir(&[("good.handoff", FORMATTED), ("messy.handoff", UNFORMATTED)]);
    let good = dir.path().join("good.handoff");
    let before = fs::metadata(&good)
        .and_then(|m| m.modified())
        .expect("mtime");
    handoff()
        .arg("fmt")
        .arg(dir.path())
        .assert()
        .code(0)
        .stdout("")
        .stderr("formatted 1 file\n");
    let messy = fs::read_to_string(dir.path().join("messy.handoff")).expect("read");
    assert_eq!(messy, FORMATTED);
    let after = fs::metadata(&good)
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(before, after, "an already formatted file is not rewritten");
    // No temporary files are left behind.
    let names: Vec<_> = fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    // The second run finds nothing to do.
    handoff()
        .arg("fmt")
        .arg(dir.path())
        .assert()
        .code(0)
        .stderr("2 files already formatted\n");
}

#[test]
fn fmt_leaves_a_file_with_syntax_errors_untouched() {
    let broken =
        "user founder = \"maya@example.com\"\nhandoff \"H\" {\n  when deal.stage becomes\n}\n";
    let dir = temp_dir(&[("broken.handoff", broken), ("messy.handoff", UNFORMATTED)]);
    for check in [true, false] {
        let mut cmd = handoff();
        cmd.arg("fmt");
        if check {
            cmd.arg("--check");
        }
        cmd.arg(dir.path().join("broken.handoff"))
            .assert()
            .code(1)
            .stdout("")
            .stderr(
                predicate::str::contains("H001").and(predicate::str::contains(
                    "left 1 file with syntax errors unchanged",
                )),
            );
        assert_eq!(
            fs::read_to_string(dir.path().join("broken.handoff")).expect("read"),
            broken
        );
    }
    // Other files in the same run are still formatted.
    handoff().arg("fmt").arg(dir.path()).assert().code(1);
    assert_eq!(
        fs::read_to_string(dir.path().join("broken.handoff")).expect("read"),
        broken
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("messy.handoff")).expect("read"),
        FORMATTED
    );
}

#[test]
fn fmt_fails_on_a_missing_path_without_writing() {
    let dir = temp_dir(&[("messy.handoff", UNFORMATTED)]);
    handoff()
        .arg("fmt")
        .arg(dir.path())
        .arg(dir.path().join("nope.handoff"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not exist"));
    assert_eq!(
        fs::read_to_string(dir.path().join("messy.handoff")).expect("read"),
        UNFORMATTED
    );
}

#[test]
fn workflows_are_formatted() {
    handoff()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["fmt", "--check", "workflows"])
        .assert()
        .code(0)
        .stdout("");
}

#[test]
fn default_path_is_workflows() {
    let dir = temp_dir(&[]);
    let workflows = dir.path().join("workflows");
    fs::create_dir(&workflows).expect("mkdir");
    fs::write(workflows.join("a.handoff"), UNFORMATTED).expect("write");
    handoff()
        .current_dir(dir.path())
        .args(["fmt", "--check"])
        .assert()
        .code(1)
        .stdout(format!(
            "{}\n",
            Path::new("workflows").join("a.handoff").display()
        ));
}

/// A CRLF file with a script comes out with LF endings only: the script's
/// body (kept verbatim) kept its CRs, leaving the file with both endings.
#[test]
fn a_crlf_file_with_a_script_comes_out_with_lf_only() {
    let lf = "object deal {\n  name: text\n}\nhandoff \"Risky\" {\n  when deal is created\n  exception \"Long name\" when script ```\n    let n = deal.name ?? \"\";\n    n.len() > 40\n  ```\n}\n";
    let crlf = lf.replace('\n', "\r\n");
    let dir = temp_dir(&[("risky.handoff", &crlf)]);
    let path = dir.path().join("risky.handoff");
    handoff().arg("fmt").arg(&path).assert().code(0);
    let out = fs::read_to_string(&path).expect("read");
    assert!(!out.contains('\r'), "{out:?}");
    assert!(
        out.contains("    let n = deal.name ?? \"\";\n    n.len() > 40\n"),
        "{out}"
    );
    handoff()
        .args(["fmt", "--check"])
        .arg(&path)
        .assert()
        .code(0);
}
