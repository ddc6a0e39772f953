//! `POST /hooks/pipedrive` over real HTTP with Pipedrive's payloads:
//! webhooks v2 (`meta`/`data`/`previous`, custom fields by key, a won deal
//! by `status`) and v1 (`current`/`previous`/`event`); retries; HTTP basic
//! auth required.

use handoff::runtime::secret::Secret;
use serde_json::{json, Value as J};

use crate::fake_crm::{
    assigned_to, events_stored, handoffs_of, json_of, mapping, send_pipedrive, FakeCrm,
};
use crate::helpers::{spawn_app_with, TestApp};

const USER: &str = "pd-hook";
const PASSWORD: &str = "pd-hook-password-1";

async fn app(fake: &FakeCrm) -> TestApp {
    let base = fake.base();
    spawn_app_with(|s| {
        s.crm = mapping(&base);
        s.secrets.pipedrive_user = Some(Secret::new(USER));
        s.secrets.pipedrive_password = Some(Secret::new(PASSWORD));
        s.secrets.pipedrive_api_token = Some(Secret::new("pd-api-token"));
    })
    .await
}

/// The custom fields of the example mapping, v2 style (`{"type", "value"}`).
fn custom_fields(risk: Option<&str>) -> J {
    let mut c = json!({
        "8f3b1c0a9e2d4f6b8a1c3e5d7f9b0a2c4e6d8f10": {"type": "enum", "value": "mid"},
        "a1b2c3d4e5f60718293a4b5c6d7e8f9011223344": {"type": "text", "value": "Cut onboarding time in half"},
        "b2c3d4e5f60718293a4b5c6d7e8f901122334455": {"type": "varchar", "value": "jo@acme.example"},
        "c3d4e5f60718293a4b5c6d7e8f90112233445566": {"type": "varchar", "value": "https://docs.example/sow"},
        "d4e5f60718293a4b5c6d7e8f9011223344556677": {"type": "date", "value": "2026-12-07"},
        "e5f60718293a4b5c6d7e8f901122334455667788": {"type": "set", "value": "Onboarding playbook;Two training sessions"},
        "f60718293a4b5c6d7e8f90112233445566778899": {"type": "varchar", "value": "None"},
        "18293a4b5c6d7e8f90112233445566778899aabb": {"type": "varchar", "value": "Tuesday mornings"},
        "293a4b5c6d7e8f90112233445566778899aabbcc": null,
        "3a4b5c6d7e8f90112233445566778899aabbccdd": null,
        "4b5c6d7e8f90112233445566778899aabbccddee": null
    });
    c["0718293a4b5c6d7e8f90112233445566778899aa"] = match risk {
        Some(r) => json!({"type": "text", "value": r}),
        None => J::Null,
    };
    c
}

/// A v2 `change` of deal `id` to won.
fn v2_won(meta_id: &str, id: u64, attempt: u32) -> J {
    json!({
        "meta": {
            "action": "change", "entity": "deal", "entity_id": id.to_string(),
            "id": meta_id, "version": "2.0", "company_id": "12882925",
            "correlation_id": "0b5a8f4e-1c7d-4e6e-9a51-6c3c1f0c8d2e",
            "timestamp": "2026-11-20T15:04:05.000Z", "attempt": attempt,
            "host": "acme.pipedrive.com", "change_source": "app"
        },
        "data": {
            "id": id, "title": "Acme Co", "value": 12000, "currency": "USD",
            "status": "won", "stage_id": 3, "pipeline_id": 1, "owner_id": 7,
            "add_time": "2026-11-01T10:00:00Z", "update_time": "2026-11-20T15:04:05Z",
            "custom_fields": custom_fields(Some("Busy December"))
        },
        "previous": {"status": "open"}
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_v2_won_deal_hands_off_once_and_a_retry_changes_nothing() {
    let fake = FakeCrm::start("pd-api-token").await;
    let app = app(&fake).await;
    let auth = Some((USER, PASSWORD));
    let r = send_pipedrive(&app, auth, &v2_won("a3f1c2d4-0001", 55, 1)).await;
    assert_eq!(r.status(), 200);
    let hs = handoffs_of(&app, "55").await;
    assert_eq!(hs.len(), 1);
    assert_eq!(hs[0]["status"], "proceeded", "{hs:?}");
    let id = hs[0]["id"].as_str().unwrap();
    let detail = json_of(app.get(&format!("/handoffs/{id}")).await).await;
    // `status: won` wins over `stage_id: 3`; the user id maps to an email.
    assert_eq!(detail["record"]["stage"], "Closed Won");
    assert_eq!(detail["record"]["owner"], "sam@example.com");
    assert_eq!(detail["record"]["segment"], "mid");
    assert_eq!(detail["record"]["start_date"], "2026-12-07");
    let actions = detail["actions"].as_array().unwrap().len();

    // Pipedrive retries (same meta.id, next attempt): a duplicate.
    let answer = json_of(send_pipedrive(&app, auth, &v2_won("a3f1c2d4-0001", 55, 2)).await).await;
    assert_eq!(answer["events"][0]["duplicate"], true);
    assert_eq!(events_stored(&app, "pipedrive"), 1);
    let again = json_of(app.get(&format!("/handoffs/{id}")).await).await;
    assert_eq!(again["actions"].as_array().unwrap().len(), actions);
    // The whole record came with the webhook: nothing to read from the API.
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

/// A v2 `change` of won deal `id` whose data is `data_changes` over the
/// won deal, and whose `previous` is `previous` (v2 sends only what
/// changed).
fn v2_won_change(meta_id: &str, id: u64, data_changes: J, previous: J) -> J {
    let mut event = v2_won(meta_id, id, 1);
    event["meta"]["timestamp"] = json!("2026-11-21T09:00:00.000Z");
    for (k, v) in data_changes.as_object().unwrap() {
        if k == "custom_fields" {
            for (ck, cv) in v.as_object().unwrap() {
                event["data"]["custom_fields"][ck] = cv.clone();
            }
        } else {
            event["data"][k] = v.clone();
        }
    }
    event["previous"] = previous;
    event
}

/// v2's `previous` holds only what changed. A won deal whose stage then
/// moves (`previous: {"stage_id": 2}`, still `status: won`) was "Closed
/// Won" before too: the stage did not "become" Closed Won again, so a
/// finished handoff does not start over (a second owner, kickoff task and
/// welcome email). And `previous: {"status": "open"}` is the stage the deal
/// was in, never an unknown stage called "open".
#[tokio::test(flavor = "multi_thread")]
async fn a_won_deal_moved_to_another_stage_does_not_hand_off_again() {
    let fake = FakeCrm::start("pd-api-token").await;
    let app = app(&fake).await;
    let auth = Some((USER, PASSWORD));
    let r = send_pipedrive(&app, auth, &v2_won("a3f1c2d4-0101", 56, 1)).await;
    assert_eq!(r.status(), 200);
    // The kickoff is scheduled: the handoff is done.
    let scheduled = v2_won_change(
        "a3f1c2d4-0102",
        56,
        json!({"custom_fields": {"4b5c6d7e8f90112233445566778899aabbccddee":
            {"type": "date", "value": "2026-11-25T10:00:00Z"}}}),
        json!({"custom_fields": {"4b5c6d7e8f90112233445566778899aabbccddee": null}}),
    );
    assert_eq!(send_pipedrive(&app, auth, &scheduled).await.status(), 200);
    let hs = handoffs_of(&app, "56").await;
    assert_eq!(hs.len(), 1);
    assert_eq!(hs[0]["status"], "done", "{hs:?}");
    // An automation moves the won deal to another stage.
    let moved = v2_won_change(
        "a3f1c2d4-0103",
        56,
        json!({"stage_id": 2}),
        json!({"stage_id": 3}),
    );
    let answer = json_of(send_pipedrive(&app, auth, &moved).await).await;
    assert_eq!(answer["events"][0]["duplicate"], false, "{answer}");
    let hs = handoffs_of(&app, "56").await;
    assert_eq!(hs.len(), 1, "handed off again: {hs:#?}");
    assert_eq!(hs[0]["status"], "done");
    // No event was stored with an unknown stage ("open") or other error.
    let flagged: i64 = rusqlite::Connection::open(app.dir.path().join("handoff.db"))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM events WHERE field_errors NOT IN \
             ('[]', '{\"errors\":[],\"unknown_values\":[]}')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(flagged, 0);
}

/// A webhook whose record id is not a Pipedrive id (it would step out of
/// the API path the record is read at) is set aside: answered 200 and
/// named in the answer, so Pipedrive does not resend what no resend can
/// fix, and nothing is stored.
#[tokio::test(flavor = "multi_thread")]
async fn a_record_id_that_is_not_a_pipedrive_id_is_set_aside_with_200() {
    let fake = FakeCrm::start("pd-api-token").await;
    let app = app(&fake).await;
    let mut bad = v2_won("a3f1c2d4-0201", 57, 1);
    bad["meta"]["entity_id"] = json!("../persons/7");
    bad["data"]["id"] = json!("../persons/7");
    let r = send_pipedrive(&app, Some((USER, PASSWORD)), &bad).await;
    assert_eq!(r.status(), 200);
    let answer = json_of(r).await;
    let why = answer["rejected"][0]["error"].as_str().unwrap_or_default();
    assert!(why.contains("is not a Pipedrive id"), "{answer}");
    assert_eq!(events_stored(&app, "pipedrive"), 0);
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_v1_update_missing_a_field_pauses_and_the_next_update_resumes() {
    let fake = FakeCrm::start("pd-api-token").await;
    let app = app(&fake).await;
    let auth = Some((USER, PASSWORD));
    let flat = |risk: Option<&str>, status: &str, stage: u64| {
        let mut d = json!({"id": 56, "title": "Beta LLC", "value": 8000, "currency": "USD",
            "status": status, "stage_id": stage, "user_id": 8});
        for (k, v) in custom_fields(risk).as_object().unwrap() {
            d[k] = v.get("value").cloned().unwrap_or(J::Null);
        }
        d
    };
    let v1 = |ts: i64, current: J, previous: J| {
        json!({
            "v": 1,
            "event": "updated.deal",
            "meta": {"v": 1, "action": "updated", "object": "deal", "id": 56,
                     "company_id": 12882925, "user_id": 8, "host": "acme.pipedrive.com",
                     "timestamp": ts, "timestamp_micro": ts * 1_000_000,
                     "permitted_user_ids": [8], "is_bulk_update": false, "webhook_id": "99"},
            "current": current,
            "previous": previous,
            "retry": 0
        })
    };
    let won = v1(1_795_705_445, flat(None, "won", 3), flat(None, "open", 3));
    let r = send_pipedrive(&app, auth, &won).await;
    assert_eq!(r.status(), 200);
    let hs = handoffs_of(&app, "56").await;
    assert_eq!(hs[0]["status"], "paused");
    assert_eq!(hs[0]["missing"], json!(["risk_notes"]));
    // A retry of the same v1 delivery (`retry: 1`): a duplicate.
    let mut again = won.clone();
    again["retry"] = json!(1);
    let answer = json_of(send_pipedrive(&app, auth, &again).await).await;
    assert_eq!(answer["events"][0]["duplicate"], true);

    let filled = v1(
        1_795_705_500,
        flat(Some("Holiday freeze"), "won", 3),
        flat(None, "won", 3),
    );
    let r = send_pipedrive(&app, auth, &filled).await;
    assert_eq!(r.status(), 200);
    let hs = handoffs_of(&app, "56").await;
    assert_eq!(hs[0]["status"], "proceeded");
    assert_eq!(events_stored(&app, "pipedrive"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_right_basic_auth_the_hook_is_401_and_stores_nothing() {
    let fake = FakeCrm::start("pd-api-token").await;
    let app = app(&fake).await;
    let body = v2_won("a3f1c2d4-0002", 57, 1);
    for auth in [None, Some((USER, "wrong")), Some(("someone", PASSWORD))] {
        let r = send_pipedrive(&app, auth, &body).await;
        assert_eq!(r.status(), 401, "{auth:?}");
        assert!(r.headers().contains_key("www-authenticate"));
    }
    assert_eq!(events_stored(&app, "pipedrive"), 0);
    assert!(handoffs_of(&app, "57").await.is_empty());

    // Wrong passwords do not lock out the address they came from: Pipedrive
    // sends every account's webhooks from the same addresses, so another
    // account's webhook with a wrong password must not stop ours.
    for _ in 0..12 {
        let r = send_pipedrive(&app, Some((USER, "guess")), &body).await;
        assert_eq!(r.status(), 401);
    }
    let r = send_pipedrive(&app, Some((USER, PASSWORD)), &body).await;
    assert_eq!(r.status(), 200);

    // A server with no Pipedrive credentials configured refuses all.
    let open = spawn_app_with(|s| s.crm = mapping("http://127.0.0.1:9")).await;
    let r = send_pipedrive(&open, Some((USER, PASSWORD)), &body).await;
    assert_eq!(r.status(), 401);
    assert!(json_of(r).await["error"]
        .as_str()
        .unwrap()
        .contains("HANDOFF_PIPEDRIVE_USER"));
    assert_eq!(events_stored(&open, "pipedrive"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_without_the_custom_fields_reads_the_deal_from_the_api() {
    let fake = FakeCrm::start("pd-api-token").await;
    // API v1 gives custom fields flat, by key, and the user as an object.
    let mut deal = json!({"id": 58, "title": "Theta SA", "value": 9000, "status": "won",
        "stage_id": 3, "user_id": {"id": 9, "name": "Maya", "email": "maya@example.com", "value": 9}});
    for (k, v) in custom_fields(Some("None")).as_object().unwrap() {
        deal[k] = v.get("value").cloned().unwrap_or(J::Null);
    }
    fake.put("deals", "58", deal);
    let app = app(&fake).await;
    let body = json!({
        "meta": {"action": "change", "entity": "deal", "entity_id": "58", "id": "b7e1-58",
                 "version": "2.0", "timestamp": "2026-11-20T15:04:05Z"},
        "data": {"id": 58, "title": "Theta SA", "value": 9000, "status": "won", "stage_id": 3},
        "previous": {"status": "open"}
    });
    let r = send_pipedrive(&app, Some((USER, PASSWORD)), &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(fake.calls(), ["/api/v1/deals/58"]);
    let hs = handoffs_of(&app, "58").await;
    assert_eq!(hs[0]["status"], "proceeded", "{hs:?}");
    let id = hs[0]["id"].as_str().unwrap();
    let detail = json_of(app.get(&format!("/handoffs/{id}")).await).await;
    assert_eq!(detail["record"]["owner"], "maya@example.com");
    assert_eq!(detail["record"]["risk_notes"], "None");
}

/// A v2 `change` of deal `id` (`meta.id` = `meta_id`), won, worth `value`,
/// in `segment`, with the custom fields of the example mapping and `extra`
/// custom fields (by handoff field name) on top.
fn v2_change(meta_id: &str, id: u64, value: u64, segment: &str, extra: &[(&str, &str)]) -> J {
    let mut body = v2_won(meta_id, id, 1);
    body["data"]["value"] = json!(value);
    let keys = [
        ("segment", "8f3b1c0a9e2d4f6b8a1c3e5d7f9b0a2c4e6d8f10"),
        ("custom_scope", "293a4b5c6d7e8f90112233445566778899aabbcc"),
        (
            "review_approved",
            "3a4b5c6d7e8f90112233445566778899aabbccdd",
        ),
        (
            "kickoff_scheduled_at",
            "4b5c6d7e8f90112233445566778899aabbccddee",
        ),
    ];
    let key = |field: &str| keys.iter().find(|(f, _)| *f == field).unwrap().1;
    body["data"]["custom_fields"][key("segment")] = json!({"type": "enum", "value": segment});
    for (field, v) in extra {
        body["data"]["custom_fields"][key(field)] = json!({"type": "varchar", "value": v});
    }
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bundled_deal_scenarios_through_pipedrive() {
    let fake = FakeCrm::start("pd-api-token").await;
    let app = app(&fake).await;
    let auth = Some((USER, PASSWORD));
    let send = |body: J| {
        let app = &app;
        async move {
            let r = send_pipedrive(app, auth, &body).await;
            assert_eq!(r.status(), 200, "{body}");
        }
    };

    // Custom scope: founder review, approved in Pipedrive (a custom field),
    // then done once the kickoff is on the calendar.
    send(v2_change(
        "m-61-1",
        61,
        30000,
        "mid",
        &[("custom_scope", "true")],
    ))
    .await;
    let h = &handoffs_of(&app, "61").await[0];
    assert_eq!(h["status"], "review", "{h}");
    assert_eq!(h["exceptions"], json!(["Custom Scope"]));
    send(v2_change(
        "m-61-2",
        61,
        30000,
        "mid",
        &[("custom_scope", "true"), ("review_approved", "true")],
    ))
    .await;
    assert_eq!(handoffs_of(&app, "61").await[0]["status"], "proceeded");
    send(v2_change(
        "m-61-3",
        61,
        30000,
        "mid",
        &[
            ("custom_scope", "true"),
            ("review_approved", "true"),
            ("kickoff_scheduled_at", "2026-12-08T10:00:00Z"),
        ],
    ))
    .await;
    assert_eq!(handoffs_of(&app, "61").await[0]["status"], "done");

    // A big enterprise deal: review, approved by hand through the API.
    send(v2_change("m-62-1", 62, 80000, "enterprise", &[])).await;
    let h = &handoffs_of(&app, "62").await[0];
    assert_eq!(h["status"], "review", "{h}");
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
    assert_eq!(handoffs_of(&app, "62").await[0]["status"], "proceeded");

    // A deal worth nothing does not start a handoff.
    send(v2_change("m-63-1", 63, 0, "smb", &[])).await;
    assert!(handoffs_of(&app, "63").await.is_empty());
    assert_eq!(events_stored(&app, "pipedrive"), 5);
    // Each CRM event's decision is timed like a generic event's.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let count = metrics
        .lines()
        .find_map(|l| l.strip_prefix("handoff_decision_seconds_count "))
        .expect("the decision histogram");
    assert_eq!(count, "5", "{metrics}");
}

/// A v2 `change` of person `id` (a lead in the example mapping) to the
/// status option `status`, with its marketing context; `campaign` may be
/// missing.
fn v2_person(meta_id: &str, id: u64, owner: u64, status: u64, campaign: Option<&str>) -> J {
    let mut custom = json!({
        "5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7": {"type": "enum", "value": status},
        "6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8": {"type": "varchar", "value": "Paid search"},
        "8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a": {"type": "varchar", "value": "Free audit"},
        "9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b": {"type": "varchar", "value": "Slow onboarding"},
        "0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c": {"type": "varchar", "value": "Yes"},
        "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d": {"type": "varchar", "value": "Approved"},
        "2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e": {"type": "varchar", "value": "2026-11-19T10:00:00Z"}
    });
    custom["7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f809"] = match campaign {
        Some(c) => json!({"type": "varchar", "value": c}),
        None => J::Null,
    };
    json!({
        "meta": {
            "action": "change", "entity": "person", "entity_id": id.to_string(),
            "id": meta_id, "version": "2.0", "company_id": "12882925",
            "timestamp": "2026-11-20T15:04:05.000Z", "attempt": 1,
            "host": "acme.pipedrive.com", "change_source": "app"
        },
        "data": {
            "id": id, "name": format!("Person {id}"), "owner_id": owner,
            "add_time": "2026-11-01T10:00:00Z", "update_time": "2026-11-20T15:04:05Z",
            "custom_fields": custom
        },
        "previous": {"custom_fields": {"5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7": {"type": "enum", "value": 42}}}
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bundled_lead_scenarios_through_pipedrive() {
    let fake = FakeCrm::start("pd-api-token").await;
    let app = app(&fake).await;
    let auth = Some((USER, PASSWORD));
    for (meta, id, campaign) in [
        ("p-71", 71, Some("Q4 webinar")),
        ("p-72", 72, Some("Q4 webinar")),
        ("p-73", 73, None),
    ] {
        let r = send_pipedrive(&app, auth, &v2_person(meta, id, 9, 43, campaign)).await;
        assert_eq!(r.status(), 200);
    }
    // Least loaded: the two complete leads go to different people.
    let mut owners = Vec::new();
    for p in ["71", "72"] {
        let h = &handoffs_of(&app, p).await[0];
        assert_eq!(h["status"], "proceeded", "{h}");
        let id = h["id"].as_str().unwrap();
        let detail = json_of(app.get(&format!("/handoffs/{id}")).await).await;
        assert_eq!(detail["record"]["status"], "Sales Qualified");
        assert_eq!(detail["record"]["owner"], "maya@example.com");
        owners.push(assigned_to(&detail));
    }
    assert_ne!(owners[0], owners[1], "{owners:?}");
    // No campaign: paused, asking for exactly that.
    let h = &handoffs_of(&app, "73").await[0];
    assert_eq!(h["status"], "paused");
    assert_eq!(h["missing"], json!(["campaign"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_older_pipedrive_change_never_overwrites_a_newer_one() {
    let fake = FakeCrm::start("pd-api-token").await;
    let app = app(&fake).await;
    let auth = Some((USER, PASSWORD));
    let at = |meta_id: &str, ts: &str, risk: &str| {
        let mut body = v2_won(meta_id, 64, 1);
        body["meta"]["timestamp"] = json!(ts);
        body["data"]["custom_fields"] = custom_fields(Some(risk));
        body
    };
    // The newer change arrives first; the older one, delivered late, must
    // not put its value back.
    let newer = at("m-64-2", "2026-11-20T15:10:00.000Z", "Holiday freeze");
    let older = at("m-64-1", "2026-11-20T15:00:00.000Z", "Busy December");
    assert_eq!(send_pipedrive(&app, auth, &newer).await.status(), 200);
    assert_eq!(send_pipedrive(&app, auth, &older).await.status(), 200);
    assert_eq!(events_stored(&app, "pipedrive"), 2);
    let h = &handoffs_of(&app, "64").await[0];
    let id = h["id"].as_str().unwrap();
    let detail = json_of(app.get(&format!("/handoffs/{id}")).await).await;
    assert_eq!(detail["record"]["risk_notes"], "Holiday freeze", "{detail}");
}
