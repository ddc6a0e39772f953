//! A bound on the webhook requests in flight (`max_in_flight`).
//!
//! Every hook request holds its body and, once decoded, a job in the
//! writer's queue until its batch is on the disk. Nothing else bounds how
//! many there are: when the disk stalls, a CRM that keeps sending (and
//! retries what timed out) would grow memory without limit. Past the bound
//! a hook answers 503 with `Retry-After` at once, before any work;
//! every CRM retries a 503, so nothing is lost, and the requests already
//! taken finish.
//!
//! A request takes its place only once its whole body is in (within
//! [`super::body_read::BODY_READ`]): a client that sends a body slowly, or never, holds its
//! own connection, not one of the places the CRMs need.
//!
//! A request keeps its place until its work is done, not until its client
//! hangs up: the route runs in a task of its own, so a client that gives
//! up cannot leave a job in the queue that the bound no longer counts
//! (and the work it started still commits, which its retry then finds).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument as _;

use crate::runtime::metrics::Metrics;
use crate::runtime::state::AppState;

/// What a refused request's `Retry-After` asks for, in seconds.
const RETRY_AFTER_SECS: &str = "1";

/// The middleware on the hook routes.
pub async fn admit(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let source = source_of(request.uri().path());
    // Read already by the router's `body_read` layer (this finds it in
    // memory); read here too so the place below is never taken before the
    // whole body is in, whatever router this runs in.
    let request = match super::body_read::read_whole(
        request,
        super::body_read::BODY_READ,
        state.settings.max_body_bytes,
    )
    .await
    {
        Ok(request) => request,
        Err(answer) => return answer,
    };
    let Ok(permit) = Arc::clone(&state.hooks_in_flight).try_acquire_owned() else {
        state.metrics.events.inc(&[source, "busy"]);
        tracing::warn!(
            limit = state.settings.max_in_flight,
            "refused a webhook: as many requests as max_in_flight are waiting for the disk"
        );
        let mut answer = super::hooks::problem(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "the server is busy: {} webhook requests are already waiting to be stored; send it again in a moment (nothing of this request was stored)",
                state.settings.max_in_flight
            ),
        );
        answer.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECS),
        );
        return answer;
    };
    let place = Place::taken(permit, Arc::clone(&state.metrics));
    // Its own task: dropped by a client that hangs up, the route would
    // give back its place while its job still waits in the queue.
    // The request's span (its id, method and path) goes with it.
    let work = tokio::spawn(
        async move {
            let response = next.run(request).await;
            drop(place);
            response
        }
        .in_current_span(),
    );
    match work.await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "a webhook request failed inside the server");
            super::hooks::problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server failed while handling the request; send it again (a copy already stored is recognised and not applied twice)",
            )
        }
    }
}

/// A request's place: counted in `handoff_hooks_in_flight` while held,
/// given back when dropped (at the end of the work, or by a panic in it).
struct Place {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Place {
    fn taken(permit: OwnedSemaphorePermit, metrics: Arc<Metrics>) -> Place {
        metrics.hooks_in_flight.add(1);
        Place {
            _permit: permit,
            metrics,
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.metrics.hooks_in_flight.add(-1);
    }
}

/// The `source` label of a hook path (`/hooks/hubspot` → `hubspot`).
fn source_of(path: &str) -> &'static str {
    match path.strip_prefix("/hooks/") {
        Some("hubspot") => "hubspot",
        Some("pipedrive") => "pipedrive",
        _ => "generic",
    }
}
