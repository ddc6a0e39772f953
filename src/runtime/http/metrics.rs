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
    // Likewise the CRM events waiting for their decision: a CRM down for
    // hours shows as a growing count and age, not only as log lines.
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.crm_pending_summary()).await {
        Ok(Ok(pending)) => {
            let m = &state.metrics;
            m.crm_pending_events
                .set(i64::try_from(pending.events).unwrap_or(i64::MAX));
            // Whole seconds, never negative (a clock stepped back).
            let age = pending.oldest_received_at.map_or(0, |t| {
                jiff::Timestamp::now().duration_since(t).as_secs().max(0)
            });
            m.crm_pending_oldest_seconds.set(age);
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot count the pending CRM events; handoff_crm_pending_* keep their last values")
        }
        Err(e) => {
            tracing::warn!(error = %e, "the pending CRM events count stopped; handoff_crm_pending_* keep their last values")
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
