//! `GET /health?since=8w&workflow=NAME`: the health report as JSON, the
//! same data `handoff health --format json` prints (signals per workflow
//! and week, findings, data quality). Not `/healthz`, the liveness probe:
//! this one reads the store and needs the bearer token.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::hooks::problem;
use crate::health::{self, HealthError, Window};
use crate::runtime::state::AppState;

/// The health report route.
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/health", get(report))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthQuery {
    /// How far back: `8w`, `30d`, `12h` (default 8 weeks).
    since: Option<String>,
    workflow: Option<String>,
}

async fn report(State(state): State<Arc<AppState>>, Query(q): Query<HealthQuery>) -> Response {
    let text = q.since.as_deref().unwrap_or("8w");
    let Some(back) = health::parse_since(text) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "`since` is a number of weeks, days or hours, such as `8w`, `30d` or `12h`",
        );
    };
    let now = jiff::Timestamp::now();
    let Ok(since) = now.checked_sub(back) else {
        return problem(StatusCode::BAD_REQUEST, "`since` reaches too far back");
    };
    let window = Window {
        since,
        now,
        workflow: q.workflow,
    };
    let store = state.store.clone();
    let targets = state.settings.health.clone();
    let made =
        tokio::task::spawn_blocking(move || health::report(store.as_ref(), &window, &targets))
            .await;
    match made {
        Ok(Ok(report)) => Json(report).into_response(),
        Ok(Err(e @ HealthError::UnknownWorkflow { .. })) => {
            problem(StatusCode::NOT_FOUND, &format!("{e}"))
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the health report could not be read");
            problem(StatusCode::SERVICE_UNAVAILABLE, super::STORE_UNAVAILABLE)
        }
        Err(_) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the report was interrupted",
        ),
    }
}
