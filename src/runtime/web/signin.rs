//! `/signin`: the API token (with the name to record) or a person's own
//! token (the name comes with it). With no token configured at all the
//! server is open on loopback, and the name alone signs in.
//!
//! The form carries a random value that must match a cookie set with it,
//! so another site cannot post the form to sign a browser in as someone
//! else. Tokens are compared in constant time and never logged; wrong ones
//! count against their address (`http::guesses`), which then waits.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use maud::html;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::session::{self, cookie, random_token, set_cookie, Viewer, SIGNIN_COOKIE};
use super::{layout, see_other};
use crate::runtime::state::AppState;

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only a path on this server (never `//host` or a scheme) is followed.
/// Browsers drop tabs and newlines from a URL and read `\\` as `/`, so
/// `/\t/evil.example` would become `//evil.example`: any whitespace or
/// control character, or a backslash, makes it `/`.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n
                    .chars()
                    .any(|c| c == '\\' || c.is_whitespace() || c.is_control()) =>
        {
            n
        }
        _ => "/",
    }
}

fn open_mode(state: &AppState) -> bool {
    state.settings.secrets.api_token.is_none() && state.settings.people.is_empty()
}

/// `GET /signin`.
pub async fn form(State(state): State<Arc<AppState>>, Query(q): Query<NextQuery>) -> Response {
    render(&state, safe_next(q.next.as_deref()), None, StatusCode::OK)
}

fn render(state: &AppState, next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let Ok(nonce) = random_token() else {
        return super::message(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "Sign-in is unavailable",
            "The operating system gave no random numbers; try again in a moment.",
        );
    };
    let open = open_mode(state);
    let body = html! {
        h1 { "Sign in" }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form.stack method="post" action="/signin" {
            input type="hidden" name="nonce" value=(nonce);
            input type="hidden" name="next" value=(next);
            label for="who" { "Your name or email" }
            input #who type="text" name="who" autocomplete="username";
            @if open {
                p.muted { "This server has no tokens set (it listens on this machine only): your name is enough." }
            } @else {
                label for="token" { "Token" }
                input #token type="password" name="token" required autocomplete="current-password";
                p.muted { "Your own token, or the API token (then say who you are above)." }
            }
            p { button type="submit" { "Sign in" } }
        }
    };
    let cookie = set_cookie(
        SIGNIN_COOKIE,
        &nonce,
        Duration::from_secs(3600),
        state.web.secure_cookies,
    );
    (
        status,
        [(header::SET_COOKIE, cookie)],
        axum::response::Html(layout::page("Sign in", None, body).into_string()),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct SigninForm {
    #[serde(default)]
    who: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    nonce: String,
    next: Option<String>,
}

/// `POST /signin`.
pub async fn submit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(f): Form<SigninForm>,
) -> Response {
    let next = safe_next(f.next.as_deref()).to_string();
    let nonce_ok = cookie(&headers, SIGNIN_COOKIE)
        .is_some_and(|c| !f.nonce.is_empty() && bool::from(c.as_bytes().ct_eq(f.nonce.as_bytes())));
    if !nonce_ok {
        return render(
            &state,
            &next,
            Some("This sign-in form expired. Send it again from this page."),
            StatusCode::FORBIDDEN,
        );
    }
    let ip = state.guesses.client(&extensions, &headers);
    if !open_mode(&state) {
        if let Err(wait) = state.guesses.check(ip) {
            let secs = crate::runtime::http::guesses::retry_after_secs(wait);
            let mut r = render(
                &state,
                &next,
                Some(&format!("Too many wrong tokens were sent from your address. Wait {secs} seconds, then try again.")),
                StatusCode::TOO_MANY_REQUESTS,
            );
            if let Ok(v) = secs.to_string().parse() {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
    }
    let who = f.who.trim();
    let settings = &state.settings;
    let person = settings
        .people
        .iter()
        .find(|p| p.token.matches(f.token.as_bytes()));
    let name = match person {
        Some(p) => p.name.clone(),
        None => {
            let api = settings
                .secrets
                .api_token
                .as_ref()
                .is_some_and(|t| t.matches(f.token.as_bytes()));
            if !api && !open_mode(&state) {
                state.guesses.wrong(ip);
                return render(
                    &state,
                    &next,
                    Some("That token is not the API token nor anyone's own token. Check it and try again."),
                    StatusCode::UNAUTHORIZED,
                );
            }
            if who.is_empty() {
                return render(
                    &state,
                    &next,
                    Some("Say who you are: your name or email is recorded with what you do."),
                    StatusCode::BAD_REQUEST,
                );
            }
            // The rule a verdict's `who` is held to: a name the session
            // records with every review must be one it can record.
            if who.chars().count() > crate::runtime::http::handoffs::MAX_WHO
                || who.chars().any(char::is_control)
            {
                return render(
                    &state,
                    &next,
                    Some("Give your name or email on one line, at most 200 characters."),
                    StatusCode::BAD_REQUEST,
                );
            }
            who.to_string()
        }
    };
    let now = jiff::Timestamp::now();
    let id = match session::start(&state.store, &name, state.web.credentials, now).await {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a web session");
            let why = match e {
                session::StartError::Random(_) => {
                    "The operating system gave no random numbers; try again in a moment."
                }
                session::StartError::Store(_) => {
                    "The session could not be saved in the database; try again in a moment."
                }
            };
            return super::message(
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "Sign-in is unavailable",
                why,
            );
        }
    };
    let secure = state.web.secure_cookies;
    let mut r = see_other(&next);
    let h = r.headers_mut();
    for c in [
        set_cookie(session::COOKIE, &id, session::LIFETIME, secure),
        set_cookie(SIGNIN_COOKIE, "", Duration::ZERO, secure),
    ] {
        if let Ok(v) = c.parse() {
            h.append(header::SET_COOKIE, v);
        }
    }
    r
}

#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /signout`.
pub async fn signout(
    State(state): State<Arc<AppState>>,
    viewer: Option<Extension<Viewer>>,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if let Err(r) = super::check_form(viewer.as_deref(), &f.csrf) {
        return r;
    }
    if let Err(e) = session::end(&state.store, &headers).await {
        tracing::error!(error = %e, "cannot end a web session");
        return super::message(
            StatusCode::SERVICE_UNAVAILABLE,
            viewer.as_deref(),
            "Sign-out did not go through",
            "The database could not end the session; you are still signed in. Try again in a moment.",
        );
    }
    let mut r = see_other("/signin");
    if let Ok(v) = set_cookie(
        session::COOKIE,
        "",
        Duration::ZERO,
        state.web.secure_cookies,
    )
    .parse()
    {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_a_path_on_this_server_is_followed_after_sign_in() {
        for ok in ["/", "/handoffs", "/handoffs/h-1?x=1#y", "/drafts"] {
            assert_eq!(safe_next(Some(ok)), ok);
        }
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example/phish",
            "/\n/evil.example",
            "/\r/evil.example",
            "/ /evil.example",
            "/\u{0}x",
            "https://evil.example",
            "evil.example",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
