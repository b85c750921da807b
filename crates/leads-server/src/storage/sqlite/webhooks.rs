//! Webhooks for SQLite: endpoints, the outbox ([`enqueue`], called inside other writes'
//! transactions), leases, attempts and the delivery log.
//!
//! One instance owns an SQLite file, so leases here only guard against a worker that died
//! mid-attempt: its messages become due again when the lease runs out.

use super::{sql_error, SqliteStore};
use crate::domain::webhooks::{EventList, EventType, WebhookUrl};
use crate::domain::{CompanyId, DeliveryId, WebhookId};
use crate::storage::webhooks::{
    AttemptRecord, DeliveryRow, EventData, KeyPage, KeyPosition, LeasedMessage, QueueStats,
    ReplayWindow, WebhookChange, WebhookRow, WebhookStore, DISABLED_DELIVERY_FAILURES,
    DISABLED_ENDPOINT_GONE, FAILING_DISABLES_AFTER_MS,
};
use crate::storage::{StoreError, StoreResult};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::sync::Arc;
use tokio::sync::Notify;

/// Writes one outbox message per enabled endpoint of `company` subscribed to `event`, in the
/// caller's transaction, and answers whether it wrote any. When there is none, this is one
/// indexed lookup and `data` is never made.
///
/// Other concerns call this inside their own write to fire their events (exports:
/// `export.completed`, `export.failed`).
pub(crate) fn enqueue(
    conn: &Connection,
    company: &CompanyId,
    event: EventType,
    now: i64,
    data: impl FnOnce() -> StoreResult<EventData>,
) -> StoreResult<bool> {
    if !subscribed(conn, company, event)? {
        return Ok(false);
    }
    let pattern = event.stored_pattern();
    let data = data()?;
    conn.prepare_cached(
        "INSERT INTO webhook_messages
             (id, webhook_id, company_id, event_type, data, created_at, next_attempt_at)
         SELECT 'msg_' || printf('%012x', ?6) || lower(hex(randomblob(7))), id, company_id, ?3,
                CASE WHEN show_email THEN ?4 ELSE ?5 END, ?6, ?6
         FROM webhooks WHERE company_id = ?1 AND enabled AND instr(events, ?2) > 0",
    )
    .and_then(|mut st| {
        st.execute(params![
            company.as_str(),
            pattern,
            event.name(),
            data.with_email,
            data.without_email,
            now,
        ])
    })
    .map(|n| n > 0)
    .map_err(sql_error)
}

/// Whether any enabled endpoint of `company` subscribes to `event`: one indexed lookup.
pub(crate) fn subscribed(
    conn: &Connection,
    company: &CompanyId,
    event: EventType,
) -> StoreResult<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM webhooks
         WHERE company_id = ?1 AND enabled AND instr(events, ?2) > 0)",
    )
    .and_then(|mut st| {
        st.query_row(params![company.as_str(), event.stored_pattern()], |r| {
            r.get(0)
        })
    })
    .map_err(sql_error)
}

const WEBHOOK_COLUMNS: &str = "id, company_id, url, secret, events, enabled, api_version,
    child_resource_events, show_email, consecutive_failures, failing_since, last_failure_at,
    disabled_at, disabled_reason, created_at";

fn webhook_row(row: &Row) -> rusqlite::Result<WebhookRow> {
    Ok(WebhookRow {
        id: WebhookId::from_trusted(row.get(0)?),
        company: CompanyId::from_trusted(row.get(1)?),
        url: WebhookUrl::from_trusted(row.get(2)?),
        secret: row.get(3)?,
        events: EventList::from_stored(&row.get::<_, String>(4)?),
        enabled: row.get(5)?,
        api_version: row.get(6)?,
        child_resource_events: row.get(7)?,
        show_email: row.get(8)?,
        consecutive_failures: row.get(9)?,
        failing_since: row.get(10)?,
        last_failure_at: row.get(11)?,
        disabled_at: row.get(12)?,
        disabled_reason: row.get(13)?,
        created_at: row.get(14)?,
    })
}

fn find_webhook(conn: &Connection, id: &WebhookId) -> StoreResult<Option<WebhookRow>> {
    conn.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?1"
    ))
    .and_then(|mut st| st.query_row(params![id.as_str()], webhook_row).optional())
    .map_err(sql_error)
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, message_id, event_type, request_body,
    response_code, response_body, total_time_ms, sent_at, success, message_row, replayed_from";

fn delivery_row(row: &Row) -> rusqlite::Result<DeliveryRow> {
    Ok(DeliveryRow {
        id: DeliveryId::from_trusted(row.get(0)?),
        webhook: WebhookId::from_trusted(row.get(1)?),
        message_id: row.get(2)?,
        event_type: row.get(3)?,
        request_body: row.get(4)?,
        response_code: row.get(5)?,
        response_body: row.get(6)?,
        total_time_ms: row.get(7)?,
        sent_at: row.get(8)?,
        success: row.get(9)?,
        message_row: row.get(10)?,
        replayed_from: row.get(11)?,
    })
}

fn insert_delivery(conn: &Connection, d: &DeliveryRow) -> StoreResult<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))
    .and_then(|mut st| {
        st.execute(params![
            d.id.as_str(),
            d.webhook.as_str(),
            d.message_id,
            d.event_type,
            d.request_body,
            d.response_code,
            d.response_body,
            d.total_time_ms,
            d.sent_at,
            d.success,
            d.message_row,
            d.replayed_from,
        ])
    })
    .map(|_| ())
    .map_err(sql_error)
}

/// Takes a page of `limit` rows (asking for one more to learn whether more follow).
fn page<T>(mut rows: Vec<T>, limit: usize) -> KeyPage<T> {
    let has_next_page = rows.len() > limit;
    rows.truncate(limit);
    KeyPage {
        rows,
        has_next_page,
    }
}

fn record_attempt(conn: &Connection, a: &AttemptRecord, now: i64) -> StoreResult<()> {
    insert_delivery(conn, &a.delivery)?;
    let held = conn
        .prepare_cached(
            "UPDATE webhook_messages SET attempts = attempts + 1, next_attempt_at = ?3, lease = NULL
             WHERE id = ?1 AND lease = ?2",
        )
        .and_then(|mut st| st.execute(params![a.row, a.lease, a.next_attempt_at]))
        .map_err(sql_error)?;
    if held == 0 {
        // Another worker took the message over; it records the message's fate.
        return Ok(());
    }
    let webhook = a.delivery.webhook.as_str();
    if a.delivery.success {
        conn.prepare_cached(
            "UPDATE webhooks SET consecutive_failures = 0, failing_since = NULL
             WHERE id = ?1 AND (consecutive_failures <> 0 OR failing_since IS NOT NULL)",
        )
        .and_then(|mut st| st.execute(params![webhook]))
        .map_err(sql_error)?;
        return Ok(());
    }
    let given_up = a.next_attempt_at.is_none();
    conn.prepare_cached(
        "UPDATE webhooks SET
             consecutive_failures = consecutive_failures + ?2,
             failing_since = COALESCE(failing_since, ?3),
             last_failure_at = CASE WHEN ?4 THEN ?3 ELSE last_failure_at END
         WHERE id = ?1",
    )
    .and_then(|mut st| st.execute(params![webhook, i64::from(a.first_attempt), now, given_up]))
    .map_err(sql_error)?;
    let reason = if a.gone {
        DISABLED_ENDPOINT_GONE
    } else {
        DISABLED_DELIVERY_FAILURES
    };
    let disabled = conn
        .prepare_cached(
            "UPDATE webhooks SET enabled = 0, disabled_at = ?2, disabled_reason = ?3
             WHERE id = ?1 AND enabled AND (?4 OR failing_since <= ?2 - ?5)",
        )
        .and_then(|mut st| {
            st.execute(params![
                webhook,
                now,
                reason,
                a.gone,
                FAILING_DISABLES_AFTER_MS
            ])
        })
        .map_err(sql_error)?;
    if disabled > 0 {
        // A disabled endpoint is sent nothing more, including what was still queued for it.
        conn.prepare_cached(
            "UPDATE webhook_messages SET next_attempt_at = NULL, lease = NULL
             WHERE webhook_id = ?1 AND next_attempt_at IS NOT NULL",
        )
        .and_then(|mut st| st.execute(params![webhook]))
        .map_err(sql_error)?;
    }
    Ok(())
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook(&self, w: WebhookRow) -> StoreResult<WebhookRow> {
        self.write(move |conn| {
            super::company_exists(conn, &w.company).map_err(|_| StoreError::Invalid {
                param: "resource_id",
                reason: format!("no company {} exists", w.company),
            })?;
            conn.prepare_cached(&format!(
                "INSERT INTO webhooks ({WEBHOOK_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, NULL, NULL, NULL, NULL, ?10)"
            ))
            .and_then(|mut st| {
                st.execute(params![
                    w.id.as_str(),
                    w.company.as_str(),
                    w.url.as_str(),
                    w.secret,
                    w.events.stored(),
                    w.enabled,
                    w.api_version,
                    w.child_resource_events,
                    w.show_email,
                    w.created_at,
                ])
            })
            .map_err(sql_error)?;
            Ok(w)
        })
        .await
    }

    async fn find_webhook(&self, id: WebhookId) -> StoreResult<Option<WebhookRow>> {
        self.on_reader(move |conn| find_webhook(conn, &id)).await
    }

    async fn list_webhooks(
        &self,
        company: CompanyId,
        has_failures: Option<bool>,
        after: Option<KeyPosition>,
        limit: usize,
    ) -> StoreResult<KeyPage<WebhookRow>> {
        self.on_reader(move |conn| {
            let (at, id) = after.map_or((None, None), |p| (Some(p.at), Some(p.id)));
            let rows = conn
                .prepare_cached(&format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks
                     WHERE company_id = ?1
                       AND (?2 IS NULL OR (failing_since IS NOT NULL) = ?2)
                       AND (?3 IS NULL OR (created_at, id) < (?3, ?4))
                     ORDER BY created_at DESC, id DESC LIMIT ?5"
                ))
                .and_then(|mut st| {
                    st.query_map(
                        params![company.as_str(), has_failures, at, id, limit as i64 + 1],
                        webhook_row,
                    )?
                    .collect::<Result<Vec<_>, _>>()
                })
                .map_err(sql_error)?;
            Ok(page(rows, limit))
        })
        .await
    }

    async fn update_webhook(
        &self,
        id: WebhookId,
        c: WebhookChange,
    ) -> StoreResult<Option<WebhookRow>> {
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE webhooks SET
                        url = COALESCE(?2, url),
                        events = COALESCE(?3, events),
                        api_version = COALESCE(?4, api_version),
                        child_resource_events = COALESCE(?5, child_resource_events),
                        consecutive_failures = CASE WHEN ?6 = 1 AND NOT enabled THEN 0 ELSE consecutive_failures END,
                        failing_since = CASE WHEN ?6 = 1 AND NOT enabled THEN NULL ELSE failing_since END,
                        disabled_at = CASE WHEN ?6 IS NOT NULL THEN NULL ELSE disabled_at END,
                        disabled_reason = CASE WHEN ?6 IS NOT NULL THEN NULL ELSE disabled_reason END,
                        enabled = COALESCE(?6, enabled)
                     WHERE id = ?1",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        id.as_str(),
                        c.url.as_ref().map(WebhookUrl::as_str),
                        c.events.as_ref().map(EventList::stored),
                        c.api_version,
                        c.child_resource_events,
                        c.enabled,
                    ])
                })
                .map_err(sql_error)?;
            if changed == 0 {
                return Ok(None);
            }
            find_webhook(conn, &id)
        })
        .await
    }

    async fn delete_webhook(&self, id: WebhookId) -> StoreResult<bool> {
        self.write(move |conn| {
            for sql in [
                "DELETE FROM webhook_deliveries WHERE webhook_id = ?1",
                "DELETE FROM webhook_messages WHERE webhook_id = ?1",
            ] {
                conn.execute(sql, params![id.as_str()]).map_err(sql_error)?;
            }
            conn.execute("DELETE FROM webhooks WHERE id = ?1", params![id.as_str()])
                .map(|n| n > 0)
                .map_err(sql_error)
        })
        .await
    }

    async fn list_deliveries(
        &self,
        webhook: WebhookId,
        after: Option<KeyPosition>,
        limit: usize,
    ) -> StoreResult<KeyPage<DeliveryRow>> {
        self.on_reader(move |conn| {
            let (at, id) = after.map_or((None, None), |p| (Some(p.at), Some(p.id)));
            let rows = conn
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
                     WHERE webhook_id = ?1 AND (?2 IS NULL OR (sent_at, id) < (?2, ?3))
                     ORDER BY sent_at DESC, id DESC LIMIT ?4"
                ))
                .and_then(|mut st| {
                    st.query_map(
                        params![webhook.as_str(), at, id, limit as i64 + 1],
                        delivery_row,
                    )?
                    .collect::<Result<Vec<_>, _>>()
                })
                .map_err(sql_error)?;
            Ok(page(rows, limit))
        })
        .await
    }

    async fn find_delivery(
        &self,
        webhook: WebhookId,
        id: DeliveryId,
    ) -> StoreResult<Option<DeliveryRow>> {
        self.on_reader(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = ?1 AND webhook_id = ?2"
            ))
            .and_then(|mut st| {
                st.query_row(params![id.as_str(), webhook.as_str()], delivery_row)
                    .optional()
            })
            .map_err(sql_error)
        })
        .await
    }

    async fn log_delivery(&self, delivery: DeliveryRow) -> StoreResult<()> {
        self.write(move |conn| insert_delivery(conn, &delivery))
            .await
    }

    async fn replay_window(&self, webhook: WebhookId, w: ReplayWindow) -> StoreResult<u64> {
        let now = crate::domain::Timestamp::now().as_millis();
        let queued = self
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO webhook_messages
                         (id, message_id, webhook_id, company_id, event_type, data, created_at,
                          next_attempt_at, replayed_from)
                     SELECT 'msg_' || printf('%012x', ?7) || lower(hex(randomblob(7))),
                            CASE WHEN ?6 THEN NULL ELSE COALESCE(m.message_id, m.id) END,
                            m.webhook_id, m.company_id, m.event_type, m.data, ?7, ?7, d.id
                     FROM webhook_deliveries d JOIN webhook_messages m ON m.id = d.message_row
                     WHERE d.webhook_id = ?1 AND d.sent_at > ?2 AND d.sent_at < ?3
                       AND d.id = (SELECT d2.id FROM webhook_deliveries d2
                                   WHERE d2.webhook_id = d.webhook_id AND d2.message_id = d.message_id
                                     AND d2.sent_at > ?2 AND d2.sent_at < ?3
                                   ORDER BY d2.sent_at DESC, d2.id DESC LIMIT 1)
                       AND (NOT ?4 OR NOT d.success)
                       AND (?5 IS NULL OR instr(?5, ',' || d.event_type || ',') > 0)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        webhook.as_str(),
                        w.sent_after,
                        w.sent_before,
                        w.failed_only,
                        w.events.as_ref().map(EventList::stored),
                        w.regenerate_ids,
                        now,
                    ])
                })
                .map(|n| n as u64)
                .map_err(sql_error)
            })
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
        let lease = lease.to_owned();
        self.write(move |conn| {
            // The due messages through `webhook_messages_due`, then each leased by its primary
            // key, in this one write transaction: no other worker can come between. (Reading
            // them back by `lease`, which no index has, read the whole outbox each time.)
            let leased = conn
                .prepare_cached(
                    "SELECT m.id, COALESCE(m.message_id, m.id), m.webhook_id, m.company_id,
                            m.event_type, m.data, m.created_at, m.attempts, w.url, w.secret,
                            m.replayed_from
                     FROM webhook_messages m JOIN webhooks w ON w.id = m.webhook_id
                     WHERE m.next_attempt_at IS NOT NULL AND m.next_attempt_at <= ?1
                       AND w.enabled
                     ORDER BY m.next_attempt_at LIMIT ?2",
                )
                .and_then(|mut st| {
                    st.query_map(params![now, limit as i64], |r| {
                        Ok(LeasedMessage {
                            row: r.get(0)?,
                            message_id: r.get(1)?,
                            webhook: WebhookId::from_trusted(r.get(2)?),
                            company: CompanyId::from_trusted(r.get(3)?),
                            event_type: r.get(4)?,
                            data: r.get(5)?,
                            created_at: r.get(6)?,
                            attempts: r.get(7)?,
                            url: WebhookUrl::from_trusted(r.get(8)?),
                            secret: r.get(9)?,
                            replayed_from: r.get(10)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()
                })
                .map_err(sql_error)?;
            let mut take = conn
                .prepare_cached(
                    "UPDATE webhook_messages SET next_attempt_at = ?2, lease = ?3 WHERE id = ?1",
                )
                .map_err(sql_error)?;
            for message in &leased {
                take.execute(params![message.row, now + lease_ms, lease])
                    .map_err(sql_error)?;
            }
            Ok(leased)
        })
        .await
    }

    async fn has_due_messages(&self, now: i64) -> StoreResult<bool> {
        self.on_reader(move |conn| {
            conn.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM webhook_messages
                 WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ?1)",
            )
            .and_then(|mut st| st.query_row(params![now], |r| r.get(0)))
            .map_err(sql_error)
        })
        .await
    }

    async fn record_attempts(&self, attempts: Vec<AttemptRecord>, now: i64) -> StoreResult<()> {
        self.write(move |conn| {
            for attempt in &attempts {
                record_attempt(conn, attempt, now)?;
            }
            Ok(())
        })
        .await
    }

    async fn forget_deliveries(&self, before: i64, limit: u32) -> StoreResult<u64> {
        self.write(move |conn| {
            let forgotten = conn
                .prepare_cached(
                    "DELETE FROM webhook_deliveries WHERE id IN (
                         SELECT id FROM webhook_deliveries WHERE sent_at < ?1 ORDER BY sent_at LIMIT ?2)",
                )
                .and_then(|mut st| st.execute(params![before, limit]))
                .map_err(sql_error)?;
            conn.prepare_cached(
                "DELETE FROM webhook_messages WHERE id IN (
                     SELECT id FROM webhook_messages
                     WHERE next_attempt_at IS NULL AND created_at < ?1 LIMIT ?2)",
            )
            .and_then(|mut st| st.execute(params![before, limit]))
            .map_err(sql_error)?;
            Ok(forgotten as u64)
        })
        .await
    }

    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        self.on_reader(|conn| {
            conn.prepare_cached(
                "SELECT COUNT(*), MIN(created_at) FROM webhook_messages
                 WHERE next_attempt_at IS NOT NULL",
            )
            .and_then(|mut st| {
                st.query_row([], |r| {
                    Ok(QueueStats {
                        depth: r.get::<_, i64>(0)? as u64,
                        oldest_created_at: r.get(1)?,
                    })
                })
            })
            .map_err(sql_error)
        })
        .await
    }

    fn outbox_wakeup(&self) -> Arc<Notify> {
        self.wakeup.clone()
    }
}
