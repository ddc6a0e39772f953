//! `/`: the founder's weekly look at where work gets stuck. Findings first,
//! then per workflow: proceeded-not-done / paused / in review counts now,
//! the handoffs stuck (the health report's own list, so the card and the
//! findings agree), lead time per week (median and p90) and completeness
//! per week as SVG charts, the top missing fields, and data-quality
//! warnings.
//!
//! The figures come from one function, [`data`], over the health report
//! (`crate::health`); the page only draws them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use jiff::{Timestamp, ToSpan};
use maud::{html, Markup};

use super::chart::{bars, lines, Series};
use super::layout::page as shell;
use super::{html_page, Viewer};
use crate::health::{self, HealthError, HealthReport, Severity, Targets, Window};
use crate::runtime::state::AppState;
use crate::runtime::store::{StatusCount, Store};

/// How many weeks the charts cover (a quarter).
pub const WEEKS: usize = 13;

/// Everything the dashboard shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dashboard {
    /// Sentences for the top of the page: where work gets stuck.
    pub findings: Vec<String>,
    /// Data-quality warnings.
    pub warnings: Vec<String>,
    /// Week labels (the Monday, `MM-DD`), oldest first.
    pub weeks: Vec<String>,
    /// The timezone weeks are counted in (the workflows' calendar).
    pub timezone: String,
    /// An open handoff triggered this many days ago or more is stuck.
    pub stuck_after_days: f64,
    pub workflows: Vec<WorkflowFigures>,
}

/// One workflow's figures.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkflowFigures {
    pub name: String,
    /// Proceeded and waiting for `done when`, now.
    pub open: u64,
    pub paused: u64,
    pub review: u64,
    /// Open (paused, in review, or proceeded and not done) and triggered
    /// `stuck_after_days` or more ago: the report's `stuck` list.
    pub stuck: u64,
    /// Per week: median and p90 hours from trigger to done.
    pub lead_median: Vec<Option<f64>>,
    pub lead_p90: Vec<Option<f64>>,
    /// Per week: the share that started with every required field.
    pub completeness: Vec<Option<f64>>,
    /// Missing fields of paused handoffs, most frequent first.
    pub top_missing: Vec<(String, u64)>,
}

/// The Monday starting `t`'s week in `tz` (the report's weeks are
/// counted in the calendar's timezone; a week in UTC would lose a row near
/// midnight).
fn week_of(t: Timestamp, tz: &jiff::tz::TimeZone) -> jiff::civil::Date {
    let d = t.to_zoned(tz.clone()).date();
    let back = i64::from(d.weekday().to_monday_zero_offset());
    d.checked_sub(back.days()).unwrap_or(d)
}

/// The dashboard's figures as of `now`: the health report of the last
/// [`WEEKS`] weeks (`crate::health::report`, the same numbers as
/// `handoff health` and `GET /health`) for the charts, findings, missing
/// fields and data quality, and the store's handoffs for the counts by
/// status now. Blocking.
pub fn data(
    store: &dyn Store,
    targets: &Targets,
    now: Timestamp,
) -> Result<Dashboard, HealthError> {
    let window = Window {
        since: now
            .checked_sub(jiff::SignedDuration::from_hours(24 * 7 * WEEKS as i64))
            .unwrap_or(now),
        now,
        workflow: None,
    };
    let report = health::report(store, &window, targets)?;
    let counts = store.open_counts()?;
    Ok(assemble(&report, &counts, now))
}

/// The page's figures from a health report and the handoffs' statuses now.
pub fn assemble(report: &HealthReport, counts: &[StatusCount], now: Timestamp) -> Dashboard {
    let tz = jiff::tz::TimeZone::get(&report.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    let this_week = week_of(now, &tz);
    let mondays: Vec<jiff::civil::Date> = (0..WEEKS)
        .rev()
        .filter_map(|k| this_week.checked_sub((7 * k as i64).days()).ok())
        .collect();
    let mut workflows = Vec::new();
    for wh in &report.workflows {
        let mut w = WorkflowFigures {
            name: wh.workflow.clone(),
            lead_median: vec![None; mondays.len()],
            lead_p90: vec![None; mondays.len()],
            completeness: vec![None; mondays.len()],
            top_missing: wh
                .missing_fields
                .iter()
                .take(5)
                .map(|r| (r.name.clone(), u64::from(r.count)))
                .collect(),
            stuck: wh.stuck.len() as u64,
            ..WorkflowFigures::default()
        };
        for row in &wh.weeks {
            // Weeks start on Monday in the report's timezone, as above.
            let Some(i) = mondays.iter().position(|m| *m == row.monday) else {
                continue;
            };
            w.lead_median[i] = row.signals.lead_time_hours.map(|s| s.median);
            w.lead_p90[i] = row.signals.lead_time_hours.map(|s| s.p90);
            w.completeness[i] = row.signals.completeness;
        }
        for c in counts.iter().filter(|c| c.workflow == wh.workflow) {
            match c.status.as_str() {
                "proceeded" => w.open += c.count,
                "paused" => w.paused += c.count,
                "review" => w.review += c.count,
                _ => {}
            }
        }
        workflows.push(w);
    }
    Dashboard {
        findings: report.findings.iter().map(finding_line).collect(),
        warnings: report
            .data_quality
            .iter()
            .map(|q| {
                format!(
                    "{}.{}: `{}` is not {} ({} time(s), last {})",
                    q.object,
                    q.field,
                    q.value,
                    q.expected,
                    q.count,
                    q.last_seen.strftime("%Y-%m-%d")
                )
            })
            .collect(),
        weeks: mondays
            .iter()
            .map(|d| d.strftime("%m-%d").to_string())
            .collect(),
        timezone: report.timezone.clone(),
        stuck_after_days: report.targets.stuck_after_days,
        workflows,
    }
}

/// `GET /`.
/// A finding as one line of the dashboard: the severity, what the numbers
/// say, and the advice as a sentence of its own (it is written to follow
/// an arrow in the terminal report, so it starts in lower case there).
fn finding_line(f: &crate::health::Finding) -> String {
    let mark = match f.severity {
        Severity::Problem => "Problem",
        Severity::Warning => "Warning",
        Severity::Improvement => "Better",
    };
    let advice = f.advice.trim_end_matches('.');
    let mut chars = advice.chars();
    let advice = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect::<String>())
        .unwrap_or_default();
    format!("{mark}: {}. {advice}.", f.text.trim_end_matches('.'))
}

pub async fn page(
    State(state): State<Arc<AppState>>,
    viewer: Option<Extension<Viewer>>,
) -> Response {
    let viewer = viewer.map(|v| v.0);
    let now = Timestamp::now();
    let (store, targets) = (state.store.clone(), state.settings.health.clone());
    let d = match tokio::task::spawn_blocking(move || data(store.as_ref(), &targets, now)).await {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            // The cause (a file name, SQLite's words) is for the log.
            tracing::error!(error = %e, "the dashboard's figures could not be read");
            return super::message(
                StatusCode::SERVICE_UNAVAILABLE,
                viewer.as_ref(),
                "The figures could not be read",
                "Try again in a moment; the server's log says why.",
            );
        }
        Err(_) => {
            return super::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                viewer.as_ref(),
                "The figures were interrupted",
                "Reload the page.",
            )
        }
    };
    html_page(
        StatusCode::OK,
        shell("Dashboard", viewer.as_ref(), render(&d)),
    )
}

/// The dashboard's body.
pub fn render(d: &Dashboard) -> Markup {
    html! {
        h1 { "Where work gets stuck" }
        section aria-labelledby="findings-h" {
            h2 #findings-h { "Findings" }
            @if d.findings.is_empty() { p { "Nothing stands out: no handoff is stuck and none waits for a field." } }
            ul { @for f in &d.findings { li { (f) } } }
            @if !d.warnings.is_empty() {
                h3 { "Data quality" }
                ul { @for w in &d.warnings { li.notice { (w) } } }
            }
        }
        @if d.workflows.is_empty() {
            p.muted { "No handoff yet: the charts fill in as the CRM sends events." }
        }
        @for w in &d.workflows {
            section aria-label=(w.name) {
                h2 { (w.name) }
                div.cards {
                    div.card { strong { (w.open) } "proceeded, not done" }
                    div.card { strong { (w.paused) } "paused" }
                    div.card { strong { (w.review) } "in review" }
                    div.card { strong { (w.stuck) } "stuck (open " (d.stuck_after_days) "+ days)" }
                }
                (lines(
                    &format!("{}: lead time from trigger to done, per week", w.name),
                    &d.weeks,
                    &[
                        Series { name: "median".into(), colour: "#0b4f9c", values: w.lead_median.clone() },
                        Series { name: "p90".into(), colour: "#a4450a", values: w.lead_p90.clone() },
                    ],
                    "hours",
                ))
                (bars(
                    &format!("{}: share of handoffs complete at trigger, per week", w.name),
                    &d.weeks,
                    &w.completeness,
                    "#14612b",
                ))
                h3 { "Top missing fields" }
                @if w.top_missing.is_empty() { p.muted { "None: every handoff started complete." } }
                @else {
                    table {
                        thead { tr { th scope="col" { "Field" } th scope="col" { "Handoffs that started without it" } } }
                        tbody { @for (f, n) in &w.top_missing { tr { td { (f) } td { (n) } } } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_reads_as_two_sentences() {
        let f = crate::health::Finding {
            code: "unknown_value",
            severity: Severity::Problem,
            workflow: None,
            text: "stage value `Closed-Won` arrived 10 times".into(),
            advice: "add the value to the field's `one of` list.".into(),
            figure: 10.0,
            target: None,
        };
        assert_eq!(
            finding_line(&f),
            "Problem: stage value `Closed-Won` arrived 10 times. \
             Add the value to the field's `one of` list."
        );
    }

    #[test]
    fn weeks_start_on_monday() {
        let utc = jiff::tz::TimeZone::UTC;
        let thursday: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        assert_eq!(week_of(thursday, &utc).to_string(), "2026-11-23");
        let monday: Timestamp = "2026-11-23T00:00:00Z".parse().unwrap();
        assert_eq!(week_of(monday, &utc).to_string(), "2026-11-23");
        // Monday 08:00 in Sydney is still Sunday in UTC: the week is
        // Sydney's, as the report counts it.
        let sydney = jiff::tz::TimeZone::get("Australia/Sydney").unwrap();
        let early: Timestamp = "2026-11-29T21:00:00Z".parse().unwrap();
        assert_eq!(week_of(early, &sydney).to_string(), "2026-11-30");
        assert_eq!(week_of(early, &utc).to_string(), "2026-11-23");
    }
}
