//! Hot reload in process: saves become active (awaited on the status
//! channel), invalid saves keep the last good version.

use std::sync::Arc;

use handoff::runtime::metrics::Metrics;
use handoff::runtime::reload::{Active, BoxCheck, BoxFuture, OnActivate, Reload, Workflows};

use crate::helpers::{save_by_rename, save_in_place, spawn_app, version_of, workspace};

#[tokio::test]
async fn a_valid_save_in_place_becomes_active() {
    let app = spawn_app().await;
    let before = app.status();
    let file = app.workflow("crm.handoff");
    let text = std::fs::read_to_string(&file).unwrap();
    save_in_place(&file, &format!("{text}\n# saved in place\n"));

    let expected = version_of(&app.workflow(""));
    assert_ne!(expected, before.version);
    let status = app.wait_for_status(|s| s.version == expected).await;
    assert_eq!(status.reloads, 1);
    assert_eq!(status.rejected, 0);
    let view = app.workflows().await;
    assert_eq!(view.version, expected);
    assert_eq!(view.reloads, 1);
}

/// A deploy that flips a symlink to another release folder: the server
/// serves the new release, and then follows edits made in it (it watches
/// the new folder, not the old one).
#[cfg(unix)]
#[tokio::test]
async fn a_flipped_symlink_to_another_release_is_followed() {
    let root = workspace();
    let release = |name: &str, note: &str| {
        let dir = root.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        for entry in std::fs::read_dir(root.path().join("workflows")).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(
                dir.join(path.file_name().unwrap()),
                format!("{text}\n# {note}\n"),
            )
            .unwrap();
        }
        dir
    };
    let (a, b) = (release("release-a", "a"), release("release-b", "b"));
    let current = root.path().join("current");
    std::os::unix::fs::symlink(&a, &current).unwrap();
    let app = crate::helpers::spawn_app_with({
        let current = current.clone();
        move |s| s.workflows = current
    })
    .await;
    assert_eq!(app.status().version, version_of(&a));

    // The flip: a new link renamed over the old one, as deploy tools do.
    let next = root.path().join("current.next");
    std::os::unix::fs::symlink(&b, &next).unwrap();
    std::fs::rename(&next, &current).unwrap();
    let want = version_of(&b);
    let status = app.wait_for_status(|s| s.version == want).await;
    assert_eq!(status.version, want);

    // An edit in the new release reloads: the new folder is watched.
    let file = b.join("crm.handoff");
    let text = std::fs::read_to_string(&file).unwrap();
    save_in_place(&file, &format!("{text}\n# edited in b\n"));
    let edited = version_of(&b);
    app.wait_for_status(|s| s.version == edited).await;
    drop(root);
}

#[tokio::test]
async fn a_valid_save_by_rename_becomes_active() {
    let app = spawn_app().await;
    let file = app.workflow("sales_to_delivery.handoff");
    let text = std::fs::read_to_string(&file).unwrap();
    save_by_rename(
        &file,
        &text.replace("due in 2 business days", "due in 3 business days"),
    );

    let expected = version_of(&app.workflow(""));
    app.wait_for_status(|s| s.version == expected).await;
    let active = app.state.workflows.active();
    assert_eq!(active.set.version(), expected);
    let served = active
        .files
        .iter()
        .find(|f| f.name.ends_with("sales_to_delivery.handoff"))
        .unwrap();
    assert!(served.text.contains("due in 3 business days"));
    assert_eq!(app.state.metrics.reloads.get(), 1);
}

#[tokio::test]
async fn an_invalid_save_keeps_the_last_good_version_and_shows_why() {
    let app = spawn_app().await;
    let good = app.status().version;
    let file = app.workflow("sales_to_delivery.handoff");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("require buyer_goals"));
    save_by_rename(
        &file,
        &text.replace("require buyer_goals", "require buyer_gaols"),
    );

    let status = app.wait_for_status(|s| s.rejected == 1).await;
    assert_eq!(status.version, good, "the last good version still serves");
    assert_eq!(status.reloads, 0);
    let view = app.workflows().await;
    assert_eq!(view.version, good);
    assert_eq!(view.rejected_reloads, 1);
    let rejected = view.rejected.expect("the rejected edit is shown");
    assert_eq!(rejected.problems, 1);
    assert!(
        rejected
            .diagnostics
            .contains("unknown field `buyer_gaols` on `deal`"),
        "{}",
        rejected.diagnostics
    );
    assert!(rejected.diagnostics.contains("sales_to_delivery.handoff:"));
    assert!(rejected.diagnostics.contains("did you mean `buyer_goals`?"));
    assert!(!rejected.diagnostics.contains('\u{1b}'), "no colour codes");
    assert_eq!(app.state.metrics.reloads_rejected.get(), 1);

    // The fix becomes active and clears the rejection.
    save_in_place(&file, &format!("{text}\n# fixed\n"));
    let fixed = version_of(&app.workflow(""));
    app.wait_for_status(|s| s.version == fixed).await;
    let view = app.workflows().await;
    assert!(view.rejected.is_none());
    assert_eq!((view.reloads, view.rejected_reloads), (1, 1));
}

/// The CRM mapping is read once, at start-up. An edit that stops declaring
/// what it maps (here a mapped field, `lead.rejection_reason`; an object
/// would be the same) compiles, but would have that field's CRM values
/// dropped from then on: it is rejected as an invalid edit is, naming the
/// field and the two ways out, and the last good version keeps serving.
#[tokio::test]
async fn an_edit_the_crm_mapping_no_longer_fits_is_rejected() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.crm = crate::fake_crm::mapping("http://127.0.0.1:9");
    })
    .await;
    let good = app.status().version;
    let file = app.workflow("crm.handoff");
    let text = std::fs::read_to_string(&file).unwrap();
    let line = "  rejection_reason:     text     \"Rejection reason\"\n";
    assert!(text.contains(line), "{text}");
    save_by_rename(&file, &text.replace(line, ""));

    let status = app.wait_for_status(|s| s.rejected == 1).await;
    assert_eq!(status.version, good, "the last good version still serves");
    let rejected = app.workflows().await.rejected.expect("shown");
    assert_eq!(rejected.problems, 1, "{}", rejected.diagnostics);
    assert!(
        rejected.diagnostics.contains(
            "hubspot property `rejection_reason` is mapped to `lead.rejection_reason`, which the workflows no longer declare"
        ),
        "{}",
        rejected.diagnostics
    );
    assert!(rejected.diagnostics.contains("declare `rejection_reason` in `object lead` again, or change the mapping and restart the server"));

    // Declared again: it serves.
    save_in_place(&file, &format!("{text}\n# kept\n"));
    let fixed = version_of(&app.workflow(""));
    app.wait_for_status(|s| s.version == fixed).await;
    assert!(app.workflows().await.rejected.is_none());
}

#[tokio::test]
async fn deleting_every_file_is_rejected_too() {
    let app = spawn_app().await;
    let good = app.status().version;
    for name in [
        "crm.handoff",
        "marketing_to_sales.handoff",
        "sales_to_delivery.handoff",
    ] {
        std::fs::remove_file(app.workflow(name)).unwrap();
    }
    let status = app.wait_for_status(|s| s.rejected >= 1).await;
    assert_eq!(status.version, good);
    let view = app.workflows().await;
    assert!(view
        .rejected
        .unwrap()
        .diagnostics
        .contains("no `.handoff` files"));
    // Requests are still decided with the last good version.
    assert_eq!(app.state.workflows.active().set.version(), good);
}

/// Records the versions it is told about.
struct Recorder(std::sync::Mutex<Vec<String>>);

impl OnActivate for Recorder {
    fn activated(&self, active: Arc<Active>) -> BoxFuture<'_> {
        Box::pin(async move {
            self.0
                .lock()
                .unwrap()
                .push(active.set.version().to_string());
        })
    }
}

#[tokio::test]
async fn the_activation_hooks_see_every_version_that_serves_and_no_other() {
    let dir = workspace();
    let folder = dir.path().join("workflows");
    let recorder = Arc::new(Recorder(Default::default()));
    let workflows = Workflows::load(
        folder.clone(),
        Arc::new(Metrics::new()),
        vec![recorder.clone() as Arc<dyn OnActivate>],
    )
    .await
    .unwrap();
    let first = workflows.active().set.version().to_string();

    let file = folder.join("crm.handoff");
    let text = std::fs::read_to_string(&file).unwrap();
    save_in_place(&file, &format!("{text}\n# second\n"));
    let second = version_of(&folder);
    assert_eq!(
        workflows.reload().await,
        Reload::Activated {
            version: second.clone()
        }
    );
    assert_eq!(workflows.reload().await, Reload::Unchanged);
    save_in_place(&file, "object {");
    assert_eq!(workflows.reload().await, Reload::Rejected { problems: 1 });

    assert_eq!(*recorder.0.lock().unwrap(), [first, second]);
}

/// Refuses the versions while `refuse` is set, as a store that cannot
/// save them would; records the ones it is told serve.
struct Refusing {
    refuse: std::sync::atomic::AtomicBool,
    served: std::sync::Mutex<Vec<String>>,
}

impl OnActivate for Refusing {
    fn activating(&self, _active: Arc<Active>) -> BoxCheck<'_> {
        let refuse = self.refuse.load(std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            if refuse {
                Err("the disk is full".to_string())
            } else {
                Ok(())
            }
        })
    }

    fn activated(&self, active: Arc<Active>) -> BoxFuture<'_> {
        Box::pin(async move {
            let version = active.set.version().to_string();
            self.served.lock().unwrap().push(version);
        })
    }
}

#[tokio::test]
async fn a_version_that_cannot_be_kept_does_not_serve_and_is_tried_again() {
    let dir = workspace();
    let folder = dir.path().join("workflows");
    let hook = Arc::new(Refusing {
        refuse: std::sync::atomic::AtomicBool::new(true),
        served: Default::default(),
    });
    let hooks = || vec![hook.clone() as Arc<dyn OnActivate>];
    // At start-up: the server does not start.
    let err = match Workflows::load(folder.clone(), Arc::new(Metrics::new()), hooks()).await {
        Ok(_) => panic!("a version that cannot be kept must not serve"),
        Err(e) => e,
    };
    assert!(err.to_string().contains("the disk is full"), "{err}");
    hook.refuse
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let workflows = Workflows::load(folder.clone(), Arc::new(Metrics::new()), hooks())
        .await
        .unwrap();
    let first = workflows.active().set.version().to_string();

    // A reload whose version cannot be kept leaves the first serving...
    hook.refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    let file = folder.join("crm.handoff");
    let text = std::fs::read_to_string(&file).unwrap();
    save_in_place(&file, &format!("{text}\n# second\n"));
    assert_eq!(
        workflows.reload().await,
        Reload::NotKept {
            reason: "the disk is full".into()
        }
    );
    assert_eq!(workflows.active().set.version(), first);
    // ...and the same files are tried again, not taken as seen.
    hook.refuse
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let second = version_of(&folder);
    assert_eq!(
        workflows.reload().await,
        Reload::Activated {
            version: second.clone()
        }
    );
    assert_eq!(*hook.served.lock().unwrap(), [first, second.clone()]);

    // With no further change, the retry task takes the files once the
    // store keeps them again.
    hook.refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    save_in_place(&file, &format!("{text}\n# third\n"));
    assert!(matches!(workflows.reload().await, Reload::NotKept { .. }));
    let retry = tokio::spawn(handoff::runtime::reload::retry_not_kept(
        workflows.clone(),
        std::time::Duration::from_millis(10),
    ));
    // While the store refuses, the retries keep the second version serving.
    let mut status = workflows.status();
    let refused = tokio::time::timeout(
        std::time::Duration::from_millis(200),
        status.wait_for(|s| s.version != second),
    )
    .await
    .is_err();
    assert!(refused, "a version that cannot be kept served");
    hook.refuse
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let third = version_of(&folder);
    tokio::time::timeout(
        crate::helpers::BOUND,
        status.wait_for(|s| s.version == third),
    )
    .await
    .expect("the retry activated the files without a change")
    .unwrap();
    retry.abort();
    assert_eq!(workflows.active().set.version(), third);
}

#[tokio::test]
async fn save_to_active_latency() {
    // Alternating in-place and rename-over saves, each awaited before the
    // next; prints the median and the slowest (run with --nocapture).
    let app = spawn_app().await;
    let file = app.workflow("crm.handoff");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut latencies = Vec::new();
    for i in 0..20 {
        let edited = format!("{text}\n# save {i}\n");
        let expected = {
            let (set, _) = handoff::compile::load_sources(&[
                handoff::diagnostic::SourceFile::new("crm.handoff", edited.clone()),
                handoff::diagnostic::SourceFile::new(
                    "m",
                    std::fs::read_to_string(app.workflow("marketing_to_sales.handoff")).unwrap(),
                ),
                handoff::diagnostic::SourceFile::new(
                    "s",
                    std::fs::read_to_string(app.workflow("sales_to_delivery.handoff")).unwrap(),
                ),
            ])
            .unwrap();
            set.version().to_string()
        };
        let start = std::time::Instant::now();
        if i % 2 == 0 {
            save_in_place(&file, &edited);
        } else {
            save_by_rename(&file, &edited);
        }
        app.wait_for_status(|s| s.version == expected).await;
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let max = latencies[latencies.len() - 1];
    println!("save to active: median {median:?}, max {max:?} over 20 saves");
    // The debounce is 50 ms; a median far above it means reloads queue up
    // or wait for something else.
    assert!(
        median < std::time::Duration::from_secs(2),
        "median {median:?}"
    );
    assert_eq!(app.status().reloads, 20);
}

/// A deal won with every field but `risk_notes`: its handoff pauses.
fn won_paused(id: &str, record: &str) -> serde_json::Value {
    serde_json::json!({"id": id, "object": "deal", "record_id": record,
        "record": {"name": format!("Deal {record}"), "stage": "Closed Won",
            "owner": "sam@example.com", "amount": 8000, "segment": "smb",
            "buyer_goals": "Launch by January", "main_contact": "li@beta.example",
            "signed_scope": "https://docs.example/sow", "start_date": "2026-12-14",
            "promised_deliverables": ["Setup"], "pricing_exceptions": "None",
            "kickoff_preference": "Async first"},
        "previous": {"stage": "Proposal"}})
}

async fn post(app: &crate::helpers::TestApp, body: serde_json::Value) -> serde_json::Value {
    let res = app
        .client
        .post(app.url("/hooks/generic"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn orphans(app: &crate::helpers::TestApp) -> Vec<(String, String)> {
    let list: serde_json::Value = app
        .get("/handoffs?orphaned=true")
        .await
        .json()
        .await
        .unwrap();
    list["handoffs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["record_id"].as_str().unwrap().to_string(),
                h["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_workflow_migrates_its_instances_and_a_removed_one_orphans_them() {
    let app = spawn_app().await;
    let first = app.status().version;
    post(&app, won_paused("p1", "D-1")).await;
    // D-3 runs to done: a finished handoff has nothing to settle.
    let mut done = won_paused("d1", "D-3");
    done["record"]["risk_notes"] = serde_json::json!("None");
    post(&app, done).await;
    let body = post(
        &app,
        serde_json::json!({"id": "d2", "object": "deal", "record_id": "D-3",
            "record": {"kickoff_scheduled_at": "2026-12-02T15:00:00Z"}}),
    )
    .await;
    assert_eq!(
        body["events"][0]["outcome"]["handoffs"][0]["status"],
        "done"
    );

    // A new version keeps "Sales to Delivery" (same name, same object).
    let file = app.workflow("sales_to_delivery.handoff");
    let text = std::fs::read_to_string(&file).unwrap();
    save_by_rename(
        &file,
        &text.replace("due in 2 business days", "due in 3 business days"),
    );
    let second = version_of(&app.workflow(""));
    app.wait_for_status(|s| s.version == second).await;
    assert!(orphans(&app).await.is_empty(), "{:?}", orphans(&app).await);
    // Its paused instance continues under the new version, and says so.
    let body = post(
        &app,
        serde_json::json!({"id": "p2", "object": "deal", "record_id": "D-1",
            "record": {"risk_notes": "None"}}),
    )
    .await;
    let h = &body["events"][0]["outcome"]["handoffs"][0];
    assert_eq!(h["status"], "resumed");
    assert_eq!(h["migrated_from"], first.as_str());
    assert!(
        h["trace"][0].as_str().unwrap().starts_with("migrated:"),
        "{h}"
    );

    // The workflow is renamed away: the in-flight instances are orphaned
    // and keep their status; the finished one is not listed.
    post(&app, won_paused("p3", "D-2")).await;
    save_in_place(
        &file,
        &text.replace(
            "handoff \"Sales to Delivery\"",
            "handoff \"Sales to Onboarding\"",
        ),
    );
    let third = version_of(&app.workflow(""));
    app.wait_for_status(|s| s.version == third).await;
    let mut got = orphans(&app).await;
    got.sort();
    assert_eq!(
        got,
        [
            ("D-1".to_string(), "proceeded".to_string()),
            ("D-2".to_string(), "paused".to_string())
        ]
    );
}

/// A request that leased the previous version decides after the reload's
/// swap: the new version's orphan sweep waits for it, so the instance it
/// starts of a workflow the new version removed is listed as orphaned too
/// (swept first, it would be listed live with no rule left to settle it).
#[tokio::test(flavor = "multi_thread")]
async fn a_decision_under_the_previous_version_is_swept_after_it() {
    let app = spawn_app().await;
    let first = app.status().version;
    let old = app.state.workflows.lease();

    let file = app.workflow("sales_to_delivery.handoff");
    let text = std::fs::read_to_string(&file).unwrap();
    save_in_place(
        &file,
        &text.replace(
            "handoff \"Sales to Delivery\"",
            "handoff \"Sales to Onboarding\"",
        ),
    );
    let next = version_of(&app.workflow(""));
    app.wait_for_status(|s| s.serving == next).await;
    assert_eq!(app.state.workflows.active().set.version(), next);

    // The late decision, under the version this request leased.
    let body = won_paused("late", "D-9").to_string();
    let event = handoff::eval::Event::decode_lenient(&old.set, body.as_bytes()).unwrap();
    let request = handoff::runtime::ingest::Request {
        source: "generic".into(),
        received_at: jiff::Timestamp::now(),
        events: vec![handoff::runtime::ingest::Received {
            event,
            raw_body: body.into_bytes(),
        }],
    };
    let done = handoff::runtime::ingest::ingest(&app.state.store, old.set.clone(), request)
        .await
        .unwrap();
    assert!(matches!(
        &done[0],
        handoff::runtime::ingest::Ingested::Applied { outcome, .. }
            if outcome.version == first
    ));
    assert_eq!(
        app.status().version,
        first,
        "the new version's hooks wait for the lease"
    );

    drop(old);
    app.wait_for_status(|s| s.version == next).await;
    assert_eq!(
        orphans(&app).await,
        [("D-9".to_string(), "paused".to_string())]
    );
}
