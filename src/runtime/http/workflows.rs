//! `GET /workflows`: what is serving (files, version, load time, the
//! handoffs it defines) and the diagnostics of the last rejected edit, as
//! `handoff check` prints them (no colour). Never the settings, so never a
//! secret.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::runtime::state::AppState;

/// The workflows route.
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/workflows", get(workflows))
}

/// The body of `GET /workflows`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkflowsView {
    /// The active version id (a hash of the files' text).
    pub version: String,
    /// When it became active (RFC 3339).
    pub loaded_at: String,
    /// The files it was compiled from.
    pub files: Vec<FileView>,
    /// The handoffs it defines, in order.
    pub handoffs: Vec<String>,
    /// How many warnings its check gave.
    pub warnings: usize,
    /// Versions activated by reloads since start-up.
    pub reloads: u64,
    /// Edits rejected since start-up.
    pub rejected_reloads: u64,
    /// The last edit rejected since this version became active.
    pub rejected: Option<RejectedView>,
}

/// One loaded file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileView {
    pub path: String,
    pub bytes: usize,
}

/// A rejected edit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RejectedView {
    /// When it was attempted (RFC 3339).
    pub at: String,
    /// How many problems it had.
    pub problems: usize,
    /// The diagnostics as text.
    pub diagnostics: String,
}

async fn workflows(State(state): State<Arc<AppState>>) -> Json<WorkflowsView> {
    // One snapshot: the version and the counters always agree.
    let active = state.workflows.active();
    Json(WorkflowsView {
        version: active.set.version().to_string(),
        loaded_at: active.loaded_at.to_string(),
        files: active
            .files
            .iter()
            .map(|f| FileView {
                path: f.name.clone(),
                bytes: f.text.len(),
            })
            .collect(),
        handoffs: active
            .set
            .handoffs()
            .iter()
            .map(|h| h.name.clone())
            .collect(),
        warnings: active.warnings.len(),
        reloads: active.reloads,
        rejected_reloads: active.rejected_reloads,
        rejected: active.rejected.as_ref().map(|r| RejectedView {
            at: r.at.to_string(),
            problems: r.problems,
            diagnostics: r.report.clone(),
        }),
    })
}
