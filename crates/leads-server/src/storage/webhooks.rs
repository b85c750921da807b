//! Webhooks: endpoints, the outbox of messages for them, and the log of delivery attempts.
//!
//! The outbox is written by the lead writes themselves, in their own transaction (each backend's
//! `webhooks::enqueue`, which other concerns call the same way), so a message exists exactly
//! when the change it reports does. The delivery worker (`crate::webhooks`) leases due
//! messages, sends them, and records each attempt here.

use super::{LeadRow, StoreError, StoreResult};
use crate::domain::webhooks::{EventList, WebhookUrl};
use crate::domain::{CompanyId, DeliveryId, WebhookId};
use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::Notify;

/// Why the server disabled an endpoint: every delivery failed for [`FAILING_DISABLES_AFTER_MS`]
/// (Whop's reason).
pub const DISABLED_DELIVERY_FAILURES: &str = "delivery_failures";
/// Why the server disabled an endpoint: it answered 410 Gone. **Extension**: Whop names only
/// `delivery_failures`.
pub const DISABLED_ENDPOINT_GONE: &str = "endpoint_gone";
/// An endpoint whose deliveries have all failed for this long (3 days) is disabled.
pub const FAILING_DISABLES_AFTER_MS: i64 = 3 * 24 * 3600 * 1000;
/// Delivery attempts are kept this long (30 days), then forgotten.
pub const DELIVERY_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;

/// An event's `data` as JSON text, as endpoints whose creator could read emails see it and as
/// the others do. Events without emails in them have one text for both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventData {
    pub with_email: String,
    pub without_email: String,
}

impl EventData {
    /// The same data for every endpoint.
    pub fn same(text: String) -> Self {
        Self {
            with_email: text.clone(),
            without_email: text,
        }
    }

    /// A lead as `GET /leads/{id}` answers it; with `previous`, also `previous_attributes`,
    /// the old values of the fields that changed (`lead.updated`).
    pub fn lead(
        row: &LeadRow,
        previous: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> StoreResult<Self> {
        let text = |show_email: bool| -> StoreResult<String> {
            let lead = row.to_lead(show_email).map_err(StoreError::Internal)?;
            let json = match previous {
                None => serde_json::to_string(&lead),
                Some(previous) => {
                    #[derive(serde::Serialize)]
                    struct Updated<'a> {
                        #[serde(flatten)]
                        lead: &'a leads_types::Lead,
                        previous_attributes: &'a serde_json::Map<String, serde_json::Value>,
                    }
                    serde_json::to_string(&Updated {
                        lead: &lead,
                        previous_attributes: previous,
                    })
                }
            };
            json.map_err(|e| StoreError::Internal(e.to_string()))
        };
        Ok(Self {
            with_email: text(true)?,
            without_email: text(false)?,
        })
    }

    /// `{"id": ...}`, the data of `lead.deleted`.
    pub fn deleted(id: &str) -> Self {
        Self::same(serde_json::json!({ "id": id }).to_string())
    }
}

/// The old values of the fields a change made different, as `lead.updated` shows them.
pub fn previous_attributes(
    before: &LeadRow,
    after: &LeadRow,
) -> serde_json::Map<String, serde_json::Value> {
    let mut previous = serde_json::Map::new();
    if before.referrer != after.referrer {
        previous.insert("referrer".into(), before.referrer.clone().into());
    }
    if before.metadata != after.metadata {
        let old = before
            .metadata
            .as_deref()
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or(serde_json::Value::Null);
        previous.insert("metadata".into(), old);
    }
    if let Some(at) = leads_types::Timestamp::from_millis(before.updated_at) {
        previous.insert("updated_at".into(), at.to_string().into());
    }
    previous
}

/// A webhook endpoint as stored. `secret` signs its deliveries and is shown once, at creation.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookRow {
    pub id: WebhookId,
    pub company: CompanyId,
    pub url: WebhookUrl,
    pub secret: String,
    pub events: EventList,
    pub enabled: bool,
    pub api_version: String,
    pub child_resource_events: bool,
    /// Whether events show `user.email`: the creating credential held `member:email:read`.
    pub show_email: bool,
    pub consecutive_failures: i64,
    pub failing_since: Option<i64>,
    pub last_failure_at: Option<i64>,
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
    pub created_at: i64,
}

impl std::fmt::Debug for WebhookRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRow")
            .field("id", &self.id)
            .field("company", &self.company)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("events", &self.events)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// What `PATCH /webhooks/{id}` changes; `None` leaves a field as it is. Re-enabling an
/// endpoint clears its failure streak and why it was disabled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookChange {
    pub url: Option<WebhookUrl>,
    pub events: Option<EventList>,
    pub enabled: Option<bool>,
    pub api_version: Option<String>,
    pub child_resource_events: Option<bool>,
}

/// A place in a newest-first list: its time (milliseconds) and id. Pages continue strictly
/// after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPosition {
    pub at: i64,
    pub id: String,
}

/// A page of a newest-first list, and whether more follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPage<T> {
    pub rows: Vec<T>,
    pub has_next_page: bool,
}

/// One delivery attempt as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub id: DeliveryId,
    pub webhook: WebhookId,
    /// The `webhook-id` the attempt carried.
    pub message_id: String,
    pub event_type: String,
    /// The exact body sent.
    pub request_body: String,
    /// The receiver's status; 0 when it could not be reached or did not answer in time.
    pub response_code: i64,
    /// The receiver's body as JSON text (a non-JSON one as `{"error", "raw_body"}`).
    pub response_body: Option<String>,
    pub total_time_ms: i64,
    pub sent_at: i64,
    pub success: bool,
    /// The outbox row the attempt sent; `None` for a replay of one delivery.
    pub message_row: Option<String>,
    /// The delivery this attempt replayed.
    pub replayed_from: Option<String>,
}

/// A message a worker holds the lease of, with where and how to send it.
#[derive(Clone)]
pub struct LeasedMessage {
    /// The outbox row.
    pub row: String,
    /// The `webhook-id` and envelope `id`.
    pub message_id: String,
    pub webhook: WebhookId,
    pub company: CompanyId,
    pub event_type: String,
    /// The envelope's `data`, as JSON text.
    pub data: String,
    pub created_at: i64,
    /// Attempts made before this one.
    pub attempts: i64,
    pub url: WebhookUrl,
    pub secret: String,
    pub replayed_from: Option<String>,
}

/// What one attempt came to, for [`WebhookStore::record_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The outbox row and the lease it was sent under: a worker whose lease expired and was
    /// taken over records nothing about the message (the new holder will).
    pub row: String,
    pub lease: String,
    pub delivery: DeliveryRow,
    /// When to try again; `None` when the message is done (delivered, or given up).
    pub next_attempt_at: Option<i64>,
    /// Whether this was the message's first attempt (failures of first attempts count towards
    /// `consecutive_failures`).
    pub first_attempt: bool,
    /// The endpoint answered 410: disable it.
    pub gone: bool,
}

/// Which past messages `POST /webhooks/{id}/replay` sends again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayWindow {
    /// Exclusive bounds on attempts' `sent_at`, in milliseconds.
    pub sent_after: i64,
    pub sent_before: i64,
    /// Only these events; all when `None`.
    pub events: Option<EventList>,
    /// Only messages whose latest attempt in the window failed.
    pub failed_only: bool,
    /// Send each under a new `webhook-id`.
    pub regenerate_ids: bool,
}

/// The outbox at a glance, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages not yet delivered or given up.
    pub depth: u64,
    /// When the oldest of them was written (milliseconds).
    pub oldest_created_at: Option<i64>,
}

/// A company's webhook endpoints, their outbox and their delivery log.
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Records a new endpoint. An unknown company is
    /// [`StoreError::Invalid`](super::StoreError::Invalid) naming `resource_id`.
    async fn create_webhook(&self, webhook: WebhookRow) -> StoreResult<WebhookRow>;

    /// The endpoint `id`, whatever its company (callers check access).
    async fn find_webhook(&self, id: WebhookId) -> StoreResult<Option<WebhookRow>>;

    /// A company's endpoints, newest first, `limit` after `after`. With `has_failures`, only
    /// those whose failure streak is (or is not) running.
    async fn list_webhooks(
        &self,
        company: CompanyId,
        has_failures: Option<bool>,
        after: Option<KeyPosition>,
        limit: usize,
    ) -> StoreResult<KeyPage<WebhookRow>>;

    /// Applies `change`; `None` when there is no such endpoint.
    async fn update_webhook(
        &self,
        id: WebhookId,
        change: WebhookChange,
    ) -> StoreResult<Option<WebhookRow>>;

    /// Deletes the endpoint with its outbox and delivery log; false when absent.
    async fn delete_webhook(&self, id: WebhookId) -> StoreResult<bool>;

    /// An endpoint's delivery attempts, newest first.
    async fn list_deliveries(
        &self,
        webhook: WebhookId,
        after: Option<KeyPosition>,
        limit: usize,
    ) -> StoreResult<KeyPage<DeliveryRow>>;

    /// One attempt of the endpoint `webhook`.
    async fn find_delivery(
        &self,
        webhook: WebhookId,
        id: DeliveryId,
    ) -> StoreResult<Option<DeliveryRow>>;

    /// Logs an attempt made outside the outbox (a replay of one delivery).
    async fn log_delivery(&self, delivery: DeliveryRow) -> StoreResult<()>;

    /// Queues again, once each, the messages of `webhook` with attempts in `window`; answers
    /// how many.
    async fn replay_window(&self, webhook: WebhookId, window: ReplayWindow) -> StoreResult<u64>;

    /// Takes the lease of at most `limit` due messages of enabled endpoints, oldest due first,
    /// until `now + lease_ms`, under the token `lease`. Messages another worker holds are
    /// skipped; a lease that ran out can be taken.
    async fn lease_messages(
        &self,
        now: i64,
        lease_ms: i64,
        lease: &str,
        limit: usize,
    ) -> StoreResult<Vec<LeasedMessage>>;

    /// Whether any message is due at `now`: a cheap read before taking leases.
    async fn has_due_messages(&self, now: i64) -> StoreResult<bool>;

    /// Records attempts: logs each, schedules or finishes its message, and updates its
    /// endpoint's failure streak (disabling it after 410, or after 3 days of failures).
    async fn record_attempts(&self, attempts: Vec<AttemptRecord>, now: i64) -> StoreResult<()>;

    /// Forgets at most `limit` attempts sent before `before`, and finished messages written
    /// before it; answers how many attempts.
    async fn forget_deliveries(&self, before: i64, limit: u32) -> StoreResult<u64>;

    /// Deletes waiting messages whose endpoint is gone: written by a change that committed
    /// after the endpoint's deletion, where no foreign key keeps them out (PostgreSQL, which
    /// has none on the outbox, so that writing a message locks no endpoint row). They are never
    /// leased; this keeps them out of the queue's depth and age. Answers how many. Nothing to
    /// do by default.
    async fn forget_orphaned_messages(&self) -> StoreResult<u64> {
        Ok(0)
    }

    /// Reclaims the outbox's deleted messages now, where the database leaves that to a later
    /// background pass: on PostgreSQL, `VACUUM (SKIP_LOCKED) webhook_messages`. Delivered
    /// messages are deleted, and until a vacuum their entries stay at the head of the due index,
    /// where every lease and probe steps over them; autovacuum looks at a table at most once a
    /// minute. Answers whether the database did it (`false` where it cannot, such as an engine
    /// without `VACUUM`, after which the worker stops asking). Nothing to do by default.
    async fn tidy_outbox(&self) -> StoreResult<bool> {
        Ok(false)
    }

    /// How many messages wait, and the oldest one's age.
    async fn queue_stats(&self) -> StoreResult<QueueStats>;

    /// Notified whenever this process commits new outbox messages, so the worker need not
    /// wait for its next poll.
    fn outbox_wakeup(&self) -> Arc<Notify>;
}
