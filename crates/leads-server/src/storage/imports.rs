//! Imports: the look-ups `leads import` makes before it writes a batch with
//! [`DirectoryStore::insert_seed`](super::DirectoryStore::insert_seed).

use super::StoreResult;
use crate::domain::CompanyId;
use async_trait::async_trait;
use std::collections::HashMap;

/// What makes an imported lead the same as one already there: its user, product and
/// `created_at` (milliseconds) within one company.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeadKey {
    pub user_id: String,
    pub product_id: Option<String>,
    pub created_at: i64,
}

/// Finding the users, products and leads a batch of imported rows names.
#[async_trait]
pub trait ImportStore: Send + Sync + 'static {
    /// Whether the company exists.
    async fn company_exists(&self, company: CompanyId) -> StoreResult<bool>;

    /// The ids of the users with these usernames, by username; absent ones are left out.
    async fn users_by_username(
        &self,
        usernames: Vec<String>,
    ) -> StoreResult<HashMap<String, String>>;

    /// The ids of `company`'s products with these titles, by title (the oldest product where
    /// two share a title); absent ones are left out.
    async fn products_by_title(
        &self,
        company: CompanyId,
        titles: Vec<String>,
    ) -> StoreResult<HashMap<String, String>>;

    /// Which of `keys` already name a lead of `company`.
    async fn existing_leads(
        &self,
        company: CompanyId,
        keys: Vec<LeadKey>,
    ) -> StoreResult<Vec<LeadKey>>;
}
