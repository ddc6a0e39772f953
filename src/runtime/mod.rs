//! The long-running side of `handoff`: the webhook server behind a CRM
//! (feature `serve`, on by default).
//!
//! ```text
//! Settings (config) ──▶ serve::run(settings, listener, shutdown)
//!                          │
//!                          ├── reload: workflows/ ─watch+debounce─▶ compile off-thread ─▶ ArcSwap<Active>
//!                          ├── http: one router per resource, merged under one trace
//!                          │         layer, the body limit and the bearer token
//!                          ├── metrics: counters and histograms for GET /metrics
//!                          ├── ingest: decode → decide → one write job (record, instances,
//!                          │           audit row, outbox rows) → 2xx after commit
//!                          └── store: the Store trait, SQLite behind it; writer: group commit
//! ```
//!
//! Everything here is I/O around the pure engine: it reads files, listens,
//! logs (with `tracing`; the binary chooses where logs go) and counts. It
//! decides nothing itself: decisions are `eval::step`'s. The store and the
//! ingest path (hooks, the per-event transaction, the handoffs API) plug
//! into [`state::AppState`], [`serve::Server::build`] and [`http::router`].

pub mod adapters;
pub mod config;
pub mod delivery;
pub mod escalations;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod reload;
pub mod secret;
pub mod serve;
pub mod state;
pub mod store;
pub mod turns;
pub mod web;
pub mod writer;

pub use config::{Overrides, Settings};
pub use serve::{run, ServeError, Server};
