//! `/handoffs` for a browser: the list, filtered by workflow, status,
//! owner (who owns the next step) and stuck (paused or in review for more
//! than [`STUCK_AFTER_DAYS`] days), newest first, a page at a time.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::handoff::text;
use super::layout::{page as shell, status};
use super::{html_page, read, Viewer};
use crate::runtime::http::handoffs::detail_json;
use crate::runtime::state::AppState;
use crate::runtime::store::{HandoffFilter, PageRequest};

/// A paused or in-review handoff untouched this long is stuck.
pub const STUCK_AFTER_DAYS: i64 = 3;
/// Rows a page shows.
const PAGE: usize = 50;

/// The list's filters, from the query string.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub status: Option<String>,
    pub workflow: Option<String>,
    pub owner: Option<String>,
    pub stuck: bool,
    pub cursor: Option<String>,
}

const STATUSES: [&str; 6] = [
    "paused",
    "review",
    "proceeded",
    "done",
    "withdrawn",
    "rejected",
];

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
    let filter = HandoffFilter {
        status: nonempty(&f.status),
        workflow: nonempty(&f.workflow),
        record_id: None,
        orphaned: None,
    };
    let owner = nonempty(&f.owner).map(|o| o.trim().to_lowercase());
    let stuck = f.stuck;
    let cursor = nonempty(&f.cursor);
    let now = jiff::Timestamp::now();
    let cutoff = now
        .checked_sub(jiff::SignedDuration::from_hours(24 * STUCK_AFTER_DAYS))
        .unwrap_or(now);
    let listed = read(&state, move |s| {
        let page = s.list_handoffs(
            &filter,
            &PageRequest {
                cursor,
                limit: PAGE,
            },
        )?;
        let mut rows = Vec::with_capacity(page.items.len());
        for h in page.items {
            if stuck && !(matches!(h.status.as_str(), "paused" | "review") && h.updated_at < cutoff)
            {
                continue;
            }
            // The owner is the plan's next owner, else the record's owner.
            let detail = s.handoff(&h.id)?;
            let who = detail.as_ref().map(|d| detail_json(d, &[])).map(|j| {
                let next = &j["answers"]["next_owner"];
                if next.is_string() {
                    text(next)
                } else {
                    text(&j["record"]["owner"])
                }
            });
            let who = who.unwrap_or_default();
            if owner
                .as_ref()
                .is_some_and(|o| !who.to_lowercase().contains(o.as_str()))
            {
                continue;
            }
            rows.push(Row {
                missing: serde_json::from_str::<serde_json::Value>(&h.missing)
                    .map(|m| text(&m))
                    .unwrap_or_default(),
                id: h.id,
                workflow: h.workflow,
                record: h.record_id,
                status: h.status,
                owner: who,
                updated: h.updated_at,
            });
        }
        Ok((rows, page.next))
    })
    .await;
    let (rows, next) = match listed {
        Ok(v) => v,
        Err(r) => return r,
    };
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
            label { span { "Stuck (" (STUCK_AFTER_DAYS) "+ days)" }
                input type="checkbox" name="stuck" value="on" checked[f.stuck];
            }
            button type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            p.muted { "No handoff matches these filters." }
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
