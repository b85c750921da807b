//! The directory: companies, their products, users and members, and bulk seeding.

use super::credentials::ApiKey;
use super::StoreResult;
use crate::domain::{CompanyId, LeadId, UserId};
use async_trait::async_trait;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Company {
    pub id: String,
    pub title: String,
    pub created_at: leads_types::Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    pub id: String,
    pub company_id: String,
    pub title: String,
    pub created_at: leads_types::Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub created_at: leads_types::Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub id: String,
    pub company_id: String,
    pub user_id: String,
    pub created_at: leads_types::Timestamp,
}
/// Rows written together by `leads seed`; ids and timestamps are made by the caller.
#[derive(Debug, Default)]
pub struct SeedBatch {
    pub companies: Vec<Company>,
    pub products: Vec<Product>,
    pub users: Vec<User>,
    pub members: Vec<Member>,
    pub leads: Vec<SeedLead>,
    pub keys: Vec<ApiKey>,
}

#[derive(Debug)]
pub struct SeedLead {
    pub id: LeadId,
    pub company_id: String,
    pub user_id: String,
    pub product_id: Option<String>,
    pub referrer: Option<String>,
    pub metadata: Option<String>,
    pub created_at: i64,
}

/// Who and what leads are about: created by the admin commands and by `leads seed`.
#[async_trait]
pub trait DirectoryStore: Send + Sync + 'static {
    async fn create_company(&self, title: String) -> StoreResult<Company>;
    async fn create_product(&self, company: CompanyId, title: String) -> StoreResult<Product>;
    /// A company's products, by title (then id); none for an unknown company.
    async fn list_products(&self, company: CompanyId) -> StoreResult<Vec<Product>>;
    async fn create_user(
        &self,
        username: String,
        email: Option<String>,
        name: Option<String>,
    ) -> StoreResult<User>;
    /// Makes the user a member of the company; their leads there show it from now on.
    async fn create_member(&self, company: CompanyId, user: UserId) -> StoreResult<Member>;
    /// Writes a batch of synthetic data in one transaction.
    async fn insert_seed(&self, batch: SeedBatch) -> StoreResult<()>;
    /// Refreshes the query planner's statistics after a bulk write (seeding, an import), as
    /// PostgreSQL's "Populating a Database" advises: until autovacuum comes round, the planner
    /// would plan for the tables as they were (on PostgreSQL, a search for a common term then
    /// builds a bitmap of every match instead of stopping at a page). SQLite keeps no
    /// statistics here (no `sqlite_stat1`), so its backend has nothing to do.
    async fn analyze(&self) -> StoreResult<()>;
}
