//! The dashboard's cost on a quarter of handoffs (issue 13, acceptance 3:
//! under 200 ms on a demo db of a quarter).
//!
//! The db is `handoff demo`'s quarter (13 weeks, seed 1: 234 deals and
//! 312 leads through the real ingest path), filled once. Contenders, one
//! group, back to back:
//! - `read_counts` (baseline): the store read of the open handoffs' counts, with
//!   nothing computed or drawn: the floor any dashboard on this store pays;
//! - `figures`: the health report of the quarter (its own store read, the
//!   weekly signals and findings) plus the status counts: `dashboard::data`;
//! - `page`: the read, the figures and the whole HTML page with its SVG
//!   charts, as `GET /` renders it.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use handoff::runtime::store::{SqliteOptions, SqliteStore, Store, Synchronous};
use handoff::runtime::web::{dashboard, layout};

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temp dir");
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
        .block_on(handoff::health::demo::generate(
            &store,
            &handoff::health::demo::DemoOptions::new(13, 1, now),
        ))
        .expect("the demo quarter is stored");
    let open = store.open_counts().expect("counts").len();
    eprintln!(
        "demo quarter: {} deals, {} leads, {} events, {open} open status counts",
        filled.deals, filled.leads, filled.events
    );
    let targets = handoff::health::Targets::default();

    let mut g = c.benchmark_group("dashboard_quarter");
    g.bench_function("read_counts", |b| {
        b.iter(|| store.open_counts().expect("counts").len())
    });
    g.bench_function("figures", |b| {
        b.iter(|| dashboard::data(store.as_ref(), &targets, now).expect("figures"))
    });
    g.bench_function("page", |b| {
        b.iter(|| {
            let d = dashboard::data(store.as_ref(), &targets, now).expect("figures");
            layout::page("Dashboard", None, dashboard::render(&d))
                .into_string()
                .len()
        })
    });
    g.finish();
}

criterion_group!(web, benches);
criterion_main!(web);
