//! Webhook delivery: the HTTP client that signs and sends (and knows where it may not go), and
//! the background worker that drains the outbox.
//!
//! Every message is signed as Standard Webhooks specifies (<https://www.standardwebhooks.com>)
//! and as Whop signs: `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`, keyed
//! with the literal bytes of the endpoint's secret, `ws_` prefix included. Signing is the
//! `standardwebhooks` crate's.

pub mod target;
pub mod worker;

use crate::domain::webhooks::{RetrySchedule, WebhookUrl};
use crate::domain::Timestamp;
use serde::Serialize;
use serde_json::value::RawValue;
use std::time::{Duration, Instant};

pub use worker::Worker;

/// How webhooks are delivered: `serve --webhook-retry-schedule`, `--webhook-timeout`,
/// `--webhook-lease` and `--webhook-allow-private-targets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// When attempts are made; Standard Webhooks' schedule by default.
    pub retry_schedule: RetrySchedule,
    /// An attempt not answered within this (15 s by default) fails, with response code 0.
    pub timeout: Duration,
    /// How long a leased message is one worker's alone (2 minutes by default): longer than an
    /// attempt can take ([`Settings::timeout`]), and how long a message leased by an instance
    /// that died waits before another sends it.
    pub lease: Duration,
    /// Lets endpoints resolve to loopback, private, link-local, multicast and unique-local
    /// addresses: for internal receivers and tests. Off by default.
    pub allow_private_targets: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            retry_schedule: RetrySchedule::default(),
            timeout: Duration::from_secs(15),
            lease: Duration::from_secs(120),
            allow_private_targets: false,
        }
    }
}

/// Receivers' bodies are kept up to this many bytes.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// A non-JSON body is logged as its first this many bytes.
const RAW_BODY_BYTES: usize = 100;

/// The body of a message: Whop's envelope around the event's data.
pub fn envelope(
    message_id: &str,
    event_type: &str,
    company: &str,
    created_at: i64,
    data: &str,
) -> Result<String, String> {
    #[derive(Serialize)]
    struct Envelope<'a> {
        id: &'a str,
        api_version: &'static str,
        timestamp: String,
        #[serde(rename = "type")]
        kind: &'a str,
        company_id: &'a str,
        data: &'a RawValue,
    }
    let data: &RawValue =
        serde_json::from_str(data).map_err(|e| format!("stored event data is not JSON: {e}"))?;
    let timestamp = Timestamp::from_millis(created_at)
        .unwrap_or_else(Timestamp::now)
        .to_string();
    serde_json::to_string(&Envelope {
        id: message_id,
        api_version: "v1",
        timestamp,
        kind: event_type,
        company_id: company,
        data,
    })
    .map_err(|e| e.to_string())
}

/// What a receiver answered to one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status; 0 when the receiver could not be reached, was refused, or timed out.
    pub status: u16,
    /// The body as text (at most 64 KiB); empty when there was none.
    pub body: String,
    pub elapsed: Duration,
    /// What a 429, 502 or 504 asked for in `retry-after` (seconds or an HTTP date).
    pub retry_after: Option<Duration>,
    /// Why there was no answer, for the log (never the secret).
    pub error: Option<String>,
}

impl Answer {
    /// A 2xx. A 3xx is a failure, and never followed.
    pub fn success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as the delivery log keeps it (Whop's `response_body`, an object): a JSON
    /// object as it came, another body as `{"error", "raw_body"}` with its first 100 bytes,
    /// nothing as `None`.
    pub fn logged_body(&self) -> Option<String> {
        if self.body.trim().is_empty() {
            return None;
        }
        let is_object = self.body.trim_start().starts_with('{')
            && serde_json::from_str::<&RawValue>(&self.body).is_ok();
        if is_object {
            return Some(self.body.clone());
        }
        let mut end = RAW_BODY_BYTES.min(self.body.len());
        while !self.body.is_char_boundary(end) {
            end -= 1;
        }
        Some(
            serde_json::json!({"error": "the response was not a JSON object", "raw_body": &self.body[..end]})
                .to_string(),
        )
    }
}

/// Signs and sends messages.
pub struct Sender {
    client: reqwest::Client,
    settings: Settings,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Sender {
    /// A client that follows no redirect, gives up after `settings.timeout`, and (unless
    /// private targets are allowed) connects only to public addresses it has checked.
    pub fn new(settings: Settings) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .user_agent(concat!("leads-webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(std::sync::Arc::new(target::CheckedResolver {
                allow_private: settings.allow_private_targets,
            }))
            .build()
            .map_err(|e| format!("cannot make the webhook HTTP client: {e}"))?;
        Ok(Self { client, settings })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether an endpoint may be created with `url`: it resolves, and (unless private
    /// targets are allowed) to public addresses only. The error completes "Invalid parameter
    /// url: ...".
    pub async fn check_target(&self, url: &WebhookUrl) -> Result<(), String> {
        target::check(url, self.settings.allow_private_targets).await
    }

    /// Signs `body` as message `message_id` with `secret` and POSTs it to `url`.
    pub async fn send(
        &self,
        url: &WebhookUrl,
        message_id: &str,
        body: &str,
        secret: &str,
    ) -> Answer {
        let started = Instant::now();
        let failed = |error: String| Answer {
            status: 0,
            body: String::new(),
            elapsed: started.elapsed(),
            retry_after: None,
            error: Some(error),
        };
        // The resolver checks names; an address written in the URL is checked here.
        if let Err(why) = target::check_literal(url, self.settings.allow_private_targets) {
            return failed(why);
        }
        let now = Timestamp::now().as_millis() / 1000;
        let signature = match standardwebhooks::Webhook::from_bytes(secret.as_bytes().to_vec())
            .and_then(|signer| signer.sign(message_id, now, body.as_bytes()))
        {
            Ok(signature) => signature,
            Err(e) => return failed(format!("cannot sign: {e}")),
        };
        let request = self
            .client
            .post(url.as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(standardwebhooks::HEADER_WEBHOOK_ID, message_id)
            .header(standardwebhooks::HEADER_WEBHOOK_TIMESTAMP, now.to_string())
            .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
            .body(body.to_owned());
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return failed(describe(&e)),
        };
        let status = response.status().as_u16();
        let retry_after = matches!(status, 429 | 502 | 504)
            .then(|| retry_after(response.headers()))
            .flatten();
        let body = read_body(response).await;
        Answer {
            status,
            body,
            elapsed: started.elapsed(),
            retry_after,
            error: None,
        }
    }
}

/// At most [`MAX_RESPONSE_BYTES`] of a response's body, as text.
async fn read_body(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_RESPONSE_BYTES - bytes.len();
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() >= MAX_RESPONSE_BYTES {
            break;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `retry-after` as seconds or an HTTP date, capped at a day.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let wait = match text.trim().parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(text.trim()).ok()?;
            let millis = at.timestamp_millis() - Timestamp::now().as_millis();
            Duration::from_millis(millis.max(0) as u64)
        }
    };
    Some(wait.min(Duration::from_secs(24 * 3600)))
}

/// An error with its causes, without the URL (whose query may hold a token).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "the receiver did not answer in time".into();
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    match error.url() {
        Some(url) => text.replace(url.as_str(), "<url>"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_is_whops() {
        let body = envelope(
            "msg_1",
            "lead.created",
            "biz_1",
            1_700_000_000_123,
            r#"{"id":"lead_1"}"#,
        )
        .unwrap();
        assert_eq!(
            body,
            r#"{"id":"msg_1","api_version":"v1","timestamp":"2023-11-14T22:13:20.123Z","type":"lead.created","company_id":"biz_1","data":{"id":"lead_1"}}"#
        );
    }

    #[test]
    fn bodies_are_logged_as_json_or_as_their_first_bytes() {
        let answer = |body: &str| Answer {
            status: 200,
            body: body.into(),
            elapsed: Duration::ZERO,
            retry_after: None,
            error: None,
        };
        assert_eq!(answer("").logged_body(), None);
        let scalar: serde_json::Value =
            serde_json::from_str(&answer("42").logged_body().unwrap()).unwrap();
        assert_eq!(scalar["raw_body"], "42");
        assert_eq!(
            answer(r#"{"ok":true}"#).logged_body().unwrap(),
            r#"{"ok":true}"#
        );
        let raw: serde_json::Value =
            serde_json::from_str(&answer(&"x".repeat(500)).logged_body().unwrap()).unwrap();
        assert_eq!(raw["raw_body"].as_str().unwrap().len(), 100);
    }
}
