//! `/handoffs/{id}` for a browser: the brief as a page. The four answers
//! first (who owns the next step, what was promised, what the client
//! expects next, which task starts the work), then the brief with its
//! questions and the answers people gave, missing fields, exceptions, the
//! timeline of status changes, each decision's trace in plain words, and
//! the actions with their delivery state. A handoff in review has the
//! approve / reject form; each question has an answer form.
//!
//! The page renders the API's own JSON ([`detail_json`]), so what a person
//! reads and what a script reads are the same facts.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value as J;

use super::layout::{csrf_field, page as shell, status};
use super::{check_form, html_page, message, read, see_other, Viewer};
use crate::runtime::http::handoffs::{decide, detail_json, with_sinks, Decision, Verdict};
use crate::runtime::state::AppState;
use crate::runtime::store::{NewNote, StoreExt};

/// The page of handoff `id`.
pub async fn page(state: Arc<AppState>, id: String, viewer: Option<Viewer>) -> Response {
    let wanted = id.clone();
    let (detail, sinks) = match read(&state, move |s| with_sinks(s, &wanted)).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return message(
                StatusCode::NOT_FOUND,
                viewer.as_ref(),
                "No such handoff",
                "No handoff has that id. Open it from the list of handoffs.",
            )
        }
        Err(r) => return r,
    };
    let j = detail_json(&detail, &sinks);
    let title = format!("{} · {}", text(&j["workflow"]), text(&j["record_id"]));
    html_page(
        StatusCode::OK,
        shell(&title, viewer.as_ref(), body(&j, viewer.as_ref())),
    )
}

/// A JSON value as a person reads it.
pub fn text(v: &J) -> String {
    match v {
        J::Null => "—".to_string(),
        J::String(s) => s.clone(),
        J::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        J::Object(map) if map.contains_key("amount") && map.contains_key("currency") => {
            format!("{} {}", text(&map["amount"]), text(&map["currency"]))
        }
        other => other.to_string(),
    }
}

/// A stored time as a person reads it: `2026-11-24 18:57 UTC`.
pub fn when(v: &J) -> String {
    match v.as_str().and_then(|s| s.parse::<jiff::Timestamp>().ok()) {
        Some(t) => t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        None => text(v),
    }
}

fn strings(v: &J) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default()
}

fn body(j: &J, viewer: Option<&Viewer>) -> Markup {
    let id = text(&j["id"]);
    let st = text(&j["status"]);
    let answers = &j["answers"];
    let missing = strings(&j["missing"]);
    let exceptions = strings(&j["exceptions"]);
    let questions = strings(&j["brief"]["questions"]);
    let given = j["brief_answers"].as_array().cloned().unwrap_or_default();
    html! {
        h1 { (text(&j["workflow"])) " for " (text(&j["object"])) " " (text(&j["record_id"])) " " (status(&st)) }
        p.muted {
            "Triggered " (when(&j["triggered_at"])) " · updated " (when(&j["updated_at"]))
            " · rules " (text(&j["version"]).chars().take(12).collect::<String>())
            @if j["orphaned"] == true { " · " strong { "orphaned: its workflow is gone from the rules now serving" } }
        }
        @if st == "review" && j["orphaned"] == true {
            section aria-labelledby="review-h" {
                h2 #review-h { "Review" }
                p.notice { "Flagged: " strong { (exceptions.join(", ")) } ". Its workflow is gone from the rules now serving, so it cannot be approved or rejected here. Put the workflow back in the workflows folder, then decide it on this page." }
            }
        } @else if st == "review" {
            @if let Some(v) = viewer.filter(|v| v.csrf.is_some()) {
                section aria-labelledby="review-h" {
                    h2 #review-h { "Review" }
                    p { "Flagged: " strong { (exceptions.join(", ")) } ". Approve to start the normal path, or reject to end this handoff." }
                    form.stack method="post" action={ "/handoffs/" (id) "/review" } {
                        (csrf_field(v))
                        label for="note" { "Note (why)" }
                        textarea #note name="note" {}
                        p {
                            button type="submit" name="verdict" value="approve" { "Approve" }
                            " "
                            button.danger type="submit" name="verdict" value="reject" { "Reject" }
                        }
                    }
                }
            }
        }
        section aria-labelledby="answers-h" {
            h2 #answers-h { "The four answers" }
            @if answers.is_null() {
                p.muted { "Not planned yet: the handoff has not gone down its normal path." }
            } @else {
                div.answers {
                    section { h3 { "Who owns the next step" } p { (text(&answers["next_owner"])) } }
                    section { h3 { "What was promised" }
                        ul { @for line in strings(&answers["promised"]) { li { (line) } } } }
                    section { h3 { "What the client expects next" } p { (text(&answers["client_expects"])) } }
                    section { h3 { "Which task starts the work" } p { (text(&answers["first_task"])) } }
                }
            }
        }
        @if !missing.is_empty() {
            section aria-labelledby="missing-h" {
                h2 #missing-h { "Missing fields" }
                p.notice { "Paused until these are filled in the CRM: " (missing.join(", ")) }
            }
        }
        @if !exceptions.is_empty() {
            section aria-labelledby="exc-h" {
                h2 #exc-h { "Exceptions" }
                ul { @for e in &exceptions { li { (e) } } }
            }
        }
        section aria-labelledby="brief-h" {
            h2 #brief-h { "Brief" }
            @if let Some(fields) = j["brief"]["fields"].as_array() {
                div.wrap { table {
                    caption.muted { "From the CRM" }
                    tbody { @for f in fields { tr { th scope="row" { (text(&f["label"])) } td { (text(&f["value"])) } } } }
                } }
            } @else {
                p.muted { "No brief yet." }
            }
            @for (n, q) in questions.iter().enumerate() {
                @let answer = given.iter().find(|a| a["question"] == q.as_str());
                div.question {
                    h3 { (q) }
                    @if let Some(a) = answer {
                        p.answer { (text(&a["answer"])) }
                        p.muted { "Answered by " (text(&a["who"])) " at " (when(&a["at"])) }
                    } @else {
                        p.muted { "Not answered yet." }
                    }
                    @if let Some(v) = viewer.filter(|v| v.csrf.is_some()) {
                        form.stack method="post" action={ "/handoffs/" (id) "/answers" } {
                            (csrf_field(v))
                            input type="hidden" name="question" value=(q);
                            label for={ "answer-" (n) } { "Your answer" }
                            textarea id={ "answer-" (n) } name="answer" required {}
                            p { button type="submit" { "Save the answer" } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="timeline-h" {
            h2 #timeline-h { "Timeline" }
            ol.timeline {
                @for c in j["history"].as_array().into_iter().flatten() {
                    li {
                        (when(&c["at"])) ": "
                        @if c["from"].is_null() { "started as " } @else { (text(&c["from"])) " → " }
                        strong { (text(&c["to"])) }
                        @if let Some(p) = c["by"]["person"].as_str() { " by " (p) }
                        @if let Some(e) = c["by"]["event"].as_i64() { " on event #" (e) }
                        @if let Some(n) = c["note"].as_str().filter(|n| !n.is_empty()) { " — “" (n) "”" }
                    }
                }
            }
        }
        section aria-labelledby="decisions-h" {
            h2 #decisions-h { "Why: each decision" }
            @for d in j["decisions"].as_array().into_iter().flatten() {
                @for h in d["outcome"]["handoffs"].as_array().into_iter().flatten().filter(|h| h["instance"] == j["id"]) {
                    details {
                        summary { "Event " (text(&d["event_id"])) " at " (when(&d["received_at"])) ": " (text(&h["status"])) }
                        ul.trace { @for line in strings(&h["trace"]) { li { (line) } } }
                    }
                }
            }
            @for n in j["notes"].as_array().into_iter().flatten() {
                p { (when(&n["at"])) ": " strong { (text(&n["who"])) } " " (text(&n["kind"]))
                    @if let Some(t) = n["text"].as_str().filter(|t| !t.is_empty()) { " — “" (t) "”" } }
            }
        }
        section aria-labelledby="actions-h" {
            h2 #actions-h { "Actions" }
            @if j["actions"].as_array().is_none_or(|a| a.is_empty()) {
                p.muted { "None planned." }
            } @else {
                div.wrap { table {
                    thead { tr { th scope="col" { "Action" } th scope="col" { "What" } th scope="col" { "Delivery" } th scope="col" { "Attempts" } } }
                    tbody {
                        @for a in j["actions"].as_array().into_iter().flatten() {
                            tr {
                                td { (text(&a["kind"])) }
                                td { (summary(&a["action"])) }
                                td { (status(&text(&a["state"])))
                                    @for d in a["sinks"].as_array().into_iter().flatten() {
                                        br; span.muted { (delivered(d)) }
                                    }
                                    @if let Some(e) = a["last_error"].as_str() { br; span.muted { (e) } } }
                                td { (text(&a["attempts"])) }
                            }
                        }
                    }
                } }
            }
        }
    }
}

/// One sink that took an action: "HubSpot: T-123, 1 Dec 09:00".
fn delivered(d: &J) -> String {
    let sink = match d["sink"].as_str().unwrap_or("") {
        "hubspot" => "HubSpot",
        "pipedrive" => "Pipedrive",
        "slack" => "Slack",
        "webhook" => "webhook",
        other => other,
    };
    let at = when(&d["delivered_at"]);
    match d["ref"].as_str().filter(|r| !r.is_empty()) {
        Some(r) => format!("{sink}: {r}, {at}"),
        None => format!("{sink}, {at}"),
    }
}

/// One line saying what an action does.
pub fn summary(a: &J) -> String {
    match a["type"].as_str().unwrap_or("") {
        "task" => format!(
            "{} (for {}, due {})",
            text(&a["title"]),
            text(&a["assignee"]),
            text(&a["due"])
        ),
        "notify" => format!(
            "to {}: {}",
            text(if a["channel"].is_null() {
                &a["to"]
            } else {
                &a["channel"]
            }),
            text(&a["message"])
        ),
        "email_draft" => format!("to {}: {}", text(&a["to"]), text(&a["subject"])),
        "assign" => format!("{} → {}", text(&a["role"]), text(&a["person"])),
        "set" => format!("{} = {}", text(&a["field"]), text(&a["value"])),
        _ => a.to_string(),
    }
}

#[derive(Debug, Deserialize)]
pub struct ReviewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    verdict: String,
    #[serde(default)]
    note: String,
}

/// `POST /handoffs/{id}/review`: approve or reject with a note.
pub async fn review(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    viewer: Option<Extension<Viewer>>,
    Form(f): Form<ReviewForm>,
) -> Response {
    let who = match check_form(viewer.as_deref(), &f.csrf) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let verdict = match f.verdict.as_str() {
        "approve" => Verdict::Approve,
        "reject" => Verdict::Reject,
        _ => {
            return message(
                StatusCode::BAD_REQUEST,
                Some(&who),
                "Approve or reject?",
                "Press Approve or Reject on the handoff's page.",
            )
        }
    };
    if let Some(why) =
        crate::runtime::http::handoffs::verdict_text_problem(&who.who, &f.note, verdict.verb())
    {
        return message(StatusCode::BAD_REQUEST, Some(&who), "Not saved", &why);
    }
    match decide(&state, id.clone(), who.who.clone(), f.note, verdict).await {
        Ok(Decision::Made(_)) => see_other(&format!("/handoffs/{id}")),
        Ok(Decision::NotFound) => message(
            StatusCode::NOT_FOUND,
            Some(&who),
            "No such handoff",
            "There is no handoff with that id. Find it on the handoffs page.",
        ),
        Ok(Decision::NotInReview) => message(
            StatusCode::CONFLICT,
            Some(&who),
            "Not in review",
            "This handoff is not waiting in review any more (someone decided first, or the CRM moved it on). Reload its page.",
        ),
        Ok(Decision::WorkflowGone { workflow }) => message(
            StatusCode::CONFLICT,
            Some(&who),
            "Its workflow is gone",
            &format!("This handoff waits in review, but its workflow \"{workflow}\" is gone from the rules now serving, so it cannot be approved or rejected. Put the workflow back in the workflows folder, then decide it here."),
        ),
        Err(e) => super::not_saved(&who, &e),
    }
}

#[derive(Debug, Deserialize)]
pub struct AnswerForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    question: String,
    #[serde(default)]
    answer: String,
}

/// `POST /handoffs/{id}/answers`: answers one of the brief's questions.
pub async fn answer(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    viewer: Option<Extension<Viewer>>,
    Form(f): Form<AnswerForm>,
) -> Response {
    let who = match check_form(viewer.as_deref(), &f.csrf) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let answer = f.answer.trim().to_string();
    if answer.is_empty() {
        return message(
            StatusCode::BAD_REQUEST,
            Some(&who),
            "Nothing to save",
            "Write the answer in the box under the question, then save it.",
        );
    }
    // Only a question the brief asks can be answered.
    let wanted = id.clone();
    let detail = match read(&state, move |s| s.handoff(&wanted)).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return message(
                StatusCode::NOT_FOUND,
                Some(&who),
                "No such handoff",
                "Open it from the list of handoffs.",
            )
        }
        Err(r) => return r,
    };
    let asked = strings(&detail_json(&detail, &[])["brief"]["questions"]);
    // A browser sends a line break of a form value as CRLF (HTML's form
    // encoding), whatever the page held: a question with a CRM value that
    // spans lines is matched with its breaks made alike, and kept as the
    // brief asks it.
    let sent = one_kind_of_line_break(&f.question);
    let Some(question) = asked
        .into_iter()
        .find(|q| one_kind_of_line_break(q) == sent)
    else {
        return message(
            StatusCode::BAD_REQUEST,
            Some(&who),
            "Not a question of this brief",
            "Answer a question shown on the handoff's page.",
        );
    };
    let note = NewNote {
        handoff_id: id.clone(),
        kind: "answer".into(),
        who: who.who.clone(),
        at: jiff::Timestamp::now(),
        text: answer,
        data: Some(serde_json::json!({ "question": question }).to_string()),
    };
    match state.store.write(move |tx| tx.add_note(&note)).await {
        Ok(_) => see_other(&format!("/handoffs/{id}")),
        Err(e) => super::not_saved(&who, &e),
    }
}

/// `text` with every line break (`\r\n`, `\r`) written as `\n`.
fn one_kind_of_line_break(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}
