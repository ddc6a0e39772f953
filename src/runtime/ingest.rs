//! The one durable path every CRM event takes, whatever adapter decoded it:
//! dedupe → load the record → decide → save the record, its handoff
//! instances and their status changes, the audit row and the outbox rows,
//! all in one write job. The job commits with its group-commit batch before
//! the caller answers 2xx, so a crash loses nothing acknowledged and a retry
//! finds the event processed and changes nothing.
//!
//! The engine is pure; here it reads and writes exactly one record's state
//! per event, and the assignment memory through the store's atomic verbs.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::compile::WorkflowSet;
use crate::eval::{self, Assignments, Event, Instance, Outcome, PlannedAction, RecordState};
use crate::runtime::store::{
    ActionKind, Appended, AuditId, Cause, EventKey, HandoffRow, NewAction, NewEvent, NewNote,
    RecordRow, StatusChange, Store, StoreError, StoreExt, WriteTx,
};

/// What happened to one event of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Ingested {
    /// Decided and stored under this audit id.
    Applied {
        audit_id: AuditId,
        outcome: Outcome,
        /// `outcome` as JSON, exactly as the audit log stores it (an answer
        /// can send it on without serializing the outcome a second time).
        outcome_json: String,
    },
    /// The same event was stored before: nothing changed.
    Duplicate { audit_id: AuditId },
}

/// Why an ingest failed. Nothing of the request was stored.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Step(#[from] eval::StepError),
    /// Another writer stored the event between our dedupe check and our
    /// append (a second replica on a shared database). The whole request
    /// was rolled back: nothing of it is stored.
    #[error("event `{key}` was stored by another writer while this request was being decided")]
    #[diagnostic(help(
        "send the request again: the retry finds the event stored and changes nothing"
    ))]
    Raced { key: String },
    /// An earlier CRM event of the record waits for the CRM's API; this
    /// event would apply ahead of it. Nothing of the request was stored.
    #[error("an earlier event of {object} `{record_id}` waits for the CRM's API, and this one must not apply before it")]
    #[diagnostic(help(
        "send the request again in a minute: the waiting event is decided once the CRM answers"
    ))]
    WaitsBehindCrm { object: String, record_id: String },
    #[error("the stored state of {key} is unreadable: {reason}")]
    #[diagnostic(help(
        "restore the database from a backup, or delete the record's row to start it afresh"
    ))]
    Corrupt { key: String, reason: String },
}

/// One request's events, decoded by `set`, from `source` (`generic`,
/// `hubspot`, ...), in order.
pub struct Request {
    pub source: String,
    pub received_at: Timestamp,
    pub events: Vec<Received>,
}

/// One event of a request, with the bytes the audit log keeps for it as
/// received: the whole body when the body is this one event, the event's
/// own element when it came in a batch. (Each event of a batch keeping the
/// whole body would store an array of thousands of events thousands of
/// times over.)
pub struct Received {
    pub event: Event,
    pub raw_body: Vec<u8>,
}

/// Decides and stores every event of `request`, in order, in one write job:
/// the answer comes once that job's batch has committed.
///
/// The job is queued when this is called, not when the future is first
/// polled: jobs run in the order they are queued, so a caller that orders
/// requests (a record's turn, a version's lease) may let go once this
/// returns, before awaiting the commit.
pub fn ingest(
    store: &Arc<dyn Store>,
    set: WorkflowSet,
    request: Request,
) -> impl Future<Output = Result<Vec<Ingested>, IngestError>> + Send + 'static {
    ingest_observed(store, set, request, |_| {})
}

/// [`ingest`], telling `decided` how long each event's `eval::step` took
/// (for the decision latency histogram), once the events are committed
/// (so not when the caller stops waiting first: a client that went away).
/// Queues the job when called, like [`ingest`].
pub fn ingest_observed<D: Fn(Duration) + Send + 'static>(
    store: &Arc<dyn Store>,
    set: WorkflowSet,
    mut request: Request,
    decided: D,
) -> impl Future<Output = Result<Vec<Ingested>, IngestError>> + Send + 'static {
    request.received_at = stored_precision(request.received_at);
    // Everything that depends on the event alone is encoded here, on the
    // request's task, before the job is queued: the one writer thread
    // serializes every request, so each microsecond it spends per event is
    // a microsecond of everyone's latency and caps the events per second.
    let encoded: Vec<Encoded> = request
        .events
        .iter()
        .map(|r| Encoded::of(&set, &r.event))
        .collect();
    // Replayable: if another job of the batch fails, this one runs again
    // (the writer then spares every job a savepoint). It only reads what
    // it captured, and the decision times it measures are answered with
    // its value, so a run that is rolled back leaves nothing behind.
    let job = store.write_replayable(move |tx| {
        let times = std::cell::RefCell::new(Vec::with_capacity(request.events.len()));
        let took = |d: Duration| times.borrow_mut().push(d);
        let mut out = Vec::with_capacity(request.events.len());
        for (received, encoded) in request.events.iter().zip(&encoded) {
            let stored = ingest_event(
                tx,
                &set,
                &request,
                &received.event,
                encoded.clone(),
                received.raw_body.clone(),
                Behind::Refuse,
                &took,
            );
            out.push(stored.map_err(|e| match e {
                IngestError::Store(s) => s,
                other => StoreError::abort(other),
            })?);
        }
        Ok((out, times.into_inner()))
    });
    // Boxed: the store's future type names the `&self` borrow it no
    // longer holds, which would tie this future to `store`.
    let job: std::pin::Pin<Box<dyn Future<Output = _> + Send>> = Box::pin(job);
    async move {
        // A job's own error (a step refused, a corrupt row) comes back as
        // `StoreError::Aborted` carrying it: `aborted_with` reads it.
        let (out, times) = job.await?;
        for d in times {
            decided(d);
        }
        Ok(out)
    }
}

/// `t` cut to the microseconds the store keeps. A decision reads `now`
/// (an instance's id hashes it; due dates start from it), so deciding with
/// the nanoseconds the store drops would make the audit log's
/// `received_at` replay to other ids and times than were decided.
pub fn stored_precision(t: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(t.as_microsecond()).unwrap_or(t)
}

/// The identity a retry of `event` carries: the sender's id, or a hash of
/// the normalized event when it gives none.
pub fn content_hash(event: &Event, normalized: &str) -> String {
    let mut h = Sha256::new();
    h.update(event.object.as_bytes());
    h.update([0]);
    h.update(normalized.as_bytes());
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// The event as the audit log keeps it: names, not slots.
pub fn normalized(set: &WorkflowSet, event: &Event) -> String {
    let object = &set.schema().objects[event.object_index];
    let fields = |values: &[Option<crate::value::Value>]| {
        let mut map = serde_json::Map::new();
        for (slot, v) in values.iter().enumerate() {
            if let Some(v) = v {
                let json = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
                map.insert(object.fields[slot].name.clone(), json);
            }
        }
        serde_json::Value::Object(map)
    };
    serde_json::json!({
        "id": event.id,
        "object": event.object,
        "record_id": event.record_id,
        "occurred_at": event.occurred_at,
        "record": fields(&event.record),
        "previous": fields(&event.previous),
    })
    .to_string()
}

/// The parts of an event's audit row that depend on the event alone.
#[derive(Clone)]
pub struct Encoded {
    normalized: String,
    hash: String,
    field_errors: String,
}

impl Encoded {
    /// Encodes `event` (decoded by `set`) for its audit row.
    pub fn of(set: &WorkflowSet, event: &Event) -> Encoded {
        let normalized = normalized(set, event);
        let hash = content_hash(event, &normalized);
        Encoded {
            normalized,
            hash,
            field_errors: field_errors_json(event),
        }
    }
}

/// The audit row's `field_errors`: the values that did not fit, and the
/// values outside their `one of` lists.
fn field_errors_json(event: &Event) -> String {
    serde_json::to_string(&serde_json::json!({
        "errors": event.field_errors,
        "unknown_values": event.unknown_values,
    }))
    .unwrap_or_default()
}

/// How far ahead of the server's clock an event's `occurred_at` may be
/// (clocks differ, and a CRM may stamp a change a little ahead).
pub const MAX_AHEAD: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// Whether `event`'s `occurred_at` is more than [`MAX_AHEAD`] after `now`
/// (the durable path then reads it as undated; a hook counts it as a
/// field error).
pub fn too_far_ahead(event: &Event, now: Timestamp) -> bool {
    event
        .occurred_at
        .is_some_and(|at| at.duration_since(now) > MAX_AHEAD)
}

/// `event` read as undated, with a field error, when its `occurred_at` is
/// more than [`MAX_AHEAD`] after `now`; `None` when its time can stand.
/// Its values would otherwise count as newer than every real change to
/// come (an older event never overwrites a newer value), and the record
/// would keep them until that date: a typo of 2100 for 2010 froze it.
fn dated_too_far_ahead(event: &Event, now: Timestamp) -> Option<Event> {
    if !too_far_ahead(event, now) {
        return None;
    }
    let at = event.occurred_at?;
    let mut undated = event.clone();
    undated.occurred_at = None;
    undated.field_errors.push(eval::FieldError {
        field: "occurred_at".into(),
        value: format!("\"{at}\""),
        expected: format!(
            "a time no later than {} h after the server received the event ({now}); fix the sender's clock",
            MAX_AHEAD.as_hours()
        ),
    });
    Some(undated)
}

/// Decides and stores one event inside a write job (the CRM adapters
/// call it in their own jobs, beside their pending rows); `request` gives
/// the source and the time received (its `events` are not read), and
/// `raw_body` is the event's own bytes as received. `decided` is told how
/// long the decision took, inside the job: a replayable job keeps the
/// times and observes them after its commit, as [`ingest_observed`] does.
pub fn ingest_one(
    tx: &mut dyn WriteTx,
    set: &WorkflowSet,
    request: &Request,
    event: &Event,
    raw_body: Vec<u8>,
    decided: &dyn Fn(Duration),
) -> Result<Ingested, IngestError> {
    let encoded = Encoded::of(set, event);
    // The CRM paths keep their own order: an event behind waiting ones
    // waits too (`adapters::decide`), and the retry pass decides the
    // waiting ones themselves.
    let behind = Behind::Decide;
    ingest_event(tx, set, request, event, encoded, raw_body, behind, decided)
}

/// What to do with an event whose record has CRM events waiting.
#[derive(Clone, Copy, PartialEq)]
enum Behind {
    /// Refuse it, so that it does not apply before them (the generic
    /// hook: its sender sends it again).
    Refuse,
    /// Decide it: the caller keeps the order itself.
    Decide,
}

#[allow(clippy::too_many_arguments)]
fn ingest_event(
    tx: &mut dyn WriteTx,
    set: &WorkflowSet,
    request: &Request,
    event: &Event,
    encoded: Encoded,
    raw_body: Vec<u8>,
    behind: Behind,
    decided: &dyn Fn(Duration),
) -> Result<Ingested, IngestError> {
    let Encoded {
        mut normalized,
        hash,
        mut field_errors,
    } = encoded;
    // Cut to what the store keeps, whoever built the request (see
    // `stored_precision`).
    let now = stored_precision(request.received_at);
    // The event keeps its identity (its hash is of it as received: a
    // retry is still a duplicate); only its time is set aside, and the
    // audit row keeps the event as decided (a replay of it decides the
    // same) and says why.
    let undated = dated_too_far_ahead(event, now);
    if let Some(e) = &undated {
        normalized = self::normalized(set, e);
        field_errors = field_errors_json(e);
    }
    let event = undated.as_ref().unwrap_or(event);
    let event_id = (!event.id.is_empty()).then_some(event.id.as_str());
    let key = EventKey {
        source: &request.source,
        event_id,
        content_hash: &hash,
    };
    if let Some(audit_id) = tx.processed(&key)? {
        return Ok(Ingested::Duplicate { audit_id });
    }
    if behind == Behind::Refuse && tx.crm_has_pending(&event.object, &event.record_id)? {
        return Err(IngestError::WaitsBehindCrm {
            object: event.object.clone(),
            record_id: event.record_id.clone(),
        });
    }
    let object = &set.schema().objects[event.object_index];
    let record = load(tx, object, &event.object, &event.record_id)?;
    let before: BTreeMap<String, Instance> = record
        .as_ref()
        .map(|r| r.handoffs.clone())
        .unwrap_or_default();
    // `escalate when` compares the record before and after the event; the
    // copy is made only for objects that declare one.
    let watched = crate::runtime::escalations::declared_for(set, event.object_index)
        .then(|| record.clone())
        .flatten();
    let mut assign = TxAssignments { tx, error: None };
    let started = Instant::now();
    let stepped = eval::step(set, record, event, now, &mut assign);
    decided(started.elapsed());
    if let Some(e) = assign.error {
        return Err(e.into());
    }
    let (record, outcome) = stepped?;
    save(
        tx,
        set,
        object,
        &event.object,
        &event.record_id,
        &record,
        now,
    )?;
    let touched = project(tx, &before, &record, &event.object, &event.record_id)?;
    let new_event = NewEvent {
        source: request.source.clone(),
        event_id: event_id.map(str::to_string),
        content_hash: hash,
        received_at: now,
        object: Some(event.object.clone()),
        record_id: Some(event.record_id.clone()),
        raw_body,
        normalized,
        workflow_version: Some(set.version().to_string()),
        outcome: serde_json::to_string(&outcome).unwrap_or_default(),
        field_errors,
        handoff_ids: touched.iter().map(|(id, _, _)| id.clone()).collect(),
    };
    let appended = tx.append_event(&new_event)?;
    let (audit_id, outcome_json) = match appended {
        Appended::New(id) => (id, new_event.outcome),
        // Stored by someone else since `processed` said it was new: the
        // record, its handoffs and the assignment memory were already
        // written above, so the job must fail (the writer rolls all of it
        // back) rather than answer `Duplicate` and keep them.
        // (Named by its id, or its content hash when it has none.)
        Appended::Duplicate(_) => {
            let NewEvent {
                event_id,
                content_hash,
                ..
            } = new_event;
            return Err(IngestError::Raced {
                key: event_id.unwrap_or(content_hash),
            });
        }
    };
    for (id, from, to) in &touched {
        if from.as_deref() != Some(to.as_str()) {
            tx.status_change(&StatusChange {
                handoff_id: id.clone(),
                from: from.clone(),
                to: to.clone(),
                at: now,
                cause: Cause::Event(audit_id),
                note: None,
            })?;
        }
    }
    enqueue(tx, &outcome.handoffs, now)?;
    if crate::runtime::escalations::declared_for(set, event.object_index) {
        crate::runtime::escalations::by_rule(
            tx,
            set,
            event.object_index,
            watched.as_ref(),
            &record,
            now,
        )?;
    }
    Ok(Ingested::Applied {
        audit_id,
        outcome,
        outcome_json,
    })
}

fn load(
    tx: &mut dyn WriteTx,
    object: &crate::check::ObjectSchema,
    name: &str,
    record_id: &str,
) -> Result<Option<RecordState>, IngestError> {
    let Some(row) = tx.load_record(name, record_id)? else {
        return Ok(None);
    };
    let stored: eval::StoredRecord =
        serde_json::from_str(&row.state).map_err(|e| IngestError::Corrupt {
            key: format!("{name}/{record_id}"),
            reason: e.to_string(),
        })?;
    Ok(Some(RecordState::from_stored(object, &stored)))
}

fn save(
    tx: &mut dyn WriteTx,
    set: &WorkflowSet,
    object: &crate::check::ObjectSchema,
    name: &str,
    record_id: &str,
    record: &RecordState,
    now: Timestamp,
) -> Result<(), IngestError> {
    let state =
        serde_json::to_string(&record.to_stored(object)).map_err(|e| IngestError::Corrupt {
            key: format!("{name}/{record_id}"),
            reason: e.to_string(),
        })?;
    tx.save_record(&RecordRow {
        object: name.to_string(),
        record_id: record_id.to_string(),
        state,
        workflow_version: Some(set.version().to_string()),
        updated_at: now,
    })?;
    Ok(())
}

/// Writes the queryable projection of every instance that changed; returns
/// (id, status before, status now) for each.
fn project(
    tx: &mut dyn WriteTx,
    before: &BTreeMap<String, Instance>,
    record: &RecordState,
    object: &str,
    record_id: &str,
) -> Result<Vec<(String, Option<String>, String)>, StoreError> {
    let mut touched = Vec::new();
    for (workflow, inst) in &record.handoffs {
        let old = before.get(workflow).filter(|o| o.id == inst.id);
        if old == Some(inst) {
            continue;
        }
        tx.upsert_instance(&row(workflow, object, record_id, inst))?;
        touched.push((
            inst.id.clone(),
            old.map(|o| o.status.as_str().to_string()),
            inst.status.as_str().to_string(),
        ));
    }
    Ok(touched)
}

/// The projection row of an instance.
pub fn row(workflow: &str, object: &str, record_id: &str, inst: &Instance) -> HandoffRow {
    HandoffRow {
        id: inst.id.clone(),
        workflow: workflow.to_string(),
        object: object.to_string(),
        record_id: record_id.to_string(),
        status: inst.status.as_str().to_string(),
        workflow_version: Some(inst.version.clone()),
        triggered_at: inst.triggered_at,
        updated_at: inst.updated_at,
        done_at: inst.done_at,
        missing: serde_json::to_string(&inst.missing).unwrap_or_default(),
        exceptions: serde_json::to_string(&inst.exceptions).unwrap_or_default(),
        orphaned: inst.orphaned_at.is_some(),
    }
}

/// Puts every planned action in the outbox, keyed by its stable id.
fn enqueue(
    tx: &mut dyn WriteTx,
    handoffs: &[eval::HandoffOutcome],
    now: Timestamp,
) -> Result<(), StoreError> {
    for h in handoffs {
        let Some(instance) = &h.instance else {
            continue;
        };
        for action in &h.actions {
            let kind = match &action.plan {
                PlannedAction::Assign { .. } => ActionKind::Assign,
                PlannedAction::Task { .. } => ActionKind::Task,
                PlannedAction::Notify { .. } => ActionKind::Notify,
                PlannedAction::EmailDraft { .. } => ActionKind::EmailDraft,
                PlannedAction::Set { .. } => ActionKind::Set,
            };
            tx.enqueue_action(&NewAction {
                id: action.id.clone(),
                handoff_id: instance.clone(),
                kind,
                payload: serde_json::to_string(action).unwrap_or_default(),
                idempotency_key: action.id.clone(),
                created_at: now,
            })?;
        }
    }
    Ok(())
}

/// The human override: approves the handoff `id` in review, as `who`, with
/// a note; it proceeds on the normal path and its actions are queued.
pub async fn approve(
    store: &Arc<dyn Store>,
    set: WorkflowSet,
    id: String,
    who: String,
    note: String,
    now: Timestamp,
) -> Result<Option<eval::HandoffOutcome>, IngestError> {
    by_hand(store, set, Verdict::Approve, id, who, note, now).await
}

/// The human override's other side: rejects the handoff `id` in review, as
/// `who`, with a note; it ends as `rejected` and no action of its normal
/// path is queued. `None` when it is not in review (or does not exist).
pub async fn reject(
    store: &Arc<dyn Store>,
    set: WorkflowSet,
    id: String,
    who: String,
    note: String,
    now: Timestamp,
) -> Result<Option<eval::HandoffOutcome>, IngestError> {
    by_hand(store, set, Verdict::Reject, id, who, note, now).await
}

/// What a person decided about a handoff in review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Approve,
    Reject,
}

/// One write job for a person's verdict: the record's new state, the
/// status change naming the person and the note, the note in the handoff's
/// log, and the actions the verdict planned, committed together.
async fn by_hand(
    store: &Arc<dyn Store>,
    set: WorkflowSet,
    verdict: Verdict,
    id: String,
    who: String,
    note: String,
    now: Timestamp,
) -> Result<Option<eval::HandoffOutcome>, IngestError> {
    // Cut to what the store keeps, so a replay of the audit log decides
    // with the same `now` (see `stored_precision`).
    let now = stored_precision(now);
    let job = store.write(move |tx| {
        let Some(row) = tx.load_instance(&id)? else {
            return Ok(None);
        };
        let mut step = || -> Result<Option<eval::HandoffOutcome>, IngestError> {
            let Some(object) = set.object(&row.object) else {
                return Ok(None);
            };
            let Some(record) = load(tx, object, &row.object, &row.record_id)? else {
                return Ok(None);
            };
            let before = record.handoffs.clone();
            let mut assign = TxAssignments { tx, error: None };
            let decide = match verdict {
                Verdict::Approve => eval::approve,
                Verdict::Reject => eval::reject,
            };
            let decided = decide(
                &set,
                &record,
                &row.workflow,
                &row.record_id,
                now,
                &mut assign,
            );
            if let Some(e) = assign.error {
                return Err(e.into());
            }
            let Ok((record, outcome)) = decided else {
                return Ok(None);
            };
            save(tx, &set, object, &row.object, &row.record_id, &record, now)?;
            for (inst_id, from, to) in project(tx, &before, &record, &row.object, &row.record_id)? {
                tx.status_change(&StatusChange {
                    handoff_id: inst_id,
                    from,
                    to,
                    at: now,
                    cause: Cause::Person(who.clone()),
                    note: Some(note.clone()),
                })?;
            }
            tx.add_note(&NewNote {
                handoff_id: id.clone(),
                kind: match verdict {
                    Verdict::Approve => "approve",
                    Verdict::Reject => "reject",
                }
                .into(),
                who: who.clone(),
                at: now,
                text: note.clone(),
                data: serde_json::to_string(&outcome).ok(),
            })?;
            enqueue(tx, std::slice::from_ref(&outcome), now)?;
            Ok(Some(outcome))
        };
        step().map_err(|e| match e {
            IngestError::Store(s) => s,
            other => StoreError::abort(other),
        })
    });
    Ok(job.await?)
}

/// The store's assignment verbs as the engine's [`Assignments`]. The trait
/// cannot fail, so the first store error is kept and the job aborts on it.
/// After an error nothing more reaches the store: an error such as a full
/// disk can make SQLite roll back the whole transaction, and a statement
/// run after that would commit on its own, outside the batch.
struct TxAssignments<'a> {
    tx: &'a mut dyn WriteTx,
    error: Option<StoreError>,
}

impl TxAssignments<'_> {
    /// `f` on the store unless an earlier call failed; `fallback` then.
    fn call<T>(
        &mut self,
        fallback: T,
        f: impl FnOnce(&mut dyn WriteTx) -> Result<T, StoreError>,
    ) -> T {
        if self.error.is_some() {
            return fallback;
        }
        f(&mut *self.tx).unwrap_or_else(|e| {
            self.error = Some(e);
            fallback
        })
    }
}

impl Assignments for TxAssignments<'_> {
    fn next_cursor(&mut self, team: &str) -> u64 {
        self.call(0, |tx| tx.next_cursor(team))
    }
    fn open_tasks(&mut self, person: &str) -> u32 {
        self.call(0, |tx| tx.open_tasks(person))
    }
    fn task_opened(&mut self, person: &str) {
        self.call((), |tx| tx.adjust_open_tasks(person, 1).map(drop))
    }
    fn task_closed(&mut self, person: &str) {
        self.call((), |tx| tx.adjust_open_tasks(person, -1).map(drop))
    }
}
