//! `/`: the founder's weekly look at where work gets stuck. Findings first,
//! then per workflow: open / paused / in review / stuck counts, lead time
//! per week (median and p90) and completeness per week as SVG charts, the
//! top missing fields, and data-quality warnings.
//!
//! The figures come from one function, [`data`]; the page only draws them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use jiff::{Timestamp, ToSpan};
use maud::{html, Markup};

use super::chart::{bars, lines, Series};
use super::handoffs::STUCK_AFTER_DAYS;
use super::layout::page as shell;
use super::{html_page, read, Viewer};
use crate::runtime::state::AppState;
use crate::runtime::store::{HandoffFact, Store, StoreError};

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
    pub workflows: Vec<WorkflowFigures>,
}

/// One workflow's figures.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkflowFigures {
    pub name: String,
    /// Proceeded and waiting for `done when`.
    pub open: u64,
    pub paused: u64,
    pub review: u64,
    /// Paused or in review, untouched for [`STUCK_AFTER_DAYS`] days.
    pub stuck: u64,
    /// Per week: median and p90 hours from trigger to done.
    pub lead_median: Vec<Option<f64>>,
    pub lead_p90: Vec<Option<f64>>,
    /// Per week: the share that started with every required field.
    pub completeness: Vec<Option<f64>>,
    /// Missing fields of paused handoffs, most frequent first.
    pub top_missing: Vec<(String, u64)>,
}

/// The `q` quantile (0..=1) of sorted `v`, nearest rank.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The Monday (UTC) starting `t`'s week.
fn week_of(t: Timestamp) -> jiff::civil::Date {
    let d = t.to_zoned(jiff::tz::TimeZone::UTC).date();
    let back = i64::from(d.weekday().to_monday_zero_offset());
    d.checked_sub(back.days()).unwrap_or(d)
}

/// The dashboard's figures from the store, as of `now`.
pub fn data(store: &dyn Store, now: Timestamp) -> Result<Dashboard, StoreError> {
    Ok(figures(&store.handoff_facts()?, now))
}

/// The figures of `facts` as of `now`.
pub fn figures(facts: &[HandoffFact], now: Timestamp) -> Dashboard {
    let this_week = week_of(now);
    let weeks: Vec<jiff::civil::Date> = (0..WEEKS)
        .rev()
        .filter_map(|k| this_week.checked_sub((7 * k as i64).days()).ok())
        .collect();
    let index = |t: Timestamp| weeks.iter().position(|w| *w == week_of(t));
    let stuck_before = now
        .checked_sub(jiff::SignedDuration::from_hours(24 * STUCK_AFTER_DAYS))
        .unwrap_or(now);
    let mut by_wf: BTreeMap<&str, Vec<&HandoffFact>> = BTreeMap::new();
    for f in facts {
        by_wf.entry(f.workflow.as_str()).or_default().push(f);
    }
    let mut findings = Vec::new();
    let mut workflows = Vec::new();
    for (name, fs) in by_wf {
        let mut w = WorkflowFigures {
            name: name.to_string(),
            ..WorkflowFigures::default()
        };
        let mut lead: Vec<Vec<f64>> = vec![Vec::new(); weeks.len()];
        let mut started: Vec<(u64, u64)> = vec![(0, 0); weeks.len()];
        let mut missing: BTreeMap<&str, u64> = BTreeMap::new();
        for f in &fs {
            match f.status.as_str() {
                "proceeded" => w.open += 1,
                "paused" => w.paused += 1,
                "review" => w.review += 1,
                _ => {}
            }
            if matches!(f.status.as_str(), "paused" | "review") && f.updated_at < stuck_before {
                w.stuck += 1;
            }
            if f.status == "paused" {
                for m in &f.missing {
                    *missing.entry(m.as_str()).or_default() += 1;
                }
            }
            if let (Some(done), Some(i)) = (f.done_at, f.done_at.and_then(index)) {
                let hours = done.duration_since(f.triggered_at).as_secs_f64() / 3600.0;
                lead[i].push(hours.max(0.0));
            }
            if let Some(i) = index(f.triggered_at) {
                started[i].1 += 1;
                if f.first_status.as_deref() != Some("paused") {
                    started[i].0 += 1;
                }
            }
        }
        for l in &mut lead {
            l.sort_by(f64::total_cmp);
        }
        w.lead_median = lead.iter().map(|l| quantile(l, 0.5)).collect();
        w.lead_p90 = lead.iter().map(|l| quantile(l, 0.9)).collect();
        w.completeness = started
            .iter()
            .map(|&(ok, all)| (all > 0).then(|| ok as f64 / all as f64))
            .collect();
        let mut top: Vec<(String, u64)> = missing
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(5);
        if w.stuck > 0 {
            findings.push(format!(
                "{name}: {} handoff(s) stuck for more than {STUCK_AFTER_DAYS} days ({} paused, {} in review).",
                w.stuck, w.paused, w.review
            ));
        }
        if let Some((field, n)) = top.first() {
            findings.push(format!("{name}: `{field}` is the field most often missing ({n} paused handoff(s) wait for it)."));
        }
        w.top_missing = top;
        workflows.push(w);
    }
    Dashboard {
        findings,
        warnings: Vec::new(),
        weeks: weeks
            .iter()
            .map(|d| d.strftime("%m-%d").to_string())
            .collect(),
        workflows,
    }
}

/// `GET /`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    viewer: Option<Extension<Viewer>>,
) -> Response {
    let viewer = viewer.map(|v| v.0);
    let now = Timestamp::now();
    let d = match read(&state, move |s| data(s, now)).await {
        Ok(d) => d,
        Err(r) => return r,
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
                    div.card { strong { (w.open) } "open" }
                    div.card { strong { (w.paused) } "paused" }
                    div.card { strong { (w.review) } "in review" }
                    div.card { strong { (w.stuck) } "stuck" }
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
                @if w.top_missing.is_empty() { p.muted { "None: no paused handoff." } }
                @else {
                    table {
                        thead { tr { th scope="col" { "Field" } th scope="col" { "Paused handoffs waiting" } } }
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

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn fact(status: &str, trig: &str, done: Option<&str>, first: &str) -> HandoffFact {
        HandoffFact {
            workflow: "Kickoff".into(),
            status: status.into(),
            triggered_at: at(trig),
            updated_at: at(trig),
            done_at: done.map(at),
            missing: if status == "paused" {
                vec!["deal.risk_notes".into()]
            } else {
                vec![]
            },
            first_status: Some(first.into()),
        }
    }

    #[test]
    fn lead_time_completeness_and_stuck_come_from_the_facts() {
        let now = at("2026-11-26T12:00:00Z"); // a Thursday
        let facts = [
            fact(
                "done",
                "2026-11-23T00:00:00Z",
                Some("2026-11-23T10:00:00Z"),
                "proceeded",
            ),
            fact(
                "done",
                "2026-11-23T00:00:00Z",
                Some("2026-11-24T06:00:00Z"),
                "paused",
            ),
            fact("paused", "2026-11-16T00:00:00Z", None, "paused"),
            fact("review", "2026-11-25T00:00:00Z", None, "review"),
        ];
        let d = figures(&facts, now);
        assert_eq!(d.weeks.len(), WEEKS);
        assert_eq!(d.weeks.last().unwrap(), "11-23");
        let w = &d.workflows[0];
        assert_eq!((w.open, w.paused, w.review, w.stuck), (0, 1, 1, 1));
        assert_eq!(w.lead_median[WEEKS - 1], Some(10.0));
        assert_eq!(w.lead_p90[WEEKS - 1], Some(30.0));
        // This week: 3 started, 2 of them complete; last week: 1, incomplete.
        assert_eq!(w.completeness[WEEKS - 1], Some(2.0 / 3.0));
        assert_eq!(w.completeness[WEEKS - 2], Some(0.0));
        assert_eq!(w.completeness[0], None);
        assert_eq!(w.top_missing, [("deal.risk_notes".to_string(), 1)]);
        assert!(
            d.findings.iter().any(|f| f.contains("stuck")),
            "{:?}",
            d.findings
        );
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.0));
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.9), Some(4.0));
    }
}
