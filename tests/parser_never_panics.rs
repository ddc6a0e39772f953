//! `syntax::parse` must return on every input: no panic, no stack overflow,
//! and every span it reports must lie inside the text, on character
//! boundaries.
//!
//! Three kinds of input: arbitrary text, mutations of the real workflow
//! files, and pathological inputs (deep nesting, huge literals). The
//! pathological tests each run in a child process (this test binary run
//! again on that one test), because a stack overflow aborts the whole process
//! instead of failing one test.

use std::sync::Arc;

use handoff::diagnostic::{Code, SourceFile};
use handoff::syntax::{self, BriefItem, Declaration, HandoffItem, Parsed, Span, TemplatePart};
use proptest::prelude::*;
use proptest::sample::Index;

// ------------------------------------------------------------- checking ---

/// Parses `text` and checks every span in the result.
fn parse_checked(text: &str) -> Parsed {
    let source: Arc<SourceFile> = SourceFile::new("test.handoff", text);
    let parsed = syntax::parse(&source);
    for d in &parsed.diagnostics {
        check_span(text, d.span, &d.message);
        for related in &d.related {
            check_span(text, related.span, &related.text);
        }
        assert!(!d.message.is_empty(), "a diagnostic without a message");
    }
    for decl in &parsed.file.declarations {
        check_span(text, decl.span(), "a declaration");
    }
    for c in &parsed.file.comments {
        check_span(text, c.span, &c.text);
        assert_eq!(
            &text[c.span.start..c.span.end].trim_end_matches('\r'),
            &c.text
        );
    }
    // A file with no diagnostics declares something (else it gets H007).
    if parsed.diagnostics.is_empty() {
        assert!(!parsed.file.declarations.is_empty());
    }
    parsed
}

fn check_span(text: &str, span: Span, what: &str) {
    assert!(
        span.start <= span.end && span.end <= text.len(),
        "span {span:?} of {what:?} is outside the text ({} bytes)",
        text.len()
    );
    assert!(
        text.is_char_boundary(span.start) && text.is_char_boundary(span.end),
        "span {span:?} of {what:?} splits a character"
    );
}

fn codes(parsed: &Parsed) -> Vec<Code> {
    parsed.diagnostics.iter().map(|d| d.code).collect()
}

// ------------------------------------------------------- the real files ---

const WORKFLOWS: [&str; 3] = [
    include_str!("../workflows/crm.handoff"),
    include_str!("../workflows/marketing_to_sales.handoff"),
    include_str!("../workflows/sales_to_delivery.handoff"),
];

/// Every keyword of the language (grammar/handoff.pest, `k_*` and the
/// words inside atomic rules) and its punctuation.
const TOKENS: &[&str] = &[
    "and",
    "ask",
    "assign",
    "attach",
    "becomes",
    "body",
    "brief",
    "business",
    "by",
    "calendar",
    "changes",
    "channel",
    "checklist",
    "contains",
    "created",
    "done",
    "draft",
    "due",
    "email",
    "empty",
    "exception",
    "for",
    "from",
    "handoff",
    "holidays",
    "hours",
    "if",
    "in",
    "is",
    "least",
    "list",
    "loaded",
    "missing",
    "not",
    "notify",
    "now",
    "object",
    "of",
    "on",
    "one",
    "or",
    "pause",
    "require",
    "resume",
    "review",
    "robin",
    "round",
    "script",
    "set",
    "subject",
    "task",
    "team",
    "then",
    "timezone",
    "to",
    "today",
    "user",
    "when",
    "where",
    "workdays",
    "text",
    "number",
    "money",
    "datetime",
    "date",
    "yes/no",
    "yes",
    "no",
    "true",
    "false",
    "monday",
    "friday",
    "minutes",
    "hour",
    "days",
    "weeks",
    "{",
    "}",
    "\"",
    "```",
    "(",
    ")",
    "[",
    "]",
    ",",
    "=",
    ":",
    ".",
    "#",
    "\\",
    "\n",
    " ",
    "-",
    "+",
    "*",
    "/",
    "<",
    ">=",
    "==",
    "!=",
    "0",
    "42",
    "1_000.5",
    "2026-12-25",
    "2026-11-20T15:04:05Z",
    "9:00",
    "deal",
    "deal.stage",
    "\"x\"",
    "\"{deal.name}\"",
    "\u{feff}",
    "é",
    "\r\n",
];

#[test]
fn the_workflows_parse_cleanly() {
    for text in WORKFLOWS {
        let parsed = parse_checked(text);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        assert!(!parsed.file.declarations.is_empty());
    }
}

// ------------------------------------------------------ arbitrary input ---

proptest! {
    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        parse_checked(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_printable_text(text in "\\PC*") {
        parse_checked(&text);
    }

    /// Token soup reaches much deeper into the grammar than random text.
    #[test]
    fn arbitrary_token_sequences(
        tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..300),
        spaced in any::<bool>(),
    ) {
        let text = tokens.join(if spaced { " " } else { "" });
        parse_checked(&text);
    }
}

// ------------------------------------------- mutations of the workflows ---

#[derive(Debug, Clone)]
enum Mutation {
    Delete(Index, usize),
    InsertToken(Index, &'static str),
    InsertBytes(Index, Vec<u8>),
    Duplicate(Index, usize),
    Swap(Index, Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1..64usize).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (any::<Index>(), prop::sample::select(TOKENS))
            .prop_map(|(at, t)| Mutation::InsertToken(at, t)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, b)| Mutation::InsertBytes(at, b)),
        (any::<Index>(), 1..200usize).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
        (any::<Index>(), any::<Index>(), 1..64usize).prop_map(|(a, b, n)| Mutation::Swap(a, b, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    let at = |i: &Index| if len == 0 { 0 } else { i.index(len + 1) };
    match m {
        Mutation::Delete(i, n) => {
            let s = at(i);
            let e = (s + n).min(len);
            bytes.drain(s..e);
        }
        Mutation::InsertToken(i, t) => {
            let s = at(i);
            bytes.splice(s..s, t.bytes());
        }
        Mutation::InsertBytes(i, b) => {
            let s = at(i);
            bytes.splice(s..s, b.iter().copied());
        }
        Mutation::Duplicate(i, n) => {
            let s = at(i);
            let e = (s + n).min(len);
            let copy = bytes[s..e].to_vec();
            bytes.splice(e..e, copy);
        }
        Mutation::Swap(a, b, n) => {
            let (a, b) = (at(a), at(b));
            let (a, b) = (a.min(b), a.max(b));
            // Two ranges of the same length that do not overlap.
            let n = (*n).min(b - a).min(len - b);
            if n > 0 {
                let first = bytes[a..a + n].to_vec();
                let second = bytes[b..b + n].to_vec();
                bytes.splice(a..a + n, second);
                bytes.splice(b..b + n, first);
            }
        }
    }
}

proptest! {
    #[test]
    fn mutated_workflows(
        file in 0..WORKFLOWS.len(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let mut bytes = WORKFLOWS[file].as_bytes().to_vec();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        parse_checked(&String::from_utf8_lossy(&bytes));
    }

    /// All three files as one text, then mutated: errors in one declaration
    /// must not disturb the recovery for the next ones.
    #[test]
    fn mutated_project(mutations in prop::collection::vec(mutation(), 1..16)) {
        let mut bytes = WORKFLOWS.concat().into_bytes();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        parse_checked(&String::from_utf8_lossy(&bytes));
    }
}

// ------------------------------------------------- pathological inputs ---

/// Runs `body` in a child process: this test binary, filtered to the one
/// test `name`, with an environment variable telling it to run the body.
/// A stack overflow then fails this test (with the child's output) instead
/// of aborting every test in the binary.
fn in_child_process(name: &str, body: fn()) {
    const VAR: &str = "HANDOFF_PARSER_NEVER_PANICS_CHILD";
    if std::env::var(VAR).as_deref() == Ok(name) {
        body();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(VAR, name)
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name} failed in its child process ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // The filter must have found and run exactly this test.
    assert!(stdout.contains("1 passed"), "{name} did not run:\n{stdout}");
}

/// A handoff whose `done when` condition is `expr`.
fn condition(expr: &str) -> String {
    format!("handoff \"Deep\" {{\n  done when {expr}\n}}\n")
}

fn assert_too_deep(text: &str) {
    let parsed = parse_checked(text);
    assert!(
        codes(&parsed).contains(&Code::H008),
        "expected a too-deep error, got {:?}",
        parsed.diagnostics
    );
}

fn assert_clean(text: &str) -> Parsed {
    let parsed = parse_checked(text);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    assert_eq!(parsed.file.declarations.len(), 1);
    parsed
}

#[test]
fn ten_thousand_nested_parens() {
    in_child_process("ten_thousand_nested_parens", || {
        let n = 10_000;
        assert_too_deep(&condition(&format!("{}1{}", "(".repeat(n), ")".repeat(n))));
        // Unclosed, and closed too often.
        assert_too_deep(&condition(&"(".repeat(n)));
        parse_checked(&condition(&")".repeat(n)));
        assert_too_deep(&"[".repeat(n));
        assert_too_deep(&"{".repeat(n));
    });
}

#[test]
fn ten_thousand_nots() {
    in_child_process("ten_thousand_nots", || {
        assert_too_deep(&condition(&format!("{}yes", "not ".repeat(10_000))));
        assert_too_deep(&condition(&format!("{}yes", "not\n# c\n".repeat(10_000))));
        // `not (not (…))`: the nots and the brackets add up.
        let n = 5_000;
        assert_too_deep(&condition(&format!(
            "{}yes{}",
            "not (".repeat(n),
            ")".repeat(n)
        )));
    });
}

#[test]
fn a_hundred_thousand_minus_signs() {
    in_child_process("a_hundred_thousand_minus_signs", || {
        assert_too_deep(&condition(&format!("{}1 > 0", "-".repeat(100_000))));
        assert_too_deep(&condition(&format!("{}1 > 0", "- ".repeat(100_000))));
        // As subtraction: `1 - - - … 1`.
        assert_too_deep(&condition(&format!("1 {}1 > 0", "- ".repeat(100_000))));
        // Outside an expression: an error, but nothing deep.
        parse_checked(&"-".repeat(100_000));
    });
}

#[test]
fn long_operator_chains() {
    in_child_process("long_operator_chains", || {
        // Long enough that the tree, were it built, would overflow the
        // stack when dropped.
        let n = 20_000;
        assert_too_deep(&condition(&format!("1{} > 0", " + 1".repeat(n))));
        assert_too_deep(&condition(&format!("yes{}", " and yes".repeat(n))));
        assert_too_deep(&condition(&format!("no{}", " or no".repeat(n))));
        assert_too_deep(&condition(&format!("1{} > 0", " * 2 / 3".repeat(n))));
        // A long list is wide, not deep: it is fine.
        let list = vec!["1"; n].join(", ");
        assert_clean(&condition(&format!("deal.amount in [{list}]")));
    });
}

#[test]
fn ten_thousand_list_of() {
    in_child_process("ten_thousand_list_of", || {
        let text = format!("object o {{\n  f: {}text\n}}\n", "list of ".repeat(10_000));
        assert_too_deep(&text);
    });
}

#[test]
fn deeply_nested_interpolations() {
    in_child_process("deeply_nested_interpolations", || {
        let n = 10_000;
        let template = format!("{}x{}", "\"{".repeat(n), "}\"".repeat(n));
        assert_too_deep(&condition(&template));
        assert_too_deep(&format!(
            "handoff \"x\" {{ then {{ notify founder {template} }} }}\n"
        ));
        // Never closed.
        parse_checked(&condition(&"\"{".repeat(n)));
    });
}

/// Just inside the nesting limit everything still parses, and the recursion
/// fits in a test thread's stack (debug build included).
#[test]
fn nesting_at_the_limit_parses() {
    in_child_process("nesting_at_the_limit_parses", || {
        // The handoff's own `{` is one level; 63 remain.
        let n = 63;
        assert_clean(&condition(&format!(
            "{}1{} > 0",
            "(".repeat(n),
            ")".repeat(n)
        )));
        assert_clean(&condition(&format!(
            "1 in {}1{}",
            "[".repeat(n),
            "]".repeat(n)
        )));
        assert_clean(&condition(&format!("{}yes", "not ".repeat(n))));
        assert_clean(&condition(&format!(
            "{}x{} is set",
            "\"{".repeat(n),
            "}\"".repeat(n)
        )));
        assert_clean(&condition(&format!(
            "{}yes{}",
            "not (\"{".repeat(21),
            "}\")".repeat(21)
        )));
        assert_clean(&format!(
            "object o {{\n  f: {}text\n}}\n",
            "list of ".repeat(n)
        ));
        // One more level is too deep.
        assert_too_deep(&condition(&format!(
            "{}1{} > 0",
            "(".repeat(n + 1),
            ")".repeat(n + 1)
        )));
        assert_too_deep(&condition(&format!("{}yes", "not ".repeat(n + 1))));
    });
}

#[test]
fn a_one_megabyte_string() {
    in_child_process("a_one_megabyte_string", || {
        let big = "x".repeat(1 << 20);
        let parsed = assert_clean(&format!(
            "handoff \"H\" {{ brief {{ \"{big}\" = deal.name }} }}\n"
        ));
        let Declaration::Handoff(h) = &parsed.file.declarations[0] else {
            panic!("not a handoff: {:?}", parsed.file.declarations[0]);
        };
        let HandoffItem::Brief(brief) = &h.items[0] else {
            panic!("not a brief: {:?}", h.items[0]);
        };
        let BriefItem::Field { label, .. } = &brief.items[0] else {
            panic!("not a brief field: {:?}", brief.items[0]);
        };
        assert!(matches!(&label.parts[..], [TemplatePart::Text(t)] if *t == big));
        // Never closed.
        let parsed = parse_checked(&format!("user u = \"{big}\n"));
        assert!(codes(&parsed).contains(&Code::H002));
        // Multi-byte characters, one line.
        parse_checked(&format!("user u = \"{}\"", "é€😀".repeat(100_000)));
        // A one-megabyte comment and a one-megabyte script.
        assert_clean(&format!("# {big}\nuser u = \"u@example.com\"\n"));
        assert_clean(&format!(
            "handoff \"S\" {{ exception \"E\" when script ```{big}``` }}\n"
        ));
    });
}

#[test]
fn huge_numbers() {
    in_child_process("huge_numbers", || {
        let digits = "9".repeat(100_000);
        let parsed = parse_checked(&condition(&format!("deal.amount > {digits}")));
        assert!(codes(&parsed).contains(&Code::H005));
        let parsed = parse_checked(&condition(&format!("deal.amount > 0.{digits}")));
        assert!(!codes(&parsed).contains(&Code::H001));
        let parsed = parse_checked(&format!(
            "handoff \"D\" {{ then {{ task \"t\" for x due in {digits} days }} }}\n"
        ));
        assert!(codes(&parsed).contains(&Code::H005));
        parse_checked(&format!("{}\n", "_".repeat(100_000)));
    });
}

/// Inputs that make error recovery work hard: many broken declarations.
#[test]
fn many_errors() {
    in_child_process("many_errors", || {
        let n = 5_000;
        let parsed = parse_checked(&"handoff \"x\" {\n".repeat(n));
        assert!(!parsed.diagnostics.is_empty());
        let parsed = parse_checked(&"user u = \n".repeat(n));
        assert!(parsed.diagnostics.len() >= n);
        parse_checked(&"\"\n".repeat(n));
        parse_checked(&"```".repeat(n));
        parse_checked(&"}".repeat(10 * n));
        parse_checked(&"object o { f: }\n".repeat(n));
    });
}
