//! The SQLite side of the outbox worker's own verbs: one action by id, and
//! the sinks that already took an action (`action_sinks`, migration 0003).

use rusqlite::{params, Connection, OptionalExtension};

use super::{action_row, ts, us, SinkDelivery, ACTION_COLUMNS};
use crate::runtime::store::ActionRow;

pub(super) fn action(conn: &Connection, id: &str) -> rusqlite::Result<Option<ActionRow>> {
    let sql = format!("SELECT {ACTION_COLUMNS} FROM actions WHERE id = ?1");
    conn.prepare_cached(&sql)?
        .query_row([id], action_row)
        .optional()
}

pub(super) fn sink_deliveries(
    conn: &Connection,
    action_id: &str,
) -> rusqlite::Result<Vec<SinkDelivery>> {
    conn.prepare_cached(
        "SELECT action_id, sink, delivered_at, remote_ref FROM action_sinks \
         WHERE action_id = ?1 ORDER BY delivered_at, sink",
    )?
    .query_map([action_id], |r| {
        Ok(SinkDelivery {
            action_id: r.get("action_id")?,
            sink: r.get("sink")?,
            delivered_at: ts(r, "delivered_at")?,
            remote_ref: r.get("remote_ref")?,
        })
    })?
    .collect()
}

pub(super) fn sink_delivered(conn: &Connection, d: &SinkDelivery) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "INSERT INTO action_sinks (action_id, sink, delivered_at, remote_ref) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (action_id, sink) DO NOTHING",
    )?
    .execute(params![
        d.action_id,
        d.sink,
        us(d.delivered_at),
        d.remote_ref
    ])
    .map(|n| n == 1)
}
