//! Pipedrive: `POST /hooks/pipedrive` receives webhooks v2 (`meta` with
//! `action`, `entity`, `entity_id`, `id`, `timestamp`; `data` the whole
//! object; `previous` only the changed fields) and v1 (`event` such as
//! `updated.deal`, `meta`, `current`, `previous`). Pipedrive signs nothing:
//! the webhook is registered with HTTP basic auth credentials, which this
//! hook requires (`HANDOFF_PIPEDRIVE_USER`, `HANDOFF_PIPEDRIVE_PASSWORD`).
//! Hydration reads `GET /api/v1/deals/{id}`.

use axum::http::HeaderMap;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::mapping::CrmMapping;
use super::{apply_properties, CrmEvent, Normalized};
use crate::check::ObjectSchema;
use crate::runtime::secret::Secret;

/// The Pipedrive API's base URL when `[pipedrive] api_base` is not set
/// (the company domain's `https://COMPANY.pipedrive.com` works too).
pub const DEFAULT_API_BASE: &str = "https://api.pipedrive.com";

/// Checks HTTP basic auth against the configured user and password, in
/// constant time. `None` credentials (not configured) refuse everything.
pub fn authorize(
    headers: &HeaderMap,
    credentials: Option<(&Secret, &Secret)>,
) -> Result<(), String> {
    let Some((user, password)) = credentials else {
        return Err("the Pipedrive hook needs credentials: set HANDOFF_PIPEDRIVE_USER and HANDOFF_PIPEDRIVE_PASSWORD, and the same in the webhook's HTTP auth fields in Pipedrive".into());
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .ok_or("HTTP basic auth is missing: set the webhook's HTTP auth user and password in Pipedrive")?;
    let (u, p) = match given.iter().position(|b| *b == b':') {
        Some(at) => (&given[..at], &given[at + 1..]),
        None => (&given[..], &b""[..]),
    };
    // Both compared, always, so the time says nothing about which failed.
    let ok = user.expose().as_bytes().ct_eq(u) & password.expose().as_bytes().ct_eq(p);
    if bool::from(ok) {
        Ok(())
    } else {
        Err("the HTTP basic auth user or password is wrong: compare the webhook's HTTP auth in Pipedrive with HANDOFF_PIPEDRIVE_USER and HANDOFF_PIPEDRIVE_PASSWORD".into())
    }
}

/// The entity name of a webhook (`deal`) as an API object type (`deals`).
fn object_type(entity: &str) -> String {
    match entity {
        "person" => "persons".into(),
        "activity" => "activities".into(),
        other => format!("{other}s"),
    }
}

/// Normalizes one webhook body (v2 or v1).
pub fn normalize(
    body: &[u8],
    mapping: &CrmMapping,
    objects: &[ObjectSchema],
) -> Result<Normalized, String> {
    let json: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the body is not valid JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let meta = json
        .get("meta")
        .and_then(|m| m.as_object())
        .ok_or("a Pipedrive webhook has a `meta` object: is this hook registered as a Pipedrive webhook (v1 or v2)?")?;
    let text = |v: Option<&serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    let v2 = meta.contains_key("entity") || json.get("data").is_some();
    let (action, entity, current, previous) = if v2 {
        (
            text(meta.get("action")).unwrap_or_default(),
            text(meta.get("entity")).unwrap_or_default(),
            json.get("data"),
            json.get("previous"),
        )
    } else {
        // v1: `event` is `updated.deal`; meta has `action` and `object`.
        let event = text(json.get("event")).unwrap_or_default();
        let (a, o) = event.split_once('.').unwrap_or(("", ""));
        (
            text(meta.get("action")).unwrap_or_else(|| a.to_string()),
            text(meta.get("object")).unwrap_or_else(|| o.to_string()),
            json.get("current"),
            json.get("previous"),
        )
    };
    let mut out = Normalized::default();
    let created = matches!(action.as_str(), "create" | "added");
    if !(created || matches!(action.as_str(), "change" | "updated")) {
        out.skipped.push(format!("{action}.{entity}"));
        return Ok(out);
    }
    let Some((object, om)) = mapping.object_for_type(&object_type(&entity)) else {
        out.skipped.push(format!("{action}.{entity}"));
        return Ok(out);
    };
    let Some(schema) = objects.iter().find(|o| o.name == object) else {
        out.skipped.push(format!("{action}.{entity}"));
        return Ok(out);
    };
    let current = current
        .and_then(|c| c.as_object())
        .ok_or("the webhook has no record: `data` (v2) or `current` (v1) is missing")?;
    let record_id = text(meta.get("entity_id"))
        .or_else(|| text(current.get("id")))
        .or_else(|| text(meta.get("id")).filter(|_| !v2))
        .ok_or("the webhook names no record: `meta.entity_id` or `data.id` is missing")?;
    if !super::is_crm_record_id(&record_id) {
        // Set aside (200, counted, named in the answer), as HubSpot's are:
        // refused, Pipedrive would send it again, and no resend makes it
        // readable (and a hook that keeps failing gets switched off).
        out.rejected.push(super::Rejected {
            position: Some(1),
            id: None,
            error: format!(
                "the webhook's record id `{}` is not a Pipedrive id (digits, or a lead's UUID)",
                record_id.chars().take(80).collect::<String>()
            ),
        });
        return Ok(out);
    }
    let occurred_at = match meta.get("timestamp") {
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .and_then(|s| jiff::Timestamp::from_second(s).ok()),
        Some(serde_json::Value::String(s)) => crate::compile::parse_datetime(s).or_else(|| {
            s.parse::<i64>()
                .ok()
                .and_then(|s| jiff::Timestamp::from_second(s).ok())
        }),
        _ => None,
    };
    // v1 carries the microseconds too: the finer order wins.
    let occurred_at = meta
        .get("timestamp_micro")
        .and_then(|v| v.as_i64())
        .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
        .or(occurred_at);
    // A time that is there but cannot be read: taken undated, the event
    // would skip the check that an older change never overwrites a newer
    // one. Set aside, as HubSpot's unreadable `occurredAt` is.
    if let (None, Some(t)) = (occurred_at, meta.get("timestamp").filter(|t| !t.is_null())) {
        out.rejected.push(super::Rejected {
            position: Some(1),
            id: None,
            error: format!(
                "the webhook's `meta.timestamp` {} is not a time (an ISO 8601 time or Unix seconds)",
                t.to_string().chars().take(80).collect::<String>()
            ),
        });
        return Ok(out);
    }
    // The identity a retry repeats: v2's `meta.id`; v1 has none of its own,
    // so its request id, or the change's time, with the object and the
    // record stand for it (one request, such as a bulk update, may change
    // several records).
    let id = if v2 {
        text(meta.get("id")).map(|i| format!("pd2-{i}"))
    } else {
        text(meta.get("request_id"))
            .map(|r| format!("pd1-{entity}-{record_id}-{r}"))
            .or_else(|| {
                let at =
                    text(meta.get("timestamp_micro")).or_else(|| text(meta.get("timestamp")))?;
                Some(format!("pd1-{entity}-{record_id}-{at}"))
            })
    }
    .ok_or("the webhook has no `meta.id`: handoff needs it to recognise Pipedrive's retries")?;
    let mut event = CrmEvent {
        id,
        object: object.to_string(),
        object_type: om.object_type.get_ref().clone(),
        record_id,
        occurred_at,
        record: serde_json::Map::new(),
        previous: serde_json::Map::new(),
        created,
        raw: body.to_vec(),
    };
    let unmapped = apply_properties(&mut event.record, mapping, om, schema, flatten(current));
    if let Some(prev) = previous.and_then(|p| p.as_object()) {
        // The record before: v1 sends it whole, v2 only the properties that
        // changed (the others were as they are now). It is mapped whole, so
        // that properties that make one field together see each other (a
        // won deal's `status` wins over its `stage_id`: a won deal moved to
        // another stage was "Closed Won" before too, and `previous:
        // {"status": "open"}` is the stage it was in, not a stage called
        // "open"); then only the fields that changed are kept, so unchanged
        // ones do not read as "before" values.
        let mut before = flatten(current);
        for (key, value) in flatten(prev) {
            match before.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => before.push((key, value)),
            }
        }
        apply_properties(&mut event.previous, mapping, om, schema, before);
        let same: Vec<String> = event
            .previous
            .iter()
            .filter(|(k, v)| event.record.get(*k) == Some(v))
            .map(|(k, _)| k.clone())
            .collect();
        for k in same {
            event.previous.remove(&k);
        }
    }
    for p in unmapped {
        out.unmapped.push((object.to_string(), p));
    }
    out.events.push(event);
    Ok(out)
}

/// A Pipedrive object's properties, with v2's `custom_fields` lifted to
/// the top (custom fields are keyed by their 40-character key either way).
pub fn flatten(
    record: &serde_json::Map<String, serde_json::Value>,
) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::with_capacity(record.len());
    for (k, v) in record {
        match (k.as_str(), v) {
            ("custom_fields", serde_json::Value::Object(custom)) => {
                out.extend(custom.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            _ => out.push((k.clone(), v.clone())),
        }
    }
    out
}

/// The record read from `GET /api/v1/deals/{id}`: `{"success": true,
/// "data": {…}}`.
pub fn record_properties(
    body: &serde_json::Value,
) -> Option<&serde_json::Map<String, serde_json::Value>> {
    body.get("data")?.as_object()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> (Secret, Secret) {
        (Secret::new("pd-user"), Secret::new("pd-pass"))
    }

    fn basic(user: &str, pass: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        h.insert("authorization", format!("Basic {token}").parse().unwrap());
        h
    }

    fn deal_mapping() -> (CrmMapping, Vec<ObjectSchema>) {
        let table: toml::Table = toml::from_str(
            "[pipedrive.objects.deal]\nobject_type = \"deals\"\n\
             [pipedrive.objects.deal.properties]\ntitle = \"name\"\n",
        )
        .unwrap();
        let mapping = super::super::mapping::Mapping::from_table(&table, "t").unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
        let set = crate::compile::load(&[dir]).unwrap().0;
        (mapping.pipedrive.unwrap(), set.schema().objects.clone())
    }

    fn v1(id: serde_json::Value, request_id: &str) -> Vec<u8> {
        serde_json::json!({
            "v": 1, "event": "updated.deal",
            "meta": {"v": 1, "action": "updated", "object": "deal", "id": id,
                     "request_id": request_id, "timestamp": 1795705445},
            "current": {"id": id, "title": "Beta"}, "previous": {"title": "B"}
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_v1_request_id_identifies_one_record_s_change() {
        // One request (a bulk update) may change several deals: each is
        // its own event, and a retry of either is still recognised.
        let (m, objects) = deal_mapping();
        let id = |deal: i64| {
            let n = normalize(&v1(serde_json::json!(deal), "req-1"), &m, &objects).unwrap();
            n.events[0].id.clone()
        };
        assert_ne!(id(56), id(57));
        assert_eq!(id(56), id(56));
    }

    #[test]
    fn a_record_id_that_is_not_a_pipedrive_id_is_set_aside() {
        let (m, objects) = deal_mapping();
        for bad in ["../persons/7", "56?x", "", "5 6"] {
            let n = normalize(&v1(serde_json::json!(bad), "r"), &m, &objects).unwrap();
            assert!(n.events.is_empty(), "{bad}");
            let why = &n.rejected[0].error;
            assert!(why.contains("is not a Pipedrive id"), "{bad}: {why}");
        }
        let lead = "adf21080-0e10-11eb-879b-05d71fb426ec";
        let n = normalize(&v1(serde_json::json!(lead), "r"), &m, &objects).unwrap();
        assert_eq!(n.events[0].record_id, lead);
    }

    #[test]
    fn a_timestamp_that_is_not_a_time_is_set_aside() {
        let (m, objects) = deal_mapping();
        let mut body: serde_json::Value =
            serde_json::from_slice(&v1(serde_json::json!(56), "r")).unwrap();
        for garbled in [serde_json::json!("yesterday"), serde_json::json!(true)] {
            body["meta"]["timestamp"] = garbled.clone();
            let n = normalize(body.to_string().as_bytes(), &m, &objects).unwrap();
            assert!(n.events.is_empty(), "{garbled}");
            assert!(
                n.rejected[0].error.contains("is not a time"),
                "{:?}",
                n.rejected
            );
        }
        // Without a time at all it is taken, undated.
        body["meta"].as_object_mut().unwrap().remove("timestamp");
        let n = normalize(body.to_string().as_bytes(), &m, &objects).unwrap();
        assert_eq!(n.events.len(), 1);
        assert_eq!(n.events[0].occurred_at, None);
    }

    #[test]
    fn basic_auth_is_required_and_checked() {
        let (u, p) = creds();
        assert_eq!(
            authorize(&basic("pd-user", "pd-pass"), Some((&u, &p))),
            Ok(())
        );
        assert!(authorize(&basic("pd-user", "nope"), Some((&u, &p))).is_err());
        assert!(authorize(&basic("someone", "pd-pass"), Some((&u, &p))).is_err());
        assert!(authorize(&HeaderMap::new(), Some((&u, &p))).is_err());
        // Not configured: refused, and the message says what to set.
        let err = authorize(&basic("pd-user", "pd-pass"), None).unwrap_err();
        assert!(err.contains("HANDOFF_PIPEDRIVE_USER"), "{err}");
    }
}
