//! Turning compiled actions into a plan: people picked, templates rendered,
//! due dates computed, the brief rendered.

use std::fmt::Write as _;
use std::sync::Arc;

use super::expr::{push_value, Ctx};
use super::outcome::{Action, Answers, BriefLine, PlannedAction, RenderedBrief};
use super::run::{Run, StableHash};
use super::state::{Assignments, Instance};
use super::trace::{strategy_words, ActionList, Line, Trace};
use crate::check::ObjectSchema;
use crate::compile::{AssignFrom, Brief, CAction, NotifyTo, PersonRef};
use crate::syntax::Strategy;
use crate::value::Value;

/// Why `p` names nobody, in the author's words: the empty field, or the
/// role no `assign` gave a person.
fn nobody(p: &PersonRef, object: &ObjectSchema) -> String {
    match p {
        PersonRef::Field(slot) => format!(
            "`{}.{}` is empty",
            object.name,
            object.fields.get(*slot).map_or("?", |f| f.name.as_str())
        ),
        PersonRef::Role(r) => format!("role `{r}` has no person (its `assign` found nobody)"),
        PersonRef::User { name, .. } => format!("user `{name}` has no address"),
    }
}

/// Plans the handoff's action list `list` for instance `inst`, updating the assignment memory.
/// Returns the planned actions, each with its stable id, and the positions
/// of the tasks that attach the brief (the caller renders it once, with the
/// roles the whole plan assigned, and hands it to [`attach_brief`]).
pub(super) fn plan(
    run: &Run<'_>,
    list: ActionList,
    base: &Ctx<'_>,
    inst: &mut Instance,
    assign: &mut dyn Assignments,
    trace: &mut Trace,
) -> (Vec<Action>, Vec<usize>) {
    let actions = list.of(run.h);
    let set = run.set;
    let object = run.object;
    // Ids: the instance (record, workflow, trigger), the version, which
    // plan of the instance this is, and the position in it.
    let mut base_hash = StableHash::new();
    base_hash.add(&inst.id);
    base_hash.add(set.version());
    base_hash.add_u64(u64::from(inst.plans));
    inst.plans += 1;
    let triggered_at = inst.triggered_at;
    let mut out: Vec<Action> = Vec::with_capacity(actions.len());
    // Each action with its id, built in place rather than in a second vector.
    let push = |out: &mut Vec<Action>, plan: PlannedAction| {
        let mut h = StableHash(base_hash.0);
        h.add_u64(out.len() as u64);
        out.push(Action {
            // Sorted by the instance's start, like the instance's own id.
            id: h.hex_at("a", triggered_at),
            plan,
        });
    };
    let mut wants_brief = Vec::new();
    for (position, action) in actions.iter().enumerate() {
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
                        let how = strategy_words(*strategy);
                        match picked {
                            // Kept as data: written as text only if read.
                            Some(member) => trace.push_line(Line::AssignTeam {
                                handoff: run.index,
                                list,
                                action: position as u32,
                                member: member as u32,
                            }),
                            None => trace.push(format!(
                                "assign: team {team} has no members; {role} stays unassigned"
                            )),
                        }
                        (
                            picked.map(|m| members[m].clone()),
                            Some(team.clone()),
                            Some(how.to_string()),
                        )
                    }
                    AssignFrom::Person(p) => {
                        let person = ctx.person(p);
                        trace.push(match &person {
                            Some(x) => format!("assign: {role} = {x}"),
                            None => format!(
                                "assign: {role} could not be resolved: {}",
                                nobody(p, object)
                            ),
                        });
                        (person, None, None)
                    }
                };
                if let Some(p) = &person {
                    inst.roles.insert(role.clone(), p.clone());
                }
                push(
                    &mut out,
                    PlannedAction::Assign {
                        role: role.clone(),
                        person,
                        team,
                        strategy,
                    },
                );
            }
            CAction::Task {
                title,
                assignee,
                due,
                checklist,
                attach_brief,
            } => {
                let who = assignee;
                let assignee = ctx.person(who);
                if let Some(a) = &assignee {
                    assign.task_opened(a);
                    inst.task_holders.push(a.clone());
                }
                let title = ctx.render(title);
                if assignee.is_none() {
                    trace.push(format!(
                        "task \"{title}\": nobody to give it to: {}",
                        nobody(who, object)
                    ));
                }
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
                    // Sized once: `to_string` grew it four times.
                    let mut s = String::with_capacity(64);
                    let _ = write!(s, "{}", t.to_zoned(set.calendar().timezone().clone()));
                    strip_zone_name(s)
                });
                if *attach_brief {
                    wants_brief.push(out.len());
                }
                push(
                    &mut out,
                    PlannedAction::Task {
                        title,
                        assignee,
                        due,
                        checklist: checklist.iter().map(|c| ctx.render(c)).collect(),
                        brief: None,
                    },
                );
            }
            CAction::Notify { to, message } => {
                let (channel, to) = match to {
                    NotifyTo::Channel { name, target } => {
                        (Some(name.clone()), Some(target.clone()))
                    }
                    NotifyTo::Person(p) => {
                        let person = ctx.person(p);
                        if person.is_none() {
                            trace.push(format!("notify: nobody to tell: {}", nobody(p, object)));
                        }
                        (None, person)
                    }
                };
                push(
                    &mut out,
                    PlannedAction::Notify {
                        channel,
                        to,
                        message: ctx.render(message),
                    },
                );
            }
            CAction::EmailDraft { to, subject, body } => {
                let person = ctx.person(to);
                if person.is_none() {
                    trace.push(format!(
                        "draft email: nobody to write to: {}",
                        nobody(to, object)
                    ));
                }
                push(
                    &mut out,
                    PlannedAction::EmailDraft {
                        to: person,
                        subject: ctx.render(subject),
                        body: ctx.render(body),
                        status: "needs_review".into(),
                    },
                )
            }
            CAction::Set { slot, value } => push(
                &mut out,
                PlannedAction::Set {
                    field: object
                        .fields
                        .get(*slot)
                        .map_or_else(String::new, |f| f.name.clone()),
                    value: ctx.eval(value),
                },
            ),
            CAction::Pause => {}
        }
    }
    (out, wants_brief)
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

/// Picks a team member (its index in `members`). Round robin walks the team in order; least loaded
/// takes the member with the fewest open tasks, breaking ties in round-robin
/// order so equal loads still rotate.
fn pick(
    assign: &mut dyn Assignments,
    team: &str,
    members: &[String],
    strategy: Strategy,
) -> Option<usize> {
    if members.is_empty() {
        return None;
    }
    let start = (assign.next_cursor(team) % members.len() as u64) as usize;
    let rotated = (0..members.len()).map(|i| (start + i) % members.len());
    Some(match strategy {
        Strategy::RoundRobin => start,
        Strategy::LeastLoaded => rotated
            .min_by_key(|&m| assign.open_tasks(&members[m]))
            .unwrap_or(start),
    })
}

/// Renders the brief, and when `promised` is asked, the brief's lines as
/// the answer "what was promised" lists them (`{label}: {value}`), copied
/// from the Markdown as it is written rather than formatting each value
/// again.
pub(super) fn render_brief(
    brief: &Brief,
    ctx: &Ctx<'_>,
    promised: bool,
) -> (RenderedBrief, Vec<String>) {
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
    let mut lines = Vec::with_capacity(if promised { fields.len() } else { 0 });
    for f in &fields {
        markdown.push_str("- **");
        markdown.push_str(&f.label);
        markdown.push_str(":** ");
        let start = markdown.len();
        match &f.value {
            Value::Null => markdown.push_str("_(empty)_"),
            v => push_value(&mut markdown, v),
        }
        if promised {
            // An empty value is listed as nothing, not `_(empty)_`.
            let value = match f.value {
                Value::Null => "",
                _ => &markdown[start..],
            };
            let mut line = String::with_capacity(f.label.len() + 2 + value.len());
            line.push_str(&f.label);
            line.push_str(": ");
            line.push_str(value);
            lines.push(line);
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
    (
        RenderedBrief {
            fields,
            questions,
            markdown,
        },
        lines,
    )
}

/// The four answers, from the plan and the brief's lines (`promised`, from
/// [`render_brief`]).
pub(super) fn answers(actions: &[Action], promised: Vec<String>) -> Answers {
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
        promised,
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
