//! Turning compiled actions into a plan: people picked, templates rendered,
//! due dates computed, the brief rendered.

use std::fmt::Write as _;

use super::expr::Ctx;
use super::outcome::{Answers, BriefLine, PlannedAction, RenderedBrief};
use super::state::{Instance, State};
use crate::compile::{AssignFrom, Brief, CAction, CompiledHandoff, NotifyTo, WorkflowSet};
use crate::syntax::Strategy;
use crate::value::Value;

/// Plans `actions` for instance `inst`, updating assignment memory in `state`.
pub(super) fn plan(
    set: &WorkflowSet,
    h: &CompiledHandoff,
    actions: &[CAction],
    base: &Ctx<'_>,
    inst: &mut Instance,
    state: &mut State,
    trace: &mut Vec<String>,
) -> Vec<PlannedAction> {
    let mut out = Vec::new();
    let object = &set.schema().objects[h.object];
    for action in actions {
        // Roles assigned by earlier actions are visible to later ones.
        let ctx = Ctx {
            roles: &inst.roles,
            ..*base
        };
        match action {
            CAction::Assign { role, from } => {
                let (person, team, strategy) = match from {
                    AssignFrom::Team {
                        team,
                        members,
                        strategy,
                    } => {
                        let picked = pick(state, team, members, *strategy);
                        let how = match strategy {
                            Strategy::RoundRobin => "round robin",
                            Strategy::LeastLoaded => "least loaded",
                        };
                        trace.push(match &picked {
                            Some(p) => format!("assign: {role} = {p} (team {team}, {how})"),
                            None => format!(
                                "assign: team {team} has no members; {role} stays unassigned"
                            ),
                        });
                        (picked, Some(team.clone()), Some(how.to_string()))
                    }
                    AssignFrom::Person(p) => {
                        let person = ctx.person(p);
                        trace.push(match &person {
                            Some(x) => format!("assign: {role} = {x}"),
                            None => format!("assign: {role} could not be resolved (empty field)"),
                        });
                        (person, None, None)
                    }
                };
                if let Some(p) = &person {
                    inst.roles.insert(role.clone(), p.clone());
                }
                out.push(PlannedAction::Assign {
                    role: role.clone(),
                    person,
                    team,
                    strategy,
                });
            }
            CAction::Task {
                title,
                assignee,
                due,
                checklist,
                attach_brief,
            } => {
                let assignee = ctx.person(assignee);
                if let Some(a) = &assignee {
                    *state.open_tasks.entry(a.clone()).or_insert(0) += 1;
                    inst.task_holders.push(a.clone());
                }
                let title = ctx.render(title);
                let due = due.as_ref().and_then(|d| {
                    let at = set.calendar().add(ctx.now, d);
                    if at.is_none() {
                        // Say why the task has no due date: the rule asked
                        // for one.
                        trace.push(format!(
                            "task \"{title}\": no due date: `due in {}` finds no moment in \
                             the calendar (no working day ahead, or past the year 9999)",
                            crate::value::Value::Duration(*d),
                        ));
                    }
                    at
                });
                let due = due
                    .map(|t| t.to_zoned(set.calendar().timezone().clone()).to_string())
                    .map(|s| strip_zone_name(&s));
                out.push(PlannedAction::Task {
                    title,
                    assignee,
                    due,
                    checklist: checklist.iter().map(|c| ctx.render(c)).collect(),
                    brief: attach_brief.then(|| render_brief(&h.brief, &ctx)),
                });
            }
            CAction::Notify { to, message } => {
                let (channel, to) = match to {
                    NotifyTo::Channel { name, target } => {
                        (Some(name.clone()), Some(target.clone()))
                    }
                    NotifyTo::Person(p) => (None, ctx.person(p)),
                };
                out.push(PlannedAction::Notify {
                    channel,
                    to,
                    message: ctx.render(message),
                });
            }
            CAction::EmailDraft { to, subject, body } => out.push(PlannedAction::EmailDraft {
                to: ctx.person(to),
                subject: ctx.render(subject),
                body: ctx.render(body),
                status: "needs_review".into(),
            }),
            CAction::Set { slot, value } => out.push(PlannedAction::Set {
                field: object
                    .fields
                    .get(*slot)
                    .map_or_else(String::new, |f| f.name.clone()),
                value: ctx.eval(value),
            }),
            CAction::Pause => {}
        }
    }
    out
}

/// jiff prints `2026-11-24T17:00:00-05:00[America/New_York]`; the contract
/// uses plain RFC 3339.
fn strip_zone_name(s: &str) -> String {
    s.split('[').next().unwrap_or(s).to_string()
}

/// Picks a team member. Round robin walks the team in order; least loaded
/// takes the member with the fewest open tasks, breaking ties in round-robin
/// order so equal loads still rotate.
fn pick(state: &mut State, team: &str, members: &[String], strategy: Strategy) -> Option<String> {
    if members.is_empty() {
        return None;
    }
    let ts = state.teams.entry(team.to_string()).or_default();
    let start = (ts.cursor % members.len() as u64) as usize;
    ts.cursor += 1;
    let rotated = (0..members.len()).map(|i| &members[(start + i) % members.len()]);
    let picked = match strategy {
        Strategy::RoundRobin => &members[start],
        Strategy::LeastLoaded => rotated
            .min_by_key(|m| state.open_tasks.get(*m).copied().unwrap_or(0))
            .unwrap_or(&members[start]),
    };
    Some(picked.clone())
}

/// Renders the brief.
pub(super) fn render_brief(brief: &Brief, ctx: &Ctx<'_>) -> RenderedBrief {
    let fields: Vec<BriefLine> = brief
        .fields
        .iter()
        .map(|(label, value)| BriefLine {
            label: ctx.render(label),
            value: ctx.eval(value),
        })
        .collect();
    let questions: Vec<String> = brief.asks.iter().map(|q| ctx.render(q)).collect();
    // Written in place: `- **{label}:** {value}` lines, then the questions.
    let mut markdown = String::with_capacity(64 + 48 * fields.len() + 48 * questions.len());
    markdown.push_str("## Handoff brief\n\n");
    for f in &fields {
        markdown.push_str("- **");
        markdown.push_str(&f.label);
        markdown.push_str(":** ");
        match &f.value {
            Value::Null => markdown.push_str("_(empty)_"),
            // Writing to a String cannot fail.
            v => {
                let _ = write!(markdown, "{v}");
            }
        }
        markdown.push('\n');
    }
    if !questions.is_empty() {
        markdown.push_str("\n### Questions for the team\n\n");
        for q in &questions {
            markdown.push_str("- [ ] ");
            markdown.push_str(q);
            markdown.push('\n');
        }
    }
    RenderedBrief {
        fields,
        questions,
        markdown,
    }
}

/// The four answers, from the plan.
pub(super) fn answers(actions: &[PlannedAction], brief: Option<&RenderedBrief>) -> Answers {
    let first_task = actions.iter().find_map(|a| match a {
        PlannedAction::Task {
            title,
            assignee,
            due,
            ..
        } => Some((title, assignee, due)),
        _ => None,
    });
    let next_owner = first_task.and_then(|(_, a, _)| a.clone()).or_else(|| {
        actions.iter().find_map(|a| match a {
            PlannedAction::Assign { person, .. } => person.clone(),
            PlannedAction::Notify {
                channel: None, to, ..
            } => to.clone(),
            _ => None,
        })
    });
    Answers {
        next_owner,
        promised: brief
            .map(|b| {
                b.fields
                    .iter()
                    .map(|f| format!("{}: {}", f.label, f.value))
                    .collect()
            })
            .unwrap_or_default(),
        client_expects: actions.iter().find_map(|a| match a {
            PlannedAction::EmailDraft { body, .. } => Some(body.clone()),
            _ => None,
        }),
        first_task: first_task.map(|(title, assignee, due)| {
            let mut s = title.clone();
            if let Some(a) = assignee {
                s.push_str(&format!(" (for {a}"));
                if let Some(d) = due {
                    s.push_str(&format!(", due {d}"));
                }
                s.push(')');
            }
            s
        }),
    }
}
