//! `handoff check`: parse every file and report every problem.

use super::report::{self, Summary};
use super::{CheckArgs, Deny, Exit, Format};
use handoff::diagnostic::Severity;
use handoff::project;

/// Runs `handoff check`.
pub fn run(args: &CheckArgs) -> Exit {
    let loaded = project::load(&args.paths);
    let analysis = handoff::check::analyze(&loaded.sources);
    let mut diagnostics = analysis.diagnostics;
    #[cfg_attr(not(feature = "serve"), allow(unused_mut))]
    let mut files = loaded.sources.len();
    // The CRM mapping in handoff.toml names objects, fields and stage
    // labels: checked against what the workflows declare.
    #[cfg(feature = "serve")]
    if let (Some(checked), Some(path)) = (&analysis.checked, config_file(args)) {
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file = handoff::diagnostic::SourceFile::new(path.display().to_string(), text);
                diagnostics.extend(handoff::runtime::adapters::mapping::check(
                    &file,
                    &checked.schema.objects,
                ));
                files += 1;
            }
            Err(e) => {
                eprintln!(
                    "error: cannot read the config file `{}`: {e}",
                    path.display()
                );
                return Exit::Failure;
            }
        }
    }
    let deny_warnings = args.deny == Some(Deny::Warnings);
    if deny_warnings {
        for d in &mut diagnostics {
            d.severity = Severity::Error;
        }
    }
    // Load errors go to stderr in every format (a GitHub run shows stderr
    // in its log); in the GitHub format they also become annotations.
    report::print_load_errors(&loaded.errors);
    if args.format == Format::Github {
        report::print_github_load_errors(&loaded.errors);
    }
    let summary = Summary::of(&diagnostics, files).with_unreadable(loaded.errors.len());
    report::print(args.format, &diagnostics, &summary);
    if !loaded.errors.is_empty() {
        Exit::Failure
    } else if summary.errors > 0 {
        Exit::Problems
    } else {
        Exit::Ok
    }
}

/// The config file to check: `--config`, else HANDOFF_CONFIG, else
/// ./handoff.toml when it exists.
#[cfg(feature = "serve")]
fn config_file(args: &CheckArgs) -> Option<std::path::PathBuf> {
    args.config
        .clone()
        .or_else(|| std::env::var_os("HANDOFF_CONFIG").map(Into::into))
        .or_else(|| {
            let default = std::path::PathBuf::from(handoff::runtime::config::DEFAULT_CONFIG_FILE);
            default.is_file().then_some(default)
        })
}
