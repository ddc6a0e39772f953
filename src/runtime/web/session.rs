//! Signed-in people: a session per sign-in, kept in the store (so a
//! restart, or another replica on the same database, keeps people signed
//! in), named by a random id in an `HttpOnly`, `SameSite=Lax` cookie
//! (`Secure` when the public URL is https), with a CSRF token of its own
//! that every form carries back (the synchronizer token pattern).
//!
//! The store keeps a session by the SHA-256 of its id, so the database
//! file holds no id a browser could present, and a lookup's timing says
//! nothing about the ids held; CSRF tokens are compared in constant time.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap};
use base64::Engine as _;
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::runtime::store::{SessionRow, Store, StoreError, StoreExt};

/// The session cookie's name.
pub const COOKIE: &str = "handoff_session";
/// The cookie that ties the sign-in form to the browser that loaded it
/// (so another site cannot sign a browser in as someone else).
pub const SIGNIN_COOKIE: &str = "handoff_signin";
/// How long a session lasts.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// The most sessions kept at once; past it the ones nearest their end go.
pub const MAX_SESSIONS: usize = 10_000;

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

/// Why a session could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the operating system gave no random numbers: {0}")]
    Random(getrandom::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

// By hand: getrandom's error is not a `std::error::Error` without its
// `std` feature, so it cannot be a source.
impl From<getrandom::Error> for StartError {
    fn from(e: getrandom::Error) -> Self {
        StartError::Random(e)
    }
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

/// Starts a session for `who` and keeps it; its id (the cookie's value).
pub async fn start(
    store: &Arc<dyn Store>,
    who: &str,
    now: Timestamp,
) -> Result<String, StartError> {
    let id = random_token()?;
    let row = SessionRow {
        key: key(&id),
        who: who.to_string(),
        csrf: random_token()?,
        started_at: now,
        expires_at: now
            .checked_add(jiff::SignedDuration::try_from(LIFETIME).unwrap_or_default())
            .unwrap_or(now),
    };
    store
        .write(move |tx| tx.start_session(&row, MAX_SESSIONS))
        .await?;
    Ok(id)
}

/// The person of the live session named in `headers`' cookie; `None`
/// without a cookie (the store is not asked) or with one that names no
/// live session.
pub async fn viewer(
    store: &Arc<dyn Store>,
    headers: &HeaderMap,
    now: Timestamp,
) -> Result<Option<Viewer>, StoreError> {
    let Some(id) = cookie(headers, COOKIE) else {
        return Ok(None);
    };
    let (key, store) = (key(id), Arc::clone(store));
    let found = tokio::task::spawn_blocking(move || store.session(&key, now))
        .await
        .map_err(|e| StoreError::Backend {
            doing: "reading a web session",
            reason: e.to_string(),
        })??;
    Ok(found.map(|s| Viewer {
        who: s.who,
        csrf: Some(s.csrf),
    }))
}

/// Ends the session named in `headers`' cookie, if any.
pub async fn end(store: &Arc<dyn Store>, headers: &HeaderMap) -> Result<(), StoreError> {
    if let Some(id) = cookie(headers, COOKIE) {
        let key = key(id);
        store.write(move |tx| tx.end_session(&key)).await?;
    }
    Ok(())
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

    fn at(hours: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + hours * 3600).unwrap()
    }

    #[tokio::test]
    async fn a_session_is_found_by_its_cookie_until_it_expires_or_ends() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            crate::runtime::store::SqliteStore::open(
                dir.path().join("handoff.db"),
                Default::default(),
            )
            .unwrap(),
        );
        let id = start(&store, "ana@example.com", at(0)).await.unwrap();
        let headers = with_cookie(&format!("a=b; {COOKIE}={id}; c=d"));
        let v = viewer(&store, &headers, at(1))
            .await
            .unwrap()
            .expect("signed in");
        assert_eq!(v.who, "ana@example.com");
        let csrf = v.csrf.clone().unwrap();
        assert!(v.csrf_ok(&csrf));
        assert!(!v.csrf_ok(&csrf[1..]));
        assert!(!v.csrf_ok(""));
        // Another id, no cookie, or the same id past its lifetime, is nobody.
        let other = with_cookie(&format!("{COOKIE}=x{id}"));
        assert_eq!(viewer(&store, &other, at(1)).await.unwrap(), None);
        assert_eq!(
            viewer(&store, &HeaderMap::new(), at(1)).await.unwrap(),
            None
        );
        assert_eq!(viewer(&store, &headers, at(13)).await.unwrap(), None);
        // Someone else's sign-in, later, drops the expired session; until
        // then and after, each session sees only its own person.
        let bo = start(&store, "bo@example.com", at(2)).await.unwrap();
        let bo_headers = with_cookie(&format!("{COOKIE}={bo}"));
        let v = viewer(&store, &bo_headers, at(2)).await.unwrap().unwrap();
        assert_eq!(v.who, "bo@example.com");
        end(&store, &headers).await.unwrap();
        assert_eq!(viewer(&store, &headers, at(1)).await.unwrap(), None);
        assert!(viewer(&store, &bo_headers, at(3)).await.unwrap().is_some());
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
