//! The HTTP surface: one file per resource, each with its own `router()`,
//! merged in [`router`] under the layers every route shares (a trace span
//! per request, the body size limit, the bearer token).
//!
//! Ingest merges its routers here too (`hooks`, `handoffs`, `tasks`,
//! `events`); a route added to [`router`] gets the layers for free.

pub mod auth;
pub mod escalations;
pub mod handoffs;
pub mod health;
pub mod health_report;
pub mod hooks;
pub mod metrics;
pub mod outbox;
pub mod workflows;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue};
use axum::middleware;
use axum::response::Response;
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;
use tracing::Level;

use super::state::AppState;

/// Every route of the server, with the shared layers.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.settings.max_body_bytes;
    Router::new()
        .merge(health::router())
        .merge(metrics::router())
        .merge(workflows::router())
        .merge(hooks::router())
        .merge(crate::runtime::adapters::router())
        .merge(handoffs::router())
        .merge(crate::runtime::web::router())
        .merge(escalations::router())
        .merge(health_report::router())
        .merge(outbox::router())
        //
        // Layers run outside-in from the last one added: the trace span
        // first (so a 401 or 413 is logged too), then the body limit (an
        // oversized body is refused before anything reads it), then the
        // token.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(middleware::map_response(not_framed))
        // The limit below is the only one: axum's own 2 MB default for
        // extractors would otherwise cap a larger configured limit.
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(limit))
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
