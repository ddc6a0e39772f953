//! Every refusal answered alike: JSON `{"error": …}` that says what to fix,
//! or a page for a person's browser.
//!
//! Our handlers answer so; the layers and extractors of axum and tower-http
//! do not: a body over the limit (refused on its `Content-Length` before
//! any route), a query string or path that does not parse, a JSON body of
//! the wrong shape, a missing content type, an unknown route or method
//! answer with plain text or nothing at all. A script reading `error`
//! then finds none. This layer, outermost but for the trace, rewrites
//! those answers; an answer that is already JSON or HTML passes untouched.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::runtime::state::AppState;

/// The most of a refusal's own text that is kept (axum's messages are a
/// line or two).
const KEPT: usize = 4096;

/// The middleware.
pub async fn explain(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let wants_html = crate::runtime::web::wants_html(request.headers());
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    let ours = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !status.is_client_error() || ours {
        return response;
    }
    let headers = response.headers().clone();
    let text = match axum::body::to_bytes(response.into_body(), KEPT).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let (title, why) = explained(status, &method, &text, state.settings.max_body_bytes);
    let mut answer = refusal(wants_html, status, title, &why);
    // What the client needs to go on: the methods a route takes, when to
    // come back.
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = headers.get(&name) {
            answer.headers_mut().insert(name, v.clone());
        }
    }
    answer
}

/// A title for the page and the sentence to send, for a refusal whose own
/// text was `text`.
fn explained(
    status: StatusCode,
    method: &Method,
    text: &str,
    max_body_bytes: usize,
) -> (&'static str, String) {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            super::body_read::TOO_LARGE,
            super::body_read::too_large(max_body_bytes),
        ),
        StatusCode::NOT_FOUND => (
            "Not found",
            "there is nothing at this address: the README's API section lists the routes".into(),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "Not allowed",
            format!("this address does not take {method}: the Allow header lists what it takes"),
        ),
        // The framework's own text names the content type it wants (a
        // form's, or JSON's): said once, not contradicted.
        StatusCode::UNSUPPORTED_MEDIA_TYPE
            if text.to_ascii_lowercase().contains("content-type") =>
        {
            ("Wrong content type", text.to_string())
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "Wrong content type",
            "the body's content type is not one this address reads: send JSON with Content-Type: application/json".to_string(),
        ),
        StatusCode::URI_TOO_LONG => (
            "Address too long",
            "the address is too long: put long values in the body".into(),
        ),
        _ => (
            "Not accepted",
            nonempty(text, "the request was not accepted").to_string(),
        ),
    }
}

fn nonempty<'a>(text: &'a str, otherwise: &'a str) -> &'a str {
    if text.is_empty() {
        otherwise
    } else {
        text
    }
}

/// A refusal: a page for a person's browser, JSON for everyone else.
pub fn refusal(wants_html: bool, status: StatusCode, title: &str, why: &str) -> Response {
    if wants_html {
        crate::runtime::web::message(status, None, title, why)
    } else {
        super::hooks::problem(status, why)
    }
}
