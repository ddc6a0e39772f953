//! Keeps the two formats `grammar/README.md` documents besides `.handoff`
//! true: every example runs through the real binary against the project's
//! own `workflows/`.
//!
//! - ```` ```json event ````: `handoff run --event` accepts it (exit 0) and
//!   prints an outcome for every event in it;
//! - ```` ```toml handoff-test ````: `handoff test` passes it, with at least
//!   one test;
//! - ```` ```toml handoff-test fails ````: `handoff test` fails it (exit 1),
//!   as the reference says it must.

use std::path::PathBuf;

const README: &str = include_str!("../grammar/README.md");

#[derive(Debug, PartialEq)]
enum Kind {
    Event,
    Test,
    FailingTest,
}

#[derive(Debug)]
struct Example {
    /// 1-based line of the opening fence.
    line: usize,
    kind: Kind,
    text: String,
}

/// The `json event` and `toml handoff-test` blocks of the README.
fn examples() -> Vec<Example> {
    let mut out = Vec::new();
    let mut lines = README.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let trimmed = line.trim_start();
        let fence = trimmed.len() - trimmed.trim_start_matches('`').len();
        if fence < 3 {
            continue;
        }
        let info: Vec<&str> = trimmed[fence..].split_whitespace().collect();
        let mut text = String::new();
        for (_, l) in lines.by_ref() {
            let t = l.trim();
            if t.len() >= fence && t.bytes().all(|b| b == b'`') {
                break;
            }
            text.push_str(l);
            text.push('\n');
        }
        let kind = match info.as_slice() {
            ["json", "event"] => Kind::Event,
            ["toml", "handoff-test"] => Kind::Test,
            ["toml", "handoff-test", "fails"] => Kind::FailingTest,
            ["json" | "toml", ..] => panic!(
                "README.md:{}: a json or toml block must be tagged `json event`, `toml handoff-test` or `toml handoff-test fails`",
                i + 1
            ),
            _ => continue,
        };
        out.push(Example {
            line: i + 1,
            kind,
            text,
        });
    }
    out
}

fn workflows() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows")
}

/// Runs `handoff ARGS…`; the exit code and both streams.
fn handoff(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = assert_cmd::Command::new(env!("CARGO_BIN_EXE_handoff"))
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What is wrong with running one example, if anything.
fn judge(example: &Example) -> Option<String> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let wf = workflows();
    match example.kind {
        Kind::Event => {
            let file = dir.path().join("event.json");
            std::fs::write(&file, &example.text).expect("write the event");
            let (code, stdout, stderr) = handoff(&[
                "run".as_ref(),
                "--workflows".as_ref(),
                wf.as_os_str(),
                "--event".as_ref(),
                file.as_os_str(),
                "--format".as_ref(),
                "json".as_ref(),
            ]);
            if code != 0 {
                return Some(format!("`handoff run` exited {code}: {stderr}"));
            }
            let json: serde_json::Value = match serde_json::from_str(&stdout) {
                Ok(j) => j,
                Err(e) => return Some(format!("`handoff run` printed no JSON ({e}): {stdout}")),
            };
            let events = serde_json::from_str::<serde_json::Value>(&example.text)
                .map(|v| v.as_array().map_or(1, Vec::len))
                .unwrap_or(0);
            let outcomes = json.as_array().map_or(1, Vec::len);
            (events != outcomes).then(|| format!("{events} event(s) but {outcomes} outcome(s)"))
        }
        Kind::Test | Kind::FailingTest => {
            let file = dir.path().join("example.handoff-test");
            std::fs::write(&file, &example.text).expect("write the test");
            let (code, stdout, stderr) = handoff(&[
                "test".as_ref(),
                "--workflows".as_ref(),
                wf.as_os_str(),
                file.as_os_str(),
            ]);
            let last = stdout.lines().last().unwrap_or_default().to_string();
            if example.kind == Kind::FailingTest {
                return (code != 1 || !last.ends_with(" failed") || last.ends_with(" 0 failed"))
                    .then(|| {
                        format!("expected it to fail (exit 1), got exit {code}:\n{stdout}{stderr}")
                    });
            }
            let passed = code == 0 && last.ends_with(", 0 failed") && !last.starts_with("0 passed");
            (!passed).then(|| format!("`handoff test` exited {code}:\n{stdout}{stderr}"))
        }
    }
}

#[test]
fn every_event_and_test_example_runs_as_documented() {
    let examples = examples();
    for kind in [Kind::Event, Kind::Test, Kind::FailingTest] {
        assert!(
            examples.iter().any(|e| e.kind == kind),
            "grammar/README.md has no {kind:?} example"
        );
    }
    let failures: Vec<String> = examples
        .iter()
        .filter_map(|e| judge(e).map(|why| format!("README.md:{}: {why}", e.line)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} example(s) in grammar/README.md do not run as documented:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
