//! `/dead-letters`: deliveries that ran out of attempts, with their last
//! error and a re-drive button that puts one back in the queue (attempts
//! reset), recorded on its handoff with who did it.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use maud::html;
use serde_json::Value as J;

use super::drafts::{CsrfForm, Later};
use super::handoff::{summary, text};
use super::layout::{csrf_field, page as shell};
use super::{check_form, html_page, message, read, see_other, Viewer};
use crate::runtime::state::AppState;
use crate::runtime::store::{DeliveryState, StoreExt};

/// `GET /dead-letters`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    viewer: Option<Extension<Viewer>>,
    Query(later): Query<Later>,
) -> Response {
    let viewer = viewer.map(|v| v.0);
    let (dead, next) = match read(&state, move |s| s.dead_letters(&later.page())).await {
        Ok(p) => (p.items, p.next),
        Err(r) => return r,
    };
    let body = html! {
        h1 { "Dead letters" }
        p.muted { "Deliveries that failed every attempt. Fix the cause (the error says what the other side answered), then re-drive." }
        @if dead.is_empty() { p { "Nothing is dead-lettered." } }
        @else {
            div.wrap { table {
                thead { tr { th scope="col" { "Action" } th scope="col" { "Last error" } th scope="col" { "Attempts" } th scope="col" { "Handoff" } th scope="col" { span.muted { "Re-drive" } } } }
                tbody { @for a in &dead {
                    @let p: J = serde_json::from_str(&a.payload).unwrap_or(J::Null);
                    tr {
                        td { (a.kind.as_str()) ": " (summary(&p)) }
                        td { (a.last_error.clone().unwrap_or_default()) }
                        td { (a.attempts) }
                        td { a href={ "/handoffs/" (a.handoff_id) } { "open" } }
                        td { @if let Some(v) = viewer.as_ref().filter(|v| v.csrf.is_some()) {
                            form method="post" action={ "/dead-letters/" (a.id) "/redrive" } {
                                (csrf_field(v))
                                button type="submit" aria-label={ "Re-drive " (a.kind.as_str()) " " (text(&p["id"])) } { "Re-drive" }
                            }
                        } }
                    }
                } }
            } }
        }
        @if let Some(n) = &next { p { a href={ "/dead-letters?cursor=" (super::encode(n)) } { "Older dead letters →" } } }
    };
    html_page(StatusCode::OK, shell("Dead letters", viewer.as_ref(), body))
}

/// `POST /dead-letters/{id}/redrive`.
pub async fn redrive(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    viewer: Option<Extension<Viewer>>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let who = match check_form(viewer.as_deref(), &f.csrf) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let wanted = id.clone();
    let row =
        match read(&state, move |s| {
            Ok(s.action(&wanted)?
                .filter(|a| a.state == DeliveryState::Dead))
        })
        .await
        {
            Ok(Some(r)) => r,
            Ok(None) => return message(
                StatusCode::CONFLICT,
                Some(&who),
                "Not dead any more",
                "Someone re-drove it already, or it does not exist. Reload the dead letters page.",
            ),
            Err(r) => return r,
        };
    let now = jiff::Timestamp::now();
    let by = who.who.clone();
    let saved = state
        .store
        .write(move |tx| crate::runtime::delivery::redrive(tx, &row, &by, now))
        .await;
    match saved {
        Ok(true) => see_other("/dead-letters"),
        // Re-driven by someone else between the read and this write.
        Ok(false) => message(
            StatusCode::CONFLICT,
            Some(&who),
            "Not dead any more",
            "Someone re-drove it already. Reload the dead letters page.",
        ),
        Err(e) => super::not_saved(&who, &e),
    }
}
