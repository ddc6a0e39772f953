//! The places actions go: a [`Sink`] per CRM or channel, each one small
//! file (HubSpot, Pipedrive, Slack, the outbound webhook), all answering
//! the same question: did this action arrive, and if not, may it be tried
//! again?
//!
//! A sink never decides anything and never touches the store: the worker
//! hands it one [`Delivery`] and records what it answers. Errors are sorted
//! into [`SendError::Retry`] (the sink may take it later: 429, 5xx, a
//! timeout) and [`SendError::Refused`] (it never will as sent: a 400, a
//! bad token), and never carry a URL or a token (reqwest errors are
//! stripped of their URL: a Slack webhook's URL is a secret).

pub mod hubspot;
pub mod pipedrive;
pub mod slack;
pub mod webhook;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::eval::PlannedAction;
use crate::runtime::store::{ActionRow, HandoffRow};

/// A boxed future, so sinks can sit behind `dyn Sink`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One action on its way to one sink.
#[derive(Debug)]
pub struct Delivery<'a> {
    pub action: &'a ActionRow,
    /// The action as the engine planned it (the payload, decoded).
    pub plan: &'a PlannedAction,
    /// Its handoff (for the record: the CRM deal the task goes on).
    pub handoff: Option<&'a HandoffRow>,
    /// A delivery of this action was started before and may have reached
    /// the sink (a timeout, a crash): a CRM write looks for what it may
    /// have created before creating it again.
    pub retried: bool,
    /// `HANDOFF_PUBLIC_URL` + `/handoffs/{id}`: the brief.
    pub brief_url: String,
}

impl Delivery<'_> {
    /// The marker a CRM write carries, so it can be found again.
    pub fn marker(&self) -> String {
        format!("handoff-action:{}", self.action.idempotency_key)
    }

    /// The handoff's record id, or a refusal naming why there is none.
    pub fn record_id(&self) -> Result<&str, SendError> {
        self.handoff
            .map(|h| h.record_id.as_str())
            .ok_or_else(|| SendError::Refused {
                reason: format!(
                    "the handoff `{}` of this action is not in the database",
                    self.action.handoff_id
                ),
            })
    }
}

/// What a sink answers when the action arrived.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delivered {
    /// The sink's id for what it made (a CRM task id), if it gives one.
    pub remote_ref: Option<String>,
    /// True when the sink found it had taken the action before (after an
    /// ambiguous failure) and made nothing new.
    pub found_existing: bool,
}

/// Why an action did not arrive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The sink may take it later.
    #[error("{reason}")]
    Retry {
        reason: String,
        /// The sink's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The sink will not take it as it is: dead-letter it for a person.
    #[error("{reason}")]
    Refused { reason: String },
    /// The sink asked us to slow down (HTTP 429): try again after its
    /// `Retry-After`; the try does not count toward the attempts.
    #[error("{reason}")]
    Throttled {
        reason: String,
        retry_after: Option<Duration>,
    },
}

/// A place actions go.
pub trait Sink: Send + Sync {
    /// `hubspot`, `pipedrive`, `slack`, `webhook`.
    fn name(&self) -> &'static str;
    /// Sends one action.
    fn deliver<'a>(&'a self, d: &'a Delivery<'a>) -> BoxFuture<'a, Result<Delivered, SendError>>;
}

/// The HTTP client the sinks share: a timeout per call, no redirects (a
/// redirected POST could create twice), no proxies from the environment
/// in tests' way.
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("handoff/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Sorts a transport error: a timeout or a broken connection after the
/// request went out is ambiguous (the sink may have acted), and retried.
pub fn transport(sink: &str, e: reqwest::Error) -> SendError {
    let e = e.without_url();
    // reqwest's own words name only the kind ("error sending request");
    // the causes under it say what to fix (DNS, refused, TLS). They carry
    // no URL (the webhook URL of Slack is a secret), only the reasons.
    let mut causes = String::new();
    let mut next = std::error::Error::source(&e);
    while let Some(cause) = next {
        causes.push_str(": ");
        causes.push_str(&cause.to_string());
        next = cause.source();
    }
    let reason = if e.is_timeout() {
        format!(
            "{sink}: no answer within the timeout (it may have acted; the next try checks first)"
        )
    } else if e.is_connect() {
        format!("{sink}: cannot connect ({e}{causes})")
    } else {
        format!("{sink}: the request failed ({e}{causes})")
    };
    SendError::Retry {
        reason,
        retry_after: None,
    }
}

/// Sorts an answer: 2xx passes; 429 is a rate limit (retried after its
/// `Retry-After`, not counted as a failed try); 408, 425 and 5xx are
/// retried (with `Retry-After` when given); any other status is a refusal
/// carrying the start of the body (the CRM's own explanation).
pub async fn check(sink: &str, res: reqwest::Response) -> Result<reqwest::Response, SendError> {
    let status = res.status();
    if status.is_success() {
        return Ok(res);
    }
    let retry_after = res
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| super::backoff::retry_after(v, jiff::Timestamp::now()));
    let body = res.text().await.unwrap_or_default();
    let said = snippet(&body);
    let code = status.as_u16();
    if code == 429 {
        Err(SendError::Throttled {
            reason: format!("{sink}: HTTP 429 {said}").trim_end().to_string(),
            retry_after,
        })
    } else if code == 408 || code == 425 || status.is_server_error() {
        Err(SendError::Retry {
            reason: format!("{sink}: HTTP {code} {said}").trim_end().to_string(),
            retry_after,
        })
    } else {
        let hint = match code {
            401 => " (check the token)",
            403 => " (check the token's scopes)",
            _ => "",
        };
        Err(SendError::Refused {
            reason: format!("{sink}: HTTP {code}{hint} {said}")
                .trim_end()
                .to_string(),
        })
    }
}

/// The first 300 characters of a body, on one line.
fn snippet(body: &str) -> String {
    let one_line: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    one_line.trim().to_string()
}

/// Reads a JSON answer, or says which sink sent something else.
pub async fn json(sink: &str, res: reqwest::Response) -> Result<serde_json::Value, SendError> {
    res.json().await.map_err(|e| SendError::Retry {
        reason: format!(
            "{sink}: the answer is not the JSON expected ({})",
            e.without_url()
        ),
        retry_after: None,
    })
}

/// The id of what a 2xx answer says was made, read by `pick`. The 2xx
/// already says it was made: an answer that cannot be read loses only its
/// id (logged), since trying again would make a second one.
pub async fn made_id(
    sink: &str,
    res: reqwest::Response,
    pick: impl FnOnce(&serde_json::Value) -> Option<String>,
) -> Option<String> {
    match json(sink, res).await {
        Ok(made) => pick(&made),
        Err(e) => {
            tracing::warn!(sink, error = %e, "made, but its id could not be read from the answer");
            None
        }
    }
}

/// Text for HTML (task bodies and activity notes are HTML in both CRMs).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTML body of a task: checklist, assignee when the CRM does not know
/// them, the link to the brief, and the marker.
pub fn task_html(d: &Delivery<'_>, checklist: &[String], unassigned: Option<&str>) -> String {
    let mut html = String::new();
    if !checklist.is_empty() {
        html.push_str("<p><strong>Checklist</strong></p><ul>");
        for item in checklist {
            html.push_str("<li>");
            html.push_str(&escape_html(item));
            html.push_str("</li>");
        }
        html.push_str("</ul>");
    }
    if let Some(who) = unassigned {
        html.push_str("<p>For: ");
        html.push_str(&escape_html(who));
        html.push_str("</p>");
    }
    let url = escape_html(&d.brief_url);
    html.push_str(&format!("<p>Brief: <a href=\"{url}\">{url}</a></p>"));
    html.push_str(&format!("<p>{}</p>", escape_html(&d.marker())));
    html
}

/// A value as the CRMs take property values: text, numbers as written.
pub fn property_text(v: &crate::value::Value) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Null) | Err(_) => String::new(),
        Ok(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html(r#"<b>"Tom" & 'Jerry'</b>"#),
            "&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;"
        );
    }

    /// A connection refused says so (the operator's fix), and the URL,
    /// whose path is a secret for Slack, is nowhere in it.
    #[tokio::test]
    async fn a_transport_error_names_its_cause_and_not_the_url() {
        // A port just freed: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/services/T0/B0/s3cr3t-path");
        let e = reqwest::Client::new().post(&url).send().await.unwrap_err();
        let SendError::Retry { reason, .. } = transport("slack", e) else {
            panic!("a connection error is retried");
        };
        assert!(reason.to_lowercase().contains("refused"), "{reason}");
        assert!(
            !reason.contains("s3cr3t") && !reason.contains("/services"),
            "{reason}"
        );
    }

    #[test]
    fn a_snippet_is_one_bounded_line() {
        let long = "x\n".repeat(400);
        let s = snippet(&long);
        assert!(!s.contains('\n'));
        assert!(s.chars().count() <= 300);
    }
}
