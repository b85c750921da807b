//! Exports for PostgreSQL: the job rows, claimed with a conditional UPDATE (of two instances
//! racing for one job, the second finds it no longer claimable once the first commits), and the
//! snapshot read, one REPEATABLE READ transaction fetched through a portal a batch at a time.

use super::leads::{lead_row, snapshot_queries};
use super::sql::Sql;
use super::{execute, insert_for_company, pg_error, query_opt, webhooks, PgStore};
use crate::domain::{CompanyId, ExportId};
use crate::storage::exports::{
    ExportFilter, ExportOutcome, ExportRow, ExportSpec, ExportStatus, ExportStore, Lease,
    SnapshotPart, SNAPSHOT_BATCH,
};
use crate::storage::{LeadFilter, StoreError, StoreResult};
use async_trait::async_trait;
use std::fmt::Write;
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, Row};

const EXPORT_COLUMNS: &str = "id, company_id, resource, status, spec, progress_percent,
    failure_reason, file_name, row_count, created_at, updated_at, expires_at";

fn export_row(row: &Row) -> StoreResult<ExportRow> {
    let id: String = row.try_get(0).map_err(pg_error)?;
    let status: String = row.try_get(3).map_err(pg_error)?;
    let spec: String = row.try_get(4).map_err(pg_error)?;
    let status = ExportStatus::parse(&status)
        .ok_or_else(|| StoreError::Internal(format!("export {id} has status {status:?}")))?;
    let spec: ExportSpec = serde_json::from_str(&spec)
        .map_err(|e| StoreError::Internal(format!("export {id} has a bad spec: {e}")))?;
    let get = || -> Result<ExportRow, tokio_postgres::Error> {
        Ok(ExportRow {
            id: ExportId::from_trusted(id.clone()),
            company: CompanyId::from_trusted(row.try_get(1)?),
            resource: row.try_get(2)?,
            status,
            spec: spec.clone(),
            progress_percent: row.try_get(5)?,
            failure_reason: row.try_get(6)?,
            file_name: row.try_get(7)?,
            row_count: row.try_get(8)?,
            created_at: row.try_get(9)?,
            updated_at: row.try_get(10)?,
            expires_at: row.try_get(11)?,
        })
    };
    get().map_err(pg_error)
}

#[async_trait]
impl ExportStore for PgStore {
    async fn create_export(&self, export: ExportRow) -> StoreResult<()> {
        let spec =
            serde_json::to_string(&export.spec).map_err(|e| StoreError::Internal(e.to_string()))?;
        let client = self.client().await?;
        insert_for_company(
            &client,
            &export.company,
            "INSERT INTO exports (id, company_id, resource, status, spec, progress_percent,
                 created_at, updated_at, expires_at)
             SELECT $1, id, $3, $4, $5, $6, $7, $8, $9 FROM companies WHERE id = $2",
            &[
                &export.id.as_str(),
                &export.company.as_str(),
                &export.resource,
                &export.status.name(),
                &spec,
                &export.progress_percent,
                &export.created_at,
                &export.updated_at,
                &export.expires_at,
            ],
        )
        .await
    }

    async fn find_export(
        &self,
        company: CompanyId,
        id: ExportId,
    ) -> StoreResult<Option<ExportRow>> {
        let client = self.client().await?;
        let sql = format!("SELECT {EXPORT_COLUMNS} FROM exports WHERE id = $1 AND company_id = $2");
        query_opt(&client, &sql, &[&id.as_str(), &company.as_str()])
            .await?
            .as_ref()
            .map(export_row)
            .transpose()
    }

    async fn export_by_id(&self, id: ExportId) -> StoreResult<Option<ExportRow>> {
        let client = self.client().await?;
        let sql = format!("SELECT {EXPORT_COLUMNS} FROM exports WHERE id = $1");
        query_opt(&client, &sql, &[&id.as_str()])
            .await?
            .as_ref()
            .map(export_row)
            .transpose()
    }

    async fn list_exports(&self, filter: ExportFilter) -> StoreResult<Vec<ExportRow>> {
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> =
            vec![Box::new(filter.company.as_str().to_owned())];
        let mut sql = format!("SELECT {EXPORT_COLUMNS} FROM exports WHERE company_id = $1");
        let mut bind = |value: Box<dyn ToSql + Sync + Send>| {
            params.push(value);
            format!("${}", params.len())
        };
        if let Some(status) = filter.status {
            let p = bind(Box::new(status.name()));
            let _ = write!(sql, " AND status = {p}");
        }
        if let Some(at) = filter.created_after {
            let p = bind(Box::new(at));
            let _ = write!(sql, " AND created_at >= {p}");
        }
        if let Some(at) = filter.created_before {
            let p = bind(Box::new(at));
            let _ = write!(sql, " AND created_at <= {p}");
        }
        let (cmp, order) = if filter.ascending {
            (">", "ASC")
        } else {
            ("<", "DESC")
        };
        if let Some((at, id)) = &filter.after {
            let (t, i) = (bind(Box::new(*at)), bind(Box::new(id.as_str().to_owned())));
            let _ = write!(sql, " AND (created_at, id) {cmp} ({t}, {i})");
        }
        let _ = write!(
            sql,
            " ORDER BY created_at {order}, id {order} LIMIT {}",
            filter.limit + 1
        );
        let client = self.client().await?;
        let statement = client.prepare_cached(&sql).await.map_err(pg_error)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = client.query(&statement, &refs).await.map_err(pg_error)?;
        rows.iter().map(export_row).collect()
    }

    async fn claim_export(&self, lease: Lease, now: i64) -> StoreResult<Option<ExportRow>> {
        let client = self.client().await?;
        // The claimable condition is repeated outside the subquery: under READ COMMITTED an
        // UPDATE that waited for a concurrent claim of the same row re-checks its WHERE against
        // the row as that claim left it, and then takes nothing.
        let sql = format!(
            "UPDATE exports SET status = 'processing', lease_token = $1, lease_until = $2,
                 attempts = attempts + 1, progress_percent = 0, updated_at = $3
             WHERE id = (
                 SELECT id FROM exports
                 WHERE status = 'pending' OR (status = 'processing' AND lease_until < $3)
                 ORDER BY created_at, id LIMIT 1)
               AND (status = 'pending' OR (status = 'processing' AND lease_until < $3))
             RETURNING {EXPORT_COLUMNS}"
        );
        query_opt(&client, &sql, &[&lease.token, &lease.until, &now])
            .await?
            .as_ref()
            .map(export_row)
            .transpose()
    }

    async fn renew_export(
        &self,
        id: ExportId,
        token: String,
        until: i64,
        progress_percent: i32,
        now: i64,
    ) -> StoreResult<bool> {
        let client = self.client().await?;
        let n = execute(
            &client,
            "UPDATE exports SET lease_until = $1, progress_percent = $2,
                 updated_at = CASE WHEN progress_percent = $2 THEN updated_at ELSE $3 END
             WHERE id = $4 AND lease_token = $5 AND status = 'processing'",
            &[&until, &progress_percent, &now, &id.as_str(), &token],
        )
        .await?;
        Ok(n == 1)
    }

    async fn finish_export(
        &self,
        id: ExportId,
        token: String,
        outcome: ExportOutcome,
        now: i64,
    ) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let row = match outcome {
            ExportOutcome::Completed {
                file_name,
                row_count,
            } => {
                query_opt(
                    &tx,
                    &format!(
                        "UPDATE exports SET status = 'completed', file_name = $1, row_count = $2,
                         progress_percent = 100, lease_token = NULL, lease_until = NULL,
                         updated_at = $3
                     WHERE id = $4 AND lease_token = $5 AND status = 'processing'
                     RETURNING {EXPORT_COLUMNS}"
                    ),
                    &[&file_name, &row_count, &now, &id.as_str(), &token],
                )
                .await?
            }
            ExportOutcome::Failed { reason } => {
                query_opt(
                    &tx,
                    &format!(
                        "UPDATE exports SET status = 'failed', failure_reason = $1,
                         lease_token = NULL, lease_until = NULL, updated_at = $2
                     WHERE id = $3 AND lease_token = $4 AND status = 'processing'
                     RETURNING {EXPORT_COLUMNS}"
                    ),
                    &[&reason, &now, &id.as_str(), &token],
                )
                .await?
            }
        };
        let Some(row) = row else {
            return Ok(false);
        };
        // The end is announced in the same transaction that records it.
        let row = export_row(&row)?;
        let (event, data) = row.ended_event()?;
        let queued = webhooks::enqueue(&tx, &row.company, event, now, || Ok(data)).await?;
        tx.commit().await.map_err(pg_error)?;
        if queued {
            self.wakeup.notify_one();
        }
        Ok(true)
    }

    async fn release_export(&self, id: ExportId, token: String, now: i64) -> StoreResult<()> {
        let client = self.client().await?;
        execute(
            &client,
            "UPDATE exports SET status = 'pending', lease_token = NULL, lease_until = NULL,
                 progress_percent = 0, updated_at = $1
             WHERE id = $2 AND lease_token = $3 AND status = 'processing'",
            &[&now, &id.as_str(), &token],
        )
        .await?;
        Ok(())
    }

    async fn exports_due_to_expire(&self, now: i64, limit: u32) -> StoreResult<Vec<ExportRow>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {EXPORT_COLUMNS} FROM exports
                 WHERE status IN ('completed', 'failed') AND expires_at < $1
                 ORDER BY expires_at LIMIT $2"
            ))
            .await
            .map_err(pg_error)?;
        let rows = client
            .query(&statement, &[&now, &i64::from(limit)])
            .await
            .map_err(pg_error)?;
        rows.iter().map(export_row).collect()
    }

    async fn mark_export_expired(&self, id: ExportId, now: i64) -> StoreResult<()> {
        let client = self.client().await?;
        execute(
            &client,
            "UPDATE exports SET status = 'expired', updated_at = $1
             WHERE id = $2 AND status IN ('completed', 'failed')",
            &[&now, &id.as_str()],
        )
        .await?;
        Ok(())
    }

    async fn link_secret(&self) -> StoreResult<Vec<u8>> {
        let secret: [u8; 32] = rand::random();
        let client = self.client().await?;
        // The first instance's secret wins, so every instance signs links alike.
        execute(
            &client,
            "INSERT INTO settings (key, value) VALUES ('export_link_secret', $1)
             ON CONFLICT (key) DO NOTHING",
            &[&secret.as_slice()],
        )
        .await?;
        let row = query_opt(
            &client,
            "SELECT value FROM settings WHERE key = 'export_link_secret'",
            &[],
        )
        .await?
        .ok_or_else(|| StoreError::Internal("the export link secret is missing".into()))?;
        row.try_get(0).map_err(pg_error)
    }

    async fn snapshot_leads(
        &self,
        filter: LeadFilter,
        out: mpsc::Sender<SnapshotPart>,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client
            .transaction_with(IsolationLevel::RepeatableRead, true)
            .await
            .map_err(pg_error)?;
        let (count, rows) = snapshot_queries(&filter);
        let total: i64 = tx
            .query_one(&count.sql, &count.params())
            .await
            .map_err(pg_error)?
            .try_get(0)
            .map_err(pg_error)?;
        if out
            .send(SnapshotPart::Total(total.max(0) as u64))
            .await
            .is_err()
        {
            return Ok(());
        }
        // A portal fetched a batch at a time: each fetch is its own statement (within the
        // statement timeout), and only one batch is in memory here at once.
        // Prepared afresh and closed again (dropped) before the COMMIT, so it never outlives
        // the transaction, as a transaction pooler requires.
        let statement = tx.inner().prepare(&rows.sql).await.map_err(pg_error)?;
        let portal = tx
            .inner()
            .bind(&statement, &rows.params())
            .await
            .map_err(pg_error)?;
        loop {
            let fetched = tx
                .inner()
                .query_portal(&portal, SNAPSHOT_BATCH as i32)
                .await
                .map_err(pg_error)?;
            let last = fetched.len() < SNAPSHOT_BATCH;
            let batch = fetched
                .iter()
                .map(lead_row)
                .collect::<StoreResult<Vec<_>>>()?;
            drop(fetched);
            if !batch.is_empty() && out.send(SnapshotPart::Rows(batch)).await.is_err() {
                return Ok(());
            }
            if last {
                break;
            }
        }
        drop(portal);
        drop(statement);
        tx.commit().await.map_err(pg_error)
    }
}
