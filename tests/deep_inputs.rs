//! The deepest inputs the language accepts go through the whole pipeline
//! (parse, check, compile, evaluate, format) in a thread with 1 MiB of
//! stack: half of what `std` and tokio give a thread by default.
//!
//! Why this matters: the parser is recursive (pest), and so are the
//! checker, the compiler, the evaluator and the formatter. Nothing inside
//! them probes the stack; what bounds their depth is the language's own
//! limits, enforced before any of them recurse: brackets, interpolations
//! and runs of `not` / `list of` nest at most 64 levels deep (H008 from the
//! lexical scan), and no expression tree is built deeper than 256 (H008
//! from the tree builder). This test pins that those limits leave room.
//! Inputs past the limits are in `parser_never_panics.rs`.
//!
//! Runs in a child process (this binary again, on this one test) so that an
//! overflow, which aborts, fails the test instead of the whole run.

mod common;

use handoff::eval::{Event, OutcomeStatus, State};

const STACK: usize = 1 << 20;

const OBJECT: &str = r#"object deal {
  stage:  one of "Open", "Won"
  amount: money
  name:   text
  tags:   list of list of list of text
  deep:   LIST_OF_63 text
}
"#;

/// Every shape at its deepest, as `(name, condition)`. The handoff's own
/// `{` is one level of nesting, so brackets get 63.
fn deep_conditions() -> Vec<(&'static str, String)> {
    let n = 63;
    vec![
        (
            "parens",
            format!("{}deal.amount{} > 0", "(".repeat(n), ")".repeat(n)),
        ),
        ("nots", format!("{}deal.amount > 0", "not ".repeat(n))),
        (
            "lists",
            format!(
                "deal.amount > 0 and {}1{} is set",
                "[".repeat(n),
                "]".repeat(n)
            ),
        ),
        (
            "interpolations",
            format!(
                "deal.name is {}deal.name{}",
                "\"{".repeat(n),
                "}\"".repeat(n)
            ),
        ),
        (
            "not and parens",
            format!(
                "not {}deal.amount > 0{}",
                "not (".repeat(31),
                ")".repeat(31)
            ),
        ),
        // Flat in the text, deep in the tree: 254 left-nested additions
        // and the comparison make the deepest tree accepted (256).
        ("sum", format!("deal.amount{} > 0", " + 1".repeat(254))),
        // Both limits at once: brackets around a long chain.
        (
            "parens around a chain",
            format!(
                "{}deal.amount{}{} > 0",
                "(".repeat(n),
                " + 1".repeat(180),
                ")".repeat(n)
            ),
        ),
        (
            "and chain",
            format!("deal.amount > 0{}", " and deal.amount > 0".repeat(254)),
        ),
    ]
}

fn project() -> String {
    // The object's `{` is one level: 63 `list of`s make 64.
    let mut src = OBJECT.replace("LIST_OF_63", &"list of ".repeat(63));
    src.push_str("\nuser founder = \"f@example.com\"\n");
    for (i, (name, cond)) in deep_conditions().into_iter().enumerate() {
        src.push_str(&format!(
            "\nhandoff \"{name}\" {{\n  when deal.stage becomes \"Won\"\n  \
             exception \"E{i}\" when {cond}\n  \
             on exception {{ notify founder \"{name}\" }}\n  \
             then {{ notify founder \"{name}\" }}\n}}\n"
        ));
    }
    src
}

fn whole_pipeline() {
    let src = project();
    // Parse, check and compile.
    let set = common::set_from_text(&src);
    assert_eq!(set.handoffs().len(), deep_conditions().len());

    // Evaluate every deep condition.
    let event = serde_json::json!({
        "id": "e1", "object": "deal", "record_id": "D-1",
        "record": {"stage": "Won", "amount": 5, "name": "x"},
        "previous": {"stage": "Open"},
    });
    let event = Event::decode(&set, event.to_string().as_bytes()).unwrap();
    let outcome = State::default()
        .step(&set, &event, "2026-11-20T15:00:00Z".parse().unwrap())
        .expect("same version");
    assert_eq!(outcome.handoffs.len(), deep_conditions().len());
    for h in &outcome.handoffs {
        assert!(
            matches!(h.status, OutcomeStatus::Review | OutcomeStatus::Proceeded),
            "{}: {:?}",
            h.workflow,
            h.status
        );
    }

    // Format, and the result parses to the same declarations.
    let source = handoff::diagnostic::SourceFile::new("deep.handoff", &src);
    let parsed = handoff::syntax::parse(&source);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let formatted = handoff::syntax::format(&parsed.file, &src);
    let again = handoff::syntax::parse(&handoff::diagnostic::SourceFile::new(
        "deep.handoff",
        &formatted,
    ));
    assert!(again.diagnostics.is_empty(), "{:?}", again.diagnostics);
    assert_eq!(
        again.file.declarations.len(),
        parsed.file.declarations.len()
    );
}

#[test]
fn the_deepest_accepted_inputs_fit_in_one_mebibyte_of_stack() {
    const VAR: &str = "HANDOFF_DEEP_INPUTS_CHILD";
    const NAME: &str = "the_deepest_accepted_inputs_fit_in_one_mebibyte_of_stack";
    if std::env::var(VAR).is_ok() {
        std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(whole_pipeline)
            .unwrap()
            .join()
            .expect("the pipeline thread panicked");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(VAR, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the child failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child did not run:\n{stdout}"
    );
}
