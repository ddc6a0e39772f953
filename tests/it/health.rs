//! `/healthz`, `/readyz`, `/metrics`, and a clean shutdown.

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_answers_while_the_process_runs() {
    let app = spawn_app().await;
    let res = app.get_anonymous("/healthz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ok\n");
}

#[tokio::test]
async fn readyz_names_the_active_version() {
    let app = spawn_app().await;
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["ready"], true);
    assert_eq!(
        body["version"].as_str().unwrap(),
        app.state.workflows.active().set.version()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_503_with_a_reason_while_the_store_cannot_write() {
    let app = spawn_app().await;
    // Another process holds the database's write lock.
    let other = rusqlite::Connection::open(app.dir.path().join("handoff.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["ready"], false);
    let reason = body["reason"].as_str().unwrap();
    assert!(reason.contains("the store"), "{reason}");
    assert!(reason.contains("locked by another process"), "{reason}");

    // The lock goes: ready again (polled, within the bound).
    other.execute_batch("COMMIT").unwrap();
    let deadline = tokio::time::Instant::now() + crate::helpers::BOUND;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(20));
    loop {
        tick.tick().await;
        let res = app.get("/readyz").await;
        if res.status() == 200 {
            let body: serde_json::Value = res.json().await.unwrap();
            assert!(body.get("reason").is_none(), "{body}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still not ready");
    }
}

/// `handoff_store_ready` follows what `/readyz` finds, scrape by scrape.
#[tokio::test(flavor = "multi_thread")]
async fn the_store_ready_series_is_0_while_the_store_cannot_write() {
    let app = spawn_app().await;
    let ready = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("handoff_store_ready "))
            .map(str::to_string)
    };
    let text = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(ready(&text).as_deref(), Some("1"), "{text}");

    let other = rusqlite::Connection::open(app.dir.path().join("handoff.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200, "the scrape itself still answers");
    let text = res.text().await.unwrap();
    assert_eq!(ready(&text).as_deref(), Some("0"), "{text}");

    other.execute_batch("COMMIT").unwrap();
    let deadline = tokio::time::Instant::now() + crate::helpers::BOUND;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(20));
    loop {
        tick.tick().await;
        let text = app.get("/metrics").await.text().await.unwrap();
        if ready(&text).as_deref() == Some("1") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still 0: {text}");
    }
}

#[tokio::test]
async fn readyz_is_503_while_shutting_down() {
    let app = spawn_app().await;
    app.state
        .draining
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["reason"].as_str().unwrap().contains("shutting down"));
}

#[tokio::test]
async fn metrics_lists_every_series_in_prometheus_text() {
    let app = spawn_app().await;
    app.state.metrics.events.inc(&["generic", "applied"]);
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = res.text().await.unwrap();
    for series in [
        "handoff_events_total",
        "handoff_decision_seconds",
        "handoff_ingest_commit_seconds",
        "handoff_ingest_batch_size",
        "handoff_reloads_total",
        "handoff_reloads_rejected_total",
        "handoff_outbox_depth",
        "handoff_store_ready",
        "handoff_field_errors_total",
        "handoff_unknown_values_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {series} ")),
            "{series} missing"
        );
    }
    assert!(text.contains("handoff_events_total{source=\"generic\",outcome=\"applied\"} 1\n"));
}

#[tokio::test]
async fn workflows_lists_the_loaded_files_and_version() {
    let app = spawn_app().await;
    let view = app.workflows().await;
    assert_eq!(view.version, crate::helpers::version_of(&app.workflow("")));
    let names: Vec<&str> = view
        .files
        .iter()
        .map(|f| f.path.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "crm.handoff",
            "marketing_to_sales.handoff",
            "sales_to_delivery.handoff"
        ]
    );
    assert!(view.handoffs.contains(&"Sales to Delivery".to_string()));
    assert!(view.rejected.is_none());
    assert!(view.loaded_at.parse::<jiff::Timestamp>().is_ok());
}

#[tokio::test]
async fn shutdown_stops_accepting_and_returns_ok() {
    let app = spawn_app().await;
    let url = app.url("/healthz");
    let client = app.client.clone();
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    app.shutdown().await.expect("a clean shutdown");
    // A new client: a fresh connection must be refused now.
    assert!(reqwest::Client::new().get(&url).send().await.is_err());
}
