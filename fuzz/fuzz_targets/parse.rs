//! Arbitrary bytes → `syntax::parse` must return (no panic, no stack
//! overflow), and every span it reports must lie inside the text on
//! character boundaries. When the text parses without errors, the formatter
//! must round-trip it: the formatted text parses without errors to the same
//! tree (spans aside) and comments, and formatting it again changes nothing.

#![no_main]

use handoff::diagnostic::{Severity, SourceFile};
use handoff::syntax::{self, Parsed, Span};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_checked(text);
    if has_errors(&parsed) {
        return;
    }
    let once = syntax::format(&parsed.file, text);
    let reparsed = parse_checked(&once);
    assert!(
        !has_errors(&reparsed),
        "the formatted text does not parse: {:?}\n--- source\n{text}\n--- formatted\n{once}",
        reparsed.diagnostics
    );
    assert_eq!(
        tree(&parsed),
        tree(&reparsed),
        "the formatted text parses to a different tree\n--- source\n{text}\n--- formatted\n{once}"
    );
    let twice = syntax::format(&reparsed.file, &once);
    assert_eq!(once, twice, "formatting is not idempotent");
});

fn parse_checked(text: &str) -> Parsed {
    let source = SourceFile::new("fuzz.handoff", text);
    let parsed = syntax::parse(&source);
    for d in &parsed.diagnostics {
        let spans = std::iter::once(d.span).chain(d.related.iter().map(|l| l.span));
        for span in spans {
            check_span(text, span, &d.message);
        }
    }
    for decl in &parsed.file.declarations {
        check_span(text, decl.span(), "a declaration");
    }
    for c in &parsed.file.comments {
        check_span(text, c.span, &c.text);
    }
    parsed
}

fn check_span(text: &str, span: Span, what: &str) {
    assert!(
        span.start <= span.end && span.end <= text.len(),
        "span {span:?} of {what:?} outside the text ({} bytes)",
        text.len()
    );
    assert!(
        text.is_char_boundary(span.start) && text.is_char_boundary(span.end),
        "span {span:?} of {what:?} splits a character"
    );
}

fn has_errors(parsed: &Parsed) -> bool {
    parsed
        .diagnostics
        .iter()
        .any(|d| d.severity == Severity::Error)
}

/// The tree as JSON (spans serialize as unit). The formatter trims trailing
/// whitespace in comments, so comments compare without it.
fn tree(parsed: &Parsed) -> Value {
    let mut json = serde_json::to_value(&parsed.file).expect("a tree serializes");
    if let Some(comments) = json.get_mut("comments").and_then(Value::as_array_mut) {
        for c in comments {
            if let Some(Value::String(text)) = c.get_mut("text") {
                *text = text.trim_end().to_string();
            }
        }
    }
    json
}
