//! Starting and stopping the server: [`run`] (or [`Server::build`] then
//! [`Server::run`]) with a listener the caller bound, so tests and embedders
//! bind port 0 and read the port before anything is served.
//!
//! Start-up: validate the settings against the address actually bound, load
//! the workflows (invalid workflows stop the start: there is nothing to
//! serve), start the file watcher and the SIGHUP handler. Shutdown, when the
//! caller's `shutdown` future completes: `/readyz` turns 503, the listener
//! stops accepting, in-flight requests finish, then the watcher stops and
//! `run` returns `Ok(())`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::config::{ConfigError, Settings};
use super::delivery::{self, UserIds, Worker};
use super::http;
use super::metrics::Metrics;
use super::reload::{self, InitialLoadError, Watcher, Workflows};
use super::state::AppState;
use super::store::{
    SqliteOptions, SqliteStore, Store, StoreError, StoreExt, WorkflowFile, WorkflowVersion,
};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ServeError {
    /// The settings are invalid or unsafe.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),
    /// The workflows could not be loaded at start-up.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Workflows(#[from] InitialLoadError),
    /// The workflows folder cannot be watched.
    #[error("cannot watch `{dir}` for changes: {reason}")]
    #[diagnostic(
        code(serve::watch),
        help("set `watch = false` in handoff.toml (or HANDOFF_WATCH=false) and send the server SIGHUP after each change to reload")
    )]
    Watch { dir: String, reason: String },
    /// The database could not be opened.
    #[error("cannot open the database `{db}`: {source}")]
    #[diagnostic(
        code(serve::db),
        help("check the path given by --db / HANDOFF_DB and that nothing else holds the file")
    )]
    Store {
        db: String,
        #[source]
        source: StoreError,
    },
    /// A network error (the listener failed).
    #[error("{what}: {source}")]
    #[diagnostic(code(serve::io))]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Another server runs on the same database file.
    #[error("another `handoff serve` is using the database `{db}` (it holds `{lock}`)")]
    #[diagnostic(
        code(serve::db_in_use),
        help("one server per SQLite file: at start a server takes back the outbox actions left leased, so a second one would send what the first is sending. Stop the other server first, or give this one another --db")
    )]
    InUse { db: String, lock: String },
}

/// Takes the lock that makes this the only server on `db`, held for the
/// server's life (the system lets go of it when the process ends, even
/// killed). `handoff health` and `handoff outbox` do not take it.
fn lock_db(db: &std::path::Path) -> Result<std::fs::File, ServeError> {
    let mut name = db.as_os_str().to_owned();
    name.push(".serve-lock");
    let path = std::path::PathBuf::from(name);
    let io = |source| ServeError::Io {
        what: format!("cannot open the lock file `{}`", path.display()),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    match try_lock(&file) {
        Ok(true) => Ok(file),
        Ok(false) => Err(ServeError::InUse {
            db: db.display().to_string(),
            lock: path.display().to_string(),
        }),
        Err(e) => Err(io(e)),
    }
}

/// An exclusive lock on `file` if no other open file holds one (`false`
/// when one does), without waiting.
#[cfg(unix)]
fn try_lock(file: &std::fs::File) -> std::io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Elsewhere no lock is taken (the README says so).
#[cfg(not(unix))]
fn try_lock(_file: &std::fs::File) -> std::io::Result<bool> {
    Ok(true)
}

/// A server ready to run: settings checked, workflows loaded, listener
/// bound, the folder watched and SIGHUP caught (from `build` on, so a change
/// or a signal between `build` and `run` is not lost).
pub struct Server {
    state: Arc<AppState>,
    listener: TcpListener,
    addr: SocketAddr,
    watcher: Option<Watcher>,
    sighup: Option<Hangups>,
    users: Arc<dyn UserIds>,
    /// Held until `run` ends: see [`lock_db`].
    db_lock: std::fs::File,
}

impl Server {
    /// Checks the settings against the listener's address and loads the
    /// workflows.
    pub async fn build(settings: Settings, listener: TcpListener) -> Result<Server, ServeError> {
        let addr = listener.local_addr().map_err(|source| ServeError::Io {
            what: "cannot read the listener's address".to_string(),
            source,
        })?;
        settings.validate()?;
        settings.validate_listener(addr)?;

        // Watch before the first read: a save in between is then seen.
        let watcher = if settings.watch {
            let w = Watcher::start(&settings.workflows).map_err(|e| ServeError::Watch {
                dir: settings.workflows.display().to_string(),
                reason: e.to_string(),
            })?;
            Some(w)
        } else {
            None
        };
        let sighup = hangups();

        let metrics = Arc::new(Metrics::new());
        let generic_key = settings
            .secrets
            .generic_secret
            .as_ref()
            .map(|s| super::config::decode_whsec("HANDOFF_GENERIC_SECRET", s))
            .transpose()?;
        let batches = metrics.clone();
        let options = SqliteOptions {
            synchronous: match settings.synchronous {
                super::config::Synchronous::Full => super::store::Synchronous::Full,
                super::config::Synchronous::Normal => super::store::Synchronous::Normal,
            },
            on_batch: Some(Arc::new(move |b: &super::store::BatchReport| {
                batches.ingest_batch_size.observe(b.jobs as f64);
                if b.replayed {
                    batches.replayed_batches.inc();
                }
            })),
            ..SqliteOptions::default()
        };
        let db_lock = lock_db(&settings.db)?;
        let db = settings.db.clone();
        let store: Arc<dyn Store> = Arc::new(
            tokio::task::spawn_blocking(move || SqliteStore::open(&db, options))
                .await
                .map_err(|e| ServeError::Io {
                    what: "the database opener stopped".into(),
                    source: std::io::Error::other(e.to_string()),
                })?
                .map_err(|source| ServeError::Store {
                    db: settings.db.display().to_string(),
                    source,
                })?,
        );
        // A version the CRM mapping does not fit is refused (its events or
        // values would be dropped); every version that serves is kept (so
        // any past decision can be explained and replayed), and instances
        // whose workflow is gone are listed as orphaned.
        let hooks: Vec<Arc<dyn reload::OnActivate>> = vec![
            Arc::new(MappingFits(settings.crm.clone())),
            Arc::new(KeepVersions(store.clone())),
        ];
        let workflows = Workflows::load(settings.workflows.clone(), metrics.clone(), hooks).await?;

        let crm = Arc::new(
            super::adapters::Crms::new(&settings).map_err(|e| ServeError::Io {
                what: "cannot set up the CRM API clients".to_string(),
                source: std::io::Error::other(e.to_string()),
            })?,
        );
        for object in crm.mapping.shared_objects() {
            tracing::warn!(
                object,
                "both [hubspot.objects.{object}] and [pipedrive.objects.{object}] are mapped: records are kept by object and record id whichever CRM sent them, so HubSpot's {object} 55 and Pipedrive's {object} 55 would be one record; map each object from one CRM"
            );
        }
        let lag = super::delivery::sinks::hubspot::SEARCH_LAG;
        if settings
            .delivery
            .sinks()
            .contains(&delivery::SinkKind::Hubspot)
            && settings.delivery.backoff_max < lag
        {
            tracing::warn!(
                backoff_max = ?settings.delivery.backoff_max,
                "[delivery] backoff_max is shorter than the {}s HubSpot's search may take to list a new task: a retry after a create that timed out may not find the task it made and make a second; set backoff_max to \"30s\" or more",
                lag.as_secs()
            );
        }
        let state = Arc::new(AppState {
            web: super::web::WebState::new(&settings),
            guesses: super::http::guesses::Guesses::new(settings.trusted_proxies.clone()),
            turns: Default::default(),
            hooks_in_flight: Arc::new(tokio::sync::Semaphore::new(settings.max_in_flight)),
            settings,
            workflows,
            metrics,
            draining: Default::default(),
            store,
            generic_key,
            crm,
        });
        // The CRM mapping knows the people's CRM ids and property names.
        let users: Arc<dyn UserIds> = Arc::new(state.crm.mapping.clone());
        Ok(Server {
            state,
            listener,
            addr,
            watcher,
            sighup,
            users,
            db_lock,
        })
    }

    /// Gives the outbox worker the people's CRM and Slack ids (the CRM
    /// mapping); without it, tasks go unassigned with the person named.
    pub fn with_user_ids(mut self, users: Arc<dyn UserIds>) -> Server {
        self.users = users;
        self
    }

    /// The address the server listens on (with the real port when bound to
    /// port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state (tests wait on `state().workflows.status()`).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Serves until `shutdown` completes, then drains and returns.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        // Released when this returns (the binary then exits).
        let _db_lock = self.db_lock;
        let state = self.state;
        let workflows = state.workflows.clone();
        let active = workflows.active();
        tracing::info!(
            addr = %self.addr,
            workflows = %workflows.dir().display(),
            version = reload::short(active.set.version()),
            files = active.files.len(),
            handoffs = active.set.handoffs().len(),
            "serving"
        );
        if state.settings.secrets.api_token.is_none() {
            if state.settings.people.is_empty() {
                tracing::warn!(
                    "no HANDOFF_API_TOKEN set: the API is open to anyone on this machine (allowed on a loopback address only)"
                );
            } else {
                tracing::warn!(
                    "no HANDOFF_API_TOKEN set: people sign in with their tokens, and scripts are refused until it is set"
                );
            }
        }

        let watcher = self.watcher.map(|w| {
            tracing::info!("watching {} for changes", workflows.dir().display());
            tokio::spawn(reload::follow(
                workflows.dir().to_path_buf(),
                w,
                workflows.clone(),
                reload::FOLLOW_EVERY,
            ))
        });
        let sighup = self
            .sighup
            .map(|h| tokio::spawn(reload_on_sighup(h, workflows.clone())));
        let retry = tokio::spawn(reload::retry_not_kept(
            workflows.clone(),
            reload::RETRY_NOT_KEPT_EVERY,
        ));

        // Events that wait for the CRM's API are decided once it answers.
        let pending = super::adapters::pending::spawn(state.clone());
        // The outbox worker, when [delivery] routes anything somewhere.
        let (stop_worker, worker) = if state.settings.delivery.enabled() {
            let sinks = delivery::build_sinks(&state.settings, self.users.clone())?;
            let worker = Arc::new(Worker::new(
                state.store.clone(),
                sinks,
                &state.settings.delivery,
                state.settings.public_url_at(self.addr),
                state.metrics.clone(),
            ));
            let (tx, rx) = tokio::sync::watch::channel(false);
            tracing::info!(sinks = ?state.settings.delivery.sinks(), "delivering the outbox");
            (Some(tx), Some(tokio::spawn(worker.run(rx))))
        } else {
            (None, None)
        };
        let worker_bound =
            state.settings.delivery.timeout.saturating_mul(4) + std::time::Duration::from_secs(5);

        let draining = state.clone();
        let app = http::router(state);
        http::listen::serve(
            self.listener,
            app,
            http::listen::HEADER_READ,
            http::listen::DRAIN,
            async move {
                shutdown.await;
                draining.draining.store(true, Ordering::Relaxed);
                tracing::info!("shutting down: finishing requests in flight");
            },
        )
        .await;

        if let Some(task) = sighup {
            task.abort();
        }
        retry.abort();
        if let Some(task) = pending {
            task.abort();
        }
        // The worker finishes the deliveries in flight (each bounded by the
        // sink timeout); what it cannot finish stays leased and resumes at
        // the next start.
        if let (Some(stop), Some(mut task)) = (stop_worker, worker) {
            let _ = stop.send(true);
            if tokio::time::timeout(worker_bound, &mut task).await.is_err() {
                tracing::warn!("deliveries still in flight at shutdown resume at the next start");
                task.abort();
            }
        }
        if let Some(task) = watcher {
            // Aborting drops the watcher, which stops its reloads.
            task.abort();
            let _ = task.await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Builds and runs a server on `listener` until `shutdown` completes: the
/// one call the binary, the tests and an embedder make.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    Server::build(settings, listener).await?.run(shutdown).await
}

/// The stream of SIGHUPs, or `None` where there is none.
#[cfg(unix)]
type Hangups = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type Hangups = std::convert::Infallible;

/// Starts catching SIGHUP (from then on it no longer ends the process).
#[cfg(unix)]
fn hangups() -> Option<Hangups> {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot catch SIGHUP; reload by editing the files");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangups() -> Option<Hangups> {
    None
}

/// Reloads the workflows on every SIGHUP (the operator's "reload now",
/// and the way to reload where file events do not arrive).
#[cfg(unix)]
async fn reload_on_sighup(mut hup: Hangups, workflows: Arc<Workflows>) {
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the workflows");
        if workflows.reload().await == reload::Reload::Unchanged {
            tracing::info!("the workflows did not change");
        }
    }
}

#[cfg(not(unix))]
async fn reload_on_sighup(never: Hangups, _workflows: Arc<Workflows>) {
    match never {}
}

/// Keeps each activated version in the store and marks the instances of
/// workflows it no longer has as orphaned (their status is kept).
struct KeepVersions(Arc<dyn Store>);

/// Refuses workflows that no longer declare what the CRM mapping (read
/// once, at start-up) names: a reload that renamed `object lead` would
/// otherwise have every CRM event of it acknowledged and skipped.
struct MappingFits(super::adapters::mapping::Mapping);

impl reload::OnActivate for MappingFits {
    fn activated(&self, _active: Arc<reload::Active>) -> reload::BoxFuture<'_> {
        Box::pin(async {})
    }

    fn problems(&self, set: &crate::compile::WorkflowSet) -> Vec<String> {
        self.0.does_not_fit(&set.schema().objects)
    }
}

impl reload::OnActivate for KeepVersions {
    fn activating(&self, active: Arc<reload::Active>) -> reload::BoxCheck<'_> {
        Box::pin(async move {
            let version = WorkflowVersion {
                id: active.set.version().to_string(),
                first_loaded_at: active.loaded_at,
                files: active
                    .files
                    .iter()
                    .map(|f| WorkflowFile {
                        name: f.name.clone(),
                        text: f.text.clone(),
                    })
                    .collect(),
            };
            // Committed before the version serves: a decision that names it
            // can always be explained and replayed from its text.
            self.0
                .write(move |tx| tx.save_workflow_version(&version))
                .await
                .map(drop)
                .map_err(|e| format!("could not record the workflow version: {e}"))
        })
    }

    fn activated(&self, active: Arc<reload::Active>) -> reload::BoxFuture<'_> {
        Box::pin(async move {
            // A workflow is the same one across versions when its name and
            // its object stay (its instances migrate); by name alone, one
            // moved to another object would keep the old object's
            // instances listed as live although the engine orphans them.
            let objects = &active.set.schema().objects;
            let live: Vec<(String, String)> = active
                .set
                .handoffs()
                .iter()
                .map(|h| (h.name.clone(), objects[h.object].name.clone()))
                .collect();
            let result = self
                .0
                .write(move |tx| {
                    let live: Vec<(&str, &str)> =
                        live.iter().map(|(w, o)| (w.as_str(), o.as_str())).collect();
                    tx.mark_orphans(&live)
                })
                .await;
            match result {
                Ok(0) => {}
                Ok(n) => tracing::warn!(
                    orphaned = n,
                    "handoffs whose workflow is gone keep their status and are listed as orphaned"
                ),
                Err(e) => tracing::error!(error = %e, "could not mark the orphaned handoffs"),
            }
        })
    }
}
