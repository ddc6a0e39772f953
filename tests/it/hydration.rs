//! Hydration: a HubSpot stage change for a deal whose other fields never
//! came by webhook is decided on the record read from the (fake) CRM API;
//! it pauses naming exactly the fields the CRM lacks; with the API down the
//! event is stored, acknowledged, and decided once the API is back; with
//! the API too slow, before HubSpot gives up on the request; and one record
//! that cannot be decided does not hold up the others' waiting events.

use handoff::runtime::secret::Secret;
use serde_json::{json, Value as J};

use crate::fake_crm::{
    events_stored, handoffs_of, hs_event, json_of, mapping, send_hubspot, wait_for, FakeCrm,
};
use crate::helpers::{spawn_app_with, TestApp};
use crate::metrics::sample;

const SECRET: &str = "hs-client-secret-hydrate";
const TOKEN: &str = "pat-na1-hydrate";

async fn app_with(fake: &FakeCrm) -> TestApp {
    let base = fake.base();
    spawn_app_with(|s| {
        s.crm = mapping(&base);
        s.secrets.hubspot_client_secret = Some(Secret::new(SECRET));
        s.secrets.hubspot_token = Some(Secret::new(TOKEN));
    })
    .await
}

/// A server on the database `db` (kept across restarts), reading the
/// fake CRM at `base`.
async fn start_at(db: std::path::PathBuf, base: String) -> TestApp {
    spawn_app_with(move |s| {
        s.db = db;
        s.crm = mapping(&base);
        s.secrets.hubspot_client_secret = Some(Secret::new(SECRET));
        s.secrets.hubspot_token = Some(Secret::new(TOKEN));
    })
    .await
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A deal as HubSpot's API holds it (every property text, dates in ms).
fn full_deal(name: &str) -> J {
    json!({
        "dealname": name,
        "dealstage": "closedwon",
        "hubspot_owner_id": "101",
        "amount": "12000",
        "deal_segment": "mid",
        "buyer_goals": "Cut onboarding time in half",
        "main_contact_email": "jo@acme.example",
        "signed_scope_url": "https://docs.example/sow",
        "start_date": "1796601600000",
        "promised_deliverables": "Onboarding playbook;Two training sessions",
        "pricing_exceptions": "None",
        "delivery_risk_notes": "Busy December",
        "kickoff_preference": "Tuesday mornings",
        "custom_scope": "false"
    })
}

/// A deal moved to closed won, as HubSpot sends the change.
fn stage_change_event(event_id: u64, deal: u64, at: i64) -> J {
    hs_event(
        event_id,
        deal,
        at,
        "deal.propertyChange",
        Some(("dealstage", "closedwon")),
    )
}

fn stage_change(event_id: u64, deal: u64, at: i64) -> String {
    J::Array(vec![stage_change_event(event_id, deal, at)]).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stage_change_alone_is_decided_on_the_record_read_from_the_crm() {
    let fake = FakeCrm::start(TOKEN).await;
    fake.put("deals", "2001", full_deal("Acme Co"));
    let mut lacking = full_deal("Beta LLC");
    // HubSpot really lacks these two: absent, and cleared (empty text).
    lacking
        .as_object_mut()
        .unwrap()
        .remove("delivery_risk_notes");
    lacking["pricing_exceptions"] = json!("");
    fake.put("deals", "2002", lacking);
    let app = app_with(&fake).await;
    let at = now_ms() - 1000;

    // Never seen before: only the stage arrives by webhook.
    let r = send_hubspot(&app, SECRET, &stage_change(1, 2001, at), now_ms()).await;
    assert_eq!(r.status(), 200);
    let answer = json_of(r).await;
    assert_eq!(
        answer["events"][0]["outcome"]["handoffs"][0]["status"], "proceeded",
        "{answer}"
    );
    let h = &handoffs_of(&app, "2001").await[0];
    assert_eq!(h["status"], "proceeded");
    assert_eq!(h["missing"], json!([]));
    let calls = fake.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].starts_with("/crm/v3/objects/deals/2001?properties="));
    assert!(calls[0].contains("delivery_risk_notes") && !calls[0].contains("dealstage"));

    // The CRM lacks two fields: paused, naming exactly those.
    let r = send_hubspot(&app, SECRET, &stage_change(2, 2002, at), now_ms()).await;
    assert_eq!(r.status(), 200);
    let h = &handoffs_of(&app, "2002").await[0];
    assert_eq!(h["status"], "paused");
    assert_eq!(h["missing"], json!(["pricing_exceptions", "risk_notes"]));

    // Filled in later, by webhook: resumes without reading the CRM again.
    let fill = J::Array(vec![
        hs_event(
            3,
            2002,
            at + 10,
            "deal.propertyChange",
            Some(("pricing_exceptions", "None")),
        ),
        hs_event(
            4,
            2002,
            at + 11,
            "deal.propertyChange",
            Some(("delivery_risk_notes", "Tight start")),
        ),
    ])
    .to_string();
    let r = send_hubspot(&app, SECRET, &fill, now_ms()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(handoffs_of(&app, "2002").await[0]["status"], "proceeded");
    assert_eq!(fake.calls().len(), 2, "{:?}", fake.calls());
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_crm_down_the_event_is_stored_and_decided_when_it_is_back() {
    let fake = FakeCrm::start(TOKEN).await;
    fake.put("deals", "3001", full_deal("Gamma Inc"));
    fake.set_down(true);
    let app = app_with(&fake).await;
    let at = now_ms() - 1000;

    let r = send_hubspot(&app, SECRET, &stage_change(10, 3001, at), now_ms()).await;
    assert_eq!(r.status(), 200, "stored, so acknowledged");
    let answer = json_of(r).await;
    assert_eq!(answer["events"][0]["pending"], true);
    // A later change of the same record waits behind it, even though it
    // alone would not need the CRM.
    let later = J::Array(vec![hs_event(
        11,
        3001,
        at + 5,
        "deal.propertyChange",
        Some(("kickoff_preference", "Async first")),
    )])
    .to_string();
    let answer = json_of(send_hubspot(&app, SECRET, &later, now_ms()).await).await;
    assert_eq!(answer["events"][0]["pending"], true);
    // HubSpot delivers the first one again: still one waiting copy.
    let answer =
        json_of(send_hubspot(&app, SECRET, &stage_change(10, 3001, at), now_ms()).await).await;
    assert_eq!(answer["events"][0]["duplicate"], true);
    assert_eq!(app.state.store.crm_pending_count().unwrap(), 2);
    assert!(
        handoffs_of(&app, "3001").await.is_empty(),
        "not decided on an incomplete record"
    );
    assert_eq!(events_stored(&app, "hubspot"), 0);
    // The retry loop keeps trying while the API is down.
    wait_for("a retry against the API that is down", || {
        let n = fake.calls().len();
        async move { (n >= 4).then_some(()) }
    })
    .await;
    assert!(handoffs_of(&app, "3001").await.is_empty());
    // Each failed try is counted and says why, and the next one waits at
    // most the doubled interval (100 ms, 200 ms, ...; never sooner than now).
    wait_for("a failed retry recorded on the waiting rows", || {
        let app = &app;
        async move {
            let far = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
            let rows = app.state.store.crm_due_pending(far, 10).ok()?;
            (rows.len() == 2 && rows.iter().all(|r| r.attempts >= 1)).then_some(rows)
        }
    })
    .await
    .iter()
    .for_each(|r| {
        assert!(!r.last_error.is_empty(), "{r:?}");
        let ceiling = jiff::SignedDuration::from_millis(100 << r.attempts.min(20));
        assert!(
            r.next_attempt_at <= jiff::Timestamp::now() + ceiling,
            "attempt {} waits until {}",
            r.attempts,
            r.next_attempt_at
        );
    });

    fake.set_down(false);
    let h = wait_for("the waiting event to be decided", || {
        let app = &app;
        async move { handoffs_of(app, "3001").await.into_iter().next() }
    })
    .await;
    assert_eq!(h["status"], "proceeded");
    assert_eq!(h["missing"], json!([]));
    wait_for("both waiting events to be decided", || {
        let app = &app;
        async move { (events_stored(app, "hubspot") == 2).then_some(()) }
    })
    .await;
    assert_eq!(app.state.store.crm_pending_count().unwrap(), 0);
    let id = h["id"].as_str().unwrap();
    let detail = json_of(app.get(&format!("/handoffs/{id}")).await).await;
    assert_eq!(detail["record"]["kickoff_preference"], "Async first");
    assert_eq!(detail["record"]["name"], "Gamma Inc");
    // Decided once: one set of actions.
    assert_eq!(detail["actions"].as_array().unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_event_survives_a_restart_and_is_decided_by_the_next_server() {
    let fake = FakeCrm::start(TOKEN).await;
    fake.put("deals", "3101", full_deal("Kappa AG"));
    fake.set_down(true);
    let keep = tempfile::tempdir().unwrap();
    let db = keep.path().join("handoff.db");
    let base = fake.base();
    let first = start_at(db.clone(), base.clone()).await;
    let body = stage_change(20, 3101, now_ms() - 1000);
    let answer = json_of(send_hubspot(&first, SECRET, &body, now_ms()).await).await;
    assert_eq!(answer["events"][0]["pending"], true);
    first.shutdown().await.expect("a clean stop");

    fake.set_down(false);
    let second = start_at(db, base).await;
    let h = wait_for("the event stored before the restart to be decided", || {
        let app = &second;
        async move { handoffs_of(app, "3101").await.into_iter().next() }
    })
    .await;
    assert_eq!(h["status"], "proceeded");
    assert_eq!(second.state.store.crm_pending_count().unwrap(), 0);
    // HubSpot's late retry of the same event after the restart: a duplicate.
    let answer = json_of(send_hubspot(&second, SECRET, &body, now_ms()).await).await;
    assert_eq!(answer["events"][0]["duplicate"], true);
    assert_eq!(events_stored(&second, "hubspot"), 1);
}

/// `/metrics`' value of `name`.
async fn gauge(app: &TestApp, name: &str) -> f64 {
    sample(&app.get("/metrics").await.text().await.unwrap(), name)
}

/// Waits (with the bound) until no event waits for the CRM, then checks
/// that the pending gauges say so.
async fn nothing_left_waiting(app: &TestApp) {
    wait_for("no event left waiting", || async move {
        (app.state.store.crm_pending_count().ok()? == 0).then_some(())
    })
    .await;
    assert_eq!(gauge(app, "handoff_crm_pending_events").await, 0.0);
    assert_eq!(gauge(app, "handoff_crm_pending_oldest_seconds").await, 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_events_show_in_the_pending_gauges_until_decided() {
    let fake = FakeCrm::start(TOKEN).await;
    fake.put("deals", "3301", full_deal("Omicron Oy"));
    fake.set_down(true);
    let app = app_with(&fake).await;
    assert_eq!(gauge(&app, "handoff_crm_pending_events").await, 0.0);
    assert_eq!(gauge(&app, "handoff_crm_pending_oldest_seconds").await, 0.0);

    let body = stage_change(50, 3301, now_ms() - 1000);
    let answer = json_of(send_hubspot(&app, SECRET, &body, now_ms()).await).await;
    assert_eq!(answer["events"][0]["pending"], true, "{answer}");
    let text = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(sample(&text, "handoff_crm_pending_events"), 1.0, "{text}");
    // Just received: whole seconds, so 0 or a little more on a slow box.
    let age = sample(&text, "handoff_crm_pending_oldest_seconds");
    assert!((0.0..60.0).contains(&age), "{age}");

    fake.set_down(false);
    nothing_left_waiting(&app).await;
}

/// An app whose CRM API accepts connections and never answers reads. A
/// call gives up after `timeout_ms` (None: the default, 5 s x 3 tries plus
/// back-off, under which a 2-record batch was once answered after 31 s);
/// a request waits for reads 500 ms, so the tests' bounds are generous.
/// `retry_loop: false` keeps the retry loop from calling during the test.
async fn stalled_app(fake: &FakeCrm, timeout_ms: Option<u64>, retry_loop: bool) -> TestApp {
    fake.set_stalled(true);
    let base = fake.base();
    spawn_app_with(move |s| {
        let mut m = mapping(&base);
        if !retry_loop {
            // The loop runs at the shorter of the two CRMs' intervals.
            for crm in [m.hubspot.as_mut(), m.pipedrive.as_mut()] {
                crm.unwrap().pending_retry_ms = Some(3_600_000);
            }
        }
        let hs = m.hubspot.as_mut().unwrap();
        hs.timeout_ms = timeout_ms;
        hs.retries = timeout_ms.map(|_| 0);
        hs.hydrate_deadline_ms = Some(500);
        s.crm = m;
        s.secrets.hubspot_client_secret = Some(Secret::new(SECRET));
        s.secrets.hubspot_token = Some(Secret::new(TOKEN));
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crm_api_that_never_answers_leaves_the_batch_pending_before_hubspot_gives_up() {
    let fake = FakeCrm::start(TOKEN).await;
    fake.put("deals", "3201", full_deal("Lambda SA"));
    fake.put("deals", "3202", full_deal("Mu GmbH"));
    let app = stalled_app(&fake, None, true).await;
    let at = now_ms() - 1000;
    let batch = J::Array(vec![
        stage_change_event(30, 3201, at),
        stage_change_event(31, 3202, at),
    ])
    .to_string();

    let started = std::time::Instant::now();
    let r = send_hubspot(&app, SECRET, &batch, now_ms()).await;
    let took = started.elapsed();
    assert_eq!(r.status(), 200, "stored, so acknowledged");
    // HubSpot drops a request after 5 s: answered well before.
    assert!(
        took < std::time::Duration::from_secs(4),
        "answered after {took:?}"
    );
    let answer = json_of(r).await;
    assert_eq!(answer["events"][0]["pending"], true, "{answer}");
    assert_eq!(answer["events"][1]["pending"], true, "{answer}");
    assert_eq!(app.state.store.crm_pending_count().unwrap(), 2);
    // Both records were asked for side by side, not one after the other.
    let calls = fake.calls();
    for id in ["3201", "3202"] {
        let path = format!("/crm/v3/objects/deals/{id}?");
        assert!(calls.iter().any(|c| c.starts_with(&path)), "{calls:?}");
    }
    let text = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        sample(
            &text,
            "handoff_crm_hydrations_total{crm=\"hubspot\",outcome=\"deadline\"}"
        ),
        2.0
    );
    assert_eq!(sample(&text, "handoff_crm_pending_events"), 2.0, "{text}");
    let age = sample(&text, "handoff_crm_pending_oldest_seconds");
    assert!((0.0..60.0).contains(&age), "{age}");
    assert!(handoffs_of(&app, "3201").await.is_empty());

    // The API answers again: the retry loop decides both.
    fake.set_stalled(false);
    for id in ["3201", "3202"] {
        let h = wait_for("the waiting events to be decided", || {
            let app = &app;
            async move { handoffs_of(app, id).await.into_iter().next() }
        })
        .await;
        assert_eq!(h["status"], "proceeded", "{h}");
        assert_eq!(h["missing"], json!([]));
    }
    nothing_left_waiting(&app).await;
}

/// The retry loop tries waiting records side by side: with every call
/// hanging for a minute, a pass one record at a time would ask for the
/// second record only after the first call gave up.
#[tokio::test(flavor = "multi_thread")]
async fn the_retry_loop_does_not_wait_for_one_records_call_before_the_next() {
    let fake = FakeCrm::start(TOKEN).await;
    let app = stalled_app(&fake, Some(60_000), true).await;
    let at = now_ms() - 1000;
    let batch = J::Array(vec![
        stage_change_event(60, 3401, at),
        stage_change_event(61, 3402, at),
    ])
    .to_string();
    let answer = json_of(send_hubspot(&app, SECRET, &batch, now_ms()).await).await;
    assert_eq!(answer["events"][1]["pending"], true, "{answer}");
    // The request asked for each record once and those calls hang; a
    // retry pass asks for both again. One record at a time, it would ask
    // for the second only after the first call's minute.
    wait_for("a retry pass asking for both records at once", || {
        let calls = fake.calls();
        async move {
            ["3401", "3402"]
                .iter()
                .all(|id| {
                    let path = format!("/{id}?");
                    calls.iter().filter(|c| c.contains(&path)).count() >= 2
                })
                .then_some(())
        }
    })
    .await;
}

/// Waiting records retried against a CRM whose calls hang hold at most
/// half the server's turns to call it: a webhook that needs a read still
/// gets one within its deadline.
#[tokio::test(flavor = "multi_thread")]
async fn the_retry_loop_leaves_webhooks_turns_to_call_the_crm() {
    let fake = FakeCrm::start(TOKEN).await;
    let app = stalled_app(&fake, Some(60_000), true).await;
    let at = now_ms() - 1000;
    let batch: Vec<J> = (0..8)
        .map(|i| stage_change_event(70 + i, 3501 + i, at))
        .collect();
    let r = send_hubspot(&app, SECRET, &J::Array(batch).to_string(), now_ms()).await;
    assert_eq!(r.status(), 200);
    // The request's eight calls, then the retry loop's, which hang.
    wait_for("the retry loop calling the CRM", || {
        let n = fake.calls().len();
        async move { (n > 8).then_some(()) }
    })
    .await;
    let one = stage_change(78, 3520, at);
    let r = send_hubspot(&app, SECRET, &one, now_ms()).await;
    assert_eq!(r.status(), 200);
    assert!(
        fake.calls().iter().any(|c| c.contains("/3520?")),
        "the webhook's record was asked for: {:?}",
        fake.calls()
    );
}

/// A CRM answering 503 is tried again after a pause, and the pause holds
/// no turn to call it: nine records' first tries all start at once. (With
/// turns held through the pauses, 0.2 + 0.4 + ... + 3.2 s, the ninth would
/// get none before the request's 2 s deadline.)
#[tokio::test(flavor = "multi_thread")]
async fn a_pause_between_tries_holds_no_turn_to_call_the_crm() {
    let fake = FakeCrm::start(TOKEN).await;
    fake.set_down(true);
    let base = fake.base();
    let app = spawn_app_with(move |s| {
        let mut m = mapping(&base);
        for crm in [m.hubspot.as_mut(), m.pipedrive.as_mut()] {
            crm.unwrap().pending_retry_ms = Some(3_600_000);
        }
        let hs = m.hubspot.as_mut().unwrap();
        hs.retries = Some(5);
        hs.hydrate_deadline_ms = Some(2000);
        s.crm = m;
        s.secrets.hubspot_client_secret = Some(Secret::new(SECRET));
        s.secrets.hubspot_token = Some(Secret::new(TOKEN));
    })
    .await;
    let at = now_ms() - 1000;
    let batch: Vec<J> = (0..9)
        .map(|i| stage_change_event(90 + i, 3601 + i, at))
        .collect();
    let r = send_hubspot(&app, SECRET, &J::Array(batch).to_string(), now_ms()).await;
    assert_eq!(r.status(), 200);
    let calls = fake.calls();
    for id in 3601..=3609 {
        let path = format!("/{id}?");
        assert!(calls.iter().any(|c| c.contains(&path)), "{id}: {calls:?}");
    }
}

/// Nine records wait on a CRM that never answers: at most eight calls are
/// in flight, and a record in the same batch that needs no call (a change
/// that cannot trigger anything) is decided at once, not left waiting
/// behind them.
#[tokio::test(flavor = "multi_thread")]
async fn a_record_that_needs_no_read_is_not_held_up_by_stalled_reads() {
    let fake = FakeCrm::start(TOKEN).await;
    let app = stalled_app(&fake, None, false).await;
    let at = now_ms() - 1000;
    let mut batch: Vec<J> = (0..9)
        .map(|i| stage_change_event(50 + i, 3301 + i, at))
        .collect();
    batch.push(hs_event(
        59,
        3310,
        at,
        "deal.propertyChange",
        Some(("dealname", "Omicron AG")),
    ));
    let r = send_hubspot(&app, SECRET, &J::Array(batch).to_string(), now_ms()).await;
    assert_eq!(r.status(), 200);
    let answer = json_of(r).await;
    for i in 0..9 {
        assert_eq!(answer["events"][i]["pending"], true, "{answer}");
    }
    assert_ne!(answer["events"][9]["pending"], true, "{answer}");
    assert_eq!(app.state.store.crm_pending_count().unwrap(), 9);
    let row = app.state.store.crm_record("deal", "3310").unwrap().unwrap();
    let state: J = serde_json::from_str(&row.state).unwrap();
    assert_eq!(state["snapshot"]["name"], "Omicron AG");
    // The CRM's burst limit still holds: never more than eight calls.
    let calls = fake.calls();
    assert!(!calls.is_empty() && calls.len() <= 8, "{calls:?}");
    assert!(!calls.iter().any(|c| c.contains("/3310?")), "{calls:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_that_cannot_be_decided_does_not_hold_up_the_other_waiting_records() {
    let fake = FakeCrm::start(TOKEN).await;
    fake.put("deals", "4001", full_deal("Nu Ltd"));
    fake.put("deals", "4002", full_deal("Xi BV"));
    fake.set_down(true);
    let keep = tempfile::tempdir().unwrap();
    let db = keep.path().join("handoff.db");
    let base = fake.base();
    let first = start_at(db.clone(), base.clone()).await;
    let at = now_ms() - 1000;
    let batch = J::Array(vec![
        hs_event(
            40,
            4001,
            at,
            "deal.propertyChange",
            Some(("dealstage", "closedwon")),
        ),
        hs_event(
            41,
            4002,
            at,
            "deal.propertyChange",
            Some(("dealstage", "closedwon")),
        ),
    ])
    .to_string();
    let answer = json_of(send_hubspot(&first, SECRET, &batch, now_ms()).await).await;
    assert_eq!(answer["events"][0]["pending"], true, "{answer}");
    assert_eq!(answer["events"][1]["pending"], true, "{answer}");
    first.shutdown().await.expect("a clean stop");

    // Deal 4001's stored state is unreadable, so deciding its waiting event
    // fails every time; it waits first in line (lowest seq), received an
    // hour ago. Both are due at once, with no tries so far.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "INSERT INTO records (object, record_id, state, workflow_version, updated_at) \
             VALUES ('deal', '4001', '\"unreadable\"', NULL, 0)",
            [],
        )
        .unwrap();
        let hour_ago =
            (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1)).as_microsecond();
        conn.execute(
            "UPDATE crm_pending SET next_attempt_at = 0, attempts = 0, last_error = '', \
             received_at = CASE record_id WHEN '4001' THEN ?1 ELSE received_at END",
            [hour_ago],
        )
        .unwrap();
    }
    fake.set_down(false);
    let restarted = jiff::Timestamp::now();
    let app = start_at(db, base).await;

    let h = wait_for("the other record's waiting event to be decided", || {
        let app = &app;
        async move { handoffs_of(app, "4002").await.into_iter().next() }
    })
    .await;
    assert_eq!(h["status"], "proceeded", "{h}");
    // The failing record's row says why and backs off, like a failed read.
    let row = wait_for("the failing record's row to be marked failed", || {
        let app = &app;
        async move {
            let far = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
            let rows = app.state.store.crm_due_pending(far, 10).ok()?;
            let row = rows.into_iter().find(|r| r.record_id == "4001")?;
            (row.attempts >= 1).then_some(row)
        }
    })
    .await;
    assert!(row.last_error.contains("unreadable"), "{row:?}");
    assert!(row.next_attempt_at > restarted, "{row:?}");
    assert_eq!(app.state.store.crm_pending_count().unwrap(), 1);
    assert!(handoffs_of(&app, "4001").await.is_empty());
    // What waits shows in the gauges: one event, an hour old.
    let text = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(sample(&text, "handoff_crm_pending_events"), 1.0, "{text}");
    let age = sample(&text, "handoff_crm_pending_oldest_seconds");
    assert!((3600.0..3600.0 + 600.0).contains(&age), "{age}");
}

/// HubSpot sends again an event already stored (its answer came late) in
/// one batch with a new event of the same record. The values read from
/// the CRM must reach the new event: given to the first event of the
/// record alone, they went with the retry, which is skipped, and the new
/// event paused for fields the CRM has.
#[tokio::test(flavor = "multi_thread")]
async fn values_read_from_the_crm_reach_a_new_event_behind_a_retry() {
    let fake = FakeCrm::start(TOKEN).await;
    fake.put("deals", "2101", full_deal("Acme Co"));
    let app = app_with(&fake).await;
    let at = now_ms() - 1000;
    let rename = hs_event(
        10,
        2101,
        at,
        "deal.propertyChange",
        Some(("dealname", "Acme Co")),
    );
    let once = J::Array(vec![rename.clone()]).to_string();
    let r = send_hubspot(&app, SECRET, &once, now_ms()).await;
    assert_eq!(r.status(), 200);
    assert!(handoffs_of(&app, "2101").await.is_empty());

    let body = J::Array(vec![rename, stage_change_event(11, 2101, at + 1)]).to_string();
    let r = send_hubspot(&app, SECRET, &body, now_ms()).await;
    assert_eq!(r.status(), 200);
    let answer = json_of(r).await;
    assert_eq!(answer["events"][0]["duplicate"], true, "{answer}");
    assert!(
        fake.calls()
            .iter()
            .any(|c| c.starts_with("/crm/v3/objects/deals/2101?")),
        "the CRM was not read: {:?}",
        fake.calls()
    );
    let h = &handoffs_of(&app, "2101").await[0];
    assert_eq!(h["status"], "proceeded", "{h}");
    assert_eq!(h["missing"], json!([]));
}

/// A server whose CRM reads stall (until `fake.set_stalled(false)`; the
/// read deadline is a minute), with a stage change of `deal` sent and
/// already reading the deal: its answer is the task's.
async fn reading_the_crm(
    fake: &FakeCrm,
    event_id: u64,
    deal: u64,
) -> (std::sync::Arc<TestApp>, tokio::task::JoinHandle<J>, i64) {
    fake.set_stalled(true);
    let base = fake.base();
    let app = spawn_app_with(move |s| {
        let mut m = mapping(&base);
        m.hubspot.as_mut().unwrap().hydrate_deadline_ms = Some(60_000);
        s.crm = m;
        s.secrets.hubspot_client_secret = Some(Secret::new(SECRET));
        s.secrets.hubspot_token = Some(Secret::new(TOKEN));
    })
    .await;
    let app = std::sync::Arc::new(app);
    let at = now_ms() - 1000;
    let webhook = tokio::spawn({
        let app = app.clone();
        async move {
            json_of(send_hubspot(&app, SECRET, &stage_change(event_id, deal, at), now_ms()).await)
                .await
        }
    });
    let path = format!("/deals/{deal}?");
    wait_for("the stage change to read the deal", || {
        let reading = fake.calls().iter().any(|c| c.contains(&path));
        async move { reading.then_some(()) }
    })
    .await;
    (app, webhook, at)
}

/// Events of one record apply in the order they arrived, even when the
/// first waits for a CRM read and the later ones need none: a HubSpot
/// change that cannot trigger and a generic event for the same deal wait
/// for the stage change ahead of them, then apply after it.
#[tokio::test(flavor = "multi_thread")]
async fn a_later_event_of_a_record_waits_for_an_earlier_one_reading_the_crm() {
    let fake = FakeCrm::start(TOKEN).await;
    fake.put("deals", "3601", full_deal("Nu Ltd"));
    let (app, first, at) = reading_the_crm(&fake, 70, 3601).await;

    // A change that cannot trigger (no read), then a generic event.
    let rename = J::Array(vec![hs_event(
        71,
        3601,
        at + 1,
        "deal.propertyChange",
        Some(("dealname", "Nu Ltd (renamed)")),
    )])
    .to_string();
    let second = tokio::spawn({
        let app = app.clone();
        async move { json_of(send_hubspot(&app, SECRET, &rename, now_ms()).await).await }
    });
    wait_for("the rename to wait for its turn", || {
        let queued = app.state.turns.queued("deal", "3601");
        async move { (queued == 2).then_some(()) }
    })
    .await;
    let third = tokio::spawn({
        let app = app.clone();
        async move {
            let body = json!({"id": "g-72", "object": "deal", "record_id": "3601",
                "record": {"risk_notes": "Generic note"}});
            json_of(app.post_generic(body.to_string()).await).await
        }
    });
    wait_for("the generic event to wait behind them", || {
        let queued = app.state.turns.queued("deal", "3601");
        async move { (queued == 3).then_some(()) }
    })
    .await;
    assert_eq!(
        events_stored(&app, "hubspot"),
        0,
        "nothing jumped the queue"
    );
    assert_eq!(
        events_stored(&app, "generic"),
        0,
        "nothing jumped the queue"
    );

    fake.set_stalled(false);
    let audit = |answer: &J| answer["events"][0]["audit_id"].as_i64().expect("applied");
    let (first, second, third) = (
        first.await.unwrap(),
        second.await.unwrap(),
        third.await.unwrap(),
    );
    assert_eq!(
        first["events"][0]["outcome"]["handoffs"][0]["status"], "proceeded",
        "{first}"
    );
    assert!(
        audit(&first) < audit(&second) && audit(&second) < audit(&third),
        "in arrival order: {first} {second} {third}"
    );
    assert!(app.state.turns.is_empty(), "every turn was given back");
}

/// A webhook reading the CRM when a reload removes its workflow decides
/// under the version it arrived with; the new version's orphan sweep waits
/// for it, so the handoff it starts is listed as orphaned.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_during_a_crm_read_sweeps_the_handoff_that_read_starts() {
    let fake = FakeCrm::start(TOKEN).await;
    fake.put("deals", "3701", full_deal("Xi Corp"));
    let (app, webhook, _) = reading_the_crm(&fake, 80, 3701).await;
    // The version the webhook took, before the reload below.
    let first = app.status().version;

    let file = app.workflow("sales_to_delivery.handoff");
    let text = std::fs::read_to_string(&file).unwrap();
    crate::helpers::save_in_place(
        &file,
        &text.replace(
            "handoff \"Sales to Delivery\"",
            "handoff \"Sales to Onboarding\"",
        ),
    );
    let next = crate::helpers::version_of(&app.workflow(""));
    app.wait_for_status(|s| s.serving == next).await;
    assert_eq!(app.status().version, first, "the sweep waits for the read");

    fake.set_stalled(false);
    let answer = webhook.await.unwrap();
    let h = &answer["events"][0]["outcome"];
    assert_eq!(h["version"], first.as_str(), "{answer}");
    assert_eq!(h["handoffs"][0]["status"], "proceeded", "{answer}");
    app.wait_for_status(|s| s.version == next).await;
    let listed = handoffs_of(&app, "3701").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["orphaned"], true, "{listed:?}");
}
