//! Decisions waiting for the CRM: an event whose record had to be read
//! from the CRM's API, when the API could not be reached, is stored (and
//! acknowledged) as a `crm_pending` row. This loop tries each waiting
//! record again after `pending_retry_ms`, doubling the wait after every
//! failed try (with jitter, at most [`LONGEST_WAIT`]), so a CRM that is
//! down for hours is asked a few times an hour, not twice a minute, and
//! records that failed together spread out. Once the API answers, the
//! record's waiting events are hydrated, decided in order and deleted from
//! `crm_pending` in one write job, so none is lost or decided twice, and
//! none is decided on a record known to be incomplete.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::hydrate::CONCURRENT_READS;
use super::mapping::{Crm, Mapping};
use super::{hydrate_record, CrmEvent};
use crate::eval::Event;
use crate::runtime::delivery::backoff::{Backoff, Jitter};
use crate::runtime::http::hooks::answer_kind;
use crate::runtime::ingest::{self, Ingested, Request};
use crate::runtime::state::AppState;
use crate::runtime::store::{EventKey, PendingRow, StoreError, StoreExt};

/// How many waiting events one pass looks at.
const PASS: usize = 500;

/// The longest wait between two tries of a waiting record (unless
/// `pending_retry_ms` itself is longer).
pub const LONGEST_WAIT: Duration = Duration::from_secs(30 * 60);

/// When to try a record again after its `failures`-th failed try (1 or
/// more): `interval` doubled per failure, capped at [`LONGEST_WAIT`], and
/// drawn from the upper half of that (the delivery worker's schedule).
pub fn wait_after(
    interval: jiff::SignedDuration,
    failures: u32,
    jitter: &mut Jitter,
) -> jiff::SignedDuration {
    let base = Duration::try_from(interval).unwrap_or(Duration::from_secs(30));
    let backoff = Backoff {
        base,
        max: LONGEST_WAIT.max(base),
    };
    jiff::SignedDuration::try_from(backoff.delay(failures, jitter))
        .unwrap_or(jiff::SignedDuration::from_secs(30 * 60))
}

/// How long a waiting event waits before its next try: the smallest
/// `pending_retry_ms` configured, 30 s by default.
pub fn retry_interval(mapping: &Mapping) -> jiff::SignedDuration {
    let ms = [&mapping.hubspot, &mapping.pipedrive]
        .iter()
        .filter_map(|m| m.as_ref()?.pending_retry_ms)
        .min()
        .unwrap_or(30_000)
        .max(1);
    jiff::SignedDuration::from_millis(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// Starts the retry loop when a CRM is mapped; the caller aborts the task
/// at shutdown (a pass cut short leaves its rows waiting, nothing half
/// done: each record's decision is one write job).
pub fn spawn(state: Arc<AppState>) -> Option<JoinHandle<()>> {
    let mapping = &state.crm.mapping;
    if mapping.hubspot.is_none() && mapping.pipedrive.is_none() {
        return None;
    }
    let every =
        Duration::from_millis(u64::try_from(retry_interval(mapping).as_millis()).unwrap_or(30_000));
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match retry_due(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(decided = n, "decided events that waited for the CRM"),
                Err(e) => {
                    tracing::error!(error = %e, "cannot retry the events waiting for the CRM")
                }
            }
        }
    }))
}

/// One pass: tries every record with a due waiting event; returns how many
/// events were decided.
pub async fn retry_due(state: &Arc<AppState>) -> Result<usize, StoreError> {
    let store = state.store.clone();
    let now = jiff::Timestamp::now();
    let rows = tokio::task::spawn_blocking(move || store.crm_due_pending(now, PASS))
        .await
        .map_err(|e| StoreError::Backend {
            doing: "listing pending CRM events",
            reason: e.to_string(),
        })??;
    let mut groups: BTreeMap<(String, String), Vec<PendingRow>> = BTreeMap::new();
    let mut order = Vec::new();
    for row in rows {
        let key = (row.object.clone(), row.record_id.clone());
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(row);
    }
    // Records are independent (each one's decision is one write job), so
    // several are tried side by side: a CRM that answers slowly, or not at
    // all until its timeout, slows a pass down that much less. Half the
    // process's turns to call the CRM at most, so webhooks, which have a
    // deadline, always find turns the loop does not hold.
    let mut decided = 0;
    let mut stopped = None;
    let mut running = tokio::task::JoinSet::new();
    // Task id -> its rows, to back them off if the task panics.
    let mut tasks = std::collections::HashMap::new();
    let mut order = order.into_iter();
    loop {
        while stopped.is_none() && running.len() < CONCURRENT_READS / 2 {
            let Some(key) = order.next() else { break };
            let Some(rows) = groups.remove(&key) else {
                continue;
            };
            let (state, mine) = (state.clone(), rows.clone());
            let task = running.spawn(async move { retry_one(&state, key, mine).await });
            tasks.insert(task.id(), rows);
        }
        let Some(joined) = running.join_next_with_id().await else {
            break;
        };
        match joined {
            Ok((_, Ok(n))) => decided += n,
            // The store refuses writes: start no more, finish the others.
            Ok((_, Err(e))) => {
                stopped.get_or_insert(e);
            }
            // A bug: backed off like a failed try, so the rows do not come
            // back in every pass.
            Err(e) => {
                tracing::error!(error = %e, "a retry of waiting CRM events stopped");
                if let Some(rows) = tasks.get(&e.id()) {
                    let next = next_try(state, rows);
                    if let Err(e) =
                        failed(state, rows, next, format!("the retry stopped: {e}")).await
                    {
                        stopped.get_or_insert(e);
                    }
                }
            }
        }
    }
    match stopped {
        Some(e) => Err(e),
        None => Ok(decided),
    }
}

/// When a record's waiting events are tried again if this try fails.
fn next_try(state: &AppState, rows: &[PendingRow]) -> jiff::Timestamp {
    // The record's events failed together so far; the oldest has the
    // most tries.
    let failures = rows.iter().map(|r| r.attempts).max().unwrap_or(0);
    jiff::Timestamp::now()
        + wait_after(
            retry_interval(&state.crm.mapping),
            failures.saturating_add(1),
            &mut Jitter::from_clock(),
        )
}

/// Tries one record's waiting events; on failure marks them to try again.
async fn retry_one(
    state: &Arc<AppState>,
    key: (String, String),
    rows: Vec<PendingRow>,
) -> Result<usize, StoreError> {
    let next = next_try(state, &rows);
    match retry_record(state, &rows, next).await {
        Ok(n) => Ok(n),
        // One record's failure must not hold up the others: unmarked, its
        // rows would stay due and come first in every pass. Marked failed,
        // they back off like a failed CRM read. Only when even that write
        // fails (the store refuses writes) does the pass stop; the loop
        // says so and tries again at its next tick.
        Err(e) => {
            let (object, record_id) = &key;
            tracing::error!(object, record_id, error = %e, "cannot decide the events waiting for the CRM; they wait for the next try");
            failed(state, &rows, next, format!("cannot decide: {e}")).await?;
            Ok(0)
        }
    }
}

/// Tries one record's waiting events (in `seq` order); a failure to read
/// the CRM or decode an event is recorded on the rows (to try again at
/// `next`), an error deciding them is returned.
async fn retry_record(
    state: &Arc<AppState>,
    rows: &[PendingRow],
    next: jiff::Timestamp,
) -> Result<usize, StoreError> {
    let crm = match rows.first().map(|r| r.source.as_str()) {
        Some("hubspot") => Crm::HubSpot,
        Some("pipedrive") => Crm::Pipedrive,
        // Not a CRM this version knows: kept (never dropped), and backed
        // off so the rows do not take a place in every pass.
        other => {
            let why = format!("unknown source `{}`", other.unwrap_or_default());
            return failed(state, rows, next, why).await;
        }
    };
    // What to read depends on the rules; the lease to decide with is taken
    // after the read (below), so a slow CRM never holds up a reload's
    // orphan sweep.
    let set = state.workflows.active().set.clone();
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        match serde_json::from_str::<CrmEvent>(&row.event) {
            Ok(e) => events.push(e),
            Err(e) => {
                return failed(
                    state,
                    rows,
                    next,
                    format!("the stored event is unreadable: {e}"),
                )
                .await
            }
        }
    }
    let mut group: Vec<&mut CrmEvent> = events.iter_mut().collect();
    if let Err(why) = hydrate_record(state, crm, &set, &mut group).await {
        return failed(state, rows, next, why).await;
    }
    // Held until the record's job is queued (see `reload::Lease`).
    let lease = state.workflows.lease();
    if lease.set.version() != set.version() {
        // The rules changed during the read, and with them, maybe, what to
        // read: the rows stay due, and the next pass reads again.
        let (object, record_id) = rows
            .first()
            .map(|r| (r.object.as_str(), r.record_id.as_str()))
            .unwrap_or_default();
        tracing::info!(
            object,
            record_id,
            "the workflows changed while the record was read from the CRM; its waiting events are tried again in the next pass"
        );
        return Ok(0);
    }
    let mut decoded = Vec::with_capacity(rows.len());
    for (row, e) in rows.iter().zip(&events) {
        match Event::decode_lenient(&set, e.to_generic().to_string().as_bytes()) {
            Ok(ev) => decoded.push((
                row.seq,
                row.source.clone(),
                row.raw_body.clone(),
                row.received_at,
                ev,
            )),
            // The object left the workflows since: it waits for a version
            // that has it again, and says why.
            Err(err) => return failed(state, rows, next, err.to_string()).await,
        }
    }
    // Replayable, like every ingest job: it only reads what it captured and
    // hands its decision times back with its value.
    let (results, times) = state
        .store
        .write_replayable(move |tx| {
            let times = std::cell::RefCell::new(Vec::new());
            let decided = |d| times.borrow_mut().push(d);
            let mut out = Vec::with_capacity(decoded.len());
            for (seq, source, raw_body, received_at, event) in &decoded {
                let normalized = ingest::normalized(&set, event);
                let hash = ingest::content_hash(event, &normalized);
                let key = EventKey {
                    source,
                    event_id: Some(event.id.as_str()),
                    content_hash: &hash,
                };
                let done = if let Some(audit_id) = tx.processed(&key)? {
                    Ingested::Duplicate { audit_id }
                } else {
                    let request = Request {
                        source: source.clone(),
                        received_at: *received_at,
                        events: Vec::new(),
                    };
                    ingest::ingest_one(tx, &set, &request, event, raw_body.clone(), &decided)
                        .map_err(|e| match e {
                            ingest::IngestError::Store(s) => s,
                            other => StoreError::abort(other),
                        })?
                };
                // Decided and deleted in the same transaction.
                tx.crm_remove_pending(*seq)?;
                out.push(done);
            }
            Ok((out, times.into_inner()))
        })
        .await?;
    for d in times {
        state.metrics.decision_seconds.observe_duration(d);
    }
    for r in &results {
        state.metrics.events.inc(&[crm.as_str(), answer_kind(r)]);
    }
    Ok(results.len())
}

async fn failed(
    state: &Arc<AppState>,
    rows: &[PendingRow],
    next: jiff::Timestamp,
    why: String,
) -> Result<usize, StoreError> {
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    state
        .store
        .write(move |tx| {
            for seq in &seqs {
                tx.crm_pending_failed(*seq, next, &why)?;
            }
            Ok(())
        })
        .await?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_per_failure_within_jitter_and_stop_at_the_longest() {
        let interval = jiff::SignedDuration::from_secs(30);
        let mut j = Jitter::seeded(3);
        for failures in 1..=12u32 {
            let ceiling = (30u64 << (failures - 1)).min(30 * 60);
            for _ in 0..20 {
                let w = wait_after(interval, failures, &mut j).as_secs_f64();
                assert!(
                    w >= ceiling as f64 / 2.0 && w <= ceiling as f64,
                    "failure {failures}: waited {w} s, ceiling {ceiling} s"
                );
            }
        }
    }

    #[test]
    fn an_interval_longer_than_the_longest_wait_is_kept() {
        let interval = jiff::SignedDuration::from_secs(2 * 3600);
        let w = wait_after(interval, 5, &mut Jitter::seeded(1));
        assert!(w >= jiff::SignedDuration::from_secs(3600) && w <= interval);
    }
}
