//! The PostgreSQL backend, for when one file on one machine is not enough.
//!
//! A pool of connections (deadpool), each caching its prepared statements. Every write is one
//! transaction acknowledged only after its COMMIT, so any number of server instances can share
//! one database: a key revoked, a lead written or a migration applied by one is seen by all.
//!
//! The SQL keeps to what PostgreSQL-compatible distributed engines also run: no advisory locks,
//! no LISTEN/NOTIFY, no sequences (ids come from the application), and every lead query is
//! scoped by `company_id`.

mod credentials;
mod lead_writes;
mod leads;
mod stats;

pub use leads::{issued_statement, list_statements, Param, Query};

use super::{
    ApiKey, App, AppInstall, AppKey, Company, CreatedLead, KeyListing, KeyOwner, LeadFilter,
    LeadPage, LeadParties, LeadRow, Member, PoolStatus, Product, SeedBatch, Storage, StoreError,
    StoreResult, TeamMember, User, UserToken,
};
use crate::domain::{
    AppId, CompanyId, IdempotencyClaim, KeyId, LeadChange, LeadId, MemberId, NewLead, Permissions,
    ProductId, UserId, UserTokenId,
};
use crate::pagination::PageRequest;
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use leads_types::Timestamp;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

/// Migrations in order; each runs once, in a transaction, recorded in `schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        include_str!("../../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        include_str!("../../../migrations/postgres/0002_idempotency_claims.sql"),
    ),
    (
        3,
        include_str!("../../../migrations/postgres/0003_credentials.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/postgres/0004_lead_counts.sql"),
    ),
];

/// Connections one instance keeps at most. Several instances share the server's
/// `max_connections` (100 by default), so this stays modest.
const POOL_SIZE: usize = 16;
/// How long a request waits for a connection (to be freed, made, or checked) before it answers
/// 503: while the database is down, requests fail fast instead of piling up.
const CONNECTION_WAIT: Duration = Duration::from_secs(2);

pub struct PgStore {
    pool: Pool,
}

impl PgStore {
    /// Connects to the database a `postgres://` URL names and applies pending migrations.
    /// Safe to run from several instances at once.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            // The URL may hold a password: say what is wrong, never echo it.
            StoreError::Internal(format!("the database URL is not a PostgreSQL URL: {e}"))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECTION_WAIT);
        }
        if config.get_application_name().is_none() {
            config.application_name("leads");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            // A connection the server closed (a restart, say) is noticed and replaced here.
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECTION_WAIT))
            .create_timeout(Some(CONNECTION_WAIT))
            .recycle_timeout(Some(CONNECTION_WAIT))
            .build()
            .map_err(|e| StoreError::Internal(format!("cannot make the connection pool: {e}")))?;
        let store = Self { pool };
        store.migrate().await?;
        store.make_cursor_secret().await?;
        Ok(store)
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Client> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Applies pending migrations. Concurrent starts race on inserting the version row first:
    /// the loser waits for the winner's transaction, fails on the duplicate, and on retry finds
    /// the work done. No advisory or table locks, so distributed engines run it too.
    async fn migrate(&self) -> StoreResult<()> {
        let mut client = self.client().await?;
        let mut attempt = 0u32;
        loop {
            match migrate_once(&mut client).await {
                Ok(()) => return Ok(()),
                Err(Migration::Failed(e)) if attempt < 20 && is_race(&e) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                }
                Err(Migration::Failed(e)) => return Err(pg_error(e)),
                Err(Migration::TooNew(applied, latest)) => {
                    return Err(StoreError::Internal(format!(
                        "the database is at schema version {applied}, newer than this build knows ({latest}); upgrade the server"
                    )))
                }
            }
        }
    }

    /// Makes the cursor secret unless another instance already has: the first one stored wins,
    /// so every instance signs cursors alike.
    async fn make_cursor_secret(&self) -> StoreResult<()> {
        let secret: [u8; 32] = rand::random();
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO settings (key, value) VALUES ('cursor_secret', $1)
                 ON CONFLICT (key) DO NOTHING",
                &[&secret.as_slice()],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }
}

enum Migration {
    Failed(tokio_postgres::Error),
    TooNew(i64, i64),
}

impl From<tokio_postgres::Error> for Migration {
    fn from(e: tokio_postgres::Error) -> Self {
        Migration::Failed(e)
    }
}

async fn migrate_once(client: &mut deadpool_postgres::Client) -> Result<(), Migration> {
    // Looked up first so that a start on a migrated database raises no "already exists" notice.
    let exists = client
        .query_opt(
            "SELECT 1 FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_name = 'schema_migrations'",
            &[],
        )
        .await?
        .is_some();
    if !exists {
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                    version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            )
            .await?;
    }
    let tx = client.transaction().await?;
    let applied: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .await?
        .try_get(0)?;
    let latest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if applied > latest {
        return Err(Migration::TooNew(applied, latest));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > applied) {
        // The version row first: a concurrent migrator blocks here until this one commits.
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[version, &Timestamp::now().as_millis()],
        )
        .await?;
        tx.batch_execute(sql).await?;
        tracing::info!(version, "applied migration");
    }
    tx.commit().await?;
    Ok(())
}

/// Whether a migration failed only because another instance was migrating at the same time.
fn is_race(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(&SqlState::UNIQUE_VIOLATION)
            | Some(&SqlState::DUPLICATE_TABLE)
            | Some(&SqlState::DUPLICATE_OBJECT)
            | Some(&SqlState::T_R_SERIALIZATION_FAILURE)
            | Some(&SqlState::T_R_DEADLOCK_DETECTED)
    )
}

/// Maps PostgreSQL's errors: a lost or refused connection, a server shutting down or starting
/// up, exhausted resources and transaction conflicts mean "try again"; the rest is internal.
pub(crate) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    if e.is_closed() {
        return StoreError::Unavailable("the connection to PostgreSQL was lost".into());
    }
    match e.code() {
        Some(code) if is_transient(code) => StoreError::Unavailable(describe(&e)),
        Some(_) => StoreError::Internal(describe(&e)),
        // No SQLSTATE: either the socket failed (I/O, connect timeout) or a value did not convert.
        None if is_io(&e) => StoreError::Unavailable(describe(&e)),
        None => StoreError::Internal(describe(&e)),
    }
}

fn is_transient(code: &SqlState) -> bool {
    let code = code.code();
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources, too many connections
        || code.starts_with("57P") // admin shutdown, crash shutdown, cannot connect now
        || code == "57014" // query canceled (statement timeout)
        || code == "40001" // serialization failure
        || code == "40P01" // deadlock detected
        || code == "55P03" // lock not available
        || code == "25006" // read-only transaction: a replica or a failover in progress
}

fn is_io(e: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        if inner.is::<std::io::Error>() {
            return true;
        }
        source = inner.source();
    }
    e.to_string().starts_with("timeout")
}

/// An error with its detail and causes ("error connecting to server: Connection refused"), for
/// the log and the command line; never shown to API clients.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return match db.detail() {
            Some(detail) => format!("{}: {} ({detail})", db.code().code(), db.message()),
            None => format!("{}: {}", db.code().code(), db.message()),
        };
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Timeout(_) => {
            StoreError::Unavailable("no database connection could be had in time".into())
        }
        PoolError::Backend(e) => pg_error(e),
        PoolError::Closed => StoreError::Unavailable("the connection pool is closed".into()),
        PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => {
            StoreError::Internal(e.to_string())
        }
    }
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

fn ts(millis: i64) -> Timestamp {
    Timestamp::from_millis(millis).unwrap_or_else(|| Timestamp::from_millis(0).expect("epoch"))
}

/// Runs a statement that writes one row only when `company` exists; none written means it does
/// not. Companies are never deleted, so the check cannot go stale before COMMIT.
async fn insert_for_company(
    client: &deadpool_postgres::Client,
    company: &CompanyId,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> StoreResult<()> {
    let statement = client.prepare_cached(sql).await.map_err(pg_error)?;
    let written = client.execute(&statement, params).await.map_err(pg_error)?;
    if written == 0 {
        return Err(StoreError::NotFound(format!("no company {company}")));
    }
    Ok(())
}

#[async_trait]
impl Storage for PgStore {
    async fn cursor_secret(&self) -> StoreResult<Vec<u8>> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT value FROM settings WHERE key = 'cursor_secret'",
                &[],
            )
            .await
            .map_err(pg_error)?;
        row.try_get(0).map_err(pg_error)
    }

    /// Every write was committed before it was answered, so there is nothing to finish: closing
    /// drops the idle connections and refuses new requests for one.
    async fn close(&self) -> StoreResult<()> {
        self.pool.close();
        Ok(())
    }

    fn pool_status(&self) -> Vec<PoolStatus> {
        let status = self.pool.status();
        vec![PoolStatus {
            name: "postgres",
            size: status.max_size,
            in_use: status.size.saturating_sub(status.available),
        }]
    }

    async fn ping(&self) -> StoreResult<()> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(pg_error)?;
        Ok(())
    }

    async fn find_api_key(&self, hash: [u8; 32]) -> StoreResult<Option<ApiKey>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT id, company_id, permissions, created_at, revoked_at, secret_hash
                 FROM api_keys WHERE secret_hash = $1",
            )
            .await
            .map_err(pg_error)?;
        let Some(row) = client
            .query_opt(&statement, &[&hash.as_slice()])
            .await
            .map_err(pg_error)?
        else {
            return Ok(None);
        };
        let permissions: String = row.try_get(2).map_err(pg_error)?;
        let revoked_at: Option<i64> = row.try_get(4).map_err(pg_error)?;
        let secret_hash: Vec<u8> = row.try_get(5).map_err(pg_error)?;
        Ok(Some(ApiKey {
            id: KeyId::from_trusted(row.try_get(0).map_err(pg_error)?),
            company_id: CompanyId::from_trusted(row.try_get(1).map_err(pg_error)?),
            permissions: credentials::permissions(&permissions)?,
            created_at: ts(row.try_get(3).map_err(pg_error)?),
            revoked: revoked_at.is_some(),
            secret_hash: secret_hash
                .try_into()
                .map_err(|_| StoreError::Internal("a stored key hash is not 32 bytes".into()))?,
        }))
    }

    async fn find_app_key(&self, hash: [u8; 32]) -> StoreResult<Option<AppKey>> {
        credentials::find_app_key(&self.client().await?, &hash).await
    }

    async fn find_user_token(&self, hash: [u8; 32]) -> StoreResult<Option<UserToken>> {
        credentials::find_user_token(&self.client().await?, &hash).await
    }

    async fn app_installation(
        &self,
        app: AppId,
        company: CompanyId,
    ) -> StoreResult<Option<Permissions>> {
        credentials::app_installation(&self.client().await?, &app, &company).await
    }

    async fn is_on_team(&self, company: CompanyId, user: UserId) -> StoreResult<bool> {
        credentials::is_on_team(&self.client().await?, &company, &user).await
    }

    async fn lead_parties(&self, id: LeadId) -> StoreResult<Option<LeadParties>> {
        credentials::lead_parties(&self.client().await?, &id).await
    }

    async fn list_leads(
        &self,
        filter: LeadFilter,
        page: PageRequest,
        recheck: Option<KeyId>,
    ) -> StoreResult<Option<LeadPage>> {
        let client = self.client().await?;
        leads::list(&client, &filter, &page, recheck.as_ref()).await
    }

    async fn api_key_is_valid(&self, id: KeyId) -> StoreResult<bool> {
        leads::key_is_valid(&self.client().await?, &id).await
    }

    async fn find_lead(&self, company: CompanyId, id: LeadId) -> StoreResult<Option<LeadRow>> {
        let client = self.client().await?;
        leads::find(&client, &company, &id).await
    }

    async fn create_lead(
        &self,
        lead: NewLead,
        claim: Option<IdempotencyClaim>,
    ) -> StoreResult<CreatedLead> {
        let mut client = self.client().await?;
        lead_writes::create(&mut client, lead, claim).await
    }

    async fn update_lead(
        &self,
        company: CompanyId,
        id: LeadId,
        change: LeadChange,
    ) -> StoreResult<Option<LeadRow>> {
        let mut client = self.client().await?;
        if change.referrer.is_none() {
            return lead_writes::update(&client, &company, &id, &change).await;
        }
        // A new referrer may move the lead to another host's counts, in the same transaction.
        let tx = client.transaction().await.map_err(pg_error)?;
        stats::change_referrer(&tx, &company, &id, &change).await?;
        let row = lead_writes::update(&tx, &company, &id, &change).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(row)
    }

    async fn forget_idempotency_claims(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let client = self.client().await?;
        lead_writes::forget_claims(&client, before, limit).await
    }

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
        let client = self.client().await?;
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
        Ok(user)
    }

    async fn create_member(&self, company: CompanyId, user: UserId) -> StoreResult<Member> {
        let member = Member {
            id: MemberId::generate().into_string(),
            company_id: company.as_str().to_owned(),
            user_id: user.as_str().to_owned(),
            created_at: Timestamp::now(),
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
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
                tx.commit().await.map_err(pg_error)?;
                Ok(member)
            }
        }
    }

    async fn create_api_key(
        &self,
        company: CompanyId,
        permissions: Permissions,
        secret_hash: [u8; 32],
    ) -> StoreResult<ApiKey> {
        let key = ApiKey {
            id: KeyId::generate(),
            company_id: company,
            permissions,
            created_at: Timestamp::now(),
            revoked: false,
            secret_hash,
        };
        let client = self.client().await?;
        insert_for_company(
            &client,
            &key.company_id,
            "INSERT INTO api_keys (id, company_id, secret_hash, permissions, created_at)
             SELECT $1, id, $3, $4, $5 FROM companies WHERE id = $2",
            &[
                &key.id.as_str(),
                &key.company_id.as_str(),
                &key.secret_hash.as_slice(),
                &key.permissions.to_string(),
                &key.created_at.as_millis(),
            ],
        )
        .await?;
        Ok(key)
    }

    async fn create_app(&self, title: String) -> StoreResult<App> {
        credentials::create_app(&self.client().await?, title).await
    }

    async fn install_app(
        &self,
        app: AppId,
        company: CompanyId,
        permissions: Permissions,
    ) -> StoreResult<AppInstall> {
        credentials::install_app(&self.client().await?, &app, &company, permissions).await
    }

    async fn uninstall_app(&self, app: AppId, company: CompanyId) -> StoreResult<bool> {
        credentials::uninstall_app(&self.client().await?, &app, &company).await
    }

    async fn create_app_key(
        &self,
        app: AppId,
        permissions: Permissions,
        secret_hash: [u8; 32],
    ) -> StoreResult<AppKey> {
        credentials::create_app_key(&self.client().await?, app, permissions, secret_hash).await
    }

    async fn list_keys(&self, owner: KeyOwner) -> StoreResult<Vec<KeyListing>> {
        credentials::list_keys(&self.client().await?, &owner).await
    }

    async fn revoke_key(&self, id: KeyId) -> StoreResult<bool> {
        credentials::revoke_key(&self.client().await?, &id).await
    }

    async fn create_user_token(
        &self,
        user: UserId,
        scopes: Permissions,
        expires_at: i64,
        secret_hash: [u8; 32],
    ) -> StoreResult<UserToken> {
        let client = self.client().await?;
        credentials::create_user_token(&client, user, scopes, expires_at, secret_hash).await
    }

    async fn revoke_user_token(&self, id: UserTokenId) -> StoreResult<bool> {
        credentials::revoke_user_token(&self.client().await?, &id).await
    }

    async fn add_to_team(&self, company: CompanyId, user: UserId) -> StoreResult<TeamMember> {
        credentials::add_to_team(&self.client().await?, company, user).await
    }

    async fn remove_from_team(&self, company: CompanyId, user: UserId) -> StoreResult<bool> {
        credentials::remove_from_team(&self.client().await?, &company, &user).await
    }

    async fn delete_lead(&self, id: LeadId) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        stats::forget_lead(&tx, &id).await?;
        let statement = tx
            .prepare_cached("DELETE FROM leads WHERE id = $1")
            .await
            .map_err(pg_error)?;
        let deleted = tx
            .execute(&statement, &[&id.as_str()])
            .await
            .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        Ok(deleted > 0)
    }

    async fn insert_seed(&self, batch: SeedBatch) -> StoreResult<()> {
        let mut client = self.client().await?;
        leads::insert_seed(&mut client, &batch).await
    }
}

#[async_trait]
impl crate::storage::stats::StatsStore for PgStore {
    async fn lead_counts(
        &self,
        query: crate::storage::stats::CountQuery,
    ) -> StoreResult<Vec<crate::storage::stats::CountRow>> {
        let client = self.client().await?;
        stats::lead_counts(&client, &query).await
    }
}
