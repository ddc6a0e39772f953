//! The web pages' reads on SQLite: email drafts waiting for a person, and
//! one line of facts per handoff for the dashboard.

use rusqlite::Connection;

use super::{decode_cursor, limit, page_actions, paginate, ts, ts_opt, SqliteStore};
use crate::runtime::store::{ActionRow, HandoffFact, Page, PageRequest, StoreError};

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
