//! A bound on how long any request's body may take to arrive.
//!
//! hyper bounds the headers (`listen::HEADER_READ`), not the body: a
//! client that sends `Content-Length: 1000000` and then a byte every few
//! seconds holds its connection and a task for as long as it likes, on
//! any route that reads a body (the sign-in form needs no token), and a
//! graceful shutdown would wait for it. Every request's body is read here,
//! whole, within [`BODY_READ`] (408 otherwise) and within
//! `max_body_bytes` (413), before its route runs; the route then reads it
//! from memory. A request the token check refuses is answered before its
//! body is read (this layer sits inside that check).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use crate::runtime::state::AppState;

/// How long a request's body may take to arrive, counted from when the
/// route is reached (its headers are in).
pub const BODY_READ: std::time::Duration = std::time::Duration::from_secs(10);

/// The middleware on every route.
pub async fn within_deadline(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    match read_whole(request, BODY_READ, state.settings.max_body_bytes).await {
        Ok(request) => next.run(request).await,
        Err(answer) => answer,
    }
}

/// The title of a 413 page.
pub(super) const TOO_LARGE: &str = "Too large";

/// What a 413 says.
pub(super) fn too_large(max_body_bytes: usize) -> String {
    format!(
        "the body is larger than max_body_bytes ({max_body_bytes} bytes): send less at once, \
         or raise max_body_bytes (HANDOFF_MAX_BODY_BYTES)"
    )
}

/// `request` with its body read into memory, or the answer to send when
/// it is larger than `max_body_bytes` (the body limit layer's error),
/// broke off, or did not arrive within `deadline`.
pub async fn read_whole(
    request: Request,
    deadline: std::time::Duration,
    max_body_bytes: usize,
) -> Result<Request, Response> {
    let wants_html = crate::runtime::web::wants_html(request.headers());
    let (parts, body) = request.into_parts();
    let failed = |status: StatusCode, title: &str, why: String| {
        super::refusals::refusal(wants_html, status, title, &why)
    };
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, usize::MAX)).await {
        Ok(Ok(bytes)) => Ok(Request::from_parts(parts, axum::body::Body::from(bytes))),
        Ok(Err(e)) => {
            // The limit's error comes wrapped (axum's error around the
            // body's, around the limit's): look along the chain.
            let inner = e.into_inner();
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&*inner);
            let mut over = false;
            while let Some(c) = cause {
                over |= c.is::<http_body_util::LengthLimitError>();
                cause = c.source();
            }
            Err(if over {
                failed(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    TOO_LARGE,
                    too_large(max_body_bytes),
                )
            } else {
                failed(
                    StatusCode::BAD_REQUEST,
                    "Not received",
                    "the request body could not be read (the connection broke): send it again"
                        .to_string(),
                )
            })
        }
        Err(_) => Err(failed(
            StatusCode::REQUEST_TIMEOUT,
            "Too slow",
            format!(
                "the request body did not arrive within {} s: send it again",
                deadline.as_secs_f64()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use axum::body::{Body, Bytes};
    use axum::http::header;
    use http_body_util::BodyExt as _;

    use super::*;

    /// A body whose first bytes arrive and then nothing more.
    struct Stalled(Option<Bytes>);

    impl hyper::body::Body for Stalled {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            match self.0.take() {
                Some(first) => Poll::Ready(Some(Ok(hyper::body::Frame::data(first)))),
                None => Poll::Pending,
            }
        }
    }

    fn request(body: Body, html: bool) -> Request {
        let mut r = Request::new(body);
        if html {
            r.headers_mut()
                .insert(header::ACCEPT, "text/html".parse().unwrap());
        }
        r
    }

    async fn text(r: Response) -> String {
        String::from_utf8_lossy(&r.into_body().collect().await.unwrap().to_bytes()).into_owned()
    }

    #[tokio::test]
    async fn a_body_that_stops_arriving_is_answered_408_at_the_deadline() {
        let stalled = Body::new(Stalled(Some(Bytes::from_static(b"{\"id\":"))));
        let answer = read_whole(request(stalled, false), Duration::from_millis(100), 1024)
            .await
            .expect_err("not read");
        assert_eq!(answer.status(), StatusCode::REQUEST_TIMEOUT);
        assert!(text(answer).await.contains("did not arrive within 0.1 s"));
        // A person's browser gets a page saying the same.
        let stalled = Body::new(Stalled(None));
        let answer = read_whole(request(stalled, true), Duration::from_millis(100), 1024)
            .await
            .expect_err("not read");
        assert_eq!(answer.status(), StatusCode::REQUEST_TIMEOUT);
        let page = text(answer).await;
        assert!(
            page.contains("<html") && page.contains("send it again"),
            "{page}"
        );
    }

    #[tokio::test]
    async fn a_whole_body_is_kept_and_one_past_the_limit_is_413() {
        let kept = read_whole(request(Body::from("who=ana"), false), BODY_READ, 1024)
            .await
            .expect("read");
        let bytes = kept.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"who=ana");
        // As the router's body limit layer cuts a body off.
        let limited = http_body_util::Limited::new(Body::from(vec![b'x'; 2048]), 1024);
        let answer = read_whole(request(Body::new(limited), false), BODY_READ, 1024)
            .await
            .expect_err("too large");
        assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(text(answer).await.contains("max_body_bytes (1024 bytes)"));
    }
}
