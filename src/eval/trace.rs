//! The explain trace: every step a handoff's evaluation took, in plain
//! words (`trigger: deal.stage was "Proposal", is "Closed Won" → fired`).
//!
//! While a step runs, the common lines are kept as data (which handoff,
//! which condition, the values it read); they are written as text only when
//! someone reads the trace (it derefs to its lines, `&[String]`) or
//! serializes it. Writing them during the step cost about a sixth of a
//! proceeded event, for a trace most events never show. The text is the
//! same either way: it is part of the Outcome JSON contract.

use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::check::ObjectSchema;
use crate::compile::{AssignFrom, CAction, CompiledHandoff, Cond, TriggerKind, WorkflowSet};
use crate::syntax::Strategy;
use crate::value::Value;

/// The explain trace of one handoff's evaluation: read it as a list of
/// lines (`trace[0]`, `trace.iter()`, `trace.join("\n")`); it serializes as
/// a JSON list of strings.
#[derive(Clone, Default)]
pub struct Trace {
    /// The rules the data lines refer to (names, conditions as written).
    set: Option<WorkflowSet>,
    lines: Vec<Line>,
    /// The record values the data lines show, in order: one vector for the
    /// whole trace rather than one per line.
    values: Vec<Value>,
    /// The lines as text, written on the first read.
    text: OnceLock<Vec<String>>,
}

/// One line, as text or as the data it is written from.
#[derive(Debug, Clone)]
pub(super) enum Line {
    Text(String),
    Static(&'static str),
    /// The `becomes` trigger of handoff `handoff` and the values it
    /// compared, from `values[at]` on.
    Becomes {
        handoff: u32,
        result: Becomes,
        at: u32,
    },
    /// `{what}: {condition} ({field} = {value}, …) → {result}`: a condition
    /// of handoff `handoff`, the values of its `reads` from `values[at]` on.
    Cond {
        handoff: u32,
        cond: CondRef,
        at: u32,
        result: bool,
    },
    /// `gate: all {n} required fields present`.
    GateAll {
        handoff: u32,
    },
    /// `assign: {role} = {member} (team {team}, {how})`: action `action`
    /// of a handoff's action list, which picked the team's member `member`.
    AssignTeam {
        handoff: u32,
        list: ActionList,
        action: u32,
        member: u32,
    },
}

/// What a `becomes` trigger found; the values it shows follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Becomes {
    /// Shows the value before, then after.
    Fired,
    /// Shows the value after.
    Already,
    /// Shows the value after (the trigger's own value comes from the rules).
    Not,
}

/// Which condition of a handoff a line explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CondRef {
    Filter,
    Exception(u32),
    ResumeWhen,
    DoneWhen,
}

/// Which action list of a handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ActionList {
    IfMissing,
    OnException,
    Then,
}

impl ActionList {
    pub(super) fn of(self, h: &CompiledHandoff) -> &[CAction] {
        match self {
            ActionList::IfMissing => &h.if_missing,
            ActionList::OnException => &h.on_exception,
            ActionList::Then => &h.then,
        }
    }
}

impl CondRef {
    fn of(self, h: &CompiledHandoff) -> Option<&Cond> {
        match self {
            CondRef::Filter => h.trigger.filter.as_ref(),
            CondRef::Exception(i) => match &h.exceptions.get(i as usize)?.test {
                crate::compile::ExceptionKind::Expr(c) => Some(c),
                crate::compile::ExceptionKind::Script { .. } => None,
            },
            CondRef::ResumeWhen => h.resume_when.as_ref(),
            CondRef::DoneWhen => h.done_when.as_ref(),
        }
    }
}

impl Trace {
    /// An empty trace whose data lines refer to `set`.
    pub(super) fn new(set: &WorkflowSet) -> Trace {
        Trace {
            set: Some(set.clone()),
            lines: Vec::with_capacity(8),
            values: Vec::new(),
            text: OnceLock::new(),
        }
    }

    /// Adds a line already written.
    pub(super) fn push(&mut self, line: impl Into<String>) {
        self.push_line(Line::Text(line.into()));
    }

    /// Adds a line that never changes.
    pub(super) fn push_static(&mut self, line: &'static str) {
        self.push_line(Line::Static(line));
    }

    /// Adds lines already written before all others.
    pub(super) fn prepend(&mut self, lines: impl IntoIterator<Item = String>) {
        self.text.take();
        self.lines.splice(0..0, lines.into_iter().map(Line::Text));
    }

    pub(super) fn push_line(&mut self, line: Line) {
        // The text, if it was read already, no longer says everything.
        self.text.take();
        self.lines.push(line);
    }

    /// Keeps copies of `values` for a data line; returns where the first
    /// one is.
    pub(super) fn keep<'v>(&mut self, values: impl IntoIterator<Item = &'v Value>) -> u32 {
        let at = self.values.len() as u32;
        self.values.extend(values.into_iter().cloned());
        at
    }

    /// The lines as text.
    pub fn lines(&self) -> &[String] {
        self.text.get_or_init(|| {
            self.lines
                .iter()
                .map(|l| {
                    let mut s = String::new();
                    // Writing to a String cannot fail.
                    let _ = self.write_line(l, &mut s);
                    s
                })
                .collect()
        })
    }

    /// Writes one line as text.
    fn write_line(&self, line: &Line, out: &mut dyn fmt::Write) -> fmt::Result {
        let set = match (line, &self.set) {
            (Line::Text(s), _) => return out.write_str(s),
            (Line::Static(s), _) => return out.write_str(s),
            // Data lines are only made by traces that have their set.
            (_, None) => return out.write_str("?"),
            (_, Some(set)) => set,
        };
        let handoff = |i: &u32| set.handoffs().get(*i as usize);
        let object = |h: &CompiledHandoff| set.schema().objects.get(h.object);
        let value = |at: usize| self.values.get(at).unwrap_or(&Value::Null);
        match line {
            Line::Text(_) | Line::Static(_) => Ok(()),
            Line::Becomes {
                handoff: hi,
                result,
                at,
            } => {
                let Some(h) = handoff(hi) else {
                    return out.write_str("?");
                };
                let (slot, trigger_value) = match &h.trigger.event {
                    TriggerKind::Becomes { slot, value } => (*slot, value),
                    _ => return out.write_str("?"),
                };
                let name = FieldName::of(object(h), slot);
                let at = *at as usize;
                match result {
                    Becomes::Fired => write!(
                        out,
                        "trigger: {name} was {}, is {} → fired",
                        show(value(at)),
                        show(value(at + 1))
                    ),
                    Becomes::Already => write!(
                        out,
                        "trigger: {name} was already {} → not fired (it fires on the change only)",
                        show(value(at))
                    ),
                    Becomes::Not => write!(
                        out,
                        "trigger: {name} is {}, not {} → not fired",
                        show(value(at)),
                        show(trigger_value)
                    ),
                }
            }
            Line::Cond {
                handoff: hi,
                cond,
                at,
                result,
            } => {
                let Some(h) = handoff(hi) else {
                    return out.write_str("?");
                };
                match cond {
                    CondRef::Filter => out.write_str("where")?,
                    CondRef::Exception(i) => {
                        let name = h.exceptions.get(*i as usize).map_or("?", |e| &e.name);
                        write!(out, "exception \"{name}\"")?;
                    }
                    CondRef::ResumeWhen => out.write_str("resume when")?,
                    CondRef::DoneWhen => out.write_str("done when")?,
                }
                let Some(c) = cond.of(h) else {
                    return out.write_str(": ?");
                };
                out.write_str(": ")?;
                out.write_str(&c.text)?;
                let object = object(h);
                for (i, &s) in c.reads.iter().enumerate() {
                    out.write_str(if i == 0 { " (" } else { ", " })?;
                    write!(
                        out,
                        "{} = {}",
                        FieldName::of(object, s),
                        show(value(*at as usize + i))
                    )?;
                }
                if !c.reads.is_empty() {
                    out.write_str(")")?;
                }
                out.write_str(if *result { " → true" } else { " → false" })
            }
            Line::GateAll { handoff: hi } => write!(
                out,
                "gate: all {} required fields present",
                handoff(hi).map_or(0, |h| h.require.len())
            ),
            Line::AssignTeam {
                handoff: hi,
                list,
                action,
                member,
            } => {
                let action = handoff(hi).and_then(|h| list.of(h).get(*action as usize));
                let Some(CAction::Assign {
                    role,
                    from:
                        AssignFrom::Team {
                            team,
                            members,
                            strategy,
                        },
                }) = action
                else {
                    return out.write_str("?");
                };
                let person = members.get(*member as usize).map_or("?", String::as_str);
                write!(
                    out,
                    "assign: {role} = {person} (team {team}, {})",
                    strategy_words(*strategy)
                )
            }
        }
    }
}

/// A strategy as traces and actions name it.
pub(super) fn strategy_words(s: Strategy) -> &'static str {
    match s {
        Strategy::RoundRobin => "round robin",
        Strategy::LeastLoaded => "least loaded",
    }
}

impl std::ops::Deref for Trace {
    type Target = [String];
    fn deref(&self) -> &[String] {
        self.lines()
    }
}

impl<'a> IntoIterator for &'a Trace {
    type Item = &'a String;
    type IntoIter = std::slice::Iter<'a, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.lines().iter()
    }
}

impl From<Vec<String>> for Trace {
    fn from(lines: Vec<String>) -> Trace {
        Trace {
            set: None,
            lines: lines.into_iter().map(Line::Text).collect(),
            values: Vec::new(),
            text: OnceLock::new(),
        }
    }
}

impl PartialEq for Trace {
    fn eq(&self, other: &Trace) -> bool {
        self.lines() == other.lines()
    }
}

impl<S: AsRef<str>, const N: usize> PartialEq<[S; N]> for Trace {
    fn eq(&self, other: &[S; N]) -> bool {
        self.len() == N && self.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

impl PartialEq<Vec<String>> for Trace {
    fn eq(&self, other: &Vec<String>) -> bool {
        self.lines() == other.as_slice()
    }
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.lines()).finish()
    }
}

/// One line for `collect_str`: serializing writes straight into the output,
/// without a `String` per line.
struct LineText<'a>(&'a Trace, &'a Line);

impl fmt::Display for LineText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write_line(self.1, f)
    }
}

impl Serialize for LineText<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Trace {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.text.get() {
            Some(text) => text.serialize(s),
            None => s.collect_seq(self.lines.iter().map(|l| LineText(self, l))),
        }
    }
}

impl<'de> Deserialize<'de> for Trace {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<String>::deserialize(d)?.into())
    }
}

/// `object.field` as a trace names a field.
pub(super) struct FieldName<'a>(pub(super) &'a ObjectSchema, pub(super) usize);

impl<'a> FieldName<'a> {
    /// The field at `slot` of `object`, `?` when there is none.
    fn of(object: Option<&'a ObjectSchema>, slot: usize) -> impl fmt::Display + 'a {
        struct Opt<'a>(Option<FieldName<'a>>);
        impl fmt::Display for Opt<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match &self.0 {
                    Some(n) => n.fmt(f),
                    None => f.write_str("?"),
                }
            }
        }
        Opt(object.map(|o| FieldName(o, slot)))
    }
}

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
