//! The health report on a real SQLite file: the store read gives the rows
//! the pure computation expects (missing fields and exceptions at the
//! trigger, notes, next owners, field errors), `escalate when` records an
//! escalation when its condition becomes true after the handoff went
//! ahead, and `handoff demo` then the report finds what the generator
//! planted (acceptance 3).
#![cfg(feature = "serve")]

mod common;

use std::sync::Arc;

use handoff::compile::WorkflowSet;
use handoff::diagnostic::SourceFile;
use handoff::eval::Event;
use handoff::health::demo::{self, DemoError, DemoOptions};
use handoff::health::{self, IssueKind, Targets, Window};
use handoff::runtime::ingest::{self, Request};
use handoff::runtime::store::{SqliteOptions, SqliteStore, Store, Synchronous};
use jiff::Timestamp;
use serde_json::{json, Value as J};

fn store(dir: &std::path::Path, name: &str) -> Arc<dyn Store> {
    let options = SqliteOptions {
        synchronous: Synchronous::Normal,
        ..SqliteOptions::default()
    };
    Arc::new(SqliteStore::open(dir.join(name), options).unwrap())
}

const RULES: &str = r#"
object deal {
  name:             text
  stage:            one of "Proposal", "Closed Won"
  owner:            user
  scope:            text
  custom_scope:     yes/no
  delivery_blocked: yes/no
  kicked_off_at:    datetime
}
user founder = "maya@example.com"
handoff "Won" {
  when deal.stage becomes "Closed Won"
  require scope
  exception "Custom Scope" when deal.custom_scope is yes
  on exception { task "Review {deal.name}" for founder }
  then { task "Kickoff {deal.name}" for deal.owner }
  escalate when deal.delivery_blocked is yes
  done when deal.kicked_off_at is set
}
"#;

fn rules() -> WorkflowSet {
    handoff::compile::load_sources(&[SourceFile::new("rules.handoff", RULES)])
        .expect("the rules compile")
        .0
}

async fn send(store: &Arc<dyn Store>, set: &WorkflowSet, at: &str, record: &str, fields: J) {
    let body = json!({"object": "deal", "record_id": record, "occurred_at": at, "record": fields});
    let bytes = body.to_string().into_bytes();
    let event = Event::decode_lenient(set, &bytes).expect("a valid event");
    ingest::ingest(
        store,
        set.clone(),
        Request {
            source: "generic".into(),
            received_at: common::ts(at),
            events: vec![ingest::Received {
                event,
                raw_body: bytes,
            }],
        },
    )
    .await
    .expect("ingested");
}

fn rows(store: &Arc<dyn Store>) -> handoff::health::HealthRows {
    store
        .health_rows(common::ts("2026-01-01T00:00:00Z"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn escalate_when_records_each_time_it_becomes_true_after_the_handoff_went_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), "h.db");
    let set = rules();
    let won = json!({"name": "Acme", "stage": "Closed Won", "owner": "sam@example.com", "scope": "Setup"});
    send(&store, &set, "2026-11-02T10:00:00Z", "D-1", won).await;
    assert!(rows(&store).escalations.is_empty());
    send(
        &store,
        &set,
        "2026-11-03T10:00:00Z",
        "D-1",
        json!({"delivery_blocked": true}),
    )
    .await;
    // Still true on the next event: not a new escalation.
    send(
        &store,
        &set,
        "2026-11-03T11:00:00Z",
        "D-1",
        json!({"name": "Acme Inc"}),
    )
    .await;
    let r = rows(&store);
    assert_eq!(r.escalations.len(), 1);
    assert_eq!(r.escalations[0].source, "rule");
    assert_eq!(r.escalations[0].reason, "deal.delivery_blocked is yes");
    assert_eq!(r.escalations[0].at, common::ts("2026-11-03T10:00:00Z"));
    // Cleared and set again: a second escalation.
    send(
        &store,
        &set,
        "2026-11-04T10:00:00Z",
        "D-1",
        json!({"delivery_blocked": false}),
    )
    .await;
    send(
        &store,
        &set,
        "2026-11-05T10:00:00Z",
        "D-1",
        json!({"delivery_blocked": true}),
    )
    .await;
    assert_eq!(rows(&store).escalations.len(), 2);

    // A paused handoff has not reached delivery: nothing is recorded.
    let paused = json!({"name": "Beta", "stage": "Closed Won", "owner": "sam@example.com"});
    send(&store, &set, "2026-11-02T10:00:00Z", "D-2", paused).await;
    send(
        &store,
        &set,
        "2026-11-03T10:00:00Z",
        "D-2",
        json!({"delivery_blocked": true}),
    )
    .await;
    assert_eq!(rows(&store).escalations.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_store_read_carries_missing_fields_exceptions_owners_and_field_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), "h.db");
    let set = rules();
    // Paused for `scope`, then complete.
    let won = json!({"name": "Acme", "stage": "Closed Won", "owner": "sam@example.com"});
    send(&store, &set, "2026-11-02T10:00:00Z", "D-1", won).await;
    send(
        &store,
        &set,
        "2026-11-02T15:00:00Z",
        "D-1",
        json!({"scope": "Setup"}),
    )
    .await;
    // In review for the custom scope, with a stage label nobody declared
    // and a checkbox that is not yes/no on another deal.
    let custom = json!({"name": "Beta", "stage": "Closed Won", "owner": "kim@example.com",
                        "scope": "Custom", "custom_scope": true});
    send(&store, &set, "2026-11-03T10:00:00Z", "D-2", custom).await;
    send(
        &store,
        &set,
        "2026-11-04T10:00:00Z",
        "D-3",
        json!({"stage": "Closed-Won", "custom_scope": "maybe"}),
    )
    .await;

    let r = rows(&store);
    assert_eq!(r.handoffs.len(), 2);
    let d1 = r.handoffs.iter().find(|h| h.record_id == "D-1").unwrap();
    assert_eq!(d1.missing_at_trigger, ["scope"]);
    let path: Vec<(Option<&str>, &str)> = d1
        .history
        .iter()
        .map(|t| (t.from.as_deref(), t.to.as_str()))
        .collect();
    assert_eq!(path, [(None, "paused"), (Some("paused"), "proceeded")]);
    assert_eq!(d1.next_owner.as_deref(), Some("sam@example.com"));

    let d2 = r.handoffs.iter().find(|h| h.record_id == "D-2").unwrap();
    assert!(d2.missing_at_trigger.is_empty());
    assert_eq!(d2.history[0].exceptions, ["Custom Scope"]);
    assert_eq!(d2.next_owner.as_deref(), Some("maya@example.com"));

    let issues: Vec<(&str, IssueKind, &str)> = r
        .field_issues
        .iter()
        .map(|i| (i.field.as_str(), i.kind, i.value.as_str()))
        .collect();
    assert_eq!(
        issues,
        [
            ("custom_scope", IssueKind::TypeError, "\"maybe\""),
            ("stage", IssueKind::UnknownValue, "\"Closed-Won\""),
        ]
    );
    // Before the window: nothing.
    let later = store
        .health_rows(common::ts("2026-12-01T00:00:00Z"))
        .unwrap();
    assert!(later.field_issues.is_empty());
    // Both are still open (proceeded, in review): they stay for the stuck
    // list whenever they started.
    assert_eq!(later.handoffs.len(), 2);
}

fn end() -> Timestamp {
    common::ts("2026-12-07T00:00:00Z")
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_then_health_finds_what_was_planted() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), "demo.db");
    let summary = demo::generate(&store, &DemoOptions::new(13, 7, end()))
        .await
        .expect("the demo fills a fresh database");
    assert!(summary.deals >= 200 && summary.leads >= 300, "{summary:?}");
    assert!(summary.renamed_sent > 0 && summary.approvals > 0 && summary.rejections > 0);
    // A deal's review is rejected through the real path: the handoff ends
    // `rejected`, like one rejected on the review page.
    let rejected = store
        .list_handoffs(
            &handoff::runtime::store::HandoffFilter {
                status: Some("rejected".into()),
                workflow: Some("Sales to Delivery".into()),
                record_id: None,
                orphaned: None,
                stuck_before: None,
            },
            &handoff::runtime::store::PageRequest::first(500),
        )
        .unwrap();
    assert!(!rejected.items.is_empty(), "no deal review was rejected");

    let window = Window {
        since: summary.start,
        now: end(),
        workflow: None,
    };
    let report = health::report(store.as_ref(), &window, &Targets::default()).unwrap();
    let text = |code: &str, workflow: Option<&str>| -> Vec<String> {
        report
            .findings
            .iter()
            .filter(|f| f.code == code && f.workflow.as_deref() == workflow)
            .map(|f| f.text.clone())
            .collect()
    };
    // The renamed stage, with the number of times it was sent.
    let renamed = text("undeclared_value", None);
    assert_eq!(renamed.len(), 1, "{:#?}", report.findings);
    assert!(
        renamed[0].starts_with(&format!(
            "stage value `Closed-Won` arrived {} times",
            summary.renamed_sent
        )),
        "{}",
        renamed[0]
    );
    // The weak field.
    let weak = text("weak_field", Some(demo::DEALS));
    assert_eq!(weak.len(), 1, "{:#?}", report.findings);
    assert!(
        weak[0].starts_with("`risk_notes` is the field most often missing"),
        "{}",
        weak[0]
    );
    // The improvement after the rule change, credited to the workflow that
    // changed only.
    let improved = text("improved_after_change", Some(demo::DEALS));
    assert_eq!(improved.len(), 1, "{:#?}", report.findings);
    assert!(
        improved[0].contains(&summary.rule_change_at.strftime("%Y-%m-%d").to_string()),
        "{}",
        improved[0]
    );
    assert!(text("improved_after_change", Some(demo::LEADS)).is_empty());
    let deals = report
        .workflows
        .iter()
        .find(|w| w.workflow == demo::DEALS)
        .unwrap();
    let rc = deals.rule_change.as_ref().unwrap();
    assert!(
        rc.after.unwrap().median * 2.0 < rc.before.unwrap().median,
        "{rc:?}"
    );
    assert!(deals.totals.escalated > 0 && deals.totals.review > 0);
    assert!(!deals.stuck.is_empty());
    // Leads: some without their campaign.
    let leads = report
        .workflows
        .iter()
        .find(|w| w.workflow == demo::LEADS)
        .unwrap();
    assert!(leads.leads.as_ref().unwrap().without_source > 0);

    // Deterministic: the same seed and end give the same report.
    let again = store_in(&dir, "again.db");
    let summary2 = demo::generate(&again, &DemoOptions::new(13, 7, end()))
        .await
        .unwrap();
    assert_eq!(summary, summary2);
    let report2 = health::report(again.as_ref(), &window, &Targets::default()).unwrap();
    assert_eq!(
        serde_json::to_value(&report).unwrap(),
        serde_json::to_value(&report2).unwrap()
    );

    // A database that holds data is refused.
    let refused = demo::generate(&store, &DemoOptions::new(13, 7, end())).await;
    assert!(
        matches!(&refused, Err(DemoError::NotEmpty { .. })),
        "{refused:?}"
    );
}

fn store_in(dir: &tempfile::TempDir, name: &str) -> Arc<dyn Store> {
    store(dir.path(), name)
}

#[test]
fn the_report_names_a_workflow_with_no_handoffs() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "empty.db");
    let window = Window {
        since: common::ts("2026-01-01T00:00:00Z"),
        now: end(),
        workflow: Some("Sales to Delivery".into()),
    };
    let err = health::report(s.as_ref(), &window, &Targets::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("no handoffs of workflow \"Sales to Delivery\""),
        "{err}"
    );
    let all = Window {
        workflow: None,
        ..window
    };
    let report = health::report(s.as_ref(), &all, &Targets::default()).unwrap();
    assert!(report.findings.is_empty() && report.workflows.is_empty());
    assert_eq!(report.timezone, "UTC");
}

/// A workflow that had handoffs, none of them in a short window nor open:
/// its section is empty, not an error saying the database has none.
#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_quiet_in_the_window_is_an_empty_section() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), "quiet.db");
    let set = rules();
    let won = json!({"name": "Acme", "stage": "Closed Won", "owner": "sam@example.com",
                     "scope": "Setup"});
    send(&store, &set, "2026-10-01T10:00:00Z", "D-1", won).await;
    let kicked = json!({"kicked_off_at": "2026-10-02T10:00:00Z"});
    send(&store, &set, "2026-10-02T10:00:00Z", "D-1", kicked).await;
    let window = Window {
        since: common::ts("2026-11-20T00:00:00Z"),
        now: end(),
        workflow: Some("Won".into()),
    };
    let report = health::report(store.as_ref(), &window, &Targets::default())
        .expect("a quiet week is no error");
    assert!(
        report.workflows.iter().all(|w| w.totals.started == 0),
        "{:?}",
        report.workflows
    );
    // A name that never had a handoff is still named as unknown.
    let unknown = Window {
        workflow: Some("Lost".into()),
        ..window
    };
    let err = health::report(store.as_ref(), &unknown, &Targets::default()).unwrap_err();
    assert!(
        err.to_string().contains("no handoffs of workflow \"Lost\""),
        "{err}"
    );
}

#[test]
fn health_targets_come_from_the_config_file() {
    use handoff::runtime::{Overrides, Settings};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("handoff.toml");
    std::fs::write(
        &file,
        "db = \"h.db\"\n[health]\nlead_time_business_days = 1.5\nstuck_after_days = 3\n",
    )
    .unwrap();
    let flags = Overrides {
        config: Some(file.clone()),
        ..Overrides::default()
    };
    let s = Settings::load_with(&flags, |_| None).unwrap();
    assert_eq!(s.health.lead_time_business_days, 1.5);
    assert_eq!(s.health.stuck_after_days, 3.0);
    assert_eq!(s.health.completeness, Targets::default().completeness);
    // A misspelled target is named, not ignored.
    std::fs::write(&file, "[health]\nlead_time = 1\n").unwrap();
    let err = Settings::load_with(&flags, |_| None).unwrap_err();
    assert!(err.to_string().contains("lead_time"), "{err}");
}
