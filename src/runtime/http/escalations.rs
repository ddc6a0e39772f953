//! `POST /handoffs/{id}/escalations`: delivery says a handoff came back
//! because context was missing (`{"who": "ana@example.com", "note": "what
//! was promised?"}`). Recorded with who and the note, and kept in the
//! handoff's notes; the health report counts it. Behind the bearer token
//! like the rest of the API.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::hooks::problem;
use crate::runtime::escalations;
use crate::runtime::state::AppState;

/// The escalation route.
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/handoffs/{id}/escalations", post(escalate))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EscalateBody {
    /// Who escalates (an email or a name).
    who: String,
    /// What was missing.
    #[serde(default)]
    note: String,
}

async fn escalate(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Option<Json<EscalateBody>>,
) -> Response {
    let Some(Json(body)) = body else {
        return problem(
            StatusCode::BAD_REQUEST,
            "send JSON such as {\"who\": \"ana@example.com\", \"note\": \"what was promised verbally?\"}",
        );
    };
    if body.who.trim().is_empty() {
        return problem(StatusCode::BAD_REQUEST, "say `who` escalates");
    }
    let now = jiff::Timestamp::now();
    match escalations::escalate(&state.store, id.clone(), body.who, body.note, now).await {
        Ok(Some(seq)) => (
            StatusCode::CREATED,
            Json(json!({ "escalation": seq, "handoff": id, "at": now.to_string() })),
        )
            .into_response(),
        Ok(None) => problem(StatusCode::NOT_FOUND, "no handoff with that id"),
        Err(e) => super::store_failure(&e),
    }
}
