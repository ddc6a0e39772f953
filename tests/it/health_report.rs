//! `GET /health`, `POST /handoffs/{id}/escalations` over real HTTP, and the
//! `handoff demo` then `handoff health` commands of the real binary.

use handoff::runtime::secret::Secret;
use serde_json::{json, Value as J};

use crate::helpers::{spawn_app_with, TestApp};

const TOKEN: &str = "health-test-token";

fn won(record: &str) -> J {
    json!({"id": format!("e-{record}"), "object": "deal", "record_id": record,
           "occurred_at": "2026-11-20T15:04:05Z",
           "record": {"name": format!("Deal {record}"), "stage": "Closed Won",
               "owner": "sam@example.com", "amount": 8000, "segment": "smb",
               "buyer_goals": "Launch by January", "main_contact": "li@beta.example",
               "signed_scope": "https://docs.example/sow", "start_date": "2026-12-14",
               "promised_deliverables": ["Setup"], "pricing_exceptions": "None",
               "kickoff_preference": "Async first", "risk_notes": "none"},
           "previous": {"stage": "Proposal"}})
}

async fn app() -> TestApp {
    spawn_app_with(|s| s.secrets.api_token = Some(Secret::new(TOKEN))).await
}

async fn post(app: &TestApp, path: &str, body: &J, token: bool) -> reqwest::Response {
    let mut req = app.client.post(app.url(path)).json(body);
    if token {
        req = req.bearer_auth(TOKEN);
    }
    req.send().await.expect("the server answers")
}

#[tokio::test(flavor = "multi_thread")]
async fn escalations_are_recorded_and_counted_by_get_health() {
    let app = app().await;
    let res = post(&app, "/hooks/generic", &won("D-1"), true).await;
    assert!(res.status().is_success(), "{}", res.status());
    let list: J = app.get("/handoffs").await.json().await.unwrap();
    let id = list["handoffs"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(list["handoffs"][0]["status"], "proceeded");

    // The token is needed, `who` is needed, the handoff must exist.
    let path = format!("/handoffs/{id}/escalations");
    let note = json!({"who": "ana@example.com", "note": "what was promised about training?"});
    assert_eq!(post(&app, &path, &note, false).await.status(), 401);
    let nobody = json!({"who": " ", "note": "x"});
    assert_eq!(post(&app, &path, &nobody, true).await.status(), 400);
    let missing = post(&app, "/handoffs/no-such-id/escalations", &note, true).await;
    assert_eq!(missing.status(), 404);

    let res = post(&app, &path, &note, true).await;
    assert_eq!(res.status(), 201);
    let body: J = res.json().await.unwrap();
    assert_eq!(body["handoff"], id.as_str());

    // Kept in the handoff's notes, as the audit trail.
    let one: J = app
        .get(&format!("/handoffs/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let notes = one["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["kind"], "escalation");
    assert_eq!(notes[0]["who"], "ana@example.com");

    // The report counts it (the handoff started within the default 8 weeks
    // only if the clock is near 2026-11-20, so ask for enough weeks).
    assert_eq!(app.get_anonymous("/health").await.status(), 401);
    let res = app.get("/health?since=520w").await;
    assert_eq!(res.status(), 200);
    let report: J = res.json().await.unwrap();
    let deals = report["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["workflow"] == "Sales to Delivery")
        .expect("the workflow's section");
    assert_eq!(deals["totals"]["started"], 1);
    assert_eq!(deals["totals"]["escalated"], 1);
    assert_eq!(
        deals["escalation_reasons"][0]["name"],
        "what was promised about training?"
    );
    assert_eq!(report["timezone"], "America/New_York");

    // Bad arguments are named.
    let res = app.get("/health?since=eight").await;
    assert_eq!(res.status(), 400);
    let res = app.get("/health?since=8w&workflow=Nope").await;
    assert_eq!(res.status(), 404);
    let body: J = res.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("\"Nope\""),
        "{body}"
    );
}

#[test]
fn demo_then_health_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let bin = env!("CARGO_BIN_EXE_handoff");
    let out = std::process::Command::new(bin)
        .current_dir(dir.path())
        .args(["demo", "--db"])
        .arg(&db)
        .args(["--weeks", "13", "--seed", "3"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("wrote ") && stdout.contains("Closed-Won"),
        "{stdout}"
    );

    let out = std::process::Command::new(bin)
        .current_dir(dir.path())
        .args(["health", "--db"])
        .arg(&db)
        .args(["--since", "14w"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Findings first, then the tables.
    let findings = text.find("Findings").expect("a findings section");
    let table = text.find("Sales to Delivery (deal)").expect("a table");
    assert!(findings < table, "{text}");
    assert!(text.contains("stage value `Closed-Won` arrived"), "{text}");
    assert!(
        text.contains("`risk_notes` is the field most often missing"),
        "{text}"
    );
    assert!(text.contains("Since the rules changed on"), "{text}");

    let out = std::process::Command::new(bin)
        .current_dir(dir.path())
        .args([
            "health",
            "--format",
            "json",
            "--workflow",
            "Marketing to Sales",
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: J = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["workflows"].as_array().unwrap().len(), 1);
    // Only its object's data-quality problems: not the deals' `Closed-Won`.
    let issues = report["data_quality"].as_array().unwrap();
    assert!(issues.iter().all(|i| i["object"] == "lead"), "{issues:#?}");

    // A second demo into the same file is refused; a missing file is named.
    let out = std::process::Command::new(bin)
        .current_dir(dir.path())
        .args(["demo", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fresh database"));
    let out = std::process::Command::new(bin)
        .current_dir(dir.path())
        .args(["health", "--db", "nowhere.db"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("handoff demo --db nowhere.db"));
}

/// `health`, `outbox` and `demo` read no secret: run by someone who may not
/// read the server's token files (here: files that are not there at all),
/// they work, where `serve` would refuse to start.
#[test]
fn read_only_commands_do_not_read_the_servers_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("handoff.toml"),
        "db = \"h.db\"\n[people.\"ana@example.com\"]\ntoken_file = \"secrets/ana.token\"\n",
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_handoff");
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .current_dir(dir.path())
            .args(args)
            .env(
                "HANDOFF_API_TOKEN_FILE",
                dir.path().join("secrets/api.token"),
            )
            .output()
            .unwrap()
    };
    for args in [
        &["demo", "--weeks", "2"][..],
        &["health", "--since", "3w"],
        &["outbox", "list"],
    ] {
        let out = run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        dir.path().join("h.db").is_file(),
        "demo wrote the config's db"
    );
    // The server itself still reads them, and names the missing file.
    let flags = handoff::runtime::Overrides {
        config: Some(dir.path().join("handoff.toml")),
        ..Default::default()
    };
    let err = handoff::runtime::Settings::load_with(&flags, |_| None).unwrap_err();
    assert!(err.to_string().contains("ana.token"), "{err}");
}
