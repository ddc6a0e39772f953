//! The workflow graph of a handoff (trigger → gate → missing branch /
//! exception check → review / normal path → actions → done) and drawing it,
//! or the cascade graph, as Graphviz dot or Mermaid.

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use super::{CAction, CompiledHandoff, ExceptionKind, WorkflowSet};
use crate::check::ObjectSchema;

/// A step of a handoff, as an ops person would name it.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Trigger(String),
    Gate(Vec<String>),
    MissingBranch,
    ExceptionCheck(Vec<String>),
    Review,
    Action(String),
    Done(String),
}

/// A handoff's steps; edge weights are the branch labels.
pub type WorkflowGraph = DiGraph<Step, String>;

/// Builds the graph of one compiled handoff.
pub(super) fn build(h: &CompiledHandoff, object: &ObjectSchema) -> WorkflowGraph {
    let mut g = WorkflowGraph::new();
    let field = |s: usize| {
        object
            .fields
            .get(s)
            .map_or("?".to_string(), |f| f.name.clone())
    };
    let mut trigger_text = h.trigger.text.clone();
    if let Some(f) = &h.trigger.filter {
        trigger_text.push_str(&format!(" where {}", f.text));
    }
    let trigger = g.add_node(Step::Trigger(trigger_text));
    let mut last = trigger;
    let mut label = "fired".to_string();

    if !h.require.is_empty() {
        let gate = g.add_node(Step::Gate(h.require.iter().map(|&s| field(s)).collect()));
        g.add_edge(last, gate, label);
        let missing = g.add_node(Step::MissingBranch);
        g.add_edge(gate, missing, "fields missing: pause".into());
        chain(&mut g, missing, &h.if_missing, &field);
        // A paused handoff re-checks the gate when the record changes.
        g.add_edge(missing, gate, "record updated".into());
        last = gate;
        label = "all fields present".into();
    }
    if !h.exceptions.is_empty() {
        let names = h
            .exceptions
            .iter()
            .map(|e| match &e.test {
                ExceptionKind::Expr(c) => format!("{}: {}", e.name, c.text),
                ExceptionKind::Script { .. } => format!("{}: script", e.name),
            })
            .collect();
        let check = g.add_node(Step::ExceptionCheck(names));
        g.add_edge(last, check, label);
        let review = g.add_node(Step::Review);
        g.add_edge(check, review, "exception flagged".into());
        let end = chain(&mut g, review, &h.on_exception, &field);
        let resume = h.resume_when.as_ref().map_or("approved".to_string(), |c| {
            format!("approved, or {}", c.text)
        });
        last = check;
        label = "no exception".into();
        let then_start = chain_start(&mut g, last, label.clone(), &h.then, &field);
        g.add_edge(end, then_start.0, resume);
        return finish(g, then_start.1, h);
    }
    let (_, end) = chain_start(&mut g, last, label, &h.then, &field);
    finish(g, end, h)
}

fn finish(mut g: WorkflowGraph, end: NodeIndex, h: &CompiledHandoff) -> WorkflowGraph {
    // Without `done when` nothing is waited for: the handoff is finished
    // once it has proceeded (the engine never marks it done), and a
    // "waiting for done" step would draw a wait that does not happen.
    let (step, edge) = match &h.done_when {
        Some(c) => (format!("done when {}", c.text), "waiting for"),
        None => ("proceeded: finished\n(no `done when`)".to_string(), ""),
    };
    let done = g.add_node(Step::Done(step));
    g.add_edge(end, done, edge.into());
    g
}

/// Adds `actions` after `from` (first edge labelled `label`); returns the
/// first and last node.
fn chain_start(
    g: &mut WorkflowGraph,
    from: NodeIndex,
    label: String,
    actions: &[CAction],
    field: &dyn Fn(usize) -> String,
) -> (NodeIndex, NodeIndex) {
    let mut first = None;
    let mut last = from;
    let mut label = Some(label);
    for a in actions {
        let n = g.add_node(Step::Action(describe(a, field)));
        g.add_edge(last, n, label.take().unwrap_or_default());
        first.get_or_insert(n);
        last = n;
    }
    match first {
        Some(f) => (f, last),
        None => {
            let n = g.add_node(Step::Action("proceed".into()));
            g.add_edge(from, n, label.unwrap_or_default());
            (n, n)
        }
    }
}

fn chain(
    g: &mut WorkflowGraph,
    from: NodeIndex,
    actions: &[CAction],
    field: &dyn Fn(usize) -> String,
) -> NodeIndex {
    let mut last = from;
    for a in actions {
        let n = g.add_node(Step::Action(describe(a, field)));
        g.add_edge(last, n, String::new());
        last = n;
    }
    last
}

/// One line for an action.
pub fn describe(a: &CAction, field: &dyn Fn(usize) -> String) -> String {
    use super::{AssignFrom, NotifyTo, PersonRef};
    let person = |p: &PersonRef| match p {
        PersonRef::User { name, .. } => name.clone(),
        PersonRef::Role(r) => r.clone(),
        PersonRef::Field(s) => field(*s),
    };
    match a {
        CAction::Assign { role, from } => match from {
            AssignFrom::Team { team, strategy, .. } => format!(
                "assign {role} from team {team} by {}",
                match strategy {
                    crate::syntax::Strategy::RoundRobin => "round robin",
                    crate::syntax::Strategy::LeastLoaded => "least loaded",
                }
            ),
            AssignFrom::Person(p) => format!("assign {role} to {}", person(p)),
        },
        CAction::Task {
            title,
            assignee,
            due,
            ..
        } => {
            let due = due.map_or(String::new(), |d| {
                format!(" due in {}", crate::value::Value::Duration(d))
            });
            format!(
                "task \"{}\" for {}{due}",
                template_text(title),
                person(assignee)
            )
        }
        CAction::Notify { to, .. } => match to {
            NotifyTo::Channel { name, .. } => format!("notify channel {name}"),
            NotifyTo::Person(p) => format!("notify {}", person(p)),
        },
        CAction::EmailDraft { to, .. } => format!("draft email to {} for review", person(to)),
        CAction::Set { slot, .. } => format!("set {}", field(*slot)),
        CAction::Pause => "pause".into(),
    }
}

fn template_text(t: &super::CTemplate) -> String {
    t.parts
        .iter()
        .map(|p| match p {
            super::CPart::Text(s) => s.clone(),
            super::CPart::Expr(_) => "{…}".into(),
        })
        .collect()
}

fn step_label(s: &Step) -> String {
    match s {
        Step::Trigger(t) => format!("when {}", t.trim_start_matches("when ")),
        Step::Gate(fields) => format!("require {}", fields.join(", ")),
        Step::MissingBranch => "if missing".into(),
        Step::ExceptionCheck(names) => format!("exceptions\n{}", names.join("\n")),
        Step::Review => "on exception: review".into(),
        Step::Action(a) => a.clone(),
        Step::Done(d) => d.clone(),
    }
}

fn shape(s: &Step) -> &'static str {
    match s {
        Step::Trigger(_) => "oval",
        Step::Gate(_) | Step::ExceptionCheck(_) => "diamond",
        Step::Done(_) => "doubleoctagon",
        _ => "box",
    }
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn mermaid_escape(s: &str) -> String {
    s.replace('"', "#quot;").replace('\n', "<br/>")
}

/// Graphviz dot for one handoff.
pub fn handoff_dot(h: &CompiledHandoff) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=TB;\n  node [fontname=\"Helvetica\"];\n",
        dot_escape(&h.name)
    );
    out.push_str(&format!(
        "  label=\"{}\";\n  labelloc=t;\n",
        dot_escape(&h.name)
    ));
    for n in h.graph.node_indices() {
        let s = &h.graph[n];
        out.push_str(&format!(
            "  n{} [label=\"{}\", shape={}];\n",
            n.index(),
            dot_escape(&step_label(s)),
            shape(s)
        ));
    }
    for e in h.graph.edge_references() {
        out.push_str(&format!(
            "  n{} -> n{} [label=\"{}\"];\n",
            e.source().index(),
            e.target().index(),
            dot_escape(e.weight())
        ));
    }
    out.push_str("}\n");
    out
}

/// Mermaid flowchart for one handoff.
pub fn handoff_mermaid(h: &CompiledHandoff) -> String {
    let mut out = String::from("flowchart TD\n");
    for n in h.graph.node_indices() {
        let s = &h.graph[n];
        let label = mermaid_escape(&step_label(s));
        let node = match s {
            Step::Trigger(_) => format!("([\"{label}\"])"),
            Step::Gate(_) | Step::ExceptionCheck(_) => format!("{{\"{label}\"}}"),
            Step::Done(_) => format!("[[\"{label}\"]]"),
            _ => format!("[\"{label}\"]"),
        };
        out.push_str(&format!("  n{}{node}\n", n.index()));
    }
    for e in h.graph.edge_references() {
        let l = e.weight();
        if l.is_empty() {
            out.push_str(&format!(
                "  n{} --> n{}\n",
                e.source().index(),
                e.target().index()
            ));
        } else {
            out.push_str(&format!(
                "  n{} -->|\"{}\"| n{}\n",
                e.source().index(),
                mermaid_escape(l),
                e.target().index()
            ));
        }
    }
    out
}

/// Graphviz dot for the cascade graph of a whole project.
pub fn cascade_dot(set: &WorkflowSet) -> String {
    let g = set.cascade();
    let mut out = String::from(
        "digraph cascade {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n",
    );
    for n in g.node_indices() {
        let h = &set.handoffs()[g[n]];
        out.push_str(&format!(
            "  n{} [label=\"{}\\n{}\"];\n",
            n.index(),
            dot_escape(&h.name),
            dot_escape(&h.trigger.text)
        ));
    }
    for e in g.edge_references() {
        out.push_str(&format!(
            "  n{} -> n{} [label=\"{}\"];\n",
            e.source().index(),
            e.target().index(),
            dot_escape(&e.weight().label)
        ));
    }
    out.push_str("}\n");
    out
}

/// Mermaid flowchart for the cascade graph.
pub fn cascade_mermaid(set: &WorkflowSet) -> String {
    let g = set.cascade();
    let mut out = String::from("flowchart LR\n");
    for n in g.node_indices() {
        let h = &set.handoffs()[g[n]];
        out.push_str(&format!(
            "  n{}[\"{}<br/>{}\"]\n",
            n.index(),
            mermaid_escape(&h.name),
            mermaid_escape(&h.trigger.text)
        ));
    }
    for e in g.edge_references() {
        out.push_str(&format!(
            "  n{} -->|\"{}\"| n{}\n",
            e.source().index(),
            mermaid_escape(&e.weight().label),
            e.target().index()
        ));
    }
    out
}
