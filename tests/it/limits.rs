//! The request body limit.

use crate::helpers::spawn_app_with;

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
