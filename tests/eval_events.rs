//! CRM events: typed decoding of every field type, the errors a bad event
//! gets, and how partial records and `previous` combine with the snapshot.
//! Fixture: `tests/fixtures/eval/events` (one field of every type).

mod common;

use handoff::compile::WorkflowSet;
use handoff::eval::{self, Event, EventError, FieldError, OutcomeStatus, PlannedAction, State};
use handoff::value::Value;
use jiff::civil::date;
use serde_json::{json, Value as J};

fn project() -> WorkflowSet {
    common::fixture_set("events")
}

fn decode(set: &WorkflowSet, event: &J) -> Result<Event, EventError> {
    Event::decode(set, event.to_string().as_bytes())
}

/// Decodes `{field: value}` and returns the typed value of that field.
fn typed(field: &str, value: J) -> Result<Value, Vec<FieldError>> {
    let set = project();
    let event = json!({"id": "e", "object": "deal", "record_id": "D-1", "record": {field: value}});
    match decode(&set, &event) {
        Ok(e) => {
            let slot = set.object("deal").unwrap().slot(field).unwrap();
            Ok(e.record[slot].clone().expect("the field was given"))
        }
        Err(EventError::Fields(errors)) => Err(errors),
        Err(other) => panic!("unexpected error: {other}"),
    }
}

#[track_caller]
fn ok(field: &str, value: J) -> Value {
    typed(field, value.clone())
        .unwrap_or_else(|e| panic!("{field} = {value} should decode, got {e:?}"))
}

/// The single field error for a bad value.
#[track_caller]
fn bad(field: &str, value: J) -> FieldError {
    match typed(field, value.clone()) {
        Err(mut errors) if errors.len() == 1 => errors.remove(0),
        other => panic!("{field} = {value} should be one field error, got {other:?}"),
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn utc(s: &str) -> Value {
    Value::DateTime(s.parse().unwrap())
}

// ---------------------------------------------------------------- per type

#[test]
fn text_email_user_and_one_of_take_text_and_plain_scalars() {
    assert_eq!(ok("name", json!("Acme Co")), text("Acme Co"));
    assert_eq!(
        ok("name", json!(12)),
        text("12"),
        "a CRM may send a numeric name"
    );
    assert_eq!(
        ok("contact", json!("jo@acme.example")),
        text("jo@acme.example")
    );
    assert_eq!(
        ok("owner", json!(40112)),
        text("40112"),
        "CRM user ids are numbers"
    );
    assert_eq!(ok("stage", json!("Won")), text("Won"));
    let e = bad("name", json!({"first": "A"}));
    assert_eq!(e.field, "record.name");
    assert_eq!(e.expected, "text");
}

#[test]
fn a_one_of_value_the_list_does_not_hold_is_kept_as_text_and_matches_nothing() {
    // CRMs add pipeline stages before the rules learn them; such an event
    // must not be refused, it simply fires nothing.
    let set = project();
    let ev = decode(&set, &json!({"id": "e", "object": "deal", "record_id": "D-1",
        "record": {"stage": "Closed Won (new)", "start_date": "2026-12-01"}, "previous": {"stage": "Proposal"}}))
    .unwrap();
    let out = State::default()
        .step(&set, &ev, "2026-11-20T15:00:00Z".parse().unwrap())
        .expect("same version");
    assert_eq!(out.handoffs[0].status, OutcomeStatus::NotTriggered);
}

fn number(s: &str) -> Value {
    Value::Number(s.parse().unwrap())
}

/// `number` reads formatted text leniently; `money` is strict (its own
/// tests are in tests/eval_money.rs).
#[test]
fn numbers_from_numbers_and_from_formatted_text() {
    assert_eq!(ok("seats", json!(12000)), number("12000"));
    assert_eq!(ok("seats", json!(12000.5)), number("12000.5"));
    assert_eq!(ok("seats", json!("12,000.50")), number("12000.5"));
    assert_eq!(ok("seats", json!("1 500")), number("1500"));
    assert_eq!(ok("seats", json!("-3")), number("-3"));
    assert_eq!(ok("seats", json!(7)), number("7"));
    assert_eq!(ok("amount", json!(12000)), Value::Money(12000.into()));

    let e = bad("seats", json!("twelve"));
    assert_eq!(e.field, "record.seats");
    assert_eq!(e.value, "\"twelve\"");
    assert_eq!(e.expected, "a number");
    assert_eq!(bad("seats", json!(true)).expected, "a number");
    assert_eq!(
        bad("seats", json!("NaN")).expected,
        "a number",
        "not a finite number"
    );
}

#[test]
fn dates_from_plain_dates_rfc3339_and_epoch_milliseconds() {
    let dec1 = Value::Date(date(2026, 12, 1));
    assert_eq!(ok("start_date", json!("2026-12-01")), dec1);
    // A date-time keeps the calendar date as written.
    assert_eq!(ok("start_date", json!("2026-12-01T10:00:00Z")), dec1);
    assert_eq!(ok("start_date", json!("2026-12-01T22:30:00-05:00")), dec1);
    // HubSpot sends dates as midnight UTC in epoch milliseconds.
    assert_eq!(ok("start_date", json!(1_796_083_200_000_i64)), dec1);
    assert_eq!(
        ok("start_date", json!(1_796_167_800_000_i64)),
        dec1,
        "23:30 UTC is still Dec 1"
    );
    // An empty text is no date at all.
    assert_eq!(ok("start_date", json!("")), Value::Null);
}

#[test]
fn a_date_that_does_not_parse_names_the_field_and_the_expected_form() {
    for value in ["12/01/2026", "2026-13-01", "2026-12-01 and more", "soon"] {
        let e = bad("start_date", json!(value));
        assert_eq!(e.field, "record.start_date", "{value}");
        assert_eq!(e.value, format!("\"{value}\""));
        assert_eq!(e.expected, "a date such as 2026-12-01");
    }
    let set = project();
    let err = decode(
        &set,
        &json!({"id": "e", "object": "deal", "record_id": "D-1",
        "record": {"start_date": "12/01/2026"}}),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "1 field value(s) do not fit the schema: `record.start_date` is \"12/01/2026\", expected a date such as 2026-12-01"
    );
}

#[test]
fn datetimes_from_rfc3339_civil_text_and_epoch_milliseconds() {
    let moment = utc("2026-11-20T15:04:05Z");
    assert_eq!(ok("kickoff_at", json!("2026-11-20T15:04:05Z")), moment);
    assert_eq!(ok("kickoff_at", json!("2026-11-20T10:04:05-05:00")), moment);
    assert_eq!(
        ok("kickoff_at", json!("2026-11-20T15:04:05")),
        moment,
        "no offset: UTC"
    );
    assert_eq!(ok("kickoff_at", json!(1_795_187_045_000_i64)), moment);
    assert_eq!(ok("kickoff_at", json!("  ")), Value::Null);
    let e = bad("kickoff_at", json!("2026-11-20 at noon"));
    assert_eq!(e.field, "record.kickoff_at");
    assert_eq!(e.expected, "a date-time such as 2026-11-20T15:04:05Z");
}

#[test]
fn yes_no_from_booleans_words_and_zero_or_one() {
    for yes in [
        json!(true),
        json!("yes"),
        json!("Yes"),
        json!("true"),
        json!("TRUE"),
        json!("1"),
        json!(1),
    ] {
        assert_eq!(ok("custom", yes.clone()), Value::Bool(true), "{yes}");
    }
    for no in [
        json!(false),
        json!("no"),
        json!("false"),
        json!("0"),
        json!(0),
    ] {
        assert_eq!(ok("custom", no.clone()), Value::Bool(false), "{no}");
    }
    for wrong in [json!("maybe"), json!(2), json!([true])] {
        let e = bad("custom", wrong.clone());
        assert_eq!(e.field, "record.custom");
        assert_eq!(e.expected, "yes or no", "{wrong}");
    }
}

#[test]
fn lists_from_arrays_and_from_semicolon_separated_text() {
    let abc = Value::List(vec![text("a"), text("b"), text("c")]);
    assert_eq!(ok("tags", json!(["a", "b", "c"])), abc);
    assert_eq!(ok("tags", json!("a;b;c")), abc);
    assert_eq!(
        ok("tags", json!(" a ; b;; c ;")),
        abc,
        "trimmed, empty parts dropped"
    );
    assert_eq!(ok("tags", json!("")), Value::List(vec![]));
    assert_eq!(
        ok("sizes", json!("1;2,500")),
        Value::List(vec![number("1"), number("2500")])
    );
    assert_eq!(
        ok("sizes", json!([3, "4"])),
        Value::List(vec![number("3"), number("4")])
    );
    let e = bad("sizes", json!([1, "lots"]));
    assert_eq!(e.field, "record.sizes");
    assert_eq!(e.expected, "a number", "the item's type is named");
    assert_eq!(bad("tags", json!({"a": 1})).expected, "a list");
}

#[test]
fn null_is_an_explicit_empty_value() {
    assert_eq!(ok("amount", J::Null), Value::Null);
    assert_eq!(ok("tags", J::Null), Value::Null);
}

// ---------------------------------------------------------------- errors

#[test]
fn several_bad_fields_are_reported_together() {
    let set = project();
    let err = Event::decode(
        &set,
        br#"{
        "id": "e", "object": "deal", "record_id": "D-1", "occurred_at": "yesterday",
        "record": {"start_date": "01.12.2026", "amount": "lots", "name": "fine"},
        "previous": {"custom": "perhaps"}
    }"#,
    )
    .unwrap_err();
    let EventError::Fields(errors) = &err else {
        panic!("expected field errors, got {err}");
    };
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "record.start_date",
            "record.amount",
            "previous.custom",
            "occurred_at"
        ]
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with("4 field value(s) do not fit the schema: "),
        "{msg}"
    );
    assert!(
        msg.contains("`previous.custom` is \"perhaps\", expected yes or no"),
        "{msg}"
    );
    assert!(
        msg.contains(
            "`occurred_at` is \"yesterday\", expected a date-time such as 2026-11-20T15:04:05Z"
        ),
        "{msg}"
    );
}

#[test]
fn fields_the_workflows_do_not_declare_are_ignored() {
    let set = project();
    let ev = decode(
        &set,
        &json!({"id": "e", "object": "deal", "record_id": "D-1", "record": {
            "name": "Acme", "hs_object_id": 123, "hs_meta": {"nested": [1, {"deep": null}]},
            "hs_lastmodifieddate": "not a date either"
        }}),
    )
    .unwrap();
    let given: Vec<&Value> = ev.record.iter().flatten().collect();
    assert_eq!(given, [&text("Acme")]);
}

#[test]
fn malformed_json_gets_a_clear_error() {
    let set = project();
    let err = Event::decode(&set, br#"{"id": "e1", "object": "deal", "record_id": "#).unwrap_err();
    assert!(matches!(err, EventError::Shape(_)));
    let msg = err.to_string();
    assert!(msg.starts_with("the event is not valid: "), "{msg}");
    assert!(msg.contains("EOF"), "{msg}");

    let err = Event::decode(&set, b"[1, 2]").unwrap_err();
    assert!(
        err.to_string().starts_with("the event is not valid"),
        "{err}"
    );
}

#[test]
fn missing_object_record_id_or_record_is_named() {
    let set = project();
    for (missing, event) in [
        (
            "object",
            json!({"id": "e", "record_id": "D-1", "record": {}}),
        ),
        (
            "record_id",
            json!({"id": "e", "object": "deal", "record": {}}),
        ),
        (
            "record",
            json!({"id": "e", "object": "deal", "record_id": "D-1"}),
        ),
    ] {
        let msg = decode(&set, &event).unwrap_err().to_string();
        assert!(
            msg.contains(&format!("the event has no `{missing}`")),
            "{missing}: {msg}"
        );
    }
}

#[test]
fn a_record_that_is_not_an_object_is_named() {
    let set = project();
    let msg = decode(
        &set,
        &json!({"id": "e", "object": "deal", "record_id": "D-1", "record": ["Acme"]}),
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("`record`"), "{msg}");
    assert!(msg.contains("expected an object of field values"), "{msg}");
}

#[test]
fn record_ids_are_text_or_numbers_only() {
    let set = project();
    let ev = decode(
        &set,
        &json!({"id": 1001, "object": "deal", "record_id": 42, "record": {}}),
    )
    .unwrap();
    assert_eq!((ev.id.as_str(), ev.record_id.as_str()), ("1001", "42"));
    for bad_id in [
        J::Null,
        json!(""),
        json!({"id": 42}),
        json!([42]),
        json!(true),
    ] {
        let err = decode(
            &set,
            &json!({"id": "e", "object": "deal", "record_id": bad_id, "record": {}}),
        )
        .expect_err("a record id must name the record");
        assert!(err.to_string().contains("record_id"), "{bad_id}: {err}");
    }
}

// ---------------------------------------------------------------- snapshot

fn step(set: &WorkflowSet, state: State, event: J) -> (State, eval::Outcome) {
    let ev = decode(set, &event).expect("valid event");
    let mut state = state;
    let out = state
        .step(set, &ev, "2026-11-20T15:00:00Z".parse().unwrap())
        .expect("same version");
    (state, out)
}

#[test]
fn partial_records_merge_into_the_snapshot_across_events() {
    let set = project();
    let (state, _) = step(
        &set,
        State::default(),
        json!({"id": "1", "object": "deal", "record_id": "D-1",
        "record": {"name": "Acme", "stage": "Proposal", "amount": "12000"}}),
    );
    let (state, _) = step(
        &set,
        state,
        json!({"id": "2", "object": "deal", "record_id": "D-1",
        "record": {"start_date": 1_796_083_200_000_i64}}),
    );
    let (state, out) = step(
        &set,
        state,
        json!({"id": "3", "object": "deal", "record_id": "D-1",
        "record": {"stage": "Won"}}),
    );
    let h = &out.handoffs[0];
    assert_eq!(h.status, OutcomeStatus::Proceeded);
    assert!(
        matches!(&h.plans()[..], [PlannedAction::Notify { message, .. }]
        if message == "Acme won, starts 2026-12-01.")
    );
    let snap = &state.records["deal/D-1"].snapshot;
    assert_eq!(snap["name"], json!("Acme"));
    // Money is kept as the text of its exact value.
    assert_eq!(snap["amount"], json!("12000.00"));
    assert_eq!(snap["start_date"], json!("2026-12-01"));
    assert_eq!(snap["stage"], json!("Won"));
}

#[test]
fn null_in_a_later_event_clears_the_snapshot_field() {
    let set = project();
    let (state, _) = step(
        &set,
        State::default(),
        json!({"id": "1", "object": "deal", "record_id": "D-1",
        "record": {"name": "Acme", "stage": "Proposal", "start_date": "2026-12-01"}}),
    );
    let (_, out) = step(
        &set,
        state,
        json!({"id": "2", "object": "deal", "record_id": "D-1",
        "record": {"stage": "Won", "start_date": null}}),
    );
    assert_eq!(out.handoffs[0].status, OutcomeStatus::Paused);
    assert_eq!(out.handoffs[0].missing, ["start_date"]);
}

#[test]
fn previous_overrides_the_snapshot_for_before_values() {
    let set = project();
    // The engine last saw the deal as Won (the CRM's earlier "back to
    // Proposal" event never arrived); this event says it was Proposal.
    let (state, _) = step(
        &set,
        State::default(),
        json!({"id": "1", "object": "deal", "record_id": "D-1",
        "record": {"name": "Acme", "stage": "Won"}, "previous": {"stage": "Won"}}),
    );
    let won_again = json!({"id": "2", "object": "deal", "record_id": "D-1",
        "record": {"stage": "Won", "start_date": "2026-12-01"}, "previous": {"stage": "Proposal"}});
    let (_, out) = step(&set, state.clone(), won_again);
    assert_eq!(out.handoffs[0].status, OutcomeStatus::Proceeded);
    assert!(out.handoffs[0].trace[0].contains(r#"was "Proposal", is "Won" → fired"#));

    // Without `previous`, the snapshot supplies the before-value.
    let (_, out) = step(
        &set,
        state,
        json!({"id": "3", "object": "deal", "record_id": "D-1",
        "record": {"stage": "Won", "start_date": "2026-12-01"}}),
    );
    assert_eq!(out.handoffs[0].status, OutcomeStatus::NotTriggered);
}

#[test]
fn regression_previous_values_never_leak_into_the_current_record() {
    // `previous.name` describes the past; the current name is the
    // snapshot's. It used to be copied into the record the rules read.
    let set = project();
    let (state, _) = step(
        &set,
        State::default(),
        json!({"id": "1", "object": "deal", "record_id": "D-1",
        "record": {"name": "Acme Corp", "stage": "Proposal", "start_date": "2026-12-01"}}),
    );
    let (state, out) = step(
        &set,
        state,
        json!({"id": "2", "object": "deal", "record_id": "D-1",
        "record": {"stage": "Won"}, "previous": {"stage": "Proposal", "name": "Acme (old name)"}}),
    );
    assert!(
        matches!(&out.handoffs[0].plans()[..], [PlannedAction::Notify { message, .. }]
        if message == "Acme Corp won, starts 2026-12-01."),
        "{:?}",
        out.handoffs[0].actions
    );
    assert_eq!(
        state.records["deal/D-1"].snapshot["name"],
        json!("Acme Corp")
    );
}

#[test]
fn an_event_that_fires_nothing_still_updates_the_snapshot() {
    let set = project();
    let (state, out) = step(
        &set,
        State::default(),
        json!({"id": "1", "object": "deal", "record_id": "D-9",
        "record": {"name": "Quiet"}}),
    );
    assert_eq!(out.handoffs.len(), 1);
    assert_eq!(out.handoffs[0].status, OutcomeStatus::NotTriggered);
    assert_eq!(state.records["deal/D-9"].snapshot["name"], json!("Quiet"));
}

#[test]
fn a_batch_of_events_decodes_in_order() {
    let set = project();
    let batch = json!([
        {"id": "1", "object": "deal", "record_id": "D-1", "record": {"stage": "Proposal"}},
        {"id": "2", "object": "deal", "record_id": "D-1", "record": {"stage": "Won"}}
    ]);
    let events = Event::decode_many(&set, batch.to_string().as_bytes()).unwrap();
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["1", "2"]);
    let single = Event::decode_many(
        &set,
        br#" {"id": "x", "object": "deal", "record_id": "D", "record": {}}"#,
    )
    .unwrap();
    assert_eq!(single.len(), 1);
}

/// Ids name records and retries: a number is kept exactly or refused, never
/// rounded (two ids of 23 digits once read as one float, one record), and
/// `occurred_at` that is not a time is a field error whatever its type.
#[test]
fn ids_are_whole_numbers_or_text_and_a_bad_occurred_at_is_a_field_error() {
    let set = project();
    let lenient =
        |text: &str| Event::decode_lenient(&set, text.as_bytes()).map_err(|e| e.to_string());
    let event = |id: &str, record_id: &str| {
        format!(r#"{{"id": {id}, "object": "deal", "record_id": {record_id}, "record": {{}}}}"#)
    };
    let e = lenient(&event("7", "42")).unwrap();
    assert_eq!((e.id.as_str(), e.record_id.as_str()), ("7", "42"));
    assert_eq!(lenient(&event("-3", "-42")).unwrap().record_id, "-42");
    for (record_id, why) in [
        (
            "12345678901234567890123",
            "a number id must be a whole number",
        ),
        ("1.0", "a number id must be a whole number"),
        ("1e2", "a number id must be a whole number"),
        (r#""D-1\u0000""#, "has a NUL character"),
    ] {
        let err = lenient(&event("\"e\"", record_id)).unwrap_err();
        assert!(err.contains(why), "{record_id}: {err}");
    }
    for id in ["true", r#"{"a": 1}"#, "[1]", "2.5"] {
        let err = lenient(&event(id, "\"D-1\"")).unwrap_err();
        assert!(err.contains("`id` is"), "{id}: {err}");
    }
    assert_eq!(lenient(&event("null", "\"D-1\"")).unwrap().id, "");
    // Epoch milliseconds, as date-time fields take them; anything else
    // that is not a time is a field error.
    let e = lenient(
        r#"{"id": "e", "object": "deal", "record_id": "D-1", "occurred_at": 1764547200000, "record": {}}"#,
    )
    .unwrap();
    assert_eq!(e.occurred_at, Some("2025-12-01T00:00:00Z".parse().unwrap()));
    let e = lenient(
        r#"{"id": "e", "object": "deal", "record_id": "D-1", "occurred_at": true, "record": {}}"#,
    )
    .unwrap();
    assert_eq!(e.occurred_at, None);
    assert_eq!(e.field_errors[0].field, "occurred_at");
    assert_eq!(e.field_errors[0].value, "true");
    // Control characters other than NUL stay part of an id, as before.
    assert_eq!(
        lenient(&event("\"e\"", r#""D-1\t""#)).unwrap().record_id,
        "D-1\t"
    );
}

/// A field given twice in one object is named (JSON readers differ on
/// which value counts; the last one is taken), so a dry run refuses it and
/// a server records it as a field error.
#[test]
fn a_field_given_twice_is_a_field_error_and_the_last_value_counts() {
    let set = project();
    let body = r#"{"id": "e", "object": "deal", "record_id": "D-1",
                   "record": {"name": "First", "name": "Second"}}"#;
    let e = Event::decode_lenient(&set, body.as_bytes()).unwrap();
    let slot = set.object("deal").unwrap().slot("name").unwrap();
    assert_eq!(e.record[slot], Some(text("Second")));
    assert_eq!(e.field_errors.len(), 1, "{:?}", e.field_errors);
    assert_eq!(e.field_errors[0].field, "record.name");
    assert!(e.field_errors[0].expected.contains("twice"));
    assert!(matches!(
        Event::decode(&set, body.as_bytes()),
        Err(EventError::Fields(_))
    ));
}
