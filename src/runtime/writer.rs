//! Group commit: one writer thread owns the write connection and turns many
//! concurrent write jobs into one transaction.
//!
//! The thread takes every job queued (up to `max_batch`), runs them in one
//! transaction (a failing or panicking job rolls back alone and gets its
//! error; the others go on), commits once, and only then answers each job.
//! One fsync then covers a whole batch, which is what lets a single SQLite
//! file keep up with many webhook requests at `synchronous=FULL`.
//!
//! A job rolls back alone inside its own savepoint. A savepoint is not free: SQLite copies every page a job is the first in
//! its savepoint to change, and the hot pages (the right edges of the
//! indexes) are copied again for every job. So a batch whose jobs can all
//! run twice ([`ReplayableJob`], what ingest submits), or a batch of one,
//! first runs *bare*, without savepoints. Jobs almost never fail; when one
//! does, the bare run is rolled back whole and the batch runs again the
//! careful way, so the outcome is the same as if it had gone careful from
//! the start.
//!
//! Jobs run in the order they were submitted (one queue, one thread), so two
//! events for the same record apply in the order they arrived.
//!
//! A backend can hand the writer a [`Syncer`]: its COMMIT then does not wait
//! for the disk, and a second thread makes committed batches durable while
//! the writer goes on with the next one. Every answer of a batch still
//! waits for a sync that began after the batch committed, and reads wait on
//! [`Durability`], so nothing is acknowledged or shown before it is on the
//! disk; what changes is that the writer no longer sits idle through each
//! fsync, and one fsync covers every batch committed while the previous one
//! ran (see `writer/sync.rs`).
//!
//! This file knows no SQL: the backend drives the transaction through
//! [`Transactor`].

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::runtime::store::{StoreError, WriteTx};

mod sync;
use sync::{sync_loop, Committed, Finisher, Over, ToSync, WriterStop};
pub use sync::{Durability, Syncer};

/// What a job returns, its value boxed so one queue carries every type.
pub type JobResult = Result<Box<dyn Any + Send>, StoreError>;

/// A write job: domain verbs in, a boxed value out.
pub type Job = Box<dyn FnOnce(&mut dyn WriteTx) -> JobResult + Send>;

/// A write job that may run more than once: when a job of a batch run
/// without savepoints fails, the writer rolls the batch back and runs it
/// again. Only the writes of the run that commits are kept, and only its
/// value is answered, so such a job must have no effect outside the
/// transaction (no counters, no channels); `Fn` keeps it from using up
/// what it captured.
pub type ReplayableJob = Box<dyn Fn(&mut dyn WriteTx) -> JobResult + Send>;

/// A queued job of either kind.
enum Work {
    Once(Job),
    Replayable(ReplayableJob),
}

impl Work {
    fn run(self, tx: &mut dyn WriteTx) -> JobResult {
        match self {
            Work::Once(job) => job(tx),
            Work::Replayable(job) => job(tx),
        }
    }
}

/// The backend side of a batch: one transaction, and a savepoint per job
/// when the batch runs careful.
pub trait Transactor: Send + 'static {
    /// Starts the batch's transaction.
    fn begin(&mut self) -> Result<(), StoreError>;
    /// Starts a job's savepoint.
    fn savepoint(&mut self) -> Result<(), StoreError>;
    /// Keeps the job's writes (they commit with the batch).
    fn release(&mut self) -> Result<(), StoreError>;
    /// Undoes the job's writes.
    fn rollback_savepoint(&mut self) -> Result<(), StoreError>;
    /// The verbs the job uses.
    fn tx(&mut self) -> &mut dyn WriteTx;
    /// Commits the batch.
    fn commit(&mut self) -> Result<(), StoreError>;
    /// Abandons the batch: after a failed commit, or to run it again.
    fn rollback(&mut self);
    /// Called once when the writer starts. `Some` when [`Transactor::commit`]
    /// leaves durability to the returned [`Syncer`] (its own thread then
    /// syncs before any answer); `None` when COMMIT itself waits for the
    /// disk, or when nothing asks for durability.
    fn syncer(&mut self) -> Result<Option<Box<dyn Syncer>>, StoreError> {
        Ok(None)
    }
}

/// One committed (or failed) batch, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchReport {
    /// Jobs in the batch.
    pub jobs: usize,
    /// Jobs that returned an error and rolled back alone.
    pub failed: usize,
    /// False when the batch failed as a whole (BEGIN or COMMIT failed, a
    /// failed job could not be undone, or the sync that should have covered
    /// it failed, though the transaction had committed): every job then got
    /// an error. A lone job that failed and was rolled back leaves this
    /// true.
    pub committed: bool,
    /// Whether a job failed in the batch's run without savepoints, so the
    /// batch ran again with them.
    pub replayed: bool,
    /// Time from COMMIT to durable: the COMMIT (with its fsync), or with a
    /// [`Syncer`] the COMMIT and the wait for the sync that covers it.
    pub commit: Duration,
    /// Time from BEGIN to the answers.
    pub total: Duration,
}

/// Called for every batch (a metrics histogram, a log line), just before
/// its jobs are answered: from the writer thread, or with a [`Syncer`] from
/// the sync thread.
pub type BatchObserver = Arc<dyn Fn(&BatchReport) + Send + Sync>;

/// Running totals since the writer started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterCounters {
    pub batches: u64,
    pub jobs: u64,
    pub failed_jobs: u64,
    pub failed_commits: u64,
    pub largest_batch: u64,
    /// Sum of the batches' [`BatchReport::commit`] times, microseconds.
    pub commit_micros: u64,
    /// Batches that ran again with savepoints after a job failed without.
    pub replayed_batches: u64,
    /// Calls to the [`Syncer`], each covering one or more batches (zero
    /// when the backend gave none).
    pub syncs: u64,
}

#[derive(Default)]
struct Totals {
    batches: AtomicU64,
    jobs: AtomicU64,
    failed_jobs: AtomicU64,
    failed_commits: AtomicU64,
    largest_batch: AtomicU64,
    commit_micros: AtomicU64,
    replayed_batches: AtomicU64,
    syncs: AtomicU64,
}

impl Totals {
    fn add(&self, r: &BatchReport) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.jobs.fetch_add(r.jobs as u64, Ordering::Relaxed);
        self.failed_jobs
            .fetch_add(r.failed as u64, Ordering::Relaxed);
        if !r.committed {
            self.failed_commits.fetch_add(1, Ordering::Relaxed);
        }
        if r.replayed {
            self.replayed_batches.fetch_add(1, Ordering::Relaxed);
        }
        self.largest_batch
            .fetch_max(r.jobs as u64, Ordering::Relaxed);
        let micros = u64::try_from(r.commit.as_micros()).unwrap_or(u64::MAX);
        self.commit_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn snapshot(&self) -> WriterCounters {
        WriterCounters {
            batches: self.batches.load(Ordering::Relaxed),
            jobs: self.jobs.load(Ordering::Relaxed),
            failed_jobs: self.failed_jobs.load(Ordering::Relaxed),
            failed_commits: self.failed_commits.load(Ordering::Relaxed),
            largest_batch: self.largest_batch.load(Ordering::Relaxed),
            commit_micros: self.commit_micros.load(Ordering::Relaxed),
            replayed_batches: self.replayed_batches.load(Ordering::Relaxed),
            syncs: self.syncs.load(Ordering::Relaxed),
        }
    }
}

/// The answer to one submitted job.
pub struct Receipt(Result<oneshot::Receiver<JobResult>, StoreError>);

impl Receipt {
    /// Waits for the job's batch to commit.
    pub async fn wait(self) -> JobResult {
        match self.0 {
            Ok(rx) => rx.await.unwrap_or(Err(StoreError::WriterStopped)),
            Err(e) => Err(e),
        }
    }

    /// Waits on this thread; panics if called on an async runtime's thread.
    pub fn wait_blocking(self) -> JobResult {
        match self.0 {
            Ok(rx) => rx.blocking_recv().unwrap_or(Err(StoreError::WriterStopped)),
            Err(e) => Err(e),
        }
    }

    /// The answer if it has come, without waiting (for tests that check
    /// nothing is answered too early).
    #[cfg(test)]
    pub(crate) fn try_answer(&mut self) -> Option<JobResult> {
        match &mut self.0 {
            Ok(rx) => rx.try_recv().ok(),
            Err(e) => Some(Err(e.clone())),
        }
    }

    /// A receipt for a job that was never queued.
    pub fn failed(e: StoreError) -> Receipt {
        Receipt(Err(e))
    }
}

struct Envelope {
    work: Work,
    reply: oneshot::Sender<JobResult>,
}

type Answers = Vec<(oneshot::Sender<JobResult>, JobResult)>;

/// The handle on the writer thread. Dropping it (or [`Writer::shutdown`])
/// lets the thread finish what is queued, then stop.
pub struct Writer {
    queue: Mutex<Option<mpsc::Sender<Envelope>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    totals: Arc<Totals>,
    /// With a [`Syncer`]: what readers wait on.
    durability: Option<Arc<Durability>>,
}

/// The writer thread's end of the sync thread. Dropped when the writer
/// thread ends, even by a panic: it closes the queue and waits for the sync
/// thread to sync and answer what is left, before the connection closes
/// (closing the last one may checkpoint and delete the log it syncs).
struct SyncHandoff {
    queue: Option<mpsc::Sender<ToSync>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for SyncHandoff {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Writer {
    /// Starts the writer thread on `target` (and the sync thread, if
    /// `target` gives a [`Syncer`]). The queue itself is unbounded: it
    /// holds one job per request waiting for its commit, and the webhooks,
    /// the only writers a sender outside controls, take at most
    /// `max_in_flight` requests at once (`http::in_flight`).
    pub fn start<T: Transactor>(
        mut target: T,
        max_batch: usize,
        observer: Option<BatchObserver>,
    ) -> Result<Writer, StoreError> {
        let thread_error = |what: &str, e: std::io::Error| StoreError::Open {
            path: String::new(),
            reason: format!("cannot start the {what} thread: {e}"),
        };
        let (queue, jobs) = mpsc::channel::<Envelope>();
        let totals = Arc::new(Totals::default());
        let finisher = || Finisher {
            totals: Arc::clone(&totals),
            observer: observer.clone(),
        };
        let (handoff, durability) = match target.syncer()? {
            Some(syncer) => {
                let (queue, items) = mpsc::channel::<ToSync>();
                let durability = Arc::new(Durability::new(syncer.target()));
                let (theirs, finisher) = (Arc::clone(&durability), finisher());
                let thread = std::thread::Builder::new()
                    .name("handoff-store-sync".into())
                    .spawn(move || sync_loop(syncer, items, theirs, finisher))
                    .map_err(|e| thread_error("sync", e))?;
                let handoff = SyncHandoff {
                    queue: Some(queue),
                    thread: Some(thread),
                };
                (handoff, Some(durability))
            }
            None => (
                SyncHandoff {
                    queue: None,
                    thread: None,
                },
                None,
            ),
        };
        let finisher = finisher();
        let max_batch = max_batch.max(1);
        let ours = durability.clone();
        let thread = std::thread::Builder::new()
            .name("handoff-store-writer".into())
            .spawn(move || {
                let durability = ours;
                // Dropped after `handoff` (declared before it): on a panic,
                // readers and later writes fail at once instead of waiting
                // for a batch that will never be synced.
                let _stop = WriterStop(durability.clone());
                let handoff = handoff;
                while let Ok(first) = jobs.recv() {
                    let mut batch = Vec::with_capacity(max_batch.min(64));
                    batch.push(first);
                    while batch.len() < max_batch {
                        match jobs.try_recv() {
                            Ok(e) => batch.push(e),
                            Err(_) => break,
                        }
                    }
                    if let Some(e) = durability.as_ref().and_then(|d| d.broken()) {
                        refuse(batch, &e, &finisher);
                        continue;
                    }
                    let mut seq = None;
                    let ran = run_batch(&mut target, batch, &mut || {
                        seq = durability.as_ref().map(|d| d.announce());
                    });
                    let (item, queue) = match (ran, &handoff.queue) {
                        // A sync thread means a `durability`, so the batch
                        // was numbered just before its COMMIT.
                        (Ran::Committed(batch), Some(queue)) => {
                            (ToSync::Committed(seq.unwrap_or_default(), batch), queue)
                        }
                        // An error answer waits behind the batches before
                        // it too: what it says may rest on their writes.
                        (Ran::Over(report, answers), Some(queue)) => {
                            let over = Over { report, answers };
                            (ToSync::Over(seq, over), queue)
                        }
                        (Ran::Committed(batch), None) => {
                            batch.answer(None, &finisher);
                            continue;
                        }
                        (Ran::Over(report, answers), None) => {
                            Over { report, answers }.answer(&finisher);
                            continue;
                        }
                    };
                    // Only a sync thread that panicked is gone while this
                    // loop runs: answer here rather than leave the callers
                    // waiting, and stop.
                    if let Err(mpsc::SendError(item)) = queue.send(item) {
                        let e = durability
                            .as_ref()
                            .map(|d| d.stopped("the sync thread"))
                            .unwrap_or(StoreError::WriterStopped);
                        if let Some(d) = &durability {
                            d.fail(&e);
                        }
                        item.fail(&e, &finisher);
                    }
                }
                drop(handoff);
            })
            .map_err(|e| thread_error("writer", e))?;
        Ok(Writer {
            queue: Mutex::new(Some(queue)),
            thread: Mutex::new(Some(thread)),
            totals,
            durability,
        })
    }

    /// Queues a job.
    pub fn submit(&self, job: Job) -> Receipt {
        self.queue_work(Work::Once(job))
    }

    /// Queues a job that may run twice (see [`ReplayableJob`]).
    pub fn submit_replayable(&self, job: ReplayableJob) -> Receipt {
        self.queue_work(Work::Replayable(job))
    }

    fn queue_work(&self, work: Work) -> Receipt {
        let (reply, rx) = oneshot::channel();
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        match queue.as_ref() {
            Some(q) if q.send(Envelope { work, reply }).is_ok() => Receipt(Ok(rx)),
            _ => Receipt::failed(StoreError::WriterStopped),
        }
    }

    /// Totals so far.
    pub fn counters(&self) -> WriterCounters {
        self.totals.snapshot()
    }

    /// With a [`Syncer`], what a reader waits on so that it never shows or
    /// acts on a commit that is not yet durable ([`Durability::wait`]).
    pub fn durability(&self) -> Option<&Arc<Durability>> {
        self.durability.as_ref()
    }

    /// Stops taking jobs, lets the thread commit what is queued, and waits
    /// for it. Later submits get [`StoreError::WriterStopped`].
    pub fn shutdown(&self) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).take();
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            // A panic on the writer thread has already answered (or dropped)
            // every reply; nothing is left to report here. The writer thread
            // waits for the sync thread before it ends.
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// How [`run_batch`] ended.
enum Ran {
    /// Committed: the answers wait for durability (see [`Syncer`]).
    Committed(Committed),
    /// Over without a commit (a failed batch, or a lone job that failed):
    /// the report and the answers, every one an error.
    Over(BatchReport, Answers),
}

/// Runs the batch; `before_commit` is called just before COMMIT (not when
/// the batch fails before it).
fn run_batch<T: Transactor>(
    target: &mut T,
    batch: Vec<Envelope>,
    before_commit: &mut dyn FnMut(),
) -> Ran {
    let started = Instant::now();
    let jobs = batch.len();
    let report = |failed, committed, replayed, commit| BatchReport {
        jobs,
        failed,
        committed,
        replayed,
        commit,
        total: started.elapsed(),
    };
    if let Err(e) = target.begin() {
        let answers = failing(batch, &e);
        return Ran::Over(report(jobs, false, false, Duration::ZERO), answers);
    }
    let bare = jobs == 1 || batch.iter().all(|e| matches!(e.work, Work::Replayable(_)));
    let mut replayed = false;
    let (answers, failed, poisoned) = if bare {
        match run_bare(target, batch) {
            Bare::Ran(answers) => (answers, 0, None),
            Bare::Alone(reply, e) => {
                // A batch of one: its failure is the transaction's.
                target.rollback();
                return Ran::Over(
                    report(1, true, false, Duration::ZERO),
                    vec![(reply, Err(e))],
                );
            }
            Bare::Again(batch) => {
                target.rollback();
                replayed = true;
                if let Err(e) = target.begin() {
                    let answers = failing(batch, &e);
                    return Ran::Over(report(jobs, false, true, Duration::ZERO), answers);
                }
                run_careful(target, batch)
            }
        }
    } else {
        run_careful(target, batch)
    };
    let commit_started = Instant::now();
    let committed = match poisoned {
        Some(e) => Err(e),
        None => {
            before_commit();
            target.commit()
        }
    };
    let commit = commit_started.elapsed();
    match committed {
        Ok(()) => Ran::Committed(Committed {
            answers,
            report: report(failed, true, replayed, commit),
            commit_started,
            started,
        }),
        Err(e) => {
            target.rollback();
            let answers = answers
                .into_iter()
                .map(|(reply, _)| (reply, Err(e.clone())))
                .collect();
            Ran::Over(report(jobs, false, replayed, commit), answers)
        }
    }
}

/// Answers every job with `e` without running it, and reports the batch.
fn refuse(batch: Vec<Envelope>, e: &StoreError, finisher: &Finisher) {
    let jobs = batch.len();
    let report = BatchReport {
        jobs,
        failed: jobs,
        committed: false,
        replayed: false,
        commit: Duration::ZERO,
        total: Duration::ZERO,
    };
    let answers = failing(batch, e);
    Over { report, answers }.answer(finisher);
}

/// Every job of `batch` answered `e`, not yet sent.
fn failing(batch: Vec<Envelope>, e: &StoreError) -> Answers {
    batch
        .into_iter()
        .map(|env| (env.reply, Err(e.clone())))
        .collect()
}

/// How a run without savepoints ended.
enum Bare {
    /// Every job succeeded: commit.
    Ran(Answers),
    /// The batch's only job failed: roll back, answer its error.
    Alone(oneshot::Sender<JobResult>, StoreError),
    /// A job of several failed: roll back, run them all with savepoints.
    Again(Vec<Envelope>),
}

/// Runs the batch's jobs with no savepoint between them. Called only for a
/// batch of one or of replayable jobs.
fn run_bare<T: Transactor>(target: &mut T, mut batch: Vec<Envelope>) -> Bare {
    if batch.len() == 1 {
        if let Some(Envelope { work, reply }) = batch.pop() {
            return match guarded(|| work.run(target.tx())) {
                Ok(value) => Bare::Ran(vec![(reply, Ok(value))]),
                Err(e) => Bare::Alone(reply, e),
            };
        }
    }
    let mut values = Vec::with_capacity(batch.len());
    for env in &batch {
        let Work::Replayable(job) = &env.work else {
            // Not replayable: only the careful run can keep the others.
            return Bare::Again(batch);
        };
        match guarded(|| job(target.tx())) {
            Ok(value) => values.push(value),
            Err(_) => return Bare::Again(batch),
        }
    }
    Bare::Ran(
        batch
            .into_iter()
            .zip(values)
            .map(|(env, value)| (env.reply, Ok(value)))
            .collect(),
    )
}

/// Runs each job in its own savepoint: the answers, how many failed, and
/// the error that poisons the batch if a failed job could not be undone
/// (committing then would keep its writes, so the whole batch rolls back).
fn run_careful<T: Transactor>(
    target: &mut T,
    batch: Vec<Envelope>,
) -> (Answers, usize, Option<StoreError>) {
    let mut answers = Vec::with_capacity(batch.len());
    let mut failed = 0;
    let mut poisoned: Option<StoreError> = None;
    for Envelope { work, reply } in batch {
        let result = match &poisoned {
            Some(e) => Err(e.clone()),
            None => {
                let (result, undo_failed) = run_job(target, work);
                poisoned = undo_failed;
                result
            }
        };
        if result.is_err() {
            failed += 1;
        }
        answers.push((reply, result));
    }
    (answers, failed, poisoned)
}

/// Runs `job`, turning a panic into [`StoreError::JobPanicked`].
fn guarded(job: impl FnOnce() -> JobResult) -> JobResult {
    catch_unwind(AssertUnwindSafe(job)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(StoreError::JobPanicked(message))
    })
}

/// Runs one job in its savepoint. The second value is set when the job
/// failed and its savepoint could not be rolled back.
fn run_job<T: Transactor>(target: &mut T, work: Work) -> (JobResult, Option<StoreError>) {
    if let Err(e) = target.savepoint() {
        return (Err(e), None);
    }
    let result = match guarded(|| work.run(target.tx())) {
        Ok(value) => match target.release() {
            Ok(()) => return (Ok(value), None),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match target.rollback_savepoint() {
        Ok(()) => (result, None),
        Err(undo) => (result, Some(undo)),
    }
}
