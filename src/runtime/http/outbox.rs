//! The outbox API: `GET /outbox/dead-letters?cursor=&limit=` lists the
//! actions that ran out of tries (newest first, with the last error), and
//! `POST /outbox/{id}/retry` re-drives one: back to pending, due now, its
//! tries counted from zero. Both need the bearer token like the rest of
//! the API. Sinks that already took the action are not sent it again.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value as J};

use super::hooks::problem;
use crate::runtime::state::AppState;
use crate::runtime::store::{
    ActionRow, DeliveryState, PageRequest, SinkDelivery, Store, StoreError, StoreExt,
};
use crate::runtime::web::Viewer;

/// The outbox routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/outbox/dead-letters", get(dead_letters))
        .route("/outbox/{id}/retry", post(retry))
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn read<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(super::store_failure(&e)),
        Err(_) => Err(problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the read was interrupted",
        )),
    }
}

async fn dead_letters(State(state): State<Arc<AppState>>, Query(q): Query<PageQuery>) -> Response {
    let page = PageRequest {
        cursor: q.cursor,
        limit: q.limit.unwrap_or(50),
    };
    let listed = read(&state, move |s| {
        let page = s.dead_letters(&page)?;
        let mut items = Vec::with_capacity(page.items.len());
        for a in &page.items {
            items.push(action_json(a, &s.sink_deliveries(&a.id)?));
        }
        Ok((items, page.next))
    })
    .await;
    match listed {
        Ok((items, next)) => Json(json!({"dead_letters": items, "next": next})).into_response(),
        Err(r) => r,
    }
}

async fn retry(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    viewer: Option<Extension<Viewer>>,
) -> Response {
    // Who sent it: the API token, or a person signed in to the pages.
    let who = viewer.map_or_else(|| "API token".to_string(), |v| v.who.clone());
    let key = id.clone();
    let action = match read(&state, move |s| s.action(&key)).await {
        Ok(Some(a)) if a.state == DeliveryState::Dead => a,
        Ok(Some(a)) => return not_dead(a.state),
        Ok(None) => return problem(StatusCode::NOT_FOUND, "no action with that id"),
        Err(r) => return r,
    };
    let now = jiff::Timestamp::now();
    let redriven = state
        .store
        .write(move |tx| crate::runtime::delivery::redrive(tx, &action, &who, now))
        .await;
    match redriven {
        Ok(true) => {}
        // Re-driven by someone else between the read and the write.
        Ok(false) => return not_dead(DeliveryState::Pending),
        Err(e) => return super::store_failure(&e),
    }
    match read(&state, move |s| {
        Ok(s.action(&id)?.map(|a| (s.sink_deliveries(&a.id), a)))
    })
    .await
    {
        // The worker may have claimed it already: its state is what it is.
        Ok(Some((sinks, a))) => Json(action_json(&a, &sinks.unwrap_or_default())).into_response(),
        Ok(None) => problem(StatusCode::NOT_FOUND, "no action with that id"),
        Err(r) => r,
    }
}

/// An action with its delivery state and the sinks that took it.
pub fn action_json(a: &ActionRow, sinks: &[SinkDelivery]) -> J {
    json!({
        "id": a.id,
        "handoff": a.handoff_id,
        "kind": a.kind.as_str(),
        "action": serde_json::from_str::<J>(&a.payload).unwrap_or(J::Null),
        "idempotency_key": a.idempotency_key,
        "state": a.state.as_str(),
        "attempts": a.attempts,
        "next_attempt_at": a.next_attempt_at.to_string(),
        "last_error": a.last_error,
        "delivered_at": a.delivered_at.map(|t| t.to_string()),
        "sinks": sinks_json(sinks),
    })
}

/// The sinks that took an action: name, when, and what they answered.
pub fn sinks_json(sinks: &[SinkDelivery]) -> J {
    sinks
        .iter()
        .map(|d| {
            json!({
                "sink": d.sink,
                "delivered_at": d.delivered_at.to_string(),
                "ref": d.remote_ref,
            })
        })
        .collect()
}

/// The answer to a re-drive of an action that is not dead.
fn not_dead(state: DeliveryState) -> Response {
    problem(
        StatusCode::CONFLICT,
        &format!(
            "the action is {}, not dead: only dead letters are re-driven (see GET /outbox/dead-letters)",
            state.as_str()
        ),
    )
}
