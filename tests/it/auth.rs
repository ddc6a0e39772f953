//! The bearer token: everything but `/healthz` and the signed hooks needs it.

use handoff::runtime::config::Person;
use handoff::runtime::secret::Secret;

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

const TOKEN: &str = "test-token-5f1c2a9e";

async fn guarded() -> TestApp {
    spawn_app_with(|s| s.secrets.api_token = Some(Secret::new(TOKEN))).await
}

#[tokio::test]
async fn no_token_is_401() {
    let app = guarded().await;
    for path in ["/workflows", "/readyz", "/metrics", "/no-such-page"] {
        let res = app.get_anonymous(path).await;
        assert_eq!(res.status(), 401, "{path}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
    }
}

#[tokio::test]
async fn a_wrong_token_is_401() {
    let app = guarded().await;
    for token in ["wrong", &TOKEN[..TOKEN.len() - 1], &format!("{TOKEN}x")] {
        let res = app
            .client
            .get(app.url("/workflows"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{token}");
    }
    let basic = app
        .client
        .get(app.url("/workflows"))
        .basic_auth("user", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
}

#[tokio::test]
async fn the_right_token_is_200() {
    let app = guarded().await;
    for path in ["/workflows", "/readyz", "/metrics"] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn healthz_needs_no_token() {
    let app = guarded().await;
    assert_eq!(app.get_anonymous("/healthz").await.status(), 200);
}

#[tokio::test]
async fn hooks_are_not_behind_the_token() {
    // No hook exists yet: an unknown hook is a 404, not a 401, because
    // hooks are authenticated by their signatures.
    let app = guarded().await;
    assert_eq!(app.get_anonymous("/hooks/nothing").await.status(), 404);
}

#[tokio::test]
async fn without_a_token_on_loopback_the_api_is_open() {
    let app = spawn_app().await;
    assert!(app.token.is_none());
    assert_eq!(app.get_anonymous("/workflows").await.status(), 200);
}

/// `curl -d @event.json` sends a form type: still refused (another site's
/// page can send forms), with an answer that says what to send instead.
#[tokio::test]
async fn a_form_typed_event_is_refused_naming_the_content_type_to_send() {
    let app = spawn_app().await;
    let event = r#"{"id": "f-1", "object": "deal", "record_id": "D-1",
        "occurred_at": "2026-11-20T15:04:05Z", "record": {"stage": "Proposal"}}"#;
    let form_post = |app: &TestApp| {
        app.client
            .post(app.url("/hooks/generic"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(event)
            .send()
    };
    let r = form_post(&app).await.unwrap();
    assert_eq!(r.status(), 415);
    let body: serde_json::Value = r.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("Content-Type: application/json"), "{error}");
    // With a token set, the missing token is what to fix first.
    let guarded = guarded().await;
    let r = form_post(&guarded).await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("HANDOFF_API_TOKEN"),
        "{body}"
    );
    let r = app
        .client
        .post(app.url("/hooks/generic"))
        .header("content-type", "application/json")
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn with_peoples_tokens_and_no_api_token_scripts_are_refused() {
    // People sign in with their tokens; a script without any would pass by
    // that sign-in and could approve as anyone.
    let app = spawn_app_with(|s| {
        s.people = vec![Person {
            name: "ana@example.com".into(),
            token: Secret::new("ana-token-41b2e8"),
        }];
    })
    .await;
    assert!(app.token.is_none());
    let read = app.get_anonymous("/workflows").await;
    assert_eq!(read.status(), 401);
    let why = read.text().await.unwrap();
    assert!(why.contains("set HANDOFF_API_TOKEN"), "{why}");
    let write = app
        .client
        .post(app.url("/handoffs/h-1/approve"))
        .header("content-type", "application/json")
        .body(r#"{"who":"ana@example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 401);
    // The probe and the sign-in page stay open.
    assert_eq!(app.get_anonymous("/healthz").await.status(), 200);
    assert_eq!(app.get_anonymous("/signin").await.status(), 200);
}

/// A deal just won, for the generic hook: it starts a handoff (paused for
/// its missing fields), so a stored event shows in `/handoffs`.
fn event(id: &str) -> String {
    serde_json::json!({"id": id, "object": "deal", "record_id": format!("D-{id}"),
        "record": {"name": "Acme", "stage": "Closed Won", "owner": "sam@example.com",
            "amount": 12000},
        "previous": {"stage": "Proposal"}})
    .to_string()
}

/// How many handoffs the record has.
async fn handoffs_of(app: &TestApp, record: &str) -> usize {
    let list: serde_json::Value = app
        .get(&format!("/handoffs?record={record}"))
        .await
        .json()
        .await
        .unwrap();
    list["handoffs"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn the_unsigned_generic_hook_wants_the_token_once_one_is_set() {
    // No HANDOFF_GENERIC_SECRET: nothing proves who sent the event, so the
    // hook is an API endpoint like the others.
    let app = guarded().await;
    let url = app.url("/hooks/generic");
    let anonymous = app
        .client
        .post(&url)
        .body(event("a-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let body = anonymous.text().await.unwrap();
    assert!(body.contains("HANDOFF_API_TOKEN"), "{body}");
    let with_token = app
        .client
        .post(&url)
        .bearer_auth(TOKEN)
        .body(event("a-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        with_token.status(),
        200,
        "{}",
        with_token.text().await.unwrap()
    );
    assert_eq!(handoffs_of(&app, "D-a-2").await, 1);
    assert_eq!(
        handoffs_of(&app, "D-a-1").await,
        0,
        "the refused event left nothing"
    );
}

#[tokio::test]
async fn without_a_token_the_api_refuses_other_host_names_and_other_sites() {
    let app = spawn_app().await;
    let url = app.url("/hooks/generic");
    // What a script on this machine sends: accepted.
    let script = app
        .client
        .post(&url)
        .body(event("s-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200, "{}", script.text().await.unwrap());
    let ours = app
        .client
        .get(app.url("/workflows"))
        .header("origin", format!("http://{}", app.addr))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(ours.status(), 200);

    // A page whose name was pointed at 127.0.0.1 (DNS rebinding), a page of
    // another site posting as a simple cross-site request, and the same
    // with only the newer header: refused, nothing stored.
    let refused = [
        app.client
            .post(&url)
            .header("host", "attacker.example:8080")
            .body(event("r-1")),
        app.client
            .post(&url)
            .header("content-type", "text/plain")
            .header("origin", "https://attacker.example")
            .body(event("r-2")),
        app.client
            .post(&url)
            .header("content-type", "text/plain")
            .header("sec-fetch-site", "cross-site")
            .body(event("r-3")),
        app.client
            .get(app.url("/handoffs"))
            .header("host", "attacker.example"),
        // With no token a name signs in to the pages: a rebound page must
        // not get that far either.
        app.client
            .get(app.url("/signin"))
            .header("host", "attacker.example"),
        app.client
            .post(app.url("/signin"))
            .header("host", "attacker.example")
            .form(&[("who", "mallory"), ("nonce", "x"), ("next", "/")]),
    ];
    for req in refused {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 403);
        let body = res.text().await.unwrap();
        assert!(body.contains("HANDOFF_API_TOKEN"), "{body}");
    }
    assert_eq!(handoffs_of(&app, "D-s-1").await, 1);
    for record in ["D-r-1", "D-r-2", "D-r-3"] {
        assert_eq!(handoffs_of(&app, record).await, 0, "{record} was stored");
    }
}

/// `GET /workflows` with `token`, as forwarded by a proxy for `client`.
async fn forwarded(app: &TestApp, client: &str, token: &str) -> reqwest::StatusCode {
    app.client
        .get(app.url("/workflows"))
        .header("x-forwarded-for", client)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

/// Behind a proxy (the test's requests all come from 127.0.0.1): with the
/// proxy in `trusted_proxies`, a guesser's wrong tokens count under the
/// client address the proxy forwarded, so another client through the same
/// proxy is not slowed; without it, the header is not believed and the
/// guesser slows everyone who comes through the proxy.
#[tokio::test]
async fn behind_a_trusted_proxy_a_guesser_slows_only_itself() {
    use handoff::runtime::http::guesses::BURST;
    let app = spawn_app_with(|s| {
        s.secrets.api_token = Some(Secret::new(TOKEN));
        s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    for i in 0..BURST {
        assert_eq!(
            forwarded(&app, "203.0.113.5", "nope").await,
            401,
            "guess {i}"
        );
    }
    assert_eq!(
        forwarded(&app, "203.0.113.5", TOKEN).await,
        429,
        "the guesser waits"
    );
    // A client that writes its own header in front of the proxy's entry
    // still counts as the address the proxy saw.
    assert_eq!(
        forwarded(&app, "198.51.100.1, 203.0.113.5", TOKEN).await,
        429
    );
    assert_eq!(
        forwarded(&app, "203.0.113.6", TOKEN).await,
        200,
        "another client"
    );

    // Not trusted (the default): the header is anyone's to write, every
    // request counts as the proxy's address, and one guesser slows all.
    let app = guarded().await;
    for i in 0..BURST {
        assert_eq!(
            forwarded(&app, "203.0.113.5", "nope").await,
            401,
            "guess {i}"
        );
    }
    assert_eq!(forwarded(&app, "203.0.113.6", TOKEN).await, 429);
}
