//! The handoff lifecycle, event by event, through the library API on the
//! fixture project `tests/fixtures/eval/lifecycle`: when a trigger fires and
//! when it does not, the gate, review, approval, done, and retries.

mod common;

use common::ts;
use handoff::compile::WorkflowSet;
use handoff::eval::{
    self, ApproveError, Event, HandoffOutcome, Outcome, OutcomeStatus, PlannedAction, State, Status,
};
use serde_json::{json, Value as J};

/// The engine and its state between events, as a runtime would keep them.
struct Engine {
    set: WorkflowSet,
    state: State,
}

impl Engine {
    fn new() -> Self {
        Engine {
            set: common::fixture_set("lifecycle"),
            state: State::default(),
        }
    }

    /// Sends one event; `now` is its `occurred_at`.
    fn send(&mut self, event: J) -> Outcome {
        let event = Event::decode(&self.set, event.to_string().as_bytes()).expect("valid event");
        let now = event.occurred_at.expect("fixture events carry occurred_at");
        self.state
            .step(&self.set, &event, now)
            .expect("same version")
    }

    fn approve(
        &mut self,
        workflow: &str,
        record: &str,
        now: &str,
    ) -> Result<HandoffOutcome, ApproveError> {
        let (object, id) = record.split_once('/').unwrap();
        self.state.approve(&self.set, workflow, object, id, ts(now))
    }

    /// The stored instance of `workflow` on `object/id`, if any.
    fn instance(&self, record: &str, workflow: &str) -> Option<&eval::Instance> {
        self.state.records.get(record)?.handoffs.get(workflow)
    }
}

/// The outcome of one workflow.
fn of<'a>(o: &'a Outcome, workflow: &str) -> &'a HandoffOutcome {
    o.handoffs
        .iter()
        .find(|h| h.workflow == workflow)
        .unwrap_or_else(|| panic!("no outcome for {workflow}: {o:#?}"))
}

fn has_line(h: &HandoffOutcome, needle: &str) -> bool {
    h.trace.iter().any(|l| l.contains(needle))
}

#[track_caller]
fn assert_trace(h: &HandoffOutcome, needle: &str) {
    assert!(
        has_line(h, needle),
        "trace has no line containing {needle:?}:\n{}",
        h.trace.join("\n")
    );
}

fn event(id: &str, record_id: &str, at: &str, record: J, previous: Option<J>) -> J {
    let mut e = json!({
        "id": id, "object": "deal", "record_id": record_id,
        "occurred_at": at, "record": record,
    });
    if let Some(p) = previous {
        e["previous"] = p;
    }
    e
}

/// A deal with every required field, in stage "Proposal".
fn complete_deal(name: &str) -> J {
    json!({
        "name": name, "stage": "Proposal", "owner": "sam@example.com", "amount": 12000,
        "contact": "jo@acme.example", "scope": "https://docs.example/sow",
        "start_date": "2026-12-07", "deliverables": ["Playbook"], "custom": false,
    })
}

fn won() -> J {
    json!({ "stage": "Won" })
}

const FRI_10AM: &str = "2026-11-20T15:00:00Z";

/// Opens D-1 as a complete proposal, then wins it.
fn won_complete(e: &mut Engine) -> Outcome {
    e.send(event(
        "e0",
        "D-1",
        "2026-11-18T14:00:00Z",
        complete_deal("Acme"),
        None,
    ));
    e.send(event("e1", "D-1", FRI_10AM, won(), None))
}

fn action_kinds(h: &HandoffOutcome) -> Vec<&'static str> {
    h.plans()
        .into_iter()
        .map(|a| match a {
            PlannedAction::Assign { .. } => "assign",
            PlannedAction::Task { .. } => "task",
            PlannedAction::Notify { .. } => "notify",
            PlannedAction::EmailDraft { .. } => "email_draft",
            PlannedAction::Set { .. } => "set",
        })
        .collect()
}

// ---------------------------------------------------------------- triggers

#[test]
fn becomes_does_not_fire_for_another_value() {
    let mut e = Engine::new();
    let mut deal = complete_deal("Acme");
    deal["stage"] = json!("Lost");
    let out = e.send(event(
        "e1",
        "D-1",
        FRI_10AM,
        deal,
        Some(json!({"stage": "Proposal"})),
    ));
    let h = of(&out, "Onboarding");
    assert_eq!(h.status, OutcomeStatus::NotTriggered);
    assert!(h.actions.is_empty());
    assert_trace(h, r#"trigger: deal.stage is "Lost", not "Won" → not fired"#);
    assert!(e.instance("deal/D-1", "Onboarding").is_none());
}

#[test]
fn becomes_fires_on_the_change_only_not_when_already_that_value() {
    let mut e = Engine::new();
    let mut deal = complete_deal("Acme");
    deal["stage"] = json!("Won");
    let out = e.send(event(
        "e1",
        "D-1",
        FRI_10AM,
        deal,
        Some(json!({"stage": "Won"})),
    ));
    let h = of(&out, "Onboarding");
    assert_eq!(h.status, OutcomeStatus::NotTriggered);
    assert_trace(
        h,
        r#"trigger: deal.stage was already "Won" → not fired (it fires on the change only)"#,
    );
}

#[test]
fn a_false_where_filter_does_not_fire_and_leaves_no_instance() {
    let mut e = Engine::new();
    let mut deal = complete_deal("Freebie");
    deal["amount"] = json!(0);
    e.send(event("e0", "D-1", FRI_10AM, deal, None));
    let out = e.send(event("e1", "D-1", FRI_10AM, won(), None));
    let h = of(&out, "Onboarding");
    assert_eq!(h.status, OutcomeStatus::NotTriggered);
    assert!(h.actions.is_empty());
    assert_trace(h, "where: deal.amount > 0 (deal.amount = 0.00) → false");
    assert_trace(h, "the `where` filter is false → not fired");
    assert!(e.instance("deal/D-1", "Onboarding").is_none());
}

#[test]
fn a_where_filter_on_an_empty_field_is_false() {
    let mut e = Engine::new();
    let mut deal = complete_deal("No amount");
    deal.as_object_mut().unwrap().remove("amount");
    deal["stage"] = json!("Won");
    let out = e.send(event(
        "e1",
        "D-1",
        FRI_10AM,
        deal,
        Some(json!({"stage": "Proposal"})),
    ));
    let h = of(&out, "Onboarding");
    assert_eq!(h.status, OutcomeStatus::NotTriggered);
    assert_trace(h, "where: deal.amount > 0 (deal.amount = empty) → false");
}

#[test]
fn a_complete_deal_fires_and_proceeds_on_the_normal_path() {
    let mut e = Engine::new();
    let out = won_complete(&mut e);
    let h = of(&out, "Onboarding");
    assert_eq!(h.status, OutcomeStatus::Proceeded);
    assert!(h.missing.is_empty());
    assert!(h.exceptions.is_empty());
    assert_eq!(action_kinds(h), ["assign", "task"]);
    assert_trace(h, r#"trigger: deal.stage was "Proposal", is "Won" → fired"#);
    assert_trace(h, "where: deal.amount > 0 (deal.amount = 12000.00) → true");
    assert_trace(h, "gate: all 4 required fields present");
    assert_trace(
        h,
        r#"exception "Custom Scope": deal.custom is yes (deal.custom = no) → false"#,
    );
    assert_trace(h, "normal path: proceeding");
    let brief = h.brief.as_ref().expect("the handoff has a brief");
    assert_eq!(brief.fields[0].label, "Client");
    let inst = e.instance("deal/D-1", "Onboarding").unwrap();
    assert_eq!(inst.status, Status::Proceeded);
    assert_eq!(inst.triggered_at, ts(FRI_10AM));
    assert_eq!(inst.roles["delivery_owner"], "ana@example.com");
}

// ---------------------------------------------------------------- the gate

#[test]
fn missing_means_absent_null_empty_text_whitespace_text_or_empty_list() {
    let cases: [(&str, &str, Option<J>); 6] = [
        ("absent", "scope", None),
        ("null", "scope", Some(J::Null)),
        ("empty text", "scope", Some(json!(""))),
        ("whitespace text", "scope", Some(json!("  \t "))),
        ("empty list", "deliverables", Some(json!([]))),
        ("empty date", "start_date", Some(json!(""))),
    ];
    for (how, field, value) in cases {
        let mut e = Engine::new();
        let mut deal = complete_deal("Gappy");
        match value {
            Some(v) => deal[field] = v,
            None => {
                deal.as_object_mut().unwrap().remove(field);
            }
        }
        deal["stage"] = json!("Won");
        let out = e.send(event(
            "e1",
            "D-1",
            FRI_10AM,
            deal,
            Some(json!({"stage": "Proposal"})),
        ));
        let h = of(&out, "Onboarding");
        assert_eq!(h.status, OutcomeStatus::Paused, "{how} {field}");
        assert_eq!(h.missing, [field], "{how} {field}");
        assert_trace(h, &format!("gate: {field} missing → paused"));
    }
}

#[test]
fn no_and_zero_are_values_not_gaps() {
    let mut e = Engine::new();
    let mut deal = complete_deal("Zero");
    deal["stage"] = json!("Won");
    deal["custom"] = json!("no");
    let out = e.send(event(
        "e1",
        "D-1",
        FRI_10AM,
        deal,
        Some(json!({"stage": "Proposal"})),
    ));
    assert_eq!(of(&out, "Onboarding").status, OutcomeStatus::Proceeded);
}

#[test]
fn a_paused_handoff_asks_the_owner_with_the_labels_of_the_missing_fields() {
    let mut e = Engine::new();
    let deal = json!({"name": "Beta", "stage": "Won", "owner": "sam@example.com", "amount": 5000,
                      "start_date": "2026-12-14", "deliverables": ["Setup"]});
    let out = e.send(event(
        "e1",
        "D-2",
        FRI_10AM,
        deal,
        Some(json!({"stage": "Proposal"})),
    ));
    let h = of(&out, "Onboarding");
    assert_eq!(h.status, OutcomeStatus::Paused);
    assert_eq!(h.missing, ["contact", "scope"]);
    assert_eq!(
        h.plans(),
        [&PlannedAction::Notify {
            channel: None,
            to: Some("sam@example.com".into()),
            message: "Onboarding for Beta is paused. Please fill in: Main contact, Signed scope."
                .into(),
        }]
    );
    assert_eq!(
        h.answers.as_ref().unwrap().next_owner.as_deref(),
        Some("sam@example.com")
    );
    let inst = e.instance("deal/D-2", "Onboarding").unwrap();
    assert_eq!(inst.status, Status::Paused);
    assert_eq!(inst.missing, ["contact", "scope"]);
}

/// Pauses D-2 with `contact` and `scope` missing.
fn paused(e: &mut Engine) {
    let deal = json!({"name": "Beta", "stage": "Won", "owner": "sam@example.com", "amount": 5000,
                      "start_date": "2026-12-14", "deliverables": ["Setup"], "custom": false});
    let out = e.send(event(
        "p1",
        "D-2",
        FRI_10AM,
        deal,
        Some(json!({"stage": "Proposal"})),
    ));
    assert_eq!(of(&out, "Onboarding").status, OutcomeStatus::Paused);
}

#[test]
fn a_paused_handoff_stays_paused_without_pinging_the_owner_again() {
    let mut e = Engine::new();
    paused(&mut e);
    let out = e.send(event(
        "p2",
        "D-2",
        "2026-11-20T16:00:00Z",
        json!({"amount": 5500}),
        None,
    ));
    let h = of(&out, "Onboarding");
    assert_eq!(h.status, OutcomeStatus::Paused);
    assert_eq!(h.missing, ["contact", "scope"]);
    assert!(h.actions.is_empty(), "{:?}", h.actions);
    assert_trace(h, "already paused since 2026-11-20T15:00:00Z");
    assert_trace(h, "still the same fields missing: nothing new to send");
}

#[test]
fn a_paused_handoff_asks_again_when_the_list_of_gaps_changes() {
    let mut e = Engine::new();
    paused(&mut e);
    let out = e.send(event(
        "p2",
        "D-2",
        "2026-11-20T16:00:00Z",
        json!({"contact": "li@beta.example"}),
        None,
    ));
    let h = of(&out, "Onboarding");
    assert_eq!(h.status, OutcomeStatus::Paused);
    assert_eq!(h.missing, ["scope"]);
    assert!(
        matches!(&h.plans()[..], [PlannedAction::Notify { message, .. }]
        if message == "Onboarding for Beta is paused. Please fill in: Signed scope.")
    );
}

#[test]
fn a_paused_handoff_resumes_by_itself_once_the_gaps_are_filled() {
    let mut e = Engine::new();
    paused(&mut e);
    let out = e.send(event(
        "p2",
        "D-2",
        "2026-11-20T16:00:00Z",
        json!({"contact": "li@beta.example", "scope": "https://docs.example/beta"}),
        None,
    ));
    let h = of(&out, "Onboarding");
    assert_eq!(h.status, OutcomeStatus::Resumed);
    assert!(h.missing.is_empty());
    assert_eq!(action_kinds(h), ["assign", "task"]);
    assert_trace(h, "gate: all 4 required fields present");
    assert_trace(h, "normal path: resumed");
    let inst = e.instance("deal/D-2", "Onboarding").unwrap();
    assert_eq!(inst.status, Status::Proceeded);
    assert!(inst.missing.is_empty());
    // The lead time still counts from the trigger, not from the resumption.
    assert_eq!(inst.triggered_at, ts(FRI_10AM));
}

#[test]
fn a_paused_handoff_does_not_test_its_where_filter_again() {
    // The filter decides whether the trigger fires; once it has, only the
    // gate is waited on. (Leaving the trigger's value withdraws it.)
    let mut e = Engine::new();
    paused(&mut e);
    let out = e.send(event(
        "p2",
        "D-2",
        "2026-11-20T16:00:00Z",
        json!({"amount": 0, "contact": "li@beta.example", "scope": "https://docs.example/beta"}),
        None,
    ));
    assert_eq!(of(&out, "Onboarding").status, OutcomeStatus::Resumed);
}

#[test]
fn a_paused_handoff_filled_in_but_flagged_goes_to_review() {
    let mut e = Engine::new();
    paused(&mut e);
    let out = e.send(event(
        "p2",
        "D-2",
        "2026-11-20T16:00:00Z",
        json!({"contact": "li@beta.example", "scope": "Custom work", "custom": "yes"}),
        None,
    ));
    let h = of(&out, "Onboarding");
    assert_eq!(h.status, OutcomeStatus::Review);
    assert_eq!(h.exceptions, ["Custom Scope"]);
    assert!(
        matches!(&h.plans()[..], [PlannedAction::Task { title, assignee: Some(a), .. }]
        if title == "Review Custom Scope for Beta" && a == "maya@example.com")
    );
    assert_trace(h, "Custom Scope flagged → review");
    assert_eq!(
        e.instance("deal/D-2", "Onboarding").unwrap().status,
        Status::Review
    );
}

#[test]
fn a_paused_handoff_is_withdrawn_when_the_stage_leaves_won_and_can_fire_again() {
    let mut e = Engine::new();
    paused(&mut e);
    let out = e.send(event(
        "p2",
        "D-2",
        "2026-11-20T16:00:00Z",
        json!({"stage": "Proposal"}),
        None,
    ));
    let h = of(&out, "Onboarding");
    assert_eq!(h.status, OutcomeStatus::Withdrawn);
    assert!(h.actions.is_empty());
    assert_trace(
        h,
        r#"trigger: deal.stage left "Won": the paused handoff is withdrawn"#,
    );
    // The withdrawn run stays on record (for its history), finished.
    let withdrawn = e.instance("deal/D-2", "Onboarding").unwrap();
    assert_eq!(withdrawn.status, Status::Withdrawn);
    assert_eq!(h.instance.as_deref(), Some(withdrawn.id.as_str()));
    let withdrawn_id = withdrawn.id.clone();

    // Won again, this time complete: a fresh handoff, triggered now.
    let out = e.send(event(
        "p3",
        "D-2",
        "2026-11-23T15:00:00Z",
        json!({"stage": "Won", "contact": "li@beta.example", "scope": "Setup"}),
        None,
    ));
    assert_eq!(of(&out, "Onboarding").status, OutcomeStatus::Proceeded);
    let inst = e.instance("deal/D-2", "Onboarding").unwrap();
    assert_eq!(inst.triggered_at, ts("2026-11-23T15:00:00Z"));
    assert_ne!(inst.id, withdrawn_id, "a new run is a new instance");
}

// ---------------------------------------------------------------- review

/// Sends D-3, complete but with custom scope, into review.
fn in_review(e: &mut Engine) {
    let mut deal = complete_deal("Gamma");
    deal["custom"] = json!(true);
    e.send(event("r0", "D-3", "2026-11-18T14:00:00Z", deal, None));
    let out = e.send(event("r1", "D-3", "2026-11-19T15:00:00Z", won(), None));
    let h = of(&out, "Onboarding");
    assert_eq!(h.status, OutcomeStatus::Review);
    // Thursday 10:00 New York: one business day is Friday's close.
    assert!(
        matches!(&h.plans()[..], [PlannedAction::Task { due: Some(d), .. }]
        if d == "2026-11-20T17:00:00-05:00")
    );
}

#[test]
fn a_handoff_in_review_waits_on_unrelated_edits() {
    let mut e = Engine::new();
    in_review(&mut e);
    let out = e.send(event(
        "r2",
        "D-3",
        "2026-11-19T16:00:00Z",
        json!({"amount": 13000}),
        None,
    ));
    let h = of(&out, "Onboarding");
    assert_eq!(h.status, OutcomeStatus::Review);
    assert_eq!(h.exceptions, ["Custom Scope"]);
    assert!(h.actions.is_empty());
    assert_trace(
        h,
        "resume when: deal.approved is yes (deal.approved = empty) → false",
    );
}

#[test]
fn review_resumes_on_the_normal_path_when_resume_when_becomes_true() {
    let mut e = Engine::new();
    in_review(&mut e);
    let out = e.send(event(
        "r2",
        "D-3",
        "2026-11-19T18:00:00Z",
        json!({"approved": true}),
        None,
    ));
    let h = of(&out, "Onboarding");
    assert_eq!(h.status, OutcomeStatus::Resumed);
    assert_eq!(action_kinds(h), ["assign", "task"]);
    assert!(h.exceptions.is_empty());
    assert_trace(
        h,
        "resume when: deal.approved is yes (deal.approved = yes) → true",
    );
    let inst = e.instance("deal/D-3", "Onboarding").unwrap();
    assert_eq!(inst.status, Status::Proceeded);
    assert!(inst.exceptions.is_empty());
}

#[test]
fn a_review_stays_open_when_the_stage_leaves_won() {
    // Unlike a paused handoff: a person has been asked to look.
    let mut e = Engine::new();
    in_review(&mut e);
    let out = e.send(event(
        "r2",
        "D-3",
        "2026-11-19T16:00:00Z",
        json!({"stage": "Proposal"}),
        None,
    ));
    assert_eq!(of(&out, "Onboarding").status, OutcomeStatus::Review);
    let inst = e.instance("deal/D-3", "Onboarding").unwrap();
    assert_eq!(inst.status, Status::Review);
    assert_eq!(inst.exceptions, ["Custom Scope"]);
}

#[test]
fn an_approval_ticked_before_the_review_moves_it_on_at_the_next_event() {
    let mut e = Engine::new();
    let mut deal = complete_deal("Delta");
    deal["custom"] = json!(true);
    deal["approved"] = json!(true);
    e.send(event("t0", "D-4", "2026-11-18T14:00:00Z", deal, None));
    let out = e.send(event("t1", "D-4", "2026-11-19T15:00:00Z", won(), None));
    assert_eq!(of(&out, "Onboarding").status, OutcomeStatus::Review);
    let out = e.send(event(
        "t2",
        "D-4",
        "2026-11-19T16:00:00Z",
        json!({"amount": 13000}),
        None,
    ));
    let h = of(&out, "Onboarding");
    assert_eq!(h.status, OutcomeStatus::Resumed);
    assert_trace(
        h,
        "resume when: deal.approved is yes (deal.approved = yes) → true",
    );
}

#[test]
fn review_resumes_when_a_person_approves_it() {
    let mut e = Engine::new();
    in_review(&mut e);
    let h = e
        .approve("Onboarding", "deal/D-3", "2026-11-19T20:00:00Z")
        .expect("in review, so approvable");
    assert_eq!(h.status, OutcomeStatus::Resumed);
    assert_eq!(h.record_id, "D-3");
    assert_eq!(action_kinds(&h), ["assign", "task"]);
    // The plan reads the record as last seen: the name from the snapshot.
    assert!(
        matches!(&h.plans()[1], PlannedAction::Task { title, due: Some(d), .. }
        if title == "Kickoff: Gamma" && d == "2026-11-23T17:00:00-05:00")
    );
    assert_trace(&h, "review: approved by hand → resumed on the normal path");
    assert_eq!(
        e.instance("deal/D-3", "Onboarding").unwrap().status,
        Status::Proceeded
    );
}

#[test]
fn without_resume_when_only_an_approval_moves_a_review_on() {
    let mut e = Engine::new();
    let order = |id: &str, record: J| {
        json!({"id": id, "object": "order", "record_id": "O-1",
               "occurred_at": FRI_10AM, "record": record})
    };
    e.send(order(
        "o0",
        json!({"name": "Big one", "status": "Open", "big": true}),
    ));
    let out = e.send(order("o1", json!({"status": "Signed"})));
    let h = of(&out, "Order review");
    assert_eq!(h.status, OutcomeStatus::Review);
    assert!(
        matches!(&h.plans()[..], [PlannedAction::Notify { message, .. }]
        if message == "Please review Big one: Big order.")
    );

    let out = e.send(order("o2", json!({"name": "Big one, renamed"})));
    let h = of(&out, "Order review");
    assert_eq!(h.status, OutcomeStatus::Review);
    assert_trace(h, "in review: waits for approval (no `resume when`)");

    let h = e.approve("Order review", "order/O-1", FRI_10AM).unwrap();
    assert_eq!(h.status, OutcomeStatus::Resumed);
    assert!(
        matches!(&h.plans()[..], [PlannedAction::Notify { message, .. }]
        if message == "Order Big one, renamed is signed.")
    );
}

#[test]
fn approval_is_refused_unless_the_handoff_is_in_review() {
    let mut e = Engine::new();
    won_complete(&mut e);
    let before = e.state.clone();

    let err = e.approve("Onboarding", "deal/D-1", FRI_10AM).unwrap_err();
    assert!(matches!(err, ApproveError::NotInReview { .. }));
    assert_eq!(
        err.to_string(),
        "\"Onboarding\" is not in review for record D-1"
    );
    assert_eq!(e.state, before, "a refused approval changes nothing");

    let err = e.approve("Onboarding", "deal/D-404", FRI_10AM).unwrap_err();
    assert!(matches!(err, ApproveError::NotInReview { .. }));

    let err = e.approve("Onbaording", "deal/D-1", FRI_10AM).unwrap_err();
    assert_eq!(err.to_string(), "no handoff called \"Onbaording\"");
    assert_eq!(e.state, before);
}

#[test]
fn approving_twice_is_refused_the_second_time() {
    let mut e = Engine::new();
    in_review(&mut e);
    e.approve("Onboarding", "deal/D-3", FRI_10AM).unwrap();
    assert!(matches!(
        e.approve("Onboarding", "deal/D-3", FRI_10AM),
        Err(ApproveError::NotInReview { .. })
    ));
}

// ---------------------------------------------------------------- done

#[test]
fn done_when_closes_the_handoff_and_reports_the_lead_time() {
    let mut e = Engine::new();
    won_complete(&mut e);
    // Unrelated edit: still waiting for the kickoff.
    let out = e.send(event(
        "e2",
        "D-1",
        "2026-11-21T15:00:00Z",
        json!({"amount": 12500}),
        None,
    ));
    let h = of(&out, "Onboarding");
    assert_eq!(h.status, OutcomeStatus::Proceeded);
    assert!(h.actions.is_empty());
    assert_trace(
        h,
        "done when: deal.kickoff_at is set (deal.kickoff_at = empty) → false",
    );

    let out = e.send(event(
        "e3",
        "D-1",
        "2026-11-23T18:30:00Z",
        json!({"kickoff_at": "2026-11-24T15:00:00Z"}),
        None,
    ));
    let h = of(&out, "Onboarding");
    assert_eq!(h.status, OutcomeStatus::Done);
    assert!(h.actions.is_empty());
    assert_trace(h, "done: lead time 3 d 3 h");
    let inst = e.instance("deal/D-1", "Onboarding").unwrap();
    assert_eq!(inst.status, Status::Done);
    assert_eq!(inst.done_at, Some(ts("2026-11-23T18:30:00Z")));
}

#[test]
fn a_short_lead_time_reads_in_hours_and_minutes() {
    let mut e = Engine::new();
    won_complete(&mut e);
    let out = e.send(event(
        "e2",
        "D-1",
        "2026-11-20T17:05:00Z",
        json!({"kickoff_at": "2026-11-24T15:00:00Z"}),
        None,
    ));
    assert_trace(of(&out, "Onboarding"), "done: lead time 2 h 5 min");
}

#[test]
fn a_handoff_whose_done_condition_already_holds_closes_at_once() {
    let mut e = Engine::new();
    let mut deal = complete_deal("Fast");
    deal["kickoff_at"] = json!("2026-11-19T15:00:00Z");
    e.send(event("e0", "D-1", FRI_10AM, deal, None));
    let out = e.send(event("e1", "D-1", FRI_10AM, won(), None));
    let h = of(&out, "Onboarding");
    // The plan still runs: the first step is what done means.
    assert_eq!(h.status, OutcomeStatus::Proceeded);
    assert_eq!(action_kinds(h), ["assign", "task"]);
    assert_trace(h, "done: lead time 0 min");
    assert_eq!(
        e.instance("deal/D-1", "Onboarding").unwrap().status,
        Status::Done
    );
}

#[test]
fn a_done_handoff_fires_again_on_a_new_transition() {
    let mut e = Engine::new();
    won_complete(&mut e);
    e.send(event(
        "e2",
        "D-1",
        "2026-11-23T15:00:00Z",
        json!({"kickoff_at": "2026-11-24T15:00:00Z"}),
        None,
    ));

    // Still "Won" on a later edit: done, and no new handoff.
    let out = e.send(event(
        "e3",
        "D-1",
        "2026-11-24T15:00:00Z",
        json!({"amount": 1}),
        None,
    ));
    let h = of(&out, "Onboarding");
    assert_eq!(h.status, OutcomeStatus::NotTriggered);
    assert_trace(h, "was already \"Won\" → not fired");

    // Reopened and won again: a new run, with the next delivery owner.
    e.send(event(
        "e4",
        "D-1",
        "2026-12-01T15:00:00Z",
        json!({"stage": "Proposal", "kickoff_at": null}),
        None,
    ));
    let out = e.send(event("e5", "D-1", "2026-12-02T15:00:00Z", won(), None));
    let h = of(&out, "Onboarding");
    assert_eq!(h.status, OutcomeStatus::Proceeded);
    assert!(
        matches!(&h.plans()[0], PlannedAction::Assign { person: Some(p), .. } if p == "raj@example.com")
    );
    let inst = e.instance("deal/D-1", "Onboarding").unwrap();
    assert_eq!(inst.status, Status::Proceeded);
    assert_eq!(inst.triggered_at, ts("2026-12-02T15:00:00Z"));
    assert_eq!(inst.done_at, None);
}

// ---------------------------------------------------------------- other triggers

#[test]
fn changes_fires_on_any_change_of_the_field() {
    let mut e = Engine::new();
    e.send(event(
        "c0",
        "D-1",
        FRI_10AM,
        json!({"name": "Acme", "region": "East"}),
        None,
    ));

    let out = e.send(event(
        "c1",
        "D-1",
        FRI_10AM,
        json!({"region": "East", "amount": 5}),
        None,
    ));
    let h = of(&out, "Region move");
    assert_eq!(h.status, OutcomeStatus::NotTriggered);
    assert_trace(
        h,
        r#"trigger: deal.region was "East", is "East" → not fired"#,
    );

    let out = e.send(event(
        "c2",
        "D-1",
        FRI_10AM,
        json!({"region": "West"}),
        None,
    ));
    let h = of(&out, "Region move");
    assert_eq!(h.status, OutcomeStatus::Proceeded);
    assert_trace(h, r#"trigger: deal.region was "East", is "West" → fired"#);
    assert!(
        matches!(&h.plans()[..], [PlannedAction::Notify { to: Some(to), message, .. }]
        if to == "maya@example.com" && message == "Acme moved to West.")
    );
}

#[test]
fn regression_a_handoff_without_done_when_fires_on_every_change() {
    // It used to stay "proceeded" for good after its first run, so the
    // second move of the deal never reached the founder.
    let mut e = Engine::new();
    let mut notified = Vec::new();
    for (i, region) in ["East", "West", "North"].iter().enumerate() {
        let out = e.send(event(
            &format!("r{i}"),
            "D-1",
            FRI_10AM,
            json!({"name": "Acme", "region": region}),
            None,
        ));
        let h = of(&out, "Region move");
        assert_eq!(h.status, OutcomeStatus::Proceeded, "move to {region}");
        if let [PlannedAction::Notify { message, .. }] = &h.plans()[..] {
            notified.push(message.clone());
        }
    }
    assert_eq!(
        notified,
        [
            "Acme moved to East.",
            "Acme moved to West.",
            "Acme moved to North."
        ]
    );
}

#[test]
fn regression_a_finished_handoff_stays_on_record_until_it_fires_again() {
    // It used to vanish from the state on the next unrelated event, taking
    // its done time (the lead time) with it.
    let mut e = Engine::new();
    won_complete(&mut e);
    e.send(event(
        "e2",
        "D-1",
        "2026-11-23T15:00:00Z",
        json!({"kickoff_at": "2026-11-24T15:00:00Z"}),
        None,
    ));
    e.send(event(
        "e3",
        "D-1",
        "2026-11-24T15:00:00Z",
        json!({"amount": 1}),
        None,
    ));
    e.send(event(
        "e4",
        "D-1",
        "2026-11-25T15:00:00Z",
        json!({"stage": "Proposal"}),
        None,
    ));
    let inst = e
        .instance("deal/D-1", "Onboarding")
        .expect("still on record");
    assert_eq!(inst.status, Status::Done);
    assert_eq!(inst.triggered_at, ts(FRI_10AM));
    assert_eq!(inst.done_at, Some(ts("2026-11-23T15:00:00Z")));

    // The same for a run with nothing to wait for.
    e.send(event(
        "e5",
        "D-1",
        FRI_10AM,
        json!({"region": "East"}),
        None,
    ));
    e.send(event("e6", "D-1", FRI_10AM, json!({"amount": 2}), None));
    assert_eq!(
        e.instance("deal/D-1", "Region move").unwrap().status,
        Status::Proceeded
    );
}

#[test]
fn changes_from_a_to_b_fires_only_on_that_move() {
    let cases = [
        ("Proposal", "Lost", OutcomeStatus::Proceeded),
        ("Lead", "Lost", OutcomeStatus::NotTriggered),
        ("Proposal", "Won", OutcomeStatus::NotTriggered),
        ("Lost", "Lost", OutcomeStatus::NotTriggered),
    ];
    for (from, to, want) in cases {
        let mut e = Engine::new();
        e.send(event(
            "l0",
            "D-1",
            FRI_10AM,
            json!({"name": "Zed", "stage": from, "owner": "sam@example.com"}),
            None,
        ));
        let out = e.send(event("l1", "D-1", FRI_10AM, json!({"stage": to}), None));
        let h = of(&out, "Lost after proposal");
        assert_eq!(h.status, want, "{from} → {to}");
        assert_trace(
            h,
            &format!(r#"trigger: deal.stage was "{from}", is "{to}""#),
        );
    }
}

#[test]
fn is_created_fires_for_the_first_event_of_a_record_only() {
    let mut e = Engine::new();
    let ticket = |id: &str, record: J| {
        json!({"id": id, "object": "ticket", "record_id": "T-1",
               "occurred_at": FRI_10AM, "record": record})
    };
    let out = e.send(ticket(
        "t1",
        json!({"subject": "Login fails", "owner": "kim@example.com"}),
    ));
    let h = of(&out, "New ticket");
    assert_eq!(h.status, OutcomeStatus::Proceeded);
    assert_trace(h, "trigger: ticket is new → fired");
    // Plain hours are exact elapsed time: 10:00 + 4 hours.
    assert!(
        matches!(&h.plans()[..], [PlannedAction::Task { title, assignee: Some(a), due: Some(d), .. }]
        if title == "Triage: Login fails" && a == "kim@example.com" && d == "2026-11-20T14:00:00-05:00")
    );

    let out = e.send(ticket("t2", json!({"subject": "Login fails (again)"})));
    let h = of(&out, "New ticket");
    assert_eq!(h.status, OutcomeStatus::NotTriggered);
    assert!(h.actions.is_empty());
    assert_trace(h, "trigger: ticket already existed → not fired");
}

#[test]
fn regression_is_created_fires_once_even_when_the_first_event_is_empty() {
    // A CRM's "created" webhook may carry no properties. The next event for
    // the record used to count as a creation too, and fire a second time.
    let mut e = Engine::new();
    let ticket = |id: &str, record: J| {
        json!({"id": id, "object": "ticket", "record_id": "T-5",
               "occurred_at": FRI_10AM, "record": record})
    };
    let out = e.send(ticket("t1", json!({})));
    assert_eq!(of(&out, "New ticket").status, OutcomeStatus::Proceeded);
    let out = e.send(ticket(
        "t2",
        json!({"subject": "Printer on fire", "owner": "kim@example.com"}),
    ));
    let h = of(&out, "New ticket");
    assert_eq!(h.status, OutcomeStatus::NotTriggered);
    assert_trace(h, "trigger: ticket already existed → not fired");
}

#[test]
fn a_record_the_crm_describes_with_before_values_already_existed() {
    let mut e = Engine::new();
    let out = e.send(json!({"id": "t1", "object": "ticket", "record_id": "T-9",
        "occurred_at": FRI_10AM, "record": {"subject": "Renamed"}, "previous": {"subject": "Old"}}));
    let h = of(&out, "New ticket");
    assert_eq!(h.status, OutcomeStatus::NotTriggered);
    assert_trace(h, "trigger: ticket already existed → not fired");
}

#[test]
fn one_event_can_move_several_handoffs_of_one_object() {
    let mut e = Engine::new();
    e.send(event(
        "m0",
        "D-1",
        FRI_10AM,
        {
            let mut d = complete_deal("Multi");
            d["region"] = json!("East");
            d
        },
        None,
    ));
    let out = e.send(event(
        "m1",
        "D-1",
        FRI_10AM,
        json!({"stage": "Won", "region": "West"}),
        None,
    ));
    let statuses: Vec<(&str, OutcomeStatus)> = out
        .handoffs
        .iter()
        .map(|h| (h.workflow.as_str(), h.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("Onboarding", OutcomeStatus::Proceeded),
            ("Lost after proposal", OutcomeStatus::NotTriggered),
            ("Region move", OutcomeStatus::Proceeded),
        ],
        "every handoff of `deal`, in project order, and none of the other objects"
    );
    let rec = &e.state.records["deal/D-1"];
    assert_eq!(rec.handoffs.len(), 2);
}

// ---------------------------------------------------------------- retries and ids

#[test]
fn a_retried_event_changes_nothing() {
    let mut e = Engine::new();
    e.send(event(
        "e0",
        "D-1",
        "2026-11-18T14:00:00Z",
        complete_deal("Echo"),
        None,
    ));
    let first = e.send(event(
        "e1",
        "D-1",
        FRI_10AM,
        won(),
        Some(json!({"stage": "Proposal"})),
    ));
    assert_eq!(of(&first, "Onboarding").status, OutcomeStatus::Proceeded);
    let before = e.state.clone();

    // Same id, even with a different body: it is the same delivery.
    let retry = e.send(event(
        "e1",
        "D-1",
        FRI_10AM,
        json!({"stage": "Won", "amount": 1}),
        Some(json!({"stage": "Proposal"})),
    ));
    assert!(retry.duplicate);
    assert_eq!(retry.event, "e1");
    let h = of(&retry, "Onboarding");
    assert_eq!(
        h.status,
        OutcomeStatus::Proceeded,
        "the status as it stands"
    );
    assert!(h.actions.is_empty());
    assert_eq!(h.trace, ["event e1 was already processed: nothing new"]);
    assert_eq!(
        of(&retry, "Region move").status,
        OutcomeStatus::NotTriggered
    );
    assert_eq!(e.state, before, "the state is untouched");
}

#[test]
fn events_without_an_id_are_never_taken_for_retries() {
    let mut e = Engine::new();
    let ev = json!({"object": "ticket", "record_id": "T-1", "occurred_at": FRI_10AM,
                    "record": {"subject": "A", "owner": "kim@example.com"}});
    assert!(!e.send(ev.clone()).duplicate);
    assert!(!e.send(ev).duplicate);
}

#[test]
fn number_record_ids_address_the_same_record_as_their_text() {
    let mut e = Engine::new();
    let deal = json!({"name": "Numbered", "stage": "Won", "owner": "sam@example.com", "amount": 5000,
                      "contact": "n@example.com", "scope": "Setup", "deliverables": ["x"]});
    let out = e.send(
        json!({"id": "n1", "object": "deal", "record_id": 42, "occurred_at": FRI_10AM,
        "record": deal, "previous": {"stage": "Proposal"}}),
    );
    let h = of(&out, "Onboarding");
    assert_eq!(h.record_id, "42");
    assert_eq!(h.status, OutcomeStatus::Paused);
    assert_eq!(h.missing, ["start_date"]);
    assert!(e.state.records.contains_key("deal/42"));

    let out = e.send(
        json!({"id": "n2", "object": "deal", "record_id": "42", "occurred_at": FRI_10AM,
        "record": {"start_date": "2027-01-04"}}),
    );
    assert_eq!(of(&out, "Onboarding").status, OutcomeStatus::Resumed);
}

#[test]
fn an_event_for_an_undeclared_object_is_refused_with_its_name() {
    let e = Engine::new();
    let err = Event::decode(
        &e.set,
        br#"{"id": "x", "object": "invoice", "record_id": "I-1", "record": {}}"#,
    )
    .unwrap_err();
    assert!(matches!(&err, eval::EventError::UnknownObject { object, .. } if object == "invoice"));
    assert!(
        err.to_string().starts_with(
            "the event is for object `invoice`, which the workflows do not declare: the declared objects are `"
        ),
        "{err}"
    );
    let err = Event::decode(
        &e.set,
        br#"{"id": "x", "object": "deals", "record_id": "D-1", "record": {}}"#,
    )
    .unwrap_err();
    assert!(err.to_string().ends_with("did you mean `deal`?"), "{err}");
}

#[test]
fn records_of_different_objects_with_the_same_id_are_kept_apart() {
    let mut e = Engine::new();
    e.send(
        json!({"id": "a", "object": "ticket", "record_id": "X-1", "occurred_at": FRI_10AM,
        "record": {"subject": "T", "owner": "kim@example.com"}}),
    );
    let out = e.send(
        json!({"id": "b", "object": "order", "record_id": "X-1", "occurred_at": FRI_10AM,
        "record": {"name": "O", "status": "Signed"}}),
    );
    assert_eq!(of(&out, "Order review").status, OutcomeStatus::Proceeded);
    assert!(e.state.records.contains_key("ticket/X-1"));
    assert!(e.state.records.contains_key("order/X-1"));
}
