//! The ceiling of `benches/load.sh`: a bare axum server whose handler does
//! no work, so the load benchmark can say how much of what loopback HTTP
//! allows on this machine `handoff serve` reaches.
//!
//! ```sh
//! cargo run --release --example ceiling -- --listen 127.0.0.1:0
//! ```
//!
//! It prints `listening on http://ADDR` (the same line `handoff serve`
//! prints, so the script reads both the same way) and answers every request
//! on any path with a small constant JSON body after reading the request
//! body, as the real hook must. It runs on the same multi-threaded tokio
//! runtime as `handoff serve` and stops on ctrl-c or SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Router;

/// Reads (and drops) the body, answers `{"ok":true}`.
async fn nothing(body: Bytes) -> impl IntoResponse {
    // Keep the body alive until here so it is really received.
    let _ = body.len();
    (
        [(header::CONTENT_TYPE, "application/json")],
        "{\"ok\":true}",
    )
}

fn listen_arg() -> Result<SocketAddr, String> {
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:0".to_string();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                listen = args
                    .next()
                    .ok_or("--listen needs an address, e.g. 127.0.0.1:0")?;
            }
            other => {
                return Err(format!(
                    "unknown argument `{other}`: the only one is --listen ADDR"
                ))
            }
        }
    }
    listen
        .parse()
        .map_err(|e| format!("`{listen}` is not an address like 127.0.0.1:0: {e}"))
}

async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let addr = match listen_arg() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    let bound = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: cannot read the bound address: {e}");
            return ExitCode::from(2);
        }
    };
    println!("listening on http://{bound}");
    let app = Router::new().fallback(nothing);
    match axum::serve(listener, app)
        .with_graceful_shutdown(stopped())
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: the server stopped: {e}");
            ExitCode::FAILURE
        }
    }
}
