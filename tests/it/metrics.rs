//! `/metrics` after real events: every series the issue lists moves when
//! the thing it counts happens (and not before).

use serde_json::json;

use crate::helpers::spawn_app;

/// The value of the sample line `name` (with its labels, exactly as
/// rendered), or 0 when the series has no such line yet.
pub fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().expect("a number"))
}

#[tokio::test(flavor = "multi_thread")]
async fn each_series_moves_with_the_events_it_counts() {
    let app = spawn_app().await;
    let before = app.get("/metrics").await.text().await.unwrap();
    for name in [
        "handoff_decision_seconds_count",
        "handoff_ingest_commit_seconds_count",
        "handoff_outbox_depth",
    ] {
        assert_eq!(sample(&before, name), 0.0, "{name} before any event");
    }
    // Start-up commits too (the workflow version is kept): count from here.
    let batches_before = sample(&before, "handoff_ingest_batch_size_count");
    let jobs_before = sample(&before, "handoff_ingest_batch_size_sum");

    // One won deal with every field (proceeds: four actions for the
    // outbox), then a batch of two events with a bad date and a stage the
    // workflows do not list (both stored, counted, not rejected).
    let won = json!({"id": "m-1", "object": "deal", "record_id": "D-1",
        "record": {"name": "Acme", "stage": "Closed Won", "owner": "sam@example.com",
            "amount": 12000, "segment": "mid", "buyer_goals": "Faster onboarding",
            "main_contact": "jo@acme.example", "signed_scope": "https://docs.example/sow",
            "start_date": "2026-12-07", "promised_deliverables": ["Playbook"],
            "pricing_exceptions": "None", "risk_notes": "Busy December",
            "kickoff_preference": "Tuesdays"},
        "previous": {"stage": "Proposal"}});
    let odd = json!([
        {"id": "m-2", "object": "deal", "record_id": "D-2",
         "record": {"name": "Beta", "start_date": "next tuesday"}},
        {"id": "m-3", "object": "deal", "record_id": "D-3",
         "record": {"name": "Gamma", "stage": "Closed Won (legacy)"}}
    ]);
    for body in [&won, &odd] {
        let res = app
            .client
            .post(app.url("/hooks/generic"))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }

    let text = app.get("/metrics").await.text().await.unwrap();
    // Three events decided, each timed.
    assert_eq!(sample(&text, "handoff_decision_seconds_count"), 3.0);
    assert!(sample(&text, "handoff_decision_seconds_sum") > 0.0);
    // Two requests, each waited for its commit.
    assert_eq!(sample(&text, "handoff_ingest_commit_seconds_count"), 2.0);
    assert!(sample(&text, "handoff_ingest_commit_seconds_sum") > 0.0);
    // Two write jobs (one per request), in one or two batches, and the
    // scrape's own readiness probe (`handoff_store_ready`) in a third.
    let batches = sample(&text, "handoff_ingest_batch_size_count") - batches_before;
    assert!((2.0..=3.0).contains(&batches), "{batches} batches");
    let jobs = sample(&text, "handoff_ingest_batch_size_sum") - jobs_before;
    assert_eq!(jobs, 3.0);
    assert_eq!(sample(&text, "handoff_store_ready"), 1.0);
    // The won deal's assign, task and notification wait for delivery; the
    // email draft waits for a person, not for delivery.
    assert_eq!(sample(&text, "handoff_outbox_depth"), 3.0, "{text}");
    assert_eq!(
        sample(
            &text,
            "handoff_field_errors_total{object=\"deal\",field=\"record.start_date\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "handoff_unknown_values_total{object=\"deal\",field=\"record.stage\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "handoff_events_total{source=\"generic\",outcome=\"applied\"}"
        ),
        3.0
    );

    // The sender retries the batch with the bad values: two duplicates,
    // and the bad values are not counted a second time.
    let res = app
        .client
        .post(app.url("/hooks/generic"))
        .body(odd.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        sample(
            &text,
            "handoff_events_total{source=\"generic\",outcome=\"duplicate\"}"
        ),
        2.0
    );
    for bad in [
        "handoff_field_errors_total{object=\"deal\",field=\"record.start_date\"}",
        "handoff_unknown_values_total{object=\"deal\",field=\"record.stage\"}",
    ] {
        assert_eq!(sample(&text, bad), 1.0, "{bad}");
    }
}
