//! `[delivery]` in handoff.toml: which sinks each kind of action goes to,
//! how often a delivery is tried, and where the sinks are.
//!
//! Only places and numbers live here; tokens and the Slack URL (which
//! carries its own secret) come from the environment with the other
//! secrets ([`Secrets`]). [`DeliverySettings::validate`] checks that every
//! sink a route names has what it needs.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::runtime::config::{ConfigError, Secrets};
use crate::runtime::store::ActionKind;

/// Where an action can go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SinkKind {
    /// A HubSpot task on the deal, or a deal property.
    Hubspot,
    /// A Pipedrive activity on the deal, or a deal field.
    Pipedrive,
    /// A Slack-compatible incoming webhook.
    Slack,
    /// The outbound webhook (Standard Webhooks signed JSON).
    Webhook,
}

impl SinkKind {
    /// The name in handoff.toml, metrics and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Hubspot => "hubspot",
            SinkKind::Pipedrive => "pipedrive",
            SinkKind::Slack => "slack",
            SinkKind::Webhook => "webhook",
        }
    }

    fn parse(s: &str) -> Option<SinkKind> {
        Some(match s {
            "hubspot" => SinkKind::Hubspot,
            "pipedrive" => SinkKind::Pipedrive,
            "slack" => SinkKind::Slack,
            "webhook" => SinkKind::Webhook,
            _ => return None,
        })
    }

    /// The sinks that can take an action of `kind`. Email drafts go to the
    /// outbound webhook at most: they are never sent as email.
    pub fn allowed_for(kind: ActionKind) -> &'static [SinkKind] {
        match kind {
            ActionKind::Task | ActionKind::Set => {
                &[SinkKind::Hubspot, SinkKind::Pipedrive, SinkKind::Webhook]
            }
            ActionKind::Notify => &[SinkKind::Slack, SinkKind::Webhook],
            ActionKind::EmailDraft | ActionKind::Assign => &[SinkKind::Webhook],
        }
    }
}

/// The `[delivery]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliverySettings {
    /// The sinks of each kind of action; a kind not listed goes nowhere
    /// (it stays visible in the API, delivered to no sink).
    pub routes: BTreeMap<ActionKind, Vec<SinkKind>>,
    /// Tries before an action is dead-lettered.
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles after each one.
    pub backoff: Duration,
    /// The longest wait between tries (also caps `Retry-After`).
    pub backoff_max: Duration,
    /// How long one call to a sink may take.
    pub timeout: Duration,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// How often the outbox is looked at when it is idle.
    pub poll: Duration,
    /// HubSpot's API (tests point it at a local server).
    pub hubspot_api_url: String,
    /// Pipedrive's API: `https://api.pipedrive.com` or the company domain.
    pub pipedrive_api_url: String,
    /// The `type` of the Pipedrive activities created for tasks.
    pub pipedrive_activity_type: String,
    /// Where the outbound webhook posts.
    pub webhook_url: Option<String>,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            routes: BTreeMap::new(),
            max_attempts: 10,
            backoff: Duration::from_secs(10),
            backoff_max: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
            concurrency: 4,
            poll: Duration::from_secs(1),
            hubspot_api_url: "https://api.hubapi.com".into(),
            pipedrive_api_url: "https://api.pipedrive.com".into(),
            pipedrive_activity_type: "task".into(),
            webhook_url: None,
        }
    }
}

/// One sink or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    task: Option<OneOrMany>,
    notify: Option<OneOrMany>,
    set: Option<OneOrMany>,
    email_draft: Option<OneOrMany>,
    assign: Option<OneOrMany>,
    max_attempts: Option<u32>,
    backoff: Option<String>,
    backoff_max: Option<String>,
    timeout: Option<String>,
    concurrency: Option<usize>,
    poll: Option<String>,
    hubspot_api_url: Option<String>,
    pipedrive_api_url: Option<String>,
    pipedrive_activity_type: Option<String>,
    webhook_url: Option<String>,
}

fn bad(path: &str, key: &str, problem: String, help: &str) -> ConfigError {
    ConfigError::BadValue {
        origin: format!("`delivery.{key}` in `{path}`"),
        problem,
        help: help.to_string(),
    }
}

/// The longest any `[delivery]` duration may be: past it a wait added to
/// now can leave the calendar's range, and no retry schedule needs more.
pub const LONGEST_SETTING: Duration = Duration::from_secs(30 * 24 * 3600);

fn duration(path: &str, key: &str, v: &str) -> Result<Duration, ConfigError> {
    let parsed: Result<jiff::SignedDuration, _> = v.trim().parse();
    match parsed.ok().and_then(|d| Duration::try_from(d).ok()) {
        Some(d) if d > LONGEST_SETTING => Err(bad(
            path,
            key,
            format!("`{v}` is longer than 30 days"),
            "give at most \"720h\" (30 days); a retry a month away is as good as none",
        )),
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(bad(
            path,
            key,
            format!("`{v}` is not a positive duration"),
            "write a duration such as \"250ms\", \"10s\" or \"1h\"",
        )),
    }
}

fn url(path: &str, key: &str, v: &str) -> Result<String, ConfigError> {
    let v = v.trim().trim_end_matches('/');
    if (v.starts_with("http://") || v.starts_with("https://")) && !v.contains(char::is_whitespace) {
        Ok(v.to_string())
    } else {
        Err(bad(
            path,
            key,
            format!("`{v}` is not an http or https URL"),
            "write the full address, e.g. https://hooks.example.com/handoff",
        ))
    }
}

impl DeliverySettings {
    /// True when some kind of action goes somewhere: only then does
    /// `serve` start the worker.
    pub fn enabled(&self) -> bool {
        self.routes.values().any(|s| !s.is_empty())
    }

    /// The sinks any route names.
    pub fn sinks(&self) -> Vec<SinkKind> {
        let mut all: Vec<SinkKind> = self.routes.values().flatten().copied().collect();
        all.sort();
        all.dedup();
        all
    }

    /// Reads the `[delivery]` table of the config file at `path`.
    pub fn from_file(table: toml::Table, path: &str) -> Result<DeliverySettings, ConfigError> {
        let file: File = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::ParseFile {
                path: path.to_string(),
                reason: format!("in [delivery]: {}", e.message()),
            })?;
        let mut s = DeliverySettings::default();
        let routes = [
            (ActionKind::Task, file.task),
            (ActionKind::Notify, file.notify),
            (ActionKind::Set, file.set),
            (ActionKind::EmailDraft, file.email_draft),
            (ActionKind::Assign, file.assign),
        ];
        for (kind, names) in routes {
            let Some(names) = names else { continue };
            let names = match names {
                OneOrMany::One(n) => vec![n],
                OneOrMany::Many(ns) => ns,
            };
            let mut sinks = Vec::new();
            for n in names {
                let allowed = SinkKind::allowed_for(kind);
                let list = allowed
                    .iter()
                    .map(|s| format!("\"{}\"", s.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ");
                match SinkKind::parse(n.trim()) {
                    Some(sink) if allowed.contains(&sink) => {
                        if !sinks.contains(&sink) {
                            sinks.push(sink);
                        }
                    }
                    Some(_) if kind == ActionKind::EmailDraft => {
                        return Err(bad(
                            path,
                            kind.as_str(),
                            format!("email drafts cannot go to `{n}`"),
                            "drafts wait for a person's review and are never sent; route them to \"webhook\" at most",
                        ))
                    }
                    _ => {
                        return Err(bad(
                            path,
                            kind.as_str(),
                            format!("`{n}` is not a sink for {} actions", kind.as_str()),
                            &format!("use one or more of {list}"),
                        ))
                    }
                }
            }
            s.routes.insert(kind, sinks);
        }
        if let Some(n) = file.max_attempts {
            if n == 0 {
                return Err(bad(
                    path,
                    "max_attempts",
                    "0 tries would dead-letter every action unsent".into(),
                    "give 1 or more, e.g. 10",
                ));
            }
            s.max_attempts = n;
        }
        if let Some(v) = &file.backoff {
            s.backoff = duration(path, "backoff", v)?;
        }
        if let Some(v) = &file.backoff_max {
            s.backoff_max = duration(path, "backoff_max", v)?;
        }
        if let Some(v) = &file.timeout {
            s.timeout = duration(path, "timeout", v)?;
        }
        if let Some(v) = &file.poll {
            s.poll = duration(path, "poll", v)?;
        }
        if let Some(n) = file.concurrency {
            s.concurrency = n.clamp(1, 64);
        }
        if let Some(v) = &file.hubspot_api_url {
            s.hubspot_api_url = url(path, "hubspot_api_url", v)?;
        }
        if let Some(v) = &file.pipedrive_api_url {
            s.pipedrive_api_url = url(path, "pipedrive_api_url", v)?;
        }
        if let Some(v) = file.pipedrive_activity_type {
            s.pipedrive_activity_type = v;
        }
        if let Some(v) = &file.webhook_url {
            s.webhook_url = Some(url(path, "webhook_url", v)?);
        }
        if s.backoff_max < s.backoff {
            s.backoff_max = s.backoff;
        }
        Ok(s)
    }

    /// Every sink a route names has its address and secret.
    pub fn validate(&self, secrets: &Secrets) -> Result<(), ConfigError> {
        let missing = |sink: SinkKind, var: &str, what: &str| ConfigError::BadValue {
            origin: "[delivery]".to_string(),
            problem: format!(
                "actions are routed to `{}` but {var} is not set",
                sink.as_str()
            ),
            help: format!(
                "set {var} (or {var}_FILE) to {what}, or remove \"{}\" from [delivery]",
                sink.as_str()
            ),
        };
        for sink in self.sinks() {
            match sink {
                SinkKind::Hubspot if secrets.hubspot_token.is_none() => {
                    return Err(missing(
                        sink,
                        "HANDOFF_HUBSPOT_TOKEN",
                        "the private app's access token (scopes crm.objects.deals.write and crm.objects.contacts.write)",
                    ))
                }
                SinkKind::Pipedrive if secrets.pipedrive_api_token.is_none() => {
                    return Err(missing(
                        sink,
                        "HANDOFF_PIPEDRIVE_API_TOKEN",
                        "the API token of the Pipedrive user handoff acts as",
                    ))
                }
                SinkKind::Slack if secrets.slack_webhook_url.is_none() => {
                    return Err(missing(
                        sink,
                        "HANDOFF_SLACK_WEBHOOK_URL",
                        "the incoming webhook's URL (https://hooks.slack.com/services/…)",
                    ))
                }
                SinkKind::Webhook => {
                    if self.webhook_url.is_none() {
                        return Err(ConfigError::BadValue {
                            origin: "[delivery]".to_string(),
                            problem: "actions are routed to `webhook` but `webhook_url` is not set"
                                .to_string(),
                            help: "add webhook_url = \"https://…\" under [delivery] in handoff.toml"
                                .to_string(),
                        });
                    }
                    match &secrets.outbound_secret {
                        None => {
                            return Err(missing(
                                sink,
                                "HANDOFF_OUTBOUND_SECRET",
                                "a `whsec_…` signing secret shared with the receiver",
                            ))
                        }
                        Some(s) => {
                            crate::runtime::config::decode_whsec("HANDOFF_OUTBOUND_SECRET", s)?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::secret::Secret;

    fn read(text: &str) -> Result<DeliverySettings, ConfigError> {
        DeliverySettings::from_file(toml::from_str(text).unwrap(), "handoff.toml")
    }

    #[test]
    fn routes_durations_and_urls_are_read() {
        let s = read(
            "task = [\"hubspot\", \"webhook\"]\nnotify = \"slack\"\nbackoff = \"250ms\"\n\
             backoff_max = \"2m\"\nmax_attempts = 3\nwebhook_url = \"https://h.example/x/\"\n",
        )
        .unwrap();
        assert_eq!(
            s.routes[&ActionKind::Task],
            [SinkKind::Hubspot, SinkKind::Webhook]
        );
        assert_eq!(s.routes[&ActionKind::Notify], [SinkKind::Slack]);
        assert_eq!(s.backoff, Duration::from_millis(250));
        assert_eq!(s.backoff_max, Duration::from_secs(120));
        assert_eq!(s.max_attempts, 3);
        assert_eq!(s.webhook_url.as_deref(), Some("https://h.example/x"));
        assert!(s.enabled());
        assert!(!DeliverySettings::default().enabled());
    }

    #[test]
    fn a_wrong_sink_or_value_names_the_key_and_the_fix() {
        let e = read("notify = \"hubspot\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`delivery.notify` in `handoff.toml`: `hubspot` is not a sink for notify actions"
        );
        let help = miette::Diagnostic::help(&e).unwrap().to_string();
        assert!(help.contains("\"slack\", \"webhook\""), "{help}");
        let e = read("email_draft = \"slack\"\n").unwrap_err();
        assert!(miette::Diagnostic::help(&e)
            .unwrap()
            .to_string()
            .contains("never sent"));
        let e = read("backoff = \"soon\"\n").unwrap_err();
        assert!(e.to_string().contains("not a positive duration"), "{e}");
        // A wait past the calendar's range would retry at once, in a loop.
        let e = read("backoff_max = \"100000000h\"\n").unwrap_err();
        assert!(e.to_string().contains("longer than 30 days"), "{e}");
        assert_eq!(
            read("backoff_max = \"720h\"\n").unwrap().backoff_max,
            LONGEST_SETTING
        );
        let e = read("retries = 3\n").unwrap_err();
        assert!(e.to_string().contains("retries"), "{e}");
    }

    #[test]
    fn a_routed_sink_needs_its_secret() {
        let s = read("task = \"hubspot\"\nnotify = [\"slack\", \"webhook\"]\nwebhook_url = \"https://h.example\"\n").unwrap();
        let mut secrets = Secrets::default();
        let e = s.validate(&secrets).unwrap_err();
        assert!(e.to_string().contains("HANDOFF_HUBSPOT_TOKEN"), "{e}");
        secrets.hubspot_token = Some(Secret::new("pat-1"));
        secrets.slack_webhook_url = Some(Secret::new("https://hooks.slack.example/T/B/x"));
        let e = s.validate(&secrets).unwrap_err();
        assert!(e.to_string().contains("HANDOFF_OUTBOUND_SECRET"), "{e}");
        secrets.outbound_secret = Some(Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
        assert!(s.validate(&secrets).is_ok());
    }
}
