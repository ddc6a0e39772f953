//! Conditions as the engine decides them: every comparison shape the
//! compiler lowers to a direct field test (`deal.x > 5`, `deal.x is "A"`,
//! `is not`), the shapes it leaves to the general evaluator (constant on
//! the left, arithmetic, templates), absent values, `today` in the
//! calendar's timezone, and what counts as missing for `require`.
//!
//! Each condition is an exception of one handoff; an event fires it and the
//! test reads which exceptions were flagged.

mod common;

use std::collections::BTreeSet;

use handoff::compile::WorkflowSet;
use handoff::eval::{Event, OutcomeStatus, State};
use serde_json::{json, Value as J};

const OBJECT: &str = r#"
object deal {
  name:    text
  stage:   one of "Open", "Won"
  segment: one of "smb", "enterprise"
  amount:  money
  seats:   number
  custom:  yes/no
  start:   date
  at:      datetime
  notes:   text
  owner:   user
}

calendar {
  workdays monday to friday
  hours 9:00 to 17:00
  timezone "America/New_York"
}
"#;

/// A project whose handoff has one exception per `(name, condition)`.
fn project(conditions: &[(&str, &str)]) -> WorkflowSet {
    let mut src = String::from(OBJECT);
    src.push_str("\nhandoff \"Won\" {\n  when deal.stage becomes \"Won\"\n");
    for (name, cond) in conditions {
        src.push_str(&format!("  exception \"{name}\" when {cond}\n"));
    }
    src.push_str(
        "  on exception { notify deal.owner \"review\" }\n  then { notify deal.owner \"go\" }\n}\n",
    );
    common::set_from_text(&src)
}

/// The exceptions flagged when `record` is won at `now`.
fn flagged(set: &WorkflowSet, record: J, now: &str) -> BTreeSet<String> {
    let mut record = record;
    record["stage"] = "Won".into();
    let event = json!({
        "id": "e1", "object": "deal", "record_id": "D-1",
        "record": record, "previous": {"stage": "Open"},
    });
    let event = Event::decode(set, event.to_string().as_bytes()).expect("the event decodes");
    let outcome = State::default()
        .step(set, &event, now.parse().unwrap())
        .expect("same version");
    let h = &outcome.handoffs[0];
    assert!(
        matches!(h.status, OutcomeStatus::Review | OutcomeStatus::Proceeded),
        "{:?}",
        h.status
    );
    h.exceptions.iter().cloned().collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

const NOW: &str = "2026-11-18T15:00:00Z";

#[test]
fn field_against_constant_every_operator() {
    let conds = [
        ("eq", "deal.seats == 10"),
        ("ne", "deal.seats != 10"),
        ("lt", "deal.seats < 10"),
        ("le", "deal.seats <= 10"),
        ("gt", "deal.seats > 10"),
        ("ge", "deal.seats >= 10"),
        ("is", "deal.segment is \"enterprise\""),
        ("is not", "deal.segment is not \"enterprise\""),
        ("yes", "deal.custom is yes"),
        ("date", "deal.start > 2026-12-01"),
        ("mirrored lt", "10 < deal.seats"),
        ("mirrored ge", "10 >= deal.seats"),
    ];
    let set = project(&conds);
    let rec = |seats: f64| {
        json!({"name": "Acme", "seats": seats, "segment": "enterprise",
               "custom": true, "start": "2026-12-07"})
    };
    assert_eq!(
        flagged(&set, rec(10.0), NOW),
        names(&["eq", "le", "ge", "is", "yes", "date", "mirrored ge"])
    );
    assert_eq!(
        flagged(&set, rec(9.5), NOW),
        names(&["ne", "lt", "le", "is", "yes", "date", "mirrored ge"])
    );
    assert_eq!(
        flagged(&set, rec(11.0), NOW),
        names(&["ne", "gt", "ge", "is", "yes", "date", "mirrored lt"])
    );
}

#[test]
fn absent_fields_compare_false_except_not_equal() {
    let conds = [
        ("gt", "deal.amount > 0"),
        ("le", "deal.amount <= 0"),
        ("eq", "deal.amount == 0"),
        ("ne", "deal.amount != 0"),
        ("is not", "deal.segment is not \"smb\""),
        ("yes", "deal.custom is yes"),
        ("no", "deal.custom is no"),
    ];
    let set = project(&conds);
    assert_eq!(
        flagged(&set, json!({"name": "Acme"}), NOW),
        names(&["ne", "is not"])
    );
    // Null is absent too.
    assert_eq!(
        flagged(
            &set,
            json!({"name": "Acme", "amount": null, "custom": null}),
            NOW
        ),
        names(&["ne", "is not"])
    );
}

#[test]
fn constant_on_the_left_arithmetic_and_combinations_agree() {
    let conds = [
        ("left", "50000 < deal.amount"),
        ("right", "deal.amount > 50000"),
        ("sum", "deal.amount + 1 > 50001"),
        (
            "both",
            "deal.amount > 50000 and deal.segment is \"enterprise\"",
        ),
        (
            "either",
            "deal.amount > 90000 or deal.segment is \"enterprise\"",
        ),
        (
            "neither",
            "not (deal.amount > 90000 or deal.segment is \"smb\")",
        ),
        ("template", "deal.notes is \"{deal.name} ok\""),
        ("in", "deal.segment in [\"smb\", \"enterprise\"]"),
        ("contains", "deal.notes contains \"OK\""),
        ("in fields", "deal.notes in [deal.name, \"Acme ok\"]"),
    ];
    let set = project(&conds);
    let all: Vec<&str> = conds.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        flagged(
            &set,
            json!({"name": "Acme", "amount": 80000, "segment": "enterprise", "notes": "Acme ok"}),
            NOW
        ),
        names(&all)
    );
    assert_eq!(
        flagged(
            &set,
            json!({"name": "Acme", "amount": 100, "segment": "smb", "notes": "Acme"}),
            NOW
        ),
        names(&["in", "in fields"])
    );
}

#[test]
fn today_is_the_date_in_the_calendar_timezone() {
    // 03:00 UTC on the 19th is still the 18th in New York.
    let set = project(&[
        ("starts today", "deal.start == today"),
        ("starts within a week", "deal.start < today + 7 days"),
    ]);
    let rec = json!({"name": "Acme", "start": "2026-11-18"});
    assert_eq!(
        flagged(&set, rec.clone(), "2026-11-19T03:00:00Z"),
        names(&["starts today", "starts within a week"])
    );
    assert_eq!(
        flagged(&set, rec, "2026-11-19T06:00:00Z"),
        names(&["starts within a week"])
    );
}

#[test]
fn require_counts_whitespace_of_any_kind_as_missing() {
    let src = format!(
        "{OBJECT}\nhandoff \"Won\" {{\n  when deal.stage becomes \"Won\"\n  require notes\n  \
         if missing {{ notify deal.owner \"fill {{missing}}\" }}\n  then {{ notify deal.owner \"go\" }}\n}}\n"
    );
    let set = common::set_from_text(&src);
    let status = |notes: J| {
        let event = json!({
            "id": "e1", "object": "deal", "record_id": "D-1",
            "record": {"name": "Acme", "stage": "Won", "notes": notes},
            "previous": {"stage": "Open"},
        });
        let event = Event::decode(&set, event.to_string().as_bytes()).unwrap();
        let o = State::default()
            .step(&set, &event, NOW.parse().unwrap())
            .expect("same version");
        o.handoffs[0].status
    };
    for blank in [
        J::Null,
        json!(""),
        json!(" \t\r\n"),
        json!("\u{a0}\u{2003}\u{3000}"),
    ] {
        assert_eq!(status(blank.clone()), OutcomeStatus::Paused, "{blank}");
    }
    for present in [
        json!("x"),
        json!("  x"),
        json!("\u{a0}é"),
        json!("é"),
        json!("\u{2003}."),
    ] {
        assert_eq!(
            status(present.clone()),
            OutcomeStatus::Proceeded,
            "{present}"
        );
    }
}

#[test]
fn date_arithmetic_out_of_range_has_no_value() {
    let n = "999999999999999";
    let set = project(&[
        ("days", &format!("deal.start < today + {n} days")),
        (
            "business days",
            &format!("deal.start < today - {n} business days"),
        ),
        ("weeks", &format!("deal.start > today - {n} weeks")),
        ("unset", &format!("(deal.start + {n} days) is missing")),
    ]);
    assert_eq!(
        flagged(&set, json!({"name": "Acme", "start": "2026-12-01"}), NOW),
        names(&["unset"])
    );
}

#[test]
fn a_datetime_meets_a_date_on_its_day_in_the_calendar_timezone() {
    // 02:00 UTC on the 19th is 21:00 on the 18th in New York.
    let set = project(&[
        ("on the 18th", "deal.at == 2026-11-18"),
        ("on the 19th", "deal.at == 2026-11-19"),
        ("before the 19th", "deal.at < 2026-11-19"),
        ("today", "deal.at == today"),
        ("in the list", "deal.at in [2026-11-18]"),
    ]);
    let rec = json!({"name": "Acme", "at": "2026-11-19T02:00:00Z"});
    assert_eq!(
        flagged(&set, rec, "2026-11-19T03:00:00Z"),
        names(&["on the 18th", "before the 19th", "today", "in the list"])
    );
}

#[test]
fn a_date_and_a_datetime_subtract_by_days_and_a_duration_adds_either_way() {
    // 02:00 UTC on the 19th is 21:00 on the 18th in New York: 17 days after
    // the 1st, read on its day as comparisons read it.
    let set = project(&[
        ("datetime minus date", "deal.at - deal.start == 17 days"),
        ("date minus datetime", "deal.start - deal.at == -17 days"),
        ("now minus date", "now - 2026-11-01 > 16 days"),
        ("duration first", "3 days + deal.start == 2026-11-04"),
        ("duration first, datetime", "1 hours + deal.at > deal.at"),
    ]);
    let rec = json!({"name": "Acme", "start": "2026-11-01", "at": "2026-11-19T02:00:00Z"});
    assert_eq!(
        flagged(&set, rec, NOW),
        names(&[
            "datetime minus date",
            "date minus datetime",
            "now minus date",
            "duration first",
            "duration first, datetime"
        ])
    );
}
