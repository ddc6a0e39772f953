//! `POST /hooks/hubspot` over real HTTP with HubSpot's payloads: signed
//! batches of one-property events for deals and contacts, retries, events
//! out of order, stage ids and owner ids through the mapping, custom and
//! unmapped properties, a value of the wrong type; HubSpot's documented
//! signature example; every refused signature leaves nothing stored.

use handoff::runtime::secret::Secret;
use serde_json::{json, Value as J};

use crate::fake_crm::{
    events_stored, handoffs_of, hs_event, json_of, mapping, send_hubspot, FakeCrm,
};
use crate::helpers::{spawn_app_with, TestApp};

const SECRET: &str = "hs-client-secret-0f9e";
const TOKEN: &str = "pat-na1-test-token";

async fn app_with(fake: &FakeCrm) -> TestApp {
    let base = fake.base();
    spawn_app_with(|s| {
        s.crm = mapping(&base);
        s.secrets.hubspot_client_secret = Some(Secret::new(SECRET));
        s.secrets.hubspot_token = Some(Secret::new(TOKEN));
    })
    .await
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Epoch ms of midnight UTC of `date`, as HubSpot sends date properties.
fn date_ms(date: &str) -> String {
    let d: jiff::civil::Date = date.parse().unwrap();
    d.to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_millisecond()
        .to_string()
}

/// Every property a won deal needs, as one-property events from `first_id`.
fn won_deal_batch(deal: u64, first_id: u64, at: i64) -> Vec<J> {
    let start = date_ms("2026-12-07");
    let props: Vec<(&str, &str)> = vec![
        ("dealname", "Acme Co"),
        ("hubspot_owner_id", "101"),
        ("amount", "12000"),
        ("deal_segment", "mid"),
        ("buyer_goals", "Cut onboarding time in half"),
        ("main_contact_email", "jo@acme.example"),
        ("signed_scope_url", "https://docs.example/acme-sow"),
        ("start_date", &start),
        (
            "promised_deliverables",
            "Onboarding playbook;Two training sessions",
        ),
        ("pricing_exceptions", "None"),
        ("delivery_risk_notes", "Busy December"),
        ("kickoff_preference", "Tuesday mornings"),
        ("custom_scope", "false"),
        // Not in the mapping: ignored and counted.
        ("hs_lastmodifieddate", "1764000000000"),
    ];
    let mut events: Vec<J> = props
        .iter()
        .enumerate()
        .map(|(i, (p, v))| {
            hs_event(
                first_id + i as u64,
                deal,
                at + i as i64,
                "deal.propertyChange",
                Some((p, v)),
            )
        })
        .collect();
    events.push(hs_event(
        first_id + 100,
        deal,
        at + 1000,
        "deal.propertyChange",
        Some(("dealstage", "closedwon")),
    ));
    events
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_for_a_won_deal_and_a_qualified_contact_hands_off_once() {
    let fake = FakeCrm::start(TOKEN).await;
    fake.put("deals", "1001", json!({}));
    let app = app_with(&fake).await;
    let at = now_ms() - 60_000;
    let mut batch = won_deal_batch(1001, 1, at);
    // A contact in the same batch: Marketing to Sales.
    let contact = [
        ("firstname", "Dana"),
        ("hs_analytics_source", "PAID_SEARCH"),
        ("campaign", "Q4 webinar"),
        ("offer", "Free audit"),
        ("pain_point", "Slow onboarding"),
        ("qualification_answer", "Yes, this quarter"),
        ("budget_signal", "Approved"),
        ("notes_last_contacted", "1763600000000"),
        ("hubspot_owner_id", "102"),
        ("lifecyclestage", "salesqualifiedlead"),
    ];
    for (i, (p, v)) in contact.iter().enumerate() {
        batch.push(hs_event(
            500 + i as u64,
            77,
            at + 2000 + i as i64,
            "contact.propertyChange",
            Some((p, v)),
        ));
    }
    let body = J::Array(batch.clone()).to_string();
    let r = send_hubspot(&app, SECRET, &body, now_ms()).await;
    assert_eq!(r.status(), 200);
    let answer = json_of(r).await;
    assert_eq!(answer["events"].as_array().unwrap().len(), batch.len());

    let deals = handoffs_of(&app, "1001").await;
    assert_eq!(deals.len(), 1, "{deals:?}");
    assert_eq!(deals[0]["status"], "proceeded");
    assert_eq!(deals[0]["workflow"], "Sales to Delivery");
    let id = deals[0]["id"].as_str().unwrap();
    let detail = json_of(app.get(&format!("/handoffs/{id}")).await).await;
    // Stage id and owner id went through the mapping; the date came as ms.
    assert_eq!(detail["record"]["stage"], "Closed Won");
    assert_eq!(detail["record"]["owner"], "sam@example.com");
    assert_eq!(detail["record"]["start_date"], "2026-12-07");
    assert_eq!(
        detail["record"]["promised_deliverables"],
        json!(["Onboarding playbook", "Two training sessions"])
    );
    let actions = detail["actions"].as_array().unwrap().len();
    assert_eq!(actions, 4, "{detail}");

    let leads = handoffs_of(&app, "77").await;
    assert_eq!(leads.len(), 1);
    assert_eq!(leads[0]["workflow"], "Marketing to Sales");
    assert_eq!(leads[0]["status"], "proceeded");

    // HubSpot retries the whole batch (attemptNumber 1): nothing changes.
    let retried: Vec<J> = batch
        .into_iter()
        .map(|mut e| {
            e["attemptNumber"] = json!(1);
            e
        })
        .collect();
    let stored = events_stored(&app, "hubspot");
    let r = send_hubspot(&app, SECRET, &J::Array(retried).to_string(), now_ms()).await;
    assert_eq!(r.status(), 200);
    let answer = json_of(r).await;
    assert!(answer["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["duplicate"] == true));
    assert_eq!(events_stored(&app, "hubspot"), stored);
    let again = json_of(app.get(&format!("/handoffs/{id}")).await).await;
    assert_eq!(again["actions"].as_array().unwrap().len(), actions);

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"handoff_crm_unmapped_properties_total{crm="hubspot",object="deal"} 2"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_older_change_never_overwrites_a_newer_one_and_a_bad_value_is_a_field_error() {
    let fake = FakeCrm::start(TOKEN).await;
    let app = app_with(&fake).await;
    let at = now_ms() - 60_000;
    // The newer amount arrives first, the older one after it.
    let newer = hs_event(
        1,
        4001,
        at + 5000,
        "deal.propertyChange",
        Some(("amount", "5000")),
    );
    let older = hs_event(2, 4001, at, "deal.propertyChange", Some(("amount", "3000")));
    for e in [newer, older] {
        let r = send_hubspot(&app, SECRET, &J::Array(vec![e]).to_string(), now_ms()).await;
        assert_eq!(r.status(), 200);
    }
    let row = app.state.store.crm_record("deal", "4001").unwrap().unwrap();
    let state: J = serde_json::from_str(&row.state).unwrap();
    assert_eq!(state["snapshot"]["amount"], "5000.00");

    // Money with a thousands separator: that field is an error, the event
    // (and its other values) still applies.
    let bad = hs_event(
        3,
        4001,
        at + 6000,
        "deal.propertyChange",
        Some(("amount", "12,000")),
    );
    let name = hs_event(
        4,
        4001,
        at + 6001,
        "deal.propertyChange",
        Some(("dealname", "Zeta")),
    );
    let r = send_hubspot(
        &app,
        SECRET,
        &J::Array(vec![bad, name]).to_string(),
        now_ms(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let row = app.state.store.crm_record("deal", "4001").unwrap().unwrap();
    let state: J = serde_json::from_str(&row.state).unwrap();
    assert_eq!(state["snapshot"]["amount"], "5000.00");
    assert_eq!(state["snapshot"]["name"], "Zeta");
    assert_eq!(events_stored(&app, "hubspot"), 4);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"handoff_field_errors_total{object="deal",field="record.amount"} 1"#),
        "{metrics}"
    );
    // Property changes that cannot trigger anything read nothing from the CRM.
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

/// HubSpot's documented v1 example, sent as HubSpot sends it.
#[tokio::test(flavor = "multi_thread")]
async fn hubspots_documented_v1_example_is_accepted_over_http() {
    let secret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    let app = spawn_app_with(|s| {
        s.crm = mapping("http://127.0.0.1:9");
        s.secrets.hubspot_client_secret = Some(Secret::new(secret));
    })
    .await;
    let body = r#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;
    let r = app
        .client
        .post(app.url("/hooks/hubspot"))
        .header("x-hubspot-signature-version", "v1")
        .header(
            "x-hubspot-signature",
            "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(events_stored(&app, "hubspot"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_signature_is_401_and_stores_nothing() {
    let fake = FakeCrm::start(TOKEN).await;
    let app = app_with(&fake).await;
    let body = J::Array(won_deal_batch(5001, 1, now_ms() - 1000)).to_string();
    let url = app.url("/hooks/hubspot");
    let post = |sig: Option<String>, ts: Option<i64>, body: String| {
        let mut req = app.client.post(url.clone()).body(body);
        if let Some(s) = sig {
            req = req.header("x-hubspot-signature-v3", s);
        }
        if let Some(t) = ts {
            req = req.header("x-hubspot-request-timestamp", t.to_string());
        }
        req.send()
    };
    let now = now_ms();
    let sign = |secret: &str, ts: i64, body: &str| {
        handoff::runtime::adapters::hubspot::sign_v3(
            secret.as_bytes(),
            "POST",
            &url,
            body.as_bytes(),
            ts,
        )
    };
    // A wrong secret.
    let r = post(
        Some(sign("another-secret", now, &body)),
        Some(now),
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
    assert!(json_of(r).await["error"]
        .as_str()
        .unwrap()
        .contains("HANDOFF_HUBSPOT_CLIENT_SECRET"));
    // A timestamp 6 minutes old (correctly signed: a replay).
    let stale = now - 6 * 60 * 1000;
    let r = post(Some(sign(SECRET, stale, &body)), Some(stale), body.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(json_of(r).await["error"]
        .as_str()
        .unwrap()
        .contains("5 minutes"));
    // A modified body.
    let tampered = body.replace("closedwon", "closedlost");
    let r = post(Some(sign(SECRET, now, &body)), Some(now), tampered)
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // No signature header at all.
    let r = post(None, None, body.clone()).await.unwrap();
    assert_eq!(r.status(), 401);
    // A signature without its timestamp.
    let r = post(Some(sign(SECRET, now, &body)), None, body.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    assert_eq!(events_stored(&app, "hubspot"), 0);
    assert_eq!(app.state.store.crm_pending_count().unwrap(), 0);
    assert!(handoffs_of(&app, "5001").await.is_empty());
    assert!(fake.calls().is_empty());
    // The same request, signed right, goes through.
    let r = post(Some(sign(SECRET, now, &body)), Some(now), body.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(handoffs_of(&app, "5001").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hook_refuses_everything_until_a_client_secret_is_set() {
    let app = spawn_app_with(|s| s.crm = mapping("http://127.0.0.1:9")).await;
    let body = J::Array(won_deal_batch(6001, 1, now_ms())).to_string();
    let r = send_hubspot(&app, SECRET, &body, now_ms()).await;
    assert_eq!(r.status(), 401);
    assert!(json_of(r).await["error"]
        .as_str()
        .unwrap()
        .contains("HANDOFF_HUBSPOT_CLIENT_SECRET"));
    assert_eq!(events_stored(&app, "hubspot"), 0);
}
