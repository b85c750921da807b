//! Lead statistics for SQLite: `lead_counts` kept in step with the writes (each of these runs
//! on the writer thread, inside the write's own transaction), and read by time range.

use super::{sql_error, SqliteStore};
use crate::domain::{CompanyId, LeadChange, LeadId};
use crate::storage::stats::{
    raw_rows, referrer_host, CountQuery, CountRow, CountedLead, GroupBy, StatsStore, Tally, DAY_MS,
    QUARTER_MS,
};
use crate::storage::{SeedBatch, StoreResult};
use rusqlite::functions::FunctionFlags;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;

/// Makes `referrer_host(text)` callable from SQL on `conn`, as the migration that fills
/// `lead_counts` for existing leads needs.
pub(super) fn register_functions(conn: &Connection) -> StoreResult<()> {
    conn.create_scalar_function(
        "referrer_host",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| Ok(referrer_host(ctx.get::<Option<String>>(0)?.as_deref())),
    )
    .map_err(sql_error)
}

/// Adds `tally` to `lead_counts`.
fn apply(conn: &Connection, tally: Tally) -> StoreResult<()> {
    let mut upsert = conn
        .prepare_cached(
            "INSERT INTO lead_counts (company_id, level, bucket, product_id, referrer_host, leads, converted)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (company_id, level, bucket, product_id, referrer_host, shard) DO UPDATE SET
                 leads = leads + excluded.leads, converted = converted + excluded.converted",
        )
        .map_err(sql_error)?;
    for (key, leads, converted) in tally.into_rows() {
        upsert
            .execute(params![
                key.company,
                key.level,
                key.bucket,
                key.product,
                key.referrer_host,
                leads,
                converted
            ])
            .map_err(sql_error)?;
    }
    Ok(())
}

/// Counts a lead just created: both of its buckets in one statement, as the writer thread does
/// every create in turn.
pub(super) fn count_new_lead(conn: &Connection, lead: &CountedLead<'_>) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO lead_counts (company_id, level, bucket, product_id, referrer_host, leads, converted)
         VALUES (?1, 0, ?2, ?4, ?5, 1, ?6), (?1, 1, ?3, ?4, ?5, 1, ?6)
         ON CONFLICT (company_id, level, bucket, product_id, referrer_host, shard) DO UPDATE SET
             leads = leads + 1, converted = converted + excluded.converted",
    )
    .and_then(|mut st| {
        st.execute(params![
            lead.company,
            lead.created_at - lead.created_at.rem_euclid(QUARTER_MS),
            lead.created_at - lead.created_at.rem_euclid(DAY_MS),
            lead.product.unwrap_or(""),
            referrer_host(lead.referrer),
            i64::from(lead.converted),
        ])
    })
    .map(|_| ())
    .map_err(sql_error)
}

/// A stored lead as statistics see it: `(company, product, referrer, created_at, converted)`.
type StoredLead = (String, Option<String>, Option<String>, i64, bool);

fn stored_lead(conn: &Connection, id: &LeadId) -> StoreResult<Option<StoredLead>> {
    conn.prepare_cached(
        "SELECT l.company_id, l.product_id, l.referrer, l.created_at,
                EXISTS (SELECT 1 FROM members m WHERE m.company_id = l.company_id AND m.user_id = l.user_id)
         FROM leads l WHERE l.id = ?1",
    )
    .and_then(|mut st| {
        st.query_row(params![id.as_str()], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
        })
        .optional()
    })
    .map_err(sql_error)
}

fn counted((company, product, referrer, created_at, converted): &StoredLead) -> CountedLead<'_> {
    CountedLead {
        company,
        product: product.as_deref(),
        referrer: referrer.as_deref(),
        created_at: *created_at,
        converted: *converted,
    }
}

/// Uncounts the lead `id`, about to be erased; nothing when there is no such lead.
pub(super) fn forget_lead(conn: &Connection, id: &LeadId) -> StoreResult<()> {
    let Some(lead) = stored_lead(conn, id)? else {
        return Ok(());
    };
    let mut tally = Tally::default();
    tally.add(&counted(&lead), -1);
    apply(conn, tally)
}

/// Moves the lead `id` of `company` to the referrer host `change` gives it, before the change
/// is written; nothing when the referrer stays or there is no such lead.
pub(super) fn change_referrer(
    conn: &Connection,
    company: &CompanyId,
    id: &LeadId,
    change: &LeadChange,
) -> StoreResult<()> {
    let Some(referrer) = &change.referrer else {
        return Ok(());
    };
    let Some(lead) = stored_lead(conn, id)? else {
        return Ok(());
    };
    let new_referrer = referrer.as_ref().map(|r| r.as_str());
    if lead.0 != company.as_str() || referrer_host(lead.2.as_deref()) == referrer_host(new_referrer)
    {
        return Ok(());
    }
    let mut tally = Tally::default();
    tally.add(&counted(&lead), -1);
    tally.add(
        &CountedLead {
            referrer: new_referrer,
            ..counted(&lead)
        },
        1,
    );
    apply(conn, tally)
}

/// Counts as converted the past leads of `user` in `company`, who has just become a member.
pub(super) fn count_conversion(conn: &Connection, company: &str, user: &str) -> StoreResult<()> {
    let leads = user_leads(conn, company, user)?;
    let mut tally = Tally::default();
    for (_, product, referrer, created_at) in &leads {
        tally.convert(
            &CountedLead {
                company,
                product: product.as_deref(),
                referrer: referrer.as_deref(),
                created_at: *created_at,
                converted: true,
            },
            1,
        );
    }
    apply(conn, tally)
}

/// A lead of one user: `(id, product, referrer, created_at)`.
type UserLead = (String, Option<String>, Option<String>, i64);

/// The leads of `user` in `company`.
fn user_leads(conn: &Connection, company: &str, user: &str) -> StoreResult<Vec<UserLead>> {
    conn.prepare_cached(
        "SELECT id, product_id, referrer, created_at FROM leads
         WHERE user_id = ?1 AND company_id = ?2",
    )
    .and_then(|mut st| {
        st.query_map(params![user, company], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect()
    })
    .map_err(sql_error)
}

/// Counts a seed batch just written: its leads, and the conversions its members make of
/// leads written before it. Summed in memory, then added row by row.
pub(super) fn count_seed(conn: &Connection, batch: &SeedBatch) -> StoreResult<()> {
    let mut tally = Tally::default();
    let members: HashSet<(&str, &str)> = batch
        .members
        .iter()
        .map(|m| (m.company_id.as_str(), m.user_id.as_str()))
        .collect();
    let new_users: HashSet<&str> = batch.users.iter().map(|u| u.id.as_str()).collect();
    let batch_leads: HashSet<&str> = batch.leads.iter().map(|l| l.id.as_str()).collect();
    // Earlier leads of the users who became members in this batch now count as converted.
    for member in &batch.members {
        for (id, product, referrer, created_at) in
            user_leads(conn, &member.company_id, &member.user_id)?
        {
            if batch_leads.contains(id.as_str()) {
                continue;
            }
            tally.convert(
                &CountedLead {
                    company: &member.company_id,
                    product: product.as_deref(),
                    referrer: referrer.as_deref(),
                    created_at,
                    converted: true,
                },
                1,
            );
        }
    }
    let mut is_member = conn
        .prepare_cached("SELECT 1 FROM members WHERE company_id = ?1 AND user_id = ?2")
        .map_err(sql_error)?;
    for lead in &batch.leads {
        let pair = (lead.company_id.as_str(), lead.user_id.as_str());
        // A user made in this batch can only be a member through this batch.
        let converted = members.contains(&pair)
            || (!new_users.contains(pair.1)
                && is_member
                    .exists(params![pair.0, pair.1])
                    .map_err(sql_error)?);
        tally.add(
            &CountedLead {
                company: &lead.company_id,
                product: lead.product_id.as_deref(),
                referrer: lead.referrer.as_deref(),
                created_at: lead.created_at,
                converted,
            },
            1,
        );
    }
    apply(conn, tally)
}

/// The counts `query` asks for.
pub(super) fn lead_counts(conn: &Connection, query: &CountQuery) -> StoreResult<Vec<CountRow>> {
    let mut rows = Vec::new();
    for span in &query.spans {
        match span.level.column() {
            None => rows.extend(raw(conn, query, span.from, span.to)?),
            Some(level) => {
                let group = match query.group_by {
                    None => "''",
                    Some(GroupBy::Product) => "product_id",
                    Some(GroupBy::ReferrerHost) => "referrer_host",
                };
                let sql = format!(
                    "SELECT bucket, {group}, SUM(leads), SUM(converted) FROM lead_counts
                     WHERE company_id = ?1 AND level = ?2 AND bucket >= ?3 AND bucket < ?4
                       AND (?5 IS NULL OR product_id = ?5) AND (?6 IS NULL OR referrer_host = ?6)
                     GROUP BY bucket, 2"
                );
                let mut st = conn.prepare_cached(&sql).map_err(sql_error)?;
                let found = st
                    .query_map(
                        params![
                            query.company.as_str(),
                            level,
                            span.from,
                            span.to,
                            query.product,
                            query.referrer_host
                        ],
                        |row| {
                            Ok(CountRow {
                                at: row.get(0)?,
                                key: row.get(1)?,
                                leads: row.get(2)?,
                                converted: row.get(3)?,
                            })
                        },
                    )
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(sql_error)?;
                rows.extend(found);
            }
        }
    }
    Ok(rows)
}

/// Leads of `[from, to)` read one by one (for edges and sub-quarter periods).
fn raw(conn: &Connection, query: &CountQuery, from: i64, to: i64) -> StoreResult<Vec<CountRow>> {
    let mut st = conn
        .prepare_cached(
            "SELECT l.created_at, l.product_id, l.referrer,
                    EXISTS (SELECT 1 FROM members m WHERE m.company_id = l.company_id AND m.user_id = l.user_id)
             FROM leads l
             WHERE l.company_id = ?1 AND l.created_at >= ?2 AND l.created_at < ?3
               AND (?4 IS NULL OR COALESCE(l.product_id, '') = ?4)",
        )
        .map_err(sql_error)?;
    let leads = st
        .query_map(
            params![query.company.as_str(), from, to, query.product],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(sql_error)?;
    Ok(raw_rows(query, leads))
}

#[async_trait::async_trait]
impl StatsStore for SqliteStore {
    async fn lead_counts(&self, query: CountQuery) -> StoreResult<Vec<CountRow>> {
        self.read(move |conn| lead_counts(conn, &query)).await
    }

    async fn fold_lead_counts(&self) -> StoreResult<u64> {
        // Every write adds to `lead_counts` itself, in its own transaction.
        Ok(0)
    }
}
