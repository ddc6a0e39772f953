//! Pipedrive: a `task` becomes an activity on the deal (`POST
//! /api/v2/activities`: subject, type, owner, deal, due date and time in
//! UTC, the note in HTML with the checklist, the link to the brief and the
//! marker); a `set` updates the deal (`PATCH /api/v2/deals/{id}`, a custom
//! field's 40-hex-digit key under `custom_fields`). The token goes in the
//! `x-api-token` header, never in the URL (where it would reach logs).
//!
//! After an ambiguous failure it lists the deal's activities (`GET
//! /api/v2/activities?deal_id=`) and answers with the one whose note
//! carries the marker, instead of creating a second one. Unlike a search
//! index, that list is read from the database, so it has no lag.

use std::sync::Arc;

use serde_json::json;

use super::{check, json, task_html, transport, BoxFuture, Delivered, Delivery, SendError, Sink};
use crate::eval::PlannedAction;
use crate::runtime::delivery::UserIds;
use crate::runtime::secret::Secret;

/// The Pipedrive sink.
pub struct Pipedrive {
    client: reqwest::Client,
    base: String,
    token: Secret,
    activity_type: String,
    users: Arc<dyn UserIds>,
}

impl Pipedrive {
    /// A sink calling `base` (`https://api.pipedrive.com`) with `token`.
    pub fn new(
        client: reqwest::Client,
        base: String,
        token: Secret,
        activity_type: String,
        users: Arc<dyn UserIds>,
    ) -> Pipedrive {
        Pipedrive {
            client,
            base,
            token,
            activity_type,
            users,
        }
    }

    fn deal_id(d: &Delivery<'_>) -> Result<i64, SendError> {
        let record = d.record_id()?;
        record.parse().map_err(|_| SendError::Refused {
            reason: format!(
                "pipedrive: the record id `{record}` is not a Pipedrive deal id (a number); route this workflow's tasks to another sink"
            ),
        })
    }

    /// The activity on `deal` whose note carries `marker`: `Some(id)` when
    /// found (`Some(None)` when it has no readable id: found all the same,
    /// so not made twice).
    async fn find_activity(
        &self,
        deal: i64,
        marker: &str,
    ) -> Result<Option<Option<String>>, SendError> {
        let mut cursor: Option<String> = None;
        // A deal has few activities; the bound stops a misbehaving cursor.
        for _ in 0..20 {
            let mut req = self
                .client
                .get(format!("{}/api/v2/activities", self.base))
                .header("x-api-token", self.token.expose())
                .query(&[("deal_id", deal.to_string()), ("limit", "500".into())]);
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let res = req.send().await.map_err(|e| transport("pipedrive", e))?;
            let page = json("pipedrive", check("pipedrive", res).await?).await?;
            let hit = page["data"].as_array().and_then(|acts| {
                acts.iter()
                    .find(|a| a["note"].as_str().is_some_and(|n| n.contains(marker)))
            });
            if let Some(a) = hit {
                return Ok(Some(match &a["id"] {
                    serde_json::Value::Number(id) => Some(id.to_string()),
                    serde_json::Value::String(id) => Some(id.clone()),
                    _ => None,
                }));
            }
            match page["additional_data"]["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    async fn task(
        &self,
        d: &Delivery<'_>,
        title: &str,
        assignee: Option<&str>,
        due: Option<&str>,
        checklist: &[String],
    ) -> Result<Delivered, SendError> {
        let deal = Self::deal_id(d)?;
        let marker = d.marker();
        if d.retried {
            if let Some(id) = self.find_activity(deal, &marker).await? {
                return Ok(Delivered {
                    remote_ref: id,
                    found_existing: true,
                });
            }
        }
        let owner: Option<i64> = assignee.and_then(|a| {
            self.users
                .crm_user_id("pipedrive", a)
                .unwrap_or_else(|| a.to_string())
                .parse()
                .ok()
        });
        let unassigned = match (owner, assignee) {
            (None, Some(a)) => Some(a),
            _ => None,
        };
        let mut body = json!({
            "subject": title,
            "type": self.activity_type,
            "deal_id": deal,
            "done": false,
            "note": task_html(d, checklist, unassigned),
        });
        if let Some(id) = owner {
            body["owner_id"] = json!(id);
        }
        // Pipedrive's due date and time are in UTC.
        if let Some(at) = due.and_then(|d| d.parse::<jiff::Timestamp>().ok()) {
            let utc = at.to_zoned(jiff::tz::TimeZone::UTC);
            body["due_date"] = json!(utc.strftime("%Y-%m-%d").to_string());
            body["due_time"] = json!(utc.strftime("%H:%M").to_string());
        }
        let res = self
            .client
            .post(format!("{}/api/v2/activities", self.base))
            .header("x-api-token", self.token.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| transport("pipedrive", e))?;
        let made = json("pipedrive", check("pipedrive", res).await?).await?;
        Ok(Delivered {
            remote_ref: made["data"]["id"].as_i64().map(|id| id.to_string()),
            found_existing: false,
        })
    }

    async fn set(
        &self,
        d: &Delivery<'_>,
        field: &str,
        value: &crate::value::Value,
    ) -> Result<Delivered, SendError> {
        let deal = Self::deal_id(d)?;
        let text = super::property_text(value);
        // The CRM mapping names the deal field (or custom field hash) the
        // handoff field came from; an unmapped field is written by its name.
        let object = d.handoff.map_or("deal", |h| h.object.as_str());
        let mapped = self.users.crm_property("pipedrive", object, field);
        let field = mapped.as_deref().unwrap_or(field);
        // Custom fields are keyed by a 40-hex-digit hash and go under
        // `custom_fields` in API v2.
        let custom = field.len() == 40 && field.bytes().all(|b| b.is_ascii_hexdigit());
        let body = if custom {
            json!({"custom_fields": {field: text}})
        } else {
            json!({ field: text })
        };
        let res = self
            .client
            .patch(format!("{}/api/v2/deals/{deal}", self.base))
            .header("x-api-token", self.token.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| transport("pipedrive", e))?;
        check("pipedrive", res).await?;
        Ok(Delivered {
            remote_ref: Some(format!("deals/{deal}")),
            found_existing: false,
        })
    }
}

impl Sink for Pipedrive {
    fn name(&self) -> &'static str {
        "pipedrive"
    }

    fn deliver<'a>(&'a self, d: &'a Delivery<'a>) -> BoxFuture<'a, Result<Delivered, SendError>> {
        Box::pin(async move {
            match d.plan {
                PlannedAction::Task {
                    title,
                    assignee,
                    due,
                    checklist,
                    ..
                } => {
                    self.task(d, title, assignee.as_deref(), due.as_deref(), checklist)
                        .await
                }
                PlannedAction::Set { field, value } => self.set(d, field, value).await,
                _ => Err(SendError::Refused {
                    reason: format!(
                        "pipedrive takes task and set actions, not {}",
                        d.action.kind.as_str()
                    ),
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use axum::extract::Query;
    use axum::routing::get;
    use axum::{Json, Router};
    use serde_json::{json, Value as J};

    use super::*;
    use crate::runtime::delivery::NoUserIds;

    #[tokio::test]
    async fn a_retry_finds_its_activity_on_a_later_page_even_without_an_id() {
        // Pipedrive's API v2 shape: `data`, and `additional_data.next_cursor`
        // while more pages follow.
        let seen = Arc::new(Mutex::new(Vec::<HashMap<String, String>>::new()));
        let log = seen.clone();
        let app = Router::new().route(
            "/api/v2/activities",
            get(move |Query(q): Query<HashMap<String, String>>| {
                let log = log.clone();
                async move {
                    let page = match q.get("cursor").map(String::as_str) {
                        None => json!({"success": true,
                            "data": [{"id": 1, "note": "other"}],
                            "additional_data": {"next_cursor": "c2"}}),
                        Some(_) => json!({"success": true,
                            "data": [{"note": "x handoff-action:k-9 y"}],
                            "additional_data": {"next_cursor": null}}),
                    };
                    log.lock().unwrap().push(q);
                    Json::<J>(page)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let sink = Pipedrive::new(
            reqwest::Client::new(),
            base,
            Secret::new("t"),
            "task".into(),
            Arc::new(NoUserIds),
        );
        let found = sink.find_activity(56, "handoff-action:k-9").await.unwrap();
        assert_eq!(found, Some(None), "a second activity would be made");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0]["deal_id"], "56");
        assert_eq!(seen[1]["cursor"], "c2");
    }
}
