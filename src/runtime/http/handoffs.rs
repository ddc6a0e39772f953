//! The handoffs API: `GET /handoffs?status=&workflow=&record=&cursor=&limit=`,
//! `GET /handoffs/{id}` (record, status history, missing fields,
//! exceptions, the events with their outcomes and traces, actions with
//! their delivery state, notes), `POST /handoffs/{id}/approve` and
//! `/reject` (the human override: who and a note, recorded), `GET /tasks`, `GET /events/{id}`.
//! Store reads block, so they run on the blocking pool.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value as J};

use super::hooks::problem;
use crate::runtime::ingest;
use crate::runtime::state::AppState;
use crate::runtime::store::{
    ActionRow, Cause, EventRow, HandoffDetail, HandoffFilter, HandoffRow, PageRequest,
    SinkDelivery, Store, StoreError,
};
use crate::runtime::web;

/// The handoffs routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/handoffs", get(list))
        .route("/handoffs/{id}", get(one))
        .route("/handoffs/{id}/approve", post(approve))
        .route("/handoffs/{id}/reject", post(reject))
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
    /// The page's filters (the JSON list ignores them).
    owner: Option<String>,
    stuck: Option<String>,
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

async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    viewer: Option<Extension<web::Viewer>>,
    Query(q): Query<ListQuery>,
) -> Response {
    if web::wants_html(&headers) {
        let filters = web::handoffs::Filters {
            status: q.status,
            workflow: q.workflow,
            owner: q.owner,
            stuck: q
                .stuck
                .is_some_and(|s| s == "on" || s == "true" || s == "1"),
            cursor: q.cursor,
        };
        return web::handoffs::page(state, filters, viewer.map(|v| v.0)).await;
    }
    // An empty value is no filter (a form or a script that leaves it
    // blank); a status that does not exist is named, not answered with an
    // empty list that reads as "none".
    let given = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let status = given(q.status);
    if let Some(s) = status.as_deref() {
        if !crate::eval::Status::NAMES.contains(&s) {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!(
                    "`status` is {s:?}: write one of {}",
                    crate::eval::Status::NAMES.join(", ")
                ),
            );
        }
    }
    let filter = HandoffFilter {
        status,
        workflow: given(q.workflow),
        record_id: given(q.record),
        orphaned: q.orphaned,
        stuck_before: None,
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

async fn one(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    viewer: Option<Extension<web::Viewer>>,
) -> Response {
    // One URL for people and scripts: a browser gets the page.
    if web::wants_html(&headers) {
        return web::handoff::page(state, id, viewer.map(|v| v.0)).await;
    }
    let found = read(&state, move |s| with_sinks(s, &id)).await;
    let (detail, sinks) = match found {
        Ok(Some(d)) => d,
        Ok(None) => return problem(StatusCode::NOT_FOUND, "no handoff with that id"),
        Err(r) => return r,
    };
    Json(detail_json(&detail, &sinks)).into_response()
}

/// A handoff, and for each of its actions the sinks that took it.
pub(crate) type WithSinks = (HandoffDetail, Vec<Vec<SinkDelivery>>);

/// A handoff and, for each of its actions, the sinks that took it
/// (delivery state per sink), as the API and the page show them.
pub(crate) fn with_sinks(s: &dyn Store, id: &str) -> Result<Option<WithSinks>, StoreError> {
    let Some(d) = s.handoff(id)? else {
        return Ok(None);
    };
    let sinks = d
        .actions
        .iter()
        .map(|a| s.sink_deliveries(&a.id))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((d, sinks)))
}

/// Everything about one handoff, as the API answers it (the page renders
/// the same value, so the two never disagree). `sinks` holds, per action in
/// order, the sinks that took it; an action without an entry shows none.
pub fn detail_json(detail: &HandoffDetail, sinks: &[Vec<SinkDelivery>]) -> J {
    // The brief and the four answers of the latest decision that has them:
    // an event's, or a person's approval (its outcome is kept in the note).
    let decisions: Vec<J> = detail.events.iter().map(event_json).collect();
    let by_event = detail.events.iter().zip(&decisions).filter_map(|(e, j)| {
        let h = j["outcome"]["handoffs"]
            .as_array()?
            .iter()
            .find(|h| h["instance"] == detail.handoff.id.as_str() && !h["brief"].is_null())?;
        Some((e.event.received_at, h.clone()))
    });
    let by_person = detail.notes.iter().filter_map(|n| {
        let h: J = serde_json::from_str(n.note.data.as_deref()?).ok()?;
        (n.note.kind == "approve" && !h["brief"].is_null()).then_some((n.note.at, h))
    });
    let latest = by_event
        .chain(by_person)
        .fold(None::<(jiff::Timestamp, J)>, |best, (at, h)| match best {
            Some((b, _)) if b > at => best,
            _ => Some((at, h)),
        })
        .map(|(_, h)| h);
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
        .enumerate()
        .map(|(i, a)| {
            let mut j = action_json(a);
            j["idempotency_key"] = J::from(a.idempotency_key.as_str());
            j["sinks"] = super::outbox::sinks_json(sinks.get(i).map_or(&[][..], Vec::as_slice));
            j
        })
        .collect();
    body["notes"] = detail
        .notes
        .iter()
        .map(|n| json!({"kind": n.note.kind, "who": n.note.who, "at": n.note.at.to_string(), "text": n.note.text}))
        .collect();
    body["brief_answers"] = brief_answers(detail);
    body
}

/// The answers people gave to the brief's questions (`answer` notes): the
/// latest per question, in the order the questions were first answered.
pub fn brief_answers(detail: &HandoffDetail) -> J {
    let mut out: Vec<J> = Vec::new();
    for n in detail.notes.iter().filter(|n| n.note.kind == "answer") {
        let Some(data) = n
            .note
            .data
            .as_deref()
            .and_then(|d| serde_json::from_str::<J>(d).ok())
        else {
            continue;
        };
        let entry = json!({
            "question": data["question"],
            "answer": n.note.text,
            "who": n.note.who,
            "at": n.note.at.to_string(),
        });
        match out.iter_mut().find(|e| e["question"] == data["question"]) {
            Some(e) => *e = entry,
            None => out.push(entry),
        }
    }
    J::Array(out)
}

#[derive(Debug, Deserialize)]
struct VerdictBody {
    /// Who decides (an email or a name).
    who: String,
    #[serde(default)]
    note: String,
}

async fn approve(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Option<Json<VerdictBody>>,
) -> Response {
    verdict(state, id, body, Verdict::Approve).await
}

async fn reject(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Option<Json<VerdictBody>>,
) -> Response {
    verdict(state, id, body, Verdict::Reject).await
}

/// Which way a person decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject,
}

impl Verdict {
    /// The verb, as the messages use it.
    pub fn verb(self) -> &'static str {
        match self {
            Verdict::Approve => "approved",
            Verdict::Reject => "rejected",
        }
    }
}

/// What became of a person's verdict.
#[derive(Debug)]
pub enum Decision {
    /// Recorded; the handoff's outcome.
    Made(Box<crate::eval::HandoffOutcome>),
    /// It is not waiting in review.
    NotInReview,
    /// No handoff has that id.
    NotFound,
    /// It waits in review, but its workflow is gone from the rules now
    /// serving (orphaned): no verdict can move it until the workflow is
    /// back.
    WorkflowGone { workflow: String },
}

impl Decision {
    /// What a person is told when the verdict was not recorded.
    pub fn why_not(&self, verdict: Verdict) -> Option<String> {
        match self {
            Decision::Made(_) => None,
            Decision::NotInReview => Some(format!(
                "that handoff is not waiting in review (someone decided first, or the CRM moved it on): only a handoff in review can be {}",
                verdict.verb()
            )),
            Decision::NotFound => Some(
                "there is no handoff with that id: take the id from GET /handoffs?status=review"
                    .to_string(),
            ),
            Decision::WorkflowGone { workflow } => Some(format!(
                "this handoff waits in review, but its workflow \"{workflow}\" is gone from the rules now serving, so it cannot be {} now: put the workflow back in the workflows folder (GET /workflows lists the versions that served), then decide it",
                verdict.verb()
            )),
        }
    }
}

/// Runs a person's verdict on a handoff in review.
pub async fn decide(
    state: &Arc<AppState>,
    id: String,
    who: String,
    note: String,
    verdict: Verdict,
) -> Result<Decision, ingest::IngestError> {
    // Held until the verdict's job is queued (see `reload::Lease`).
    let lease = state.workflows.lease();
    let set = lease.set.clone();
    let now = jiff::Timestamp::now();
    let made = match verdict {
        Verdict::Approve => {
            ingest::approve(&state.store, set.clone(), id.clone(), who, note, now).await
        }
        Verdict::Reject => {
            ingest::reject(&state.store, set.clone(), id.clone(), who, note, now).await
        }
    }?;
    if let Some(outcome) = made {
        return Ok(Decision::Made(Box::new(outcome)));
    }
    // Why not: a handoff whose workflow was removed keeps its status (it is
    // listed as orphaned), and the engine cannot decide it without its rule.
    let store = state.store.clone();
    let row = tokio::task::spawn_blocking(move || store.handoff(&id))
        .await
        .map_err(|e| StoreError::Backend {
            doing: "reading a handoff",
            reason: e.to_string(),
        })??;
    Ok(match row.map(|d| d.handoff) {
        Some(h) if h.status == "review" && !set.handoffs().iter().any(|w| w.name == h.workflow) => {
            Decision::WorkflowGone {
                workflow: h.workflow,
            }
        }
        Some(_) => Decision::NotInReview,
        None => Decision::NotFound,
    })
}

/// The longest `who` a verdict may name, and the longest note (a note is
/// kept twice: in the status history and in the notes).
pub const MAX_WHO: usize = 200;
pub const MAX_NOTE: usize = 10_000;

/// Why `who` and `note` cannot be recorded, if they cannot: `who` names a
/// person on one line, and neither may carry control characters (a line
/// break or an escape in the audit trail, the pages and the logs) other
/// than a note's line breaks and tabs.
pub fn verdict_text_problem(who: &str, note: &str, verb: &str) -> Option<String> {
    if who.trim().is_empty() {
        return Some(format!("say `who` {verb} it"));
    }
    if who.chars().count() > MAX_WHO || who.chars().any(char::is_control) {
        return Some(format!(
            "`who` names the person on one line, at most {MAX_WHO} characters, such as \"maya@example.com\""
        ));
    }
    if note.chars().count() > MAX_NOTE {
        return Some(format!(
            "the note is longer than {MAX_NOTE} characters: keep the reason short and link to the rest"
        ));
    }
    if note
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Some("the note has a control character: send plain text".to_string());
    }
    None
}

async fn verdict(
    state: Arc<AppState>,
    id: String,
    body: Option<Json<VerdictBody>>,
    verdict: Verdict,
) -> Response {
    let Some(Json(body)) = body else {
        return problem(
            StatusCode::BAD_REQUEST,
            "send JSON such as {\"who\": \"maya@example.com\", \"note\": \"scope checked\"}",
        );
    };
    // Trimmed first: a line break at the end (`echo` in a script) is no
    // reason to refuse.
    let who = body.who.trim().to_string();
    if let Some(why) = verdict_text_problem(&who, &body.note, verdict.verb()) {
        return problem(StatusCode::BAD_REQUEST, &why);
    }
    match decide(&state, id, who, body.note, verdict).await {
        Ok(Decision::Made(outcome)) => Json(json!({ "outcome": outcome })).into_response(),
        Ok(Decision::NotFound) => problem(
            StatusCode::NOT_FOUND,
            &Decision::NotFound.why_not(verdict).unwrap_or_default(),
        ),
        Ok(not) => problem(
            StatusCode::CONFLICT,
            &not.why_not(verdict).unwrap_or_default(),
        ),
        Err(e) => {
            tracing::error!(error = %e, "a review decision could not be saved");
            problem(StatusCode::SERVICE_UNAVAILABLE, super::STORE_UNAVAILABLE)
        }
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

/// One handoff of a list, as the API answers it.
pub fn handoff_json(h: &HandoffRow) -> J {
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

/// One action with its delivery state, as the API answers it.
pub fn action_json(a: &ActionRow) -> J {
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

/// One stored event with its outcome, as the API answers it.
pub fn event_json(e: &EventRow) -> J {
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
