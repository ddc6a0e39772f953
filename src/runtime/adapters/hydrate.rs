//! Reading a record from the CRM's API, so a handoff decides on the real
//! record and not on the one property a webhook carried.
//!
//! - HubSpot: `GET {api_base}/crm/v3/objects/{type}/{id}?properties=a,b`
//!   with `Authorization: Bearer HANDOFF_HUBSPOT_TOKEN` (a private app
//!   token with the objects' read scopes);
//! - Pipedrive: `GET {api_base}/api/v1/{type}/{id}` with the
//!   `x-api-token: HANDOFF_PIPEDRIVE_API_TOKEN` header (kept out of URLs,
//!   which get logged).
//!
//! Each call has a bounded time (`timeout_ms`, default 5 s) and is tried
//! again at once a bounded number of times (`retries`, default 2) on a
//! network error, a 429 or a 5xx; after that the caller stores the event
//! as pending and the retry loop tries later.

use std::time::Duration;

use super::hubspot;
use super::mapping::{Crm, CrmMapping};
use super::pipedrive;
use crate::runtime::secret::Secret;

/// Why a record could not be read. The text never includes the token.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum HydrateError {
    /// The API could not be reached, timed out, or answered 429/5xx.
    #[error("the {crm} API could not be reached: {reason}")]
    #[diagnostic(help("the event is stored and decided once the API answers; check the network and `[{crm}] api_base`"))]
    Unreachable { crm: Crm, reason: String },
    /// The API refused the token or the request.
    #[error("the {crm} API answered {status}: {reason}")]
    #[diagnostic(help("check the token ({var}) and its scopes; the event is stored and decided once the API accepts it"))]
    Refused {
        crm: Crm,
        status: u16,
        reason: String,
        var: &'static str,
    },
    /// The record does not exist (deleted since the webhook was sent).
    #[error("the record does not exist in the CRM")]
    NotFound,
    /// No turn to call the API came before the request's deadline.
    #[error("the request's time for CRM reads ran out")]
    #[diagnostic(help("the event is stored and decided by the retry loop; if this is frequent, raise `hydrate_deadline_ms` or look at the API's latency"))]
    OutOfTime,
    /// The client could not be built (a bad `api_base`).
    #[error("cannot set up the {crm} API client: {reason}")]
    #[diagnostic(help("set `[{crm}] api_base` to an http(s) URL such as {default}"))]
    Setup {
        crm: Crm,
        reason: String,
        default: &'static str,
    },
}

/// One CRM's API client.
pub struct Client {
    crm: Crm,
    http: reqwest::Client,
    base: String,
    token: Secret,
    retries: u32,
    /// Turns to call the API, shared by the webhooks and the retry loop.
    turns: tokio::sync::Semaphore,
}

/// How many reads of one CRM's API run at once, in the whole process:
/// enough that a HubSpot batch (up to 100 events) is mostly read within
/// the request's deadline when the API is slow, few enough to stay inside
/// the CRMs' burst limits (HubSpot allows 100 to 190 calls per 10 s per
/// app) whatever the number of webhooks and waiting records.
pub const CONCURRENT_READS: usize = 8;

impl Client {
    /// A client for `crm` as `mapping` configures it.
    pub fn new(crm: Crm, mapping: &CrmMapping, token: Secret) -> Result<Client, HydrateError> {
        let default = match crm {
            Crm::HubSpot => hubspot::DEFAULT_API_BASE,
            Crm::Pipedrive => pipedrive::DEFAULT_API_BASE,
        };
        let base = mapping
            .api_base
            .clone()
            .unwrap_or_else(|| default.to_string())
            .trim_end_matches('/')
            .to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(HydrateError::Setup {
                crm,
                reason: format!("`{base}` is not an http(s) URL"),
                default,
            });
        }
        let timeout = Duration::from_millis(mapping.timeout_ms.unwrap_or(5000));
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| HydrateError::Setup {
                crm,
                reason: e.to_string(),
                default,
            })?;
        Ok(Client {
            crm,
            http,
            base,
            token,
            retries: mapping.retries.unwrap_or(2),
            turns: tokio::sync::Semaphore::new(CONCURRENT_READS),
        })
    }

    /// A turn to call the API (one of [`CONCURRENT_READS`]), or `None`
    /// when `deadline` comes first. A turn freed just as the deadline
    /// passes (by a read the request is abandoning) is refused too, so no
    /// call starts after the deadline.
    pub async fn turn(
        &self,
        deadline: Option<tokio::time::Instant>,
    ) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let turn = match deadline {
            Some(at) => tokio::time::timeout_at(at, self.turns.acquire())
                .await
                .ok()?
                .ok()?,
            None => self.turns.acquire().await.ok()?,
        };
        match deadline {
            Some(at) if tokio::time::Instant::now() >= at => None,
            _ => Some(turn),
        }
    }

    /// Reads `properties` of record `id` of `object_type`: property name ->
    /// value as the API gives it (a property the record has no value for
    /// may be absent or null).
    ///
    /// Each try waits for a turn (see [`Client::turn`]) and holds it only
    /// while it calls, not through the pause before the next try; none
    /// starts after `deadline` ([`HydrateError::OutOfTime`]).
    pub async fn fetch(
        &self,
        object_type: &str,
        id: &str,
        properties: &[&str],
        deadline: Option<tokio::time::Instant>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, HydrateError> {
        let id = encode(id);
        let object_type = encode(object_type);
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                // A short, growing pause between immediate tries; the long
                // waits belong to the pending-decision loop.
                tokio::time::sleep(Duration::from_millis(100 << attempt.min(5))).await;
            }
            // Dropped at the end of this try, whatever ends it.
            let Some(_turn) = self.turn(deadline).await else {
                return Err(HydrateError::OutOfTime);
            };
            let request = match self.crm {
                Crm::HubSpot => self
                    .http
                    .get(format!("{}/crm/v3/objects/{object_type}/{id}", self.base))
                    .query(&[("properties", properties.join(","))])
                    .bearer_auth(self.token.expose()),
                Crm::Pipedrive => self
                    .http
                    .get(format!("{}/api/v1/{object_type}/{id}", self.base))
                    .header("x-api-token", self.token.expose()),
            };
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    // reqwest's text names the URL, never the headers.
                    last = e.without_url().to_string();
                    continue;
                }
            };
            let status = response.status();
            if status == reqwest::StatusCode::NOT_FOUND {
                return Err(HydrateError::NotFound);
            }
            if status.as_u16() == 429 || status.is_server_error() {
                last = format!("it answered {status}");
                continue;
            }
            if !status.is_success() {
                return Err(HydrateError::Refused {
                    crm: self.crm,
                    status: status.as_u16(),
                    reason: status.canonical_reason().unwrap_or("refused").to_string(),
                    var: match self.crm {
                        Crm::HubSpot => "HANDOFF_HUBSPOT_TOKEN",
                        Crm::Pipedrive => "HANDOFF_PIPEDRIVE_API_TOKEN",
                    },
                });
            }
            let body: serde_json::Value = match response.json().await {
                Ok(b) => b,
                Err(e) => {
                    last = format!("its answer is not JSON: {}", e.without_url());
                    continue;
                }
            };
            let props = match self.crm {
                Crm::HubSpot => hubspot::record_properties(&body).cloned(),
                Crm::Pipedrive => pipedrive::record_properties(&body)
                    .map(|d| pipedrive::flatten(d).into_iter().collect()),
            };
            return props.ok_or_else(|| HydrateError::Unreachable {
                crm: self.crm,
                reason: "its answer has no record (`properties` / `data`)".into(),
            });
        }
        Err(HydrateError::Unreachable {
            crm: self.crm,
            reason: last,
        })
    }
}

/// Percent-encodes a path segment (ids are digits in both CRMs, but the
/// id comes from a webhook body).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        let mapping: CrmMapping = toml::from_str("api_base = \"http://127.0.0.1:9\"").unwrap();
        Client::new(Crm::HubSpot, &mapping, Secret::new("pat")).unwrap()
    }

    #[tokio::test]
    async fn every_caller_shares_the_turns_and_none_starts_after_its_deadline() {
        let client = client();
        // Eight reads in flight, whoever started them (webhooks or the
        // retry loop): the ninth waits, here until its deadline.
        let mut held = Vec::new();
        for _ in 0..CONCURRENT_READS {
            held.push(client.turn(None).await.expect("a free turn"));
        }
        let soon = tokio::time::Instant::now() + Duration::from_millis(50);
        assert!(client.turn(Some(soon)).await.is_none());
        // A turn is free again, but that deadline has passed.
        held.pop();
        assert!(client.turn(Some(soon)).await.is_none());
        let later = tokio::time::Instant::now() + Duration::from_secs(60);
        assert!(client.turn(Some(later)).await.is_some());
    }
}
