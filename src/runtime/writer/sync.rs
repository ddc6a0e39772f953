//! The sync thread: durability for a backend whose COMMIT does not wait for
//! the disk (see [`Syncer`] and the writer's module docs).
//!
//! Two promises rest on it. An answer: a job is answered only after a sync
//! that began once its batch had committed. A read: readers see a batch as
//! soon as it commits, before the sync, so a read waits
//! ([`Durability::wait`]) until every batch it could have seen is synced;
//! what a reader shows or acts on is then on the disk, as when COMMIT
//! itself waited.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{Answers, BatchObserver, BatchReport, Totals};
use crate::runtime::store::StoreError;

/// Makes committed batches durable, on a thread of its own.
pub trait Syncer: Send + 'static {
    /// Makes every batch committed before this call durable.
    fn sync(&mut self) -> Result<(), StoreError>;
    /// What it syncs, for errors (a file's path).
    fn target(&self) -> String {
        "the database".into()
    }
}

/// What the writer, the sync thread and readers share: which batches
/// readers may see, which are durable, and whether durability failed.
pub struct Durability {
    marks: Mutex<Marks>,
    changed: Condvar,
    /// What the syncer syncs, for errors.
    target: String,
}

#[derive(Default)]
struct Marks {
    /// The last batch numbered just before its COMMIT: readers may see it
    /// (and every one before) from then on.
    announced: u64,
    /// Every batch up to this one is durable, or never became visible.
    settled: u64,
    /// The first sync failure. After it nothing more is acknowledged: once
    /// a disk has failed to flush, Linux may have dropped the pages it could
    /// not write, and a later sync that succeeds would vouch for data that
    /// is gone.
    broken: Option<StoreError>,
}

impl Durability {
    pub(super) fn new(target: String) -> Durability {
        Durability {
            marks: Mutex::default(),
            changed: Condvar::new(),
            target,
        }
    }

    /// The error once `what` (a thread) stopped: what it held was
    /// committed, but no sync confirmed it.
    pub(super) fn stopped(&self, what: &str) -> StoreError {
        StoreError::Sync {
            path: self.target.clone(),
            reason: format!("{what} stopped before the disk confirmed the write"),
        }
    }

    fn marks(&self) -> MutexGuard<'_, Marks> {
        self.marks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Numbers the batch about to commit (the writer, before COMMIT).
    pub(super) fn announce(&self) -> u64 {
        let mut m = self.marks();
        m.announced += 1;
        m.announced
    }

    /// Every batch up to `seq` is durable or was never visible.
    fn settle(&self, seq: u64) {
        let mut m = self.marks();
        m.settled = m.settled.max(seq);
        drop(m);
        self.changed.notify_all();
    }

    /// Records the first failure (and logs it); later ones keep the first.
    pub(super) fn fail(&self, e: &StoreError) {
        let mut m = self.marks();
        if m.broken.is_none() {
            tracing::error!(
                error = %e,
                "writes are no longer known to reach the disk: nothing more is acknowledged or read until the server restarts"
            );
            m.broken = Some(e.clone());
        }
        drop(m);
        self.changed.notify_all();
    }

    /// The failure that stopped acknowledgements, if one did.
    pub fn broken(&self) -> Option<StoreError> {
        self.marks().broken.clone()
    }

    /// Whether a batch readers may see is not yet durable.
    pub fn unsettled(&self) -> bool {
        let m = self.marks();
        m.settled < m.announced
    }

    /// Waits until every batch a reader may have seen so far is durable:
    /// nothing when the writer is idle; under load, the rest of the sync in
    /// progress and the next one (plus the COMMIT of a batch numbered but
    /// not yet committed). Fails once durability has failed, or if the disk
    /// takes longer than `bound`.
    pub fn wait(&self, bound: Duration) -> Result<(), StoreError> {
        let deadline = Instant::now() + bound;
        let mut m = self.marks();
        let target = m.announced;
        while m.settled < target {
            if let Some(e) = &m.broken {
                return Err(e.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::Backend {
                    doing: "waiting for the disk to confirm recent writes",
                    reason: format!("not confirmed within {} ms", bound.as_millis()),
                });
            }
            m = self
                .changed
                .wait_timeout(m, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Ok(())
    }
}

/// Where a batch's answers go once it is over.
pub(super) struct Finisher {
    pub(super) totals: Arc<Totals>,
    pub(super) observer: Option<BatchObserver>,
}

impl Finisher {
    pub(super) fn report(&self, report: &BatchReport) {
        self.totals.add(report);
        if let Some(observe) = &self.observer {
            // Metrics, a log line: a panic there must not stop the writes.
            if catch_unwind(AssertUnwindSafe(|| observe(report))).is_err() {
                tracing::error!("the batch observer panicked; the batch itself is answered");
            }
        }
    }
}

/// A committed batch: its answers, held until a sync covers it.
pub(super) struct Committed {
    pub(super) answers: Answers,
    pub(super) report: BatchReport,
    /// When COMMIT started and when the batch began, to finish the report.
    pub(super) commit_started: Instant,
    pub(super) started: Instant,
}

impl Committed {
    /// Answers the batch: each job its result once the batch is durable, or
    /// every job `failed` if it is not known to be. Then reports it.
    pub(super) fn answer(self, failed: Option<&StoreError>, finisher: &Finisher) {
        let mut report = self.report;
        if failed.is_some() {
            report.committed = false;
            report.failed = report.jobs;
        }
        report.commit = self.commit_started.elapsed();
        report.total = self.started.elapsed();
        // Counted before anyone is answered, so a caller that reads the
        // metrics after its answer finds its batch there.
        finisher.report(&report);
        for (reply, result) in self.answers {
            // The caller may have stopped waiting (a dropped request): its
            // job is committed all the same.
            let _ = reply.send(match failed {
                None => result,
                Some(e) => Err(e.clone()),
            });
        }
    }
}

/// A batch over without a commit: its report and its answers (errors).
pub(super) struct Over {
    pub(super) report: BatchReport,
    pub(super) answers: Answers,
}

impl Over {
    pub(super) fn answer(self, finisher: &Finisher) {
        finisher.report(&self.report);
        for (reply, result) in self.answers {
            let _ = reply.send(result);
        }
    }
}

/// What the writer hands the sync thread, in batch order.
pub(super) enum ToSync {
    /// A committed batch, numbered: answer it after a sync.
    Committed(u64, Committed),
    /// A batch over without a commit, numbered if it got as far as COMMIT:
    /// its error answers wait until the batches before it are synced (what
    /// they say may rest on those writes), and a numbered one is synced
    /// too, so no backend has to promise that a failed COMMIT left nothing
    /// visible.
    Over(Option<u64>, Over),
}

impl ToSync {
    fn seq(&self) -> Option<u64> {
        match self {
            ToSync::Committed(seq, _) => Some(*seq),
            ToSync::Over(seq, _) => *seq,
        }
    }

    /// Answers every job with `e` (nothing was confirmed) and reports.
    pub(super) fn fail(self, e: &StoreError, finisher: &Finisher) {
        match self {
            ToSync::Committed(_, batch) => batch.answer(Some(e), finisher),
            ToSync::Over(_, over) => over.answer(finisher),
        }
    }
}

/// Sets the failure if the sync thread unwinds, so the writer stops
/// committing what nobody will sync and readers stop waiting.
struct StopGuard<'a>(&'a Durability);

impl Drop for StopGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail(&self.0.stopped("the sync thread"));
        }
    }
}

/// The same for the writer thread: a panic there (in COMMIT, say) after it
/// numbered a batch would otherwise leave readers waiting for a number the
/// sync thread never gets.
pub(super) struct WriterStop(pub(super) Option<Arc<Durability>>);

impl Drop for WriterStop {
    fn drop(&mut self) {
        if let (true, Some(d)) = (std::thread::panicking(), &self.0) {
            d.fail(&d.stopped("the writer thread"));
        }
    }
}

/// The sync thread: takes everything queued, syncs once if a numbered
/// batch is among it, lets readers go, then answers them all (with the
/// sync's error if it failed).
pub(super) fn sync_loop(
    mut syncer: Box<dyn Syncer>,
    queue: mpsc::Receiver<ToSync>,
    durability: Arc<Durability>,
    finisher: Finisher,
) {
    let _guard = StopGuard(&durability);
    while let Ok(first) = queue.recv() {
        let mut pending = vec![first];
        pending.extend(queue.try_iter());
        let last = pending.iter().filter_map(ToSync::seq).max();
        let synced = match (durability.broken(), last) {
            (Some(e), _) => Err(e),
            (None, Some(_)) => {
                finisher.totals.syncs.fetch_add(1, Ordering::Relaxed);
                catch_unwind(AssertUnwindSafe(|| syncer.sync()))
                    .unwrap_or_else(|_| Err(durability.stopped("a panicking sync")))
            }
            (None, None) => Ok(()),
        };
        match &synced {
            // Readers go first: an answered job's own writes are then
            // readable without a wait.
            Ok(()) => {
                if let Some(last) = last {
                    durability.settle(last);
                }
            }
            Err(e) => durability.fail(e),
        }
        for item in pending {
            match item {
                ToSync::Committed(_, batch) => batch.answer(synced.as_ref().err(), &finisher),
                ToSync::Over(_, over) => over.answer(&finisher),
            }
        }
    }
}
