//! A quarter of handoffs for the dashboard's bench and the browser test:
//! `weeks` weeks of won deals under the bundled workflows, put through the
//! real ingest path (`ingest::ingest`, `ingest::approve`) with the times
//! they would have arrived at, so the store holds what a server that ran
//! for a quarter holds. Deterministic: the same arguments give the same db.
//!
//! Each week's deals: one in ten is missing a required field (paused; the
//! old ones are stuck), one in ten has custom scope (in review; approved a
//! day later, except in the last two weeks), the rest proceed and are done when the
//! kickoff is scheduled, from a few hours to a few days later, so lead time
//! varies by week.

use std::sync::Arc;

use handoff::compile::WorkflowSet;
use handoff::eval::Event;
use handoff::runtime::ingest::{self, Request};
use handoff::runtime::store::Store;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

/// What [`fill`] made.
#[derive(Debug, Default, Clone, Copy)]
pub struct Filled {
    pub deals: usize,
    pub events: usize,
}

fn won(record: &str, n: usize, at: Timestamp) -> serde_json::Value {
    let mut fields = json!({"name": format!("Deal {n}"), "stage": "Closed Won",
        "owner": "sam@example.com", "amount": 4000 + 250 * (n % 40), "segment": "smb",
        "buyer_goals": "Launch by January", "main_contact": "li@beta.example",
        "signed_scope": "https://docs.example/sow", "start_date": "2026-12-14",
        "promised_deliverables": ["Setup", "Training"], "pricing_exceptions": "None",
        "kickoff_preference": "Async first", "risk_notes": "None"});
    match n % 10 {
        0 => {
            fields.as_object_mut().map(|f| f.remove("risk_notes"));
        }
        1 => fields["custom_scope"] = json!(true),
        _ => {}
    }
    json!({"id": format!("won-{record}"), "object": "deal", "record_id": record,
           "occurred_at": at.to_string(), "record": fields,
           "previous": {"stage": "Proposal"}})
}

async fn send(
    store: &Arc<dyn Store>,
    set: &WorkflowSet,
    body: serde_json::Value,
    at: Timestamp,
) -> Result<(), String> {
    let bytes = body.to_string().into_bytes();
    let event = Event::decode_lenient(set, &bytes).map_err(|e| e.to_string())?;
    ingest::ingest(
        store,
        set.clone(),
        Request {
            source: "generic".into(),
            raw_body: bytes,
            received_at: at,
            events: vec![event],
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// Fills `store` with `weeks` weeks of `per_week` deals ending at `now`.
pub async fn fill(
    store: &Arc<dyn Store>,
    set: &WorkflowSet,
    weeks: usize,
    per_week: usize,
    now: Timestamp,
) -> Result<Filled, String> {
    let mut filled = Filled::default();
    let week = SignedDuration::from_hours(24 * 7);
    let start = now - week * weeks as i32;
    for w in 0..weeks {
        for i in 0..per_week {
            let n = w * per_week + i;
            let record = format!("Q-{n:05}");
            let offset = SignedDuration::from_secs((7 * 24 * 3600 * i / per_week.max(1)) as i64);
            let at = start + week * w as i32 + offset;
            if at >= now {
                continue;
            }
            send(store, set, won(&record, n, at), at).await?;
            filled.deals += 1;
            filled.events += 1;
            // Lead time: 6 h to ~4 days, longer in the middle of the quarter.
            let hours = 6 + (n * 7 + w * 13) % 60 + if (4..9).contains(&w) { 30 } else { 0 };
            let mut proceed_at = at;
            if n % 10 == 1 {
                // In review: approved a day later, unless that is still ahead.
                proceed_at = at + SignedDuration::from_hours(24);
                if proceed_at >= now || w + 2 >= weeks {
                    continue; // the last two weeks' reviews still wait
                }
                let id = store
                    .list_handoffs(
                        &handoff::runtime::store::HandoffFilter {
                            record_id: Some(record.clone()),
                            ..Default::default()
                        },
                        &handoff::runtime::store::PageRequest::first(1),
                    )
                    .map_err(|e| e.to_string())?
                    .items
                    .first()
                    .map(|h| h.id.clone())
                    .ok_or("the review handoff was not stored")?;
                ingest::approve(
                    store,
                    set.clone(),
                    id,
                    "maya@example.com".into(),
                    "scope checked".into(),
                    proceed_at,
                )
                .await
                .map_err(|e| e.to_string())?;
            }
            if n % 10 == 0 {
                continue; // paused: waits for its missing field
            }
            let done_at = proceed_at + SignedDuration::from_hours(hours as i64);
            if done_at >= now {
                continue;
            }
            let body = json!({"id": format!("kickoff-{record}"), "object": "deal",
                "record_id": record, "occurred_at": done_at.to_string(),
                "record": {"kickoff_scheduled_at": done_at.to_string()}});
            send(store, set, body, done_at).await?;
            filled.events += 1;
        }
    }
    Ok(filled)
}
