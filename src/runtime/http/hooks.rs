//! `POST /hooks/generic`: the generic event of `grammar/README.md`, one or
//! a JSON array applied in order. Verify → decode → the durable ingest path
//! → answer only after the batch holding it has committed.
//!
//! Signatures follow Standard Webhooks: `webhook-id`, `webhook-timestamp`
//! and `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`
//! (several, space-separated, for key rotation), within 5 minutes. A
//! configured `HANDOFF_GENERIC_SECRET` makes the signature required.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::json;

use crate::eval::Event;
use crate::runtime::ingest::{self, Ingested, Request};
use crate::runtime::state::AppState;
use crate::runtime::store::StoreError;

/// How far a signed timestamp may be from now.
const TOLERANCE_SECS: i64 = 5 * 60;

/// The most events one request may carry. A request is one write job, and
/// the one writer runs nothing else while it runs: a batch of tens of
/// thousands of small events (which fit the body limit) would hold up
/// every other webhook for seconds.
pub const MAX_EVENTS: usize = 1000;

/// The hooks routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/hooks/generic", post(generic))
}

async fn generic(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let source = "generic";
    let now = jiff::Timestamp::now();
    if let Some(key) = &state.generic_key {
        if let Err(why) = verify(key, &headers, &body, now) {
            state.metrics.events.inc(&[source, "unauthorized"]);
            return problem(StatusCode::UNAUTHORIZED, &why);
        }
    }
    // Malformed JSON: say where, before anything is stored. A byte-order
    // mark (some Windows tools write one) is not JSON, but is no reason to
    // refuse the body; bytes that are not UTF-8 are named as such (serde
    // would say "invalid unicode code point").
    let json = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&body);
    if let Err(e) = std::str::from_utf8(json) {
        state.metrics.events.inc(&[source, "malformed"]);
        // Counted in the body as sent, the mark included.
        let at = e.valid_up_to() + (body.len() - json.len());
        return problem(
            StatusCode::BAD_REQUEST,
            &format!(
                "the body is not UTF-8 text: byte 0x{:02X} at offset {at} is not UTF-8: send the JSON encoded as UTF-8",
                body.get(at).copied().unwrap_or(0)
            ),
        );
    }
    let batch = first_byte(json) == Some(b'[');
    let items: Vec<&serde_json::value::RawValue> = if batch {
        match serde_json::from_slice(json) {
            Ok(items) => items,
            Err(e) => return malformed(&state, source, &e),
        }
    } else {
        match serde_json::from_slice(json) {
            Ok(one) => vec![one],
            Err(e) => return malformed(&state, source, &e),
        }
    };
    if items.len() > MAX_EVENTS {
        state.metrics.events.inc(&[source, "rejected"]);
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the batch holds {} events, and a request may carry at most {MAX_EVENTS}: send them in several requests, in order",
                items.len()
            ),
        );
    }
    let active = state.workflows.lease();
    let message = message_id(&headers);
    let mut events = Vec::with_capacity(items.len());
    let mut bad = Vec::with_capacity(items.len());
    let mut names = MessageNames::default();
    for (i, raw) in items.iter().enumerate() {
        match Event::decode_lenient(&active.set, raw.get().as_bytes()) {
            Ok(mut event) => {
                // An event without its own id is named by the message that
                // carried it and by its content: a retry of the message
                // (however it is batched) dedupes by it, a later message
                // with the same content (a deal moved back to a stage it
                // had) is a new event, and another event sent under a
                // message id used before is not taken for a retry. The
                // content is the element as sent (keys sorted), not as the
                // serving workflows read it, so a reload between a message
                // and its retry does not rename its events; and the second
                // and later elements of one message with the same content
                // (A, B, A) are told apart by their count.
                if event.id.is_empty() {
                    if let Some(message) = message {
                        event.id = names.name(message, raw.get());
                    }
                }
                bad.push(BadValues::of(&event, now));
                // A batch's event keeps its own element; one event, the
                // body exactly as it came.
                let raw_body = if batch {
                    raw.get().as_bytes().to_vec()
                } else {
                    body.to_vec()
                };
                events.push(ingest::Received { event, raw_body });
            }
            Err(e) => {
                state.metrics.events.inc(&[source, "rejected"]);
                let at = if items.len() > 1 {
                    format!("event {} of the batch: ", i + 1)
                } else {
                    String::new()
                };
                return problem(StatusCode::UNPROCESSABLE_ENTITY, &format!("{at}{e}"));
            }
        }
    }
    let started = Instant::now();
    let request = Request {
        source: source.to_string(),
        received_at: now,
        events,
    };
    // Behind a CRM request for one of these records that arrived first
    // and may still be reading the CRM (see `turns`); no wait otherwise.
    let turns = state
        .turns
        .take_if_queued(
            request
                .events
                .iter()
                .map(|r| (r.event.object.as_str(), r.event.record_id.as_str())),
        )
        .await;
    let metrics = state.metrics.clone();
    let decided = move |d| metrics.decision_seconds.observe_duration(d);
    let job = ingest::ingest_observed(&state.store, active.set.clone(), request, decided);
    // Queued: the writer runs jobs in that order.
    drop(turns);
    match job.await {
        Ok(results) => {
            state
                .metrics
                .ingest_commit_seconds
                .observe_duration(started.elapsed());
            let mut body = EventsBody::default();
            for (r, bad) in results.iter().zip(&bad) {
                state.metrics.events.inc(&[source, answer_kind(r)]);
                if let Ingested::Applied { .. } = r {
                    bad.count(&state);
                }
                body.push_ingested(r);
            }
            body.finish(None)
        }
        Err(ingest::IngestError::Store(ref e))
            if e.aborted_with::<ingest::IngestError>()
                .is_some_and(|e| matches!(e, ingest::IngestError::WaitsBehindCrm { .. })) =>
        {
            // In order behind the CRM's waiting events: refused whole, and
            // the sender's retry applies it once they are decided.
            state.metrics.events.inc(&[source, "behind_crm"]);
            let why = e
                .aborted_with::<ingest::IngestError>()
                .map(ToString::to_string)
                .unwrap_or_default();
            let mut res = problem(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("{why}: nothing of the request was stored; send it again in a minute"),
            );
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("60"),
            );
            res
        }
        Err(ingest::IngestError::Store(e @ StoreError::Sync { .. })) => {
            // Committed, but the disk did not confirm it: the sender must
            // send it again, and the copy already stored (if the disk kept
            // it) makes that retry change nothing.
            tracing::error!(error = %e, "the disk did not confirm the request was stored");
            state.metrics.events.inc(&[source, "failed"]);
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the disk did not confirm the event was stored: send it again once the server is back; a copy already stored is recognised and not applied twice",
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "ingest failed; nothing of the request was stored");
            state.metrics.events.inc(&[source, "failed"]);
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the event could not be stored; nothing was applied: send it again",
            )
        }
    }
}

fn first_byte(body: &[u8]) -> Option<u8> {
    body.iter().copied().find(|b| !b.is_ascii_whitespace())
}

fn malformed(state: &AppState, source: &str, e: &serde_json::Error) -> Response {
    state.metrics.events.inc(&[source, "malformed"]);
    problem(
        StatusCode::BAD_REQUEST,
        // serde's message ends with the line and column.
        &format!("the body is not valid JSON: {e}"),
    )
}

/// The metric label of one event's fate.
/// An event's field errors and unknown values, for the metrics. Counted
/// once the event is stored: not for a duplicate (a retry of a stored
/// event), not when the request failed (the sender sends it again).
#[derive(Default)]
pub(crate) struct BadValues(Option<Box<Bad>>);

/// The object, the fields whose values did not fit, the fields with
/// values outside their list.
struct Bad {
    object: String,
    errors: Vec<String>,
    unknown: Vec<String>,
}

impl BadValues {
    /// What of `e`, received at `now`, the metrics count as bad.
    pub(crate) fn of(e: &Event, now: jiff::Timestamp) -> BadValues {
        let ahead = crate::runtime::ingest::too_far_ahead(e, now);
        if e.field_errors.is_empty() && e.unknown_values.is_empty() && !ahead {
            return BadValues(None);
        }
        let fields = |v: &[crate::eval::FieldError]| -> Vec<String> {
            v.iter().map(|f| f.field.clone()).collect()
        };
        let mut errors = fields(&e.field_errors);
        if ahead {
            // Read as undated by the durable path (`ingest`).
            errors.push("occurred_at".into());
        }
        BadValues(Some(Box::new(Bad {
            object: e.object.clone(),
            errors,
            unknown: fields(&e.unknown_values),
        })))
    }

    pub(crate) fn count(&self, state: &AppState) {
        let Some(bad) = &self.0 else { return };
        for field in &bad.errors {
            state.metrics.field_errors.inc(&[&bad.object, field]);
        }
        for field in &bad.unknown {
            state.metrics.unknown_values.inc(&[&bad.object, field]);
        }
    }
}

pub(crate) fn answer_kind(r: &Ingested) -> &'static str {
    match r {
        Ingested::Applied { .. } => "applied",
        Ingested::Duplicate { .. } => "duplicate",
    }
}

/// The answer to a hook request, `{"events": [...]}`, one entry per event:
/// `{"audit_id", "duplicate": false, "outcome"}` when applied,
/// `{"audit_id", "duplicate": true}` when seen before.
///
/// Written as text because the outcome already is JSON (the audit log's
/// copy): turning it back into a `serde_json::Value` to serialize it again
/// cost a tenth of a request's CPU under load.
#[derive(Default)]
pub(crate) struct EventsBody {
    text: String,
    /// Events set aside (CRM hooks only), each already JSON.
    rejected: Vec<String>,
}

impl EventsBody {
    fn open_entry(&mut self) {
        self.text.push_str(if self.text.is_empty() {
            "{\"events\":["
        } else {
            ","
        });
    }

    /// Adds one ingested event.
    pub(crate) fn push_ingested(&mut self, r: &Ingested) {
        use std::fmt::Write as _;
        self.open_entry();
        // Writing to a String cannot fail.
        let _ = match r {
            Ingested::Applied {
                audit_id,
                outcome_json,
                ..
            } => write!(
                self.text,
                "{{\"audit_id\":{audit_id},\"duplicate\":false,\"outcome\":{outcome_json}}}"
            ),
            Ingested::Duplicate { audit_id } => {
                write!(self.text, "{{\"audit_id\":{audit_id},\"duplicate\":true}}")
            }
        };
    }

    /// Adds an entry that is already a JSON value.
    pub(crate) fn push_value(&mut self, v: &serde_json::Value) {
        self.open_entry();
        self.text.push_str(&v.to_string());
    }

    /// Names an event that was set aside (`"rejected": [...]`): it has no
    /// entry in `events`.
    pub(crate) fn push_rejected(&mut self, v: &impl serde::Serialize) {
        // A struct of strings and numbers always serializes.
        if let Ok(text) = serde_json::to_string(v) {
            self.rejected.push(text);
        }
    }

    /// `200 OK` with the body; `skipped` adds `"skipped": n`, and events
    /// set aside add `"rejected": [...]` (absent when there are none, so
    /// the usual answer is unchanged).
    pub(crate) fn finish(mut self, skipped: Option<usize>) -> Response {
        if self.text.is_empty() {
            self.text.push_str("{\"events\":[");
        }
        self.text.push(']');
        if let Some(n) = skipped {
            self.text.push_str(&format!(",\"skipped\":{n}"));
        }
        if !self.rejected.is_empty() {
            self.text.push_str(",\"rejected\":[");
            self.text.push_str(&self.rejected.join(","));
            self.text.push(']');
        }
        self.text.push('}');
        (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.text,
        )
            .into_response()
    }
}

/// An error answer: `{"error": "..."}`.
pub fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// The ids of one message's id-less events: `<webhook-id>#<16 hex digits
/// of the SHA-256 of the element as sent, its keys in order>`, and `.2`,
/// `.3`… after it for the second and later elements of the message with
/// the same content. The same message sent again names its events the
/// same, however it is batched.
#[derive(Debug, Default)]
pub struct MessageNames {
    seen: std::collections::HashMap<String, u32>,
}

impl MessageNames {
    /// The id of the next id-less element `raw` of message `message`.
    pub fn name(&mut self, message: &str, raw: &str) -> String {
        use sha2::{Digest, Sha256};
        // An element that parsed once parses again; should it not, its
        // text as sent.
        let canonical = serde_json::from_str::<serde_json::Value>(raw)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| raw.to_string());
        let digest = Sha256::digest(canonical.as_bytes());
        let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let count = self.seen.entry(hash.clone()).or_insert(0);
        *count += 1;
        match *count {
            1 => format!("{message}#{hash}"),
            n => format!("{message}#{hash}.{n}"),
        }
    }
}

/// The Standard Webhooks `webhook-id` of the request (the same on every
/// retry of one message), when it is sent and usable as an event id.
fn message_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= MAX_MESSAGE_ID)
}

/// The longest `webhook-id` taken as an event id (Standard Webhooks ids
/// are short: `msg_` and a few dozen characters).
const MAX_MESSAGE_ID: usize = 200;

/// Checks a Standard Webhooks signature over `id.timestamp.body`.
pub fn verify(
    key: &[u8],
    headers: &HeaderMap,
    body: &[u8],
    now: jiff::Timestamp,
) -> Result<(), String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("the `{name}` header is missing: sign the request"))
    };
    let id = header("webhook-id")?;
    let timestamp = header("webhook-timestamp")?;
    let signatures = header("webhook-signature")?;
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| "`webhook-timestamp` is not Unix seconds".to_string())?;
    if now.as_second().abs_diff(sent) > TOLERANCE_SECS.unsigned_abs() {
        return Err("`webhook-timestamp` is more than 5 minutes from now: check the sender's clock, or this is a replay".into());
    }
    for candidate in signatures.split(' ') {
        let Some(("v1", sig)) = candidate.split_once(',') else {
            continue;
        };
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig) else {
            continue;
        };
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key)
            .map_err(|_| "the signing secret is unusable".to_string())?;
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        // `verify_slice` compares in constant time.
        if mac.verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err(
        "no `webhook-signature` matches: check HANDOFF_GENERIC_SECRET against the sender's secret"
            .into(),
    )
}

/// Signs `body` the Standard Webhooks way (tests and senders use it).
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The known answer from the Standard Webhooks reference libraries.
    #[test]
    fn the_standard_webhooks_example_verifies() {
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let mut h = HeaderMap::new();
        h.insert(
            "webhook-id",
            "msg_p5jXN8AQM9LWM0D4loKWxJek".parse().unwrap(),
        );
        h.insert("webhook-timestamp", "1614265330".parse().unwrap());
        h.insert(
            "webhook-signature",
            format!("v1,bm9wZQ== {sig}").parse().unwrap(),
        );
        let now = jiff::Timestamp::from_second(1614265330 + 60).unwrap();
        assert_eq!(verify(&key, &h, body, now), Ok(()));
        // Stale, or another body: refused.
        let late = jiff::Timestamp::from_second(1614265330 + 301).unwrap();
        assert!(verify(&key, &h, body, late)
            .unwrap_err()
            .contains("5 minutes"));
        assert!(verify(&key, &h, b"{}", now)
            .unwrap_err()
            .contains("no `webhook-signature`"));
        // As far from now as an i64 goes: only stale (it overflowed).
        for far in [i64::MIN, i64::MAX] {
            h.insert("webhook-timestamp", far.to_string().parse().unwrap());
            assert!(verify(&key, &h, body, now)
                .unwrap_err()
                .contains("5 minutes"));
        }
        h.remove("webhook-id");
        assert!(verify(&key, &h, body, now)
            .unwrap_err()
            .contains("`webhook-id`"));
    }
}
