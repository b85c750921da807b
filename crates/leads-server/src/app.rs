//! Putting the server together: configuration, start-up and graceful shutdown.

use crate::auth::jwt::{JwtConfig, JwtVerifier};
use crate::auth::key_cache::KeyCache;
use crate::auth::rate_limit::{RateLimit, RateLimiter};
use crate::domain::{idempotency, Timestamp};
use crate::exports::links::LinkSigner;
use crate::exports::worker::ExportWorker;
use crate::exports::ExportSettings;
use crate::http::exports::ExportFiles;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::pagination::CursorCodec;
use crate::server::{self, ServerLimits};
use crate::storage::{self, sessions, LeadStore, SessionStore, StatsStore, StoreError, Stores};
use crate::webhooks;
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::net::TcpListener;

/// Everything `leads serve` can be told.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub database_url: String,
    /// A PostgreSQL statement running longer is cancelled and its request answered 503.
    pub database_statement_timeout: Duration,
    /// Whether a transaction pooler stands before PostgreSQL.
    pub database_pool_mode: storage::postgres::PoolMode,
    /// A request still running after this answers 503.
    pub request_timeout: Duration,
    pub limits: ServerLimits,
    /// The keys company-scoped JWTs may be signed with, and their required `iss` and `aud`.
    pub jwt: JwtConfig,
    /// Requests per credential and operation.
    pub rate_limit: RateLimit,
    /// Whether `/dashboard` is served (`serve --dashboard false` turns it off).
    pub dashboard: bool,
    /// The URL people reach this server at (`serve --public-url`); an `https` one makes the
    /// dashboard's session cookie `Secure`.
    pub public_url: Option<String>,
    /// How webhooks are delivered: retry schedule, timeout, private targets.
    pub webhooks: webhooks::Settings,
    /// Export files, their links and the export worker.
    pub exports: ExportSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: storage::DEFAULT_DATABASE_URL.to_owned(),
            database_statement_timeout: storage::postgres::PgSettings::default().statement_timeout,
            database_pool_mode: storage::postgres::PoolMode::Session,
            request_timeout: Duration::from_secs(30),
            limits: ServerLimits::default(),
            jwt: JwtConfig::default(),
            rate_limit: RateLimit::default(),
            dashboard: true,
            public_url: None,
            webhooks: webhooks::Settings::default(),
            exports: ExportSettings::default(),
        }
    }
}

/// A built application: its router, the stores behind it, and its background workers: webhook
/// delivery (stop it with [`webhooks::Worker::stop`] once the server has stopped) and exports
/// (running; [`ExportWorker::shutdown`] stops it before the database is closed).
pub struct App {
    pub router: Router,
    pub stores: Stores,
    pub worker: webhooks::Worker,
    pub exports: ExportWorker,
}

/// Opens the database (applying migrations) and builds the router.
pub async fn build(config: &Config) -> Result<App, StoreError> {
    let pg = storage::postgres::PgSettings {
        statement_timeout: config.database_statement_timeout,
        pool_mode: config.database_pool_mode,
    };
    let stores = storage::open_with(&config.database_url, pg).await?;
    build_with_stores(stores, config).await
}

/// Builds the router over an already open database.
pub async fn build_with_stores(stores: Stores, config: &Config) -> Result<App, StoreError> {
    let secret = stores.database.cursor_secret().await?;
    tokio::spawn(every(
        FORGET_EVERY,
        Arc::downgrade(&stores.leads),
        forget_old_idempotency_claims,
    ));
    tokio::spawn(every(
        FOLD_EVERY,
        Arc::downgrade(&stores.stats),
        fold_lead_counts,
    ));
    let sender =
        Arc::new(webhooks::Sender::new(config.webhooks.clone()).map_err(StoreError::Internal)?);
    let metrics = Metrics::new();
    let worker = webhooks::Worker::start(stores.webhooks.clone(), sender.clone(), metrics.clone());
    let export_dir = config.exports.dir_for(&config.database_url);
    let export_files = ExportFiles {
        signer: LinkSigner::new(
            &stores.exports.link_secret().await?,
            config.exports.link_ttl,
        ),
        public_url: config.exports.public_url.clone(),
        dir: export_dir.clone(),
    };
    let exports = ExportWorker::start(stores.exports.clone(), config.exports.clone(), export_dir);
    let state = AppState {
        database: stores.database.clone(),
        leads: stores.leads.clone(),
        credentials: stores.credentials.clone(),
        cursors: CursorCodec::new(&secret),
        metrics,
        jwt: Arc::new(JwtVerifier::new(&config.jwt)),
        limiter: Arc::new(RateLimiter::new(config.rate_limit)),
        keys: Arc::new(KeyCache::default()),
        stats: stores.stats.clone(),
        sessions: stores.sessions.clone(),
        directory: stores.directory.clone(),
        dashboard: http::dashboard::DashboardSettings {
            enabled: config.dashboard,
            secure_cookies: config
                .public_url
                .as_deref()
                .is_some_and(|url| url.to_ascii_lowercase().starts_with("https://")),
        },
        webhooks: stores.webhooks.clone(),
        sender,
        exports: stores.exports.clone(),
        export_files: Arc::new(export_files),
    };
    if config.dashboard {
        tokio::spawn(every(
            FORGET_EVERY,
            Arc::downgrade(&stores.sessions),
            forget_idle_sessions,
        ));
    }
    Ok(App {
        router: http::router(state, config.request_timeout),
        stores,
        worker,
        exports,
    })
}

/// How often claims past [`idempotency::RETENTION`] are looked for.
const FORGET_EVERY: Duration = Duration::from_secs(10 * 60);
/// Claims forgotten per transaction, so forgetting never holds the writer for long.
const FORGET_BATCH: u32 = 1_000;

/// Runs `work` on the store every `period`, from start-up on, until the store is gone (the
/// server has shut down): the loop every background clean-up shares. A tick missed while `work`
/// ran is not made up.
async fn every<S, F, Fut>(period: Duration, store: Weak<S>, mut work: F)
where
    S: ?Sized,
    F: FnMut(Arc<S>) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(store) = store.upgrade() else { return };
        work(store).await;
    }
}

/// Forgets idempotency claims older than the retention (every [`FORGET_EVERY`]).
async fn forget_old_idempotency_claims(store: Arc<dyn LeadStore>) {
    let before = Timestamp::now().as_millis() - idempotency::RETENTION.as_millis() as i64;
    let mut forgotten = 0;
    loop {
        match store.forget_idempotency_claims(before, FORGET_BATCH).await {
            Ok(n) => {
                forgotten += n;
                if n < u64::from(FORGET_BATCH) {
                    break;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "forgetting old idempotency claims failed; will retry");
                break;
            }
        }
    }
    if forgotten > 0 {
        tracing::info!(forgotten, "forgot idempotency claims past their retention");
    }
}

/// How often the counts PostgreSQL creates write ahead are moved into `lead_counts`
/// ([`StatsStore::fold_lead_counts`]): often enough that readers sum few of them.
pub const FOLD_EVERY: Duration = Duration::from_secs(1);

/// Moves the counts written ahead into `lead_counts` (every [`FOLD_EVERY`]). A failure is
/// logged and tried again at the next tick; nothing is lost, as readers sum what is left.
async fn fold_lead_counts(store: Arc<dyn StatsStore>) {
    if let Err(error) = store.fold_lead_counts().await {
        tracing::warn!(%error, "moving lead counts into lead_counts failed; will retry");
    }
}

/// Deletes dashboard sessions idle past their expiry (every [`FORGET_EVERY`]; a request would
/// refuse them anyway; this keeps the table small).
async fn forget_idle_sessions(store: Arc<dyn SessionStore>) {
    let before = Timestamp::now().as_millis() - sessions::IDLE_EXPIRY_MILLIS;
    loop {
        match store.forget_idle_sessions(before, FORGET_BATCH).await {
            Ok(n) if n < u64::from(FORGET_BATCH) => break,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "forgetting idle dashboard sessions failed; will retry");
                break;
            }
        }
    }
}

/// Serves until `shutdown` resolves, then finishes in-flight requests and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve(listener, router, limits, shutdown).await
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
