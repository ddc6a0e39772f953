//! Exact money: decimals in conditions and templates, money rendered with
//! two decimals, strict reading of amounts a CRM sends, and snapshots that
//! keep every digit. Fixture: `tests/fixtures/eval/money` (the rule, one
//! event file per ambiguous amount, and `won_1000_5.json`).

use std::path::PathBuf;

use handoff::compile::WorkflowSet;
use handoff::eval::{Event, EventError, FieldError, Outcome, PlannedAction, State};
use handoff::value::{Decimal, Value};
use serde_json::{json, Value as J};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval/money")
}

fn project() -> WorkflowSet {
    handoff::compile::load(&[dir()])
        .expect("the fixture loads")
        .0
}

const NOW: &str = "2026-11-20T15:00:00Z";

fn step(set: &WorkflowSet, state: State, event: &[u8]) -> (State, Outcome) {
    let ev = Event::decode(set, event).expect("the event decodes");
    let mut state = state;
    let out = state
        .step(set, &ev, NOW.parse().unwrap())
        .expect("same version");
    (state, out)
}

/// A won deal with `record` (name, owner and stage filled in).
fn won(record: J) -> Vec<u8> {
    let mut r = json!({"name": "Acme", "stage": "Won", "owner": "sam@example.com"});
    for (k, v) in record.as_object().unwrap() {
        r[k] = v.clone();
    }
    json!({"id": "e1", "object": "deal", "record_id": "D-1", "record": r, "previous": {"stage": "Open"}})
        .to_string()
        .into_bytes()
}

/// The flagged exceptions and the message sent.
fn decide(set: &WorkflowSet, event: &[u8]) -> (Vec<String>, String) {
    let (_, out) = step(set, State::default(), event);
    let h = &out.handoffs[0];
    let message = match &h.plans()[..] {
        [PlannedAction::Notify { message, .. }] => message.clone(),
        other => panic!("one notification expected, got {other:?}"),
    };
    (h.exceptions.clone(), message)
}

fn money(s: &str) -> Value {
    Value::Money(s.parse().unwrap())
}

/// The one field error of an event the schema refuses.
fn field_error(set: &WorkflowSet, event: &[u8]) -> FieldError {
    match Event::decode(set, event) {
        Err(EventError::Fields(mut errors)) if errors.len() == 1 => errors.remove(0),
        other => panic!("one field error expected, got {other:?}"),
    }
}

#[test]
fn the_fixture_event_flags_exact_sums_and_renders_the_amount_with_two_decimals() {
    let set = project();
    let event = std::fs::read(dir().join("won_1000_5.json")).unwrap();
    let (exceptions, message) = decide(&set, &event);
    // `0.1 + 0.2 == 0.3`, written in the rule and with a field: both hold.
    assert_eq!(exceptions, ["Exact sum", "Exact rate", "Per seat"]);
    assert_eq!(
        message, "Acme: 1000.50, twice 2001.00, per seat 333.50",
        "money renders with two decimals; money times or over a number is money"
    );
}

#[test]
fn a_rate_that_is_not_exactly_a_tenth_does_not_make_the_sum() {
    let set = project();
    let (exceptions, _) = decide(
        &set,
        &won(json!({"amount": 1, "rate": 0.1000001, "seats": 1})),
    );
    assert_eq!(exceptions, ["Exact sum"]);
}

#[test]
fn every_ambiguous_amount_is_a_field_error_naming_it() {
    let set = project();
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("ambiguous_") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let sent = serde_json::from_slice::<J>(&bytes).unwrap()["record"]["amount"].clone();
        let e = field_error(&set, &bytes);
        assert_eq!(e.field, "record.amount", "{name}");
        assert_eq!(e.value, format!("\"{}\"", sent.as_str().unwrap()), "{name}");
        assert!(
            e.expected.starts_with(
                "an amount with a dot for decimals and no thousands separators, such as 1000.50"
            ),
            "{name}: {e}"
        );
        seen.push(sent.as_str().unwrap().to_string());
    }
    seen.sort();
    assert_eq!(seen, ["1 000,5", "1.000,50", "12,000"]);
}

#[test]
fn plain_amounts_are_read_exactly_from_numbers_and_text() {
    let set = project();
    let amount = |sent: J| {
        let ev = Event::decode(&set, &won(json!({ "amount": sent }))).expect("the amount is plain");
        ev.record[set.object("deal").unwrap().slot("amount").unwrap()]
            .clone()
            .expect("the amount was given")
    };
    assert_eq!(amount(json!(1000.5)), money("1000.5"));
    assert_eq!(amount(json!(1000)), money("1000"));
    assert_eq!(amount(json!("1000.50")), money("1000.50"));
    assert_eq!(amount(json!(" -12.30 ")), money("-12.30"));
    assert_eq!(amount(json!("1000")), money("1000"));
    assert_eq!(amount(J::Null), Value::Null);
    // 17 digits, which a double cannot hold: every digit kept.
    let raw = br#"{"id": "e", "object": "deal", "record_id": "D-1",
        "record": {"amount": 123456789012345.67}}"#;
    let ev = Event::decode(&set, raw).unwrap();
    let slot = set.object("deal").unwrap().slot("amount").unwrap();
    assert_eq!(ev.record[slot], Some(money("123456789012345.67")));
    assert_eq!(
        amount(json!("12345678901234567")),
        money("12345678901234567")
    );
}

#[test]
fn amounts_that_are_not_plain_say_what_to_send() {
    let set = project();
    for (sent, expected) in [
        ("$100", "an amount such as 1000.50"),
        ("ten", "an amount such as 1000.50"),
        ("", "an amount such as 1000.50"),
        ("1,5", "an amount with a dot for decimals"),
        ("1'000.50", "an amount with a dot for decimals"),
        ("1.000.000", "an amount with a dot for decimals"),
    ] {
        let e = field_error(&set, &won(json!({ "amount": sent })));
        assert_eq!(e.value, format!("\"{sent}\""));
        assert!(e.expected.starts_with(expected), "{sent}: {e}");
    }
    // Numbers keep their own, lenient rules.
    let ev = Event::decode(&set, &won(json!({"seats": "12,000"}))).unwrap();
    let slot = set.object("deal").unwrap().slot("seats").unwrap();
    assert_eq!(ev.record[slot], Some(Value::Number(Decimal::from(12000))));
}

#[test]
fn more_than_two_decimals_are_kept_exact_and_rendered_half_to_even() {
    assert_eq!(money("0.125").to_string(), "0.12");
    assert_eq!(money("0.135").to_string(), "0.14");
    assert_eq!(money("-2.5").to_string(), "-2.50");
    assert_eq!(money("1000").to_string(), "1000.00");
    // Kept exact: three eighths of a cent add up.
    let set = project();
    let (_, message) = decide(&set, &won(json!({"amount": "0.125", "seats": 1})));
    assert_eq!(message, "Acme: 0.12, twice 0.25, per seat 0.12");
}

#[test]
fn a_division_by_zero_is_no_value_not_a_panic() {
    let set = project();
    let (exceptions, message) = decide(&set, &won(json!({"amount": 1000, "seats": 0})));
    assert_eq!(exceptions, ["Exact sum"]);
    assert_eq!(message, "Acme: 1000.00, twice 2000.00, per seat ");
}

#[test]
fn the_snapshot_keeps_every_digit_of_an_amount() {
    let set = project();
    let first = br#"{"id": "e1", "object": "deal", "record_id": "D-1",
        "record": {"name": "Acme", "stage": "Open", "owner": "sam@example.com",
                   "amount": 123456789012345.67, "seats": 1}}"#;
    let (state, _) = step(&set, State::default(), first);
    let snap = &state.records["deal/D-1"].snapshot;
    assert_eq!(snap["amount"], json!("123456789012345.67"));
    // Through the state file and back, then read from the snapshot.
    let state: State = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
    let second = br#"{"id": "e2", "object": "deal", "record_id": "D-1",
        "record": {"stage": "Won"}, "previous": {"stage": "Open"}}"#;
    let (_, out) = step(&set, state, second);
    match &out.handoffs[0].plans()[..] {
        [PlannedAction::Notify { message, .. }] => assert!(
            message.starts_with("Acme: 123456789012345.67, twice 246913578024691.34"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
}
