//! The health report's reads (one snapshot, a few set queries, no query
//! per handoff) and the escalation write.
//!
//! The missing fields and exceptions of a change into `paused` or `review`
//! are read out of the causing event's outcome by SQLite's JSON functions,
//! so only those few outcomes are looked at, never the whole audit log.

use std::collections::HashMap;

use jiff::Timestamp;
use rusqlite::{params, Connection};

use super::{db, ts, ts_opt, us};
use crate::health::{
    EscalationFact, FieldIssueFact, HandoffFacts, HealthRows, IssueKind, NoteFact, Transition,
    VersionFact,
};
use crate::runtime::store::StoreError;

/// The handoffs the report covers: triggered in the window, or still open.
/// A subquery the other tables' rows are matched against by handoff id:
/// as a join ordered by the other table's `seq`, SQLite walked that whole
/// table (every status change, note, task ever stored) to skip the sort;
/// this way it reads `handoffs_by_triggered` and `handoffs_by_status` for
/// the ids and each table's `…_by_handoff` index for their rows.
const IN_REPORT: &str = "(SELECT id FROM handoffs \
     WHERE triggered_at >= ?1 OR status IN ('paused', 'review', 'proceeded'))";

/// The open handoffs (whose next owner the report names).
const OPEN: &str = "(SELECT id FROM handoffs WHERE status IN ('paused', 'review', 'proceeded'))";

/// The report's queries, each with `?1` the window's start (unused by the
/// last), in the order [`rows`] reads them.
fn queries() -> [String; 5] {
    [
        format!(
            "SELECT h.id, h.workflow, h.object, h.record_id, h.status, h.triggered_at, h.done_at \
             FROM handoffs h WHERE h.id IN {IN_REPORT} ORDER BY h.seq"
        ),
        format!(
            "SELECT sc.handoff_id, sc.from_status, sc.to_status, sc.at, sc.cause_person, \
               CASE WHEN sc.to_status IN ('paused', 'review') AND sc.cause_event IS NOT NULL THEN \
                 (SELECT json_extract(j.value, \
                    CASE sc.to_status WHEN 'paused' THEN '$.missing' ELSE '$.exceptions' END) \
                  FROM events e, json_each(e.outcome, '$.handoffs') j \
                  WHERE e.audit_id = sc.cause_event \
                    AND json_extract(j.value, '$.instance') = sc.handoff_id) \
               END AS names \
             FROM status_changes sc WHERE sc.handoff_id IN {IN_REPORT} ORDER BY sc.seq"
        ),
        format!(
            "SELECT n.handoff_id, n.kind, n.who, n.at, n.text \
             FROM notes n WHERE n.handoff_id IN {IN_REPORT} ORDER BY n.seq"
        ),
        format!(
            "SELECT x.handoff_id, x.at, x.source, x.who, x.reason \
             FROM escalations x WHERE x.handoff_id IN {IN_REPORT} ORDER BY x.seq"
        ),
        // `+a.kind`: not by the kind's index (every task ever queued), by
        // the handoff's.
        format!(
            "SELECT a.handoff_id, a.kind, \
               COALESCE(json_extract(a.payload, '$.assignee'), json_extract(a.payload, '$.to')) \
             FROM actions a WHERE a.handoff_id IN {OPEN} AND +a.kind IN ('task', 'notify') \
             ORDER BY a.seq"
        ),
    ]
}

/// Loads the rows of [`crate::runtime::store::Store::health_rows`].
pub(super) fn rows(conn: &Connection, since: Timestamp) -> rusqlite::Result<HealthRows> {
    let since = us(since);
    let mut out = HealthRows::default();
    let mut index: HashMap<String, usize> = HashMap::new();

    let [handoffs, status_changes, notes, escalations, owners] = queries();
    let mut stmt = conn.prepare_cached(&handoffs)?;
    let mut q = stmt.query(params![since])?;
    while let Some(r) = q.next()? {
        let id: String = r.get(0)?;
        index.insert(id.clone(), out.handoffs.len());
        out.handoffs.push(HandoffFacts {
            id,
            workflow: r.get(1)?,
            object: r.get(2)?,
            record_id: r.get(3)?,
            status: r.get(4)?,
            triggered_at: ts(r, "triggered_at")?,
            done_at: ts_opt(r, "done_at")?,
            missing_at_trigger: Vec::new(),
            history: Vec::new(),
            notes: Vec::new(),
            next_owner: None,
        });
    }

    let mut stmt = conn.prepare_cached(&status_changes)?;
    let mut q = stmt.query(params![since])?;
    while let Some(r) = q.next()? {
        let id: String = r.get(0)?;
        let Some(&i) = index.get(&id) else { continue };
        let names: Option<String> = r.get(5)?;
        let names: Vec<String> = names
            .and_then(|n| serde_json::from_str(&n).ok())
            .unwrap_or_default();
        let t = Transition {
            from: r.get(1)?,
            to: r.get(2)?,
            at: ts(r, "at")?,
            by: r.get(4)?,
            exceptions: if r.get::<_, String>(2)? == "review" {
                names.clone()
            } else {
                Vec::new()
            },
        };
        let h = &mut out.handoffs[i];
        if t.from.is_none() && t.to == "paused" {
            h.missing_at_trigger = names;
        }
        h.history.push(t);
    }

    let mut stmt = conn.prepare_cached(&notes)?;
    let mut q = stmt.query(params![since])?;
    while let Some(r) = q.next()? {
        let id: String = r.get(0)?;
        if let Some(&i) = index.get(&id) {
            out.handoffs[i].notes.push(NoteFact {
                kind: r.get(1)?,
                who: r.get(2)?,
                at: ts(r, "at")?,
                text: r.get(4)?,
            });
        }
    }

    let mut stmt = conn.prepare_cached(&escalations)?;
    let mut q = stmt.query(params![since])?;
    while let Some(r) = q.next()? {
        out.escalations.push(EscalationFact {
            handoff_id: r.get(0)?,
            at: ts(r, "at")?,
            source: r.get(2)?,
            who: r.get(3)?,
            reason: r.get(4)?,
        });
    }

    // The next owner of open handoffs: the latest task's assignee, else the
    // latest notification's person.
    let mut stmt = conn.prepare_cached(&owners)?;
    let mut q = stmt.query([])?;
    let mut task_owner: HashMap<usize, String> = HashMap::new();
    while let Some(r) = q.next()? {
        let id: String = r.get(0)?;
        let Some(&i) = index.get(&id) else { continue };
        let Some(who) = r.get::<_, Option<String>>(2)? else {
            continue;
        };
        if r.get::<_, String>(1)? == "task" {
            task_owner.insert(i, who);
        } else {
            out.handoffs[i].next_owner = Some(who);
        }
    }
    for (i, who) in task_owner {
        out.handoffs[i].next_owner = Some(who);
    }

    // The WHERE matches the partial index's, so only events with errors
    // are read.
    let mut stmt = conn.prepare_cached(
        "SELECT received_at, object, field_errors FROM events \
         WHERE field_errors NOT IN ('[]', '{\"errors\":[],\"unknown_values\":[]}') \
           AND received_at >= ?1 ORDER BY received_at",
    )?;
    let mut q = stmt.query(params![since])?;
    while let Some(r) = q.next()? {
        let at = ts(r, "received_at")?;
        let object: Option<String> = r.get(1)?;
        let text: String = r.get(2)?;
        field_issues(&mut out.field_issues, at, object.unwrap_or_default(), &text);
    }

    let mut stmt = conn.prepare_cached(
        "SELECT id, first_loaded_at FROM workflow_versions ORDER BY first_loaded_at, id",
    )?;
    let mut q = stmt.query([])?;
    while let Some(r) = q.next()? {
        out.versions.push(VersionFact {
            id: r.get(0)?,
            first_loaded_at: ts(r, "first_loaded_at")?,
            changed: None,
        });
    }
    Ok(out)
}

/// The audit row's `{"errors": [...], "unknown_values": [...]}`, one fact
/// per field and value (a value named in both `record` and `previous`
/// counts once).
fn field_issues(out: &mut Vec<FieldIssueFact>, at: Timestamp, object: String, text: &str) {
    #[derive(serde::Deserialize, Default)]
    struct Stored {
        #[serde(default)]
        errors: Vec<crate::eval::FieldError>,
        #[serde(default)]
        unknown_values: Vec<crate::eval::FieldError>,
    }
    // An older row holds a bare list, or nothing readable: no facts.
    let stored: Stored = serde_json::from_str(text).unwrap_or_default();
    let start = out.len();
    for (kind, list) in [
        (IssueKind::TypeError, stored.errors),
        (IssueKind::UnknownValue, stored.unknown_values),
    ] {
        for e in list {
            let field = e
                .field
                .strip_prefix("record.")
                .or_else(|| e.field.strip_prefix("previous."))
                .unwrap_or(&e.field)
                .to_string();
            let seen = out[start..]
                .iter()
                .any(|f| f.kind == kind && f.field == field && f.value == e.value);
            if !seen {
                out.push(FieldIssueFact {
                    object: object.clone(),
                    field,
                    kind,
                    value: e.value,
                    expected: e.expected,
                    at,
                });
            }
        }
    }
}

/// Stores one escalation.
pub(super) fn record_escalation(conn: &Connection, e: &EscalationFact) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO escalations (handoff_id, at, source, who, reason) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| s.execute(params![e.handoff_id, us(e.at), e.source, e.who, e.reason]))
    .map(|_| conn.last_insert_rowid())
    .map_err(db("recording an escalation"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each of the report's queries reads the handoffs it covers by their
    /// indexes and the other tables' rows by handoff: none walks a table
    /// that grows with history.
    #[test]
    fn the_report_reads_its_handoffs_rows_by_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.db");
        super::super::SqliteStore::open(&path, super::super::SqliteOptions::default())
            .unwrap()
            .close();
        let conn = Connection::open(&path).unwrap();
        for sql in queries() {
            let values = if sql.contains("?1") { 1 } else { 0 };
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(
                    rusqlite::params_from_iter(std::iter::repeat_n(0i64, values)),
                    |r| r.get::<_, String>(3),
                )
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            // (The one scan allowed: `json_each` over one event's outcome.)
            for step in &plan {
                assert!(
                    !step.starts_with("SCAN ") || step.contains("VIRTUAL TABLE"),
                    "{step} in the plan of {sql}: {plan:#?}"
                );
            }
        }
    }
}
