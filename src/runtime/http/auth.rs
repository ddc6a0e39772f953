//! The API's bearer token: `Authorization: Bearer <HANDOFF_API_TOKEN>` on
//! every route except `/healthz` (probes carry no token) and `/hooks/*`
//! (each CRM signs its requests; the hook verifies the signature).
//!
//! With no token configured the API is open; `Settings::validate` allows
//! that only on a loopback address, and the server says so when it starts.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::runtime::state::AppState;

/// True for the paths that need no token.
pub fn is_public(path: &str) -> bool {
    path == "/healthz" || path.starts_with("/hooks/")
}

/// The middleware: lets a request through, or answers 401.
pub async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = state.settings.secrets.api_token.as_ref() else {
        return next.run(request).await;
    };
    if is_public(request.uri().path()) {
        return next.run(request).await;
    }
    match bearer(request.headers()) {
        Some(given) if token.matches(given) => next.run(request).await,
        given => {
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
    }
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
