//! The handoffs API: `GET /handoffs?status=&workflow=&record=&cursor=&limit=`,
//! `GET /handoffs/{id}` (record, status history, missing fields,
//! exceptions, the events with their outcomes and traces, actions with
//! their delivery state, notes), `POST /handoffs/{id}/approve` (the human
//! override: who and a note, recorded), `GET /tasks`, `GET /events/{id}`.
//! Store reads block, so they run on the blocking pool.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value as J};

use super::hooks::problem;
use crate::runtime::ingest;
use crate::runtime::state::AppState;
use crate::runtime::store::{
    ActionRow, Cause, EventRow, HandoffFilter, HandoffRow, PageRequest, Store, StoreError,
};

/// The handoffs routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/handoffs", get(list))
        .route("/handoffs/{id}", get(one))
        .route("/handoffs/{id}/approve", post(approve))
        .route("/tasks", get(tasks))
        .route("/events/{id}", get(event))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    workflow: Option<String>,
    record: Option<String>,
    orphaned: Option<bool>,
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
        Ok(Err(e)) => Err(problem(StatusCode::BAD_REQUEST, &e.to_string())),
        Err(_) => Err(problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the read was interrupted",
        )),
    }
}

async fn list(State(state): State<Arc<AppState>>, Query(q): Query<ListQuery>) -> Response {
    let filter = HandoffFilter {
        status: q.status,
        workflow: q.workflow,
        record_id: q.record,
        orphaned: q.orphaned,
    };
    let page = PageRequest {
        cursor: q.cursor,
        limit: q.limit.unwrap_or(50),
    };
    match read(&state, move |s| s.list_handoffs(&filter, &page)).await {
        Ok(page) => Json(json!({
            "handoffs": page.items.iter().map(handoff_json).collect::<Vec<_>>(),
            "next": page.next,
        }))
        .into_response(),
        Err(r) => r,
    }
}

async fn one(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    // With each action, the sinks that took it (delivery state per sink).
    let found = read(&state, move |s| {
        let Some(d) = s.handoff(&id)? else {
            return Ok(None);
        };
        let sinks = d
            .actions
            .iter()
            .map(|a| s.sink_deliveries(&a.id))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((d, sinks)))
    })
    .await;
    let (detail, sinks) = match found {
        Ok(Some(d)) => d,
        Ok(None) => return problem(StatusCode::NOT_FOUND, "no handoff with that id"),
        Err(r) => return r,
    };
    // The brief and the four answers of the latest decision that has them.
    let decisions: Vec<J> = detail.events.iter().map(event_json).collect();
    let latest = decisions.iter().rev().find_map(|e| {
        e["outcome"]["handoffs"]
            .as_array()?
            .iter()
            .find(|h| h["instance"] == detail.handoff.id.as_str() && !h["brief"].is_null())
            .cloned()
    });
    let mut body = handoff_json(&detail.handoff);
    body["record"] = detail
        .record
        .as_ref()
        .and_then(|r| serde_json::from_str::<J>(&r.state).ok())
        .map_or(J::Null, |s| s["snapshot"].clone());
    body["history"] = detail
        .history
        .iter()
        .map(|c| {
            json!({
                "from": c.from, "to": c.to, "at": c.at.to_string(),
                "by": match &c.cause { Cause::Event(id) => json!({"event": id}), Cause::Person(p) => json!({"person": p}) },
                "note": c.note,
            })
        })
        .collect();
    body["brief"] = latest.as_ref().map_or(J::Null, |h| h["brief"].clone());
    body["answers"] = latest.as_ref().map_or(J::Null, |h| h["answers"].clone());
    body["decisions"] = J::Array(decisions);
    body["actions"] = detail
        .actions
        .iter()
        .zip(&sinks)
        .map(|(a, d)| {
            let mut j = action_json(a);
            j["idempotency_key"] = J::from(a.idempotency_key.as_str());
            j["sinks"] = super::outbox::sinks_json(d);
            j
        })
        .collect();
    body["notes"] = detail
        .notes
        .iter()
        .map(|n| json!({"kind": n.note.kind, "who": n.note.who, "at": n.note.at.to_string(), "text": n.note.text}))
        .collect();
    Json(body).into_response()
}

#[derive(Debug, Deserialize)]
struct ApproveBody {
    /// Who approves (an email or a name).
    who: String,
    #[serde(default)]
    note: String,
}

async fn approve(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Option<Json<ApproveBody>>,
) -> Response {
    let Some(Json(body)) = body else {
        return problem(
            StatusCode::BAD_REQUEST,
            "send JSON such as {\"who\": \"maya@example.com\", \"note\": \"scope checked\"}",
        );
    };
    if body.who.trim().is_empty() {
        return problem(StatusCode::BAD_REQUEST, "say `who` approves");
    }
    let set = state.workflows.active().set.clone();
    let now = jiff::Timestamp::now();
    match ingest::approve(&state.store, set, id, body.who, body.note, now).await {
        Ok(Some(outcome)) => Json(json!({ "outcome": outcome })).into_response(),
        Ok(None) => problem(
            StatusCode::CONFLICT,
            "that handoff is not waiting in review (or does not exist): only a handoff in review can be approved",
        ),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn tasks(State(state): State<Arc<AppState>>, Query(q): Query<PageQuery>) -> Response {
    let page = PageRequest {
        cursor: q.cursor,
        limit: q.limit.unwrap_or(50),
    };
    match read(&state, move |s| s.list_tasks(&page)).await {
        Ok(page) => Json(json!({
            "tasks": page.items.iter().map(action_json).collect::<Vec<_>>(),
            "next": page.next,
        }))
        .into_response(),
        Err(r) => r,
    }
}

async fn event(State(state): State<Arc<AppState>>, Path(id): Path<i64>) -> Response {
    match read(&state, move |s| s.event(id)).await {
        Ok(Some(e)) => Json(event_json(&e)).into_response(),
        Ok(None) => problem(StatusCode::NOT_FOUND, "no event with that audit id"),
        Err(r) => r,
    }
}

fn handoff_json(h: &HandoffRow) -> J {
    json!({
        "id": h.id,
        "workflow": h.workflow,
        "object": h.object,
        "record_id": h.record_id,
        "status": h.status,
        "version": h.workflow_version,
        "triggered_at": h.triggered_at.to_string(),
        "updated_at": h.updated_at.to_string(),
        "done_at": h.done_at.map(|t| t.to_string()),
        "missing": serde_json::from_str::<J>(&h.missing).unwrap_or(J::Null),
        "exceptions": serde_json::from_str::<J>(&h.exceptions).unwrap_or(J::Null),
        "orphaned": h.orphaned,
    })
}

fn action_json(a: &ActionRow) -> J {
    json!({
        "id": a.id,
        "handoff": a.handoff_id,
        "kind": a.kind.as_str(),
        "action": serde_json::from_str::<J>(&a.payload).unwrap_or(J::Null),
        "state": a.state.as_str(),
        "attempts": a.attempts,
        "next_attempt_at": a.next_attempt_at.to_string(),
        "last_error": a.last_error,
        "delivered_at": a.delivered_at.map(|t| t.to_string()),
    })
}

fn event_json(e: &EventRow) -> J {
    let ev = &e.event;
    json!({
        "audit_id": e.audit_id,
        "source": ev.source,
        "event_id": ev.event_id,
        "received_at": ev.received_at.to_string(),
        "version": ev.workflow_version,
        "event": serde_json::from_str::<J>(&ev.normalized).unwrap_or(J::Null),
        "outcome": serde_json::from_str::<J>(&ev.outcome).unwrap_or(J::Null),
        "field_errors": serde_json::from_str::<J>(&ev.field_errors).unwrap_or(J::Null),
    })
}
