//! The writer's failure paths on a real SQLite file, with BEGIN or COMMIT
//! made to fail on cue: what the shared store suite cannot reach, since a
//! healthy file never refuses them. Above all: a batch replayed after a
//! failed job, whose second BEGIN or COMMIT then fails, answers every job
//! with an error, keeps none of their writes, and leaves the writer able to
//! take the next batch. And the sync thread's: no answer before the sync
//! that covers it, the writer going on meanwhile, and nothing acknowledged
//! after a failed sync.

use std::any::Any;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

use super::{set_write_pragmas, upgrade, SqliteOptions, WriteConn};
use crate::runtime::store::{RecordRow, StoreError, WriteTx};
use crate::runtime::writer::{BatchReport, JobResult, Receipt, Syncer, Transactor, Writer};

const BOUND: Duration = Duration::from_secs(30);

/// A write connection whose `begin` and `commit` calls fail when their
/// number (1 for the first) is the one named.
struct Faulty {
    inner: WriteConn,
    begins: usize,
    commits: usize,
    fail_begin: usize,
    fail_commit: usize,
    sync: Option<SyncFaults>,
    /// Panic right after this COMMIT (its number) succeeds.
    panic_after_commit: usize,
}

/// What the sync thread's syncer does besides the real sync: fail its
/// `fail`-th sync, and if `gate` is set, announce each sync's number and
/// wait for a go before making it.
#[derive(Default)]
struct SyncFaults {
    fail: usize,
    gate: Option<(mpsc::Sender<usize>, mpsc::Receiver<()>)>,
}

/// The real [`Syncer`] of the write connection, with [`SyncFaults`].
struct FaultySyncer {
    inner: Box<dyn Syncer>,
    syncs: usize,
    faults: SyncFaults,
}

impl Syncer for FaultySyncer {
    fn sync(&mut self) -> Result<(), StoreError> {
        self.syncs += 1;
        if let Some((started, go)) = &self.faults.gate {
            let _ = started.send(self.syncs);
            go.recv_timeout(BOUND).expect("the test lets the sync go");
        }
        if self.syncs == self.faults.fail {
            return Err(StoreError::Sync {
                path: "test".into(),
                reason: "injected by the test".into(),
            });
        }
        self.inner.sync()
    }
}

fn injected(doing: &'static str) -> StoreError {
    StoreError::Backend {
        doing,
        reason: "injected by the test".into(),
    }
}

impl Transactor for Faulty {
    fn begin(&mut self) -> Result<(), StoreError> {
        self.begins += 1;
        if self.begins == self.fail_begin {
            return Err(injected("starting a batch"));
        }
        self.inner.begin()
    }
    fn savepoint(&mut self) -> Result<(), StoreError> {
        self.inner.savepoint()
    }
    fn release(&mut self) -> Result<(), StoreError> {
        self.inner.release()
    }
    fn rollback_savepoint(&mut self) -> Result<(), StoreError> {
        self.inner.rollback_savepoint()
    }
    fn tx(&mut self) -> &mut dyn WriteTx {
        self.inner.tx()
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        self.commits += 1;
        if self.commits == self.fail_commit {
            return Err(injected("committing a batch"));
        }
        self.inner.commit()?;
        if self.commits == self.panic_after_commit {
            panic!("injected by the test: a panic after COMMIT");
        }
        Ok(())
    }
    fn rollback(&mut self) {
        self.inner.rollback();
    }
    fn syncer(&mut self) -> Result<Option<Box<dyn Syncer>>, StoreError> {
        let inner = self.inner.syncer()?.expect("synchronous=FULL has a syncer");
        Ok(Some(Box::new(FaultySyncer {
            inner,
            syncs: 0,
            faults: self.sync.take().unwrap_or_default(),
        })))
    }
}

/// A writer on a fresh file whose `fail_begin`-th BEGIN and
/// `fail_commit`-th COMMIT fail; the batches it reports (each sent once it
/// is over, just before its jobs are answered); the file.
fn faulty_writer(dir: &std::path::Path, fail_begin: usize, fail_commit: usize) -> FaultyWriter {
    faulty_writer_syncing(dir, fail_begin, fail_commit, SyncFaults::default())
}

/// [`faulty_writer`], with faults in the sync thread too.
fn faulty_writer_syncing(
    dir: &std::path::Path,
    fail_begin: usize,
    fail_commit: usize,
    sync: SyncFaults,
) -> FaultyWriter {
    faulty_writer_panicking(dir, fail_begin, fail_commit, sync, 0)
}

/// [`faulty_writer_syncing`], whose writer thread also panics right after
/// its `panic_after_commit`-th COMMIT.
fn faulty_writer_panicking(
    dir: &std::path::Path,
    fail_begin: usize,
    fail_commit: usize,
    sync: SyncFaults,
    panic_after_commit: usize,
) -> FaultyWriter {
    let path = dir.join("handoff.db");
    let mut conn = Connection::open(&path).unwrap();
    set_write_pragmas(&conn, "test", &SqliteOptions::default()).unwrap();
    upgrade(&mut conn, "test").unwrap();
    let (inner, _checkpointer) =
        WriteConn::new(conn, &path, "test", super::Synchronous::Full).unwrap();
    let (report, reports) = mpsc::channel();
    let report = std::sync::Mutex::new(report);
    let faulty = Faulty {
        inner,
        begins: 0,
        commits: 0,
        fail_begin,
        fail_commit,
        sync: Some(sync),
        panic_after_commit,
    };
    let observer = Arc::new(move |r: &BatchReport| {
        let _ = report.lock().map(|s| s.send(*r));
    });
    let writer = Writer::start(faulty, 64, Some(observer)).unwrap();
    (writer, reports, path)
}

fn save(id: &'static str) -> impl Fn(&mut dyn WriteTx) -> JobResult + Send {
    move |tx| {
        tx.save_record(&RecordRow {
            object: "deal".into(),
            record_id: id.into(),
            state: "{}".into(),
            workflow_version: None,
            updated_at: jiff::Timestamp::UNIX_EPOCH,
        })?;
        Ok(Box::new(()) as Box<dyn Any + Send>)
    }
}

fn refuse(tx: &mut dyn WriteTx) -> JobResult {
    save("refused")(tx)?;
    Err(injected("a job that fails"))
}

/// Runs a holding job in a batch of its own (BEGIN 1, COMMIT 1), then
/// `ok-1`, a failing job and `ok-2` together in the next batch.
fn batch_with_a_failing_job(writer: &Writer) -> Vec<JobResult> {
    let (release, released) = mpsc::channel::<()>();
    let (started, has_started) = mpsc::channel::<()>();
    let holder = writer.submit(Box::new(move |_tx| {
        let _ = started.send(());
        let _ = released.recv_timeout(BOUND);
        Ok(Box::new(()) as Box<dyn Any + Send>)
    }));
    has_started.recv_timeout(BOUND).expect("the holder runs");
    let receipts: Vec<Receipt> = vec![
        writer.submit_replayable(Box::new(save("ok-1"))),
        writer.submit_replayable(Box::new(refuse)),
        writer.submit_replayable(Box::new(save("ok-2"))),
    ];
    drop(release);
    holder.wait_blocking().expect("the holding batch commits");
    receipts.into_iter().map(Receipt::wait_blocking).collect()
}

fn kept(path: &std::path::Path) -> Vec<String> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT record_id FROM records ORDER BY record_id")
        .unwrap();
    let ids = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap();
    ids
}

/// The report of the next batch of three jobs (waited for, with a bound).
fn batch_of_three(reports: &mpsc::Receiver<BatchReport>) -> BatchReport {
    loop {
        let r = reports.recv_timeout(BOUND).expect("the batch is reported");
        if r.jobs == 3 {
            return r;
        }
    }
}

fn injected_error(result: &JobResult) -> bool {
    matches!(result, Err(StoreError::Backend { reason, .. }) if reason == "injected by the test")
}

/// With the `fail_begin`-th BEGIN or `fail_commit`-th COMMIT failing
/// inside the replay of a batch: every job gets the error, nothing is
/// kept, the report says so, and the writer takes the next batch.
fn a_failed_replay_answers_every_job_and_keeps_nothing(fail_begin: usize, fail_commit: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (writer, reports, path) = faulty_writer(dir.path(), fail_begin, fail_commit);
    let results = batch_with_a_failing_job(&writer);
    assert!(results.iter().all(injected_error), "{results:?}");
    assert!(kept(&path).is_empty());
    let r = batch_of_three(&reports);
    assert_eq!((r.failed, r.committed, r.replayed), (3, false, true));
    writer
        .submit_replayable(Box::new(save("after")))
        .wait_blocking()
        .expect("the next batch commits");
    assert_eq!(kept(&path), ["after"]);
    let c = writer.counters();
    assert_eq!((c.replayed_batches, c.failed_commits), (1, 1), "{c:?}");
}

#[test]
fn a_replayed_batch_whose_begin_fails_answers_every_job_and_keeps_nothing() {
    // BEGIN 1 is the holder's, BEGIN 2 starts the bare run; BEGIN 3, the
    // replay's, fails.
    a_failed_replay_answers_every_job_and_keeps_nothing(3, 0);
}

#[test]
fn a_replayed_batch_whose_commit_fails_answers_every_job_and_keeps_nothing() {
    // COMMIT 1 is the holder's; COMMIT 2, after the replay, fails.
    a_failed_replay_answers_every_job_and_keeps_nothing(0, 2);
}

#[test]
fn without_faults_the_replay_keeps_the_good_jobs_once() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, reports, path) = faulty_writer(dir.path(), 0, 0);
    let results = batch_with_a_failing_job(&writer);
    assert!(results[0].is_ok() && results[2].is_ok());
    assert!(injected_error(&results[1]), "{:?}", results[1]);
    assert_eq!(kept(&path), ["ok-1", "ok-2"]);
    let r = batch_of_three(&reports);
    assert_eq!((r.failed, r.committed, r.replayed), (1, true, true));
}

/// A writer, the batches it reports, its file.
type FaultyWriter = (Writer, mpsc::Receiver<BatchReport>, std::path::PathBuf);

/// A writer whose sync thread announces each sync's number on the first
/// channel and waits for a go on the second before making it; its
/// `fail`-th sync fails.
fn gated_writer(
    dir: &std::path::Path,
    fail: usize,
) -> (FaultyWriter, mpsc::Receiver<usize>, mpsc::Sender<()>) {
    let (started, sync_started) = mpsc::channel();
    let (go, gate) = mpsc::channel();
    let faults = SyncFaults {
        fail,
        gate: Some((started, gate)),
    };
    (faulty_writer_syncing(dir, 0, 0, faults), sync_started, go)
}

/// Waits (with a bound) until the file holds `ids`, as another connection
/// reads it: a commit the writer made, whether or not it was answered.
fn wait_until_kept(path: &std::path::Path, ids: &[&str]) {
    let deadline = std::time::Instant::now() + BOUND;
    while kept(path) != ids {
        assert!(
            std::time::Instant::now() < deadline,
            "the file never held {ids:?}: {:?}",
            kept(path)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn answers_wait_for_their_sync_while_the_writer_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let ((writer, reports, path), sync_started, go) = gated_writer(dir.path(), 0);

    let mut first = writer.submit_replayable(Box::new(save("a")));
    assert_eq!(sync_started.recv_timeout(BOUND), Ok(1));
    // Committed, so other connections see it, but not yet on the disk:
    // not answered.
    assert_eq!(kept(&path), ["a"]);
    assert!(first.try_answer().is_none(), "answered before its sync");

    // The writer does not wait for the sync: the next batch commits now.
    let mut second = writer.submit_replayable(Box::new(save("b")));
    wait_until_kept(&path, &["a", "b"]);
    assert!(first.try_answer().is_none(), "answered before its sync");
    assert!(second.try_answer().is_none(), "answered before its sync");

    // The first sync began before "b" committed, so it answers only "a".
    go.send(()).unwrap();
    first.wait_blocking().expect("a is answered after its sync");
    assert_eq!(sync_started.recv_timeout(BOUND), Ok(2));
    assert!(second.try_answer().is_none(), "answered before its sync");
    go.send(()).unwrap();
    second
        .wait_blocking()
        .expect("b is answered after its sync");

    // Each batch is reported (and counted) just before it is answered, its
    // commit time running to the end of its sync.
    for _ in 0..2 {
        let r = reports.recv_timeout(BOUND).expect("the batch is reported");
        assert!(r.committed && r.commit <= r.total, "{r:?}");
    }
    let c = writer.counters();
    assert_eq!((c.batches, c.syncs, c.failed_commits), (2, 2, 0), "{c:?}");
}

/// A job that reads what the batch before it wrote and then fails: its
/// error answer rests on that write (here, that "a" exists), so it must not
/// reach the caller before that batch is on the disk.
#[test]
fn an_error_answer_waits_for_the_sync_of_the_batches_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let ((writer, _reports, path), sync_started, go) = gated_writer(dir.path(), 0);

    let mut first = writer.submit_replayable(Box::new(save("a")));
    assert_eq!(sync_started.recv_timeout(BOUND), Ok(1));
    let (ran, refusal_ran) = mpsc::channel();
    let mut refused = writer.submit(Box::new(move |tx| {
        let seen = tx.load_record("deal", "a")?.is_some();
        let _ = ran.send(());
        Err(StoreError::NotFound {
            what: "a record that is not there yet",
            id: format!("a was there: {seen}"),
        })
    }));
    // A batch of its own (the next job is queued only once it ran); once a
    // later batch commits, the writer has put the refusal behind it.
    refusal_ran
        .recv_timeout(BOUND)
        .expect("the refusing job runs");
    let third = writer.submit_replayable(Box::new(save("c")));
    wait_until_kept(&path, &["a", "c"]);
    assert!(first.try_answer().is_none(), "answered before its sync");
    assert!(
        refused.try_answer().is_none(),
        "an error answered before the batch it rests on was synced"
    );

    go.send(()).unwrap();
    first.wait_blocking().expect("a is answered after its sync");
    // The refusal is answered now (or with "c", after the next sync, when
    // the sync thread took both off its queue together).
    assert_eq!(sync_started.recv_timeout(BOUND), Ok(2));
    go.send(()).unwrap();
    let answer = refused.wait_blocking();
    assert!(
        matches!(&answer, Err(StoreError::NotFound { id, .. }) if id == "a was there: true"),
        "{answer:?}"
    );
    third.wait_blocking().expect("c is answered after its sync");
}

#[test]
fn after_a_failed_sync_nothing_more_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let faults = SyncFaults {
        fail: 1,
        gate: None,
    };
    let (writer, reports, path) = faulty_writer_syncing(dir.path(), 0, 0, faults);
    let sync_failed = |r: &JobResult| matches!(r, Err(StoreError::Sync { reason, .. }) if reason == "injected by the test");

    let first = writer
        .submit_replayable(Box::new(save("a")))
        .wait_blocking();
    assert!(sync_failed(&first), "{first:?}");
    let r = reports.recv_timeout(BOUND).expect("the batch is reported");
    assert_eq!((r.jobs, r.failed, r.committed), (1, 1, false));

    // Later jobs get the same error and are not even run: once the disk has
    // failed a sync, a later one that succeeds proves nothing.
    let second = writer
        .submit_replayable(Box::new(save("b")))
        .wait_blocking();
    assert!(sync_failed(&second), "{second:?}");
    assert_eq!(kept(&path), ["a"]);
    let r = reports.recv_timeout(BOUND).expect("the batch is reported");
    assert_eq!((r.jobs, r.failed, r.committed), (1, 1, false));
    let c = writer.counters();
    assert_eq!((c.failed_commits, c.failed_jobs), (2, 2), "{c:?}");
}

#[test]
fn a_batch_queued_behind_a_failed_sync_is_not_acknowledged() {
    // "b" commits while the failing sync is held, so it waits in the sync
    // thread's queue: the sync thread itself must refuse it, even though a
    // second sync would succeed.
    let dir = tempfile::tempdir().unwrap();
    let ((writer, _reports, path), sync_started, go) = gated_writer(dir.path(), 1);
    let a = writer.submit_replayable(Box::new(save("a")));
    assert_eq!(sync_started.recv_timeout(BOUND), Ok(1));
    let b = writer.submit_replayable(Box::new(save("b")));
    wait_until_kept(&path, &["a", "b"]);
    go.send(()).unwrap();
    assert!(a.wait_blocking().is_err());
    // Lets a second sync through, should one (wrongly) be made.
    let _ = go.send(());
    assert!(b.wait_blocking().is_err());
    assert_eq!(writer.counters().syncs, 1);
}

#[test]
fn shutdown_waits_for_the_sync_thread_to_answer_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let ((writer, _reports, _path), sync_started, go) = gated_writer(dir.path(), 0);
    let writer = Arc::new(writer);
    let a = writer.submit_replayable(Box::new(save("a")));
    assert_eq!(sync_started.recv_timeout(BOUND), Ok(1));
    let b = writer.submit_replayable(Box::new(save("b")));
    // Once shutdown returns, both answers are there already: the jobs
    // queued before it ran, and their syncs were waited for.
    let closing = {
        let writer = Arc::clone(&writer);
        std::thread::spawn(move || {
            let (mut a, mut b) = (a, b);
            writer.shutdown();
            (a.try_answer(), b.try_answer())
        })
    };
    go.send(()).unwrap();
    assert_eq!(sync_started.recv_timeout(BOUND), Ok(2));
    go.send(()).unwrap();
    let (a, b) = closing.join().unwrap();
    assert!(matches!(a, Some(Ok(_))), "{a:?}");
    assert!(matches!(b, Some(Ok(_))), "{b:?}");
    let later = writer
        .submit_replayable(Box::new(save("c")))
        .wait_blocking();
    assert!(matches!(later, Err(StoreError::WriterStopped)), "{later:?}");
}

#[test]
fn reads_wait_until_what_they_may_see_is_synced() {
    let dir = tempfile::tempdir().unwrap();
    let ((writer, _reports, path), sync_started, go) = gated_writer(dir.path(), 0);
    let durability = Arc::clone(writer.durability().expect("FULL has a sync thread"));
    assert!(!durability.unsettled());
    durability.wait(BOUND).expect("nothing to wait for");

    let a = writer.submit_replayable(Box::new(save("a")));
    assert_eq!(sync_started.recv_timeout(BOUND), Ok(1));
    // Readers can see "a", which is not yet on the disk.
    assert_eq!(kept(&path), ["a"]);
    assert!(durability.unsettled());
    // The sync is held at its gate, so a read cannot go on: with a short
    // bound it gives up.
    let held = durability.wait(Duration::from_millis(20));
    assert!(
        matches!(&held, Err(StoreError::Backend { doing, .. }) if doing.contains("confirm")),
        "{held:?}"
    );
    go.send(()).unwrap();
    durability
        .wait(BOUND)
        .expect("the read goes on once a is synced");
    assert!(!durability.unsettled());
    a.wait_blocking().unwrap();
}

#[test]
fn a_failed_commit_does_not_hold_reads_and_a_failed_sync_fails_them() {
    let dir = tempfile::tempdir().unwrap();
    let faults = SyncFaults {
        fail: 2,
        gate: None,
    };
    // COMMIT 1 fails: its number is synced anyway (sync 1), so readers
    // waiting on it go on, and its error answer comes after that.
    let (writer, _reports, _path) = faulty_writer_syncing(dir.path(), 0, 1, faults);
    let durability = Arc::clone(writer.durability().unwrap());
    let first = writer
        .submit_replayable(Box::new(save("a")))
        .wait_blocking();
    assert!(injected_error(&first), "{first:?}");
    durability
        .wait(BOUND)
        .expect("an abandoned batch holds nobody");
    assert_eq!(writer.counters().syncs, 1);
    // COMMIT 2 succeeds, its sync (the second) fails: what readers may see
    // is not known to be on the disk, so reads fail from now on.
    let second = writer
        .submit_replayable(Box::new(save("b")))
        .wait_blocking();
    assert!(matches!(second, Err(StoreError::Sync { .. })), "{second:?}");
    let read = durability.wait(BOUND);
    assert!(matches!(read, Err(StoreError::Sync { .. })), "{read:?}");
    assert!(durability.broken().is_some());
}

#[test]
fn a_writer_that_panics_after_commit_fails_reads_at_once() {
    // The batch was numbered and committed (readers may see it), then the
    // writer thread died before handing it to the sync thread: nothing can
    // confirm it, so reads and writes fail now rather than wait.
    let dir = tempfile::tempdir().unwrap();
    let (writer, _reports, _path) =
        faulty_writer_panicking(dir.path(), 0, 0, SyncFaults::default(), 1);
    let durability = Arc::clone(writer.durability().unwrap());
    let answer = writer
        .submit_replayable(Box::new(save("a")))
        .wait_blocking();
    assert!(
        matches!(answer, Err(StoreError::WriterStopped)),
        "{answer:?}"
    );
    let read = durability.wait(BOUND);
    assert!(
        matches!(&read, Err(StoreError::Sync { reason, .. }) if reason.contains("writer thread")),
        "{read:?}"
    );
}

#[test]
fn a_store_read_waits_for_the_sync_of_what_it_saw() {
    use crate::runtime::store::Store;
    let dir = tempfile::tempdir().unwrap();
    let ((writer, _reports, path), sync_started, go) = gated_writer(dir.path(), 0);
    let reader = super::open_reader(&path, "test", BOUND).unwrap();
    let checkpointer = Arc::new(super::Checkpointer::start(&path, "test").unwrap());
    let store = super::SqliteStore {
        path: "test".into(),
        pragmas: super::Pragmas {
            journal_mode: "wal".into(),
            synchronous: super::Synchronous::Full,
            busy_timeout: BOUND,
            foreign_keys: true,
        },
        writer,
        readers: super::ReadPool::new(vec![reader]),
        checkpointer,
        durable_wait: Duration::from_millis(20),
    };
    let a = store.submit(Box::new(save("a")));
    assert_eq!(sync_started.recv_timeout(BOUND), Ok(1));
    // The record is committed but its sync is held: the store's read
    // finds it and then gives up waiting for the disk.
    let held = store.crm_record("deal", "a");
    assert!(
        matches!(&held, Err(StoreError::Backend { doing, .. }) if doing.contains("confirm")),
        "{held:?}"
    );
    go.send(()).unwrap();
    a.wait_blocking().unwrap();
    assert!(store.crm_record("deal", "a").unwrap().is_some());
    store.close();
}
