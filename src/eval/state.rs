//! The engine's memory between events: record snapshots, handoff instances,
//! team cursors and loads, and the ids of events already seen. It is plain
//! data (serde) so a runtime can persist it; the engine never does I/O.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

/// How many event ids are remembered for deduplication.
pub const SEEN_EVENTS: usize = 10_000;

/// Everything the engine remembers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Per record, keyed `object/record_id`.
    #[serde(default)]
    pub records: BTreeMap<String, RecordState>,
    /// Per team: round-robin cursor and open-task loads.
    #[serde(default)]
    pub teams: BTreeMap<String, TeamState>,
    /// Open tasks per person (email), for `least loaded`.
    #[serde(default)]
    pub open_tasks: BTreeMap<String, u32>,
    /// Ids of recently processed events, oldest first.
    #[serde(default)]
    pub seen: SeenIds,
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

/// What the engine knows of one record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordState {
    /// The last known field values, by field name (names, not slots, so a
    /// state file survives reordering the fields of an object).
    #[serde(default)]
    pub snapshot: BTreeMap<String, serde_json::Value>,
    /// Handoff instances on this record, by workflow name.
    #[serde(default)]
    pub handoffs: BTreeMap<String, Instance>,
}

/// One run of a handoff on one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub status: Status,
    /// When the trigger fired.
    pub triggered_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<jiff::Timestamp>,
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
}

/// Assignment memory of a team.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TeamState {
    /// Round robin: how many assignments so far.
    pub cursor: u64,
}

impl State {
    /// The key of a record.
    pub fn key(object: &str, record_id: &str) -> String {
        format!("{object}/{record_id}")
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
}
