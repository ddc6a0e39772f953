//! Signed-in people: a session per sign-in, held in memory, named by a
//! random id in an `HttpOnly`, `SameSite=Lax` cookie (`Secure` when the
//! public URL is https), with a CSRF token of its own that every form
//! carries back (the synchronizer token pattern).
//!
//! Sessions are kept by the SHA-256 of their id, so a lookup's timing says
//! nothing about the ids held, and CSRF tokens are compared in constant
//! time. A restart signs everyone out: the store keeps what people did,
//! not who is signed in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{header, HeaderMap};
use base64::Engine as _;
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "handoff_session";
/// The cookie that ties the sign-in form to the browser that loaded it
/// (so another site cannot sign a browser in as someone else).
pub const SIGNIN_COOKIE: &str = "handoff_signin";
/// How long a session lasts.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// The most sessions held at once; past it the oldest go first.
const MAX_SESSIONS: usize = 10_000;

/// Who is looking at a page or sending a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// The name recorded with everything they do.
    pub who: String,
    /// The session's CSRF token; `None` for a bearer token (no forms).
    pub csrf: Option<String>,
}

impl Viewer {
    /// True when `given` is this session's CSRF token (constant time).
    pub fn csrf_ok(&self, given: &str) -> bool {
        match &self.csrf {
            Some(want) => bool::from(want.as_bytes().ct_eq(given.as_bytes())),
            None => false,
        }
    }
}

#[derive(Debug, Clone)]
struct Session {
    who: String,
    csrf: String,
    expires: Timestamp,
}

/// The sessions of one server.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

/// A random token: 32 bytes from the operating system, base64url.
pub fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Starts a session for `who`; its id (the cookie's value).
    pub fn start(&self, who: &str, now: Timestamp) -> Result<String, getrandom::Error> {
        let id = random_token()?;
        let csrf = random_token()?;
        let expires = now
            .checked_add(jiff::SignedDuration::try_from(LIFETIME).unwrap_or_default())
            .unwrap_or(now);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(
            key(&id),
            Session {
                who: who.to_string(),
                csrf,
                expires,
            },
        );
        Ok(id)
    }

    /// The person of the session named in `headers`' cookie, if it is live.
    pub fn viewer(&self, headers: &HeaderMap, now: Timestamp) -> Option<Viewer> {
        let id = cookie(headers, COOKIE)?;
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let s = map.get(&key(id)).filter(|s| s.expires > now)?;
        Some(Viewer {
            who: s.who.clone(),
            csrf: Some(s.csrf.clone()),
        })
    }

    /// Ends the session named in `headers`' cookie.
    pub fn end(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, COOKIE) {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            map.remove(&key(id));
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax` (a link from the
/// kickoff task in the CRM still arrives signed in; a form posted from
/// another site does not carry it), `Secure` on https.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with_cookie(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn a_session_is_found_by_its_cookie_until_it_expires_or_ends() {
        let sessions = Sessions::default();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let id = sessions.start("ana@example.com", now).unwrap();
        let headers = with_cookie(&format!("a=b; {COOKIE}={id}; c=d"));
        let v = sessions.viewer(&headers, now).expect("signed in");
        assert_eq!(v.who, "ana@example.com");
        let csrf = v.csrf.clone().unwrap();
        assert!(v.csrf_ok(&csrf));
        assert!(!v.csrf_ok(&csrf[1..]));
        assert!(!v.csrf_ok(""));
        // Another id, or the same one past its lifetime, is nobody.
        assert_eq!(
            sessions.viewer(&with_cookie(&format!("{COOKIE}=x{id}")), now),
            None
        );
        let later = now
            .checked_add(jiff::SignedDuration::from_hours(13))
            .unwrap();
        assert_eq!(sessions.viewer(&headers, later), None);
        sessions.end(&headers);
        assert_eq!(sessions.viewer(&headers, now), None);
    }

    #[test]
    fn a_bearer_viewer_passes_no_csrf_check() {
        let v = Viewer {
            who: "api".into(),
            csrf: None,
        };
        assert!(!v.csrf_ok(""));
    }

    #[test]
    fn cookies_are_http_only_and_same_site() {
        let c = set_cookie(COOKIE, "v", LIFETIME, true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.ends_with("Secure"));
        assert!(!set_cookie(COOKIE, "v", LIFETIME, false).contains("Secure"));
    }
}
