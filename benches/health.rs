//! The health report over a generated quarter of 50 reps (about 100,000
//! events), ours next to a baseline, in one run.
//!
//! The database is made once by `handoff demo`'s generator (every event
//! through the real ingest path) and kept in the bench's temp folder; later
//! runs reuse it. Contenders:
//! - `report`: [`health::report`], what `handoff health` and `GET /health`
//!   do: the store's health read (set queries over the handoff projection,
//!   status changes, notes, escalations; the missing fields and exceptions
//!   read out of only the outcomes that caused a pause or a review; field
//!   errors through a partial index) and the computation.
//! - `compute`: the computation alone, on rows already loaded.
//! - `report_without_indexes`: `report` on a copy of the database without
//!   the indexes of migration 0005.
//! - `replay_audit_log`: the baseline: the same computation on rows rebuilt
//!   the naive way, by reading every event of the window and parsing its
//!   whole outcome and field errors (no projection, no targeted query).
//!
//! Before timing, `report` and the baseline are checked to agree on the
//! handoffs started and their lead times.
//!
//! Run: `cargo bench --bench health -- --warm-up-time 1 --measurement-time 10`

use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use handoff::health::demo::{self, DemoOptions};
use handoff::health::{
    self, FieldIssueFact, HandoffFacts, HealthRows, IssueKind, Targets, Transition, Window,
};
use handoff::runtime::store::{SqliteOptions, SqliteStore, Store, Synchronous};
use jiff::Timestamp;

/// 50 reps for 13 weeks; 21 deals and 28 leads per rep and week give about
/// 100,000 events.
fn options() -> DemoOptions {
    DemoOptions {
        weeks: 13,
        seed: 42,
        reps: 50,
        deals_per_rep_week: 21,
        leads_per_rep_week: 28,
        end: "2026-12-07T00:00:00Z".parse().unwrap(),
    }
}

fn open(path: &Path) -> SqliteStore {
    let options = SqliteOptions {
        synchronous: Synchronous::Normal,
        ..SqliteOptions::default()
    };
    SqliteStore::open(path, options).expect("the bench database opens")
}

/// The quarter's database, generated on the first run.
fn database() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("health-bench-50-reps.db");
    let done = dir.join("health-bench-50-reps.done");
    if done.is_file() && path.is_file() {
        return path;
    }
    for p in [
        &path,
        &path.with_extension("db-wal"),
        &path.with_extension("db-shm"),
    ] {
        let _ = std::fs::remove_file(p);
    }
    eprintln!("generating the quarter (once) into {}", path.display());
    let store: Arc<dyn Store> = Arc::new(open(&path));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let summary = runtime
        .block_on(demo::generate(&store, &options()))
        .expect("the quarter is generated");
    eprintln!(
        "{} events, {} deals, {} leads",
        summary.events, summary.deals, summary.leads
    );
    drop(store);
    std::fs::write(&done, summary.events.to_string()).unwrap();
    path
}

/// A copy of the database without migration 0005's indexes.
fn without_indexes(path: &Path) -> PathBuf {
    let copy = path.with_file_name("health-bench-no-indexes.db");
    let conn = rusqlite::Connection::open(path).unwrap();
    let _ = std::fs::remove_file(&copy);
    conn.execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    let c = rusqlite::Connection::open(&copy).unwrap();
    c.execute_batch(
        "DROP INDEX handoffs_by_triggered; DROP INDEX events_with_field_errors; \
         DROP INDEX escalations_by_handoff;",
    )
    .unwrap();
    copy
}

fn window() -> Window {
    let end = options().end;
    Window {
        since: end - jiff::SignedDuration::from_hours(13 * 7 * 24),
        now: end,
        workflow: None,
    }
}

/// The baseline: rows rebuilt from the audit log, every event's outcome
/// and field errors parsed whole.
fn replay_audit_log(conn: &rusqlite::Connection, since: Timestamp) -> HealthRows {
    let mut rows = HealthRows::default();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut stmt = conn
        .prepare(
            "SELECT received_at, object, outcome, field_errors FROM events \
             WHERE received_at >= ?1 ORDER BY audit_id",
        )
        .unwrap();
    let mut q = stmt.query([since.as_microsecond()]).unwrap();
    while let Some(r) = q.next().unwrap() {
        let at = Timestamp::from_microsecond(r.get(0).unwrap()).unwrap();
        let object: String = r.get(1).unwrap();
        let outcome: String = r.get(2).unwrap();
        let errors: String = r.get(3).unwrap();
        let outcome: handoff::eval::Outcome = serde_json::from_str(&outcome).unwrap();
        for h in outcome.handoffs {
            let Some(id) = h.instance else { continue };
            let status = match h.status.as_str() {
                "resumed" => "proceeded",
                "not_triggered" | "orphaned" => continue,
                s => s,
            };
            let i = *index.entry(id.clone()).or_insert_with(|| {
                rows.handoffs.push(HandoffFacts {
                    id: id.clone(),
                    workflow: h.workflow.clone(),
                    object: object.clone(),
                    record_id: h.record_id.clone(),
                    status: String::new(),
                    triggered_at: at,
                    done_at: None,
                    missing_at_trigger: Vec::new(),
                    history: Vec::new(),
                    notes: Vec::new(),
                    next_owner: None,
                });
                rows.handoffs.len() - 1
            });
            let f = &mut rows.handoffs[i];
            if f.status == status {
                continue;
            }
            if f.history.is_empty() && status == "paused" {
                f.missing_at_trigger = h.missing.clone();
            }
            if status == "done" {
                f.done_at = Some(at);
            }
            f.history.push(Transition {
                from: (!f.status.is_empty()).then(|| f.status.clone()),
                to: status.to_string(),
                at,
                by: None,
                exceptions: if status == "review" {
                    h.exceptions.clone()
                } else {
                    Vec::new()
                },
            });
            f.status = status.to_string();
        }
        let errors: serde_json::Value = serde_json::from_str(&errors).unwrap();
        for (key, kind) in [
            ("errors", IssueKind::TypeError),
            ("unknown_values", IssueKind::UnknownValue),
        ] {
            for e in errors[key].as_array().into_iter().flatten() {
                let field = e["field"].as_str().unwrap_or_default();
                rows.field_issues.push(FieldIssueFact {
                    object: object.clone(),
                    field: field.trim_start_matches("record.").to_string(),
                    kind,
                    value: e["value"].as_str().unwrap_or_default().to_string(),
                    expected: e["expected"].as_str().unwrap_or_default().to_string(),
                    at,
                });
            }
        }
    }
    rows
}

fn bench(c: &mut Criterion) {
    let path = database();
    let bare = without_indexes(&path);
    let store = open(&path);
    let store_bare = open(&bare);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let targets = Targets::default();
    let w = window();

    // The contenders agree before anything is timed.
    let ours = health::report(&store, &w, &targets).unwrap();
    let calendar = demo::workflow_versions().unwrap().0.calendar().clone();
    let naive = health::compute(&replay_audit_log(&conn, w.since), &calendar, &targets, &w);
    let events: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    for name in [demo::DEALS, demo::LEADS] {
        let a = ours.workflows.iter().find(|x| x.workflow == name).unwrap();
        let b = naive.workflows.iter().find(|x| x.workflow == name).unwrap();
        assert_eq!(a.totals.started, b.totals.started, "{name}: started");
        assert_eq!(a.totals.done, b.totals.done, "{name}: done");
        assert_eq!(
            a.totals.lead_time_business_hours, b.totals.lead_time_business_hours,
            "{name}: lead time"
        );
        assert_eq!(a.missing_fields, b.missing_fields, "{name}: missing fields");
    }
    eprintln!(
        "{events} events; {} handoffs in the window; {} findings",
        ours.workflows.iter().map(|w| w.totals.started).sum::<u32>(),
        ours.findings.len()
    );

    let rows = store.health_rows(w.since).unwrap();
    let mut g = c.benchmark_group("health");
    g.sample_size(10);
    g.bench_function("report", |b| {
        b.iter(|| black_box(health::report(&store, &w, &targets).unwrap()))
    });
    g.bench_function("compute", |b| {
        b.iter(|| black_box(health::compute(&rows, &calendar, &targets, &w)))
    });
    g.bench_function("report_without_indexes", |b| {
        b.iter(|| black_box(health::report(&store_bare, &w, &targets).unwrap()))
    });
    g.bench_function("replay_audit_log", |b| {
        b.iter(|| {
            black_box(health::compute(
                &replay_audit_log(&conn, w.since),
                &calendar,
                &targets,
                &w,
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
