//! Stage four: run CRM events through a [`WorkflowSet`].
//!
//! The engine is a pure state-transition function: [`step`] takes the
//! state of one record ([`RecordState`]), one [`Event`], the current time and
//! the shared assignment memory ([`Assignments`]), and returns the record's
//! new state and an [`Outcome`] (statuses, the action plan with stable ids,
//! the brief, and an explain trace in plain words). It does no I/O: a
//! runtime persists the state and delivers the actions. [`State`] is the
//! CLI's whole-world runtime in memory.

mod event;
mod expr;
mod outcome;
mod plan;
mod run;
mod script;
mod state;
mod trace;

#[cfg(test)]
mod tests;

pub use event::{typed, Event, EventError, FieldError};
pub use expr::{equal, Ctx, Record};
pub use outcome::*;
pub use run::{approve, orphan, reject, short, step, step_owned, ApproveError, StepError};
pub use state::{
    Assignments, Instance, MemoryAssignments, RecordState, SeenIds, State, Status, StoredRecord,
    TeamState, STATE_FORMAT,
};
pub use trace::Trace;
