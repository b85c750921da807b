//! Import look-ups for PostgreSQL: each one statement over arrays, one round trip per batch.

use super::sql::Sql;
use super::{pg_error, PgStore};
use crate::domain::CompanyId;
use crate::storage::{ImportStore, LeadKey, StoreResult};
use async_trait::async_trait;
use std::collections::HashMap;

/// Rows of two text columns as a map from the first to the second.
fn pairs(rows: &[tokio_postgres::Row]) -> StoreResult<HashMap<String, String>> {
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(pg_error)
}

#[async_trait]
impl ImportStore for PgStore {
    async fn company_exists(&self, company: CompanyId) -> StoreResult<bool> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT 1 FROM companies WHERE id = $1",
                &[&company.as_str()],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.is_some())
    }

    async fn users_by_username(
        &self,
        usernames: Vec<String>,
    ) -> StoreResult<HashMap<String, String>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT username, id FROM users WHERE username = ANY($1::text[])",
                &[&usernames],
            )
            .await
            .map_err(pg_error)?;
        pairs(&rows)
    }

    async fn products_by_title(
        &self,
        company: CompanyId,
        titles: Vec<String>,
    ) -> StoreResult<HashMap<String, String>> {
        let client = self.client().await?;
        // Newest first, so the oldest of a title is the one left in the map.
        let rows = client
            .query(
                "SELECT title, id FROM products WHERE company_id = $1 AND title = ANY($2::text[])
                 ORDER BY created_at DESC, id DESC",
                &[&company.as_str(), &titles],
            )
            .await
            .map_err(pg_error)?;
        pairs(&rows)
    }

    async fn existing_leads(
        &self,
        company: CompanyId,
        keys: Vec<LeadKey>,
    ) -> StoreResult<Vec<LeadKey>> {
        let users: Vec<&str> = keys.iter().map(|k| k.user_id.as_str()).collect();
        let products: Vec<Option<&str>> = keys.iter().map(|k| k.product_id.as_deref()).collect();
        let times: Vec<i64> = keys.iter().map(|k| k.created_at).collect();
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT k.u, k.p, k.t
                 FROM unnest($2::text[], $3::text[], $4::bigint[]) AS k(u, p, t)
                 WHERE EXISTS (
                     SELECT 1 FROM leads l
                     WHERE l.company_id = $1 AND l.created_at = k.t AND l.user_id = k.u
                       AND l.product_id IS NOT DISTINCT FROM k.p)",
                &[&company.as_str(), &users, &products, &times],
            )
            .await
            .map_err(pg_error)?;
        rows.iter()
            .map(|row| {
                Ok(LeadKey {
                    user_id: row.try_get(0)?,
                    product_id: row.try_get(1)?,
                    created_at: row.try_get(2)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(pg_error)
    }
}
