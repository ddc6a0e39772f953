//! Every signal on hand-built histories with known answers (acceptance 1),
//! and every finding with a history that must trigger it and one that must
//! not (acceptance 2). The calendar is the default one (UTC, Monday to
//! Friday, 9:00 to 17:00) unless a test says otherwise.

use jiff::Timestamp;

use super::*;
use crate::compile::Calendar;

const DEALS: &str = "Sales to Delivery";
const LEADS: &str = "Marketing to Sales";

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Monday 2026-11-02 10:00 UTC plus `minutes`.
fn monday(minutes: i64) -> Timestamp {
    at("2026-11-02T10:00:00Z") + jiff::SignedDuration::from_mins(minutes)
}

fn plus_hours(t: Timestamp, h: i64) -> Timestamp {
    t + jiff::SignedDuration::from_hours(h)
}

/// A handoff that went through `steps` (status, when), in order.
fn run(id: &str, workflow: &str, steps: &[(&str, Timestamp)]) -> HandoffFacts {
    let mut history = Vec::new();
    let mut prev: Option<String> = None;
    for (to, at) in steps {
        history.push(Transition {
            from: prev.clone(),
            to: to.to_string(),
            at: *at,
            by: None,
            exceptions: Vec::new(),
        });
        prev = Some(to.to_string());
    }
    HandoffFacts {
        id: id.into(),
        workflow: workflow.into(),
        object: if workflow == LEADS { "lead" } else { "deal" }.into(),
        record_id: format!("R-{id}"),
        status: prev.unwrap(),
        triggered_at: steps[0].1,
        done_at: steps.iter().find(|s| s.0 == "done").map(|s| s.1),
        missing_at_trigger: Vec::new(),
        history,
        notes: Vec::new(),
        next_owner: None,
    }
}

/// `n` healthy handoffs: complete, proceeded at once, done two hours later.
fn healthy(workflow: &str, n: usize) -> Vec<HandoffFacts> {
    (0..n)
        .map(|i| {
            let t = monday(i as i64 * 10);
            run(
                &format!("{workflow}-{i}"),
                workflow,
                &[("proceeded", t), ("done", plus_hours(t, 2))],
            )
        })
        .collect()
}

fn paused(mut h: HandoffFacts, missing: &[&str], wait_hours: i64) -> HandoffFacts {
    let t = h.triggered_at;
    let done = plus_hours(t, wait_hours + 2);
    h = run(
        &h.id,
        &h.workflow,
        &[
            ("paused", t),
            ("proceeded", plus_hours(t, wait_hours)),
            ("done", done),
        ],
    );
    h.missing_at_trigger = missing.iter().map(|s| s.to_string()).collect();
    h
}

fn reviewed(h: HandoffFacts, flag: &str, review_hours: i64) -> HandoffFacts {
    let t = h.triggered_at;
    let mut h = run(
        &h.id,
        &h.workflow,
        &[
            ("review", t),
            ("proceeded", plus_hours(t, review_hours)),
            ("done", plus_hours(t, review_hours + 1)),
        ],
    );
    h.history[0].exceptions = vec![flag.to_string()];
    h.history[1].by = Some("maya@example.com".into());
    h
}

fn note(kind: &str, text: &str, at: Timestamp) -> NoteFact {
    NoteFact {
        kind: kind.into(),
        who: "sam@example.com".into(),
        at,
        text: text.into(),
    }
}

fn window() -> Window {
    Window {
        since: at("2026-10-26T00:00:00Z"),
        now: at("2026-11-20T12:00:00Z"),
        workflow: None,
    }
}

fn report_of(rows: &HealthRows) -> HealthReport {
    compute(rows, &Calendar::default(), &Targets::default(), &window())
}

fn rows(handoffs: Vec<HandoffFacts>) -> HealthRows {
    HealthRows {
        handoffs,
        ..HealthRows::default()
    }
}

fn workflow<'a>(r: &'a HealthReport, name: &str) -> &'a WorkflowHealth {
    r.workflows.iter().find(|w| w.workflow == name).unwrap()
}

fn codes(rows: &HealthRows) -> Vec<&'static str> {
    report_of(rows).findings.iter().map(|f| f.code).collect()
}

fn new_york_with_thanksgiving() -> Calendar {
    let src = crate::diagnostic::SourceFile::new(
        "c.handoff",
        "object deal {\n  name: text\n}\ncalendar {\n  timezone \"America/New_York\"\n  holidays 2026-11-26\n}\n",
    );
    let (set, _) = crate::compile::load_sources(&[src]).unwrap();
    set.calendar().clone()
}

// --- signals -------------------------------------------------------------

#[test]
fn lead_time_median_and_p90_with_an_open_handoff() {
    let mut hs = Vec::new();
    for (i, hours) in [1, 2, 3, 4, 10].iter().enumerate() {
        let t = monday(0);
        hs.push(run(
            &format!("h{i}"),
            DEALS,
            &[("proceeded", t), ("done", plus_hours(t, *hours))],
        ));
    }
    // Still open: counted as started and open, not in the lead time.
    hs.push(run(
        "open",
        DEALS,
        &[("proceeded", at("2026-11-18T10:00:00Z"))],
    ));
    let r = report_of(&rows(hs));
    let t = &workflow(&r, DEALS).totals;
    assert_eq!((t.started, t.done, t.open), (6, 5, 1));
    let lead = t.lead_time_hours.unwrap();
    assert_eq!((lead.median, lead.p90, lead.count), (3.0, 10.0, 5));
    // Monday 10:00 + 10 h is 20:00: only 7 working hours (to 17:00).
    let business = t.lead_time_business_hours.unwrap();
    assert_eq!((business.median, business.p90), (3.0, 7.0));
    // The open one is not stuck yet (2 days old).
    assert!(workflow(&r, DEALS).stuck.is_empty());
}

#[test]
fn business_lead_time_skips_a_holiday_and_the_weekend() {
    // Wednesday before Thanksgiving 15:00 New York → Monday 11:00.
    let t = at("2026-11-25T20:00:00Z");
    let h = run(
        "h1",
        DEALS,
        &[("proceeded", t), ("done", at("2026-11-30T16:00:00Z"))],
    );
    let w = Window {
        since: at("2026-11-01T00:00:00Z"),
        now: at("2026-12-04T00:00:00Z"),
        workflow: None,
    };
    let r = compute(
        &rows(vec![h]),
        &new_york_with_thanksgiving(),
        &Targets::default(),
        &w,
    );
    let t = &workflow(&r, DEALS).totals;
    assert_eq!(t.lead_time_hours.unwrap().median, 116.0);
    // 2 h Wednesday + 0 Thursday (holiday) + 8 h Friday + 2 h Monday.
    assert_eq!(t.lead_time_business_hours.unwrap().median, 12.0);
    assert_eq!(r.timezone, "America/New_York");
}

#[test]
fn weeks_across_the_year_boundary() {
    let hs = vec![
        run("a", DEALS, &[("proceeded", at("2026-12-28T10:00:00Z"))]),
        run("b", DEALS, &[("proceeded", at("2027-01-01T10:00:00Z"))]),
        run("c", DEALS, &[("proceeded", at("2027-01-04T10:00:00Z"))]),
    ];
    let w = Window {
        since: at("2026-12-01T00:00:00Z"),
        now: at("2027-01-05T00:00:00Z"),
        workflow: None,
    };
    let r = compute(&rows(hs), &Calendar::default(), &Targets::default(), &w);
    let weeks: Vec<(&str, u32)> = workflow(&r, DEALS)
        .weeks
        .iter()
        .map(|w| (w.week.as_str(), w.signals.started))
        .collect();
    assert_eq!(weeks, [("2026-W53", 2), ("2027-W01", 1)]);
    assert_eq!(
        workflow(&r, DEALS).weeks[0].monday.to_string(),
        "2026-12-28"
    );
}

#[test]
fn a_paused_handoff_that_resumed_counts_its_wait_and_its_missing_fields() {
    let mut hs = healthy(DEALS, 3);
    // Paused Monday 10:00 for 23 hours (to Tuesday 9:00): 7 working hours.
    hs.push(paused(
        run("p1", DEALS, &[("proceeded", monday(0))]),
        &["risk_notes", "start_date"],
        23,
    ));
    // Still paused at the report's now: waits until now.
    let mut still = run("p2", DEALS, &[("paused", at("2026-11-19T16:00:00Z"))]);
    still.missing_at_trigger = vec!["risk_notes".into()];
    hs.push(still);
    let r = report_of(&rows(hs));
    let w = workflow(&r, DEALS);
    assert_eq!(w.totals.started, 5);
    assert_eq!(w.totals.complete, 3);
    assert_eq!(w.totals.completeness, Some(0.6));
    assert_eq!(w.totals.paused, 2);
    // 7 h, and Thursday 16:00 → Friday 12:00 is 1 + 3 = 4 h: median 5.5.
    let wait = w.totals.paused_wait_business_hours.unwrap();
    assert_eq!((wait.median, wait.p90), (5.5, 7.0));
    assert_eq!(w.missing_fields[0].name, "risk_notes");
    assert_eq!(
        (w.missing_fields[0].count, w.missing_fields[0].share),
        (2, 1.0)
    );
    assert_eq!(
        (w.missing_fields[1].name.as_str(), w.missing_fields[1].share),
        ("start_date", 0.5)
    );
    // The resumed one proceeded; the paused one did not.
    assert_eq!(w.totals.proceeded, 4);
}

#[test]
fn an_approval_and_a_rejection_in_review() {
    let mut hs = healthy(DEALS, 2);
    hs.push(reviewed(
        run("r1", DEALS, &[("proceeded", monday(0))]),
        "Custom Scope",
        4,
    ));
    let mut rejected = run("r2", DEALS, &[("review", monday(30))]);
    rejected.history[0].exceptions = vec!["Needs Founder Review".into(), "Custom Scope".into()];
    rejected
        .notes
        .push(note("reject", "scope unclear", monday(90)));
    hs.push(rejected);
    let r = report_of(&rows(hs));
    let w = workflow(&r, DEALS);
    assert_eq!(w.totals.review, 2);
    assert_eq!(w.totals.exception_rate, Some(0.5));
    assert_eq!((w.totals.approved, w.totals.rejected), (1, 1));
    let flags: Vec<(&str, u32)> = w.flags.iter().map(|f| (f.name.as_str(), f.count)).collect();
    assert_eq!(flags, [("Custom Scope", 2), ("Needs Founder Review", 1)]);
    assert_eq!(w.rejection_reasons[0].name, "scope unclear");
    // 4 working hours approved; the rejected one is still in review from
    // Monday 10:30 to Friday 20th 12:00: 14 working days' worth is
    // 6.5 + 8*13 + 3 = 113.5 h.
    let review = w.totals.review_business_hours.unwrap();
    assert_eq!(review.median, (4.0 + 113.5) / 2.0);
}

#[test]
fn escalations_count_against_proceeded_handoffs() {
    let hs = healthy(DEALS, 4);
    let esc = EscalationFact {
        handoff_id: hs[0].id.clone(),
        at: monday(600),
        source: "rule".into(),
        who: "rule".into(),
        reason: "deal.delivery_blocked is yes".into(),
    };
    // A handoff still paused (it never reached the normal path) that a
    // person escalated anyway, with no reason.
    let paused = run("p", DEALS, &[("paused", monday(60))]);
    let blank = EscalationFact {
        handoff_id: paused.id.clone(),
        reason: "  ".into(),
        ..esc.clone()
    };
    let mut all = hs;
    all.push(paused);
    let mut r = rows(all);
    r.escalations = vec![esc.clone(), esc, blank];
    let rep = report_of(&r);
    let w = workflow(&rep, DEALS);
    assert_eq!((w.totals.escalated, w.totals.proceeded), (1, 4));
    assert_eq!(w.totals.escalation_rate, Some(0.25));
    // The reason once for its handoff (escalated twice), as a share of
    // the handoffs that proceeded; the blank one is not a reason.
    let reasons: Vec<(&str, u32, f64)> = w
        .escalation_reasons
        .iter()
        .map(|r| (r.name.as_str(), r.count, r.share))
        .collect();
    assert_eq!(reasons, [("deal.delivery_blocked is yes", 1, 0.25)]);
}

#[test]
fn stuck_handoffs_oldest_first_with_their_next_owner() {
    let mut a = run("a", DEALS, &[("review", at("2026-11-05T10:00:00Z"))]);
    a.next_owner = Some("maya@example.com".into());
    let b = run("b", DEALS, &[("proceeded", at("2026-10-01T10:00:00Z"))]);
    let c = run("c", DEALS, &[("proceeded", at("2026-11-18T10:00:00Z"))]);
    let r = report_of(&rows(vec![a, b, c]));
    let stuck: Vec<(&str, Option<&str>)> = workflow(&r, DEALS)
        .stuck
        .iter()
        .map(|s| (s.handoff_id.as_str(), s.next_owner.as_deref()))
        .collect();
    // b started before the window but is still open: stuck, not counted.
    assert_eq!(stuck, [("b", None), ("a", Some("maya@example.com"))]);
    assert_eq!(workflow(&r, DEALS).totals.started, 2);
}

#[test]
fn lead_signals_for_the_lead_object() {
    let mut hs = healthy(LEADS, 4);
    hs[0].missing_at_trigger = vec!["campaign".into()];
    hs[1]
        .notes
        .push(note("reject", "Qualification notes UNCLEAR", monday(60)));
    hs[2].notes.push(note("reject", "no budget", monday(60)));
    let r = report_of(&rows(hs));
    let l = workflow(&r, LEADS).leads.clone().unwrap();
    assert_eq!(l.response_business_hours.unwrap().median, 2.0);
    assert_eq!((l.without_source, l.without_source_share), (1, Some(0.25)));
    assert_eq!(
        (l.rejected_unclear, l.rejected_unclear_share),
        (1, Some(0.25))
    );
    assert!(workflow(&report_of(&rows(healthy(DEALS, 1))), DEALS)
        .leads
        .is_none());
}

#[test]
fn field_issues_are_grouped_with_first_and_last_seen() {
    let issue = |value: &str, at_: &str, kind| FieldIssueFact {
        object: "deal".into(),
        field: "stage".into(),
        kind,
        value: value.into(),
        expected: "one of ...".into(),
        at: at(at_),
    };
    let mut r = rows(vec![]);
    r.field_issues = vec![
        issue(
            "\"Closed-Won\"",
            "2026-11-03T10:00:00Z",
            IssueKind::UnknownValue,
        ),
        issue(
            "\"Closed-Won\"",
            "2026-11-10T10:00:00Z",
            IssueKind::UnknownValue,
        ),
        issue(
            "\"Closed-Won\"",
            "2026-11-05T10:00:00Z",
            IssueKind::UnknownValue,
        ),
        issue("\"Won\"", "2026-11-05T10:00:00Z", IssueKind::UnknownValue),
        // Before the window: not counted.
        issue("\"Won\"", "2026-10-01T10:00:00Z", IssueKind::UnknownValue),
    ];
    let rep = report_of(&r);
    let q = &rep.data_quality;
    assert_eq!(q.len(), 2);
    assert_eq!((q[0].value.as_str(), q[0].count), ("\"Closed-Won\"", 3));
    assert_eq!(q[0].first_seen, at("2026-11-03T10:00:00Z"));
    assert_eq!(q[0].last_seen, at("2026-11-10T10:00:00Z"));
    assert_eq!(q[1].count, 1);
}

#[test]
fn the_workflow_filter_keeps_one_workflow() {
    let mut hs = healthy(DEALS, 2);
    hs.extend(healthy(LEADS, 3));
    let mut w = window();
    w.workflow = Some(LEADS.into());
    let r = compute(&rows(hs), &Calendar::default(), &Targets::default(), &w);
    assert_eq!(r.workflows.len(), 1);
    assert_eq!(r.workflows[0].totals.started, 3);
}

// --- findings ------------------------------------------------------------

/// `code` is among the findings of `bad` and not among those of `good`.
fn pair(code: &str, bad: HealthRows, good: HealthRows) {
    let b = codes(&bad);
    assert!(b.contains(&code), "{code} should trigger, got {b:?}");
    let g = codes(&good);
    assert!(!g.contains(&code), "{code} should not trigger, got {g:?}");
}

fn with_lead_days(workflow: &str, n: usize, done: &str) -> Vec<HandoffFacts> {
    (0..n)
        .map(|i| {
            run(
                &format!("{workflow}-{i}"),
                workflow,
                &[("proceeded", monday(0)), ("done", at(done))],
            )
        })
        .collect()
}

#[test]
fn healthy_handoffs_have_no_findings() {
    let mut hs = healthy(DEALS, 10);
    hs.extend(healthy(LEADS, 10));
    assert_eq!(codes(&rows(hs)), Vec::<&str>::new());
}

#[test]
fn finding_slow_lead_time() {
    // Monday 10:00 → Thursday 10:00 is 3 business days; → Wednesday 2.
    pair(
        "slow_lead_time",
        rows(with_lead_days(DEALS, 6, "2026-11-05T10:00:00Z")),
        rows(with_lead_days(DEALS, 6, "2026-11-04T10:00:00Z")),
    );
    let f = report_of(&rows(with_lead_days(DEALS, 6, "2026-11-05T10:00:00Z"))).findings;
    assert!(
        f[0].text.contains("median of 3.0 business days"),
        "{}",
        f[0].text
    );
    assert_eq!((f[0].figure, f[0].target), (3.0, Some(2.0)));
}

#[test]
fn finding_too_few_handoffs_to_judge() {
    // Four slow handoffs are below `min_handoffs`: nothing is said.
    assert!(
        !codes(&rows(with_lead_days(DEALS, 4, "2026-11-05T10:00:00Z"))).contains(&"slow_lead_time")
    );
}

#[test]
fn finding_low_completeness() {
    let make = |paused_n: usize| {
        let mut hs = healthy(DEALS, 10);
        for h in hs.iter_mut().take(paused_n) {
            *h = paused(h.clone(), &["risk_notes"], 1);
        }
        rows(hs)
    };
    // 70% complete is under 80%; 80% is on target.
    pair("low_completeness", make(3), make(2));
}

#[test]
fn finding_weak_field() {
    let make = |fields: [&str; 4]| {
        let mut hs = healthy(DEALS, 10);
        for (h, f) in hs.iter_mut().zip(fields) {
            *h = paused(h.clone(), &[f], 1);
        }
        rows(hs)
    };
    pair(
        "weak_field",
        make(["risk_notes", "risk_notes", "start_date", "signed_scope"]),
        // Each field missing from one of four paused handoffs... and a
        // fifth field: 25% would be on the line, so spread over 5.
        {
            let mut hs = healthy(DEALS, 10);
            for (h, f) in hs.iter_mut().zip(["a", "b", "c", "d", "e"]) {
                *h = paused(h.clone(), &[f], 1);
            }
            rows(hs)
        },
    );
    let r = report_of(&make([
        "risk_notes",
        "risk_notes",
        "start_date",
        "signed_scope",
    ]));
    let f = r.findings.iter().find(|f| f.code == "weak_field").unwrap();
    assert!(
        f.text.contains("`risk_notes`") && f.text.contains("50% of paused"),
        "{}",
        f.text
    );
}

fn escalated(mut rows: HealthRows, n: usize) -> HealthRows {
    for h in rows.handoffs.iter().take(n) {
        rows.escalations.push(EscalationFact {
            handoff_id: h.id.clone(),
            at: plus_hours(h.triggered_at, 30),
            source: "person".into(),
            who: "ana@example.com".into(),
            reason: "what was promised?".into(),
        });
    }
    rows
}

#[test]
fn finding_checklist_wrong() {
    // Complete handoffs, yet 1 in 10 escalated (10% > 5%); 1 in 20 is 5%.
    pair(
        "checklist_wrong",
        escalated(rows(healthy(DEALS, 10)), 1),
        escalated(rows(healthy(DEALS, 20)), 1),
    );
    // With the checklist incomplete it is the other finding.
    let mut hs = healthy(DEALS, 10);
    for h in hs.iter_mut().take(3) {
        *h = paused(h.clone(), &["risk_notes"], 1);
    }
    assert!(!codes(&escalated(rows(hs), 1)).contains(&"checklist_wrong"));
}

#[test]
fn finding_escalations_with_an_incomplete_checklist() {
    let make = |escalations: usize| {
        let mut hs = healthy(DEALS, 10);
        for h in hs.iter_mut().take(3) {
            *h = paused(h.clone(), &["risk_notes"], 1);
        }
        escalated(rows(hs), escalations)
    };
    pair("escalations", make(1), make(0));
}

#[test]
fn finding_slow_paused() {
    let make = |wait_hours: i64| {
        let mut hs = healthy(DEALS, 10);
        for h in hs.iter_mut().take(2) {
            *h = paused(h.clone(), &["risk_notes"], wait_hours);
        }
        rows(hs)
    };
    // Monday 10:00 + 48 h is Wednesday 10:00: 2 business days; + 24 h is 1.
    pair("slow_paused", make(48), make(24));
}

#[test]
fn finding_exception_heavy() {
    let make = |n: usize| {
        let mut hs = healthy(DEALS, 10);
        for h in hs.iter_mut().take(n) {
            *h = reviewed(h.clone(), "Custom Scope", 1);
        }
        rows(hs)
    };
    pair("exception_heavy", make(4), make(3));
}

#[test]
fn finding_slow_review() {
    let make = |hours: i64| {
        let mut hs = healthy(DEALS, 10);
        for h in hs.iter_mut().take(2) {
            *h = reviewed(h.clone(), "Custom Scope", hours);
        }
        rows(hs)
    };
    pair("slow_review", make(48), make(24));
}

#[test]
fn finding_stuck() {
    let make = |started: &str| {
        let mut hs = healthy(DEALS, 2);
        let mut open = run("open", DEALS, &[("proceeded", at(started))]);
        open.next_owner = Some("ana@example.com".into());
        hs.push(open);
        rows(hs)
    };
    pair(
        "stuck",
        make("2026-11-10T10:00:00Z"),
        make("2026-11-17T10:00:00Z"),
    );
    let f = report_of(&make("2026-11-10T10:00:00Z")).findings;
    assert!(
        f[0].text.contains("waits on ana@example.com"),
        "{}",
        f[0].text
    );
}

#[test]
fn finding_slow_lead_response() {
    let make = |hours: i64| {
        rows(
            (0..6)
                .map(|i| {
                    let t = monday(0);
                    run(
                        &format!("l{i}"),
                        LEADS,
                        &[("proceeded", t), ("done", plus_hours(t, hours))],
                    )
                })
                .collect(),
        )
    };
    pair("slow_lead_response", make(5), make(4));
    // A deal workflow as slow is judged in business days instead.
    assert!(!codes(&make(5)).contains(&"slow_lead_time"));
}

#[test]
fn finding_missing_source() {
    let make = |n: usize| {
        let mut hs = healthy(LEADS, 10);
        for h in hs.iter_mut().take(n) {
            *h = paused(h.clone(), &["campaign"], 1);
        }
        rows(hs)
    };
    pair("missing_source", make(2), make(1));
}

#[test]
fn finding_unclear_rejections() {
    let make = |reason: &str| {
        let mut hs = healthy(LEADS, 10);
        for h in hs.iter_mut().take(2) {
            h.notes.push(note("reject", reason, monday(120)));
        }
        rows(hs)
    };
    pair(
        "unclear_rejections",
        make("qualification notes unclear"),
        make("no budget this year"),
    );
}

fn issue(kind: IssueKind, when: &str) -> HealthRows {
    let mut r = rows(vec![]);
    r.field_issues.push(FieldIssueFact {
        object: "deal".into(),
        field: "stage".into(),
        kind,
        value: "\"Closed-Won\"".into(),
        expected: "one of \"Closed Won\", \"Closed Lost\"".into(),
        at: at(when),
    });
    r
}

#[test]
fn finding_undeclared_value() {
    pair(
        "undeclared_value",
        issue(IssueKind::UnknownValue, "2026-11-03T10:00:00Z"),
        issue(IssueKind::UnknownValue, "2026-10-03T10:00:00Z"),
    );
    let f = report_of(&issue(IssueKind::UnknownValue, "2026-11-03T10:00:00Z")).findings;
    assert_eq!(
        f[0].text,
        "stage value `Closed-Won` arrived 1 time (first 2026-11-03, last 2026-11-03) and is not declared on `deal.stage`: handoffs may not be firing"
    );
}

#[test]
fn finding_unreadable_value() {
    pair(
        "unreadable_value",
        issue(IssueKind::TypeError, "2026-11-03T10:00:00Z"),
        issue(IssueKind::UnknownValue, "2026-11-03T10:00:00Z"),
    );
}

fn around_change(before_done: &str, after_done: &str) -> HealthRows {
    let mut hs = Vec::new();
    for i in 0..5 {
        hs.push(run(
            &format!("b{i}"),
            DEALS,
            &[("proceeded", monday(i * 10)), ("done", at(before_done))],
        ));
        let t = plus_hours(monday(i * 10), 7 * 24);
        hs.push(run(
            &format!("a{i}"),
            DEALS,
            &[("proceeded", t), ("done", at(after_done))],
        ));
    }
    let mut r = rows(hs);
    r.versions = vec![
        VersionFact {
            id: "v1".into(),
            first_loaded_at: at("2026-10-01T00:00:00Z"),
            changed: None,
        },
        VersionFact {
            id: "v2-abcdef".into(),
            first_loaded_at: at("2026-11-08T00:00:00Z"),
            changed: None,
        },
    ];
    r
}

#[test]
fn finding_improved_after_change() {
    // Before: Monday 10:00 → Thursday ~10:00 (3 days); after: Monday 9th
    // 10:00 → Tuesday 10th ~10:00 (1 day).
    pair(
        "improved_after_change",
        around_change("2026-11-05T10:00:00Z", "2026-11-10T10:00:00Z"),
        around_change("2026-11-05T10:00:00Z", "2026-11-12T10:00:00Z"),
    );
    let r = report_of(&around_change(
        "2026-11-05T10:00:00Z",
        "2026-11-10T10:00:00Z",
    ));
    let f = r.findings.last().unwrap();
    assert_eq!(f.severity, Severity::Improvement);
    assert!(
        f.text.contains("from a median of 3.0 to 1.0 business days"),
        "{}",
        f.text
    );
}

#[test]
fn a_change_to_another_workflow_is_not_credited() {
    let mut r = around_change("2026-11-05T10:00:00Z", "2026-11-10T10:00:00Z");
    r.versions[1].changed = Some(vec![LEADS.to_string()]);
    assert!(!codes(&r).contains(&"improved_after_change"));
    assert!(workflow(&report_of(&r), DEALS).rule_change.is_none());
    r.versions[1].changed = Some(vec![DEALS.to_string()]);
    assert!(codes(&r).contains(&"improved_after_change"));
}

#[test]
fn finding_worse_after_change() {
    pair(
        "worse_after_change",
        around_change("2026-11-03T10:00:00Z", "2026-11-12T10:00:00Z"),
        around_change("2026-11-03T10:00:00Z", "2026-11-10T10:00:00Z"),
    );
}

#[test]
fn targets_come_from_toml_with_defaults_for_the_rest() {
    let t: Targets =
        toml::from_str("lead_time_business_days = 1.5\nsource_fields = [\"utm_source\"]").unwrap();
    assert_eq!(t.lead_time_business_days, 1.5);
    assert_eq!(t.source_fields, ["utm_source"]);
    assert_eq!(t.completeness, 0.8);
    let e = toml::from_str::<Targets>("lead_time = 1").unwrap_err();
    assert!(e.to_string().contains("unknown field `lead_time`"), "{e}");
}
