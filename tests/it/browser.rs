//! Acceptance 1 of the web pages: a real headless Chromium, driven through
//! WebDriver (Debian's `chromium-driver`), against the real `handoff serve`
//! on a `handoff demo` db (a quarter of handoffs). It signs in, checks that the
//! dashboard's charts were drawn with data points, opens a handoff in
//! review, approves it, answers a brief question, and sees both on the page
//! and in the JSON API. Screenshots go to `docs/screenshots/`.
//!
//! WebDriver is plain JSON over HTTP, so the few commands used here are
//! sent with reqwest (already a dev-dependency) rather than a client crate.
//! Without chromedriver the test fails under `CI=true` and says how to
//! install it otherwise.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value as J};

use crate::helpers::{start_binary_in, workspace, BOUND};

const TOKEN: &str = "browser-test-token-93ad";
const ANA: &str = "ana-browser-token-11f0";

/// A WebDriver session.
struct Driver {
    http: reqwest::Client,
    base: String,
}

impl Driver {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<J>) -> J {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = r.status();
        let j: J = r.json().await.expect("WebDriver answers JSON");
        assert!(status.is_success(), "{path}: {status} {j}");
        j["value"].clone()
    }
    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }
    async fn find_all(&self, css: &str) -> Vec<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e.as_object()
                    .and_then(|o| o.values().next())
                    .and_then(J::as_str)
                    .unwrap()
                    .to_string()
            })
            .collect()
    }
    async fn find(&self, css: &str) -> String {
        let all = self.find_all(css).await;
        all.into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element {css}"))
    }
    async fn type_in(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }
    async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await;
    }
    async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }
    /// The page source once it contains `needle`: a click on a form's
    /// button returns before the browser has loaded the answer, so the
    /// new page is waited for (every 50 ms, at most [`BOUND`]).
    async fn wait_for(&self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + BOUND;
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tick.tick().await;
            let src = self.source().await;
            if src.contains(needle) {
                return src;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the page never showed {needle:?}: {src}"
            );
        }
    }
    async fn current_url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }
    async fn screenshot(&self, to: &Path) {
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, png).unwrap();
    }
}

fn chromedriver() -> Option<PathBuf> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/lib/chromium/chromium"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A free port on loopback (chromedriver takes a port, not a socket).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_signs_in_sees_the_charts_approves_and_answers_in_a_real_browser() {
    let (Some(driver_bin), Some(browser_bin)) = (chromedriver(), chromium()) else {
        let msg = "the browser test needs Debian's chromium and chromium-driver: \
                   apt-get install -y chromium chromium-driver";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("SKIPPED: {msg}");
        return;
    };

    // A quarter of handoffs from `handoff demo` (the real ingest path).
    let ws = workspace();
    let db = ws.path().join("handoff.db");
    let demo = std::process::Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["demo", "--db"])
        .arg(&db)
        .current_dir(ws.path())
        .env_remove("HANDOFF_CONFIG")
        .output()
        .expect("handoff demo runs");
    assert!(demo.status.success(), "{demo:?}");
    let db_arg = db.display().to_string();
    let app = start_binary_in(
        ws,
        &["--db", &db_arg],
        &[("HANDOFF_API_TOKEN", TOKEN), ("HANDOFF_TOKEN_ANA", ANA)],
    )
    .await
    .expect("serve starts");

    // chromedriver on a port of its own, waited for with a bound.
    let port = free_port();
    let mut child = tokio::process::Command::new(&driver_bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + BOUND;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        let ready = match http.get(format!("{base}/status")).send().await {
            Ok(r) => r
                .json::<J>()
                .await
                .ok()
                .is_some_and(|j| j["value"]["ready"] == true),
            Err(_) => false,
        };
        if ready {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver never got ready"
        );
    }
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": browser_bin.display().to_string(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1800"]
        }
    }}});
    let created: J = http
        .post(format!("{base}/session"))
        .json(&caps)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sid = created["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {created}"))
        .to_string();
    let d = Driver {
        http: http.clone(),
        base: format!("{base}/session/{sid}"),
    };
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");

    // Unsigned, the dashboard sends the browser to sign in.
    d.go(&app.url("/")).await;
    assert!(
        d.current_url().await.contains("/signin"),
        "{}",
        d.current_url().await
    );
    d.type_in("#who", "whoever").await;
    d.type_in("#token", ANA).await;
    d.click("form[action='/signin'] button[type=submit]").await;
    d.wait_for("Signed in as ana").await;
    assert_eq!(d.current_url().await, app.url("/"));

    // The charts were drawn with data points.
    let src = d.source().await;
    assert!(src.contains("Signed in as ana"), "{src}");
    let charts = d.find_all("svg.chart").await;
    assert!(charts.len() >= 2, "{} charts", charts.len());
    let points = d.find_all("svg.chart .point").await;
    assert!(
        points.len() >= 20,
        "only {} data points drawn",
        points.len()
    );
    let lines = d.find_all("svg.chart polyline").await;
    assert!(!lines.is_empty());
    d.screenshot(&shots.join("dashboard.png")).await;

    // A handoff in review: approve it with a note.
    d.go(&app.url("/handoffs?status=review")).await;
    d.click("main table a").await;
    let page_url = d.current_url().await;
    let id = page_url.rsplit('/').next().unwrap().to_string();
    assert!(d.source().await.contains("Approve"));
    d.type_in("#note", "Scope matches the SOW").await;
    d.click("button[value=approve]").await;
    d.wait_for("status proceeded").await;
    assert_eq!(d.current_url().await, page_url);
    let src = d.source().await;
    assert!(
        src.contains("status proceeded"),
        "not proceeded on the page"
    );
    assert!(src.contains("Scope matches the SOW"));

    // Answer the first brief question.
    d.type_in("#answer-0", "They care about launching before the holidays")
        .await;
    d.click("form[action$='/answers'] button[type=submit]")
        .await;
    let src = d
        .wait_for("They care about launching before the holidays")
        .await;
    assert!(src.contains("They care about launching before the holidays"));
    assert!(src.contains("Answered by ana"));
    d.screenshot(&shots.join("handoff.png")).await;

    // Both are in the JSON API, at the same URL.
    let j: J = app
        .client
        .get(app.url(&format!("/handoffs/{id}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(j["status"], "proceeded");
    let approval = j["history"].as_array().unwrap().last().unwrap();
    assert_eq!(approval["by"]["person"], "ana");
    assert_eq!(approval["note"], "Scope matches the SOW");
    assert_eq!(
        j["brief_answers"][0]["answer"],
        "They care about launching before the holidays"
    );
    assert_eq!(j["brief_answers"][0]["who"], "ana");

    let _ = http.delete(format!("{base}/session/{sid}")).send().await;
    let _ = child.kill().await;
    let stopped = app.stop().await;
    assert!(stopped.status.success(), "{stopped:?}");
}
