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
