//! `handoff run`, `handoff test` and `handoff approve` through the real
//! binary: human output (insta snapshots), the JSON Outcome contract
//! (deserialized into typed structs), state files across runs, `--now`,
//! exit codes and error messages. Workflows: the lifecycle fixture project;
//! events: `tests/fixtures/eval/cli/*.json`.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde::Deserialize;
use tempfile::TempDir;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn workflows() -> PathBuf {
    root().join("tests/fixtures/eval/lifecycle")
}

fn event(name: &str) -> PathBuf {
    root().join("tests/fixtures/eval/cli").join(name)
}

fn handoff() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_handoff"));
    cmd.env("NO_COLOR", "1");
    cmd
}

/// `handoff run --workflows <lifecycle> --event <file> ARGS…`.
fn run(event_file: &str, args: &[&str]) -> Command {
    run_in(&workflows(), &event(event_file), args)
}

/// `handoff run --workflows <project> --event <path> ARGS…`.
fn run_in(project: &Path, event_path: &Path, args: &[&str]) -> Command {
    let mut cmd = handoff();
    cmd.arg("run")
        .arg("--workflows")
        .arg(project)
        .arg("--event")
        .arg(event_path)
        .args(args);
    cmd
}

fn stdout(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).expect("UTF-8 output")
}

// ---------------------------------------------------------------- the Outcome contract, typed

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Outcome {
    event: String,
    /// The workflow version's content id: 64 hex digits.
    version: String,
    #[serde(default)]
    duplicate: bool,
    handoffs: Vec<HandoffOutcome>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HandoffOutcome {
    workflow: String,
    record_id: String,
    /// The instance id, when a handoff fired or is in flight.
    #[serde(default)]
    instance: Option<String>,
    status: Status,
    #[serde(default)]
    #[allow(dead_code)]
    migrated_from: Option<String>,
    missing: Vec<String>,
    exceptions: Vec<String>,
    #[serde(default)]
    exception_errors: Vec<ExceptionError>,
    actions: Vec<Action>,
    brief: Option<Brief>,
    answers: Option<Answers>,
    trace: Vec<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Status {
    Proceeded,
    Paused,
    Review,
    Resumed,
    Done,
    Withdrawn,
    Orphaned,
    NotTriggered,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExceptionError {
    #[allow(dead_code)]
    name: String,
    #[allow(dead_code)]
    error: String,
}

impl HandoffOutcome {
    /// What the actions do; every action carries a stable id.
    fn kinds(&self) -> Vec<&ActionKind> {
        for a in &self.actions {
            assert!(
                a.id.starts_with("a-") && a.id.len() == 34,
                "an action id is `a-` and 32 hex digits: {}",
                a.id
            );
        }
        self.actions.iter().map(|a| &a.kind).collect()
    }
}

/// An action: its stable id and what it does.
#[derive(Debug, Deserialize, PartialEq)]
struct Action {
    id: String,
    #[serde(flatten)]
    kind: ActionKind,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ActionKind {
    Assign {
        role: String,
        person: Option<String>,
        team: Option<String>,
        strategy: Option<String>,
    },
    Task {
        title: String,
        assignee: Option<String>,
        due: Option<String>,
        #[serde(default)]
        checklist: Vec<String>,
        brief: Option<Brief>,
    },
    Notify {
        channel: Option<String>,
        to: Option<String>,
        message: String,
    },
    EmailDraft {
        to: Option<String>,
        subject: String,
        body: String,
        status: String,
    },
    Set {
        field: String,
        value: serde_json::Value,
    },
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Brief {
    fields: Vec<BriefLine>,
    questions: Vec<String>,
    markdown: String,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct BriefLine {
    label: String,
    value: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answers {
    next_owner: Option<String>,
    #[allow(dead_code)]
    promised: Vec<String>,
    #[allow(dead_code)]
    client_expects: Option<String>,
    first_task: Option<String>,
}

fn outcome(json: &str) -> Outcome {
    let o: Outcome = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("not the Outcome contract: {e}\n{json}"));
    assert!(
        o.version.len() == 64 && o.version.bytes().all(|b| b.is_ascii_hexdigit()),
        "the version is a SHA-256 in hex: {}",
        o.version
    );
    for h in &o.handoffs {
        // A handoff that fired names its instance.
        if h.status != Status::NotTriggered {
            assert!(
                h.instance.as_deref().is_some_and(|i| i.starts_with("h-")),
                "{h:?}"
            );
        }
    }
    o
}

// ---------------------------------------------------------------- handoff run

#[test]
fn run_explain_prints_what_happens_and_why() {
    let out = stdout(&mut run("won_missing_scope.json", &["--explain"]));
    insta::assert_snapshot!("run_explain_paused", out);
}

#[test]
fn run_without_explain_shows_only_what_fired() {
    let out = stdout(&mut run("won_missing_scope.json", &[]));
    insta::assert_snapshot!("run_paused", out);
}

#[test]
fn run_says_when_nothing_fired() {
    let out = stdout(&mut run("fill_scope.json", &[]));
    assert_eq!(
        out,
        "event evt-1002\n  no handoff fired (use --explain to see why)\n"
    );
}

#[test]
fn run_format_json_is_the_outcome_contract() {
    let json = stdout(&mut run("won_custom.json", &["--format", "json"]));
    let o = outcome(&json);
    assert_eq!(o.event, "evt-2001");
    assert!(!o.duplicate);
    let names: Vec<&str> = o.handoffs.iter().map(|h| h.workflow.as_str()).collect();
    assert_eq!(names, ["Onboarding", "Lost after proposal", "Region move"]);
    let h = &o.handoffs[0];
    assert_eq!(h.record_id, "D-43");
    assert_eq!(h.status, Status::Review);
    assert!(h.missing.is_empty());
    assert_eq!(h.exceptions, ["Custom Scope"]);
    assert!(h.exception_errors.is_empty());
    assert_eq!(
        h.kinds(),
        [&ActionKind::Task {
            title: "Review Custom Scope for Gamma Inc".into(),
            assignee: Some("maya@example.com".into()),
            due: Some("2026-11-20T17:00:00-05:00".into()),
            checklist: vec![],
            brief: None,
        }]
    );
    assert!(h.brief.is_none(), "no brief until the normal path");
    assert_eq!(
        h.answers.as_ref().unwrap().next_owner.as_deref(),
        Some("maya@example.com")
    );
    assert!(h
        .trace
        .iter()
        .any(|l| l == "exception \"Custom Scope\": deal.custom is yes (deal.custom = yes) → true"));
    assert_eq!(o.handoffs[1].status, Status::NotTriggered);
}

#[test]
fn run_format_json_of_the_normal_path_has_typed_actions_and_the_brief() {
    let dir = TempDir::new().unwrap();
    let state = dir.path().join("state.json");
    let state = state.to_str().unwrap();
    run("won_missing_scope.json", &["--state", state])
        .assert()
        .success();
    let json = stdout(&mut run(
        "fill_scope.json",
        &["--state", state, "--format", "json"],
    ));
    let o = outcome(&json);
    let h = &o.handoffs[0];
    assert_eq!(h.status, Status::Resumed);
    let ActionKind::Task {
        brief: Some(task_brief),
        ..
    } = h.kinds()[1]
    else {
        panic!("expected the kickoff task with its brief: {:?}", h.actions);
    };
    assert_eq!(
        *h.kinds()[0],
        ActionKind::Assign {
            role: "delivery_owner".into(),
            person: Some("ana@example.com".into()),
            team: Some("delivery".into()),
            strategy: Some("round robin".into()),
        }
    );
    let brief = h.brief.as_ref().unwrap();
    assert_eq!(task_brief, brief);
    assert_eq!(
        brief.fields[1],
        BriefLine {
            label: "Scope".into(),
            value: "https://docs.example/acme-sow".into()
        }
    );
    assert_eq!(brief.questions, ["What was promised verbally?"]);
    assert!(brief.markdown.starts_with("## Handoff brief\n"));
    assert_eq!(
        h.answers.as_ref().unwrap().first_task.as_deref(),
        Some("Kickoff: Acme Co (for ana@example.com, due 2026-11-24T17:00:00-05:00)")
    );
}

#[test]
fn run_a_batch_prints_an_array_of_outcomes() {
    let json = stdout(&mut run("batch.json", &["--format", "json"]));
    let outcomes: Vec<Outcome> = serde_json::from_str(&json).expect("an array of outcomes");
    let events: Vec<&str> = outcomes.iter().map(|o| o.event.as_str()).collect();
    assert_eq!(events, ["b1", "b2"]);
    assert_eq!(outcomes[0].handoffs[0].workflow, "New ticket");
    assert_eq!(outcomes[0].handoffs[0].status, Status::Proceeded);
}

#[test]
fn a_batch_of_one_prints_an_array_and_a_byte_order_mark_is_read() {
    let dir = TempDir::new().unwrap();
    let batch = std::fs::read_to_string(event("batch.json")).unwrap();
    let all: Vec<serde_json::Value> = serde_json::from_str(&batch).unwrap();
    let one = dir.path().join("one.json");
    // As a Windows editor saves it: a byte-order mark first.
    let text = format!("\u{feff}{}", serde_json::to_string(&all[..1]).unwrap());
    std::fs::write(&one, text).unwrap();
    let json = stdout(&mut run_in(&workflows(), &one, &["--format", "json"]));
    let outcomes: Vec<Outcome> = serde_json::from_str(&json).expect("an array, as the input was");
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].event, "b1");
}

#[test]
fn run_state_file_carries_the_handoff_across_runs() {
    let dir = TempDir::new().unwrap();
    let state = dir.path().join("state.json");
    let s = state.to_str().unwrap();

    let first = stdout(&mut run("won_missing_scope.json", &["--state", s]));
    assert!(first.contains("Onboarding [D-42]: paused"), "{first}");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state).expect("state written")).unwrap();
    assert_eq!(
        saved["records"]["deal/D-42"]["handoffs"]["Onboarding"]["status"],
        "paused"
    );
    assert_eq!(saved["seen"], serde_json::json!(["evt-1001"]));

    // The second run reads it back: the paused handoff resumes.
    let second = stdout(&mut run("fill_scope.json", &["--state", s]));
    assert!(second.contains("Onboarding [D-42]: resumed"), "{second}");
    assert!(
        second.contains("task \"Kickoff: Acme Co\" for ana@example.com"),
        "{second}"
    );

    // A retry of an event already in the state changes nothing.
    let retry = stdout(&mut run("fill_scope.json", &["--state", s]));
    assert!(
        retry.starts_with("event evt-1002 (already processed: nothing new)"),
        "{retry}"
    );

    // Without --state nothing is remembered: the same event fires afresh.
    let fresh = stdout(&mut run("fill_scope.json", &[]));
    assert!(fresh.contains("no handoff fired"), "{fresh}");
}

#[test]
fn run_now_overrides_the_event_time_for_due_dates() {
    // The event happened Thursday; --now says Friday 10:00 New York.
    let json = stdout(&mut run(
        "won_custom.json",
        &["--now", "2026-11-20T15:00:00Z", "--format", "json"],
    ));
    let o = outcome(&json);
    let ActionKind::Task { due, .. } = o.handoffs[0].kinds()[0] else {
        panic!("expected the review task");
    };
    assert_eq!(due.as_deref(), Some("2026-11-23T17:00:00-05:00"));
}

#[test]
fn run_errors_exit_2_with_a_clear_message() {
    let cases: [(&str, &[&str], &str); 6] = [
        ("nope.json", &[], "error: cannot read `"),
        ("not_json.json", &[], "the event is not valid: EOF while parsing"),
        ("no_object.json", &[], "the event has no `object`: add"),
        (
            "bad_fields.json",
            &[],
            "2 field value(s) do not fit the schema: `record.start_date` is \"12/01/2026\", expected a date such as 2026-12-01; `record.amount` is \"lots\", expected an amount such as 1000.50",
        ),
        (
            "won_custom.json",
            &["--now", "tomorrow"],
            "error: `--now tomorrow` is not a date-time such as 2026-11-20T15:04:05Z",
        ),
        ("won_custom.json", &["--format", "yaml"], "invalid value 'yaml'"),
    ];
    for (file, args, message) in cases {
        run(file, args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(message));
    }
}

#[test]
fn run_refuses_a_broken_state_file() {
    let dir = TempDir::new().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(&state, "{ not json").unwrap();
    run("won_custom.json", &["--state", state.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a handoff state file"));
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        "{ not json",
        "left alone"
    );
}

#[test]
fn run_never_writes_its_state_over_a_file_that_is_not_one() {
    let dir = TempDir::new().unwrap();
    // The event file itself, by another path.
    let events = dir.path().join("events.json");
    let text = std::fs::read_to_string(event("won_custom.json")).unwrap();
    std::fs::write(&events, &text).unwrap();
    let other_path = dir.path().join(".").join("events.json");
    run_in(
        &workflows(),
        &events,
        &["--state", other_path.to_str().unwrap()],
    )
    .assert()
    .code(2)
    .stderr(predicate::str::contains("is the event file"));
    assert_eq!(
        std::fs::read_to_string(&events).unwrap(),
        text,
        "left alone"
    );
    // Any other JSON object that is not a state file.
    let config = dir.path().join("settings.json");
    std::fs::write(&config, r#"{"x": 1, "y": [2]}"#).unwrap();
    run("won_custom.json", &["--state", config.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "is not a handoff state file (it has x, y",
        ));
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        r#"{"x": 1, "y": [2]}"#
    );
    // One state key beside its own data is not a state file either.
    std::fs::write(&config, r#"{"seen": [], "name": "my notes"}"#).unwrap();
    run("won_custom.json", &["--state", config.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("it has name;"));
    assert!(std::fs::read_to_string(&config)
        .unwrap()
        .contains("my notes"));
    // An empty object is an empty state (a file someone made to start from).
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, "{}").unwrap();
    run("won_custom.json", &["--state", empty.to_str().unwrap()])
        .assert()
        .success();
    assert!(std::fs::read_to_string(&empty)
        .unwrap()
        .contains("\"records\""));
}

#[test]
fn run_on_workflows_with_errors_exits_1() {
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("broken.handoff"),
        "handoff \"Broken\" {\n  when deal.stage becomes \"Won\"\n}\n",
    )
    .unwrap();
    run_in(dir.path(), &event("won_custom.json"), &[])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("H102"));
}

// ---------------------------------------------------------------- handoff approve

#[test]
fn approve_moves_a_review_on_and_updates_the_state_file() {
    let dir = TempDir::new().unwrap();
    let state = dir.path().join("state.json");
    let s = state.to_str().unwrap();
    let first = stdout(&mut run("won_custom.json", &["--state", s]));
    assert!(first.contains("Onboarding [D-43]: review"), "{first}");

    let approve = |extra: &[&str]| {
        let mut cmd = handoff();
        cmd.arg("approve")
            .arg("--workflows")
            .arg(workflows())
            .args([
                "--state",
                s,
                "--workflow",
                "Onboarding",
                "--record",
                "deal/D-43",
            ])
            .args(["--now", "2026-11-19T20:00:00Z"])
            .args(extra);
        cmd
    };
    let out = stdout(&mut approve(&[]));
    insta::assert_snapshot!("approve_resumed", out);

    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(
        saved["records"]["deal/D-43"]["handoffs"]["Onboarding"]["status"],
        "proceeded"
    );

    // Approving again is refused: it is no longer in review.
    approve(&[])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "\"Onboarding\" is not in review for record D-43",
        ));
}

#[test]
fn approve_prints_the_outcome_as_json() {
    let dir = TempDir::new().unwrap();
    let state = dir.path().join("state.json");
    let s = state.to_str().unwrap();
    run("won_custom.json", &["--state", s]).assert().success();
    let json = stdout(
        handoff()
            .arg("approve")
            .arg("--workflows")
            .arg(workflows())
            .args([
                "--state",
                s,
                "--workflow",
                "Onboarding",
                "--record",
                "deal/D-43",
            ])
            .args(["--now", "2026-11-19T20:00:00Z", "--format", "json"]),
    );
    let h: HandoffOutcome = serde_json::from_str(&json).expect("one handoff outcome");
    assert_eq!(h.status, Status::Resumed);
    assert_eq!(h.record_id, "D-43");
    assert!(
        matches!(h.kinds()[1], ActionKind::Task { title, .. } if title == "Kickoff: Gamma Inc")
    );
}

#[test]
fn approve_errors_exit_2() {
    let dir = TempDir::new().unwrap();
    let state = dir.path().join("state.json");
    let s = state.to_str().unwrap();
    let approve = |workflow: &str, record: &str| {
        let mut cmd = handoff();
        cmd.arg("approve")
            .arg("--workflows")
            .arg(workflows())
            .args(["--state", s, "--workflow", workflow, "--record", record]);
        cmd
    };
    approve("Onboarding", "D-43")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "must read OBJECT/ID, e.g. deal/D-42",
        ));
    approve("Onbording", "deal/D-43")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no handoff called \"Onbording\""));
    approve("Onboarding", "deal/D-43")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not in review for record D-43"));
}

// ---------------------------------------------------------------- handoff test

#[test]
fn test_runs_the_shipped_scenarios() {
    let out = stdout(handoff().current_dir(root()).args(["test", "workflows/"]));
    let summary = out.lines().last().unwrap();
    let (passed, failed) = summary
        .strip_suffix(" failed")
        .and_then(|s| s.split_once(" passed, "))
        .unwrap_or_else(|| panic!("no summary line: {out}"));
    assert!(passed.parse::<u32>().unwrap() > 0, "{out}");
    assert_eq!(failed, "0", "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}

/// A temp project: the lifecycle workflows and one scenario file.
fn scenario_project(scenario: &str) -> TempDir {
    let dir = TempDir::new().unwrap();
    for f in std::fs::read_dir(workflows()).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.path().join("onboarding.handoff-test"), scenario).unwrap();
    dir
}

const SCENARIO: &str = r#"
[[test]]
name = "A complete deal proceeds"

[[test.step]]
event = { id = "e1", object = "deal", record_id = "D-1", occurred_at = "2026-11-20T15:00:00Z", record = { name = "Acme", stage = "Won", owner = "sam@example.com", amount = 100, contact = "jo@acme.example", scope = "Setup", start_date = "2026-12-07", deliverables = ["Playbook"] }, previous = { stage = "Proposal" } }
[[test.step.expect]]
workflow = "Onboarding"
status = "STATUS"
actions = [{ type = "assign", person = "ana@example.com" }, { type = "task", title = "Kickoff: Acme", due = "2026-11-24T17:00:00-05:00" }]
"#;

/// `handoff test` over a project holding `scenario`, which must fail
/// (exit 1): its stdout.
fn failing_test_output(scenario: &str) -> String {
    let dir = scenario_project(scenario);
    let assert = handoff().arg("test").arg(dir.path()).assert().code(1);
    String::from_utf8(assert.get_output().stdout.clone()).expect("utf-8")
}

#[test]
fn test_passes_a_scenario_that_holds() {
    let dir = scenario_project(&SCENARIO.replace("STATUS", "proceeded"));
    let out = stdout(handoff().arg("test").arg(dir.path()));
    assert!(out.contains("ok    "), "{out}");
    assert!(out.ends_with("1 passed, 0 failed\n"), "{out}");
}

#[test]
fn test_a_failing_scenario_exits_1_with_a_readable_diff() {
    let out = failing_test_output(
        &SCENARIO
            .replace("STATUS", "paused")
            .replace("Kickoff: Acme", "Kick-off: Acme"),
    );
    assert!(out.contains("FAIL  "), "{out}");
    assert!(out.contains(": A complete deal proceeds"), "{out}");
    assert!(
        out.contains(r#"step 1, "Onboarding": status: expected "paused", got "proceeded""#),
        "{out}"
    );
    assert!(
        out.contains(r#"step 1, "Onboarding": actions[1].title: expected "Kick-off: Acme", got "Kickoff: Acme""#),
        "{out}"
    );
    assert!(out.contains("the outcome was:"), "{out}");
    assert!(out.ends_with("0 passed, 1 failed\n"), "{out}");
}

/// A stage outside the `one of` list in a test step is a typo in the
/// test: it fails naming the value meant, instead of passing as a rule
/// that did not fire.
#[test]
fn test_a_step_value_outside_its_list_fails_naming_the_value_meant() {
    let out = failing_test_output(
        &SCENARIO
            .replace("STATUS", "not_triggered")
            .replace(r#"stage = "Won""#, r#"stage = "Wonn""#),
    );
    assert!(
        out.contains(r#"step 1: `record.stage` is "Wonn", expected one of "Lead", "Proposal", "Won", "Lost" (did you mean "Won"?): write one of the listed values"#),
        "{out}"
    );
    assert!(out.ends_with("0 passed, 1 failed\n"), "{out}");
}

/// `run` applies a value outside its list as the server does, and says so
/// on stderr with the value meant: a typo no longer reads as a rule that
/// did not fire.
#[test]
fn run_warns_of_a_value_outside_its_list_and_names_the_value_meant() {
    run("stage_typo.json", &[])
        .assert()
        .code(0)
        .stderr(predicate::str::contains(
            r#"warning: `record.stage` is "Wonn", expected one of "Lead", "Proposal", "Won", "Lost" (did you mean "Won"?): applied as sent, so no rule waiting for a listed value fires on it"#,
        ));
    // A value listed: no warning.
    run("won_custom.json", &[]).assert().code(0).stderr("");
}

/// A status that does not exist, or a workflow name with a typo, can
/// never match: the failure names the one meant, not a bare difference.
#[test]
fn test_a_status_or_workflow_that_does_not_exist_names_the_one_meant() {
    let out = failing_test_output(&SCENARIO.replace("STATUS", "pause"));
    assert!(
        out.contains(r#"step 1, "Onboarding": status "pause" is not a status: did you mean "paused"? the statuses are proceeded, paused, review, resumed, done, withdrawn, rejected, orphaned, not_triggered"#),
        "{out}"
    );
    let out = failing_test_output(
        &SCENARIO
            .replace("STATUS", "proceeded")
            .replace(r#"workflow = "Onboarding""#, r#"workflow = "Onbaording""#),
    );
    assert!(
        out.contains(r#"step 1: no outcome for workflow "Onbaording": did you mean "Onboarding"?"#),
        "{out}"
    );
    // A workflow of another object: said, not taken for a typo.
    let out = failing_test_output(
        &SCENARIO
            .replace("STATUS", "proceeded")
            .replace(r#"workflow = "Onboarding""#, r#"workflow = "New ticket""#),
    );
    assert!(
        out.contains(r#"step 1: no outcome for workflow "New ticket": it runs on `ticket` records, and this step's event is a `deal`"#),
        "{out}"
    );
    // A key no outcome has: named, with the one meant.
    let out = failing_test_output(
        &SCENARIO
            .replace("STATUS", "proceeded")
            .replace("actions = [", "action = ["),
    );
    assert!(
        out.contains(r#"step 1, "Onboarding": `action` is not part of an outcome: did you mean `actions`? the keys are workflow, record_id,"#),
        "{out}"
    );
    // An action type that does not exist: named, with the one meant.
    let out = failing_test_output(
        &SCENARIO
            .replace("STATUS", "proceeded")
            .replace(r#"type = "assign""#, r#"type = "asign""#),
    );
    assert!(
        out.contains(r#"step 1, "Onboarding": actions[0].type "asign" is not an action type: did you mean "assign"? the types are assign, task, notify, email_draft, set"#),
        "{out}"
    );
}

#[test]
fn test_takes_a_bare_file_name_in_the_project_folder() {
    // `x.handoff-test` has the parent "": the project is the folder it is in.
    let dir = scenario_project(&SCENARIO.replace("STATUS", "proceeded"));
    let out = stdout(
        handoff()
            .current_dir(dir.path())
            .args(["test", "onboarding.handoff-test"]),
    );
    assert!(out.ends_with("1 passed, 0 failed\n"), "{out}");
}

#[test]
fn test_trace_contains_as_one_line_checks_it_and_any_other_value_fails() {
    let holds = SCENARIO.replace("STATUS", "proceeded");
    let with = |trace: &str| format!("{holds}trace_contains = {trace}\n");
    // One line, as text: checked like a list of one.
    let out = failing_test_output(&with(r#""no such line""#));
    assert!(
        out.contains(r#"trace has no line containing "no such line""#),
        "{out}"
    );
    let dir = scenario_project(&with(r#""fired""#));
    let out = stdout(handoff().arg("test").arg(dir.path()));
    assert!(out.ends_with("1 passed, 0 failed\n"), "{out}");
    // Anything but text would check nothing: it fails, saying how to write it.
    for bad in ["1", "[1]", "[]"] {
        let dir = scenario_project(&with(bad));
        let assert = handoff().arg("test").arg(dir.path()).assert().code(1);
        let out = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
        assert!(
            out.contains("write a line of text, or a list of them"),
            "{bad}: {out}"
        );
    }
}

#[test]
fn test_a_file_with_no_test_or_a_step_with_two_things_fails() {
    // A file that checks nothing: refused (exit 2), saying what to write.
    let dir = scenario_project("# nothing yet\n");
    let assert = handoff().arg("test").arg(dir.path()).assert().code(2);
    let err = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(err.contains("it holds no test"), "{err}");
    // The other files still run, and the summary says one was not read.
    std::fs::write(
        dir.path().join("good.handoff-test"),
        SCENARIO.replace("STATUS", "proceeded"),
    )
    .unwrap();
    let assert = handoff().arg("test").arg(dir.path()).assert().code(2);
    let out = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(out.contains("ok    "), "{out}");
    assert!(
        out.ends_with("1 passed, 0 failed, 1 file not read (see above)\n"),
        "{out}"
    );
    // An event and an approval in one step: the approval is not dropped.
    let both = SCENARIO.replace("STATUS", "proceeded").replace(
        "[[test.step.expect]]",
        "approve = { workflow = \"Onboarding\", record = \"deal/D-1\" }\n[[test.step.expect]]",
    );
    let out = failing_test_output(&both);
    assert!(out.contains("not both"), "{out}");
}

#[test]
fn run_on_a_broken_project_counts_every_file_checked() {
    let dir = TempDir::new().unwrap();
    let mut n = 0;
    for f in std::fs::read_dir(workflows()).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "handoff") {
            n += 1;
        }
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.path().join("broken.handoff"), "object {\n").unwrap();
    let assert = run_in(dir.path(), &event("won_custom.json"), &[])
        .assert()
        .code(1);
    let err = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(err.contains(&format!("checked {} files", n + 1)), "{err}");
}

#[test]
fn test_without_scenarios_exits_2() {
    let dir = TempDir::new().unwrap();
    handoff()
        .arg("test")
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no `.handoff-test` files under"));
    handoff()
        .arg("test")
        .arg(Path::new("no/such/dir"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("`no/such/dir` does not exist"));
}

/// `handoff run … | head`: when the reader goes away the command stops the
/// way Unix tools do (SIGPIPE), without a panic and its backtrace.
#[cfg(unix)]
#[test]
fn a_reader_that_leaves_early_stops_the_output_quietly() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;

    let dir = TempDir::new().unwrap();
    // Far more output than a pipe holds (64 KiB), so the writer meets the
    // closed end.
    let events: Vec<serde_json::Value> = (0..3000)
        .map(|i| {
            serde_json::json!({"id": format!("e{i}"), "object": "deal",
                "record_id": format!("D-{i}"), "occurred_at": "2026-11-20T15:04:05Z",
                "record": {"stage": "Proposal"}})
        })
        .collect();
    let file = dir.path().join("many.json");
    std::fs::write(&file, serde_json::to_vec(&events).unwrap()).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["run", "--explain", "--workflows"])
        .arg(workflows())
        .arg("--event")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The read end is dropped here, as `head` closes it.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
}

/// A dry run says what it did not read: an empty file, an empty list, a
/// field the object does not declare (a typo reads as a rule that did not
/// fire), an object the workflows do not declare, with the one meant.
#[test]
fn run_names_what_it_ignored_or_could_not_read() {
    let dir = TempDir::new().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let empty = write("empty.json", "\u{feff}\n  \n");
    run_in(&workflows(), &empty, &[])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is empty: write one event"));
    let none = write("none.json", "[]");
    run_in(&workflows(), &none, &[])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "is an empty list: no event to run",
        ));
    let mut typo: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(event("won_custom.json")).unwrap()).unwrap();
    typo["record"]["ownr"] = "kim@example.com".into();
    let typo_file = write("typo.json", &format!("[{typo}]"));
    run_in(&workflows(), &typo_file, &[])
        .assert()
        .success()
        .stderr(predicate::str::contains(
        "warning: event 1: `record.ownr` is not a field of `deal` (did you mean `owner`?): ignored",
    ));
    // A bad value in the second event of a list: which one, by place and id.
    let mut bad = typo.clone();
    bad["id"] = "evt-bad".into();
    bad["record"]["amount"] = "lots".into();
    let list_file = write("list.json", &format!("[{typo}, {bad}]"));
    run_in(&workflows(), &list_file, &[])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "event 2 (`evt-bad`) of the list: ",
        ));
    typo["object"] = "deals".into();
    let object_file = write("object.json", &typo.to_string());
    run_in(&workflows(), &object_file, &[])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "object `deals`, which the workflows do not declare: did you mean `deal`?",
        ));
}
