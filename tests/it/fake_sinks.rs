//! Local HTTP servers (127.0.0.1, port 0) playing the places actions go,
//! with their published request and response shapes: HubSpot's CRM
//! objects API (create a task with associations, search tasks by an
//! association, patch a deal), Pipedrive's API v2 (add and list
//! activities, patch a deal), a Slack incoming webhook, and a Standard
//! Webhooks receiver that verifies the signature.
//!
//! Each route can be told to fail its first N calls (with a status and a
//! `Retry-After`), to do the work and then never answer (the client times
//! out: the ambiguous failure), or to fail until told otherwise. Everything
//! received is recorded for the test to check.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::{Json, Router};
use serde_json::{json, Value as J};

pub const HUBSPOT_TOKEN: &str = "pat-na1-test-token";
pub const PIPEDRIVE_TOKEN: &str = "pd-api-test-token";
pub const OUTBOUND_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// How a route behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers as the real service does.
    Works,
    /// The first `n` calls get `status` (with `Retry-After` seconds).
    FailFirst {
        n: u32,
        status: u16,
        retry_after: Option<u32>,
    },
    /// The first `n` calls do the work, then never answer.
    HangAfterWorkFirst(u32),
    /// The first `n` calls do the work and answer 2xx with a body that is
    /// not JSON (a proxy's page, a cut connection).
    GarbleAfterWorkFirst(u32),
    /// Every call gets `status` until the behaviour is changed.
    AlwaysFail(u16),
}

/// What the fakes received.
#[derive(Debug, Default)]
pub struct Received {
    pub hubspot_tasks: Vec<J>,
    pub hubspot_patches: Vec<(String, J)>,
    pub pipedrive_activities: Vec<J>,
    pub pipedrive_patches: Vec<(String, J)>,
    pub slack: Vec<J>,
    /// (the body, whether its signature verified).
    pub webhooks: Vec<(J, bool)>,
    /// Calls per route, failed ones included.
    pub calls: BTreeMap<&'static str, u32>,
}

struct Inner {
    received: Mutex<Received>,
    plan: Mutex<BTreeMap<&'static str, Behaviour>>,
    key: Vec<u8>,
}

/// The fake services, on one local port.
#[derive(Clone)]
pub struct FakeSinks {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl FakeSinks {
    /// Starts the fakes on 127.0.0.1:0.
    pub async fn start() -> FakeSinks {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD
            .decode(OUTBOUND_SECRET.trim_start_matches("whsec_"))
            .unwrap();
        let inner = Arc::new(Inner {
            received: Mutex::new(Received::default()),
            plan: Mutex::new(BTreeMap::new()),
            key,
        });
        let app = Router::new()
            .route("/crm/v3/objects/tasks", post(hubspot_create))
            .route("/crm/v3/objects/tasks/search", post(hubspot_search))
            .route("/crm/v3/objects/{object}/{id}", patch(hubspot_patch))
            .route(
                "/api/v2/activities",
                post(pipedrive_create).get(pipedrive_list),
            )
            .route("/api/v2/{kind}/{id}", patch(pipedrive_patch))
            .route("/services/T0/B0/secret", post(slack))
            .route("/receiver", post(webhook))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeSinks { addr, inner }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn slack_url(&self) -> String {
        format!("http://{}/services/T0/B0/secret", self.addr)
    }

    pub fn webhook_url(&self) -> String {
        format!("http://{}/receiver", self.addr)
    }

    /// Sets how `route` behaves from now on (`hubspot.create`,
    /// `hubspot.search`, `hubspot.patch`, `pipedrive.create`,
    /// `pipedrive.list`, `pipedrive.patch`, `slack`, `webhook`).
    pub fn set(&self, route: &'static str, b: Behaviour) {
        self.inner.plan.lock().unwrap().insert(route, b);
    }

    /// Reads what was received.
    pub fn received<T>(&self, f: impl FnOnce(&Received) -> T) -> T {
        f(&self.inner.received.lock().unwrap())
    }
}

enum Step {
    Answer,
    Fail(Response),
    HangAfterWork,
    GarbleAfterWork,
}

/// A 2xx whose body is not the JSON the API promises.
fn garbled() -> Response {
    (StatusCode::CREATED, "<html>upstream reset</html>").into_response()
}

/// Counts the call and says what this one does.
fn step(inner: &Inner, route: &'static str) -> Step {
    let n = {
        let mut r = inner.received.lock().unwrap();
        let c = r.calls.entry(route).or_insert(0);
        *c += 1;
        *c
    };
    let behaviour = inner
        .plan
        .lock()
        .unwrap()
        .get(route)
        .copied()
        .unwrap_or(Behaviour::Works);
    match behaviour {
        Behaviour::FailFirst {
            n: k,
            status,
            retry_after,
        } if n <= k => {
            let code = StatusCode::from_u16(status).unwrap();
            let mut res = (
                code,
                Json(json!({"status": "error", "message": "try later"})),
            )
                .into_response();
            if let Some(s) = retry_after {
                res.headers_mut()
                    .insert("retry-after", s.to_string().parse().unwrap());
            }
            Step::Fail(res)
        }
        Behaviour::AlwaysFail(status) => Step::Fail(
            (
                StatusCode::from_u16(status).unwrap(),
                "upstream is down".to_string(),
            )
                .into_response(),
        ),
        Behaviour::HangAfterWorkFirst(k) if n <= k => Step::HangAfterWork,
        Behaviour::GarbleAfterWorkFirst(k) if n <= k => Step::GarbleAfterWork,
        _ => Step::Answer,
    }
}

/// Never answers: the client times out and drops the connection.
async fn hang() -> Response {
    std::future::pending::<()>().await;
    unreachable!()
}

fn bearer_is(headers: &HeaderMap, token: &str) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {token}"))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"status": "error", "message": "Authentication credentials not found.", "category": "INVALID_AUTHENTICATION"})),
    )
        .into_response()
}

async fn hubspot_create(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Json(body): Json<J>,
) -> Response {
    if !bearer_is(&headers, HUBSPOT_TOKEN) {
        return unauthorized();
    }
    let s = step(&inner, "hubspot.create");
    if let Step::Fail(r) = s {
        return r;
    }
    let task = {
        let mut r = inner.received.lock().unwrap();
        let id = (r.hubspot_tasks.len() + 1001).to_string();
        let task = json!({
            "id": id,
            "properties": body["properties"],
            "associations": body["associations"],
            "createdAt": "2026-12-01T00:00:00Z",
            "updatedAt": "2026-12-01T00:00:00Z",
            "archived": false,
        });
        r.hubspot_tasks.push(task.clone());
        task
    };
    match s {
        Step::HangAfterWork => return hang().await,
        Step::GarbleAfterWork => return garbled(),
        _ => {}
    }
    (StatusCode::CREATED, Json(task)).into_response()
}

/// Tasks search with `associations.{object} EQ id`, as HubSpot's search
/// API takes it.
async fn hubspot_search(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Json(body): Json<J>,
) -> Response {
    if !bearer_is(&headers, HUBSPOT_TOKEN) {
        return unauthorized();
    }
    if let Step::Fail(r) = step(&inner, "hubspot.search") {
        return r;
    }
    let filter = &body["filterGroups"][0]["filters"][0];
    let (prop, value) = (
        filter["propertyName"].as_str().unwrap_or(""),
        filter["value"].as_str().unwrap_or(""),
    );
    let results: Vec<J> = inner
        .received
        .lock()
        .unwrap()
        .hubspot_tasks
        .iter()
        .filter(|t| {
            prop.starts_with("associations.")
                && t["associations"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|a| a["to"]["id"] == value))
        })
        .map(|t| {
            json!({"id": t["id"], "properties": t["properties"],
                   "createdAt": t["createdAt"], "updatedAt": t["updatedAt"], "archived": false})
        })
        .collect();
    Json(json!({"total": results.len(), "results": results})).into_response()
}

async fn hubspot_patch(
    State(inner): State<Arc<Inner>>,
    Path((object, id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<J>,
) -> Response {
    if !bearer_is(&headers, HUBSPOT_TOKEN) {
        return unauthorized();
    }
    if let Step::Fail(r) = step(&inner, "hubspot.patch") {
        return r;
    }
    inner
        .received
        .lock()
        .unwrap()
        .hubspot_patches
        .push((format!("{object}/{id}"), body.clone()));
    Json(json!({"id": id, "properties": body["properties"], "archived": false})).into_response()
}

fn pipedrive_token_ok(headers: &HeaderMap) -> bool {
    headers.get("x-api-token").and_then(|v| v.to_str().ok()) == Some(PIPEDRIVE_TOKEN)
}

fn pipedrive_unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"success": false, "error": "unauthorized access", "errorCode": 401})),
    )
        .into_response()
}

async fn pipedrive_create(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Json(body): Json<J>,
) -> Response {
    if !pipedrive_token_ok(&headers) {
        return pipedrive_unauthorized();
    }
    let s = step(&inner, "pipedrive.create");
    if let Step::Fail(r) = s {
        return r;
    }
    // API v2: `person_id` is read-only; a person is the primary participant.
    if body.get("person_id").is_some() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"success": false, "error": "'person_id' is a read-only field. Add a primary participant to set 'person_id' instead.", "code": "ERR_BAD_REQUEST"})),
        )
            .into_response();
    }
    let activity = {
        let mut r = inner.received.lock().unwrap();
        let mut a = body.clone();
        // As read back: the primary participant is the activity's person.
        if let Some(p) = body["participants"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["primary"] == true))
        {
            a["person_id"] = p["person_id"].clone();
        }
        a["id"] = json!(r.pipedrive_activities.len() + 501);
        r.pipedrive_activities.push(a.clone());
        a
    };
    match s {
        Step::HangAfterWork => return hang().await,
        Step::GarbleAfterWork => return garbled(),
        _ => {}
    }
    (
        StatusCode::CREATED,
        Json(json!({"success": true, "data": activity})),
    )
        .into_response()
}

async fn pipedrive_list(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if !pipedrive_token_ok(&headers) {
        return pipedrive_unauthorized();
    }
    if let Step::Fail(r) = step(&inner, "pipedrive.list") {
        return r;
    }
    // API v2 filters by one of the record links.
    let link = ["deal_id", "person_id", "org_id"]
        .into_iter()
        .find_map(|k| Some((k, q.get(k)?.parse::<i64>().ok()?)));
    let data: Vec<J> = inner
        .received
        .lock()
        .unwrap()
        .pipedrive_activities
        .iter()
        .filter(|a| link.is_none_or(|(k, id)| a[k].as_i64() == Some(id)))
        .cloned()
        .collect();
    Json(json!({"success": true, "data": data, "additional_data": {"next_cursor": null}}))
        .into_response()
}

async fn pipedrive_patch(
    State(inner): State<Arc<Inner>>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<J>,
) -> Response {
    if !pipedrive_token_ok(&headers) {
        return pipedrive_unauthorized();
    }
    if let Step::Fail(r) = step(&inner, "pipedrive.patch") {
        return r;
    }
    inner.received.lock().unwrap().pipedrive_patches.push((
        if kind == "deals" {
            id.clone()
        } else {
            format!("{kind}/{id}")
        },
        body,
    ));
    Json(json!({"success": true, "data": {"id": id.parse::<i64>().unwrap_or(0)}})).into_response()
}

/// Slack answers `ok` as plain text.
async fn slack(State(inner): State<Arc<Inner>>, Json(body): Json<J>) -> Response {
    if let Step::Fail(r) = step(&inner, "slack") {
        return r;
    }
    inner.received.lock().unwrap().slack.push(body);
    (StatusCode::OK, "ok").into_response()
}

async fn webhook(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Step::Fail(r) = step(&inner, "webhook") {
        return r;
    }
    let verified =
        handoff::runtime::http::hooks::verify(&inner.key, &headers, &body, jiff::Timestamp::now())
            .is_ok();
    let json: J = serde_json::from_slice(&body).unwrap_or(J::Null);
    let mut json = json;
    json["webhook-id"] = json!(headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(""));
    inner
        .received
        .lock()
        .unwrap()
        .webhooks
        .push((json, verified));
    StatusCode::NO_CONTENT.into_response()
}
