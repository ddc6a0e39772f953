//! The web pages over real HTTP: sign-in (API token, a person's token, a
//! sign-in form from elsewhere), a browser without a session sent to sign
//! in, content negotiation on `/handoffs/{id}`, every form refused with 403
//! without a session or with a wrong CSRF token (and nothing changed), and
//! a CRM value with HTML in it escaped on every page.

use handoff::runtime::config::{Person, Settings};
use handoff::runtime::secret::Secret;
use handoff::runtime::store::StoreExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{json, Value as J};

use crate::helpers::{spawn_app_with, TestApp};

const TOKEN: &str = "api-token-7c1d93";
const ANA_TOKEN: &str = "ana-token-41b2e8";
const HTML: &str = "text/html,application/xhtml+xml,*/*;q=0.8";
const EVIL: &str = "<script>alert(\"pwned\")</script> & Co";

/// The tokens every test of this file signs in with.
fn with_tokens(s: &mut Settings) {
    s.secrets.api_token = Some(Secret::new(TOKEN));
    s.people = vec![Person {
        name: "ana@example.com".into(),
        token: Secret::new(ANA_TOKEN),
    }];
}

async fn app() -> (TestApp, reqwest::Client) {
    (spawn_app_with(with_tokens).await, browser())
}

/// A browser-like client that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// A deal won with custom scope (so it waits in review), named `name`.
async fn plant_review(app: &TestApp, record: &str, name: &str) -> String {
    let ev = json!({"id": format!("ev-{record}"), "object": "deal", "record_id": record,
        "occurred_at": "2026-11-20T15:04:05Z",
        "record": {"name": name, "stage": "Closed Won", "custom_scope": true,
            "owner": "sam@example.com", "amount": 8000, "segment": "smb",
            "buyer_goals": name, "main_contact": "li@beta.example",
            "signed_scope": "https://docs.example/sow", "start_date": "2026-12-14",
            "promised_deliverables": [name], "pricing_exceptions": "None",
            "risk_notes": "None", "kickoff_preference": "Async first"},
        "previous": {"stage": "Proposal"}});
    post_events(app, &[ev]).await;
    let list: J = app
        .get(&format!("/handoffs?status=review&record={record}"))
        .await
        .json()
        .await
        .unwrap();
    list["handoffs"][0]["id"]
        .as_str()
        .expect("in review")
        .to_string()
}

/// The value of `name="<field>" value="…"` in a page.
fn hidden(page: &str, field: &str) -> String {
    let at = page
        .find(&format!("name=\"{field}\" value=\""))
        .unwrap_or_else(|| panic!("no {field} field in {page}"));
    let rest = &page[at + field.len() + 15..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn cookie_of(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_string())
}

/// Signs in through the form; the session cookie (`name=value`).
async fn sign_in(app: &TestApp, b: &reqwest::Client, who: &str, token: &str) -> reqwest::Response {
    let form = b.get(app.url("/signin")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let nonce_cookie = cookie_of(&form, "handoff_signin").expect("a sign-in cookie");
    let page = form.text().await.unwrap();
    let nonce = hidden(&page, "nonce");
    b.post(app.url("/signin"))
        .header(COOKIE, nonce_cookie)
        .form(&[
            ("who", who),
            ("token", token),
            ("nonce", &nonce),
            ("next", "/handoffs"),
        ])
        .send()
        .await
        .unwrap()
}

/// Signs `who` in with `token` and returns the session cookie (`name=value`).
pub(crate) async fn session(app: &TestApp, b: &reqwest::Client, who: &str, token: &str) -> String {
    let r = sign_in(app, b, who, token).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/handoffs");
    let set = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("handoff_session="))
        .expect("a session cookie");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    cookie_of(&r, "handoff_session").unwrap()
}

/// GETs `path` as a browser with the session cookie: (status, HTML).
pub(crate) async fn page(
    app: &TestApp,
    b: &reqwest::Client,
    cookie: &str,
    path: &str,
) -> (u16, String) {
    let r = b
        .get(app.url(path))
        .header(ACCEPT, HTML)
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn detail(app: &TestApp, id: &str) -> J {
    app.get(&format!("/handoffs/{id}"))
        .await
        .json()
        .await
        .unwrap()
}

/// Posts the review form of handoff `id` as the session `cookie`, with its
/// CSRF token: a verdict and a note.
async fn post_review(
    app: &TestApp,
    b: &reqwest::Client,
    id: &str,
    (cookie, csrf): (&str, &str),
    verdict: &str,
    note: &str,
) -> reqwest::Response {
    b.post(app.url(&format!("/handoffs/{id}/review")))
        .header(COOKIE, cookie)
        .form(&[("csrf", csrf), ("verdict", verdict), ("note", note)])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_without_a_session_is_sent_to_sign_in_and_scripts_keep_json() {
    let (app, b) = app().await;
    let id = plant_review(&app, "D-1", "Acme").await;
    for path in [
        "/",
        "/handoffs?status=review",
        &format!("/handoffs/{id}"),
        "/drafts",
    ] {
        let r = b
            .get(app.url(path))
            .header(ACCEPT, HTML)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{path}");
        let to = r.headers()[LOCATION].to_str().unwrap().to_string();
        assert!(to.starts_with("/signin?next=%2F"), "{path} → {to}");
    }
    // A script still gets 401 without the token, and JSON with it.
    assert_eq!(
        app.get_anonymous(&format!("/handoffs/{id}")).await.status(),
        401
    );
    let r = app.get(&format!("/handoffs/{id}")).await;
    assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
    let j: J = r.json().await.unwrap();
    assert_eq!(j["status"], "review");
    assert_eq!(j["brief_answers"], json!([]));
    // The bearer token opens the page too (for checks and scripts).
    let r = b
        .get(app.url(&format!("/handoffs/{id}")))
        .header(ACCEPT, HTML)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("The four answers"));
}

/// Wrong tokens from one address, at the sign-in form and as a bearer
/// token, count together: after `BURST` of them that address waits (429
/// with `Retry-After`), even with the right token, which is not compared.
#[tokio::test(flavor = "multi_thread")]
async fn an_address_that_sends_a_burst_of_wrong_tokens_waits_even_with_the_right_one() {
    use handoff::runtime::http::guesses::{BURST, REFILL};
    let (app, b) = app().await;
    for i in 0..BURST {
        let status = if i % 2 == 0 {
            sign_in(&app, &b, "ana@example.com", "nope").await.status()
        } else {
            app.client
                .get(app.url("/handoffs"))
                .bearer_auth("nope")
                .send()
                .await
                .unwrap()
                .status()
        };
        assert_eq!(status, 401, "wrong token {i}");
    }
    let r = sign_in(&app, &b, "ana@example.com", ANA_TOKEN).await;
    assert_eq!(r.status(), 429);
    assert_eq!(cookie_of(&r, "handoff_session"), None);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=REFILL.as_secs()).contains(&wait), "{wait}");
    let text = r.text().await.unwrap();
    assert!(text.contains("Too many wrong tokens"), "{text}");

    let r = app
        .client
        .get(app.url("/handoffs"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: J = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("wait"), "{body}");
    // Requests without a token are not slowed: probes and signed hooks go on.
    assert_eq!(app.get_anonymous("/healthz").await.status(), 200);
}

/// A handoff in review whose workflow was removed (orphaned) shows no
/// review form, and a verdict sent anyway says why it cannot be taken and
/// what to do, by the API and by the form alike; nothing changes.
#[tokio::test(flavor = "multi_thread")]
async fn an_orphaned_handoff_in_review_says_its_workflow_must_come_back() {
    let (app, b) = app().await;
    let id = plant_review(&app, "D-7", "Acme").await;
    let cookie = session(&app, &b, "-", ANA_TOKEN).await;
    let (_, before) = page(&app, &b, &cookie, &format!("/handoffs/{id}")).await;
    let csrf = hidden(&before, "csrf");
    assert!(
        before.contains("name=\"verdict\""),
        "the form is there first"
    );

    // The workflow is renamed away: the handoff is orphaned, still in review.
    let file = app.workflow("sales_to_delivery.handoff");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace(
            "handoff \"Sales to Delivery\"",
            "handoff \"Sales to Onboarding\"",
        ),
    )
    .unwrap();
    app.state.workflows.reload().await;
    assert_eq!(detail(&app, &id).await["orphaned"], true);

    let (_, html) = page(&app, &b, &cookie, &format!("/handoffs/{id}")).await;
    assert!(
        !html.contains("name=\"verdict\""),
        "no form that cannot work"
    );
    assert!(html.contains("Put the workflow back"), "{html}");

    let r = app
        .client
        .post(app.url(&format!("/handoffs/{id}/approve")))
        .bearer_auth(TOKEN)
        .json(&json!({"who": "maya@example.com", "note": "ok"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let body: J = r.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("\"Sales to Delivery\" is gone") && error.contains("put the workflow back"),
        "{error}"
    );
    let r = post_review(&app, &b, &id, (&cookie, &csrf), "approve", "ok").await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("Put the workflow back"));
    assert_eq!(detail(&app, &id).await["status"], "review");
}

/// The owner filter reads on past the first page of handoffs (it runs on
/// each handoff's plan, not in the database), and the stuck filter is the
/// health report's: open and triggered `stuck_after_days` ago or more.
#[tokio::test(flavor = "multi_thread")]
async fn the_list_filters_find_matches_past_the_first_page_and_stuck_is_the_report_s() {
    let app = spawn_app_with(|s| {
        with_tokens(s);
        s.health.stuck_after_days = 0.0;
    })
    .await;
    let b = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    // Kim's deal first (the oldest), then 60 of Sam's: every one pauses.
    let paused = |i: usize, owner: &str| {
        json!({"id": format!("ev-{i}"), "object": "deal", "record_id": format!("P-{i}"),
            "occurred_at": "2026-11-20T15:04:05Z",
            "record": {"name": format!("Deal {i}"), "stage": "Closed Won", "owner": owner,
                "amount": 8000},
            "previous": {"stage": "Proposal"}})
    };
    let events: Vec<J> = std::iter::once(paused(0, "kim@example.com"))
        .chain((1..=60).map(|i| paused(i, "sam@example.com")))
        .collect();
    post_events(&app, &events).await;
    let cookie = session(&app, &b, "-", ANA_TOKEN).await;

    let (status, html) = page(&app, &b, &cookie, "/handoffs?owner=kim").await;
    assert_eq!(status, 200);
    assert!(html.contains(">P-0<"), "{html}");
    assert!(
        !html.contains(">P-1<") && !html.contains("No handoff matches"),
        "{html}"
    );

    // Every paused handoff is open and was triggered before now.
    let (_, html) = page(&app, &b, &cookie, "/handoffs?stuck=on").await;
    assert!(
        html.contains(">P-60<") && html.contains("Older handoffs"),
        "{html}"
    );
    assert!(html.contains("Stuck (open 0+ days)"), "{html}");
}

/// A page link whose cursor was edited is the person's to fix: 400 with
/// a way back, not "try again" (which never helps).
#[tokio::test(flavor = "multi_thread")]
async fn a_list_page_with_a_bad_cursor_says_to_start_again() {
    let (app, b) = app().await;
    let cookie = session(&app, &b, "-", ANA_TOKEN).await;
    let (status, html) = page(&app, &b, &cookie, "/handoffs?cursor=zzz").await;
    assert_eq!(status, 400);
    assert!(
        html.contains("not valid") && html.contains("first page"),
        "{html}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_takes_a_person_token_or_the_api_token_with_a_name() {
    let (app, b) = app().await;
    // A wrong token: 401 and no session.
    let r = sign_in(&app, &b, "ana@example.com", "nope").await;
    assert_eq!(r.status(), 401);
    assert_eq!(cookie_of(&r, "handoff_session"), None);
    // The API token needs a name to record.
    let r = sign_in(&app, &b, " ", TOKEN).await;
    assert_eq!(r.status(), 400);
    // A form posted without the cookie its page set (from another site): 403.
    let r = b
        .post(app.url("/signin"))
        .form(&[("who", "x"), ("token", ANA_TOKEN), ("nonce", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(cookie_of(&r, "handoff_session"), None);

    // A person's token: the name comes with it, whatever was typed.
    let cookie = session(&app, &b, "someone else", ANA_TOKEN).await;
    let (status, html) = page(&app, &b, &cookie, "/handoffs").await;
    assert_eq!(status, 200);
    assert!(html.contains("Signed in as ana@example.com"), "{html}");
    let cookie = session(&app, &b, "maya@example.com", TOKEN).await;
    let (_, html) = page(&app, &b, &cookie, "/").await;
    assert!(html.contains("Signed in as maya@example.com"));

    // Signing out ends the session (with its CSRF token only).
    let csrf = hidden(&html, "csrf");
    let r = b
        .post(app.url("/signout"))
        .header(COOKIE, &cookie)
        .form(&[("csrf", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = b
        .post(app.url("/signout"))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (status, _) = page(&app, &b, &cookie, "/").await;
    assert_eq!(status, 303);
}

/// Sessions live in the database: a restart keeps people signed in (with
/// the same CSRF token), a sign-out outlives a restart too, new tokens sign
/// everyone out, and the file holds no session id a browser could present.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_keeps_people_signed_in_and_signed_out() {
    let (app, b) = app().await;
    let ana = session(&app, &b, "-", ANA_TOKEN).await;
    let maya = session(&app, &b, "maya@example.com", TOKEN).await;
    let (_, html) = page(&app, &b, &maya, "/").await;
    let maya_csrf = hidden(&html, "csrf");
    let db = app.dir.path().join("handoff.db");

    let app = app.restart(with_tokens).await;
    let (status, html) = page(&app, &b, &ana, "/handoffs").await;
    assert_eq!(status, 200);
    assert!(html.contains("Signed in as ana@example.com"), "{html}");
    let (status, html) = page(&app, &b, &maya, "/").await;
    assert_eq!(status, 200);
    assert_eq!(hidden(&html, "csrf"), maya_csrf, "the session's own token");
    // Maya signs out on the restarted server...
    let r = b
        .post(app.url("/signout"))
        .header(COOKIE, &maya)
        .form(&[("csrf", maya_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    // ...and stays signed out after the next restart; Ana stays in.
    let app = app.restart(with_tokens).await;
    assert_eq!(page(&app, &b, &maya, "/").await.0, 303);
    assert_eq!(page(&app, &b, &ana, "/").await.0, 200);

    // New tokens take access back: after a restart with another API token
    // (Ana's own unchanged), her session no longer counts.
    let app = app
        .restart(|s| {
            with_tokens(s);
            s.secrets.api_token = Some(Secret::new("a-rotated-api-token"));
        })
        .await;
    assert_eq!(page(&app, &b, &ana, "/").await.0, 303);
    assert_eq!(
        page(&app, &b, &session(&app, &b, "-", ANA_TOKEN).await, "/")
            .await
            .0,
        200
    );

    // The file keeps the ids' hashes, never the ids themselves.
    let raw = std::fs::read(&db).unwrap();
    let wal = std::fs::read(db.with_extension("db-wal")).unwrap_or_default();
    for cookie in [&ana, &maya] {
        let id = cookie.trim_start_matches("handoff_session=");
        assert!(id.len() > 20, "{cookie}");
        for bytes in [&raw, &wal] {
            assert!(
                !bytes.windows(id.len()).any(|w| w == id.as_bytes()),
                "the session id is in the database file"
            );
        }
    }
}

/// A form the database cannot save (another process holds the write lock
/// past the busy timeout) answers 503 with a page that names no file and
/// quotes no SQLite text; nothing changes.
#[tokio::test(flavor = "multi_thread")]
async fn a_form_the_database_cannot_save_says_so_without_its_internals() {
    let (app, b) = app().await;
    let id = plant_review(&app, "D-9", "Acme").await;
    let cookie = session(&app, &b, "-", ANA_TOKEN).await;
    let (_, html) = page(&app, &b, &cookie, &format!("/handoffs/{id}")).await;
    let csrf = hidden(&html, "csrf");
    let db = app.dir.path().join("handoff.db");
    let lock = rusqlite::Connection::open(&db).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let r = post_review(&app, &b, &id, (&cookie, &csrf), "approve", "ok").await;
    assert_eq!(r.status(), 503);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("Not saved") && text.contains("nothing was changed"),
        "{text}"
    );
    let dir = app.dir.path().display().to_string();
    assert!(!text.contains(&dir) && !text.contains("locked"), "{text}");
    lock.execute_batch("ROLLBACK").unwrap();
    assert_eq!(detail(&app, &id).await["status"], "review");
}

#[tokio::test(flavor = "multi_thread")]
async fn forms_without_a_session_or_a_valid_csrf_token_get_403_and_change_nothing() {
    let (app, b) = app().await;
    let id = plant_review(&app, "D-2", "Acme").await;
    let cookie = session(&app, &b, "-", ANA_TOKEN).await;
    let (_, html) = page(&app, &b, &cookie, &format!("/handoffs/{id}")).await;
    let csrf = hidden(&html, "csrf");
    let question = "What was promised verbally?";

    let review = app.url(&format!("/handoffs/{id}/review"));
    let answers = app.url(&format!("/handoffs/{id}/answers"));
    // (cookie, csrf) pairs that must all be refused.
    let other = session(&app, &b, "maya@example.com", TOKEN).await;
    let (_, other_html) = page(&app, &b, &other, "/").await;
    let other_csrf = hidden(&other_html, "csrf");
    let attempts: Vec<(Option<&str>, Option<&str>)> = vec![
        (None, None),
        (None, Some(csrf.as_str())),
        (Some(cookie.as_str()), None),
        (Some(cookie.as_str()), Some("")),
        (Some(cookie.as_str()), Some(&csrf[..csrf.len() - 1])),
        // Another session's token does not fit this session.
        (Some(cookie.as_str()), Some(other_csrf.as_str())),
        (Some("handoff_session=not-a-session"), Some(csrf.as_str())),
    ];
    let refused = |url: String, fields: Vec<(&'static str, &'static str)>| {
        let (b, attempts, csrf) = (b.clone(), attempts.clone(), csrf.clone());
        async move {
            for (c, t) in &attempts {
                let mut form = fields.clone();
                if let Some(t) = t {
                    form.push(("csrf", t));
                }
                let mut req = b.post(&url).form(&form);
                if let Some(c) = c {
                    req = req.header(COOKIE, *c);
                }
                let r = req.send().await.unwrap();
                assert_eq!(r.status(), 403, "{url} with {c:?} {t:?}");
            }
            // The bearer token alone does not send forms either.
            let mut form = fields.clone();
            form.push(("csrf", &csrf));
            let r = b
                .post(&url)
                .bearer_auth(TOKEN)
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{url} with the bearer token");
        }
    };
    refused(
        review.clone(),
        vec![("verdict", "approve"), ("note", "forged")],
    )
    .await;
    // A session cannot call the JSON API's writes (no CSRF token there).
    let r = b
        .post(app.url(&format!("/handoffs/{id}/approve")))
        .header(COOKIE, &cookie)
        .json(&json!({"who": "ana@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let still = detail(&app, &id).await;
    assert_eq!(still["status"], "review");
    assert_eq!(still["notes"], json!([]));

    // With the session and its token it goes through, as the person.
    let r = post_review(&app, &b, &id, (&cookie, &csrf), "approve", "scope checked").await;
    assert_eq!(r.status(), 303);
    let done = detail(&app, &id).await;
    assert_eq!(done["status"], "proceeded");
    let last = done["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["by"]["person"], "ana@example.com");
    assert_eq!(last["note"], "scope checked");
    // The approval planned the brief: its questions can be answered now.
    let (_, html) = page(&app, &b, &cookie, &format!("/handoffs/{id}")).await;
    assert!(html.contains(question), "{html}");
    refused(
        answers.clone(),
        vec![("question", question), ("answer", "forged")],
    )
    .await;
    assert_eq!(detail(&app, &id).await["brief_answers"], json!([]));
    let r = b
        .post(&answers)
        .header(COOKIE, &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("question", question),
            ("answer", "Launch before the holidays"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let done = detail(&app, &id).await;
    assert_eq!(done["brief_answers"][0]["question"], question);
    assert_eq!(
        done["brief_answers"][0]["answer"],
        "Launch before the holidays"
    );
    assert_eq!(done["brief_answers"][0]["who"], "ana@example.com");
    let kinds: Vec<&str> = done["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["approve", "answer"]);
    // A question the brief does not ask is refused.
    let r = b
        .post(&answers)
        .header(COOKIE, &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("question", "Anything?"),
            ("answer", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (_, html) = page(&app, &b, &cookie, &format!("/handoffs/{id}")).await;
    assert!(html.contains("Launch before the holidays"));
    assert!(html.contains("Answered by ana@example.com"));
}

#[tokio::test(flavor = "multi_thread")]
async fn html_in_crm_values_is_escaped_on_every_page() {
    let (app, b) = app().await;
    let id = plant_review(&app, "D-<b>3</b>", EVIL).await;
    let cookie = session(&app, &b, "-", ANA_TOKEN).await;
    let (_, html) = page(&app, &b, &cookie, &format!("/handoffs/{id}")).await;
    let csrf = hidden(&html, "csrf");
    // Approve it so the kickoff task and the client's email draft exist.
    let r = post_review(&app, &b, &id, (&cookie, &csrf), "approve", EVIL).await;
    assert_eq!(r.status(), 303);
    let question = "What does the client actually care about?";
    let r = b
        .post(app.url(&format!("/handoffs/{id}/answers")))
        .header(COOKIE, &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("question", question),
            ("answer", EVIL),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // Dead-letter its kickoff task so the dead letters page shows it too.
    let store = app.state.store.clone();
    let dead = tokio::task::spawn_blocking(move || {
        let now = jiff::Timestamp::now();
        let claimed = store.claim_due(now, std::time::Duration::from_secs(60), 100)?;
        let task = claimed.iter().find(|a| a.kind.as_str() == "task").cloned();
        if let Some(t) = &task {
            store.write_blocking({
                let id = t.id.clone();
                move |tx| tx.dead_letter(&id, "CRM said <img src=x onerror=alert(1)>")
            })?;
        }
        Ok::<_, handoff::runtime::store::StoreError>(task)
    })
    .await
    .unwrap()
    .unwrap()
    .expect("a kickoff task");

    let detail_path = format!("/handoffs/{id}");
    let pages = [
        "/",
        "/handoffs",
        "/handoffs?status=proceeded&owner=%3Cscript%3E",
        detail_path.as_str(),
        "/drafts",
        "/dead-letters",
    ];
    let mut seen_escaped = 0;
    for path in pages {
        let (status, html) = page(&app, &b, &cookie, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            !html.contains("<script"),
            "{path} has a raw <script: {html}"
        );
        assert!(!html.contains("<img"), "{path} has a raw <img");
        assert!(!html.contains("<b>3"), "{path} has a raw <b>");
        if html.contains("&lt;script&gt;") {
            seen_escaped += 1;
        }
    }
    // The name shows (escaped) on the list, the handoff, drafts and dead letters.
    assert!(
        seen_escaped >= 4,
        "the planted name showed on {seen_escaped} pages"
    );
    let (_, dl) = page(&app, &b, &cookie, "/dead-letters").await;
    assert!(dl.contains("CRM said &lt;img"), "{dl}");
    assert!(dl.contains(&dead.id));
}

/// More drafts than a page holds: the page links to the older ones, and
/// the oldest, on no first page, is approved by its id all the same.
#[tokio::test(flavor = "multi_thread")]
async fn drafts_page_on_and_one_past_the_first_page_is_approved() {
    let (app, b) = app().await;
    let won = |i: usize| {
        json!({"id": format!("ev-{i}"), "object": "deal", "record_id": format!("W-{i}"),
            "occurred_at": "2026-11-20T15:04:05Z",
            "record": {"name": format!("Deal {i}"), "stage": "Closed Won",
                "owner": "sam@example.com", "amount": 8000, "segment": "smb",
                "buyer_goals": "x", "main_contact": format!("c{i}@example.com"),
                "signed_scope": "https://docs.example/sow", "start_date": "2026-12-14",
                "promised_deliverables": ["Setup"], "pricing_exceptions": "None",
                "risk_notes": "None", "kickoff_preference": "Async first"},
            "previous": {"stage": "Proposal"}})
    };
    let events: Vec<J> = (0..105).map(won).collect();
    post_events(&app, &events).await;
    let cookie = session(&app, &b, "-", ANA_TOKEN).await;
    let (_, first) = page(&app, &b, &cookie, "/drafts").await;
    assert!(
        !first.contains("c0@example.com"),
        "the oldest is not on the first page"
    );
    let at = first
        .find("/drafts?cursor=")
        .expect("a link to older drafts");
    let link = &first[at..first[at..].find('"').unwrap() + at];
    let (status, older) = page(&app, &b, &cookie, &link.replace("&amp;", "&")).await;
    assert_eq!(status, 200);
    assert!(older.contains("c0@example.com"), "{older}");

    let h = detail_of_record(&app, "W-0").await;
    let draft_id = h["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "email_draft")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let csrf = hidden(&first, "csrf");
    let r = b
        .post(app.url(&format!("/drafts/{draft_id}/approve")))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

/// Sends `events` as one batch to the generic hook, with the API token.
async fn post_events(app: &TestApp, events: &[J]) {
    let r = app
        .client
        .post(app.url("/hooks/generic"))
        .bearer_auth(TOKEN)
        .json(events)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// The detail of the first handoff of `record`.
async fn detail_of_record(app: &TestApp, record: &str) -> J {
    let list = app.get(&format!("/handoffs?record={record}")).await;
    let list: J = list.json().await.unwrap();
    let id = list["handoffs"][0]["id"].as_str().unwrap().to_string();
    detail(app, &id).await
}

#[tokio::test(flavor = "multi_thread")]
async fn drafts_are_edited_and_approved_and_dead_letters_re_driven_by_a_person() {
    let (app, b) = app().await;
    let id = plant_review(&app, "D-4", "Acme").await;
    let r = app
        .client
        .post(app.url(&format!("/handoffs/{id}/approve")))
        .bearer_auth(TOKEN)
        .json(&json!({"who": "maya@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = session(&app, &b, "-", ANA_TOKEN).await;
    let (_, html) = page(&app, &b, &cookie, "/drafts").await;
    let csrf = hidden(&html, "csrf");
    let draft = detail(&app, &id).await["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "email_draft")
        .expect("a draft")
        .clone();
    let draft_id = draft["id"].as_str().unwrap().to_string();
    assert_eq!(draft["state"], "draft");
    assert!(html.contains(&format!("/drafts/{draft_id}")));

    // An edit without the token changes nothing; with it, the text changes.
    let edit = app.url(&format!("/drafts/{draft_id}"));
    let r = b
        .post(&edit)
        .header(COOKIE, &cookie)
        .form(&[("subject", "Forged"), ("body", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = b
        .post(&edit)
        .header(COOKIE, &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("subject", "Welcome, Acme"),
            ("body", "Hi Li, Ana here."),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let after = detail(&app, &id).await;
    let d = after["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == draft_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(d["action"]["subject"], "Welcome, Acme");
    assert_eq!(d["state"], "draft");
    let r = b
        .post(app.url(&format!("/drafts/{draft_id}/approve")))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let after = detail(&app, &id).await;
    let d = after["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == draft_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(d["state"], "pending");
    let who: Vec<(&str, &str)> = after["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["kind"].as_str().unwrap(), n["who"].as_str().unwrap()))
        .collect();
    assert_eq!(
        who,
        [
            ("approve", "maya@example.com"),
            ("edit_draft", "ana@example.com"),
            ("approve_draft", "ana@example.com")
        ]
    );
    // Approving again: it is not a draft any more.
    let r = b
        .post(app.url(&format!("/drafts/{draft_id}/approve")))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);

    // Dead-letter the kickoff task, then re-drive it from the page.
    let store = app.state.store.clone();
    let task_id = tokio::task::spawn_blocking(move || {
        let claimed = store
            .claim_due(
                jiff::Timestamp::now(),
                std::time::Duration::from_secs(60),
                100,
            )
            .unwrap();
        let t = claimed
            .iter()
            .find(|a| a.kind.as_str() == "task")
            .unwrap()
            .id
            .clone();
        assert!(store.dead_letter(&t, "503 from the CRM").unwrap());
        t
    })
    .await
    .unwrap();
    let (_, html) = page(&app, &b, &cookie, "/dead-letters").await;
    assert!(html.contains("503 from the CRM"));
    let redrive = app.url(&format!("/dead-letters/{task_id}/redrive"));
    let r = b
        .post(&redrive)
        .header(COOKIE, &cookie)
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = b
        .post(&redrive)
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, html) = page(&app, &b, &cookie, "/dead-letters").await;
    assert!(html.contains("Nothing is dead-lettered."), "{html}");
    let after = detail(&app, &id).await;
    let t = after["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == task_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(t["state"], "pending");
    assert_eq!(
        after["notes"].as_array().unwrap().last().unwrap()["who"],
        "ana@example.com"
    );
}

/// A session's cookie and CSRF token reach only the pages' own forms: the
/// API's writes (which check no CSRF token) want the bearer token, so a
/// form another page makes the browser send cannot re-drive an action.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_cannot_post_forms_to_the_apis_writes() {
    let (app, b) = app().await;
    let cookie = session(&app, &b, "-", ANA_TOKEN).await;
    let (_, html) = page(&app, &b, &cookie, "/").await;
    let csrf = hidden(&html, "csrf");
    for path in ["/outbox/a-0000/retry", "/hooks/generic"] {
        let r = b
            .post(app.url(path))
            .header(COOKIE, cookie.as_str())
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    // The API token still re-drives (here: no such action).
    let r = b
        .post(app.url("/outbox/a-0000/retry"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// Pages refuse to be framed by another site (clickjacking the approve and
/// reject buttons); JSON answers carry no such headers.
#[tokio::test(flavor = "multi_thread")]
async fn pages_cannot_be_framed() {
    let (app, b) = app().await;
    let cookie = session(&app, &b, "-", ANA_TOKEN).await;
    for path in ["/", "/handoffs", "/signin"] {
        let r = b
            .get(app.url(path))
            .header(ACCEPT, HTML)
            .header(COOKIE, cookie.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["x-frame-options"], "DENY", "{path}");
        assert_eq!(
            r.headers()["content-security-policy"],
            "frame-ancestors 'none'",
            "{path}"
        );
    }
    let json = app.get("/handoffs").await;
    assert!(json.headers().get("x-frame-options").is_none());
}

/// A brief question that holds a CRM value spanning lines: the page keeps
/// its line break in the form, a browser sends it back as CRLF (HTML's
/// form encoding), and the answer is still taken, for the question as the
/// brief asks it.
#[tokio::test(flavor = "multi_thread")]
async fn a_question_with_a_line_break_can_be_answered_from_the_page() {
    let workflows = tempfile::tempdir().unwrap();
    let bundled = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/crm.handoff");
    std::fs::copy(bundled, workflows.path().join("crm.handoff")).unwrap();
    std::fs::write(
        workflows.path().join("risks.handoff"),
        r#"handoff "Risk check" {
  when deal.stage becomes "Closed Won"
  brief {
    "Risks" = deal.risk_notes
    ask "Is {deal.risk_notes} still open?"
  }
  then { notify founder "Won: {deal.name}" }
}
"#,
    )
    .unwrap();
    let folder = workflows.path().to_path_buf();
    let app = spawn_app_with(move |s| {
        with_tokens(s);
        s.workflows = folder;
    })
    .await;
    let b = browser();
    let ev = json!({"id": "ev-lines", "object": "deal", "record_id": "D-9",
        "occurred_at": "2026-11-20T15:04:05Z",
        "record": {"name": "Acme", "stage": "Closed Won", "owner": "sam@example.com",
                   "risk_notes": "Vendor delay\nBudget freeze"},
        "previous": {"stage": "Proposal"}});
    post_events(&app, &[ev]).await;
    let list: J = app.get("/handoffs?record=D-9").await.json().await.unwrap();
    let id = list["handoffs"][0]["id"].as_str().unwrap().to_string();
    let asked = "Is Vendor delay\nBudget freeze still open?";

    let cookie = session(&app, &b, "-", ANA_TOKEN).await;
    let (_, html) = page(&app, &b, &cookie, &format!("/handoffs/{id}")).await;
    assert_eq!(hidden(&html, "question"), asked, "the form keeps the break");
    let csrf = hidden(&html, "csrf");
    let r = b
        .post(app.url(&format!("/handoffs/{id}/answers")))
        .header(COOKIE, &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("question", "Is Vendor delay\r\nBudget freeze still open?"),
            ("answer", "The budget is signed"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let done = detail(&app, &id).await;
    assert_eq!(done["brief_answers"][0]["question"], asked);
    assert_eq!(done["brief_answers"][0]["answer"], "The budget is signed");
}
