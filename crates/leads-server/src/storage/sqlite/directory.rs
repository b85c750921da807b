//! The directory for SQLite: companies, products, users and members, and bulk seeding.

use super::leads::search;
use super::{company_exists, is_unique_violation, sql_error, stats, ts, webhooks, SqliteStore};
use crate::domain::webhooks::EventType;
use crate::domain::{fold, CompanyId, MemberId, ProductId, UserId};
use crate::storage::webhooks::EventData;
use crate::storage::{
    Company, DirectoryStore, Member, Product, SeedBatch, StoreError, StoreResult, User,
};
use async_trait::async_trait;
use leads_types::Timestamp;
use rusqlite::{params, Connection};

#[async_trait]
impl DirectoryStore for SqliteStore {
    async fn create_company(&self, title: String) -> StoreResult<Company> {
        self.write(move |conn| {
            let company = Company {
                id: CompanyId::generate().into_string(),
                title,
                created_at: Timestamp::now(),
            };
            conn.execute(
                "INSERT INTO companies (id, title, created_at) VALUES (?1, ?2, ?3)",
                params![company.id, company.title, company.created_at.as_millis()],
            )
            .map_err(sql_error)?;
            Ok(company)
        })
        .await
    }

    async fn create_product(&self, company: CompanyId, title: String) -> StoreResult<Product> {
        self.write(move |conn| {
            company_exists(conn, &company)?;
            let product = Product {
                id: ProductId::generate().into_string(),
                company_id: company.into_string(),
                title,
                created_at: Timestamp::now(),
            };
            conn.execute(
                "INSERT INTO products (id, company_id, title, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![
                    product.id,
                    product.company_id,
                    product.title,
                    product.created_at.as_millis()
                ],
            )
            .map_err(sql_error)?;
            Ok(product)
        })
        .await
    }

    async fn list_products(&self, company: CompanyId) -> StoreResult<Vec<Product>> {
        self.on_reader(move |conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT id, company_id, title, created_at FROM products
                     WHERE company_id = ?1 ORDER BY title, id",
                )
                .map_err(sql_error)?;
            let rows = statement
                .query_map(params![company.as_str()], |row| {
                    Ok(Product {
                        id: row.get(0)?,
                        company_id: row.get(1)?,
                        title: row.get(2)?,
                        created_at: ts(row.get(3)?),
                    })
                })
                .map_err(sql_error)?;
            rows.collect::<Result<_, _>>().map_err(sql_error)
        })
        .await
    }

    async fn create_user(
        &self,
        username: String,
        email: Option<String>,
        name: Option<String>,
    ) -> StoreResult<User> {
        self.write(move |conn| {
            let user = User {
                id: UserId::generate().into_string(),
                username,
                email,
                name,
                created_at: Timestamp::now(),
            };
            conn.execute(
                "INSERT INTO users (id, username, email, name, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![user.id, user.username, user.email, user.name, user.created_at.as_millis()],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("the username {:?} is taken", user.username))
                } else {
                    sql_error(e)
                }
            })?;
            search::index_user(
                conn,
                &user.id,
                &user.username,
                user.name.as_deref(),
                user.email.as_deref(),
            )?;
            Ok(user)
        })
        .await
    }

    async fn create_member(&self, company: CompanyId, user: UserId) -> StoreResult<Member> {
        let wakeup = self.wakeup.clone();
        self.write(move |conn| {
            company_exists(conn, &company)?;
            let user_known = conn
                .prepare_cached("SELECT 1 FROM users WHERE id = ?1")
                .and_then(|mut st| st.exists(params![user.as_str()]))
                .map_err(sql_error)?;
            if !user_known {
                return Err(StoreError::NotFound(format!("no user {user}")));
            }
            let member = Member {
                id: MemberId::generate().into_string(),
                company_id: company.into_string(),
                user_id: user.into_string(),
                created_at: Timestamp::now(),
            };
            conn.execute(
                "INSERT INTO members (id, company_id, user_id, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![
                    member.id,
                    member.company_id,
                    member.user_id,
                    member.created_at.as_millis()
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!(
                        "user {} is already a member of company {}",
                        member.user_id, member.company_id
                    ))
                } else {
                    sql_error(e)
                }
            })?;
            // The conversion moves the user's past leads here to converted, in this transaction.
            stats::count_conversion(conn, &member.company_id, &member.user_id)?;
            // Each of the user's leads here converted: `lead.converted`, in this transaction.
            let company = CompanyId::from_trusted(member.company_id.clone());
            let mut queued = false;
            if webhooks::subscribed(conn, &company, EventType::LeadConverted)? {
                let now = member.created_at.as_millis();
                for lead in super::leads::of_user(conn, &member.company_id, &member.user_id)? {
                    queued |=
                        webhooks::enqueue(conn, &company, EventType::LeadConverted, now, || {
                            EventData::lead(&lead, None)
                        })?;
                }
            }
            Ok((member, queued))
        })
        .await
        .map(|(member, queued)| {
            if queued {
                wakeup.notify_one();
            }
            member
        })
    }

    async fn insert_seed(&self, batch: SeedBatch) -> StoreResult<()> {
        self.write(move |conn| {
            insert_seed(conn, &batch)?;
            stats::count_seed(conn, &batch)
        })
        .await
    }

    async fn analyze(&self) -> StoreResult<()> {
        Ok(())
    }
}

fn insert_seed(conn: &Connection, batch: &SeedBatch) -> StoreResult<()> {
    // Bulk inserts land all over the id indexes; a large page cache keeps them in memory
    // instead of re-reading pages from disk for every row. Only seeding processes do this.
    conn.execute_batch("PRAGMA cache_size = -262144")
        .map_err(sql_error)?;
    let indexing = search::BulkIndexing::suspend(conn)?;
    let mut companies = conn
        .prepare_cached("INSERT INTO companies (id, title, created_at) VALUES (?1, ?2, ?3)")
        .map_err(sql_error)?;
    for c in &batch.companies {
        companies
            .execute(params![c.id, c.title, c.created_at.as_millis()])
            .map_err(sql_error)?;
    }
    let mut products = conn
        .prepare_cached(
            "INSERT INTO products (id, company_id, title, created_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(sql_error)?;
    for p in &batch.products {
        products
            .execute(params![
                p.id,
                p.company_id,
                p.title,
                p.created_at.as_millis()
            ])
            .map_err(sql_error)?;
    }
    let mut users = conn
        .prepare_cached(
            "INSERT INTO users (id, username, email, name, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(sql_error)?;
    // Rows in id order touch each page of the random-id indexes once per batch.
    let mut sorted_users: Vec<_> = batch.users.iter().collect();
    sorted_users.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    for u in sorted_users {
        users
            .execute(params![
                u.id,
                u.username,
                u.email,
                u.name,
                u.created_at.as_millis()
            ])
            .map_err(sql_error)?;
        search::index_user(
            conn,
            &u.id,
            &u.username,
            u.name.as_deref(),
            u.email.as_deref(),
        )?;
    }
    let mut members = conn
        .prepare_cached(
            "INSERT INTO members (id, company_id, user_id, created_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(sql_error)?;
    for m in &batch.members {
        members
            .execute(params![
                m.id,
                m.company_id,
                m.user_id,
                m.created_at.as_millis()
            ])
            .map_err(sql_error)?;
    }
    let mut leads = conn
        .prepare_cached(
            "INSERT INTO leads (id, company_id, user_id, product_id, referrer, metadata, created_at, updated_at, referrer_folded)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
        )
        .map_err(sql_error)?;
    let mut sorted_leads: Vec<_> = batch.leads.iter().collect();
    sorted_leads.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    for l in sorted_leads {
        leads
            .execute(params![
                l.id.as_str(),
                l.company_id,
                l.user_id,
                l.product_id,
                l.referrer,
                l.metadata,
                l.created_at,
                l.referrer.as_deref().map(fold)
            ])
            .map_err(sql_error)?;
    }
    let mut keys = conn
        .prepare_cached(
            "INSERT INTO api_keys (id, company_id, secret_hash, permissions, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(sql_error)?;
    for k in &batch.keys {
        keys.execute(params![
            k.id.as_str(),
            k.company_id.as_str(),
            k.secret_hash.as_slice(),
            k.permissions.to_string(),
            k.created_at.as_millis()
        ])
        .map_err(sql_error)?;
    }
    indexing.resume(conn)
}
