//! `/drafts`: email drafts the rules wrote for a person to review. Each
//! can be edited (subject and body) and marked approved, which releases it
//! for delivery; both are recorded on the handoff with who did it.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use maud::html;
use serde::Deserialize;
use serde_json::Value as J;

use super::handoff::text;
use super::layout::{csrf_field, page as shell};
use super::{check_form, html_page, message, read, see_other, Viewer};
use crate::runtime::state::AppState;
use crate::runtime::store::{ActionRow, DeliveryState, NewNote, PageRequest, StoreError, StoreExt};

/// Drafts or dead letters a page shows.
pub const PAGE: usize = 100;

/// `?cursor=`: where a later page starts.
#[derive(Debug, Default, Deserialize)]
pub struct Later {
    pub cursor: Option<String>,
}

impl Later {
    /// The page to read.
    pub fn page(self) -> PageRequest {
        PageRequest {
            cursor: self.cursor.filter(|c| !c.trim().is_empty()),
            limit: PAGE,
        }
    }
}

/// `GET /drafts`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    viewer: Option<Extension<Viewer>>,
    Query(later): Query<Later>,
) -> Response {
    let viewer = viewer.map(|v| v.0);
    let (drafts, next) = match read(&state, move |s| s.drafts(&later.page())).await {
        Ok(p) => (p.items, p.next),
        Err(r) => return r,
    };
    let body = html! {
        h1 { "Email drafts" }
        p.muted { "Drafts are never sent on their own: edit one if needed, then approve it to send it." }
        @if drafts.is_empty() { p { "No draft is waiting." } }
        @for d in &drafts {
            @let p: J = serde_json::from_str(&d.payload).unwrap_or(J::Null);
            section.card aria-label={ "Draft to " (text(&p["to"])) } {
                p { "To " strong { (text(&p["to"])) } " · for " a href={ "/handoffs/" (d.handoff_id) } { "its handoff" } }
                @if let Some(v) = viewer.as_ref().filter(|v| v.csrf.is_some()) {
                    form.stack method="post" action={ "/drafts/" (d.id) } {
                        (csrf_field(v))
                        label for={ "s-" (d.id) } { "Subject" }
                        input type="text" id={ "s-" (d.id) } name="subject" value=(text(&p["subject"]));
                        label for={ "b-" (d.id) } { "Body" }
                        textarea id={ "b-" (d.id) } name="body" { (text(&p["body"])) }
                        p { button.secondary type="submit" { "Save the edit" } }
                    }
                    form method="post" action={ "/drafts/" (d.id) "/approve" } {
                        (csrf_field(v))
                        button type="submit" { "Approve and send" }
                    }
                } @else {
                    p { strong { (text(&p["subject"])) } }
                    p { (text(&p["body"])) }
                }
            }
        }
        @if let Some(n) = &next { p { a href={ "/drafts?cursor=" (super::encode(n)) } { "Older drafts →" } } }
    };
    html_page(StatusCode::OK, shell("Email drafts", viewer.as_ref(), body))
}

/// The draft `id`, if it is waiting (however old: not only those the
/// first page shows).
async fn find(state: &Arc<AppState>, id: String) -> Result<Option<ActionRow>, Response> {
    read(state, move |s| {
        Ok(s.action(&id)?.filter(|a| a.state == DeliveryState::Draft))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct EditForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
}

fn gone(viewer: &Viewer) -> Response {
    message(
        StatusCode::CONFLICT,
        Some(viewer),
        "Not a draft any more",
        "Someone approved it already, or it does not exist. Reload the drafts page.",
    )
}

/// `POST /drafts/{id}`: saves an edit.
pub async fn edit(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    viewer: Option<Extension<Viewer>>,
    Form(f): Form<EditForm>,
) -> Response {
    let who = match check_form(viewer.as_deref(), &f.csrf) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let draft = match find(&state, id.clone()).await {
        Ok(Some(d)) => d,
        Ok(None) => return gone(&who),
        Err(r) => return r,
    };
    let mut payload: J = serde_json::from_str(&draft.payload).unwrap_or(J::Null);
    payload["subject"] = J::String(f.subject);
    payload["body"] = J::String(f.body);
    let payload = payload.to_string();
    let note = NewNote {
        handoff_id: draft.handoff_id.clone(),
        kind: "edit_draft".into(),
        who: who.who.clone(),
        at: jiff::Timestamp::now(),
        text: format!("edited draft {id}"),
        data: Some(payload.clone()),
    };
    let saved = state
        .store
        .write(move |tx| {
            if !tx.edit_draft(&id, &payload)? {
                return Ok(false);
            }
            tx.add_note(&note)?;
            Ok::<_, StoreError>(true)
        })
        .await;
    done(saved, &who)
}

fn done(saved: Result<bool, StoreError>, who: &Viewer) -> Response {
    match saved {
        Ok(true) => see_other("/drafts"),
        Ok(false) => gone(who),
        Err(e) => super::not_saved(who, &e),
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /drafts/{id}/approve`: releases the draft for delivery.
pub async fn approve(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    viewer: Option<Extension<Viewer>>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let who = match check_form(viewer.as_deref(), &f.csrf) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let draft = match find(&state, id.clone()).await {
        Ok(Some(d)) => d,
        Ok(None) => return gone(&who),
        Err(r) => return r,
    };
    let now = jiff::Timestamp::now();
    let note = NewNote {
        handoff_id: draft.handoff_id,
        kind: "approve_draft".into(),
        who: who.who.clone(),
        at: now,
        text: format!("approved draft {id}"),
        data: None,
    };
    let saved = state
        .store
        .write(move |tx| {
            if !tx.approve_draft(&id, now)? {
                return Ok(false);
            }
            tx.add_note(&note)?;
            Ok::<_, StoreError>(true)
        })
        .await;
    done(saved, &who)
}
