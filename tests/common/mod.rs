//! Helpers the integration tests share: running the real binary and reading
//! what it printed, and loading a workflow set from a fixture folder or from
//! text.
//!
//! Each test file is its own crate and uses only some of these, so the rest
//! would warn as dead code there.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use handoff::compile::WorkflowSet;
use handoff::diagnostic::SourceFile;
use handoff::report::JsonDiagnostic;

/// The project's root folder.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `handoff` binary, ready for arguments.
pub fn handoff() -> Command {
    Command::cargo_bin("handoff").expect("the handoff binary is built")
}

/// What one run of the binary printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Runs `cmd` to the end and keeps its exit code and output.
    pub fn of(cmd: &mut Command) -> Run {
        let out = cmd.output().expect("the binary runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The run as a snapshot reads it: exit code, then each stream that
    /// printed anything.
    pub fn transcript(&self) -> String {
        let mut t = format!("exit: {}\n", self.code);
        if !self.stderr.is_empty() {
            t.push_str("--- stderr\n");
            t.push_str(&self.stderr);
        }
        if !self.stdout.is_empty() {
            t.push_str("--- stdout\n");
            t.push_str(&self.stdout);
        }
        t
    }

    /// Stderr with miette's line wrapping undone, for `contains` checks on
    /// long messages and helps.
    pub fn text(&self) -> String {
        self.stderr
            .replace("\n  │ ", " ")
            .replace("\n        ", " ")
    }

    /// Stdout as the diagnostics `--format json` prints.
    pub fn json(&self) -> Vec<JsonDiagnostic> {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not a JSON diagnostic array ({e}):\n{}",
                self.stdout
            )
        })
    }
}

/// The folder of the eval fixture project `name` (`tests/fixtures/eval/NAME`).
pub fn eval_fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/eval").join(name)
}

/// The eval fixture project `name`, loaded.
pub fn fixture_set(name: &str) -> WorkflowSet {
    handoff::compile::load(&[eval_fixture(name)])
        .expect("the fixture project loads")
        .0
}

/// A workflow set from the text of one `.handoff` file; panics with the
/// text and the problems when it does not load.
pub fn set_from_text(src: &str) -> WorkflowSet {
    match handoff::compile::load_sources(&[SourceFile::new("p.handoff", src)]) {
        Ok((set, _)) => set,
        Err(e) => panic!("the workflows should load:\n{src}\n{e:?}"),
    }
}

/// A time, as RFC 3339 text.
pub fn ts(s: &str) -> jiff::Timestamp {
    s.parse().expect("an RFC 3339 time")
}
