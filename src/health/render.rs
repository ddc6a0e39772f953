//! The terminal report: findings first, then a compact table per workflow
//! with week-over-week arrows, the weak fields, the stuck handoffs, and the
//! CRM values that did not fit.

use std::fmt::Write as _;

use super::findings::Severity;
use super::signals::{HealthReport, Signals, Stat, WorkflowHealth};

/// The report as text for a person at a terminal. CRM values are in it
/// (a stage nobody declared, record ids, reasons people typed): a control
/// character among them (an escape sequence that recolours, moves the
/// cursor or retitles the terminal) is shown as `�` instead of acting.
pub fn human(report: &HealthReport) -> String {
    inert(&text(report))
}

/// `text` with every control character but the line break replaced.
fn inert(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

fn text(report: &HealthReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Handoff health since {} (weeks in {}, {}-hour working days)\n",
        report.since.strftime("%Y-%m-%d"),
        report.timezone,
        report.day_hours
    );
    if report.findings.is_empty() {
        out.push_str("No findings: every signal is on target.\n\n");
    } else {
        out.push_str("Findings\n");
        for f in &report.findings {
            let mark = match f.severity {
                Severity::Problem => "!!",
                Severity::Warning => " !",
                Severity::Improvement => " +",
            };
            let _ = writeln!(out, "{mark} {}.\n   → {}.", f.text, f.advice);
        }
        out.push('\n');
    }
    for w in &report.workflows {
        workflow(&mut out, w, report.day_hours);
    }
    if !report.data_quality.is_empty() {
        out.push_str("Values from the CRM that did not fit\n");
        for i in report.data_quality.iter().take(10) {
            let _ = writeln!(
                out,
                "  {}.{} = {}: {} × ({}), {} to {}",
                i.object,
                i.field,
                i.value,
                i.count,
                match i.kind {
                    super::IssueKind::UnknownValue => "not declared",
                    super::IssueKind::TypeError => "wrong type",
                },
                i.first_seen.strftime("%Y-%m-%d"),
                i.last_seen.strftime("%Y-%m-%d")
            );
        }
    }
    out
}

fn workflow(out: &mut String, w: &WorkflowHealth, day: f64) {
    let t = &w.totals;
    let _ = writeln!(
        out,
        "{} ({}): {} started, {} done, {} open, {} withdrawn",
        w.workflow, w.object, t.started, t.done, t.open, t.withdrawn
    );
    let _ = writeln!(
        out,
        "  {:<9} {:>5} {:>5} {:>11} {:>7} {:>9} {:>11} {:>7} {:>6} {:>6}",
        "week",
        "start",
        "done",
        "lead bd",
        "p90",
        "complete",
        "paused bd",
        "review",
        "a/r",
        "escal"
    );
    let mut prev: Option<&Signals> = None;
    for row in &w.weeks {
        let s = &row.signals;
        let lead = days(s.lead_time_business_hours, day);
        let prev_lead = prev.and_then(|p| days(p.lead_time_business_hours, day));
        let complete = s.completeness;
        let prev_complete = prev.and_then(|p| p.completeness);
        let _ = writeln!(
            out,
            "  {:<9} {:>5} {:>5} {:>9}{} {:>7} {:>7}{} {:>11} {:>7} {:>6} {:>6}",
            row.week,
            s.started,
            s.done,
            lead.map_or("-".into(), |d| format!("{d:.1}")),
            arrow(prev_lead, lead),
            s.lead_time_business_hours
                .map_or("-".into(), |l| format!("{:.1}", l.p90 / day)),
            complete.map_or("-".into(), |c| format!("{:.0}%", c * 100.0)),
            arrow(prev_complete, complete),
            days(s.paused_wait_business_hours, day).map_or("-".into(), |d| format!("{d:.1}")),
            s.review,
            format!("{}/{}", s.approved, s.rejected),
            s.escalated,
        );
        prev = Some(s);
    }
    if !w.missing_fields.is_empty() {
        let list: Vec<String> = w
            .missing_fields
            .iter()
            .take(5)
            .map(|f| format!("{} {:.0}%", f.name, f.share * 100.0))
            .collect();
        let _ = writeln!(out, "  missing at the trigger: {}", list.join(", "));
    }
    if !w.flags.is_empty() {
        let list: Vec<String> = w
            .flags
            .iter()
            .map(|f| format!("{} {}", f.name, f.count))
            .collect();
        let _ = writeln!(out, "  exceptions: {}", list.join(", "));
    }
    if let Some(l) = &w.leads {
        let _ = writeln!(
            out,
            "  leads: response {} business hours, {} without source, {} rejected for unclear notes",
            l.response_business_hours
                .map_or("-".into(), |r| format!("{:.1}", r.median)),
            l.without_source,
            l.rejected_unclear
        );
    }
    for s in w.stuck.iter().take(5) {
        let _ = writeln!(
            out,
            "  stuck: {} {} for {:.0} days, next step: {}",
            s.record_id,
            s.status,
            s.open_days,
            s.next_owner.as_deref().unwrap_or("nobody named")
        );
    }
    if w.stuck.len() > 5 {
        let _ = writeln!(out, "  … and {} more stuck", w.stuck.len() - 5);
    }
    out.push('\n');
}

fn days(s: Option<Stat>, day: f64) -> Option<f64> {
    s.map(|s| s.median / day)
}

/// Up, down or level against the week before (level within 5%).
fn arrow(before: Option<f64>, now: Option<f64>) -> &'static str {
    match (before, now) {
        (Some(b), Some(n)) if n > b * 1.05 && n - b > 1e-9 => "↑",
        (Some(b), Some(n)) if n < b * 0.95 && b - n > 1e-9 => "↓",
        (Some(_), Some(_)) => "→",
        _ => " ",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_from_the_crm_cannot_act_on_the_terminal() {
        let shown = super::inert("stage = \u{1b}]0;pwned\u{7}Won\r\n");
        assert_eq!(shown, "stage = \u{fffd}]0;pwned\u{fffd}Won\u{fffd}\n");
    }

    use super::arrow;

    #[test]
    fn arrows_compare_with_the_week_before() {
        assert_eq!(arrow(Some(2.0), Some(3.0)), "↑");
        assert_eq!(arrow(Some(3.0), Some(2.0)), "↓");
        assert_eq!(arrow(Some(2.0), Some(2.05)), "→");
        assert_eq!(arrow(None, Some(2.0)), " ");
        assert_eq!(arrow(Some(0.0), Some(0.0)), "→");
    }
}
