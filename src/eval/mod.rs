//! Stage four: run CRM events through a [`WorkflowSet`].
//!
//! The engine is a pure state-transition function: [`step`] takes the
//! engine's [`State`], one [`Event`] and the current time, and returns the new
//! state and an [`Outcome`] (statuses, the action plan, the brief, and an
//! explain trace in plain words). It does no I/O: a runtime persists the
//! state and delivers the actions.

mod event;
mod expr;
mod outcome;
mod plan;
mod run;
mod script;
mod state;

pub use event::{typed, Event, EventError, FieldError};
pub use expr::{equal, Ctx, Record};
pub use outcome::*;
pub use run::{approve, step, ApproveError};
pub use state::{Instance, RecordState, SeenIds, State, Status, TeamState};
