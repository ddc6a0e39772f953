//! The bearer token: everything but `/healthz` and `/hooks/*` needs it.

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
