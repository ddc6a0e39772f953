//! The commands of the `handoff` binary, one file each.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

mod check;
#[cfg(feature = "serve")]
mod demo;
mod fmt;
mod graph;
#[cfg(feature = "serve")]
mod health;
#[cfg(feature = "serve")]
mod outbox;
mod replace;
mod report;
mod run;
#[cfg(feature = "serve")]
mod serve;
mod test;

/// The process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Nothing wrong.
    Ok = 0,
    /// The command ran and found problems (errors, or files to reformat).
    Problems = 1,
    /// The command could not run: bad usage, a missing or unreadable file.
    Failure = 2,
}

/// Declarative CRM handoff rules: check, format and run `.handoff` workflows.
#[derive(Debug, Parser)]
#[command(name = "handoff", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check workflows for errors; exit 0 when clean, 1 on errors, 2 when a
    /// path cannot be read.
    Check(CheckArgs),
    /// Rewrite workflows in the canonical layout (or, with --check, list the
    /// files that would change and exit 1).
    Fmt(FmtArgs),
    /// Draw one handoff's workflow (with --workflow) or the cascade graph of
    /// which handoffs can fire which, as Graphviz dot or Mermaid.
    Graph(GraphArgs),
    /// Dry-run CRM events through the workflows and print what would happen
    /// (with --explain, why); nothing is sent anywhere.
    Run(RunArgs),
    /// Run workflow tests (`*.handoff-test`) and print `N passed, N failed`.
    Test(TestArgs),
    /// Approve a handoff waiting in review (the human override), in a state
    /// file written by `handoff run --state`.
    Approve(ApproveArgs),
    /// Run the webhook server: hot-reloaded workflows, the API, metrics.
    #[cfg(feature = "serve")]
    Serve(serve::ServeArgs),
    /// The weekly health report of the handoffs in a database: findings
    /// first, then the signals per workflow and week.
    #[cfg(feature = "serve")]
    Health(health::HealthArgs),
    /// Fill a fresh database with a generated quarter of deals and leads,
    /// sent through the real ingest path.
    #[cfg(feature = "serve")]
    Demo(demo::DemoArgs),
    /// List the outbox's dead letters and re-drive them, in a server's
    /// database.
    #[cfg(feature = "serve")]
    Outbox(outbox::OutboxArgs),
}

/// Arguments of `handoff test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Test files, or folders searched for `*.handoff-test` files.
    #[arg(default_value = "workflows")]
    pub paths: Vec<PathBuf>,
    /// The workflows folder (default: the folders given).
    #[arg(long, value_name = "DIR")]
    pub workflows: Option<PathBuf>,
}

/// Arguments of `handoff approve`.
#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// The workflows folder.
    #[arg(long, default_value = "workflows", value_name = "DIR")]
    pub workflows: PathBuf,
    /// The state file to update.
    #[arg(long, value_name = "FILE")]
    pub state: PathBuf,
    /// The handoff's name.
    #[arg(long, value_name = "NAME")]
    pub workflow: String,
    /// The record, as `object/record_id` (e.g. `deal/D-42`).
    #[arg(long, value_name = "OBJECT/ID")]
    pub record: String,
    /// The current time (RFC 3339); default: the clock.
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// `human` or `json`.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// Arguments of `handoff run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The workflows folder.
    #[arg(long, default_value = "workflows", value_name = "DIR")]
    pub workflows: PathBuf,
    /// A JSON file with one event, or an array of events run in order.
    #[arg(long, value_name = "FILE")]
    pub event: PathBuf,
    /// Engine state to start from (JSON); updated in place after the run. A
    /// missing file starts empty. Without it nothing is stored.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// The current time (RFC 3339) for due dates; default: each event's
    /// `occurred_at`, else the clock.
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// Show every step evaluated for every handoff, and why.
    #[arg(long)]
    pub explain: bool,
    /// `human`, or `json` (the Outcome contract).
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// Output of commands that print results rather than diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Readable text.
    Human,
    /// JSON on stdout.
    Json,
}

/// Arguments of `handoff graph`.
#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// Files or directories of the project.
    #[arg(default_value = "workflows")]
    pub paths: Vec<PathBuf>,
    /// Draw this handoff (by its name) instead of the cascade graph.
    #[arg(long, value_name = "NAME")]
    pub workflow: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
}

/// Graph output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz dot (`dot -Tsvg`).
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
}

/// Arguments of `handoff check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Files or directories to check; directories are searched for
    /// `*.handoff` files recursively.
    #[arg(default_value = "workflows")]
    pub paths: Vec<PathBuf>,
    /// Output format: `human` (stderr), `json`, `github` or `sarif` (stdout).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Treat warnings as errors (`--deny warnings`).
    #[arg(long, value_name = "LEVEL")]
    pub deny: Option<Deny>,
    /// The `handoff.toml` whose CRM mapping is checked against the
    /// objects (default: HANDOFF_CONFIG, else ./handoff.toml if present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Arguments of `handoff fmt`.
#[derive(Debug, clap::Args)]
pub struct FmtArgs {
    /// Files or directories to format.
    #[arg(default_value = "workflows")]
    pub paths: Vec<PathBuf>,
    /// Do not write: list the files that are not formatted and exit 1.
    #[arg(long)]
    pub check: bool,
}

/// How diagnostics are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Source snippets with underlines, on stderr.
    Human,
    /// A JSON array of diagnostics on stdout.
    Json,
    /// GitHub Actions workflow commands (`::error file=…`) on stdout.
    Github,
    /// A SARIF 2.1.0 log on stdout, for code scanning services.
    Sarif,
}

/// What `--deny` can promote to an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Deny {
    /// Fail on warnings as well as errors.
    Warnings,
}

impl Cli {
    /// True for `serve`, which keeps SIGPIPE ignored (see `main`).
    pub fn serves(&self) -> bool {
        #[cfg(feature = "serve")]
        if matches!(self.command, Command::Serve(_)) {
            return true;
        }
        false
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Exit {
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Fmt(args) => fmt::run(&args),
        Command::Graph(args) => graph::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Approve(args) => run::approve(&args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::run(&args),
        #[cfg(feature = "serve")]
        Command::Health(args) => health::run(&args),
        #[cfg(feature = "serve")]
        Command::Demo(args) => demo::run(&args),
        #[cfg(feature = "serve")]
        Command::Outbox(args) => outbox::run(&args),
    }
}
