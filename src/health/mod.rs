//! Handoff health: the few weekly signals the article says to review, and
//! plain-English findings from them, computed from what the store already
//! keeps (handoffs, their status changes, notes, escalations and the audit
//! log's field errors).
//!
//! The stage is a pure function, [`compute`], over plain rows
//! ([`HealthRows`]) a store loads in one read ([`crate::runtime::store::Store::health_rows`]),
//! so every signal and finding is unit-tested on hand-built histories:
//!
//! ```text
//! Store::health_rows(since) ─▶ HealthRows ─compute(rows, calendar, targets, now)─▶ HealthReport
//!                                                                  │
//!                                          render::human / serde JSON (`handoff health`, GET /health)
//! ```
//!
//! [`report`] (feature `serve`) is the one call a caller with a store needs,
//! the web dashboard among them: it loads the rows, takes the calendar from
//! the latest workflow version the store kept, and computes.
//!
//! Every handoff is counted in the ISO week (in the calendar's timezone) its
//! trigger fired: a week's row says what became of the handoffs that started
//! that week, so a late `done` updates the week it belongs to.

pub mod findings;
pub mod render;
pub mod signals;
pub mod week;

#[cfg(feature = "serve")]
pub mod demo;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use findings::{Finding, Severity, Targets};
pub use signals::{compute, HealthReport, Signals, Stat, WeekRow, WorkflowHealth};

/// Everything the health report reads, as plain rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthRows {
    /// Handoffs triggered since the start of the window, and every handoff
    /// still open whenever it started (for the stuck list).
    pub handoffs: Vec<HandoffFacts>,
    /// Escalations of those handoffs.
    pub escalations: Vec<EscalationFact>,
    /// Values from the CRM that did not fit a field, since the window's start.
    pub field_issues: Vec<FieldIssueFact>,
    /// Workflow versions that served, oldest first.
    pub versions: Vec<VersionFact>,
}

/// One handoff instance and its history.
#[derive(Debug, Clone, PartialEq)]
pub struct HandoffFacts {
    pub id: String,
    pub workflow: String,
    pub object: String,
    pub record_id: String,
    /// `paused`, `review`, `proceeded`, `done`, `withdrawn`.
    pub status: String,
    pub triggered_at: Timestamp,
    pub done_at: Option<Timestamp>,
    /// Required fields missing when the trigger fired (names); empty when
    /// the checklist was complete.
    pub missing_at_trigger: Vec<String>,
    /// Status changes, oldest first.
    pub history: Vec<Transition>,
    /// What people did to it, oldest first.
    pub notes: Vec<NoteFact>,
    /// Who owns the next step: the assignee of its latest task, else the
    /// person its latest notification went to.
    pub next_owner: Option<String>,
}

impl HandoffFacts {
    /// Whether the handoff is still waiting on someone.
    pub fn is_open(&self) -> bool {
        matches!(self.status.as_str(), "paused" | "review" | "proceeded")
    }
}

/// One status change.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub from: Option<String>,
    pub to: String,
    pub at: Timestamp,
    /// The person who made it (an approval), `None` for an event.
    pub by: Option<String>,
    /// The exceptions flagged, when it went to review.
    pub exceptions: Vec<String>,
}

/// A note a person left on a handoff (`approve`, `reject`, `escalation`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct NoteFact {
    pub kind: String,
    pub who: String,
    pub at: Timestamp,
    pub text: String,
}

/// One recorded escalation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationFact {
    pub handoff_id: String,
    pub at: Timestamp,
    /// `rule` (an `escalate when` became true) or `person` (the API).
    pub source: String,
    pub who: String,
    pub reason: String,
}

/// One value from the CRM that did not fit its field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldIssueFact {
    pub object: String,
    /// The field's name (without `record.` or `previous.`).
    pub field: String,
    pub kind: IssueKind,
    pub value: String,
    pub expected: String,
    pub at: Timestamp,
}

/// Why a value did not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    /// The value is not of the field's type (it was left out).
    TypeError,
    /// The value is outside the field's `one of` list (it was applied).
    UnknownValue,
}

/// A workflow version and when it first served.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionFact {
    pub id: String,
    pub first_loaded_at: Timestamp,
    /// The handoffs whose text differs from the version before; `None`
    /// when not known (then a change counts for every workflow).
    pub changed: Option<Vec<String>>,
}

/// Which part of the store a report covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Handoffs triggered at or after this moment are counted.
    pub since: Timestamp,
    /// The report's "now": open handoffs wait until it.
    pub now: Timestamp,
    /// Only this workflow (by name), or all.
    pub workflow: Option<String>,
}

/// Why a report could not be made.
#[cfg(feature = "serve")]
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum HealthError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] crate::runtime::store::StoreError),
    /// `--workflow` names a workflow the store has no handoffs of.
    #[error("no handoffs of workflow \"{name}\" in this database")]
    #[diagnostic(help("{}", if known.is_empty() { "the database has no handoffs yet: run `handoff serve` (or `handoff demo`) first".to_string() } else { format!("the workflows with handoffs are: {}", known.join(", ")) }))]
    UnknownWorkflow { name: String, known: Vec<String> },
}

/// The health report of the handoffs in `store`: the call `handoff health`,
/// `GET /health` and the web dashboard share.
///
/// Reads the rows since `window.since` (and every open handoff), takes the
/// calendar (timezone, working hours, holidays) from the latest workflow
/// version the store kept (UTC, Monday to Friday 9:00 to 17:00 when none
/// compiles), and computes the signals and findings against `targets`.
/// Blocking: call it from `spawn_blocking` in async code.
#[cfg(feature = "serve")]
pub fn report(
    store: &dyn crate::runtime::store::Store,
    window: &Window,
    targets: &Targets,
) -> Result<HealthReport, HealthError> {
    let mut rows = store.health_rows(window.since)?;
    mark_changed(store, &mut rows.versions);
    if let Some(name) = &window.workflow {
        // None in the window (nor open) is an empty section when the
        // workflow had handoffs before it; an error only when it never had.
        let ever = || {
            let filter = crate::runtime::store::HandoffFilter {
                workflow: Some(name.clone()),
                ..Default::default()
            };
            store
                .list_handoffs(&filter, &crate::runtime::store::PageRequest::first(1))
                .map(|page| !page.items.is_empty())
        };
        if !rows.handoffs.iter().any(|h| &h.workflow == name) && !ever()? {
            let mut known: Vec<String> = rows.handoffs.iter().map(|h| h.workflow.clone()).collect();
            known.sort();
            known.dedup();
            return Err(HealthError::UnknownWorkflow {
                name: name.clone(),
                known,
            });
        }
    }
    let calendar = latest_calendar(store);
    Ok(compute(&rows, &calendar, targets, window))
}

/// Works out which handoffs each version changed, for the versions that
/// could be a report's rule change (all but the first), so a change to one
/// workflow is not credited with another's trend.
#[cfg(feature = "serve")]
fn mark_changed(store: &dyn crate::runtime::store::Store, versions: &mut [VersionFact]) {
    let texts = |id: &str| {
        store
            .workflow_version(id)
            .ok()
            .flatten()
            .map(|v| handoff_texts(&v.files))
    };
    let mut previous = versions.first().and_then(|v| texts(&v.id));
    for v in versions.iter_mut().skip(1) {
        let current = texts(&v.id);
        if let (Some(before), Some(now)) = (&previous, &current) {
            let mut changed: Vec<String> = now
                .iter()
                .filter(|(name, text)| before.get(*name) != Some(text))
                .map(|(name, _)| name.clone())
                .collect();
            changed.sort();
            v.changed = Some(changed);
        }
        previous = current;
    }
}

/// Each handoff's source text, by name.
#[cfg(feature = "serve")]
fn handoff_texts(
    files: &[crate::runtime::store::WorkflowFile],
) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for f in files {
        let source = crate::diagnostic::SourceFile::new(f.name.clone(), f.text.clone());
        for d in crate::syntax::parse(&source).file.declarations {
            if let crate::syntax::Declaration::Handoff(h) = d {
                let text = f.text.get(h.span.start..h.span.end).unwrap_or_default();
                out.insert(h.name.value.clone(), text.to_string());
            }
        }
    }
    out
}

/// The calendar of the newest workflow version the store kept.
#[cfg(feature = "serve")]
fn latest_calendar(store: &dyn crate::runtime::store::Store) -> crate::compile::Calendar {
    let newest = store
        .workflow_versions()
        .ok()
        .and_then(|v| v.last().cloned())
        .and_then(|v| store.workflow_version(&v.id).ok().flatten());
    let Some(version) = newest else {
        return crate::compile::Calendar::default();
    };
    let sources: Vec<_> = version
        .files
        .iter()
        .map(|f| crate::diagnostic::SourceFile::new(f.name.clone(), f.text.clone()))
        .collect();
    match crate::compile::load_sources(&sources) {
        Ok((set, _)) => set.calendar().clone(),
        // A version that served compiled then; a newer handoff may not read
        // it. The default calendar still gives every signal, in UTC.
        Err(_) => crate::compile::Calendar::default(),
    }
}

/// Reads `8w`, `30d`, `12h` (weeks, days, hours) as a duration back from now.
pub fn parse_since(text: &str) -> Option<jiff::SignedDuration> {
    let text = text.trim();
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = digits.parse().ok()?;
    let hours = match unit {
        "w" => n.checked_mul(7 * 24)?,
        "d" => n.checked_mul(24)?,
        "h" => n,
        _ => return None,
    };
    // `from_hours` panics past i64 seconds: a huge `since` is a bad value.
    Some(jiff::SignedDuration::from_secs(hours.checked_mul(3600)?))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod since_tests {
    use super::parse_since;

    #[test]
    fn since_reads_weeks_days_and_hours() {
        assert_eq!(parse_since("8w").unwrap().as_hours(), 8 * 7 * 24);
        assert_eq!(parse_since("30d").unwrap().as_hours(), 30 * 24);
        assert_eq!(parse_since("12h").unwrap().as_hours(), 12);
        assert!(parse_since("8").is_none());
        assert!(parse_since("w").is_none());
        assert!(parse_since("8y").is_none());
        // Overflowing the seconds is not a panic (a query parameter).
        assert!(parse_since("99999999999999w").is_none());
        assert!(parse_since("9999999999999999h").is_none());
        assert!(parse_since("99999999999999999999h").is_none());
    }
}
