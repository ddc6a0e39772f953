//! Every syntax mistake gets a precise, helpful diagnostic.
//!
//! Each file under `tests/fixtures/syntax/` is a realistic mistake. The real
//! binary checks it and the exact human output (stderr) and exit code are
//! compared with a reviewed snapshot in `tests/snapshots/`. A new mistake is
//! a new fixture file: run `cargo insta test --review` (or set
//! `INSTA_UPDATE=always`) to write its snapshot, then read it by eye: the
//! message must say what was expected and what was found, the span must sit
//! on the right token, and the help must help.

mod common;

use std::path::{Path, PathBuf};

use common::Run;
use handoff::report::JsonDiagnostic;

fn fixtures() -> PathBuf {
    common::root().join("tests/fixtures/syntax")
}

/// Runs `handoff ARGS…` in `dir`, so that file names print as given.
fn handoff(dir: &Path, args: &[&str]) -> Run {
    Run::of(
        common::handoff()
            .current_dir(dir)
            .env_remove("NO_COLOR")
            .args(args),
    )
}

fn file_name(path: &Path) -> &str {
    path.file_name()
        .and_then(|n| n.to_str())
        .expect("fixture names are UTF-8")
}

#[test]
fn human_output() {
    insta::glob!("fixtures/syntax/*.handoff", |path| {
        let run = handoff(&fixtures(), &["check", file_name(path)]);
        insta::assert_snapshot!(run.transcript());
    });
}

#[test]
fn every_fixture_is_reported() {
    let mut count = 0;
    for entry in std::fs::read_dir(fixtures()).expect("the fixture folder exists") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|e| e != "handoff") {
            continue;
        }
        count += 1;
        let run = handoff(&fixtures(), &["check", file_name(&path)]);
        let reported = run.stderr.contains("  × ") || run.stderr.contains("  ⚠ ");
        assert!(
            reported,
            "{} printed no diagnostic:\n{}",
            path.display(),
            run.stderr
        );
        // A mistake fails the check; only the empty files merely warn.
        let warns_only = run.stderr.contains("H007") && !run.stderr.contains("  × ");
        let expected = match (warns_only, run.stderr.contains("io::")) {
            (_, true) => 2,
            (true, _) => 0,
            _ => 1,
        };
        assert_eq!(run.code, expected, "{}:\n{}", path.display(), run.stderr);
    }
    assert!(count >= 35, "only {count} fixtures");
}

/// The grammar's internal rule names, which an author must never see.
fn rule_names() -> Vec<String> {
    let grammar =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("grammar/handoff.pest"))
            .expect("the grammar is readable");
    grammar
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(name, _)| name.trim().to_string())
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_'))
        // Rule names that are plain words (`name`, `task`, `string`) may
        // rightly appear in a message; the ones with an underscore or in
        // capitals are grammar-speak.
        .filter(|name| name.contains('_') || name.chars().all(|c| c.is_ascii_uppercase()))
        // pest's built-in rules.
        .chain(["EOI".to_string(), "SOI".to_string()])
        .collect()
}

#[test]
fn no_rule_name_reaches_an_author() {
    let rules = rule_names();
    assert!(rules.contains(&"field_decl".to_string()) && rules.contains(&"WHITESPACE".to_string()));
    for entry in std::fs::read_dir(fixtures()).expect("the fixture folder exists") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|e| e != "handoff") {
            continue;
        }
        let run = handoff(&fixtures(), &["check", file_name(&path)]);
        // Source lines (`  3 │ …`) quote the fixture; everything else is ours.
        for line in run.stderr.lines() {
            let quoted_source = line
                .trim_start()
                .split_once(" │")
                .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
            if quoted_source {
                continue;
            }
            let words = line.split(|c: char| !(c.is_alphanumeric() || c == '_'));
            for word in words {
                assert!(
                    !rules.iter().any(|r| r == word),
                    "{} shows the rule name `{word}`:\n{line}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn json_output() {
    for name in [
        "three_errors",
        "missing_close_brace_then",
        "crlf_line_endings",
        "tab_indented",
        "empty",
        "several_errors_in_one_handoff",
    ] {
        let file = format!("{name}.handoff");
        let run = handoff(&fixtures(), &["check", "--format", "json", &file]);
        let parsed: Vec<JsonDiagnostic> =
            serde_json::from_str(&run.stdout).expect("--format json prints a JSON array");
        assert!(!parsed.is_empty(), "{name}: no diagnostics");
        assert!(parsed.iter().all(|d| d.file == file));
        insta::assert_snapshot!(format!("json_{name}"), run.transcript());
    }
}

#[test]
fn columns_count_characters_with_tabs_and_crlf() {
    // A tab is one column, like any character; CR before LF is not a column
    // and does not start a line.
    let tab = handoff(
        &fixtures(),
        &["check", "--format", "json", "tab_indented.handoff"],
    );
    let tab: Vec<JsonDiagnostic> = serde_json::from_str(&tab.stdout).expect("JSON");
    assert_eq!((tab[0].line, tab[0].column), (4, 55));
    assert_eq!((tab[0].end_line, tab[0].end_column), (4, 59));

    let crlf = handoff(
        &fixtures(),
        &["check", "--format", "json", "crlf_line_endings.handoff"],
    );
    let crlf: Vec<JsonDiagnostic> = serde_json::from_str(&crlf.stdout).expect("JSON");
    assert_eq!((crlf[0].line, crlf[0].column), (3, 11));
    assert_eq!((crlf[0].end_line, crlf[0].end_column), (3, 15));
}

/// About 5 MB of valid declarations with one mistake near the end. Built at
/// test time (not committed): the output, line number included, is a
/// snapshot, and the check must stay fast (the parser must not go
/// quadratic), though no time is asserted.
fn big_file() -> String {
    const TARGET: usize = 5 * 1024 * 1024;
    let mut decls = Vec::new();
    let mut size = 0;
    while size < TARGET + 4096 {
        let decl = BIG_HANDOFF.replace("{n}", &(decls.len() + 1).to_string());
        size += decl.len();
        decls.push(decl);
    }
    // The mistake: a misspelled keyword, three declarations from the end.
    let at = decls.len() - 3;
    decls[at] = decls[at].replace("  require ", "  requre ");
    decls.concat()
}

const BIG_HANDOFF: &str = r#"# Handoff number {n}.
handoff "Sales to Delivery {n}" {
  when deal.stage becomes "Closed Won"
    where deal.amount > {n} and deal.segment is "enterprise"
  require buyer_goals, main_contact, signed_scope, start_date
  exception "Custom Scope" when deal.custom_scope is yes
  on exception {
    task "Review {exception} for {deal.name}" for founder due in 1 business day
    resume when deal.review_approved is yes
  }
  then {
    assign delivery_owner from team delivery by round robin
    task "Kickoff: {deal.name}" for delivery_owner due in 2 business days {
      checklist "Confirm scope with {deal.main_contact}", "Schedule the kickoff call"
      attach brief
    }
    notify channel delivery_feed "New client {deal.name} starts {deal.start_date}."
  }
  done when deal.kickoff_scheduled_at is set
}

"#;

#[test]
fn five_megabytes_with_one_mistake_near_the_end() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let text = big_file();
    assert!(text.len() >= 5 * 1024 * 1024);
    std::fs::write(dir.path().join("big.handoff"), &text).expect("write the big file");
    let run = handoff(dir.path(), &["check", "big.handoff"]);
    insta::assert_snapshot!(run.transcript());
}

mod mutations {
    //! Whatever an author types, the parser reports it: no panic, and every
    //! diagnostic points inside the text, on character boundaries, and
    //! renders. Inputs are the fixtures with random edits made of the
    //! characters that trip parsers up.

    use std::sync::Arc;

    use handoff::diagnostic::SourceFile;
    use handoff::report::render_human;
    use proptest::prelude::*;

    const PIECES: [&str; 24] = [
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        "\"",
        "'",
        "“",
        "”",
        "```",
        "#",
        ",",
        "=",
        ">",
        " is ",
        "\n",
        "\r\n",
        "\t",
        "é",
        "user x",
        "handoff \"h\" {",
        "{deal.",
        "\\",
    ];

    fn fixtures() -> Vec<String> {
        let mut texts: Vec<String> = std::fs::read_dir(super::fixtures())
            .expect("the fixture folder")
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect();
        texts.sort();
        texts
    }

    /// Applies `edits` (position as a fraction of the text, cut length,
    /// piece to insert) at character boundaries.
    fn mutate(text: &str, edits: &[(f64, usize, usize)]) -> String {
        let mut out = text.to_string();
        for &(at, cut, piece) in edits {
            let mut i = ((out.len() as f64) * at) as usize;
            while !out.is_char_boundary(i) {
                i -= 1;
            }
            let mut j = (i + cut).min(out.len());
            while !out.is_char_boundary(j) {
                j += 1;
            }
            out.replace_range(i..j, PIECES[piece % PIECES.len()]);
        }
        out
    }

    fn check(text: String) {
        let len = text.len();
        let source: Arc<SourceFile> = SourceFile::new("m.handoff", text);
        let parsed = handoff::syntax::parse(&source);
        let lone_cr = source.text.replace("\r\n", "").contains('\r');
        for d in &parsed.diagnostics {
            assert!(d.span.start <= d.span.end && d.span.end <= len, "{d:?}");
            assert!(source.text.is_char_boundary(d.span.start), "{d:?}");
            assert!(source.text.is_char_boundary(d.span.end), "{d:?}");
            for r in &d.related {
                assert!(r.span.end <= len && source.text.is_char_boundary(r.span.start));
            }
            // Message style: lowercase start, no final period.
            let first = d.message.chars().next().expect("a message");
            assert!(first.is_lowercase() || first == '`', "{}", d.message);
            assert!(!d.message.ends_with('.'), "{}", d.message);
            // The CLI renders snippets from a window of the text; the result
            // must be exactly what miette makes of the whole text. (Except
            // with a lone CR: miette counts it as a line break, handoff's
            // line numbers, like the grammar, do not, and the window's
            // numbering follows handoff's so that human and JSON agree.)
            // The header's `[file:line:col]` is handoff's count in
            // characters, as `--format json` gives it (miette's own column
            // is in bytes): compared on its own.
            let (line, col) = d.file.line_col(d.span.start);
            let human = render_human(d);
            assert!(
                human.contains(&format!(":{line}:{col}]")),
                "{line}:{col} in {human}"
            );
            if !lone_cr {
                assert_eq!(
                    without_header(&human),
                    without_header(&whole_text_render(d))
                );
            } else {
                assert!(!human.is_empty());
            }
        }
    }

    /// The rendering without its `╭─[file:line:col]` header line.
    fn without_header(text: &str) -> String {
        text.lines()
            .filter(|l| !l.contains("╭─["))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn whole_text_render(d: &handoff::diagnostic::Diagnostic) -> String {
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(100);
        let mut out = String::new();
        handler.render_report(&mut out, d).expect("renders");
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn edited_fixtures_never_panic(
            which in 0usize..1000,
            edits in proptest::collection::vec((0.0f64..1.0, 0usize..6, 0usize..100), 1..6),
        ) {
            let texts = fixtures();
            let text = &texts[which % texts.len()];
            check(mutate(text, &edits));
        }
    }
}
