//! The outcome of one event: per handoff, what happened, the planned
//! actions, the brief, the four answers and the explain trace. This is the
//! JSON contract `handoff run --format json` prints and the server returns.
//!
//! Values in it (`set` values, brief lines) are written as
//! [`Value`]'s `Serialize` says: a `number` as a JSON number when a double
//! holds it exactly (`5`, `0.3`), otherwise as the text of its exact
//! digits; `money` always as text with at least two decimals (`"1000.50"`),
//! so no JSON reader rounds an amount; dates, date-times and durations as
//! text. The record snapshots in the state use the same form and read back
//! exactly.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::trace::Trace;
use crate::value::Value;

/// What one event did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The event id.
    pub event: String,
    /// The workflow version (content id) the event was decided under.
    #[serde(default)]
    pub version: String,
    /// True when the event id was processed before: nothing new happened.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    pub handoffs: Vec<HandoffOutcome>,
}

/// What one event did to one handoff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoffOutcome {
    pub workflow: String,
    pub record_id: String,
    /// The handoff instance this is about (none when nothing fired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub status: OutcomeStatus,
    /// The version the instance was decided under before this event, when a
    /// reload changed it: the instance migrated to the new rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrated_from: Option<String>,
    /// Required fields that are missing (names).
    pub missing: Vec<String>,
    /// Exceptions that flagged this record.
    pub exceptions: Vec<String>,
    /// Exceptions whose test failed to evaluate (they count as flagged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exception_errors: Vec<ExceptionError>,
    pub actions: Vec<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brief: Option<Arc<RenderedBrief>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<Answers>,
    /// Every step evaluated, in plain words.
    pub trace: Trace,
}

impl HandoffOutcome {
    /// What the actions do, without their ids.
    pub fn plans(&self) -> Vec<&PlannedAction> {
        self.actions.iter().map(|a| &a.plan).collect()
    }
}

/// A handoff's status after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    /// Fired and went down the normal path.
    Proceeded,
    /// Fired (or still waiting) with required fields missing.
    Paused,
    /// Fired (or still waiting) with exceptions flagged.
    Review,
    /// Was paused or in review and now went down the normal path.
    Resumed,
    /// `done when` became true.
    Done,
    /// Was paused, and the trigger value was undone: the handoff is off.
    Withdrawn,
    /// A person rejected it in review: it ends without its normal path.
    Rejected,
    /// The instance's workflow is gone from the rules now serving: it keeps
    /// its status, its open tasks are released, and a person decides.
    Orphaned,
    /// Nothing happened.
    NotTriggered,
}

impl OutcomeStatus {
    /// Every status, in the order the reference lists them.
    pub const ALL: [OutcomeStatus; 9] = [
        OutcomeStatus::Proceeded,
        OutcomeStatus::Paused,
        OutcomeStatus::Review,
        OutcomeStatus::Resumed,
        OutcomeStatus::Done,
        OutcomeStatus::Withdrawn,
        OutcomeStatus::Rejected,
        OutcomeStatus::Orphaned,
        OutcomeStatus::NotTriggered,
    ];

    /// The status as written in the contract.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeStatus::Proceeded => "proceeded",
            OutcomeStatus::Paused => "paused",
            OutcomeStatus::Review => "review",
            OutcomeStatus::Resumed => "resumed",
            OutcomeStatus::Done => "done",
            OutcomeStatus::Withdrawn => "withdrawn",
            OutcomeStatus::Rejected => "rejected",
            OutcomeStatus::Orphaned => "orphaned",
            OutcomeStatus::NotTriggered => "not_triggered",
        }
    }
}

/// An exception test that could not be evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExceptionError {
    pub name: String,
    pub error: String,
}

/// One planned action with its stable id: the same record, instance,
/// workflow version and position in the plan give the same id, so a retried
/// event plans the same ids and an outbox can key on them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub id: String,
    #[serde(flatten)]
    pub plan: PlannedAction,
}

impl std::ops::Deref for Action {
    type Target = PlannedAction;
    fn deref(&self) -> &PlannedAction {
        &self.plan
    }
}

/// What an action does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PlannedAction {
    Assign {
        role: String,
        /// The person picked (email or CRM user), if one could be picked.
        person: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        team: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strategy: Option<String>,
    },
    Task {
        title: String,
        assignee: Option<String>,
        /// RFC 3339 in the calendar's timezone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        checklist: Vec<String>,
        /// The handoff's brief (the same one as the outcome's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        brief: Option<Arc<RenderedBrief>>,
    },
    Notify {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        to: Option<String>,
        message: String,
    },
    EmailDraft {
        to: Option<String>,
        subject: String,
        body: String,
        /// Always `needs_review`: drafts are never sent automatically.
        status: String,
    },
    Set {
        field: String,
        value: Value,
    },
}

/// The brief, with the record's values filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedBrief {
    pub fields: Vec<BriefLine>,
    /// Questions for a person to answer.
    pub questions: Vec<String>,
    /// The same, as Markdown.
    pub markdown: String,
}

/// A line of the brief.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BriefLine {
    pub label: String,
    pub value: Value,
}

/// The four questions every handoff must answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answers {
    /// Who owns the next step.
    pub next_owner: Option<String>,
    /// What was promised: the brief's lines, `label: value`.
    pub promised: Vec<String>,
    /// What the client expects next: the drafted message to the client.
    pub client_expects: Option<String>,
    /// What task starts the work.
    pub first_task: Option<String>,
}
