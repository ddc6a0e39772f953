//! Keeps `grammar/README.md`, the language reference, true.
//!
//! - Every diagnostic code (the `H…` variants of `handoff::diagnostic::Code`)
//!   has a `### Hxxx: title` section in the reference, and every such section
//!   names a real code.
//! - Every example in the reference is checked by the real binary. Examples
//!   are fenced code blocks whose info string starts with `handoff`:
//!   - `handoff preamble`: the one block the other examples are checked with,
//!     saved as `crm.handoff` next to the example (`example.handoff`);
//!   - `handoff bad` (under a code's section): reports at least one
//!     diagnostic in `example.handoff`, all with the section's code;
//!   - `handoff good` (under a code's section): no errors, and nothing
//!     reported in `example.handoff`;
//!   - `handoff` (the reference part): no errors, and nothing reported in
//!     `example.handoff` but unused-declaration warnings (H204), since
//!     declarations are often shown on their own;
//!   - a trailing `standalone` checks the example without the preamble.
//!
//!   In every case `crm.handoff` may only get H204 warnings.
//! - Every link to a heading of the page (`[H101](#h101-declared-twice)`)
//!   finds its heading.

use std::collections::BTreeSet;
use std::path::Path;

use handoff::diagnostic::Code;
use handoff::report::JsonDiagnostic;

const README: &str = include_str!("../grammar/README.md");
const DIAGNOSTIC_RS: &str = include_str!("../src/diagnostic.rs");

const PREAMBLE_FILE: &str = "crm.handoff";
const EXAMPLE_FILE: &str = "example.handoff";

/// The codes `Code` declares, read from its source (`Code` cannot list its
/// variants).
fn codes() -> Vec<String> {
    let (_, body) = DIAGNOSTIC_RS
        .split_once("pub enum Code {")
        .expect("src/diagnostic.rs declares `pub enum Code { … }`");
    let codes: Vec<String> = body
        .lines()
        .map(str::trim)
        .take_while(|l| *l != "}")
        .filter_map(|l| l.strip_suffix(','))
        .filter(|v| is_code(v))
        .map(String::from)
        .collect();
    assert!(
        codes.contains(&Code::H001.to_string()) && codes.contains(&Code::H207.to_string()),
        "could not read the codes from src/diagnostic.rs: {codes:?}"
    );
    codes
}

/// `H` and three digits.
fn is_code(s: &str) -> bool {
    s.len() == 4 && s.starts_with('H') && s[1..].bytes().all(|b| b.is_ascii_digit())
}

/// The code of a `### Hxxx: title` heading.
fn heading_code(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("### ")?;
    let code = rest.get(..4)?;
    (is_code(code) && rest[4..].starts_with(':')).then_some(code)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Preamble,
    Bad,
    Good,
    Reference,
}

#[derive(Debug)]
struct Example {
    /// 1-based line of the opening fence in the README.
    line: usize,
    kind: Kind,
    /// The code section the example is in.
    code: Option<String>,
    standalone: bool,
    text: String,
}

/// Every `handoff` code block of the README.
fn examples() -> Vec<Example> {
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    let mut lines = README.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        if line.starts_with('#') {
            section = heading_code(line).map(String::from);
            continue;
        }
        let trimmed = line.trim_start();
        let fence = trimmed.len() - trimmed.trim_start_matches('`').len();
        if fence < 3 {
            continue;
        }
        let info: Vec<&str> = trimmed[fence..].split_whitespace().collect();
        let mut text = String::new();
        for (_, l) in lines.by_ref() {
            let t = l.trim();
            if t.len() >= fence && t.bytes().all(|b| b == b'`') {
                break;
            }
            text.push_str(l);
            text.push('\n');
        }
        if info.first() != Some(&"handoff") {
            continue;
        }
        let mut kind = Kind::Reference;
        let mut standalone = false;
        for tag in &info[1..] {
            match *tag {
                "preamble" => kind = Kind::Preamble,
                "bad" => kind = Kind::Bad,
                "good" => kind = Kind::Good,
                "standalone" => standalone = true,
                other => panic!("README.md:{}: unknown example tag `{other}`", i + 1),
            }
        }
        out.push(Example {
            line: i + 1,
            kind,
            code: section.clone(),
            standalone,
            text,
        });
    }
    out
}

#[test]
fn every_code_has_a_section() {
    let documented: Vec<&str> = prose_lines()
        .into_iter()
        .filter_map(|(_, l)| heading_code(l))
        .collect();
    let codes = codes();
    let missing: Vec<&String> = codes
        .iter()
        .filter(|c| !documented.contains(&c.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "grammar/README.md has no `### Hxxx: title` section for {missing:?}"
    );
    let unknown: Vec<&&str> = documented
        .iter()
        .filter(|c| !codes.iter().any(|k| k == *c))
        .collect();
    assert!(
        unknown.is_empty(),
        "grammar/README.md documents codes that src/diagnostic.rs does not declare: {unknown:?}"
    );
    let unique: BTreeSet<&&str> = documented.iter().collect();
    assert_eq!(unique.len(), documented.len(), "a code has two sections");
}

#[test]
fn every_code_section_has_a_bad_and_a_good_example() {
    let examples = examples();
    for code in codes() {
        for kind in [Kind::Bad, Kind::Good] {
            assert!(
                examples
                    .iter()
                    .any(|e| e.kind == kind && e.code.as_deref() == Some(code.as_str())),
                "the section of {code} in grammar/README.md has no ```handoff {} example",
                if kind == Kind::Bad { "bad" } else { "good" }
            );
        }
    }
    for e in &examples {
        if matches!(e.kind, Kind::Bad | Kind::Good) {
            assert!(
                e.code.is_some(),
                "README.md:{}: a bad/good example outside a `### Hxxx:` section",
                e.line
            );
        }
    }
}

/// Runs `handoff check --format json` on the example (with the preamble
/// unless it stands alone); returns the exit code and the diagnostics.
fn check(example: &Example, preamble: &str) -> (i32, Vec<JsonDiagnostic>) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    if !example.standalone {
        std::fs::write(dir.path().join(PREAMBLE_FILE), preamble).expect("write the preamble");
    }
    std::fs::write(dir.path().join(EXAMPLE_FILE), &example.text).expect("write the example");
    let output = assert_cmd::cargo::cargo_bin_cmd!("handoff")
        .arg("check")
        .arg("--format")
        .arg("json")
        .arg(dir.path())
        .output()
        .expect("run handoff check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let diagnostics: Vec<JsonDiagnostic> = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "README.md:{}: `handoff check --format json` printed no JSON ({e}):\n{stdout}\n{}",
            example.line,
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), diagnostics)
}

fn in_file<'a>(
    diagnostics: &'a [JsonDiagnostic],
    name: &'a str,
) -> impl Iterator<Item = &'a JsonDiagnostic> {
    diagnostics
        .iter()
        .filter(move |d| Path::new(&d.file).file_name().and_then(|f| f.to_str()) == Some(name))
}

/// The diagnostics as lines, without the preamble's unused-declaration
/// warnings (expected, and noise here).
fn show(diagnostics: &[JsonDiagnostic]) -> String {
    let noise: Vec<&JsonDiagnostic> = in_file(diagnostics, PREAMBLE_FILE)
        .filter(|d| d.code == "H204")
        .collect();
    let shown: String = diagnostics
        .iter()
        .filter(|d| !noise.iter().any(|n| std::ptr::eq(*n, *d)))
        .map(|d| {
            let file = Path::new(&d.file)
                .file_name()
                .map_or(d.file.clone(), |f| f.to_string_lossy().into_owned());
            format!(
                "\n    {file}:{}:{}: {} {}: {}",
                d.line, d.column, d.severity, d.code, d.message
            )
        })
        .collect();
    if shown.is_empty() {
        " nothing".to_string()
    } else {
        shown
    }
}

/// What is wrong with the result of checking `example`, if anything.
fn judge(example: &Example, status: i32, diagnostics: &[JsonDiagnostic]) -> Option<String> {
    let unused = |d: &&JsonDiagnostic| d.code == "H204" && d.severity == "warning";
    if in_file(diagnostics, PREAMBLE_FILE).any(|d| !unused(&d)) {
        return Some("the preamble got more than unused-declaration warnings".into());
    }
    let errors = diagnostics.iter().any(|d| d.severity == "error");
    if status != i32::from(errors) {
        return Some(format!("exit status {status} does not fit the diagnostics"));
    }
    let mine: Vec<&JsonDiagnostic> = in_file(diagnostics, EXAMPLE_FILE).collect();
    match example.kind {
        Kind::Preamble => None,
        Kind::Bad => {
            let code = example.code.as_deref().unwrap_or("?");
            if mine.is_empty() {
                Some(format!("expected {code}, got nothing"))
            } else if mine.iter().any(|d| d.code != code) {
                Some(format!("expected only {code}"))
            } else {
                None
            }
        }
        Kind::Good => (errors || !mine.is_empty()).then(|| "expected no problems".into()),
        Kind::Reference => (errors || mine.iter().any(|d| !unused(d)))
            .then(|| "expected no problems (but unused declarations)".into()),
    }
}

#[test]
fn examples_check_as_documented() {
    let examples = examples();
    let preambles: Vec<&Example> = examples
        .iter()
        .filter(|e| e.kind == Kind::Preamble)
        .collect();
    assert_eq!(
        preambles.len(),
        1,
        "grammar/README.md needs exactly one ```handoff preamble block"
    );
    let preamble = preambles[0].text.as_str();
    assert!(
        examples.len() > 2 * codes().len(),
        "found only {} examples in grammar/README.md",
        examples.len()
    );

    // A broken preamble would fail every example: report it once.
    let alone = Example {
        line: preambles[0].line,
        kind: Kind::Preamble,
        code: None,
        standalone: true,
        text: preamble.to_string(),
    };
    let (_, diagnostics) = check(&alone, preamble);
    assert!(
        diagnostics.iter().all(|d| d.code == "H204"),
        "README.md:{}: the preamble itself has problems:{}",
        alone.line,
        show(&diagnostics)
    );

    let mut failures = Vec::new();
    for example in examples.iter().filter(|e| e.kind != Kind::Preamble) {
        let (status, diagnostics) = check(example, preamble);
        if let Some(problem) = judge(example, status, &diagnostics) {
            let kind = match example.kind {
                Kind::Bad => "bad example",
                Kind::Good => "good example",
                _ => "example",
            };
            failures.push(format!(
                "README.md:{}: {kind}{}: {problem}; `handoff check` reported:{}",
                example.line,
                example
                    .code
                    .as_deref()
                    .map_or(String::new(), |c| format!(" for {c}")),
                show(&diagnostics)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} example(s) in grammar/README.md do not check as documented:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// GitHub's anchor for a heading: lowercase, punctuation dropped, spaces as
/// hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The README's lines outside code blocks, with their 1-based numbers.
fn prose_lines() -> Vec<(usize, &'static str)> {
    let mut out = Vec::new();
    let mut fence = 0;
    for (i, line) in README.lines().enumerate() {
        let t = line.trim();
        let ticks = t.len() - t.trim_start_matches('`').len();
        if fence == 0 && ticks >= 3 {
            fence = ticks;
        } else if fence > 0 && ticks >= fence && ticks == t.len() {
            fence = 0;
        } else if fence == 0 {
            out.push((i + 1, line));
        }
    }
    out
}

#[test]
fn links_within_the_page_resolve() {
    let prose = prose_lines();
    let anchors: Vec<String> = prose
        .iter()
        .filter_map(|(_, l)| l.strip_prefix('#'))
        .map(|h| slug(h.trim_start_matches('#')))
        .collect();
    let mut broken = Vec::new();
    for (n, line) in &prose {
        for (at, _) in line.match_indices("](#") {
            let anchor = line[at + 3..].split(')').next().unwrap_or_default();
            if !anchors.iter().any(|a| a == anchor) {
                broken.push(format!("README.md:{n}: #{anchor}"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to no heading:\n{}",
        broken.join("\n")
    );
}
