//! `handoff graph`: draw a handoff or the cascade graph.

use super::report::{self, Summary};
use super::{Exit, Format, GraphArgs, GraphFormat};
use handoff::compile::{self, graph, LoadFailure};

/// Runs `handoff graph`.
pub fn run(args: &GraphArgs) -> Exit {
    let set = match load(&args.paths) {
        Ok(set) => set,
        Err(exit) => return exit,
    };
    let out = match &args.workflow {
        None => match args.format {
            GraphFormat::Dot => graph::cascade_dot(&set),
            GraphFormat::Mermaid => graph::cascade_mermaid(&set),
        },
        Some(name) => match set.handoff(name) {
            Some(h) => match args.format {
                GraphFormat::Dot => graph::handoff_dot(h),
                GraphFormat::Mermaid => graph::handoff_mermaid(h),
            },
            None => {
                let names: Vec<&str> = set.handoffs().iter().map(|h| h.name.as_str()).collect();
                eprintln!("error: no handoff called \"{name}\"");
                match handoff::check::suggest(name, names.iter().copied()) {
                    Some(s) => eprintln!("  help: did you mean \"{s}\"?"),
                    None => eprintln!("  help: the handoffs are {}", quoted(&names)),
                }
                return Exit::Failure;
            }
        },
    };
    print!("{out}");
    Exit::Ok
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Loads and compiles a project, printing what went wrong; the error is the
/// exit status to return.
pub(super) fn load(paths: &[std::path::PathBuf]) -> Result<compile::WorkflowSet, Exit> {
    match compile::load(paths) {
        Ok((set, _warnings)) => Ok(set),
        Err(LoadFailure::Io(errors)) => {
            report::print_load_errors(&errors);
            Err(Exit::Failure)
        }
        Err(LoadFailure::Invalid(diagnostics)) => {
            // "checked N files" counts every file of the project, as
            // `handoff check` does, not only those with a diagnostic.
            let (files, _) = handoff::project::discover(paths);
            let with_problems: std::collections::HashSet<_> =
                diagnostics.iter().map(|d| d.file.name.clone()).collect();
            report::print(
                Format::Human,
                &diagnostics,
                &Summary::of(&diagnostics, files.len().max(with_problems.len())),
            );
            Err(Exit::Problems)
        }
        Err(LoadFailure::Compile(e)) => {
            eprintln!("error: {e}");
            Err(Exit::Failure)
        }
    }
}
