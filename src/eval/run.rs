//! The handoff lifecycle, as a pure function of (state, event) → (state,
//! outcome):
//!
//! ```text
//! (none/done) ──trigger──▶ paused(missing) ──fields filled──▶ review | proceeded
//! (none/done) ──trigger──▶ review(exceptions) ──resume when / approve──▶ proceeded
//! (none/done) ──trigger──▶ proceeded ──done when──▶ done
//! ```

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use super::event::{typed_ref, Event};
use super::expr::{equal, Ctx, Record};
use super::outcome::*;
use super::plan::{answers, plan, render_brief};
use super::state::{Instance, RecordState, State, Status};
use crate::compile::{CompiledHandoff, Cond, ExceptionKind, TriggerKind, WorkflowSet};
use crate::value::Value;

/// Applies one event. Pure: the same state, event and `now` always give the
/// same result; nothing is read from or written to the outside world.
pub fn step(
    set: &WorkflowSet,
    mut state: State,
    event: &Event,
    now: jiff::Timestamp,
) -> (State, Outcome) {
    let key = State::key(&event.object, &event.record_id);
    if state.seen(&event.id) {
        let rec = state.records.get(&key);
        let handoffs = set
            .handoffs()
            .iter()
            .filter(|h| h.object == event.object_index)
            .map(|h| {
                let status = rec
                    .and_then(|r| r.handoffs.get(&h.name))
                    .map_or(OutcomeStatus::NotTriggered, |i| current(i.status));
                empty_outcome(
                    h,
                    &event.record_id,
                    status,
                    vec![format!(
                        "event {} was already processed: nothing new",
                        event.id
                    )],
                )
            })
            .collect();
        return (
            state,
            Outcome {
                event: event.id.clone(),
                duplicate: true,
                handoffs,
            },
        );
    }

    let object = &set.schema().objects[event.object_index];
    // A record is new the first time the engine hears of it (even with no
    // fields), unless the event itself says what it was before.
    let known = state.records.remove(&key);
    let created = known.is_none() && event.previous.iter().all(Option::is_none);
    let mut rec = known.unwrap_or_default();
    // The last known values, typed (none yet for a record seen first now).
    let snapshot: Vec<Value> = if rec.snapshot.is_empty() {
        Vec::new()
    } else {
        typed_snapshot(object, &rec)
    };
    // The record now is the snapshot with the event's values; `previous`
    // describes only the past. Both are read in place, not copied.
    let before = Record {
        overlay: &event.previous,
        base: &snapshot,
    };
    let after = Record {
        overlay: &event.record,
        base: &snapshot,
    };

    let mut outcomes = Vec::new();
    for h in set
        .handoffs()
        .iter()
        .filter(|h| h.object == event.object_index)
    {
        let instance = rec.handoffs.remove(&h.name);
        let (instance, outcome) = run_handoff(
            set,
            h,
            instance,
            before,
            after,
            created,
            now,
            &event.record_id,
            &mut state,
        );
        if let Some(i) = instance {
            rec.handoffs.insert(h.name.clone(), i);
        }
        outcomes.push(outcome);
    }

    for (slot, v) in event.record.iter().enumerate() {
        if let Some(v) = v {
            let json = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
            rec.snapshot.insert(object.fields[slot].name.clone(), json);
        }
    }
    state.records.insert(key, rec);
    state.remember(&event.id);
    (
        state,
        Outcome {
            event: event.id.clone(),
            duplicate: false,
            handoffs: outcomes,
        },
    )
}

/// Approves a handoff in review by hand (the human override): it proceeds on
/// the normal path as if its `resume when` had become true. Returns the new
/// state; on refusal the given state stands.
pub fn approve(
    set: &WorkflowSet,
    state: &State,
    workflow: &str,
    object: &str,
    record_id: &str,
    now: jiff::Timestamp,
) -> Result<(State, HandoffOutcome), ApproveError> {
    let h = set
        .handoff(workflow)
        .ok_or_else(|| ApproveError::UnknownWorkflow(workflow.to_string()))?;
    let key = State::key(object, record_id);
    let in_review = state
        .records
        .get(&key)
        .and_then(|r| r.handoffs.get(&h.name))
        .is_some_and(|i| i.status == Status::Review);
    if !in_review {
        // The caller keeps its state untouched on refusal.
        return Err(ApproveError::NotInReview {
            workflow: workflow.to_string(),
            record_id: record_id.to_string(),
        });
    }
    let mut state = state.clone();
    let mut rec = state.records.remove(&key).unwrap_or_default();
    let Some(mut inst) = rec.handoffs.remove(&h.name) else {
        return Err(ApproveError::NotInReview {
            workflow: workflow.to_string(),
            record_id: record_id.to_string(),
        });
    };
    let after = typed_snapshot(&set.schema().objects[h.object], &rec);
    let mut trace = vec!["review: approved by hand → resumed on the normal path".to_string()];
    let mut out = proceed(
        Run {
            set,
            h,
            after: Record::from_slice(&after),
            now,
            record_id,
        },
        &mut inst,
        &mut state,
        &mut trace,
        OutcomeStatus::Resumed,
    );
    out.trace = trace;
    rec.handoffs.insert(h.name.clone(), inst);
    state.records.insert(key, rec);
    Ok((state, out))
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

fn current(s: Status) -> OutcomeStatus {
    match s {
        Status::Paused => OutcomeStatus::Paused,
        Status::Review => OutcomeStatus::Review,
        Status::Proceeded => OutcomeStatus::Proceeded,
        Status::Done => OutcomeStatus::Done,
    }
}

fn empty_outcome(
    h: &CompiledHandoff,
    record_id: &str,
    status: OutcomeStatus,
    trace: Vec<String>,
) -> HandoffOutcome {
    HandoffOutcome {
        workflow: h.name.clone(),
        record_id: record_id.to_string(),
        status,
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
/// after the event, the time and the record id. Threaded through the
/// lifecycle functions as one value.
#[derive(Clone, Copy)]
struct Run<'a> {
    set: &'a WorkflowSet,
    h: &'a CompiledHandoff,
    after: Record<'a>,
    now: jiff::Timestamp,
    record_id: &'a str,
}

#[allow(clippy::too_many_arguments)]
fn run_handoff(
    set: &WorkflowSet,
    h: &CompiledHandoff,
    instance: Option<Instance>,
    before: Record<'_>,
    after: Record<'_>,
    created: bool,
    now: jiff::Timestamp,
    record_id: &str,
    state: &mut State,
) -> (Option<Instance>, HandoffOutcome) {
    let run = Run {
        set,
        h,
        after,
        now,
        record_id,
    };
    let object = &set.schema().objects[h.object];
    let name = |slot: usize| FieldName(object, slot);
    // Trigger values compare as conditions do: a date with a date-time by
    // the day in the calendar's timezone.
    let tz = set.calendar().timezone();
    let mut trace = Vec::new();

    // An instance in flight continues where it stands. A finished one (done,
    // or proceeded with no `done when` to wait for) stays on record until the
    // trigger fires again and a new run replaces it.
    let (instance, finished) = match instance {
        Some(i) if i.status == Status::Done => (None, Some(i)),
        Some(i) if i.status == Status::Proceeded && h.done_when.is_none() => (None, Some(i)),
        other => (other, None),
    };
    if let Some(mut inst) = instance {
        // A paused handoff whose trigger value was undone is withdrawn.
        if let TriggerKind::Becomes { slot, value } = &h.trigger.event {
            if inst.status == Status::Paused && !equal(tz, after.get(*slot), value) {
                release_tasks(&mut inst, state);
                trace.push(format!(
                    "trigger: {} left {}: the paused handoff is withdrawn",
                    name(*slot),
                    show(value)
                ));
                return (
                    None,
                    empty_outcome(h, record_id, OutcomeStatus::NotTriggered, trace),
                );
            }
        }
        let out = match inst.status {
            Status::Paused => {
                trace.push(format!("already paused since {}", inst.triggered_at));
                gate_and_go(run, &mut inst, state, &mut trace, true)
            }
            Status::Review => {
                let ctx = ctx(set, after, now, &inst.roles);
                match &h.resume_when {
                    Some(cond) if explain(&ctx, cond, object, &mut trace, "resume when") => {
                        proceed(run, &mut inst, state, &mut trace, OutcomeStatus::Resumed)
                    }
                    other => {
                        if other.is_none() {
                            trace.push("in review: waits for approval (no `resume when`)".into());
                        }
                        let mut o = empty_outcome(h, record_id, OutcomeStatus::Review, Vec::new());
                        o.exceptions = inst.exceptions.clone();
                        o
                    }
                }
            }
            _ => {
                let ctx = ctx(set, after, now, &inst.roles);
                match &h.done_when {
                    Some(cond) if explain(&ctx, cond, object, &mut trace, "done when") => {
                        finish(&mut inst, now, state, &mut trace);
                        empty_outcome(h, record_id, OutcomeStatus::Done, Vec::new())
                    }
                    _ => empty_outcome(h, record_id, OutcomeStatus::Proceeded, Vec::new()),
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
            trace.push(if fired {
                format!(
                    "trigger: {} was {}, is {} → fired",
                    name(*slot),
                    show(b),
                    show(a)
                )
            } else if equal(tz, b, value) && equal(tz, a, value) {
                format!(
                    "trigger: {} was already {} → not fired (it fires on the change only)",
                    name(*slot),
                    show(a)
                )
            } else {
                format!(
                    "trigger: {} is {}, not {} → not fired",
                    name(*slot),
                    show(a),
                    show(value)
                )
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
        return (
            finished,
            empty_outcome(h, record_id, OutcomeStatus::NotTriggered, trace),
        );
    }
    let roles = BTreeMap::new();
    if let Some(filter) = &h.trigger.filter {
        let ctx = ctx(set, after, now, &roles);
        if !explain(&ctx, filter, object, &mut trace, "where") {
            trace.push("the `where` filter is false → not fired".into());
            return (
                finished,
                empty_outcome(h, record_id, OutcomeStatus::NotTriggered, trace),
            );
        }
    }
    let mut inst = Instance {
        status: Status::Proceeded,
        triggered_at: now,
        updated_at: now,
        done_at: None,
        missing: Vec::new(),
        exceptions: Vec::new(),
        roles: BTreeMap::new(),
        task_holders: Vec::new(),
    };
    let mut out = gate_and_go(run, &mut inst, state, &mut trace, false);
    out.trace = trace;
    (Some(inst), out)
}

/// The gate, then exceptions, then the normal path.
fn gate_and_go(
    run: Run<'_>,
    inst: &mut Instance,
    state: &mut State,
    trace: &mut Vec<String>,
    resuming: bool,
) -> HandoffOutcome {
    let Run {
        set,
        h,
        after,
        now,
        record_id,
    } = run;
    let object = &set.schema().objects[h.object];
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
        let mut out = empty_outcome(h, record_id, OutcomeStatus::Paused, Vec::new());
        out.missing = missing_names;
        if first_time {
            let ctx = Ctx {
                missing: &labels,
                ..ctx(set, after, now, &no_roles)
            };
            out.actions = plan(set, h, &h.if_missing, &ctx, inst, state, trace);
        } else {
            trace.push("still the same fields missing: nothing new to send".into());
        }
        out.answers = Some(answers(&out.actions, None));
        return out;
    }
    if !h.require.is_empty() {
        trace.push(format!(
            "gate: all {} required fields present",
            h.require.len()
        ));
    }
    inst.missing.clear();

    let ctx0 = ctx(set, after, now, &no_roles);
    let mut flagged = Vec::new();
    let mut errors = Vec::new();
    for e in &h.exceptions {
        match &e.test {
            ExceptionKind::Expr(cond) => {
                if explain(
                    &ctx0,
                    cond,
                    object,
                    trace,
                    &format!("exception \"{}\"", e.name),
                ) {
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
            ..ctx(set, after, now, &no_roles)
        };
        let mut out = empty_outcome(h, record_id, OutcomeStatus::Review, Vec::new());
        out.actions = plan(set, h, &h.on_exception, &ctx, inst, state, trace);
        out.exceptions = flagged;
        out.exception_errors = errors;
        out.answers = Some(answers(&out.actions, None));
        return out;
    }
    let status = if resuming {
        OutcomeStatus::Resumed
    } else {
        OutcomeStatus::Proceeded
    };
    proceed(run, inst, state, trace, status)
}

/// The normal path: plan `then`, and close at once if `done when` holds.
fn proceed(
    run: Run<'_>,
    inst: &mut Instance,
    state: &mut State,
    trace: &mut Vec<String>,
    status: OutcomeStatus,
) -> HandoffOutcome {
    let Run {
        set,
        h,
        after,
        now,
        record_id,
    } = run;
    let object = &set.schema().objects[h.object];
    inst.status = Status::Proceeded;
    inst.exceptions.clear();
    inst.updated_at = now;
    trace.push(if status == OutcomeStatus::Resumed {
        "normal path: resumed".to_string()
    } else {
        "normal path: proceeding".to_string()
    });
    let roles = inst.roles.clone();
    let base = ctx(set, after, now, &roles);
    let actions = plan(set, h, &h.then, &base, inst, state, trace);
    let ctx = ctx(set, after, now, &inst.roles);
    let brief = (!h.brief.fields.is_empty() || !h.brief.asks.is_empty())
        .then(|| render_brief(&h.brief, &ctx));
    let mut out = empty_outcome(h, record_id, status, Vec::new());
    out.answers = Some(answers(&actions, brief.as_ref()));
    out.actions = actions;
    out.brief = brief;
    if let Some(cond) = &h.done_when {
        if explain(&ctx, cond, object, trace, "done when") {
            finish(inst, now, state, trace);
        }
    }
    out
}

fn finish(inst: &mut Instance, now: jiff::Timestamp, state: &mut State, trace: &mut Vec<String>) {
    inst.status = Status::Done;
    inst.done_at = Some(now);
    inst.updated_at = now;
    release_tasks(inst, state);
    let lead = now.duration_since(inst.triggered_at);
    trace.push(format!("done: lead time {}", human_duration(lead)));
}

/// Frees the tasks an instance opened, for `least loaded`.
fn release_tasks(inst: &mut Instance, state: &mut State) {
    for holder in inst.task_holders.drain(..) {
        if let Some(n) = state.open_tasks.get_mut(&holder) {
            *n = n.saturating_sub(1);
        }
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

/// The record's last known values by slot, typed by the schema; a value
/// that no longer fits its field's type (the schema changed) reads as empty.
fn typed_snapshot(object: &crate::check::ObjectSchema, rec: &RecordState) -> Vec<Value> {
    object
        .fields
        .iter()
        .map(|f| {
            rec.snapshot
                .get(&f.name)
                .and_then(|j| typed_ref(&f.ty, j).ok())
                .unwrap_or(Value::Null)
        })
        .collect()
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

/// Evaluates a condition and writes a trace line with the values it read.
fn explain(
    ctx: &Ctx<'_>,
    cond: &Cond,
    object: &crate::check::ObjectSchema,
    trace: &mut Vec<String>,
    what: &str,
) -> bool {
    let result = ctx.truth(&cond.expr);
    // `{what}: {text} ({object}.{field} = {value}, …) → {result}`, written
    // into one string.
    let mut line = String::with_capacity(what.len() + cond.text.len() + 48 * cond.reads.len() + 12);
    line.push_str(what);
    line.push_str(": ");
    line.push_str(&cond.text);
    for (i, &s) in cond.reads.iter().enumerate() {
        line.push_str(if i == 0 { " (" } else { ", " });
        // Writing to a String cannot fail.
        let _ = write!(line, "{} = {}", FieldName(object, s), show(ctx.field(s)));
    }
    if !cond.reads.is_empty() {
        line.push(')');
    }
    line.push_str(if result { " → true" } else { " → false" });
    trace.push(line);
    result
}

/// `object.field` as a trace names a field.
struct FieldName<'a>(&'a crate::check::ObjectSchema, usize);

impl fmt::Display for FieldName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let FieldName(object, slot) = self;
        f.write_str(&object.name)?;
        f.write_str(".")?;
        f.write_str(object.fields.get(*slot).map_or("?", |f| f.name.as_str()))
    }
}

/// A value as a trace shows it.
pub(super) fn show(v: &Value) -> Show<'_> {
    Show(v)
}

/// A value as a trace shows it: text quoted, lists bracketed, null `empty`.
pub(super) struct Show<'a>(&'a Value);

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Null => f.write_str("empty"),
            Value::Text(s) => write!(f, "\"{s}\""),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", Show(v))?;
                }
                f.write_str("]")
            }
            other => write!(f, "{other}"),
        }
    }
}
