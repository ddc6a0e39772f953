//! [`AppState`]: what every request handler can reach, shared behind one
//! `Arc`. Built once by `serve::Server::build`; handlers only read it (the
//! parts that change, the active workflows and the metrics, change inside).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::config::Settings;
use super::metrics::Metrics;
use super::reload::Workflows;
use super::store::Store;

/// The server's shared state.
pub struct AppState {
    /// The settings the server started with (secrets print as `[redacted]`).
    pub settings: Settings,
    /// The active workflows: `workflows.lease()` once per request that
    /// decides, `workflows.active()` for one that only shows.
    pub workflows: Arc<Workflows>,
    /// The metrics registry (`GET /metrics`).
    pub metrics: Arc<Metrics>,
    /// Set when shutdown has begun: `/readyz` answers 503 so a load
    /// balancer stops sending new work while in-flight requests finish.
    pub draining: AtomicBool,
    /// The durable store; writes go through its group-commit writer.
    pub store: Arc<dyn Store>,
    /// The generic hook's signing key (decoded `whsec_` secret), when set.
    pub generic_key: Option<Vec<u8>>,
    /// The CRM mapping and API clients (`/hooks/hubspot`, `/hooks/pipedrive`).
    pub crm: Arc<super::adapters::Crms>,
    /// The web pages' sessions.
    pub web: super::web::WebState,
    /// Wrong tokens by client address (sign-in and the bearer token).
    pub guesses: super::http::guesses::Guesses,
    /// Places for webhook requests in flight (`max_in_flight` of them).
    pub hooks_in_flight: Arc<tokio::sync::Semaphore>,
    /// Arrival order of the records a CRM request reads before queueing.
    pub turns: super::turns::RecordTurns,
}

impl AppState {
    /// True once shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the signing key.
        f.debug_struct("AppState")
            .field("settings", &self.settings)
            .field("draining", &self.draining)
            .finish_non_exhaustive()
    }
}
