//! `handoff fmt`: rewrite files in the canonical layout.
//!
//! A file with syntax errors is never touched (the tree would not hold the
//! text that failed to parse, so formatting could drop it): its diagnostics
//! are printed and the command exits 1. Other files are formatted as usual.

use std::io::Write;
use std::path::Path;

use super::report::{self, Summary};
use super::{Exit, FmtArgs, Format};
use handoff::diagnostic::Severity;
use handoff::{project, syntax};

/// How many lines of each side the `--check` hint shows.
const HINT_LINES: usize = 6;

/// Runs `handoff fmt`.
pub fn run(args: &FmtArgs) -> Exit {
    // `project::load` keeps only display names; discovering and reading here
    // keeps the real paths, so a file is written back exactly where it was
    // read from.
    let (paths, mut load_errors) = project::discover(&args.paths);
    let mut files = Vec::new();
    for path in paths {
        match project::read(&path) {
            Ok(source) => files.push((path, source)),
            Err(e) => load_errors.push(e),
        }
    }
    if !load_errors.is_empty() {
        // Nothing is written when part of the input is missing: the command
        // could not run as asked.
        report::print_load_errors(&load_errors);
        return Exit::Failure;
    }

    let mut stderr = std::io::stderr().lock();
    let (mut broken, mut changed, mut unwritable) = (0, 0, 0);
    for (path, source) in &files {
        let parsed = syntax::parse(source);
        if parsed
            .diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
        {
            broken += 1;
            // No summary line: the count of untouched files follows below.
            report::print(Format::Human, &parsed.diagnostics, &Summary::of(&[], 0));
            continue;
        }
        let formatted = syntax::format(&parsed.file, &source.text);
        if formatted == source.text {
            continue;
        }
        if args.check {
            println!("{}", source.name);
            let _ = write!(stderr, "{}", hint(&source.name, &source.text, &formatted));
        } else if let Err(e) = write(path, &formatted) {
            let _ = writeln!(stderr, "error: cannot write `{}`: {e}", source.name);
            unwritable += 1;
            continue;
        }
        changed += 1;
    }

    let unchanged = files.len() - broken - changed - unwritable;
    let summary = match (args.check, changed) {
        (_, 0) if unchanged == 0 => None,
        (_, 0) => Some(format!("{} already formatted", plural(unchanged, "file"))),
        (true, n) => Some(format!(
            "{} would be reformatted; run `handoff fmt` to fix",
            plural(n, "file")
        )),
        (false, n) => Some(format!("formatted {}", plural(n, "file"))),
    };
    if let Some(summary) = summary {
        let _ = writeln!(stderr, "{summary}");
    }
    if broken > 0 {
        let _ = writeln!(
            stderr,
            "left {} with syntax errors unchanged",
            plural(broken, "file")
        );
    }
    if unwritable > 0 {
        Exit::Failure
    } else if broken > 0 || (args.check && changed > 0) {
        Exit::Problems
    } else {
        Exit::Ok
    }
}

/// Writes through a temporary file (see [`super::replace::replace`]), so an
/// interrupted run never leaves half a file.
fn write(path: &Path, text: &str) -> std::io::Result<()> {
    super::replace::replace(path, text.as_bytes())
}

/// A short unified-diff-style hint for `--check`: the first run of lines
/// that differ, a few lines of each side.
fn hint(name: &str, old: &str, new: &str) -> String {
    let mut out = format!("--- {name}\n+++ {name} (formatted)\n");
    let old: Vec<&str> = old.lines().collect();
    let new: Vec<&str> = new.lines().collect();
    if old == new {
        // What `lines()` hides: CRLF, or a missing final newline.
        out.push_str("(only line endings differ)\n");
        return out;
    }
    let start = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let (removed, added) = first_hunk(&old[start..], &new[start..]);
    out.push_str(&format!("@@ line {} @@\n", start + 1));
    for (sign, lines) in [
        ('-', &old[start..start + removed]),
        ('+', &new[start..start + added]),
    ] {
        for line in lines.iter().take(HINT_LINES) {
            out.push_str(&format!("{sign}{line}\n"));
        }
        if lines.len() > HINT_LINES {
            out.push_str(&format!(
                "{sign}... ({} more lines)\n",
                lines.len() - HINT_LINES
            ));
        }
    }
    if old[start + removed..] != new[start + added..] {
        out.push_str("(more changes below)\n");
    }
    out
}

/// How many lines of `old` and of `new` (which differ in their first line)
/// to replace before the two agree again: the smallest pair after which
/// the next lines match, searched within a window so a hint stays cheap on
/// any file.
fn first_hunk(old: &[&str], new: &[&str]) -> (usize, usize) {
    const WINDOW: usize = 60;
    // Agreeing again means: both sides end, or the next two lines match.
    let agree = |a: usize, b: usize| {
        (a == old.len() && b == new.len())
            || (a < old.len()
                && b < new.len()
                && old[a..].iter().zip(&new[b..]).take(2).all(|(x, y)| x == y))
    };
    for total in 1..=WINDOW {
        for a in 0..=total {
            let b = total - a;
            if a <= old.len() && b <= new.len() && agree(a, b) {
                return (a, b);
            }
        }
    }
    (old.len(), new.len())
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::hint;

    #[test]
    fn hint_shows_only_the_first_change() {
        let old = "a\nb \nc\nd\ne\nf \n";
        let new = "a\nb\nc\nd\ne\nf\n";
        assert_eq!(
            hint("a.handoff", old, new),
            "--- a.handoff\n+++ a.handoff (formatted)\n@@ line 2 @@\n-b \n+b\n(more changes below)\n"
        );
    }

    #[test]
    fn hint_shows_lines_added_and_removed() {
        let h = hint("a.handoff", "a\nb\nc\n", "a\n\nb\nc\n");
        assert_eq!(
            h,
            "--- a.handoff\n+++ a.handoff (formatted)\n@@ line 2 @@\n+\n"
        );
        let h = hint("a.handoff", "a\n\n\nb\n", "a\n\nb\n");
        assert_eq!(
            h,
            "--- a.handoff\n+++ a.handoff (formatted)\n@@ line 3 @@\n-\n"
        );
    }

    #[test]
    fn hint_explains_invisible_changes() {
        let h = hint("a.handoff", "pause\r\n", "pause\n");
        assert!(
            h.ends_with("(formatted)\n(only line endings differ)\n"),
            "{h}"
        );
    }

    #[test]
    fn hint_shows_the_first_differing_lines() {
        let h = hint("a.handoff", "x\ny  \nz\n", "x\ny\nz\n");
        assert_eq!(
            h,
            "--- a.handoff\n+++ a.handoff (formatted)\n@@ line 2 @@\n-y  \n+y\n"
        );
    }
}
