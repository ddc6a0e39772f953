//! Due dates: business days and hours across weekends, holidays and DST
//! changes, plain days and hours, other timezones, a 24-hour working day,
//! and calendars that can never reach a working day. Fixtures:
//! `tests/fixtures/eval/calendar_*`.

mod common;

use common::ts;
use handoff::compile::{Calendar, WorkflowSet};
use handoff::eval::{Event, PlannedAction, State};
use handoff::syntax::TimeUnit;
use handoff::value::Duration;

fn project(name: &str) -> WorkflowSet {
    common::fixture_set(name)
}

fn business(amount: f64, unit: TimeUnit) -> Duration {
    Duration {
        amount,
        business: true,
        unit,
    }
}

fn plain(amount: f64, unit: TimeUnit) -> Duration {
    Duration {
        amount,
        business: false,
        unit,
    }
}

/// `now + d` on the calendar, written in its timezone as RFC 3339 (the way
/// task due dates read), e.g. `2026-11-24T17:00:00-05:00`.
#[track_caller]
fn due(cal: &Calendar, now: &str, d: Duration) -> String {
    let t = cal
        .add(ts(now), &d)
        .unwrap_or_else(|| panic!("{now} + {d:?} has a due date"));
    let local = t.to_zoned(cal.timezone().clone()).to_string();
    local.split('[').next().unwrap().to_string()
}

/// Runs the fixture's handoff at `now` and returns each task's due date by
/// title.
fn task_dues(
    set: &WorkflowSet,
    object: &str,
    field: &str,
    value: &str,
    now: &str,
) -> Vec<(String, String)> {
    let json = serde_json::json!({"id": "e1", "object": object, "record_id": "R-1",
        "record": {"subject": "Outage", field: value}});
    let event = Event::decode(set, json.to_string().as_bytes()).unwrap();
    let out = State::default()
        .step(set, &event, ts(now))
        .expect("same version");
    out.handoffs[0]
        .plans()
        .into_iter()
        .filter_map(|a| match a {
            PlannedAction::Task { title, due, .. } => Some((title.clone(), due.clone()?)),
            _ => None,
        })
        .collect()
}

use TimeUnit::{Days, Hours, Minutes, Weeks};

// ---------------------------------------------------------------- business days

#[test]
fn business_days_skip_the_weekend_and_end_at_the_close() {
    let ny = project("calendar_ny");
    let cal = ny.calendar();
    // Friday 10:00 → Tuesday 17:00.
    assert_eq!(
        due(cal, "2026-11-20T15:00:00Z", business(2.0, Days)),
        "2026-11-24T17:00:00-05:00"
    );
    // Friday after the close counts the same: Monday is the first day after.
    assert_eq!(
        due(cal, "2026-11-20T23:30:00Z", business(1.0, Days)),
        "2026-11-23T17:00:00-05:00"
    );
    // From Saturday, one business day is Monday's close.
    assert_eq!(
        due(cal, "2026-11-21T15:00:00Z", business(1.0, Days)),
        "2026-11-23T17:00:00-05:00"
    );
    // A business week is five working days.
    assert_eq!(
        due(cal, "2026-11-16T15:00:00Z", business(1.0, Weeks)),
        "2026-11-23T17:00:00-05:00"
    );
}

#[test]
fn business_days_skip_holidays() {
    let ny = project("calendar_ny");
    let cal = ny.calendar();
    // Wednesday before Thanksgiving (Thursday 2026-11-26): Friday.
    assert_eq!(
        due(cal, "2026-11-25T15:00:00Z", business(1.0, Days)),
        "2026-11-27T17:00:00-05:00"
    );
    // Wednesday 2026-12-23: Thursday 24th, then Christmas Friday and the
    // weekend, then Monday 28th.
    assert_eq!(
        due(cal, "2026-12-23T15:00:00Z", business(2.0, Days)),
        "2026-12-28T17:00:00-05:00"
    );
    // Across New Year's Day (Friday 2027-01-01).
    assert_eq!(
        due(cal, "2026-12-31T15:00:00Z", business(1.0, Days)),
        "2027-01-04T17:00:00-05:00"
    );
}

#[test]
fn business_days_across_the_fall_back_end_at_17_00_standard_time() {
    let ny = project("calendar_ny");
    let cal = ny.calendar();
    // Friday 2026-10-30 10:00 EDT (UTC-4). Clocks fall back on Sunday
    // 2026-11-01; Monday's close is 17:00 EST (UTC-5), 22:00 UTC.
    assert_eq!(
        due(cal, "2026-10-30T14:00:00Z", business(1.0, Days)),
        "2026-11-02T17:00:00-05:00"
    );
    assert_eq!(
        cal.add(ts("2026-10-30T14:00:00Z"), &business(1.0, Days)),
        Some(ts("2026-11-02T22:00:00Z"))
    );
}

#[test]
fn business_days_across_the_spring_forward_end_at_17_00_daylight_time() {
    let ny = project("calendar_ny");
    let cal = ny.calendar();
    // Friday 2027-03-12 10:00 EST (UTC-5). Clocks spring forward on Sunday
    // 2027-03-14; Monday's close is 17:00 EDT (UTC-4), 21:00 UTC.
    assert_eq!(
        due(cal, "2027-03-12T15:00:00Z", business(1.0, Days)),
        "2027-03-15T17:00:00-04:00"
    );
    assert_eq!(
        cal.add(ts("2027-03-12T15:00:00Z"), &business(1.0, Days)),
        Some(ts("2027-03-15T21:00:00Z"))
    );
}

// ---------------------------------------------------------------- business hours

#[test]
fn business_hours_run_over_night_and_over_the_weekend() {
    let ny = project("calendar_ny");
    let cal = ny.calendar();
    // Friday 16:00 + 4 h: one hour on Friday, three on Monday.
    assert_eq!(
        due(cal, "2026-11-20T21:00:00Z", business(4.0, Hours)),
        "2026-11-23T12:00:00-05:00"
    );
    // Tuesday 15:00 + 10 h: two on Tuesday, eight on Wednesday, done at the close.
    assert_eq!(
        due(cal, "2026-11-17T20:00:00Z", business(10.0, Hours)),
        "2026-11-18T17:00:00-05:00"
    );
    // Tuesday 15:00 + 11 h: spills over into Thursday.
    assert_eq!(
        due(cal, "2026-11-17T20:00:00Z", business(11.0, Hours)),
        "2026-11-19T10:00:00-05:00"
    );
    // Before opening: counting starts at 9:00.
    assert_eq!(
        due(cal, "2026-11-16T12:00:00Z", business(1.0, Hours)),
        "2026-11-16T10:00:00-05:00"
    );
    // After the close: counting starts the next morning.
    assert_eq!(
        due(cal, "2026-11-17T23:00:00Z", business(30.0, Minutes)),
        "2026-11-18T09:30:00-05:00"
    );
    // On Saturday: counting starts on Monday.
    assert_eq!(
        due(cal, "2026-11-21T15:00:00Z", business(1.0, Hours)),
        "2026-11-23T10:00:00-05:00"
    );
    // Across Thanksgiving: Wednesday 16:00 + 2 h ends Friday 10:00.
    assert_eq!(
        due(cal, "2026-11-25T21:00:00Z", business(2.0, Hours)),
        "2026-11-27T10:00:00-05:00"
    );
}

#[test]
fn business_hours_count_working_time_to_the_second() {
    let ny = project("calendar_ny");
    let cal = ny.calendar();
    // 16:30:45 + 1 h: 29 min 15 s on Tuesday, 30 min 45 s on Wednesday.
    assert_eq!(
        due(cal, "2026-11-17T21:30:45Z", business(1.0, Hours)),
        "2026-11-18T09:30:45-05:00"
    );
    // Half a minute before the close, one minute runs into the next day.
    assert_eq!(
        due(cal, "2026-11-17T21:59:30Z", business(1.0, Minutes)),
        "2026-11-18T09:00:30-05:00"
    );
}

#[test]
fn business_hours_across_the_fall_back_weekend() {
    let ny = project("calendar_ny");
    let cal = ny.calendar();
    // Friday 2026-10-30 15:00 EDT + 4 h → Monday 11:00 EST.
    assert_eq!(
        due(cal, "2026-10-30T19:00:00Z", business(4.0, Hours)),
        "2026-11-02T11:00:00-05:00"
    );
    // Friday 2027-03-12 15:00 EST + 4 h → Monday 11:00 EDT.
    assert_eq!(
        due(cal, "2027-03-12T20:00:00Z", business(4.0, Hours)),
        "2027-03-15T11:00:00-04:00"
    );
}

#[test]
fn business_time_can_be_counted_backwards() {
    // `now - 4 business hours`, `today - 2 business days` in conditions.
    let ny = project("calendar_ny");
    let cal = ny.calendar();
    // Monday 11:00 - 4 h: two hours on Monday, two on Friday.
    assert_eq!(
        due(cal, "2026-11-23T16:00:00Z", business(-4.0, Hours)),
        "2026-11-20T15:00:00-05:00"
    );
    // From Saturday, counting starts at Friday's close.
    assert_eq!(
        due(cal, "2026-11-21T15:00:00Z", business(-1.0, Hours)),
        "2026-11-20T16:00:00-05:00"
    );
    // Inside the day: plain working time.
    assert_eq!(
        due(cal, "2026-11-18T18:00:00Z", business(-30.0, Minutes)),
        "2026-11-18T12:30:00-05:00"
    );
    // Days: the close of the Nth working day before today, skipping
    // weekends and Thanksgiving.
    assert_eq!(
        due(cal, "2026-11-23T15:00:00Z", business(-1.0, Days)),
        "2026-11-20T17:00:00-05:00"
    );
    assert_eq!(
        due(cal, "2026-11-30T15:00:00Z", business(-2.0, Days)),
        "2026-11-25T17:00:00-05:00"
    );
    // Across the fall-back weekend, in the other direction.
    assert_eq!(
        due(cal, "2026-11-02T16:00:00Z", business(-4.0, Hours)),
        "2026-10-30T15:00:00-04:00"
    );
    // And round trip: four business hours back and forth.
    let t = ts("2026-11-23T16:00:00Z");
    let back = cal.add(t, &business(-4.0, Hours)).unwrap();
    assert_eq!(cal.add(back, &business(4.0, Hours)), Some(t));
}

// ---------------------------------------------------------------- plain time

#[test]
fn plain_days_keep_the_local_clock_time_across_dst() {
    let ny = project("calendar_ny");
    let cal = ny.calendar();
    // Friday 10:00 EDT + 2 days = Sunday 10:00 EST: 49 hours later.
    assert_eq!(
        due(cal, "2026-10-30T14:00:00Z", plain(2.0, Days)),
        "2026-11-01T10:00:00-05:00"
    );
    // Friday 10:00 EST + 2 days = Sunday 10:00 EDT: 47 hours later.
    assert_eq!(
        due(cal, "2027-03-12T15:00:00Z", plain(2.0, Days)),
        "2027-03-14T10:00:00-04:00"
    );
    // A week keeps the clock time too.
    assert_eq!(
        due(cal, "2027-03-10T15:00:00Z", plain(1.0, Weeks)),
        "2027-03-17T10:00:00-04:00"
    );
    // A clock time the spring-forward skips moves on to the next hour.
    assert_eq!(
        due(cal, "2027-03-13T07:30:00Z", plain(1.0, Days)),
        "2027-03-14T03:30:00-04:00"
    );
}

#[test]
fn plain_hours_are_exact_elapsed_time_across_dst() {
    let ny = project("calendar_ny");
    let cal = ny.calendar();
    // Saturday 12:00 EDT + 24 hours = Sunday 11:00 EST (exactly 24 h later).
    assert_eq!(
        due(cal, "2026-10-31T16:00:00Z", plain(24.0, Hours)),
        "2026-11-01T11:00:00-05:00"
    );
    assert_eq!(
        cal.add(ts("2026-10-31T16:00:00Z"), &plain(24.0, Hours)),
        Some(ts("2026-11-01T16:00:00Z"))
    );
    // ...while one day is Sunday 12:00 EST, 25 hours later.
    assert_eq!(
        due(cal, "2026-10-31T16:00:00Z", plain(1.0, Days)),
        "2026-11-01T12:00:00-05:00"
    );
    // Saturday 12:00 EST + 24 hours = Sunday 13:00 EDT.
    assert_eq!(
        due(cal, "2027-03-13T17:00:00Z", plain(24.0, Hours)),
        "2027-03-14T13:00:00-04:00"
    );
    assert_eq!(
        due(cal, "2027-03-13T17:00:00Z", plain(90.0, Minutes)),
        "2027-03-13T13:30:00-05:00"
    );
}

#[test]
fn task_due_dates_use_the_calendar_end_to_end() {
    let ny = project("calendar_ny");
    // Friday 2027-03-12, 15:00 EST, before the spring-forward weekend.
    let dues = task_dues(&ny, "deal", "stage", "Won", "2027-03-12T20:00:00Z");
    let want = [
        ("2 business days", "2027-03-16T17:00:00-04:00"),
        ("3 days", "2027-03-15T15:00:00-04:00"),
        ("4 business hours", "2027-03-15T11:00:00-04:00"),
        ("5 hours", "2027-03-12T20:00:00-05:00"),
        ("1 business week", "2027-03-19T17:00:00-04:00"),
        ("90 business minutes", "2027-03-12T16:30:00-05:00"),
        ("2 weeks", "2027-03-26T15:00:00-04:00"),
    ];
    let got: Vec<(&str, &str)> = dues.iter().map(|(t, d)| (t.as_str(), d.as_str())).collect();
    assert_eq!(got, want);
}

// ---------------------------------------------------------------- other calendars

#[test]
fn berlin_counts_its_own_hours_and_its_own_dst_dates() {
    let berlin = project("calendar_berlin");
    let cal = berlin.calendar();
    // Friday 2026-10-23 15:00 CEST (UTC+2). Berlin falls back on
    // 2026-10-25, a week before New York: Monday closes 16:30 CET (UTC+1).
    assert_eq!(
        due(cal, "2026-10-23T13:00:00Z", business(1.0, Days)),
        "2026-10-26T16:30:00+01:00"
    );
    // Friday 16:00 CEST + 1 business hour: 30 min Friday, 30 min Monday from 8:00.
    assert_eq!(
        due(cal, "2026-10-23T14:00:00Z", business(1.0, Hours)),
        "2026-10-26T08:30:00+01:00"
    );
    // Friday 2027-03-26 12:00 CET + 2 days = Sunday 12:00 CEST.
    assert_eq!(
        due(cal, "2027-03-26T11:00:00Z", plain(2.0, Days)),
        "2027-03-28T12:00:00+02:00"
    );
    // Christmas in Berlin: 24th, 25th and 26th off. Wednesday 23rd + 1 = Monday 28th.
    assert_eq!(
        due(cal, "2026-12-23T10:00:00Z", business(1.0, Days)),
        "2026-12-28T16:30:00+01:00"
    );

    let dues = task_dues(&berlin, "deal", "stage", "Won", "2026-10-23T14:00:00Z");
    assert_eq!(
        dues,
        [
            (
                "1 business day".to_string(),
                "2026-10-26T16:30:00+01:00".to_string()
            ),
            (
                "1 business hour".to_string(),
                "2026-10-26T08:30:00+01:00".to_string()
            ),
        ]
    );
}

#[test]
fn a_working_day_that_ends_at_24_00_runs_to_midnight() {
    let set = project("calendar_24h");
    let cal = set.calendar();
    // Friday 22:00 UTC + 4 h: two hours to midnight, two on Monday.
    assert_eq!(
        due(cal, "2026-11-20T22:00:00Z", business(4.0, Hours)),
        "2026-11-23T02:00:00+00:00"
    );
    // Thursday 20:00 + 4 h ends exactly at Friday 00:00, the close of Thursday.
    assert_eq!(
        due(cal, "2026-11-19T20:00:00Z", business(4.0, Hours)),
        "2026-11-20T00:00:00+00:00"
    );
    // One business day from Friday is the end of Monday.
    assert_eq!(
        due(cal, "2026-11-20T10:00:00Z", business(1.0, Days)),
        "2026-11-24T00:00:00+00:00"
    );

    let dues = task_dues(
        &set,
        "ticket",
        "status",
        "Escalated",
        "2026-11-20T22:00:00Z",
    );
    assert_eq!(
        dues,
        [
            (
                "Answer Outage".to_string(),
                "2026-11-23T02:00:00+00:00".to_string()
            ),
            (
                "Close Outage".to_string(),
                "2026-11-24T00:00:00+00:00".to_string()
            ),
        ]
    );
}

// ---------------------------------------------------------------- calendars that cannot work

fn calendar(workdays: Vec<handoff::syntax::Weekday>, holidays: Vec<jiff::civil::Date>) -> Calendar {
    Calendar::from_checked(&handoff::check::Calendar {
        workdays,
        day_start: 9 * 60,
        day_end: 17 * 60,
        timezone: "America/New_York".into(),
        holidays,
        loc: handoff::check::Loc::new(0, handoff::syntax::Span { start: 0, end: 0 }),
    })
}

#[test]
fn a_calendar_without_workdays_gives_no_due_date_and_never_loops() {
    let cal = calendar(vec![], vec![]);
    let now = ts("2026-11-20T15:00:00Z");
    for d in [
        business(1.0, Days),
        business(2.0, Weeks),
        business(4.0, Hours),
        business(30.0, Minutes),
        business(-1.0, Days),
        business(-4.0, Hours),
    ] {
        assert_eq!(cal.add(now, &d), None, "{d:?}");
    }
    // Plain time needs no working days.
    assert_eq!(
        cal.add(now, &plain(1.0, Days)),
        Some(ts("2026-11-21T15:00:00Z"))
    );
}

#[test]
fn a_calendar_whose_every_workday_is_a_holiday_gives_no_due_date() {
    // Sundays only, and every Sunday for the next 25 years is a holiday.
    let mut sundays = Vec::new();
    let mut d = jiff::civil::date(2026, 11, 22);
    while d.year() < 2052 {
        sundays.push(d);
        d = d.checked_add(jiff::Span::new().days(7)).unwrap();
    }
    let cal = calendar(vec![handoff::syntax::Weekday::Sunday], sundays);
    let now = ts("2026-11-20T15:00:00Z");
    assert_eq!(cal.add(now, &business(1.0, Days)), None);
    assert_eq!(cal.add(now, &business(1.0, Hours)), None);
}

#[test]
fn durations_past_the_calendars_range_give_no_moment_instead_of_panicking() {
    // The language takes numbers below 10^15; a year is ~3 * 10^7 seconds.
    let cal = calendar(
        vec![
            handoff::syntax::Weekday::Monday,
            handoff::syntax::Weekday::Friday,
        ],
        vec![],
    );
    let now = ts("2026-11-20T15:00:00Z");
    let huge = 999_999_999_999_999.0;
    for unit in [Days, Weeks, Hours, Minutes] {
        for d in [plain(huge, unit), plain(-huge, unit)] {
            assert_eq!(cal.add(now, &d), None, "{d:?}");
        }
        for d in [business(huge, unit), business(-huge, unit)] {
            assert_eq!(cal.add(now, &d), None, "{d:?}");
        }
    }
    // Far, but inside the calendar (which ends in 9999): 2,700 years.
    assert!(cal.add(now, &plain(1_000_000.0, Days)).is_some());
}

#[test]
fn a_task_whose_due_date_is_out_of_range_has_none_and_the_trace_says_why() {
    let set = common::set_from_text(
        r#"object deal {
  stage: one of "Open", "Won"
}
user founder = "f@example.com"
calendar {
  workdays monday to friday
  hours 9:00 to 17:00
  timezone "America/New_York"
}
handoff "Won" {
  when deal.stage becomes "Won"
  then {
    task "Far" for founder due in 52 business weeks
    task "Near" for founder due in 2 business days
  }
}
"#,
    );
    let event = serde_json::json!({
        "id": "e1", "object": "deal", "record_id": "D-1",
        "record": {"stage": "Won"}, "previous": {"stage": "Open"},
    });
    let event = handoff::eval::Event::decode(&set, event.to_string().as_bytes()).unwrap();
    let outcome = handoff::eval::State::default()
        // `check` refuses a due time past ten years (H005), so the end of
        // the calendar is reached from its last year instead.
        .step(&set, &event, ts("9999-06-01T15:00:00Z"))
        .expect("same version");
    let h = serde_json::to_value(&outcome.handoffs[0]).unwrap();
    assert_eq!(h["actions"][0]["title"], "Far");
    assert!(h["actions"][0].get("due").is_none(), "{h:#}");
    assert!(h["actions"][1]["due"].is_string(), "{h:#}");
    let trace: Vec<&str> = h["trace"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    assert!(
        trace.contains(
            &"task \"Far\": no due date: `due in 52 business weeks` finds no moment in the calendar (no working day ahead, or past the year 9999)"
        ),
        "{trace:#?}"
    );
}
