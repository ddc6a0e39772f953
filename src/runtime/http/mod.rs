//! The HTTP surface: one file per resource, each with its own `router()`,
//! merged in [`router`] under the layers every route shares (a trace span
//! per request, the body size limit, the bearer token).
//!
//! Ingest merges its routers here too (`hooks`, `handoffs`, `tasks`,
//! `events`); a route added to [`router`] gets the layers for free.

pub mod auth;
pub mod body_read;
pub mod escalations;
pub mod guesses;
pub mod handoffs;
pub mod health;
pub mod health_report;
pub mod hooks;
pub mod in_flight;
pub mod listen;
pub mod metrics;
pub mod outbox;
pub mod refusals;
pub mod workflows;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::Response;
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;
use tracing::Level;

use super::state::AppState;
use super::store::StoreError;

/// Every route of the server, with the shared layers.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.settings.max_body_bytes;
    Router::new()
        .merge(health::router())
        .merge(metrics::router())
        .merge(workflows::router())
        .merge(
            // The webhooks take at most `max_in_flight` requests at once;
            // `route_layer` runs after the token check, so a request the
            // token refuses takes no place.
            hooks::router()
                .merge(crate::runtime::adapters::router())
                .route_layer(middleware::from_fn_with_state(
                    state.clone(),
                    in_flight::admit,
                )),
        )
        .merge(handoffs::router())
        .merge(crate::runtime::web::router())
        .merge(escalations::router())
        .merge(health_report::router())
        .merge(outbox::router())
        //
        // Layers run outside-in from the last one added: the trace span
        // first (so a 401 or 413 is logged too), then the anti-framing
        // headers and the refusals made alike (`refusals`), then the body limit (an
        // oversized body is refused before anything reads it), then the
        // token, then the body's deadline (a refused request's body is
        // never read).
        .layer(middleware::from_fn_with_state(
            state.clone(),
            body_read::within_deadline,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(middleware::map_response(not_framed))
        // The limit below is the only one: axum's own 2 MB default for
        // extractors would otherwise cap a larger configured limit.
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            refusals::explain,
        ))
        // Again outside the limit: the pages `refusals::explain` makes are
        // HTML too.
        .layer(middleware::map_response(not_framed))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(
                    DefaultOnResponse::new()
                        .level(Level::INFO)
                        .latency_unit(LatencyUnit::Micros),
                ),
        )
        .with_state(state)
}

/// The answer to a failed store read or write. A bad cursor or an unknown
/// id is the client's to fix (400, 404, saying what); anything else is
/// the server's: a 503 with a message that names no file and quotes no
/// SQLite text, the detail going to the log.
pub(crate) fn store_failure(e: &StoreError) -> Response {
    match e {
        StoreError::BadCursor(_) => hooks::problem(StatusCode::BAD_REQUEST, &e.to_string()),
        StoreError::NotFound { .. } => hooks::problem(StatusCode::NOT_FOUND, &e.to_string()),
        _ => {
            tracing::error!(error = %e, "the store failed a request");
            hooks::problem(StatusCode::SERVICE_UNAVAILABLE, STORE_UNAVAILABLE)
        }
    }
}

/// What a client is told when the store fails (the log has the cause).
pub(crate) const STORE_UNAVAILABLE: &str =
    "the database cannot answer right now: try again in a moment (the server's log says why)";

/// Pages may not be shown inside another site's frame: a page that framed
/// the approve and reject buttons could trick a signed-in person into
/// clicking them (clickjacking). Only HTML answers carry the headers.
async fn not_framed(mut response: Response) -> Response {
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        let headers = response.headers_mut();
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        );
    }
    response
}

/// A span per request: a sequence number, the method and the path (never
/// the query or the headers, which can carry tokens). `event_id` is filled
/// in by the hooks once they have decoded the event.
fn request_span(request: &Request) -> tracing::Span {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    tracing::info_span!(
        "request",
        id = NEXT.fetch_add(1, Ordering::Relaxed),
        method = %request.method(),
        path = %request.uri().path(),
        event_id = tracing::field::Empty,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(e: StoreError) -> (StatusCode, String) {
        let r = store_failure(&e);
        let status = r.status();
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_store_failure_tells_the_client_only_what_is_theirs() {
        let (status, body) = answer(StoreError::Sync {
            path: "/srv/secret/handoff.db".into(),
            reason: "EIO".into(),
        })
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            !body.contains("/srv/secret") && !body.contains("EIO"),
            "{body}"
        );
        assert!(body.contains("try again"), "{body}");

        let (status, body) = answer(StoreError::BadCursor("x".into())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("cursor"), "{body}");
    }
}
