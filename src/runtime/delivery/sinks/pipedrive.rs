//! Pipedrive: a `task` becomes an activity on the handoff's record (`POST
//! /api/v2/activities`: subject, type, owner, the record (`deal_id`,
//! `org_id`, `lead_id`, or a person as the primary participant), due date
//! and time in UTC, the note in HTML with the checklist, the link to the
//! brief and the marker); a `set` updates the record (`PATCH
//! /api/v2/deals/{id}`, `/persons/{id}` or `/organizations/{id}`, a custom
//! field's 40-hex-digit key under `custom_fields`; a lead, which API v2
//! cannot update, `PATCH /v1/leads/{id}`). The token goes in the
//! `x-api-token` header, never in the URL (where it would reach logs).
//!
//! Which kind of record it is comes from the mapping's `object_type`
//! (`[pipedrive.objects.lead] object_type = "persons"`); an object the
//! mapping does not name is a deal, as before there was a choice.
//!
//! After an ambiguous failure it lists the record's activities (`GET
//! /api/v2/activities?deal_id=`, or `person_id`, `org_id`, `lead_id`) and
//! answers with the one whose note carries the marker, instead of creating
//! a second one. Unlike a search index, that list is read from the
//! database, so it has no lag.

use std::sync::Arc;

use serde_json::json;

use super::{check, json, task_html, transport, BoxFuture, Delivered, Delivery, SendError, Sink};
use crate::eval::PlannedAction;
use crate::runtime::delivery::UserIds;
use crate::runtime::secret::Secret;

/// How many pages of a deal's activities a retry reads looking for its
/// marker.
pub(crate) const LIST_PAGES: u32 = 20;

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

    /// The Pipedrive record the handoff is about.
    fn target(&self, d: &Delivery<'_>) -> Result<Target, SendError> {
        let record = d.record_id()?;
        let object = d.handoff.map_or("deal", |h| h.object.as_str());
        let mapped = self.users.crm_object_type("pipedrive", object);
        Target::of(mapped.as_deref(), object, record)
    }

    /// The activity on `target` whose note carries `marker`: `Some(id)`
    /// when found (`Some(None)` when it has no readable id: found all the
    /// same, so not made twice).
    async fn find_activity(
        &self,
        target: &Target,
        marker: &str,
    ) -> Result<Option<Option<String>>, SendError> {
        let mut cursor: Option<String> = None;
        // A deal has few activities; the bound stops a misbehaving cursor.
        for _ in 0..LIST_PAGES {
            let mut req = self
                .client
                .get(format!("{}/api/v2/activities", self.base))
                .header("x-api-token", self.token.expose())
                .query(&[(target.link(), target.id()), ("limit", "500".into())]);
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
        let target = self.target(d)?;
        let marker = d.marker();
        if d.retried {
            if let Some(id) = self.find_activity(&target, &marker).await? {
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
            "done": false,
            "note": task_html(d, checklist, unassigned),
        });
        target.link_activity(&mut body);
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
        let made = check("pipedrive", res).await?;
        Ok(Delivered {
            remote_ref: super::made_id("pipedrive", made, |m| {
                m["data"]["id"].as_i64().map(|id| id.to_string())
            })
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
        let target = self.target(d)?;
        let text = super::property_text(value);
        // The CRM mapping names the deal field (or custom field hash) the
        // handoff field came from; an unmapped field is written by its name.
        let object = d.handoff.map_or("deal", |h| h.object.as_str());
        let mapped = self.users.crm_property("pipedrive", object, field);
        let field = mapped.as_deref().unwrap_or(field);
        // Custom fields are keyed by a 40-hex-digit hash and go under
        // `custom_fields` in API v2.
        let custom = field.len() == 40 && field.bytes().all(|b| b.is_ascii_hexdigit());
        // API v1 (leads) takes custom fields flat, by key.
        let body = if custom && !matches!(target, Target::Lead(_)) {
            json!({"custom_fields": {field: text}})
        } else {
            json!({ field: text })
        };
        let res = self
            .client
            .patch(format!("{}/{}", self.base, target.update_path()))
            .header("x-api-token", self.token.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| transport("pipedrive", e))?;
        check("pipedrive", res).await?;
        Ok(Delivered {
            remote_ref: Some(target.remote_ref()),
            found_existing: false,
        })
    }
}

/// The kind of Pipedrive record a handoff is about, with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Deal(u64),
    Person(u64),
    Organization(u64),
    /// A lead's id is a UUID.
    Lead(String),
}

impl Target {
    /// `object_type` is the mapping's (`deals`, `persons`, `organizations`,
    /// `leads`; the singular too); `None` is a deal.
    fn of(object_type: Option<&str>, object: &str, record: &str) -> Result<Target, SendError> {
        let kind = object_type.unwrap_or("deals").to_ascii_lowercase();
        let number = |what: &str| {
            record.parse::<u64>().map_err(|_| SendError::Refused {
                reason: format!(
                    "pipedrive: the record id `{record}` is not a Pipedrive {what} id (a number); route this workflow's tasks to another sink"
                ),
            })
        };
        match kind.trim_end_matches('s') {
            "deal" => number("deal").map(Target::Deal),
            "person" => number("person").map(Target::Person),
            "organization" => number("organization").map(Target::Organization),
            "lead" => {
                let uuid = record.len() == 36
                    && record
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() || b == b'-');
                if uuid {
                    Ok(Target::Lead(record.to_ascii_lowercase()))
                } else {
                    Err(SendError::Refused {
                        reason: format!(
                            "pipedrive: the record id `{record}` is not a Pipedrive lead id (a UUID); route this workflow's tasks to another sink"
                        ),
                    })
                }
            }
            _ => Err(SendError::Refused {
                reason: format!(
                    "pipedrive: `{object}` is mapped to object_type `{kind}`, which takes no activities or field updates here; map it to deals, persons, organizations or leads, or route its actions to another sink"
                ),
            }),
        }
    }

    /// The activities list's filter for the record (`GET
    /// /api/v2/activities?person_id=7`), which is also the field a read
    /// activity carries.
    fn link(&self) -> &'static str {
        match self {
            Target::Deal(_) => "deal_id",
            Target::Person(_) => "person_id",
            Target::Organization(_) => "org_id",
            Target::Lead(_) => "lead_id",
        }
    }

    fn id(&self) -> String {
        match self {
            Target::Deal(n) | Target::Person(n) | Target::Organization(n) => n.to_string(),
            Target::Lead(id) => id.clone(),
        }
    }

    /// Puts the record on a new activity. API v2 takes `deal_id`,
    /// `org_id` and `lead_id` as they are, but a person only as the
    /// primary participant (`person_id` is read-only there and refused).
    fn link_activity(&self, body: &mut serde_json::Value) {
        match self {
            Target::Deal(n) => body["deal_id"] = json!(n),
            Target::Organization(n) => body["org_id"] = json!(n),
            Target::Lead(id) => body["lead_id"] = json!(id),
            Target::Person(n) => {
                body["participants"] = json!([{"person_id": n, "primary": true}]);
            }
        }
    }

    /// Where a field update goes (after the API's base URL).
    fn update_path(&self) -> String {
        match self {
            Target::Lead(id) => format!("v1/leads/{id}"),
            _ => format!("api/v2/{}", self.remote_ref()),
        }
    }

    /// The record as `deals/42`, `persons/7`, `leads/…`.
    fn remote_ref(&self) -> String {
        let kind = match self {
            Target::Deal(_) => "deals",
            Target::Person(_) => "persons",
            Target::Organization(_) => "organizations",
            Target::Lead(_) => "leads",
        };
        format!("{kind}/{}", self.id())
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

    #[test]
    fn the_mapped_object_type_says_which_record_an_action_goes_to() {
        let t = |ty: Option<&str>, id: &str| Target::of(ty, "lead", id);
        assert_eq!(t(None, "42").unwrap(), Target::Deal(42));
        assert_eq!(t(Some("deals"), "42").unwrap(), Target::Deal(42));
        let person = t(Some("persons"), "7").unwrap();
        assert_eq!((person.link(), person.id()), ("person_id", "7".into()));
        assert_eq!(person.update_path(), "api/v2/persons/7");
        let org = t(Some("organizations"), "9").unwrap();
        assert_eq!(
            (org.link(), org.update_path().as_str()),
            ("org_id", "api/v2/organizations/9")
        );
        let uuid = "5F1E0B34-7a2c-11ef-9e4b-0242ac120002";
        let lead = t(Some("leads"), uuid).unwrap();
        assert_eq!(lead.link(), "lead_id");
        assert_eq!(
            lead.update_path(),
            format!("v1/leads/{}", uuid.to_lowercase())
        );
        for (ty, id, why) in [
            (Some("persons"), "D-9", "not a Pipedrive person id"),
            (None, "../persons/7", "not a Pipedrive deal id"),
            (Some("leads"), "42", "not a Pipedrive lead id"),
            (
                Some("products"),
                "42",
                "map it to deals, persons, organizations or leads",
            ),
        ] {
            match t(ty, id) {
                Err(SendError::Refused { reason }) => assert!(reason.contains(why), "{reason}"),
                other => panic!("{ty:?} {id}: {other:?}"),
            }
        }
    }

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
        let found = sink
            .find_activity(&Target::Deal(56), "handoff-action:k-9")
            .await
            .unwrap();
        assert_eq!(found, Some(None), "a second activity would be made");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0]["deal_id"], "56");
        assert_eq!(seen[1]["cursor"], "c2");
    }
}
