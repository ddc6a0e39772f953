//! The engine's memory between events, per record.
//!
//! A step reads and returns the state of the one record its event is about
//! ([`RecordState`]: typed values by slot, when each value was set, and the
//! handoff instances on the record). What records share, the assignment
//! memory (round-robin cursors, open-task counts), goes through
//! [`Assignments`], which the caller provides: [`MemoryAssignments`] for the
//! CLI, the store's atomic updates for a server. Deduplication by event id
//! belongs to whoever persists events; [`State`] does it for the CLI.
//!
//! Names and JSON appear only at the storage boundary ([`StoredRecord`]), so
//! a stored record survives reordering the fields of an object.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::event::typed_ref;
use crate::check::ObjectSchema;
use crate::value::Value;

/// How many event ids [`State`] remembers for deduplication.
pub const SEEN_EVENTS: usize = 10_000;

/// What the engine knows of one record, typed by the slots of the
/// [`crate::compile::WorkflowSet`] that produced it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordState {
    /// The last known value of each field, by slot (`Null` when unknown).
    pub values: Vec<Value>,
    /// When each held value was true in the CRM (the `occurred_at` of the
    /// event that brought it), by slot: an older event never overwrites a
    /// newer value.
    pub set_at: Vec<Option<jiff::Timestamp>>,
    /// Handoff instances on this record, by workflow name.
    pub handoffs: BTreeMap<String, Instance>,
}

/// A record as stored: values by field name, as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    /// The last known field values, by field name.
    #[serde(default)]
    pub snapshot: BTreeMap<String, serde_json::Value>,
    /// When each value was set in the CRM, by field name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set_at: BTreeMap<String, jiff::Timestamp>,
    /// Handoff instances on this record, by workflow name.
    #[serde(default)]
    pub handoffs: BTreeMap<String, Instance>,
}

impl RecordState {
    /// A stored record typed by `object`'s fields. A value that no longer
    /// fits its field's type (the schema changed) reads as empty; a field
    /// the object no longer declares is dropped.
    pub fn from_stored(object: &ObjectSchema, stored: &StoredRecord) -> RecordState {
        let mut values = Vec::with_capacity(object.fields.len());
        let mut set_at = Vec::with_capacity(object.fields.len());
        for f in &object.fields {
            values.push(
                stored
                    .snapshot
                    .get(&f.name)
                    .and_then(|j| typed_ref(&f.ty, j).ok())
                    .unwrap_or(Value::Null),
            );
            set_at.push(stored.set_at.get(&f.name).copied());
        }
        RecordState {
            values,
            set_at,
            handoffs: stored.handoffs.clone(),
        }
    }

    /// The record as stored: known values by field name.
    pub fn to_stored(&self, object: &ObjectSchema) -> StoredRecord {
        let mut snapshot = BTreeMap::new();
        let mut set_at = BTreeMap::new();
        for (slot, f) in object.fields.iter().enumerate() {
            if let Some(v) = self.values.get(slot).filter(|v| **v != Value::Null) {
                let json = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
                snapshot.insert(f.name.clone(), json);
            }
            if let Some(Some(t)) = self.set_at.get(slot) {
                set_at.insert(f.name.clone(), *t);
            }
        }
        StoredRecord {
            snapshot,
            set_at,
            handoffs: self.handoffs.clone(),
        }
    }
}

/// One run of a handoff on one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// A stable id: the same record, workflow and trigger time give the
    /// same id (a replay names the same instance).
    #[serde(default)]
    pub id: String,
    pub status: Status,
    /// The workflow version this instance was last decided under.
    #[serde(default)]
    pub version: String,
    /// When the trigger fired.
    pub triggered_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<jiff::Timestamp>,
    /// When a reload removed this instance's workflow: it keeps its status
    /// and is reported as orphaned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orphaned_at: Option<jiff::Timestamp>,
    /// Missing fields while paused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// Flagged exceptions while in review.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<String>,
    /// Roles assigned: role → person (email).
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// People holding the tasks this instance opened (to release on done).
    #[serde(default)]
    pub task_holders: Vec<String>,
    /// How many action plans this instance has made: part of each action's
    /// id, so a second ask for missing fields is a new action.
    #[serde(default)]
    pub plans: u32,
}

impl Instance {
    /// Whether the instance finished (a new trigger starts a new run).
    pub fn finished(&self) -> bool {
        matches!(
            self.status,
            Status::Done | Status::Withdrawn | Status::Rejected
        )
    }
}

/// Where a handoff instance stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for required fields.
    Paused,
    /// Waiting for a person to review flagged exceptions.
    Review,
    /// The first step is planned; waiting for `done when`.
    Proceeded,
    /// Finished.
    Done,
    /// Was paused, and the trigger value was undone before it resumed.
    Withdrawn,
    /// A person rejected it in review (the human override): no action of
    /// the normal path runs; a new trigger starts a new run.
    Rejected,
}

impl Status {
    /// Every status, as written in the contract, in the order a handoff
    /// goes through them.
    pub const NAMES: [&'static str; 6] = [
        "paused",
        "review",
        "proceeded",
        "done",
        "withdrawn",
        "rejected",
    ];

    /// The status as written in the contract.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Paused => "paused",
            Status::Review => "review",
            Status::Proceeded => "proceeded",
            Status::Done => "done",
            Status::Withdrawn => "withdrawn",
            Status::Rejected => "rejected",
        }
    }
}

/// The assignment memory records share: a team's round-robin cursor and
/// each person's open tasks. A server implements it on its store, where
/// taking a cursor is one atomic update.
pub trait Assignments {
    /// The team's cursor, then advances it by one.
    fn next_cursor(&mut self, team: &str) -> u64;
    /// How many open tasks a person holds.
    fn open_tasks(&mut self, person: &str) -> u32;
    /// A task for `person` was opened.
    fn task_opened(&mut self, person: &str);
    /// A task `person` held was closed (never below zero).
    fn task_closed(&mut self, person: &str);
}

/// [`Assignments`] in memory, as plain data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryAssignments {
    /// Per team: the round-robin cursor.
    #[serde(default)]
    pub teams: BTreeMap<String, TeamState>,
    /// Open tasks per person (email), for `least loaded`.
    #[serde(default)]
    pub open_tasks: BTreeMap<String, u32>,
}

/// Assignment memory of a team.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TeamState {
    /// Round robin: how many assignments so far.
    pub cursor: u64,
}

impl Assignments for MemoryAssignments {
    fn next_cursor(&mut self, team: &str) -> u64 {
        let t = match self.teams.get_mut(team) {
            Some(t) => t,
            None => self.teams.entry(team.to_string()).or_default(),
        };
        let c = t.cursor;
        t.cursor += 1;
        c
    }
    fn open_tasks(&mut self, person: &str) -> u32 {
        self.open_tasks.get(person).copied().unwrap_or(0)
    }
    fn task_opened(&mut self, person: &str) {
        match self.open_tasks.get_mut(person) {
            Some(n) => *n += 1,
            None => {
                self.open_tasks.insert(person.to_string(), 1);
            }
        }
    }
    fn task_closed(&mut self, person: &str) {
        if let Some(n) = self.open_tasks.get_mut(person) {
            *n = n.saturating_sub(1);
        }
    }
}

/// The format [`State`] is written in.
pub const STATE_FORMAT: u32 = 2;

/// Everything the CLI remembers between events (`handoff run --state`,
/// `handoff test`): every record as stored, the assignment memory and the
/// ids of events already seen. A server keeps the same in its store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The file format: 2. Files without it (format 1) read the same way:
    /// their records and instances gain the new fields' defaults.
    #[serde(default = "format_one")]
    pub format: u32,
    /// Per record, keyed `object/record_id`.
    #[serde(default)]
    pub records: BTreeMap<String, StoredRecord>,
    /// Round-robin cursors and open-task counts.
    #[serde(flatten)]
    pub assignments: MemoryAssignments,
    /// Ids of recently processed events, oldest first.
    #[serde(default)]
    pub seen: SeenIds,
}

fn format_one() -> u32 {
    1
}

impl Default for State {
    fn default() -> Self {
        State {
            format: STATE_FORMAT,
            records: BTreeMap::new(),
            assignments: MemoryAssignments::default(),
            seen: SeenIds::default(),
        }
    }
}

impl State {
    /// The key of a record.
    pub fn key(object: &str, record_id: &str) -> String {
        let mut k = String::with_capacity(object.len() + 1 + record_id.len());
        k.push_str(object);
        k.push('/');
        k.push_str(record_id);
        k
    }

    /// Whether an event id was processed already (empty ids never are).
    pub fn seen(&self, id: &str) -> bool {
        !id.is_empty() && self.seen.contains(id)
    }

    /// Remembers an event id.
    pub fn remember(&mut self, id: &str) {
        if id.is_empty() {
            return;
        }
        self.seen.push_back(id.to_string());
        while self.seen.len() > SEEN_EVENTS {
            self.seen.pop_front();
        }
    }
}

/// The ids of recently processed events, oldest first: a queue (read it
/// like a `VecDeque<String>`) with a hash index, so checking an id costs the
/// same with 10 ids remembered as with 10,000. Serialized as a plain list.
#[derive(Clone, Default)]
pub struct SeenIds {
    order: VecDeque<String>,
    /// How many times each id is in `order` (a hand-edited state may list
    /// an id twice).
    index: HashMap<String, u32>,
}

impl SeenIds {
    /// Whether `id` is remembered.
    pub fn contains(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    /// Remembers `id` as the newest.
    pub fn push_back(&mut self, id: String) {
        *self.index.entry(id.clone()).or_insert(0) += 1;
        self.order.push_back(id);
    }

    /// Forgets the oldest id.
    pub fn pop_front(&mut self) -> Option<String> {
        let id = self.order.pop_front()?;
        if let Some(n) = self.index.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                self.index.remove(&id);
            }
        }
        Some(id)
    }
}

impl std::ops::Deref for SeenIds {
    type Target = VecDeque<String>;
    fn deref(&self) -> &VecDeque<String> {
        &self.order
    }
}

impl FromIterator<String> for SeenIds {
    fn from_iter<I: IntoIterator<Item = String>>(ids: I) -> Self {
        let mut seen = SeenIds::default();
        for id in ids {
            seen.push_back(id);
        }
        seen
    }
}

impl PartialEq for SeenIds {
    fn eq(&self, other: &Self) -> bool {
        self.order == other.order
    }
}

impl std::fmt::Debug for SeenIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.order.fmt(f)
    }
}

impl Serialize for SeenIds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.order.serialize(s)
    }
}

impl<'de> Deserialize<'de> for SeenIds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(VecDeque::<String>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_ids_serialize_as_a_plain_list_and_keep_their_index() {
        let mut state = State::default();
        state.remember("e1");
        state.remember("e2");
        let json = serde_json::to_value(&state).unwrap();
        assert_eq!(json["seen"], serde_json::json!(["e1", "e2"]));
        assert_eq!(json["format"], 2);
        let back: State = serde_json::from_value(json).unwrap();
        assert_eq!(back, state);
        assert!(back.seen("e1") && back.seen("e2") && !back.seen("e3") && !back.seen(""));
    }

    #[test]
    fn the_oldest_ids_are_forgotten_past_the_window() {
        let mut state = State::default();
        for i in 0..=SEEN_EVENTS {
            state.remember(&format!("e{i}"));
        }
        assert_eq!(state.seen.len(), SEEN_EVENTS);
        assert!(!state.seen("e0"));
        assert!(state.seen("e1") && state.seen(&format!("e{SEEN_EVENTS}")));
    }

    #[test]
    fn an_id_listed_twice_is_remembered_until_both_are_gone() {
        let mut seen: SeenIds = ["a", "a", "b"].map(String::from).into_iter().collect();
        seen.pop_front();
        assert!(seen.contains("a"));
        seen.pop_front();
        assert!(!seen.contains("a") && seen.contains("b"));
    }

    #[test]
    fn a_format_one_file_reads_with_its_cursors_and_loads() {
        let old = serde_json::json!({
            "records": {"deal/D-1": {"snapshot": {"name": "Acme"}, "handoffs": {
                "Kickoff": {"status": "paused", "triggered_at": "2026-11-20T15:00:00Z",
                    "updated_at": "2026-11-20T15:00:00Z", "missing": ["scope"],
                    "roles": {}, "task_holders": ["a@x.io"]}}}},
            "teams": {"delivery": {"cursor": 3}},
            "open_tasks": {"a@x.io": 2},
            "seen": ["e1"]
        });
        let state: State = serde_json::from_value(old).unwrap();
        assert_eq!(state.format, 1);
        assert_eq!(state.assignments.teams["delivery"].cursor, 3);
        assert_eq!(state.assignments.open_tasks["a@x.io"], 2);
        let inst = &state.records["deal/D-1"].handoffs["Kickoff"];
        assert_eq!(
            (inst.status, inst.plans, inst.version.as_str()),
            (Status::Paused, 0, "")
        );
        assert!(state.seen("e1"));
    }

    #[test]
    fn memory_assignments_count_and_never_go_below_zero() {
        let mut a = MemoryAssignments::default();
        assert_eq!(
            (a.next_cursor("t"), a.next_cursor("t"), a.next_cursor("u")),
            (0, 1, 0)
        );
        a.task_opened("p");
        a.task_opened("p");
        a.task_closed("p");
        a.task_closed("p");
        a.task_closed("p");
        assert_eq!(a.open_tasks("p"), 0);
    }
}
