//! The signals, per workflow and per ISO week, from plain rows: a pure
//! function, so each one is tested on hand-built histories.

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;
use jiff::Timestamp;
use serde::Serialize;

use super::findings::{self, Finding, Targets};
use super::week::{business_hours, day_hours, iso_week, median_p90, wall_hours};
use super::{FieldIssueFact, HandoffFacts, HealthRows, IssueKind, Window};
use crate::compile::Calendar;

/// The whole report: findings first, then the numbers behind them.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// The report's "now".
    pub generated_at: Timestamp,
    /// Handoffs triggered from this moment on are counted.
    pub since: Timestamp,
    /// The calendar's timezone: weeks are counted in it.
    pub timezone: String,
    /// Hours in one working day: business hours ÷ this = business days.
    pub day_hours: f64,
    pub targets: Targets,
    /// Plain-English diagnoses, most urgent first.
    pub findings: Vec<Finding>,
    pub workflows: Vec<WorkflowHealth>,
    /// Values from the CRM that did not fit a field, most frequent first.
    pub data_quality: Vec<FieldIssue>,
}

/// One workflow's signals.
#[derive(Debug, Clone, Serialize)]
pub struct WorkflowHealth {
    pub workflow: String,
    pub object: String,
    /// Over the whole window.
    pub totals: Signals,
    /// One row per ISO week with a handoff started, oldest first.
    pub weeks: Vec<WeekRow>,
    /// Required fields missing when the trigger fired, most often first;
    /// `share` is of the handoffs that paused.
    pub missing_fields: Vec<Ranked>,
    /// Exception flags, most often first; `share` is of handoffs started.
    pub flags: Vec<Ranked>,
    /// Rejection notes by reason; `share` is of handoffs started.
    pub rejection_reasons: Vec<Ranked>,
    /// Escalations by reason; `share` is of handoffs that proceeded.
    pub escalation_reasons: Vec<Ranked>,
    /// Open handoffs past the stuck threshold, oldest first.
    pub stuck: Vec<Stuck>,
    /// Marketing → sales signals, for workflows on the lead object.
    pub leads: Option<LeadSignals>,
    /// Lead times before and after the newest workflow version that
    /// started serving inside the window.
    pub rule_change: Option<RuleChange>,
}

/// The numbers of one set of handoffs (a week's, or the window's).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Signals {
    pub started: u32,
    pub done: u32,
    /// Still paused, in review, or proceeded without being done.
    pub open: u32,
    pub withdrawn: u32,
    /// Trigger → done, every hour counting.
    pub lead_time_hours: Option<Stat>,
    /// Trigger → done, working hours only.
    pub lead_time_business_hours: Option<Stat>,
    /// Handoffs with every required field present when the trigger fired.
    pub complete: u32,
    /// `complete` ÷ `started`.
    pub completeness: Option<f64>,
    /// Handoffs that paused for missing fields.
    pub paused: u32,
    /// Working hours spent paused (a handoff still paused counts until now).
    pub paused_wait_business_hours: Option<Stat>,
    /// Handoffs an exception sent to review.
    pub review: u32,
    /// `review` ÷ `started`.
    pub exception_rate: Option<f64>,
    /// Working hours spent in review (one still in review counts until now).
    pub review_business_hours: Option<Stat>,
    /// Reviews that ended on the normal path (approved, or `resume when`).
    pub approved: u32,
    /// Handoffs a person rejected (a `reject` note).
    pub rejected: u32,
    /// Handoffs that reached the normal path (so delivery could escalate).
    pub proceeded: u32,
    /// Handoffs escalated at least once.
    pub escalated: u32,
    /// `escalated` ÷ `proceeded`.
    pub escalation_rate: Option<f64>,
}

/// The median and 90th percentile of some durations, in hours.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stat {
    pub median: f64,
    pub p90: f64,
    pub count: u32,
}

impl Stat {
    fn of(values: &mut [f64]) -> Option<Stat> {
        median_p90(values).map(|(median, p90)| Stat {
            median,
            p90,
            count: values.len() as u32,
        })
    }
}

/// One week's signals.
#[derive(Debug, Clone, Serialize)]
pub struct WeekRow {
    /// `2026-W48`.
    pub week: String,
    /// The Monday it starts on.
    pub monday: Date,
    pub signals: Signals,
}

/// A name with how often it came up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked {
    pub name: String,
    pub count: u32,
    pub share: f64,
}

/// An open handoff past the threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stuck {
    pub handoff_id: String,
    pub record_id: String,
    pub status: String,
    pub triggered_at: Timestamp,
    /// Days since the trigger, every day counting.
    pub open_days: f64,
    /// Who owns the next step, when the handoff named someone.
    pub next_owner: Option<String>,
}

/// Marketing → sales.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeadSignals {
    /// Qualified → first response (the handoff's lead time), working hours.
    pub response_business_hours: Option<Stat>,
    /// Leads whose source fields were missing when they were qualified.
    pub without_source: u32,
    pub without_source_share: Option<f64>,
    /// Leads sales rejected because the qualification notes were unclear
    /// (a `reject` note that says "unclear").
    pub rejected_unclear: u32,
    pub rejected_unclear_share: Option<f64>,
}

/// Lead times around a rule change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleChange {
    pub version: String,
    pub at: Timestamp,
    /// Working hours, handoffs triggered before the change.
    pub before: Option<Stat>,
    /// Working hours, handoffs triggered after it.
    pub after: Option<Stat>,
}

/// Values that did not fit one field, grouped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldIssue {
    pub object: String,
    pub field: String,
    pub kind: IssueKind,
    pub value: String,
    pub expected: String,
    pub count: u32,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// What one handoff contributes, worked out once.
struct One<'a> {
    h: &'a HandoffFacts,
    week: (String, Date),
    lead: Option<(f64, f64)>,
    paused_wait: Option<f64>,
    review_wait: Option<f64>,
    flags: Vec<&'a str>,
    approved: bool,
    rejected: Option<&'a str>,
    proceeded: bool,
    escalations: Vec<&'a str>,
}

/// Computes the report from `rows`: the handoffs triggered in the window,
/// by workflow and week, then the findings against `targets`.
pub fn compute(
    rows: &HealthRows,
    calendar: &Calendar,
    targets: &Targets,
    window: &Window,
) -> HealthReport {
    let now = window.now;
    let mut escalations: HashMap<&str, Vec<&str>> = HashMap::new();
    for e in &rows.escalations {
        escalations
            .entry(e.handoff_id.as_str())
            .or_default()
            .push(e.reason.as_str());
    }

    let mut by_workflow: BTreeMap<&str, Vec<One<'_>>> = BTreeMap::new();
    let mut stuck: BTreeMap<&str, Vec<Stuck>> = BTreeMap::new();
    for h in &rows.handoffs {
        if window.workflow.as_ref().is_some_and(|w| w != &h.workflow) {
            continue;
        }
        let age = wall_hours(h.triggered_at, now) / 24.0;
        if h.is_open() && age >= targets.stuck_after_days {
            stuck.entry(&h.workflow).or_default().push(Stuck {
                handoff_id: h.id.clone(),
                record_id: format!("{}/{}", h.object, h.record_id),
                status: h.status.clone(),
                triggered_at: h.triggered_at,
                open_days: age,
                next_owner: h.next_owner.clone(),
            });
        }
        if h.triggered_at < window.since || h.triggered_at > now {
            continue;
        }
        let one = one(h, calendar, now, escalations.remove(h.id.as_str()));
        by_workflow.entry(&h.workflow).or_default().push(one);
    }
    for list in stuck.values_mut() {
        list.sort_by(|a, b| {
            a.triggered_at
                .cmp(&b.triggered_at)
                .then(a.handoff_id.cmp(&b.handoff_id))
        });
    }
    // A workflow with only old stuck handoffs still gets a section.
    for w in stuck.keys() {
        by_workflow.entry(w).or_default();
    }

    // The newest version in the window that changed this workflow.
    let rule_change_of = |workflow: &str| {
        rows.versions.iter().skip(1).rfind(|v| {
            v.first_loaded_at > window.since
                && v.first_loaded_at <= now
                && v.changed
                    .as_ref()
                    .is_none_or(|c| c.iter().any(|n| n == workflow))
        })
    };

    let mut workflows = Vec::new();
    for (name, ones) in by_workflow {
        let object = ones
            .first()
            .map(|o| o.h.object.clone())
            .or_else(|| {
                rows.handoffs
                    .iter()
                    .find(|h| h.workflow == name)
                    .map(|h| h.object.clone())
            })
            .unwrap_or_default();
        let totals = signals(ones.iter());
        let mut weeks: BTreeMap<&str, (Date, Vec<&One<'_>>)> = BTreeMap::new();
        for o in &ones {
            weeks
                .entry(o.week.0.as_str())
                .or_insert_with(|| (o.week.1, Vec::new()))
                .1
                .push(o);
        }
        let weeks = weeks
            .into_iter()
            .map(|(week, (monday, os))| WeekRow {
                week: week.to_string(),
                monday,
                signals: signals(os.into_iter()),
            })
            .collect();
        let paused_at_trigger = ones
            .iter()
            .filter(|o| !o.h.missing_at_trigger.is_empty())
            .count();
        let missing_fields = ranked(
            ones.iter()
                .flat_map(|o| o.h.missing_at_trigger.iter().map(String::as_str)),
            paused_at_trigger,
        );
        let flags = ranked(
            ones.iter().flat_map(|o| o.flags.iter().copied()),
            ones.len(),
        );
        let rejection_reasons = ranked(ones.iter().filter_map(|o| o.rejected), ones.len());
        // Each reason once per handoff, of the handoffs that proceeded (a
        // share of them, so never above 1); a blank reason is no reason.
        let escalation_reasons = ranked(
            ones.iter().filter(|o| o.proceeded).flat_map(|o| {
                let mut reasons: Vec<&str> = o
                    .escalations
                    .iter()
                    .map(|r| r.trim())
                    .filter(|r| !r.is_empty())
                    .collect();
                reasons.sort_unstable();
                reasons.dedup();
                reasons
            }),
            totals.proceeded as usize,
        );
        let leads = (object == targets.lead_object).then(|| lead_signals(&ones, &totals, targets));
        let rule_change = rule_change_of(name).map(|v| {
            let mut before = Vec::new();
            let mut after = Vec::new();
            for o in &ones {
                if let Some((_, business)) = o.lead {
                    if o.h.triggered_at < v.first_loaded_at {
                        before.push(business);
                    } else {
                        after.push(business);
                    }
                }
            }
            RuleChange {
                version: v.id.clone(),
                at: v.first_loaded_at,
                before: Stat::of(&mut before),
                after: Stat::of(&mut after),
            }
        });
        workflows.push(WorkflowHealth {
            workflow: name.to_string(),
            object,
            totals,
            weeks,
            missing_fields,
            flags,
            rejection_reasons,
            escalation_reasons,
            stuck: stuck.remove(name).unwrap_or_default(),
            leads,
            rule_change,
        });
    }

    // Only this workflow: the data-quality problems of its object.
    let objects: Option<Vec<&str>> = window.workflow.as_ref().map(|w| {
        rows.handoffs
            .iter()
            .filter(|h| &h.workflow == w)
            .map(|h| h.object.as_str())
            .collect()
    });
    let data_quality = data_quality(&rows.field_issues, window, objects.as_deref());
    let day = day_hours(calendar);
    let findings = findings::diagnose(&workflows, &data_quality, targets, day);
    HealthReport {
        generated_at: now,
        since: window.since,
        timezone: calendar.timezone().iana_name().unwrap_or("UTC").to_string(),
        day_hours: day,
        targets: targets.clone(),
        findings,
        workflows,
        data_quality,
    }
}

fn one<'a>(
    h: &'a HandoffFacts,
    calendar: &Calendar,
    now: Timestamp,
    escalations: Option<Vec<&'a str>>,
) -> One<'a> {
    let lead = h.done_at.map(|done| {
        (
            wall_hours(h.triggered_at, done),
            business_hours(calendar, h.triggered_at, done),
        )
    });
    // Time spent in a status: from each change into it to the next change
    // (or now, when it is still there).
    let spent = |status: &str| -> Option<f64> {
        let mut total = None;
        for (i, t) in h.history.iter().enumerate() {
            if t.to != status {
                continue;
            }
            let until = h.history.get(i + 1).map_or(now, |next| next.at);
            *total.get_or_insert(0.0) += business_hours(calendar, t.at, until);
        }
        total
    };
    let mut flags: Vec<&str> = Vec::new();
    for t in h.history.iter().filter(|t| t.to == "review") {
        for e in &t.exceptions {
            if !flags.contains(&e.as_str()) {
                flags.push(e);
            }
        }
    }
    let approved = h.history.iter().any(|t| {
        t.from.as_deref() == Some("review") && matches!(t.to.as_str(), "proceeded" | "done")
    });
    let proceeded = matches!(h.status.as_str(), "proceeded" | "done")
        || h.history
            .iter()
            .any(|t| matches!(t.to.as_str(), "proceeded" | "done"));
    let rejected = h
        .notes
        .iter()
        .rev()
        .find(|n| n.kind == "reject")
        .map(|n| n.text.trim());
    One {
        h,
        week: iso_week(calendar, h.triggered_at),
        lead,
        paused_wait: spent("paused"),
        review_wait: spent("review"),
        flags,
        approved,
        rejected,
        proceeded,
        escalations: escalations.unwrap_or_default(),
    }
}

fn signals<'a, 'b: 'a>(ones: impl Iterator<Item = &'a One<'b>>) -> Signals {
    let mut s = Signals::default();
    let (mut lead, mut lead_b, mut paused, mut review) = (vec![], vec![], vec![], vec![]);
    for o in ones {
        s.started += 1;
        match o.h.status.as_str() {
            "done" => s.done += 1,
            "withdrawn" => s.withdrawn += 1,
            // Rejected by a person: finished, counted by `rejected` below.
            "rejected" => {}
            _ => s.open += 1,
        }
        if let Some((wall, business)) = o.lead {
            lead.push(wall);
            lead_b.push(business);
        }
        if o.h.missing_at_trigger.is_empty() {
            s.complete += 1;
        }
        if let Some(w) = o.paused_wait {
            s.paused += 1;
            paused.push(w);
        }
        if let Some(w) = o.review_wait {
            s.review += 1;
            review.push(w);
        }
        s.approved += u32::from(o.approved);
        s.rejected += u32::from(o.rejected.is_some());
        s.proceeded += u32::from(o.proceeded);
        // Only a handoff that reached the normal path counts: the rate is
        // of those, and a person may escalate one that never got there.
        s.escalated += u32::from(o.proceeded && !o.escalations.is_empty());
    }
    s.lead_time_hours = Stat::of(&mut lead);
    s.lead_time_business_hours = Stat::of(&mut lead_b);
    s.paused_wait_business_hours = Stat::of(&mut paused);
    s.review_business_hours = Stat::of(&mut review);
    s.completeness = share(s.complete, s.started);
    s.exception_rate = share(s.review, s.started);
    s.escalation_rate = share(s.escalated, s.proceeded);
    s
}

fn share(part: u32, whole: u32) -> Option<f64> {
    (whole > 0).then(|| f64::from(part) / f64::from(whole))
}

/// Counts names, most often first (ties by name), with their share of `of`.
fn ranked<'a>(names: impl Iterator<Item = &'a str>, of: usize) -> Vec<Ranked> {
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    for n in names {
        *counts.entry(n).or_default() += 1;
    }
    let mut out: Vec<Ranked> = counts
        .into_iter()
        .map(|(name, count)| Ranked {
            name: name.to_string(),
            count,
            share: if of == 0 {
                0.0
            } else {
                f64::from(count) / of as f64
            },
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    out
}

fn lead_signals(ones: &[One<'_>], totals: &Signals, targets: &Targets) -> LeadSignals {
    let without_source = ones
        .iter()
        .filter(|o| {
            o.h.missing_at_trigger
                .iter()
                .any(|f| targets.source_fields.contains(f))
        })
        .count() as u32;
    let rejected_unclear = ones
        .iter()
        .filter(|o| {
            o.rejected
                .is_some_and(|r| r.to_lowercase().contains("unclear"))
        })
        .count() as u32;
    LeadSignals {
        response_business_hours: totals.lead_time_business_hours,
        without_source,
        without_source_share: share(without_source, totals.started),
        rejected_unclear,
        rejected_unclear_share: share(rejected_unclear, totals.started),
    }
}

/// Groups field issues by (object, field, kind, value).
/// The field issues in the window, of `objects` only when given.
fn data_quality(
    issues: &[FieldIssueFact],
    window: &Window,
    objects: Option<&[&str]>,
) -> Vec<FieldIssue> {
    let mut groups: BTreeMap<(&str, &str, IssueKind, &str), FieldIssue> = BTreeMap::new();
    for i in issues {
        if i.at < window.since || i.at > window.now {
            continue;
        }
        if objects.is_some_and(|o| !o.contains(&i.object.as_str())) {
            continue;
        }
        groups
            .entry((&i.object, &i.field, i.kind, &i.value))
            .and_modify(|g| {
                g.count += 1;
                g.first_seen = g.first_seen.min(i.at);
                g.last_seen = g.last_seen.max(i.at);
            })
            .or_insert_with(|| FieldIssue {
                object: i.object.clone(),
                field: i.field.clone(),
                kind: i.kind,
                value: i.value.clone(),
                expected: i.expected.clone(),
                count: 1,
                first_seen: i.at,
                last_seen: i.at,
            });
    }
    let mut out: Vec<FieldIssue> = groups.into_values().collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.first_seen.cmp(&b.first_seen)));
    out
}
