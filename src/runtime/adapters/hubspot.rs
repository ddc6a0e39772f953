//! HubSpot: `POST /hooks/hubspot` receives a JSON array of webhook events
//! (`eventId`, `subscriptionId`, `portalId`, `occurredAt` in ms,
//! `subscriptionType` such as `deal.propertyChange`, or
//! `object.propertyChange` with an `objectTypeId` such as `0-3`, `objectId`,
//! `propertyName`, `propertyValue`, `attemptNumber`), signed with the app's
//! client secret. Hydration reads `GET /crm/v3/objects/{type}/{id}`.
//!
//! Signatures, as HubSpot documents them:
//! - v3 (`X-HubSpot-Signature-v3`): base64 HMAC-SHA256 of
//!   method + URI + body + `X-HubSpot-Request-Timestamp` (ms), refused when
//!   the timestamp is more than 5 minutes away;
//! - v2 (`X-HubSpot-Signature-Version: v2`): hex SHA-256 of
//!   secret + method + URI + body;
//! - v1: hex SHA-256 of secret + body.
//!
//! HubSpot sends v3 with every request, next to v1 or v2 for older
//! integrations. v1 and v2 carry no timestamp (a captured request could be
//! replayed at any time), so they are accepted only with
//! `legacy_signatures = true` under `[hubspot]`.
//!
//! The URI is `HANDOFF_PUBLIC_URL` (what HubSpot was told to call) plus the
//! request's path and query, or the request's own scheme and host when the
//! public URL is not set.

use axum::http::HeaderMap;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::mapping::{CrmMapping, ObjectMapping};
use super::{map_property, CrmEvent, Normalized, Rejected};
use crate::check::ObjectSchema;

/// How far the v3 timestamp may be from now, in milliseconds.
const WINDOW_MS: i64 = 5 * 60 * 1000;

/// The HubSpot API's base URL when `[hubspot] api_base` is not set.
pub const DEFAULT_API_BASE: &str = "https://api.hubapi.com";

/// Which signature versions a request may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// v3 only (the default).
    V3,
    /// v3, or the older v1 and v2 (`legacy_signatures = true`).
    Legacy,
}

/// Why a request's signature was refused (the 401's text; never quotes
/// the secret or the expected signature).
pub fn verify(
    secret: &[u8],
    method: &str,
    uri: &str,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: i64,
    accept: Accept,
) -> Result<(), String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(sig) = header("x-hubspot-signature-v3") {
        let ts = header("x-hubspot-request-timestamp").ok_or(
            "the `X-HubSpot-Request-Timestamp` header is missing: HubSpot sends it with every v3 signature",
        )?;
        let sent: i64 = ts
            .trim()
            .parse()
            .map_err(|_| "`X-HubSpot-Request-Timestamp` is not Unix milliseconds".to_string())?;
        if now_ms.abs_diff(sent) > WINDOW_MS.unsigned_abs() {
            return Err("`X-HubSpot-Request-Timestamp` is more than 5 minutes from now: check this server's clock, or this is a replay".into());
        }
        let given = base64::engine::general_purpose::STANDARD
            .decode(sig.trim())
            .map_err(|_| "`X-HubSpot-Signature-v3` is not base64".to_string())?;
        let mut mac = Hmac::<Sha256>::new_from_slice(secret)
            .map_err(|_| "the client secret is unusable".to_string())?;
        mac.update(method.as_bytes());
        mac.update(decode_uri(uri).as_bytes());
        mac.update(body);
        mac.update(ts.as_bytes());
        // `verify_slice` compares in constant time.
        return mac.verify_slice(&given).map_err(|_| mismatch("v3"));
    }
    let Some(sig) = header("x-hubspot-signature") else {
        return Err("no HubSpot signature: the `X-HubSpot-Signature-v3` header is missing".into());
    };
    let version = header("x-hubspot-signature-version").unwrap_or("v1");
    if accept == Accept::V3 {
        return Err(format!(
            "the request carries only a HubSpot {} signature, which has no timestamp and could be a replay; HubSpot sends `X-HubSpot-Signature-v3` with every request: check that no proxy drops it, or set `legacy_signatures = true` under `[hubspot]` to accept v1 and v2",
            version.trim()
        ));
    }
    let expected = match version.trim() {
        "v1" => sign_v1(secret, body),
        "v2" => sign_v2(secret, method, uri, body),
        other => {
            return Err(format!(
                "`X-HubSpot-Signature-Version: {other}` is not a version this server knows (v1, v2, or the v3 header)"
            ))
        }
    };
    if bool::from(
        expected
            .as_bytes()
            .ct_eq(sig.trim().to_ascii_lowercase().as_bytes()),
    ) {
        Ok(())
    } else {
        Err(mismatch(version.trim()))
    }
}

fn mismatch(version: &str) -> String {
    format!("the HubSpot {version} signature does not match: check HANDOFF_HUBSPOT_CLIENT_SECRET against the app's client secret, and HANDOFF_PUBLIC_URL against the target URL HubSpot calls")
}

/// The v1 signature: hex SHA-256 of secret + body.
pub fn sign_v1(secret: &[u8], body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(secret);
    h.update(body);
    hex(&h.finalize())
}

/// The v2 signature: hex SHA-256 of secret + method + URI + body.
pub fn sign_v2(secret: &[u8], method: &str, uri: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(secret);
    h.update(method.as_bytes());
    h.update(uri.as_bytes());
    h.update(body);
    hex(&h.finalize())
}

/// The v3 signature: base64 HMAC-SHA256 of method + URI + body + timestamp.
pub fn sign_v3(secret: &[u8], method: &str, uri: &str, body: &[u8], timestamp_ms: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(method.as_bytes());
    mac.update(decode_uri(uri).as_bytes());
    mac.update(body);
    mac.update(timestamp_ms.to_string().as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// HubSpot signs the URI with these escapes decoded (its v3 instructions
/// list them); the `?` that starts the query stays as it is.
fn decode_uri(uri: &str) -> String {
    const DECODED: [(&str, &str); 12] = [
        ("%3A", ":"),
        ("%2F", "/"),
        ("%3F", "?"),
        ("%40", "@"),
        ("%21", "!"),
        ("%24", "$"),
        ("%27", "'"),
        ("%28", "("),
        ("%29", ")"),
        ("%2A", "*"),
        ("%2C", ","),
        ("%3B", ";"),
    ];
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    'scan: while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        for (code, ch) in DECODED {
            // Bytes, not `&str`: the query may hold any UTF-8, and a slice
            // ending inside a character would panic.
            if tail
                .as_bytes()
                .get(..3)
                .is_some_and(|b| b.eq_ignore_ascii_case(code.as_bytes()))
            {
                out.push_str(ch);
                rest = &tail[3..];
                continue 'scan;
            }
        }
        out.push('%');
        rest = &tail[1..];
    }
    out.push_str(rest);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One webhook event as HubSpot sends it (unknown keys are ignored: HubSpot
/// adds some, e.g. `changeFlag`, `sourceId`). `subscriptionType` is read
/// before it, to skip the kinds that do not have this shape.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HubSpotEvent {
    event_id: serde_json::Value,
    #[serde(default)]
    subscription_id: Option<serde_json::Value>,
    #[serde(default)]
    portal_id: Option<serde_json::Value>,
    occurred_at: i64,
    object_id: serde_json::Value,
    #[serde(default)]
    object_type_id: Option<String>,
    #[serde(default)]
    property_name: Option<String>,
    #[serde(default)]
    property_value: Option<serde_json::Value>,
}

/// The `object_type` of the API for a subscription's object prefix.
fn object_type(prefix: &str) -> String {
    match prefix {
        "company" => "companies".into(),
        other => format!("{other}s"),
    }
}

/// HubSpot's ids of its standard object types, with their API names.
/// `object.*` subscriptions name the type by id, while mappings (and the
/// README) name it like the API paths do; custom objects (`2-…`) have no
/// name but their id.
const STANDARD_TYPES: [(&str, &str); 4] = [
    ("0-1", "contacts"),
    ("0-2", "companies"),
    ("0-3", "deals"),
    ("0-5", "tickets"),
];

/// The mapped object of an `object.*` event's type id: by the standard
/// type's name first (`0-3` is `deals`), else by the id itself, which a
/// mapping may name directly (a custom object's only name).
fn mapped_by_id<'m>(mapping: &'m CrmMapping, id: &str) -> Option<(&'m str, &'m ObjectMapping)> {
    let id = id.trim();
    STANDARD_TYPES
        .iter()
        .find(|(i, _)| *i == id)
        .and_then(|(_, name)| mapping.object_for_type(name))
        .or_else(|| mapping.object_for_type(id))
}

/// The mapped object of an event's type name (`deals`): by the name, else
/// by the standard type's id, so a mapping that names `0-3` takes
/// `deal.*` events too.
fn mapped_by_name<'m>(mapping: &'m CrmMapping, name: &str) -> Option<(&'m str, &'m ObjectMapping)> {
    mapping.object_for_type(name).or_else(|| {
        STANDARD_TYPES
            .iter()
            .find(|(_, n)| *n == name)
            .and_then(|(id, _)| mapping.object_for_type(id))
    })
}

/// Normalizes a webhook body (a JSON array of events, or one event) into
/// events for the mapped objects. Events of unmapped objects and of kinds
/// handoff does not act on (deletion, merge, association changes) are
/// skipped, and events that cannot be read are set aside as rejected; both
/// are counted by the caller while the batch's other events go on. `Err`
/// only for a body that is no batch of events at all.
pub fn normalize(
    body: &[u8],
    mapping: &CrmMapping,
    objects: &[ObjectSchema],
) -> Result<Normalized, String> {
    let not_json = |e: serde_json::Error| {
        format!(
            "the body is not valid JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        )
    };
    // Each item with its own bytes, which the audit log keeps for the
    // event (not the whole batch once per event).
    let whole: &serde_json::value::RawValue = serde_json::from_slice(body).map_err(not_json)?;
    let raws: Vec<&serde_json::value::RawValue> = match whole.get().as_bytes().first() {
        Some(b'[') => serde_json::from_str(whole.get()).map_err(not_json)?,
        Some(b'{') => vec![whole],
        _ => return Err("a HubSpot webhook body is a JSON array of events".into()),
    };
    let mut items = Vec::with_capacity(raws.len());
    for raw in &raws {
        let item: serde_json::Value = serde_json::from_str(raw.get()).map_err(not_json)?;
        items.push(item);
    }
    // One odd item in a batch is set aside below; an array without a
    // single object in it is not a HubSpot batch (a misrouted sender).
    if !items.is_empty() && !items.iter().any(serde_json::Value::is_object) {
        return Err(
            "a HubSpot webhook body is a JSON array of event objects, and this array holds none: is this URL registered as something other than a HubSpot webhook?"
                .into(),
        );
    }
    let mut out = Normalized::default();
    for (i, (item, raw)) in items.into_iter().zip(&raws).enumerate() {
        let position = i + 1;
        let rejected = |error: String| Rejected {
            position: Some(position),
            id: None,
            error,
        };
        // The kind first, before the whole event is read: the kinds handoff
        // does not act on do not all fit `HubSpotEvent` (an association
        // change has `fromObjectId`/`toObjectId`, no `objectId`), and must
        // be skipped, not refused.
        let subscription = match item.get("subscriptionType") {
            Some(serde_json::Value::String(t)) => t.clone(),
            _ => {
                let found: String = item.to_string().chars().take(80).collect();
                out.rejected.push(rejected(format!(
                    "event {position} of the batch has no `subscriptionType`, so it is not a HubSpot webhook event: {found}"
                )));
                continue;
            }
        };
        let (prefix, kind) = subscription
            .split_once('.')
            .unwrap_or((subscription.as_str(), ""));
        let creation = kind == "creation";
        if !(creation || kind == "propertyChange") {
            out.skipped.push(subscription.clone());
            continue;
        }
        let ev: HubSpotEvent = match serde_json::from_value(item) {
            Ok(ev) => ev,
            Err(e) => {
                out.rejected.push(rejected(format!(
                    "event {position} of the batch (`{subscription}`) is not a HubSpot webhook event: {e}"
                )));
                continue;
            }
        };
        // `object.*` subscriptions name the type by id (`0-3`), the others
        // by a prefix (`deal`).
        let found = match (prefix, &ev.object_type_id) {
            ("object", Some(id)) => mapped_by_id(mapping, id),
            _ => mapped_by_name(mapping, &object_type(prefix)),
        };
        let Some((object, om)) = found else {
            out.skipped.push(subscription.clone());
            continue;
        };
        let Some(schema) = objects.iter().find(|o| o.name == object) else {
            out.skipped.push(subscription.clone());
            continue;
        };
        // HubSpot sends the record's id as a number: a null or an object
        // names no record (as text it would become a record "null").
        let record_id = match &ev.object_id {
            serde_json::Value::String(_) | serde_json::Value::Number(_) => id_text(&ev.object_id),
            other => {
                out.rejected.push(rejected(format!(
                    "event {position} of the batch has no record id: `objectId` is {other}, not a number"
                )));
                continue;
            }
        };
        // HubSpot's ids are whole numbers; the id goes into the paths of
        // the API calls that read and update the record.
        if record_id.is_empty() || !record_id.bytes().all(|b| b.is_ascii_digit()) {
            out.rejected.push(rejected(format!(
                "event {position} of the batch has no HubSpot record id: `objectId` is {}, not a whole number",
                ev.object_id
            )));
            continue;
        }
        // A time out of range would make the event undated, and an undated
        // event passes the check that keeps older values from overwriting
        // newer ones.
        let Ok(occurred_at) = jiff::Timestamp::from_millisecond(ev.occurred_at) else {
            out.rejected.push(rejected(format!(
                "event {position} of the batch has `occurredAt` {}, which is not a time in Unix milliseconds",
                ev.occurred_at
            )));
            continue;
        };
        let event_id = id_text(&ev.event_id);
        let portal = ev.portal_id.as_ref().map(id_text).unwrap_or_default();
        let subscription_id = ev.subscription_id.as_ref().map(id_text).unwrap_or_default();
        // HubSpot does not promise `eventId` is unique: two changes (another
        // subscription, another property) may share one, and taking the
        // second for a retry of the first would drop it. The subscription,
        // the property and the change's time tell them apart; a retry
        // repeats every one of them (only `attemptNumber` grows, and it is
        // not part of the identity). Property names are letters, digits and
        // `_`, so the `-` joins stay unambiguous.
        let property = ev
            .property_name
            .as_deref()
            .map(|p| format!("-{p}"))
            .unwrap_or_default();
        let mut event = CrmEvent {
            id: format!(
                "hs-{portal}-{subscription_id}-{event_id}-{record_id}-{}{property}",
                ev.occurred_at
            ),
            object: object.to_string(),
            object_type: om.object_type.get_ref().clone(),
            record_id,
            occurred_at: Some(occurred_at),
            record: serde_json::Map::new(),
            previous: serde_json::Map::new(),
            created: creation,
            raw: raw.get().as_bytes().to_vec(),
        };
        if let Some(property) = &ev.property_name {
            let value = ev.property_value.clone().unwrap_or(serde_json::Value::Null);
            if !add_property(&mut event, mapping, om, schema, property, &value) {
                out.unmapped.push((object.to_string(), property.clone()));
            }
        }
        out.events.push(event);
    }
    Ok(out)
}

/// Maps one property into the event; false when it is not mapped.
pub(super) fn add_property(
    event: &mut CrmEvent,
    mapping: &CrmMapping,
    om: &ObjectMapping,
    schema: &ObjectSchema,
    property: &str,
    value: &serde_json::Value,
) -> bool {
    match map_property(mapping, om, schema, property, value) {
        Some((field, v, _)) => {
            event.record.insert(field, v);
            true
        }
        None => false,
    }
}

fn id_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The record read from `GET /crm/v3/objects/{type}/{id}?properties=…`:
/// `{"id": "…", "properties": {"dealstage": "closedwon", …}}`.
pub fn record_properties(
    body: &serde_json::Value,
) -> Option<&serde_json::Map<String, serde_json::Value>> {
    body.get("properties")?.as_object()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CRM mapping of a `handoff.toml` text.
    fn mapping_of(toml_text: &str) -> crate::runtime::adapters::mapping::Mapping {
        let table: toml::Table = toml::from_str(toml_text).unwrap();
        crate::runtime::adapters::mapping::Mapping::from_table(&table, "t").unwrap()
    }

    /// The bundled workflows.
    fn bundled() -> crate::compile::WorkflowSet {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
        crate::compile::load(&[dir]).unwrap().0
    }

    const SECRET: &[u8] = b"yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";

    /// HubSpot's documented v1 example (a `contact.creation` batch).
    #[test]
    fn hubspot_v1_example() {
        let body = br#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;
        assert_eq!(
            sign_v1(SECRET, body),
            "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
        );
        let mut h = HeaderMap::new();
        h.insert("x-hubspot-signature-version", "v1".parse().unwrap());
        h.insert(
            "x-hubspot-signature",
            "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
                .parse()
                .unwrap(),
        );
        let legacy = Accept::Legacy;
        assert_eq!(verify(SECRET, "POST", "", &h, body, 0, legacy), Ok(()));
        assert!(verify(b"other", "POST", "", &h, body, 0, legacy).is_err());
        assert!(verify(SECRET, "POST", "", &h, b"[]", 0, legacy).is_err());
        // Without `legacy_signatures`, even a right v1 signature is refused,
        // and the answer names the setting.
        let refused = verify(SECRET, "POST", "", &h, body, 0, Accept::V3).unwrap_err();
        assert!(
            refused.contains("only a HubSpot v1 signature")
                && refused.contains("legacy_signatures = true"),
            "{refused}"
        );
    }

    /// HubSpot's documented v2 examples (a GET, and a POST with a body).
    #[test]
    fn hubspot_v2_examples() {
        let uri = "https://www.example.com/webhook_uri";
        assert_eq!(
            sign_v2(SECRET, "GET", uri, b""),
            "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
        );
        let body = br#"{"example_field":"example_value"}"#;
        assert_eq!(
            sign_v2(SECRET, "POST", uri, body),
            "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"
        );
        let mut h = HeaderMap::new();
        h.insert("x-hubspot-signature-version", "v2".parse().unwrap());
        h.insert(
            "x-hubspot-signature",
            "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            verify(SECRET, "POST", uri, &h, body, 0, Accept::Legacy),
            Ok(())
        );
        let refused = verify(SECRET, "POST", uri, &h, body, 0, Accept::V3).unwrap_err();
        assert!(refused.contains("only a HubSpot v2 signature"), "{refused}");
        // Another URI (a proxy rewrote the host): refused.
        assert!(verify(
            SECRET,
            "POST",
            "https://other.example/webhook_uri",
            &h,
            body,
            0,
            Accept::Legacy
        )
        .is_err());
    }

    /// v3 against a value computed independently (Python's hmac module:
    /// `base64(hmac.new(secret, b"POST" + uri + body + ts, sha256))`).
    #[test]
    fn v3_known_answer_window_and_uri_decoding() {
        let uri = "https://www.example.com/webhook_uri";
        let body = br#"[{"eventId":1}]"#;
        let ts = 1_700_000_000_000_i64;
        let sig = sign_v3(SECRET, "POST", uri, body, ts);
        assert_eq!(sig, V3_KNOWN);
        let mut h = HeaderMap::new();
        h.insert("x-hubspot-signature-v3", sig.parse().unwrap());
        h.insert(
            "x-hubspot-request-timestamp",
            ts.to_string().parse().unwrap(),
        );
        assert_eq!(
            verify(SECRET, "POST", uri, &h, body, ts + 299_000, Accept::V3),
            Ok(())
        );
        let stale = verify(SECRET, "POST", uri, &h, body, ts + 301_000, Accept::V3).unwrap_err();
        assert!(stale.contains("5 minutes"), "{stale}");
        assert!(verify(SECRET, "POST", uri, &h, b"[]", ts, Accept::V3).is_err());
        // The same URI with its `:` and `/` escaped signs the same.
        assert_eq!(
            verify(
                SECRET,
                "POST",
                "https%3A%2F%2Fwww.example.com%2Fwebhook_uri",
                &h,
                body,
                ts,
                Accept::V3
            ),
            Ok(())
        );
        // A timestamp as far from now as an i64 goes is only stale, and a
        // query with non-ASCII text next to a `%` is only another URI.
        h.insert(
            "x-hubspot-request-timestamp",
            i64::MIN.to_string().parse().unwrap(),
        );
        let far = verify(SECRET, "POST", uri, &h, body, ts, Accept::V3).unwrap_err();
        assert!(far.contains("5 minutes"), "{far}");
        assert_eq!(
            decode_uri("https://h.example/x?%aé%é%3a"),
            "https://h.example/x?%aé%é:"
        );
        h.remove("x-hubspot-request-timestamp");
        assert!(verify(SECRET, "POST", uri, &h, body, ts, Accept::V3)
            .unwrap_err()
            .contains("Timestamp"));
    }

    #[test]
    fn an_object_id_or_time_that_cannot_be_hubspots_rejects_only_its_event() {
        let mapping = mapping_of("[hubspot.objects.deal]\nobject_type = \"deals\"\n[hubspot.objects.deal.properties]\ndealname = \"name\"\n");
        let set = bundled();
        let event = |id: serde_json::Value, at: i64| {
            serde_json::json!({"eventId": 1, "portalId": 1, "occurredAt": at,
                "subscriptionType": "deal.propertyChange", "objectId": id,
                "propertyName": "dealname", "propertyValue": "Acme"})
        };
        let now = 1_764_000_000_000_i64;
        let body = serde_json::json!([
            event(serde_json::json!("../contacts/7"), now),
            event(serde_json::json!(-3), now),
            event(serde_json::json!(1.5), now),
            event(serde_json::json!(55), 9_000_000_000_000_000),
            event(serde_json::json!(55), now),
            event(serde_json::json!("56"), now),
        ])
        .to_string();
        let n = normalize(
            body.as_bytes(),
            mapping.hubspot.as_ref().unwrap(),
            &set.schema().objects,
        )
        .unwrap();
        let ids: Vec<&str> = n.events.iter().map(|e| e.record_id.as_str()).collect();
        assert_eq!(ids, ["55", "56"]);
        let why: Vec<(Option<usize>, &str)> = n
            .rejected
            .iter()
            .map(|r| (r.position, r.error.as_str()))
            .collect();
        assert_eq!(why.len(), 4, "{why:?}");
        assert!(
            why[..3]
                .iter()
                .all(|(_, e)| e.contains("not a whole number")),
            "{why:?}"
        );
        assert_eq!(why[3].0, Some(4));
        assert!(
            why[3].1.contains("not a time in Unix milliseconds"),
            "{why:?}"
        );
    }

    #[test]
    fn normalize_maps_properties_and_skips_what_it_does_not_act_on() {
        let mapping = mapping_of("[hubspot.objects.deal]\nobject_type = \"deals\"\n[hubspot.objects.deal.properties]\ndealstage = \"stage\"\n[hubspot.objects.deal.stages]\nclosedwon = \"Closed Won\"\n");
        let set = bundled();
        let body = br#"[
          {"eventId": 9, "portalId": 1, "occurredAt": 1764000000000, "subscriptionType": "deal.propertyChange", "objectId": 5, "propertyName": "dealstage", "propertyValue": "closedwon", "attemptNumber": 3},
          {"eventId": 10, "portalId": 1, "occurredAt": 1764000000001, "subscriptionType": "deal.propertyChange", "objectId": 5, "propertyName": "hs_next_step", "propertyValue": "call"},
          {"eventId": 11, "portalId": 1, "occurredAt": 1764000000002, "subscriptionType": "deal.deletion", "objectId": 6},
          {"eventId": 12, "portalId": 1, "occurredAt": 1764000000003, "subscriptionType": "company.propertyChange", "objectId": 7, "propertyName": "name", "propertyValue": "X"}
        ]"#;
        let n = normalize(
            body,
            mapping.hubspot.as_ref().unwrap(),
            &set.schema().objects,
        )
        .unwrap();
        assert_eq!(n.events.len(), 2);
        assert_eq!(n.events[0].id, "hs-1--9-5-1764000000000-dealstage");
        assert_eq!(n.events[0].record["stage"], "Closed Won");
        assert_eq!(
            n.events[0].occurred_at.unwrap().as_millisecond(),
            1764000000000
        );
        assert!(n.events[1].record.is_empty());
        assert_eq!(
            n.unmapped,
            [("deal".to_string(), "hs_next_step".to_string())]
        );
        assert_eq!(n.skipped, ["deal.deletion", "company.propertyChange"]);
        // An event that cannot be read is set aside, not the batch.
        let n = normalize(
            b"{\"eventId\": 1}",
            mapping.hubspot.as_ref().unwrap(),
            &set.schema().objects,
        )
        .unwrap();
        assert!(n.events.is_empty());
        assert_eq!(n.rejected.len(), 1);
        assert_eq!(n.rejected[0].position, Some(1));
        assert!(
            n.rejected[0].error.contains("event 1 of the batch"),
            "{:?}",
            n.rejected
        );
    }

    /// An association change (no `objectId`) is skipped unread; an event of
    /// a handled kind that cannot be read is rejected; neither stops the
    /// rest. Only a body that holds no event object at all is an error.
    #[test]
    fn normalize_sets_aside_what_it_cannot_read_and_goes_on() {
        let mapping = mapping_of("[hubspot.objects.deal]\nobject_type = \"deals\"\n[hubspot.objects.deal.properties]\ndealstage = \"stage\"\n");
        let set = bundled();
        let hs = mapping.hubspot.as_ref().unwrap();
        let objects = &set.schema().objects;
        let body = br#"[
          {"eventId": 1, "portalId": 1, "occurredAt": 1764000000000, "subscriptionType": "deal.associationChange", "fromObjectId": 5, "toObjectId": 9, "associationType": "DEAL_TO_CONTACT"},
          {"eventId": 2, "portalId": 1, "occurredAt": "yesterday", "subscriptionType": "deal.propertyChange", "objectId": 5, "propertyName": "dealstage", "propertyValue": "closedwon"},
          7,
          {"eventId": 3, "portalId": 1, "occurredAt": 1764000000001, "subscriptionType": "deal.propertyChange", "objectId": 5, "propertyName": "dealstage", "propertyValue": "closedwon"},
          {"eventId": 4, "portalId": 1, "occurredAt": 1764000000002, "subscriptionType": "deal.propertyChange", "objectId": null, "propertyName": "dealstage", "propertyValue": "closedwon"},
          {"eventId": 5, "portalId": 1, "occurredAt": 1764000000003, "subscriptionType": "deal.propertyChange", "objectId": {"id": 5}, "propertyName": "dealstage", "propertyValue": "closedwon"}
        ]"#;
        let n = normalize(body, hs, objects).unwrap();
        assert_eq!(n.events.len(), 1);
        assert_eq!(n.events[0].record_id, "5");
        assert_eq!(n.skipped, ["deal.associationChange"]);
        let at: Vec<_> = n.rejected.iter().map(|r| r.position).collect();
        assert_eq!(at, [Some(2), Some(3), Some(5), Some(6)]);
        assert!(
            n.rejected[2].error.contains("`objectId` is null"),
            "{:?}",
            n.rejected
        );
        assert!(
            n.rejected[0].error.contains("occurredAt") || n.rejected[0].error.contains("i64"),
            "{:?}",
            n.rejected
        );
        for bad in [&b"\"x\""[..], b"[1, 2]", b"[{"] {
            assert!(normalize(bad, hs, objects).is_err());
        }
        assert!(normalize(b"[]", hs, objects).unwrap().events.is_empty());
    }

    /// Two changes sharing an `eventId` get their own identities; HubSpot's
    /// retry of one (a higher `attemptNumber`) keeps its identity.
    #[test]
    fn the_identity_tells_changes_apart_but_not_retries() {
        let mapping = mapping_of("[hubspot.objects.deal]\nobject_type = \"deals\"\n[hubspot.objects.deal.properties]\ndealstage = \"stage\"\ndealname = \"name\"\n");
        let set = bundled();
        let id = |event: serde_json::Value| {
            let body = serde_json::to_vec(&event).unwrap();
            let n = normalize(
                &body,
                mapping.hubspot.as_ref().unwrap(),
                &set.schema().objects,
            )
            .unwrap();
            n.events[0].id.clone()
        };
        let base = serde_json::json!({"eventId": 9, "subscriptionId": 100, "portalId": 1,
            "occurredAt": 1764000000000_i64, "subscriptionType": "deal.propertyChange",
            "objectId": 5, "propertyName": "dealstage", "propertyValue": "closedwon",
            "attemptNumber": 0});
        let first = id(base.clone());
        assert_eq!(first, "hs-1-100-9-5-1764000000000-dealstage");
        let mut other = base.clone();
        other["subscriptionId"] = 101.into();
        other["propertyName"] = "dealname".into();
        assert_ne!(id(other), first);
        let mut later = base.clone();
        later["occurredAt"] = 1764000000001_i64.into();
        assert_ne!(id(later), first);
        let mut retry = base;
        retry["attemptNumber"] = 4.into();
        assert_eq!(id(retry), first);
    }

    /// `object.*` events name the type by id: a standard id reaches the
    /// object mapped by name, and a mapping that names the id (as custom
    /// objects must) still matches.
    #[test]
    fn object_type_ids_reach_objects_mapped_by_name_or_by_id() {
        let set = bundled();
        let body = br#"[{"eventId": 1, "subscriptionId": 2, "portalId": 1, "occurredAt": 1764000000000, "subscriptionType": "object.propertyChange", "objectTypeId": "0-3", "objectId": 5, "propertyName": "dealstage", "propertyValue": "closedwon"},
          {"eventId": 2, "subscriptionId": 2, "portalId": 1, "occurredAt": 1764000000001, "subscriptionType": "object.propertyChange", "objectTypeId": "2-1234", "objectId": 6, "propertyName": "dealstage", "propertyValue": "closedwon"},
          {"eventId": 3, "subscriptionId": 3, "portalId": 1, "occurredAt": 1764000000002, "subscriptionType": "deal.propertyChange", "objectId": 7, "propertyName": "dealstage", "propertyValue": "closedwon"}]"#;
        for object_type in ["deals", "0-3"] {
            let mapping = mapping_of(&format!(
                "[hubspot.objects.deal]\nobject_type = \"{object_type}\"\n[hubspot.objects.deal.properties]\ndealstage = \"stage\"\n[hubspot.objects.deal.stages]\nclosedwon = \"Closed Won\"\n"
            ));
            let n = normalize(
                body,
                mapping.hubspot.as_ref().unwrap(),
                &set.schema().objects,
            )
            .unwrap();
            let records: Vec<_> = n.events.iter().map(|e| e.record_id.as_str()).collect();
            assert_eq!(records, ["5", "7"], "{object_type}");
            assert_eq!(n.events[0].object, "deal");
            assert_eq!(n.events[0].record["stage"], "Closed Won");
            // A custom object the mapping does not name is skipped.
            assert_eq!(n.skipped, ["object.propertyChange"], "{object_type}");
        }
    }

    const V3_KNOWN: &str = "vnX5Als0n2OhEZQxOS/1ftERzeabHuxE8jEarlPWRdE=";
}
