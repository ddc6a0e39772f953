//! Embedding the engine in your own axum app: one webhook route that
//! decodes a CRM event, steps it with `eval`, and answers the outcome as
//! JSON. It uses the library API only (not `handoff serve`): you own the
//! router, the state and where it is kept.
//!
//! ```sh
//! cargo run --example axum_webhook                    # workflows/, 127.0.0.1:3000
//! cargo run --example axum_webhook -- --listen 127.0.0.1:0 --workflows workflows
//! curl -s localhost:3000/webhook -H 'content-type: application/json' \
//!      -d @examples/events/closed_won.json
//! ```
//!
//! The body is one generic event (`grammar/README.md`) or a JSON array of
//! them applied in order; the answer is `{"outcomes": [...]}`, one
//! `eval::Outcome` per event (its status, missing fields, exceptions and the
//! planned actions, each with a stable id to deliver it by exactly once).
//!
//! The state here is `eval::State` in memory behind a `Mutex`: every record
//! seen, the round-robin cursors and the recently seen event ids (a retry
//! answers `duplicate` and changes nothing). It is lost when the process
//! stops. To keep it, save `State` (it is serde) after each request, or run
//! `handoff serve`, which keeps it per record in SQLite and commits before
//! it answers.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use handoff::compile::{self, WorkflowSet};
use handoff::eval::{Event, State};
use serde_json::json;

/// What every request shares: the compiled workflows (immutable) and the
/// engine's state (one lock: `step` is microseconds, so a lock is simpler
/// than per-record ones and orders events as they arrive).
#[derive(Clone)]
pub struct Engine {
    set: WorkflowSet,
    state: Arc<Mutex<State>>,
}

impl Engine {
    /// An engine over compiled workflows, with empty state.
    pub fn new(set: WorkflowSet) -> Engine {
        Engine {
            set,
            state: Arc::new(Mutex::new(State::default())),
        }
    }
}

/// The webhook as a router: merge it into your app's router.
pub fn router(engine: Engine) -> Router {
    Router::new()
        .route("/webhook", post(webhook))
        .with_state(engine)
}

async fn webhook(AxumState(engine): AxumState<Engine>, body: Bytes) -> Response {
    // Strict decoding: a field value that does not fit its type refuses the
    // event with a message naming the field (`handoff serve` instead stores
    // the event and reports the field).
    let events = match Event::decode_many(&engine.set, &body) {
        Ok(events) => events,
        Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    };
    let now = jiff::Timestamp::now();
    let mut outcomes = Vec::with_capacity(events.len());
    {
        // A panic elsewhere while holding the lock leaves the state as it
        // was between two steps, which is still consistent: keep going.
        let mut state = engine.state.lock().unwrap_or_else(|p| p.into_inner());
        for event in &events {
            match state.step(&engine.set, event, now) {
                Ok(outcome) => outcomes.push(outcome),
                Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
            }
        }
    }
    (StatusCode::OK, Json(json!({ "outcomes": outcomes }))).into_response()
}

fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// `--listen ADDR` and `--workflows DIR`.
fn args() -> Result<(String, PathBuf), String> {
    let mut listen = "127.0.0.1:3000".to_string();
    let mut workflows = PathBuf::from("workflows");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = |args: &mut dyn Iterator<Item = String>| {
            args.next().ok_or(format!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--listen" => listen = value(&mut args)?,
            "--workflows" => workflows = PathBuf::from(value(&mut args)?),
            other => {
                return Err(format!(
                    "unknown argument `{other}`: use --listen ADDR and --workflows DIR"
                ))
            }
        }
    }
    Ok((listen, workflows))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (listen, workflows) = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let set = match compile::load(std::slice::from_ref(&workflows)) {
        Ok((set, _warnings)) => set,
        Err(e) => {
            eprintln!(
                "error: cannot load {}: {e}\n  help: run `handoff check {}` to see why",
                workflows.display(),
                workflows.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {listen}: {e}\n  help: pick another address with --listen (port 0 takes any free port)");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("listening on http://{addr}"),
        Err(e) => eprintln!("warning: cannot read the bound address: {e}"),
    }
    // Your app would merge `router(..)` into its own router here.
    let app = router(Engine::new(set));
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: the server stopped: {e}");
            ExitCode::FAILURE
        }
    }
}
