//! The harness: [`spawn_app`] starts the server in this process on
//! 127.0.0.1:0 with its own temporary folder (a copy of the bundled
//! workflows, and the database path), and returns a [`TestApp`] with typed
//! helpers; [`BinApp`] starts the real `handoff serve` binary the same way.
//!
//! Nothing here sleeps: reloads are awaited on the server's status channel
//! (in process) or by polling `/workflows` (the binary), always with a bound.
//! Logs are discarded unless `TEST_LOG` is set.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Once};
use std::time::Duration;

use handoff::runtime::http::workflows::WorkflowsView;
use handoff::runtime::reload::ReloadStatus;
use handoff::runtime::state::AppState;
use handoff::runtime::{ServeError, Server, Settings};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long any wait in these tests may take before the test fails.
pub const BOUND: Duration = Duration::from_secs(20);

/// Logs to stderr when `TEST_LOG` is set (once per test binary).
fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("debug")
                .with_test_writer()
                .try_init();
        }
    });
}

/// A temporary folder holding `workflows/` (the bundled `.handoff` files).
pub fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    let workflows = dir.path().join("workflows");
    std::fs::create_dir(&workflows).unwrap();
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    for entry in std::fs::read_dir(bundled).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "handoff") {
            std::fs::copy(&path, workflows.join(path.file_name().unwrap())).unwrap();
        }
    }
    dir
}

/// The version id `compile::load` gives the folder: what the server must
/// end up serving.
pub fn version_of(dir: &Path) -> String {
    let (set, _) = handoff::compile::load(&[dir.to_path_buf()]).expect("valid workflows");
    set.version().to_string()
}

/// Saves by writing the file in place (truncate and write).
pub fn save_in_place(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// Saves as editors do: write a temporary file beside it, rename it over.
pub fn save_by_rename(path: &Path, text: &str) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A server running in this process.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    /// The API token the server was given, sent by [`TestApp::get`].
    pub token: Option<String>,
    pub dir: tempfile::TempDir,
    pub state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), ServeError>>>,
}

/// Starts a server with the default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a server after `configure` has adjusted the test settings.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with_users(configure, None).await
}

/// [`spawn_app_with`], giving the outbox worker people's CRM ids.
pub async fn spawn_app_with_users(
    configure: impl FnOnce(&mut Settings),
    users: Option<Arc<dyn handoff::runtime::delivery::UserIds>>,
) -> TestApp {
    spawn_app_in(workspace(), configure, users).await
}

/// [`spawn_app_with_users`] in a prepared folder (its `handoff.db` kept).
async fn spawn_app_in(
    dir: tempfile::TempDir,
    configure: impl FnOnce(&mut Settings),
    users: Option<Arc<dyn handoff::runtime::delivery::UserIds>>,
) -> TestApp {
    init_logs();
    let mut settings = Settings {
        workflows: dir.path().join("workflows"),
        db: dir.path().join("handoff.db"),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Settings::default()
    };
    configure(&mut settings);
    let token = settings
        .secrets
        .api_token
        .as_ref()
        .map(|t| t.expose().to_string());
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .expect("bind 127.0.0.1:0");
    let mut server = Server::build(settings, listener)
        .await
        .expect("the server starts");
    if let Some(users) = users {
        server = server.with_user_ids(users);
    }
    let addr = server.local_addr();
    let state = server.state().clone();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        client: reqwest::Client::new(),
        token,
        dir,
        state,
        shutdown: Some(tx),
        server: Some(handle),
    }
}

impl TestApp {
    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A file in the workflows folder.
    pub fn workflow(&self, name: &str) -> PathBuf {
        self.dir.path().join("workflows").join(name)
    }

    /// GET with the API token (when the server has one).
    pub async fn get(&self, path: &str) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("the server answers")
    }

    /// POST `body` (a JSON text) to `/hooks/generic`, unsigned.
    pub async fn post_generic(&self, body: String) -> reqwest::Response {
        self.client
            .post(self.url("/hooks/generic"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the server answers")
    }

    /// GET with no Authorization header.
    pub async fn get_anonymous(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("the server answers")
    }

    /// `GET /workflows`, decoded.
    pub async fn workflows(&self) -> WorkflowsView {
        let res = self.get("/workflows").await;
        assert_eq!(res.status(), 200);
        res.json().await.expect("a WorkflowsView")
    }

    /// The reload status now.
    pub fn status(&self) -> ReloadStatus {
        self.state.workflows.status().borrow().clone()
    }

    /// Waits (at most [`BOUND`]) until the reload status satisfies `done`.
    pub async fn wait_for_status(&self, done: impl FnMut(&ReloadStatus) -> bool) -> ReloadStatus {
        let mut rx = self.state.workflows.status();
        let waited = tokio::time::timeout(BOUND, rx.wait_for(done)).await;
        match waited {
            Ok(Ok(status)) => status.clone(),
            Ok(Err(_)) => panic!("the server stopped"),
            Err(_) => panic!(
                "no such reload within {BOUND:?}; status: {:?}",
                self.status()
            ),
        }
    }

    /// Stops the server as SIGTERM would and returns what `run` returned.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        self.stop_keeping_dir().await.0
    }

    /// Stops the server and starts another on the same folder and database
    /// (on a new port), configured by `configure`.
    pub async fn restart(self, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let (stopped, dir) = self.stop_keeping_dir().await;
        stopped.expect("the server stops cleanly");
        spawn_app_in(dir, configure, None).await
    }

    async fn stop_keeping_dir(mut self) -> (Result<(), ServeError>, tempfile::TempDir) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let handle = self.server.take().expect("running");
        let stopped = tokio::time::timeout(BOUND, handle)
            .await
            .expect("the server stops in time")
            .expect("the server task did not panic");
        (stopped, self.dir)
    }
}

/// The real `handoff serve`, started in a temporary folder.
pub struct BinApp {
    pub base: String,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
    child: tokio::process::Child,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
}

/// What a stopped binary left.
#[derive(Debug)]
pub struct Stopped {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Every variable the server reads, removed from the child's environment
/// so the developer's own settings cannot leak into a test.
const SERVER_VARS: &[&str] = &[
    "HANDOFF_CONFIG",
    "HANDOFF_WORKFLOWS",
    "HANDOFF_DB",
    "HANDOFF_LISTEN",
    "HANDOFF_SYNCHRONOUS",
    "HANDOFF_MAX_BODY_BYTES",
    "HANDOFF_MAX_IN_FLIGHT",
    "HANDOFF_LOG_FORMAT",
    "HANDOFF_PUBLIC_URL",
    "HANDOFF_WATCH",
    "HANDOFF_TRUSTED_PROXIES",
    "HANDOFF_API_TOKEN",
    "HANDOFF_GENERIC_SECRET",
    "HANDOFF_HUBSPOT_CLIENT_SECRET",
    "HANDOFF_PIPEDRIVE_USER",
    "HANDOFF_PIPEDRIVE_PASSWORD",
    "HANDOFF_HUBSPOT_TOKEN",
    "HANDOFF_PIPEDRIVE_API_TOKEN",
    "HANDOFF_OUTBOUND_SECRET",
    "HANDOFF_SLACK_WEBHOOK_URL",
    "RUST_LOG",
];

fn command(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_handoff"));
    cmd.arg("serve")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for var in SERVER_VARS {
        cmd.env_remove(var);
        cmd.env_remove(format!("{var}_FILE"));
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

fn read_all(mut from: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> JoinHandle<String> {
    tokio::spawn(async move {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes).await;
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Starts `handoff serve ARGS… --listen 127.0.0.1:0` (unless ARGS has a
/// `--listen`) in a fresh workspace
/// (its current folder) and waits for its `listening on` line. When the
/// binary exits instead, returns what it left.
pub async fn start_binary(args: &[&str], envs: &[(&str, &str)]) -> Result<BinApp, Stopped> {
    start_binary_in(workspace(), args, envs).await
}

/// [`start_binary`] in a prepared folder.
pub async fn start_binary_in(
    dir: tempfile::TempDir,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Result<BinApp, Stopped> {
    let mut all = args.to_vec();
    if !args.contains(&"--listen") {
        all.extend(["--listen", "127.0.0.1:0"]);
    }
    let mut child = command(dir.path(), &all, envs)
        .spawn()
        .expect("the binary starts");
    let stderr = read_all(child.stderr.take().unwrap());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(BOUND, lines.next_line())
        .await
        .expect("the binary prints a line or exits in time");
    let addr = match first {
        Ok(Some(line)) => line
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string(),
        _ => {
            let status = tokio::time::timeout(BOUND, child.wait())
                .await
                .expect("the binary exits in time")
                .unwrap();
            return Err(Stopped {
                status,
                stdout: String::new(),
                stderr: stderr.await.unwrap(),
            });
        }
    };
    let stdout = tokio::spawn(async move {
        let mut rest = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    });
    Ok(BinApp {
        base: format!("http://{addr}"),
        dir,
        client: reqwest::Client::new(),
        child,
        stdout,
        stderr,
    })
}

impl BinApp {
    /// `http://ADDR/path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A file in the workflows folder.
    pub fn workflow(&self, name: &str) -> PathBuf {
        self.dir.path().join("workflows").join(name)
    }

    /// Sends a signal (`libc::SIGTERM`, `libc::SIGHUP`) to the server.
    pub fn signal(&self, signal: i32) {
        let pid = self.child.id().expect("the binary is running");
        // SAFETY: kill(2) with the pid of our own child; no memory involved.
        let rc = unsafe { libc::kill(pid as i32, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Polls `GET /workflows` (with `token`) every 20 ms until `done`
    /// holds, failing after [`BOUND`]: another process's state can only be
    /// polled.
    pub async fn wait_for_workflows(
        &self,
        token: Option<&str>,
        mut done: impl FnMut(&WorkflowsView) -> bool,
    ) -> WorkflowsView {
        let deadline = tokio::time::Instant::now() + BOUND;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            let mut req = self.client.get(self.url("/workflows"));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let view: WorkflowsView = req.send().await.unwrap().json().await.unwrap();
            if done(&view) {
                return view;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "condition not met within {BOUND:?}; last: {view:?}"
            );
        }
    }

    /// Kills the server with SIGKILL (no chance to finish anything), waits
    /// for it, and gives back its folder (the database is in it) for a
    /// restart with [`start_binary_in`].
    pub async fn kill(mut self) -> (tempfile::TempDir, Stopped) {
        // tokio's start_kill sends SIGKILL on unix.
        self.child.start_kill().expect("the binary can be killed");
        let status = tokio::time::timeout(BOUND, self.child.wait())
            .await
            .expect("the binary exits in time after SIGKILL")
            .unwrap();
        let stopped = Stopped {
            status,
            stdout: self.stdout.await.unwrap(),
            stderr: self.stderr.await.unwrap(),
        };
        (self.dir, stopped)
    }

    /// Sends SIGTERM and waits for the exit and every byte of output.
    pub async fn stop(self) -> Stopped {
        self.stop_keeping_dir().await.1
    }

    /// [`BinApp::stop`], giving back the folder (to read the database).
    pub async fn stop_keeping_dir(mut self) -> (tempfile::TempDir, Stopped) {
        self.signal(libc::SIGTERM);
        let status = tokio::time::timeout(BOUND, self.child.wait())
            .await
            .expect("the binary exits in time after SIGTERM")
            .unwrap();
        let stopped = Stopped {
            status,
            stdout: self.stdout.await.unwrap(),
            stderr: self.stderr.await.unwrap(),
        };
        (self.dir, stopped)
    }
}
