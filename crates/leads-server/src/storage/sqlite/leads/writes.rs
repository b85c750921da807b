//! Lead writes for SQLite: creating a lead with its idempotency claim, updating one, and
//! forgetting old claims.
//!
//! Each runs on the writer thread inside its own savepoint of the group transaction, so an error
//! leaves nothing of it behind, and the caller hears of success only after the group's COMMIT.

use crate::domain::webhooks::EventType;
use crate::domain::{
    fold, CompanyId, IdempotencyClaim, LeadChange, LeadId, NewLead, ProductId, Timestamp, UserId,
};
use crate::storage::sqlite::sql_error;
use crate::storage::sqlite::stats;
use crate::storage::sqlite::webhooks;
use crate::storage::stats::CountedLead;
use crate::storage::webhooks::{previous_attributes, EventData};
use crate::storage::{CreatedLead, LeadRow, StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension};

/// Records the lead and its `lead.created` messages; answers it and whether any message was
/// queued.
pub(super) fn create(
    conn: &Connection,
    lead: NewLead,
    claim: Option<&IdempotencyClaim>,
) -> StoreResult<(CreatedLead, bool)> {
    if let Some(claim) = claim {
        if let Some(earlier) = replay(conn, &lead, claim)? {
            return Ok((earlier, false));
        }
    }
    // What the answer shows of the user, product and membership comes from the lookups that
    // check them, rather than from reading the lead back: the writer does every create in turn,
    // so each statement saved here is throughput.
    let user = user(conn, &lead.user)?;
    let product_title = match &lead.product {
        Some(product) => Some(product_title(conn, &lead.company, product)?),
        None => None,
    };
    let member_id = member(conn, &lead.company, &lead.user)?;
    let now = Timestamp::now().as_millis();
    conn.prepare_cached(
        "INSERT INTO leads (id, company_id, user_id, product_id, referrer, metadata, created_at, updated_at, referrer_folded)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
    )
    .and_then(|mut st| {
        st.execute(params![
            lead.id.as_str(),
            lead.company.as_str(),
            lead.user.as_str(),
            lead.product.as_ref().map(ProductId::as_str),
            lead.referrer.as_ref().map(|r| r.as_str()),
            lead.metadata.as_ref().map(|m| m.as_str()),
            now,
            lead.referrer.as_ref().map(|r| fold(r.as_str())),
        ])
    })
    .map_err(|e| {
        // The user and product were checked above, so the company is what is missing: a
        // credential that names its company without the database knowing it (a JWT, a user).
        if is_foreign_key_violation(&e) {
            StoreError::Invalid {
                param: "company_id",
                reason: format!("no company {} exists", lead.company),
            }
        } else {
            sql_error(e)
        }
    })?;
    if let Some(claim) = claim {
        conn.prepare_cached(
            "INSERT INTO idempotency_claims (credential_id, key, fingerprint, lead_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut st| {
            st.execute(params![
                claim.credential,
                claim.key.as_str(),
                claim.fingerprint.as_slice(),
                lead.id.as_str(),
                now,
            ])
        })
        .map_err(sql_error)?;
    }
    stats::count_new_lead(
        conn,
        &CountedLead {
            company: lead.company.as_str(),
            product: lead.product.as_ref().map(ProductId::as_str),
            referrer: lead.referrer.as_ref().map(|r| r.as_str()),
            created_at: now,
            converted: member_id.is_some(),
        },
    )?;
    let company = lead.company;
    let row = LeadRow {
        id: lead.id,
        created_at: now,
        updated_at: now,
        referrer: lead.referrer.map(|r| r.into_string()),
        metadata: lead.metadata.map(|m| m.into_string()),
        user_id: lead.user.into_string(),
        user_email: user.email,
        user_name: user.name,
        user_username: user.username,
        product_id: lead.product.map(ProductId::into_string),
        product_title,
        member_id,
    };
    let queued = webhooks::enqueue(conn, &company, EventType::LeadCreated, now, || {
        EventData::lead(&row, None)
    })?;
    Ok((
        CreatedLead {
            row,
            replayed: false,
        },
        queued,
    ))
}

fn is_foreign_key_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY
    )
}

/// The lead an earlier create under the same claim made, if there was one.
fn replay(
    conn: &Connection,
    lead: &NewLead,
    claim: &IdempotencyClaim,
) -> StoreResult<Option<CreatedLead>> {
    let earlier = conn
        .prepare_cached(
            "SELECT fingerprint, lead_id FROM idempotency_claims
             WHERE credential_id = ?1 AND key = ?2",
        )
        .and_then(|mut st| {
            st.query_row(params![claim.credential, claim.key.as_str()], |row| {
                Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, String>(1)?))
            })
            .optional()
        })
        .map_err(sql_error)?;
    let Some((fingerprint, lead_id)) = earlier else {
        return Ok(None);
    };
    if fingerprint != claim.fingerprint {
        return Err(StoreError::Conflict(
            "This Idempotency-Key was already used with a different request body; use a new key for a new lead.".into(),
        ));
    }
    // Same fingerprint, so the same company: the earlier lead is this company's.
    match super::find(conn, &lead.company, &LeadId::from_trusted(lead_id))? {
        Some(row) => Ok(Some(CreatedLead {
            row,
            replayed: true,
        })),
        None => Err(StoreError::Conflict(
            "The lead this Idempotency-Key created has since been deleted; use a new key to record it again.".into(),
        )),
    }
}

/// What a lead shows of its user.
struct UserFields {
    email: Option<String>,
    name: Option<String>,
    username: String,
}

fn user(conn: &Connection, user: &UserId) -> StoreResult<UserFields> {
    conn.prepare_cached("SELECT email, name, username FROM users WHERE id = ?1")
        .and_then(|mut st| {
            st.query_row(params![user.as_str()], |row| {
                Ok(UserFields {
                    email: row.get(0)?,
                    name: row.get(1)?,
                    username: row.get(2)?,
                })
            })
            .optional()
        })
        .map_err(sql_error)?
        .ok_or_else(|| StoreError::Invalid {
            param: "user_id",
            reason: format!("no user {user} exists"),
        })
}

/// The title of a product of `company`. Unknown products and other companies' products are
/// refused alike, so a company cannot learn which product ids exist elsewhere.
fn product_title(
    conn: &Connection,
    company: &CompanyId,
    product: &ProductId,
) -> StoreResult<String> {
    conn.prepare_cached("SELECT title FROM products WHERE id = ?1 AND company_id = ?2")
        .and_then(|mut st| {
            st.query_row(params![product.as_str(), company.as_str()], |row| {
                row.get(0)
            })
            .optional()
        })
        .map_err(sql_error)?
        .ok_or_else(|| StoreError::Invalid {
            param: "product_id",
            reason: format!("{product} is not a product of company {company}"),
        })
}

/// The member the user became in `company`, if they converted (as `super::LEAD_JOINS` finds it).
fn member(conn: &Connection, company: &CompanyId, user: &UserId) -> StoreResult<Option<String>> {
    conn.prepare_cached("SELECT id FROM members WHERE company_id = ?1 AND user_id = ?2")
        .and_then(|mut st| {
            st.query_row(params![company.as_str(), user.as_str()], |row| row.get(0))
                .optional()
        })
        .map_err(sql_error)
}

/// Applies the change and queues `lead.updated`; answers the lead as it now is and whether any
/// message was queued.
pub(super) fn update(
    conn: &Connection,
    company: &CompanyId,
    id: &LeadId,
    change: &LeadChange,
) -> StoreResult<(Option<LeadRow>, bool)> {
    // The lead before the change, only when someone will be told what changed.
    let before = if webhooks::subscribed(conn, company, EventType::LeadUpdated)? {
        super::find(conn, company, id)?
    } else {
        None
    };
    let referrer = change
        .referrer
        .as_ref()
        .map(|r| r.as_ref().map(|r| r.as_str()));
    let metadata = change
        .metadata
        .as_ref()
        .map(|m| m.as_ref().map(|m| m.as_str()));
    let changed = conn
        .prepare_cached(
            "UPDATE leads SET
                referrer = CASE WHEN ?3 THEN ?4 ELSE referrer END,
                referrer_folded = CASE WHEN ?3 THEN ?8 ELSE referrer_folded END,
                metadata = CASE WHEN ?5 THEN ?6 ELSE metadata END,
                updated_at = MAX(?7, updated_at + 1)
             WHERE id = ?1 AND company_id = ?2",
        )
        .and_then(|mut st| {
            st.execute(params![
                id.as_str(),
                company.as_str(),
                referrer.is_some(),
                referrer.flatten(),
                metadata.is_some(),
                metadata.flatten(),
                Timestamp::now().as_millis(),
                referrer.flatten().map(fold),
            ])
        })
        .map_err(sql_error)?;
    if changed == 0 {
        return Ok((None, false));
    }
    let row = written(conn, company, id)?;
    let queued = match before {
        Some(before) => webhooks::enqueue(
            conn,
            company,
            EventType::LeadUpdated,
            row.updated_at,
            || EventData::lead(&row, Some(&previous_attributes(&before, &row))),
        )?,
        None => false,
    };
    Ok((Some(row), queued))
}

/// A lead this transaction has just written, read back whole.
fn written(conn: &Connection, company: &CompanyId, id: &LeadId) -> StoreResult<LeadRow> {
    super::find(conn, company, id)?
        .ok_or_else(|| StoreError::Internal(format!("lead {id} vanished while being written")))
}

pub(super) fn forget_claims(conn: &Connection, before: i64, limit: u32) -> StoreResult<u64> {
    conn.prepare_cached(
        "DELETE FROM idempotency_claims WHERE (credential_id, key) IN (
             SELECT credential_id, key FROM idempotency_claims
             WHERE created_at < ?1 ORDER BY created_at LIMIT ?2)",
    )
    .and_then(|mut st| st.execute(params![before, limit]))
    .map(|n| n as u64)
    .map_err(sql_error)
}
