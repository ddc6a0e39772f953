//! Hot reload under load (issue 10, acceptance 3): while client tasks post
//! events without pause, the workflows folder is saved [`SAVES`] times,
//! valid and invalid edits, some by rename-over and some in place.
//!
//! - zero requests fail;
//! - every decision names a version that was valid, and active at some
//!   instant between its request and its answer (the response's outcome and
//!   the audit log agree on it);
//! - an invalid save never replaces the last good version: `GET /workflows`
//!   shows its diagnostics and the old version keeps deciding;
//! - save-to-active latency (the save starts → `GET /workflows` names the
//!   new version, polled every 5 ms within the bound) is printed as median
//!   and p99 (run with `--nocapture`); benches/README.md quotes it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use handoff::diagnostic::SourceFile;
use serde_json::{json, Value as J};

use crate::helpers::{save_by_rename, save_in_place, spawn_app, TestApp, BOUND};

/// Saves of the folder.
const SAVES: usize = 50;
/// Concurrent clients posting events.
const CLIENTS: usize = 4;
/// The files, in the order the server loads them.
const FILES: [&str; 3] = [
    "crm.handoff",
    "marketing_to_sales.handoff",
    "sales_to_delivery.handoff",
];

/// One answered request.
struct Decision {
    sent: Instant,
    answered: Instant,
    audit_id: i64,
    version: String,
}

/// A deal won with everything filled: one decision per event.
fn won(id: &str, record: &str) -> J {
    json!({"id": id, "object": "deal", "record_id": record,
           "occurred_at": "2026-11-20T15:04:05Z",
           "record": {"name": format!("Deal {record}"), "stage": "Closed Won",
                      "owner": "sam@example.com", "amount": 8000, "segment": "smb",
                      "buyer_goals": "Launch by January", "main_contact": "li@beta.example",
                      "signed_scope": "https://docs.example/sow", "start_date": "2026-12-14",
                      "promised_deliverables": ["Setup"], "pricing_exceptions": "None",
                      "risk_notes": "None", "kickoff_preference": "Async first"},
           "previous": {"stage": "Proposal"}})
}

/// Posts events until `stop`; every answer must be 200.
async fn client(
    app: Arc<TestApp>,
    n: usize,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Vec<Decision>>>,
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let body = won(&format!("c{n}-{i}"), &format!("D-{n}-{i}"));
        let sent = Instant::now();
        let res = app
            .client
            .post(app.url("/hooks/generic"))
            .body(body.to_string())
            .timeout(BOUND)
            .send()
            .await;
        let answered = Instant::now();
        let res = match res {
            Ok(res) => res,
            Err(e) => {
                failures.push(format!("c{n}-{i}: no answer: {e}"));
                continue;
            }
        };
        let status = res.status();
        let reply: J = res.json().await.unwrap_or(J::Null);
        if status != 200 {
            failures.push(format!("c{n}-{i}: {status}: {reply}"));
            continue;
        }
        let event = &reply["events"][0];
        out.lock().unwrap().push(Decision {
            sent,
            answered,
            audit_id: event["audit_id"].as_i64().unwrap(),
            version: event["outcome"]["version"].as_str().unwrap().to_string(),
        });
    }
    failures
}

/// The version the server gives `texts` (in load order).
fn version_of_texts(texts: &BTreeMap<&'static str, String>) -> Option<String> {
    let sources: Vec<_> = FILES
        .iter()
        .map(|name| SourceFile::new(*name, texts[name].clone()))
        .collect();
    handoff::compile::load_sources(&sources)
        .ok()
        .map(|(set, _)| set.version().to_string())
}

/// Polls `GET /workflows` every 5 ms (another task's view, as an operator
/// sees it) until `done`, failing after [`BOUND`].
async fn poll_workflows(
    app: &TestApp,
    mut done: impl FnMut(&handoff::runtime::http::workflows::WorkflowsView) -> bool,
) -> handoff::runtime::http::workflows::WorkflowsView {
    let deadline = tokio::time::Instant::now() + BOUND;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    loop {
        tick.tick().await;
        let view = app.workflows().await;
        if done(&view) {
            return view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {BOUND:?}: {view:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_saves_under_load_fail_no_request_and_decide_only_with_valid_versions() {
    let app = Arc::new(spawn_app().await);
    let mut texts: BTreeMap<&'static str, String> = FILES
        .iter()
        .map(|f| (*f, std::fs::read_to_string(app.workflow(f)).unwrap()))
        .collect();
    let good_texts = texts.clone();
    let first = app.workflows().await.version;

    // (version, when its save started, when GET /workflows first showed it)
    let mut timeline: Vec<(String, Option<Instant>, Instant)> =
        vec![(first.clone(), None, Instant::now())];
    let stop = Arc::new(AtomicBool::new(false));
    let decisions = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| tokio::spawn(client(app.clone(), n, stop.clone(), decisions.clone())))
        .collect();
    // Load is running before the first save.
    let started = Instant::now();
    poll_workflows(&app, |_| decisions.lock().unwrap().len() >= 20).await;

    let mut latencies = Vec::new();
    let (mut valid, mut invalid, mut renamed) = (0, 0, 0);
    let mut broken: Option<&'static str> = None;
    for i in 0..SAVES {
        // Every third save is invalid; the save after it fixes that file.
        let bad = i % 3 == 2;
        let file = broken.unwrap_or(if i % 2 == 0 {
            "sales_to_delivery.handoff"
        } else {
            "crm.handoff"
        });
        let good = &good_texts[file];
        let text = match (file, bad) {
            ("sales_to_delivery.handoff", false) => format!(
                "{}\n# save {i}\n",
                good.replace(
                    "due in 2 business days",
                    &format!("due in {} business days", 1 + i % 4)
                )
            ),
            ("sales_to_delivery.handoff", true) => {
                good.replace("require buyer_goals", "require buyer_gaols")
            }
            (_, false) => format!("{good}\n# save {i}\n"),
            (_, true) => good.replace("object deal {", "object deal"),
        };
        assert_ne!(&text, good, "the edit changes the file");
        texts.insert(file, text.clone());
        let expected = version_of_texts(&texts);
        assert_eq!(expected.is_none(), bad, "save {i} is valid iff meant to be");
        let before = app.workflows().await;

        let by_rename = i % 4 < 2;
        renamed += usize::from(by_rename);
        let saved = Instant::now();
        if by_rename {
            save_by_rename(&app.workflow(file), &text);
        } else {
            save_in_place(&app.workflow(file), &text);
        }
        match expected {
            Some(version) => {
                poll_workflows(&app, |v| v.version == version).await;
                latencies.push(saved.elapsed());
                timeline.push((version, Some(saved), Instant::now()));
                valid += 1;
                broken = None;
            }
            None => {
                let view =
                    poll_workflows(&app, |v| v.rejected_reloads > before.rejected_reloads).await;
                assert_eq!(view.version, before.version, "the last good version stays");
                let rejected = view.rejected.expect("the rejected edit is shown");
                assert!(
                    rejected.diagnostics.contains(file),
                    "save {i}: {}",
                    rejected.diagnostics
                );
                // The old version keeps deciding.
                let reply: J = app
                    .client
                    .post(app.url("/hooks/generic"))
                    .body(won(&format!("after-bad-{i}"), &format!("B-{i}")).to_string())
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(
                    reply["events"][0]["outcome"]["version"], before.version,
                    "save {i}"
                );
                invalid += 1;
                broken = Some(file);
            }
        }
    }
    // Load continues a little past the last save.
    let total = decisions.lock().unwrap().len();
    poll_workflows(&app, |_| decisions.lock().unwrap().len() >= total + 20).await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for c in clients {
        failures.extend(
            tokio::time::timeout(BOUND, c)
                .await
                .expect("the clients stop in time")
                .unwrap(),
        );
    }
    let elapsed = started.elapsed();
    assert!(failures.is_empty(), "failed requests: {failures:#?}");

    // Every decision's version was valid and active between its request
    // and its answer: saved no later than the answer, replaced no earlier
    // than the request.
    let decisions = std::mem::take(&mut *decisions.lock().unwrap());
    let mut used = BTreeSet::new();
    for d in &decisions {
        let at = timeline
            .iter()
            .position(|(v, _, _)| *v == d.version)
            .unwrap_or_else(|| {
                panic!(
                    "audit {} names version {} that never served",
                    d.audit_id, d.version
                )
            });
        let (_, saved, _) = &timeline[at];
        assert!(
            saved.is_none_or(|s| s <= d.answered),
            "audit {} was decided by a version saved after its answer",
            d.audit_id
        );
        if let Some((_, _, replaced_seen)) = timeline.get(at + 1) {
            assert!(
                d.sent <= *replaced_seen,
                "audit {} was decided by version {} after it had been replaced",
                d.audit_id,
                d.version
            );
        }
        used.insert(at);
    }
    // The audit log records the version each decision names.
    let db = rusqlite::Connection::open_with_flags(
        app.dir.path().join("handoff.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let logged: BTreeMap<i64, String> = db
        .prepare("SELECT audit_id, workflow_version FROM events")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for d in &decisions {
        assert_eq!(
            logged.get(&d.audit_id),
            Some(&d.version),
            "audit {}",
            d.audit_id
        );
    }
    // Every version that served was kept, and no other.
    let kept: BTreeSet<String> = db
        .prepare("SELECT id FROM workflow_versions")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let served: BTreeSet<String> = timeline.iter().map(|(v, _, _)| v.clone()).collect();
    assert_eq!(kept, served);
    let view = app.workflows().await;
    assert_eq!(view.reloads as usize, valid);
    assert_eq!(view.rejected_reloads as usize, invalid);

    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    println!(
        "hot reload under load: {SAVES} saves ({valid} valid, {invalid} invalid; {renamed} by \
         rename-over, {} in place); {} requests in {elapsed:.1?}, none failed, decided with {} \
         versions; save to active: median {median:.1?}, p99 {p99:.1?}, max {:.1?} over {} \
         valid saves",
        SAVES - renamed,
        decisions.len(),
        used.len(),
        latencies[latencies.len() - 1],
        latencies.len(),
    );
}
