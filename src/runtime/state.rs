//! [`AppState`]: what every request handler can reach, shared behind one
//! `Arc`. Built once by `serve::Server::build`; handlers only read it (the
//! parts that change, the active workflows and the metrics, change inside).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::config::Settings;
use super::metrics::Metrics;
use super::reload::Workflows;

/// The server's shared state.
#[derive(Debug)]
pub struct AppState {
    /// The settings the server started with (secrets print as `[redacted]`).
    pub settings: Settings,
    /// The active workflows; `workflows.active()` once per request.
    pub workflows: Arc<Workflows>,
    /// The metrics registry (`GET /metrics`).
    pub metrics: Arc<Metrics>,
    /// Set when shutdown has begun: `/readyz` answers 503 so a load
    /// balancer stops sending new work while in-flight requests finish.
    pub draining: AtomicBool,
    // Ingest adds its parts here, built in `Server::build`: the store
    // (`Arc<dyn Store>`) and the group-commit writer's handle.
}

impl AppState {
    /// True once shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}
