//! Wire types of `/webhooks`, as Whop's SDKs (`whop-sdk` 2.6.0, `@whop/sdk` 0.0.42) read and
//! send them, and of the events delivered to endpoints.

use crate::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A webhook endpoint: where a company's events are POSTed, signed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    /// `hook_` and 13 characters.
    pub id: String,
    /// `v1`, `v2` or `v5`, as given; every version gets this server's one payload shape.
    pub api_version: String,
    /// Always `null`: payloads are not pinned to a dated version.
    pub api_version_date: Option<String>,
    pub child_resource_events: bool,
    /// Deliveries in a row whose first attempt failed; 0 after a success or re-enabling.
    pub consecutive_failures: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// When the server disabled the endpoint (`null` if it did not).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub disabled_at: Option<Timestamp>,
    /// `delivery_failures` (every delivery failed for 3 days) or `endpoint_gone` (it answered
    /// 410; an extension).
    pub disabled_reason: Option<String>,
    pub enabled: bool,
    /// The subscribed events.
    pub events: Vec<String>,
    /// When the current failure streak began; `null` while healthy.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub failing_since: Option<Timestamp>,
    /// When a delivery last failed for good (its retries spent).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_failure_at: Option<Timestamp>,
    /// The company the endpoint belongs to.
    pub resource_id: String,
    /// The subscribed events `POST /webhooks/{id}/test` can send.
    pub testable_events: Vec<String>,
    pub url: String,
    /// The signing secret (`ws_...`): in the create response only, `null` on later reads.
    pub webhook_secret: Option<String>,
}

/// Body of `POST /webhooks`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateWebhook {
    /// Where to POST events: an `http` or `https` URL.
    pub url: Option<String>,
    /// The events to send; every event this server sends when left out.
    pub events: Option<Vec<String>>,
    /// `true` when left out.
    pub enabled: Option<bool>,
    /// The company; the credential's own company when left out. Any id of 1 to 255
    /// characters, or a JSON integer, as the leads resource takes ids.
    #[serde(
        default,
        deserialize_with = "crate::id_input",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::webhook_resource_id))]
    pub resource_id: Option<String>,
    /// `v1` (default), `v2` or `v5`.
    pub api_version: Option<String>,
    /// Accepted and ignored: payloads are not pinned to a dated version.
    pub api_version_date: Option<String>,
    pub child_resource_events: Option<bool>,
}

/// Body of `PATCH /webhooks/{id}`: a field left out or `null` is left as it is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateWebhook {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    /// Re-enabling clears the failure streak and why the endpoint was disabled.
    pub enabled: Option<bool>,
    pub api_version: Option<String>,
    /// Accepted and ignored.
    pub api_version_date: Option<String>,
    pub child_resource_events: Option<bool>,
}

/// Answer of `DELETE /webhooks/{id}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedWebhook {
    /// Always `true`.
    pub deleted: bool,
    pub id: String,
}

/// One attempt to deliver a message.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// `whdel_...`; replay it with `POST /webhooks/{id}/deliveries/{delivery_id}/replay`.
    pub id: String,
    /// The event type, such as `lead.created`.
    pub event: Option<String>,
    /// The delivery this attempt replayed; `null` for an original.
    pub replayed_from: Option<String>,
    /// The body sent: the event envelope.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub request_body: Box<RawValue>,
    /// The company whose event it was.
    pub resource_id: String,
    /// The receiver's JSON answer; a non-JSON one as `{"error", "raw_body"}` (first 100 bytes).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub response_body: Option<Box<RawValue>>,
    /// The receiver's status; 0 when it could not be reached or did not answer in time.
    pub response_code: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub sent_at: Timestamp,
    /// Whether the receiver answered 2xx.
    pub success: bool,
    /// Seconds the attempt took.
    pub total_time: f64,
}

/// Body of `POST /webhooks/{id}/deliveries/{delivery_id}/replay`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplayDelivery {
    /// Send under a new `webhook-id` instead of the original one.
    pub regenerate_id: Option<bool>,
}

/// What the receiver answered a replay or a test.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayedDelivery {
    /// The receiver's status, 0 when it could not be reached.
    pub status: u16,
    /// The receiver's body as text.
    pub body: String,
    pub success: bool,
}

/// Body of `POST /webhooks/{id}/replay`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplayWebhook {
    /// Start of the window of attempts (RFC 3339, exclusive); clamped to the 30 days kept.
    pub sent_after: Option<String>,
    /// End of the window (exclusive); now when left out.
    pub sent_before: Option<String>,
    /// Only these events.
    pub events: Option<Vec<String>>,
    /// Only messages whose latest attempt in the window failed.
    pub failed_only: Option<bool>,
    /// Send each under a new `webhook-id`.
    pub regenerate_ids: Option<bool>,
}

/// Answer of `POST /webhooks/{id}/replay`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayQueued {
    pub queued: bool,
}

/// Body of `POST /webhooks/{id}/test`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TestWebhook {
    /// The event whose sample to send, such as `lead.created`.
    pub event: Option<String>,
}

/// Answer of `POST /webhooks/{id}/test`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestedWebhook {
    /// The receiver's status, 0 when it could not be reached.
    pub status: u16,
    /// The receiver's body: its JSON, or its text, or `null` when empty.
    pub body: serde_json::Value,
    pub success: bool,
}

/// A delivered event, as an endpoint receives it: Whop's envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// The message id (`msg_...`), the same as the `webhook-id` header and on every attempt.
    pub id: String,
    /// Always `v1`.
    pub api_version: String,
    /// When the event happened.
    pub timestamp: Timestamp,
    /// `lead.created`, `lead.updated`, `lead.converted`, `lead.deleted`, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub company_id: Option<String>,
    /// The lead (with `previous_attributes` for `lead.updated`), or `{"id"}` for `lead.deleted`.
    pub data: serde_json::Value,
}
