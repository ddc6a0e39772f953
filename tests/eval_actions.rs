//! Every kind of action, as planned for a real event: assignments (team
//! round robin and least loaded, a user, a record field), tasks with due
//! dates, checklists and the brief, notifications, email drafts, `set`, and
//! templates with `{missing}`, `{exception}` and roles. Also how fairly the
//! team strategies spread work. Fixture: `tests/fixtures/eval/actions`.

mod common;

use std::collections::BTreeMap;

use handoff::compile::WorkflowSet;
use handoff::eval::{Event, HandoffOutcome, Outcome, OutcomeStatus, PlannedAction, State};
use handoff::value::Value;
use serde_json::{json, Value as J};

struct Engine {
    set: WorkflowSet,
    state: State,
}

impl Engine {
    fn new() -> Self {
        Engine {
            set: common::fixture_set("actions"),
            state: State::default(),
        }
    }

    fn send(&mut self, event: J) -> Outcome {
        let event = Event::decode(&self.set, event.to_string().as_bytes()).expect("valid event");
        let now = event
            .occurred_at
            .unwrap_or_else(|| FRI_10AM.parse().unwrap());
        self.state
            .step(&self.set, &event, now)
            .expect("same version")
    }

    fn open_tasks(&self, who: &str) -> u32 {
        self.state
            .assignments
            .open_tasks
            .get(who)
            .copied()
            .unwrap_or(0)
    }
}

/// Friday 2026-11-20, 10:00 in New York.
const FRI_10AM: &str = "2026-11-20T15:00:00Z";

fn of<'a>(o: &'a Outcome, workflow: &str) -> &'a HandoffOutcome {
    o.handoffs
        .iter()
        .find(|h| h.workflow == workflow)
        .expect("workflow outcome")
}

fn deal(id: &str, record: J) -> J {
    json!({"id": format!("{id}-won"), "object": "deal", "record_id": id, "occurred_at": FRI_10AM,
           "record": record, "previous": {"stage": "Open"}})
}

fn complete(name: &str) -> J {
    json!({
        "name": name, "stage": "Won", "owner": "sam@example.com", "backup": "kim@example.com",
        "contact": "jo@acme.example", "amount": 12000, "seats": 5, "start_date": "2026-12-07",
        "scope": "https://docs.example/sow", "deliverables": ["Playbook", "Training"],
        "custom": false,
    })
}

fn trace_has(h: &HandoffOutcome, needle: &str) -> bool {
    h.trace.iter().any(|l| l.contains(needle))
}

// ---------------------------------------------------------------- the normal path

#[test]
fn the_normal_path_plans_every_action_in_order() {
    let mut e = Engine::new();
    let out = e.send(deal("D-1", complete("Acme")));
    let h = of(&out, "Every action");
    assert_eq!(h.status, OutcomeStatus::Proceeded);
    let actions = serde_json::to_value(h.plans()).unwrap();
    let brief = serde_json::to_value(h.brief.as_ref().unwrap()).unwrap();
    assert_eq!(
        actions,
        json!([
            {"type": "assign", "role": "delivery_owner", "person": "ana@example.com",
             "team": "delivery", "strategy": "round robin"},
            {"type": "assign", "role": "account_manager", "person": "sam@example.com"},
            {"type": "assign", "role": "backup_owner", "person": "kim@example.com"},
            {"type": "task", "title": "Kickoff: Acme", "assignee": "ana@example.com",
             "due": "2026-11-24T17:00:00-05:00",
             "checklist": ["Confirm scope with jo@acme.example", "Book the call with sam@example.com"],
             "brief": brief},
            {"type": "task", "title": "Shadow the kickoff of Acme", "assignee": "kim@example.com"},
            {"type": "notify", "to": "sam@example.com",
             "message": "ana@example.com leads the kickoff for Acme."},
            {"type": "notify", "channel": "delivery_feed", "to": "#delivery",
             "message": "New client Acme (12000.00). Owner: ana@example.com."},
            {"type": "email_draft", "to": "jo@acme.example", "subject": "Welcome aboard, Acme",
             "body": "Hi, ana@example.com will lead your kickoff on 2026-12-07.",
             "status": "needs_review"},
            {"type": "set", "field": "followup_on", "value": "2026-12-21"},
            {"type": "set", "field": "seats", "value": 10},
            {"type": "set", "field": "health", "value": "Kickoff planned by ana@example.com"},
        ])
    );
    assert!(trace_has(
        h,
        "assign: delivery_owner = ana@example.com (team delivery, round robin)"
    ));
    assert!(trace_has(h, "assign: account_manager = sam@example.com"));
}

#[test]
fn the_brief_renders_as_json_and_markdown_with_roles_and_gaps() {
    let mut e = Engine::new();
    let mut d = complete("Acme");
    d.as_object_mut().unwrap().remove("seats");
    let out = e.send(deal("D-1", d));
    let h = of(&out, "Every action");
    let brief = h.brief.as_ref().expect("a brief");
    assert_eq!(
        serde_json::to_value(brief).unwrap(),
        json!({
            "fields": [
                {"label": "Client", "value": "Acme"},
                {"label": "Scope", "value": "https://docs.example/sow"},
                {"label": "Promised", "value": ["Playbook", "Training"]},
                {"label": "Starts", "value": "2026-12-07"},
                {"label": "Seats", "value": null},
                {"label": "Delivery owner", "value": "ana@example.com"},
            ],
            "questions": ["What does Acme care about most?"],
            "markdown": brief.markdown,
        })
    );
    assert_eq!(
        brief.markdown,
        "## Handoff brief\n\n\
         - **Client:** Acme\n\
         - **Scope:** https://docs.example/sow\n\
         - **Promised:** Playbook, Training\n\
         - **Starts:** 2026-12-07\n\
         - **Seats:** _(empty)_\n\
         - **Delivery owner:** ana@example.com\n\
         \n### Questions for the team\n\n\
         - [ ] What does Acme care about most?\n"
    );
    // The brief attached to the task is the same brief.
    assert!(matches!(&h.plans()[3], PlannedAction::Task { brief: Some(b), .. } if b == brief));
}

#[test]
fn the_four_answers_come_from_the_plan() {
    let mut e = Engine::new();
    let out = e.send(deal("D-1", complete("Acme")));
    let answers = of(&out, "Every action").answers.clone().unwrap();
    assert_eq!(answers.next_owner.as_deref(), Some("ana@example.com"));
    assert_eq!(
        answers.first_task.as_deref(),
        Some("Kickoff: Acme (for ana@example.com, due 2026-11-24T17:00:00-05:00)")
    );
    assert_eq!(
        answers.client_expects.as_deref(),
        Some("Hi, ana@example.com will lead your kickoff on 2026-12-07.")
    );
    assert_eq!(answers.promised[0], "Client: Acme");
    assert_eq!(answers.promised[2], "Promised: Playbook, Training");
}

#[test]
fn assigning_to_an_empty_person_field_leaves_the_role_unassigned_and_says_so() {
    let mut e = Engine::new();
    let mut d = complete("Acme");
    d["backup"] = json!("   ");
    let out = e.send(deal("D-1", d));
    let h = of(&out, "Every action");
    assert_eq!(
        *h.plans()[2],
        PlannedAction::Assign {
            role: "backup_owner".into(),
            person: None,
            team: None,
            strategy: None
        }
    );
    assert!(
        matches!(&h.plans()[4], PlannedAction::Task { title, assignee: None, .. }
        if title == "Shadow the kickoff of Acme")
    );
    assert!(trace_has(
        h,
        "assign: backup_owner could not be resolved: `deal.backup` is empty"
    ));
    // The task for the role says why it is nobody's.
    assert!(trace_has(
        h,
        "task \"Shadow the kickoff of Acme\": nobody to give it to: role `backup_owner` has no person"
    ));
    // An unassigned task is nobody's load.
    assert_eq!(e.state.assignments.open_tasks.values().sum::<u32>(), 1);
}

#[test]
fn set_evaluates_its_value_and_gives_no_value_for_empty_inputs() {
    let mut e = Engine::new();
    let mut d = complete("Acme");
    d.as_object_mut().unwrap().remove("seats");
    let out = e.send(deal("D-1", d));
    let sets: BTreeMap<String, Value> = of(&out, "Every action")
        .plans()
        .into_iter()
        .filter_map(|a| match a {
            PlannedAction::Set { field, value } => Some((field.clone(), value.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        sets["followup_on"],
        Value::Date(jiff::civil::date(2026, 12, 21))
    );
    assert_eq!(sets["seats"], Value::Null, "empty × 2 is no value");
    assert_eq!(
        sets["health"],
        Value::Text("Kickoff planned by ana@example.com".into())
    );
}

// ---------------------------------------------------------------- if missing / on exception

#[test]
fn if_missing_templates_list_the_labels_of_the_missing_fields() {
    let mut e = Engine::new();
    let mut d = complete("Beta");
    d.as_object_mut().unwrap().remove("contact");
    d["start_date"] = json!(null);
    let out = e.send(deal("D-2", d));
    let h = of(&out, "Every action");
    assert_eq!(h.status, OutcomeStatus::Paused);
    assert_eq!(h.missing, ["contact", "start_date"]);
    assert_eq!(
        serde_json::to_value(h.plans()).unwrap(),
        json!([
            {"type": "notify", "to": "sam@example.com",
             "message": "Beta: please fill in Main contact, Start date."},
            {"type": "task", "title": "Complete Beta: Main contact, Start date",
             "assignee": "sam@example.com", "due": "2026-11-23T17:00:00-05:00"},
        ])
    );
    assert!(h.brief.is_none(), "no brief before the gate passes");
}

#[test]
fn on_exception_templates_name_every_flagged_exception_and_roles() {
    let mut e = Engine::new();
    let mut d = complete("Gamma");
    d["custom"] = json!(true);
    d["amount"] = json!(90000);
    let out = e.send(deal("D-3", d));
    let h = of(&out, "Every action");
    assert_eq!(h.status, OutcomeStatus::Review);
    assert_eq!(h.exceptions, ["Custom Scope", "Big Deal"]);
    assert_eq!(
        serde_json::to_value(h.plans()).unwrap(),
        json!([
            {"type": "assign", "role": "reviewer", "person": "maya@example.com"},
            {"type": "task", "title": "Review Custom Scope, Big Deal for Gamma",
             "assignee": "maya@example.com", "due": "2026-11-23T17:00:00-05:00"},
            {"type": "notify", "to": "sam@example.com",
             "message": "Gamma waits for maya@example.com: Custom Scope, Big Deal."},
        ])
    );
    // The review's roles do not leak into the normal path's.
    let out = e.send(json!({"id": "ok", "object": "deal", "record_id": "D-3",
                            "occurred_at": FRI_10AM, "record": {"approved": "yes"}}));
    let h = of(&out, "Every action");
    assert_eq!(h.status, OutcomeStatus::Resumed);
    assert!(
        matches!(&h.plans()[0], PlannedAction::Assign { role, person: Some(p), .. }
        if role == "delivery_owner" && p == "ana@example.com")
    );
}

#[test]
fn a_withdrawn_handoff_releases_the_tasks_it_opened() {
    let mut e = Engine::new();
    let mut d = complete("Beta");
    d.as_object_mut().unwrap().remove("scope");
    e.send(deal("D-2", d));
    assert_eq!(e.open_tasks("sam@example.com"), 1, "the fill-in task");
    let out = e.send(json!({"id": "back", "object": "deal", "record_id": "D-2",
                            "occurred_at": FRI_10AM, "record": {"stage": "Open"}}));
    assert_eq!(of(&out, "Every action").status, OutcomeStatus::Withdrawn);
    assert_eq!(e.open_tasks("sam@example.com"), 0);
}

// ---------------------------------------------------------------- teams

#[test]
fn round_robin_walks_the_team_in_order_across_records() {
    let mut e = Engine::new();
    let picked: Vec<String> = (1..=5)
        .map(|i| {
            let out = e.send(deal(&format!("D-{i}"), complete("Acme")));
            match &of(&out, "Every action").plans()[0] {
                PlannedAction::Assign {
                    person: Some(p), ..
                } => p.clone(),
                other => panic!("expected an assignment, got {other:?}"),
            }
        })
        .collect();
    assert_eq!(
        picked,
        [
            "ana@example.com",
            "raj@example.com",
            "lee@example.com",
            "ana@example.com",
            "raj@example.com"
        ]
    );
}

#[test]
fn round_robin_is_fair_over_a_thousand_assignments() {
    let mut e = Engine::new();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..1000 {
        let out = e.send(
            json!({"id": format!("t{i}"), "object": "ticket", "record_id": format!("T-{i}"),
                                "record": {"subject": "Help"}}),
        );
        let h = of(&out, "Route ticket");
        assert_eq!(h.status, OutcomeStatus::Proceeded, "ticket {i}");
        if let [PlannedAction::Assign {
            person: Some(p), ..
        }] = &h.plans()[..]
        {
            *count.entry(p.clone()).or_default() += 1;
        }
    }
    let team = e.set.directory().teams["support"].value.clone();
    assert_eq!(count.len(), team.len(), "every member got work: {count:?}");
    assert_eq!(count.values().sum::<usize>(), 1000);
    let fair = 1000.0 / team.len() as f64;
    for (who, n) in &count {
        assert!(
            (*n as f64 - fair).abs() <= 1.0,
            "{who} got {n}, fair is {fair:.1}: {count:?}"
        );
    }
}

fn qualify(e: &mut Engine, id: &str) -> String {
    let out = e.send(json!({"id": format!("{id}-q"), "object": "lead", "record_id": id,
                            "record": {"name": id, "status": "Qualified"}, "previous": {"status": "New"}}));
    match &of(&out, "Lead follow up").plans()[..] {
        [PlannedAction::Assign {
            person: Some(p),
            strategy: Some(s),
            ..
        }, PlannedAction::Task {
            assignee: Some(a), ..
        }] => {
            assert_eq!(s, "least loaded");
            assert_eq!(p, a);
            p.clone()
        }
        other => panic!("expected an assignment and a task, got {other:?}"),
    }
}

fn respond(e: &mut Engine, id: &str) {
    let out = e.send(
        json!({"id": format!("{id}-r"), "object": "lead", "record_id": id,
                            "record": {"responded_at": "2026-11-20T16:00:00Z"}}),
    );
    assert_eq!(of(&out, "Lead follow up").status, OutcomeStatus::Done);
}

#[test]
fn least_loaded_picks_whoever_has_fewest_open_tasks_and_releases_them_when_done() {
    let mut e = Engine::new();
    let (sam, kim, joe) = ("sam@example.com", "kim@example.com", "joe@example.com");
    // Equal loads rotate.
    let first: Vec<String> = (1..=6)
        .map(|i| qualify(&mut e, &format!("L-{i}")))
        .collect();
    assert_eq!(first, [sam, kim, joe, sam, kim, joe]);
    assert_eq!(
        [e.open_tasks(sam), e.open_tasks(kim), e.open_tasks(joe)],
        [2, 2, 2]
    );

    // Sam answers both of his leads: his tasks are released.
    respond(&mut e, "L-1");
    respond(&mut e, "L-4");
    assert_eq!(
        [e.open_tasks(sam), e.open_tasks(kim), e.open_tasks(joe)],
        [0, 2, 2]
    );

    // Uneven loads: Sam gets work until he is level with the others.
    assert_eq!(qualify(&mut e, "L-7"), sam);
    assert_eq!(qualify(&mut e, "L-8"), sam);
    assert_eq!(
        [e.open_tasks(sam), e.open_tasks(kim), e.open_tasks(joe)],
        [2, 2, 2]
    );
    // Level again: the rotation continues, and no one gets a second in a row.
    let next = qualify(&mut e, "L-9");
    assert_ne!(next, sam);

    // Answering the same lead twice does not release a task twice.
    respond(&mut e, "L-2");
    let out = e.send(
        json!({"id": "L-2-again", "object": "lead", "record_id": "L-2",
                            "record": {"responded_at": "2026-11-21T16:00:00Z"}}),
    );
    assert_eq!(
        of(&out, "Lead follow up").status,
        OutcomeStatus::NotTriggered
    );
    assert_eq!(e.open_tasks(kim), 1);
}

#[test]
fn least_loaded_stays_balanced_when_nobody_finishes() {
    let mut e = Engine::new();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..300 {
        *count.entry(qualify(&mut e, &format!("L-{i}"))).or_default() += 1;
    }
    assert_eq!(count.values().copied().collect::<Vec<_>>(), [100, 100, 100]);
}

#[test]
fn four_business_hours_from_friday_afternoon_run_into_monday() {
    let mut e = Engine::new();
    let out = e.send(json!({"id": "q", "object": "lead", "record_id": "L-1",
        "occurred_at": "2026-11-20T21:00:00Z",
        "record": {"name": "Pat", "status": "Qualified"}, "previous": {"status": "New"}}));
    let h = of(&out, "Lead follow up");
    assert!(
        matches!(&h.plans()[1], PlannedAction::Task { due: Some(d), .. } if d == "2026-11-23T12:00:00-05:00"),
        "{:?}",
        h.plans()[1]
    );
}
