//! The cascade graph: an edge from handoff A to handoff B when an action of A
//! (`set deal.stage = …`) can fire B's trigger. Cycles are errors (the rules
//! would fire each other forever); two handoffs on the same trigger that
//! assign the same role or set the same field are errors (they would fight
//! over the record).
//!
//! `where` filters count: a `set` does not fire a handoff whose filter the
//! values it sets make false, and two handoffs on one trigger with different
//! filters are taken to split the records between them. Both are what the
//! help tells people to do, so following the help must clear the error.

use std::collections::HashMap;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use super::handoff::{literal_key, value_key};
use super::{Checker, Loc};
use crate::diagnostic::Code;
use crate::syntax::{
    BinaryOp, Expr, ExprKind, HandoffItem, IsTest, Literal, Trigger, TriggerEvent,
};

/// Why one handoff can fire another.
#[derive(Debug, Clone)]
pub struct CascadeEdge {
    /// The `set` action that fires the next handoff.
    pub action: Loc,
    /// `deal.stage = "Closed Won"`, for drawing.
    pub label: String,
}

/// Handoffs (nodes hold the index into `Checked::handoffs`) and the sets that
/// fire them.
pub type CascadeGraph = DiGraph<usize, CascadeEdge>;

/// What fires a handoff, reduced to comparable parts.
#[derive(Debug, Clone, PartialEq)]
struct TriggerKey {
    object: usize,
    /// `None` for `is created`.
    slot: Option<usize>,
    event: TriggerKind,
}

#[derive(Debug, Clone, PartialEq)]
enum TriggerKind {
    Created,
    Becomes(String),
    Changes {
        from: Option<String>,
        to: Option<String>,
    },
}

impl TriggerKind {
    /// Whether the trigger firing means the field holds `value` now.
    fn guarantees(&self, value: &str) -> bool {
        match self {
            TriggerKind::Becomes(v) => v == value,
            TriggerKind::Changes { to: Some(t), .. } => t == value,
            _ => false,
        }
    }
}

impl Checker<'_> {
    pub(super) fn cascade(&mut self) -> CascadeGraph {
        let mut graph = CascadeGraph::new();
        let nodes: Vec<NodeIndex> = (0..self.handoffs.len())
            .map(|i| graph.add_node(i))
            .collect();
        let keys: Vec<Option<TriggerKey>> = (0..self.handoffs.len())
            .map(|i| self.trigger_key(i))
            .collect();

        let filters: Vec<Option<&Expr>> = (0..self.handoffs.len())
            .map(|i| self.trigger_of(i).and_then(|t| t.filter.as_ref()))
            .collect();
        for (a, info) in self.handoffs.iter().enumerate() {
            let known = known_values(info, &self.schema.objects[info.object]);
            for (slot, value, loc) in &info.sets {
                // Setting the trigger field to the value the trigger just
                // saw changes nothing, so it can fire no `becomes`/`changes`.
                if keys[a].as_ref().is_some_and(|k| {
                    k.slot == Some(*slot)
                        && value
                            .as_ref()
                            .is_some_and(|v| k.event.guarantees(&literal_key(v)))
                }) {
                    continue;
                }
                for (b, key) in keys.iter().enumerate() {
                    let Some(key) = key else { continue };
                    if key.object != info.object || key.slot != Some(*slot) {
                        continue;
                    }
                    let object = &self.schema.objects[info.object].name;
                    if filters[b].and_then(|f| eval(f, object, &known)) == Some(false) {
                        continue;
                    }
                    let value_key = value.as_ref().map(literal_key);
                    let fires = match &key.event {
                        TriggerKind::Created => false,
                        TriggerKind::Becomes(v) => value_key.as_ref().is_none_or(|x| x == v),
                        TriggerKind::Changes { to, .. } => match (to, &value_key) {
                            (Some(t), Some(v)) => t == v,
                            _ => true,
                        },
                    };
                    if fires {
                        let obj = &self.schema.objects[info.object];
                        let label = format!(
                            "{}.{} = {}",
                            obj.name,
                            obj.fields[*slot].name,
                            value.as_ref().map_or("…".to_string(), literal_text)
                        );
                        graph.add_edge(
                            nodes[a],
                            nodes[b],
                            CascadeEdge {
                                action: *loc,
                                label,
                            },
                        );
                    }
                }
            }
        }
        self.report_cycles(&graph);
        self.report_conflicts(&keys);
        graph
    }

    /// The trigger of handoff `h`.
    fn trigger_of(&self, h: usize) -> Option<&'_ Trigger> {
        let info = &self.handoffs[h];
        let decl = match &self.units[info.unit].file.declarations[info.decl] {
            crate::syntax::Declaration::Handoff(d) => d,
            _ => return None,
        };
        decl.items.iter().find_map(|i| match i {
            HandoffItem::Trigger(t) => Some(t),
            _ => None,
        })
    }

    fn trigger_key(&self, h: usize) -> Option<TriggerKey> {
        let info = &self.handoffs[h];
        let trigger = self.trigger_of(h)?;
        let obj = self.schema.objects.get(info.object)?;
        Some(match &trigger.event {
            TriggerEvent::Created { .. } => TriggerKey {
                object: info.object,
                slot: None,
                event: TriggerKind::Created,
            },
            TriggerEvent::Becomes { field, value } => TriggerKey {
                object: info.object,
                slot: Some(obj.slot(&field.field.name)?),
                event: TriggerKind::Becomes(literal_key(value)),
            },
            // `changes to X` fires on the same transitions as `becomes X`.
            TriggerEvent::Changes {
                field,
                from: None,
                to: Some(to),
            } => TriggerKey {
                object: info.object,
                slot: Some(obj.slot(&field.field.name)?),
                event: TriggerKind::Becomes(literal_key(to)),
            },
            TriggerEvent::Changes { field, from, to } => TriggerKey {
                object: info.object,
                slot: Some(obj.slot(&field.field.name)?),
                event: TriggerKind::Changes {
                    from: from.as_ref().map(literal_key),
                    to: to.as_ref().map(literal_key),
                },
            },
        })
    }

    fn report_cycles(&mut self, graph: &CascadeGraph) {
        for scc in tarjan_scc(graph) {
            let self_loop = scc.len() == 1 && graph.contains_edge(scc[0], scc[0]);
            if scc.len() < 2 && !self_loop {
                continue;
            }
            let cycle = find_cycle(graph, &scc);
            let Some(&(_, first_edge)) = cycle.first() else {
                continue;
            };
            let name = |n: NodeIndex| format!("\"{}\"", self.handoffs[graph[n]].name);
            let names: Vec<String> = cycle.iter().map(|&(n, _)| name(n)).collect();
            let first = &graph[first_edge];
            let (message, label) = if self_loop {
                (
                    format!(
                        "handoff {} fires itself: its own `set` matches its trigger",
                        names[0]
                    ),
                    format!("sets {}, which fires {} again", first.label, names[0]),
                )
            } else {
                let next = graph
                    .edge_endpoints(first_edge)
                    .map_or_else(String::new, |(_, t)| name(t));
                (
                    format!(
                        "handoffs fire each other in a cycle: {} → {}",
                        names.join(" → "),
                        names[0]
                    ),
                    format!("sets {}, which fires {next}", first.label),
                )
            };
            let mut steps = String::from("the cycle:");
            for &(n, e) in &cycle {
                let edge = &graph[e];
                let file = &self.units[edge.action.file].source;
                let (line, col) = file.line_col(edge.action.span.start);
                steps.push_str(&format!(
                    "\n  {} sets {} ({}:{line}:{col})",
                    name(n),
                    edge.label,
                    file.name
                ));
            }
            let d = self.diag(Code::H118, first.action, message, label).with_help(format!(
                "{steps}\nbreak the cycle: remove one `set`, or give a trigger a `where` filter that the `set` makes false"
            ));
            self.diagnostics.push(d);
        }
    }

    /// H119 for each handoff that runs on the same trigger as an earlier
    /// one and assigns the same role or sets the same field, named against
    /// the first such handoff only: n copies of one handoff are n - 1
    /// findings, not one per pair (which buried the file under n² errors,
    /// each quoting the lines between its two handoffs).
    fn report_conflicts(&mut self, keys: &[Option<TriggerKey>]) {
        // Each filter serialized once, not once per pair compared (with
        // thousands of handoffs the pairs are millions), and as text, which
        // compares in one pass where a JSON tree compares map by map.
        let filters: Vec<Option<Option<String>>> = (0..self.handoffs.len())
            .map(|h| {
                self.trigger_of(h)
                    .and_then(|t| t.filter.as_ref())
                    .map(|f| serde_json::to_string(f).ok())
            })
            .collect();
        for b in 1..self.handoffs.len() {
            let Some(kb) = &keys[b] else {
                continue;
            };
            for a in 0..b {
                if keys[a].as_ref() != Some(kb) {
                    continue;
                }
                // Two different filters are taken to split the records
                // between the handoffs; the same filter (or none on one side)
                // lets both run on one event.
                if let (Some(fa), Some(fb)) = (&filters[a], &filters[b]) {
                    if fa != fb {
                        continue;
                    }
                }
                let (ha, hb) = (&self.handoffs[a], &self.handoffs[b]);
                let mut found = None;
                for (role, loc) in &hb.roles {
                    if let Some((_, first)) = ha.roles.iter().find(|(r, _)| r == role) {
                        found = Some((format!("both assign `{role}`"), *loc, *first));
                        break;
                    }
                }
                if found.is_none() {
                    for (slot, _, loc) in &hb.sets {
                        if let Some((_, _, first)) = ha.sets.iter().find(|(s, _, _)| s == slot) {
                            let obj = &self.schema.objects[hb.object];
                            found = Some((
                                format!("both set `{}.{}`", obj.name, obj.fields[*slot].name),
                                *loc,
                                *first,
                            ));
                            break;
                        }
                    }
                }
                let Some((what, loc, first)) = found else {
                    continue;
                };
                let message = format!(
                    "handoffs \"{}\" and \"{}\" run on the same trigger and {what}",
                    ha.name, hb.name
                );
                let d = self
                    .diag(Code::H119, loc, message, format!("\"{}\" does it here", hb.name))
                    .with_help(
                        "merge the two handoffs, or give them `where` filters that split the records, such as `where deal.segment is \"enterprise\"` and `where deal.segment is not \"enterprise\"`",
                    );
                let d = self.relate(d, first, &format!("\"{}\" does it here", ha.name));
                self.diagnostics.push(d);
                break;
            }
        }
    }
}

/// The literal values handoff `info` sets, by field name; a field set to two
/// different values is left out (which one holds depends on the path).
fn known_values(
    info: &super::HandoffInfo,
    object: &super::ObjectSchema,
) -> HashMap<String, String> {
    let mut known: HashMap<String, Option<String>> = HashMap::new();
    for (slot, value, _) in &info.sets {
        let key = value.as_ref().map(literal_key);
        let name = object.fields[*slot].name.clone();
        let entry = known.entry(name).or_insert_with(|| key.clone());
        if *entry != key {
            *entry = None;
        }
    }
    known
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

/// The value of a filter when the fields in `known` hold those values, if
/// that decides it. Only equality tests are understood; anything else is
/// unknown, so an edge is dropped only when the filter surely fails.
fn eval(e: &Expr, object: &str, known: &HashMap<String, String>) -> Option<bool> {
    let field = |x: &Expr| match &x.kind {
        ExprKind::Path(p) if p.object.name == object => known.get(&p.field.name),
        _ => None,
    };
    match &e.kind {
        ExprKind::Literal(Literal::Bool { value, .. }) => Some(*value),
        ExprKind::Paren(x) => eval(x, object, known),
        ExprKind::Not(x) => eval(x, object, known).map(|b| !b),
        ExprKind::Binary { op, lhs, rhs } => match op {
            BinaryOp::And => match (eval(lhs, object, known), eval(rhs, object, known)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            BinaryOp::Or => match (eval(lhs, object, known), eval(rhs, object, known)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            BinaryOp::Eq | BinaryOp::Ne => {
                let same = match (field(lhs), field(rhs)) {
                    (Some(v), _) => *v == value_key(rhs)?,
                    (_, Some(v)) => *v == value_key(lhs)?,
                    _ => return None,
                };
                Some(same == (*op == BinaryOp::Eq))
            }
            _ => None,
        },
        ExprKind::Is {
            subject,
            negated,
            test: IsTest::Value(v),
        } => Some((*field(subject)? == value_key(v)?) != *negated),
        ExprKind::In {
            subject,
            negated,
            list,
        } => {
            let v = field(subject)?;
            let ExprKind::List(items) = &list.kind else {
                return None;
            };
            let keys: Option<Vec<String>> = items.iter().map(value_key).collect();
            Some(keys?.contains(v) != *negated)
        }
        _ => None,
    }
}

/// A cycle through the nodes of a strongly connected component, as
/// (node, outgoing edge) steps.
fn find_cycle(
    graph: &CascadeGraph,
    scc: &[NodeIndex],
) -> Vec<(NodeIndex, petgraph::graph::EdgeIndex)> {
    use petgraph::visit::EdgeRef;
    let start = *scc.iter().min().unwrap_or(&scc[0]);
    // Breadth-first from `start` inside the component, back to `start`.
    let mut prev: HashMap<NodeIndex, (NodeIndex, petgraph::graph::EdgeIndex)> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        for e in graph.edges(n) {
            let t = e.target();
            if !scc.contains(&t) {
                continue;
            }
            if t == start {
                let mut path = vec![(n, e.id())];
                let mut cur = n;
                while cur != start {
                    let (p, pe) = prev[&cur];
                    path.push((p, pe));
                    cur = p;
                }
                path.reverse();
                return path;
            }
            if let std::collections::hash_map::Entry::Vacant(v) = prev.entry(t) {
                v.insert((n, e.id()));
                queue.push_back(t);
            }
        }
    }
    Vec::new()
}

fn literal_text(l: &Literal) -> String {
    match l {
        Literal::Text(t) => format!("\"{}\"", t.value),
        Literal::Number { value, .. } => value.normalize().to_string(),
        Literal::Bool { value, .. } => if *value { "yes" } else { "no" }.to_string(),
        Literal::Date(d) => format!("{:04}-{:02}-{:02}", d.year, d.month, d.day),
        Literal::DateTime { text, .. } => text.clone(),
    }
}
