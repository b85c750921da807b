//! Webhooks for PostgreSQL: endpoints, the outbox ([`enqueue`], called inside other writes'
//! transactions), leases, attempts and the delivery log.
//!
//! Several instances share the outbox. A worker leases due messages with
//! `FOR UPDATE SKIP LOCKED`, stamping each with its token and the lease's end (`leased_until`,
//! a column no index has, so the update can stay on the row's page), all in one statement: no
//! two workers take one message at once, and a message whose holder died becomes due again when
//! its lease ends. An attempt's outcome is recorded only while its lease is still held
//! (`WHERE lease = $token`): a delivered message is deleted (its delivery keeps the body sent),
//! a failed one gets its next attempt's time. No advisory locks or LISTEN/NOTIFY, so distributed
//! engines that speak PostgreSQL run this too.

use super::sql::Sql;
use super::{execute, pg_error, query_opt, PgStore};
use crate::domain::webhooks::{EventList, EventType, WebhookUrl};
use crate::domain::{CompanyId, DeliveryId, Timestamp, WebhookId};
use crate::storage::webhooks::{
    AttemptRecord, DeliveryRow, EventData, KeyPage, KeyPosition, LeasedMessage, QueueStats,
    ReplayWindow, WebhookChange, WebhookRow, WebhookStore, DISABLED_DELIVERY_FAILURES,
    DISABLED_ENDPOINT_GONE, FAILING_DISABLES_AFTER_MS,
};
use crate::storage::{StoreError, StoreResult};
use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;

/// A new outbox row id, made by the database for each endpoint a statement writes to, as
/// [`new_message_id`](crate::domain::webhooks::new_message_id) makes one: the time in
/// milliseconds as 12 hexadecimal digits, then 14 random ones, so that ids sort by time and
/// append to the primary-key index. `row_id` is a column of the row being written, mixed into
/// the random part.
pub(super) fn new_message_id_sql(row_id: &str) -> String {
    format!(
        "'msg_' || lpad(to_hex(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
         || substr(md5(random()::text || clock_timestamp()::text || {row_id}), 1, 14)"
    )
}

/// Whether any enabled endpoint of `company` subscribes to `event`: one indexed lookup.
pub(crate) async fn subscribed(
    client: &impl Sql,
    company: &CompanyId,
    event: EventType,
) -> StoreResult<bool> {
    let statement = client
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM webhooks
             WHERE company_id = $1 AND enabled AND strpos(events, $2) > 0)",
        )
        .await
        .map_err(pg_error)?;
    client
        .query_one(&statement, &[&company.as_str(), &event.stored_pattern()])
        .await
        .map_err(pg_error)?
        .try_get(0)
        .map_err(pg_error)
}

/// Writes one outbox message per enabled endpoint of `company` subscribed to `event`, in the
/// caller's transaction, and answers whether it wrote any. When there is none, this is one
/// indexed lookup and `data` is never made.
///
/// Other concerns call this inside their own transaction to fire their events (exports:
/// `export.completed`, `export.failed`).
pub(crate) async fn enqueue(
    client: &impl Sql,
    company: &CompanyId,
    event: EventType,
    now: i64,
    data: impl FnOnce() -> StoreResult<EventData>,
) -> StoreResult<bool> {
    if !subscribed(client, company, event).await? {
        return Ok(false);
    }
    let data = data()?;
    let statement = client
        .prepare_cached(&format!(
            "INSERT INTO webhook_messages
                 (id, webhook_id, company_id, event_type, data, created_at, next_attempt_at)
             SELECT {message_id}, w.id, w.company_id, $3,
                    CASE WHEN w.show_email THEN $4 ELSE $5 END, $6, $6
             FROM webhooks w WHERE w.company_id = $1 AND w.enabled AND strpos(w.events, $2) > 0",
            message_id = new_message_id_sql("w.id")
        ))
        .await
        .map_err(pg_error)?;
    client
        .execute(
            &statement,
            &[
                &company.as_str(),
                &event.stored_pattern(),
                &event.name(),
                &data.with_email,
                &data.without_email,
                &now,
            ],
        )
        .await
        .map(|n| n > 0)
        .map_err(pg_error)
}

const WEBHOOK_COLUMNS: &str = "id, company_id, url, secret, events, enabled, api_version,
    child_resource_events, show_email, consecutive_failures, failing_since, last_failure_at,
    disabled_at, disabled_reason, created_at";

fn webhook_row(row: &Row) -> StoreResult<WebhookRow> {
    let get = || -> Result<WebhookRow, tokio_postgres::Error> {
        Ok(WebhookRow {
            id: WebhookId::from_trusted(row.try_get(0)?),
            company: CompanyId::from_trusted(row.try_get(1)?),
            url: WebhookUrl::from_trusted(row.try_get(2)?),
            secret: row.try_get(3)?,
            events: EventList::from_stored(row.try_get(4)?),
            enabled: row.try_get(5)?,
            api_version: row.try_get(6)?,
            child_resource_events: row.try_get(7)?,
            show_email: row.try_get(8)?,
            consecutive_failures: row.try_get(9)?,
            failing_since: row.try_get(10)?,
            last_failure_at: row.try_get(11)?,
            disabled_at: row.try_get(12)?,
            disabled_reason: row.try_get(13)?,
            created_at: row.try_get(14)?,
        })
    };
    get().map_err(pg_error)
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, message_id, event_type, request_body,
    response_code, response_body, total_time_ms, sent_at, success, message_row, replayed_from";

fn delivery_row(row: &Row) -> StoreResult<DeliveryRow> {
    let get = || -> Result<DeliveryRow, tokio_postgres::Error> {
        Ok(DeliveryRow {
            id: DeliveryId::from_trusted(row.try_get(0)?),
            webhook: WebhookId::from_trusted(row.try_get(1)?),
            message_id: row.try_get(2)?,
            event_type: row.try_get(3)?,
            request_body: row.try_get(4)?,
            response_code: row.try_get(5)?,
            response_body: row.try_get(6)?,
            total_time_ms: row.try_get(7)?,
            sent_at: row.try_get(8)?,
            success: row.try_get(9)?,
            message_row: row.try_get(10)?,
            replayed_from: row.try_get(11)?,
        })
    };
    get().map_err(pg_error)
}

async fn insert_delivery(client: &impl Sql, d: &DeliveryRow) -> StoreResult<()> {
    let statement = client
        .prepare_cached(&format!(
            "INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .await
        .map_err(pg_error)?;
    client
        .execute(
            &statement,
            &[
                &d.id.as_str(),
                &d.webhook.as_str(),
                &d.message_id,
                &d.event_type,
                &d.request_body,
                &d.response_code,
                &d.response_body,
                &d.total_time_ms,
                &d.sent_at,
                &d.success,
                &d.message_row,
                &d.replayed_from,
            ],
        )
        .await
        .map(|_| ())
        .map_err(pg_error)
}

async fn find_webhook(client: &impl Sql, id: &WebhookId) -> StoreResult<Option<WebhookRow>> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1"
        ))
        .await
        .map_err(pg_error)?;
    client
        .query_opt(&statement, &[&id.as_str()])
        .await
        .map_err(pg_error)?
        .as_ref()
        .map(webhook_row)
        .transpose()
}

/// Takes a page of `limit` rows (asking for one more to learn whether more follow).
fn page<T>(
    rows: Vec<Row>,
    limit: usize,
    read: fn(&Row) -> StoreResult<T>,
) -> StoreResult<KeyPage<T>> {
    let has_next_page = rows.len() > limit;
    let rows = rows
        .iter()
        .take(limit)
        .map(read)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(KeyPage {
        rows,
        has_next_page,
    })
}

/// Whether any message is due at `$1` (milliseconds since the epoch): a row when one is.
///
/// Read in the due index's order, as the lease reads. Written as `EXISTS (...)` (whose `ORDER
/// BY` PostgreSQL drops), the prepared statement's generic plan scanned the whole table, which a
/// busy outbox fills with deleted rows between vacuums: 6.9 ms a probe, more database time than
/// all the creates in leads-bench's webhook scenario.
pub const DUE_PROBE: &str = "SELECT 1 FROM webhook_messages
     WHERE next_attempt_at <= $1 AND (leased_until IS NULL OR leased_until <= $1)
     ORDER BY next_attempt_at LIMIT 1";

/// Records successful attempts in one statement: each one's delivery, its message deleted where
/// its lease still holds (the delivery keeps what was sent), and the failure streak of those
/// messages' endpoints ended.
async fn record_successes(client: &impl Sql, attempts: &[AttemptRecord]) -> StoreResult<()> {
    let statement = client
        .prepare_cached(&format!(
            "WITH held AS (
                 DELETE FROM webhook_messages m
                 USING unnest($13::text[], $14::text[]) AS a(row_id, lease)
                 WHERE m.id = a.row_id AND m.lease = a.lease
                 RETURNING m.webhook_id),
             ended AS (
                 UPDATE webhooks SET consecutive_failures = 0, failing_since = NULL
                 WHERE id IN (SELECT webhook_id FROM held)
                   AND (consecutive_failures <> 0 OR failing_since IS NOT NULL))
             INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS})
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::bigint[], $7::text[], $8::bigint[], $9::bigint[],
                                  $10::boolean[], $11::text[], $12::text[])"
        ))
        .await
        .map_err(pg_error)?;
    // Each column as an array borrowed from the attempts (request bodies are kilobytes each).
    let text = |f: fn(&AttemptRecord) -> &str| -> Vec<&str> { attempts.iter().map(f).collect() };
    let maybe = |f: fn(&AttemptRecord) -> Option<&str>| -> Vec<Option<&str>> {
        attempts.iter().map(f).collect()
    };
    let number = |f: fn(&AttemptRecord) -> i64| -> Vec<i64> { attempts.iter().map(f).collect() };
    let ids = text(|a| a.delivery.id.as_str());
    let webhooks = text(|a| a.delivery.webhook.as_str());
    let message_ids = text(|a| &a.delivery.message_id);
    let event_types = text(|a| &a.delivery.event_type);
    let bodies = text(|a| &a.delivery.request_body);
    let codes = number(|a| a.delivery.response_code);
    let answers = maybe(|a| a.delivery.response_body.as_deref());
    let times = number(|a| a.delivery.total_time_ms);
    let sent = number(|a| a.delivery.sent_at);
    let success: Vec<bool> = attempts.iter().map(|a| a.delivery.success).collect();
    let message_rows = maybe(|a| a.delivery.message_row.as_deref());
    let replayed = maybe(|a| a.delivery.replayed_from.as_deref());
    let rows = text(|a| &a.row);
    let leases = text(|a| &a.lease);
    client
        .execute(
            &statement,
            &[
                &ids,
                &webhooks,
                &message_ids,
                &event_types,
                &bodies,
                &codes,
                &answers,
                &times,
                &sent,
                &success,
                &message_rows,
                &replayed,
                &rows,
                &leases,
            ],
        )
        .await
        .map(|_| ())
        .map_err(pg_error)
}

async fn record_attempt(client: &impl Sql, a: &AttemptRecord, now: i64) -> StoreResult<()> {
    insert_delivery(client, &a.delivery).await?;
    let statement = client
        .prepare_cached(
            "UPDATE webhook_messages
             SET attempts = attempts + 1, next_attempt_at = $3, lease = NULL, leased_until = NULL
             WHERE id = $1 AND lease = $2",
        )
        .await
        .map_err(pg_error)?;
    let held = client
        .execute(&statement, &[&a.row, &a.lease, &a.next_attempt_at])
        .await
        .map_err(pg_error)?;
    if held == 0 {
        // Another worker took the message over; it records the message's fate.
        return Ok(());
    }
    let webhook = a.delivery.webhook.as_str();
    if a.delivery.success {
        let statement = client
            .prepare_cached(
                "UPDATE webhooks SET consecutive_failures = 0, failing_since = NULL
                 WHERE id = $1 AND (consecutive_failures <> 0 OR failing_since IS NOT NULL)",
            )
            .await
            .map_err(pg_error)?;
        client
            .execute(&statement, &[&webhook])
            .await
            .map_err(pg_error)?;
        return Ok(());
    }
    let reason = if a.gone {
        DISABLED_ENDPOINT_GONE
    } else {
        DISABLED_DELIVERY_FAILURES
    };
    // One statement: the failure streak, and disabling after 410 or 3 days of failures.
    let statement = client
        .prepare_cached(
            "UPDATE webhooks SET
                 consecutive_failures = consecutive_failures + $2,
                 failing_since = COALESCE(failing_since, $3),
                 last_failure_at = CASE WHEN $4 THEN $3 ELSE last_failure_at END,
                 enabled = enabled AND NOT ($5 OR COALESCE(failing_since, $3) <= $3 - $7),
                 disabled_at = CASE WHEN enabled AND ($5 OR COALESCE(failing_since, $3) <= $3 - $7)
                                    THEN $3 ELSE disabled_at END,
                 disabled_reason = CASE WHEN enabled AND ($5 OR COALESCE(failing_since, $3) <= $3 - $7)
                                    THEN $6 ELSE disabled_reason END
             WHERE id = $1
             RETURNING enabled",
        )
        .await
        .map_err(pg_error)?;
    let first = i64::from(a.first_attempt);
    let given_up = a.next_attempt_at.is_none();
    let row = client
        .query_opt(
            &statement,
            &[
                &webhook,
                &first,
                &now,
                &given_up,
                &a.gone,
                &reason,
                &FAILING_DISABLES_AFTER_MS,
            ],
        )
        .await
        .map_err(pg_error)?;
    let enabled: bool = match row {
        Some(row) => row.try_get(0).map_err(pg_error)?,
        None => true,
    };
    if !enabled {
        // A disabled endpoint is sent nothing more, including what was still queued for it.
        let statement = client
            .prepare_cached(
                "UPDATE webhook_messages SET next_attempt_at = NULL, lease = NULL, leased_until = NULL
                 WHERE webhook_id = $1 AND next_attempt_at IS NOT NULL",
            )
            .await
            .map_err(pg_error)?;
        client
            .execute(&statement, &[&webhook])
            .await
            .map_err(pg_error)?;
    }
    Ok(())
}

#[async_trait]
impl WebhookStore for PgStore {
    async fn create_webhook(&self, w: WebhookRow) -> StoreResult<WebhookRow> {
        let client = self.client().await?;
        let written = execute(
            &client,
            &format!(
                "INSERT INTO webhooks ({WEBHOOK_COLUMNS})
                 SELECT $1, c.id, $3, $4, $5, $6, $7, $8, $9, 0, NULL, NULL, NULL, NULL, $10
                 FROM companies c WHERE c.id = $2"
            ),
            &[
                &w.id.as_str(),
                &w.company.as_str(),
                &w.url.as_str(),
                &w.secret,
                &w.events.stored(),
                &w.enabled,
                &w.api_version,
                &w.child_resource_events,
                &w.show_email,
                &w.created_at,
            ],
        )
        .await?;
        if written == 0 {
            return Err(StoreError::Invalid {
                param: "resource_id",
                reason: format!("no company {} exists", w.company),
            });
        }
        Ok(w)
    }

    async fn find_webhook(&self, id: WebhookId) -> StoreResult<Option<WebhookRow>> {
        find_webhook(&self.client().await?, &id).await
    }

    async fn list_webhooks(
        &self,
        company: CompanyId,
        has_failures: Option<bool>,
        after: Option<KeyPosition>,
        limit: usize,
    ) -> StoreResult<KeyPage<WebhookRow>> {
        let client = self.client().await?;
        let (at, id) = after.map_or((None, None), |p| (Some(p.at), Some(p.id)));
        let statement = client
            .prepare_cached(&format!(
                "SELECT {WEBHOOK_COLUMNS} FROM webhooks
                 WHERE company_id = $1
                   AND ($2::bool IS NULL OR (failing_since IS NOT NULL) = $2)
                   AND ($3::bigint IS NULL OR (created_at, id) < ($3, $4::text))
                 ORDER BY created_at DESC, id DESC LIMIT $5"
            ))
            .await
            .map_err(pg_error)?;
        let rows = client
            .query(
                &statement,
                &[
                    &company.as_str(),
                    &has_failures,
                    &at,
                    &id,
                    &(limit as i64 + 1),
                ],
            )
            .await
            .map_err(pg_error)?;
        page(rows, limit, webhook_row)
    }

    async fn update_webhook(
        &self,
        id: WebhookId,
        c: WebhookChange,
    ) -> StoreResult<Option<WebhookRow>> {
        let client = self.client().await?;
        let row = query_opt(
            &client,
            &format!(
                "UPDATE webhooks SET
                    url = COALESCE($2, url),
                    events = COALESCE($3, events),
                    api_version = COALESCE($4, api_version),
                    child_resource_events = COALESCE($5, child_resource_events),
                    consecutive_failures = CASE WHEN $6 AND NOT enabled THEN 0 ELSE consecutive_failures END,
                    failing_since = CASE WHEN $6 AND NOT enabled THEN NULL ELSE failing_since END,
                    disabled_at = CASE WHEN $6::bool IS NOT NULL THEN NULL ELSE disabled_at END,
                    disabled_reason = CASE WHEN $6::bool IS NOT NULL THEN NULL ELSE disabled_reason END,
                    enabled = COALESCE($6, enabled)
                 WHERE id = $1
                 RETURNING {WEBHOOK_COLUMNS}"
            ),
            &[
                &id.as_str(),
                &c.url.as_ref().map(WebhookUrl::as_str),
                &c.events.as_ref().map(EventList::stored),
                &c.api_version,
                &c.child_resource_events,
                &c.enabled,
            ],
        )
        .await?;
        row.as_ref().map(webhook_row).transpose()
    }

    async fn delete_webhook(&self, id: WebhookId) -> StoreResult<bool> {
        let id = &id;
        self.retrying(|mut client| async move {
            let tx = client.transaction().await.map_err(pg_error)?;
            for sql in [
                "DELETE FROM webhook_deliveries WHERE webhook_id = $1",
                "DELETE FROM webhook_messages WHERE webhook_id = $1",
            ] {
                tx.execute(sql, &[&id.as_str()]).await.map_err(pg_error)?;
            }
            let deleted = tx
                .execute("DELETE FROM webhooks WHERE id = $1", &[&id.as_str()])
                .await
                .map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn list_deliveries(
        &self,
        webhook: WebhookId,
        after: Option<KeyPosition>,
        limit: usize,
    ) -> StoreResult<KeyPage<DeliveryRow>> {
        let client = self.client().await?;
        let (at, id) = after.map_or((None, None), |p| (Some(p.at), Some(p.id)));
        let statement = client
            .prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
                 WHERE webhook_id = $1 AND ($2::bigint IS NULL OR (sent_at, id) < ($2, $3::text))
                 ORDER BY sent_at DESC, id DESC LIMIT $4"
            ))
            .await
            .map_err(pg_error)?;
        let rows = client
            .query(
                &statement,
                &[&webhook.as_str(), &at, &id, &(limit as i64 + 1)],
            )
            .await
            .map_err(pg_error)?;
        page(rows, limit, delivery_row)
    }

    async fn find_delivery(
        &self,
        webhook: WebhookId,
        id: DeliveryId,
    ) -> StoreResult<Option<DeliveryRow>> {
        let client = self.client().await?;
        let row = query_opt(
            &client,
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1 AND webhook_id = $2"
            ),
            &[&id.as_str(), &webhook.as_str()],
        )
        .await?;
        row.as_ref().map(delivery_row).transpose()
    }

    async fn log_delivery(&self, delivery: DeliveryRow) -> StoreResult<()> {
        insert_delivery(&self.client().await?, &delivery).await
    }

    async fn replay_window(&self, webhook: WebhookId, w: ReplayWindow) -> StoreResult<u64> {
        let now = Timestamp::now().as_millis();
        let client = self.client().await?;
        let queued = execute(
            &client,
            &format!(
                "INSERT INTO webhook_messages
                 (id, message_id, webhook_id, company_id, event_type, data, created_at,
                  next_attempt_at, replayed_from)
             SELECT {message_id}, CASE WHEN $6 THEN NULL ELSE d.message_id END,
                    d.webhook_id, w.company_id, d.event_type,
                    (d.request_body::json -> 'data')::text, $7, $7, d.id
             FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
             WHERE d.webhook_id = $1 AND d.sent_at > $2 AND d.sent_at < $3
               AND d.message_row IS NOT NULL
               AND d.id = (SELECT d2.id FROM webhook_deliveries d2
                           WHERE d2.webhook_id = d.webhook_id AND d2.message_id = d.message_id
                             AND d2.sent_at > $2 AND d2.sent_at < $3
                           ORDER BY d2.sent_at DESC, d2.id DESC LIMIT 1)
               AND (NOT $4 OR NOT d.success)
               AND ($5::text IS NULL OR strpos($5, ',' || d.event_type || ',') > 0)",
                message_id = new_message_id_sql("d.id")
            ),
            &[
                &webhook.as_str(),
                &w.sent_after,
                &w.sent_before,
                &w.failed_only,
                &w.events.as_ref().map(EventList::stored),
                &w.regenerate_ids,
                &now,
            ],
        )
        .await?;
        if queued > 0 {
            self.wakeup.notify_one();
        }
        Ok(queued)
    }

    async fn lease_messages(
        &self,
        now: i64,
        lease_ms: i64,
        lease: &str,
        limit: usize,
    ) -> StoreResult<Vec<LeasedMessage>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "WITH leased AS (
                     UPDATE webhook_messages SET leased_until = $2, lease = $3
                     WHERE id IN (
                         SELECT m.id FROM webhook_messages m JOIN webhooks w ON w.id = m.webhook_id
                         WHERE m.next_attempt_at <= $1
                           AND (m.leased_until IS NULL OR m.leased_until <= $1) AND w.enabled
                         ORDER BY m.next_attempt_at LIMIT $4
                         FOR UPDATE OF m SKIP LOCKED)
                       AND next_attempt_at <= $1 AND (leased_until IS NULL OR leased_until <= $1)
                     RETURNING id, COALESCE(message_id, id) AS message_id, webhook_id, company_id,
                               event_type, data, created_at, attempts, replayed_from)
                 SELECT l.id, l.message_id, l.webhook_id, l.company_id, l.event_type, l.data,
                        l.created_at, l.attempts, w.url, w.secret, l.replayed_from
                 FROM leased l JOIN webhooks w ON w.id = l.webhook_id",
            )
            .await
            .map_err(pg_error)?;
        let rows = client
            .query(
                &statement,
                &[&now, &(now + lease_ms), &lease, &(limit as i64)],
            )
            .await
            .map_err(pg_error)?;
        rows.iter()
            .map(|r| {
                let get = || -> Result<LeasedMessage, tokio_postgres::Error> {
                    Ok(LeasedMessage {
                        row: r.try_get(0)?,
                        message_id: r.try_get(1)?,
                        webhook: WebhookId::from_trusted(r.try_get(2)?),
                        company: CompanyId::from_trusted(r.try_get(3)?),
                        event_type: r.try_get(4)?,
                        data: r.try_get(5)?,
                        created_at: r.try_get(6)?,
                        attempts: r.try_get(7)?,
                        url: WebhookUrl::from_trusted(r.try_get(8)?),
                        secret: r.try_get(9)?,
                        replayed_from: r.try_get(10)?,
                    })
                };
                get().map_err(pg_error)
            })
            .collect()
    }

    async fn has_due_messages(&self, now: i64) -> StoreResult<bool> {
        let client = self.client().await?;
        let row = query_opt(&client, DUE_PROBE, &[&now]).await?;
        Ok(row.is_some())
    }

    async fn record_attempts(&self, attempts: Vec<AttemptRecord>, now: i64) -> StoreResult<()> {
        let attempts = &attempts;
        self.retrying(|mut client| async move {
            let tx = client.transaction().await.map_err(pg_error)?;
            // In order; each run of successes in one statement, as most attempts succeed.
            let mut rest = attempts.as_slice();
            while let Some(first) = rest.first() {
                if first.delivery.success {
                    let run = rest.iter().take_while(|a| a.delivery.success).count();
                    record_successes(&tx, &rest[..run]).await?;
                    rest = &rest[run..];
                } else {
                    record_attempt(&tx, first, now).await?;
                    rest = &rest[1..];
                }
            }
            tx.commit().await.map_err(pg_error)
        })
        .await
    }

    async fn forget_deliveries(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let client = self.client().await?;
        let forgotten = execute(
            &client,
            "DELETE FROM webhook_deliveries WHERE id IN (
                 SELECT id FROM webhook_deliveries WHERE sent_at < $1 ORDER BY sent_at LIMIT $2)",
            &[&before, &i64::from(limit)],
        )
        .await?;
        execute(
            &client,
            "DELETE FROM webhook_messages WHERE id IN (
                 SELECT id FROM webhook_messages
                 WHERE next_attempt_at IS NULL AND created_at < $1 LIMIT $2)",
            &[&before, &i64::from(limit)],
        )
        .await?;
        Ok(forgotten)
    }

    async fn forget_orphaned_messages(&self) -> StoreResult<u64> {
        let client = self.client().await?;
        execute(
            &client,
            // Only waiting messages: those the queue's depth and age count (finished ones
            // are forgotten with their deliveries after 30 days).
            "DELETE FROM webhook_messages m
             WHERE m.next_attempt_at IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.id = m.webhook_id)",
            &[],
        )
        .await
    }

    async fn tidy_outbox(&self) -> StoreResult<bool> {
        let client = self.client().await?;
        // Outside any transaction (VACUUM cannot run in one); SKIP_LOCKED leaves the table to
        // another instance already vacuuming it. An engine without VACUUM (CockroachDB) refuses
        // it: then there is nothing to do.
        match client
            .batch_execute("VACUUM (SKIP_LOCKED) webhook_messages")
            .await
        {
            Ok(()) => Ok(true),
            Err(error)
                if error.code().is_some_and(|code| {
                    [
                        SqlState::FEATURE_NOT_SUPPORTED,
                        SqlState::SYNTAX_ERROR,
                        SqlState::INSUFFICIENT_PRIVILEGE,
                    ]
                    .contains(code)
                }) =>
            {
                tracing::info!(%error, "the database cannot vacuum the webhook outbox; leaving it to the database");
                Ok(false)
            }
            Err(error) => Err(pg_error(error)),
        }
    }

    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        let client = self.client().await?;
        let row = query_opt(
            &client,
            "SELECT COUNT(*)::bigint, MIN(created_at) FROM webhook_messages
             WHERE next_attempt_at IS NOT NULL",
            &[],
        )
        .await?;
        let Some(row) = row else {
            return Ok(QueueStats::default());
        };
        Ok(QueueStats {
            depth: row.try_get::<_, i64>(0).map_err(pg_error)? as u64,
            oldest_created_at: row.try_get(1).map_err(pg_error)?,
        })
    }

    fn outbox_wakeup(&self) -> Arc<Notify> {
        self.wakeup.clone()
    }
}
