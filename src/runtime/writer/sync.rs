//! The sync thread: durability for a backend whose COMMIT does not wait for
//! the disk (see [`Syncer`] and the writer's module docs).
//!
//! Two promises rest on it. An answer: a job is answered only after a sync
//! that began once its batch had committed. A read: readers see a batch as
//! soon as it commits, before the sync, so a read waits
//! ([`Durability::wait`]) until every batch it could have seen is synced;
//! what a reader shows or acts on is then on the disk, as when COMMIT
//! itself waited.

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{Answers, BatchObserver, BatchReport, Totals};
use crate::runtime::store::StoreError;

/// Makes committed batches durable, on a thread of its own.
pub trait Syncer: Send + 'static {
    /// Makes every batch committed before this call durable.
    fn sync(&mut self) -> Result<(), StoreError>;
}

/// What the writer, the sync thread and readers share: which batches
/// readers may see, which are durable, and whether durability failed.
#[derive(Default)]
pub struct Durability {
    marks: Mutex<Marks>,
    changed: Condvar,
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
                "the disk did not confirm a sync: nothing more is acknowledged until the server restarts"
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
    /// at most one sync under load, nothing when the writer is idle. Fails
    /// once durability has failed, or if the disk takes longer than
    /// `bound`.
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
            observe(report);
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
        for (reply, result) in self.answers {
            // The caller may have stopped waiting (a dropped request): its
            // job is committed all the same.
            let _ = reply.send(match failed {
                None => result,
                Some(e) => Err(e.clone()),
            });
        }
        if failed.is_some() {
            report.committed = false;
            report.failed = report.jobs;
        }
        report.commit = self.commit_started.elapsed();
        report.total = self.started.elapsed();
        finisher.report(&report);
    }
}

/// What the writer hands the sync thread, in batch order.
pub(super) enum ToSync {
    /// A committed batch, numbered: answer it after a sync.
    Committed(u64, Committed),
    /// A numbered batch whose COMMIT failed: nothing to sync, but readers
    /// waiting on its number may go once the batches before it are synced.
    Abandoned(u64),
}

/// Sets the failure if the sync thread unwinds (a panicking syncer or
/// observer), so the writer stops committing what nobody will sync.
struct StopGuard<'a>(&'a Durability);

impl Drop for StopGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail(&StoreError::Backend {
                doing: "syncing a batch",
                reason: "the sync thread stopped".into(),
            });
        }
    }
}

/// The sync thread: takes everything queued, syncs once if a committed
/// batch is among it, then answers them all (or, if the sync failed, with
/// its error) and lets readers go.
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
        let any_committed = pending.iter().any(|p| matches!(p, ToSync::Committed(..)));
        let synced = match durability.broken() {
            Some(e) => Err(e),
            None if any_committed => {
                finisher.totals.syncs.fetch_add(1, Ordering::Relaxed);
                syncer.sync()
            }
            None => Ok(()),
        };
        if let Err(e) = &synced {
            durability.fail(e);
        }
        // Readers go first: an answered job's own writes are then readable
        // without a wait.
        if synced.is_ok() {
            if let Some(last) = pending.last() {
                durability.settle(match last {
                    ToSync::Committed(seq, _) | ToSync::Abandoned(seq) => *seq,
                });
            }
        }
        for item in pending {
            if let ToSync::Committed(_, batch) = item {
                batch.answer(synced.as_ref().err(), &finisher);
            }
        }
    }
}
