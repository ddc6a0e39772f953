//! Signed-in people: a session per sign-in, kept in the store (so a
//! restart, or another replica on the same database, keeps people signed
//! in), named by a random id in an `HttpOnly`, `SameSite=Lax` cookie
//! (`Secure` when the public URL is https), with a CSRF token of its own
//! that every form carries back (the synchronizer token pattern).
//!
//! The store keeps a session by the SHA-256 of its id, so the database
//! file holds no id a browser could present, and a lookup's timing says
//! nothing about the ids held; CSRF tokens are compared in constant time.
//!
//! A session is bound to the sign-in tokens the server had when it
//! started ([`credentials`]): change the API token or anyone's token, add
//! or remove a person, or set tokens where there were none, and every
//! session started before no longer counts. That is how access is taken
//! back, as a restart did when sessions lived in memory.

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

/// The fingerprint of the sign-in tokens a server has: the API token (if
/// any) and each person's name and token, in order of name. Each part is
/// length-prefixed, so no two sets share a fingerprint by concatenation;
/// the hash is over every token at once, so the stored fingerprint does
/// not let anyone test guesses of one weak token without all the others.
pub fn credentials(api_token: Option<&str>, people: &[(&str, &str)]) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut part = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    part(b"handoff web session credentials v1");
    match api_token {
        Some(t) => {
            part(b"api");
            part(t.as_bytes());
        }
        None => part(b"no api token"),
    }
    let mut people = people.to_vec();
    people.sort_unstable();
    for (name, token) in people {
        part(b"person");
        part(name.as_bytes());
        part(token.as_bytes());
    }
    h.finalize().into()
}

/// Starts a session for `who`, bound to `credentials`, and keeps it; its
/// id (the cookie's value).
pub async fn start(
    store: &Arc<dyn Store>,
    who: &str,
    credentials: [u8; 32],
    now: Timestamp,
) -> Result<String, StartError> {
    let id = random_token()?;
    let row = SessionRow {
        key: key(&id),
        who: who.to_string(),
        csrf: random_token()?,
        credentials,
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
/// without a cookie (the store is not asked), or with one that names no
/// live session or one started under other `credentials`.
pub async fn viewer(
    store: &Arc<dyn Store>,
    headers: &HeaderMap,
    credentials: [u8; 32],
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
    Ok(found
        .filter(|s| bool::from(s.credentials.ct_eq(&credentials)))
        .map(|s| Viewer {
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
        let creds = credentials(Some("t0k"), &[]);
        let id = start(&store, "ana@example.com", creds, at(0))
            .await
            .unwrap();
        let headers = with_cookie(&format!("a=b; {COOKIE}={id}; c=d"));
        let seen = |h: HeaderMap, t: Timestamp, c: [u8; 32]| {
            let store = Arc::clone(&store);
            async move { viewer(&store, &h, c, t).await.unwrap() }
        };
        let v = seen(headers.clone(), at(1), creds)
            .await
            .expect("signed in");
        assert_eq!(v.who, "ana@example.com");
        let csrf = v.csrf.clone().unwrap();
        assert!(v.csrf_ok(&csrf));
        assert!(!v.csrf_ok(&csrf[1..]));
        assert!(!v.csrf_ok(""));
        // Another id, no cookie, the same id past its lifetime, or under
        // other tokens, is nobody.
        let other = with_cookie(&format!("{COOKIE}=x{id}"));
        assert_eq!(seen(other, at(1), creds).await, None);
        assert_eq!(seen(HeaderMap::new(), at(1), creds).await, None);
        assert_eq!(seen(headers.clone(), at(13), creds).await, None);
        let rotated = credentials(Some("t0k2"), &[]);
        assert_eq!(seen(headers.clone(), at(1), rotated).await, None);

        // Ended: nobody, while another person's session goes on.
        let bo = start(&store, "bo@example.com", creds, at(2)).await.unwrap();
        let bo_headers = with_cookie(&format!("{COOKIE}={bo}"));
        end(&store, &headers).await.unwrap();
        assert_eq!(seen(headers.clone(), at(3), creds).await, None);
        let v = seen(bo_headers.clone(), at(3), creds).await;
        assert_eq!(v.map(|v| v.who).as_deref(), Some("bo@example.com"));

        // A sign-in drops the sessions already over: Bo's (over at hour
        // 14) is gone once Cy signs in at hour 15, even asked about hour 3.
        start(&store, "cy@example.com", creds, at(15))
            .await
            .unwrap();
        assert_eq!(seen(bo_headers, at(3), creds).await, None);
    }

    #[test]
    fn credentials_change_with_any_token_or_person() {
        let base = credentials(Some("api"), &[("ana", "a1"), ("bo", "b1")]);
        // The order people are listed in does not matter...
        assert_eq!(
            base,
            credentials(Some("api"), &[("bo", "b1"), ("ana", "a1")])
        );
        // ...anything else does.
        for other in [
            credentials(None, &[("ana", "a1"), ("bo", "b1")]),
            credentials(Some("api2"), &[("ana", "a1"), ("bo", "b1")]),
            credentials(Some("api"), &[("ana", "a2"), ("bo", "b1")]),
            credentials(Some("api"), &[("ana", "a1")]),
            credentials(Some("api"), &[("ana", "a1"), ("bo", "b1"), ("cy", "c1")]),
            credentials(Some("api"), &[("an", "aa1"), ("bo", "b1")]),
            credentials(None, &[]),
        ] {
            assert_ne!(base, other);
        }
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
