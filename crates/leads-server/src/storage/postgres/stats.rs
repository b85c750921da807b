//! Lead statistics for PostgreSQL: `lead_counts` kept in step with the writes (each of these
//! runs inside the write's own transaction, or is part of its one statement), and read by time
//! range in one statement.

use super::sql::Sql;
use super::{pg_error, PgStore};
use crate::domain::{CompanyId, LeadChange, LeadId, NewLead};
use crate::storage::stats::{
    raw_rows, referrer_host, CountQuery, CountRow, CountedLead, GroupBy, Level, StatsStore, Tally,
    DAY_MS, QUARTER_MS,
};
use crate::storage::{SeedBatch, StoreResult};
use std::collections::HashSet;
use std::sync::atomic::Ordering;

/// `WITH` items for the statement that inserts a lead (whose insert is the item `ins`, with the
/// company as `$2`, the user as `$3` and the product as `$4`): count the lead, if it went in, in
/// the same statement. Their parameters are [`new_lead_params`], as `$8` to `$10`.
///
/// The membership is read once, after the conversion lock (`leads_member_under_lock`,
/// migrations 10 and 11), as the item `membership` with one column, `member` (the member's id,
/// or NULL): the lead is counted converted when it is set, and the statement may read it too
/// (the create answers it and puts it in `lead.created`). The function is VOLATILE, so
/// PostgreSQL evaluates the item that calls it once rather than inlining it.
///
/// The lead is counted by appending a row to `lead_count_deltas` (migration 12), which
/// `leads serve` later adds to `lead_counts` ([`StatsStore::fold_lead_counts`]) and readers sum
/// with it: an append to a
/// table without indexes costs a create about 1% of its database time, where adding to a hot
/// `lead_counts` row cost about a fifth.
pub(super) const COUNT_INSERTED_LEAD: &str = "membership AS (
        SELECT leads_member_under_lock($2, $3) AS member FROM ins),
     counted AS (
        INSERT INTO lead_count_deltas (company_id, quarter, day, product_id, referrer_host, converted)
        SELECT $2, $9::bigint, $10::bigint, COALESCE($4, ''), $8, m.member IS NOT NULL
        FROM membership m)";

/// The parameters of [`COUNT_INSERTED_LEAD`] for `lead` created at `now`: its referrer host and
/// the starts of its quarter-hour and day buckets.
pub(super) fn new_lead_params(lead: &NewLead, now: i64) -> (String, i64, i64) {
    (
        referrer_host(lead.referrer.as_ref().map(|r| r.as_str())),
        now - now.rem_euclid(QUARTER_MS),
        now - now.rem_euclid(DAY_MS),
    )
}

/// Adds `tally` to `lead_counts` in one statement.
async fn apply(client: &impl Sql, tally: Tally) -> StoreResult<()> {
    let rows = tally.into_rows();
    if rows.is_empty() {
        return Ok(());
    }
    let statement = client
        .prepare_cached(
            "INSERT INTO lead_counts (company_id, level, bucket, product_id, referrer_host, leads, converted)
             SELECT * FROM unnest($1::text[], $2::smallint[], $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::bigint[])
             ON CONFLICT (company_id, level, bucket, product_id, referrer_host, shard) DO UPDATE SET
                 leads = lead_counts.leads + EXCLUDED.leads,
                 converted = lead_counts.converted + EXCLUDED.converted",
        )
        .await
        .map_err(pg_error)?;
    let companies: Vec<&str> = rows.iter().map(|r| r.0.company.as_str()).collect();
    let levels: Vec<i16> = rows.iter().map(|r| r.0.level as i16).collect();
    let buckets: Vec<i64> = rows.iter().map(|r| r.0.bucket).collect();
    let products: Vec<&str> = rows.iter().map(|r| r.0.product.as_str()).collect();
    let hosts: Vec<&str> = rows.iter().map(|r| r.0.referrer_host.as_str()).collect();
    let leads: Vec<i64> = rows.iter().map(|r| r.1).collect();
    let converted: Vec<i64> = rows.iter().map(|r| r.2).collect();
    client
        .execute(
            &statement,
            &[
                &companies, &levels, &buckets, &products, &hosts, &leads, &converted,
            ],
        )
        .await
        .map_err(pg_error)?;
    Ok(())
}

/// A stored lead as statistics see it: `(company, product, referrer, created_at, converted)`,
/// locked for the rest of the transaction.
type StoredLead = (String, Option<String>, Option<String>, i64, bool);

async fn stored_lead(client: &impl Sql, id: &LeadId) -> StoreResult<Option<StoredLead>> {
    let statement = client
        .prepare_cached(
            "SELECT l.company_id, l.product_id, l.referrer, l.created_at,
                    leads_member_under_lock(l.company_id, l.user_id) IS NOT NULL
             FROM leads l WHERE l.id = $1 FOR UPDATE OF l",
        )
        .await
        .map_err(pg_error)?;
    let Some(row) = client
        .query_opt(&statement, &[&id.as_str()])
        .await
        .map_err(pg_error)?
    else {
        return Ok(None);
    };
    let read = || -> Result<StoredLead, tokio_postgres::Error> {
        Ok((
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
        ))
    };
    read().map(Some).map_err(pg_error)
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

/// Uncounts the lead `id`, about to be erased in the same transaction; nothing when absent.
pub(super) async fn forget_lead(client: &impl Sql, id: &LeadId) -> StoreResult<()> {
    let Some(lead) = stored_lead(client, id).await? else {
        return Ok(());
    };
    let mut tally = Tally::default();
    tally.add(&counted(&lead), -1);
    apply(client, tally).await
}

/// Moves the lead `id` of `company` to the referrer host `change` gives it, before the change is
/// written in the same transaction; nothing when the host stays or there is no such lead.
pub(super) async fn change_referrer(
    client: &impl Sql,
    company: &CompanyId,
    id: &LeadId,
    change: &LeadChange,
) -> StoreResult<()> {
    let Some(referrer) = &change.referrer else {
        return Ok(());
    };
    let Some(lead) = stored_lead(client, id).await? else {
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
    apply(client, tally).await
}

/// The leads of these `(company, user)` pairs: `(id, company, product, referrer, created_at)`.
async fn pair_leads(
    client: &impl Sql,
    companies: &[&str],
    users: &[&str],
) -> StoreResult<Vec<(String, String, Option<String>, Option<String>, i64)>> {
    if companies.is_empty() {
        return Ok(Vec::new());
    }
    let statement = client
        .prepare_cached(
            "SELECT l.id, l.company_id, l.product_id, l.referrer, l.created_at
             FROM unnest($1::text[], $2::text[]) AS p (company_id, user_id)
             JOIN leads l ON l.user_id = p.user_id AND l.company_id = p.company_id",
        )
        .await
        .map_err(pg_error)?;
    client
        .query(&statement, &[&companies, &users])
        .await
        .map_err(pg_error)?
        .iter()
        .map(|row| {
            Ok((
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
                row.try_get(4)?,
            ))
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(pg_error)
}

/// Counts as converted the past leads of `user` in `company`, who has just become a member in
/// the same transaction.
pub(super) async fn count_conversion(
    client: &impl Sql,
    company: &str,
    user: &str,
) -> StoreResult<()> {
    let mut tally = Tally::default();
    for (_, company, product, referrer, created_at) in
        pair_leads(client, &[company], &[user]).await?
    {
        tally.convert(
            &CountedLead {
                company: &company,
                product: product.as_deref(),
                referrer: referrer.as_deref(),
                created_at,
                converted: true,
            },
            1,
        );
    }
    apply(client, tally).await
}

/// Counts a seed batch just written in the same transaction: its leads, and the conversions its
/// members make of leads written before it. Summed in memory, then added in one statement.
pub(super) async fn count_seed(client: &impl Sql, batch: &SeedBatch) -> StoreResult<()> {
    let mut tally = Tally::default();
    let batch_leads: HashSet<&str> = batch.leads.iter().map(|l| l.id.as_str()).collect();
    let member_companies: Vec<&str> = batch
        .members
        .iter()
        .map(|m| m.company_id.as_str())
        .collect();
    let member_users: Vec<&str> = batch.members.iter().map(|m| m.user_id.as_str()).collect();
    for (id, company, product, referrer, created_at) in
        pair_leads(client, &member_companies, &member_users).await?
    {
        if batch_leads.contains(id.as_str()) {
            continue;
        }
        tally.convert(
            &CountedLead {
                company: &company,
                product: product.as_deref(),
                referrer: referrer.as_deref(),
                created_at,
                converted: true,
            },
            1,
        );
    }
    // Which leads' users are members: those of this batch, and, for users made before it, any.
    let mut members: HashSet<(String, String)> = batch
        .members
        .iter()
        .map(|m| (m.company_id.clone(), m.user_id.clone()))
        .collect();
    let new_users: HashSet<&str> = batch.users.iter().map(|u| u.id.as_str()).collect();
    let (companies, users): (Vec<&str>, Vec<&str>) = batch
        .leads
        .iter()
        .filter(|l| !new_users.contains(l.user_id.as_str()))
        .map(|l| (l.company_id.as_str(), l.user_id.as_str()))
        .unzip();
    if !companies.is_empty() {
        let statement = client
            .prepare_cached(
                "SELECT m.company_id, m.user_id FROM unnest($1::text[], $2::text[]) AS p (company_id, user_id)
                 JOIN members m ON m.company_id = p.company_id AND m.user_id = p.user_id",
            )
            .await
            .map_err(pg_error)?;
        for row in client
            .query(&statement, &[&companies, &users])
            .await
            .map_err(pg_error)?
        {
            members.insert((
                row.try_get(0).map_err(pg_error)?,
                row.try_get(1).map_err(pg_error)?,
            ));
        }
    }
    for lead in &batch.leads {
        let converted = members.contains(&(lead.company_id.clone(), lead.user_id.clone()));
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
    apply(client, tally).await
}

/// The counts `query` asks for, in one statement (one snapshot): buckets summed per bucket and
/// group, and the raw ranges' leads one by one.
pub(super) async fn lead_counts(
    client: &impl Sql,
    query: &CountQuery,
) -> StoreResult<Vec<CountRow>> {
    let (group, group_by) = match query.group_by {
        None => ("''", "c.bucket"),
        Some(GroupBy::Product) => ("c.product_id", "c.bucket, c.product_id"),
        Some(GroupBy::ReferrerHost) => ("c.referrer_host", "c.bucket, c.referrer_host"),
    };
    let statement = client
        .prepare_cached(&format!(
            "WITH pending AS MATERIALIZED (
                 SELECT b.level, b.bucket, d.product_id, d.referrer_host,
                        count(*) AS leads, count(*) FILTER (WHERE d.converted) AS converted
                 FROM lead_count_deltas d
                 CROSS JOIN LATERAL (VALUES (0::smallint, d.quarter), (1::smallint, d.day)) AS b (level, bucket)
                 WHERE d.company_id = $1
                   AND ($5::text IS NULL OR d.product_id = $5)
                   AND ($6::text IS NULL OR d.referrer_host = $6)
                 GROUP BY 1, 2, 3, 4)
             SELECT false, c.bucket, {group}, NULL::text, SUM(c.leads)::bigint, SUM(c.converted)::bigint
             FROM unnest($2::smallint[], $3::bigint[], $4::bigint[]) AS s (level, lo, hi)
             CROSS JOIN LATERAL (
                 SELECT lc.bucket, lc.product_id, lc.referrer_host, lc.leads, lc.converted
                 FROM lead_counts lc
                 WHERE lc.company_id = $1 AND lc.level = s.level AND lc.bucket >= s.lo AND lc.bucket < s.hi
                   AND ($5::text IS NULL OR lc.product_id = $5)
                   AND ($6::text IS NULL OR lc.referrer_host = $6)
                 UNION ALL
                 SELECT p.bucket, p.product_id, p.referrer_host, p.leads, p.converted
                 FROM pending p
                 WHERE p.level = s.level AND p.bucket >= s.lo AND p.bucket < s.hi) c
             GROUP BY {group_by}
             UNION ALL
             SELECT true, l.created_at, l.product_id, l.referrer, 1::bigint,
                    (EXISTS (SELECT 1 FROM members m WHERE m.company_id = l.company_id AND m.user_id = l.user_id))::int::bigint
             FROM unnest($7::bigint[], $8::bigint[]) AS r (lo, hi)
             CROSS JOIN LATERAL (
                 SELECT lr.company_id, lr.user_id, lr.created_at, lr.product_id, lr.referrer
                 FROM leads lr
                 WHERE lr.company_id = $1 AND lr.created_at >= r.lo AND lr.created_at < r.hi
                   AND ($5::text IS NULL OR COALESCE(lr.product_id, '') = $5)) l"
        ))
        .await
        .map_err(pg_error)?;
    let bucketed: Vec<_> = query
        .spans
        .iter()
        .filter(|s| s.level != Level::Raw)
        .collect();
    let raw: Vec<_> = query
        .spans
        .iter()
        .filter(|s| s.level == Level::Raw)
        .collect();
    let levels: Vec<i16> = bucketed
        .iter()
        .map(|s| s.level.column().unwrap_or(0) as i16)
        .collect();
    let los: Vec<i64> = bucketed.iter().map(|s| s.from).collect();
    let his: Vec<i64> = bucketed.iter().map(|s| s.to).collect();
    let raw_los: Vec<i64> = raw.iter().map(|s| s.from).collect();
    let raw_his: Vec<i64> = raw.iter().map(|s| s.to).collect();
    let found = client
        .query(
            &statement,
            &[
                &query.company.as_str(),
                &levels,
                &los,
                &his,
                &query.product,
                &query.referrer_host,
                &raw_los,
                &raw_his,
            ],
        )
        .await
        .map_err(pg_error)?;
    let mut rows = Vec::with_capacity(found.len());
    let mut leads = Vec::new();
    for row in &found {
        let mut read = || -> Result<(), tokio_postgres::Error> {
            let at: i64 = row.try_get(1)?;
            if row.try_get::<_, bool>(0)? {
                let product: Option<String> = row.try_get(2)?;
                let converted: i64 = row.try_get(5)?;
                leads.push((at, product, row.try_get(3)?, converted > 0));
            } else {
                rows.push(CountRow {
                    at,
                    key: row.try_get(2)?,
                    leads: row.try_get(4)?,
                    converted: row.try_get(5)?,
                });
            }
            Ok(())
        };
        read().map_err(pg_error)?;
    }
    rows.extend(raw_rows(query, leads));
    Ok(rows)
}

/// Rows of `lead_count_deltas` one [`fold_batch`] moves at most.
const FOLD_BATCH: i64 = 10_000;
/// Rows an instance folds between two vacuums of `lead_count_deltas` (migration 12).
const VACUUM_AFTER: u64 = 20_000;

/// Moves up to [`FOLD_BATCH`] of the leads counted in `lead_count_deltas` into `lead_counts`, in
/// one statement (its own transaction: the rows are deleted and added in one step, so a reader
/// sees them on one side or the other, never both or neither); answers how many it moved.
///
/// The rows are taken `FOR UPDATE SKIP LOCKED`, so two instances folding at once take different
/// rows and never move one twice. The bucket rows are added in the order of
/// [`Tally::into_rows`] (bytewise on the text columns), as every other writer of `lead_counts`
/// adds them, so that two writers never wait for each other in a cycle.
async fn fold_batch(client: &impl Sql) -> StoreResult<u64> {
    let statement = client
        .prepare_cached(
            "WITH moved AS (
                 DELETE FROM lead_count_deltas
                 WHERE ctid IN (SELECT ctid FROM lead_count_deltas LIMIT $1 FOR UPDATE SKIP LOCKED)
                 RETURNING company_id, quarter, day, product_id, referrer_host, converted),
             added AS (
                 INSERT INTO lead_counts (company_id, level, bucket, product_id, referrer_host, leads, converted)
                 SELECT m.company_id, b.level, b.bucket, m.product_id, m.referrer_host,
                        count(*), count(*) FILTER (WHERE m.converted)
                 FROM moved m
                 CROSS JOIN LATERAL (VALUES (0::smallint, m.quarter), (1::smallint, m.day)) AS b (level, bucket)
                 GROUP BY 1, 2, 3, 4, 5
                 ORDER BY m.company_id COLLATE \"C\", b.level, b.bucket,
                          m.product_id COLLATE \"C\", m.referrer_host COLLATE \"C\"
                 ON CONFLICT (company_id, level, bucket, product_id, referrer_host, shard) DO UPDATE SET
                     leads = lead_counts.leads + EXCLUDED.leads,
                     converted = lead_counts.converted + EXCLUDED.converted
                 RETURNING 1)
             SELECT count(*) FROM moved",
        )
        .await
        .map_err(pg_error)?;
    let moved: i64 = client
        .query_one(&statement, &[&FOLD_BATCH])
        .await
        .map_err(pg_error)?
        .try_get(0)
        .map_err(pg_error)?;
    Ok(moved as u64)
}

#[async_trait::async_trait]
impl StatsStore for PgStore {
    async fn lead_counts(&self, query: CountQuery) -> StoreResult<Vec<CountRow>> {
        let client = self.client().await?;
        lead_counts(&client, &query).await
    }

    async fn fold_lead_counts(&self) -> StoreResult<u64> {
        // A batch at a time, each retried on a serialization failure (a fold reads the whole
        // table that creates append to, which SERIALIZABLE engines may refuse now and then).
        let mut moved = 0;
        loop {
            let batch = self
                .retrying(|client| async move { fold_batch(&client).await })
                .await?;
            moved += batch;
            if batch < FOLD_BATCH as u64 {
                break;
            }
        }
        let folded = self.folded_since_vacuum.fetch_add(moved, Ordering::Relaxed) + moved;
        if folded >= VACUUM_AFTER {
            self.folded_since_vacuum.store(0, Ordering::Relaxed);
            // Dead rows left for autovacuum's next round (once a minute) would be walked by
            // every read and fold until then. Failing here loses nothing.
            let client = self.client().await?;
            if let Err(error) = client.batch_execute("VACUUM lead_count_deltas").await {
                tracing::warn!(%error, "vacuuming lead_count_deltas failed; autovacuum will");
            }
        }
        Ok(moved)
    }
}
