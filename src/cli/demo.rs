//! `handoff demo`: fills a fresh database with a generated quarter of
//! deals and leads, sent through the same ingest path as the webhook, so
//! `handoff health` and `handoff serve` have something to show.

use std::path::PathBuf;
use std::sync::Arc;

use handoff::health::demo::{self, DemoOptions};
use handoff::runtime::store::{SqliteOptions, SqliteStore, Store, Synchronous};
use handoff::runtime::{Overrides, Settings};

use super::Exit;

/// Arguments of `handoff demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The SQLite database to create (default: HANDOFF_DB, else the `db`
    /// of handoff.toml, else handoff.db). It must be new or empty.
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// How many weeks of history, ending today (2 to 520: ten years).
    #[arg(long, default_value_t = 13, value_name = "N",
          value_parser = clap::value_parser!(u32).range(2..=520))]
    pub weeks: u32,
    /// The same seed gives the same quarter.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub seed: u64,
}

/// Runs `handoff demo`.
pub fn run(args: &DemoArgs) -> Exit {
    let flags = Overrides {
        db: args.db.clone(),
        ..Overrides::default()
    };
    let settings = match Settings::load_without_secrets(&flags) {
        Ok(s) => s,
        Err(e) => return failed(miette::Report::new(e)),
    };
    let options = SqliteOptions {
        // Sample data: a power cut mid-demo costs a rerun, not data anyone
        // acknowledged, so commits need not wait for the disk.
        synchronous: Synchronous::Normal,
        ..SqliteOptions::default()
    };
    let store: Arc<dyn Store> = match SqliteStore::open(&settings.db, options) {
        Ok(s) => Arc::new(s),
        Err(e) => return failed(miette::Report::new(e)),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Failure;
        }
    };
    // The quarter ends at the start of today (UTC): the same seed on the
    // same day gives the same database.
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or_else(|_| jiff::Timestamp::now());
    let opts = DemoOptions::new(args.weeks, args.seed, today);
    match runtime.block_on(demo::generate(&store, &opts)) {
        Ok(s) => {
            println!(
                "wrote {} events ({} deals, {} leads) from {} to {} into {}",
                s.events,
                s.deals,
                s.leads,
                s.start.strftime("%Y-%m-%d"),
                s.end.strftime("%Y-%m-%d"),
                settings.db.display()
            );
            println!(
                "planted: `{}` missing often, stage `{}` sent {} times, the rules changed on {}",
                demo::WEAK_FIELD,
                demo::RENAMED_STAGE,
                s.renamed_sent,
                s.rule_change_at.strftime("%Y-%m-%d")
            );
            println!(
                "next: handoff health --db {} --since {}w",
                settings.db.display(),
                args.weeks
            );
            Exit::Ok
        }
        Err(e) => failed(miette::Report::new(e)),
    }
}

fn failed(report: miette::Report) -> Exit {
    eprintln!("{report:?}");
    Exit::Failure
}
