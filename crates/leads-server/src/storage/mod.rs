//! Storage: one trait per concern, each with the records it speaks in, and opening a database.
//!
//! | concern | trait | records |
//! |---|---|---|
//! | the database itself | [`Database`] | [`PoolStatus`] |
//! | leads and idempotency claims | [`LeadStore`] | [`LeadRow`], [`LeadFilter`], [`LeadPage`], ... |
//! | keys, apps, user tokens, teams | [`CredentialStore`] | [`ApiKey`], [`AppKey`], [`UserToken`], ... |
//! | companies, products, users, members, seeding | [`DirectoryStore`] | [`Company`], [`User`], ... |
//! | lead statistics | [`StatsStore`] | [`stats::CountQuery`], ... |
//! | dashboard sessions | [`SessionStore`] | [`sessions::Session`], ... |
//! | webhook endpoints, their outbox and deliveries | [`WebhookStore`] | [`webhooks::WebhookRow`], ... |
//! | export jobs, their leases, download-link secret | [`ExportStore`] | [`ExportRow`], ... |
//! | look-ups of `leads import` | [`ImportStore`] | [`LeadKey`] |
//!
//! Each backend implements every trait once, one file per concern
//! (`sqlite/leads.rs`, `postgres/credentials.rs`, ...), on one backend object; [`open`] answers
//! that object as [`Stores`], one handle per concern, so a caller names the concerns it uses.
//! A new concern adds a trait here and one file per backend.
//!
//! The embedded default is SQLite ([`sqlite`]); [`postgres`] is for several instances on one
//! database. A database URL picks the backend: `sqlite://path/to/file.db` (or a bare path) for
//! SQLite, `postgres://user@host/db` (or `postgresql://`) for PostgreSQL.

pub mod credentials;
pub mod directory;
pub mod exports;
pub mod imports;
pub mod leads;
pub mod postgres;
pub mod sessions;
pub mod sqlite;
pub mod stats;
pub mod webhooks;

pub use credentials::{
    ApiKey, App, AppInstall, AppKey, CredentialStore, KeyListing, KeyOwner, TeamMember, UserToken,
};
pub use directory::{Company, DirectoryStore, Member, Product, SeedBatch, SeedLead, User};
pub use exports::{ExportRow, ExportStatus, ExportStore};
pub use imports::{ImportStore, LeadKey};
pub use leads::{
    CreatedLead, LeadFilter, LeadPage, LeadParties, LeadRow, LeadStore, SearchPlan,
    SEARCH_CANDIDATE_LIMIT, SEARCH_USER_LIMIT,
};
pub use sessions::SessionStore;
pub use stats::StatsStore;
pub use webhooks::WebhookStore;

use async_trait::async_trait;
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

/// Opens the database a URL names, applying migrations, with PostgreSQL's default settings.
pub async fn open(url: &str) -> StoreResult<Stores> {
    open_with(url, postgres::PgSettings::default()).await
}

/// Opens the database a URL names, applying migrations, for bulk writes (`leads seed`, `leads
/// import`): as [`open`], but on PostgreSQL without a statement timeout. One of their batches
/// writes thousands of rows and their index entries, which on a slow disk can outlast the 10 s a
/// request is given; nobody waits on it but the command that asked for it.
pub async fn open_for_bulk(url: &str) -> StoreResult<Stores> {
    let pg = postgres::PgSettings {
        statement_timeout: std::time::Duration::ZERO,
        ..postgres::PgSettings::default()
    };
    open_with(url, pg).await
}

/// Opens the database a URL names, applying migrations; `pg` applies only to PostgreSQL.
pub async fn open_with(url: &str, pg: postgres::PgSettings) -> StoreResult<Stores> {
    if is_postgres(url) {
        return Ok(Stores::new(postgres::PgStore::open(url, pg).await?));
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
    Ok(Stores::new(sqlite::SqliteStore::open(path).await?))
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

/// One open database, as a handle per concern. Every handle is the same backend object, so
/// cloning one is cheap and the database stays open while any handle is alive.
#[derive(Clone)]
pub struct Stores {
    pub database: Arc<dyn Database>,
    pub leads: Arc<dyn LeadStore>,
    pub credentials: Arc<dyn CredentialStore>,
    pub directory: Arc<dyn DirectoryStore>,
    pub stats: Arc<dyn StatsStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub webhooks: Arc<dyn WebhookStore>,
    pub exports: Arc<dyn ExportStore>,
    pub imports: Arc<dyn ImportStore>,
}

impl Stores {
    /// Every concern's handle on one backend.
    pub fn new<B>(backend: B) -> Self
    where
        B: Database
            + LeadStore
            + CredentialStore
            + DirectoryStore
            + StatsStore
            + SessionStore
            + WebhookStore
            + ExportStore
            + ImportStore,
    {
        let backend = Arc::new(backend);
        Self {
            database: backend.clone(),
            leads: backend.clone(),
            credentials: backend.clone(),
            directory: backend.clone(),
            stats: backend.clone(),
            sessions: backend.clone(),
            webhooks: backend.clone(),
            exports: backend.clone(),
            imports: backend,
        }
    }
}

/// How busy one of a backend's connection pools is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub name: &'static str,
    pub size: usize,
    pub in_use: usize,
}

/// The database as a whole: what start-up, readiness, metrics and shutdown need of it.
#[async_trait]
pub trait Database: Send + Sync + 'static {
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
