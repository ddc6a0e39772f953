//! `/handoffs` for a browser: the list, filtered by workflow, status,
//! owner (who owns the next step) and stuck (open and triggered more than
//! `[health] stuck_after_days` ago, as the health report and the dashboard
//! count it), newest first, a page at a time.
//!
//! The owner is read from each handoff's plan, so that filter runs here:
//! a page reads on through the store's pages until it has [`PAGE`] rows or
//! has looked at [`SCAN`] handoffs, and then says how far it looked.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::handoff::text;
use super::layout::{page as shell, status};
use super::{html_page, read, Viewer};
use crate::runtime::http::handoffs::detail_json;
use crate::runtime::state::AppState;
use crate::runtime::store::{HandoffFilter, HandoffRow, PageRequest, Store, StoreError};

/// Rows a page shows.
const PAGE: usize = 50;
/// Handoffs one page looks at, at most, for the owner filter.
const SCAN: usize = 500;

/// The list's filters, from the query string.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub status: Option<String>,
    pub workflow: Option<String>,
    pub owner: Option<String>,
    pub stuck: bool,
    pub cursor: Option<String>,
}

const STATUSES: [&str; 6] = crate::eval::Status::NAMES;

/// One row as shown.
struct Row {
    id: String,
    workflow: String,
    record: String,
    status: String,
    owner: String,
    updated: jiff::Timestamp,
    missing: String,
}

/// The list page.
pub async fn page(state: Arc<AppState>, f: Filters, viewer: Option<Viewer>) -> Response {
    let nonempty = |o: &Option<String>| o.clone().filter(|s| !s.trim().is_empty());
    let stuck_days = state.settings.health.stuck_after_days;
    let now = jiff::Timestamp::now();
    let stuck_before = f.stuck.then(|| {
        // (A NaN from the file would pass `clamp` and panic below.)
        let days = if stuck_days.is_finite() {
            stuck_days
        } else {
            0.0
        };
        let hours = (days * 24.0).clamp(0.0, 24.0 * 366.0 * 100.0);
        now.checked_sub(jiff::SignedDuration::from_secs_f64(hours * 3600.0))
            .unwrap_or(now)
    });
    let filter = HandoffFilter {
        status: nonempty(&f.status),
        workflow: nonempty(&f.workflow),
        record_id: None,
        orphaned: None,
        stuck_before,
    };
    let owner = nonempty(&f.owner).map(|o| o.trim().to_lowercase());
    let cursor = nonempty(&f.cursor);
    let listed = read(&state, move |s| {
        let mut rows = Vec::new();
        let mut scanned = 0;
        let mut cursor = cursor;
        loop {
            // Never more than a page of rows: each store page asks only
            // for the rows still missing, and is used up whole, so the
            // store's own cursor says where the next one starts.
            let page = s.list_handoffs(
                &filter,
                &PageRequest {
                    cursor,
                    limit: PAGE - rows.len(),
                },
            )?;
            for h in page.items {
                scanned += 1;
                if let Some(row) = shown(s, h, owner.as_deref())? {
                    rows.push(row);
                }
            }
            if rows.len() >= PAGE || page.next.is_none() || scanned >= SCAN {
                return Ok((rows, page.next, scanned));
            }
            cursor = page.next;
        }
    })
    .await;
    let (rows, next, scanned) = match listed {
        Ok(v) => v,
        Err(r) => return r,
    };
    // Fewer rows than a page with more to look at: only the owner filter,
    // which runs here, stops early, and the page says how far it looked.
    let looked = (rows.len() < PAGE && next.is_some()).then_some(scanned);
    let workflows: Vec<String> = state
        .workflows
        .active()
        .set
        .handoffs()
        .iter()
        .map(|h| h.name.clone())
        .collect();
    let sel = |o: &Option<String>, v: &str| o.as_deref() == Some(v);
    let next_link = next.map(|n| {
        let mut q = String::from("/handoffs?");
        for (k, v) in [
            ("status", &f.status),
            ("workflow", &f.workflow),
            ("owner", &f.owner),
        ] {
            if let Some(v) = v {
                q.push_str(&format!("{k}={}&", super::encode(v)));
            }
        }
        if f.stuck {
            q.push_str("stuck=on&");
        }
        q.push_str(&format!("cursor={}", super::encode(&n)));
        q
    });
    let body = html! {
        h1 { "Handoffs" }
        form.filters method="get" action="/handoffs" role="search" {
            label { "Workflow"
                select name="workflow" {
                    option value="" { "any" }
                    @for w in &workflows { option value=(w) selected[sel(&f.workflow, w)] { (w) } }
                }
            }
            label { "Status"
                select name="status" {
                    option value="" { "any" }
                    @for s in STATUSES { option value=(s) selected[sel(&f.status, s)] { (s) } }
                }
            }
            label { "Owner"
                input type="text" name="owner" value=(f.owner.clone().unwrap_or_default()) placeholder="name or email";
            }
            label { span { "Stuck (open " (stuck_days) "+ days)" }
                input type="checkbox" name="stuck" value="on" checked[f.stuck];
            }
            button type="submit" { "Filter" }
        }
        @if let Some(n) = looked {
            p.muted { "Looked at the " (n) " newest handoffs here; older ones may match too." }
        }
        @if rows.is_empty() {
            @if looked.is_some() {
                p.muted { "None of these matches the filters." }
            } @else {
                p.muted { "No handoff matches these filters." }
            }
        } @else {
            div.wrap { table {
                thead { tr {
                    th scope="col" { "Record" } th scope="col" { "Workflow" } th scope="col" { "Status" }
                    th scope="col" { "Owner" } th scope="col" { "Missing" } th scope="col" { "Updated" }
                } }
                tbody { @for r in &rows { tr {
                    td { a href={ "/handoffs/" (r.id) } { (r.record) } }
                    td { (r.workflow) }
                    td { (status(&r.status)) }
                    td { (r.owner) }
                    td { (r.missing) }
                    td { (r.updated.strftime("%Y-%m-%d %H:%M").to_string()) }
                } } }
            } }
        }
        @if let Some(n) = &next_link { p { a href=(n) { "Older handoffs →" } } }
    };
    html_page(StatusCode::OK, shell("Handoffs", viewer.as_ref(), body))
}

/// The row for `h`, or `None` when its owner does not match `owner` (in
/// lower case; a part of a name or an email matches).
fn shown(s: &dyn Store, h: HandoffRow, owner: Option<&str>) -> Result<Option<Row>, StoreError> {
    // The owner is the plan's next owner, else the record's owner.
    let detail = s.handoff(&h.id)?;
    let who = detail
        .as_ref()
        .map(|d| detail_json(d, &[]))
        .map(|j| {
            let next = &j["answers"]["next_owner"];
            if next.is_string() {
                text(next)
            } else {
                text(&j["record"]["owner"])
            }
        })
        .unwrap_or_default();
    if owner.is_some_and(|o| !who.to_lowercase().contains(o)) {
        return Ok(None);
    }
    Ok(Some(Row {
        missing: serde_json::from_str::<serde_json::Value>(&h.missing)
            .map(|m| text(&m))
            .unwrap_or_default(),
        id: h.id,
        workflow: h.workflow,
        record: h.record_id,
        status: h.status,
        owner: who,
        updated: h.updated_at,
    }))
}
