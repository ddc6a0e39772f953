//! `GET /metrics`: the Prometheus text exposition of `runtime::metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::runtime::http::health;
use crate::runtime::state::AppState;

/// The metrics route.
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    // The outbox depth is read at scrape time (an index range count), so
    // the gauge is current without anything counting on the write path.
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.outbox_depth()).await {
        Ok(Ok(depth)) => state
            .metrics
            .outbox_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX)),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot count the outbox; handoff_outbox_depth keeps its last value")
        }
        Err(e) => {
            tracing::warn!(error = %e, "the outbox count stopped; handoff_outbox_depth keeps its last value")
        }
    }
    // Readiness as a series, so an alert can fire on it: the same probe as
    // `/readyz` (it waits at most `READY_TIMEOUT` when the store is stuck).
    let ready = health::store_problem(&state).await.is_none();
    state.metrics.store_ready.set(i64::from(ready));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
