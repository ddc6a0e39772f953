//! The engine as the core of a long-running service: per-record state with
//! the assignment memory as the only shared effect, versions bound to
//! events and instances, orphaned and migrated instances, out-of-order
//! values, stable action ids, and outcomes that read back.

mod common;

use std::collections::{BTreeMap, HashMap};

use handoff::compile::{self, WorkflowSet};
use handoff::diagnostic::SourceFile;
use handoff::eval::{
    self, Assignments, Event, MemoryAssignments, Outcome, OutcomeStatus, RecordState, Status,
    StepError, StoredRecord,
};
use serde_json::{json, Value as J};

const DEAL: &str = r#"
object deal {
  name:  text
  stage: one of "Open", "Won"
  owner: email
  scope: text
}
user founder = "maya@example.com"
team delivery = "ana@example.com", "raj@example.com"
"#;

const LEAD: &str = r#"
object lead {
  name:   text
  status: one of "New", "Qualified"
}
"#;

/// Both objects, the people and the handoff `name`.
fn project(name: &str) -> String {
    format!("{DEAL}{LEAD}{}", kickoff(name))
}

/// A handoff on `deal`: assigns from a team, asks the founder for missing
/// scope with a task, and opens a kickoff task.
fn kickoff(name: &str) -> String {
    format!(
        r#"
handoff "{name}" {{
  when deal.stage becomes "Won"
  require scope
  if missing {{
    task "Fill in the scope of {{deal.name}}" for founder due in 1 day
  }}
  then {{
    assign delivery_owner from team delivery by round robin
    task "Kick off {{deal.name}}" for delivery_owner due in 2 days
  }}
  done when deal.stage is "Open"
}}
"#
    )
}

fn load(files: &[(&str, &str)]) -> WorkflowSet {
    let sources: Vec<_> = files.iter().map(|(n, t)| SourceFile::new(*n, *t)).collect();
    match compile::load_sources(&sources) {
        Ok((set, _)) => set,
        Err(e) => panic!("the workflows should load: {e:?}"),
    }
}

fn decode(set: &WorkflowSet, event: J) -> Event {
    Event::decode(set, event.to_string().as_bytes()).expect("a valid event")
}

fn now() -> jiff::Timestamp {
    common::ts("2026-11-20T15:00:00Z")
}

fn won(id: &str, record: &str, scope: Option<&str>) -> J {
    let mut fields =
        json!({"name": format!("Deal {record}"), "stage": "Won", "owner": "sam@example.com"});
    if let Some(s) = scope {
        fields["scope"] = json!(s);
    }
    json!({"id": id, "object": "deal", "record_id": record, "record": fields,
           "previous": {"stage": "Open"}})
}

/// Assignment memory that logs every call: the only way a step may touch
/// what other records share.
#[derive(Default)]
struct Logged {
    inner: MemoryAssignments,
    calls: Vec<String>,
}

impl Assignments for Logged {
    fn next_cursor(&mut self, team: &str) -> u64 {
        self.calls.push(format!("cursor {team}"));
        self.inner.next_cursor(team)
    }
    fn open_tasks(&mut self, person: &str) -> u32 {
        self.calls.push(format!("load {person}"));
        self.inner.open_tasks(person)
    }
    fn task_opened(&mut self, person: &str) {
        self.calls.push(format!("opened {person}"));
        self.inner.task_opened(person)
    }
    fn task_closed(&mut self, person: &str) {
        self.calls.push(format!("closed {person}"));
        self.inner.task_closed(person)
    }
}

/// A store-like map: JSON by key, counting what each step reads and writes.
#[derive(Default)]
struct Store {
    rows: HashMap<String, String>,
    reads: Vec<String>,
    writes: Vec<String>,
}

impl Store {
    fn load(&mut self, set: &WorkflowSet, key: &str) -> Option<RecordState> {
        self.reads.push(key.to_string());
        let json = self.rows.get(key)?;
        let stored: StoredRecord = serde_json::from_str(json).expect("stored JSON reads back");
        Some(RecordState::from_stored(
            set.object("deal").unwrap(),
            &stored,
        ))
    }
    fn save(&mut self, set: &WorkflowSet, key: &str, rec: &RecordState) {
        self.writes.push(key.to_string());
        let stored = rec.to_stored(set.object("deal").unwrap());
        self.rows
            .insert(key.to_string(), serde_json::to_string(&stored).unwrap());
    }
}

#[test]
fn a_thousand_records_each_step_reads_and_writes_only_its_own_record() {
    let text = project("Kickoff");
    let set = load(&[("p.handoff", &text)]);
    let mut store = Store::default();
    let mut assign = Logged::default();
    // First every record pauses (scope missing), then every record gets
    // its scope and proceeds.
    let mut events: Vec<(String, Event)> = (0..1000)
        .map(|i| {
            let id = format!("D-{i}");
            (id.clone(), decode(&set, won(&format!("a{i}"), &id, None)))
        })
        .collect();
    events.extend((0..1000).map(|i| {
        let id = format!("D-{i}");
        let ev = json!({"id": format!("b{i}"), "object": "deal", "record_id": id,
                        "record": {"scope": "Setup"}});
        (id, decode(&set, ev))
    }));
    for (n, (record_id, event)) in events.iter().enumerate() {
        let key = format!("deal/{record_id}");
        let (reads, writes, calls) = (store.reads.len(), store.writes.len(), assign.calls.len());
        let record = store.load(&set, &key);
        let (record, outcome) =
            eval::step(&set, record, event, now(), &mut assign).expect("same version");
        store.save(&set, &key, &record);
        assert_eq!(
            &store.reads[reads..],
            std::slice::from_ref(&key),
            "event {n} read only its record"
        );
        assert_eq!(
            &store.writes[writes..],
            std::slice::from_ref(&key),
            "event {n} wrote only its record"
        );
        let h = &outcome.handoffs[0];
        // What the step did to the shared memory is exactly its plan.
        let expected: Vec<String> = if n < 1000 {
            assert_eq!(h.status, OutcomeStatus::Paused);
            vec!["opened maya@example.com".into()]
        } else {
            assert_eq!(h.status, OutcomeStatus::Resumed);
            let picked = if (n - 1000) % 2 == 0 { "ana" } else { "raj" };
            vec![
                "cursor delivery".into(),
                format!("opened {picked}@example.com"),
            ]
        };
        assert_eq!(assign.calls[calls..], expected, "event {n}");
    }
    assert_eq!(store.rows.len(), 1000);
    assert_eq!(
        assign.inner.open_tasks,
        BTreeMap::from([
            ("ana@example.com".to_string(), 500),
            ("maya@example.com".to_string(), 1000),
            ("raj@example.com".to_string(), 500),
        ])
    );
}

#[test]
fn an_event_decoded_by_one_version_is_refused_by_another() {
    let deal_file = format!("{DEAL}{}", kickoff("Kickoff"));
    let lead_file = LEAD;
    let a = load(&[("deal.handoff", &deal_file), ("lead.handoff", lead_file)]);
    // The same files in another order: `lead` is object 0 now, so slot
    // numbers mean other fields.
    let b = load(&[("lead.handoff", lead_file), ("deal.handoff", &deal_file)]);
    assert_ne!(a.version(), b.version());
    let event = decode(&a, won("e1", "D-1", Some("Setup")));
    let err = eval::step(&b, None, &event, now(), &mut MemoryAssignments::default())
        .expect_err("another version must not step the event");
    assert!(matches!(&err, StepError::OtherVersion { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains(&a.version()[..12]) && msg.contains(&b.version()[..12]),
        "{msg}"
    );
    let help = miette::Diagnostic::help(&err).unwrap().to_string();
    assert!(help.contains("decode the event again"), "{help}");
    // The CLI-style runtime refuses it too and keeps its state.
    let mut state = eval::State::default();
    assert!(state.step(&b, &event, now()).is_err());
    assert!(state.records.is_empty() && state.seen.is_empty());
}

#[test]
fn a_renamed_handoff_orphans_its_paused_instance_and_releases_its_task() {
    let before = load(&[("p.handoff", &project("Kickoff"))]);
    let after = load(&[("p.handoff", &project("Kick-off"))]);
    let mut assign = MemoryAssignments::default();
    let (record, out) = eval::step(
        &before,
        None,
        &decode(&before, won("e1", "D-1", None)),
        now(),
        &mut assign,
    )
    .unwrap();
    assert_eq!(out.handoffs[0].status, OutcomeStatus::Paused);
    assert_eq!(assign.open_tasks["maya@example.com"], 1);

    // The next event on the record, under the new rules.
    let edit = json!({"id": "e2", "object": "deal", "record_id": "D-1",
                      "record": {"name": "Deal D-1 (renamed)"}});
    let (record, out) = eval::step(
        &after,
        Some(record),
        &decode(&after, edit),
        now(),
        &mut assign,
    )
    .unwrap();
    let orphaned = out
        .handoffs
        .iter()
        .find(|h| h.workflow == "Kickoff")
        .expect("the old instance is reported");
    assert_eq!(orphaned.status, OutcomeStatus::Orphaned);
    assert!(
        orphaned.trace[0].contains("\"Kickoff\" is not in workflow version")
            && orphaned.trace[0].contains("1 open task(s) are released"),
        "{:?}",
        orphaned.trace
    );
    assert_eq!(
        assign.open_tasks["maya@example.com"], 0,
        "its task is released"
    );
    // It keeps its status, marked orphaned; the new handoff did not fire.
    let inst = &record.handoffs["Kickoff"];
    assert_eq!(
        (inst.status, inst.orphaned_at),
        (Status::Paused, Some(now()))
    );
    let renamed = out
        .handoffs
        .iter()
        .find(|h| h.workflow == "Kick-off")
        .unwrap();
    assert_eq!(renamed.status, OutcomeStatus::NotTriggered);

    // Reported once: the next event says nothing more about it.
    let again = json!({"id": "e3", "object": "deal", "record_id": "D-1", "record": {}});
    let (_, out) = eval::step(
        &after,
        Some(record),
        &decode(&after, again),
        now(),
        &mut assign,
    )
    .unwrap();
    assert!(out.handoffs.iter().all(|h| h.workflow != "Kickoff"));
}

#[test]
fn a_removed_handoff_restored_as_it_was_is_live_again() {
    let before = load(&[("p.handoff", &project("Kickoff"))]);
    let removed = load(&[("p.handoff", &project("Kick-off"))]);
    let mut assign = MemoryAssignments::default();
    let step = |set: &WorkflowSet, record, event, assign: &mut MemoryAssignments| {
        eval::step(set, record, &decode(set, event), now(), assign).unwrap()
    };
    let (record, _) = step(&before, None, won("e1", "D-1", None), &mut assign);
    let edit = |id: &str| json!({"id": id, "object": "deal", "record_id": "D-1", "record": {}});
    let (record, _) = step(&removed, Some(record), edit("e2"), &mut assign);
    assert!(record.handoffs["Kickoff"].orphaned_at.is_some());
    // The very same text again: the same version the instance started under.
    let restored = load(&[("p.handoff", &project("Kickoff"))]);
    assert_eq!(restored.version(), before.version());
    let (record, _) = step(&restored, Some(record), edit("e3"), &mut assign);
    let inst = &record.handoffs["Kickoff"];
    assert_eq!((inst.status, inst.orphaned_at), (Status::Paused, None));
}

#[test]
fn a_paused_instance_migrates_to_an_edited_version_and_resumes_under_it() {
    let v1 = load(&[("p.handoff", &project("Kickoff"))]);
    let edited = kickoff("Kickoff").replace("Kick off {deal.name}", "Start {deal.name}");
    let v2 = load(&[("p.handoff", &format!("{DEAL}{LEAD}{edited}"))]);
    let mut assign = MemoryAssignments::default();
    let (record, _) = eval::step(
        &v1,
        None,
        &decode(&v1, won("e1", "D-1", None)),
        now(),
        &mut assign,
    )
    .unwrap();
    assert_eq!(record.handoffs["Kickoff"].version, v1.version());
    let fill =
        json!({"id": "e2", "object": "deal", "record_id": "D-1", "record": {"scope": "Setup"}});
    let (record, out) =
        eval::step(&v2, Some(record), &decode(&v2, fill), now(), &mut assign).unwrap();
    let h = &out.handoffs[0];
    assert_eq!(h.status, OutcomeStatus::Resumed);
    assert_eq!(h.migrated_from.as_deref(), Some(v1.version()));
    assert!(
        h.trace[0].starts_with("migrated: decided under version"),
        "{:?}",
        h.trace
    );
    assert!(
        matches!(&h.actions[1].plan, eval::PlannedAction::Task { title, .. } if title == "Start Deal D-1")
    );
    assert_eq!(record.handoffs["Kickoff"].version, v2.version());
    assert_eq!(out.version, v2.version());
}

#[test]
fn an_older_value_never_overwrites_a_newer_one() {
    let set = load(&[("p.handoff", &project("Kickoff"))]);
    let mut assign = MemoryAssignments::default();
    let at = |id: &str, t: &str, fields: J| {
        decode(
            &set,
            json!({"id": id, "object": "deal", "record_id": "D-1", "occurred_at": t, "record": fields}),
        )
    };
    let (rec, _) = eval::step(
        &set,
        None,
        &at(
            "e2",
            "2026-11-20T12:00:00Z",
            json!({"name": "New name", "scope": "B"}),
        ),
        now(),
        &mut assign,
    )
    .unwrap();
    // Delivered late: older than what the record holds for `name`, newer
    // for `owner`, which it never had.
    let (rec, out) = eval::step(
        &set,
        Some(rec),
        &at(
            "e1",
            "2026-11-20T11:00:00Z",
            json!({"name": "Old name", "owner": "sam@example.com"}),
        ),
        now(),
        &mut assign,
    )
    .unwrap();
    let deal = set.object("deal").unwrap();
    let stored = rec.to_stored(deal);
    assert_eq!(stored.snapshot["name"], "New name");
    assert_eq!(stored.snapshot["owner"], "sam@example.com");
    assert_eq!(stored.set_at["name"], common::ts("2026-11-20T12:00:00Z"));
    assert!(
        out.handoffs[0]
            .trace
            .iter()
            .any(|l| l.starts_with("deal.name: this event") && l.contains("kept the newer value")),
        "{:?}",
        out.handoffs[0].trace
    );
}

#[test]
fn action_ids_are_stable_on_a_retry_and_distinct_within_a_plan() {
    let set = load(&[("p.handoff", &project("Kickoff"))]);
    let event = decode(&set, won("e1", "D-1", Some("Setup")));
    let run = || {
        eval::step(&set, None, &event, now(), &mut MemoryAssignments::default())
            .unwrap()
            .1
    };
    let (first, retry) = (run(), run());
    let ids = |o: &Outcome| -> Vec<String> {
        o.handoffs[0].actions.iter().map(|a| a.id.clone()).collect()
    };
    assert_eq!(ids(&first), ids(&retry));
    let mut unique = ids(&first);
    unique.dedup();
    assert_eq!(unique.len(), 2, "{unique:?}");

    // Another record, or the same record in another version, plans other ids.
    let other = decode(&set, won("e1", "D-2", Some("Setup")));
    let (_, o) = eval::step(&set, None, &other, now(), &mut MemoryAssignments::default()).unwrap();
    assert!(ids(&o).iter().all(|id| !ids(&first).contains(id)));
    let v2 = load(&[("p.handoff", &format!("{}\n", project("Kickoff")))]);
    let e = decode(&v2, won("e1", "D-1", Some("Setup")));
    let (_, o) = eval::step(&v2, None, &e, now(), &mut MemoryAssignments::default()).unwrap();
    assert!(ids(&o).iter().all(|id| !ids(&first).contains(id)));
}

#[test]
fn outcomes_read_back_from_json_unchanged() {
    let set = load(&[("p.handoff", &project("Kickoff"))]);
    let event = decode(&set, won("e1", "D-1", Some("Setup")));
    let (_, out) =
        eval::step(&set, None, &event, now(), &mut MemoryAssignments::default()).unwrap();
    let json = serde_json::to_string(&out).unwrap();
    let back: Outcome = serde_json::from_str(&json).expect("an outcome reads back");
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    assert_eq!(
        back.handoffs[0].actions.len(),
        out.handoffs[0].actions.len()
    );
    assert_eq!(
        back.handoffs[0].actions[0].id,
        out.handoffs[0].actions[0].id
    );
}

#[test]
fn a_lenient_decode_keeps_the_event_and_names_each_bad_field() {
    let set = load(&[("p.handoff", &project("Kickoff"))]);
    let bytes = json!({"id": "e1", "object": "deal", "record_id": "D-1",
        "record": {"name": ["not", "text"], "stage": "Closed-Won", "scope": "Setup"}})
    .to_string();
    assert!(
        Event::decode(&set, bytes.as_bytes()).is_err(),
        "the CLI refuses it"
    );
    let ev = Event::decode_lenient(&set, bytes.as_bytes()).expect("kept");
    assert_eq!(ev.field_errors.len(), 1);
    assert_eq!(ev.field_errors[0].field, "record.name");
    assert_eq!(ev.unknown_values.len(), 1);
    assert_eq!(ev.unknown_values[0].value, "\"Closed-Won\"");
    assert!(ev.unknown_values[0].expected.contains("\"Won\""));
    // The other fields apply.
    let (rec, _) = eval::step(&set, None, &ev, now(), &mut MemoryAssignments::default()).unwrap();
    let stored = rec.to_stored(set.object("deal").unwrap());
    assert_eq!(stored.snapshot["scope"], "Setup");
    assert!(!stored.snapshot.contains_key("name"));
}
