//! `handoff test`: run `*.handoff-test` scenarios against the workflows.

use std::path::PathBuf;

use super::{Exit, TestArgs};
use handoff::scenario;

/// Runs `handoff test`.
pub fn run(args: &TestArgs) -> Exit {
    let mut files: Vec<PathBuf> = Vec::new();
    for p in &args.paths {
        if p.is_dir() {
            for e in walkdir::WalkDir::new(p)
                .sort_by_file_name()
                .into_iter()
                .flatten()
            {
                if e.file_type().is_file()
                    && e.path().extension().is_some_and(|x| x == "handoff-test")
                {
                    files.push(e.into_path());
                }
            }
        } else if p.exists() {
            files.push(p.clone());
        } else {
            eprintln!("error: `{}` does not exist", p.display());
            return Exit::Failure;
        }
    }
    if files.is_empty() {
        eprintln!(
            "error: no `.handoff-test` files under {}",
            list(&args.paths)
        );
        return Exit::Failure;
    }
    // The project: the .handoff files of the given folders (or of the test
    // files' folders).
    let project: Vec<PathBuf> = match &args.workflows {
        Some(w) => vec![w.clone()],
        None => {
            let mut dirs: Vec<PathBuf> = args
                .paths
                .iter()
                .map(|p| {
                    if p.is_dir() {
                        p.clone()
                    } else {
                        // `x.handoff-test` has the parent "", not none.
                        p.parent()
                            .filter(|d| !d.as_os_str().is_empty())
                            .map_or_else(|| PathBuf::from("."), |d| d.to_path_buf())
                    }
                })
                .collect();
            dirs.dedup();
            dirs
        }
    };
    let set = match super::graph::load(&project) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let (mut passed, mut failed, mut unreadable) = (0, 0, 0);
    for f in &files {
        // One broken file does not hide the other files' results; the run
        // still ends with exit 2, since it did not test everything.
        let file = match scenario::read(f) {
            Ok(t) => t,
            Err(msg) => {
                eprintln!("error: {msg}");
                unreadable += 1;
                continue;
            }
        };
        for r in scenario::run_file(&set, f, &file) {
            if r.failures.is_empty() {
                passed += 1;
                println!("ok    {}: {}", r.file.display(), r.name);
            } else {
                failed += 1;
                println!("FAIL  {}: {}", r.file.display(), r.name);
                for line in &r.failures {
                    println!("  {line}");
                }
            }
        }
    }
    if unreadable > 0 {
        let files = if unreadable == 1 { "file" } else { "files" };
        println!("{passed} passed, {failed} failed, {unreadable} {files} not read (see above)");
        return Exit::Failure;
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        Exit::Problems
    } else {
        Exit::Ok
    }
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("`{}`", p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}
