//! The generic hook over real HTTP: signed and unsigned, batched, retried,
//! malformed, a bad field value and an unknown stage, read back through the
//! handoffs API; approval and rejection by a person; a restart keeps paused handoffs.

use base64::Engine as _;
use handoff::runtime::http::hooks::sign;
use handoff::runtime::secret::Secret;
use serde_json::{json, Value as J};

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn won(id: &str, record: &str, risk: Option<&str>) -> J {
    let mut fields = json!({"name": format!("Deal {record}"), "stage": "Closed Won",
        "owner": "sam@example.com", "amount": 8000, "segment": "smb",
        "buyer_goals": "Launch by January", "main_contact": "li@beta.example",
        "signed_scope": "https://docs.example/sow", "start_date": "2026-12-14",
        "promised_deliverables": ["Setup"], "pricing_exceptions": "None",
        "kickoff_preference": "Async first"});
    if let Some(r) = risk {
        fields["risk_notes"] = json!(r);
    }
    json!({"id": id, "object": "deal", "record_id": record,
           "occurred_at": "2026-11-20T15:04:05Z", "record": fields,
           "previous": {"stage": "Proposal"}})
}

async fn post(app: &TestApp, body: &J) -> reqwest::Response {
    app.client
        .post(app.url("/hooks/generic"))
        .body(body.to_string())
        .send()
        .await
        .expect("the server answers")
}

async fn post_signed(app: &TestApp, body: &J, id: &str, at: i64) -> reqwest::Response {
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap();
    let bytes = body.to_string();
    app.client
        .post(app.url("/hooks/generic"))
        .header("webhook-id", id)
        .header("webhook-timestamp", at.to_string())
        .header("webhook-signature", sign(&key, id, at, bytes.as_bytes()))
        .body(bytes)
        .send()
        .await
        .expect("the server answers")
}

async fn json_of(r: reqwest::Response) -> J {
    r.json().await.expect("a JSON body")
}

#[tokio::test(flavor = "multi_thread")]
async fn events_pause_resume_and_read_back_through_the_api() {
    let app = spawn_app().await;
    let r = post(&app, &won("e1", "D-1", None)).await;
    assert_eq!(r.status(), 200);
    let body = json_of(r).await;
    assert_eq!(
        body["events"][0]["outcome"]["handoffs"][0]["status"],
        "paused"
    );

    // A retry: 200, marked duplicate, nothing new.
    let body = json_of(post(&app, &won("e1", "D-1", None)).await).await;
    assert_eq!(body["events"][0]["duplicate"], true);

    let list = json_of(app.get("/handoffs?status=paused").await).await;
    let handoffs = list["handoffs"].as_array().unwrap();
    assert_eq!(handoffs.len(), 1);
    assert_eq!(handoffs[0]["missing"], json!(["risk_notes"]));
    let id = handoffs[0]["id"].as_str().unwrap().to_string();

    // A batch: an unrelated record, then the missing field: applied in order.
    let batch = json!([
        won("e2", "D-2", Some("None")),
        {"id": "e3", "object": "deal", "record_id": "D-1", "record": {"risk_notes": "Holiday freeze"}}
    ]);
    let body = json_of(post(&app, &batch).await).await;
    assert_eq!(
        body["events"][1]["outcome"]["handoffs"][0]["status"],
        "resumed"
    );

    let detail = json_of(app.get(&format!("/handoffs/{id}")).await).await;
    assert_eq!(detail["status"], "proceeded");
    assert_eq!(detail["history"].as_array().unwrap().len(), 2);
    assert_eq!(detail["record"]["risk_notes"], "Holiday freeze");
    assert!(detail["brief"]["markdown"]
        .as_str()
        .unwrap()
        .contains("Holiday freeze"));
    assert!(detail["decisions"][0]["outcome"]["handoffs"][0]["trace"].is_array());
    let kinds: Vec<&str> = detail["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["notify", "assign", "task", "notify", "email_draft"]);
    let tasks = json_of(app.get("/tasks").await).await;
    assert_eq!(tasks["tasks"].as_array().unwrap().len(), 2);
    let audit = detail["decisions"][0]["audit_id"].as_i64().unwrap();
    let event = json_of(app.get(&format!("/events/{audit}")).await).await;
    assert_eq!(event["event"]["record_id"], "D-1");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_the_right_answer_and_never_loses_the_event() {
    let app = spawn_app().await;
    // Malformed JSON: 400 naming the place.
    let r = app
        .client
        .post(app.url("/hooks/generic"))
        .body("{\"id\": \"x\",\n \"object\": }")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(json_of(r).await["error"]
        .as_str()
        .unwrap()
        .contains("line 2"));
    // An object the workflows don't declare: 422.
    let r = post(
        &app,
        &json!({"id": "x", "object": "ticket", "record_id": "T-1", "record": {}}),
    )
    .await;
    assert_eq!(r.status(), 422);
    assert!(json_of(r).await["error"]
        .as_str()
        .unwrap()
        .contains("`ticket`"));
    // A bad date and an undeclared stage: stored, applied, counted.
    let mut ev = won("e9", "D-9", Some("None"));
    ev["record"]["start_date"] = json!("next tuesday");
    ev["record"]["stage"] = json!("Closed-Won");
    let r = post(&app, &ev).await;
    assert_eq!(r.status(), 200);
    let audit = json_of(r).await["events"][0]["audit_id"].as_i64().unwrap();
    let event = json_of(app.get(&format!("/events/{audit}")).await).await;
    assert_eq!(
        event["field_errors"]["errors"][0]["field"],
        "record.start_date"
    );
    assert_eq!(
        event["field_errors"]["unknown_values"][0]["value"],
        "\"Closed-Won\""
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("field=\"record.start_date\""), "{metrics}");
    assert!(metrics.contains("field=\"record.stage\""), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configured_secret_makes_the_signature_required() {
    let app = spawn_app_with(|s| s.secrets.generic_secret = Some(Secret::new(SECRET))).await;
    let now = jiff::Timestamp::now().as_second();
    assert_eq!(post(&app, &won("s1", "D-1", None)).await.status(), 401);
    assert_eq!(
        post_signed(&app, &won("s1", "D-1", None), "m1", now - 600)
            .await
            .status(),
        401
    );
    assert_eq!(
        post_signed(&app, &won("s1", "D-1", None), "m1", now)
            .await
            .status(),
        200
    );
    // Nothing from the refused requests was stored.
    let list = json_of(app.get("/handoffs").await).await;
    assert_eq!(list["handoffs"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_review_is_approved_over_http() {
    let app = spawn_app().await;
    let mut ev = won("r1", "D-5", Some("None"));
    ev["record"]["custom_scope"] = json!(true);
    post(&app, &ev).await;
    let list = json_of(app.get("/handoffs?status=review").await).await;
    let id = list["handoffs"][0]["id"].as_str().unwrap().to_string();
    let r = app
        .client
        .post(app.url(&format!("/handoffs/{id}/approve")))
        .json(&json!({"who": "maya@example.com", "note": "scope checked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let detail = json_of(app.get(&format!("/handoffs/{id}")).await).await;
    assert_eq!(detail["status"], "proceeded");
    assert_eq!(detail["notes"][0]["who"], "maya@example.com");
    // Not in review any more.
    let r = app
        .client
        .post(app.url(&format!("/handoffs/{id}/approve")))
        .json(&json!({"who": "maya@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_review_is_rejected_over_http_with_who_and_a_note() {
    let app = spawn_app().await;
    let mut ev = won("x1", "D-6", Some("None"));
    ev["record"]["custom_scope"] = json!(true);
    post(&app, &ev).await;
    let list = json_of(app.get("/handoffs?status=review").await).await;
    let id = list["handoffs"][0]["id"].as_str().unwrap().to_string();
    let reject = |body: J| {
        app.client
            .post(app.url(&format!("/handoffs/{id}/reject")))
            .json(&body)
            .send()
    };
    // Without a person, nothing changes.
    let r = reject(json!({"who": " ", "note": "no"})).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        json_of(app.get(&format!("/handoffs/{id}")).await).await["status"],
        "review"
    );

    let r = reject(json!({"who": "maya@example.com", "note": "scope too wide"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = json_of(r).await;
    assert_eq!(body["outcome"]["status"], "rejected");
    assert_eq!(body["outcome"]["actions"], json!([]));

    let detail = json_of(app.get(&format!("/handoffs/{id}")).await).await;
    assert_eq!(detail["status"], "rejected");
    let last = detail["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["from"], "review");
    assert_eq!(last["to"], "rejected");
    assert_eq!(last["by"]["person"], "maya@example.com");
    assert_eq!(last["note"], "scope too wide");
    assert_eq!(detail["notes"][0]["kind"], "reject");
    assert_eq!(detail["notes"][0]["who"], "maya@example.com");
    assert_eq!(detail["notes"][0]["text"], "scope too wide");
    // The normal path's kickoff task was never queued.
    let tasks: Vec<J> = detail["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["action"]["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("Kickoff"))
        })
        .cloned()
        .collect();
    assert_eq!(tasks, Vec::<J>::new());

    // A rejected handoff can be neither rejected nor approved again.
    let r = reject(json!({"who": "maya@example.com"})).await.unwrap();
    assert_eq!(r.status(), 409);
    let r = app
        .client
        .post(app.url(&format!("/handoffs/{id}/approve")))
        .json(&json!({"who": "maya@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(
        json_of(app.get("/handoffs?status=rejected").await).await["handoffs"][0]["id"],
        id.as_str()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn paused_and_in_review_handoffs_resume_after_a_restart() {
    let ws = crate::helpers::workspace();
    let (workflows, db) = (ws.path().join("workflows"), ws.path().join("handoff.db"));
    let start = || {
        let (workflows, db) = (workflows.clone(), db.clone());
        spawn_app_with(move |s| {
            s.workflows = workflows;
            s.db = db;
        })
    };
    let app = start().await;
    post(&app, &won("p1", "D-1", None)).await;
    let mut review = won("r1", "D-2", Some("None"));
    review["record"]["custom_scope"] = json!(true);
    post(&app, &review).await;
    app.shutdown().await.expect("a clean stop");

    // A new server on the same database and workflows.
    let app = start().await;
    let paused = json_of(app.get("/handoffs?status=paused").await).await;
    assert_eq!(paused["handoffs"][0]["record_id"], "D-1");
    let in_review = json_of(app.get("/handoffs?status=review").await).await;
    let review_id = in_review["handoffs"][0]["id"].as_str().unwrap().to_string();

    // The missing field arrives: it resumes with the plan it would have had.
    let fill = json!({"id": "p2", "object": "deal", "record_id": "D-1",
                      "record": {"risk_notes": "Holiday freeze"}});
    let body = json_of(post(&app, &fill).await).await;
    let h = &body["events"][0]["outcome"]["handoffs"][0];
    assert_eq!(h["status"], "resumed");
    let kinds: Vec<&str> = h["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["assign", "task", "notify", "email_draft"]);
    assert_eq!(h["answers"]["next_owner"], "ana@example.com");

    // The review is approved by a person and proceeds.
    let r = app
        .client
        .post(app.url(&format!("/handoffs/{review_id}/approve")))
        .json(&json!({"who": "maya@example.com", "note": "after the restart"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let detail = json_of(app.get(&format!("/handoffs/{review_id}")).await).await;
    assert_eq!(detail["status"], "proceeded");
}

/// An event without an id is named by its message's `webhook-id` and its
/// content: a retry of the message is a duplicate (batched alike or not),
/// a later message with the same content (a deal moved back to a stage it
/// had) is a new event, and so is another event sent under a message id
/// used before. Without either, an identical copy is taken for a retry
/// (the content hash).
#[tokio::test(flavor = "multi_thread")]
async fn an_event_without_an_id_is_named_by_its_message() {
    let app = spawn_app().await;
    let send = |body: J, message: Option<&'static str>| {
        let app = &app;
        async move {
            let mut req = app
                .client
                .post(app.url("/hooks/generic"))
                .body(body.to_string());
            if let Some(m) = message {
                req = req.header("webhook-id", m);
            }
            let r = req.send().await.expect("the server answers");
            assert_eq!(r.status(), 200);
            json_of(r).await
        }
    };
    let stage = |s: &str| {
        json!({"object": "deal", "record_id": "D-50",
               "record": {"name": "Deal D-50", "stage": s}})
    };
    let id = |answer: &J, i: usize| {
        answer["events"][i]["outcome"]["event"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let proposal = send(stage("Proposal"), Some("msg-1")).await;
    assert!(id(&proposal, 0).starts_with("msg-1#"), "{proposal}");
    let retry = send(stage("Proposal"), Some("msg-1")).await;
    assert_eq!(retry["events"][0]["duplicate"], true, "{retry}");
    // The same message resent as a list of one: still the same event.
    let listed = send(J::Array(vec![stage("Proposal")]), Some("msg-1")).await;
    assert_eq!(listed["events"][0]["duplicate"], true, "{listed}");
    // Another event under a message id used before is not a retry.
    let other = send(stage("Lead"), Some("msg-1")).await;
    assert_eq!(other["events"][0]["duplicate"], false, "{other}");

    let back = send(stage("Proposal"), Some("msg-3")).await;
    assert_eq!(back["events"][0]["duplicate"], false, "{back}");
    let row = app.state.store.crm_record("deal", "D-50").unwrap().unwrap();
    let state: J = serde_json::from_str(&row.state).unwrap();
    assert_eq!(state["snapshot"]["stage"], "Proposal", "back where it was");

    let batch = send(
        J::Array(vec![stage("Lead"), stage("Proposal")]),
        Some("msg-4"),
    )
    .await;
    assert_eq!(batch["events"][1]["duplicate"], false, "{batch}");
    assert!(id(&batch, 0).starts_with("msg-4#") && id(&batch, 0) != id(&batch, 1));

    // One message that goes there and back (A, B, A): three events, the
    // second A told apart by its count; sent again, three duplicates.
    let there_and_back = J::Array(vec![stage("Lead"), stage("Qualified"), stage("Lead")]);
    let first = send(there_and_back.clone(), Some("msg-5")).await;
    for i in 0..3 {
        assert_eq!(first["events"][i]["duplicate"], false, "{first}");
    }
    assert_eq!(id(&first, 2), format!("{}.2", id(&first, 0)));
    let row = app.state.store.crm_record("deal", "D-50").unwrap().unwrap();
    let state: J = serde_json::from_str(&row.state).unwrap();
    assert_eq!(
        state["snapshot"]["stage"], "Lead",
        "ends where the message ends"
    );
    let resent = send(there_and_back, Some("msg-5")).await;
    for i in 0..3 {
        assert_eq!(resent["events"][i]["duplicate"], true, "{resent}");
    }

    // Neither an id nor a message id: the same content is a retry.
    let once = send(stage("Lead"), None).await;
    assert_eq!(once["events"][0]["duplicate"], false, "{once}");
    let again = send(stage("Lead"), None).await;
    assert_eq!(again["events"][0]["duplicate"], true, "{again}");
}

/// An `occurred_at` far ahead of the server's clock (a typo of 2100) is
/// set aside as a field error and the event applies undated: its values
/// used to count as newer than every real change until 2100, and the
/// record kept them.
#[tokio::test(flavor = "multi_thread")]
async fn an_event_dated_far_ahead_does_not_freeze_its_record() {
    let app = spawn_app().await;
    let deal = |id: &str, at: &str, name: &str| {
        json!({"id": id, "object": "deal", "record_id": "D-F", "occurred_at": at,
               "record": {"name": name, "stage": "Proposal"}})
    };
    let r = post(&app, &deal("f1", "2100-01-01T00:00:00Z", "Typo Inc")).await;
    assert_eq!(r.status(), 200);
    let audit = json_of(r).await["events"][0]["audit_id"].as_i64().unwrap();
    let event = json_of(app.get(&format!("/events/{audit}")).await).await;
    let error = &event["field_errors"]["errors"][0];
    assert_eq!(error["field"], "occurred_at", "{event:#}");
    assert!(
        error["expected"]
            .as_str()
            .unwrap()
            .contains("fix the sender's clock"),
        "{error}"
    );
    let now = jiff::Timestamp::now().to_string();
    assert_eq!(post(&app, &deal("f2", &now, "Acme")).await.status(), 200);
    let db = rusqlite::Connection::open(app.dir.path().join("handoff.db")).unwrap();
    let state: String = db
        .query_row(
            "SELECT state FROM records WHERE record_id = 'D-F'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(state.contains("Acme") && !state.contains("Typo"), "{state}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("field=\"occurred_at\""), "{metrics}");
    // The audit row keeps the event as decided (undated) ...
    assert_eq!(event["event"]["record_id"], "D-F", "{event:#}");
    assert!(event["event"]["occurred_at"].is_null(), "{event:#}");
    // ... and its identity as received: an id-less copy sent again is a
    // duplicate.
    let idless = json!({"object": "deal", "record_id": "D-G", "occurred_at": "2100-01-01T00:00:00Z",
                        "record": {"name": "Typo Inc", "stage": "Proposal"}});
    assert_eq!(post(&app, &idless).await.status(), 200);
    let again = json_of(post(&app, &idless).await).await;
    assert_eq!(again["events"][0]["duplicate"], true, "{again}");
}

/// A verdict on an id no handoff has is 404 (409 is for one not in review);
/// `who` is one line and a note has a bound.
#[tokio::test(flavor = "multi_thread")]
async fn a_verdict_names_a_handoff_that_exists_and_who_on_one_line() {
    let app = spawn_app().await;
    let verdict = |id: &str, body: J| {
        let req = app
            .client
            .post(app.url(&format!("/handoffs/{id}/approve")))
            .json(&body);
        async move { req.send().await.unwrap() }
    };
    let r = verdict("h-nope", json!({"who": "maya@example.com"})).await;
    assert_eq!(r.status(), 404);
    assert!(json_of(r).await["error"]
        .as_str()
        .unwrap()
        .contains("no handoff with that id"));
    let mut ev = won("v1", "D-V", Some("None"));
    ev["record"]["custom_scope"] = json!(true);
    post(&app, &ev).await;
    let list = json_of(app.get("/handoffs?status=review").await).await;
    let id = list["handoffs"][0]["id"].as_str().unwrap().to_string();
    for (body, why) in [
        (
            json!({"who": "maya@example.com\n<script>x</script>"}),
            "on one line",
        ),
        (json!({"who": "x".repeat(201)}), "at most 200 characters"),
        (
            json!({"who": "maya@example.com", "note": "n".repeat(10_001)}),
            "longer than 10000",
        ),
        (
            json!({"who": "maya@example.com", "note": "a\u{1b}[31m"}),
            "control character",
        ),
    ] {
        let r = verdict(&id, body).await;
        assert_eq!(r.status(), 400);
        let error = json_of(r).await["error"].as_str().unwrap().to_string();
        assert!(error.contains(why), "{error}");
    }
    // Still in review; a proper verdict goes through, `who` trimmed.
    let r = verdict(
        &id,
        json!({"who": "  maya@example.com\n", "note": "ok\nfine"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let detail = json_of(app.get(&format!("/handoffs/{id}")).await).await;
    let who: Vec<&str> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["by"]["person"].as_str())
        .collect();
    assert_eq!(who, ["maya@example.com"], "{detail:#}");
    let r = verdict(&id, json!({"who": "maya@example.com"})).await;
    assert_eq!(r.status(), 409);
}

/// A byte-order mark before the JSON is taken; bytes that are not UTF-8
/// are named as such; a syntax error says its line and column once.
#[tokio::test(flavor = "multi_thread")]
async fn the_generic_hook_reads_a_bom_and_names_bytes_that_are_not_utf8() {
    let app = spawn_app().await;
    let send = |body: Vec<u8>| {
        let req = app
            .client
            .post(app.url("/hooks/generic"))
            .header("content-type", "application/json")
            .body(body);
        async move { req.send().await.unwrap() }
    };
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend(won("bom-1", "D-B", Some("None")).to_string().into_bytes());
    let r = send(with_bom).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = send(b"{\"id\": \"x\", \"object\": \"de\xE9l\"}".to_vec()).await;
    assert_eq!(r.status(), 400);
    let error = json_of(r).await["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("not UTF-8 text: byte 0xE9 at offset 25"),
        "{error}"
    );
    // The offset counts the body as sent, a byte-order mark included.
    let r = send(b"\xEF\xBB\xBF{\"id\": \"x\", \"object\": \"de\xE9l\"}".to_vec()).await;
    let error = json_of(r).await["error"].as_str().unwrap().to_string();
    assert!(error.contains("byte 0xE9 at offset 28"), "{error}");
    let r = send(b"{\"id\": }".to_vec()).await;
    let error = json_of(r).await["error"].as_str().unwrap().to_string();
    assert_eq!(error.matches("column").count(), 1, "{error}");
}
