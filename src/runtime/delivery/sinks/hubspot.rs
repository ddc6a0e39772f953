//! HubSpot: a `task` becomes a task on the deal (CRM objects API v3,
//! `POST /crm/v3/objects/tasks` with an association to the record),
//! assigned to the owner's HubSpot id, due at the task's due date, with the
//! checklist, the link to the brief and a marker carrying the action's
//! idempotency key in `hs_task_body`; a `set` updates the record's property
//! (`PATCH /crm/v3/objects/{type}/{id}`).
//!
//! The record's HubSpot type is the mapping's `object_type` (a workflow
//! object `opportunity` mapped to `deals` is a deal). Its id goes into the
//! API's paths, so one that could step out of them (`..`, `/`, `?`) is
//! refused.
//!
//! Before creating a task again after an ambiguous failure, it searches the
//! tasks associated with the record (`POST /crm/v3/objects/tasks/search`,
//! filter `associations.deal`, newest first, every page) for one whose body
//! carries the marker, and answers with that task instead of making a
//! second one. HubSpot's search index trails writes by a few seconds, so
//! after a create that may have worked (a timeout, a 5xx) the next try
//! waits at least [`SEARCH_LAG`] (30 s, within `[delivery]`'s longest
//! wait).

use std::sync::Arc;

use serde_json::json;

use super::{check, json, task_html, transport, BoxFuture, Delivered, Delivery, SendError, Sink};
use crate::eval::PlannedAction;
use crate::runtime::delivery::UserIds;
use crate::runtime::secret::Secret;

/// The HubSpot sink.
pub struct HubSpot {
    client: reqwest::Client,
    base: String,
    token: Secret,
    users: Arc<dyn UserIds>,
}

/// HubSpot's object type and the task-to-object association type id
/// (HubSpot-defined) for an `object` of the workflows. Sources: 204
/// (task to contact) is the example in HubSpot's tasks guide
/// (developers.hubspot.com/docs/api/crm/tasks); 216 (deal) and 192
/// (company) are in the published tables of HubSpot's default association
/// type ids; 230 (ticket) is not in a HubSpot page we could read, but a
/// public HubSpot API emulator's table of HubSpot-defined types gives it
/// (task to ticket 230, inverse 229) beside the same 204, 192 and 216. A
/// portal's own labels have other ids
/// (`GET /crm/v4/associations/tasks/{type}/labels` lists them).
/// Also the name the search API filters associations by (`deal`).
fn object_type(object: &str) -> HubSpotType {
    let (path, association, type_id) = match object {
        "deal" | "deals" => ("deals", "deal", Some(216)),
        "contact" | "contacts" => ("contacts", "contact", Some(204)),
        "company" | "companies" => ("companies", "company", Some(192)),
        "ticket" | "tickets" => ("tickets", "ticket", Some(230)),
        other => (other, other, None),
    };
    HubSpotType {
        path: path.to_string(),
        association: association.to_string(),
        type_id,
    }
}

/// A record's type in HubSpot's API.
struct HubSpotType {
    /// In paths: `/crm/v3/objects/{path}/{id}`.
    path: String,
    /// In a search filter: `associations.{association}`.
    association: String,
    /// The HubSpot-defined task-to-record association type id.
    type_id: Option<u32>,
}

/// How long HubSpot's search may take to list a task just created: a retry
/// after a create that may have worked waits at least this long (within
/// the worker's longest wait), so its search finds the task instead of
/// making a second one.
pub const SEARCH_LAG: std::time::Duration = std::time::Duration::from_secs(30);

/// A failed create that may have worked is tried again only after
/// [`SEARCH_LAG`].
fn after_search_lag(e: SendError) -> SendError {
    match e {
        SendError::Retry {
            reason,
            retry_after,
        } => SendError::Retry {
            reason,
            retry_after: Some(retry_after.map_or(SEARCH_LAG, |r| r.max(SEARCH_LAG))),
        },
        other => other,
    }
}

/// How many pages of search results a retry reads before giving up on
/// finding its task (100 tasks a page).
pub(crate) const SEARCH_PAGES: u32 = 20;

impl HubSpot {
    /// A sink calling `base` (`https://api.hubapi.com`) with `token`.
    pub fn new(
        client: reqwest::Client,
        base: String,
        token: Secret,
        users: Arc<dyn UserIds>,
    ) -> HubSpot {
        HubSpot {
            client,
            base,
            token,
            users,
        }
    }

    /// The record's HubSpot type, and its id checked to be HubSpot's.
    fn record<'d>(&self, d: &'d Delivery<'_>) -> Result<(HubSpotType, &'d str), SendError> {
        let record = d.record_id()?;
        if !crate::runtime::adapters::is_crm_record_id(record) {
            return Err(SendError::Refused {
                reason: format!(
                    "hubspot: the record id `{}` cannot be a HubSpot record id (those are numbers); route this workflow's actions to another sink",
                    record.chars().take(80).collect::<String>()
                ),
            });
        }
        let object = d.handoff.map_or("deal", |h| h.object.as_str());
        let mapped = self.users.crm_object_type("hubspot", object);
        Ok((object_type(mapped.as_deref().unwrap_or(object)), record))
    }

    /// The task on `record` whose body carries `marker`: `Some(id)` when
    /// found (`Some(None)` when HubSpot gave it no readable id: found all
    /// the same, so not made twice).
    async fn find_task(
        &self,
        kind: &HubSpotType,
        record: &str,
        marker: &str,
    ) -> Result<Option<Option<String>>, SendError> {
        let mut after: Option<String> = None;
        for _ in 0..SEARCH_PAGES {
            let mut body = json!({
                "filterGroups": [{"filters": [{
                    "propertyName": format!("associations.{}", kind.association),
                    "operator": "EQ",
                    "value": record,
                }]}],
                // Newest first: a retry looks for a task made moments ago.
                "sorts": [{"propertyName": "hs_createdate", "direction": "DESCENDING"}],
                "properties": ["hs_task_body", "hs_task_subject"],
                "limit": 100,
            });
            if let Some(cursor) = &after {
                body["after"] = json!(cursor);
            }
            let res = self
                .client
                .post(format!("{}/crm/v3/objects/tasks/search", self.base))
                .bearer_auth(self.token.expose())
                .json(&body)
                .send()
                .await
                .map_err(|e| transport("hubspot", e))?;
            let found = json("hubspot", check("hubspot", res).await?).await?;
            let hit = found["results"].as_array().and_then(|rs| {
                rs.iter().find(|r| {
                    r["properties"]["hs_task_body"]
                        .as_str()
                        .is_some_and(|b| b.contains(marker))
                })
            });
            if let Some(hit) = hit {
                return Ok(Some(match &hit["id"] {
                    serde_json::Value::String(id) => Some(id.clone()),
                    serde_json::Value::Number(id) => Some(id.to_string()),
                    _ => None,
                }));
            }
            after = match &found["paging"]["next"]["after"] {
                serde_json::Value::String(a) => Some(a.clone()),
                serde_json::Value::Number(a) => Some(a.to_string()),
                _ => return Ok(None),
            };
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
        let (kind, record) = self.record(d)?;
        let Some(type_id) = kind.type_id else {
            // Without an association the task would float free, and a
            // retry's search (by association) could never find it.
            return Err(SendError::Refused {
                reason: format!(
                    "hubspot: tasks go on deals, contacts, companies or tickets, and this record is of type `{}`: map its object to one of those (object_type), or route its tasks to the webhook sink",
                    kind.path
                ),
            });
        };
        let marker = d.marker();
        if d.retried {
            if let Some(id) = self.find_task(&kind, record, &marker).await? {
                return Ok(Delivered {
                    remote_ref: id,
                    found_existing: true,
                });
            }
        }
        let owner = assignee.and_then(|a| owner_id(self.users.as_ref(), a));
        let unassigned = match (&owner, assignee) {
            (None, Some(a)) => Some(a),
            _ => None,
        };
        // hs_timestamp is the due date (required); without one, now.
        let due_ms = due
            .and_then(|d| d.parse::<jiff::Timestamp>().ok())
            .unwrap_or_else(jiff::Timestamp::now)
            .as_millisecond();
        let mut properties = json!({
            "hs_task_subject": title,
            "hs_task_body": task_html(d, checklist, unassigned),
            "hs_timestamp": due_ms.to_string(),
            "hs_task_status": "NOT_STARTED",
            "hs_task_type": "TODO",
        });
        if let Some(id) = owner {
            properties["hubspot_owner_id"] = json!(id);
        }
        let body = json!({
            "properties": properties,
            "associations": [{
                "to": {"id": record},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
            }],
        });
        let res = self
            .client
            .post(format!("{}/crm/v3/objects/tasks", self.base))
            .bearer_auth(self.token.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| after_search_lag(transport("hubspot", e)))?;
        let made = check("hubspot", res).await.map_err(after_search_lag)?;
        Ok(Delivered {
            remote_ref: super::made_id("hubspot", made, |m| m["id"].as_str().map(str::to_string))
                .await,
            found_existing: false,
        })
    }

    async fn set(
        &self,
        d: &Delivery<'_>,
        field: &str,
        value: &crate::value::Value,
    ) -> Result<Delivered, SendError> {
        let (kind, record) = self.record(d)?;
        let object = d.handoff.map_or("deal", |h| h.object.as_str());
        let plural = kind.path;
        // The CRM mapping names the property the field came from (custom
        // properties included); an unmapped field is written by its name.
        let property = self
            .users
            .crm_property("hubspot", object, field)
            .unwrap_or_else(|| field.to_string());
        let body = json!({"properties": {property: super::property_text(value)}});
        let res = self
            .client
            .patch(format!("{}/crm/v3/objects/{plural}/{record}", self.base))
            .bearer_auth(self.token.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| transport("hubspot", e))?;
        check("hubspot", res).await?;
        Ok(Delivered {
            remote_ref: Some(format!("{plural}/{record}")),
            found_existing: false,
        })
    }
}

/// The HubSpot owner id of `assignee`: the mapping's, or the value itself
/// when it is already a numeric id.
fn owner_id(users: &dyn UserIds, assignee: &str) -> Option<String> {
    users.crm_user_id("hubspot", assignee).or_else(|| {
        assignee
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| assignee.to_string())
    })
}

impl Sink for HubSpot {
    fn name(&self) -> &'static str {
        "hubspot"
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
                        "hubspot takes task and set actions, not {}",
                        d.action.kind.as_str()
                    ),
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::routing::post;
    use axum::{Json, Router};
    use serde_json::{json, Value as J};

    use super::*;
    use crate::runtime::delivery::NoUserIds;

    /// A local search endpoint in HubSpot's shape: `results`, and
    /// `paging.next.after` while more pages follow. Answers `pages` in
    /// turn; keeps every request body.
    async fn search_server(pages: Vec<J>) -> (String, Arc<Mutex<Vec<J>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, pages) = (seen.clone(), Arc::new(pages));
        let app = Router::new().route(
            "/crm/v3/objects/tasks/search",
            post(move |Json(body): Json<J>| {
                let (log, pages) = (log.clone(), pages.clone());
                async move {
                    let mut log = log.lock().unwrap();
                    let page = pages
                        .get(log.len())
                        .cloned()
                        .unwrap_or(json!({"results": []}));
                    log.push(body);
                    Json(page)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, seen)
    }

    fn task(id: J, body: &str) -> J {
        json!({"id": id, "properties": {"hs_task_body": body}})
    }

    fn sink(base: String) -> HubSpot {
        HubSpot::new(
            reqwest::Client::new(),
            base,
            Secret::new("t"),
            Arc::new(NoUserIds),
        )
    }

    #[tokio::test]
    async fn a_retry_finds_its_task_on_a_later_page() {
        let others: Vec<J> = (0..100)
            .map(|i| task(json!(i.to_string()), "other"))
            .collect();
        let (base, seen) = search_server(vec![
            json!({"results": others, "paging": {"next": {"after": "100"}}}),
            json!({"results": [task(json!(4711), "x handoff-action:k-1 y")]}),
        ])
        .await;
        let found = sink(base)
            .find_task(&object_type("deals"), "55", "handoff-action:k-1")
            .await
            .unwrap();
        // Found on page two; a numeric id is still an id.
        assert_eq!(found, Some(Some("4711".to_string())));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        let filter = &seen[0]["filterGroups"][0]["filters"][0];
        assert_eq!(filter["propertyName"], "associations.deal");
        assert_eq!(filter["value"], "55");
        assert_eq!(seen[0]["sorts"][0]["direction"], "DESCENDING");
        assert_eq!(seen[0].get("after"), None);
        assert_eq!(seen[1]["after"], "100");
    }

    #[tokio::test]
    async fn a_task_without_a_readable_id_is_found_all_the_same() {
        let (base, _) = search_server(vec![
            json!({"results": [task(J::Null, "handoff-action:k-2")]}),
        ])
        .await;
        let found = sink(base)
            .find_task(&object_type("deal"), "55", "handoff-action:k-2")
            .await
            .unwrap();
        assert_eq!(found, Some(None), "a second task would be made");
    }

    #[tokio::test]
    async fn no_task_is_found_when_the_last_page_has_none() {
        let (base, seen) = search_server(vec![
            json!({"results": [task(json!("1"), "other")], "paging": {"next": {"after": "1"}}}),
            json!({"results": [task(json!("2"), "other")]}),
        ])
        .await;
        let found = sink(base)
            .find_task(&object_type("deal"), "55", "handoff-action:k-3")
            .await
            .unwrap();
        assert_eq!(found, None);
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[test]
    fn a_create_that_may_have_worked_is_retried_after_the_search_lag() {
        let retry = |after: Option<std::time::Duration>| SendError::Retry {
            reason: "hubspot: no answer".into(),
            retry_after: after,
        };
        let waits = |e: SendError| match e {
            SendError::Retry { retry_after, .. } => retry_after,
            other => panic!("{other:?}"),
        };
        assert_eq!(waits(after_search_lag(retry(None))), Some(SEARCH_LAG));
        let asked = SEARCH_LAG * 2;
        assert_eq!(waits(after_search_lag(retry(Some(asked)))), Some(asked));
        let short = std::time::Duration::from_secs(1);
        assert_eq!(
            waits(after_search_lag(retry(Some(short)))),
            Some(SEARCH_LAG)
        );
        // A refusal stays one.
        let refused = after_search_lag(SendError::Refused {
            reason: "400".into(),
        });
        assert!(matches!(refused, SendError::Refused { .. }));
    }

    #[test]
    fn the_mapped_object_type_names_the_record_s_hubspot_type() {
        let table: toml::Table =
            toml::from_str("[hubspot.objects.opportunity]\nobject_type = \"deals\"\n").unwrap();
        let mapping = crate::runtime::adapters::mapping::Mapping::from_table(&table, "t").unwrap();
        let mapped = mapping.crm_object_type("hubspot", "opportunity");
        assert_eq!(mapped.as_deref(), Some("deals"));
        assert_eq!(mapping.crm_object_type("hubspot", "deal"), None);
        let kind = object_type(mapped.as_deref().unwrap());
        assert_eq!(
            (kind.path.as_str(), kind.association.as_str(), kind.type_id),
            ("deals", "deal", Some(216))
        );
    }
}
