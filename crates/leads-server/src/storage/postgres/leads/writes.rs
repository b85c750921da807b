//! Lead writes for PostgreSQL: creating a lead with its idempotency claim, updating one, and
//! forgetting old claims.
//!
//! Each is one transaction, answered only after its COMMIT. Instances race on idempotency keys
//! through the claim's primary key: the claim goes in first, so a second create with the same key,
//! from any instance, waits for the first to commit and then replays its lead.

use super::super::sql::{PgClient, Sql};
use super::{LEAD_COLUMNS, LEAD_JOINS};
use crate::domain::{
    fold, CompanyId, IdempotencyClaim, LeadChange, LeadId, NewLead, ProductId, Timestamp,
};
use crate::storage::postgres::pg_error;
use crate::storage::postgres::stats;
use crate::storage::postgres::webhooks;
use crate::storage::{CreatedLead, LeadRow, StoreError, StoreResult};
use std::sync::LazyLock;
use tokio_postgres::error::SqlState;

/// Checks the user and product and writes the lead in one statement: it answers whether the user
/// exists and whether the row went in (it does not when the product is not the company's), with
/// what the answer shows of the user, product and membership.
/// The lead is counted in its statistics by the same statement (`stats::COUNT_INSERTED_LEAD`,
/// whose `membership` item, read under the conversion lock, also gives the answer's and the
/// event's `member`),
/// and the same statement writes its `lead.created` outbox messages, one per subscribed
/// endpoint, building `data` as `GET /leads/{id}` shows the lead: a create costs no extra round
/// trip for webhooks, and a company without endpoints pays one index probe.
static INSERT_LEAD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH u AS (SELECT email, name, username FROM users WHERE id = $3),
     p AS (SELECT title FROM products WHERE id = $4 AND company_id = $2),
     ins AS (
        INSERT INTO leads (id, company_id, user_id, product_id, referrer, metadata, created_at, updated_at, referrer_folded)
        SELECT $1, $2, $3, $4, $5, $6, $7, $7, $11 FROM u
        WHERE $4::text IS NULL OR EXISTS (SELECT 1 FROM p)
        RETURNING id),
     {counted},
     outbox AS (
        INSERT INTO webhook_messages (id, webhook_id, company_id, event_type, data, created_at, next_attempt_at)
        SELECT {message_id}, w.id, $2, 'lead.created',
               json_build_object(
                   'id', $1::text, 'created_at', $12::text, 'updated_at', $12::text,
                   'referrer', $5::text, 'metadata', $6::json,
                   'user', json_build_object('id', $3::text,
                       'email', CASE WHEN w.show_email THEN u.email END,
                       'name', u.name, 'username', u.username),
                   'product', CASE WHEN $4::text IS NULL THEN NULL
                                   ELSE json_build_object('id', $4::text, 'title', (SELECT title FROM p)) END,
                   'member', (SELECT json_build_object('id', member) FROM membership
                              WHERE member IS NOT NULL))::text,
               $7, $7
        FROM webhooks w, u, ins
        WHERE w.company_id = $2 AND w.enabled AND strpos(w.events, ',lead.created,') > 0
        RETURNING 1)
SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM ins),
       (SELECT email FROM u), (SELECT name FROM u), (SELECT username FROM u),
       (SELECT title FROM p),
       (SELECT member FROM membership),
       EXISTS (SELECT 1 FROM outbox)",
        counted = stats::COUNT_INSERTED_LEAD,
        message_id = webhooks::new_message_id_sql("w.id"),
    )
});

/// Records the lead; answers it and whether any webhook message was queued.
pub(super) async fn create(
    client: &mut PgClient,
    lead: NewLead,
    claim: Option<IdempotencyClaim>,
) -> StoreResult<(CreatedLead, bool)> {
    let Some(claim) = claim else {
        // One statement, its own transaction.
        return insert(&*client, lead, Timestamp::now().as_millis()).await;
    };
    // A claim that vanishes between being found taken and being read (forgotten at that very
    // moment) is tried again.
    for _ in 0..3 {
        let now = Timestamp::now().as_millis();
        let tx = client.transaction().await.map_err(pg_error)?;
        let claimed = tx
            .prepare_cached(
                "INSERT INTO idempotency_claims (credential_id, key, fingerprint, lead_id, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (credential_id, key) DO NOTHING RETURNING 1",
            )
            .await
            .map_err(pg_error)?;
        let claimed = tx
            .query_opt(
                &claimed,
                &[
                    &claim.credential,
                    &claim.key.as_str(),
                    &claim.fingerprint.as_slice(),
                    &lead.id.as_str(),
                    &now,
                ],
            )
            .await
            .map_err(pg_error)?
            .is_some();
        if claimed {
            // An error (an unknown user, say) drops the transaction, and the claim with it.
            let created = insert(&tx, lead, now).await?;
            tx.commit().await.map_err(pg_error)?;
            return Ok(created);
        }
        // The key was used before (ON CONFLICT waited for that create to commit): nothing is
        // written, and the earlier lead is answered.
        let replayed = replay(&tx, &lead, &claim).await?;
        tx.rollback().await.map_err(pg_error)?;
        if let Some(replayed) = replayed {
            return Ok((replayed, false));
        }
    }
    Err(StoreError::Unavailable(
        "an idempotency claim kept changing under this create".into(),
    ))
}

async fn insert(client: &impl Sql, lead: NewLead, now: i64) -> StoreResult<(CreatedLead, bool)> {
    let statement = client
        .prepare_cached(&INSERT_LEAD)
        .await
        .map_err(pg_error)?;
    let (host, quarter, day) = stats::new_lead_params(&lead, now);
    let row = client
        .query_one(
            &statement,
            &[
                &lead.id.as_str(),
                &lead.company.as_str(),
                &lead.user.as_str(),
                &lead.product.as_ref().map(ProductId::as_str),
                &lead.referrer.as_ref().map(|r| r.as_str()),
                &lead.metadata.as_ref().map(|m| m.as_str()),
                &now,
                &host,
                &quarter,
                &day,
                &lead.referrer.as_ref().map(|r| fold(r.as_str())),
                &Timestamp::from_millis(now).map(|t| t.to_string()),
            ],
        )
        .await
        .map_err(|e| {
            // The user and product are checked by the statement itself, so a foreign key that
            // fails is the company's: one a JWT or user token named without the database
            // knowing it.
            if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
                StoreError::Invalid {
                    param: "company_id",
                    reason: format!("no company {} exists", lead.company),
                }
            } else {
                pg_error(e)
            }
        })?;
    let user_exists: bool = row.try_get(0).map_err(pg_error)?;
    let inserted: bool = row.try_get(1).map_err(pg_error)?;
    if !user_exists {
        return Err(StoreError::Invalid {
            param: "user_id",
            reason: format!("no user {} exists", lead.user),
        });
    }
    if !inserted {
        // Unknown products and other companies' products are refused alike, so a company cannot
        // learn which product ids exist elsewhere.
        let product = lead.product.as_ref().map(ProductId::as_str).unwrap_or("");
        return Err(StoreError::Invalid {
            param: "product_id",
            reason: format!("{product} is not a product of company {}", lead.company),
        });
    }
    let read = || -> Result<LeadRow, tokio_postgres::Error> {
        Ok(LeadRow {
            id: lead.id.clone(),
            created_at: now,
            updated_at: now,
            referrer: lead.referrer.as_ref().map(|r| r.as_str().to_owned()),
            metadata: lead.metadata.as_ref().map(|m| m.as_str().to_owned()),
            user_id: lead.user.as_str().to_owned(),
            user_email: row.try_get(2)?,
            user_name: row.try_get(3)?,
            user_username: row.try_get(4)?,
            product_id: lead.product.as_ref().map(|p| p.as_str().to_owned()),
            product_title: row.try_get(5)?,
            member_id: row.try_get(6)?,
        })
    };
    let queued: bool = row.try_get(7).map_err(pg_error)?;
    Ok((
        CreatedLead {
            row: read().map_err(pg_error)?,
            replayed: false,
        },
        queued,
    ))
}

/// The lead an earlier create under the same claim made; `None` when the claim is gone.
async fn replay(
    client: &impl Sql,
    lead: &NewLead,
    claim: &IdempotencyClaim,
) -> StoreResult<Option<CreatedLead>> {
    let statement = client
        .prepare_cached(
            "SELECT fingerprint, lead_id FROM idempotency_claims
             WHERE credential_id = $1 AND key = $2",
        )
        .await
        .map_err(pg_error)?;
    let Some(row) = client
        .query_opt(&statement, &[&claim.credential, &claim.key.as_str()])
        .await
        .map_err(pg_error)?
    else {
        return Ok(None);
    };
    let fingerprint: Vec<u8> = row.try_get(0).map_err(pg_error)?;
    let lead_id: String = row.try_get(1).map_err(pg_error)?;
    if fingerprint != claim.fingerprint {
        return Err(StoreError::Conflict(
            "This Idempotency-Key was already used with a different request body; use a new key for a new lead.".into(),
        ));
    }
    // Same fingerprint, so the same company: the earlier lead is this company's.
    match super::find(client, &lead.company, &LeadId::from_trusted(lead_id)).await? {
        Some(row) => Ok(Some(CreatedLead {
            row,
            replayed: true,
        })),
        None => Err(StoreError::Conflict(
            "The lead this Idempotency-Key created has since been deleted; use a new key to record it again.".into(),
        )),
    }
}

/// Applies `change` and answers the lead as it now is. With `unless_subscribed`, the change is
/// made only when no enabled endpoint of the company subscribes to `lead.updated` (so it can
/// run as its own transaction, with nothing to queue); `None` then means the lead is absent or
/// the company has such an endpoint, which the caller tells apart.
pub(super) async fn update(
    client: &impl Sql,
    company: &CompanyId,
    id: &LeadId,
    change: &LeadChange,
    unless_subscribed: bool,
) -> StoreResult<Option<LeadRow>> {
    let referrer = change
        .referrer
        .as_ref()
        .map(|r| r.as_ref().map(|r| r.as_str()));
    let metadata = change
        .metadata
        .as_ref()
        .map(|m| m.as_ref().map(|m| m.as_str()));
    let guard = if unless_subscribed {
        "AND NOT EXISTS (SELECT 1 FROM webhooks
             WHERE company_id = $2 AND enabled AND strpos(events, ',lead.updated,') > 0)"
    } else {
        ""
    };
    // One statement: the change and the lead as it now is, read in the same snapshot.
    let statement = client
        .prepare_cached(&format!(
            "WITH l AS (
                UPDATE leads SET
                    referrer = CASE WHEN $3 THEN $4 ELSE referrer END,
                    referrer_folded = CASE WHEN $3 THEN $8 ELSE referrer_folded END,
                    metadata = CASE WHEN $5 THEN $6 ELSE metadata END,
                    updated_at = GREATEST($7, updated_at + 1)
                WHERE id = $1 AND company_id = $2 {guard}
                RETURNING *)
             SELECT {LEAD_COLUMNS} FROM l {LEAD_JOINS}"
        ))
        .await
        .map_err(pg_error)?;
    let row = client
        .query_opt(
            &statement,
            &[
                &id.as_str(),
                &company.as_str(),
                &referrer.is_some(),
                &referrer.flatten(),
                &metadata.is_some(),
                &metadata.flatten(),
                &Timestamp::now().as_millis(),
                &referrer.flatten().map(fold),
            ],
        )
        .await
        .map_err(pg_error)?;
    row.as_ref().map(super::lead_row).transpose()
}

pub(super) async fn forget_claims(client: &impl Sql, before: i64, limit: u32) -> StoreResult<u64> {
    let statement = client
        .prepare_cached(
            "DELETE FROM idempotency_claims WHERE (credential_id, key) IN (
                 SELECT credential_id, key FROM idempotency_claims
                 WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
        )
        .await
        .map_err(pg_error)?;
    client
        .execute(&statement, &[&before, &i64::from(limit)])
        .await
        .map_err(pg_error)
}
