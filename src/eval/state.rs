//! The engine's memory between events: record snapshots, handoff instances,
//! team cursors and loads, and the ids of events already seen. It is plain
//! data (serde) so a runtime can persist it; the engine never does I/O.

use std::collections::{BTreeMap, VecDeque};

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
    pub seen: VecDeque<String>,
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
        !id.is_empty() && self.seen.iter().any(|s| s == id)
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
