//! Tests of what the step's cheaper paths must not change: the trace kept
//! as data reads (and serializes) as the lines it always wrote, and an
//! event given by value steps exactly as the same event given by reference.

use std::path::PathBuf;

use super::*;
use crate::compile::WorkflowSet;

/// The eval bench's project: a `becomes` trigger with `where`, eight
/// required fields, two exceptions, a round-robin assignment, a brief and
/// `done when`.
fn bench_set() -> WorkflowSet {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/fixtures/eval");
    match crate::compile::load(&[dir]) {
        Ok((set, _)) => set,
        Err(e) => panic!("the bench fixture does not load: {e:?}"),
    }
}

/// The bench's proceeded event, changed by `f`.
fn event(set: &WorkflowSet, f: impl FnOnce(&mut serde_json::Value)) -> Event {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/fixtures/eval/closed_won.json"
    );
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut json);
    Event::decode(set, json.to_string().as_bytes()).unwrap()
}

fn at(t: &str) -> jiff::Timestamp {
    t.parse().unwrap()
}

/// The trace as the JSON contract has it.
fn serialized_trace(out: &Outcome) -> Vec<String> {
    let json = serde_json::to_value(out).unwrap();
    serde_json::from_value(json["handoffs"][0]["trace"].clone()).unwrap()
}

#[test]
fn a_proceeded_trace_reads_its_lines_and_serializes_the_same() {
    let set = bench_set();
    let ev = event(&set, |_| {});
    let (_, out) = step_owned(
        &set,
        None,
        ev,
        at("2026-11-20T15:04:05Z"),
        &mut MemoryAssignments::default(),
    )
    .unwrap();
    let expected = [
        r#"trigger: deal.stage was "Proposal", is "Closed Won" → fired"#,
        "where: deal.amount > 0 (deal.amount = 12000.00) → true",
        "gate: all 8 required fields present",
        r#"exception "Custom Scope": deal.custom_scope is yes (deal.custom_scope = no) → false"#,
        r#"exception "Needs Founder Review": deal.amount > 50000 and deal.segment is "enterprise" (deal.amount = 12000.00, deal.segment = "mid") → false"#,
        "normal path: proceeding",
        "assign: delivery_owner = ana@example.com (team delivery, round robin)",
        "done when: deal.kickoff_scheduled_at is set (deal.kickoff_scheduled_at = empty) → false",
    ];
    let h = &out.handoffs[0];
    assert_eq!(h.trace, expected, "{:#?}", h.trace);
    // Serialized without reading first, and after reading: the same lines.
    let fresh = out.clone();
    assert_eq!(serialized_trace(&fresh), expected);
    assert_eq!(serialized_trace(&out), expected);
}

#[test]
fn the_other_trigger_and_gate_lines_read_as_written() {
    let set = bench_set();
    let now = at("2026-11-20T15:04:05Z");
    let mut assign = MemoryAssignments::default();
    type Change = fn(&mut serde_json::Value);
    let cases: [(&str, Change, &[&str]); 3] = [
        (
            "already",
            |j| j["previous"]["stage"] = "Closed Won".into(),
            &[
                r#"trigger: deal.stage was already "Closed Won" → not fired (it fires on the change only)"#,
            ],
        ),
        (
            "not",
            |j| j["record"]["stage"] = "Lead".into(),
            &[r#"trigger: deal.stage is "Lead", not "Closed Won" → not fired"#],
        ),
        (
            "review",
            |j| {
                j["record"]["amount"] = 80000.into();
                j["record"]["segment"] = "enterprise".into();
            },
            &[
                r#"trigger: deal.stage was "Proposal", is "Closed Won" → fired"#,
                "where: deal.amount > 0 (deal.amount = 80000.00) → true",
                "gate: all 8 required fields present",
                r#"exception "Custom Scope": deal.custom_scope is yes (deal.custom_scope = no) → false"#,
                r#"exception "Needs Founder Review": deal.amount > 50000 and deal.segment is "enterprise" (deal.amount = 80000.00, deal.segment = "enterprise") → true"#,
                "Needs Founder Review flagged → review",
            ],
        ),
    ];
    for (name, change, expected) in cases {
        let (_, out) = step_owned(&set, None, event(&set, change), now, &mut assign).unwrap();
        assert_eq!(out.handoffs[0].trace.lines(), expected, "{name}");
        assert_eq!(serialized_trace(&out), expected, "{name}");
    }
}

#[test]
fn lines_added_after_a_read_are_read_too() {
    let mut trace = Trace::from(vec!["b".to_string()]);
    assert_eq!(trace, ["b"]);
    trace.prepend(["a".to_string()]);
    trace.push_static("c");
    assert_eq!(trace, ["a", "b", "c"]);
    assert_eq!(trace.join("|"), "a|b|c");
    let json = serde_json::to_string(&trace).unwrap();
    assert_eq!(json, r#"["a","b","c"]"#);
    let back: Trace = serde_json::from_str(&json).unwrap();
    assert_eq!(back, trace);
}

/// Steps `events` in order on one record twice, once giving each event by
/// value and once by reference; both must give the same states and outcomes.
fn by_value_and_by_reference(
    set: &WorkflowSet,
    events: &[(Event, &str)],
) -> (RecordState, Vec<Outcome>) {
    let (mut by_value, mut by_ref) = (None, None);
    let (mut assign_value, mut assign_ref) =
        (MemoryAssignments::default(), MemoryAssignments::default());
    let mut outcomes = Vec::new();
    for (ev, now) in events {
        let (rv, ov) =
            step_owned(set, by_value.take(), ev.clone(), at(now), &mut assign_value).unwrap();
        let (rr, or) = step(set, by_ref.take(), ev, at(now), &mut assign_ref).unwrap();
        assert_eq!(rv, rr, "state after {}", ev.id);
        assert_eq!(ov, or, "outcome of {}", ev.id);
        assert_eq!(
            serde_json::to_string(&ov).unwrap(),
            serde_json::to_string(&or).unwrap()
        );
        by_value = Some(rv);
        by_ref = Some(rr);
        outcomes.push(ov);
    }
    assert_eq!(assign_value, assign_ref);
    let state = by_value.unwrap();
    let n = set.schema().objects[events[0].0.object_index].fields.len();
    assert_eq!((state.values.len(), state.set_at.len()), (n, n));
    (state, outcomes)
}

#[test]
fn an_event_given_by_value_steps_as_the_same_event_by_reference() {
    let set = bench_set();
    let won = event(&set, |_| {});
    // Later: the kickoff is scheduled (done when), the name changes.
    let scheduled = event(&set, |j| {
        j["id"] = "evt-2002".into();
        j["occurred_at"] = "2026-11-23T10:00:00Z".into();
        j["record"] = serde_json::json!({
            "kickoff_scheduled_at": "2026-11-24T14:00:00Z",
            "name": "Acme Corp"
        });
        j["previous"] = serde_json::json!({});
    });
    // Older than what the record holds: its name is left out.
    let stale = event(&set, |j| {
        j["id"] = "evt-2000".into();
        j["occurred_at"] = "2026-11-19T09:00:00Z".into();
        j["record"] = serde_json::json!({"name": "Acme Co", "industry": "Freight"});
        j["previous"] = serde_json::json!({});
    });
    let (state, outcomes) = by_value_and_by_reference(
        &set,
        &[
            (won, "2026-11-20T15:04:05Z"),
            (scheduled, "2026-11-23T10:00:00Z"),
            (stale, "2026-11-23T11:00:00Z"),
        ],
    );
    let statuses: Vec<_> = outcomes.iter().map(|o| o.handoffs[0].status).collect();
    assert_eq!(
        statuses,
        [
            OutcomeStatus::Proceeded,
            OutcomeStatus::Done,
            OutcomeStatus::NotTriggered
        ]
    );
    // The newest values stand: the stale event's name and industry were
    // left out, and its trace says so.
    let object = set.object("deal").unwrap();
    let value = |n: &str| &state.values[object.slot(n).unwrap()];
    assert_eq!(
        value("name"),
        &crate::value::Value::Text("Acme Corp".into())
    );
    assert_eq!(
        value("industry"),
        &crate::value::Value::Text("Logistics".into())
    );
    let trace = &outcomes[2].handoffs[0].trace;
    for field in ["deal.name", "deal.industry"] {
        let note = format!("{field}: this event (2026-11-19T09:00:00Z) is older");
        assert!(trace.iter().any(|l| l.starts_with(&note)), "{trace:#?}");
    }
}

#[test]
fn a_new_records_state_is_the_events_values_stamped_with_its_time() {
    let set = bench_set();
    let ev = event(&set, |j| {
        j["record"]["industry"] = serde_json::Value::Null;
        j["record"].as_object_mut().unwrap().remove("next_step");
    });
    let object = &set.schema().objects[ev.object_index];
    let expected: Vec<_> = ev
        .record
        .iter()
        .map(|v| v.clone().unwrap_or(crate::value::Value::Null))
        .collect();
    let given: Vec<bool> = ev.record.iter().map(Option::is_some).collect();
    let (state, _) = step_owned(
        &set,
        None,
        ev,
        at("2026-11-20T15:04:05Z"),
        &mut MemoryAssignments::default(),
    )
    .unwrap();
    assert_eq!(state.values, expected);
    let t = at("2026-11-20T15:04:05Z");
    for (slot, given) in given.into_iter().enumerate() {
        let name = &object.fields[slot].name;
        assert_eq!(state.set_at[slot], given.then_some(t), "{name}");
    }
    let next_step = object.slot("next_step").unwrap();
    assert_eq!(state.set_at[next_step], None);
    assert_eq!(state.values[next_step], crate::value::Value::Null);
}
