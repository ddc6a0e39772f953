//! The store suite: what every `Store` backend must do, written against
//! `&dyn Store` only, so a Postgres backend runs the same checks.
//!
//! Each check uses its own ids (and the outbox check its own years), so the
//! checks also pass one after another on a single store: [`run`].

use std::any::Any;
use std::collections::BTreeSet;
use std::sync::mpsc;
use std::time::Duration;

use handoff::runtime::store::{
    ActionKind, Appended, Cause, DeliveryState, EventKey, HandoffFilter, HandoffRow, NewAction,
    NewEvent, NewNote, NewPending, PageRequest, Receipt, RecordRow, SessionRow, SinkDelivery,
    StatusChange, Store, StoreError, StoreExt, WorkflowFile, WorkflowVersion, WriteTx,
};
use jiff::Timestamp;

/// How long a check waits for something another thread does; reached only
/// when the store is broken.
pub const BOUND: Duration = Duration::from_secs(30);

/// Every check, one after another, on one store.
pub fn run(store: &dyn Store) {
    dedupe_by_id_and_by_hash(store);
    an_action_id_enqueued_twice_is_one_row(store);
    a_failing_job_rolls_back_alone(store);
    a_failing_replayable_job_rolls_back_alone(store);
    jobs_run_in_submission_order(store);
    pagination_has_no_gaps_or_repeats(store);
    outbox_claim_lease_retry_dead_redrive(store);
    drafts_wait_for_approval(store);
    next_cursor_is_atomic_under_concurrent_jobs(store);
    open_tasks_saturate_at_zero(store);
    a_handoff_reads_back_with_everything_that_touched_it(store);
    workflow_versions_are_kept_once(store);
    orphans_are_marked_and_cleared(store);
    // --- delivery ---
    a_sink_delivery_is_kept_once_per_sink(store);
    a_late_set_knows_a_newer_one_of_its_field_went_first(store);
    // --- CRM ---
    a_new_pending_event_waits_out_its_records_back_off(store);
    // --- web ---
    web_sessions_expire_end_and_are_bounded(store);
}

/// A `set` of a field on a record, and a later one of the same field on
/// the same record: the older knows of the newer while it is on its way
/// (pending or leased) and once it is delivered; another field, another
/// record, or a newer one in the dead letters do not count.
pub fn a_late_set_knows_a_newer_one_of_its_field_went_first(store: &dyn Store) {
    let t = at("2030-01-01T00:00:00Z");
    let set = move |id: &str, h: &str, field: &str| NewAction {
        payload: format!(r#"{{"id":"{id}","type":"set","field":"{field}","value":"x"}}"#),
        ..action(id, h, ActionKind::Set, t)
    };
    store
        .write_blocking(move |tx| {
            tx.upsert_instance(&handoff("ls-h1", "proceeded", "LS-1"))?;
            tx.upsert_instance(&handoff("ls-h2", "proceeded", "LS-1"))?;
            tx.upsert_instance(&handoff("ls-h3", "proceeded", "LS-2"))?;
            tx.enqueue_action(&set("ls-old", "ls-h1", "stage"))?;
            tx.enqueue_action(&set("ls-other-field", "ls-h2", "owner"))?;
            tx.enqueue_action(&set("ls-other-record", "ls-h3", "stage"))?;
            tx.enqueue_action(&set("ls-new", "ls-h2", "stage"))?;
            Ok(())
        })
        .unwrap();
    let newer = |id: &'static str| {
        store
            .write_blocking(move |tx| tx.newer_set(id))
            .unwrap()
            .map(|n| (n.id, n.delivered))
    };
    let on_its_way = Some(("ls-new".to_string(), false));
    assert_eq!(newer("ls-old"), on_its_way, "pending counts");
    // Claimed together in one pass (both leased): still on its way.
    store
        .write_blocking(move |tx| {
            tx.claim_due(t, std::time::Duration::from_secs(60), 500)
                .map(|_| ())
        })
        .unwrap();
    assert_eq!(newer("ls-old"), on_its_way, "leased counts");
    store
        .write_blocking(move |tx| {
            for id in ["ls-new", "ls-other-field", "ls-other-record"] {
                tx.mark_delivered(id, t)?;
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(newer("ls-old"), Some(("ls-new".to_string(), true)));
    assert_eq!(newer("ls-new"), None, "nothing newer than the newest");
    assert_eq!(newer("ls-other-record"), None);
    // A newer one that ran out of attempts was never written: it does not
    // hold back the one before it.
    store
        .write_blocking(move |tx| {
            tx.enqueue_action(&set("ls-dead", "ls-h2", "stage"))?;
            for a in tx.claim_due(t, std::time::Duration::from_secs(60), 500)? {
                if a.id == "ls-dead" {
                    tx.dead_letter(&a.id, "refused")?;
                }
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(newer("ls-new"), None, "a dead letter does not count");
}

/// A record's events wait together: a new event of a record backed off
/// for 30 minutes waits those 30 minutes too, not the first retry's 30 s
/// (the retry pass takes every row of a record once one is due). Another
/// record's new event keeps its own time.
pub fn a_new_pending_event_waits_out_its_records_back_off(store: &dyn Store) {
    let t = at("2031-01-01T00:00:00Z");
    let pending = move |id: &str, record: &str, next: Timestamp| NewPending {
        source: "hubspot".into(),
        event_id: id.into(),
        object: "deal".into(),
        record_id: record.into(),
        event: "{}".into(),
        raw_body: b"{}".to_vec(),
        received_at: t,
        next_attempt_at: next,
        error: "the CRM did not answer".into(),
    };
    let soon = t + jiff::SignedDuration::from_secs(30);
    let later = t + jiff::SignedDuration::from_mins(30);
    store
        .write_blocking(move |tx| tx.crm_add_pending(&pending("bo-1", "BO-1", soon)))
        .unwrap();
    let seq = store
        .crm_due_pending(soon, 100)
        .unwrap()
        .into_iter()
        .find(|r| r.event_id == "bo-1")
        .expect("bo-1 is due at its time")
        .seq;
    store
        .write_blocking(move |tx| {
            // Its retries failed: backed off to 30 minutes.
            tx.crm_pending_failed(seq, later, "still failing")?;
            tx.crm_add_pending(&pending("bo-2", "BO-1", soon))?;
            tx.crm_add_pending(&pending("bo-3", "BO-2", soon))?;
            Ok(())
        })
        .unwrap();
    let due_ids = |now: Timestamp| -> Vec<String> {
        store
            .crm_due_pending(now, 100)
            .unwrap()
            .into_iter()
            .filter(|r| r.event_id.starts_with("bo-"))
            .map(|r| r.event_id)
            .collect()
    };
    let a_minute_on = t + jiff::SignedDuration::from_mins(1);
    assert_eq!(due_ids(a_minute_on), vec!["bo-3".to_string()]);
    let past_back_off = later + jiff::SignedDuration::from_secs(1);
    assert_eq!(due_ids(past_back_off), vec!["bo-1", "bo-2", "bo-3"]);
}

pub fn at(s: &str) -> Timestamp {
    s.parse().expect("a test timestamp")
}

pub fn event(source: &str, id: Option<&str>, hash: &str) -> NewEvent {
    NewEvent {
        source: source.into(),
        event_id: id.map(Into::into),
        content_hash: hash.into(),
        received_at: at("2030-01-01T00:00:00Z"),
        object: Some("deal".into()),
        record_id: Some("D-1".into()),
        raw_body: br#"{"id":"x"}"#.to_vec(),
        normalized: r#"{"object":"deal"}"#.into(),
        workflow_version: Some("v1".into()),
        outcome: r#"{"handoffs":[]}"#.into(),
        field_errors: "[]".into(),
        handoff_ids: Vec::new(),
    }
}

pub fn handoff(id: &str, status: &str, record_id: &str) -> HandoffRow {
    HandoffRow {
        id: id.into(),
        workflow: "Kickoff".into(),
        object: "deal".into(),
        record_id: record_id.into(),
        status: status.into(),
        workflow_version: Some("v1".into()),
        triggered_at: at("2030-01-01T00:00:00Z"),
        updated_at: at("2030-01-01T00:00:00Z"),
        done_at: None,
        missing: r#"["scope"]"#.into(),
        exceptions: "[]".into(),
        orphaned: false,
    }
}

pub fn action(id: &str, handoff_id: &str, kind: ActionKind, created: Timestamp) -> NewAction {
    NewAction {
        id: id.into(),
        handoff_id: handoff_id.into(),
        kind,
        payload: format!(r#"{{"title":"{id}"}}"#),
        idempotency_key: format!("key-{id}"),
        created_at: created,
    }
}

fn record(object: &str, record_id: &str, state: &str) -> RecordRow {
    RecordRow {
        object: object.into(),
        record_id: record_id.into(),
        state: state.into(),
        workflow_version: Some("v1".into()),
        updated_at: at("2030-01-01T00:00:00Z"),
    }
}

/// Submits a job without waiting (the raw, boxed form `write` wraps).
pub fn submit<F>(store: &dyn Store, job: F) -> Receipt
where
    F: FnOnce(&mut dyn WriteTx) -> Result<(), StoreError> + Send + 'static,
{
    store.submit(Box::new(move |tx: &mut dyn WriteTx| {
        job(tx).map(|()| Box::new(()) as Box<dyn Any + Send>)
    }))
}

/// Holds the writer inside a job until the returned sender is used (or
/// dropped), so the jobs submitted meanwhile queue up for one batch.
pub fn hold_writer(store: &dyn Store) -> (mpsc::Sender<()>, Receipt) {
    let (release, released) = mpsc::channel::<()>();
    let (started, has_started) = mpsc::channel::<()>();
    let receipt = submit(store, move |_tx| {
        let _ = started.send(());
        // Dropping the sender also releases; the bound only guards a hang.
        let _ = released.recv_timeout(BOUND);
        Ok(())
    });
    has_started
        .recv_timeout(BOUND)
        .expect("the writer starts the holding job");
    (release, receipt)
}

pub fn dedupe_by_id_and_by_hash(store: &dyn Store) {
    let (first, again, other_source, by_hash, by_hash_again) = store
        .write_blocking(|tx| {
            let key = EventKey {
                source: "hubspot",
                event_id: Some("dd-1"),
                content_hash: "h1",
            };
            assert_eq!(tx.processed(&key)?, None);
            let first = tx.append_event(&event("hubspot", Some("dd-1"), "h1"))?;
            assert_eq!(tx.processed(&key)?, Some(audit(first)));
            // Same id, different body: still the same event.
            let again = tx.append_event(&event("hubspot", Some("dd-1"), "h2"))?;
            let other_source = tx.append_event(&event("pipedrive", Some("dd-1"), "h1"))?;
            // No id: the hash decides.
            let hash_key = EventKey {
                source: "generic",
                event_id: None,
                content_hash: "dd-hash",
            };
            assert_eq!(tx.processed(&hash_key)?, None);
            let by_hash = tx.append_event(&event("generic", None, "dd-hash"))?;
            assert_eq!(tx.processed(&hash_key)?, Some(audit(by_hash)));
            let by_hash_again = tx.append_event(&event("generic", None, "dd-hash"))?;
            Ok((first, again, other_source, by_hash, by_hash_again))
        })
        .unwrap();
    assert!(matches!(first, Appended::New(_)));
    assert_eq!(again, Appended::Duplicate(audit(first)));
    assert!(matches!(other_source, Appended::New(id) if id != audit(first)));
    assert!(matches!(by_hash, Appended::New(_)));
    assert_eq!(by_hash_again, Appended::Duplicate(audit(by_hash)));
    // The stored copy is the first one.
    let stored = store
        .event_by_source_id("hubspot", "dd-1")
        .unwrap()
        .unwrap();
    assert_eq!(stored.audit_id, audit(first));
    assert_eq!(stored.event.content_hash, "h1");
    // Dedupe holds across batches too.
    let later = store
        .write_blocking(|tx| tx.append_event(&event("hubspot", Some("dd-1"), "h3")))
        .unwrap();
    assert_eq!(later, Appended::Duplicate(audit(first)));
}

fn audit(a: Appended) -> i64 {
    match a {
        Appended::New(id) | Appended::Duplicate(id) => id,
    }
}

pub fn an_action_id_enqueued_twice_is_one_row(store: &dyn Store) {
    let t = at("2030-02-01T00:00:00Z");
    let (first, second) = store
        .write_blocking(move |tx| {
            tx.upsert_instance(&handoff("twice-h", "proceeded", "TW-1"))?;
            let first = tx.enqueue_action(&action("twice-a", "twice-h", ActionKind::Task, t))?;
            let mut changed = action("twice-a", "twice-h", ActionKind::Task, t);
            changed.payload = r#"{"title":"changed"}"#.into();
            let second = tx.enqueue_action(&changed)?;
            Ok((first, second))
        })
        .unwrap();
    assert!(first);
    assert!(!second);
    // A replayed event in a later batch plans the same id again.
    let third = store
        .write_blocking(move |tx| {
            tx.enqueue_action(&action("twice-a", "twice-h", ActionKind::Task, t))
        })
        .unwrap();
    assert!(!third);
    let detail = store.handoff("twice-h").unwrap().unwrap();
    assert_eq!(detail.actions.len(), 1);
    assert_eq!(detail.actions[0].payload, r#"{"title":"twice-a"}"#);
}

#[derive(Debug)]
pub struct Refused;
impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused by the test")
    }
}
impl std::error::Error for Refused {}

pub fn a_failing_job_rolls_back_alone(store: &dyn Store) {
    let (release, holder) = hold_writer(store);
    let ok1 = submit(store, |tx| tx.save_record(&record("deal", "RB-ok1", "1")));
    let aborts = submit(store, |tx| {
        tx.save_record(&record("deal", "RB-abort", "2"))?;
        Err(StoreError::abort(Refused))
    });
    let ok2 = submit(store, |tx| tx.save_record(&record("deal", "RB-ok2", "3")));
    let fails_in_sql = submit(store, |tx| {
        tx.save_record(&record("deal", "RB-sql", "4"))?;
        // An action of a handoff that does not exist: the store refuses it.
        let t = at("2030-02-01T00:00:00Z");
        tx.enqueue_action(&action(
            "RB-sql-a",
            "RB-no-such-handoff",
            ActionKind::Task,
            t,
        ))?;
        Ok(())
    });
    let panics = submit(store, |tx| {
        tx.save_record(&record("deal", "RB-panic", "5"))?;
        panic!("a bug in a job");
    });
    let ok3 = submit(store, |tx| tx.save_record(&record("deal", "RB-ok3", "6")));
    drop(release);
    holder.wait_blocking().unwrap();

    assert!(ok1.wait_blocking().is_ok());
    let err = aborts.wait_blocking().unwrap_err();
    assert!(err.aborted_with::<Refused>().is_some(), "{err:?}");
    assert!(ok2.wait_blocking().is_ok());
    assert!(matches!(
        fails_in_sql.wait_blocking().unwrap_err(),
        StoreError::Backend { .. }
    ));
    assert!(matches!(
        panics.wait_blocking().unwrap_err(),
        StoreError::JobPanicked(m) if m.contains("a bug in a job")
    ));
    assert!(ok3.wait_blocking().is_ok());

    let kept = store
        .write_blocking(|tx| {
            let mut kept = BTreeSet::new();
            for id in [
                "RB-ok1", "RB-abort", "RB-ok2", "RB-sql", "RB-panic", "RB-ok3",
            ] {
                if tx.load_record("deal", id)?.is_some() {
                    kept.insert(id);
                }
            }
            Ok(kept)
        })
        .unwrap();
    assert_eq!(kept, BTreeSet::from(["RB-ok1", "RB-ok2", "RB-ok3"]));
}

/// Adds `n` to the number kept in record `id`'s state (a write that shows
/// whether it happened once, twice or not at all).
pub fn add_to(tx: &mut dyn WriteTx, id: &str, n: u64) -> Result<(), StoreError> {
    let had: u64 = match tx.load_record("deal", id)? {
        Some(r) => serde_json::from_str(&r.state).expect("the test's own JSON"),
        None => 0,
    };
    tx.save_record(&record("deal", id, &(had + n).to_string()))
}

/// Submits a replayable job without waiting.
pub fn submit_replayable<F>(store: &dyn Store, job: F) -> Receipt
where
    F: Fn(&mut dyn WriteTx) -> Result<(), StoreError> + Send + 'static,
{
    store.submit_replayable(Box::new(move |tx: &mut dyn WriteTx| {
        job(tx).map(|()| Box::new(()) as Box<dyn Any + Send>)
    }))
}

/// Replayable jobs may run without savepoints; a failing or panicking one
/// still rolls back alone, and the others' writes are kept exactly once
/// (a backend that ran the batch bare rolls it back and runs it again).
pub fn a_failing_replayable_job_rolls_back_alone(store: &dyn Store) {
    let (release, holder) = hold_writer(store);
    let ok1 = submit_replayable(store, |tx| add_to(tx, "RP-sum", 1));
    let aborts = submit_replayable(store, |tx| {
        add_to(tx, "RP-sum", 100)?;
        add_to(tx, "RP-abort", 1)?;
        Err(StoreError::abort(Refused))
    });
    let ok2 = submit_replayable(store, |tx| add_to(tx, "RP-sum", 10));
    let panics = submit_replayable(store, |tx| {
        add_to(tx, "RP-sum", 1000)?;
        panic!("a bug in a replayable job");
    });
    let ok3 = submit_replayable(store, |tx| add_to(tx, "RP-sum", 10_000));
    drop(release);
    holder.wait_blocking().unwrap();

    assert!(ok1.wait_blocking().is_ok());
    let err = aborts.wait_blocking().unwrap_err();
    assert!(err.aborted_with::<Refused>().is_some(), "{err:?}");
    assert!(ok2.wait_blocking().is_ok());
    assert!(matches!(
        panics.wait_blocking().unwrap_err(),
        StoreError::JobPanicked(m) if m.contains("a bug in a replayable job")
    ));
    assert!(ok3.wait_blocking().is_ok());

    let (sum, aborted) = store
        .write_blocking(|tx| {
            Ok((
                tx.load_record("deal", "RP-sum")?.map(|r| r.state),
                tx.load_record("deal", "RP-abort")?,
            ))
        })
        .unwrap();
    assert_eq!(sum.as_deref(), Some("10011"), "each kept job added once");
    assert_eq!(aborted, None);

    // Alone in its batch, a failing job keeps nothing either.
    let alone = store.write_replayable(|tx| -> Result<(), StoreError> {
        add_to(tx, "RP-alone", 1)?;
        Err(StoreError::abort(Refused))
    });
    let err = block_on(alone).unwrap_err();
    assert!(err.aborted_with::<Refused>().is_some(), "{err:?}");
    let alone = store
        .write_blocking(|tx| tx.load_record("deal", "RP-alone"))
        .unwrap();
    assert_eq!(alone, None);
}

/// Drives a store future to completion on this thread (the suite has no
/// runtime of its own).
fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
        .block_on(f)
}

pub fn jobs_run_in_submission_order(store: &dyn Store) {
    const N: usize = 200;
    let receipts: Vec<Receipt> = (0..N)
        .map(|i| {
            submit(store, move |tx| {
                let mut seen: Vec<usize> = match tx.load_record("deal", "FIFO-1")? {
                    Some(r) => serde_json::from_str(&r.state).expect("the test's own JSON"),
                    None => Vec::new(),
                };
                seen.push(i);
                let state = serde_json::to_string(&seen).expect("a list of numbers");
                tx.save_record(&record("deal", "FIFO-1", &state))
            })
        })
        .collect();
    for r in receipts {
        r.wait_blocking().unwrap();
    }
    let state = store
        .write_blocking(|tx| tx.load_record("deal", "FIFO-1"))
        .unwrap()
        .unwrap()
        .state;
    let seen: Vec<usize> = serde_json::from_str(&state).unwrap();
    assert_eq!(seen, (0..N).collect::<Vec<_>>());
}

pub fn pagination_has_no_gaps_or_repeats(store: &dyn Store) {
    const N: usize = 57;
    store
        .write_blocking(|tx| {
            for i in 0..N {
                let status = if i % 3 == 0 { "review" } else { "paused" };
                let mut h = handoff(&format!("pg-{i:03}"), status, &format!("PG-{}", i % 5));
                h.workflow = "Paging".into();
                tx.upsert_instance(&h)?;
            }
            Ok(())
        })
        .unwrap();
    let paging = HandoffFilter {
        workflow: Some("Paging".into()),
        ..HandoffFilter::default()
    };
    // Newest first, in pages of 10, while rows change and new ones arrive.
    let mut seen = Vec::new();
    let mut page = PageRequest::first(10);
    let mut round = 0;
    loop {
        let got = store.list_handoffs(&paging, &page).unwrap();
        assert!(got.items.len() <= 10);
        seen.extend(got.items.iter().map(|h| h.id.clone()));
        round += 1;
        store
            .write_blocking(move |tx| {
                // An update to a row already seen and a brand-new row.
                let mut old = handoff("pg-000", "done", "PG-0");
                old.workflow = "Paging".into();
                old.updated_at = at("2031-01-01T00:00:00Z");
                tx.upsert_instance(&old)?;
                let mut new = handoff(&format!("pg-new-{round}"), "paused", "PG-9");
                new.workflow = "Paging".into();
                tx.upsert_instance(&new)
            })
            .unwrap();
        match got.next {
            Some(next) => page.cursor = Some(next),
            None => break,
        }
        assert!(round < 100, "pagination does not end");
    }
    let expected: Vec<String> = (0..N).rev().map(|i| format!("pg-{i:03}")).collect();
    assert_eq!(seen, expected);

    // Filters page too.
    let review = HandoffFilter {
        workflow: Some("Paging".into()),
        status: Some("review".into()),
        ..HandoffFilter::default()
    };
    let mut seen = Vec::new();
    let mut page = PageRequest::first(4);
    loop {
        let got = store.list_handoffs(&review, &page).unwrap();
        assert!(got.items.iter().all(|h| h.status == "review"));
        seen.extend(got.items.into_iter().map(|h| h.id));
        match got.next {
            Some(next) => page.cursor = Some(next),
            None => break,
        }
    }
    // pg-000 became `done` above.
    let expected: Vec<String> = (1..N)
        .rev()
        .filter(|i| i % 3 == 0)
        .map(|i| format!("pg-{i:03}"))
        .collect();
    assert_eq!(seen, expected);

    let by_record = HandoffFilter {
        record_id: Some("PG-3".into()),
        workflow: Some("Paging".into()),
        ..HandoffFilter::default()
    };
    let got = store
        .list_handoffs(&by_record, &PageRequest::first(500))
        .unwrap();
    assert_eq!(got.items.len(), (0..N).filter(|i| i % 5 == 3).count());
    assert_eq!(got.next, None);

    // Stuck: open and triggered before the moment given; done ones never.
    store
        .write_blocking(|tx| {
            for (id, status, when) in [
                ("st-old-open", "proceeded", "2029-12-01T00:00:00Z"),
                ("st-old-done", "done", "2029-12-01T00:00:00Z"),
                ("st-new-open", "paused", "2030-02-01T00:00:00Z"),
            ] {
                let mut h = handoff(id, status, "ST-1");
                h.workflow = "Stuck Check".into();
                h.triggered_at = at(when);
                tx.upsert_instance(&h)?;
            }
            Ok(())
        })
        .unwrap();
    let stuck = HandoffFilter {
        workflow: Some("Stuck Check".into()),
        stuck_before: Some(at("2030-01-01T00:00:00Z")),
        ..HandoffFilter::default()
    };
    let got = store
        .list_handoffs(&stuck, &PageRequest::first(10))
        .unwrap();
    let ids: Vec<&str> = got.items.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, ["st-old-open"]);

    let bad = PageRequest {
        cursor: Some("not-a-cursor".into()),
        limit: 10,
    };
    assert!(matches!(
        store.list_handoffs(&paging, &bad),
        Err(StoreError::BadCursor(_))
    ));
}

pub fn outbox_claim_lease_retry_dead_redrive(store: &dyn Store) {
    // Its own century, so other checks' actions are never due here.
    let t0 = at("2001-01-01T00:00:00Z");
    let secs = move |s: i64| t0 + jiff::SignedDuration::from_secs(s);
    let lease = Duration::from_secs(30);
    store
        .write_blocking(move |tx| {
            tx.upsert_instance(&handoff("ob-h", "proceeded", "OB-1"))?;
            tx.enqueue_action(&action("ob-a", "ob-h", ActionKind::Task, t0))?;
            tx.enqueue_action(&action("ob-b", "ob-h", ActionKind::Notify, secs(1)))?;
            tx.enqueue_action(&action("ob-later", "ob-h", ActionKind::Set, secs(1000)))?;
            Ok(())
        })
        .unwrap();

    let claimed = store.claim_due(secs(1), lease, 10).unwrap();
    let ids: Vec<&str> = claimed.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["ob-a", "ob-b"], "due ones, oldest first");
    assert!(claimed.iter().all(|a| a.state == DeliveryState::Leased
        && a.attempts == 1
        && a.lease_until == Some(secs(31))));
    assert!(
        store.claim_due(secs(2), lease, 10).unwrap().is_empty(),
        "leased ones are not claimed twice"
    );

    // A retry touches only its own row.
    assert!(store.schedule_retry("ob-a", secs(60), "HTTP 503").unwrap());
    assert!(
        !store.schedule_retry("ob-a", secs(60), "again").unwrap(),
        "not leased any more"
    );
    let rows = store.handoff("ob-h").unwrap().unwrap().actions;
    let row = |id: &str| rows.iter().find(|a| a.id == id).unwrap().clone();
    assert_eq!(row("ob-a").state, DeliveryState::Pending);
    assert_eq!(row("ob-a").next_attempt_at, secs(60));
    assert_eq!(row("ob-a").last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(row("ob-b").state, DeliveryState::Leased);
    assert_eq!(row("ob-b").last_error, None);
    assert_eq!(row("ob-later").state, DeliveryState::Pending);

    // A rate limit puts it back without counting the try.
    let again = store.claim_due(secs(60), lease, 10).unwrap();
    assert_eq!(
        again
            .iter()
            .map(|a| (a.id.as_str(), a.attempts))
            .collect::<Vec<_>>(),
        [("ob-a", 2)]
    );
    assert!(store.throttled("ob-a", secs(60), "HTTP 429").unwrap());
    assert!(
        !store.throttled("ob-a", secs(60), "again").unwrap(),
        "not leased any more"
    );
    let rows = store.handoff("ob-h").unwrap().unwrap().actions;
    let a = rows.iter().find(|a| a.id == "ob-a").unwrap();
    assert_eq!((a.state, a.attempts), (DeliveryState::Pending, 1));
    assert_eq!(a.last_error.as_deref(), Some("HTTP 429"));

    // ob-b's worker died: its lease ends, and start-up returns it.
    assert_eq!(store.release_expired_leases(secs(30), secs(30)).unwrap(), 0);
    // It comes back due no earlier than asked (a CRM search's lag).
    assert_eq!(store.release_expired_leases(secs(31), secs(50)).unwrap(), 1);
    assert!(store.claim_due(secs(49), lease, 10).unwrap().is_empty());
    let claimed = store.claim_due(secs(60), lease, 10).unwrap();
    let ids: Vec<(&str, u32)> = claimed
        .iter()
        .map(|a| (a.id.as_str(), a.attempts))
        .collect();
    assert_eq!(ids, [("ob-b", 2), ("ob-a", 2)]);

    assert!(store.mark_delivered("ob-a", secs(61)).unwrap());
    assert!(
        !store.mark_delivered("ob-a", secs(62)).unwrap(),
        "delivered once"
    );
    assert!(store.dead_letter("ob-b", "410 Gone").unwrap());
    assert!(
        !store.redrive("ob-a", secs(70)).unwrap(),
        "only dead ones redrive"
    );

    let dead = store.dead_letters(&PageRequest::first(50)).unwrap();
    let dead_ids: Vec<&str> = dead.items.iter().map(|a| a.id.as_str()).collect();
    assert!(dead_ids.contains(&"ob-b"));
    assert!(!dead_ids.contains(&"ob-a"));
    assert_eq!(
        store
            .counts()
            .unwrap()
            .outbox
            .get(&DeliveryState::Dead)
            .copied(),
        Some(dead.items.len() as u64)
    );

    assert!(store.redrive("ob-b", secs(100)).unwrap());
    assert!(store.claim_due(secs(99), lease, 10).unwrap().is_empty());
    let claimed = store.claim_due(secs(100), lease, 10).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, "ob-b");
    assert_eq!(claimed[0].attempts, 1, "a redrive starts the count again");
    assert_eq!(claimed[0].last_error.as_deref(), Some("410 Gone"));

    let a = store.handoff("ob-h").unwrap().unwrap().actions;
    let a = a.iter().find(|a| a.id == "ob-a").unwrap();
    assert_eq!(a.state, DeliveryState::Delivered);
    assert_eq!(a.delivered_at, Some(secs(61)));

    // The limit holds.
    store
        .write_blocking(move |tx| {
            for i in 0..5 {
                tx.enqueue_action(&action(
                    &format!("ob-many-{i}"),
                    "ob-h",
                    ActionKind::Task,
                    secs(200),
                ))?;
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(store.claim_due(secs(200), lease, 3).unwrap().len(), 3);
    assert_eq!(store.claim_due(secs(200), lease, 3).unwrap().len(), 2);
}

pub fn drafts_wait_for_approval(store: &dyn Store) {
    let t0 = at("2002-01-01T00:00:00Z");
    let lease = Duration::from_secs(30);
    store
        .write_blocking(move |tx| {
            tx.upsert_instance(&handoff("dr-h", "proceeded", "DR-1"))?;
            tx.enqueue_action(&action("dr-mail", "dr-h", ActionKind::EmailDraft, t0))?;
            Ok(())
        })
        .unwrap();
    // Other checks' rows may be due at t0 too; only this check's count here.
    let mine = |claimed: Vec<handoff::runtime::store::ActionRow>| -> Vec<_> {
        claimed
            .into_iter()
            .filter(|a| a.id.starts_with("dr-"))
            .collect()
    };
    assert!(
        mine(store.claim_due(t0, lease, 10).unwrap()).is_empty(),
        "a draft is never claimed"
    );
    let (edited, approved, again) = store
        .write_blocking(move |tx| {
            let edited = tx.edit_draft("dr-mail", r#"{"body":"Hello, edited"}"#)?;
            let approved = tx.approve_draft("dr-mail", t0)?;
            let again = tx.edit_draft("dr-mail", r#"{"body":"too late"}"#)?;
            tx.add_note(&NewNote {
                handoff_id: "dr-h".into(),
                kind: "approve".into(),
                who: "maya@example.com".into(),
                at: t0,
                text: "looks good".into(),
                data: None,
            })?;
            Ok((edited, approved, again))
        })
        .unwrap();
    assert!(edited && approved && !again);
    let claimed = mine(store.claim_due(t0, lease, 10).unwrap());
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].payload, r#"{"body":"Hello, edited"}"#);
    assert_eq!(claimed[0].kind, ActionKind::EmailDraft);
}

pub fn next_cursor_is_atomic_under_concurrent_jobs(store: &dyn Store) {
    const THREADS: usize = 8;
    const EACH: usize = 50;
    let mut got: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    (0..EACH)
                        .map(|_| {
                            store
                                .write_blocking(|tx| tx.next_cursor("nc-team"))
                                .unwrap()
                        })
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a submitting thread"))
            .collect()
    });
    got.sort_unstable();
    assert_eq!(got, (0..(THREADS * EACH) as u64).collect::<Vec<_>>());
    // Another team starts at 0.
    assert_eq!(
        store
            .write_blocking(|tx| tx.next_cursor("nc-other"))
            .unwrap(),
        0
    );
}

pub fn open_tasks_saturate_at_zero(store: &dyn Store) {
    let counts = store
        .write_blocking(|tx| {
            Ok(vec![
                tx.open_tasks("ot@example.com")?,
                tx.adjust_open_tasks("ot@example.com", 2)?,
                tx.adjust_open_tasks("ot@example.com", -5)?,
                tx.open_tasks("ot@example.com")?,
                tx.adjust_open_tasks("ot@example.com", 1)?,
                tx.adjust_open_tasks("ot-new@example.com", -1)?,
                tx.adjust_open_tasks("ot@example.com", i64::MAX)?,
            ])
        })
        .unwrap();
    assert_eq!(counts, [0, 2, 0, 0, 1, 0, u32::MAX]);
}

pub fn a_handoff_reads_back_with_everything_that_touched_it(store: &dyn Store) {
    let t = at("2030-03-01T12:00:00Z");
    let audit_id = store
        .write_blocking(move |tx| {
            let mut rec = record("deal", "RD-1", r#"{"fields":{"stage":"Won"}}"#);
            rec.updated_at = t;
            tx.save_record(&rec)?;
            tx.upsert_instance(&handoff("rd-h", "paused", "RD-1"))?;
            let mut e = event("generic", Some("rd-e1"), "rd-hash");
            e.record_id = Some("RD-1".into());
            e.handoff_ids = vec!["rd-h".into()];
            e.field_errors = r#"[{"field":"close_date","error":"not a date"}]"#.into();
            let audit_id = match tx.append_event(&e)? {
                Appended::New(id) => id,
                dup => panic!("a new event: {dup:?}"),
            };
            tx.status_change(&StatusChange {
                handoff_id: "rd-h".into(),
                from: None,
                to: "paused".into(),
                at: t,
                cause: Cause::Event(audit_id),
                note: None,
            })?;
            tx.enqueue_action(&action("rd-task", "rd-h", ActionKind::Task, t))?;
            Ok(audit_id)
        })
        .unwrap();
    store
        .write_blocking(move |tx| {
            let mut h = tx.load_instance("rd-h")?.expect("saved above");
            h.status = "review".into();
            h.updated_at = t;
            tx.upsert_instance(&h)?;
            tx.status_change(&StatusChange {
                handoff_id: "rd-h".into(),
                from: Some("paused".into()),
                to: "review".into(),
                at: t,
                cause: Cause::Person("maya@example.com".into()),
                note: Some("sent for review".into()),
            })?;
            tx.add_note(&NewNote {
                handoff_id: "rd-h".into(),
                kind: "escalation".into(),
                who: "maya@example.com".into(),
                at: t,
                text: "needs a look".into(),
                data: Some(r#"{"to":"ops"}"#.into()),
            })?;
            assert_eq!(tx.instances_of_record("deal", "RD-1")?.len(), 1);
            Ok(())
        })
        .unwrap();

    let d = store.handoff("rd-h").unwrap().expect("the handoff");
    assert_eq!(d.handoff.status, "review");
    assert_eq!(d.handoff.missing, r#"["scope"]"#);
    let history: Vec<(Option<&str>, &str, &Cause)> = d
        .history
        .iter()
        .map(|c| (c.from.as_deref(), c.to.as_str(), &c.cause))
        .collect();
    assert_eq!(
        history,
        [
            (None, "paused", &Cause::Event(audit_id)),
            (
                Some("paused"),
                "review",
                &Cause::Person("maya@example.com".into())
            ),
        ]
    );
    assert_eq!(d.record.unwrap().state, r#"{"fields":{"stage":"Won"}}"#);
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.events[0].audit_id, audit_id);
    assert_eq!(d.events[0].event.handoff_ids, ["rd-h"]);
    assert!(d.events[0].event.field_errors.contains("not a date"));
    assert_eq!(d.actions.len(), 1);
    assert_eq!(d.actions[0].state, DeliveryState::Pending);
    assert_eq!(d.notes.len(), 1);
    assert_eq!(d.notes[0].note.data.as_deref(), Some(r#"{"to":"ops"}"#));

    let by_audit = store.event(audit_id).unwrap().unwrap();
    assert_eq!(by_audit.event.raw_body, br#"{"id":"x"}"#);
    assert_eq!(
        store.event_by_source_id("generic", "rd-e1").unwrap(),
        Some(by_audit)
    );
    assert_eq!(store.event(i64::MAX).unwrap(), None);
    assert!(store.handoff("no-such").unwrap().is_none());

    let tasks = store.list_tasks(&PageRequest::first(500)).unwrap();
    assert!(tasks.items.iter().any(|a| a.id == "rd-task"));
    assert!(tasks.items.iter().all(|a| a.kind == ActionKind::Task));

    let counts = store.counts().unwrap();
    assert!(counts.events_by_source.get("generic").copied().unwrap_or(0) >= 1);
    assert!(
        counts
            .handoffs_by_status
            .get("review")
            .copied()
            .unwrap_or(0)
            >= 1
    );

    // A status change for a handoff that does not exist is refused.
    let err = store
        .write_blocking(move |tx| {
            tx.status_change(&StatusChange {
                handoff_id: "rd-missing".into(),
                from: None,
                to: "paused".into(),
                at: t,
                cause: Cause::Person("x".into()),
                note: None,
            })
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
}

pub fn workflow_versions_are_kept_once(store: &dyn Store) {
    let v = WorkflowVersion {
        id: "wv-sha256-abc".into(),
        first_loaded_at: at("2030-04-01T00:00:00Z"),
        files: vec![
            WorkflowFile {
                name: "b.handoff".into(),
                text: "object deal {}".into(),
            },
            WorkflowFile {
                name: "a.handoff".into(),
                text: "handoff \"K\" {}".into(),
            },
        ],
    };
    let mut later = v.clone();
    later.first_loaded_at = at("2030-05-01T00:00:00Z");
    later.files.truncate(1);
    let (first, second) = store
        .write_blocking(move |tx| {
            let first = tx.save_workflow_version(&v)?;
            Ok((first, tx.save_workflow_version(&later)?))
        })
        .unwrap();
    assert!(first && !second);
    let kept = store.workflow_version("wv-sha256-abc").unwrap().unwrap();
    assert_eq!(kept.first_loaded_at, at("2030-04-01T00:00:00Z"));
    let names: Vec<&str> = kept.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["b.handoff", "a.handoff"], "load order kept");
    let list = store.workflow_versions().unwrap();
    let summary = list.iter().find(|s| s.id == "wv-sha256-abc").unwrap();
    assert_eq!(summary.file_names, ["b.handoff", "a.handoff"]);
    assert_eq!(store.workflow_version("wv-none").unwrap(), None);
}

pub fn orphans_are_marked_and_cleared(store: &dyn Store) {
    // A paused instance and a finished one of "Orphan Check" on deals.
    store
        .write_blocking(|tx| {
            let mut h = handoff("or-h", "paused", "OR-1");
            h.workflow = "Orphan Check".into();
            tx.upsert_instance(&h)?;
            let mut done = handoff("or-done", "done", "OR-2");
            done.workflow = "Orphan Check".into();
            tx.upsert_instance(&done)
        })
        .unwrap();
    let orphaned = HandoffFilter {
        orphaned: Some(true),
        workflow: Some("Orphan Check".into()),
        ..HandoffFilter::default()
    };
    let mark = |live: &'static [(&'static str, &'static str)]| {
        store
            .write_blocking(move |tx| tx.mark_orphans(live))
            .unwrap();
        store
            .list_handoffs(&orphaned, &PageRequest::first(10))
            .unwrap()
            .items
    };
    // A new version that keeps the workflow (same name, same object): its
    // instances are live and will migrate.
    assert!(mark(&[("Kickoff", "deal"), ("Orphan Check", "deal")]).is_empty());
    // The workflow is gone: the unfinished instance is orphaned and keeps
    // its status; the finished one has nothing left to settle.
    let got = mark(&[("Kickoff", "deal"), ("Paging", "deal")]);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].id, "or-h");
    assert!(got[0].orphaned);
    assert_eq!(got[0].status, "paused", "an orphan keeps its status");
    // Back again: the mark is cleared.
    assert!(mark(&[("Orphan Check", "deal")]).is_empty());
    // The name now runs on another object: the deal's instance is orphaned,
    // as the engine decides it.
    let got = mark(&[("Orphan Check", "lead")]);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].id, "or-h");
    assert!(mark(&[("Orphan Check", "deal")]).is_empty());
}

// --- delivery ---

/// Each sink's success is kept once, read back in order, and survives the
/// action's own state changes; `action` reads one row by id.
pub fn a_sink_delivery_is_kept_once_per_sink(store: &dyn Store) {
    let t0 = at("2003-01-01T00:00:00Z");
    let later = t0 + jiff::SignedDuration::from_secs(5);
    store
        .write_blocking(move |tx| {
            tx.upsert_instance(&handoff("sd-h", "proceeded", "SD-1"))?;
            tx.enqueue_action(&action("sd-a", "sd-h", ActionKind::Task, t0))?;
            Ok(())
        })
        .unwrap();
    let took = |sink: &str, at: Timestamp, r: Option<&str>| SinkDelivery {
        action_id: "sd-a".into(),
        sink: sink.into(),
        delivered_at: at,
        remote_ref: r.map(str::to_string),
    };
    let (first, again, other) = (
        took("hubspot", t0, Some("1001")),
        took("hubspot", later, Some("1002")),
        took("webhook", later, None),
    );
    let written = store
        .write_blocking(move |tx| {
            Ok((
                tx.sink_delivered(&first)?,
                tx.sink_delivered(&again)?,
                tx.sink_delivered(&other)?,
                tx.sink_deliveries("sd-a")?.len(),
            ))
        })
        .unwrap();
    assert_eq!(
        written,
        (true, false, true, 2),
        "a second hubspot success is not kept"
    );
    let kept = store.sink_deliveries("sd-a").unwrap();
    assert_eq!(
        kept,
        [
            took("hubspot", t0, Some("1001")),
            took("webhook", later, None)
        ]
    );
    assert!(store.sink_deliveries("sd-none").unwrap().is_empty());

    let row = store.action("sd-a").unwrap().expect("the row");
    assert_eq!(
        (row.handoff_id.as_str(), row.state),
        ("sd-h", DeliveryState::Pending)
    );
    assert_eq!(store.action("sd-none").unwrap(), None);
}

fn web_session(key: u8, who: &str, started: &str, expires: &str) -> SessionRow {
    SessionRow {
        key: [key; 32],
        who: who.into(),
        csrf: format!("csrf-{key}"),
        credentials: [7; 32],
        started_at: at(started),
        expires_at: at(expires),
    }
}

pub fn web_sessions_expire_end_and_are_bounded(store: &dyn Store) {
    let day = |d: u32| format!("2031-01-{d:02}T00:00:00Z");
    let a = web_session(1, "ana@example.com", &day(1), &day(3));
    let b = web_session(2, "bo@example.com", &day(1), &day(5));
    for s in [a.clone(), b.clone()] {
        store
            .write_blocking(move |tx| tx.start_session(&s, 3))
            .unwrap();
    }
    assert_eq!(store.session(&a.key, at(&day(2))).unwrap(), Some(a.clone()));
    assert_eq!(store.session(&[9; 32], at(&day(2))).unwrap(), None);
    // Past its end a session is nobody, though still in the table.
    assert_eq!(store.session(&a.key, at(&day(3))).unwrap(), None);

    // Ended: gone, and ending it again says so.
    let key = b.key;
    assert!(store
        .write_blocking(move |tx| tx.end_session(&key))
        .unwrap());
    assert!(!store
        .write_blocking(move |tx| tx.end_session(&key))
        .unwrap());
    assert_eq!(store.session(&b.key, at(&day(2))).unwrap(), None);

    // Past `keep` live sessions, the ones nearest their end go first.
    let later: Vec<SessionRow> = (0..4u8)
        .map(|i| web_session(10 + i, "maya@example.com", &day(2), &day(10 + u32::from(i))))
        .collect();
    for s in later.clone() {
        store
            .write_blocking(move |tx| tx.start_session(&s, 3))
            .unwrap();
    }
    let now = at(&day(2));
    let live: Vec<u8> = later
        .iter()
        .filter(|s| store.session(&s.key, now).unwrap().is_some())
        .map(|s| s.key[0])
        .collect();
    assert_eq!(live, vec![11, 12, 13]);
    // `a`, the nearest its end of all, went first.
    assert_eq!(store.session(&a.key, at(&day(2))).unwrap(), None);
    // A start drops the sessions already over by then.
    let c = web_session(20, "cy@example.com", &day(12), &day(20));
    store
        .write_blocking(move |tx| tx.start_session(&c, 100))
        .unwrap();
    // (12 ends the day c starts: over.)
    assert_eq!(store.session(&[11; 32], at(&day(2))).unwrap(), None);
    assert_eq!(store.session(&[12; 32], at(&day(2))).unwrap(), None);
    assert!(store.session(&[13; 32], at(&day(2))).unwrap().is_some());
}
