//! The request body limit, the events per request, the webhook requests
//! in flight.

use handoff::runtime::http::hooks::MAX_EVENTS;
use serde_json::{json, Value as J};

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app_with(|s| s.max_body_bytes = 1024).await;
    let over = app
        .client
        .post(app.url("/workflows"))
        .body(vec![b'x'; 1025])
        .send()
        .await
        .unwrap();
    assert_eq!(over.status(), 413);
    // Refused on its Content-Length, before any route, and still answered
    // like every refusal: JSON naming the setting (it was plain text).
    let answer: J = over.json().await.expect("a JSON answer");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("max_body_bytes (1024 bytes)") && error.contains("HANDOFF_MAX_BODY_BYTES"),
        "{answer}"
    );
    // A browser gets a page.
    let page = app
        .client
        .post(app.url("/signin"))
        .header("accept", "text/html")
        .body(vec![b'x'; 1025])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 413);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let page = page.text().await.unwrap();
    assert!(
        page.contains("<html") && page.contains("max_body_bytes"),
        "{page}"
    );
    // At the limit the body passes the layer and reaches the route, which
    // takes no POST.
    let at = app
        .client
        .post(app.url("/workflows"))
        .body(vec![b'x'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(at.status(), 405);
}

/// A deal event for the generic hook: event `id`, record `record`.
fn deal(id: &str, record: &str) -> J {
    json!({"id": id, "object": "deal", "record_id": record,
        "occurred_at": "2026-11-20T15:04:05Z",
        "record": {"name": "Acme", "stage": "Proposal"}})
}

/// Posts `body` to `/hooks/generic` as JSON.
/// A batch keeps each event's own element in the audit log (not the
/// whole body once per event: a body of thousands of small events would
/// be stored thousands of times over), one event alone keeps the body as
/// sent, and a batch of more than `MAX_EVENTS` is refused whole.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_is_stored_once_and_a_batch_past_the_most_events_is_refused_whole() {
    let app = spawn_app().await;
    let event = |id: String| deal(&id, &id);
    let post = |body: String| app.post_generic(body);
    let db = rusqlite::Connection::open(app.dir.path().join("handoff.db")).unwrap();
    let raw_of = |id: &str| -> Vec<u8> {
        db.query_row(
            "SELECT raw_body FROM events WHERE event_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap()
    };

    let batch: Vec<J> = (0..3).map(|i| event(format!("b-{i}"))).collect();
    let body = format!("[ {} ,\n {} , {} ]", batch[0], batch[1], batch[2]);
    let r = post(body).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    for (i, e) in batch.iter().enumerate() {
        assert_eq!(raw_of(&format!("b-{i}")), e.to_string().into_bytes());
    }

    let alone = format!(
        "\n  {}  \n",
        serde_json::to_string_pretty(&event("solo".into())).unwrap()
    );
    let r = post(alone.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(raw_of("solo"), alone.into_bytes());

    let too_many: Vec<J> = (0..=MAX_EVENTS).map(|i| event(format!("m-{i}"))).collect();
    let r = post(J::Array(too_many).to_string()).await;
    assert_eq!(r.status(), 413);
    let text = r.text().await.unwrap();
    assert!(
        text.contains(&format!("{} events", MAX_EVENTS + 1))
            && text.contains(&format!("at most {MAX_EVENTS}"))
            && text.contains("several requests"),
        "{text}"
    );
    let stored: i64 = db
        .query_row(
            "SELECT count(*) FROM events WHERE event_id LIKE 'm-%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, 0, "a refused batch stored some of its events");

    // At the most, a batch goes through.
    let most: Vec<J> = (0..MAX_EVENTS).map(|i| event(format!("k-{i}"))).collect();
    let r = post(J::Array(most).to_string()).await;
    assert_eq!(r.status(), 200);
}

/// Past `max_in_flight` webhook requests a hook answers 503 with
/// `Retry-After` at once. A request whose client hangs up keeps its place
/// until its work is done (its job is still in the writer's queue), and
/// that work still commits.
#[tokio::test(flavor = "multi_thread")]
async fn webhooks_past_max_in_flight_get_503_and_a_client_that_leaves_keeps_its_place() {
    let app = spawn_app_with(|s| s.max_in_flight = 1).await;
    let in_flight = || app.state.metrics.hooks_in_flight.get();
    let event = |id: &str| {
        serde_json::json!({"id": id, "object": "deal", "record_id": id,
            "occurred_at": "2026-11-20T15:04:05Z",
            "record": {"name": "Acme", "stage": "Proposal"}})
        .to_string()
    };
    // Another process holds the write lock: a hook request waits at the
    // writer (within the store's busy timeout).
    let lock = rusqlite::Connection::open(app.dir.path().join("handoff.db")).unwrap();
    let send = |body: String| app.client.post(app.url("/hooks/generic")).body(body).send();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();

    // The first request's client gives up while it waits.
    let gave_up = app
        .client
        .post(app.url("/hooks/generic"))
        .timeout(std::time::Duration::from_millis(300))
        .body(event("evt-left"))
        .send()
        .await;
    assert!(gave_up.is_err(), "answered while the lock was held");
    assert_eq!(in_flight(), 1, "the place went with the client");

    let busy = send(event("evt-second")).await.unwrap();
    assert_eq!(busy.status(), 503);
    assert_eq!(busy.headers()["retry-after"], "1");
    let text = busy.text().await.unwrap();
    assert!(
        text.contains("busy") && text.contains("send it again"),
        "{text}"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"handoff_events_total{source="generic",outcome="busy"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("handoff_hooks_in_flight 1"), "{metrics}");

    // The lock goes: the first request's work finishes and gives its
    // place back, and what it stored is there.
    lock.execute_batch("COMMIT").unwrap();
    let deadline = tokio::time::Instant::now() + crate::helpers::BOUND;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
    while in_flight() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place was never given back"
        );
        tick.tick().await;
    }
    // Its retry finds it stored.
    let retry = send(event("evt-left")).await.unwrap();
    assert_eq!(retry.status(), 200);
    let retry: serde_json::Value = retry.json().await.unwrap();
    assert_eq!(retry["events"][0]["duplicate"], true, "{retry}");
    // The refused request, sent again, is taken.
    let again = send(event("evt-second")).await.unwrap();
    assert_eq!(again.status(), 200, "{}", again.text().await.unwrap());
}

/// A client that sends its headers and then its body slowly (or never)
/// holds its own connection, not a place: with one place, a CRM's request
/// still goes through meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_body_takes_no_place_from_the_crms() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(|s| s.max_in_flight = 1).await;
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(
        b"POST /hooks/generic HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"id\":",
    )
    .await
    .unwrap();
    slow.flush().await.unwrap();
    let event = serde_json::json!({"id": "evt-fast", "object": "deal", "record_id": "D-1",
        "occurred_at": "2026-11-20T15:04:05Z", "record": {"name": "Acme", "stage": "Proposal"}});
    let r = app
        .client
        .post(app.url("/hooks/generic"))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(app.state.metrics.hooks_in_flight.get(), 0);
    drop(slow);
}

/// A generic event for a record whose CRM events wait for the CRM's API
/// would apply ahead of them: it is refused whole (503, `Retry-After`),
/// nothing stored, and taken once they are decided. A retry of an event
/// already stored still answers `duplicate`.
#[tokio::test(flavor = "multi_thread")]
async fn a_generic_event_waits_behind_its_records_waiting_crm_events() {
    use handoff::runtime::store::{NewPending, StoreExt as _};
    let app = spawn_app().await;
    let event = |id: &str, record: &str| deal(id, record).to_string();
    let post = |body: String| app.post_generic(body);
    // Stored before the CRM's event waits: its retry stays a duplicate.
    assert_eq!(post(event("g-0", "D-9")).await.status(), 200);
    let now = jiff::Timestamp::now();
    let added = app
        .state
        .store
        .write(move |tx| {
            tx.crm_add_pending(&NewPending {
                source: "hubspot".into(),
                event_id: "hs-waiting".into(),
                object: "deal".into(),
                record_id: "D-9".into(),
                event: "{}".into(),
                raw_body: b"{}".to_vec(),
                received_at: now,
                next_attempt_at: now + jiff::SignedDuration::from_hours(1),
                error: "the CRM did not answer".into(),
            })
        })
        .await
        .unwrap();
    assert!(added);

    let r = post(event("g-1", "D-9")).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "60");
    let text = r.text().await.unwrap();
    assert!(
        text.contains("an earlier event of deal `D-9` waits for the CRM's API")
            && text.contains("send it again"),
        "{text}"
    );
    let dup = post(event("g-0", "D-9")).await;
    assert_eq!(dup.status(), 200);
    assert!(dup.text().await.unwrap().contains("\"duplicate\":true"));
    // Another record is not held up.
    assert_eq!(post(event("g-2", "D-10")).await.status(), 200);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"handoff_events_total{source="generic",outcome="behind_crm"} 1"#),
        "{metrics}"
    );

    // Once the waiting event is decided (here: removed), the retry goes in.
    let rows = app
        .state
        .store
        .crm_due_pending(now + jiff::SignedDuration::from_hours(2), 10)
        .unwrap();
    let seq = rows
        .iter()
        .find(|r| r.event_id == "hs-waiting")
        .unwrap()
        .seq;
    app.state
        .store
        .write(move |tx| tx.crm_remove_pending(seq))
        .await
        .unwrap();
    assert_eq!(post(event("g-1", "D-9")).await.status(), 200);
}

/// Sends `head` and `part` of a body on a raw connection, then nothing
/// more; returns the answer's status line once the server answers or
/// closes the connection.
async fn send_raw(addr: std::net::SocketAddr, head: &str, part: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(part).await.unwrap();
    conn.flush().await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // The server answers at its 10 s body deadline; the bound is above it.
    let read = tokio::time::timeout(crate::helpers::BOUND * 2, async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to a stalled body");
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A body sent in chunks (no `Content-Length`, so the limit can only be
/// seen while reading) that grows past `max_body_bytes` is 413 on a hook
/// too, where the hook reads it before taking a place.
#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413_on_a_hook() {
    let app = spawn_app_with(|s| s.max_body_bytes = 1024).await;
    let chunk = format!("320\r\n{}\r\n", " ".repeat(0x320));
    let body = format!("{chunk}{chunk}0\r\n\r\n");
    let status = send_raw(
        app.addr,
        "POST /hooks/generic HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, "HTTP/1.1 413 Payload Too Large");
}

/// A body that stops arriving is cut off at the body deadline on every
/// route, the sign-in form (which needs no token) included: its sender
/// gets 408 and the connection does not stay open.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_stops_arriving_gets_408_on_any_route() {
    let app = spawn_app().await;
    let status = send_raw(
        app.addr,
        "POST /signin HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100000\r\n\r\n",
        b"who=ana",
    )
    .await;
    assert_eq!(status, "HTTP/1.1 408 Request Timeout");
}

/// The refusals axum and tower-http make themselves (a query or a JSON
/// body that does not parse, a missing content type, an unknown route or
/// method) are answered like ours: JSON with an `error` saying what to fix.
#[tokio::test]
async fn every_refusal_is_json_with_an_error() {
    let app = spawn_app().await;
    let error_of = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let allow = r
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_string());
        let body: J = r.json().await.expect("a JSON answer");
        (
            status,
            body["error"].as_str().unwrap_or_default().to_string(),
            allow,
        )
    };
    let (status, error, _) = error_of(app.get("/handoffs?limit=abc").await).await;
    assert_eq!(status, 400);
    assert!(error.contains("limit"), "{error}");
    let (status, error, _) = error_of(app.get("/handoffs?status=Review").await).await;
    assert_eq!(status, 400);
    assert!(
        error.contains("write one of paused, review, proceeded"),
        "{error}"
    );
    let r = app.get("/handoffs?status=&workflow=").await;
    assert_eq!(r.status(), 200, "an empty value is no filter");
    let (status, error, _) = error_of(app.get("/nowhere").await).await;
    assert_eq!(status, 404);
    assert!(error.contains("API section"), "{error}");
    let r = app
        .client
        .delete(app.url("/handoffs"))
        .send()
        .await
        .unwrap();
    let (status, error, allow) = error_of(r).await;
    assert_eq!(status, 405);
    assert!(error.contains("does not take DELETE"), "{error}");
    assert!(allow.is_some_and(|a| a.contains("GET")));
    let r = app
        .client
        .post(app.url("/handoffs/h-1/approve"))
        .header("content-type", "text/plain")
        .body("who=maya")
        .send()
        .await
        .unwrap();
    let (status, error, _) = error_of(r).await;
    assert_eq!(status, 415);
    assert!(error.contains("Content-Type: application/json"), "{error}");
    let r = app
        .client
        .post(app.url("/handoffs/h-1/approve"))
        .json(&json!({"who": 5}))
        .send()
        .await
        .unwrap();
    let (status, error, _) = error_of(r).await;
    assert_eq!(status, 422);
    assert!(error.contains("who"), "{error}");
}
