//! The API's bearer token: `Authorization: Bearer <HANDOFF_API_TOKEN>` on
//! every route except `/healthz` (probes carry no token) and the signed
//! hooks (each CRM signs its requests; the hook verifies the signature).
//! `/hooks/generic` is one of those only with `HANDOFF_GENERIC_SECRET` set;
//! without it, it wants the token like the rest of the API.
//!
//! With no token configured the API is open to this machine only:
//! `Settings::validate` allows that only on a loopback address, and a
//! request addressed to another host name (a DNS rebinding page, a tunnel)
//! or sent by a web page of another site is refused.
//!
//! The web pages sign people in to a session instead (`/signin`, open);
//! see [`require_token`] for how the two meet. An address that sent too
//! many wrong tokens waits (429) before its token is compared
//! ([`super::guesses`]).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::runtime::state::AppState;
use crate::runtime::web;

/// True for the paths that need no token: `generic_signed` says whether
/// `/hooks/generic` checks a signature (else it needs the token).
pub fn is_public(path: &str, generic_signed: bool) -> bool {
    match path {
        "/healthz" | "/signin" => true,
        "/hooks/generic" => generic_signed,
        _ => path.starts_with("/hooks/"),
    }
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
    let token = state.settings.secrets.api_token.as_ref();
    let path = request.uri().path();
    let public = is_public(path, state.generic_key.is_some());
    // With no token, only this machine may use the server: the pages and
    // sign-in too (in open mode a name signs in), not only the API. The
    // signed hooks prove their sender themselves; a probe reads nothing.
    let proves_itself = public && path != "/signin";
    if token.is_none() && !proves_itself {
        if let Some(why) = not_from_this_machine(request.method(), request.headers()) {
            tracing::warn!(reason = why, "refused a request to the server left open");
            if web::wants_html(request.headers()) {
                return web::message(StatusCode::FORBIDDEN, None, "Not from this machine", why);
            }
            return (
                StatusCode::FORBIDDEN,
                Json(serde_json::json!({ "error": why })),
            )
                .into_response();
        }
    }
    if public {
        return next.run(request).await;
    }
    let given = bearer(request.headers());
    let ip = state
        .guesses
        .client(request.extensions(), request.headers());
    // An address that sent too many wrong tokens waits, right or wrong,
    // before its token is compared.
    if given.is_some() {
        if let Err(wait) = state.guesses.check(ip) {
            return too_many_guesses(wait);
        }
    }
    // A valid bearer token needs no session (and no database read).
    if token.zip(given).is_some_and(|(t, g)| t.matches(g)) {
        return next.run(as_api(request)).await;
    }
    if token.is_some() && given.is_some() {
        state.guesses.wrong(ip);
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
        // Only the pages' form routes check a form's CSRF token; a cookie
        // alone must not reach the API's writes (they want the token).
        let safe = matches!(*request.method(), Method::GET | Method::HEAD);
        let page_form = web::is_form(&request) && web::takes_forms(request.uri().path());
        if !(safe || page_form) {
            return web::forbidden(Some(&viewer));
        }
        request.extensions_mut().insert(viewer);
        return next.run(request).await;
    }
    // Nothing set at all (loopback only): scripts on this machine pass,
    // browsers still sign in, since their forms need a session's CSRF
    // token. With people's tokens set, a script without a token would walk
    // past the sign-in they protect (and name anyone as `who`).
    let open = token.is_none() && state.settings.people.is_empty();
    if open && !web::wants_html(request.headers()) && !web::is_form(&request) {
        return next.run(as_api(request)).await;
    }
    if web::is_form(&request) {
        // A form sent to the API of a server left open (curl's `-d` sends
        // one) is refused all the same, since another site's page can
        // send forms; but it is told what to send instead of that its
        // form expired. With a token set, the 401 below names the token.
        let api = !web::takes_forms(request.uri().path());
        if api && token.is_none() {
            return (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Json(serde_json::json!({ "error": "this endpoint takes JSON, not a form: send `Content-Type: application/json` (curl's -d sends a form type unless you add -H 'content-type: application/json')" })),
            )
                .into_response();
        }
        if !api {
            return web::forbidden(None);
        }
    }
    if web::wants_html(request.headers()) && *request.method() == Method::GET {
        let target = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        return web::to_signin(&target);
    }
    let reason = if token.is_none() {
        "people sign in with their own tokens here, so scripts need one too: set HANDOFF_API_TOKEN and send it as `Authorization: Bearer <token>`"
    } else if given.is_some() {
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

/// The answer to an address that sent too many wrong tokens.
fn too_many_guesses(wait: std::time::Duration) -> Response {
    let secs = super::guesses::retry_after_secs(wait);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, secs.to_string())],
        Json(serde_json::json!({
            "error": format!("too many wrong tokens from this address: wait {secs} s, then send the value of HANDOFF_API_TOKEN")
        })),
    )
        .into_response()
}

/// Why a request may not use the server left open for this machine, if
/// it may not. The server listens on loopback then, but a browser on this
/// machine reaches loopback for any web page. A page whose name was
/// re-pointed at 127.0.0.1 (DNS rebinding: its `Host` is that name) must
/// not read anything; a page of another site (`Origin`, `Sec-Fetch-Site`)
/// must not write (its reads it cannot see, and a link from elsewhere to a
/// handoff page must still open). Scripts send a loopback `Host` and
/// neither of the others.
fn not_from_this_machine(method: &Method, headers: &HeaderMap) -> Option<&'static str> {
    const OTHER_HOST: &str = "this request is addressed to another host name than 127.0.0.1 or localhost: set HANDOFF_API_TOKEN and send it as `Authorization: Bearer <token>`";
    const OTHER_SITE: &str = "a web page of another site cannot send this: set HANDOFF_API_TOKEN and send it as `Authorization: Bearer <token>`";
    let text = |name| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    if text(header::HOST).is_some_and(|host| !is_loopback_authority(host)) {
        return Some(OTHER_HOST);
    }
    if matches!(*method, Method::GET | Method::HEAD) {
        return None;
    }
    let foreign_origin = text(header::ORIGIN).is_some_and(|origin| {
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        !authority.is_some_and(is_loopback_authority)
    });
    let other_site = text(HeaderName::from_static("sec-fetch-site"))
        .is_some_and(|site| !matches!(site, "same-origin" | "none"));
    (foreign_origin || other_site).then_some(OTHER_SITE)
}

/// True for `localhost`, a loopback IP address (`127.x.y.z`, `[::1]`),
/// with or without a port.
fn is_loopback_authority(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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
    fn only_liveness_and_signed_hooks_are_public() {
        assert!(is_public("/healthz", false));
        assert!(is_public("/hooks/hubspot", false));
        assert!(is_public("/hooks/generic", true));
        assert!(!is_public("/hooks/generic", false), "unsigned: the token");
        assert!(!is_public("/readyz", true));
        assert!(!is_public("/workflows", true));
        assert!(!is_public("/hooksx", true));
    }

    fn with(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_open_server_answers_only_this_machine() {
        let (get, post) = (&Method::GET, &Method::POST);
        let loopback = ("host", "127.0.0.1:8080");
        for (method, ok) in [
            (get, with(&[loopback])),
            (get, with(&[("host", "localhost:8080")])),
            (get, with(&[("host", "LOCALHOST")])),
            (get, with(&[("host", "[::1]:8080")])),
            (get, with(&[("host", "127.0.0.2")])),
            (post, with(&[])),
            (post, with(&[loopback, ("origin", "http://127.0.0.1:8080")])),
            (post, with(&[loopback, ("sec-fetch-site", "same-origin")])),
            (post, with(&[loopback, ("sec-fetch-site", "none")])),
            // A link from another site opens a page: reading, not writing.
            (get, with(&[loopback, ("sec-fetch-site", "cross-site")])),
            (get, with(&[loopback, ("origin", "https://evil.example")])),
        ] {
            assert_eq!(not_from_this_machine(method, &ok), None, "{method} {ok:?}");
        }
        for (method, refused) in [
            (get, with(&[("host", "attacker.example:8080")])),
            (get, with(&[("host", "127.0.0.1.attacker.example")])),
            (post, with(&[("host", "[::2]:8080")])),
            (post, with(&[loopback, ("origin", "https://evil.example")])),
            (post, with(&[loopback, ("origin", "null")])),
            (post, with(&[loopback, ("sec-fetch-site", "cross-site")])),
            (post, with(&[loopback, ("sec-fetch-site", "same-site")])),
        ] {
            let why = not_from_this_machine(method, &refused);
            assert!(why.is_some(), "{method} {refused:?}");
        }
    }
}
