//! The web pages on SQLite: email drafts waiting for a person, one line of
//! facts per handoff for the dashboard, and the signed-in sessions.

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};

use super::{decode_cursor, limit, page_actions, paginate, ts, ts_opt, us, SqliteStore};
use crate::runtime::store::{ActionRow, HandoffFact, Page, PageRequest, SessionRow, StoreError};

pub(super) fn drafts(
    store: &SqliteStore,
    page: &PageRequest,
) -> Result<Page<ActionRow>, StoreError> {
    let after = decode_cursor('r', page)?;
    let limit = limit(page);
    let rows = store.read("listing email drafts", |conn| {
        page_actions(conn, "state = 'draft'", after, limit)
    })?;
    Ok(paginate('r', rows, limit))
}

pub(super) fn handoff_facts(store: &SqliteStore) -> Result<Vec<HandoffFact>, StoreError> {
    store.read("reading the dashboard's facts", facts)
}

fn facts(conn: &Connection) -> rusqlite::Result<Vec<HandoffFact>> {
    // The first status change says whether the handoff started complete
    // (anything but `paused`).
    let mut stmt = conn.prepare_cached(
        "SELECT h.workflow, h.status, h.triggered_at, h.updated_at, h.done_at, h.missing, \
                (SELECT c.to_status FROM status_changes c WHERE c.handoff_id = h.id \
                 ORDER BY c.seq LIMIT 1) AS first_status \
         FROM handoffs h ORDER BY h.seq",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(HandoffFact {
                workflow: r.get("workflow")?,
                status: r.get("status")?,
                triggered_at: ts(r, "triggered_at")?,
                updated_at: ts(r, "updated_at")?,
                done_at: ts_opt(r, "done_at")?,
                missing: serde_json::from_str(&r.get::<_, String>("missing")?).unwrap_or_default(),
                first_status: r.get("first_status")?,
            })
        })?
        .collect();
    rows
}

pub(super) fn start_session(
    conn: &Connection,
    s: &SessionRow,
    keep: usize,
) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM web_sessions WHERE expires_at <= ?1")?
        .execute([us(s.started_at)])?;
    conn.prepare_cached(
        "INSERT INTO web_sessions (key, who, csrf, credentials, started_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        &s.key[..],
        s.who,
        s.csrf,
        &s.credentials[..],
        us(s.started_at),
        us(s.expires_at)
    ])?;
    // A bound on the table: the sessions nearest their end go first.
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "DELETE FROM web_sessions WHERE key IN (SELECT key FROM web_sessions \
         ORDER BY expires_at DESC LIMIT -1 OFFSET ?1)",
    )?
    .execute([keep])?;
    Ok(())
}

pub(super) fn end_session(conn: &Connection, key: &[u8; 32]) -> rusqlite::Result<bool> {
    conn.prepare_cached("DELETE FROM web_sessions WHERE key = ?1")?
        .execute([&key[..]])
        .map(|n| n > 0)
}

pub(super) fn session(
    conn: &Connection,
    key: &[u8; 32],
    now: Timestamp,
) -> rusqlite::Result<Option<SessionRow>> {
    conn.prepare_cached(
        "SELECT who, csrf, credentials, started_at, expires_at FROM web_sessions \
         WHERE key = ?1 AND expires_at > ?2",
    )?
    .query_row(params![&key[..], us(now)], |r| {
        Ok(SessionRow {
            key: *key,
            who: r.get("who")?,
            csrf: r.get("csrf")?,
            credentials: r.get("credentials")?,
            started_at: ts(r, "started_at")?,
            expires_at: ts(r, "expires_at")?,
        })
    })
    .optional()
}
