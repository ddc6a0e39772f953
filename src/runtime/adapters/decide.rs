//! The path every CRM event takes after its adapter: hydrate the records
//! a handoff would see incomplete, decode with the per-field typing of the
//! generic hook, then one write job that dedupes, stores as pending (the
//! CRM could not be read, or an earlier event of the record waits) or
//! decides (`ingest::ingest_one`). The answer comes after the commit.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::hydrate::HydrateError;
use super::mapping::{Crm, ObjectMapping};
use super::{apply_properties, pending, CrmEvent, Normalized, Rejected};
use crate::check::ObjectSchema;
use crate::compile::WorkflowSet;
use crate::eval::{Event, RecordState, StoredRecord};
use crate::runtime::http::hooks::{answer_kind, problem, BadValues, EventsBody};
use crate::runtime::ingest::{self, Ingested, Request};
use crate::runtime::state::AppState;
use crate::runtime::store::{EventKey, NewPending, StoreError, StoreExt};

/// What became of one event, for the answer.
enum Fate {
    Done(Ingested),
    /// Stored; decided once the CRM's API answers. `false` when it was
    /// already waiting (a retry).
    Pending(bool),
}

/// Hydrates, decodes, stores and decides a request's events; answers only
/// after the batch holding them has committed.
pub(super) async fn accept(
    state: &Arc<AppState>,
    crm: Crm,
    set: WorkflowSet,
    received_at: jiff::Timestamp,
    normalized: Normalized,
) -> Response {
    let source = crm.as_str();
    for (object, _) in &normalized.unmapped {
        state.metrics.crm_unmapped.inc(&[source, object]);
    }
    for _ in &normalized.skipped {
        state.metrics.events.inc(&[source, "skipped"]);
    }
    let mut rejected = normalized.rejected;
    let mut events = normalized.events;
    // Taken before the CRM reads and given back once the job is queued: a
    // later request for one of these records queues after this one, even
    // when it needs no read (see `turns`).
    let turns = state
        .turns
        .take(
            events
                .iter()
                .map(|e| (e.object.clone(), e.record_id.clone())),
        )
        .await;
    // The read deadline counts from the turns, not from arrival: counted
    // from arrival, a request that waited behind a slow read would find
    // its time gone and store as waiting even records that need no read.
    // (Its answer may then come after the CRM's own limit; the CRM sends
    // it again and the retry is answered as a duplicate.)
    let within = state
        .crm
        .mapping
        .crm(crm)
        .map(|m| m.hydrate_deadline())
        .unwrap_or(std::time::Duration::from_millis(
            super::mapping::DEFAULT_HYDRATE_DEADLINE_MS,
        ));
    let deadline_at = tokio::time::Instant::now() + within;
    let waiting = hydrate_all(state, crm, &set, &mut events, (deadline_at, within)).await;
    let mut decoded = Vec::with_capacity(events.len());
    let mut bad = Vec::with_capacity(events.len());
    for e in &events {
        let bytes = e.to_generic().to_string();
        match Event::decode_lenient(&set, bytes.as_bytes()) {
            Ok(ev) => {
                bad.push(BadValues::of(&ev, received_at));
                let wait = waiting
                    .get(&(e.object.clone(), e.record_id.clone()))
                    .cloned();
                decoded.push((
                    ev,
                    serde_json::to_string(e).unwrap_or_default(),
                    e.raw.clone(),
                    wait,
                ));
            }
            // Set aside alone, unlike `/hooks/generic`'s 422 for the whole
            // request: HubSpot does not resend a batch answered 4xx, so its
            // good events would be lost for one the workflows cannot take.
            Err(err) => rejected.push(Rejected {
                position: None,
                id: Some(e.id.clone()),
                error: format!("event {}: {err}", e.id),
            }),
        }
    }
    for r in &rejected {
        tracing::warn!(crm = source, position = r.position, id = r.id.as_deref(), error = %r.error, "an event of the batch was rejected; the others go on");
    }
    let request = Request {
        source: source.to_string(),
        received_at,
        events: Vec::new(),
    };
    let retry_at = received_at + pending::retry_interval(&state.crm.mapping);
    let started = std::time::Instant::now();
    // Replayable (see `StoreExt::write_replayable`): the job only reads
    // what it captured, and hands its decision times back with its value.
    let job = state.store.write_replayable(move |tx| {
        let times = std::cell::RefCell::new(Vec::new());
        let decided = |d| times.borrow_mut().push(d);
        let mut out = Vec::with_capacity(decoded.len());
        for (event, stored, raw_body, wait) in &decoded {
            let normalized = ingest::normalized(&set, event);
            let hash = ingest::content_hash(event, &normalized);
            let key = EventKey {
                source: &request.source,
                event_id: Some(event.id.as_str()),
                content_hash: &hash,
            };
            if let Some(audit_id) = tx.processed(&key)? {
                out.push(Fate::Done(Ingested::Duplicate { audit_id }));
                continue;
            }
            // The event kept to be decided later, waiting for `why`.
            let waits = |why: String| NewPending {
                source: request.source.clone(),
                event_id: event.id.clone(),
                object: event.object.clone(),
                record_id: event.record_id.clone(),
                event: stored.clone(),
                raw_body: raw_body.clone(),
                received_at: request.received_at,
                next_attempt_at: retry_at,
                error: why,
            };
            // Behind an event already waiting, a record's later events wait
            // too: they are decided in order once the CRM answers.
            if wait.is_some() || tx.crm_has_pending(&event.object, &event.record_id)? {
                let added = tx.crm_add_pending(&waits(
                    wait.clone()
                        .unwrap_or_else(|| "an earlier event of the record is waiting".into()),
                ))?;
                out.push(Fate::Pending(added));
                continue;
            }
            let done = match ingest::ingest_one(
                tx,
                &set,
                &request,
                event,
                raw_body.clone(),
                &decided,
            ) {
                Ok(done) => done,
                // The record's stored state cannot be read (it fails as it
                // is loaded, before anything of the event is written): its
                // event waits, kept and retried, rather than failing the
                // batch's other records with it (HubSpot would resend them
                // all, each time failing the same way, then give up).
                Err(ingest::IngestError::Corrupt { key, reason }) => {
                    tracing::error!(record = key, error = %reason, "a stored record cannot be read: its event waits; restore the database from a backup, or delete the record's row to start it afresh");
                    let added = tx.crm_add_pending(&waits(format!(
                        "the stored record {key} cannot be read: {reason}"
                    )))?;
                    out.push(Fate::Pending(added));
                    continue;
                }
                Err(ingest::IngestError::Store(s)) => return Err(s),
                Err(other) => return Err(StoreError::abort(other)),
            };
            out.push(Fate::Done(done));
        }
        Ok((out, times.into_inner()))
    });
    // Queued: the writer runs jobs in that order.
    drop(turns);
    match job.await {
        Ok((fates, times)) => {
            for d in times {
                state.metrics.decision_seconds.observe_duration(d);
            }
            state
                .metrics
                .ingest_commit_seconds
                .observe_duration(started.elapsed());
            // Counted now that the request is stored: a failed request is
            // sent again and counted then, a duplicate was counted before.
            let mut body = EventsBody::default();
            for (f, bad) in fates.iter().zip(&bad) {
                match f {
                    Fate::Done(r) => {
                        state.metrics.events.inc(&[source, answer_kind(r)]);
                        if let Ingested::Applied { .. } = r {
                            bad.count(state);
                        }
                        body.push_ingested(r);
                    }
                    Fate::Pending(new) => {
                        state.metrics.events.inc(&[source, "pending"]);
                        if *new {
                            bad.count(state);
                        }
                        body.push_value(&json!({"pending": true, "duplicate": !new}));
                    }
                }
            }
            for r in &rejected {
                state.metrics.events.inc(&[source, "rejected"]);
                body.push_rejected(r);
            }
            body.finish(Some(normalized.skipped.len()))
        }
        Err(e) => {
            tracing::error!(error = %e, "ingest failed; nothing of the request was stored");
            state.metrics.events.inc(&[source, "failed"]);
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the event could not be stored; nothing was applied: send it again",
            )
        }
    }
}

/// Hydrates the records of `events` (each record once, for its events in
/// order), at most [`super::hydrate::CONCURRENT_READS`] CRM calls at once
/// (shared with every other request and the retry loop) and all within
/// the CRM's `hydrate_deadline_ms`; returns why each record that must wait
/// could not be read. Every record starts at once and only the CRM call
/// waits for a turn, so a record that needs no call (its events cannot
/// trigger, or the store knows its fields) is never held up behind slow
/// calls for others. One deadline for the whole request, not one per
/// read: a read may take `timeout_ms` × (`retries` + 1) plus back-off, and
/// a CRM drops a webhook it waits on too long (HubSpot after 5 s) and in
/// the end gives up on it, so a record not read in time is stored as
/// pending, answered, and decided by the retry loop.
async fn hydrate_all(
    state: &Arc<AppState>,
    crm: Crm,
    set: &WorkflowSet,
    events: &mut [CrmEvent],
    (deadline_at, within): (tokio::time::Instant, std::time::Duration),
) -> BTreeMap<(String, String), String> {
    // Records in order of first appearance, with their events' positions.
    let mut records: Vec<((String, String), Vec<usize>)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        // A blank record id names nothing to read; decoding refuses it.
        if e.record_id.trim().is_empty() {
            continue;
        }
        let key = (e.object.clone(), e.record_id.clone());
        match records.iter_mut().find(|(k, _)| *k == key) {
            Some((_, at)) => at.push(i),
            None => records.push((key, vec![i])),
        }
    }
    let deadline = tokio::time::sleep_until(deadline_at);
    tokio::pin!(deadline);
    // What the store holds of every record, in one blocking call within
    // the deadline: not one per record (up to 100 in a HubSpot batch)
    // against a pool of a few read connections, which a read abandoned at
    // the deadline would go on holding. If the store cannot say, only the
    // records that would need what it holds wait.
    let keys: Vec<(String, String)> = records.iter().map(|(k, _)| k.clone()).collect();
    let store = state.store.clone();
    // A blocking read cannot be cancelled: once the deadline has given up
    // on it, it stops before its next record instead of reading them all.
    let abandoned = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let given_up = abandoned.clone();
    let read = tokio::task::spawn_blocking(move || {
        read_until_abandoned(&keys, &given_up, |(o, r)| {
            store.crm_record(o, r).map(|row| row.map(|row| row.state))
        })
    });
    let read = tokio::time::timeout_at(deadline_at, read).await;
    if read.is_err() {
        abandoned.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let known: Vec<Result<Option<String>, String>> = match read {
        Ok(Ok(Ok(known))) => known.into_iter().map(Ok).collect(),
        Ok(Ok(Err(e))) => unknown(&records, format!("the stored record is unreadable: {e}")),
        Ok(Err(e)) => unknown(&records, format!("the stored record is unreadable: {e}")),
        Err(_) => unknown(
            &records,
            "the stored record was not read within hydrate_deadline_ms".to_string(),
        ),
    };
    // Each read is a task of its own, owning a copy of its record's
    // events, so the reads run side by side and the ones still running at
    // the deadline are dropped with the set (aborted, their connections
    // closed) while the originals stay as received, to be stored.
    let mut reads = tokio::task::JoinSet::new();
    // Task id -> record, to know whose read panicked.
    let mut tasks = std::collections::HashMap::new();
    let mut waiting = BTreeMap::new();
    let mut done = vec![false; records.len()];
    for (at, ((_, positions), known)) in records.iter().zip(known).enumerate() {
        let mut group: Vec<CrmEvent> = positions.iter().map(|&i| events[i].clone()).collect();
        let (state, set) = (state.clone(), set.clone());
        let task = reads.spawn(async move {
            let mut refs: Vec<&mut CrmEvent> = group.iter_mut().collect();
            let read = hydrate_known(&state, crm, &set, &mut refs, known, Some(deadline_at)).await;
            (at, group, read)
        });
        tasks.insert(task.id(), at);
    }
    loop {
        let joined = tokio::select! {
            joined = reads.join_next_with_id() => joined,
            () = &mut deadline => break,
        };
        let Some(joined) = joined else {
            break; // every record was read (or needed no read)
        };
        match joined {
            // Left not done: counted with the reads the deadline cut.
            Ok((_, (_, _, Err(why)))) if why == OUT_OF_TIME => {}
            Ok((_, (at, group, read))) => {
                done[at] = true;
                match read {
                    Ok(()) => {
                        for (&i, e) in records[at].1.iter().zip(group) {
                            events[i] = e;
                        }
                    }
                    Err(why) => {
                        waiting.insert(records[at].0.clone(), why);
                    }
                }
            }
            // A read that panicked: the record is not known to be
            // complete, so its events wait like after a failed read.
            Err(e) => {
                tracing::error!(error = %e, "a CRM read stopped");
                if let Some(&at) = tasks.get(&e.id()) {
                    done[at] = true;
                    waiting.insert(records[at].0.clone(), format!("the CRM read stopped: {e}"));
                }
            }
        }
    }
    for (at, ((object, record_id), _)) in records.iter().enumerate() {
        if done[at] {
            continue;
        }
        state
            .metrics
            .crm_hydrations
            .inc(&[crm.as_str(), "deadline"]);
        tracing::warn!(
            crm = crm.as_str(),
            object,
            record_id,
            deadline_ms = within.as_millis(),
            "the record was not read from the CRM within hydrate_deadline_ms: the event waits"
        );
        waiting.insert(
            (object.clone(), record_id.clone()),
            format!(
                "the {crm} API did not answer within hydrate_deadline_ms ({} ms)",
                within.as_millis()
            ),
        );
    }
    waiting
}

/// What the store holds is unknown, for `why`, for every record.
fn unknown<T>(records: &[T], why: String) -> Vec<Result<Option<String>, String>> {
    records.iter().map(|_| Err(why.clone())).collect()
}

/// Why a record waits when its turn to call the CRM came too late: not a
/// failed read but the request's deadline, counted and logged as such.
const OUT_OF_TIME: &str = "the request's time for CRM reads ran out";

/// Reads the record of `group` (events of one record, in order) from the
/// CRM when a handoff they may trigger would read fields never heard of,
/// and adds the values to the first event (fields the events carry win).
/// `Err` names why the CRM could not be read: the events must wait.
pub(crate) async fn hydrate_record(
    state: &Arc<AppState>,
    crm: Crm,
    set: &WorkflowSet,
    group: &mut [&mut CrmEvent],
) -> Result<(), String> {
    let Some(first) = group.first() else {
        return Ok(());
    };
    let store = state.store.clone();
    let (o, r) = (first.object.clone(), first.record_id.clone());
    let known = tokio::task::spawn_blocking(move || store.crm_record(&o, &r))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?
        .map(|row| row.state);
    hydrate_known(state, crm, set, group, Ok(known), None).await
}

/// `read` of each key in turn, stopping with an error before the next key
/// once `abandoned` is set (the caller's deadline gave up waiting).
fn read_until_abandoned<K, T>(
    keys: &[K],
    abandoned: &std::sync::atomic::AtomicBool,
    mut read: impl FnMut(&K) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    keys.iter()
        .map(|key| {
            if abandoned.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(StoreError::Backend {
                    doing: "reading the CRM's records",
                    reason: "abandoned at the deadline".into(),
                });
            }
            read(key)
        })
        .collect()
}

/// [`hydrate_record`] with what the store holds of the record (its state
/// as stored) already read. Each try of the CRM call waits for a turn (see
/// [`super::hydrate::Client::turn`]) and starts only before `deadline`.
async fn hydrate_known(
    state: &Arc<AppState>,
    crm: Crm,
    set: &WorkflowSet,
    group: &mut [&mut CrmEvent],
    known: Result<Option<String>, String>,
    deadline: Option<tokio::time::Instant>,
) -> Result<(), String> {
    let Some(first) = group.first() else {
        return Ok(());
    };
    let (object, record_id, object_type) = (
        first.object.clone(),
        first.record_id.clone(),
        first.object_type.clone(),
    );
    let Some(mapping) = state.crm.mapping.crm(crm) else {
        return Ok(());
    };
    let (Some(om), Some(schema)) = (mapping.object(&object), set.object(&object)) else {
        return Ok(());
    };
    let stored = match known? {
        Some(text) => match serde_json::from_str::<StoredRecord>(&text) {
            Ok(s) => Some(RecordState::from_stored(schema, &s)),
            Err(_) => None,
        },
        None => None,
    };
    // Any event of the group may trigger; the record is read for the
    // first one, so later events (newer) keep their own values.
    let any: Vec<&str> = group
        .iter()
        .flat_map(|e| e.record.keys().map(String::as_str))
        .collect();
    let carried: Vec<String> = first.record.keys().cloned().collect();
    let created = group.iter().any(|e| e.created);
    let needs = needs(set, om, schema, stored.as_ref(), &any, &carried, created);
    if needs.is_empty() {
        return Ok(());
    }
    let Some(client) = state.crm.client(crm) else {
        // No token: the operator chose not to read the CRM.
        state
            .metrics
            .crm_hydrations
            .inc(&[crm.as_str(), "no_token"]);
        return Ok(());
    };
    let properties: Vec<&str> = needs.iter().map(|(p, _)| p.as_str()).collect();
    match client
        .fetch(&object_type, &record_id, &properties, deadline)
        .await
    {
        Ok(fetched) => {
            state.metrics.crm_hydrations.inc(&[crm.as_str(), "fetched"]);
            let mut fields = serde_json::Map::new();
            // Asked for and not returned: the CRM has no value.
            let returned: Vec<(String, serde_json::Value)> = properties
                .iter()
                .map(|p| {
                    let v = fetched.get(*p).cloned().unwrap_or(serde_json::Value::Null);
                    (p.to_string(), v)
                })
                .collect();
            apply_properties(&mut fields, mapping, om, schema, returned);
            // Each event gets the values that neither it nor an event
            // before it carries (a later event keeps its own, newer
            // values). Not the first event alone: when it is a retry of
            // one already stored, its job skips it, and the values must
            // still reach the next one.
            let own: Vec<Vec<String>> = group
                .iter()
                .map(|e| e.record.keys().cloned().collect())
                .collect();
            let mut carried_so_far: Vec<&String> = Vec::new();
            for (e, own) in group.iter_mut().zip(&own) {
                carried_so_far.extend(own);
                for (field, value) in &fields {
                    if !carried_so_far.contains(&field) {
                        e.record.insert(field.clone(), value.clone());
                    }
                }
            }
            Ok(())
        }
        Err(HydrateError::OutOfTime) => Err(OUT_OF_TIME.into()),
        Err(HydrateError::NotFound) => {
            // Deleted in the CRM since: decide on what the webhook said.
            state
                .metrics
                .crm_hydrations
                .inc(&[crm.as_str(), "not_found"]);
            Ok(())
        }
        Err(e) => {
            state.metrics.crm_hydrations.inc(&[crm.as_str(), "failed"]);
            tracing::warn!(crm = crm.as_str(), object, record_id, error = %e, "cannot read the record from the CRM: the event waits");
            Err(e.to_string())
        }
    }
}

/// The CRM properties to read: every mapped field never heard of (not in
/// the stored record, not carried by the events), when a handoff on the
/// object may be triggered or is in flight on the record. Empty when no
/// read is needed.
fn needs(
    set: &WorkflowSet,
    om: &ObjectMapping,
    schema: &ObjectSchema,
    stored: Option<&RecordState>,
    any: &[&str],
    carried: &[String],
    created: bool,
) -> Vec<(String, usize)> {
    use crate::compile::TriggerKind;
    let Some(object_index) = set
        .schema()
        .objects
        .iter()
        .position(|o| o.name == schema.name)
    else {
        return Vec::new();
    };
    let touches = |slot: usize| any.contains(&schema.fields[slot].name.as_str());
    let carries = |slot: usize| carried.contains(&schema.fields[slot].name);
    let relevant = set
        .handoffs()
        .iter()
        .filter(|h| h.object == object_index)
        .any(|h| {
            let in_flight = stored
                .and_then(|r| r.handoffs.get(&h.name))
                .is_some_and(|i| !i.finished());
            in_flight
                || match &h.trigger.event {
                    TriggerKind::Created => stored.is_none() || created,
                    TriggerKind::Becomes { slot, .. } | TriggerKind::Changes { slot, .. } => {
                        touches(*slot)
                    }
                }
        });
    if !relevant {
        return Vec::new();
    }
    let mut out: Vec<(String, usize)> = Vec::new();
    for (property, field) in om.mapped_properties() {
        let Some(slot) = schema.slot(field) else {
            continue;
        };
        let heard = stored.is_some_and(|r| {
            r.set_at.get(slot).is_some_and(Option::is_some)
                || r.values
                    .get(slot)
                    .is_some_and(|v| *v != crate::value::Value::Null)
        });
        if !heard && !carries(slot) {
            out.push((property.to_string(), slot));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::read_until_abandoned;

    #[test]
    fn a_read_given_up_on_stops_before_its_next_record() {
        let keys = ["a", "b", "c", "d"];
        let abandoned = AtomicBool::new(false);
        let mut read = Vec::new();
        let got = read_until_abandoned(&keys, &abandoned, |k| {
            read.push(*k);
            // The deadline passes while the second record is read.
            if *k == "b" {
                abandoned.store(true, Ordering::Relaxed);
            }
            Ok(k.len())
        });
        assert!(got.unwrap_err().to_string().contains("abandoned"));
        assert_eq!(read, ["a", "b"]);
        // Not given up on: every record is read.
        let abandoned = AtomicBool::new(false);
        let all = read_until_abandoned(&keys, &abandoned, |k| Ok(k.to_string())).unwrap();
        assert_eq!(all, keys);
    }
}
