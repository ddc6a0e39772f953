//! The accept loop: HTTP/1.1 connections served by hyper, with a bound on
//! how long a request's headers may take to arrive.
//!
//! `axum::serve` gives hyper no timer, so hyper's header-read timeout never
//! runs there: a client that sends its headers a byte at a time (or opens
//! a connection and says nothing) holds a socket and a task for as long as
//! it likes, and enough of them exhaust the process's file descriptors.
//! Here every connection gets [`HEADER_READ`] to deliver each request's
//! headers, counted from when the server starts waiting for them, so an
//! idle keep-alive connection is closed after the same time. (The body has
//! its own bound, `body_read::BODY_READ`.)
//!
//! Shutdown is as `axum::serve`'s graceful one: stop accepting, let each
//! connection finish the request it is serving, close idle ones, return
//! when none is left; but wait at most [`DRAIN`] for them, so a request
//! that does not end (a bug, a call that hangs) cannot keep the process
//! from stopping. A request cut off there has not been answered: its
//! sender retries, and what it had already committed is recognised.

use std::future::Future;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

/// How long a client may take to send a request's headers.
pub const HEADER_READ: Duration = Duration::from_secs(10);

/// How long shutdown waits for the requests in flight. Every wait inside
/// a request is bounded well below it: headers and body 10 s each, a CRM
/// read `hydrate_deadline_ms`, a commit the disk's time.
pub const DRAIN: Duration = Duration::from_secs(30);

/// How long to wait before accepting again after an error that is not one
/// connection's (out of file descriptors): retrying at once would spin,
/// and each try logs an error. `axum::serve` waits the same.
const ACCEPT_PAUSE: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` until `shutdown` completes, then waits (at
/// most `drain`) for the connections to finish their requests. Each
/// request carries the client's address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_read: Duration,
    drain: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Some(header_read));
    let mut shutdown = std::pin::pin!(shutdown);
    // The connections' tasks, so that those still running after the drain
    // bound are ended rather than left behind; finished ones are reaped as
    // the loop goes.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "cannot accept connections; trying again");
                    tokio::select! {
                        () = tokio::time::sleep(ACCEPT_PAUSE) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        // Answers are small and written whole: do not hold them back
        // waiting for an ACK (Nagle's algorithm).
        let _ = stream.set_nodelay(true);
        let service = app
            .clone()
            .map_request(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.map(axum::body::Body::new)
            });
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            // A client that left or timed out ends its connection; there is
            // nothing to answer and nobody to tell.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still in flight {} s after shutdown began are cut off unanswered; their senders retry",
            drain.as_secs()
        );
    }
    connections.shutdown().await;
}

/// Errors that concern one connection only (the client reset it before it
/// was accepted, and so on): accept the next one.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;
    use tokio::sync::{oneshot, Notify};

    use super::*;

    /// The bound on every wait in these tests: far above what each takes.
    const BOUND: Duration = Duration::from_secs(10);

    /// Shutdown's wait for requests in flight, in these tests.
    const DRAIN_IN_TESTS: Duration = Duration::from_millis(500);

    struct Running {
        addr: std::net::SocketAddr,
        stop: oneshot::Sender<()>,
        served: tokio::task::JoinHandle<()>,
    }

    async fn start(app: Router, header_read: Duration) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(serve(
            listener,
            app,
            header_read,
            DRAIN_IN_TESTS,
            async move {
                let _ = stopped.await;
            },
        ));
        Running { addr, stop, served }
    }

    /// Sends one request on `stream` and reads the answer until the server
    /// closes the connection (`Connection: close`).
    async fn request(stream: &mut TcpStream, path: &str) -> String {
        let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut answer = String::new();
        tokio::time::timeout(BOUND, stream.read_to_string(&mut answer))
            .await
            .expect("answered within the bound")
            .expect("read");
        answer
    }

    fn peer_app() -> Router {
        Router::new().route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>| async move {
                peer.to_string()
            }),
        )
    }

    #[tokio::test]
    async fn slow_headers_are_cut_off_while_others_are_served() {
        let server = start(peer_app(), Duration::from_millis(300)).await;

        // Half a request's headers, then nothing more.
        let mut slow = TcpStream::connect(server.addr).await.expect("connect");
        slow.write_all(b"POST /hooks/generic HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");

        // Another client is served meanwhile, with its own address.
        let mut other = TcpStream::connect(server.addr).await.expect("connect");
        let local = other.local_addr().expect("local");
        let answer = request(&mut other, "/peer").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with(&local.to_string()), "{answer}");

        // The slow one is closed once its time is up: the read ends
        // (end of file or a reset) instead of waiting.
        let mut buf = Vec::new();
        let read = tokio::time::timeout(BOUND, slow.read_to_end(&mut buf)).await;
        assert!(
            read.is_ok(),
            "the slow connection is still open after {BOUND:?}"
        );

        let _ = server.stop.send(());
        tokio::time::timeout(BOUND, server.served)
            .await
            .expect("stopped")
            .expect("no panic");
    }

    #[tokio::test]
    async fn an_idle_connection_that_says_nothing_is_closed() {
        let server = start(peer_app(), Duration::from_millis(300)).await;
        let mut silent = TcpStream::connect(server.addr).await.expect("connect");
        let mut buf = Vec::new();
        let read = tokio::time::timeout(BOUND, silent.read_to_end(&mut buf)).await;
        assert!(
            read.is_ok(),
            "a silent connection is still open after {BOUND:?}"
        );
        let _ = server.stop.send(());
    }

    #[tokio::test]
    async fn shutdown_lets_the_request_in_flight_finish() {
        // The handler waits until the test lets it go.
        let entered = Arc::new(Notify::new());
        let release = Arc::new(Notify::new());
        let app = {
            let (entered, release) = (entered.clone(), release.clone());
            Router::new().route(
                "/slow",
                get(move || async move {
                    entered.notify_one();
                    release.notified().await;
                    "done"
                }),
            )
        };
        let server = start(app, HEADER_READ).await;
        let addr = server.addr;
        let client = tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            request(&mut stream, "/slow").await
        });
        tokio::time::timeout(BOUND, entered.notified())
            .await
            .expect("the request reached its handler");

        let _ = server.stop.send(());
        // No new connection is accepted once shutdown began.
        let refused = tokio::time::timeout(BOUND, async {
            loop {
                match TcpStream::connect(addr).await {
                    Err(_) => break,
                    Ok(_) => tokio::task::yield_now().await,
                }
            }
        })
        .await;
        assert!(refused.is_ok(), "still accepting after shutdown");
        assert!(
            !server.served.is_finished(),
            "returned with a request in flight"
        );

        release.notify_one();
        let answer = tokio::time::timeout(BOUND, client)
            .await
            .expect("answered")
            .expect("no panic");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("done"), "{answer}");
        tokio::time::timeout(BOUND, server.served)
            .await
            .expect("returned once the request finished")
            .expect("no panic");
    }

    #[tokio::test]
    async fn shutdown_gives_up_on_a_request_that_never_ends() {
        let entered = Arc::new(Notify::new());
        let app = {
            let entered = entered.clone();
            Router::new().route(
                "/hang",
                get(move || async move {
                    entered.notify_one();
                    std::future::pending::<()>().await;
                    "never"
                }),
            )
        };
        let server = start(app, HEADER_READ).await;
        let addr = server.addr;
        let client = tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            request(&mut stream, "/hang").await
        });
        tokio::time::timeout(BOUND, entered.notified())
            .await
            .expect("the request reached its handler");
        let _ = server.stop.send(());
        // Returns after the drain bound, not never.
        tokio::time::timeout(BOUND, server.served)
            .await
            .expect("shutdown returned despite the hung request")
            .expect("no panic");
        // The hung request was cut off without an answer.
        let answer = tokio::time::timeout(BOUND, client)
            .await
            .expect("the connection was closed")
            .expect("no panic");
        assert!(answer.is_empty(), "{answer}");
    }
}
