//! rhai `script` exceptions: a working script, and every way a script can
//! misbehave (loop forever, run too long, throw, return something that is
//! not true/false, grow text or lists without bound, recurse, read an empty
//! field). A failing script flags its exception for review with the error,
//! fail safe, and never panics or hangs. Decisions replay exactly, even a
//! script stopped by the operation limit. Scripts that use `eval`,
//! `import`, an undeclared field or the clock are refused at check time. Fixtures:
//! `tests/fixtures/eval/scripts` and `tests/fixtures/eval/bad_script_*`.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use handoff::compile::{LoadFailure, WorkflowSet};
use handoff::eval::{Event, HandoffOutcome, OutcomeStatus, PlannedAction, State};
use predicates::prelude::*;
use serde_json::{json, Value as J};

use common::eval_fixture as fixture;

fn project() -> &'static WorkflowSet {
    static SET: OnceLock<WorkflowSet> = OnceLock::new();
    SET.get_or_init(|| common::fixture_set("scripts"))
}

/// A deal, as it stands before `kind` is set.
fn deal() -> J {
    json!({"name": "Acme", "kind": "new", "notes": "A blocker: legal review",
           "amount": 12000, "start_date": "2026-11-27", "tags": ["legal"]})
}

/// Sets `deal.kind` to `kind` (firing "Script {kind}") on a deal whose
/// fields are `record`, and returns that handoff's outcome and how long the
/// step took.
fn run(kind: &str, record: J) -> (HandoffOutcome, Duration) {
    let set = project();
    let mut record = record;
    record["kind"] = json!(kind);
    let event = json!({"id": "e1", "object": "deal", "record_id": "D-1", "record": record,
                       "previous": {"kind": "new"}});
    let event = Event::decode(set, event.to_string().as_bytes()).unwrap();
    let now = "2026-11-20T15:00:00Z".parse().unwrap();
    let started = Instant::now();
    let out = State::default()
        .step(set, &event, now)
        .expect("same version");
    let took = started.elapsed();
    let h = out
        .handoffs
        .into_iter()
        .find(|h| h.workflow == format!("Script {kind}"))
        .unwrap();
    // Every other handoff stays out of it.
    (h, took)
}

/// Runs a script that must fail: checks it is flagged for review with its
/// error, fail safe, and returns the error text.
#[track_caller]
fn fails_safe(kind: &str, exception: &str) -> String {
    let (h, _) = run(kind, deal());
    assert_eq!(h.status, OutcomeStatus::Review, "{kind}: {:#?}", h.trace);
    assert_eq!(h.exceptions, [exception]);
    assert_eq!(h.exception_errors.len(), 1);
    assert_eq!(h.exception_errors[0].name, exception);
    assert!(
        matches!(&h.plans()[..], [PlannedAction::Notify { message, .. }]
        if message == &format!("Review {exception} for Acme."))
    );
    let error = h.exception_errors[0].error.clone();
    assert!(
        h.trace.iter().any(|l| l
            == &format!("exception \"{exception}\": script failed ({error}) → flagged for review")),
        "{:#?}",
        h.trace
    );
    // The JSON contract carries the error.
    let json = serde_json::to_value(&h).unwrap();
    assert_eq!(
        json["exception_errors"],
        json!([{"name": exception, "error": error}])
    );
    error
}

#[test]
fn a_working_script_decides_the_exception() {
    let (h, _) = run("ok", deal());
    assert_eq!(h.status, OutcomeStatus::Review);
    assert_eq!(h.exceptions, ["Delivery Risk"]);
    assert!(h.exception_errors.is_empty());
    // The values the script read, in the order it reads them.
    assert!(
        h.trace.contains(
            &"exception \"Delivery Risk\": script → true (deal.notes = \"A blocker: legal review\", \
              deal.start_date = 2026-11-27, deal.tags = [\"legal\"], deal.amount = 12000.00)"
                .to_string()
        ),
        "{:#?}",
        h.trace
    );

    // A start date far away: the same script says false.
    let mut calm = deal();
    calm["start_date"] = json!("2027-03-01");
    let (h, _) = run("ok", calm);
    assert_eq!(h.status, OutcomeStatus::Proceeded);
    assert!(h.exception_errors.is_empty());
    assert!(
        h.trace.iter().any(|l| l.starts_with(
            "exception \"Delivery Risk\": script → false (deal.notes = \"A blocker: legal review\", \
             deal.start_date = 2027-03-01,"
        )),
        "{:#?}",
        h.trace
    );
}

#[test]
fn loop_forever_fails_safe() {
    // Stopped by the operation limit, the only bound on running time, so
    // the same script fails the same way on any machine.
    let error = fails_safe("loop", "Runaway loop");
    assert!(
        error.starts_with("the script ran ") && error.ends_with(" and was stopped"),
        "{error}"
    );
    assert_eq!(
        error,
        "the script ran past 200,000 operations and was stopped"
    );
    let error = fails_safe("while", "Runaway while");
    assert!(
        error.starts_with("the script ran ") && error.ends_with(" and was stopped"),
        "{error}"
    );
    assert_eq!(
        error,
        "the script ran past 200,000 operations and was stopped"
    );
}

#[test]
fn a_long_computation_fails_safe() {
    let error = fails_safe("busy", "Busy work");
    assert!(error.ends_with("and was stopped"), "{error}");
}

/// The sandbox stops a script after 200,000 operations (no wall-time
/// bound: a decision must replay); the target is under 100 ms for the
/// whole event. Measured in a debug build (rhai optimized, see Cargo.toml)
/// on a shared 2-core machine: `loop {}` and `while true {}` hit the
/// operation limit after about 0.2 ms, the 100M-step `for` loop after about
/// 26 ms. The scripts run one after the other so they do not compete with
/// each other.
#[test]
fn runaway_scripts_are_cut_off_within_100_ms() {
    const CUT_OFF: Duration = Duration::from_millis(100);
    for (kind, what) in [
        ("loop", "`loop {}`"),
        ("while", "`while true {}`"),
        ("busy", "a 100M-step `for` loop"),
        ("string_size", "doubling a text forever"),
        ("array_size", "doubling a list forever"),
        ("recursion", "endless recursion"),
    ] {
        let (h, took) = run(kind, deal());
        assert_eq!(h.status, OutcomeStatus::Review, "{kind}");
        assert_eq!(h.exception_errors.len(), 1, "{kind}");
        eprintln!(
            "{what}: cut off after {took:?} ({})",
            h.exception_errors[0].error
        );
        assert!(took < CUT_OFF, "{what} took {took:?}");
    }
}

#[test]
fn a_script_that_throws_is_flagged_with_its_message() {
    let error = fails_safe("throw", "Throws");
    assert!(error.contains("the contract is missing"), "{error}");
}

#[test]
fn a_script_that_returns_a_number_or_text_is_flagged() {
    let error = fails_safe("number", "Returns a number");
    assert_eq!(error, "the script returned i64, not true/false");
    let error = fails_safe("text", "Returns text");
    assert_eq!(error, "the script returned string, not true/false");
}

#[test]
fn text_and_lists_cannot_grow_without_bound() {
    let error = fails_safe("string_size", "Huge text");
    assert!(error.to_lowercase().contains("length of string"), "{error}");
    let error = fails_safe("array_size", "Huge list");
    assert!(error.to_lowercase().contains("size of array"), "{error}");
}

#[test]
fn endless_recursion_is_stopped_by_the_call_depth() {
    let error = fails_safe("recursion", "Deep recursion");
    assert!(error.to_lowercase().contains("stack overflow"), "{error}");
}

#[test]
fn a_method_on_an_empty_field_fails_safe() {
    let mut d = deal();
    d.as_object_mut().unwrap().remove("notes");
    let (h, _) = run("empty_field", d);
    assert_eq!(h.status, OutcomeStatus::Review);
    assert_eq!(h.exceptions, ["Reads an empty field"]);
    // The script does not run: it reads a field with no value (it used to
    // run and fail on `contains`).
    assert_eq!(
        h.exception_errors[0].error,
        "the script reads deal.notes, which is empty; require it so the handoff waits for a value"
    );
    assert!(
        h.trace.contains(
            &"exception \"Reads an empty field\": script reads deal.notes, which is empty → flagged for review"
                .to_string()
        ),
        "{:#?}",
        h.trace
    );
}

#[test]
fn a_script_that_reads_empty_fields_is_flagged_not_quietly_false() {
    // Run, this script would say false (no tags, and `()` is not "legal"),
    // and the deal would skip review.
    let mut d = deal();
    d["tags"] = json!([]);
    d.as_object_mut().unwrap().remove("notes");
    let (h, _) = run("quiet_false", d);
    assert_eq!(h.status, OutcomeStatus::Review, "{:#?}", h.trace);
    assert_eq!(h.exceptions, ["Legal review"]);
    assert_eq!(
        h.exception_errors[0].error,
        "the script reads deal.tags and deal.notes, which are empty; require them so the handoff waits for a value"
    );
    // With the fields filled in, it runs and decides.
    let mut d = deal();
    d["tags"] = json!(["finance"]);
    let (h, _) = run("quiet_false", d);
    assert_eq!(h.status, OutcomeStatus::Proceeded, "{:#?}", h.trace);
    assert!(h.exception_errors.is_empty());
    assert!(
        h.trace.contains(
            &"exception \"Legal review\": script → false (deal.tags = [\"finance\"], \
              deal.notes = \"A blocker: legal review\")"
                .to_string()
        ),
        "{:#?}",
        h.trace
    );
}

/// The outcome of `step` is a function of (workflows, state, event, now):
/// the same script-heavy event, stepped again and again, on this thread and
/// on others, gives the same new state and outcome, down to the trace,
/// including a script stopped by the operation limit.
#[test]
fn script_decisions_replay_exactly() {
    let set = project();
    let mut record = deal();
    record["kind"] = json!("replay");
    let event = json!({"id": "e1", "object": "deal", "record_id": "D-1", "record": record,
                       "previous": {"kind": "new"}});
    let event = Event::decode(set, event.to_string().as_bytes()).unwrap();
    let now: jiff::Timestamp = "2026-11-20T15:00:00Z".parse().unwrap();
    let step = || {
        let mut state = State::default();
        let out = state.step(set, &event, now).expect("same version");
        (
            serde_json::to_string(&state).unwrap(),
            serde_json::to_string(&out).unwrap(),
        )
    };
    let first = step();
    let h = serde_json::from_str::<J>(&first.1).unwrap()["handoffs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["workflow"] == "Script replay")
        .cloned()
        .unwrap();
    assert_eq!(
        h["exceptions"],
        json!(["Soon", "Runaway", "Throws"]),
        "{h:#}"
    );
    assert_eq!(
        h["exception_errors"][0],
        json!({"name": "Runaway", "error": "the script ran past 200,000 operations and was stopped"})
    );
    for _ in 0..20 {
        assert_eq!(step(), first);
    }
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..2)
            .map(|_| s.spawn(|| (0..10).map(|_| step()).collect::<Vec<_>>()))
            .collect();
        for run in runs {
            for outcome in run.join().unwrap() {
                assert_eq!(outcome, first);
            }
        }
    });
}

#[test]
fn a_failed_script_does_not_stop_the_next_event() {
    // The deadline of a cut-off script must not leak into later runs.
    let (_, _) = run("loop", deal());
    let (h, _) = run("ok", deal());
    assert!(h.exception_errors.is_empty(), "{:?}", h.exception_errors);
    assert_eq!(h.exceptions, ["Delivery Risk"]);
}

// ---------------------------------------------------------------- check time

fn check_refuses(dir: &str, code: &str, message: &str) {
    let err = handoff::compile::load(&[fixture(dir)]).expect_err("the project has an error");
    let LoadFailure::Invalid(diagnostics) = err else {
        panic!("expected diagnostics, got {err:?}");
    };
    let codes: Vec<&str> = diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, [code]);
    assert!(
        diagnostics[0].message.contains(message),
        "{}",
        diagnostics[0].message
    );

    Command::new(env!("CARGO_BIN_EXE_handoff"))
        .arg("check")
        .arg(fixture(dir))
        .env("NO_COLOR", "1")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(code).and(predicate::str::contains(message)));
}

#[test]
fn eval_is_refused_at_check_time() {
    check_refuses("bad_script_eval", "H116", "'eval' is disabled");
}

#[test]
fn import_is_refused_at_check_time() {
    check_refuses("bad_script_import", "H116", "'import'");
}

#[test]
fn an_undeclared_field_is_refused_at_check_time() {
    check_refuses(
        "bad_script_field",
        "H117",
        "unknown field `risks` on `deal`",
    );
    Command::new(env!("CARGO_BIN_EXE_handoff"))
        .arg("check")
        .arg(fixture("bad_script_field"))
        .env("NO_COLOR", "1")
        .assert()
        .stderr(predicate::str::contains("did you mean `risk_notes`?"));
}

#[test]
fn a_script_that_reads_the_clock_is_refused_at_check_time() {
    check_refuses(
        "bad_script_clock",
        "H121",
        "script calls `timestamp`, which reads the clock",
    );
    // The help names the fix.
    let Err(LoadFailure::Invalid(diagnostics)) =
        handoff::compile::load(&[fixture("bad_script_clock")])
    else {
        panic!("the project has an error");
    };
    let help = diagnostics[0].help.as_deref().unwrap_or_default();
    assert!(
        help.contains("use `today()`, `days_until(date)` or `days_since(date)`, which read the day of the event"),
        "{help}"
    );
}
