//! The two files an author writes besides `.handoff`, when they are wrong:
//! every `tests/fixtures/scenario/*.handoff-test` runs through
//! `handoff test`, and every `tests/fixtures/event/*.json` through
//! `handoff run`, against the project's own `workflows/`. The exact output
//! and exit code are snapshots: each message must name the fix in the
//! author's words (not serde's), and a test that checks nothing must fail.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `handoff ARGS…` from the crate root, so paths print as typed.
fn handoff(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .current_dir(root())
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("the binary runs");
    let mut t = format!("exit: {}\n", out.status.code().unwrap_or(-1));
    for (name, bytes) in [("stderr", &out.stderr), ("stdout", &out.stdout)] {
        if !bytes.is_empty() {
            t.push_str(&format!("--- {name}\n{}", String::from_utf8_lossy(bytes)));
        }
    }
    t
}

/// The path from the crate root, with `/` on every platform.
fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

#[test]
fn scenario_mistakes() {
    insta::glob!("fixtures/scenario/*.handoff-test", |path| {
        let file = relative(path);
        let out = handoff(&["test", "--workflows", "workflows", &file]);
        assert!(
            out.starts_with("exit: 1\n") || out.starts_with("exit: 2\n"),
            "{file}: a wrong test file must not pass:\n{out}"
        );
        insta::assert_snapshot!(out);
    });
}

#[test]
fn event_mistakes() {
    insta::glob!("fixtures/event/*.json", |path| {
        let file = relative(path);
        let out = handoff(&["run", "--workflows", "workflows", "--event", &file]);
        assert!(
            !out.starts_with("exit: 0\n"),
            "{file}: a wrong event must not run:\n{out}"
        );
        insta::assert_snapshot!(out);
    });
}

/// `handoff run --explain` in human format shows what the next owner will
/// read in the brief, not only that one is attached.
#[test]
fn explain_shows_the_brief() {
    let out = handoff(&[
        "run",
        "--workflows",
        "workflows",
        "--event",
        "examples/events/closed_won.json",
        "--explain",
    ]);
    assert!(out.contains("    brief:\n      Client: Acme Co\n"), "{out}");
    insta::assert_snapshot!(out);
}
