//! `handoff graph`: every bundled workflow, and the cascade graph, renders
//! with Graphviz; Mermaid output has a node per step.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::handoff;

fn workflow_names() -> Vec<String> {
    let (set, _) = handoff::compile::load(&["workflows".into()]).expect("workflows compile");
    set.handoffs().iter().map(|h| h.name.clone()).collect()
}

/// Renders dot text to SVG with Graphviz and returns the SVG.
fn render(dot: &str) -> String {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("Graphviz `dot` is installed (.ci/run installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(dot.as_bytes())
        .expect("write dot");
    let out = child.wait_with_output().expect("dot runs");
    assert!(
        out.status.success(),
        "dot rejected the graph:\n{}\n{dot}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("svg is utf-8")
}

fn graph(args: &[&str]) -> String {
    let out = handoff().arg("graph").args(args).output().expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn every_workflow_renders_with_graphviz() {
    let names = workflow_names();
    assert_eq!(names, ["Marketing to Sales", "Sales to Delivery"]);
    for name in &names {
        let dot = graph(&["workflows", "--workflow", name, "--format", "dot"]);
        let svg = render(&dot);
        assert!(svg.contains("<svg"), "{name}: no svg");
        // The branch labels an ops person reads are in the picture.
        assert!(svg.contains("fired"), "{name}: no trigger edge");
        assert!(
            svg.contains("fields missing: pause"),
            "{name}: no missing branch"
        );
        assert!(svg.contains("done when"), "{name}: no done step");
    }
    let sales = graph(&["workflows", "--workflow", "Sales to Delivery"]);
    for label in [
        "exception flagged",
        "no exception",
        "approved, or deal.review_approved is yes",
    ] {
        assert!(
            sales.contains(label),
            "missing edge label {label:?}:\n{sales}"
        );
    }
}

#[test]
fn cascade_graph_renders_with_graphviz() {
    let dot = graph(&["workflows", "--format", "dot"]);
    assert!(dot.starts_with("digraph cascade {"));
    assert!(render(&dot).contains("Sales to Delivery"));
}

#[test]
fn cascade_edges_follow_set_actions() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("a.handoff"),
        r#"
object deal {
  stage: one of "Won", "Onboarding", "Live"
}
user ops = "ops@example.com"
handoff "Won to onboarding" {
  when deal.stage becomes "Won"
  then { set deal.stage = "Onboarding" }
}
handoff "Onboarding starts" {
  when deal.stage becomes "Onboarding"
  then { task "Start" for ops }
}
"#,
    )
    .expect("write");
    let path = dir.path().to_str().expect("utf-8 path");
    let dot = graph(&[path, "--format", "dot"]);
    assert!(
        dot.contains("n0 -> n1 [label=\"deal.stage = \\\"Onboarding\\\"\"];"),
        "{dot}"
    );
    render(&dot);
    let mermaid = graph(&[path, "--format", "mermaid"]);
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(
        mermaid.contains("n0 -->|\"deal.stage = #quot;Onboarding#quot;\"| n1"),
        "{mermaid}"
    );
}

#[test]
fn mermaid_has_a_node_per_step() {
    let m = graph(&[
        "workflows",
        "--workflow",
        "Marketing to Sales",
        "--format",
        "mermaid",
    ]);
    assert!(m.starts_with("flowchart TD\n"));
    assert!(m.contains("([\"when lead.status becomes"), "{m}");
    assert!(m.contains("-->|\"fields missing: pause\"|"), "{m}");
}

#[test]
fn unknown_workflow_is_a_usage_error_with_a_suggestion() {
    let out = handoff()
        .args(["graph", "workflows", "--workflow", "Sales to Delivry"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no handoff called \"Sales to Delivry\""),
        "{err}"
    );
    assert!(err.contains("did you mean \"Sales to Delivery\"?"), "{err}");
}

/// The author's `#` comments are notes for people reading the file, not
/// part of a condition: no label of any graph shows one.
#[test]
fn regression_labels_carry_no_comments() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/graph/comments");
    for format in ["dot", "mermaid"] {
        for workflow in [None, Some("Sales to Delivery"), Some("Onboarding")] {
            let mut args = vec![dir, "--format", format];
            if let Some(w) = workflow {
                args.extend(["--workflow", w]);
            }
            let out = graph(&args);
            assert!(
                out.contains("when deal.stage becomes"),
                "{format} {workflow:?}: the graph shows its trigger:\n{out}"
            );
            assert!(
                !out.contains("NOTE"),
                "{format} {workflow:?}: a comment is in a label:\n{out}"
            );
        }
    }
}

/// A handoff without `done when` is finished once it has proceeded (the
/// engine never marks it done): its graph ends there, and draws no wait.
#[test]
fn a_handoff_without_done_when_ends_where_it_proceeds() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/graph/no_done_when"
    );
    for format in ["dot", "mermaid"] {
        let out = graph(&[dir, "--workflow", "Won notice", "--format", format]);
        assert!(out.contains("no `done when`"), "{format}:\n{out}");
        assert!(!out.contains("waiting for"), "{format}:\n{out}");
        assert!(!out.contains("done when deal"), "{format}:\n{out}");
    }
    let svg = render(&graph(&[
        dir,
        "--workflow",
        "Won notice",
        "--format",
        "dot",
    ]));
    assert!(svg.contains("<svg"));
}
