//! The durable ingest path on a real SQLite file: decisions, the handoff
//! projection, the audit log and the outbox commit together; retries and
//! id-less duplicates change nothing; the human approval resumes a review.
#![cfg(feature = "serve")]

mod common;

use std::sync::Arc;

use handoff::compile::WorkflowSet;
use handoff::eval::{Event, OutcomeStatus};
use handoff::runtime::ingest::{self, Ingested, Request};
use handoff::runtime::store::{HandoffFilter, PageRequest, SqliteOptions, SqliteStore, Store};
use serde_json::{json, Value as J};

fn workflows() -> WorkflowSet {
    handoff::compile::load(&[common::root().join("workflows")])
        .expect("the bundled workflows load")
        .0
}

fn store(dir: &std::path::Path) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(dir.join("handoff.db"), SqliteOptions::default()).unwrap())
}

fn deal(id: Option<&str>, record: &str, fields: J, previous: Option<J>) -> J {
    let mut e = json!({"object": "deal", "record_id": record,
                       "occurred_at": "2026-11-20T15:04:05Z", "record": fields});
    if let Some(id) = id {
        e["id"] = json!(id);
    }
    if let Some(p) = previous {
        e["previous"] = p;
    }
    e
}

fn won_missing_risk(id: &str) -> J {
    deal(
        Some(id),
        "D-2",
        json!({"name": "Beta LLC", "stage": "Closed Won", "owner": "sam@example.com",
               "amount": 8000, "segment": "smb", "buyer_goals": "Launch by January",
               "main_contact": "li@beta.example", "signed_scope": "https://docs.example/beta-sow",
               "start_date": "2026-12-14", "promised_deliverables": ["Setup"],
               "pricing_exceptions": "10% launch discount", "kickoff_preference": "Async first"}),
        Some(json!({"stage": "Proposal"})),
    )
}

/// `events` with their bytes as the generic hook keeps them: the element
/// of a batch, or the whole body.
fn received(events: Vec<Event>, bytes: &[u8]) -> Vec<ingest::Received> {
    let raws: Vec<Vec<u8>> =
        match serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(bytes) {
            Ok(items) => items.iter().map(|r| r.get().as_bytes().to_vec()).collect(),
            Err(_) => vec![bytes.to_vec()],
        };
    assert_eq!(raws.len(), events.len(), "one element per event");
    events
        .into_iter()
        .zip(raws)
        .map(|(event, raw_body)| ingest::Received { event, raw_body })
        .collect()
}

async fn send(store: &Arc<dyn Store>, set: &WorkflowSet, body: J) -> Vec<Ingested> {
    let bytes = body.to_string().into_bytes();
    let events = Event::decode_many(set, &bytes).expect("valid events");
    ingest::ingest(
        store,
        set.clone(),
        Request {
            source: "generic".into(),
            received_at: common::ts("2026-11-20T15:05:00Z"),
            events: received(events, &bytes),
        },
    )
    .await
    .expect("ingested")
}

fn list(store: &Arc<dyn Store>) -> Vec<handoff::runtime::store::HandoffRow> {
    store
        .list_handoffs(&HandoffFilter::default(), &PageRequest::first(100))
        .unwrap()
        .items
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_handoff_resumes_when_its_field_arrives_and_retries_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let set = workflows();

    let out = send(&store, &set, won_missing_risk("e1")).await;
    let Ingested::Applied { outcome, .. } = &out[0] else {
        panic!("{out:?}");
    };
    assert_eq!(outcome.handoffs[0].status, OutcomeStatus::Paused);
    let rows = list(&store);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].status.as_str(), rows[0].missing.as_str()),
        ("paused", "[\"risk_notes\"]")
    );

    // The CRM retries: nothing new, no second notification.
    let again = send(&store, &set, won_missing_risk("e1")).await;
    assert!(matches!(again[0], Ingested::Duplicate { .. }), "{again:?}");
    let detail = store.handoff(&rows[0].id).unwrap().unwrap();
    assert_eq!(detail.actions.len(), 1, "one ask for the missing field");
    assert_eq!(detail.events.len(), 1);

    // The missing field arrives without an event id, twice: the second is
    // recognised by its content.
    let fill = deal(None, "D-2", json!({"risk_notes": "Holiday freeze"}), None);
    let out = send(&store, &set, fill.clone()).await;
    let Ingested::Applied { outcome, .. } = &out[0] else {
        panic!("{out:?}");
    };
    assert_eq!(outcome.handoffs[0].status, OutcomeStatus::Resumed);
    assert!(matches!(
        send(&store, &set, fill).await[0],
        Ingested::Duplicate { .. }
    ));

    let detail = store.handoff(&rows[0].id).unwrap().unwrap();
    assert_eq!(detail.handoff.status, "proceeded");
    let history: Vec<(Option<&str>, &str)> = detail
        .history
        .iter()
        .map(|c| (c.from.as_deref(), c.to.as_str()))
        .collect();
    assert_eq!(history, [(None, "paused"), (Some("paused"), "proceeded")]);
    let kinds: Vec<&str> = detail.actions.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(kinds, ["notify", "assign", "task", "notify", "email_draft"]);
    // The draft waits for a person; the rest are due for delivery.
    let states: Vec<&str> = detail.actions.iter().map(|a| a.state.as_str()).collect();
    assert_eq!(
        states,
        ["pending", "pending", "pending", "pending", "draft"]
    );
    assert_eq!(detail.events.len(), 2);

    // Reopening the file keeps everything.
    drop(store);
    let store = self::store(dir.path());
    assert_eq!(list(&store)[0].status, "proceeded");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_review_is_approved_by_a_person_and_the_approval_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let set = workflows();
    let mut custom = won_missing_risk("e1");
    custom["record"]["risk_notes"] = json!("None");
    custom["record"]["custom_scope"] = json!(true);
    send(&store, &set, custom).await;
    let row = list(&store).remove(0);
    assert_eq!(row.status, "review");

    let approved = ingest::approve(
        &store,
        set.clone(),
        row.id.clone(),
        "maya@example.com".into(),
        "Scope checked with delivery".into(),
        common::ts("2026-11-20T16:00:00Z"),
    )
    .await
    .unwrap()
    .expect("approved");
    assert_eq!(approved.status, OutcomeStatus::Resumed);
    let detail = store.handoff(&row.id).unwrap().unwrap();
    assert_eq!(detail.handoff.status, "proceeded");
    assert_eq!(detail.notes.len(), 1);
    assert_eq!(detail.notes[0].note.who, "maya@example.com");
    let last = detail.history.last().unwrap();
    assert_eq!(last.note.as_deref(), Some("Scope checked with delivery"));

    // Not in review any more: a second approval changes nothing.
    let again = ingest::approve(
        &store,
        set,
        row.id.clone(),
        "maya@example.com".into(),
        String::new(),
        common::ts("2026-11-20T16:01:00Z"),
    )
    .await
    .unwrap();
    assert!(again.is_none());
    assert_eq!(store.handoff(&row.id).unwrap().unwrap().notes.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_applies_in_order_and_a_bad_field_does_not_lose_the_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let set = workflows();
    let mut first = won_missing_risk("b1");
    first["record"]["start_date"] = json!("next tuesday");
    let bytes = json!([
        first,
        deal(Some("b2"), "D-2", json!({"risk_notes": "ok"}), None)
    ])
    .to_string()
    .into_bytes();
    // The server's decode keeps the event and names the bad field.
    let events: Vec<Event> = serde_json::from_slice::<Vec<J>>(&bytes)
        .unwrap()
        .iter()
        .map(|e| Event::decode_lenient(&set, e.to_string().as_bytes()).unwrap())
        .collect();
    assert_eq!(events[0].field_errors[0].field, "record.start_date");
    let out = ingest::ingest(
        &store,
        set.clone(),
        Request {
            source: "generic".into(),
            received_at: common::ts("2026-11-20T15:05:00Z"),
            events: received(events, &bytes),
        },
    )
    .await
    .unwrap();
    let statuses: Vec<OutcomeStatus> = out
        .iter()
        .map(|i| match i {
            Ingested::Applied { outcome, .. } => outcome.handoffs[0].status,
            other => panic!("{other:?}"),
        })
        .collect();
    // Paused for both missing fields, then still paused (start date).
    assert_eq!(statuses, [OutcomeStatus::Paused, OutcomeStatus::Paused]);
    let Ingested::Applied { audit_id, .. } = out[0] else {
        unreachable!()
    };
    let row = store.event(audit_id).unwrap().unwrap();
    assert!(
        row.event.field_errors.contains("next tuesday"),
        "{}",
        row.event.field_errors
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_stored_by_another_writer_mid_job_rolls_the_whole_request_back() {
    // Another writer (a second replica on a shared database) stores event
    // `raced` after this job's dedupe check found nothing: played here by
    // a trigger that inserts it just before our own insert, so the append
    // comes back `Duplicate` after the record and its handoffs were written.
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let set = workflows();
    rusqlite::Connection::open(dir.path().join("handoff.db"))
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER another_writer BEFORE INSERT ON events \
             WHEN NEW.event_id = 'raced' BEGIN \
               INSERT INTO events (source, event_id, content_hash, received_at, raw_body, \
                 normalized, outcome) \
               VALUES (NEW.source, NEW.event_id, 'theirs', 0, x'', '{}', '{}'); \
             END;",
        )
        .unwrap();

    // A batch: a plain event, then the raced one.
    let mut raced = won_missing_risk("raced");
    raced["record_id"] = json!("D-3");
    let body = json!([won_missing_risk("e1"), raced]);
    let bytes = body.to_string().into_bytes();
    let events = Event::decode_many(&set, &bytes).unwrap();
    let err = ingest::ingest(
        &store,
        set.clone(),
        Request {
            source: "generic".into(),
            received_at: common::ts("2026-11-20T15:05:00Z"),
            events: received(events, &bytes),
        },
    )
    .await
    .expect_err("the request fails");
    let raced = match &err {
        ingest::IngestError::Store(e) => e.aborted_with::<ingest::IngestError>(),
        _ => None,
    };
    assert!(
        matches!(raced, Some(ingest::IngestError::Raced { key }) if key == "raced"),
        "{err:?}"
    );
    assert!(err.to_string().contains("another writer"), "{err}");

    // Nothing of the request is stored: not the first event, not the raced
    // one's record, handoff, outbox rows or assignment memory.
    assert!(list(&store).is_empty(), "{:?}", list(&store));
    let db = rusqlite::Connection::open(dir.path().join("handoff.db")).unwrap();
    for table in [
        "events",
        "records",
        "actions",
        "status_changes",
        "team_cursors",
        "open_tasks",
    ] {
        let n: i64 = db
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0, "{table}");
    }

    // Without the other writer the same request is stored whole.
    db.execute_batch("DROP TRIGGER another_writer").unwrap();
    let out = send(&store, &set, body).await;
    assert!(
        out.iter().all(|o| matches!(o, Ingested::Applied { .. })),
        "{out:?}"
    );
    assert_eq!(list(&store).len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn decisions_use_the_time_the_audit_log_keeps() {
    // The store keeps microseconds; a decision made with nanoseconds would
    // name instances and due dates a replay of the audit log cannot.
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let set = workflows();
    let body = won_missing_risk("ns");
    let bytes = body.to_string().into_bytes();
    let events = Event::decode_many(&set, &bytes).unwrap();
    let received_at = common::ts("2026-11-20T15:05:00.123456789Z");
    let out = ingest::ingest(
        &store,
        set.clone(),
        Request {
            source: "generic".into(),
            received_at,
            events: received(events.clone(), &bytes),
        },
    )
    .await
    .unwrap();
    let Ingested::Applied {
        audit_id,
        outcome,
        outcome_json,
    } = &out[0]
    else {
        panic!("{out:?}");
    };
    let row = store.event(*audit_id).unwrap().unwrap();
    assert_eq!(
        outcome_json, &row.event.outcome,
        "the answer's outcome is the audit log's text"
    );
    assert_eq!(
        serde_json::from_str::<handoff::eval::Outcome>(outcome_json).unwrap(),
        *outcome
    );
    assert_eq!(
        row.event.received_at,
        common::ts("2026-11-20T15:05:00.123456Z")
    );
    let mut memory = handoff::eval::MemoryAssignments::default();
    let (_, replayed) =
        handoff::eval::step(&set, None, &events[0], row.event.received_at, &mut memory).unwrap();
    assert_eq!(
        &replayed, outcome,
        "a replay from the audit log decides the same"
    );
}
