//! The cascade graph: an edge from handoff A to handoff B when an action of A
//! (`set deal.stage = …`) can fire B's trigger. Cycles are errors (the rules
//! would fire each other forever); two handoffs on the same trigger that
//! assign the same role or set the same field are errors (they would fight
//! over the record).

use std::collections::HashMap;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use super::{Checker, Loc};
use crate::diagnostic::Code;
use crate::syntax::{HandoffItem, Literal, TriggerEvent};

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

impl Checker<'_> {
    pub(super) fn cascade(&mut self) -> CascadeGraph {
        let mut graph = CascadeGraph::new();
        let nodes: Vec<NodeIndex> = (0..self.handoffs.len())
            .map(|i| graph.add_node(i))
            .collect();
        let keys: Vec<Option<TriggerKey>> = (0..self.handoffs.len())
            .map(|i| self.trigger_key(i))
            .collect();

        for (a, info) in self.handoffs.iter().enumerate() {
            for (slot, value, loc) in &info.sets {
                for (b, key) in keys.iter().enumerate() {
                    let Some(key) = key else { continue };
                    if key.object != info.object || key.slot != Some(*slot) {
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

    fn trigger_key(&self, h: usize) -> Option<TriggerKey> {
        let info = &self.handoffs[h];
        let decl = match &self.units[info.unit].file.declarations[info.decl] {
            crate::syntax::Declaration::Handoff(d) => d,
            _ => return None,
        };
        let trigger = decl.items.iter().find_map(|i| match i {
            HandoffItem::Trigger(t) => Some(t),
            _ => None,
        })?;
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
            let names: Vec<String> = cycle
                .iter()
                .map(|&(n, _)| format!("\"{}\"", self.handoffs[graph[n]].name))
                .collect();
            let first = &graph[cycle[0].1];
            let mut steps = String::from("the cycle:");
            for &(n, e) in &cycle {
                let edge = &graph[e];
                let file = &self.units[edge.action.file].source;
                let (line, col) = file.line_col(edge.action.span.start);
                steps.push_str(&format!(
                    "\n  \"{}\" sets {} ({}:{line}:{col})",
                    self.handoffs[graph[n]].name, edge.label, file.name
                ));
            }
            let message = format!(
                "handoffs fire each other in a cycle: {} → {}",
                names.join(" → "),
                names[0]
            );
            let d = self
                .diag(
                    Code::H118,
                    first.action,
                    message,
                    "this fires the next handoff",
                )
                .with_help(format!(
                    "{steps}\nbreak the cycle: remove one `set`, or narrow a trigger with `where`"
                ));
            self.diagnostics.push(d);
        }
    }

    fn report_conflicts(&mut self, keys: &[Option<TriggerKey>]) {
        for a in 0..self.handoffs.len() {
            for b in (a + 1)..self.handoffs.len() {
                let (Some(ka), Some(kb)) = (&keys[a], &keys[b]) else {
                    continue;
                };
                if ka != kb {
                    continue;
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
                            let field = &self.schema.objects[hb.object].fields[*slot].name;
                            found = Some((format!("both set `{field}`"), *loc, *first));
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
                    .diag(Code::H119, loc, message, "conflicts with the other handoff")
                    .with_help(
                        "merge the two handoffs, or give one a `where` filter so only one runs",
                    );
                let d = self.relate(d, first, "the other handoff does it here");
                self.diagnostics.push(d);
            }
        }
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

fn literal_key(l: &Literal) -> String {
    match l {
        Literal::Text(t) => format!("text:{}", t.value),
        Literal::Number { value, .. } => format!("number:{value}"),
        Literal::Bool { value, .. } => format!("bool:{value}"),
        Literal::Date(d) => format!("date:{}-{}-{}", d.year, d.month, d.day),
        Literal::DateTime { text, .. } => format!("datetime:{text}"),
    }
}

fn literal_text(l: &Literal) -> String {
    match l {
        Literal::Text(t) => format!("\"{}\"", t.value),
        Literal::Number { value, .. } => value.to_string(),
        Literal::Bool { value, .. } => if *value { "yes" } else { "no" }.to_string(),
        Literal::Date(d) => format!("{:04}-{:02}-{:02}", d.year, d.month, d.day),
        Literal::DateTime { text, .. } => text.clone(),
    }
}
