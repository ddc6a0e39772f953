//! `handoff`: declarative CRM handoff rules.
//!
//! An operating rule ("when a deal becomes Closed Won, these fields must be
//! there, this person owns the next step, this task starts the work") is
//! written in a `.handoff` file and runs through one pipeline, a module per
//! stage, data flowing one way:
//!
//! ```text
//! .handoff text ─syntax::parse─▶ syntax tree ─check::analyze─▶ Checked (or diagnostics)
//!                     │                                            │
//!               syntax::format                               compile::compile
//!                     ▼                                            ▼
//!              canonical text                      WorkflowSet (with a version id)
//!                                                                  │
//!        CRM event + the record's state ──eval::step──▶ the record's new state
//!                                                        + Outcome: status, actions
//!                                                          (stable ids), brief, trace
//! ```
//!
//! `runtime` (feature `serve`) runs this pipeline behind a webhook server:
//! settings, HTTP routes, hot reload of the workflows folder, metrics.
//!
//! The whole tour, from text to plan:
//!
//! ```
//! use handoff::{check, compile, diagnostic::SourceFile, eval};
//!
//! let src = SourceFile::new("rules.handoff", r#"
//! object deal {
//!   name:  text
//!   stage: one of "Open", "Won"
//!   scope: text
//!   kicked_off_at: datetime
//! }
//! user founder = "maya@example.com"
//! handoff "Kickoff" {
//!   when deal.stage becomes "Won"
//!   require scope
//!   then {
//!     task "Kick off {deal.name}" for founder due in 2 days
//!   }
//!   done when deal.kicked_off_at is set
//! }
//! "#);
//!
//! // Parse and check: no errors, so we get a checked project.
//! let analysis = check::analyze(&[src]);
//! assert!(analysis.diagnostics.is_empty());
//! let set = compile::compile(&analysis.checked.unwrap()).unwrap();
//!
//! // One CRM event through the engine: a pure function of the record's
//! // state (none yet), the event, the time and the shared assignment memory.
//! let event = eval::Event::decode(&set, br#"{
//!   "id": "e1", "object": "deal", "record_id": "D-1",
//!   "record": {"name": "Acme", "stage": "Won", "scope": "Setup"},
//!   "previous": {"stage": "Open"}
//! }"#).unwrap();
//! let now = "2026-11-20T15:00:00Z".parse().unwrap();
//! let mut assignments = eval::MemoryAssignments::default();
//! let (record, outcome) = eval::step(&set, None, &event, now, &mut assignments).unwrap();
//!
//! let h = &outcome.handoffs[0];
//! assert_eq!(h.status, eval::OutcomeStatus::Proceeded);
//! assert_eq!(outcome.version, set.version());
//! assert!(matches!(&h.actions[0].plan,
//!     eval::PlannedAction::Task { title, assignee: Some(who), .. }
//!         if title == "Kick off Acme" && who == "maya@example.com"));
//! assert!(h.trace[0].contains(r#"deal.stage was "Open", is "Won" → fired"#));
//!
//! // The record's new state is what a store keeps (as JSON, by field name);
//! // the next event on the record starts from it.
//! let deal = set.object("deal").unwrap();
//! let stored = serde_json::to_string(&record.to_stored(deal)).unwrap();
//! assert!(stored.contains(r#""scope":"Setup""#));
//! ```

pub mod check;
pub mod compile;
pub mod diagnostic;
pub mod eval;
pub mod health;
pub mod project;
pub mod report;
#[cfg(feature = "serve")]
pub mod runtime;
pub mod scenario;
pub mod script;
pub mod source;
pub mod syntax;
pub mod value;
