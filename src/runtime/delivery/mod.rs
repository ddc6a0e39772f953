//! Delivery: the worker that drains the outbox to where people work.
//!
//! ```text
//! outbox (pending) ──claim with a lease──▶ worker ──▶ sinks per action kind
//!      ▲                                     │        (hubspot | pipedrive |
//!      └── retry at backoff / dead letter ◀──┘         slack | webhook)
//! ```
//!
//! At-least-once: an action leaves the outbox only after every sink of its
//! kind took it, and each sink's success is committed on its own, so a
//! retry sends only to the sinks that have not taken it. Every request
//! carries the action's idempotency key; a CRM write that may have
//! happened (a timeout, a crash) looks for its marker before writing again.
//! Failures wait with exponential backoff and jitter ([`backoff`]), honour
//! `Retry-After`, and end in the dead letters after `max_attempts`; a
//! refusal (400, bad token) goes there at once. Dead letters are listed
//! and re-driven through `GET /outbox/dead-letters`, `POST
//! /outbox/{id}/retry` and `handoff outbox`.
//!
//! This module decides nothing about handoffs: it moves what the engine
//! planned.

pub mod backoff;
pub mod settings;
pub mod sinks;
pub mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;

pub use settings::{DeliverySettings, SinkKind};
pub use worker::{Pass, Worker};

use crate::runtime::config::{decode_whsec, ConfigError, Settings};
use crate::runtime::store::{ActionRow, NewNote, StoreError, WriteTx};

/// Puts dead `action` back in the queue (attempts reset, due `at`) and
/// notes on its handoff who did, in the caller's write job, whichever door
/// they came by (a page, the API, the command line): `Ok(false)`, and no
/// note, when it was not dead any more (someone re-drove it first).
pub fn redrive(
    tx: &mut dyn WriteTx,
    action: &ActionRow,
    who: &str,
    at: Timestamp,
) -> Result<bool, StoreError> {
    if !tx.redrive(&action.id, at)? {
        return Ok(false);
    }
    tx.add_note(&NewNote {
        handoff_id: action.handoff_id.clone(),
        kind: "redrive".into(),
        who: who.to_string(),
        at,
        text: format!("re-drove {} {}", action.kind.as_str(), action.id),
        data: None,
    })?;
    Ok(true)
}

/// A person's id in a CRM or chat, looked up by email. The worker is given
/// one: the `crm` mapping (owner ids to emails, read backwards) in `serve`,
/// a map in tests.
pub trait UserIds: Send + Sync {
    /// The id of the person with `email` in `system` (`hubspot`,
    /// `pipedrive`, `slack`), if known.
    fn crm_user_id(&self, system: &str, email: &str) -> Option<String>;

    /// The CRM property a `set` of `object.field` writes, when the mapping
    /// renames it; `None` writes the field's own name.
    fn crm_property(&self, _system: &str, _object: &str, _field: &str) -> Option<String> {
        None
    }

    /// The CRM's object type (`deals`) of a workflow `object`, when the
    /// mapping names it; `None` takes the object's own name.
    fn crm_object_type(&self, _system: &str, _object: &str) -> Option<String> {
        None
    }
}

/// The CRM mapping of `handoff.toml` answers both: owner ids read
/// backwards, and the property a field came from.
impl UserIds for crate::runtime::adapters::mapping::Mapping {
    fn crm_user_id(&self, system: &str, email: &str) -> Option<String> {
        let crm = crate::runtime::adapters::mapping::Crm::parse(system)?;
        crate::runtime::adapters::mapping::Mapping::crm_user_id(self, crm, email)
            .map(str::to_string)
    }

    fn crm_property(&self, system: &str, object: &str, field: &str) -> Option<String> {
        let crm = crate::runtime::adapters::mapping::Crm::parse(system)?;
        self.property_for(crm, object, field).map(str::to_string)
    }

    fn crm_object_type(&self, system: &str, object: &str) -> Option<String> {
        let crm = crate::runtime::adapters::mapping::Crm::parse(system)?;
        let mapped = self.crm(crm)?.object(object)?;
        Some(mapped.object_type.get_ref().clone())
    }
}

/// No ids known: tasks go unassigned, with the person named in the body.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoUserIds;

impl UserIds for NoUserIds {
    fn crm_user_id(&self, _system: &str, _email: &str) -> Option<String> {
        None
    }
}

/// Ids from a map of (system, email) to id.
#[derive(Debug, Clone, Default)]
pub struct MapUserIds(pub BTreeMap<(String, String), String>);

impl MapUserIds {
    /// Adds `email`'s id in `system`.
    pub fn with(mut self, system: &str, email: &str, id: &str) -> MapUserIds {
        self.0.insert(
            (system.to_string(), email.to_ascii_lowercase()),
            id.to_string(),
        );
        self
    }
}

impl UserIds for MapUserIds {
    fn crm_user_id(&self, system: &str, email: &str) -> Option<String> {
        self.0
            .get(&(system.to_string(), email.to_ascii_lowercase()))
            .cloned()
    }
}

/// The worker's clock (tests may move it).
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// The sinks, by name.
pub type SinkSet = BTreeMap<SinkKind, Arc<dyn sinks::Sink>>;

/// Builds the sinks the settings' routes name, with their secrets.
pub fn build_sinks(settings: &Settings, users: Arc<dyn UserIds>) -> Result<SinkSet, ConfigError> {
    let d = &settings.delivery;
    d.validate(&settings.secrets)?;
    let client = sinks::client(d.timeout).map_err(|e| ConfigError::BadValue {
        origin: "[delivery]".into(),
        problem: format!("cannot set up the HTTP client: {e}"),
        help: "this is a bug or a broken TLS setup; please report it".into(),
    })?;
    let s = &settings.secrets;
    let mut out: SinkSet = BTreeMap::new();
    for kind in d.sinks() {
        // `validate` checked every secret used below is set.
        let sink: Arc<dyn sinks::Sink> = match kind {
            SinkKind::Hubspot => match &s.hubspot_token {
                Some(t) => Arc::new(sinks::hubspot::HubSpot::new(
                    client.clone(),
                    d.hubspot_api_url.clone(),
                    t.clone(),
                    users.clone(),
                )),
                None => continue,
            },
            SinkKind::Pipedrive => match &s.pipedrive_api_token {
                Some(t) => Arc::new(sinks::pipedrive::Pipedrive::new(
                    client.clone(),
                    d.pipedrive_api_url.clone(),
                    t.clone(),
                    d.pipedrive_activity_type.clone(),
                    users.clone(),
                )),
                None => continue,
            },
            SinkKind::Slack => match &s.slack_webhook_url {
                Some(u) => Arc::new(sinks::slack::Slack::new(
                    client.clone(),
                    u.clone(),
                    users.clone(),
                )),
                None => continue,
            },
            SinkKind::Webhook => match (&d.webhook_url, &s.outbound_secret) {
                (Some(url), Some(secret)) => Arc::new(sinks::webhook::Webhook::new(
                    client.clone(),
                    url.clone(),
                    decode_whsec("HANDOFF_OUTBOUND_SECRET", secret)?,
                )),
                _ => continue,
            },
        };
        out.insert(kind, sink);
    }
    Ok(out)
}
