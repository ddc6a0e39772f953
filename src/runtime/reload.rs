//! Hot reload: the workflows folder, compiled, swapped whole while the
//! server runs.
//!
//! [`Workflows`] holds the active version in an `ArcSwap<Active>`: a request
//! takes a [`Lease`] on it once and decides with it, however many reloads
//! happen meanwhile (the new version's orphan sweep waits for the leases
//! of earlier ones). A reload reads every `.handoff` file once
//! (`project::load`), then checks and compiles what it read on a blocking
//! thread (`compile::load_sources`), so the request path never waits for a
//! compile. A valid result replaces the active version; an invalid one is
//! logged with its diagnostics, shown by `GET /workflows`, and changes
//! nothing else: the last good version keeps serving.
//!
//! The [`Watcher`] watches the DIRECTORY, not the files: editors save by
//! writing a temporary file and renaming it over the old one, which a watch
//! on the old file would miss. Bursts of events (one save is several) are
//! debounced: a reload starts after [`DEBOUNCE`] without a new event.
//! SIGHUP calls [`Workflows::reload`] too (see `serve`).
//!
//! Tests and the store wait on [`Workflows::status`], a watch channel of
//! the active version and the reload counters, instead of sleeping; after
//! each swap the [`OnActivate`] hooks run (the store persists the version
//! and marks instances of removed workflows as orphaned).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};

use super::metrics::Metrics;
use crate::compile::{self, LoadFailure, WorkflowSet};
use crate::diagnostic::{Diagnostic, Severity, SourceFile};
use crate::report;

mod lease;

pub use lease::Lease;

/// How long the folder must stay quiet before a reload starts.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// The longest a reload waits for quiet: a file rewritten continuously
/// still gets reloaded this often.
const MAX_DEBOUNCE: Duration = Duration::from_millis(500);

/// One version of the workflows and where it came from.
#[derive(Debug, Clone)]
pub struct Active {
    /// The compiled rules (its `version()` is a hash of the files' text).
    pub set: WorkflowSet,
    /// The files it was compiled from, with their text as read.
    pub files: Arc<[Arc<SourceFile>]>,
    /// Warnings of the check (the version loaded anyway).
    pub warnings: Arc<[Diagnostic]>,
    /// When this version became active.
    pub loaded_at: jiff::Timestamp,
    /// The last edit rejected since this version became active, if any.
    pub rejected: Option<Arc<Rejected>>,
    /// Versions activated by reloads since start-up, this one included
    /// (kept here so one snapshot gives a consistent view).
    pub reloads: u64,
    /// Edits rejected since start-up.
    pub rejected_reloads: u64,
}

/// An edit that was refused.
#[derive(Debug)]
pub struct Rejected {
    /// When the reload was attempted.
    pub at: jiff::Timestamp,
    /// How many problems (errors, or files that could not be read).
    pub problems: usize,
    /// The diagnostics as `handoff check` prints them, without colour.
    pub report: String,
}

/// What the active version is, and how many reloads happened: sent on
/// [`Workflows::status`] after every reload attempt that changed something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadStatus {
    /// The active version id, once everything decided under earlier
    /// versions has committed and the `activated` hooks have run (the
    /// store's orphans are marked).
    pub version: String,
    /// The version new requests take: set at the swap, before the
    /// version's hooks run (`version` follows).
    pub serving: String,
    /// Versions activated by a reload (the initial load is not counted).
    pub reloads: u64,
    /// Edits rejected.
    pub rejected: u64,
}

/// What one reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// A new version is active.
    Activated { version: String },
    /// The files are the same as at the last attempt: nothing to do.
    Unchanged,
    /// The files have problems; the last good version stays.
    Rejected { problems: usize },
    /// The files are valid but could not be kept (the store failed); the
    /// last version stays, and the same files are tried again next time
    /// ([`retry_not_kept`] makes a next time).
    NotKept { reason: String },
}

/// A boxed future, for the hook trait to stay object safe.
pub type BoxFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A boxed future answering whether a version may serve.
pub type BoxCheck<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Called around a version becoming active (at start-up too), in the order
/// the hooks were given.
pub trait OnActivate: Send + Sync {
    /// Before `active` serves. The store saves the version's text here, so
    /// no decision can name a version whose text was not kept. An error
    /// keeps the version serving now (at start-up: the server does not
    /// start); the reload is tried again every few seconds by
    /// [`retry_not_kept`] (in `serve`), and at the folder's next change or
    /// SIGHUP.
    fn activating(&self, _active: Arc<Active>) -> BoxCheck<'_> {
        Box::pin(async { Ok(()) })
    }

    /// `active` is now serving. A hook that fails here should log and
    /// return (the swap has happened).
    fn activated(&self, active: Arc<Active>) -> BoxFuture<'_>;

    /// Why workflows that compiled cannot serve all the same (what the
    /// server was configured with does not fit them), one line each; the
    /// edit is then rejected as one with errors is (at start-up, the server
    /// does not start). Empty by default.
    fn problems(&self, _set: &WorkflowSet) -> Vec<String> {
        Vec::new()
    }
}

/// Every hook's [`OnActivate::problems`] with `set`, as a report: how many,
/// and one `error:` line each.
fn problems_of(hooks: &[Arc<dyn OnActivate>], set: &WorkflowSet) -> Option<(usize, String)> {
    let problems: Vec<String> = hooks.iter().flat_map(|h| h.problems(set)).collect();
    (!problems.is_empty()).then(|| {
        let report = problems.iter().map(|p| format!("error: {p}\n")).collect();
        (problems.len(), report)
    })
}

/// Why the workflows could not be loaded at start-up.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InitialLoadError {
    /// The files have problems.
    #[error(
        "the workflows in `{dir}` cannot be loaded ({problems} problem(s)); the server did not start"
    )]
    #[diagnostic(
        code(serve::workflows),
        help("fix the problems above (`handoff check {dir}` shows them too), or point --workflows at another folder")
    )]
    Invalid {
        /// The folder.
        dir: String,
        /// How many problems.
        problems: usize,
        /// The diagnostics, rendered without colour.
        report: String,
    },
    /// A hook refused the version (the store could not keep its text).
    #[error("the workflows in `{dir}` could not be kept before serving: {reason}; the server did not start")]
    #[diagnostic(
        code(serve::workflows_not_kept),
        help("every decision names the workflow version it used, so its text is saved first: check the database (disk space, permissions, `handoff serve --db`) and start again")
    )]
    NotKept {
        /// The folder.
        dir: String,
        /// The hook's reason.
        reason: String,
    },
}

/// The active workflows of a server, and the way to reload them.
pub struct Workflows {
    dir: PathBuf,
    active: ArcSwap<Active>,
    status: watch::Sender<ReloadStatus>,
    hooks: Vec<Arc<dyn OnActivate>>,
    metrics: Arc<Metrics>,
    /// Held for a whole reload, so two reloads (a file event and SIGHUP)
    /// never interleave and an older read never replaces a newer one. It
    /// also keeps the digest of what the last attempt read.
    reloading: tokio::sync::Mutex<[u8; 32]>,
    /// Set while the last reload's version could not be kept: then
    /// [`retry_not_kept`] tries again without waiting for a change.
    not_kept: std::sync::atomic::AtomicBool,
    /// Who still decides under which version (see [`Lease`]).
    leases: Arc<lease::Leases>,
}

impl std::fmt::Debug for Workflows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workflows")
            .field("dir", &self.dir)
            .field("version", &self.active.load().set.version())
            .finish_non_exhaustive()
    }
}

/// What reading the folder gave.
struct Read {
    sources: Vec<Arc<SourceFile>>,
    /// Files that could not be read, rendered.
    errors: Vec<String>,
    digest: [u8; 32],
}

fn read_folder(dir: &Path) -> Read {
    let loaded = crate::project::load(&[dir.to_path_buf()]);
    let errors: Vec<String> = loaded
        .errors
        .iter()
        .map(report::render_load_error_plain)
        .collect();
    let mut hash = Sha256::new();
    for s in &loaded.sources {
        hash.update(s.name.as_bytes());
        hash.update([0]);
        hash.update((s.text.len() as u64).to_le_bytes());
        hash.update(s.text.as_bytes());
    }
    for e in &errors {
        hash.update(e.as_bytes());
    }
    Read {
        sources: loaded.sources,
        errors,
        digest: hash.finalize().into(),
    }
}

/// Checks and compiles on a blocking thread.
async fn compile_off_thread(
    sources: Vec<Arc<SourceFile>>,
) -> Result<(WorkflowSet, Vec<Diagnostic>, Vec<Arc<SourceFile>>), (usize, String)> {
    let joined = tokio::task::spawn_blocking(move || {
        compile::load_sources(&sources).map(|(set, warnings)| (set, warnings, sources))
    })
    .await;
    match joined {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(LoadFailure::Invalid(diagnostics))) => {
            let errors: Vec<&Diagnostic> = diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .collect();
            let text = errors.iter().map(|d| report::render_plain(d)).collect();
            Err((errors.len(), text))
        }
        Ok(Err(other)) => Err((1, format!("{other}\n"))),
        // The compile panicked (a bug): refuse the edit, keep serving.
        Err(e) => Err((1, format!("the compiler failed on these files: {e}\n"))),
    }
}

impl Workflows {
    /// Loads the folder for the first time. Invalid workflows are an error:
    /// a server with no good version has nothing to serve. The hooks run
    /// once for this first version.
    pub async fn load(
        dir: PathBuf,
        metrics: Arc<Metrics>,
        hooks: Vec<Arc<dyn OnActivate>>,
    ) -> Result<Arc<Workflows>, InitialLoadError> {
        let read = read_folder(&dir);
        let shown = dir.display().to_string();
        if !read.errors.is_empty() {
            return Err(InitialLoadError::Invalid {
                dir: shown,
                problems: read.errors.len(),
                report: read.errors.concat(),
            });
        }
        let (set, warnings, sources) =
            compile_off_thread(read.sources)
                .await
                .map_err(|(problems, report)| InitialLoadError::Invalid {
                    dir: shown.clone(),
                    problems,
                    report,
                })?;
        if let Some((problems, report)) = problems_of(&hooks, &set) {
            return Err(InitialLoadError::Invalid {
                dir: shown,
                problems,
                report,
            });
        }
        let active = Arc::new(Active {
            set,
            files: sources.into(),
            warnings: warnings.into(),
            loaded_at: jiff::Timestamp::now(),
            rejected: None,
            reloads: 0,
            rejected_reloads: 0,
        });
        for hook in &hooks {
            if let Err(reason) = hook.activating(active.clone()).await {
                return Err(InitialLoadError::NotKept { dir: shown, reason });
            }
        }
        metrics
            .workflows_loaded_at
            .set(active.loaded_at.as_second());
        let (status, _) = watch::channel(ReloadStatus {
            version: active.set.version().to_string(),
            serving: active.set.version().to_string(),
            reloads: 0,
            rejected: 0,
        });
        let workflows = Arc::new(Workflows {
            dir,
            active: ArcSwap::new(active.clone()),
            status,
            hooks,
            metrics,
            reloading: tokio::sync::Mutex::new(read.digest),
            not_kept: Default::default(),
            leases: Default::default(),
        });
        for hook in &workflows.hooks {
            hook.activated(active.clone()).await;
        }
        Ok(workflows)
    }

    /// The version serving now, to show (a page, `GET /workflows`). To
    /// decide with it, take a [`Workflows::lease`] instead.
    pub fn active(&self) -> Arc<Active> {
        self.active.load_full()
    }

    /// The version serving now, to decide with: take it once per request
    /// and keep it until the request's write job is queued. A reload's
    /// `activated` hooks (the orphan sweep) wait until every lease of an
    /// earlier version is released.
    pub fn lease(&self) -> Lease {
        self.leases.take(&self.active)
    }

    /// The folder watched.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A receiver of the active version and the reload counters: wait on it
    /// with `wait_for` instead of sleeping.
    pub fn status(&self) -> watch::Receiver<ReloadStatus> {
        self.status.subscribe()
    }

    /// Reads the folder again and activates it if it is valid.
    pub async fn reload(&self) -> Reload {
        let mut last = self.reloading.lock().await;
        // Whatever this attempt finds decides whether a retry is due.
        self.not_kept.store(false, Ordering::Relaxed);
        let read = read_folder(&self.dir);
        if read.digest == *last {
            return Reload::Unchanged;
        }
        let before = std::mem::replace(&mut *last, read.digest);

        let compiled = if read.errors.is_empty() {
            compile_off_thread(read.sources).await.and_then(|done| {
                match problems_of(&self.hooks, &done.0) {
                    Some(rejected) => Err(rejected),
                    None => Ok(done),
                }
            })
        } else {
            Err((read.errors.len(), read.errors.concat()))
        };
        match compiled {
            Ok((set, warnings, sources)) => {
                let current = self.active.load_full();
                if set.version() == current.set.version() {
                    // Back to the text that is serving (an invalid edit
                    // undone): nothing to activate, nothing rejected now.
                    if current.rejected.is_some() {
                        let mut same = (*current).clone();
                        same.rejected = None;
                        self.active.store(Arc::new(same));
                    }
                    return Reload::Unchanged;
                }
                let version = set.version().to_string();
                let active = Arc::new(Active {
                    set,
                    files: sources.into(),
                    warnings: warnings.into(),
                    loaded_at: jiff::Timestamp::now(),
                    rejected: None,
                    reloads: current.reloads + 1,
                    rejected_reloads: current.rejected_reloads,
                });
                for hook in &self.hooks {
                    if let Err(reason) = hook.activating(active.clone()).await {
                        tracing::error!(
                            version = short(&version),
                            error = %reason,
                            "the new workflows could not be kept, so the version serving now stays; the reload is tried again shortly, and at the next change or SIGHUP"
                        );
                        // Not "seen": the same files are tried again.
                        *last = before;
                        self.not_kept.store(true, Ordering::Relaxed);
                        return Reload::NotKept { reason };
                    }
                }
                self.leases.swap(&self.active, active.clone());
                self.status
                    .send_modify(|s| s.serving = active.set.version().to_string());
                self.metrics.reloads.inc();
                self.metrics
                    .workflows_loaded_at
                    .set(active.loaded_at.as_second());
                tracing::info!(
                    version = short(&version),
                    files = active.files.len(),
                    warnings = active.warnings.len(),
                    "workflows reloaded"
                );
                // Requests that leased the previous version may still be
                // deciding with it; the hooks (the orphan sweep) come
                // after their decisions. Bounded by the longest lease: a
                // webhook waiting for a CRM read (`hydrate_deadline_ms`).
                self.leases.settled(active.reloads).await;
                for hook in &self.hooks {
                    hook.activated(active.clone()).await;
                }
                self.status.send_modify(|s| {
                    s.version = version.clone();
                    s.reloads = active.reloads;
                });
                Reload::Activated { version }
            }
            Err((problems, report)) => {
                let current = self.active.load_full();
                let mut kept = (*current).clone();
                kept.rejected = Some(Arc::new(Rejected {
                    at: jiff::Timestamp::now(),
                    problems,
                    report: report.clone(),
                }));
                kept.rejected_reloads += 1;
                let rejected_reloads = kept.rejected_reloads;
                self.active.store(Arc::new(kept));
                self.metrics.reloads_rejected.inc();
                tracing::warn!(
                    version = short(current.set.version()),
                    problems,
                    "workflow edit rejected; the last good version keeps serving:\n{report}"
                );
                self.status.send_modify(|s| s.rejected = rejected_reloads);
                Reload::Rejected { problems }
            }
        }
    }
}

/// The first 12 characters of a version id, as logs show it.
pub fn short(version: &str) -> &str {
    version.get(..12).unwrap_or(version)
}

/// The file watcher: reloads after changes in the folder, until stopped.
///
/// Started before the first load (so a save during start-up is not
/// missed: its event waits in the channel), connected to the loaded
/// [`Workflows`] by [`Watcher::reload_into`].
pub struct Watcher {
    // Dropping the notify watcher stops its events; kept for that.
    _watcher: notify::RecommendedWatcher,
    /// The folder watched, as it was when watching began (see [`follow`]).
    watched: Option<(PathBuf, u64, u64)>,
    changes: Option<mpsc::Receiver<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Watcher {
    /// Starts watching `dir` (recursively, as `project::load` reads it).
    pub fn start(dir: &Path) -> Result<Watcher, notify::Error> {
        use notify::Watcher as _;

        // Capacity 1 and `try_send`: a pending "something changed" already
        // says all there is to say, so further events are dropped here.
        let (tx, rx) = mpsc::channel::<()>(1);
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
                Ok(event) if relevant(&event) => {
                    let _ = tx.try_send(());
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "file watcher error"),
            })?;
        let watched = folder_identity(dir);
        watcher.watch(dir, notify::RecursiveMode::Recursive)?;
        Ok(Watcher {
            _watcher: watcher,
            watched,
            changes: Some(rx),
            task: None,
        })
    }

    /// From now on, changes reload `workflows` (debounced). Needs a tokio
    /// runtime; a second call does nothing.
    pub fn reload_into(&mut self, workflows: Arc<Workflows>) {
        if let Some(rx) = self.changes.take() {
            self.task = Some(tokio::spawn(debounce(rx, workflows)));
        }
    }

    /// Stops watching, letting a reload under way finish: aborted half
    /// way, it could leave the folder's digest marked as seen with its
    /// version never activated.
    fn retire(mut self) {
        // Detached, not aborted: with the notify watcher dropped, its
        // channel closes and the task ends after what it is doing.
        drop(self.task.take());
    }

    /// Stops watching.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Watcher {
    /// A watcher dropped without `stop` (its [`follow`] task aborted)
    /// reloads no more either.
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// How often [`retry_not_kept`] tries again a version the store could
/// not keep (a full disk that was cleared, a lock that went).
pub const RETRY_NOT_KEPT_EVERY: Duration = Duration::from_secs(5);

/// Reloads every `every` while the last reload's version could not be
/// kept, so valid files whose save failed go live once the store takes
/// them, not only at the folder's next change or SIGHUP (which may never
/// come: the author saved once). Runs until aborted.
pub async fn retry_not_kept(workflows: Arc<Workflows>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if workflows.not_kept.load(Ordering::Relaxed) {
            if let Reload::Activated { version } = workflows.reload().await {
                tracing::info!(
                    version = short(&version),
                    "the workflows that could not be kept earlier are now serving"
                );
            }
        }
    }
}

/// How often [`follow`] checks which folder the workflows path names.
pub const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Which folder `dir` names now: its real path and, on Unix, its device
/// and inode (a folder deleted and made again has a new inode). `None`
/// while it does not exist (between a deploy's delete and create).
fn folder_identity(dir: &Path) -> Option<(PathBuf, u64, u64)> {
    let real = std::fs::canonicalize(dir).ok()?;
    let meta = std::fs::metadata(&real).ok()?;
    #[cfg(unix)]
    let (dev, ino) = {
        use std::os::unix::fs::MetadataExt as _;
        (meta.dev(), meta.ino())
    };
    #[cfg(not(unix))]
    let (dev, ino) = {
        let _ = meta;
        (0, 0)
    };
    Some((real, dev, ino))
}

/// Keeps `watcher` on the folder `dir` names, reloading `workflows` on its
/// changes. A deploy may replace the folder or flip a symlink to another
/// release: the watcher would go on watching the old folder and nothing
/// would reload. Every `every` this checks which folder `dir` names; when
/// it changed, it watches the new one and reloads. Runs until aborted
/// (which drops the watcher).
pub async fn follow(
    dir: PathBuf,
    mut watcher: Watcher,
    workflows: Arc<Workflows>,
    every: std::time::Duration,
) {
    watcher.reload_into(workflows.clone());
    let mut seen = watcher.watched.clone();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = folder_identity(&dir);
        if now.is_none() || now == seen {
            continue;
        }
        match Watcher::start(&dir) {
            Ok(mut new) => {
                new.reload_into(workflows.clone());
                seen = new.watched.clone();
                std::mem::replace(&mut watcher, new).retire();
                tracing::info!(
                    dir = %dir.display(),
                    "the workflows folder was replaced: watching the new one"
                );
                workflows.reload().await;
            }
            Err(e) => tracing::warn!(
                error = %e,
                "cannot watch the replaced workflows folder; trying again"
            ),
        }
    }
}

/// Events that can change what the folder holds. Reads (ours included)
/// are not; every other kind is, whatever the file name: a no-op reload is
/// cheap (the digest of the texts is compared first), and the names of
/// temporary and mounted files differ between editors and platforms.
fn relevant(event: &notify::Event) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

async fn debounce(mut rx: mpsc::Receiver<()>, workflows: Arc<Workflows>) {
    while rx.recv().await.is_some() {
        let deadline = tokio::time::Instant::now() + MAX_DEBOUNCE;
        loop {
            match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                Ok(Some(())) if tokio::time::Instant::now() < deadline => continue,
                Ok(None) => return,
                _ => break,
            }
        }
        workflows.reload().await;
    }
}
