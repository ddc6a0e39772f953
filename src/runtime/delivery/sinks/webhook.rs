//! The outbound webhook: every action, as JSON, signed the Standard
//! Webhooks way (`webhook-id`, `webhook-timestamp`, `webhook-signature:
//! v1,<base64 HMAC-SHA256 of id.timestamp.body>` with the decoded
//! `HANDOFF_OUTBOUND_SECRET`), so a team can route actions anywhere.
//!
//! `webhook-id` is the action's idempotency key, the same on every retry:
//! Standard Webhooks receivers dedupe on it, which makes this sink
//! exactly-once at a receiver that does.

use serde_json::json;

use super::{check, transport, BoxFuture, Delivered, Delivery, SendError, Sink};
use crate::runtime::http::hooks::sign;

/// The outbound webhook sink.
pub struct Webhook {
    client: reqwest::Client,
    url: String,
    key: Vec<u8>,
}

impl Webhook {
    /// A sink posting to `url`, signing with `key` (the decoded secret).
    pub fn new(client: reqwest::Client, url: String, key: Vec<u8>) -> Webhook {
        Webhook { client, url, key }
    }

    /// The body sent for `d`: `{type, timestamp, data}`.
    pub fn body(d: &Delivery<'_>, now: jiff::Timestamp) -> serde_json::Value {
        let action: serde_json::Value =
            serde_json::from_str(&d.action.payload).unwrap_or(serde_json::Value::Null);
        json!({
            "type": format!("handoff.action.{}", d.action.kind.as_str()),
            "timestamp": now.to_string(),
            "data": {
                "action_id": d.action.id,
                "idempotency_key": d.action.idempotency_key,
                "handoff": d.handoff.map(|h| json!({
                    "id": h.id,
                    "workflow": h.workflow,
                    "object": h.object,
                    "record_id": h.record_id,
                    "status": h.status,
                })),
                "brief_url": d.brief_url,
                "action": action,
            },
        })
    }
}

impl Sink for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn deliver<'a>(&'a self, d: &'a Delivery<'a>) -> BoxFuture<'a, Result<Delivered, SendError>> {
        Box::pin(async move {
            let now = jiff::Timestamp::now();
            let body = Webhook::body(d, now).to_string();
            let id = &d.action.idempotency_key;
            let at = now.as_second();
            let res = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .header("webhook-id", id)
                .header("webhook-timestamp", at.to_string())
                .header(
                    "webhook-signature",
                    sign(&self.key, id, at, body.as_bytes()),
                )
                .body(body)
                .send()
                .await
                .map_err(|e| transport("webhook", e))?;
            check("webhook", res).await?;
            Ok(Delivered::default())
        })
    }
}
