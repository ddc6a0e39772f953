//! The outbox worker: claim due actions with a lease, hand each to the
//! sinks of its kind, record what happened in one write job per action.
//!
//! [`Worker::run_once`] is one pass (tests call it to drive deliveries
//! without timers); [`Worker::run`] loops over passes until told to stop,
//! finishing the pass in flight. At start-up [`Worker::resume`] returns
//! every leased action to pending: a lease found then belonged to a
//! process that is gone (one `serve` owns its database file), so a restart
//! resumes at once instead of waiting for the lease to run out.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::backoff::{Backoff, Jitter};
use super::settings::{DeliverySettings, SinkKind};
use super::sinks::{Delivered, Delivery, SendError};
use super::{Clock, SinkSet, SystemClock};
use crate::eval::Action;
use crate::runtime::metrics::Metrics;
use crate::runtime::store::{
    ActionKind, ActionRow, HandoffRow, NewNote, SinkDelivery, Store, StoreError, StoreExt,
};

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Actions claimed.
    pub claimed: usize,
    /// Delivered to every sink of their kind.
    pub delivered: usize,
    /// Scheduled to be tried again.
    pub retried: usize,
    /// Dead-lettered.
    pub dead: usize,
}

/// A claimed action with what its delivery needs.
struct Claimed {
    action: ActionRow,
    handoff: Option<HandoffRow>,
    done: Vec<SinkDelivery>,
}

/// How long rate limits are waited out without counting: past this age an
/// action's 429s count toward `max_attempts` like any failure, so a sink
/// that answers 429 forever ends in a dead letter a person sees instead of
/// an action pending forever.
pub const THROTTLE_PATIENCE: Duration = Duration::from_secs(24 * 3600);

/// Whether a pass that only met rate limits still does not count: while
/// the action is younger than [`THROTTLE_PATIENCE`].
fn waits_out_throttle(created_at: jiff::Timestamp, now: jiff::Timestamp) -> bool {
    let age = Duration::try_from(now.duration_since(created_at)).unwrap_or(Duration::ZERO);
    age < THROTTLE_PATIENCE
}

/// Why a pass over an action did not deliver it.
struct Failure {
    /// A sink refused it as it is: dead-letter it now.
    refused: bool,
    /// Every failing sink only asked us to slow down (429).
    throttled: bool,
    /// What each failing sink said.
    why: String,
    /// The longest `Retry-After` a sink sent.
    retry_after: Option<Duration>,
}

/// What became of one action.
enum Verdict {
    Delivered,
    Retry,
    Dead,
}

/// The outbox worker. Build it, adjust it (`with_clock`, `with_seed`), put
/// it in an `Arc` and `run` it.
pub struct Worker {
    store: Arc<dyn Store>,
    sinks: SinkSet,
    routes: BTreeMap<ActionKind, Vec<SinkKind>>,
    max_attempts: u32,
    backoff: Backoff,
    lease: Duration,
    batch: usize,
    poll: Duration,
    public_url: String,
    clock: Arc<dyn Clock>,
    jitter: Mutex<Jitter>,
    metrics: Arc<Metrics>,
    depth_updated: Mutex<Option<Instant>>,
}

impl Worker {
    /// A worker delivering `store`'s outbox to `sinks` as `settings` route
    /// them; links to briefs start with `public_url`.
    pub fn new(
        store: Arc<dyn Store>,
        sinks: SinkSet,
        settings: &DeliverySettings,
        public_url: String,
        metrics: Arc<Metrics>,
    ) -> Worker {
        // Long enough for every call of every sink to time out: a retried
        // CRM task reads up to all its pages of search results for its
        // marker before it creates; a write or a post is one call.
        let calls: u32 = settings
            .sinks()
            .iter()
            .map(|s| match s {
                SinkKind::Hubspot => super::sinks::hubspot::SEARCH_PAGES + 2,
                SinkKind::Pipedrive => super::sinks::pipedrive::LIST_PAGES + 2,
                SinkKind::Slack | SinkKind::Webhook => 1,
            })
            .sum::<u32>()
            .max(1);
        let lease = settings.timeout.saturating_mul(calls + 1) + Duration::from_secs(30);
        Worker {
            store,
            sinks,
            routes: settings.routes.clone(),
            max_attempts: settings.max_attempts.max(1),
            backoff: Backoff {
                base: settings.backoff,
                max: settings.backoff_max,
            },
            lease,
            batch: settings.concurrency.max(1),
            poll: settings.poll,
            public_url: public_url.trim_end_matches('/').to_string(),
            clock: Arc::new(SystemClock),
            jitter: Mutex::new(Jitter::from_clock()),
            metrics,
            depth_updated: Mutex::new(None),
        }
    }

    /// Uses `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Worker {
        self.clock = clock;
        self
    }

    /// Draws the jitter from a fixed seed (tests).
    pub fn with_seed(mut self, seed: u64) -> Worker {
        self.jitter = Mutex::new(Jitter::seeded(seed));
        self
    }

    /// Returns every leased action to pending (run once at start-up); how
    /// many there were. Their lost try may have made a HubSpot task just
    /// before the stop, which HubSpot's search lists only after a while: with
    /// a HubSpot sink routed they wait that long (within `backoff_max`),
    /// as a retry after an ambiguous create does, so the search finds the
    /// task instead of a second one being made.
    pub async fn resume(&self) -> Result<u64, StoreError> {
        let retry_at = self.clock.now() + self.resume_wait();
        self.store
            .write(move |tx| tx.release_expired_leases(Timestamp::MAX, retry_at))
            .await
    }

    /// How long actions in flight at a stop wait at the next start.
    fn resume_wait(&self) -> Duration {
        let hubspot = self
            .routes
            .values()
            .any(|sinks| sinks.contains(&SinkKind::Hubspot));
        if hubspot {
            super::sinks::hubspot::SEARCH_LAG.min(self.backoff.max)
        } else {
            Duration::ZERO
        }
    }

    /// Delivers what is due now, at most `concurrency` actions at once;
    /// returns when all of them are recorded.
    pub async fn run_once(self: &Arc<Self>) -> Result<Pass, StoreError> {
        let now = self.clock.now();
        let (lease, limit) = (self.lease, self.batch);
        let (claimed, superseded): (Vec<Claimed>, usize) = self
            .store
            .write(move |tx| {
                // An action whose lease ran out while this server runs (its
                // result could not be recorded, or its task died) is due
                // again; a lease outlasts every call its delivery may make.
                // (Its try began a lease ago, longer than any search lag.)
                tx.release_expired_leases(now, now)?;
                let rows = tx.claim_due(now, lease, limit)?;
                let mut out = Vec::with_capacity(rows.len());
                let mut superseded = 0;
                for action in rows {
                    // A `set` with a newer one of the same field delivered
                    // (its own tries failed meanwhile) or on its way (both
                    // claimed in this pass, sent side by side, and either
                    // could land last) is done: writing it could leave the
                    // older value in the CRM.
                    if action.kind == ActionKind::Set {
                        if let Some(newer) = tx.newer_set(&action.id)? {
                            let how = if newer.delivered {
                                "was delivered first"
                            } else {
                                "is on its way"
                            };
                            tx.mark_delivered(&action.id, now)?;
                            tx.add_note(&NewNote {
                                handoff_id: action.handoff_id.clone(),
                                kind: "superseded".into(),
                                who: "delivery".into(),
                                at: now,
                                text: format!(
                                    "did not send {}: {}, a newer set of the same field, {how}",
                                    action.id, newer.id
                                ),
                                data: None,
                            })?;
                            superseded += 1;
                            continue;
                        }
                    }
                    let handoff = tx.load_instance(&action.handoff_id)?;
                    let done = tx.sink_deliveries(&action.id)?;
                    out.push(Claimed {
                        action,
                        handoff,
                        done,
                    });
                }
                Ok((out, superseded))
            })
            .await?;
        for _ in 0..superseded {
            self.metrics.sets_superseded.inc();
        }
        let mut pass = Pass {
            claimed: claimed.len() + superseded,
            delivered: superseded,
            ..Pass::default()
        };
        let mut running = JoinSet::new();
        for c in claimed {
            let me = self.clone();
            running.spawn(async move { me.deliver(c).await });
        }
        let mut first_error = None;
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok(Ok(Verdict::Delivered)) => pass.delivered += 1,
                Ok(Ok(Verdict::Retry)) => pass.retried += 1,
                Ok(Ok(Verdict::Dead)) => pass.dead += 1,
                // The action stays leased and comes back at the next start.
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => tracing::error!(error = %e, "a delivery task failed"),
            }
        }
        if pass.claimed > 0 {
            self.update_depth(true).await;
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(pass),
        }
    }

    /// Passes until `stop` turns true; the pass in flight finishes first.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        match self.resume().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(actions = n, "resuming deliveries left in flight"),
            Err(e) => tracing::error!(error = %e, "cannot release the outbox's leases"),
        }
        loop {
            if *stop.borrow() {
                break;
            }
            let full = match self.run_once().await {
                Ok(pass) => pass.claimed == self.batch,
                Err(e) => {
                    tracing::error!(error = %e, "the outbox pass failed; trying again");
                    false
                }
            };
            self.update_depth(false).await;
            if full {
                // More may be due right now.
                continue;
            }
            tokio::select! {
                _ = stop.changed() => {}
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
        tracing::info!("the outbox worker stopped");
    }

    /// Sets `handoff_outbox_depth` (pending and leased actions), at most
    /// once a second unless `now`.
    async fn update_depth(&self, now: bool) {
        {
            let mut last = self
                .depth_updated
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !now && last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                return;
            }
            *last = Some(Instant::now());
        }
        // The depth alone, from the outbox's index: `counts()` would count
        // the whole audit log too, every second.
        let store = self.store.clone();
        if let Ok(Ok(waiting)) = tokio::task::spawn_blocking(move || store.outbox_depth()).await {
            self.metrics
                .outbox_depth
                .set(i64::try_from(waiting).unwrap_or(i64::MAX));
        }
    }

    async fn deliver(self: Arc<Self>, c: Claimed) -> Result<Verdict, StoreError> {
        let id = c.action.id.clone();
        let plan: Action = match serde_json::from_str(&c.action.payload) {
            Ok(p) => p,
            Err(e) => {
                let why = format!("the action's payload is unreadable: {e}");
                return self
                    .finish(
                        &c.action,
                        Vec::new(),
                        Some(Failure {
                            refused: true,
                            throttled: false,
                            why,
                            retry_after: None,
                        }),
                    )
                    .await;
            }
        };
        let done: BTreeSet<&str> = c.done.iter().map(|d| d.sink.as_str()).collect();
        let wanted = self.routes.get(&c.action.kind).cloned().unwrap_or_default();
        let delivery = Delivery {
            action: &c.action,
            plan: &plan.plan,
            handoff: c.handoff.as_ref(),
            retried: c.action.attempts > 1 || c.action.last_error.is_some(),
            brief_url: format!("{}/handoffs/{}", self.public_url, c.action.handoff_id),
        };
        let mut took: Vec<(SinkKind, Delivered)> = Vec::new();
        let mut errors: Vec<SendError> = Vec::new();
        for kind in wanted {
            if done.contains(kind.as_str()) {
                continue;
            }
            let Some(sink) = self.sinks.get(&kind) else {
                errors.push(SendError::Refused {
                    reason: format!("{}: the sink is not configured", kind.as_str()),
                });
                continue;
            };
            let result = sink.deliver(&delivery).await;
            let label = match &result {
                Ok(d) if d.found_existing => "found_existing",
                Ok(_) => "delivered",
                Err(SendError::Retry { .. }) => "failed",
                Err(SendError::Refused { .. }) => "refused",
                Err(SendError::Throttled { .. }) => "throttled",
            };
            self.metrics.deliveries.inc(&[kind.as_str(), label]);
            match result {
                Ok(d) => {
                    if d.found_existing {
                        tracing::info!(action = %id, sink = kind.as_str(), "found what an earlier try made; nothing created twice");
                    }
                    took.push((kind, d));
                }
                Err(e) => {
                    tracing::warn!(action = %id, attempt = c.action.attempts, error = %e, "delivery failed");
                    errors.push(e);
                }
            }
        }
        let failure = if errors.is_empty() {
            None
        } else {
            let refused = errors
                .iter()
                .any(|e| matches!(e, SendError::Refused { .. }));
            // Only rate limits: the try does not count.
            let throttled = errors
                .iter()
                .all(|e| matches!(e, SendError::Throttled { .. }));
            let retry_after = errors
                .iter()
                .filter_map(|e| match e {
                    SendError::Retry { retry_after, .. }
                    | SendError::Throttled { retry_after, .. } => *retry_after,
                    SendError::Refused { .. } => None,
                })
                .max();
            let why = errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            Some(Failure {
                refused,
                throttled,
                why,
                retry_after,
            })
        };
        self.finish(&c.action, took, failure).await
    }

    /// Records one action's pass in one write job: the sinks that took it,
    /// then delivered, a retry, or a dead letter.
    async fn finish(
        &self,
        action: &ActionRow,
        took: Vec<(SinkKind, Delivered)>,
        failure: Option<Failure>,
    ) -> Result<Verdict, StoreError> {
        let now = self.clock.now();
        let id = action.id.clone();
        let mut failure = failure;
        if let Some(f) = failure.as_mut() {
            f.throttled = f.throttled && waits_out_throttle(action.created_at, now);
        }
        let verdict = match &failure {
            None => Verdict::Delivered,
            Some(f) if f.refused || (!f.throttled && action.attempts >= self.max_attempts) => {
                Verdict::Dead
            }
            Some(_) => Verdict::Retry,
        };
        let throttled = failure.as_ref().is_some_and(|f| f.throttled);
        let retry_at = match (&verdict, &failure) {
            (Verdict::Retry, Some(Failure { retry_after, .. })) => {
                let mut jitter = self
                    .jitter
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                // A rate limit did not count as a try: without a
                // `Retry-After` to follow, its wait grows with the
                // action's age instead.
                let failures = if throttled && retry_after.is_none() {
                    let age = now.duration_since(action.created_at);
                    let age = Duration::try_from(age).unwrap_or(Duration::ZERO);
                    self.backoff.throttled_failures(age)
                } else {
                    action.attempts
                };
                let wait = self
                    .backoff
                    .delay_honouring(failures, *retry_after, &mut jitter);
                now.checked_add(wait).unwrap_or(now)
            }
            _ => now,
        };
        let why = failure.map(|f| f.why).unwrap_or_default();
        let dead = matches!(verdict, Verdict::Dead);
        let delivered = matches!(verdict, Verdict::Delivered);
        let attempts = action.attempts;
        let max = self.max_attempts;
        self.store
            .write(move |tx| {
                for (kind, d) in &took {
                    tx.sink_delivered(&SinkDelivery {
                        action_id: id.clone(),
                        sink: kind.as_str().to_string(),
                        delivered_at: now,
                        remote_ref: d.remote_ref.clone(),
                    })?;
                }
                if delivered {
                    tx.mark_delivered(&id, now)?;
                } else if dead {
                    let why = if attempts >= max {
                        format!("{why} (gave up after {attempts} tries)")
                    } else {
                        why
                    };
                    tx.dead_letter(&id, &why)?;
                } else if throttled {
                    tx.throttled(&id, retry_at, &why)?;
                } else {
                    tx.schedule_retry(&id, retry_at, &why)?;
                }
                Ok(())
            })
            .await?;
        if dead {
            self.metrics.dead_letters.inc();
            tracing::warn!(action = %action.id, "dead-lettered: re-drive it with `handoff outbox retry` once the cause is fixed");
        }
        Ok(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_are_waited_out_for_a_day_then_count() {
        let created: jiff::Timestamp = "2026-12-01T09:00:00Z".parse().unwrap();
        let at = |h: i64| created + jiff::SignedDuration::from_hours(h);
        assert!(waits_out_throttle(created, at(0)));
        assert!(waits_out_throttle(created, at(23)));
        assert!(!waits_out_throttle(created, at(24)));
        assert!(!waits_out_throttle(created, at(24 * 30)));
        // A clock behind the action's creation (never expected) waits.
        assert!(waits_out_throttle(created, at(-1)));
    }
}
