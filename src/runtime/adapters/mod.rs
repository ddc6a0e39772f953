//! The CRMs in: one adapter per CRM, each the same shape (verify → decode →
//! normalize to [`CrmEvent`]s through the [`mapping`]), then one shared
//! path here: hydrate records the triggered handoffs would see incomplete
//! ([`hydrate`]), decode each event with the same per-field typing as the
//! generic hook (`Event::decode_lenient`), and store and decide them in one
//! write job (`ingest::ingest_one`). An event whose record could not be
//! read from the CRM is stored as pending and decided later ([`pending`]),
//! never on a snapshot known to be incomplete. Salesforce later is a new
//! file beside `hubspot.rs`.

pub mod hubspot;
pub mod hydrate;
pub mod mapping;
pub mod pending;
pub mod pipedrive;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use self::hydrate::{Client, HydrateError};
use self::mapping::{Crm, CrmMapping, Mapping, ObjectMapping};
use crate::check::{ObjectSchema, Type};
use crate::compile::WorkflowSet;
use crate::eval::{Event, RecordState, StoredRecord};
use crate::runtime::config::Settings;
use crate::runtime::http::hooks::problem;
use crate::runtime::ingest::{self, Ingested, Request};
use crate::runtime::state::AppState;
use crate::runtime::store::{EventKey, NewPending, StoreError, StoreExt};

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
    /// unmapped objects): acknowledged and counted.
    pub skipped: Vec<String>,
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
    if let Err(why) = hubspot::verify(
        secret.expose().as_bytes(),
        method.as_str(),
        &format!("{base}{path}"),
        &headers,
        &body,
        now.as_millisecond(),
    ) {
        state.metrics.events.inc(&[source, "unauthorized"]);
        return problem(StatusCode::UNAUTHORIZED, &why);
    }
    let active = state.workflows.active();
    let Some(mapping) = state.crm.mapping.crm(crm) else {
        return not_mapped(&state, crm);
    };
    match hubspot::normalize(&body, mapping, &active.set.schema().objects) {
        Ok(n) => accept(&state, crm, active.set.clone(), body, now, n).await,
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
    let active = state.workflows.active();
    let Some(mapping) = state.crm.mapping.crm(crm) else {
        return not_mapped(&state, crm);
    };
    match pipedrive::normalize(&body, mapping, &active.set.schema().objects) {
        Ok(n) => accept(&state, crm, active.set.clone(), body, now, n).await,
        Err(e) => malformed(&state, source, &e),
    }
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

/// Converts one CRM property's value for `field`'s type: stage ids become
/// stage labels, owner ids become emails, epoch-millisecond text becomes a
/// number for dates, an empty value is null. Returns (field, value, whether
/// a stage id was translated), or `None` when the property is not mapped.
pub fn map_property(
    mapping: &CrmMapping,
    om: &ObjectMapping,
    schema: &ObjectSchema,
    property: &str,
    value: &serde_json::Value,
) -> Option<(String, serde_json::Value, bool)> {
    use serde_json::Value as J;
    let field = om.field_for(property)?;
    let slot = schema.slot(field)?;
    // Pipedrive wraps some values: `{"value": 12000, "currency": "EUR"}`,
    // `{"id": 7, "name": "Sam"}`.
    let value = match value {
        J::Object(o) => o.get("value").or_else(|| o.get("id")).unwrap_or(&J::Null),
        v => v,
    };
    let text = match value {
        J::String(s) if s.trim().is_empty() => return Some((field.to_string(), J::Null, false)),
        J::String(s) => Some(s.clone()),
        J::Number(n) => Some(n.to_string()),
        J::Null => return Some((field.to_string(), J::Null, false)),
        _ => None,
    };
    let out = match (&schema.fields[slot].ty, text) {
        (Type::OneOf(_), Some(t)) => match om.stage_label(&t) {
            Some(label) => return Some((field.to_string(), J::String(label.into()), true)),
            None => J::String(t),
        },
        (Type::User | Type::Person, Some(t)) => {
            J::String(mapping.owner_email(&t).map(str::to_string).unwrap_or(t))
        }
        // HubSpot sends dates and date-times as epoch milliseconds in text.
        (Type::Date | Type::DateTime, Some(t))
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) =>
        {
            t.parse::<i64>().map(J::from).unwrap_or(J::String(t))
        }
        _ => value.clone(),
    };
    Some((field.to_string(), out, false))
}

/// Maps many properties into `into`; returns the unmapped ones. When two
/// properties feed one field, a value listed under `stages` wins over one
/// that is not, and Pipedrive's `status` (`won`, `lost`) wins over its
/// `stage_id`: a won deal reads "Closed Won" whatever stage it was won
/// from, and an open one reads its stage.
pub fn apply_properties(
    into: &mut serde_json::Map<String, serde_json::Value>,
    mapping: &CrmMapping,
    om: &ObjectMapping,
    schema: &ObjectSchema,
    properties: impl IntoIterator<Item = (String, serde_json::Value)>,
) -> Vec<String> {
    let mut unmapped = Vec::new();
    // field -> the property whose listed stage it holds
    let mut translated: std::collections::HashMap<String, String> = Default::default();
    for (property, value) in properties {
        match map_property(mapping, om, schema, &property, &value) {
            Some((field, v, stage)) => {
                match translated.get(&field) {
                    Some(_) if !stage => continue,
                    Some(by) if by == "status" => continue,
                    _ => {}
                }
                if stage {
                    translated.insert(field.clone(), property.clone());
                }
                into.insert(field, v);
            }
            None => unmapped.push(property),
        }
    }
    unmapped
}

/// What became of one event, for the answer.
enum Fate {
    Done(Ingested),
    /// Stored; decided once the CRM's API answers. `false` when it was
    /// already waiting (a retry).
    Pending(bool),
}

/// Hydrates, decodes, stores and decides a request's events; answers only
/// after the batch holding them has committed.
async fn accept(
    state: &Arc<AppState>,
    crm: Crm,
    set: WorkflowSet,
    body: Bytes,
    received_at: jiff::Timestamp,
    normalized: Normalized,
) -> Response {
    let source = crm.as_str();
    for (object, _) in &normalized.unmapped {
        state.metrics.crm_unmapped.inc(&[source, object]);
    }
    for _ in &normalized.skipped {
        state.metrics.events.inc(&[source, "skipped"]);
    }
    let mut events = normalized.events;
    // Records in order of first appearance; each hydrated once.
    let mut records: Vec<(String, String)> = Vec::new();
    for e in &events {
        let key = (e.object.clone(), e.record_id.clone());
        if !records.contains(&key) {
            records.push(key);
        }
    }
    let mut waiting: BTreeMap<(String, String), String> = BTreeMap::new();
    for (object, record_id) in &records {
        let mut group: Vec<&mut CrmEvent> = events
            .iter_mut()
            .filter(|e| &e.object == object && &e.record_id == record_id)
            .collect();
        if let Err(why) = hydrate_record(state, crm, &set, &mut group).await {
            waiting.insert((object.clone(), record_id.clone()), why);
        }
    }
    let mut decoded = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let bytes = e.to_generic().to_string();
        match Event::decode_lenient(&set, bytes.as_bytes()) {
            Ok(ev) => {
                for f in &ev.field_errors {
                    state.metrics.field_errors.inc(&[&ev.object, &f.field]);
                }
                for f in &ev.unknown_values {
                    state.metrics.unknown_values.inc(&[&ev.object, &f.field]);
                }
                let wait = waiting
                    .get(&(e.object.clone(), e.record_id.clone()))
                    .cloned();
                decoded.push((ev, serde_json::to_string(e).unwrap_or_default(), wait));
            }
            Err(err) => {
                state.metrics.events.inc(&[source, "rejected"]);
                return problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("event {} of the batch: {err}", i + 1),
                );
            }
        }
    }
    let request = Request {
        source: source.to_string(),
        raw_body: body.to_vec(),
        received_at,
        events: Vec::new(),
    };
    let retry_at = received_at + pending::retry_interval(&state.crm.mapping);
    let started = std::time::Instant::now();
    let job = state.store.write(move |tx| {
        let mut out = Vec::with_capacity(decoded.len());
        for (event, stored, wait) in &decoded {
            let normalized = ingest::normalized(&set, event);
            let hash = ingest::content_hash(event, &normalized);
            let key = EventKey {
                source: &request.source,
                event_id: Some(event.id.as_str()),
                content_hash: &hash,
            };
            if let Some(audit_id) = tx.processed(&key)? {
                out.push(Fate::Done(Ingested::Duplicate { audit_id }));
                continue;
            }
            // Behind an event already waiting, a record's later events wait
            // too: they are decided in order once the CRM answers.
            if wait.is_some() || tx.crm_has_pending(&event.object, &event.record_id)? {
                let added = tx.crm_add_pending(&NewPending {
                    source: request.source.clone(),
                    event_id: event.id.clone(),
                    object: event.object.clone(),
                    record_id: event.record_id.clone(),
                    event: stored.clone(),
                    raw_body: request.raw_body.clone(),
                    received_at: request.received_at,
                    next_attempt_at: retry_at,
                    error: wait
                        .clone()
                        .unwrap_or_else(|| "an earlier event of the record is waiting".into()),
                })?;
                out.push(Fate::Pending(added));
                continue;
            }
            let done = ingest::ingest_one(tx, &set, &request, event).map_err(|e| match e {
                ingest::IngestError::Store(s) => s,
                other => StoreError::abort(other),
            })?;
            out.push(Fate::Done(done));
        }
        Ok(out)
    });
    match job.await {
        Ok(fates) => {
            state
                .metrics
                .ingest_commit_seconds
                .observe_duration(started.elapsed());
            let body: Vec<serde_json::Value> = fates
                .into_iter()
                .map(|f| match f {
                    Fate::Done(Ingested::Applied { audit_id, outcome }) => {
                        state.metrics.events.inc(&[source, "applied"]);
                        json!({"audit_id": audit_id, "duplicate": false, "outcome": outcome})
                    }
                    Fate::Done(Ingested::Duplicate { audit_id }) => {
                        state.metrics.events.inc(&[source, "duplicate"]);
                        json!({"audit_id": audit_id, "duplicate": true})
                    }
                    Fate::Pending(new) => {
                        state.metrics.events.inc(&[source, "pending"]);
                        json!({"pending": true, "duplicate": !new})
                    }
                })
                .collect();
            (
                StatusCode::OK,
                Json(json!({ "events": body, "skipped": normalized.skipped.len() })),
            )
                .into_response()
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

/// Reads the record of `group` (events of one record, in order) from the
/// CRM when a handoff they may trigger would read fields never heard of,
/// and adds the values to the first event (fields the events carry win).
/// `Err` names why the CRM could not be read: the events must wait.
pub(crate) async fn hydrate_record(
    state: &Arc<AppState>,
    crm: Crm,
    set: &WorkflowSet,
    group: &mut [&mut CrmEvent],
) -> Result<(), String> {
    let Some(first) = group.first() else {
        return Ok(());
    };
    let (object, record_id, object_type) = (
        first.object.clone(),
        first.record_id.clone(),
        first.object_type.clone(),
    );
    let Some(mapping) = state.crm.mapping.crm(crm) else {
        return Ok(());
    };
    let (Some(om), Some(schema)) = (mapping.object(&object), set.object(&object)) else {
        return Ok(());
    };
    let store = state.store.clone();
    let (o, r) = (object.clone(), record_id.clone());
    let row = tokio::task::spawn_blocking(move || store.crm_record(&o, &r))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let stored = match row {
        Some(row) => match serde_json::from_str::<StoredRecord>(&row.state) {
            Ok(s) => Some(RecordState::from_stored(schema, &s)),
            Err(_) => None,
        },
        None => None,
    };
    // Any event of the group may trigger; the record is read for the
    // first one, so later events (newer) keep their own values.
    let any: Vec<&str> = group
        .iter()
        .flat_map(|e| e.record.keys().map(String::as_str))
        .collect();
    let carried: Vec<String> = first.record.keys().cloned().collect();
    let created = group.iter().any(|e| e.created);
    let needs = needs(set, om, schema, stored.as_ref(), &any, &carried, created);
    if needs.is_empty() {
        return Ok(());
    }
    let Some(client) = state.crm.client(crm) else {
        // No token: the operator chose not to read the CRM.
        state
            .metrics
            .crm_hydrations
            .inc(&[crm.as_str(), "no_token"]);
        return Ok(());
    };
    let properties: Vec<&str> = needs.iter().map(|(p, _)| p.as_str()).collect();
    match client.fetch(&object_type, &record_id, &properties).await {
        Ok(fetched) => {
            state.metrics.crm_hydrations.inc(&[crm.as_str(), "fetched"]);
            let mut fields = serde_json::Map::new();
            // Asked for and not returned: the CRM has no value.
            let returned: Vec<(String, serde_json::Value)> = properties
                .iter()
                .map(|p| {
                    let v = fetched.get(*p).cloned().unwrap_or(serde_json::Value::Null);
                    (p.to_string(), v)
                })
                .collect();
            apply_properties(&mut fields, mapping, om, schema, returned);
            if let Some(first) = group.first_mut() {
                for (field, value) in fields {
                    if !carried.contains(&field) {
                        first.record.insert(field, value);
                    }
                }
            }
            Ok(())
        }
        Err(HydrateError::NotFound) => {
            // Deleted in the CRM since: decide on what the webhook said.
            state
                .metrics
                .crm_hydrations
                .inc(&[crm.as_str(), "not_found"]);
            Ok(())
        }
        Err(e) => {
            state.metrics.crm_hydrations.inc(&[crm.as_str(), "failed"]);
            tracing::warn!(crm = crm.as_str(), object, record_id, error = %e, "cannot read the record from the CRM: the event waits");
            Err(e.to_string())
        }
    }
}

/// The CRM properties to read: every mapped field never heard of (not in
/// the stored record, not carried by the events), when a handoff on the
/// object may be triggered or is in flight on the record. Empty when no
/// read is needed.
fn needs(
    set: &WorkflowSet,
    om: &ObjectMapping,
    schema: &ObjectSchema,
    stored: Option<&RecordState>,
    any: &[&str],
    carried: &[String],
    created: bool,
) -> Vec<(String, usize)> {
    use crate::compile::TriggerKind;
    let Some(object_index) = set
        .schema()
        .objects
        .iter()
        .position(|o| o.name == schema.name)
    else {
        return Vec::new();
    };
    let touches = |slot: usize| any.contains(&schema.fields[slot].name.as_str());
    let carries = |slot: usize| carried.contains(&schema.fields[slot].name);
    let relevant = set
        .handoffs()
        .iter()
        .filter(|h| h.object == object_index)
        .any(|h| {
            let in_flight = stored
                .and_then(|r| r.handoffs.get(&h.name))
                .is_some_and(|i| !i.finished());
            in_flight
                || match &h.trigger.event {
                    TriggerKind::Created => stored.is_none() || created,
                    TriggerKind::Becomes { slot, .. } | TriggerKind::Changes { slot, .. } => {
                        touches(*slot)
                    }
                }
        });
    if !relevant {
        return Vec::new();
    }
    let mut out: Vec<(String, usize)> = Vec::new();
    for (property, field) in om.mapped_properties() {
        let Some(slot) = schema.slot(field) else {
            continue;
        };
        let heard = stored.is_some_and(|r| {
            r.set_at.get(slot).is_some_and(Option::is_some)
                || r.values
                    .get(slot)
                    .is_some_and(|v| *v != crate::value::Value::Null)
        });
        if !heard && !carries(slot) {
            out.push((property.to_string(), slot));
        }
    }
    out
}
