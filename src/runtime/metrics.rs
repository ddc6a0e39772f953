//! The server's metrics, rendered as Prometheus text for `GET /metrics`.
//!
//! A small registry of our own, with atomics, rather than the `metrics` or
//! `prometheus` crates: every series is a named field of [`Metrics`] (so
//! ingest increments `state.metrics.events.inc(&["generic", "applied"])`
//! and a typo is a compile error, not a new series), each server has its own
//! registry (tests start several servers in one process; the `metrics`
//! crate's recorder is process-wide), and the text format is a page of code.
//!
//! Every series the service exposes is registered in [`Metrics::new`], even
//! before anything increments it, so dashboards and alerts can be written
//! against the full list. Label values come from the workflows (object and
//! field names) or from a fixed set (sources, outcomes), never from a CRM's
//! free text, which keeps the number of series bounded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Every series the server exposes.
#[derive(Debug)]
pub struct Metrics {
    /// `handoff_events_total{source, outcome}`: events received, by the hook
    /// they came in on (`generic`, `hubspot`, `pipedrive`) and what became
    /// of them (`applied`, `duplicate`, `rejected`, `busy`, …).
    pub events: CounterVec,
    /// `handoff_decision_seconds`: time to decide one event (`eval::step`).
    pub decision_seconds: Histogram,
    /// `handoff_ingest_commit_seconds`: time from a request's arrival at the
    /// writer to its batch's durable commit.
    pub ingest_commit_seconds: Histogram,
    /// `handoff_ingest_batch_size`: events committed per transaction.
    pub ingest_batch_size: Histogram,
    /// `handoff_writer_replayed_batches_total`: batches run again with a
    /// savepoint per job because a job failed in their run without (each
    /// is work done twice; a steady rise means jobs keep failing).
    pub replayed_batches: Counter,
    /// `handoff_reloads_total`: workflow versions activated by a reload.
    pub reloads: Counter,
    /// `handoff_reloads_rejected_total`: edits refused (invalid workflows);
    /// the last good version kept serving.
    pub reloads_rejected: Counter,
    /// `handoff_workflows_loaded_timestamp_seconds`: when the active version
    /// was loaded (Unix time).
    pub workflows_loaded_at: Gauge,
    /// `handoff_outbox_depth`: actions waiting for delivery.
    pub outbox_depth: Gauge,
    /// `handoff_store_ready`: 1 when the store took a job at the last
    /// scrape (what `/readyz` checks), else 0: after a failed disk sync the
    /// store refuses every write until a restart.
    pub store_ready: Gauge,
    /// `handoff_hooks_in_flight`: webhook requests taken and not yet
    /// answered (at most `max_in_flight`; past it a hook answers 503).
    pub hooks_in_flight: Gauge,
    /// `handoff_crm_pending_events`: CRM events stored and waiting for
    /// their decision (the CRM's API could not be read).
    pub crm_pending_events: Gauge,
    /// `handoff_crm_pending_oldest_seconds`: how long the oldest of them
    /// has waited, 0 when none waits.
    pub crm_pending_oldest_seconds: Gauge,
    /// `handoff_field_errors_total{object, field}`: field values that did not
    /// fit their type (stored, counted, shown; the event still applied).
    pub field_errors: CounterVec,
    /// `handoff_unknown_values_total{object, field}`: values outside a field's
    /// `one of` list (a stage renamed in the CRM).
    pub unknown_values: CounterVec,
    /// `handoff_crm_unmapped_properties_total{crm, object}`: CRM properties
    /// that arrived but are not in the `handoff.toml` mapping (ignored).
    pub crm_unmapped: CounterVec,
    /// `handoff_crm_hydrations_total{crm, outcome}`: records read from a
    /// CRM's API before deciding (`fetched`, `failed`, `deadline`,
    /// `not_found`, `no_token`).
    pub crm_hydrations: CounterVec,
    // --- delivery ---
    /// `handoff_deliveries_total{sink, result}`: calls to a sink, by result
    /// (`delivered`, `found_existing`, `failed`, `refused`, `throttled`).
    pub deliveries: CounterVec,
    /// `handoff_dead_letters_total`: actions that ran out of tries or were
    /// refused.
    pub dead_letters: Counter,
    /// `handoff_sets_superseded_total`: `set` actions not sent because a
    /// newer set of the same field went or was on its way.
    pub sets_superseded: Counter,
}

/// Latency buckets in seconds: 100 µs to 10 s.
const LATENCY: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Batch size buckets: powers of two up to 1024.
const BATCH: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every series at zero.
    pub fn new() -> Self {
        Metrics {
            events: CounterVec::new(
                "handoff_events_total",
                "Events received, by source and outcome.",
                &["source", "outcome"],
            ),
            decision_seconds: Histogram::new(
                "handoff_decision_seconds",
                "Time to decide one event.",
                LATENCY,
            ),
            ingest_commit_seconds: Histogram::new(
                "handoff_ingest_commit_seconds",
                "Time from an event reaching the writer to its durable commit.",
                LATENCY,
            ),
            ingest_batch_size: Histogram::new(
                "handoff_ingest_batch_size",
                "Events committed in one transaction.",
                BATCH,
            ),
            replayed_batches: Counter::new(
                "handoff_writer_replayed_batches_total",
                "Write batches run again with a savepoint per job after a job failed.",
            ),
            reloads: Counter::new(
                "handoff_reloads_total",
                "Workflow versions activated by a reload.",
            ),
            reloads_rejected: Counter::new(
                "handoff_reloads_rejected_total",
                "Workflow edits rejected as invalid (the last good version kept serving).",
            ),
            workflows_loaded_at: Gauge::new(
                "handoff_workflows_loaded_timestamp_seconds",
                "When the active workflow version was loaded (Unix time).",
            ),
            outbox_depth: Gauge::new("handoff_outbox_depth", "Actions waiting for delivery."),
            store_ready: Gauge::new(
                "handoff_store_ready",
                "1 when the store took a job at this scrape, 0 when it could not (see /readyz for why).",
            ),
            hooks_in_flight: Gauge::new(
                "handoff_hooks_in_flight",
                "Webhook requests taken and not yet answered (at most max_in_flight; past it hooks answer 503).",
            ),
            crm_pending_events: Gauge::new(
                "handoff_crm_pending_events",
                "CRM events stored and waiting for their decision (the CRM's API could not be read).",
            ),
            crm_pending_oldest_seconds: Gauge::new(
                "handoff_crm_pending_oldest_seconds",
                "Age of the oldest CRM event waiting for its decision, 0 when none waits.",
            ),
            field_errors: CounterVec::new(
                "handoff_field_errors_total",
                "Field values that did not fit their type, by object and field.",
                &["object", "field"],
            ),
            unknown_values: CounterVec::new(
                "handoff_unknown_values_total",
                "Values outside a field's `one of` list, by object and field.",
                &["object", "field"],
            ),
            crm_unmapped: CounterVec::new(
                "handoff_crm_unmapped_properties_total",
                "CRM properties received that the handoff.toml mapping does not map, by CRM and object.",
                &["crm", "object"],
            ),
            crm_hydrations: CounterVec::new(
                "handoff_crm_hydrations_total",
                "Records read from a CRM's API before deciding, by CRM and outcome.",
                &["crm", "outcome"],
            ),
            deliveries: CounterVec::new(
                "handoff_deliveries_total",
                "Calls to a delivery sink, by sink and result.",
                &["sink", "result"],
            ),
            dead_letters: Counter::new(
                "handoff_dead_letters_total",
                "Actions dead-lettered (out of tries, or refused by the sink).",
            ),
            sets_superseded: Counter::new(
                "handoff_sets_superseded_total",
                "Set actions not sent: a newer set of the same field went, or was on its way.",
            ),
        }
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.events.render(&mut out);
        self.decision_seconds.render(&mut out);
        self.ingest_commit_seconds.render(&mut out);
        self.ingest_batch_size.render(&mut out);
        self.replayed_batches.render(&mut out);
        self.reloads.render(&mut out);
        self.reloads_rejected.render(&mut out);
        self.workflows_loaded_at.render(&mut out);
        self.outbox_depth.render(&mut out);
        self.store_ready.render(&mut out);
        self.hooks_in_flight.render(&mut out);
        self.crm_pending_events.render(&mut out);
        self.crm_pending_oldest_seconds.render(&mut out);
        self.field_errors.render(&mut out);
        self.unknown_values.render(&mut out);
        self.crm_unmapped.render(&mut out);
        self.crm_hydrations.render(&mut out);
        self.deliveries.render(&mut out);
        self.dead_letters.render(&mut out);
        self.sets_superseded.render(&mut out);
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped, as the format wants.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n")
}

/// A number that only goes up.
#[derive(Debug)]
pub struct Counter {
    name: &'static str,
    help: &'static str,
    value: AtomicU64,
}

impl Counter {
    fn new(name: &'static str, help: &'static str) -> Self {
        Counter {
            name,
            help,
            value: AtomicU64::new(0),
        }
    }
    /// Adds one.
    pub fn inc(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "counter");
        let _ = writeln!(out, "{} {}", self.name, self.get());
    }
}

/// A number that goes up and down.
#[derive(Debug)]
pub struct Gauge {
    name: &'static str,
    help: &'static str,
    value: AtomicI64,
}

impl Gauge {
    fn new(name: &'static str, help: &'static str) -> Self {
        Gauge {
            name,
            help,
            value: AtomicI64::new(0),
        }
    }
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.value.store(v, Ordering::Relaxed);
    }
    /// Adds `d` (negative to subtract).
    pub fn add(&self, d: i64) {
        self.value.fetch_add(d, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }
    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "gauge");
        let _ = writeln!(out, "{} {}", self.name, self.get());
    }
}

/// Counters told apart by label values (`source="generic"`).
#[derive(Debug)]
pub struct CounterVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    // A mutex, not a lock-free map: one short critical section per event is
    // far below the cost of the commit that goes with it.
    values: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl CounterVec {
    fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        CounterVec {
            name,
            help,
            labels,
            values: Mutex::new(BTreeMap::new()),
        }
    }
    /// Adds one to the series with these label values (in the order the
    /// labels are declared).
    pub fn inc(&self, values: &[&str]) {
        self.inc_by(values, 1);
    }
    /// Adds `n` to the series with these label values.
    pub fn inc_by(&self, values: &[&str], n: u64) {
        debug_assert_eq!(values.len(), self.labels.len(), "{}", self.name);
        let key: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let mut map = self
            .values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry(key).or_insert(0) += n;
    }
    /// The value of one series (0 if never incremented).
    pub fn get(&self, values: &[&str]) -> u64 {
        let key: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let map = self
            .values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&key).copied().unwrap_or(0)
    }
    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "counter");
        let map = self
            .values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (values, n) in map.iter() {
            let labels: Vec<String> = self
                .labels
                .iter()
                .zip(values)
                .map(|(l, v)| format!("{l}=\"{}\"", escape(v)))
                .collect();
            let _ = writeln!(out, "{}{{{}}} {n}", self.name, labels.join(","));
        }
    }
}

/// Observations counted into fixed buckets, with their sum and count.
#[derive(Debug)]
pub struct Histogram {
    name: &'static str,
    help: &'static str,
    bounds: &'static [f64],
    /// One count per bound (not cumulative; summed when rendered).
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// The sum of the observations, as the bits of an f64.
    sum: AtomicU64,
}

impl Histogram {
    fn new(name: &'static str, help: &'static str, bounds: &'static [f64]) -> Self {
        Histogram {
            name,
            help,
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }
    /// Records one observation.
    pub fn observe(&self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        // No atomic float add: retry until no other thread got in between.
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }
    /// Records a duration in seconds.
    pub fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }
    /// How many observations were made.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "histogram");
        let mut cumulative = 0;
        for (bound, n) in self.bounds.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(out, "{}_bucket{{le=\"{bound}\"}} {cumulative}", self.name);
        }
        let count = self.count();
        let _ = writeln!(out, "{}_bucket{{le=\"+Inf\"}} {count}", self.name);
        let sum = f64::from_bits(self.sum.load(Ordering::Relaxed));
        let _ = writeln!(out, "{}_sum {sum}", self.name);
        let _ = writeln!(out, "{}_count {count}", self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_listed_before_anything_happens() {
        let text = Metrics::new().render();
        for name in [
            "handoff_events_total",
            "handoff_decision_seconds",
            "handoff_ingest_commit_seconds",
            "handoff_ingest_batch_size",
            "handoff_writer_replayed_batches_total",
            "handoff_reloads_total",
            "handoff_reloads_rejected_total",
            "handoff_workflows_loaded_timestamp_seconds",
            "handoff_outbox_depth",
            "handoff_store_ready",
            "handoff_crm_pending_events",
            "handoff_crm_pending_oldest_seconds",
            "handoff_field_errors_total",
            "handoff_unknown_values_total",
            "handoff_deliveries_total",
            "handoff_dead_letters_total",
            "handoff_sets_superseded_total",
        ] {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing");
        }
    }

    #[test]
    fn labelled_counters_and_histograms_render_in_the_text_format() {
        let m = Metrics::new();
        m.events.inc(&["generic", "applied"]);
        m.events.inc(&["generic", "applied"]);
        m.field_errors.inc(&["deal", "say \"hi\"\n"]);
        m.decision_seconds.observe(0.003);
        m.decision_seconds.observe(20.0);
        let text = m.render();
        assert!(text.contains("handoff_events_total{source=\"generic\",outcome=\"applied\"} 2\n"));
        assert!(
            text.contains(r#"handoff_field_errors_total{object="deal",field="say \"hi\"\n"} 1"#)
        );
        assert!(text.contains("handoff_decision_seconds_bucket{le=\"0.0025\"} 0\n"));
        assert!(text.contains("handoff_decision_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("handoff_decision_seconds_bucket{le=\"10\"} 1\n"));
        assert!(text.contains("handoff_decision_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("handoff_decision_seconds_sum 20.003\n"));
        assert!(text.contains("handoff_decision_seconds_count 2\n"));
        assert_eq!(m.events.get(&["generic", "applied"]), 2);
        assert_eq!(m.events.get(&["hubspot", "applied"]), 0);
    }
}
