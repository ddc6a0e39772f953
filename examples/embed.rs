//! Embedding the engine: load the bundled workflows, feed events in order,
//! keep the state between them, and print each plan.
//!
//! ```sh
//! cargo run --example embed                      # examples/events/closed_won.json
//! cargo run --example embed -- path/to/events.json
//! ```
//!
//! A webhook server does the same: decode the request body with
//! `Event::decode`, call `eval::step` with the stored state, persist the new
//! state, and deliver the planned actions.

use std::path::PathBuf;
use std::process::ExitCode;

use handoff::compile::{self, LoadFailure};
use handoff::eval::{Event, PlannedAction, State};

fn main() -> ExitCode {
    let events_path = std::env::args().nth(1).map_or_else(
        || PathBuf::from("examples/events/closed_won.json"),
        PathBuf::from,
    );

    // Load, check and compile every .handoff file under workflows/.
    let set = match compile::load(&[PathBuf::from("workflows")]) {
        Ok((set, _warnings)) => set,
        Err(LoadFailure::Invalid(diagnostics)) => {
            for d in diagnostics {
                eprintln!("{:?}", miette::Report::new(d));
            }
            return ExitCode::FAILURE;
        }
        Err(other) => {
            eprintln!("cannot load workflows: {other}");
            return ExitCode::FAILURE;
        }
    };

    let bytes = match std::fs::read(&events_path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {}: {e}", events_path.display());
            return ExitCode::FAILURE;
        }
    };
    let events = match Event::decode_many(&set, &bytes) {
        Ok(events) => events,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };

    // The engine keeps no state of its own. `eval::step` takes and returns
    // the state of the one record an event is about, and the shared
    // assignment memory goes through `Assignments`; `State` keeps all of it
    // in memory (a server keeps it in its store).
    let mut state = State::default();
    for event in &events {
        let now = event.occurred_at.unwrap_or_else(jiff::Timestamp::now);
        let outcome = match state.step(&set, event, now) {
            Ok(outcome) => outcome,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        for h in &outcome.handoffs {
            println!("{} on {}: {}", h.workflow, h.record_id, h.status.as_str());
            for action in &h.actions {
                // Each action has a stable id an outbox can key on.
                print!("  [{}]", action.id);
                match &action.plan {
                    PlannedAction::Task {
                        title,
                        assignee,
                        due,
                        ..
                    } => println!(
                        " task {title:?} for {} due {}",
                        assignee.as_deref().unwrap_or("nobody"),
                        due.as_deref().unwrap_or("-")
                    ),
                    other => println!(" {}", serde_json::to_string(other).unwrap_or_default()),
                }
            }
        }
    }
    ExitCode::SUCCESS
}
