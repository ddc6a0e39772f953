//! Turning compiled actions into a plan: people picked, templates rendered,
//! due dates computed, the brief rendered.

use std::sync::Arc;

use super::expr::{push_value, Ctx};
use super::outcome::{Action, Answers, BriefLine, PlannedAction, RenderedBrief};
use super::run::{Run, StableHash};
use super::state::{Assignments, Instance};
use crate::compile::{AssignFrom, Brief, CAction, NotifyTo};
use crate::syntax::Strategy;
use crate::value::Value;

/// Plans `actions` for instance `inst`, updating the assignment memory.
/// Returns the planned actions, each with its stable id, and the positions
/// of the tasks that attach the brief (the caller renders it once, with the
/// roles the whole plan assigned, and hands it to [`attach_brief`]).
pub(super) fn plan(
    run: &Run<'_>,
    actions: &[CAction],
    base: &Ctx<'_>,
    inst: &mut Instance,
    assign: &mut dyn Assignments,
    trace: &mut Vec<String>,
) -> (Vec<Action>, Vec<usize>) {
    let set = run.set;
    let object = run.object;
    let mut out = Vec::with_capacity(actions.len());
    let mut wants_brief = Vec::new();
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
                        let picked = pick(assign, team, members, *strategy);
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
                    assign.task_opened(a);
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
                let due = due.map(|t| {
                    strip_zone_name(t.to_zoned(set.calendar().timezone().clone()).to_string())
                });
                if *attach_brief {
                    wants_brief.push(out.len());
                }
                out.push(PlannedAction::Task {
                    title,
                    assignee,
                    due,
                    checklist: checklist.iter().map(|c| ctx.render(c)).collect(),
                    brief: None,
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
    // Ids: the instance (record, workflow, trigger), the version, which
    // plan of the instance this is, and the position in it.
    let mut base_hash = StableHash::new();
    base_hash.add(&inst.id);
    base_hash.add(set.version());
    base_hash.add_u64(u64::from(inst.plans));
    inst.plans += 1;
    let actions = out
        .into_iter()
        .enumerate()
        .map(|(i, plan)| {
            let mut h = StableHash(base_hash.0);
            h.add_u64(i as u64);
            Action {
                id: h.hex("a"),
                plan,
            }
        })
        .collect();
    (actions, wants_brief)
}

/// Gives the tasks at `positions` the rendered brief.
pub(super) fn attach_brief(
    actions: &mut [Action],
    positions: &[usize],
    brief: &Arc<RenderedBrief>,
) {
    for &i in positions {
        if let Some(Action {
            plan: PlannedAction::Task { brief: b, .. },
            ..
        }) = actions.get_mut(i)
        {
            *b = Some(brief.clone());
        }
    }
}

/// jiff prints `2026-11-24T17:00:00-05:00[America/New_York]`; the contract
/// uses plain RFC 3339. Cut in place, not copied.
fn strip_zone_name(mut s: String) -> String {
    if let Some(i) = s.find('[') {
        s.truncate(i);
    }
    s
}

/// Picks a team member. Round robin walks the team in order; least loaded
/// takes the member with the fewest open tasks, breaking ties in round-robin
/// order so equal loads still rotate.
fn pick(
    assign: &mut dyn Assignments,
    team: &str,
    members: &[String],
    strategy: Strategy,
) -> Option<String> {
    if members.is_empty() {
        return None;
    }
    let start = (assign.next_cursor(team) % members.len() as u64) as usize;
    let rotated = (0..members.len()).map(|i| &members[(start + i) % members.len()]);
    let picked = match strategy {
        Strategy::RoundRobin => &members[start],
        Strategy::LeastLoaded => rotated
            .min_by_key(|m| assign.open_tasks(m))
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
            v => push_value(&mut markdown, v),
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
pub(super) fn answers(actions: &[Action], brief: Option<&RenderedBrief>) -> Answers {
    let first_task = actions.iter().find_map(|a| match &a.plan {
        PlannedAction::Task {
            title,
            assignee,
            due,
            ..
        } => Some((title, assignee, due)),
        _ => None,
    });
    let next_owner = first_task.and_then(|(_, a, _)| a.clone()).or_else(|| {
        actions.iter().find_map(|a| match &a.plan {
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
                    .map(|f| {
                        // `{label}: {value}`, sized once (format! grew it).
                        let mut line = String::with_capacity(f.label.len() + 34);
                        line.push_str(&f.label);
                        line.push_str(": ");
                        push_value(&mut line, &f.value);
                        line
                    })
                    .collect()
            })
            .unwrap_or_default(),
        client_expects: actions.iter().find_map(|a| match &a.plan {
            PlannedAction::EmailDraft { body, .. } => Some(body.clone()),
            _ => None,
        }),
        first_task: first_task.map(|(title, assignee, due)| {
            // `{title} (for {assignee}, due {due})`, without a format! per part.
            let mut s = String::with_capacity(title.len() + 64);
            s.push_str(title);
            if let Some(a) = assignee {
                s.push_str(" (for ");
                s.push_str(a);
                if let Some(d) = due {
                    s.push_str(", due ");
                    s.push_str(d);
                }
                s.push(')');
            }
            s
        }),
    }
}
