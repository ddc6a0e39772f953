//! The dashboard's cost on a quarter of handoffs (issue 13, acceptance 3:
//! under 200 ms on a demo db of a quarter).
//!
//! The db is filled once, through the real ingest path, by
//! `support/quarter.rs` (13 weeks, 80 won deals a week). Contenders, one
//! group, back to back:
//! - `read_facts` (baseline): the one store read the dashboard makes, with
//!   nothing computed or drawn: the floor any dashboard on this store pays;
//! - `figures`: the read plus the weekly figures (quantiles, shares, counts);
//! - `page`: the read, the figures and the whole HTML page with its SVG
//!   charts, as `GET /` renders it.

#[path = "support/quarter.rs"]
mod quarter;

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use handoff::runtime::store::{SqliteOptions, SqliteStore, Store, Synchronous};
use handoff::runtime::web::{dashboard, layout};

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let workflows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let (set, _) = handoff::compile::load(&[workflows]).expect("the bundled workflows");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(
            dir.path().join("quarter.db"),
            SqliteOptions {
                synchronous: Synchronous::Normal,
                ..SqliteOptions::default()
            },
        )
        .expect("a db"),
    );
    let now = jiff::Timestamp::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let filled = rt
        .block_on(quarter::fill(&store, &set, 13, 80, now))
        .expect("the quarter is stored");
    let facts = store.handoff_facts().expect("facts").len();
    eprintln!(
        "quarter: {} deals, {} events, {facts} handoffs",
        filled.deals, filled.events
    );

    let mut g = c.benchmark_group("dashboard_quarter");
    g.bench_function("read_facts", |b| {
        b.iter(|| store.handoff_facts().expect("facts").len())
    });
    g.bench_function("figures", |b| {
        b.iter(|| dashboard::data(store.as_ref(), now).expect("figures"))
    });
    g.bench_function("page", |b| {
        b.iter(|| {
            let d = dashboard::data(store.as_ref(), now).expect("figures");
            layout::page("Dashboard", None, dashboard::render(&d))
                .into_string()
                .len()
        })
    });
    g.finish();
}

criterion_group!(web, benches);
criterion_main!(web);
