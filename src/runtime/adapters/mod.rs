//! The CRMs in: one adapter per CRM, each the same shape (verify → decode →
//! normalize to [`CrmEvent`]s through the [`mapping`]), then one shared
//! path here: hydrate records the triggered handoffs would see incomplete
//! ([`hydrate`]), decode each event with the same per-field typing as the
//! generic hook (`Event::decode_lenient`), and store and decide them in one
//! write job (`ingest::ingest_one`). An event whose record could not be
//! read from the CRM is stored as pending and decided later ([`pending`]),
//! never on a snapshot known to be incomplete. Salesforce later is a new
//! file beside `hubspot.rs`.

mod decide;
pub mod hubspot;
pub mod hydrate;
pub mod mapping;
pub mod pending;
pub mod pipedrive;
mod values;

pub(crate) use decide::hydrate_record;
pub use values::{apply_properties, map_property};

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::json;

use self::decide::accept;
use self::hydrate::{Client, HydrateError};
use self::mapping::{Crm, Mapping};
use crate::runtime::config::Settings;
use crate::runtime::http::hooks::problem;
use crate::runtime::state::AppState;

/// One CRM change, normalized to the generic event's parts: field names of
/// the `.handoff` object, values as JSON ready for per-field typing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrmEvent {
    /// The identity a retry repeats (`hs-…`, `pd2-…`).
    pub id: String,
    /// The `.handoff` object, and the CRM's type for it (`deals`).
    pub object: String,
    pub object_type: String,
    pub record_id: String,
    pub occurred_at: Option<jiff::Timestamp>,
    pub record: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub previous: serde_json::Map<String, serde_json::Value>,
    /// A creation event (the record is new in the CRM).
    #[serde(default)]
    pub created: bool,
    /// What the audit log keeps as the event's raw body: the whole body
    /// for Pipedrive (one change per request), the event's own element of
    /// a HubSpot batch. Not in the event's stored JSON: a pending row keeps
    /// it in a column of its own.
    #[serde(skip)]
    pub raw: Vec<u8>,
}

impl CrmEvent {
    /// The event in the generic shape (`grammar/README.md`, "Events").
    pub fn to_generic(&self) -> serde_json::Value {
        let mut e = json!({
            "id": self.id,
            "object": self.object,
            "record_id": self.record_id,
            "record": self.record,
        });
        if let Some(t) = self.occurred_at {
            e["occurred_at"] = json!(t.to_string());
        }
        if !self.previous.is_empty() {
            e["previous"] = json!(self.previous);
        }
        e
    }
}

/// What an adapter made of one request.
#[derive(Debug, Default)]
pub struct Normalized {
    pub events: Vec<CrmEvent>,
    /// (object, CRM property) of every property that is not mapped.
    pub unmapped: Vec<(String, String)>,
    /// Subscription types handoff does not act on (deletions, merges,
    /// association changes, unmapped objects): acknowledged and counted.
    pub skipped: Vec<String>,
    /// Events of the batch that could not be read: counted, logged and
    /// named in the answer, while the batch's other events go on.
    pub rejected: Vec<Rejected>,
}

/// One event of a CRM request that could not be read or decoded.
///
/// It is set aside rather than refusing the request: HubSpot does not
/// resend a batch answered 4xx, so refusing the whole batch would lose its
/// good events along with the bad one, and no resend would make the bad
/// one readable anyway.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejected {
    /// Its place in the request's batch, from 1 (when the adapter set it
    /// aside, before it had an identity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    /// Its identity (`hs-…`), when it was read but could not be decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Why, naming what to change.
    pub error: String,
}

/// The CRM side of the server: the mapping and the API clients.
pub struct Crms {
    pub mapping: Mapping,
    hubspot: Option<Client>,
    pipedrive: Option<Client>,
}

impl std::fmt::Debug for Crms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crms")
            .field("hubspot_api", &self.hubspot.is_some())
            .field("pipedrive_api", &self.pipedrive.is_some())
            .finish_non_exhaustive()
    }
}

impl Crms {
    /// The mapping of `settings`, with an API client for each CRM that has
    /// a mapping and a token.
    pub fn new(settings: &Settings) -> Result<Crms, HydrateError> {
        let mapping = settings.crm.clone();
        let client = |crm: Crm, token: &Option<crate::runtime::secret::Secret>| match (
            mapping.crm(crm),
            token,
        ) {
            (Some(m), Some(t)) => Client::new(crm, m, t.clone()).map(Some),
            _ => Ok(None),
        };
        Ok(Crms {
            hubspot: client(Crm::HubSpot, &settings.secrets.hubspot_token)?,
            pipedrive: client(Crm::Pipedrive, &settings.secrets.pipedrive_api_token)?,
            mapping,
        })
    }

    /// The API client of `crm`, when its token is configured.
    pub fn client(&self, crm: Crm) -> Option<&Client> {
        match crm {
            Crm::HubSpot => self.hubspot.as_ref(),
            Crm::Pipedrive => self.pipedrive.as_ref(),
        }
    }
}

/// The CRM hooks' routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/hooks/hubspot", post(hubspot_hook))
        .route("/hooks/pipedrive", post(pipedrive_hook))
}

async fn hubspot_hook(
    State(state): State<Arc<AppState>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let crm = Crm::HubSpot;
    let source = crm.as_str();
    let Some(secret) = &state.settings.secrets.hubspot_client_secret else {
        state.metrics.events.inc(&[source, "unauthorized"]);
        return problem(
            StatusCode::UNAUTHORIZED,
            "the HubSpot hook is not configured: set HANDOFF_HUBSPOT_CLIENT_SECRET to the app's client secret",
        );
    };
    // The URI HubSpot signed: the public URL it was given, else this
    // request's own scheme and host.
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or(uri.path());
    let base = match &state.settings.public_url {
        Some(u) => u.clone(),
        None => {
            let host = headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            let scheme = headers
                .get("x-forwarded-proto")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("http");
            format!("{scheme}://{host}")
        }
    };
    let now = jiff::Timestamp::now();
    let versions = match state.crm.mapping.crm(crm) {
        Some(m) if m.accepts_legacy_signatures() => hubspot::Accept::Legacy,
        _ => hubspot::Accept::V3,
    };
    if let Err(why) = hubspot::verify(
        secret.expose().as_bytes(),
        method.as_str(),
        &format!("{base}{path}"),
        &headers,
        &body,
        now.as_millisecond(),
        versions,
    ) {
        state.metrics.events.inc(&[source, "unauthorized"]);
        return problem(StatusCode::UNAUTHORIZED, &why);
    }
    let active = state.workflows.lease();
    let Some(mapping) = state.crm.mapping.crm(crm) else {
        return not_mapped(&state, crm);
    };
    match hubspot::normalize(&body, mapping, &active.set.schema().objects) {
        Ok(n) => accept(&state, crm, active.set.clone(), now, n).await,
        Err(e) => malformed(&state, source, &e),
    }
}

async fn pipedrive_hook(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let crm = Crm::Pipedrive;
    let source = crm.as_str();
    let secrets = &state.settings.secrets;
    let credentials = secrets
        .pipedrive_user
        .as_ref()
        .zip(secrets.pipedrive_password.as_ref());
    // Not slowed per address like a token (`http::guesses`): Pipedrive
    // sends every account's webhooks from the same addresses, so anyone's
    // webhook with a wrong password would lock ours out. On a network
    // address the password must be long instead (`Settings::validate`).
    if let Err(why) = pipedrive::authorize(&headers, credentials) {
        state.metrics.events.inc(&[source, "unauthorized"]);
        let mut res = problem(StatusCode::UNAUTHORIZED, &why);
        res.headers_mut().insert(
            "www-authenticate",
            axum::http::HeaderValue::from_static("Basic realm=\"handoff\""),
        );
        return res;
    }
    let now = jiff::Timestamp::now();
    let active = state.workflows.lease();
    let Some(mapping) = state.crm.mapping.crm(crm) else {
        return not_mapped(&state, crm);
    };
    match pipedrive::normalize(&body, mapping, &active.set.schema().objects) {
        Ok(n) => accept(&state, crm, active.set.clone(), now, n).await,
        Err(e) => malformed(&state, source, &e),
    }
}

/// Whether `id` can be a CRM record id: HubSpot's are digits, Pipedrive's
/// digits or (leads) UUIDs. The id goes into the path of the CRM API calls
/// that read and update the record, so anything else (`..`, `/`, `?`) would
/// make them reach another object.
pub fn is_crm_record_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn not_mapped(state: &AppState, crm: Crm) -> Response {
    state.metrics.events.inc(&[crm.as_str(), "rejected"]);
    problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        &format!("no `[{crm}]` mapping in handoff.toml: map the CRM's objects to the .handoff objects (see the README's {crm} section)"),
    )
}

fn malformed(state: &AppState, source: &str, why: &str) -> Response {
    state.metrics.events.inc(&[source, "malformed"]);
    problem(StatusCode::BAD_REQUEST, why)
}

#[cfg(test)]
mod tests {
    use super::is_crm_record_id;

    #[test]
    fn a_crm_record_id_cannot_step_out_of_an_api_path() {
        for good in ["55", "D-1", "adf21080-0e10-11eb-879b-05d71fb426ec", "a_b"] {
            assert!(is_crm_record_id(good), "{good}");
        }
        let long = "9".repeat(65);
        for bad in [
            "",
            ".",
            "..",
            "../contacts/7",
            "5/6",
            "5?x",
            "5#x",
            "5%2F6",
            "5 6",
            &long,
        ] {
            assert!(!is_crm_record_id(bad), "{bad}");
        }
    }
}
