//! The web pages on SQLite: email drafts waiting for a person, one line of
//! facts per handoff for the dashboard, and the signed-in sessions.

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};

use super::{decode_cursor, limit, page_actions, paginate, ts, us, SqliteStore};
use crate::runtime::store::{ActionRow, Page, PageRequest, SessionRow, StatusCount, StoreError};

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

pub(super) fn open_counts(store: &SqliteStore) -> Result<Vec<StatusCount>, StoreError> {
    store.read("counting the open handoffs", counts)
}

fn counts(conn: &Connection) -> rusqlite::Result<Vec<StatusCount>> {
    // By `handoffs_by_status`: the open handoffs only, never the done ones
    // (the dashboard once read every handoff ever stored to count these).
    let mut stmt = conn.prepare_cached(OPEN_COUNTS)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(StatusCount {
                workflow: r.get(0)?,
                status: r.get(1)?,
                count: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            })
        })?
        .collect();
    rows
}

/// The dashboard's counts (a test reads its plan).
pub(super) const OPEN_COUNTS: &str = "SELECT workflow, status, count(*) FROM handoffs \
     WHERE status IN ('proceeded', 'paused', 'review') GROUP BY workflow, status";

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
