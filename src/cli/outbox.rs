//! `handoff outbox list|retry [--db FILE]`: the dead letters of a server's
//! database, and re-driving them, from a shell on the server's machine.
//! The database is found like `serve` finds it (--db, else HANDOFF_DB or
//! `db` in handoff.toml, else handoff.db); it may be open by a running
//! server (SQLite lets the two share it; the server's worker picks the
//! re-driven action up at its next pass).

use std::path::PathBuf;
use std::sync::Arc;

use handoff::runtime::store::{
    ActionRow, DeliveryState, PageRequest, SqliteOptions, SqliteStore, Store, StoreExt, MAX_PAGE,
};
use handoff::runtime::{Overrides, Settings};

use super::{Exit, OutputFormat};

/// Arguments of `handoff outbox`.
#[derive(Debug, clap::Args)]
pub struct OutboxArgs {
    #[command(subcommand)]
    pub command: OutboxCommand,
}

/// What to do with the outbox.
#[derive(Debug, clap::Subcommand)]
pub enum OutboxCommand {
    /// List the dead letters (actions out of tries), newest first.
    List(ListArgs),
    /// Re-drive dead letters: back to pending, due now, tries from zero.
    Retry(RetryArgs),
}

/// Where the database is.
#[derive(Debug, clap::Args)]
pub struct DbArgs {
    /// The SQLite database file (default: as `handoff serve` finds it).
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// The config file (default: handoff.toml, if it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Arguments of `handoff outbox list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// `human` or `json`.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// Arguments of `handoff outbox retry`.
#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The actions to re-drive (ids from `handoff outbox list`).
    #[arg(value_name = "ID", required_unless_present = "all")]
    pub ids: Vec<String>,
    /// Re-drive every dead letter.
    #[arg(long, conflicts_with = "ids")]
    pub all: bool,
}

/// Runs `handoff outbox`.
pub fn run(args: &OutboxArgs) -> Exit {
    let db = match &args.command {
        OutboxCommand::List(a) => &a.db,
        OutboxCommand::Retry(a) => &a.db,
    };
    let path = match &db.db {
        Some(p) => p.clone(),
        None => {
            let flags = Overrides {
                config: db.config.clone(),
                ..Overrides::default()
            };
            match Settings::load_without_secrets(&flags) {
                Ok(s) => s.db,
                Err(e) => {
                    eprintln!("{:?}", miette::Report::new(e));
                    return Exit::Failure;
                }
            }
        }
    };
    if !path.is_file() {
        eprintln!(
            "error: there is no database at `{}`\n  help: pass the server's database with --db FILE",
            path.display()
        );
        return Exit::Failure;
    }
    let store: Arc<dyn Store> = match SqliteStore::open(&path, SqliteOptions::default()) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            return Exit::Failure;
        }
    };
    match &args.command {
        OutboxCommand::List(a) => list(store.as_ref(), a.format),
        OutboxCommand::Retry(a) => retry(store.as_ref(), a),
    }
}

/// Every dead letter, following the pages.
fn all_dead(store: &dyn Store) -> Result<Vec<ActionRow>, handoff::runtime::store::StoreError> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(MAX_PAGE);
    loop {
        let got = store.dead_letters(&page)?;
        out.extend(got.items);
        match got.next {
            Some(next) => page.cursor = Some(next),
            None => return Ok(out),
        }
    }
}

fn list(store: &dyn Store, format: OutputFormat) -> Exit {
    let dead = match all_dead(store) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            return Exit::Failure;
        }
    };
    match format {
        OutputFormat::Json => {
            let items: Vec<serde_json::Value> = dead
                .iter()
                .map(|a| {
                    let sinks = store.sink_deliveries(&a.id).unwrap_or_default();
                    handoff::runtime::http::outbox::action_json(a, &sinks)
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "dead_letters": items }))
                    .unwrap_or_default()
            );
        }
        OutputFormat::Human => {
            if dead.is_empty() {
                println!("no dead letters");
            }
            for a in &dead {
                println!(
                    "{}  {}  handoff {}  {} tries  {}",
                    a.id,
                    a.kind.as_str(),
                    a.handoff_id,
                    a.attempts,
                    a.last_error.as_deref().unwrap_or("")
                );
            }
            if !dead.is_empty() {
                println!(
                    "{} dead letter(s); re-drive with `handoff outbox retry ID…` or `--all`",
                    dead.len()
                );
            }
        }
    }
    Exit::Ok
}

fn retry(store: &dyn Store, args: &RetryArgs) -> Exit {
    let ids: Vec<String> = if args.all {
        match all_dead(store) {
            Ok(d) => d.into_iter().map(|a| a.id).collect(),
            Err(e) => {
                eprintln!("{:?}", miette::Report::new(e));
                return Exit::Failure;
            }
        }
    } else {
        args.ids.clone()
    };
    let mut problems = false;
    for id in ids {
        let action = match store.action(&id) {
            Ok(Some(a)) if a.state == DeliveryState::Dead => a,
            Ok(Some(a)) => {
                problems = true;
                eprintln!("{id}: not re-driven: it is {}, not dead", a.state.as_str());
                continue;
            }
            Ok(None) => {
                problems = true;
                eprintln!("{id}: not re-driven: no action with that id");
                continue;
            }
            Err(e) => {
                eprintln!("{:?}", miette::Report::new(e));
                return Exit::Failure;
            }
        };
        let now = jiff::Timestamp::now();
        match store.write_blocking(move |tx| {
            handoff::runtime::delivery::redrive(tx, &action, "handoff outbox retry", now)
        }) {
            Ok(true) => println!("{id}: re-driven"),
            Ok(false) => {
                problems = true;
                eprintln!("{id}: not re-driven: someone re-drove it meanwhile");
            }
            Err(e) => {
                eprintln!("{:?}", miette::Report::new(e));
                return Exit::Failure;
            }
        }
    }
    if problems {
        Exit::Problems
    } else {
        Exit::Ok
    }
}
