//! `handoff serve`: read the settings, set up logging, bind, print
//! `listening on http://ADDR`, and run the library's server until SIGTERM or
//! ctrl-c. Exit 0 after a clean shutdown, 2 when the server cannot start.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use handoff::runtime::config::LogFormat;
use handoff::runtime::reload::InitialLoadError;
use handoff::runtime::{Overrides, ServeError, Server, Settings};

use super::Exit;

/// The environment variables, shown after the options in `--help`.
pub const ENV_HELP: &str = "\
Settings come from, lowest first: defaults, the config file (handoff.toml in
the current folder, or --config / HANDOFF_CONFIG), HANDOFF_* environment
variables, then these flags.

Environment:
  HANDOFF_CONFIG           the config file to read
  HANDOFF_WORKFLOWS        the workflows folder            [default: workflows]
  HANDOFF_DB               the SQLite database file        [default: handoff.db]
  HANDOFF_LISTEN           the address to listen on        [default: 127.0.0.1:8080]
  HANDOFF_SYNCHRONOUS      full | normal                   [default: full]
  HANDOFF_MAX_BODY_BYTES   larger request bodies get 413   [default: 1048576]
  HANDOFF_MAX_IN_FLIGHT    webhook requests taken at once; more get 503
                           with Retry-After                [default: 256]
  HANDOFF_LOG_FORMAT       human | json                    [default: human]
  HANDOFF_PUBLIC_URL       the URL people reach the server at
  HANDOFF_WATCH            reload when files change        [default: true]
  HANDOFF_TRUSTED_PROXIES  your reverse proxies (10.0.0.2, 10.0.0.0/8, …):
                           their X-Forwarded-For names the client whose
                           wrong tokens are counted        [default: none]
  RUST_LOG                 log filter, e.g. info or handoff=debug [default: info]

Secrets (environment only; NAME_FILE reads the secret from a file instead):
  HANDOFF_API_TOKEN                the API's bearer token; required to listen
                                   on an address other than loopback
  HANDOFF_GENERIC_SECRET           whsec_… secret: POST /hooks/generic must be signed
                                   (without it, the hook wants the API token when one is set)
  HANDOFF_HUBSPOT_CLIENT_SECRET    verifies HubSpot's signatures
  HANDOFF_PIPEDRIVE_USER           basic-auth user of Pipedrive's webhooks
  HANDOFF_PIPEDRIVE_PASSWORD       basic-auth password of Pipedrive's webhooks
  HANDOFF_HUBSPOT_TOKEN            private app token: tasks and properties ([delivery])
  HANDOFF_PIPEDRIVE_API_TOKEN      API token: activities and deal fields ([delivery])
  HANDOFF_SLACK_WEBHOOK_URL        the Slack incoming webhook notify goes to
  HANDOFF_OUTBOUND_SECRET          whsec_… secret the outbound webhook signs with
  HANDOFF_TOKEN_<NAME>             a person's own token for the web pages (NAME in
                                   capitals, e.g. HANDOFF_TOKEN_ANA), or token_file
                                   under [people.\"ana@example.com\"] in the file

In the config file only: [health] targets, [delivery] routes and sinks,
[people.NAME], and the CRM mappings [hubspot] and [pipedrive] (the README's
Operations and CRMs sections list every key).

Send SIGHUP to reload the workflows; SIGTERM or ctrl-c to stop (requests in
flight finish first).";

/// Arguments of `handoff serve`.
#[derive(Debug, clap::Args)]
#[command(after_help = ENV_HELP)]
pub struct ServeArgs {
    /// The workflows folder (reloaded when its files change).
    #[arg(long, value_name = "DIR")]
    pub workflows: Option<PathBuf>,
    /// The SQLite database file.
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// The address to listen on, e.g. 127.0.0.1:8080 (port 0: any free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The config file (default: handoff.toml, if it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// `human` or `json` log lines (on stderr).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormatArg>,
}

/// `--log-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormatArg {
    /// Readable lines.
    Human,
    /// One JSON object a line.
    Json,
}

/// Runs `handoff serve`.
pub fn run(args: &ServeArgs) -> Exit {
    let flags = Overrides {
        config: args.config.clone(),
        workflows: args.workflows.clone(),
        db: args.db.clone(),
        listen: args.listen.clone(),
        log_format: args.log_format.map(|f| match f {
            LogFormatArg::Human => LogFormat::Human,
            LogFormatArg::Json => LogFormat::Json,
        }),
    };
    let settings = match Settings::load(&flags).and_then(|s| s.validate().map(|()| s)) {
        Ok(s) => s,
        Err(e) => return failed(e.into()),
    };
    init_logging(settings.log_format);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Failure;
        }
    };
    runtime.block_on(serve(settings))
}

async fn serve(settings: Settings) -> Exit {
    let listener = match tokio::net::TcpListener::bind(settings.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "error: cannot listen on {}: {e}\n  help: pick another address with --listen or HANDOFF_LISTEN (port 0 takes any free port)",
                settings.listen
            );
            return Exit::Failure;
        }
    };
    let shutdown = shutdown_signal();
    let server = match Server::build(settings, listener).await {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    // The one line on stdout: scripts and tests read the bound port here.
    println!("listening on http://{}", server.local_addr());
    let _ = std::io::stdout().flush();
    match server.run(shutdown).await {
        Ok(()) => Exit::Ok,
        Err(e) => failed(e),
    }
}

/// Prints an error with its help (and, for invalid workflows, the
/// diagnostics) on stderr.
fn failed(e: ServeError) -> Exit {
    let mut err = std::io::stderr().lock();
    if let ServeError::Workflows(InitialLoadError::Invalid { report, .. }) = &e {
        let _ = write!(err, "{report}");
    }
    let _ = write!(err, "{:?}", miette::Report::new(e));
    Exit::Failure
}

/// Logs on stderr, human or JSON; the filter from RUST_LOG (default info).
fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal: a log file or a collector
    // gets plain text.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// A future that completes on ctrl-c or SIGTERM. The handlers are
/// installed now, before the `listening on` line is printed: a signal sent
/// as soon as that line appears must stop the server gracefully, not kill
/// it.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let int = signal(SignalKind::interrupt());
    let term = signal(SignalKind::terminate());
    async move {
        // A handler that could not be installed leaves that signal's
        // default action (ending the process), so it never completes here.
        let int = async {
            match int {
                Ok(mut s) => s.recv().await,
                Err(_) => std::future::pending().await,
            }
        };
        let term = async {
            match term {
                Ok(mut s) => s.recv().await,
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = int => {},
            _ = term => {},
        }
    }
}

/// A future that completes on ctrl-c.
#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every `HANDOFF_*` setting the server reads from the environment is
    /// in `serve --help` (and in the variables a test server is cleared
    /// of): a new one cannot be added without saying so.
    #[test]
    fn the_help_lists_every_variable_the_settings_read() {
        let config = include_str!("../runtime/config.rs");
        let helpers = include_str!("../../tests/it/helpers.rs");
        let mut found = 0;
        for part in config.split("env(\"").skip(1) {
            let Some(name) = part.split('"').next() else {
                continue;
            };
            found += 1;
            assert!(
                super::ENV_HELP.contains(name),
                "{name} is not in serve --help"
            );
            assert!(
                helpers.contains(&format!("\"{name}\"")),
                "{name} is not cleared for test servers (tests/it/helpers.rs SERVER_VARS)"
            );
        }
        assert!(
            found >= 10,
            "the settings' variables were not found ({found})"
        );
    }
}
