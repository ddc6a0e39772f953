//! `GET /healthz` (liveness: the process answers; no token needed) and
//! `GET /readyz` (readiness: not shutting down, and the store takes a job:
//! a trivial read through the group-commit writer, so a stopped writer or
//! a database locked by another process turns the probe 503 with a reason).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::runtime::state::AppState;
use crate::runtime::store::StoreExt;

/// How long `/readyz` waits for the store. Shorter than a load balancer's
/// usual probe timeout, so the answer is a 503 with a reason, not a
/// dropped probe.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The health routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// The body of `/readyz`.
#[derive(Debug, Serialize)]
struct Ready {
    ready: bool,
    /// The active workflow version.
    version: String,
    /// Why not ready (absent when ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let reason = if state.is_draining() {
        Some("shutting down: finishing the requests in flight".to_string())
    } else {
        store_problem(&state).await
    };
    let status = if reason.is_none() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Ready {
        ready: reason.is_none(),
        version: state.workflows.active().set.version().to_string(),
        reason,
    };
    (status, Json(body))
}

/// Why the store cannot take events now, if it cannot. The probe is a
/// write job that only reads (the writer thread must be running, and its
/// transaction must start), so it proves what ingest needs.
pub(crate) async fn store_problem(state: &AppState) -> Option<String> {
    let probe = state.store.write(|tx| tx.load_record("", "").map(drop));
    match tokio::time::timeout(READY_TIMEOUT, probe).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the store failed a read");
            Some(format!("the store cannot take events: {e}"))
        }
        Err(_) => {
            tracing::warn!("readiness: the store did not answer in time");
            Some(format!(
                "the store did not answer within {} s: the database may be locked by another process, or the disk is stalled",
                READY_TIMEOUT.as_secs()
            ))
        }
    }
}
