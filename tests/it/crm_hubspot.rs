//! `POST /hooks/hubspot` over real HTTP with HubSpot's payloads: signed
//! batches of one-property events for deals and contacts, retries, events
//! out of order, stage ids and owner ids through the mapping, custom and
//! unmapped properties, a value of the wrong type; HubSpot's documented
//! signature example; every refused signature leaves nothing stored.

use handoff::runtime::secret::Secret;
use serde_json::{json, Value as J};

use crate::fake_crm::{
    assigned_to, events_stored, handoffs_of, hs_event, json_of, mapping, send_hubspot, FakeCrm,
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
    // The audit log keeps each event's own element of the batch, not the
    // whole batch once per event.
    let elements: Vec<String> = batch.iter().map(J::to_string).collect();
    let db = rusqlite::Connection::open(app.dir.path().join("handoff.db")).unwrap();
    let raws: Vec<Vec<u8>> = db
        .prepare("SELECT raw_body FROM events WHERE source = 'hubspot'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(raws.len() > 20, "{}", raws.len());
    for raw in &raws {
        let raw = String::from_utf8(raw.clone()).unwrap();
        assert!(
            elements.contains(&raw),
            "not one element of the batch: {raw}"
        );
    }

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
    let batch = J::Array(vec![bad, name]).to_string();
    let r = send_hubspot(&app, SECRET, &batch, now_ms()).await;
    assert_eq!(r.status(), 200);
    // HubSpot retries the batch: stored once, its bad value counted once.
    let r = send_hubspot(&app, SECRET, &batch, now_ms()).await;
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

/// HubSpot's documented v1 example, sent as HubSpot sends it: accepted
/// with `legacy_signatures = true`, and by default refused (v1 has no
/// timestamp, so it could be a replay), with the answer naming the setting.
#[tokio::test(flavor = "multi_thread")]
async fn hubspots_documented_v1_example_is_accepted_over_http_only_when_legacy_signatures_are() {
    let secret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    let body = r#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;
    for legacy in [false, true] {
        let app = spawn_app_with(|s| {
            s.crm = mapping("http://127.0.0.1:9");
            if legacy {
                let hubspot = s.crm.hubspot.as_mut().unwrap();
                hubspot.legacy_signatures = Some(toml::Spanned::new(0..0, true));
            }
            s.secrets.hubspot_client_secret = Some(Secret::new(secret));
        })
        .await;
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
        if legacy {
            assert_eq!(r.status(), 200);
            assert_eq!(events_stored(&app, "hubspot"), 1);
        } else {
            assert_eq!(r.status(), 401);
            let text = r.text().await.unwrap();
            assert!(text.contains("legacy_signatures = true"), "{text}");
            assert_eq!(events_stored(&app, "hubspot"), 0);
        }
    }
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

/// A deal in HubSpot's API (all text, as HubSpot returns properties).
fn deal(name: &str, amount: &str, segment: &str, custom_scope: &str) -> J {
    json!({
        "dealname": name, "hubspot_owner_id": "102", "amount": amount,
        "deal_segment": segment, "buyer_goals": "Custom integration",
        "main_contact_email": "ray@gamma.example",
        "signed_scope_url": "https://docs.example/sow", "start_date": date_ms("2027-01-11"),
        "promised_deliverables": "Custom connector", "pricing_exceptions": "None",
        "delivery_risk_notes": "New API", "kickoff_preference": "On site",
        "custom_scope": custom_scope, "review_approved": "false"
    })
}

/// The bundled scenarios as HubSpot drives them: only the stage (and the
/// later edits) arrive by webhook; the rest is read from the API.
#[tokio::test(flavor = "multi_thread")]
async fn the_bundled_deal_scenarios_through_hubspot() {
    let fake = FakeCrm::start(TOKEN).await;
    fake.put("deals", "11", deal("Gamma Inc", "30000", "mid", "true"));
    fake.put(
        "deals",
        "12",
        deal("Delta Corp", "80000", "enterprise", "false"),
    );
    fake.put("deals", "13", deal("Zero Ltd", "0", "smb", "false"));
    let app = app_with(&fake).await;
    let at = now_ms() - 60_000;
    let one = |id: u64, deal: u64, dt: i64, p: &str, v: &str| {
        J::Array(vec![hs_event(
            id,
            deal,
            at + dt,
            "deal.propertyChange",
            Some((p, v)),
        )])
        .to_string()
    };
    for (i, d) in [11, 12, 13].into_iter().enumerate() {
        let r = send_hubspot(
            &app,
            SECRET,
            &one(100 + i as u64, d, 0, "dealstage", "closedwon"),
            now_ms(),
        )
        .await;
        assert_eq!(r.status(), 200);
    }
    // Custom scope: founder review; approved in HubSpot (a property).
    let h = &handoffs_of(&app, "11").await[0];
    assert_eq!(h["status"], "review");
    assert_eq!(h["exceptions"], json!(["Custom Scope"]));
    let r = send_hubspot(
        &app,
        SECRET,
        &one(110, 11, 10, "review_approved", "true"),
        now_ms(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(handoffs_of(&app, "11").await[0]["status"], "proceeded");
    // The kickoff lands on the calendar: done.
    let r = send_hubspot(
        &app,
        SECRET,
        &one(111, 11, 20, "kickoff_scheduled_at", "1795000000000"),
        now_ms(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(handoffs_of(&app, "11").await[0]["status"], "done");

    // A big enterprise deal: review, approved by hand through the API.
    let h = &handoffs_of(&app, "12").await[0];
    assert_eq!(h["status"], "review");
    assert_eq!(h["exceptions"], json!(["Needs Founder Review"]));
    let id = h["id"].as_str().unwrap();
    let r = app
        .client
        .post(app.url(&format!("/handoffs/{id}/approve")))
        .json(&json!({"who": "maya@example.com", "note": "checked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(handoffs_of(&app, "12").await[0]["status"], "proceeded");

    // A deal worth nothing does not start a handoff.
    assert!(handoffs_of(&app, "13").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bundled_lead_scenarios_through_hubspot() {
    let fake = FakeCrm::start(TOKEN).await;
    let full = |name: &str, campaign: Option<&str>| {
        let mut c = json!({
            "firstname": name, "hubspot_owner_id": "201", "hs_analytics_source": "PAID_SEARCH",
            "offer": "Free audit", "pain_point": "Slow onboarding",
            "qualification_answer": "Yes", "budget_signal": "Approved",
            "notes_last_contacted": "1763600000000"
        });
        if let Some(c2) = campaign {
            c["campaign"] = json!(c2);
        }
        c
    };
    fake.put("contacts", "21", full("Ann", Some("Q4 webinar")));
    fake.put("contacts", "22", full("Bo", Some("Q4 webinar")));
    fake.put("contacts", "23", full("Cy", None));
    let app = app_with(&fake).await;
    let at = now_ms() - 60_000;
    for (i, c) in [21, 22, 23].into_iter().enumerate() {
        let body = J::Array(vec![hs_event(
            300 + i as u64,
            c,
            at,
            "contact.propertyChange",
            Some(("lifecyclestage", "salesqualifiedlead")),
        )])
        .to_string();
        assert_eq!(
            send_hubspot(&app, SECRET, &body, now_ms()).await.status(),
            200
        );
    }
    // Least loaded: the two leads go to different people.
    let mut owners = Vec::new();
    for c in ["21", "22"] {
        let h = &handoffs_of(&app, c).await[0];
        assert_eq!(h["status"], "proceeded");
        let id = h["id"].as_str().unwrap();
        let detail = json_of(app.get(&format!("/handoffs/{id}")).await).await;
        owners.push(assigned_to(&detail));
    }
    assert_ne!(owners[0], owners[1], "{owners:?}");
    // No campaign in the CRM: paused, asking for exactly that.
    let h = &handoffs_of(&app, "23").await[0];
    assert_eq!(h["status"], "paused");
    assert_eq!(h["missing"], json!(["campaign"]));
}

/// `handoff_events_total{source="hubspot",outcome}` from `/metrics`.
async fn hubspot_events(app: &TestApp, outcome: &str) -> u64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    let prefix = format!("handoff_events_total{{source=\"hubspot\",outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or(0)
}

/// A won deal whose other properties HubSpot's API holds.
fn won(event_id: u64, deal: u64, at: i64) -> J {
    hs_event(
        event_id,
        deal,
        at,
        "deal.propertyChange",
        Some(("dealstage", "closedwon")),
    )
}

/// HubSpot batches association changes with property changes; they carry
/// `fromObjectId`/`toObjectId`, not `objectId`. Neither they nor an event
/// that cannot be read cost the batch its other events.
#[tokio::test(flavor = "multi_thread")]
async fn an_association_change_or_an_unreadable_event_does_not_lose_the_batch() {
    let fake = FakeCrm::start(TOKEN).await;
    fake.put("deals", "7001", deal("Eta Co", "30000", "mid", "false"));
    fake.put("deals", "7002", deal("Theta Co", "30000", "mid", "false"));
    let app = app_with(&fake).await;
    let at = now_ms() - 60_000;
    let association = json!({
        "eventId": 2, "subscriptionId": 4343, "portalId": 62515, "appId": 54321,
        "occurredAt": at + 1, "subscriptionType": "deal.associationChange",
        "attemptNumber": 0, "changeSource": "USER", "associationType": "DEAL_TO_CONTACT",
        "fromObjectId": 7001, "toObjectId": 77, "associationRemoved": false,
        "isPrimaryAssociation": false
    });
    let body = J::Array(vec![won(1, 7001, at), association]).to_string();
    let r = send_hubspot(&app, SECRET, &body, now_ms()).await;
    assert_eq!(r.status(), 200);
    let answer = json_of(r).await;
    assert_eq!(answer["events"].as_array().unwrap().len(), 1, "{answer}");
    assert_eq!(answer["events"][0]["duplicate"], false, "{answer}");
    assert_eq!(answer["skipped"], 1, "{answer}");
    assert!(answer.get("rejected").is_none(), "{answer}");
    let deals = handoffs_of(&app, "7001").await;
    assert_eq!(deals.len(), 1, "{deals:?}");
    assert_eq!(deals[0]["workflow"], "Sales to Delivery");

    // An event that cannot be read (no `objectId`): counted, named in the
    // answer, and the won deal beside it still hands off.
    let mut unreadable = hs_event(3, 0, at + 2, "deal.propertyChange", Some(("amount", "5")));
    unreadable.as_object_mut().unwrap().remove("objectId");
    let body = J::Array(vec![unreadable, won(4, 7002, at + 3)]).to_string();
    let r = send_hubspot(&app, SECRET, &body, now_ms()).await;
    assert_eq!(r.status(), 200);
    let answer = json_of(r).await;
    assert_eq!(answer["events"].as_array().unwrap().len(), 1, "{answer}");
    let rejected = answer["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{answer}");
    assert_eq!(rejected[0]["position"], 1, "{answer}");
    let why = rejected[0]["error"].as_str().unwrap();
    assert!(why.contains("objectId"), "{why}");
    assert_eq!(handoffs_of(&app, "7002").await.len(), 1);
    assert_eq!(hubspot_events(&app, "rejected").await, 1);
    assert_eq!(hubspot_events(&app, "skipped").await, 1);
    assert_eq!(events_stored(&app, "hubspot"), 2);

    // A body that is no batch of events at all is still refused whole.
    for body in [r#""deal.propertyChange""#, "[1, 2]", "[{"] {
        let r = send_hubspot(&app, SECRET, body, now_ms()).await;
        assert_eq!(r.status(), 400, "{body}");
    }
    assert_eq!(events_stored(&app, "hubspot"), 2);
}

/// A record whose stored state cannot be read (a damaged row) does not
/// fail its batch: its event waits, kept as pending with the reason, and
/// the batch's other deal hands off.
#[tokio::test(flavor = "multi_thread")]
async fn a_record_stored_unreadable_holds_only_its_own_event() {
    let fake = FakeCrm::start(TOKEN).await;
    fake.put("deals", "7201", deal("Kappa Co", "30000", "mid", "false"));
    fake.put("deals", "7202", deal("Lambda Co", "30000", "mid", "false"));
    let app = app_with(&fake).await;
    let at = now_ms() - 60_000;
    // Deal 7201 is known, then its row is damaged.
    let r = send_hubspot(
        &app,
        SECRET,
        &J::Array(vec![hs_event(
            20,
            7201,
            at,
            "deal.propertyChange",
            Some(("amount", "30000")),
        )])
        .to_string(),
        now_ms(),
    )
    .await;
    assert_eq!(r.status(), 200);
    rusqlite::Connection::open(app.dir.path().join("handoff.db"))
        .unwrap()
        .execute(
            "UPDATE records SET state = '{half' WHERE record_id = '7201'",
            [],
        )
        .unwrap();

    let body = J::Array(vec![won(21, 7201, at + 1), won(22, 7202, at + 2)]).to_string();
    let r = send_hubspot(&app, SECRET, &body, now_ms()).await;
    assert_eq!(r.status(), 200, "the batch is taken");
    let answer = json_of(r).await;
    assert_eq!(answer["events"][0]["pending"], true, "{answer}");
    assert_eq!(answer["events"][1]["duplicate"], false, "{answer}");
    assert_eq!(
        handoffs_of(&app, "7202").await.len(),
        1,
        "the other deal hands off"
    );
    let pending = app.state.store.crm_pending_summary().unwrap();
    assert_eq!(pending.events, 1, "{pending:?}");
    let why: String = rusqlite::Connection::open(app.dir.path().join("handoff.db"))
        .unwrap()
        .query_row("SELECT last_error FROM crm_pending", [], |r| r.get(0))
        .unwrap();
    assert!(
        why.contains("the stored record deal/7201 cannot be read"),
        "{why}"
    );
}

/// An event whose record id cannot be HubSpot's (blank, or a path such as
/// `../contacts/7`, which would reach another object in the API's paths)
/// is set aside; the batch's other events are decided.
#[tokio::test(flavor = "multi_thread")]
async fn an_event_without_a_hubspot_record_id_is_rejected_alone() {
    let fake = FakeCrm::start(TOKEN).await;
    fake.put("deals", "7101", deal("Iota Co", "30000", "mid", "false"));
    let app = app_with(&fake).await;
    let at = now_ms() - 60_000;
    let mut blank = hs_event(11, 0, at, "deal.propertyChange", Some(("amount", "5")));
    blank["objectId"] = json!(" ");
    let mut path = hs_event(13, 0, at, "deal.propertyChange", Some(("amount", "5")));
    path["objectId"] = json!("../contacts/7");
    let body = J::Array(vec![blank, won(12, 7101, at + 1), path]).to_string();
    let r = send_hubspot(&app, SECRET, &body, now_ms()).await;
    assert_eq!(r.status(), 200);
    let answer = json_of(r).await;
    assert_eq!(answer["events"].as_array().unwrap().len(), 1, "{answer}");
    assert_eq!(answer["events"][0]["duplicate"], false, "{answer}");
    let rejected = answer["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{answer}");
    for (r, position) in rejected.iter().zip([1, 3]) {
        assert_eq!(r["position"], position, "{answer}");
        let why = r["error"].as_str().unwrap();
        assert!(why.contains("no HubSpot record id"), "{why}");
    }
    assert_eq!(handoffs_of(&app, "7101").await.len(), 1);
    assert_eq!(hubspot_events(&app, "rejected").await, 2);
    assert_eq!(events_stored(&app, "hubspot"), 1);
    // The blank record was never asked for.
    assert!(
        fake.calls().iter().all(|c| c.contains("/deals/7101?")),
        "{:?}",
        fake.calls()
    );
}

/// HubSpot does not promise `eventId` is unique: two different changes
/// may share one. Both apply; HubSpot's retry of either (the same event,
/// a higher `attemptNumber`) is a duplicate.
#[tokio::test(flavor = "multi_thread")]
async fn two_changes_sharing_an_event_id_both_apply_and_their_retries_are_duplicates() {
    let fake = FakeCrm::start(TOKEN).await;
    let app = app_with(&fake).await;
    let at = now_ms() - 60_000;
    let name = hs_event(
        50,
        8001,
        at,
        "deal.propertyChange",
        Some(("dealname", "Kappa")),
    );
    let mut amount = hs_event(
        50,
        8001,
        at,
        "deal.propertyChange",
        Some(("amount", "9000")),
    );
    amount["subscriptionId"] = json!(4243);
    let batch = vec![name, amount];
    let r = send_hubspot(&app, SECRET, &J::Array(batch.clone()).to_string(), now_ms()).await;
    assert_eq!(r.status(), 200);
    let answer = json_of(r).await;
    let events = answer["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{answer}");
    assert!(events.iter().all(|e| e["duplicate"] == false), "{answer}");
    let row = app.state.store.crm_record("deal", "8001").unwrap().unwrap();
    let state: J = serde_json::from_str(&row.state).unwrap();
    assert_eq!(state["snapshot"]["name"], "Kappa");
    assert_eq!(state["snapshot"]["amount"], "9000.00");
    assert_eq!(events_stored(&app, "hubspot"), 2);

    let retried: Vec<J> = batch
        .into_iter()
        .map(|mut e| {
            e["attemptNumber"] = json!(1);
            e
        })
        .collect();
    let r = send_hubspot(&app, SECRET, &J::Array(retried).to_string(), now_ms()).await;
    assert_eq!(r.status(), 200);
    let answer = json_of(r).await;
    let events = answer["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{answer}");
    assert!(events.iter().all(|e| e["duplicate"] == true), "{answer}");
    assert_eq!(events_stored(&app, "hubspot"), 2);
}

/// HubSpot's `object.*` subscriptions name the type by id (`0-3` is
/// deals); the mapping names it `deals`.
#[tokio::test(flavor = "multi_thread")]
async fn an_object_property_change_by_type_id_reaches_the_deal_workflow() {
    let fake = FakeCrm::start(TOKEN).await;
    fake.put("deals", "9001", deal("Lambda Co", "30000", "mid", "false"));
    let app = app_with(&fake).await;
    let mut e = hs_event(
        70,
        9001,
        now_ms() - 60_000,
        "object.propertyChange",
        Some(("dealstage", "closedwon")),
    );
    e["objectTypeId"] = json!("0-3");
    let r = send_hubspot(&app, SECRET, &J::Array(vec![e]).to_string(), now_ms()).await;
    assert_eq!(r.status(), 200);
    let answer = json_of(r).await;
    assert_eq!(answer["skipped"], 0, "{answer}");
    assert_eq!(answer["events"].as_array().unwrap().len(), 1, "{answer}");
    let deals = handoffs_of(&app, "9001").await;
    assert_eq!(deals.len(), 1, "{deals:?}");
    assert_eq!(deals[0]["workflow"], "Sales to Delivery");
    let id = deals[0]["id"].as_str().unwrap();
    let detail = json_of(app.get(&format!("/handoffs/{id}")).await).await;
    assert_eq!(detail["record"]["stage"], "Closed Won");
    // Read from the API under the mapping's name for the type.
    assert!(
        fake.calls()
            .iter()
            .any(|c| c.starts_with("/crm/v3/objects/deals/9001?")),
        "{:?}",
        fake.calls()
    );
}
