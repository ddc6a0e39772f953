//! The web pages people use, server-rendered with maud (every value is
//! HTML-escaped unless marked otherwise; nothing here marks a CRM value),
//! working without JavaScript: one file per page, [`layout`] around them.
//!
//! - `/` the dashboard, `/handoffs` the list with filters, and
//!   `/handoffs/{id}` a handoff (the same URLs answer scripts with JSON:
//!   [`wants_html`] picks the page by the `Accept` header);
//! - `/drafts` email drafts to edit and approve, `/dead-letters` deliveries
//!   out of attempts with a re-drive button;
//! - `/signin` with the API token or a person's own token.
//!
//! Every form is a POST carrying the session's CSRF token; a form without
//! a session or with a wrong token gets 403 and changes nothing. Every
//! write names the signed-in person.

pub mod chart;
pub mod dashboard;
pub mod dead_letters;
pub mod drafts;
pub mod handoff;
pub mod handoffs;
pub mod layout;
pub mod session;
pub mod signin;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};

use crate::runtime::state::AppState;
use crate::runtime::store::{Store, StoreError};
pub use session::Viewer;

/// How the pages are served (their sessions are in the store).
#[derive(Debug, Default)]
pub struct WebState {
    /// Cookies get `Secure` (the public URL is https).
    pub secure_cookies: bool,
    /// The fingerprint of the sign-in tokens (see [`session::credentials`]):
    /// sessions started under other tokens do not count.
    pub credentials: [u8; 32],
}

impl WebState {
    /// The pages' state for a server with `settings`.
    pub fn new(settings: &crate::runtime::config::Settings) -> WebState {
        let people: Vec<(&str, &str)> = settings
            .people
            .iter()
            .map(|p| (p.name.as_str(), p.token.expose()))
            .collect();
        WebState {
            secure_cookies: settings.public_url().starts_with("https://"),
            credentials: session::credentials(
                settings.secrets.api_token.as_ref().map(|t| t.expose()),
                &people,
            ),
        }
    }
}

/// The routes that take the pages' forms, each checking the form's CSRF
/// token: a signed-in browser may POST to these and nowhere else (the
/// API's own writes want the bearer token). Shared with [`router`] so the
/// two cannot drift apart.
const SIGNIN: &str = "/signin";
const SIGNOUT: &str = "/signout";
const REVIEW: &str = "/handoffs/{id}/review";
const ANSWERS: &str = "/handoffs/{id}/answers";
const DRAFT: &str = "/drafts/{id}";
const DRAFT_APPROVE: &str = "/drafts/{id}/approve";
const REDRIVE: &str = "/dead-letters/{id}/redrive";
const FORM_ROUTES: [&str; 7] = [
    SIGNIN,
    SIGNOUT,
    REVIEW,
    ANSWERS,
    DRAFT,
    DRAFT_APPROVE,
    REDRIVE,
];

/// The pages' routes (the handoff pages themselves hang off the API's
/// `/handoffs` routes, see [`wants_html`]).
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(dashboard::page))
        .route(SIGNIN, get(signin::form).post(signin::submit))
        .route(SIGNOUT, post(signin::signout))
        .route(REVIEW, post(handoff::review))
        .route(ANSWERS, post(handoff::answer))
        .route("/drafts", get(drafts::page))
        .route(DRAFT, post(drafts::edit))
        .route(DRAFT_APPROVE, post(drafts::approve))
        .route("/dead-letters", get(dead_letters::page))
        .route(REDRIVE, post(dead_letters::redrive))
}

/// True when `path` is one of the routes that take a page's form.
pub fn takes_forms(path: &str) -> bool {
    FORM_ROUTES.iter().any(|route| matches_route(route, path))
}

/// `path` against a route whose `{…}` segments match any one non-empty
/// segment.
fn matches_route(route: &str, path: &str) -> bool {
    let (mut r, mut p) = (route.split('/'), path.split('/'));
    loop {
        match (r.next(), p.next()) {
            (None, None) => return true,
            (Some(want), Some(got)) => {
                let any = want.starts_with('{') && want.ends_with('}');
                if !(want == got || (any && !got.is_empty())) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// True when the client asked for a page: its `Accept` ranks `text/html`
/// above JSON (a browser's `text/html,…,*/*;q=0.8`); scripts, curl and the
/// API's clients get JSON, and so does a client that names both alike or
/// turns HTML down (`application/json, text/html;q=0`).
pub fn wants_html(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let (mut html, mut json, mut any_app, mut any) = (None, None, None, None);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .filter(|q| (0.0..=1.0).contains(q))
            .unwrap_or(1.0);
        let slot = match media.as_str() {
            "text/html" => &mut html,
            "application/json" => &mut json,
            "application/*" => &mut any_app,
            "*/*" | "*" => &mut any,
            _ => continue,
        };
        *slot = Some(slot.map_or(q, |old: f32| old.max(q)));
    }
    let html = html.unwrap_or(0.0);
    let json = json.or(any_app).or(any).unwrap_or(0.0);
    html > 0.0 && html > json
}

/// True for a form post (`application/x-www-form-urlencoded`).
pub fn is_form(request: &Request) -> bool {
    request.method() == Method::POST
        && request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// Where a browser without a session goes: the sign-in page, then back.
pub fn to_signin(path_and_query: &str) -> Response {
    let next = encode(path_and_query);
    Redirect::to(&format!("/signin?next={next}")).into_response()
}

/// Percent-encodes `s` for a query string value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A page answer with `status`.
pub fn html_page(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// A short page saying what went wrong and what to do.
pub fn message(status: StatusCode, viewer: Option<&Viewer>, title: &str, text: &str) -> Response {
    html_page(
        status,
        layout::page(
            title,
            viewer,
            html! { h1 { (title) } p.error role="alert" { (text) } },
        ),
    )
}

/// The answer to a form the store could not save: a page that names no
/// file and quotes no SQLite text (as the API's answers), the cause going
/// to the log.
pub fn not_saved(viewer: &Viewer, e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "a form could not be saved");
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        Some(viewer),
        "Not saved",
        "The database cannot save this right now; nothing was changed. Try again in a moment (the server's log says why).",
    )
}

/// The answer to a form without a session or with a wrong CSRF token.
pub fn forbidden(viewer: Option<&Viewer>) -> Response {
    message(
        StatusCode::FORBIDDEN,
        viewer,
        "This form has expired",
        "Nothing was changed. Reload the page (sign in again if asked) and send the form again.",
    )
}

/// The signed-in person behind a form, if its CSRF token is theirs; else
/// the 403 page to answer with.
// The error is the response itself, made once on a path that ends the
// request: boxing it would only add an allocation.
#[allow(clippy::result_large_err)]
pub fn check_form(viewer: Option<&Viewer>, csrf: &str) -> Result<Viewer, Response> {
    match viewer {
        Some(v) if v.csrf_ok(csrf) => Ok(v.clone()),
        v => Err(forbidden(v)),
    }
}

/// Runs a blocking store read on the blocking pool.
pub async fn read<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
        Ok(Ok(v)) => Ok(v),
        // A page link edited by hand, or kept from another list: trying
        // again cannot help, starting the list again does.
        Ok(Err(StoreError::BadCursor(_))) => Err(message(
            StatusCode::BAD_REQUEST,
            None,
            "This page link is not valid",
            "The link to a later page was changed or belongs to another list. Open the list again from its first page.",
        )),
        Ok(Err(e)) => {
            // The cause (a file name, SQLite's words) is for the log.
            tracing::error!(error = %e, "a page's read failed");
            Err(message(
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "The database could not be read",
                "Try again in a moment; the server's log says why.",
            ))
        }
        Err(_) => Err(message(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            "The read was interrupted",
            "Reload the page.",
        )),
    }
}

/// After a form: back to `to` (303, so a reload does not send it again).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

#[cfg(test)]
mod tests {
    use super::takes_forms;

    #[test]
    fn forms_go_only_to_the_pages_routes() {
        for path in [
            "/signin",
            "/signout",
            "/handoffs/h-1/review",
            "/handoffs/h-1/answers",
            "/drafts/a-1",
            "/drafts/a-1/approve",
            "/dead-letters/a-1/redrive",
        ] {
            assert!(takes_forms(path), "{path}");
        }
        for path in [
            "/outbox/a-1/retry",
            "/handoffs/h-1/approve",
            "/handoffs/h-1/reject",
            "/handoffs/h-1/escalations",
            "/hooks/generic",
            "/drafts",
            "/drafts//approve",
            "/handoffs/h-1/review/x",
            "/",
        ] {
            assert!(!takes_forms(path), "{path}");
        }
    }
}

#[cfg(test)]
mod accept_tests {
    use super::wants_html;
    use axum::http::{header, HeaderMap};

    fn html(accept: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, accept.parse().unwrap());
        wants_html(&h)
    }

    #[test]
    fn a_page_only_when_html_ranks_above_json() {
        // Firefox, Chrome, Safari.
        assert!(html(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(html("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"));
        assert!(html("text/html"));
        // Scripts and clients that name JSON, or turn HTML down.
        assert!(!html("application/json"));
        assert!(!html("*/*"));
        assert!(!html("application/json, text/html;q=0"));
        assert!(!html("application/json, text/html;q=0.5"));
        assert!(!html("text/html, application/json"));
        assert!(!html("text/html;q=0.2, application/*"));
        assert!(!html("text/html;q=0"));
        assert!(!html("text/html;q=nonsense, */*"));
        assert!(!wants_html(&HeaderMap::new()));
    }
}
