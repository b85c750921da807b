//! Import look-ups for SQLite, on a reader: ids by username and by title in chunks, and one
//! index seek (company, created_at) per lead key, after one for the keys' whole time span.

use super::{sql_error, SqliteStore};
use crate::domain::CompanyId;
use crate::storage::{ImportStore, LeadKey, StoreResult};
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, Connection};
use std::collections::HashMap;

/// Values bound in one `IN (...)` at most, well under SQLite's limit on parameters.
const CHUNK: usize = 500;

/// `(key, id)` rows of `sql`, whose `{in}` is replaced by the placeholders of one chunk of
/// `values`, after `before` bound first.
fn pairs(
    conn: &Connection,
    sql: &str,
    before: &[Value],
    values: &[String],
) -> StoreResult<Vec<(String, String)>> {
    let mut found = Vec::new();
    for chunk in values.chunks(CHUNK) {
        let placeholders: Vec<String> = (0..chunk.len())
            .map(|i| format!("?{}", before.len() + i + 1))
            .collect();
        let sql = sql.replace("{in}", &placeholders.join(", "));
        let params: Vec<Value> = before
            .iter()
            .cloned()
            .chain(chunk.iter().map(|v| Value::Text(v.clone())))
            .collect();
        let mut statement = conn.prepare(&sql).map_err(sql_error)?;
        let rows = statement
            .query_map(rusqlite::params_from_iter(params.iter()), |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .map_err(sql_error)?;
        for row in rows {
            found.push(row.map_err(sql_error)?);
        }
    }
    Ok(found)
}

#[async_trait]
impl ImportStore for SqliteStore {
    async fn company_exists(&self, company: CompanyId) -> StoreResult<bool> {
        self.on_reader(move |conn| match super::company_exists(conn, &company) {
            Ok(()) => Ok(true),
            Err(crate::storage::StoreError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        })
        .await
    }

    async fn users_by_username(
        &self,
        usernames: Vec<String>,
    ) -> StoreResult<HashMap<String, String>> {
        self.on_reader(move |conn| {
            let found = pairs(
                conn,
                "SELECT username, id FROM users WHERE username IN ({in})",
                &[],
                &usernames,
            )?;
            Ok(found.into_iter().collect())
        })
        .await
    }

    async fn products_by_title(
        &self,
        company: CompanyId,
        titles: Vec<String>,
    ) -> StoreResult<HashMap<String, String>> {
        self.on_reader(move |conn| {
            // Newest first, so the oldest of a title is the one left in the map.
            let found = pairs(
                conn,
                "SELECT title, id FROM products WHERE company_id = ?1 AND title IN ({in})
                 ORDER BY created_at DESC, id DESC",
                &[Value::Text(company.into_string())],
                &titles,
            )?;
            Ok(found.into_iter().collect())
        })
        .await
    }

    async fn existing_leads(
        &self,
        company: CompanyId,
        keys: Vec<LeadKey>,
    ) -> StoreResult<Vec<LeadKey>> {
        self.read(move |conn| {
            // A company with no lead in the keys' time span (the usual import: into a new or
            // another time's company) has none of them: one index seek instead of one per key.
            let (Some(first), Some(last)) = (
                keys.iter().map(|k| k.created_at).min(),
                keys.iter().map(|k| k.created_at).max(),
            ) else {
                return Ok(Vec::new());
            };
            let any: bool = conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM leads
                     WHERE company_id = ?1 AND created_at BETWEEN ?2 AND ?3)",
                )
                .and_then(|mut s| s.query_row(params![company.as_str(), first, last], |r| r.get(0)))
                .map_err(sql_error)?;
            if !any {
                return Ok(Vec::new());
            }
            let mut statement = conn
                .prepare_cached(
                    "SELECT 1 FROM leads WHERE company_id = ?1 AND created_at = ?2
                     AND user_id = ?3 AND product_id IS ?4",
                )
                .map_err(sql_error)?;
            let mut existing = Vec::new();
            for key in keys {
                let found = statement
                    .exists(params![
                        company.as_str(),
                        key.created_at,
                        key.user_id,
                        key.product_id
                    ])
                    .map_err(sql_error)?;
                if found {
                    existing.push(key);
                }
            }
            Ok(existing)
        })
        .await
    }
}
