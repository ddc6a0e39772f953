//! The store on real SQLite files in a temp dir: the shared suite (one test
//! per check, each on a fresh file, and all of them on one file), then what
//! only a file-backed group-commit store has: batching, reopening.

mod suite;

use std::path::Path;
use std::sync::{Arc, Mutex};

use handoff::runtime::store::{
    ActionKind, Appended, BatchReport, Cause, NewNote, PageRequest, SqliteOptions, SqliteStore,
    StatusChange, Store, StoreExt, Synchronous, WorkflowFile, WorkflowVersion,
};
use suite::at;

fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir.join("handoff.db"), SqliteOptions::default()).expect("open the store")
}

macro_rules! each_check {
    ($($check:ident),* $(,)?) => {$(
        #[test]
        fn $check() {
            let dir = tempfile::tempdir().unwrap();
            suite::$check(&open(dir.path()));
        }
    )*};
}

each_check!(
    dedupe_by_id_and_by_hash,
    an_action_id_enqueued_twice_is_one_row,
    a_failing_job_rolls_back_alone,
    a_failing_replayable_job_rolls_back_alone,
    jobs_run_in_submission_order,
    pagination_has_no_gaps_or_repeats,
    outbox_claim_lease_retry_dead_redrive,
    drafts_wait_for_approval,
    next_cursor_is_atomic_under_concurrent_jobs,
    open_tasks_saturate_at_zero,
    a_handoff_reads_back_with_everything_that_touched_it,
    workflow_versions_are_kept_once,
    orphans_are_marked_and_cleared,
    a_sink_delivery_is_kept_once_per_sink,
    a_late_set_knows_a_newer_one_of_its_field_went_first,
    web_sessions_expire_end_and_are_bounded,
);

#[test]
fn the_whole_suite_on_one_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    suite::run(&store);
}

/// The SQLite writer runs a batch of replayable jobs without savepoints;
/// the failing job of the shared check makes it run that batch again with
/// them, once, and a batch that does not fail is never replayed.
#[test]
fn a_batch_with_a_failing_replayable_job_runs_again_with_savepoints() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    suite::a_failing_replayable_job_rolls_back_alone(&store);
    let c = store.writer_counters();
    assert_eq!(c.replayed_batches, 1, "{c:?}");
    // The check's lone failing job rolled back without a replay; the
    // aborting and the panicking job of the shared batch failed once each.
    assert_eq!(c.failed_jobs, 3, "{c:?}");
}

/// A store whose batches are reported to the returned list.
fn observed(dir: &Path) -> (SqliteStore, Arc<Mutex<Vec<BatchReport>>>) {
    let reports = Arc::new(Mutex::new(Vec::<BatchReport>::new()));
    let seen = Arc::clone(&reports);
    let options = SqliteOptions {
        on_batch: Some(Arc::new(move |r: &BatchReport| {
            seen.lock().unwrap().push(*r);
        })),
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(dir.join("handoff.db"), options).unwrap();
    (store, reports)
}

/// A batch mixing ordinary and replayable jobs cannot be replayed (an
/// ordinary job runs once), so it runs with a savepoint per job from the
/// start: its failing job rolls back alone and nothing runs twice. A job
/// alone in its batch that fails is rolled back with the transaction.
#[test]
fn a_mixed_batch_runs_careful_and_a_lone_failure_rolls_back_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (store, reports) = observed(dir.path());
    let (release, holder) = suite::hold_writer(&store);
    let ok1 = suite::submit_replayable(&store, |tx| suite::add_to(tx, "MX-sum", 1));
    let fails = suite::submit(&store, |tx| {
        suite::add_to(tx, "MX-sum", 100)?;
        Err(handoff::runtime::store::StoreError::abort(suite::Refused))
    });
    let ok2 = suite::submit_replayable(&store, |tx| suite::add_to(tx, "MX-sum", 10));
    drop(release);
    holder.wait_blocking().unwrap();
    assert!(ok1.wait_blocking().is_ok());
    assert!(fails.wait_blocking().is_err());
    assert!(ok2.wait_blocking().is_ok());

    let lone = suite::submit(&store, |tx| {
        suite::add_to(tx, "MX-lone", 1)?;
        Err(handoff::runtime::store::StoreError::abort(suite::Refused))
    });
    assert!(lone.wait_blocking().is_err());

    let (sum, lone) = store
        .write_blocking(|tx| {
            Ok((
                tx.load_record("deal", "MX-sum")?.map(|r| r.state),
                tx.load_record("deal", "MX-lone")?,
            ))
        })
        .unwrap();
    assert_eq!(sum.as_deref(), Some("11"));
    assert_eq!(lone, None);
    let reports = reports.lock().unwrap();
    let mixed = reports
        .iter()
        .find(|r| r.jobs == 3)
        .expect("the mixed batch");
    assert_eq!(
        (mixed.failed, mixed.committed, mixed.replayed),
        (1, true, false)
    );
    let c = store.writer_counters();
    assert_eq!(
        (c.replayed_batches, c.failed_jobs, c.failed_commits),
        (0, 2, 0),
        "{c:?}"
    );
    // The lone job's batch: one job, failed, rolled back without a replay.
    assert!(
        reports
            .iter()
            .any(|r| r.jobs == 1 && r.failed == 1 && r.committed && !r.replayed),
        "{reports:?}"
    );
}

/// Concurrent async writers queued while the writer is busy share one
/// COMMIT, and each hears back only after it.
#[test]
fn concurrent_async_writes_share_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (store, reports) = observed(dir.path());
    let store: Arc<dyn Store> = Arc::new(store);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    const N: u64 = 64;
    let (release, holder) = suite::hold_writer(&*store);
    let results = runtime.block_on(async {
        let tasks: Vec<_> = (0..N)
            .map(|i| {
                // `write` queues the job before returning, so all 64 are
                // queued before the writer is let go.
                let done = store.write(move |tx| {
                    let team = tx.next_cursor("async-team")?;
                    tx.adjust_open_tasks(&format!("p{}@example.com", i % 4), 1)?;
                    Ok(team)
                });
                tokio::spawn(done)
            })
            .collect();
        drop(release);
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap().unwrap());
        }
        out
    });
    holder.wait_blocking().unwrap();
    let mut cursors = results;
    cursors.sort_unstable();
    assert_eq!(cursors, (0..N).collect::<Vec<_>>());

    let c = store.writer_counters();
    assert!(c.largest_batch >= N, "{c:?}");
    assert_eq!(c.failed_jobs, 0);
    let reports = reports.lock().unwrap();
    assert!(reports.iter().any(|r| r.jobs as u64 >= N && r.committed));
    assert_eq!(
        reports.iter().map(|r| r.jobs as u64).sum::<u64>(),
        c.jobs,
        "the observer sees every batch"
    );
}

#[test]
fn reopening_the_file_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let t = at("2030-06-01T00:00:00Z");
    let audit_id = {
        let store = open(dir.path());
        let audit_id = store
            .write_blocking(move |tx| {
                tx.upsert_instance(&suite::handoff("ro-h", "review", "RO-1"))?;
                let mut e = suite::event("hubspot", Some("ro-e"), "ro-hash");
                e.handoff_ids = vec!["ro-h".into()];
                let Appended::New(audit_id) = tx.append_event(&e)? else {
                    panic!("a new event")
                };
                tx.status_change(&StatusChange {
                    handoff_id: "ro-h".into(),
                    from: None,
                    to: "review".into(),
                    at: t,
                    cause: Cause::Event(audit_id),
                    note: None,
                })?;
                tx.enqueue_action(&suite::action("ro-a", "ro-h", ActionKind::Task, t))?;
                tx.add_note(&NewNote {
                    handoff_id: "ro-h".into(),
                    kind: "answer".into(),
                    who: "sam@example.com".into(),
                    at: t,
                    text: "scope is setup".into(),
                    data: None,
                })?;
                tx.save_workflow_version(&WorkflowVersion {
                    id: "ro-v".into(),
                    first_loaded_at: t,
                    files: vec![WorkflowFile {
                        name: "k.handoff".into(),
                        text: "object deal {}".into(),
                    }],
                })?;
                tx.next_cursor("ro-team")?;
                tx.adjust_open_tasks("sam@example.com", 3)?;
                Ok(audit_id)
            })
            .unwrap();
        store.close();
        audit_id
    };
    let first_reopen = {
        // What the first reopen reads; a second reopen must read the same.
        let store = open(dir.path());
        let d = store.handoff("ro-h").unwrap().unwrap();
        store.close();
        d
    };
    let store = open(dir.path());
    assert_eq!(store.handoff("ro-h").unwrap().unwrap(), first_reopen);
    assert_eq!(first_reopen.history.len(), 1);
    assert_eq!(first_reopen.events[0].audit_id, audit_id);
    assert_eq!(first_reopen.actions[0].id, "ro-a");
    assert_eq!(first_reopen.notes[0].note.text, "scope is setup");
    assert_eq!(
        store.workflow_version("ro-v").unwrap().unwrap().files.len(),
        1
    );
    let (cursor, open_tasks, dup) = store
        .write_blocking(|tx| {
            Ok((
                tx.next_cursor("ro-team")?,
                tx.open_tasks("sam@example.com")?,
                tx.append_event(&suite::event("hubspot", Some("ro-e"), "other"))?,
            ))
        })
        .unwrap();
    assert_eq!(cursor, 1, "the cursor moved on from where it was");
    assert_eq!(open_tasks, 3);
    assert_eq!(dup, Appended::Duplicate(audit_id));
    let tasks = store.list_tasks(&PageRequest::first(10)).unwrap();
    assert_eq!(tasks.items.len(), 1);
}

#[test]
fn writes_after_close_are_refused_and_reads_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .write_blocking(|tx| tx.upsert_instance(&suite::handoff("cl-h", "paused", "CL-1")))
        .unwrap();
    store.close();
    let err = store.write_blocking(|tx| tx.next_cursor("t")).unwrap_err();
    assert!(matches!(
        err,
        handoff::runtime::store::StoreError::WriterStopped
    ));
    assert!(store.handoff("cl-h").unwrap().is_some());
}

/// A rough throughput number, not an assertion: `cargo test --release
/// --test store -- --ignored --nocapture throughput`.
#[test]
#[ignore]
fn throughput() {
    for sync in [Synchronous::Full, Synchronous::Normal] {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions {
            synchronous: sync,
            ..SqliteOptions::default()
        };
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(dir.path().join("handoff.db"), options).unwrap());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        const CLIENTS: usize = 32;
        const EACH: usize = 500;
        let started = std::time::Instant::now();
        runtime.block_on(async {
            let clients: Vec<_> = (0..CLIENTS)
                .map(|c| {
                    let store = Arc::clone(&store);
                    tokio::spawn(async move {
                        for i in 0..EACH {
                            let id = format!("tp-{c}-{i}");
                            store.write(move |tx| ingest_like(tx, &id)).await.unwrap();
                        }
                    })
                })
                .collect();
            for c in clients {
                c.await.unwrap();
            }
        });
        let secs = started.elapsed().as_secs_f64();
        let c = store.writer_counters();
        println!(
            "{sync:?}: {:.0} ingest jobs/s, {} batches, mean batch {:.1}, largest {}, mean commit {:.0} µs",
            (CLIENTS * EACH) as f64 / secs,
            c.batches,
            c.jobs as f64 / c.batches as f64,
            c.largest_batch,
            c.commit_micros as f64 / c.batches as f64,
        );
    }
}

/// What one webhook event writes: dedupe check, record, instance, event,
/// status change, one action.
fn ingest_like(
    tx: &mut dyn handoff::runtime::store::WriteTx,
    id: &str,
) -> Result<(), handoff::runtime::store::StoreError> {
    let t = at("2030-01-01T00:00:00Z");
    let key = handoff::runtime::store::EventKey {
        source: "generic",
        event_id: Some(id),
        content_hash: id,
    };
    if tx.processed(&key)?.is_some() {
        return Ok(());
    }
    let _ = tx.load_record("deal", id)?;
    tx.save_record(&handoff::runtime::store::RecordRow {
        object: "deal".into(),
        record_id: id.into(),
        state: r#"{"fields":{"stage":{"value":"Won","occurred_at":"2030-01-01T00:00:00Z"}}}"#
            .into(),
        workflow_version: Some("v1".into()),
        updated_at: t,
    })?;
    let h = format!("{id}/Kickoff");
    tx.upsert_instance(&suite::handoff(&h, "proceeded", id))?;
    let mut e = suite::event("generic", Some(id), id);
    e.handoff_ids = vec![h.clone()];
    let Appended::New(audit) = tx.append_event(&e)? else {
        return Ok(());
    };
    tx.status_change(&StatusChange {
        handoff_id: h.clone(),
        from: None,
        to: "proceeded".into(),
        at: t,
        cause: Cause::Event(audit),
        note: None,
    })?;
    tx.enqueue_action(&suite::action(
        &format!("{h}/task"),
        &h,
        ActionKind::Task,
        t,
    ))?;
    Ok(())
}
