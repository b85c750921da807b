//! Storage: the one interface every backend implements, and the records it speaks in.
//!
//! The embedded default is SQLite ([`sqlite`]); [`postgres`] is for several instances on one
//! database. A database URL picks the backend: `sqlite://path/to/file.db` (or a bare path) for
//! SQLite, `postgres://user@host/db` (or `postgresql://`) for PostgreSQL.

pub mod postgres;
pub mod sqlite;
pub mod stats;

use crate::domain::{
    AppId, CompanyId, IdempotencyClaim, KeyId, LeadChange, LeadId, NewLead, Permissions, ProductId,
    UserId, UserTokenId,
};
use crate::pagination::{PageRequest, Position, Positioned};
use async_trait::async_trait;
use serde::Serialize;
use std::sync::Arc;

/// The database used when none is named: a file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://leads.db";

/// What can go wrong in storage, in terms the API can answer with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A referenced record does not exist; the text names it.
    #[error("{0}")]
    NotFound(String),
    /// The write collides with existing data (a duplicate username, say); the text says how.
    #[error("{0}")]
    Conflict(String),
    /// The write names something it may not (an unknown user, another company's product):
    /// `param` is the request parameter at fault, `reason` says what is wrong with it.
    #[error("{param}: {reason}")]
    Invalid { param: &'static str, reason: String },
    /// The database cannot be reached or is overloaded right now; retrying may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a broken database. Logged, never shown to clients.
    #[error("storage failure: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Opens the database a URL names, applying migrations.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Storage>> {
    if is_postgres(url) {
        return Ok(Arc::new(postgres::PgStore::open(url).await?));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.is_empty() {
        return Err(StoreError::NotFound(format!(
            "database URL {url:?} names no file"
        )));
    }
    Ok(Arc::new(sqlite::SqliteStore::open(path).await?))
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The URL with any password replaced by `***`, fit for logs.
pub fn redact_url(url: &str) -> String {
    if !is_postgres(url) {
        return url.to_owned();
    }
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    // A password can also come as a query parameter.
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some(("password", _)) => "password=***".to_owned(),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

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

/// An API key as stored: its secret exists only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: KeyId,
    pub company_id: CompanyId,
    pub permissions: Permissions,
    pub created_at: leads_types::Timestamp,
    pub revoked: bool,
    /// SHA-256 of the secret; the secret itself is never stored.
    pub secret_hash: [u8; 32],
}

/// An app: a third party that companies install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct App {
    pub id: String,
    pub title: String,
    pub created_at: leads_types::Timestamp,
}

/// An app installed on a company: its keys may act for the company with at most these
/// permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppInstall {
    pub app_id: String,
    pub company_id: String,
    pub permissions: Permissions,
    pub created_at: leads_types::Timestamp,
}

/// An app's API key as stored: its secret exists only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppKey {
    pub id: KeyId,
    pub app_id: AppId,
    pub permissions: Permissions,
    pub created_at: leads_types::Timestamp,
    pub revoked: bool,
    /// SHA-256 of the secret; the secret itself is never stored.
    pub secret_hash: [u8; 32],
}

/// Whose keys to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOwner {
    Company(CompanyId),
    App(AppId),
}

/// A key as listed for people: what it is, never its secret or hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyListing {
    pub id: String,
    /// Set for a company's key.
    pub company_id: Option<String>,
    /// Set for an app's key.
    pub app_id: Option<String>,
    pub permissions: Permissions,
    pub created_at: leads_types::Timestamp,
    pub revoked_at: Option<leads_types::Timestamp>,
}

/// A user OAuth token as stored: its secret exists only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserToken {
    pub id: UserTokenId,
    pub user_id: UserId,
    pub scopes: Permissions,
    pub created_at: leads_types::Timestamp,
    /// Milliseconds; from then on the token is refused.
    pub expires_at: i64,
    pub revoked: bool,
    /// SHA-256 of the secret; the secret itself is never stored.
    pub secret_hash: [u8; 32],
}

/// A user on a company's team: their tokens act for the company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamMember {
    pub company_id: String,
    pub user_id: String,
    pub created_at: leads_types::Timestamp,
}

/// Whose a lead is: the company that recorded it and the user it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadParties {
    pub company: CompanyId,
    pub user: UserId,
}

/// A lead with everything a response shows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadRow {
    pub id: LeadId,
    pub created_at: i64,
    pub updated_at: i64,
    pub referrer: Option<String>,
    /// Verbatim JSON object text.
    pub metadata: Option<String>,
    pub user_id: String,
    pub user_email: Option<String>,
    pub user_name: Option<String>,
    pub user_username: String,
    pub product_id: Option<String>,
    pub product_title: Option<String>,
    pub member_id: Option<String>,
}

impl Positioned for LeadRow {
    fn position(&self) -> Position {
        Position {
            created_at: self.created_at,
            id: self.id.clone(),
        }
    }
}

/// What [`Storage::create_lead`] did: wrote the lead, or found the one an earlier request with
/// the same idempotency key wrote (`replayed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedLead {
    pub row: LeadRow,
    pub replayed: bool,
}

/// Which of a company's leads a list shows. Bounds are exclusive milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadFilter {
    pub company: CompanyId,
    /// Empty means every product, and leads without one.
    pub products: Vec<ProductId>,
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    /// Only this user's leads: what a user token sees of a company whose team it is not on.
    pub user: Option<UserId>,
}

/// A page of leads in list order with its exact flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadPage {
    pub rows: Vec<LeadRow>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
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

/// How busy one of a backend's connection pools is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub name: &'static str,
    pub size: usize,
    pub in_use: usize,
}

/// Everything the server needs of a database. Each backend implements it once.
#[async_trait]
pub trait Storage: stats::StatsStore + Send + Sync + 'static {
    /// The secret that keys cursor integrity checks, made on first start and shared by every
    /// instance on the same database.
    async fn cursor_secret(&self) -> StoreResult<Vec<u8>>;

    /// Whether the database answers.
    async fn ping(&self) -> StoreResult<()>;

    /// Finishes queued writes and closes the database; later calls fail as unavailable.
    async fn close(&self) -> StoreResult<()> {
        Ok(())
    }

    /// The backend's connection pools, for metrics.
    fn pool_status(&self) -> Vec<PoolStatus> {
        Vec::new()
    }

    /// The key whose secret hashes to `hash`, revoked or not.
    async fn find_api_key(&self, hash: [u8; 32]) -> StoreResult<Option<ApiKey>>;

    /// The app key whose secret hashes to `hash`, revoked or not.
    async fn find_app_key(&self, hash: [u8; 32]) -> StoreResult<Option<AppKey>>;

    /// The user token whose secret hashes to `hash`, revoked or expired or not.
    async fn find_user_token(&self, hash: [u8; 32]) -> StoreResult<Option<UserToken>>;

    /// The permissions `app` was installed on `company` with; `None` when it is not installed.
    async fn app_installation(
        &self,
        app: AppId,
        company: CompanyId,
    ) -> StoreResult<Option<Permissions>>;

    /// Whether `user` is on `company`'s team.
    async fn is_on_team(&self, company: CompanyId, user: UserId) -> StoreResult<bool>;

    /// The company and user of the lead `id`, or `None` when there is no such lead. Only for
    /// deciding whether a credential may see the lead: never shown to a client as such.
    async fn lead_parties(&self, id: LeadId) -> StoreResult<Option<LeadParties>>;

    /// A page of `filter`'s leads. With `recheck`, the read also asks whether that company API
    /// key still exists unrevoked, in the same round trip, and answers `None` when it does not:
    /// an instance that remembers a key it looked up earlier still refuses it once revoked.
    async fn list_leads(
        &self,
        filter: LeadFilter,
        page: PageRequest,
        recheck: Option<KeyId>,
    ) -> StoreResult<Option<LeadPage>>;

    /// Whether the company API key `id` exists and is not revoked.
    async fn api_key_is_valid(&self, id: KeyId) -> StoreResult<bool>;

    /// The lead `id` if it belongs to `company`; `None` when it does not exist or is another
    /// company's, which callers must not tell apart.
    async fn find_lead(&self, company: CompanyId, id: LeadId) -> StoreResult<Option<LeadRow>>;

    /// Records a lead, stamping `created_at` and `updated_at` with the time of the write, and
    /// answers once it is durable. An unknown user, or a product that is not the company's, is
    /// [`StoreError::Invalid`] and writes nothing.
    ///
    /// With a claim, the claim is recorded in the same transaction as the lead. If the claim's
    /// credential has used its key before, nothing is written: the lead created then comes back
    /// (`replayed`) when the fingerprints match, and [`StoreError::Conflict`] when they do not.
    async fn create_lead(
        &self,
        lead: NewLead,
        claim: Option<IdempotencyClaim>,
    ) -> StoreResult<CreatedLead>;

    /// Applies `change` to the lead `id` of `company` and answers the lead as it now is.
    /// `updated_at` moves strictly forward (to now, or one millisecond past its previous value if
    /// the clock has not moved on); `created_at` never changes. `None` as for [`Self::find_lead`].
    async fn update_lead(
        &self,
        company: CompanyId,
        id: LeadId,
        change: LeadChange,
    ) -> StoreResult<Option<LeadRow>>;

    /// Forgets at most `limit` idempotency claims made before `before` (milliseconds), oldest
    /// first, and answers how many it forgot. Callers repeat it until it answers less than
    /// `limit`, so no single transaction holds the writer for long.
    async fn forget_idempotency_claims(&self, before: i64, limit: u32) -> StoreResult<u64>;

    async fn create_company(&self, title: String) -> StoreResult<Company>;
    async fn create_product(&self, company: CompanyId, title: String) -> StoreResult<Product>;
    async fn create_user(
        &self,
        username: String,
        email: Option<String>,
        name: Option<String>,
    ) -> StoreResult<User>;
    /// Makes the user a member of the company; their leads there show it from now on.
    async fn create_member(&self, company: CompanyId, user: UserId) -> StoreResult<Member>;
    async fn create_api_key(
        &self,
        company: CompanyId,
        permissions: Permissions,
        secret_hash: [u8; 32],
    ) -> StoreResult<ApiKey>;
    async fn create_app(&self, title: String) -> StoreResult<App>;
    /// Installs `app` on `company` with `permissions`, or changes the permissions of an
    /// installation that exists. An unknown app or company is [`StoreError::NotFound`].
    async fn install_app(
        &self,
        app: AppId,
        company: CompanyId,
        permissions: Permissions,
    ) -> StoreResult<AppInstall>;
    /// Removes the installation; the app's keys cannot act for the company from now on.
    /// False when it was not installed.
    async fn uninstall_app(&self, app: AppId, company: CompanyId) -> StoreResult<bool>;
    async fn create_app_key(
        &self,
        app: AppId,
        permissions: Permissions,
        secret_hash: [u8; 32],
    ) -> StoreResult<AppKey>;
    /// The keys of a company or an app, oldest first, revoked ones included.
    async fn list_keys(&self, owner: KeyOwner) -> StoreResult<Vec<KeyListing>>;
    /// Revokes a company's or an app's key: every request with it is refused from now on.
    /// False when there is no such key; revoking a revoked key changes nothing.
    async fn revoke_key(&self, id: KeyId) -> StoreResult<bool>;
    /// Issues a token for `user`, refused from `expires_at` (milliseconds) on.
    async fn create_user_token(
        &self,
        user: UserId,
        scopes: Permissions,
        expires_at: i64,
        secret_hash: [u8; 32],
    ) -> StoreResult<UserToken>;
    /// As [`Self::revoke_key`], for user tokens.
    async fn revoke_user_token(&self, id: UserTokenId) -> StoreResult<bool>;
    /// Puts the user on the company's team; already being on it is a [`StoreError::Conflict`].
    async fn add_to_team(&self, company: CompanyId, user: UserId) -> StoreResult<TeamMember>;
    /// Takes the user off the team. False when they were not on it.
    async fn remove_from_team(&self, company: CompanyId, user: UserId) -> StoreResult<bool>;
    /// Erases a lead for good (for example on a data-deletion request). False when absent.
    async fn delete_lead(&self, id: LeadId) -> StoreResult<bool>;

    /// Writes a batch of synthetic data in one transaction.
    async fn insert_seed(&self, batch: SeedBatch) -> StoreResult<()>;
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_in_database_urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db.internal:5432/leads?sslmode=disable"),
            "postgres://app:***@db.internal:5432/leads?sslmode=disable"
        );
        assert_eq!(
            redact_url("postgresql://app@db/leads?password=s3cret&application_name=x"),
            "postgresql://app@db/leads?password=***&application_name=x"
        );
        assert_eq!(redact_url("postgres://db/leads"), "postgres://db/leads");
        assert_eq!(redact_url("sqlite://leads.db"), "sqlite://leads.db");
    }
}
