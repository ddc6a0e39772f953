//! The API's bearer token: `Authorization: Bearer <HANDOFF_API_TOKEN>` on
//! every route except `/healthz` (probes carry no token) and `/hooks/*`
//! (each CRM signs its requests; the hook verifies the signature).
//!
//! With no token configured the API is open; `Settings::validate` allows
//! that only on a loopback address, and the server says so when it starts.
//!
//! The web pages sign people in to a session instead (`/signin`, open);
//! see [`require_token`] for how the two meet.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::runtime::state::AppState;
use crate::runtime::web;

/// True for the paths that need no token.
pub fn is_public(path: &str) -> bool {
    path == "/healthz" || path.starts_with("/hooks/") || path == "/signin"
}

/// The middleware: lets a request through, or answers 401 (a script), a
/// redirect to `/signin` (a browser asking for a page) or 403 (a form
/// without a session).
///
/// A web session (cookie) counts for pages and forms; each form checks its
/// CSRF token. A write the session sends without a form (a JSON POST) is
/// refused: a cookie is sent by the browser on its own, so only a form
/// with the session's CSRF token proves the person meant it; scripts use
/// the bearer token.
pub async fn require_token(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    if is_public(request.uri().path()) {
        return next.run(request).await;
    }
    let token = state.settings.secrets.api_token.as_ref();
    let given = bearer(request.headers());
    // A valid bearer token needs no session (and no database read).
    if token.zip(given).is_some_and(|(t, g)| t.matches(g)) {
        return next.run(as_api(request)).await;
    }
    let now = jiff::Timestamp::now();
    let credentials = state.web.credentials;
    let session = match web::session::viewer(&state.store, request.headers(), credentials, now)
        .await
    {
        Ok(session) => session,
        Err(e) => {
            tracing::error!(error = %e, "cannot read web sessions");
            let why = "Sessions cannot be read from the database right now; try again in a moment.";
            if web::wants_html(request.headers()) {
                return web::message(
                    StatusCode::SERVICE_UNAVAILABLE,
                    None,
                    "Pages are unavailable",
                    why,
                );
            }
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "error": why })),
            )
                .into_response();
        }
    };
    if let Some(viewer) = session {
        let safe = matches!(*request.method(), Method::GET | Method::HEAD);
        if !safe && !web::is_form(&request) {
            return web::forbidden(Some(&viewer));
        }
        request.extensions_mut().insert(viewer);
        return next.run(request).await;
    }
    // No token set (loopback only): scripts pass, browsers still sign in,
    // since their forms need a session's CSRF token.
    if token.is_none() && !web::wants_html(request.headers()) && !web::is_form(&request) {
        return next.run(as_api(request)).await;
    }
    if web::is_form(&request) {
        return web::forbidden(None);
    }
    if web::wants_html(request.headers()) && *request.method() == Method::GET {
        let target = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        return web::to_signin(&target);
    }
    let reason = if given.is_some() {
        "the bearer token is not the API token"
    } else {
        "this endpoint needs `Authorization: Bearer <token>` (the value of HANDOFF_API_TOKEN)"
    };
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(serde_json::json!({ "error": reason })),
    )
        .into_response()
}

/// `request`, marked as sent with the API token.
fn as_api(mut request: Request) -> Request {
    request.extensions_mut().insert(web::Viewer {
        who: "API token".to_string(),
        csrf: None,
    });
    request
}

/// The token of an `Authorization: Bearer …` header (the scheme in any case).
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::*;

    fn headers(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn the_token_is_read_from_a_bearer_header() {
        assert_eq!(bearer(&headers("Bearer abc")), Some(&b"abc"[..]));
        assert_eq!(bearer(&headers("bearer  abc ")), Some(&b"abc"[..]));
        assert_eq!(bearer(&headers("Basic abc")), None);
        assert_eq!(bearer(&headers("Bear")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn only_liveness_and_hooks_are_public() {
        assert!(is_public("/healthz"));
        assert!(is_public("/hooks/generic"));
        assert!(!is_public("/readyz"));
        assert!(!is_public("/workflows"));
        assert!(!is_public("/hooksx"));
    }
}
