//! `GET /healthz` (liveness: the process answers; no token needed) and
//! `GET /readyz` (readiness: workflows loaded and not shutting down).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::runtime::state::AppState;

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
}

async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    // Ingest adds its own checks here (the store answers, the writer runs).
    let ready = !state.is_draining();
    let body = Ready {
        ready,
        version: state.workflows.active().set.version().to_string(),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
