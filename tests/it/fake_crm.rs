//! Local stand-ins for the CRMs, on 127.0.0.1:0: their record APIs (the
//! request and response shapes HubSpot and Pipedrive publish) and their
//! webhook senders (HubSpot's signed batches, Pipedrive's basic-auth
//! posts). A fake API can be switched "down" (503) and back, or "stalled"
//! (a read is taken and not answered until the stall ends).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use handoff::runtime::adapters::hubspot;
use handoff::runtime::adapters::mapping::Mapping;
use serde_json::{json, Value as J};

use crate::helpers::TestApp;

/// The mapping for the bundled workflows (`examples/crm/handoff.toml`),
/// pointed at `api_base` and retrying fast.
pub fn mapping(api_base: &str) -> Mapping {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/crm/handoff.toml");
    let text = std::fs::read_to_string(path).expect("the example mapping");
    let mut table: toml::Table = toml::from_str(&text).expect("valid TOML");
    for crm in ["hubspot", "pipedrive"] {
        let t = table[crm].as_table_mut().unwrap();
        t.insert("api_base".into(), api_base.into());
        t.insert("timeout_ms".into(), 2000.into());
        t.insert("retries".into(), 1.into());
        t.insert("pending_retry_ms".into(), 100.into());
    }
    Mapping::from_table(&table, "handoff.toml").expect("a valid mapping")
}

#[derive(Default)]
struct Inner {
    /// (object type, id) -> properties.
    records: Mutex<HashMap<(String, String), serde_json::Map<String, J>>>,
    down: AtomicBool,
    /// Reads wait (unanswered) while this is set; `unstall` wakes them.
    stalled: AtomicBool,
    unstall: tokio::sync::Notify,
    /// Every request's path and query, in order.
    calls: Mutex<Vec<String>>,
    token: String,
}

/// A fake CRM API (HubSpot's and Pipedrive's record reads on one server).
pub struct FakeCrm {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeCrm {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeCrm {
    /// Starts the fake, accepting `token` only.
    pub async fn start(token: &str) -> FakeCrm {
        let inner = Arc::new(Inner {
            token: token.to_string(),
            ..Inner::default()
        });
        let app = Router::new()
            .route("/crm/v3/objects/{kind}/{id}", get(hubspot_read))
            .route("/api/v1/{kind}/{id}", get(pipedrive_read))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeCrm {
            addr,
            inner,
            server,
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sets the record `kind/id` the API returns.
    pub fn put(&self, kind: &str, id: &str, properties: J) {
        let J::Object(map) = properties else {
            panic!("properties are an object")
        };
        self.inner
            .records
            .lock()
            .unwrap()
            .insert((kind.to_string(), id.to_string()), map);
    }

    /// Makes every call answer 503 (true) or work again (false).
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    /// Makes every read wait without an answer (true), like an API that
    /// accepts connections and never answers, or answers the waiting reads
    /// and every later one (false).
    pub fn set_stalled(&self, stalled: bool) {
        self.inner.stalled.store(stalled, Ordering::SeqCst);
        if !stalled {
            self.inner.unstall.notify_waiters();
        }
    }

    /// The requests received so far.
    pub fn calls(&self) -> Vec<String> {
        self.inner.calls.lock().unwrap().clone()
    }
}

/// Returns once the API is not stalled.
async fn unstalled(inner: &Inner) {
    loop {
        // Registered before the flag is read, so a `set_stalled(false)`
        // between the two is not missed.
        let woken = inner.unstall.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        if !inner.stalled.load(Ordering::SeqCst) {
            return;
        }
        woken.await;
    }
}

fn record(inner: &Inner, kind: &str, id: &str) -> Option<serde_json::Map<String, J>> {
    inner
        .records
        .lock()
        .unwrap()
        .get(&(kind.to_string(), id.to_string()))
        .cloned()
}

/// `GET /crm/v3/objects/{objectType}/{objectId}?properties=a,b`: HubSpot
/// answers every requested property, null where the record has no value.
async fn hubspot_read(
    State(inner): State<Arc<Inner>>,
    Path((kind, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    inner.calls.lock().unwrap().push(format!(
        "/crm/v3/objects/{kind}/{id}?properties={}",
        q.get("properties").cloned().unwrap_or_default()
    ));
    unstalled(&inner).await;
    if inner.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {}", inner.token)) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"status": "error", "message": "Authentication credentials not found.", "category": "INVALID_AUTHENTICATION"})),
        )
            .into_response();
    }
    let Some(rec) = record(&inner, &kind, &id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"status": "error", "message": "Object not found.", "category": "OBJECT_NOT_FOUND"})),
        )
            .into_response();
    };
    let mut properties = serde_json::Map::new();
    for p in q
        .get("properties")
        .map(String::as_str)
        .unwrap_or("")
        .split(',')
    {
        if !p.is_empty() {
            properties.insert(p.to_string(), rec.get(p).cloned().unwrap_or(J::Null));
        }
    }
    properties.insert("hs_object_id".into(), J::String(id.clone()));
    Json(json!({
        "id": id,
        "properties": properties,
        "createdAt": "2026-11-01T10:00:00.000Z",
        "updatedAt": "2026-11-20T15:00:00.000Z",
        "archived": false
    }))
    .into_response()
}

/// `GET /api/v1/deals/{id}` with `x-api-token`: `{"success": true, "data": …}`.
async fn pipedrive_read(
    State(inner): State<Arc<Inner>>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    inner
        .calls
        .lock()
        .unwrap()
        .push(format!("/api/v1/{kind}/{id}"));
    unstalled(&inner).await;
    if inner.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let token = headers.get("x-api-token").and_then(|v| v.to_str().ok());
    if token != Some(inner.token.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"success": false, "error": "unauthorized access", "errorCode": 401})),
        )
            .into_response();
    }
    match record(&inner, &kind, &id) {
        Some(rec) => Json(json!({"success": true, "data": rec})).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"success": false, "error": "Deal not found", "errorCode": 404})),
        )
            .into_response(),
    }
}

/// One HubSpot webhook event.
pub fn hs_event(
    event_id: u64,
    object_id: u64,
    occurred_at_ms: i64,
    subscription: &str,
    property: Option<(&str, &str)>,
) -> J {
    let mut e = json!({
        "eventId": event_id,
        "subscriptionId": 4242,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": occurred_at_ms,
        "subscriptionType": subscription,
        "attemptNumber": 0,
        "objectId": object_id,
        "changeSource": "CRM",
    });
    if let Some((name, value)) = property {
        e["propertyName"] = json!(name);
        e["propertyValue"] = json!(value);
    }
    e
}

/// Posts `body` to `/hooks/hubspot` signed v3 with `secret` at `ts_ms`.
pub async fn send_hubspot(
    app: &TestApp,
    secret: &str,
    body: &str,
    ts_ms: i64,
) -> reqwest::Response {
    let url = app.url("/hooks/hubspot");
    let sig = hubspot::sign_v3(secret.as_bytes(), "POST", &url, body.as_bytes(), ts_ms);
    app.client
        .post(url)
        .header("content-type", "application/json")
        .header("x-hubspot-signature-v3", sig)
        .header("x-hubspot-request-timestamp", ts_ms.to_string())
        .body(body.to_string())
        .send()
        .await
        .expect("the server answers")
}

/// Posts `body` to `/hooks/pipedrive` with basic auth (when given).
pub async fn send_pipedrive(
    app: &TestApp,
    auth: Option<(&str, &str)>,
    body: &J,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/hooks/pipedrive"))
        .header("content-type", "application/json")
        .header("user-agent", "Pipedrive Webhooks")
        .body(body.to_string());
    if let Some((u, p)) = auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req = req.header("authorization", format!("Basic {token}"));
    }
    req.send().await.expect("the server answers")
}

/// Polls `check` until it returns `Some`, at most [`crate::helpers::BOUND`].
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + crate::helpers::BOUND;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        // Polling a condition with a bound, not sleeping for a result.
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The JSON of a response.
pub async fn json_of(r: reqwest::Response) -> J {
    r.json().await.expect("a JSON body")
}

/// The person a handoff's `assign` action names, from its API view.
pub fn assigned_to(detail: &J) -> J {
    let assign = detail["actions"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["kind"] == "assign"))
        .unwrap_or_else(|| panic!("no assign action in {detail}"));
    assign["action"]["person"].clone()
}

/// The handoffs of record `record_id`, through the API.
pub async fn handoffs_of(app: &TestApp, record_id: &str) -> Vec<J> {
    let list = json_of(app.get(&format!("/handoffs?record={record_id}")).await).await;
    list["handoffs"].as_array().cloned().unwrap_or_default()
}

/// How many events `source` has in the audit log.
pub fn events_stored(app: &TestApp, source: &str) -> u64 {
    app.state
        .store
        .counts()
        .unwrap()
        .events_by_source
        .get(source)
        .copied()
        .unwrap_or(0)
}
