//! `examples/axum_webhook.rs`, the engine embedded in someone else's axum
//! app, driven over real HTTP: the example's own router is compiled into
//! this test (so what runs is exactly the example's code) and served on
//! 127.0.0.1:0.

#[allow(dead_code)] // its `main` is the example's, not ours
#[path = "../../examples/axum_webhook.rs"]
mod axum_webhook;

use serde_json::{json, Value as J};

async fn start() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let (set, _) = handoff::compile::load(&[dir]).expect("the bundled workflows load");
    let app = axum_webhook::router(axum_webhook::Engine::new(set));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/webhook")
}

async fn post(url: &str, body: String) -> (u16, J) {
    let res = reqwest::Client::new()
        .post(url)
        .body(body)
        .send()
        .await
        .expect("the example answers");
    let status = res.status().as_u16();
    (status, res.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn the_embedded_webhook_decides_remembers_and_refuses_bad_input() {
    let url = start().await;
    let sample = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/events/closed_won.json"),
    )
    .unwrap();

    // The bundled sample: the deal is created, then won with every field
    // filled: the handoff proceeds and plans its kickoff task.
    let (status, body) = post(&url, sample.clone()).await;
    assert_eq!(status, 200, "{body}");
    let won = &body["outcomes"][1]["handoffs"][0];
    assert_eq!(won["workflow"], "Sales to Delivery");
    assert_eq!(won["status"], "proceeded", "{body}");
    let kinds: Vec<&str> = won["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["type"].as_str())
        .collect();
    assert!(kinds.contains(&"task"), "{kinds:?}");

    // The state lives between requests: the same events again are
    // duplicates and plan nothing.
    let (status, body) = post(&url, sample).await;
    assert_eq!(status, 200);
    assert_eq!(body["outcomes"][1]["duplicate"], true, "{body}");

    // A won deal missing its risk notes pauses, on a record of its own.
    let paused = json!({"id": "e-9", "object": "deal", "record_id": "D-9",
        "record": {"name": "Beta", "stage": "Closed Won", "amount": 5000, "owner": "sam@example.com",
                   "buyer_goals": "Go live", "main_contact": "li@beta.example",
                   "signed_scope": "https://docs.example/sow", "start_date": "2026-12-14",
                   "promised_deliverables": ["Setup"], "pricing_exceptions": "None",
                   "kickoff_preference": "Async"},
        "previous": {"stage": "Proposal"}});
    let (status, body) = post(&url, paused.to_string()).await;
    assert_eq!(status, 200);
    let h = &body["outcomes"][0]["handoffs"][0];
    assert_eq!(h["status"], "paused", "{body}");
    assert_eq!(h["missing"], json!(["risk_notes"]));

    // Bad input: an object the workflows do not declare, and a date that
    // is not one, are refused with the engine's message.
    let (status, body) = post(
        &url,
        json!({"object": "invoice", "record_id": "I-1", "record": {}}).to_string(),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body["error"].as_str().unwrap().contains("invoice"),
        "{body}"
    );
    let (status, body) = post(
        &url,
        json!({"object": "deal", "record_id": "D-2", "record": {"start_date": "next tuesday"}})
            .to_string(),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body["error"].as_str().unwrap().contains("start_date"),
        "{body}"
    );
}
