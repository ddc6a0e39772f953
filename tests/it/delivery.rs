//! The outbox worker against fake sinks on local ports (acceptance 4 of
//! issue 11): a sink failing its first calls, one that times out after
//! doing the work, one that always fails. Every action arrives, no CRM
//! task exists twice, the always-failing one ends in the dead letters and
//! is re-driven after the sink recovers, and a restart in the middle
//! resumes; a `set` that comes late is not sent over a newer one of its
//! field. Nothing sleeps: every wait polls the API with a bound.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use handoff::runtime::delivery::{DeliverySettings, MapUserIds, SinkKind, UserIds};
use handoff::runtime::secret::Secret;
use handoff::runtime::store::{ActionKind, SqliteOptions, SqliteStore, Store};
use handoff::runtime::Settings;
use serde_json::{json, Value as J};

use crate::fake_sinks::{Behaviour, FakeSinks, HUBSPOT_TOKEN, OUTBOUND_SECRET, PIPEDRIVE_TOKEN};
use crate::helpers::{spawn_app_with, spawn_app_with_users, TestApp, BOUND};

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

/// The ids the CRMs and Slack know the people by.
fn users() -> Arc<dyn UserIds> {
    Arc::new(
        MapUserIds::default()
            .with("hubspot", "ana@example.com", "201")
            .with("hubspot", "raj@example.com", "202")
            .with("hubspot", "lee@example.com", "203")
            .with("pipedrive", "ana@example.com", "71")
            .with("pipedrive", "raj@example.com", "72")
            .with("pipedrive", "lee@example.com", "73")
            .with("slack", "sam@example.com", "U0SAM"),
    )
}

/// The API token of the test that also reads a handoff's page.
const DELIVERY_TOKEN: &str = "delivery-api-token";

/// Delivery to the fakes, fast: 20 ms backoff, 500 ms timeout.
fn deliver_to(
    fake: &FakeSinks,
    routes: &[(ActionKind, &[SinkKind])],
    max_attempts: u32,
    db: Option<PathBuf>,
) -> impl FnOnce(&mut Settings) {
    let fake = fake.clone();
    let routes: Vec<(ActionKind, Vec<SinkKind>)> =
        routes.iter().map(|(k, s)| (*k, s.to_vec())).collect();
    move |s: &mut Settings| {
        if let Some(db) = db {
            s.db = db;
        }
        s.public_url = Some("https://handoff.example".into());
        s.secrets.hubspot_token = Some(Secret::new(HUBSPOT_TOKEN));
        s.secrets.pipedrive_api_token = Some(Secret::new(PIPEDRIVE_TOKEN));
        s.secrets.slack_webhook_url = Some(Secret::new(fake.slack_url()));
        s.secrets.outbound_secret = Some(Secret::new(OUTBOUND_SECRET));
        s.delivery = DeliverySettings {
            routes: routes.into_iter().collect(),
            max_attempts,
            backoff: Duration::from_millis(20),
            backoff_max: Duration::from_millis(200),
            timeout: Duration::from_millis(500),
            concurrency: 4,
            poll: Duration::from_millis(20),
            hubspot_api_url: fake.url(),
            pipedrive_api_url: fake.url(),
            pipedrive_activity_type: "task".into(),
            webhook_url: Some(fake.webhook_url()),
        };
    }
}

/// Without `public_url`, links to briefs lead to the address the server
/// bound, not the configured one: with `--listen 127.0.0.1:0` that is
/// the port the system picked (links once said port 0).
#[tokio::test(flavor = "multi_thread")]
async fn links_to_briefs_name_the_port_the_server_listens_on() {
    let fake = FakeSinks::start().await;
    let deliver = deliver_to(&fake, &[(ActionKind::Task, &[SinkKind::Webhook])], 3, None);
    let app = spawn_app_with(move |s: &mut Settings| {
        deliver(s);
        s.public_url = None;
    })
    .await;
    post_event(&app, &won("e1", "D-1", Some("None"))).await;
    let h1 = handoff_of(&app, "D-1").await;
    wait_actions(&app, &h1, |a| state_of(a, "task") == ["delivered"]).await;
    let hooks = fake.received(|r| r.webhooks.clone());
    let brief_url = hooks[0].0["data"]["brief_url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        brief_url,
        app.url(&format!("/handoffs/{h1}")),
        "{:#}",
        hooks[0].0
    );
    assert!(!brief_url.contains(":0/"), "{brief_url}");
}

async fn post_event(app: &TestApp, body: &J) {
    let mut req = app.client.post(app.url("/hooks/generic"));
    // Unsigned, the generic hook wants the API token when one is set.
    if let Some(t) = &app.token {
        req = req.bearer_auth(t);
    }
    let r = req.body(body.to_string()).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

async fn json_of(r: reqwest::Response) -> J {
    r.json().await.expect("a JSON body")
}

async fn handoff_of(app: &TestApp, record: &str) -> String {
    let list = json_of(app.get(&format!("/handoffs?record={record}")).await).await;
    list["handoffs"][0]["id"]
        .as_str()
        .expect("a handoff for the record")
        .to_string()
}

/// Polls the handoff's actions every 20 ms until `done` holds, failing
/// after [`BOUND`]; returns them.
async fn wait_actions(app: &TestApp, handoff: &str, done: impl Fn(&[J]) -> bool) -> Vec<J> {
    let deadline = tokio::time::Instant::now() + BOUND;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        let detail = json_of(app.get(&format!("/handoffs/{handoff}")).await).await;
        let actions = detail["actions"].as_array().cloned().unwrap_or_default();
        if done(&actions) {
            return actions;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not delivered within {BOUND:?}: {actions:#?}"
        );
    }
}

/// Polls the fakes until `done` holds, failing after [`BOUND`].
async fn wait_fake(
    fake: &FakeSinks,
    what: &str,
    done: impl Fn(&crate::fake_sinks::Received) -> bool,
) {
    let deadline = tokio::time::Instant::now() + BOUND;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tick.tick().await;
        if fake.received(&done) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {BOUND:?}"
        );
    }
}

/// The notes of kind `kind` in a handoff's detail.
fn notes_of<'a>(detail: &'a J, kind: &str) -> Vec<&'a J> {
    detail["notes"]
        .as_array()
        .map(|notes| notes.iter().filter(|n| n["kind"] == kind).collect())
        .unwrap_or_default()
}

fn of_kind<'a>(actions: &'a [J], kind: &str) -> Vec<&'a J> {
    actions.iter().filter(|a| a["kind"] == kind).collect()
}

fn state_of(actions: &[J], kind: &str) -> Vec<String> {
    of_kind(actions, kind)
        .iter()
        .map(|a| a["state"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_action_arrives_once_and_a_dead_letter_is_redriven_after_recovery() {
    let fake = FakeSinks::start().await;
    // HubSpot creates the task, then never answers (the client times out).
    fake.set("hubspot.create", Behaviour::HangAfterWorkFirst(1));
    // Slack is rate limited twice.
    fake.set(
        "slack",
        Behaviour::FailFirst {
            n: 2,
            status: 429,
            retry_after: Some(0),
        },
    );
    // The outbound webhook's receiver is down.
    fake.set("webhook", Behaviour::AlwaysFail(503));
    let deliver = deliver_to(
        &fake,
        &[
            (ActionKind::Task, &[SinkKind::Hubspot, SinkKind::Webhook]),
            (ActionKind::Notify, &[SinkKind::Slack]),
        ],
        4,
        None,
    );
    let app = spawn_app_with_users(
        move |s: &mut Settings| {
            deliver(s);
            // A token, so a person can sign in to read the handoff's page.
            s.secrets.api_token = Some(Secret::new(DELIVERY_TOKEN));
        },
        Some(users()),
    )
    .await;

    post_event(&app, &won("e1", "D-1", Some("None"))).await;
    // A paused handoff notifies its owner, a person, through Slack.
    post_event(&app, &won("e2", "D-2", None)).await;
    let h1 = handoff_of(&app, "D-1").await;
    let h2 = handoff_of(&app, "D-2").await;

    let actions = wait_actions(&app, &h1, |a| {
        state_of(a, "task") == ["dead"] && state_of(a, "notify") == ["delivered"]
    })
    .await;
    // The task went to HubSpot exactly once, although the first try timed
    // out after HubSpot had made it: the retry found it by its marker.
    let task = of_kind(&actions, "task")[0].clone();
    let key = task["idempotency_key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!key.is_empty());
    let (tasks, creates, searches) = fake.received(|r| {
        (
            r.hubspot_tasks.clone(),
            r.calls.get("hubspot.create").copied(),
            r.calls.get("hubspot.search").copied(),
        )
    });
    assert_eq!(tasks.len(), 1, "{tasks:#?}");
    assert_eq!(creates, Some(1));
    assert!(searches >= Some(1));
    let props = &tasks[0]["properties"];
    assert_eq!(props["hs_task_subject"], "Kickoff: Deal D-1");
    let body = props["hs_task_body"].as_str().unwrap();
    assert!(body.contains(&format!("handoff-action:{key}")), "{body}");
    assert!(
        body.contains(&format!("https://handoff.example/handoffs/{h1}")),
        "{body}"
    );
    assert!(
        body.contains("<li>Schedule the kickoff call</li>"),
        "{body}"
    );
    assert!(["201", "202", "203"].contains(&props["hubspot_owner_id"].as_str().unwrap()));
    assert!(props["hs_timestamp"]
        .as_str()
        .unwrap()
        .parse::<i64>()
        .is_ok());
    assert_eq!(tasks[0]["associations"][0]["to"]["id"], "D-1");
    assert_eq!(
        tasks[0]["associations"][0]["types"][0]["associationTypeId"],
        216
    );
    // HubSpot took it; the webhook is what failed, four times.
    assert_eq!(task["sinks"][0]["sink"], "hubspot");
    assert_eq!(task["sinks"][0]["ref"], "1001");
    assert_eq!(task["attempts"], 4);
    let error = task["last_error"].as_str().unwrap();
    assert!(error.contains("webhook: HTTP 503"), "{error}");
    assert!(error.contains("gave up after 4 tries"), "{error}");
    // The handoff's page says the same per sink: HubSpot took the task
    // (with its task id), the webhook's error is beside it.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token = app.token.clone().expect("the app has an API token");
    let cookie = crate::web::session(&app, &browser, "maya@example.com", &token).await;
    let (status, html) =
        crate::web::page(&app, &browser, &cookie, &format!("/handoffs/{h1}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("HubSpot: 1001, "), "{html}");
    assert!(html.contains("webhook: HTTP 503"), "{html}");

    // Email drafts wait for review: never claimed, never sent.
    assert_eq!(state_of(&actions, "email_draft"), ["draft"]);
    // Assign is routed nowhere here: delivered to no sink.
    let assign = &of_kind(&actions, "assign")[0];
    assert_eq!(assign["state"], "delivered");
    assert_eq!(assign["sinks"], json!([]));

    // The person notify reached Slack addressed to Sam.
    wait_actions(&app, &h2, |a| state_of(a, "notify") == ["delivered"]).await;
    let slack = fake.received(|r| r.slack.clone());
    let channel_msg = slack
        .iter()
        .find(|m| m["channel"] == "#delivery")
        .unwrap_or_else(|| panic!("the channel notify in {slack:#?}"));
    assert!(channel_msg["text"]
        .as_str()
        .unwrap()
        .starts_with("New client Deal D-1 starts"));
    let person = slack
        .iter()
        .find(|m| m["channel"] == "@U0SAM")
        .expect("the notify to the owner");
    assert!(person["text"]
        .as_str()
        .unwrap()
        .starts_with("<@U0SAM> Handoff for Deal D-2 is paused"));
    assert_eq!(slack.len(), 2, "one message per notify: {slack:#?}");

    // The dead letter is listed with why.
    let dead = json_of(app.get("/outbox/dead-letters").await).await;
    let listed = dead["dead_letters"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], task["id"]);
    assert!(listed[0]["last_error"].as_str().unwrap().contains("503"));

    // Not re-drivable: unknown, or not dead.
    let notify_id = of_kind(&actions, "notify")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .client
        .post(app.url(&format!("/outbox/{notify_id}/retry")))
        .bearer_auth(DELIVERY_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = app
        .client
        .post(app.url("/outbox/no-such-action/retry"))
        .bearer_auth(DELIVERY_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The receiver recovers; re-driving delivers to the webhook only.
    fake.set("webhook", Behaviour::Works);
    let task_id = task["id"].as_str().unwrap();
    let r = app
        .client
        .post(app.url(&format!("/outbox/{task_id}/retry")))
        .bearer_auth(DELIVERY_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let redriven = json_of(r).await;
    assert_eq!(redriven["id"], task["id"]);
    // The worker may have claimed it already.
    assert_ne!(redriven["state"], "dead");
    // The handoff's record says who re-drove what.
    let detail = json_of(app.get(&format!("/handoffs/{h1}")).await).await;
    let redrives = notes_of(&detail, "redrive");
    assert_eq!(redrives.len(), 1, "{:#}", detail["notes"]);
    assert_eq!(redrives[0]["who"], "API token");
    assert_eq!(redrives[0]["text"], format!("re-drove task {task_id}"));
    let actions = wait_actions(&app, &h1, |a| state_of(a, "task") == ["delivered"]).await;
    let task = of_kind(&actions, "task")[0].clone();
    let sinks: Vec<&str> = task["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sink"].as_str().unwrap())
        .collect();
    assert_eq!(sinks, ["hubspot", "webhook"]);
    let (tasks, creates, hooks) = fake.received(|r| {
        (
            r.hubspot_tasks.len(),
            r.calls.get("hubspot.create").copied(),
            r.webhooks.clone(),
        )
    });
    assert_eq!((tasks, creates), (1, Some(1)), "no second HubSpot task");
    assert_eq!(hooks.len(), 1);
    let (hook, verified) = &hooks[0];
    assert!(verified, "the Standard Webhooks signature verifies");
    assert_eq!(hook["type"], "handoff.action.task");
    assert_eq!(hook["webhook-id"], key.as_str());
    assert_eq!(hook["data"]["handoff"]["record_id"], "D-1");
    assert_eq!(hook["data"]["action"]["title"], "Kickoff: Deal D-1");
    assert!(
        json_of(app.get("/outbox/dead-letters").await).await["dead_letters"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let metrics = app.get("/metrics").await.text().await.unwrap();
    for line in [
        r#"handoff_deliveries_total{sink="hubspot",result="found_existing"} 1"#,
        r#"handoff_deliveries_total{sink="webhook",result="failed"} 4"#,
        r#"handoff_deliveries_total{sink="webhook",result="delivered"} 1"#,
        r#"handoff_deliveries_total{sink="slack",result="throttled"} 2"#,
        "handoff_dead_letters_total 1",
    ] {
        assert!(metrics.contains(line), "{line} missing in\n{metrics}");
    }
    app.shutdown().await.unwrap();
}

fn shared_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("handoff.db");
    (dir, db)
}

/// Claims every due action with an hour-long lease and walks away, as a
/// worker that crashed mid-delivery would; how many.
fn crash_holding_leases(db: &Path) -> usize {
    let store = SqliteStore::open(db, SqliteOptions::default()).unwrap();
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60);
    let n = store
        .claim_due(later, Duration::from_secs(3600), 100)
        .unwrap()
        .len();
    store.close();
    n
}

/// A create answered 2xx whose body cannot be read (a proxy's page, a cut
/// connection) did make the task: it counts as delivered, and nothing is
/// searched for or made again.
#[tokio::test(flavor = "multi_thread")]
async fn a_create_answered_2xx_with_an_unreadable_body_is_delivered_once() {
    let fake = FakeSinks::start().await;
    fake.set("hubspot.create", Behaviour::GarbleAfterWorkFirst(1));
    fake.set("pipedrive.create", Behaviour::GarbleAfterWorkFirst(1));
    let routes: &[(ActionKind, &[SinkKind])] =
        &[(ActionKind::Task, &[SinkKind::Hubspot, SinkKind::Pipedrive])];
    let app = spawn_app_with_users(deliver_to(&fake, routes, 5, None), Some(users())).await;
    post_event(&app, &won("e1", "55", Some("None"))).await;
    let h = handoff_of(&app, "55").await;
    let actions = wait_actions(&app, &h, |a| state_of(a, "task") == ["delivered"]).await;
    assert_eq!(of_kind(&actions, "task")[0]["attempts"], 1);
    let (tasks, activities, searches, lists) = fake.received(|r| {
        (
            r.hubspot_tasks.len(),
            r.pipedrive_activities.len(),
            r.calls.get("hubspot.search").copied(),
            r.calls.get("pipedrive.list").copied(),
        )
    });
    assert_eq!((tasks, activities), (1, 1));
    assert_eq!((searches, lists), (None, None), "nothing to look for");
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_is_waited_out_and_never_uses_up_the_attempts() {
    let fake = FakeSinks::start().await;
    // Slack throttles five times in a row; two failed tries would be a
    // dead letter, but a 429 is not a failure.
    fake.set(
        "slack",
        Behaviour::FailFirst {
            n: 5,
            status: 429,
            retry_after: Some(0),
        },
    );
    let app = spawn_app_with_users(
        deliver_to(&fake, &[(ActionKind::Notify, &[SinkKind::Slack])], 2, None),
        Some(users()),
    )
    .await;
    post_event(&app, &won("e1", "D-1", Some("None"))).await;
    let h1 = handoff_of(&app, "D-1").await;
    let actions = wait_actions(&app, &h1, |a| state_of(a, "notify") == ["delivered"]).await;
    let notify = of_kind(&actions, "notify")[0];
    assert_eq!(notify["attempts"], 1, "only the try that worked counts");
    assert_eq!(fake.received(|r| r.slack.len()), 1, "sent once");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("handoff_deliveries_total{sink=\"slack\",result=\"throttled\"} 5"),
        "{metrics}"
    );
}

/// Past a day, rate limits count like any failure: a sink that answers 429
/// for ever ends in a dead letter a person sees, not an action pending for
/// ever. The action is made a day old by hand while the server keeps
/// retrying it (the server's clock is the real one).
#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_older_than_a_day_counts_and_ends_in_a_dead_letter() {
    let fake = FakeSinks::start().await;
    fake.set(
        "slack",
        Behaviour::FailFirst {
            n: u32::MAX,
            status: 429,
            retry_after: Some(0),
        },
    );
    let app = spawn_app_with_users(
        deliver_to(&fake, &[(ActionKind::Notify, &[SinkKind::Slack])], 2, None),
        Some(users()),
    )
    .await;
    post_event(&app, &won("e1", "D-1", Some("None"))).await;
    let h1 = handoff_of(&app, "D-1").await;
    // More throttled tries than `max_attempts`, and the action still waits.
    wait_fake(&fake, "Slack throttled three tries", |r| {
        r.calls.get("slack").copied().unwrap_or(0) >= 3
    })
    .await;
    let actions = wait_actions(&app, &h1, |a| !state_of(a, "notify").is_empty()).await;
    assert_ne!(state_of(&actions, "notify"), ["dead"], "young: waited out");

    let db = rusqlite::Connection::open(app.dir.path().join("handoff.db")).unwrap();
    db.busy_timeout(BOUND).unwrap();
    let day_and_an_hour_us: i64 = 25 * 3600 * 1_000_000;
    let aged = db
        .execute(
            "UPDATE actions SET created_at = created_at - ?1 WHERE kind = 'notify'",
            [day_and_an_hour_us],
        )
        .unwrap();
    assert_eq!(aged, 1);

    let actions = wait_actions(&app, &h1, |a| state_of(a, "notify") == ["dead"]).await;
    let notify = of_kind(&actions, "notify")[0];
    assert_eq!(notify["attempts"], 2, "{notify:#}");
    let error = notify["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("429"), "{error}");
    assert!(error.contains("gave up after 2 tries"), "{error}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("handoff_dead_letters_total 1\n"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_in_the_middle_resumes_without_a_second_task() {
    let fake = FakeSinks::start().await;
    fake.set("hubspot.create", Behaviour::HangAfterWorkFirst(1));
    // Until the restart, the search that would find the task fails too,
    // so the first server cannot finish the delivery before it stops.
    fake.set("hubspot.search", Behaviour::AlwaysFail(503));
    let (_keep, db) = shared_db();
    let routes: &[(ActionKind, &[SinkKind])] = &[(ActionKind::Task, &[SinkKind::Hubspot])];
    let app = spawn_app_with_users(
        deliver_to(&fake, routes, 50, Some(db.clone())),
        Some(users()),
    )
    .await;
    post_event(&app, &won("e1", "D-1", Some("None"))).await;
    // Stop while HubSpot holds the request it already acted on.
    wait_fake(&fake, "HubSpot made the task", |r| {
        r.hubspot_tasks.len() == 1
    })
    .await;
    // The action waits in the outbox, and the gauge says so.
    let deadline = tokio::time::Instant::now() + BOUND;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        let metrics = app.get("/metrics").await.text().await.unwrap();
        if metrics.contains("\nhandoff_outbox_depth 1\n") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
    }
    app.shutdown().await.unwrap();
    // And a crash: the action is left leased for an hour.
    let file = db.clone();
    let held = tokio::task::spawn_blocking(move || crash_holding_leases(&file))
        .await
        .unwrap();
    assert_eq!(held, 1);
    fake.set("hubspot.search", Behaviour::Works);

    restart_resumes_and_delivers(&fake, routes, &db).await;
}

async fn restart_resumes_and_delivers(
    fake: &FakeSinks,
    routes: &[(ActionKind, &[SinkKind])],
    db: &Path,
) {
    let app = spawn_app_with_users(
        deliver_to(fake, routes, 50, Some(db.to_path_buf())),
        Some(users()),
    )
    .await;
    let h1 = handoff_of(&app, "D-1").await;
    // The restart resumed at once, searched, and found the task.
    let actions = wait_actions(&app, &h1, |a| state_of(a, "task") == ["delivered"]).await;
    let task = of_kind(&actions, "task")[0];
    assert_eq!(task["sinks"][0]["ref"], "1001");
    // New work after the restart is delivered as usual.
    post_event(&app, &won("e2", "D-2", Some("None"))).await;
    let h2 = handoff_of(&app, "D-2").await;
    wait_actions(&app, &h2, |a| state_of(a, "task") == ["delivered"]).await;
    let (tasks, creates) = fake.received(|r| {
        (
            r.hubspot_tasks
                .iter()
                .map(|t| {
                    t["associations"][0]["to"]["id"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect::<Vec<_>>(),
            r.calls.get("hubspot.create").copied(),
        )
    });
    assert_eq!(tasks, ["D-1", "D-2"], "one task per deal");
    assert_eq!(creates, Some(2));
    app.shutdown().await.unwrap();
}

/// A workflow on leads kept as Pipedrive persons (the example mapping's
/// `[pipedrive.objects.lead] object_type = "persons"`): the activity goes
/// on the person, never on a deal with the same number, and a retry after
/// a timed-out create finds it by the person.
#[tokio::test(flavor = "multi_thread")]
async fn a_lead_mapped_to_pipedrive_persons_gets_its_activity_on_the_person() {
    let fake = FakeSinks::start().await;
    fake.set("pipedrive.create", Behaviour::HangAfterWorkFirst(1));
    let routes: &[(ActionKind, &[SinkKind])] = &[(ActionKind::Task, &[SinkKind::Pipedrive])];
    let table: toml::Table =
        toml::from_str("[pipedrive.objects.lead]\nobject_type = \"persons\"\n").unwrap();
    let mapping = handoff::runtime::adapters::mapping::Mapping::from_table(&table, "t").unwrap();
    let app =
        spawn_app_with_users(deliver_to(&fake, routes, 5, None), Some(Arc::new(mapping))).await;
    let lead = json!({"id": "l-1", "object": "lead", "record_id": "7",
        "occurred_at": "2026-11-20T15:04:05Z",
        "record": {"name": "Jo Park", "status": "Sales Qualified", "owner": "sam@example.com",
            "lead_source": "webinar", "campaign": "Q4 ops", "offer": "audit",
            "pain_point": "slow handoffs", "qualification_answer": "yes",
            "budget_signal": "approved", "last_touchpoint": "2026-11-19T10:00:00Z"},
        "previous": {"status": "Marketing Qualified"}});
    post_event(&app, &lead).await;
    let h = handoff_of(&app, "7").await;
    wait_actions(&app, &h, |a| state_of(a, "task") == ["delivered"]).await;
    let activities = fake.received(|r| r.pipedrive_activities.clone());
    assert_eq!(
        activities.len(),
        1,
        "the timed-out create was found, not repeated"
    );
    // API v2 takes a person only as the primary participant.
    assert_eq!(
        activities[0]["participants"],
        json!([{"person_id": 7, "primary": true}]),
        "{}",
        activities[0]
    );
    assert!(activities[0].get("deal_id").is_none(), "{}", activities[0]);
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn pipedrive_activities_set_fields_and_a_refusal_dead_letters_at_once() {
    let fake = FakeSinks::start().await;
    fake.set("pipedrive.create", Behaviour::HangAfterWorkFirst(1));
    let (_keep, db) = shared_db();
    let routes: &[(ActionKind, &[SinkKind])] = &[
        (ActionKind::Task, &[SinkKind::Pipedrive]),
        (ActionKind::Set, &[SinkKind::Pipedrive]),
    ];
    let app = spawn_app_with_users(
        deliver_to(&fake, routes, 5, Some(db.clone())),
        Some(users()),
    )
    .await;
    // The workflow also writes a field back to the CRM.
    let file = app.workflow("sales_to_delivery.handoff");
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "    notify channel delivery_feed",
        "    set deal.kickoff_preference = \"Video call\"\n    notify channel delivery_feed",
    );
    std::fs::write(&file, text).unwrap();
    app.state.workflows.reload().await;

    post_event(&app, &won("e1", "42", Some("None"))).await;
    // Not a Pipedrive deal id: refused, dead at the first try.
    post_event(&app, &won("e2", "D-9", Some("None"))).await;
    let h42 = handoff_of(&app, "42").await;
    let h9 = handoff_of(&app, "D-9").await;
    let actions = wait_actions(&app, &h42, |a| {
        state_of(a, "task") == ["delivered"] && state_of(a, "set") == ["delivered"]
    })
    .await;
    let key = of_kind(&actions, "task")[0]["idempotency_key"]
        .as_str()
        .unwrap()
        .to_string();
    let (activities, patches) =
        fake.received(|r| (r.pipedrive_activities.clone(), r.pipedrive_patches.clone()));
    assert_eq!(
        activities.len(),
        1,
        "the timed-out create was found, not repeated"
    );
    let a = &activities[0];
    assert_eq!(a["deal_id"], 42);
    assert_eq!(a["subject"], "Kickoff: Deal 42");
    assert_eq!(a["type"], "task");
    assert!(["71", "72", "73"].contains(&a["owner_id"].to_string().as_str()));
    assert!(a["due_date"].as_str().unwrap().len() == 10);
    assert!(a["note"]
        .as_str()
        .unwrap()
        .contains(&format!("handoff-action:{key}")));
    assert_eq!(
        patches,
        [(
            "42".to_string(),
            json!({"kickoff_preference": "Video call"})
        )]
    );

    let dead = wait_actions(&app, &h9, |a| state_of(a, "task") == ["dead"]).await;
    let task = of_kind(&dead, "task")[0];
    assert_eq!(task["attempts"], 1, "a refusal is not retried");
    assert!(task["last_error"]
        .as_str()
        .unwrap()
        .contains("not a Pipedrive deal id"));
    let dead_id = task["id"].as_str().unwrap().to_string();
    app.shutdown().await.unwrap();

    // The CLI lists the dead letter and re-drives it in the database file.
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_handoff"))
            .arg("outbox")
            .args(args)
            .arg("--db")
            .arg(&db)
            .output()
            .unwrap()
    };
    let out = cli(&["list"]);
    assert!(out.status.success());
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains(&dead_id) && listed.contains("not a Pipedrive deal id"),
        "{listed}"
    );
    let out = cli(&["list", "--format", "json"]);
    let json: J = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = json["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    // The task, and the `set` of the same record (also not a deal id).
    assert_eq!(ids.len(), 2, "{json:#}");
    assert!(ids.contains(&dead_id.as_str()));
    let out = cli(&["retry", &dead_id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-driven"));
    let out = cli(&["retry", &dead_id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("it is pending, not dead"));
    let out = cli(&["retry", "--all"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("re-driven")
            .count(),
        1
    );
    let out = cli(&["list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no dead letters"));
    // Each re-drive is on its handoff's record, as one from the pages is.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let notes: Vec<(String, String)> = conn
        .prepare("SELECT who, text FROM notes WHERE kind = 'redrive' ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(
        notes[0],
        (
            "handoff outbox retry".to_string(),
            format!("re-drove task {dead_id}")
        )
    );
    assert_eq!(notes[1].0, "handoff outbox retry");
}

/// Two handoffs of one deal that write the same field: the deal reaching
/// Proposal guesses an async kickoff, the deal being won asks for a video
/// call. Checked clean (`handoff check`: warnings only, for the unused
/// declarations of `crm.handoff`).
const KICKOFF_WORKFLOWS: &str = r#"handoff "Proposal kickoff" {
  when deal.stage becomes "Proposal"
  then { set deal.kickoff_preference = "Async first" }
}

handoff "Won kickoff" {
  when deal.stage becomes "Closed Won"
  then { set deal.kickoff_preference = "Video call" }
}
"#;

/// A workflows folder of its own: the bundled `crm.handoff` (the `deal`
/// object) and [`KICKOFF_WORKFLOWS`], nothing else, so no other handoff
/// starts on the deal's events.
fn kickoff_workflows() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/crm.handoff");
    std::fs::copy(bundled, dir.path().join("crm.handoff")).unwrap();
    std::fs::write(dir.path().join("kickoff.handoff"), KICKOFF_WORKFLOWS).unwrap();
    dir
}

/// A server on [`kickoff_workflows`] (kept alive by the returned folder)
/// delivering `set`s to the fake HubSpot, backing off at most
/// `backoff_max`.
async fn kickoff_app(fake: &FakeSinks, backoff_max: Duration) -> (tempfile::TempDir, TestApp) {
    let workflows = kickoff_workflows();
    let folder = workflows.path().to_path_buf();
    let deliver = deliver_to(fake, &[(ActionKind::Set, &[SinkKind::Hubspot])], 5, None);
    let app = spawn_app_with_users(
        move |s: &mut Settings| {
            deliver(s);
            s.workflows = folder;
            s.delivery.backoff_max = backoff_max;
        },
        Some(users()),
    )
    .await;
    (workflows, app)
}

/// An event of deal `record` moving from stage `from` to `to` at `at`.
fn stage_event(id: &str, record: &str, from: &str, to: &str, at: &str) -> J {
    json!({"id": id, "object": "deal", "record_id": record, "occurred_at": at,
           "record": {"name": format!("Deal {record}"), "stage": to,
                      "owner": "sam@example.com", "amount": 8000},
           "previous": {"stage": from}})
}

/// The id of `record`'s handoff of `workflow`.
async fn handoff_of_workflow(app: &TestApp, record: &str, workflow: &str) -> String {
    let list = json_of(app.get(&format!("/handoffs?record={record}")).await).await;
    list["handoffs"]
        .as_array()
        .and_then(|hs| hs.iter().find(|h| h["workflow"] == workflow))
        .and_then(|h| h["id"].as_str())
        .unwrap_or_else(|| panic!("no handoff of {workflow:?} for {record}: {list:#}"))
        .to_string()
}

/// A `set` whose tries failed while a newer `set` of the same field on the
/// same record went through is not sent when it comes due again: sending it
/// would put the older value back in the CRM. It is marked delivered with
/// no sink, and its handoff gets a `superseded` note naming the newer one.
///
/// The order is made, not hoped for: the older `set`'s first write fails
/// with a 503 asking for an hour (`Retry-After`, honoured up to
/// `backoff_max`), the newer event is posted only once that failure is
/// recorded (so its action has the greater `seq` and is delivered first),
/// and only then is the older one made due, by hand in the database, as
/// the hour passing would.
#[tokio::test(flavor = "multi_thread")]
async fn a_set_that_comes_due_after_a_newer_set_of_its_field_is_superseded_not_sent() {
    let fake = FakeSinks::start().await;
    // Only the first write HubSpot gets (the older set's) fails.
    fake.set(
        "hubspot.patch",
        Behaviour::FailFirst {
            n: 1,
            status: 503,
            retry_after: Some(3600),
        },
    );
    // Room for the hour the failed write asks for.
    let (_workflows, app) = kickoff_app(&fake, Duration::from_secs(3600)).await;

    post_event(
        &app,
        &stage_event("k-1", "42", "Qualified", "Proposal", "2026-11-20T15:00:00Z"),
    )
    .await;
    let older_handoff = handoff_of_workflow(&app, "42", "Proposal kickoff").await;
    // Its first try failed, and it waits for the hour.
    let actions = wait_actions(&app, &older_handoff, |a| {
        of_kind(a, "set")
            .first()
            .is_some_and(|s| s["state"] == "pending" && s["attempts"] == 1)
    })
    .await;
    let older = of_kind(&actions, "set")[0].clone();
    let older_id = older["id"].as_str().unwrap().to_string();
    assert!(
        older["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("HTTP 503"),
        "{older:#}"
    );
    let due: jiff::Timestamp = older["next_attempt_at"].as_str().unwrap().parse().unwrap();
    assert!(
        due > jiff::Timestamp::now() + jiff::SignedDuration::from_mins(30),
        "the older set must not come due before the newer is delivered: {older:#}"
    );

    // The deal is won: the newer set is planned after the older failed,
    // and goes through at once.
    post_event(
        &app,
        &stage_event(
            "k-2",
            "42",
            "Proposal",
            "Closed Won",
            "2026-11-20T16:00:00Z",
        ),
    )
    .await;
    let newer_handoff = handoff_of_workflow(&app, "42", "Won kickoff").await;
    assert_ne!(newer_handoff, older_handoff);
    let actions = wait_actions(&app, &newer_handoff, |a| {
        state_of(a, "set") == ["delivered"]
    })
    .await;
    let newer_id = of_kind(&actions, "set")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let video_call = (
        "deals/42".to_string(),
        json!({"properties": {"kickoff_preference": "Video call"}}),
    );
    let (patches, calls) = fake.received(|r| {
        (
            r.hubspot_patches.clone(),
            r.calls.get("hubspot.patch").copied(),
        )
    });
    assert_eq!(patches, std::slice::from_ref(&video_call));
    assert_eq!(calls, Some(2), "the failed older write, the newer one");

    // The hour passes for the older set only.
    let db = rusqlite::Connection::open(app.dir.path().join("handoff.db")).unwrap();
    db.busy_timeout(BOUND).unwrap();
    let now_us = jiff::Timestamp::now().as_microsecond();
    let made_due = db
        .execute(
            "UPDATE actions SET next_attempt_at = ?1 WHERE id = ?2 AND state = 'pending'",
            rusqlite::params![now_us, older_id],
        )
        .unwrap();
    assert_eq!(made_due, 1, "the older set still waits its turn");

    // It is done without being sent: no sink took it, HubSpot got no third
    // write, and the deal's field keeps the newer value.
    let actions = wait_actions(&app, &older_handoff, |a| {
        state_of(a, "set") == ["delivered"]
    })
    .await;
    let older = of_kind(&actions, "set")[0];
    assert_eq!(older["sinks"], json!([]), "{older:#}");
    assert_eq!(older["last_error"], J::Null, "{older:#}");
    let (patches, calls) = fake.received(|r| {
        (
            r.hubspot_patches.clone(),
            r.calls.get("hubspot.patch").copied(),
        )
    });
    assert_eq!(patches, [video_call], "the older value is never written");
    assert_eq!(calls, Some(2), "no write after the newer one");

    // Its handoff says why, naming both actions; the newer handoff has no
    // such note.
    let detail = json_of(app.get(&format!("/handoffs/{older_handoff}")).await).await;
    let superseded = notes_of(&detail, "superseded");
    assert_eq!(superseded.len(), 1, "{:#}", detail["notes"]);
    assert_eq!(superseded[0]["who"], "delivery");
    let text = superseded[0]["text"].as_str().unwrap();
    assert!(
        text.contains(&older_id) && text.contains(&newer_id),
        "{text}"
    );
    let detail = json_of(app.get(&format!("/handoffs/{newer_handoff}")).await).await;
    assert!(
        notes_of(&detail, "superseded").is_empty(),
        "{:#}",
        detail["notes"]
    );
    app.shutdown().await.unwrap();
}

/// Two `set`s of one field planned in one request (a batch: the deal
/// reaches Proposal and is won) come due together, and one pass claims
/// both. Sent side by side, either could land last and leave the older
/// value in the CRM; the older is superseded instead ("is on its way"), and
/// only the newer is written.
#[tokio::test(flavor = "multi_thread")]
async fn two_sets_of_a_field_claimed_in_one_pass_send_only_the_newer() {
    let fake = FakeSinks::start().await;
    let (_workflows, app) = kickoff_app(&fake, Duration::from_millis(200)).await;
    let batch = json!([
        stage_event("b-1", "43", "Qualified", "Proposal", "2026-11-20T15:00:00Z"),
        stage_event(
            "b-2",
            "43",
            "Proposal",
            "Closed Won",
            "2026-11-20T16:00:00Z"
        ),
    ]);
    post_event(&app, &batch).await;
    let older_handoff = handoff_of_workflow(&app, "43", "Proposal kickoff").await;
    let newer_handoff = handoff_of_workflow(&app, "43", "Won kickoff").await;
    for h in [&older_handoff, &newer_handoff] {
        wait_actions(&app, h, |a| state_of(a, "set") == ["delivered"]).await;
    }
    let patches = fake.received(|r| r.hubspot_patches.clone());
    assert_eq!(
        patches,
        [(
            "deals/43".to_string(),
            json!({"properties": {"kickoff_preference": "Video call"}})
        )],
        "the older value is never written"
    );
    let detail = json_of(app.get(&format!("/handoffs/{older_handoff}")).await).await;
    let superseded = notes_of(&detail, "superseded");
    assert_eq!(superseded.len(), 1, "{:#}", detail["notes"]);
    let text = superseded[0]["text"].as_str().unwrap();
    assert!(
        text.ends_with("a newer set of the same field, is on its way"),
        "{text}"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("handoff_sets_superseded_total 1"),
        "{metrics}"
    );
    app.shutdown().await.unwrap();
}

/// A routed sink without its secret stops `serve` before it listens, with
/// a message naming the variable; with the secret it starts.
#[tokio::test(flavor = "multi_thread")]
async fn serve_refuses_a_routed_sink_without_its_secret() {
    let dir = crate::helpers::workspace();
    std::fs::write(
        dir.path().join("handoff.toml"),
        "[delivery]\ntask = \"hubspot\"\nbackoff = \"2s\"\n",
    )
    .unwrap();
    let stopped = match crate::helpers::start_binary_in(dir, &[], &[]).await {
        Err(stopped) => stopped,
        Ok(app) => panic!("started without a token: {}", app.base),
    };
    assert_eq!(stopped.status.code(), Some(2));
    assert!(
        stopped.stderr.contains("HANDOFF_HUBSPOT_TOKEN"),
        "{}",
        stopped.stderr
    );

    let dir = crate::helpers::workspace();
    std::fs::write(
        dir.path().join("handoff.toml"),
        "[delivery]\ntask = \"hubspot\"\n",
    )
    .unwrap();
    let app = crate::helpers::start_binary_in(dir, &[], &[("HANDOFF_HUBSPOT_TOKEN", "pat-x")])
        .await
        .unwrap_or_else(|s| panic!("did not start: {}", s.stderr));
    let stopped = app.stop().await;
    assert_eq!(stopped.status.code(), Some(0));
    assert!(
        !stopped.stderr.contains("pat-x"),
        "the token is never logged"
    );
}

/// An action whose lease ran out while the server runs (its result could
/// not be recorded, or its task died) is taken again by the next pass, not
/// left leased until a restart. The server here has no worker of its own:
/// the test runs a worker's passes on its database.
#[tokio::test(flavor = "multi_thread")]
async fn an_action_whose_lease_ran_out_is_delivered_without_a_restart() {
    let fake = FakeSinks::start().await;
    let app = spawn_app_with_users(|_| {}, None).await;
    assert!(!app.state.settings.delivery.enabled());
    post_event(&app, &won("l-1", "D-L1", Some("None"))).await;
    let store = app.state.store.clone();
    // Leased by a worker that is gone, its lease over at once.
    let leased = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            store.claim_due(jiff::Timestamp::now(), Duration::ZERO, 100)
        })
        .await
        .unwrap()
        .unwrap()
    };
    let notify = leased
        .iter()
        .filter(|a| a.kind == ActionKind::Notify)
        .count();
    assert_eq!(notify, 1, "{leased:?}");

    let mut settings = Settings::default();
    deliver_to(&fake, &[(ActionKind::Notify, &[SinkKind::Slack])], 5, None)(&mut settings);
    let sinks = handoff::runtime::delivery::build_sinks(&settings, users()).unwrap();
    let worker = Arc::new(handoff::runtime::delivery::Worker::new(
        store,
        sinks,
        &settings.delivery,
        settings.public_url(),
        Arc::new(handoff::runtime::metrics::Metrics::new()),
    ));
    let pass = worker.run_once().await.unwrap();
    assert!(pass.delivered >= 1, "{pass:?}");
    assert_eq!(fake.received(|r| r.slack.len()), 1);
    let h = handoff_of(&app, "D-L1").await;
    let detail = json_of(app.get(&format!("/handoffs/{h}")).await).await;
    let actions = detail["actions"].as_array().unwrap().clone();
    assert_eq!(state_of(&actions, "notify"), ["delivered"]);
}
