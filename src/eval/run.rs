//! The handoff lifecycle, as a pure function of (state, event) → (state,
//! outcome):
//!
//! ```text
//! (none/done) ──trigger──▶ paused(missing) ──fields filled──▶ review | proceeded
//! (none/done) ──trigger──▶ review(exceptions) ──resume when / approve──▶ proceeded
//! (none/done) ──trigger──▶ proceeded ──done when──▶ done
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::event::Event;
use super::expr::{equal, Ctx, Record};
use super::outcome::*;
use super::plan::{answers, attach_brief, plan, render_brief};
use super::state::{Assignments, Instance, RecordState, State, Status, StoredRecord};
use super::trace::{show, ActionList, Becomes, CondRef, FieldName, Line, Trace};
use crate::check::ObjectSchema;
use crate::compile::{CompiledHandoff, Cond, ExceptionKind, TriggerKind, WorkflowSet};
use crate::value::Value;

/// Why a step was refused. Nothing was decided; the given state stands.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StepError {
    /// The event was decoded by another version of the workflows: its field
    /// slots would be read as another object's.
    #[error(
        "the event was decoded with workflow version {} but is stepped with version {}",
        short(.decoded),
        short(.stepping)
    )]
    #[diagnostic(
        code(step::version),
        help(
            "decode the event again with the workflows that will step it (a reload changed them)"
        )
    )]
    OtherVersion { decoded: String, stepping: String },
    /// The record state was typed by rules with another field list.
    #[error(
        "the state of record {record_id} has {found} field(s), but `{object}` declares {expected}"
    )]
    #[diagnostic(
        code(step::record),
        help("load the record with `RecordState::from_stored` under the workflows that step it")
    )]
    RecordShape {
        record_id: String,
        object: String,
        found: usize,
        expected: usize,
    },
}

/// A version id as people read it: its first 12 hex digits.
pub fn short(version: &str) -> &str {
    version.get(..12).unwrap_or(version)
}

/// Applies one event to the state of its record (`None` for a record not
/// seen before). Pure: the same version, record state, event, `now` and
/// assignment memory always give the same result; nothing else is read or
/// written. Deduplication by event id is the caller's (see [`State::step`]).
/// A caller done with the event after the step gives it to [`step_owned`].
pub fn step(
    set: &WorkflowSet,
    record: Option<RecordState>,
    event: &Event,
    now: jiff::Timestamp,
    assign: &mut dyn Assignments,
) -> Result<(RecordState, Outcome), StepError> {
    step_event(set, record, Cow::Borrowed(event), now, assign)
}

/// [`step`], taking the event by value: its values move into the record's
/// new state instead of being copied, a good part of a step's cost.
pub fn step_owned(
    set: &WorkflowSet,
    record: Option<RecordState>,
    event: Event,
    now: jiff::Timestamp,
    assign: &mut dyn Assignments,
) -> Result<(RecordState, Outcome), StepError> {
    step_event(set, record, Cow::Owned(event), now, assign)
}

fn step_event(
    set: &WorkflowSet,
    record: Option<RecordState>,
    event: Cow<'_, Event>,
    now: jiff::Timestamp,
    assign: &mut dyn Assignments,
) -> Result<(RecordState, Outcome), StepError> {
    if event.version != set.version() {
        return Err(StepError::OtherVersion {
            decoded: event.version.clone(),
            stepping: set.version().to_string(),
        });
    }
    let object = &set.schema().objects[event.object_index];
    let n = object.fields.len();
    // A record is new the first time the engine hears of it (even with no
    // fields), unless the event itself says what it was before.
    let fresh = record.is_none();
    let created = fresh && event.previous.iter().all(Option::is_none);
    // A new record's values are the event's alone: its state is built from
    // them at the end, and until then it reads as empty (no slots).
    let RecordState {
        mut values,
        mut set_at,
        handoffs: mut instances,
    } = record.unwrap_or_default();
    if !fresh && (values.len() != n || set_at.len() != n) {
        return Err(StepError::RecordShape {
            record_id: event.record_id.clone(),
            object: object.name.clone(),
            found: values.len(),
            expected: n,
        });
    }

    // Out of order: a value older than the one held is left out, so the
    // record reads as the newest values whatever order events came in.
    let mut notes = Vec::new();
    let stale = event.occurred_at.filter(|_| !fresh).and_then(|t| {
        let older = |slot: usize| set_at[slot].is_some_and(|held| held > t);
        if !(0..n).any(|s| event.record[s].is_some() && older(s)) {
            return None;
        }
        Some(
            event
                .record
                .iter()
                .enumerate()
                .map(|(s, v)| {
                    if v.is_some() && older(s) {
                        notes.push(format!(
                            "{}: this event ({t}) is older than the value held (set {}): kept the newer value",
                            FieldName(object, s),
                            set_at[s].map(|x| x.to_string()).unwrap_or_default()
                        ));
                        None
                    } else {
                        v.clone()
                    }
                })
                .collect::<Vec<_>>(),
        )
    });
    let overlay: &[Option<Value>] = stale.as_deref().unwrap_or(&event.record);
    let occurred_at = event.occurred_at;

    let mut outcomes = Vec::new();
    {
        // The record now is the snapshot with the event's values; `previous`
        // describes only the past. Both are read in place, not copied.
        let before = Record {
            overlay: &event.previous,
            base: &values,
        };
        let after = Record {
            overlay,
            base: &values,
        };
        outcomes.extend(orphan(set, &mut instances, event.object_index, now, assign));
        for (index, h) in set
            .handoffs()
            .iter()
            .enumerate()
            .filter(|(_, h)| h.object == event.object_index)
        {
            let run = Run {
                set,
                h,
                index: index as u32,
                object,
                after,
                now,
                record_id: &event.record_id,
                object_name: &event.object,
                event_id: &event.id,
            };
            let mut instance = instances.remove(&h.name);
            let migrated_from = instance.as_mut().and_then(|i| migrate(set, i));
            let (instance, mut outcome) = run_handoff(&run, instance, before, created, assign);
            if let Some(from) = migrated_from {
                outcome.trace.prepend([format!(
                    "migrated: decided under version {} before, version {} now",
                    short(&from),
                    short(set.version())
                )]);
                outcome.migrated_from = Some(from);
            }
            if !notes.is_empty() {
                outcome.trace.prepend(notes.iter().cloned());
            }
            if let Some(i) = instance {
                instances.insert(h.name.clone(), i);
            }
            outcomes.push(outcome);
        }
    }

    // The record's new state: the event's values move in when the event
    // was given by value, and are copied otherwise.
    let (event_id, given) = match event {
        Cow::Owned(e) => (e.id, Cow::Owned(e.record)),
        Cow::Borrowed(e) => (e.id.clone(), Cow::Borrowed(e.record.as_slice())),
    };
    let overlay = stale.map_or(given, Cow::Owned);
    if fresh {
        set_at = overlay
            .iter()
            .map(|v| occurred_at.filter(|_| v.is_some()))
            .collect();
        values = match overlay {
            // In place: the event's vector becomes the state's.
            Cow::Owned(overlay) => overlay
                .into_iter()
                .map(|v| v.unwrap_or(Value::Null))
                .collect(),
            Cow::Borrowed(overlay) => overlay
                .iter()
                .map(|v| v.clone().unwrap_or(Value::Null))
                .collect(),
        };
        // A hand-made event may carry more or fewer slots than declared.
        values.resize(n, Value::Null);
        set_at.resize(n, None);
        return Ok(finish_step(
            set, event_id, values, set_at, instances, outcomes,
        ));
    }
    let mut apply = |slot: usize, v: Value| {
        values[slot] = v;
        set_at[slot] = occurred_at.or(set_at[slot]);
    };
    match overlay {
        Cow::Owned(overlay) => {
            for (slot, v) in overlay.into_iter().enumerate() {
                if let Some(v) = v {
                    apply(slot, v);
                }
            }
        }
        Cow::Borrowed(overlay) => {
            for (slot, v) in overlay.iter().enumerate() {
                if let Some(v) = v {
                    apply(slot, v.clone());
                }
            }
        }
    }
    Ok(finish_step(
        set, event_id, values, set_at, instances, outcomes,
    ))
}

/// Moves an instance in flight onto the version now serving; returns the
/// version it had, when that changed.
fn migrate(set: &WorkflowSet, inst: &mut Instance) -> Option<String> {
    if inst.finished() {
        return None;
    }
    if inst.version == set.version() {
        // Its workflow was removed (the instance was orphaned) and then
        // restored exactly as it was: it is live again under its own
        // version, with nothing to migrate.
        inst.orphaned_at = None;
        return None;
    }
    inst.orphaned_at = None;
    Some(std::mem::replace(
        &mut inst.version,
        set.version().to_string(),
    ))
}

/// Marks the instances whose workflow the set no longer has (for this
/// object) as orphaned: they keep their status, their open tasks are
/// released, and an outcome says so, once. A server calls this for every
/// record with instances in flight after a reload; [`step`] calls it for
/// the record it steps.
pub fn orphan(
    set: &WorkflowSet,
    instances: &mut BTreeMap<String, Instance>,
    object_index: usize,
    now: jiff::Timestamp,
    assign: &mut dyn Assignments,
) -> Vec<HandoffOutcome> {
    let mut out = Vec::new();
    for (name, inst) in instances.iter_mut() {
        let gone = set.handoff(name).is_none_or(|h| h.object != object_index);
        if !gone || inst.finished() || inst.orphaned_at.is_some() {
            continue;
        }
        inst.orphaned_at = Some(now);
        let released = inst.task_holders.len();
        release_tasks(inst, assign);
        out.push(HandoffOutcome {
            workflow: name.clone(),
            record_id: String::new(),
            instance: Some(inst.id.clone()),
            status: OutcomeStatus::Orphaned,
            migrated_from: None,
            missing: inst.missing.clone(),
            exceptions: inst.exceptions.clone(),
            exception_errors: Vec::new(),
            actions: Vec::new(),
            brief: None,
            answers: None,
            trace: vec![format!(
                "orphaned: \"{name}\" is not in workflow version {} (it was {} under {}); \
                 it stays {} for a person to settle, and its {released} open task(s) are released",
                short(set.version()),
                inst.status.as_str(),
                short(&inst.version),
                inst.status.as_str(),
            )]
            .into(),
        });
    }
    out
}

/// Approves a handoff in review by hand (the human override): it proceeds on
/// the normal path as if its `resume when` had become true. Returns the new
/// record state; on refusal the given state stands.
pub fn approve(
    set: &WorkflowSet,
    record: &RecordState,
    workflow: &str,
    record_id: &str,
    now: jiff::Timestamp,
    assign: &mut dyn Assignments,
) -> Result<(RecordState, HandoffOutcome), ApproveError> {
    let (index, h) = set
        .handoffs()
        .iter()
        .enumerate()
        .find(|(_, h)| h.name == workflow)
        .ok_or_else(|| ApproveError::UnknownWorkflow(workflow.to_string()))?;
    let object = &set.schema().objects[h.object];
    let not_in_review = || ApproveError::NotInReview {
        workflow: workflow.to_string(),
        record_id: record_id.to_string(),
    };
    let in_review = record
        .handoffs
        .get(&h.name)
        .is_some_and(|i| i.status == Status::Review);
    if !in_review || record.values.len() != object.fields.len() {
        return Err(not_in_review());
    }
    let mut rec = record.clone();
    let Some(mut inst) = rec.handoffs.remove(&h.name) else {
        return Err(not_in_review());
    };
    let migrated_from = migrate(set, &mut inst);
    let mut trace = Trace::new(set);
    trace.push_static("review: approved by hand → resumed on the normal path");
    let run = Run {
        set,
        h,
        index: index as u32,
        object,
        after: Record::from_slice(&rec.values),
        now,
        record_id,
        object_name: &object.name,
        event_id: "",
    };
    let mut out = proceed(&run, &mut inst, assign, &mut trace, OutcomeStatus::Resumed);
    out.trace = trace;
    out.migrated_from = migrated_from;
    rec.handoffs.insert(h.name.clone(), inst);
    Ok((rec, out))
}

/// Rejects a handoff in review by hand (the human override): it ends as
/// `rejected`, no action of its normal path runs, and the tasks its review
/// opened are released. Returns the new record state; on refusal the given
/// state stands.
pub fn reject(
    set: &WorkflowSet,
    record: &RecordState,
    workflow: &str,
    record_id: &str,
    now: jiff::Timestamp,
    assign: &mut dyn Assignments,
) -> Result<(RecordState, HandoffOutcome), ApproveError> {
    let h = set
        .handoff(workflow)
        .ok_or_else(|| ApproveError::UnknownWorkflow(workflow.to_string()))?;
    let not_in_review = || ApproveError::NotInReview {
        workflow: workflow.to_string(),
        record_id: record_id.to_string(),
    };
    let mut rec = record.clone();
    let Some(mut inst) = rec
        .handoffs
        .remove(&h.name)
        .filter(|i| i.status == Status::Review)
    else {
        return Err(not_in_review());
    };
    release_tasks(&mut inst, assign);
    inst.status = Status::Rejected;
    inst.updated_at = now;
    let mut out = empty_outcome(
        h,
        record_id,
        OutcomeStatus::Rejected,
        Trace::from(vec![
            "review: rejected by hand → the handoff ends; its normal path does not run".to_string(),
        ]),
    );
    out.instance = Some(inst.id.clone());
    out.exceptions = inst.exceptions.clone();
    rec.handoffs.insert(h.name.clone(), inst);
    Ok((rec, out))
}

/// Why an approval was refused.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ApproveError {
    #[error("no handoff called \"{0}\"")]
    #[diagnostic(code(approve::workflow))]
    UnknownWorkflow(String),
    #[error("\"{workflow}\" is not in review for record {record_id}")]
    #[diagnostic(
        code(approve::status),
        help("only a handoff waiting in review can be approved")
    )]
    NotInReview { workflow: String, record_id: String },
}

impl State {
    /// Steps an event against the record it is about, remembering its id:
    /// an id seen before changes nothing and says `duplicate`. This is the
    /// CLI's whole runtime; a server does the same with its store.
    pub fn step(
        &mut self,
        set: &WorkflowSet,
        event: &Event,
        now: jiff::Timestamp,
    ) -> Result<Outcome, StepError> {
        let key = State::key(&event.object, &event.record_id);
        if self.seen(&event.id) {
            return Ok(self.duplicate(set, event, &key));
        }
        let object = &set.schema().objects[event.object_index];
        let record = self
            .records
            .get(&key)
            .map(|r| RecordState::from_stored(object, r));
        let (record, outcome) = step(set, record, event, now, &mut self.assignments)?;
        self.records.insert(key, record.to_stored(object));
        self.remember(&event.id);
        Ok(outcome)
    }

    /// Approves a handoff in review on record `object/record_id`.
    pub fn approve(
        &mut self,
        set: &WorkflowSet,
        workflow: &str,
        object: &str,
        record_id: &str,
        now: jiff::Timestamp,
    ) -> Result<HandoffOutcome, ApproveError> {
        let key = State::key(object, record_id);
        let schema = set
            .handoff(workflow)
            .map(|h| &set.schema().objects[h.object])
            .ok_or_else(|| ApproveError::UnknownWorkflow(workflow.to_string()))?;
        let stored = self.records.get(&key).cloned().unwrap_or_default();
        let record = RecordState::from_stored(schema, &stored);
        let (record, out) = approve(
            set,
            &record,
            workflow,
            record_id,
            now,
            &mut self.assignments,
        )?;
        self.records.insert(key, record.to_stored(schema));
        Ok(out)
    }

    fn duplicate(&self, set: &WorkflowSet, event: &Event, key: &str) -> Outcome {
        let rec: Option<&StoredRecord> = self.records.get(key);
        let handoffs = set
            .handoffs()
            .iter()
            .filter(|h| h.object == event.object_index)
            .map(|h| {
                let inst = rec.and_then(|r| r.handoffs.get(&h.name));
                let status = inst.map_or(OutcomeStatus::NotTriggered, |i| current(i.status));
                let mut o = empty_outcome(
                    h,
                    &event.record_id,
                    status,
                    vec![format!(
                        "event {} was already processed: nothing new",
                        event.id
                    )]
                    .into(),
                );
                o.instance = inst.map(|i| i.id.clone());
                o
            })
            .collect();
        Outcome {
            event: event.id.clone(),
            version: set.version().to_string(),
            duplicate: true,
            handoffs,
        }
    }
}

fn current(s: Status) -> OutcomeStatus {
    match s {
        Status::Paused => OutcomeStatus::Paused,
        Status::Review => OutcomeStatus::Review,
        Status::Proceeded => OutcomeStatus::Proceeded,
        Status::Done => OutcomeStatus::Done,
        Status::Withdrawn => OutcomeStatus::Withdrawn,
        Status::Rejected => OutcomeStatus::Rejected,
    }
}

fn empty_outcome(
    h: &CompiledHandoff,
    record_id: &str,
    status: OutcomeStatus,
    trace: Trace,
) -> HandoffOutcome {
    HandoffOutcome {
        workflow: h.name.clone(),
        record_id: record_id.to_string(),
        instance: None,
        status,
        migrated_from: None,
        missing: Vec::new(),
        exceptions: Vec::new(),
        exception_errors: Vec::new(),
        actions: Vec::new(),
        brief: None,
        answers: None,
        trace,
    }
}

/// What one handoff's evaluation of one event reads: the rules, the record
/// after the event, the time and the record's identity.
pub(super) struct Run<'a> {
    pub(super) set: &'a WorkflowSet,
    pub(super) h: &'a CompiledHandoff,
    /// `h`'s index in the set's handoffs (trace lines name it by index).
    pub(super) index: u32,
    pub(super) object: &'a ObjectSchema,
    pub(super) after: Record<'a>,
    pub(super) now: jiff::Timestamp,
    pub(super) record_id: &'a str,
    pub(super) object_name: &'a str,
    pub(super) event_id: &'a str,
}

impl Run<'_> {
    fn ctx<'b>(&'b self, roles: &'b BTreeMap<String, String>) -> Ctx<'b> {
        ctx(self.set, self.after, self.now, roles)
    }

    fn outcome(&self, inst: Option<&Instance>, status: OutcomeStatus) -> HandoffOutcome {
        let mut o = empty_outcome(self.h, self.record_id, status, Trace::default());
        o.instance = inst.map(|i| i.id.clone());
        o
    }
}

fn run_handoff(
    run: &Run<'_>,
    instance: Option<Instance>,
    before: Record<'_>,
    created: bool,
    assign: &mut dyn Assignments,
) -> (Option<Instance>, HandoffOutcome) {
    let Run {
        set,
        h,
        object,
        after,
        now,
        record_id,
        ..
    } = *run;
    let name = |slot: usize| FieldName(object, slot);
    // Trigger values compare as conditions do: a date with a date-time by
    // the day in the calendar's timezone.
    let tz = set.calendar().timezone();
    let mut trace = Trace::new(set);

    // An instance in flight continues where it stands. A finished one (done,
    // withdrawn, or proceeded with no `done when` to wait for) stays on
    // record until the trigger fires again and a new run replaces it. An
    // orphaned one that is back in the rules was migrated above.
    let (instance, finished) = match instance {
        Some(i) if i.finished() => (None, Some(i)),
        Some(i) if i.status == Status::Proceeded && h.done_when.is_none() => (None, Some(i)),
        other => (other, None),
    };
    if let Some(mut inst) = instance {
        // A paused handoff whose trigger value was undone is withdrawn.
        if let TriggerKind::Becomes { slot, value } = &h.trigger.event {
            if inst.status == Status::Paused && !equal(tz, after.get(*slot), value) {
                release_tasks(&mut inst, assign);
                inst.status = Status::Withdrawn;
                inst.updated_at = now;
                trace.push(format!(
                    "trigger: {} left {}: the paused handoff is withdrawn",
                    name(*slot),
                    show(value)
                ));
                let mut out = run.outcome(Some(&inst), OutcomeStatus::Withdrawn);
                out.trace = trace;
                return (Some(inst), out);
            }
        }
        let out = match inst.status {
            Status::Paused => {
                trace.push(format!("already paused since {}", inst.triggered_at));
                gate_and_go(run, &mut inst, assign, &mut trace, true)
            }
            Status::Review => {
                let ctx = run.ctx(&inst.roles);
                match &h.resume_when {
                    Some(cond) if explain(run, &ctx, cond, CondRef::ResumeWhen, &mut trace) => {
                        proceed(run, &mut inst, assign, &mut trace, OutcomeStatus::Resumed)
                    }
                    other => {
                        if other.is_none() {
                            trace.push_static("in review: waits for approval (no `resume when`)");
                        }
                        let mut o = run.outcome(Some(&inst), OutcomeStatus::Review);
                        o.exceptions = inst.exceptions.clone();
                        o
                    }
                }
            }
            _ => {
                let ctx = run.ctx(&inst.roles);
                match &h.done_when {
                    Some(cond) if explain(run, &ctx, cond, CondRef::DoneWhen, &mut trace) => {
                        finish(&mut inst, now, assign, &mut trace);
                        run.outcome(Some(&inst), OutcomeStatus::Done)
                    }
                    _ => run.outcome(Some(&inst), OutcomeStatus::Proceeded),
                }
            }
        };
        let mut out = out;
        out.trace = trace;
        return (Some(inst), out);
    }

    // Otherwise: does the trigger fire?
    let fired = match &h.trigger.event {
        TriggerKind::Created => {
            trace.push(format!(
                "trigger: {} {}",
                object.name,
                if created {
                    "is new → fired"
                } else {
                    "already existed → not fired"
                }
            ));
            created
        }
        TriggerKind::Becomes { slot, value } => {
            let (b, a) = (before.get(*slot), after.get(*slot));
            let fired = !equal(tz, b, value) && equal(tz, a, value);
            // Kept as data: written as text only if the trace is read.
            let (result, at) = if fired {
                (Becomes::Fired, trace.keep([b, a]))
            } else if equal(tz, b, value) && equal(tz, a, value) {
                (Becomes::Already, trace.keep([a]))
            } else {
                (Becomes::Not, trace.keep([a]))
            };
            trace.push_line(Line::Becomes {
                handoff: run.index,
                result,
                at,
            });
            fired
        }
        TriggerKind::Changes { slot, from, to } => {
            let (b, a) = (before.get(*slot), after.get(*slot));
            let fired = !equal(tz, b, a)
                && from.as_ref().is_none_or(|f| equal(tz, b, f))
                && to.as_ref().is_none_or(|t| equal(tz, a, t));
            trace.push(format!(
                "trigger: {} was {}, is {} → {}",
                name(*slot),
                show(b),
                show(a),
                if fired { "fired" } else { "not fired" }
            ));
            fired
        }
    };
    if !fired {
        let mut out = empty_outcome(h, record_id, OutcomeStatus::NotTriggered, trace);
        out.instance = finished.as_ref().map(|i| i.id.clone());
        return (finished, out);
    }
    let roles = BTreeMap::new();
    if let Some(filter) = &h.trigger.filter {
        if !explain(run, &run.ctx(&roles), filter, CondRef::Filter, &mut trace) {
            trace.push_static("the `where` filter is false → not fired");
            let mut out = empty_outcome(h, record_id, OutcomeStatus::NotTriggered, trace);
            out.instance = finished.as_ref().map(|i| i.id.clone());
            return (finished, out);
        }
    }
    let mut inst = Instance {
        id: instance_id(run, finished.as_ref()),
        status: Status::Proceeded,
        version: set.version().to_string(),
        triggered_at: now,
        updated_at: now,
        done_at: None,
        orphaned_at: None,
        missing: Vec::new(),
        exceptions: Vec::new(),
        roles: BTreeMap::new(),
        task_holders: Vec::new(),
        plans: 0,
    };
    let mut out = gate_and_go(run, &mut inst, assign, &mut trace, false);
    out.trace = trace;
    (Some(inst), out)
}

/// A new instance's id: the record, the workflow, the trigger's time and
/// event, and the run it replaces, hashed. A replay of the same events
/// names the same instances.
fn instance_id(run: &Run<'_>, previous: Option<&Instance>) -> String {
    let mut h = StableHash::new();
    h.add(run.object_name);
    h.add(run.record_id);
    h.add(&run.h.name);
    // The time as text (as ids always hashed it), written on the stack
    // rather than into a String grown four times.
    let mut at = StackText::new();
    match write!(at, "{}", run.now) {
        Ok(()) => h.add(at.as_str()),
        Err(_) => h.add(&run.now.to_string()),
    }
    h.add(run.event_id);
    h.add(previous.map_or("", |p| p.id.as_str()));
    h.hex_at("h", run.now)
}

/// Short text written on the stack; writing more than fits is an error.
struct StackText {
    buf: [u8; 64],
    len: usize,
}

impl StackText {
    fn new() -> Self {
        StackText {
            buf: [0; 64],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        // Only whole `str`s are copied in, so this is always UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dest = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dest.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// FNV-1a over length-prefixed parts, 128 bits: a stable id (the same parts
/// give the same id on every machine and release, unlike std's hasher) that
/// costs a few hundred instructions, not a cryptographic digest.
pub(super) struct StableHash(pub(super) u128);

impl StableHash {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;

    pub(super) fn new() -> Self {
        StableHash(Self::OFFSET)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u128::from(b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    pub(super) fn add(&mut self, part: &str) {
        self.bytes(&(part.len() as u64).to_le_bytes());
        self.bytes(part.as_bytes());
    }

    pub(super) fn add_u64(&mut self, n: u64) {
        self.bytes(&n.to_le_bytes());
    }

    /// The id: `{prefix}-` and 32 hex digits, the first 11 of them `at`
    /// in milliseconds since 1970 (enough until the year 2527) and the other
    /// 21 are the hash's low 84 bits. Ids made later sort later, so a store
    /// indexing them appends to the end of its indexes instead of touching
    /// a random page per new id: under load that was most of what each
    /// commit wrote (`benches/README.md`, "Server load"). Still a pure
    /// function of the same inputs, so a replay names the same ids.
    pub(super) fn hex_at(&self, prefix: &str, at: jiff::Timestamp) -> String {
        const HASH_BITS: u32 = 84;
        const TIME_MASK: u128 = (1 << (128 - HASH_BITS)) - 1;
        // Before 1970 (never a real trigger time) counts as 0.
        let millis = u128::try_from(at.as_millisecond()).unwrap_or(0) & TIME_MASK;
        let low = self.0 & ((1u128 << HASH_BITS) - 1);
        Self::spell(prefix, (millis << HASH_BITS) | low)
    }

    /// `{prefix}-` and `n` as 32 hex digits (`{:032x}`), written by hand
    /// into a buffer of the exact size: `format!` cost about 1,000
    /// instructions per id (`String::push` per digit about 600), and a
    /// proceeded event makes five ids.
    fn spell(prefix: &str, n: u128) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [0u8; 32];
        for (pair, b) in digits.chunks_exact_mut(2).zip(n.to_be_bytes()) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0xf)];
        }
        let mut s = Vec::with_capacity(prefix.len() + 33);
        s.extend_from_slice(prefix.as_bytes());
        s.push(b'-');
        s.extend_from_slice(&digits);
        // The prefix is a str and the rest ASCII: this cannot fail.
        String::from_utf8(s).unwrap_or_default()
    }
}

/// The gate, then exceptions, then the normal path.
fn gate_and_go(
    run: &Run<'_>,
    inst: &mut Instance,
    assign: &mut dyn Assignments,
    trace: &mut Trace,
    resuming: bool,
) -> HandoffOutcome {
    let Run {
        set,
        h,
        object,
        after,
        now,
        ..
    } = *run;
    let no_roles = BTreeMap::new();
    let missing = after.missing(&h.require);
    let missing_names: Vec<String> = missing
        .iter()
        .map(|&s| object.fields[s].name.clone())
        .collect();
    inst.updated_at = now;
    if !missing.is_empty() {
        trace.push(format!(
            "gate: {} missing → paused",
            missing_names.join(", ")
        ));
        let first_time = !resuming || inst.missing != missing_names;
        inst.status = Status::Paused;
        inst.missing = missing_names.clone();
        let labels: Vec<String> = missing
            .iter()
            .map(|&s| object.fields[s].label.clone())
            .collect();
        let mut out = run.outcome(Some(inst), OutcomeStatus::Paused);
        out.missing = missing_names;
        if first_time {
            let ctx = Ctx {
                missing: &labels,
                ..run.ctx(&no_roles)
            };
            out.actions =
                plan_with_brief(run, ActionList::IfMissing, &ctx, inst, assign, trace, None);
        } else {
            trace.push_static("still the same fields missing: nothing new to send");
        }
        out.answers = Some(answers(&out.actions, Vec::new()));
        return out;
    }
    if !h.require.is_empty() {
        trace.push_line(Line::GateAll { handoff: run.index });
    }
    inst.missing.clear();

    let ctx0 = run.ctx(&no_roles);
    let mut flagged = Vec::new();
    let mut errors = Vec::new();
    for (i, e) in h.exceptions.iter().enumerate() {
        match &e.test {
            ExceptionKind::Expr(cond) => {
                if explain(run, &ctx0, cond, CondRef::Exception(i as u32), trace) {
                    flagged.push(e.name.clone());
                }
            }
            ExceptionKind::Script { ast, reads, .. } => {
                let d =
                    super::script::decide(set, &e.name, ast, reads, object, after, ctx0.today());
                trace.push(d.trace);
                if d.flagged {
                    flagged.push(e.name.clone());
                }
                if let Some(error) = d.error {
                    errors.push(ExceptionError {
                        name: e.name.clone(),
                        error,
                    });
                }
            }
        }
    }
    if !flagged.is_empty() {
        trace.push(format!("{} flagged → review", flagged.join(", ")));
        inst.status = Status::Review;
        inst.exceptions = flagged.clone();
        let ctx = Ctx {
            exceptions: &flagged,
            ..run.ctx(&no_roles)
        };
        let mut out = run.outcome(Some(inst), OutcomeStatus::Review);
        out.actions = plan_with_brief(
            run,
            ActionList::OnException,
            &ctx,
            inst,
            assign,
            trace,
            None,
        );
        out.exceptions = flagged;
        out.exception_errors = errors;
        out.answers = Some(answers(&out.actions, Vec::new()));
        return out;
    }
    let status = if resuming {
        OutcomeStatus::Resumed
    } else {
        OutcomeStatus::Proceeded
    };
    proceed(run, inst, assign, trace, status)
}

/// Plans `actions` and gives the tasks that attach the brief the one
/// brief, rendered once with the roles the plan assigned. Returns the
/// actions; `brief` receives the rendered brief, with its lines as the
/// answer "what was promised" lists them, when one was rendered.
fn plan_with_brief(
    run: &Run<'_>,
    list: ActionList,
    base: &Ctx<'_>,
    inst: &mut Instance,
    assign: &mut dyn Assignments,
    trace: &mut Trace,
    brief: Option<&mut Option<(std::sync::Arc<RenderedBrief>, Vec<String>)>>,
) -> Vec<Action> {
    let (mut planned, wants_brief) = plan(run, list, base, inst, assign, trace);
    let has_brief = !run.h.brief.fields.is_empty() || !run.h.brief.asks.is_empty();
    if (wants_brief.is_empty() && brief.is_none()) || !has_brief {
        return planned;
    }
    let ctx = Ctx {
        roles: &inst.roles,
        ..*base
    };
    let (rendered, promised) = render_brief(&run.h.brief, &ctx, brief.is_some());
    let rendered = std::sync::Arc::new(rendered);
    attach_brief(&mut planned, &wants_brief, &rendered);
    if let Some(b) = brief {
        *b = Some((rendered, promised));
    }
    planned
}

/// The normal path: plan `then`, and close at once if `done when` holds.
fn proceed(
    run: &Run<'_>,
    inst: &mut Instance,
    assign: &mut dyn Assignments,
    trace: &mut Trace,
    status: OutcomeStatus,
) -> HandoffOutcome {
    let Run { h, now, .. } = *run;
    inst.status = Status::Proceeded;
    inst.exceptions.clear();
    inst.updated_at = now;
    trace.push_static(if status == OutcomeStatus::Resumed {
        "normal path: resumed"
    } else {
        "normal path: proceeding"
    });
    let roles = inst.roles.clone();
    let base = run.ctx(&roles);
    let mut brief = None;
    let actions = plan_with_brief(
        run,
        ActionList::Then,
        &base,
        inst,
        assign,
        trace,
        Some(&mut brief),
    );
    let mut out = run.outcome(Some(inst), status);
    let (brief, promised) = brief.map_or((None, Vec::new()), |(b, p)| (Some(b), p));
    out.answers = Some(answers(&actions, promised));
    out.actions = actions;
    out.brief = brief;
    if let Some(cond) = &h.done_when {
        if explain(run, &run.ctx(&inst.roles), cond, CondRef::DoneWhen, trace) {
            finish(inst, now, assign, trace);
        }
    }
    out
}

fn finish(
    inst: &mut Instance,
    now: jiff::Timestamp,
    assign: &mut dyn Assignments,
    trace: &mut Trace,
) {
    inst.status = Status::Done;
    inst.done_at = Some(now);
    inst.updated_at = now;
    release_tasks(inst, assign);
    let lead = now.duration_since(inst.triggered_at);
    trace.push(format!("done: lead time {}", human_duration(lead)));
}

/// Frees the tasks an instance opened, for `least loaded`.
fn release_tasks(inst: &mut Instance, assign: &mut dyn Assignments) {
    for holder in inst.task_holders.drain(..) {
        assign.task_closed(&holder);
    }
}

fn human_duration(d: jiff::SignedDuration) -> String {
    let mins = d.as_secs() / 60;
    let (days, hours, minutes) = (mins / 1440, (mins % 1440) / 60, mins % 60);
    match (days, hours) {
        (0, 0) => format!("{minutes} min"),
        (0, h) => format!("{h} h {minutes} min"),
        (d, h) => format!("{d} d {h} h"),
    }
}

fn ctx<'a>(
    set: &'a WorkflowSet,
    after: Record<'a>,
    now: jiff::Timestamp,
    roles: &'a BTreeMap<String, String>,
) -> Ctx<'a> {
    Ctx {
        record: after,
        now,
        calendar: set.calendar(),
        roles,
        missing: &[],
        exceptions: &[],
    }
}

/// Evaluates a condition and keeps a trace line with the values it read
/// (written as text only when the trace is read).
fn explain(run: &Run<'_>, ctx: &Ctx<'_>, cond: &Cond, which: CondRef, trace: &mut Trace) -> bool {
    let result = ctx.truth(&cond.expr);
    let at = trace.keep(cond.reads.iter().map(|&s| ctx.field(s)));
    trace.push_line(Line::Cond {
        handoff: run.index,
        cond: which,
        at,
        result,
    });
    result
}

/// The record's new state and the outcome.
fn finish_step(
    set: &WorkflowSet,
    event_id: String,
    values: Vec<Value>,
    set_at: Vec<Option<jiff::Timestamp>>,
    handoffs: BTreeMap<String, Instance>,
    outcomes: Vec<HandoffOutcome>,
) -> (RecordState, Outcome) {
    (
        RecordState {
            values,
            set_at,
            handoffs,
        },
        Outcome {
            event: event_id,
            version: set.version().to_string(),
            duplicate: false,
            handoffs: outcomes,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::StableHash;

    #[test]
    fn hex_is_the_prefix_and_32_lowercase_hex_digits() {
        for n in [0, 1, 0xabc, u128::MAX, StableHash::OFFSET] {
            assert_eq!(StableHash::spell("a", n), format!("a-{n:032x}"));
        }
    }

    #[test]
    fn ids_made_later_sort_later_and_keep_the_hash() {
        let at = |s: &str| s.parse::<jiff::Timestamp>().expect("a timestamp");
        let early = at("2026-11-20T15:04:05.001Z");
        let late = at("2026-11-20T15:04:05.002Z");
        // A hash that would sort first, at a later time, still sorts later.
        let (big, small) = (StableHash(u128::MAX), StableHash(0));
        let first = big.hex_at("h", early);
        let second = small.hex_at("h", late);
        assert!(first < second, "{first} should sort before {second}");
        assert_eq!(first.len(), 34);
        // The time, in milliseconds, is the first 11 digits.
        let millis = u64::from_str_radix(&first[2..13], 16).expect("hex");
        assert_eq!(i64::try_from(millis).ok(), Some(early.as_millisecond()));
        // The rest is the hash's low 84 bits.
        assert_eq!(&first[13..], "f".repeat(21));
        assert_eq!(&second[13..], "0".repeat(21));
        // Same inputs, same id; before 1970 counts as 0.
        assert_eq!(big.hex_at("h", early), first);
        assert!(big
            .hex_at("h", at("1969-12-31T23:59:59Z"))
            .starts_with("h-00000000000"));
    }
}
