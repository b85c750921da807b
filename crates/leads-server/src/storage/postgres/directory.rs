//! The directory for PostgreSQL: companies, products, users and members, and bulk seeding.

use super::leads::search;
use super::sql::{PgClient, PgTx, Sql};
use super::{insert_for_company, is_unique_violation, pg_error, stats, ts, webhooks, PgStore};
use crate::domain::webhooks::EventType;
use crate::domain::{fold, CompanyId, MemberId, ProductId, UserId};
use crate::storage::webhooks::EventData;
use crate::storage::{
    Company, DirectoryStore, Member, Product, SeedBatch, StoreError, StoreResult, User,
};
use async_trait::async_trait;
use leads_types::Timestamp;
use tokio_postgres::types::ToSql;

#[async_trait]
impl DirectoryStore for PgStore {
    async fn create_company(&self, title: String) -> StoreResult<Company> {
        let company = Company {
            id: CompanyId::generate().into_string(),
            title,
            created_at: Timestamp::now(),
        };
        let client = self.client().await?;
        let statement = client
            .prepare_cached("INSERT INTO companies (id, title, created_at) VALUES ($1, $2, $3)")
            .await
            .map_err(pg_error)?;
        client
            .execute(
                &statement,
                &[&company.id, &company.title, &company.created_at.as_millis()],
            )
            .await
            .map_err(pg_error)?;
        Ok(company)
    }

    async fn create_product(&self, company: CompanyId, title: String) -> StoreResult<Product> {
        let product = Product {
            id: ProductId::generate().into_string(),
            company_id: company.as_str().to_owned(),
            title,
            created_at: Timestamp::now(),
        };
        let client = self.client().await?;
        insert_for_company(
            &client,
            &company,
            "INSERT INTO products (id, company_id, title, created_at)
             SELECT $1, id, $3, $4 FROM companies WHERE id = $2",
            &[
                &product.id,
                &product.company_id,
                &product.title,
                &product.created_at.as_millis(),
            ],
        )
        .await?;
        Ok(product)
    }

    async fn list_products(&self, company: CompanyId) -> StoreResult<Vec<Product>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT id, company_id, title, created_at FROM products
                 WHERE company_id = $1 ORDER BY title, id",
            )
            .await
            .map_err(pg_error)?;
        let rows = client
            .query(&statement, &[&company.as_str()])
            .await
            .map_err(pg_error)?;
        rows.iter()
            .map(|row| {
                Ok(Product {
                    id: row.try_get(0).map_err(pg_error)?,
                    company_id: row.try_get(1).map_err(pg_error)?,
                    title: row.try_get(2).map_err(pg_error)?,
                    created_at: ts(row.try_get(3).map_err(pg_error)?),
                })
            })
            .collect()
    }

    async fn create_user(
        &self,
        username: String,
        email: Option<String>,
        name: Option<String>,
    ) -> StoreResult<User> {
        let user = User {
            id: UserId::generate().into_string(),
            username,
            email,
            name,
            created_at: Timestamp::now(),
        };
        let mut client = self.client().await?;
        // The user and its search row in one transaction.
        let client = client.transaction().await.map_err(pg_error)?;
        let statement = client
            .prepare_cached(
                "INSERT INTO users (id, username, email, name, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .await
            .map_err(pg_error)?;
        client
            .execute(
                &statement,
                &[
                    &user.id,
                    &user.username,
                    &user.email,
                    &user.name,
                    &user.created_at.as_millis(),
                ],
            )
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("the username {:?} is taken", user.username))
                } else {
                    pg_error(e)
                }
            })?;
        search::index_users(
            &client,
            &[user.id.as_str()],
            &[user.username.as_str()],
            &[user.name.as_deref()],
            &[user.email.as_deref()],
        )
        .await?;
        client.commit().await.map_err(pg_error)?;
        Ok(user)
    }

    async fn create_member(&self, company: CompanyId, user: UserId) -> StoreResult<Member> {
        let member = Member {
            id: MemberId::generate().into_string(),
            company_id: company.as_str().to_owned(),
            user_id: user.as_str().to_owned(),
            created_at: Timestamp::now(),
        };
        let (member, company, user) = (&member, &company, &user);
        self.retrying(|mut client| async move {
            // The conversion moves the user's past leads here to converted, in this transaction.
            let tx = client.transaction().await.map_err(pg_error)?;
            // Alone with this user's leads here until commit: a lead being written waits, and
            // one written meanwhile has committed before the statements below read the leads
            // (migration 10).
            let lock = tx
                .prepare_cached("SELECT pg_advisory_xact_lock(leads_conversion_key($1, $2))")
                .await
                .map_err(pg_error)?;
            tx.query_one(&lock, &[&member.company_id, &member.user_id])
                .await
                .map_err(pg_error)?;
            // One statement tells the three outcomes apart: which of company and user exist, and
            // whether the row went in. Neither companies nor users are ever deleted.
            let statement = tx
                .prepare_cached(
                    "WITH c AS (SELECT id FROM companies WHERE id = $2),
                          u AS (SELECT id FROM users WHERE id = $3),
                          ins AS (
                            INSERT INTO members (id, company_id, user_id, created_at)
                            SELECT $1, c.id, u.id, $4 FROM c, u
                            ON CONFLICT (company_id, user_id) DO NOTHING
                            RETURNING id)
                     SELECT EXISTS (SELECT 1 FROM c), EXISTS (SELECT 1 FROM u),
                            EXISTS (SELECT 1 FROM ins)",
                )
                .await
                .map_err(pg_error)?;
            let row = tx
                .query_one(
                    &statement,
                    &[
                        &member.id,
                        &member.company_id,
                        &member.user_id,
                        &member.created_at.as_millis(),
                    ],
                )
                .await
                .map_err(pg_error)?;
            let flags: (bool, bool, bool) = (
                row.try_get(0).map_err(pg_error)?,
                row.try_get(1).map_err(pg_error)?,
                row.try_get(2).map_err(pg_error)?,
            );
            match flags {
                (false, _, _) => Err(StoreError::NotFound(format!("no company {company}"))),
                (true, false, _) => Err(StoreError::NotFound(format!("no user {user}"))),
                (true, true, false) => Err(StoreError::Conflict(format!(
                    "user {user} is already a member of company {company}"
                ))),
                (true, true, true) => {
                    stats::count_conversion(&tx, &member.company_id, &member.user_id).await?;
                    // Each of the user's leads here converted: `lead.converted`, in this
                    // transaction.
                    let mut queued = false;
                    if webhooks::subscribed(&tx, company, EventType::LeadConverted).await? {
                        let now = member.created_at.as_millis();
                        for lead in super::leads::of_user(&tx, company, user).await? {
                            queued |= webhooks::enqueue(
                                &tx,
                                company,
                                EventType::LeadConverted,
                                now,
                                || EventData::lead(&lead, None),
                            )
                            .await?;
                        }
                    }
                    tx.commit().await.map_err(pg_error)?;
                    Ok((member.clone(), queued))
                }
            }
        })
        .await
        .map(|(member, queued)| {
            if queued {
                self.wakeup.notify_one();
            }
            member
        })
    }

    async fn insert_seed(&self, batch: SeedBatch) -> StoreResult<()> {
        let mut client = self.client().await?;
        insert_seed(&mut client, &batch).await
    }

    async fn analyze(&self) -> StoreResult<()> {
        let client = self.client().await?;
        // ANALYZE of a large table can outlast the statement timeout a request has.
        client
            .batch_execute("SET statement_timeout = 0; ANALYZE; RESET statement_timeout")
            .await
            .map_err(pg_error)
    }
}

async fn insert_seed(client: &mut PgClient, batch: &SeedBatch) -> StoreResult<()> {
    // One statement per table, each row's values as arrays: one round trip for thousands of rows.
    let tx = client.transaction().await.map_err(pg_error)?;
    let companies = &batch.companies;
    insert_rows(
        &tx,
        companies.len(),
        "INSERT INTO companies (id, title, created_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])",
        &[
            &companies.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            &companies
                .iter()
                .map(|c| c.title.as_str())
                .collect::<Vec<_>>(),
            &companies
                .iter()
                .map(|c| c.created_at.as_millis())
                .collect::<Vec<_>>(),
        ],
    )
    .await?;
    let products = &batch.products;
    insert_rows(
        &tx,
        products.len(),
        "INSERT INTO products (id, company_id, title, created_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])",
        &[
            &products.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            &products
                .iter()
                .map(|p| p.company_id.as_str())
                .collect::<Vec<_>>(),
            &products
                .iter()
                .map(|p| p.title.as_str())
                .collect::<Vec<_>>(),
            &products
                .iter()
                .map(|p| p.created_at.as_millis())
                .collect::<Vec<_>>(),
        ],
    )
    .await?;
    let users = &batch.users;
    insert_rows(
        &tx,
        users.len(),
        "INSERT INTO users (id, username, email, name, created_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])",
        &[
            &users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
            &users
                .iter()
                .map(|u| u.username.as_str())
                .collect::<Vec<_>>(),
            &users.iter().map(|u| u.email.as_deref()).collect::<Vec<_>>(),
            &users.iter().map(|u| u.name.as_deref()).collect::<Vec<_>>(),
            &users
                .iter()
                .map(|u| u.created_at.as_millis())
                .collect::<Vec<_>>(),
        ],
    )
    .await?;
    if !users.is_empty() {
        search::index_users(
            &tx,
            &users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
            &users
                .iter()
                .map(|u| u.username.as_str())
                .collect::<Vec<_>>(),
            &users.iter().map(|u| u.name.as_deref()).collect::<Vec<_>>(),
            &users.iter().map(|u| u.email.as_deref()).collect::<Vec<_>>(),
        )
        .await?;
    }
    let members = &batch.members;
    insert_rows(
        &tx,
        members.len(),
        "INSERT INTO members (id, company_id, user_id, created_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])",
        &[
            &members.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
            &members
                .iter()
                .map(|m| m.company_id.as_str())
                .collect::<Vec<_>>(),
            &members
                .iter()
                .map(|m| m.user_id.as_str())
                .collect::<Vec<_>>(),
            &members
                .iter()
                .map(|m| m.created_at.as_millis())
                .collect::<Vec<_>>(),
        ],
    )
    .await?;
    let leads = &batch.leads;
    insert_rows(
        &tx,
        leads.len(),
        "INSERT INTO leads (id, company_id, user_id, product_id, referrer, metadata, created_at, updated_at, referrer_folded)
         SELECT id, company_id, user_id, product_id, referrer, metadata, created_at, created_at, referrer_folded
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[])
           AS t(id, company_id, user_id, product_id, referrer, metadata, created_at, referrer_folded)",
        &[
            &leads.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
            &leads.iter().map(|l| l.company_id.as_str()).collect::<Vec<_>>(),
            &leads.iter().map(|l| l.user_id.as_str()).collect::<Vec<_>>(),
            &leads.iter().map(|l| l.product_id.as_deref()).collect::<Vec<_>>(),
            &leads.iter().map(|l| l.referrer.as_deref()).collect::<Vec<_>>(),
            &leads.iter().map(|l| l.metadata.as_deref()).collect::<Vec<_>>(),
            &leads.iter().map(|l| l.created_at).collect::<Vec<_>>(),
            &leads
                .iter()
                .map(|l| l.referrer.as_deref().map(fold))
                .collect::<Vec<_>>(),
        ],
    )
    .await?;
    let keys = &batch.keys;
    insert_rows(
        &tx,
        keys.len(),
        "INSERT INTO api_keys (id, company_id, secret_hash, permissions, created_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::bigint[])",
        &[
            &keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
            &keys
                .iter()
                .map(|k| k.company_id.as_str())
                .collect::<Vec<_>>(),
            &keys
                .iter()
                .map(|k| k.secret_hash.as_slice())
                .collect::<Vec<_>>(),
            &keys
                .iter()
                .map(|k| k.permissions.to_string())
                .collect::<Vec<_>>(),
            &keys
                .iter()
                .map(|k| k.created_at.as_millis())
                .collect::<Vec<_>>(),
        ],
    )
    .await?;
    super::stats::count_seed(&tx, batch).await?;
    tx.commit().await.map_err(pg_error)
}

/// Runs one bulk insert, unless it has no rows.
async fn insert_rows(
    tx: &PgTx<'_>,
    rows: usize,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> StoreResult<()> {
    if rows > 0 {
        tx.execute(sql, params).await.map_err(pg_error)?;
    }
    Ok(())
}
