//! `handoff health`: the weekly health report of the handoffs in a
//! database, findings first. Exit 0 with a report (findings are news, not
//! failures), 2 when the database cannot be read or the flags are wrong.

use std::path::PathBuf;

use handoff::health::{self, Window};
use handoff::runtime::store::{SqliteOptions, SqliteStore};
use handoff::runtime::{Overrides, Settings};

use super::{Exit, OutputFormat};

/// Arguments of `handoff health`.
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// The SQLite database (default: HANDOFF_DB, else the `db` of
    /// handoff.toml, else handoff.db).
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// How far back: weeks, days or hours, such as `8w`, `30d`, `12h`.
    #[arg(long, default_value = "8w", value_name = "AGE")]
    pub since: String,
    /// Only this workflow (by its name).
    #[arg(long, value_name = "NAME")]
    pub workflow: Option<String>,
    /// `human`, or `json` for scripts (the same as GET /health).
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// The config file with `[health]` targets (default: handoff.toml, if
    /// it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Runs `handoff health`.
pub fn run(args: &HealthArgs) -> Exit {
    let flags = Overrides {
        config: args.config.clone(),
        db: args.db.clone(),
        ..Overrides::default()
    };
    let settings = match Settings::load_without_secrets(&flags) {
        Ok(s) => s,
        Err(e) => return failed(miette::Report::new(e)),
    };
    let Some(back) = health::parse_since(&args.since) else {
        eprintln!(
            "error: --since {:?} is not an age\n  help: write a number of weeks, days or hours, such as 8w, 30d or 12h",
            args.since
        );
        return Exit::Failure;
    };
    if !settings.db.is_file() {
        eprintln!(
            "error: there is no database at {}\n  help: point --db at the file `handoff serve` writes, or create a sample one with `handoff demo --db {}`",
            settings.db.display(),
            settings.db.display()
        );
        return Exit::Failure;
    }
    let store = match SqliteStore::open(&settings.db, SqliteOptions::default()) {
        Ok(s) => s,
        Err(e) => return failed(miette::Report::new(e)),
    };
    let now = jiff::Timestamp::now();
    let since = now.checked_sub(back).unwrap_or(jiff::Timestamp::MIN);
    let window = Window {
        since,
        now,
        workflow: args.workflow.clone(),
    };
    let made = health::report(&store, &window, &settings.health);
    store.close();
    let report = match made {
        Ok(r) => r,
        Err(e) => return failed(miette::Report::new(e)),
    };
    match args.format {
        OutputFormat::Human => print!("{}", health::render::human(&report)),
        OutputFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: cannot write the report as JSON: {e}");
                return Exit::Failure;
            }
        },
    }
    Exit::Ok
}

fn failed(report: miette::Report) -> Exit {
    eprintln!("{report:?}");
    Exit::Failure
}
