//! Exports for SQLite: the job rows, written through the writer thread (so claims never race),
//! and the snapshot read, on a connection of its own so a long export holds no reader thread.

use super::leads::{snapshot_queries, snapshot_row};
use super::{company_exists, open_reader, sql_error, webhooks, SqliteStore};
use crate::domain::{CompanyId, ExportId};
use crate::storage::exports::{
    ExportFilter, ExportOutcome, ExportRow, ExportSpec, ExportStatus, ExportStore, Lease,
    SnapshotPart, SNAPSHOT_BATCH,
};
use crate::storage::{LeadFilter, StoreError, StoreResult};
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::fmt::Write;
use tokio::sync::mpsc;

const EXPORT_COLUMNS: &str = "id, company_id, resource, status, spec, progress_percent,
    failure_reason, file_name, row_count, created_at, updated_at, expires_at";

fn export_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<ExportRow>> {
    let status: String = row.get(3)?;
    let spec: String = row.get(4)?;
    let id: String = row.get(0)?;
    let decoded = (|| {
        let status = ExportStatus::parse(&status)
            .ok_or_else(|| StoreError::Internal(format!("export {id} has status {status:?}")))?;
        let spec: ExportSpec = serde_json::from_str(&spec)
            .map_err(|e| StoreError::Internal(format!("export {id} has a bad spec: {e}")))?;
        Ok((status, spec))
    })();
    let (status, spec) = match decoded {
        Ok(decoded) => decoded,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(ExportRow {
        id: ExportId::from_trusted(id),
        company: CompanyId::from_trusted(row.get(1)?),
        resource: row.get(2)?,
        status,
        spec,
        progress_percent: row.get(5)?,
        failure_reason: row.get(6)?,
        file_name: row.get(7)?,
        row_count: row.get(8)?,
        created_at: row.get(9)?,
        updated_at: row.get(10)?,
        expires_at: row.get(11)?,
    }))
}

fn one(conn: &Connection, sql: &str, params: &[Value]) -> StoreResult<Option<ExportRow>> {
    conn.prepare_cached(sql)
        .and_then(|mut st| {
            st.query_row(rusqlite::params_from_iter(params.iter()), export_row)
                .optional()
        })
        .map_err(sql_error)?
        .transpose()
}

fn many(conn: &Connection, sql: &str, params: &[Value]) -> StoreResult<Vec<ExportRow>> {
    let mut st = conn.prepare_cached(sql).map_err(sql_error)?;
    let rows = st
        .query_map(rusqlite::params_from_iter(params.iter()), export_row)
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    rows.into_iter().collect()
}

fn spec_text(spec: &ExportSpec) -> StoreResult<String> {
    serde_json::to_string(spec).map_err(|e| StoreError::Internal(e.to_string()))
}

#[async_trait]
impl ExportStore for SqliteStore {
    async fn create_export(&self, export: ExportRow) -> StoreResult<()> {
        let spec = spec_text(&export.spec)?;
        self.write(move |conn| {
            company_exists(conn, &export.company)?;
            conn.prepare_cached(
                "INSERT INTO exports (id, company_id, resource, status, spec, progress_percent,
                     created_at, updated_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    export.id.as_str(),
                    export.company.as_str(),
                    export.resource,
                    export.status.name(),
                    spec,
                    export.progress_percent,
                    export.created_at,
                    export.updated_at,
                    export.expires_at,
                ])
            })
            .map_err(sql_error)?;
            Ok(())
        })
        .await
    }

    async fn find_export(
        &self,
        company: CompanyId,
        id: ExportId,
    ) -> StoreResult<Option<ExportRow>> {
        self.on_reader(move |conn| {
            one(
                conn,
                &format!("SELECT {EXPORT_COLUMNS} FROM exports WHERE id = ?1 AND company_id = ?2"),
                &[id.into_string().into(), company.into_string().into()],
            )
        })
        .await
    }

    async fn export_by_id(&self, id: ExportId) -> StoreResult<Option<ExportRow>> {
        self.on_reader(move |conn| {
            one(
                conn,
                &format!("SELECT {EXPORT_COLUMNS} FROM exports WHERE id = ?1"),
                &[id.into_string().into()],
            )
        })
        .await
    }

    async fn list_exports(&self, filter: ExportFilter) -> StoreResult<Vec<ExportRow>> {
        self.on_reader(move |conn| {
            let mut params: Vec<Value> = vec![filter.company.as_str().to_owned().into()];
            let mut sql = format!("SELECT {EXPORT_COLUMNS} FROM exports WHERE company_id = ?1");
            let mut bind = |value: Value| {
                params.push(value);
                format!("?{}", params.len())
            };
            if let Some(status) = filter.status {
                let p = bind(status.name().to_owned().into());
                let _ = write!(sql, " AND status = {p}");
            }
            if let Some(at) = filter.created_after {
                let p = bind(at.into());
                let _ = write!(sql, " AND created_at >= {p}");
            }
            if let Some(at) = filter.created_before {
                let p = bind(at.into());
                let _ = write!(sql, " AND created_at <= {p}");
            }
            let (cmp, order) = if filter.ascending {
                (">", "ASC")
            } else {
                ("<", "DESC")
            };
            if let Some((at, id)) = &filter.after {
                let (t, i) = (bind((*at).into()), bind(id.as_str().to_owned().into()));
                let _ = write!(sql, " AND (created_at, id) {cmp} ({t}, {i})");
            }
            let _ = write!(
                sql,
                " ORDER BY created_at {order}, id {order} LIMIT {}",
                filter.limit + 1
            );
            many(conn, &sql, &params)
        })
        .await
    }

    async fn claim_export(&self, lease: Lease, now: i64) -> StoreResult<Option<ExportRow>> {
        self.write(move |conn| {
            one(
                conn,
                &format!(
                    "UPDATE exports SET status = 'processing', lease_token = ?1, lease_until = ?2,
                         attempts = attempts + 1, progress_percent = 0, updated_at = ?3
                     WHERE id = (
                         SELECT id FROM exports
                         WHERE status = 'pending' OR (status = 'processing' AND lease_until < ?3)
                         ORDER BY created_at, id LIMIT 1)
                     RETURNING {EXPORT_COLUMNS}"
                ),
                &[lease.token.into(), lease.until.into(), now.into()],
            )
        })
        .await
    }

    async fn renew_export(
        &self,
        id: ExportId,
        token: String,
        until: i64,
        progress_percent: i32,
        now: i64,
    ) -> StoreResult<bool> {
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE exports SET lease_until = ?1, progress_percent = ?2,
                     updated_at = CASE WHEN progress_percent = ?2 THEN updated_at ELSE ?3 END
                 WHERE id = ?4 AND lease_token = ?5 AND status = 'processing'",
            )
            .and_then(|mut st| {
                st.execute(params![until, progress_percent, now, id.as_str(), token])
            })
            .map(|n| n == 1)
            .map_err(sql_error)
        })
        .await
    }

    async fn finish_export(
        &self,
        id: ExportId,
        token: String,
        outcome: ExportOutcome,
        now: i64,
    ) -> StoreResult<bool> {
        let (status, file_name, row_count, reason, progress) = match outcome {
            ExportOutcome::Completed {
                file_name,
                row_count,
            } => ("completed", Some(file_name), Some(row_count), None, 100),
            ExportOutcome::Failed { reason } => ("failed", None, None, Some(reason), 0),
        };
        let wakeup = self.wakeup.clone();
        let (finished, queued) = self
            .write(move |conn| {
                let updated = conn
                    .prepare_cached(
                        "UPDATE exports SET status = ?1, file_name = ?2, row_count = ?3,
                     failure_reason = ?4, progress_percent = CASE WHEN ?1 = 'completed'
                         THEN ?5 ELSE progress_percent END,
                     lease_token = NULL, lease_until = NULL, updated_at = ?6
                 WHERE id = ?7 AND lease_token = ?8 AND status = 'processing'",
                    )
                    .and_then(|mut st| {
                        st.execute(params![
                            status,
                            file_name,
                            row_count,
                            reason,
                            progress,
                            now,
                            id.as_str(),
                            token
                        ])
                    })
                    .map_err(sql_error)?;
                if updated != 1 {
                    return Ok((false, false));
                }
                // The end is announced in the same transaction that records it.
                let row = conn
                    .query_row(
                        &format!("SELECT {EXPORT_COLUMNS} FROM exports WHERE id = ?1"),
                        params![id.as_str()],
                        export_row,
                    )
                    .map_err(sql_error)??;
                let (event, data) = row.ended_event()?;
                let queued = webhooks::enqueue(conn, &row.company, event, now, || Ok(data))?;
                Ok((true, queued))
            })
            .await?;
        if queued {
            wakeup.notify_one();
        }
        Ok(finished)
    }

    async fn release_export(&self, id: ExportId, token: String, now: i64) -> StoreResult<()> {
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE exports SET status = 'pending', lease_token = NULL, lease_until = NULL,
                     progress_percent = 0, updated_at = ?1
                 WHERE id = ?2 AND lease_token = ?3 AND status = 'processing'",
            )
            .and_then(|mut st| st.execute(params![now, id.as_str(), token]))
            .map(|_| ())
            .map_err(sql_error)
        })
        .await
    }

    async fn exports_due_to_expire(&self, now: i64, limit: u32) -> StoreResult<Vec<ExportRow>> {
        self.on_reader(move |conn| {
            many(
                conn,
                &format!(
                    "SELECT {EXPORT_COLUMNS} FROM exports
                     WHERE status IN ('completed', 'failed') AND expires_at < ?1
                     ORDER BY expires_at LIMIT ?2"
                ),
                &[now.into(), i64::from(limit).into()],
            )
        })
        .await
    }

    async fn mark_export_expired(&self, id: ExportId, now: i64) -> StoreResult<()> {
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE exports SET status = 'expired', updated_at = ?1
                 WHERE id = ?2 AND status IN ('completed', 'failed')",
            )
            .and_then(|mut st| st.execute(params![now, id.as_str()]))
            .map(|_| ())
            .map_err(sql_error)
        })
        .await
    }

    async fn link_secret(&self) -> StoreResult<Vec<u8>> {
        let secret: [u8; 32] = rand::random();
        self.write(move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO settings (key, value) VALUES ('export_link_secret', ?1)",
                params![secret.as_slice()],
            )
            .map_err(sql_error)?;
            conn.query_row(
                "SELECT value FROM settings WHERE key = 'export_link_secret'",
                [],
                |row| row.get(0),
            )
            .map_err(sql_error)
        })
        .await
    }

    async fn snapshot_leads(
        &self,
        filter: LeadFilter,
        out: mpsc::Sender<SnapshotPart>,
    ) -> StoreResult<()> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = open_reader(&path)?;
            snapshot(&conn, &filter, &out)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("the snapshot read panicked: {e}")))?
    }
}

/// Reads the snapshot on `conn` in one read transaction: SQLite's WAL keeps every page as of
/// the transaction's first read, whatever commits meanwhile.
fn snapshot(
    conn: &Connection,
    filter: &LeadFilter,
    out: &mpsc::Sender<SnapshotPart>,
) -> StoreResult<()> {
    let tx = conn.unchecked_transaction().map_err(sql_error)?;
    let (count, rows) = snapshot_queries(filter);
    let total: i64 = tx
        .query_row(
            &count.sql,
            rusqlite::params_from_iter(count.params.iter()),
            |row| row.get(0),
        )
        .map_err(sql_error)?;
    if out
        .blocking_send(SnapshotPart::Total(total.max(0) as u64))
        .is_err()
    {
        return Ok(());
    }
    let mut statement = tx.prepare(&rows.sql).map_err(sql_error)?;
    let mut cursor = statement
        .query(rusqlite::params_from_iter(rows.params.iter()))
        .map_err(sql_error)?;
    let mut batch = Vec::with_capacity(SNAPSHOT_BATCH);
    while let Some(row) = cursor.next().map_err(sql_error)? {
        batch.push(snapshot_row(row).map_err(sql_error)?);
        if batch.len() == SNAPSHOT_BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(SNAPSHOT_BATCH));
            if out.blocking_send(SnapshotPart::Rows(full)).is_err() {
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        let _ = out.blocking_send(SnapshotPart::Rows(batch));
    }
    drop(cursor);
    drop(statement);
    tx.finish().map_err(sql_error)
}
