//! Slack-compatible incoming webhooks for `notify`: `{"text": …}` posted
//! to the webhook's URL (from `HANDOFF_SLACK_WEBHOOK_URL`: the URL is the
//! secret). A notify to a channel adds `"channel"`; to a person, the same
//! sink addresses them: `"channel": "@id"` and a mention at the start of
//! the text (Slack user id from the mapping; Mattermost and other
//! Slack-compatible servers honour the channel override, Slack itself
//! posts to the webhook's channel and the mention pings the person).
//!
//! Incoming webhooks have no idempotency key: after an ambiguous failure a
//! message may arrive twice (at-least-once); CRM writes are the ones that
//! must not double, and they check first.

use std::sync::Arc;

use serde_json::json;

use super::{check, transport, BoxFuture, Delivered, Delivery, SendError, Sink};
use crate::eval::PlannedAction;
use crate::runtime::delivery::UserIds;
use crate::runtime::secret::Secret;

/// The Slack sink.
pub struct Slack {
    client: reqwest::Client,
    url: Secret,
    users: Arc<dyn UserIds>,
}

/// Text for Slack's mrkdwn: `&`, `<` and `>` are control characters there.
pub fn escape_mrkdwn(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Slack {
    /// A sink posting to the webhook `url`.
    pub fn new(client: reqwest::Client, url: Secret, users: Arc<dyn UserIds>) -> Slack {
        Slack { client, url, users }
    }

    /// The message for a notify: `channel` is the workflows' channel name
    /// (then `to` is its address), or absent for a notify to the person
    /// `to`.
    pub fn message(
        &self,
        channel: Option<&str>,
        to: Option<&str>,
        text: &str,
        brief_url: &str,
    ) -> serde_json::Value {
        let mut body = escape_mrkdwn(text);
        body.push_str(&format!("\n<{}|Open the brief>", escape_mrkdwn(brief_url)));
        let mut msg = json!({});
        match (channel, to) {
            // A channel notify: `channel` is its name in the workflows,
            // `to` its address (`#delivery`).
            (Some(name), to) => msg["channel"] = json!(to.unwrap_or(name)),
            (None, Some(person)) => match self.users.crm_user_id("slack", person) {
                Some(id) => {
                    msg["channel"] = json!(format!("@{id}"));
                    body = format!("<@{}> {body}", escape_mrkdwn(&id));
                }
                None => body = format!("For {}: {body}", escape_mrkdwn(person)),
            },
            (None, None) => {}
        }
        msg["text"] = json!(body);
        msg
    }
}

impl Sink for Slack {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn deliver<'a>(&'a self, d: &'a Delivery<'a>) -> BoxFuture<'a, Result<Delivered, SendError>> {
        Box::pin(async move {
            let PlannedAction::Notify {
                channel,
                to,
                message,
            } = d.plan
            else {
                return Err(SendError::Refused {
                    reason: format!("slack takes notify actions, not {}", d.action.kind.as_str()),
                });
            };
            let msg = self.message(channel.as_deref(), to.as_deref(), message, &d.brief_url);
            let res = self
                .client
                .post(self.url.expose())
                .json(&msg)
                .send()
                .await
                .map_err(|e| transport("slack", e))?;
            check("slack", res).await?;
            Ok(Delivered::default())
        })
    }
}
