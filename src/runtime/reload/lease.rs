//! Leases on a workflow version: who may still decide under which one.
//!
//! A request takes the version serving now once ([`Workflows::lease`]) and
//! decides with it however many reloads happen meanwhile. That is what
//! keeps one request's decisions consistent, but it means a decision made
//! under a version can be queued after the next version became active. The
//! store's orphan sweep of the new version must come after those
//! decisions: swept before, a late decision under the old version could
//! start or resume an instance of a workflow the new version removed, and
//! nothing would list it as orphaned.
//!
//! So each version counts its leases, and a reload waits for every lease
//! of an earlier version to be released before it runs the `activated`
//! hooks. A lease is held until the request's write job is queued (the
//! writer runs jobs in the order they were queued, so the sweep's job
//! comes after); in practice until it commits. Leases are short: a
//! webhook's (its wait for its records' turns, its CRM reads within
//! `hydrate_deadline_ms`, its commit), a person's verdict, one waiting
//! record's decision (the retry loop takes its lease after the CRM read,
//! so a slow CRM does not hold a sweep up).
//!
//! [`Workflows::lease`]: super::Workflows::lease

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwap;
use tokio::sync::Notify;

use super::Active;

/// The versions' lease counts, shared by a [`super::Workflows`] and its
/// leases.
#[derive(Debug, Default)]
pub(super) struct Leases {
    /// Leases held, by the version's activation number
    /// ([`Active::reloads`]). A version with none has no entry.
    held: Mutex<BTreeMap<u64, usize>>,
    /// Woken when a version's last lease is released.
    released: Notify,
}

impl Leases {
    fn held(&self) -> MutexGuard<'_, BTreeMap<u64, usize>> {
        // The map is consistent after every statement that changes it, so
        // a panic elsewhere while it was locked leaves nothing half done.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A lease on the version `active` serves now.
    pub(super) fn take(self: &Arc<Self>, active: &ArcSwap<Active>) -> Lease {
        // Under the lock, so a reload's swap (also under it, see `swap`)
        // is either before this load, and the lease is on the new
        // version, or after the count, and the reload waits for it.
        let mut held = self.held();
        let active = active.load_full();
        *held.entry(active.reloads).or_default() += 1;
        Lease {
            active,
            leases: self.clone(),
        }
    }

    /// Makes `next` the version leases are taken on.
    pub(super) fn swap(&self, active: &ArcSwap<Active>, next: Arc<Active>) {
        let _held = self.held();
        active.store(next);
    }

    /// Waits until no lease of a version activated before `reloads` is
    /// held.
    pub(super) async fn settled(&self, reloads: u64) {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // Registered before the check, so a release between the check
            // and the wait still wakes it.
            released.as_mut().enable();
            if self.held().range(..reloads).next().is_none() {
                return;
            }
            released.await;
        }
    }
}

/// A version taken for deciding: derefs to the [`Active`] version. Keep it
/// until the decisions made with it are queued for the writer.
#[derive(Debug)]
pub struct Lease {
    active: Arc<Active>,
    leases: Arc<Leases>,
}

impl Deref for Lease {
    type Target = Active;

    fn deref(&self) -> &Active {
        &self.active
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut held = self.leases.held();
        let key = self.active.reloads;
        if let Some(n) = held.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&key);
                drop(held);
                self.leases.released.notify_waiters();
            }
        }
    }
}
