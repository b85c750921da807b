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
mod directory;
mod exports;
mod imports;
mod leads;
mod sessions;
mod sql;
mod stats;
mod tls;
pub(crate) mod webhooks;

pub use leads::search::{candidates_lookup, contains_pattern, referrer_lookup, user_lookup, Plan};
pub use leads::{issued_statement, list_statements, Param, Query};
pub use sql::PoolMode;
use sql::{PgClient, Sql, Statements};
pub use webhooks::DUE_PROBE;

use super::{Database, PoolStatus, StoreError, StoreResult};
use crate::domain::CompanyId;
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use leads_types::Timestamp;
use std::future::Future;
use std::time::Duration;
use tokio_postgres::error::SqlState;

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
    (
        5,
        include_str!("../../../migrations/postgres/0005_search.sql"),
    ),
    (
        6,
        include_str!("../../../migrations/postgres/0006_webhooks.sql"),
    ),
    (
        7,
        include_str!("../../../migrations/postgres/0007_exports.sql"),
    ),
    (
        8,
        include_str!("../../../migrations/postgres/0008_dashboard_sessions.sql"),
    ),
    (
        9,
        include_str!("../../../migrations/postgres/0009_search_short_pending_lists.sql"),
    ),
    (
        10,
        include_str!("../../../migrations/postgres/0010_conversion_locks.sql"),
    ),
    (
        11,
        include_str!("../../../migrations/postgres/0011_member_id_under_conversion_lock.sql"),
    ),
    (
        12,
        include_str!("../../../migrations/postgres/0012_lead_count_deltas.sql"),
    ),
    (
        13,
        include_str!("../../../migrations/postgres/0013_referrer_index_longer_pending_list.sql"),
    ),
    (
        14,
        include_str!(
            "../../../migrations/postgres/0014_webhook_leases_apart_from_the_due_index.sql"
        ),
    ),
    (
        15,
        include_str!("../../../migrations/postgres/0015_webhook_messages_without_foreign_keys.sql"),
    ),
];

/// The migration that made the search tables, which the application then fills.
const SEARCH_MIGRATION: i64 = 5;

/// Connections one instance keeps at most. Several instances share the server's
/// `max_connections` (100 by default), so this stays modest.
const POOL_SIZE: usize = 16;
/// How long a request waits for a connection (to be freed, made, or checked) before it answers
/// 503: while the database is down, requests fail fast instead of piling up.
const CONNECTION_WAIT: Duration = Duration::from_secs(2);

/// How often a transaction that PostgreSQL aborted for a serialization failure (`40001`) or a
/// deadlock (`40P01`) is run in all before the client is answered 503.
const TRANSACTION_ATTEMPTS: u32 = 8;
/// The first wait before running such a transaction again; each later wait doubles, and each is
/// jittered (a random part of it) so that the transactions that collided do not collide again.
const FIRST_BACKOFF: Duration = Duration::from_millis(5);

/// What a PostgreSQL database is opened with besides its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgSettings {
    /// A statement running longer is cancelled by the server (`statement_timeout`), and the
    /// request answered 503, instead of holding its connection. Zero turns the limit off.
    pub statement_timeout: Duration,
    /// Whether a transaction pooler stands between the server and PostgreSQL
    /// ([`PoolMode::Transaction`]); the URL's `pgbouncer=true` says so too.
    pub pool_mode: PoolMode,
}

impl Default for PgSettings {
    fn default() -> Self {
        Self {
            statement_timeout: Duration::from_secs(10),
            pool_mode: PoolMode::Session,
        }
    }
}

pub struct PgStore {
    pool: Pool,
    /// Told when a write of this instance committed webhook messages.
    wakeup: std::sync::Arc<tokio::sync::Notify>,
    statements: Statements,
    /// Rows of `lead_count_deltas` this instance has folded since it last vacuumed the table.
    folded_since_vacuum: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl PgStore {
    /// Connects to the database a `postgres://` URL names and applies pending migrations.
    /// Safe to run from several instances at once.
    ///
    /// The URL's `sslmode`, `sslrootcert`, `sslcert` and `sslkey` are read as libpq reads
    /// them (`sslmode` disable, prefer by default, require, verify-ca, verify-full). Fails with a sentence naming the cause: an unknown CA, a host name
    /// the certificate does not list, a server without TLS, a certificate file not found.
    pub async fn open(url: &str, settings: PgSettings) -> StoreResult<Self> {
        let (url, tls) = tls::split_url(url)?;
        let (url, pgbouncer) = sql::split_pool_mode(&url)?;
        let pool_mode = pgbouncer.unwrap_or(settings.pool_mode);
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            // The URL may hold a password: say what is wrong, never echo it.
            StoreError::Internal(format!("the database URL is not a PostgreSQL URL: {e}"))
        })?;
        config.ssl_mode(tls.wire_mode());
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECTION_WAIT);
        }
        if config.get_application_name().is_none() {
            config.application_name("leads");
        }
        match pool_mode {
            // Set at connect, so it costs no round trip and holds on every pooled connection.
            PoolMode::Session => {
                let timeout = format!(
                    "-c statement_timeout={}",
                    settings.statement_timeout.as_millis()
                );
                let options = match config.get_options() {
                    Some(given) => format!("{given} {timeout}"),
                    None => timeout,
                };
                config.options(&options);
            }
            // A transaction pooler neither passes startup options on nor keeps session
            // settings: the timeout belongs on the role or database, where every server
            // connection the pooler makes takes it.
            PoolMode::Transaction if !settings.statement_timeout.is_zero() => tracing::warn!(
                "through a transaction pooler the statement timeout is not sent; set it on the database role (ALTER ROLE ... SET statement_timeout = '10s')"
            ),
            PoolMode::Transaction => {}
        }
        let manager = Manager::from_config(
            config,
            tls.connector()?,
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
        let store = Self {
            pool,
            wakeup: Default::default(),
            statements: Statements::new(pool_mode),
            folded_since_vacuum: Default::default(),
        };
        store.migrate().await?;
        store.make_cursor_secret().await?;
        Ok(store)
    }

    async fn client(&self) -> StoreResult<PgClient> {
        let client = self.pool.get().await.map_err(pool_error)?;
        Ok(PgClient::new(client, self.statements.clone()))
    }

    /// Runs `work` (a whole transaction, or one statement) on a pooled connection, and runs it
    /// again, after a jittered exponential backoff, when PostgreSQL aborted it for a
    /// serialization failure or a deadlock: engines that run every transaction SERIALIZABLE
    /// (CockroachDB, or `default_transaction_isolation = serializable`) abort some under
    /// contention and expect the client to retry. After [`TRANSACTION_ATTEMPTS`] the error is
    /// answered (a 503).
    ///
    /// Safe because an aborted transaction wrote nothing: its idempotency claim, lead and any
    /// aggregate updates were all rolled back with it, so running it again applies them once.
    /// Other errors, a lost connection above all (whose COMMIT may or may not have landed),
    /// are not retried here.
    pub(super) async fn retrying<T, F, Fut>(&self, mut work: F) -> StoreResult<T>
    where
        F: FnMut(PgClient) -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let client = self.client().await?;
            match work(client).await {
                Err(e) if attempt < TRANSACTION_ATTEMPTS && is_conflict(&e) => {
                    tracing::debug!(attempt, cause = %e, "retrying a transaction");
                    let jittered = backoff.mul_f64(rand::random_range(0.5..1.0));
                    tokio::time::sleep(jittered).await;
                    backoff *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
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

async fn migrate_once(client: &mut PgClient) -> Result<(), Migration> {
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
        if *version == SEARCH_MIGRATION {
            // Folding is the application's: the rows already there are folded here.
            leads::search::backfill(&tx).await?;
        }
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

/// Whether `e` is a transaction PostgreSQL aborted so that it may be run again: a
/// serialization failure or a deadlock, as [`describe`] writes them.
fn is_conflict(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(cause)
        if cause.starts_with("40001:") || cause.starts_with("40P01:"))
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
        if db.code() == &SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            && db.message().ends_with("no encryption")
        {
            return format!(
                "{}: {} (the server takes only TLS connections here: set sslmode=require or stronger in the database URL)",
                db.code().code(),
                db.message()
            );
        }
        return match db.detail() {
            Some(detail) => format!("{}: {} ({detail})", db.code().code(), db.message()),
            None => format!("{}: {}", db.code().code(), db.message()),
        };
    }
    if let Some(tls) = tls::explain(e) {
        return format!("{e}: {tls}");
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

/// The plan a list with `search` in `company` takes, chosen on `client` (a direct connection)
/// as the list chooses it: for the plan tests.
pub async fn search_plan(
    client: deadpool_postgres::Client,
    company: &str,
    search: &crate::domain::LeadSearch,
) -> StoreResult<Plan> {
    let client = PgClient::new(client, Statements::new(PoolMode::Session));
    leads::search::plan(&client, company, search).await
}

/// Runs a prepared (cached) statement that answers at most one row.
pub(super) async fn query_opt(
    client: &impl Sql,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> StoreResult<Option<tokio_postgres::Row>> {
    let statement = client.prepare_cached(sql).await.map_err(pg_error)?;
    client.query_opt(&statement, params).await.map_err(pg_error)
}

/// Runs a prepared (cached) statement and answers how many rows it wrote.
pub(super) async fn execute(
    client: &impl Sql,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> StoreResult<u64> {
    let statement = client.prepare_cached(sql).await.map_err(pg_error)?;
    client.execute(&statement, params).await.map_err(pg_error)
}

/// Runs a statement that writes one row only when `company` exists; none written means it does
/// not. Companies are never deleted, so the check cannot go stale before COMMIT.
async fn insert_for_company(
    client: &impl Sql,
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
impl Database for PgStore {
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
}
