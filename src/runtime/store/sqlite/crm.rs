//! SQLite for the CRM adapters: the `crm_pending` table (migration 0004) of
//! events stored before their decision, and the read of one record's state.
//! `sqlite.rs`'s trait impls delegate here, so the adapters' SQL stays in
//! one file.

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{db, record_row, ts, ts_opt, us};
use crate::runtime::store::{NewPending, PendingRow, PendingSummary, RecordRow, StoreError};

pub(super) fn has_pending(
    conn: &Connection,
    object: &str,
    record_id: &str,
) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT 1 FROM crm_pending WHERE object = ?1 AND record_id = ?2 LIMIT 1")
        .and_then(|mut s| s.exists(params![object, record_id]))
        .map_err(db("looking up pending CRM events"))
}

/// A new row waits at least as long as its record's rows already waiting:
/// the retry pass takes all of a record's rows once one is due, so a new
/// event due sooner would cut short the record's back-off (a revoked
/// token retried every `pending_retry_ms` while webhooks keep coming).
pub(super) fn add_pending(conn: &Connection, p: &NewPending) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "INSERT INTO crm_pending (source, event_id, object, record_id, event, raw_body, \
         received_at, next_attempt_at, last_error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, \
         max(?8, coalesce((SELECT max(next_attempt_at) FROM crm_pending \
                           WHERE object = ?3 AND record_id = ?4), ?8)), ?9) \
         ON CONFLICT (source, event_id) DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute(params![
            p.source,
            p.event_id,
            p.object,
            p.record_id,
            p.event,
            p.raw_body,
            us(p.received_at),
            us(p.next_attempt_at),
            p.error,
        ])
    })
    .map(|n| n == 1)
    .map_err(db("storing a pending CRM event"))
}

pub(super) fn remove_pending(conn: &Connection, seq: i64) -> Result<bool, StoreError> {
    conn.prepare_cached("DELETE FROM crm_pending WHERE seq = ?1")
        .and_then(|mut s| s.execute([seq]))
        .map(|n| n == 1)
        .map_err(db("deleting a decided CRM event"))
}

pub(super) fn pending_failed(
    conn: &Connection,
    seq: i64,
    next: Timestamp,
    error: &str,
) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "UPDATE crm_pending SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3 \
         WHERE seq = ?1",
    )
    .and_then(|mut s| s.execute(params![seq, us(next), error]))
    .map(|n| n == 1)
    .map_err(db("recording a failed CRM read"))
}

pub(super) fn record(
    conn: &Connection,
    object: &str,
    record_id: &str,
) -> rusqlite::Result<Option<RecordRow>> {
    conn.prepare_cached(
        "SELECT object, record_id, state, workflow_version, updated_at FROM records \
         WHERE object = ?1 AND record_id = ?2",
    )?
    .query_row(params![object, record_id], record_row)
    .optional()
}

/// Due rows, and every row of a record with a due row (a record's events
/// are decided together, in order), oldest first.
pub(super) fn due(
    conn: &Connection,
    now: Timestamp,
    limit: usize,
) -> rusqlite::Result<Vec<PendingRow>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "SELECT seq, source, event_id, object, record_id, event, raw_body, received_at, \
         attempts, next_attempt_at, last_error FROM crm_pending \
         WHERE (object, record_id) IN (SELECT object, record_id FROM crm_pending \
                                      WHERE next_attempt_at <= ?1) \
         ORDER BY seq LIMIT ?2",
    )?
    .query_map(params![us(now), limit], pending_row)?
    .collect()
}

pub(super) fn count(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT count(*) FROM crm_pending", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| u64::try_from(n).unwrap_or(0))
}

/// The count and the oldest `received_at`, in one statement. A scan of
/// the table, like `count`: it holds only events waiting for a CRM that
/// cannot be read, so it is small unless an alert on these gauges is due.
pub(super) fn summary(conn: &Connection) -> rusqlite::Result<PendingSummary> {
    conn.query_row(
        "SELECT count(*) AS events, min(received_at) AS oldest FROM crm_pending",
        [],
        |r| {
            Ok(PendingSummary {
                events: u64::try_from(r.get::<_, i64>("events")?).unwrap_or(0),
                oldest_received_at: ts_opt(r, "oldest")?,
            })
        },
    )
}

fn pending_row(r: &Row<'_>) -> rusqlite::Result<PendingRow> {
    Ok(PendingRow {
        seq: r.get("seq")?,
        source: r.get("source")?,
        event_id: r.get("event_id")?,
        object: r.get("object")?,
        record_id: r.get("record_id")?,
        event: r.get("event")?,
        raw_body: r.get("raw_body")?,
        received_at: ts(r, "received_at")?,
        attempts: r.get("attempts")?,
        next_attempt_at: ts(r, "next_attempt_at")?,
        last_error: r.get("last_error")?,
    })
}
