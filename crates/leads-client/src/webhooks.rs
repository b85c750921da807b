//! The webhooks resource (`/webhooks`), and [`verify`]: checking a delivery's signature.

use crate::client::{Client, Request};
use crate::error::Error;
use leads_types::webhooks::{
    CreateWebhook, DeletedWebhook, ReplayDelivery, ReplayQueued, ReplayWebhook, ReplayedDelivery,
    TestWebhook, TestedWebhook, UpdateWebhook, Webhook, WebhookDelivery, WebhookEvent,
};
use leads_types::Page;
use reqwest::header::HeaderMap;
use reqwest::Method;

/// The webhooks resource, from [`Client::webhooks`].
#[derive(Debug, Clone)]
pub struct Webhooks {
    client: Client,
}

impl Webhooks {
    pub(crate) fn new(client: Client) -> Self {
        Webhooks { client }
    }

    /// Creates an endpoint (`POST /webhooks`). The answer is the only one that carries
    /// `webhook_secret`: keep it to [`verify`] deliveries.
    pub async fn create(&self, params: &CreateWebhook) -> Result<Webhook, Error> {
        let url = self.client.url(&["webhooks"]);
        self.client
            .send(Request::new(Method::POST, url).json(params))
            .await
    }

    /// A page of a company's endpoints, newest first (`GET /webhooks`); pass the previous
    /// page's `end_cursor` as `after` for the next. `end_cursor` is `None` on the last page.
    pub async fn list(
        &self,
        company_id: &str,
        after: Option<&str>,
    ) -> Result<Page<Webhook>, Error> {
        let mut url = self.client.url(&["webhooks"]);
        url.query_pairs_mut()
            .append_pair("company_id", company_id)
            .append_pair("first", "100");
        if let Some(after) = after {
            url.query_pairs_mut().append_pair("after", after);
        }
        self.client.send(Request::new(Method::GET, url)).await
    }

    /// One endpoint (`GET /webhooks/{id}`).
    pub async fn retrieve(&self, id: &str) -> Result<Webhook, Error> {
        let url = self.client.url(&["webhooks", id]);
        self.client.send(Request::new(Method::GET, url)).await
    }

    /// Changes an endpoint (`PATCH /webhooks/{id}`); what `params` leaves `None` stays.
    pub async fn update(&self, id: &str, params: &UpdateWebhook) -> Result<Webhook, Error> {
        let url = self.client.url(&["webhooks", id]);
        self.client
            .send(Request::new(Method::PATCH, url).json(params))
            .await
    }

    /// Deletes an endpoint with its queue and delivery log (`DELETE /webhooks/{id}`).
    pub async fn delete(&self, id: &str) -> Result<DeletedWebhook, Error> {
        let url = self.client.url(&["webhooks", id]);
        self.client.send(Request::new(Method::DELETE, url)).await
    }

    /// A page of an endpoint's delivery attempts, newest first
    /// (`GET /webhooks/{id}/deliveries`).
    pub async fn deliveries(
        &self,
        id: &str,
        after: Option<&str>,
    ) -> Result<Page<WebhookDelivery>, Error> {
        let mut url = self.client.url(&["webhooks", id, "deliveries"]);
        url.query_pairs_mut().append_pair("first", "100");
        if let Some(after) = after {
            url.query_pairs_mut().append_pair("after", after);
        }
        self.client.send(Request::new(Method::GET, url)).await
    }

    /// Sends one past delivery again, now, and answers what the receiver said
    /// (`POST /webhooks/{id}/deliveries/{delivery_id}/replay`).
    pub async fn replay_delivery(
        &self,
        id: &str,
        delivery_id: &str,
        regenerate_id: bool,
    ) -> Result<ReplayedDelivery, Error> {
        let url = self
            .client
            .url(&["webhooks", id, "deliveries", delivery_id, "replay"]);
        let body = ReplayDelivery {
            regenerate_id: Some(regenerate_id),
        };
        self.client
            .send(Request::new(Method::POST, url).json(&body))
            .await
    }

    /// Queues again the messages of a window (`POST /webhooks/{id}/replay`).
    pub async fn replay(&self, id: &str, params: &ReplayWebhook) -> Result<ReplayQueued, Error> {
        let url = self.client.url(&["webhooks", id, "replay"]);
        self.client
            .send(Request::new(Method::POST, url).json(params))
            .await
    }

    /// Sends a sample `event` now and answers what the receiver said
    /// (`POST /webhooks/{id}/test`).
    pub async fn test(&self, id: &str, event: &str) -> Result<TestedWebhook, Error> {
        let url = self.client.url(&["webhooks", id, "test"]);
        let body = TestWebhook {
            event: Some(event.to_owned()),
        };
        self.client
            .send(Request::new(Method::POST, url).json(&body))
            .await
    }
}

/// Why [`verify`] refused a delivery.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A signature header is missing or malformed, the timestamp is more than five minutes
    /// off, or no signature matches the body.
    #[error("the webhook signature does not verify: {0}")]
    Signature(String),
    /// The signature is right but the body is not an event envelope.
    #[error("the webhook body is not an event: {0}")]
    Body(#[from] serde_json::Error),
}

/// Checks a delivery as Whop signs them (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
/// `webhook-signature`, HMAC-SHA256 over `id.timestamp.body`), keyed with the literal bytes of
/// the endpoint's `secret` as it was issued (`ws_...`, passed as it is), and answers the event.
///
/// `body` must be the raw bytes received: a re-serialized body does not verify.
///
/// ```
/// # let (body, headers, secret) = (b"{}".as_slice(), reqwest::header::HeaderMap::new(), "ws_x");
/// match leads_client::webhooks::verify(body, &headers, secret) {
///     Ok(event) => println!("{} {}", event.kind, event.data["id"]),
///     Err(refused) => eprintln!("{refused}"), // answer 400 and ignore it
/// }
/// ```
pub fn verify(body: &[u8], headers: &HeaderMap, secret: &str) -> Result<WebhookEvent, VerifyError> {
    standardwebhooks::Webhook::from_bytes(secret.as_bytes().to_vec())
        .and_then(|webhook| webhook.verify(body, headers))
        .map_err(|e| VerifyError::Signature(e.to_string()))?;
    Ok(serde_json::from_slice(body)?)
}
