//! HubSpot: a `task` becomes a task on the deal (CRM objects API v3,
//! `POST /crm/v3/objects/tasks` with an association to the record),
//! assigned to the owner's HubSpot id, due at the task's due date, with the
//! checklist, the link to the brief and a marker carrying the action's
//! idempotency key in `hs_task_body`; a `set` updates the record's property
//! (`PATCH /crm/v3/objects/{type}/{id}`).
//!
//! Before creating a task again after an ambiguous failure, it searches the
//! tasks associated with the record (`POST /crm/v3/objects/tasks/search`,
//! filter `associations.{object}`) for one whose body carries the marker,
//! and answers with that task instead of making a second one. HubSpot's
//! search index trails writes by a few seconds; the first retry comes
//! after the backoff (10 s by default), past that lag.

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
fn object_type(object: &str) -> (String, Option<u32>) {
    match object {
        "deal" | "deals" => ("deals".into(), Some(216)),
        "contact" | "contacts" => ("contacts".into(), Some(204)),
        "company" | "companies" => ("companies".into(), Some(192)),
        "ticket" | "tickets" => ("tickets".into(), Some(230)),
        other => (other.to_string(), None),
    }
}

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

    async fn find_task(
        &self,
        object: &str,
        record: &str,
        marker: &str,
    ) -> Result<Option<String>, SendError> {
        let body = json!({
            "filterGroups": [{"filters": [{
                "propertyName": format!("associations.{object}"),
                "operator": "EQ",
                "value": record,
            }]}],
            "properties": ["hs_task_body", "hs_task_subject"],
            "limit": 100,
        });
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
        Ok(hit.and_then(|r| r["id"].as_str().map(str::to_string)))
    }

    async fn task(
        &self,
        d: &Delivery<'_>,
        title: &str,
        assignee: Option<&str>,
        due: Option<&str>,
        checklist: &[String],
    ) -> Result<Delivered, SendError> {
        let record = d.record_id()?;
        let object = d.handoff.map_or("deal", |h| h.object.as_str());
        let marker = d.marker();
        if d.retried {
            if let Some(id) = self.find_task(object, record, &marker).await? {
                return Ok(Delivered {
                    remote_ref: Some(id),
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
        let mut body = json!({ "properties": properties });
        if let (_, Some(type_id)) = object_type(object) {
            body["associations"] = json!([{
                "to": {"id": record},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
            }]);
        }
        let res = self
            .client
            .post(format!("{}/crm/v3/objects/tasks", self.base))
            .bearer_auth(self.token.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| transport("hubspot", e))?;
        let made = json("hubspot", check("hubspot", res).await?).await?;
        Ok(Delivered {
            remote_ref: made["id"].as_str().map(str::to_string),
            found_existing: false,
        })
    }

    async fn set(
        &self,
        d: &Delivery<'_>,
        field: &str,
        value: &crate::value::Value,
    ) -> Result<Delivered, SendError> {
        let record = d.record_id()?;
        let object = d.handoff.map_or("deal", |h| h.object.as_str());
        let (plural, _) = object_type(object);
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
