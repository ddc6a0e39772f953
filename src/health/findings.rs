//! Findings: the signals read the way the article reads them, as a short
//! list of plain-English diagnoses, each with the figure behind it and
//! what to change. "If the handoff fields are complete but delivery still
//! asks the same questions, the checklist is wrong. If kickoff still waits
//! three days, the first task is not strong enough."
//!
//! The thresholds are [`Targets`], set in `handoff.toml` under `[health]`.

use serde::{Deserialize, Serialize};

use super::signals::{FieldIssue, WorkflowHealth};
use super::IssueKind;

/// What counts as healthy. Every key has a default; `[health]` in
/// `handoff.toml` overrides any of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Targets {
    /// Median trigger → done, in business days.
    pub lead_time_business_days: f64,
    /// Share of handoffs with every required field at the trigger (0..1).
    pub completeness: f64,
    /// A field missing from at least this share of paused handoffs is the
    /// checklist's weak spot.
    pub weak_field_share: f64,
    /// Median wait of a paused handoff, in business days.
    pub paused_wait_business_days: f64,
    /// Share of handoffs sent to review by an exception.
    pub exception_rate: f64,
    /// Median time in review, in business days.
    pub review_business_days: f64,
    /// Share of proceeded handoffs that delivery escalated.
    pub escalation_rate: f64,
    /// An open handoff older than this many days is stuck.
    pub stuck_after_days: f64,
    /// Median qualified → first response for leads, in business hours.
    pub lead_response_business_hours: f64,
    /// Share of leads qualified without their source fields.
    pub without_source_rate: f64,
    /// Share of leads rejected for unclear qualification notes.
    pub unclear_rejection_rate: f64,
    /// The object whose handoffs are marketing → sales.
    pub lead_object: String,
    /// The lead fields that carry the source context.
    pub source_fields: Vec<String>,
    /// Fewer handoffs than this in the window: too few to judge a workflow.
    pub min_handoffs: u32,
    /// A lead time that changes by at least this share after a rule change
    /// is worth saying.
    pub notable_change: f64,
}

impl Default for Targets {
    fn default() -> Self {
        Targets {
            lead_time_business_days: 2.0,
            completeness: 0.8,
            weak_field_share: 0.25,
            paused_wait_business_days: 1.0,
            exception_rate: 0.3,
            review_business_days: 1.0,
            escalation_rate: 0.05,
            stuck_after_days: 7.0,
            lead_response_business_hours: 4.0,
            without_source_rate: 0.1,
            unclear_rejection_rate: 0.1,
            lead_object: "lead".into(),
            source_fields: vec!["source".into(), "lead_source".into(), "campaign".into()],
            min_handoffs: 5,
            notable_change: 0.2,
        }
    }
}

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Handoffs are being lost or not firing.
    Problem,
    /// A signal is off its target.
    Warning,
    /// Good news: a signal got better.
    Improvement,
}

/// One diagnosis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Stable name of the diagnosis: `slow_lead_time`, `weak_field`, ...
    pub code: &'static str,
    pub severity: Severity,
    /// The workflow it is about (none for data quality).
    pub workflow: Option<String>,
    /// What the numbers say, with the figure.
    pub text: String,
    /// What to change.
    pub advice: String,
    /// The figure, in the unit of its target.
    pub figure: f64,
    pub target: Option<f64>,
}

/// The findings for these workflows and field issues, most urgent first.
pub fn diagnose(
    workflows: &[WorkflowHealth],
    issues: &[FieldIssue],
    targets: &Targets,
    day_hours: f64,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for i in issues {
        out.push(field_issue(i));
    }
    for w in workflows {
        stuck(w, targets, &mut out);
        if w.totals.started < targets.min_handoffs {
            continue;
        }
        if w.leads.is_some() {
            leads(w, targets, &mut out);
        } else {
            lead_time(w, targets, day_hours, &mut out);
        }
        checklist(w, targets, &mut out);
        paused(w, targets, day_hours, &mut out);
        exceptions(w, targets, day_hours, &mut out);
        rule_change(w, targets, day_hours, &mut out);
    }
    // Stable: the order above within a severity.
    out.sort_by_key(|f| f.severity);
    out
}

fn finding(
    code: &'static str,
    severity: Severity,
    w: Option<&WorkflowHealth>,
    text: String,
    advice: &str,
    figure: f64,
    target: Option<f64>,
) -> Finding {
    Finding {
        code,
        severity,
        workflow: w.map(|w| w.workflow.clone()),
        text,
        advice: advice.to_string(),
        figure,
        target,
    }
}

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

fn field_issue(i: &FieldIssue) -> Finding {
    let seen = format!(
        "{} time{} (first {}, last {})",
        i.count,
        if i.count == 1 { "" } else { "s" },
        i.first_seen.strftime("%Y-%m-%d"),
        i.last_seen.strftime("%Y-%m-%d")
    );
    match i.kind {
        IssueKind::UnknownValue => finding(
            "undeclared_value",
            Severity::Problem,
            None,
            format!(
                "{} value `{}` arrived {seen} and is not declared on `{}.{}`: handoffs may not be firing",
                i.field,
                i.value.trim_matches('"'),
                i.object,
                i.field
            ),
            "add the value to the field's `one of` list (or fix the label in the CRM), then check the triggers that test it",
            f64::from(i.count),
            None,
        ),
        IssueKind::TypeError => finding(
            "unreadable_value",
            Severity::Problem,
            None,
            format!(
                "`{}.{}` could not be read {seen}: `{}` is not {}",
                i.object,
                i.field,
                i.value.trim_matches('"'),
                i.expected
            ),
            "fix the field's format in the CRM, or change its type in the workflows; until then the value is left out",
            f64::from(i.count),
            None,
        ),
    }
}

fn stuck(w: &WorkflowHealth, targets: &Targets, out: &mut Vec<Finding>) {
    let Some(oldest) = w.stuck.first() else {
        return;
    };
    let owner = oldest
        .next_owner
        .as_deref()
        .map_or("nobody named".to_string(), |o| o.to_string());
    out.push(finding(
        "stuck",
        Severity::Problem,
        Some(w),
        format!(
            "{} \"{}\" handoff{} open for more than {} days; the oldest, {} ({:.0} days, {}), waits on {owner}",
            w.stuck.len(),
            w.workflow,
            if w.stuck.len() == 1 { " has been" } else { "s have been" },
            targets.stuck_after_days,
            oldest.record_id,
            oldest.open_days,
            oldest.status,
        ),
        "follow up with the owner of the next step; if nobody owns it, the handoff still depends on memory",
        w.stuck.len() as f64,
        Some(0.0),
    ));
}

fn lead_time(w: &WorkflowHealth, targets: &Targets, day_hours: f64, out: &mut Vec<Finding>) {
    let Some(lead) = w.totals.lead_time_business_hours else {
        return;
    };
    let days = lead.median / day_hours;
    if days > targets.lead_time_business_days {
        out.push(finding(
            "slow_lead_time",
            Severity::Warning,
            Some(w),
            format!(
                "\"{}\" waits a median of {:.1} business days from the trigger to done (target {}; p90 {:.1})",
                w.workflow,
                days,
                targets.lead_time_business_days,
                lead.p90 / day_hours
            ),
            "the first task may not be strong enough: give it one owner, a clear title and a due date within the target",
            days,
            Some(targets.lead_time_business_days),
        ));
    }
}

fn leads(w: &WorkflowHealth, targets: &Targets, out: &mut Vec<Finding>) {
    let Some(l) = &w.leads else { return };
    if let Some(r) = l.response_business_hours {
        if r.median > targets.lead_response_business_hours {
            out.push(finding(
                "slow_lead_response",
                Severity::Warning,
                Some(w),
                format!(
                    "Sales answers qualified leads in \"{}\" after a median of {:.1} business hours (target {})",
                    w.workflow, r.median, targets.lead_response_business_hours
                ),
                "create the follow-up task the moment a lead is qualified, assigned to one person, with the campaign context attached",
                r.median,
                Some(targets.lead_response_business_hours),
            ));
        }
    }
    if let Some(s) = l.without_source_share {
        if s > targets.without_source_rate {
            out.push(finding(
                "missing_source",
                Severity::Warning,
                Some(w),
                format!(
                    "{} of qualified leads in \"{}\" arrived without source context ({} of {}; target under {})",
                    pct(s),
                    w.workflow,
                    l.without_source,
                    w.totals.started,
                    pct(targets.without_source_rate)
                ),
                "make the source and campaign fields required where leads are captured (the form or the import), not after",
                s,
                Some(targets.without_source_rate),
            ));
        }
    }
    if let Some(s) = l.rejected_unclear_share {
        if s > targets.unclear_rejection_rate {
            out.push(finding(
                "unclear_rejections",
                Severity::Warning,
                Some(w),
                format!(
                    "Sales rejected {} of qualified leads in \"{}\" because the qualification notes were unclear ({} of {}; target under {})",
                    pct(s),
                    w.workflow,
                    l.rejected_unclear,
                    w.totals.started,
                    pct(targets.unclear_rejection_rate)
                ),
                "agree with sales what a qualification note must say; if sales ignores marketing's notes, the CRM view may be cluttered",
                s,
                Some(targets.unclear_rejection_rate),
            ));
        }
    }
}

fn checklist(w: &WorkflowHealth, targets: &Targets, out: &mut Vec<Finding>) {
    let t = &w.totals;
    let complete = t.completeness.unwrap_or(1.0);
    if complete < targets.completeness {
        out.push(finding(
            "low_completeness",
            Severity::Warning,
            Some(w),
            format!(
                "Only {} of \"{}\" handoffs had every required field when the trigger fired (target {})",
                pct(complete),
                w.workflow,
                pct(targets.completeness)
            ),
            "ask for the fields before the stage changes (make them required on that stage in the CRM), or shorten the checklist",
            complete,
            Some(targets.completeness),
        ));
    }
    let paused = w
        .missing_fields
        .first()
        .filter(|f| f.share >= targets.weak_field_share);
    if let Some(f) = paused {
        out.push(finding(
            "weak_field",
            Severity::Warning,
            Some(w),
            format!(
                "`{}` is the field most often missing in \"{}\" ({} of paused handoffs)",
                f.name,
                w.workflow,
                pct(f.share)
            ),
            "make it easier to fill in, or question whether it belongs on the checklist",
            f.share,
            Some(targets.weak_field_share),
        ));
    }
    if let Some(rate) = t.escalation_rate {
        if rate > targets.escalation_rate && t.proceeded >= targets.min_handoffs {
            let reason = w
                .escalation_reasons
                .first()
                .map(|r| format!(", most often \"{}\"", r.name))
                .unwrap_or_default();
            if complete >= targets.completeness {
                out.push(finding(
                    "checklist_wrong",
                    Severity::Warning,
                    Some(w),
                    format!(
                        "\"{}\" handoffs are complete ({}), yet delivery escalated {} of them for missing context{reason} (target under {})",
                        w.workflow,
                        pct(complete),
                        pct(rate),
                        pct(targets.escalation_rate)
                    ),
                    "the checklist is wrong: ask delivery which questions they still ask, and put those fields on it",
                    rate,
                    Some(targets.escalation_rate),
                ));
            } else {
                out.push(finding(
                    "escalations",
                    Severity::Warning,
                    Some(w),
                    format!(
                        "Delivery escalated {} of \"{}\" handoffs for missing context{reason} (target under {})",
                        pct(rate),
                        w.workflow,
                        pct(targets.escalation_rate)
                    ),
                    "hold the handoff until the checklist is complete (`require` with `pause`) before changing the checklist",
                    rate,
                    Some(targets.escalation_rate),
                ));
            }
        }
    }
}

fn paused(w: &WorkflowHealth, targets: &Targets, day_hours: f64, out: &mut Vec<Finding>) {
    let Some(wait) = w.totals.paused_wait_business_hours else {
        return;
    };
    let days = wait.median / day_hours;
    if days > targets.paused_wait_business_days {
        out.push(finding(
            "slow_paused",
            Severity::Warning,
            Some(w),
            format!(
                "Paused \"{}\" handoffs wait a median of {:.1} business days for their missing fields (target {})",
                w.workflow, days, targets.paused_wait_business_days
            ),
            "tell the owner exactly which fields are missing when it pauses, and remind them the next working day",
            days,
            Some(targets.paused_wait_business_days),
        ));
    }
}

fn exceptions(w: &WorkflowHealth, targets: &Targets, day_hours: f64, out: &mut Vec<Finding>) {
    let t = &w.totals;
    if let Some(rate) = t.exception_rate {
        if rate > targets.exception_rate {
            let flag = w
                .flags
                .first()
                .map(|f| format!(", most often \"{}\" ({})", f.name, pct(f.share)))
                .unwrap_or_default();
            out.push(finding(
                "exception_heavy",
                Severity::Warning,
                Some(w),
                format!(
                    "Exceptions sent {} of \"{}\" handoffs to review{flag} (target under {})",
                    pct(rate),
                    w.workflow,
                    pct(targets.exception_rate)
                ),
                "the normal path may not fit most deals: make the common case standard, or narrow the flag",
                rate,
                Some(targets.exception_rate),
            ));
        }
    }
    if let Some(review) = t.review_business_hours {
        let days = review.median / day_hours;
        if days > targets.review_business_days {
            out.push(finding(
                "slow_review",
                Severity::Warning,
                Some(w),
                format!(
                    "\"{}\" handoffs wait a median of {:.1} business days in review (target {}; {} approved, {} rejected)",
                    w.workflow, days, targets.review_business_days, t.approved, t.rejected
                ),
                "give the review task one owner and a due date, or let an approval field resume it (`resume when`)",
                days,
                Some(targets.review_business_days),
            ));
        }
    }
}

fn rule_change(w: &WorkflowHealth, targets: &Targets, day_hours: f64, out: &mut Vec<Finding>) {
    let Some(rc) = &w.rule_change else { return };
    let (Some(before), Some(after)) = (rc.before, rc.after) else {
        return;
    };
    let enough = targets.min_handoffs.max(3);
    if before.count < enough || after.count < enough || before.median <= 0.0 {
        return;
    }
    let change = (after.median - before.median) / before.median;
    if change.abs() < targets.notable_change {
        return;
    }
    let short = &rc.version[..rc.version.len().min(12)];
    let (code, severity, verb, advice) = if change < 0.0 {
        (
            "improved_after_change",
            Severity::Improvement,
            "fell",
            "keep the change; look at the next slowest signal",
        )
    } else {
        (
            "worse_after_change",
            Severity::Warning,
            "rose",
            "compare the two versions (`GET /workflows`) and undo what slowed the handoff",
        )
    };
    out.push(finding(
        code,
        severity,
        Some(w),
        format!(
            "Since the rules changed on {} (version {short}), \"{}\" lead time {verb} from a median of {:.1} to {:.1} business days ({:+.0}%)",
            rc.at.strftime("%Y-%m-%d"),
            w.workflow,
            before.median / day_hours,
            after.median / day_hours,
            change * 100.0
        ),
        advice,
        change,
        Some(-targets.notable_change),
    ));
}
