//! The command line: parsing, and printing what the library returns.

use crate::remote;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use leads_server::admin::{self, AdminError};
use leads_server::app::{self, Config};
use leads_server::auth::jwt::{JwtConfig, VerifyingKey};
use leads_server::auth::rate_limit::RateLimit;
use leads_server::domain::webhooks::{self, RetrySchedule};
use leads_server::exports::ExportSettings;
use leads_server::seed::{self, SeedOptions};
use leads_server::server::ServerLimits;
use leads_server::storage::postgres::PoolMode;
use leads_server::storage::{self, StoreError};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "leads",
    version,
    about = "A self-hostable, Whop-compatible leads API server, and a client of it"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// Whether this is `leads serve`, which runs until stopped rather than printing and ending.
    pub fn serves(&self) -> bool {
        matches!(self.command, Command::Serve(_))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Create companies, products, users, members, apps, teams and credentials.
    Admin(AdminArgs),
    /// Fill the database with realistic synthetic data.
    Seed(SeedArgs),
    /// List a company's leads over the API, newest first, fetching page after page.
    List(remote::ListArgs),
    /// Show one lead, fetched over the API.
    Get(remote::GetArgs),
    /// Record a lead over the API.
    Create(remote::CreateArgs),
    /// Change a lead's referrer and/or metadata over the API.
    Update(remote::UpdateArgs),
    /// Chart a lead metric over time (new_leads, converted_leads, lead_conversion_rate).
    Stats(crate::stats::StatsArgs),
    /// Manage webhook endpoints over the API: create, list, get, update, delete, deliveries,
    /// replay, test.
    Webhooks(crate::webhooks::WebhooksArgs),
    /// Export a company's leads over the API to a CSV file, with a progress bar.
    Export(crate::export::ExportArgs),
    /// Import leads into a company from a CSV (an export's columns) or NDJSON file, against the
    /// database; rejected rows are listed in a report. Exits 3 when some rows were rejected.
    Import(crate::import::ImportArgs),
}

#[derive(Debug, Args)]
pub struct DatabaseArg {
    /// Database URL: sqlite://path/to/file.db (or a bare path), or postgres://user@host/db.
    #[arg(long = "database", env = "LEADS_DATABASE_URL", default_value = storage::DEFAULT_DATABASE_URL, global = true)]
    pub url: String,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LEADS_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Seconds a request may take before it is answered 503.
    #[arg(long, env = "LEADS_REQUEST_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    request_timeout: u64,
    /// Open connections at most; more clients wait to be accepted.
    #[arg(long, env = "LEADS_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: u64,
    /// Seconds a client has to send a request's headers before it is dropped.
    #[arg(long, env = "LEADS_HEADER_READ_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_read_timeout: u64,
    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT.
    #[arg(long, env = "LEADS_SHUTDOWN_GRACE", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=3600))]
    shutdown_grace: u64,
    /// Log format: text for people, json for log systems. RUST_LOG sets the filter.
    #[arg(long, env = "LEADS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// A PEM public key (P-256 for ES256, or Ed25519 for EdDSA) that company-scoped JWTs may be
    /// signed with. Repeat it (or separate paths with commas) to accept several during a rotation.
    #[arg(
        long = "jwt-public-key",
        env = "LEADS_JWT_PUBLIC_KEY",
        value_name = "PATH",
        value_delimiter = ','
    )]
    jwt_public_keys: Vec<PathBuf>,
    /// A JWKS file ({"keys": [...]}, EC P-256 and OKP Ed25519 keys) whose keys JWTs may be
    /// signed with; a token's "kid" picks among them. Repeatable.
    #[arg(
        long = "jwt-jwks",
        env = "LEADS_JWT_JWKS",
        value_name = "PATH",
        value_delimiter = ','
    )]
    jwt_jwks: Vec<PathBuf>,
    /// When set, JWTs must carry this "iss".
    #[arg(long, env = "LEADS_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// When set, JWTs must carry this "aud".
    #[arg(long, env = "LEADS_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// Requests a minute per credential and operation, in this instance; 0 turns limits off.
    #[arg(long, env = "LEADS_RATE_LIMIT", default_value_t = RateLimit::DEFAULT_PER_MINUTE)]
    rate_limit: u32,
    /// Requests a credential may make at once after a quiet spell; the per-minute limit when
    /// left out.
    #[arg(long, env = "LEADS_RATE_LIMIT_BURST", value_parser = clap::value_parser!(u32).range(1..))]
    rate_limit_burst: Option<u32>,
    /// Seconds a PostgreSQL statement may run before it is cancelled and its request answered
    /// 503; 0 turns the limit off.
    #[arg(long, env = "LEADS_DATABASE_STATEMENT_TIMEOUT", default_value_t = 10)]
    database_statement_timeout: u64,
    /// Whether to serve the dashboard under /dashboard (and redirect / to it); false for
    /// API-only deployments.
    #[arg(long, env = "LEADS_DASHBOARD", default_value_t = true, action = clap::ArgAction::Set)]
    dashboard: bool,
    /// The URL people reach this server at, such as https://leads.example.com: export download
    /// links start with it (the scheme and Host of each request when left out), and an https
    /// URL makes the dashboard's session cookie Secure.
    #[arg(long, env = "LEADS_PUBLIC_URL", value_parser = public_url)]
    public_url: Option<String>,
    /// When webhook attempts are made, each delay counted from the previous failure (ms, s, m,
    /// h). Standard Webhooks' schedule by default: immediately, 5s, 5m, 30m, 2h, 5h, 10h, 14h,
    /// 20h, 24h.
    #[arg(long, env = "LEADS_WEBHOOK_RETRY_SCHEDULE", value_parser = parse_retry_schedule)]
    webhook_retry_schedule: Option<RetrySchedule>,
    /// How long a webhook receiver has to answer an attempt (ms, s, m, h).
    #[arg(long, env = "LEADS_WEBHOOK_TIMEOUT", default_value = "15s", value_parser = parse_webhook_timeout)]
    webhook_timeout: Duration,
    /// How long a webhook message being sent is one instance's alone (ms, s, m, h): longer
    /// than --webhook-timeout. A message leased by an instance that died is sent by another
    /// this long after.
    #[arg(long, env = "LEADS_WEBHOOK_LEASE", default_value = "2m", value_parser = parse_webhook_lease)]
    webhook_lease: Duration,
    /// Let webhook endpoints resolve to loopback, private, link-local, multicast and
    /// unique-local addresses (internal receivers, tests). Off by default.
    #[arg(long, env = "LEADS_WEBHOOK_ALLOW_PRIVATE_TARGETS")]
    webhook_allow_private_targets: bool,
    /// `transaction` when a transaction pooler (PgBouncer's `pool_mode = transaction`) stands
    /// before PostgreSQL: no statement is prepared across transactions. The URL's
    /// `?pgbouncer=true` says the same.
    #[arg(long, env = "LEADS_DATABASE_POOL_MODE", value_enum, default_value_t = PoolModeArg::Session)]
    database_pool_mode: PoolModeArg,
    /// Directory export files are written to and served from; several instances must share
    /// one. Beside the SQLite file (leads.db-exports/) or in the temporary directory for
    /// PostgreSQL when left out.
    #[arg(long, env = "LEADS_EXPORT_DIR", value_name = "PATH")]
    export_dir: Option<PathBuf>,
    /// Export jobs this instance runs at once; more wait as pending. 0 runs none on this
    /// instance, leaving them to others on the same database.
    #[arg(long, env = "LEADS_EXPORT_CONCURRENCY", default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=64))]
    export_concurrency: u64,
    /// Seconds an export's download_url is valid once minted.
    #[arg(long, env = "LEADS_EXPORT_LINK_TTL", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=7 * 24 * 3600))]
    export_link_ttl: u64,
    /// Seconds a running export job is held without a renewal; a job whose instance died is
    /// taken again this long after.
    #[arg(long, env = "LEADS_EXPORT_LEASE", default_value_t = 30, value_parser = clap::value_parser!(u64).range(2..=3600))]
    export_lease: u64,
    #[command(flatten)]
    database: DatabaseArg,
}

fn parse_retry_schedule(text: &str) -> Result<RetrySchedule, String> {
    RetrySchedule::parse(text)
}

fn parse_webhook_lease(text: &str) -> Result<Duration, String> {
    let lease = webhooks::parse_duration(text)?;
    if lease < Duration::from_secs(2) || lease > Duration::from_secs(3600) {
        return Err("must be at least 2s and at most 1h".into());
    }
    Ok(lease)
}

fn parse_webhook_timeout(text: &str) -> Result<Duration, String> {
    let timeout = webhooks::parse_duration(text)?;
    if timeout.is_zero() || timeout > Duration::from_secs(300) {
        return Err("must be more than 0 and at most 5m".into());
    }
    Ok(timeout)
}

/// How connections reach PostgreSQL (see `leads_server::storage::postgres::PoolMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PoolModeArg {
    Session,
    Transaction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
    #[command(flatten)]
    database: DatabaseArg,
    /// Print the whole created object as JSON instead of only its id or secret.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Companies, whose leads the API serves.
    #[command(subcommand)]
    Company(CompanyCommand),
    /// A company's products.
    #[command(subcommand)]
    Product(ProductCommand),
    /// Users, whom leads are about.
    #[command(subcommand)]
    User(UserCommand),
    /// Memberships: a user who became a customer of a company (converted leads).
    #[command(subcommand)]
    Member(MemberCommand),
    /// API keys of companies and apps.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Apps: third parties whose keys act for the companies that install them.
    #[command(subcommand)]
    App(AppCommand),
    /// Companies' teams: users whose tokens act for the company.
    #[command(subcommand)]
    Team(TeamCommand),
    /// User OAuth tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Company-scoped JWTs, for development and tests.
    #[command(subcommand)]
    Jwt(JwtCommand),
    /// Leads.
    #[command(subcommand)]
    Lead(LeadCommand),
}

#[derive(Debug, Subcommand)]
enum CompanyCommand {
    /// Prints the new company's id.
    Create {
        #[arg(long)]
        title: String,
    },
}

#[derive(Debug, Subcommand)]
enum ProductCommand {
    /// Prints the new product's id.
    Create {
        #[arg(long)]
        company: String,
        #[arg(long)]
        title: String,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Prints the new user's id.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum MemberCommand {
    /// Prints the new member's id; the user's leads in that company show it from now on.
    Create {
        #[arg(long)]
        company: String,
        #[arg(long)]
        user: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Prints the new key's secret; it is shown this once and stored only as a hash.
    Create {
        /// The company whose key it is.
        #[arg(long, required_unless_present = "app", conflicts_with = "app")]
        company: Option<String>,
        /// The app whose key it is: it acts for the companies the app is installed on.
        #[arg(long)]
        app: Option<String>,
        /// Comma-separated permissions; every permission when left out.
        #[arg(long)]
        permissions: Option<String>,
    },
    /// Prints a company's or an app's keys, one a line (id, permissions, state); never secrets.
    List {
        #[arg(long, required_unless_present = "app", conflicts_with = "app")]
        company: Option<String>,
        #[arg(long)]
        app: Option<String>,
    },
    /// Revokes a key: every instance refuses it from its next request on.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
enum AppCommand {
    /// Prints the new app's id.
    Create {
        #[arg(long)]
        title: String,
    },
    /// Installs the app on a company, or changes an installation's permissions; prints them.
    Install {
        #[arg(long)]
        app: String,
        #[arg(long)]
        company: String,
        /// Comma-separated permissions the app's keys get there (at most); all when left out.
        #[arg(long)]
        permissions: Option<String>,
    },
    /// Uninstalls the app: its keys cannot act for the company from the next request on.
    Uninstall {
        #[arg(long)]
        app: String,
        #[arg(long)]
        company: String,
    },
}

#[derive(Debug, Subcommand)]
enum TeamCommand {
    /// Puts a user on a company's team.
    Add {
        #[arg(long)]
        company: String,
        #[arg(long)]
        user: String,
    },
    /// Takes a user off a company's team.
    Remove {
        #[arg(long)]
        company: String,
        #[arg(long)]
        user: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Prints a new token for a user; it is shown this once and stored only as a hash.
    Create {
        #[arg(long)]
        user: String,
        /// Comma-separated permissions the token holds; every permission when left out.
        #[arg(long)]
        scopes: Option<String>,
        /// Seconds until it expires (30 days when left out).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        ttl: Option<u64>,
    },
    /// Revokes a token: every instance refuses it from its next request on.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
enum JwtCommand {
    /// Prints a company-scoped JWT signed with a PEM private key (P-256 or Ed25519).
    Mint {
        /// A PEM private key file, as `openssl genpkey` or `openssl ecparam -genkey` writes it.
        #[arg(long, value_name = "PATH")]
        private_key: PathBuf,
        #[arg(long)]
        company: String,
        /// Comma-separated permissions; every permission when left out.
        #[arg(long)]
        permissions: Option<String>,
        /// Seconds until it expires (an hour when left out).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        ttl: Option<u64>,
        #[arg(long)]
        issuer: Option<String>,
        #[arg(long)]
        audience: Option<String>,
        /// The key id to put in the header, naming a key of a JWKS file.
        #[arg(long)]
        kid: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum LeadCommand {
    /// Erases a lead for good (for example on a data-deletion request).
    Delete { id: String },
}

#[derive(Debug, Args)]
struct SeedArgs {
    #[arg(long, default_value_t = 1)]
    companies: u32,
    #[arg(long, default_value_t = 1000)]
    leads_per_company: u32,
    #[arg(long, default_value_t = 10)]
    products_per_company: u32,
    /// Print one JSON object instead of one line per company.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    database: DatabaseArg,
}

/// Why the command failed, and the exit code that says so.
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl From<AdminError> for Failure {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::Invalid(message) => Failure { message, code: 2 },
            AdminError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure {
            message: error.to_string(),
            code: 1,
        }
    }
}

fn failure(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: 1,
    }
}

pub async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Admin(args) => admin(args).await,
        Command::Seed(args) => seed(args).await,
        Command::List(args) => remote::list(args).await,
        Command::Get(args) => remote::get(args).await,
        Command::Create(args) => remote::create(args).await,
        Command::Update(args) => remote::update(args).await,
        Command::Stats(args) => crate::stats::run(args).await,
        Command::Webhooks(args) => crate::webhooks::run(args).await,
        Command::Import(args) => crate::import::run(args).await,
        Command::Export(args) => crate::export::run(args).await,
    }
}

/// Logs go to stderr through a background writer, so a request never waits on the terminal
/// or a log pipe. The guard flushes what is left when dropped.
fn init_logging(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    guard
}

fn read(path: &Path, what: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure {
        message: format!("cannot read the {what} {}: {e}", path.display()),
        code: 2,
    })
}

/// The JWT keys, issuer and audience `serve` was given.
/// `--public-url`: an absolute http or https URL.
fn public_url(text: &str) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or("must start with http:// or https://")?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("must name a host".into());
    }
    Ok(text.trim_end_matches('/').to_owned())
}

fn jwt_config(args: &ServeArgs) -> Result<JwtConfig, Failure> {
    let invalid = |path: &Path, e: &dyn std::fmt::Display| Failure {
        message: format!("{}: {e}", path.display()),
        code: 2,
    };
    let mut keys = Vec::new();
    for path in &args.jwt_public_keys {
        let pem = read(path, "JWT public key")?;
        keys.push(VerifyingKey::from_pem(&pem).map_err(|e| invalid(path, &e))?);
    }
    for path in &args.jwt_jwks {
        let json = read(path, "JWKS file")?;
        keys.extend(VerifyingKey::from_jwks(&json).map_err(|e| invalid(path, &e))?);
    }
    Ok(JwtConfig {
        keys,
        issuer: args.jwt_issuer.clone(),
        audience: args.jwt_audience.clone(),
    })
}

async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let _logs = init_logging(args.log_format);
    if args.webhook_lease <= args.webhook_timeout {
        return Err(Failure {
            message: format!(
                "--webhook-lease ({:?}) must be longer than --webhook-timeout ({:?}): a message \
                 must stay leased while its attempt may still be answered",
                args.webhook_lease, args.webhook_timeout
            ),
            code: 2,
        });
    }
    let jwt = jwt_config(&args)?;
    let config = Config {
        addr: args.addr,
        database_url: args.database.url,
        database_statement_timeout: Duration::from_secs(args.database_statement_timeout),
        database_pool_mode: match args.database_pool_mode {
            PoolModeArg::Session => PoolMode::Session,
            PoolModeArg::Transaction => PoolMode::Transaction,
        },
        request_timeout: Duration::from_secs(args.request_timeout),
        limits: ServerLimits {
            max_connections: args.max_connections as usize,
            header_read_timeout: Duration::from_secs(args.header_read_timeout),
            shutdown_grace: Duration::from_secs(args.shutdown_grace),
        },
        jwt,
        rate_limit: RateLimit {
            per_minute: args.rate_limit,
            burst: args.rate_limit_burst.unwrap_or(args.rate_limit.max(1)),
        },
        dashboard: args.dashboard,
        public_url: args.public_url.clone(),
        webhooks: leads_server::webhooks::Settings {
            retry_schedule: args.webhook_retry_schedule.unwrap_or_default(),
            timeout: args.webhook_timeout,
            lease: args.webhook_lease,
            allow_private_targets: args.webhook_allow_private_targets,
        },
        exports: ExportSettings {
            dir: args.export_dir,
            concurrency: args.export_concurrency as usize,
            link_ttl: Duration::from_secs(args.export_link_ttl),
            lease: Duration::from_secs(args.export_lease),
            public_url: args.public_url,
        },
    };
    let built = app::build(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|e| failure(format!("cannot listen on {}: {e}", config.addr)))?;
    tracing::info!(
        addr = %config.addr,
        database = %storage::redact_url(&config.database_url),
        jwt_keys = config.jwt.keys.len(),
        rate_limit = config.rate_limit.per_minute,
        rate_limit_burst = config.rate_limit.burst,
        dashboard = config.dashboard,
        "serving"
    );
    let served = app::serve(
        listener,
        built.router,
        config.limits.clone(),
        app::shutdown_signal(),
    )
    .await;
    // Attempts in flight get the same grace as requests; one cut short is retried later.
    built.worker.stop(config.limits.shutdown_grace).await;
    // Running exports are given back as pending before the database closes.
    built.exports.shutdown().await;
    built.stores.database.close().await?;
    tracing::info!("database closed; bye");
    served.map_err(|e| failure(format!("server failed: {e}")))
}

/// Prints `json` as JSON when asked, else the one `short` value.
fn print<T: Serialize>(as_json: bool, json: &T, short: &str) -> Result<(), Failure> {
    if as_json {
        let text = serde_json::to_string_pretty(json).map_err(|e| failure(e.to_string()))?;
        println!("{text}");
    } else {
        println!("{short}");
    }
    Ok(())
}

async fn admin(args: AdminArgs) -> Result<(), Failure> {
    // Minting needs no database.
    if let AdminCommand::Jwt(JwtCommand::Mint {
        private_key,
        company,
        permissions,
        ttl,
        issuer,
        audience,
        kid,
    }) = &args.command
    {
        let pem = read(private_key, "private key")?;
        let options = admin::MintOptions {
            company,
            permissions: permissions.as_deref(),
            ttl: ttl.map(Duration::from_secs),
            issuer: issuer.as_deref(),
            audience: audience.as_deref(),
            kid: kid.as_deref(),
        };
        let token = admin::mint_jwt(&pem, &options)?;
        return print(args.json, &serde_json::json!({ "token": token }), &token);
    }
    let stores = storage::open(&args.database.url).await?;
    let directory = stores.directory.as_ref();
    let credentials = stores.credentials.as_ref();
    let json = args.json;
    match args.command {
        AdminCommand::Company(CompanyCommand::Create { title }) => {
            let company = admin::create_company(directory, &title).await?;
            print(json, &company, &company.id)
        }
        AdminCommand::Product(ProductCommand::Create { company, title }) => {
            let product = admin::create_product(directory, &company, &title).await?;
            print(json, &product, &product.id)
        }
        AdminCommand::User(UserCommand::Create {
            username,
            email,
            name,
        }) => {
            let user =
                admin::create_user(directory, &username, email.as_deref(), name.as_deref()).await?;
            print(json, &user, &user.id)
        }
        AdminCommand::Member(MemberCommand::Create { company, user }) => {
            let member = admin::create_member(directory, &company, &user).await?;
            print(json, &member, &member.id)
        }
        AdminCommand::Key(KeyCommand::Create {
            company,
            app,
            permissions,
        }) => {
            let view = match (company, app) {
                (Some(company), _) => {
                    let (key, secret) =
                        admin::create_key(credentials, &company, permissions.as_deref()).await?;
                    serde_json::json!({
                        "id": key.id.as_str(),
                        "key": secret,
                        "company_id": key.company_id.as_str(),
                        "permissions": key.permissions,
                        "created_at": key.created_at,
                    })
                }
                (None, app) => {
                    let app = app.unwrap_or_default();
                    let (key, secret) =
                        admin::create_app_key(credentials, &app, permissions.as_deref()).await?;
                    serde_json::json!({
                        "id": key.id.as_str(),
                        "key": secret,
                        "app_id": key.app_id.as_str(),
                        "permissions": key.permissions,
                        "created_at": key.created_at,
                    })
                }
            };
            let secret = view["key"].as_str().unwrap_or_default().to_owned();
            print(json, &view, &secret)
        }
        AdminCommand::Key(KeyCommand::List { company, app }) => {
            let keys = admin::list_keys(credentials, company.as_deref(), app.as_deref()).await?;
            let lines: Vec<String> = keys
                .iter()
                .map(|k| {
                    let state = if k.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    format!("{}\t{}\t{state}", k.id, k.permissions)
                })
                .collect();
            print(json, &keys, &lines.join("\n"))
        }
        AdminCommand::Key(KeyCommand::Revoke { id }) => {
            admin::revoke_key(credentials, &id).await?;
            print(json, &serde_json::json!({"id": id, "revoked": true}), &id)
        }
        AdminCommand::App(AppCommand::Create { title }) => {
            let app = admin::create_app(credentials, &title).await?;
            print(json, &app, &app.id)
        }
        AdminCommand::App(AppCommand::Install {
            app,
            company,
            permissions,
        }) => {
            let install =
                admin::install_app(credentials, &app, &company, permissions.as_deref()).await?;
            print(json, &install, &install.permissions.to_string())
        }
        AdminCommand::App(AppCommand::Uninstall { app, company }) => {
            admin::uninstall_app(credentials, &app, &company).await?;
            let view =
                serde_json::json!({"app_id": app, "company_id": company, "installed": false});
            print(json, &view, &app)
        }
        AdminCommand::Team(TeamCommand::Add { company, user }) => {
            let member = admin::add_to_team(credentials, &company, &user).await?;
            print(json, &member, &member.user_id)
        }
        AdminCommand::Team(TeamCommand::Remove { company, user }) => {
            admin::remove_from_team(credentials, &company, &user).await?;
            let view =
                serde_json::json!({"company_id": company, "user_id": user, "on_team": false});
            print(json, &view, &user)
        }
        AdminCommand::Token(TokenCommand::Create { user, scopes, ttl }) => {
            let ttl = ttl.map_or(admin::DEFAULT_TOKEN_TTL, Duration::from_secs);
            let (token, secret) =
                admin::create_user_token(credentials, &user, scopes.as_deref(), ttl).await?;
            let view = serde_json::json!({
                "id": token.id.as_str(),
                "token": secret,
                "user_id": token.user_id.as_str(),
                "scopes": token.scopes,
                "created_at": token.created_at,
                "expires_at": leads_types::Timestamp::from_millis(token.expires_at),
            });
            print(json, &view, &secret)
        }
        AdminCommand::Token(TokenCommand::Revoke { id }) => {
            admin::revoke_user_token(credentials, &id).await?;
            print(json, &serde_json::json!({"id": id, "revoked": true}), &id)
        }
        AdminCommand::Jwt(JwtCommand::Mint { .. }) => unreachable!("minted above"),
        AdminCommand::Lead(LeadCommand::Delete { id }) => {
            admin::delete_lead(stores.leads.as_ref(), &id).await?;
            print(json, &serde_json::json!({"id": id, "deleted": true}), &id)
        }
    }
}

async fn seed(args: SeedArgs) -> Result<(), Failure> {
    let store = storage::open_for_bulk(&args.database.url).await?.directory;
    let options = SeedOptions {
        companies: args.companies,
        leads_per_company: args.leads_per_company,
        products_per_company: args.products_per_company,
    };
    let total = u64::from(options.companies) * u64::from(options.leads_per_company);
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{spinner} seeding [{bar:40}] {human_pos}/{human_len} leads, {per_sec}, eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let report = seed::seed(&store, options, |written| bar.set_position(written)).await?;
    bar.finish_and_clear();
    eprintln!(
        "seeded {} companies, {total} leads in {:.1}s",
        report.companies.len(),
        started.elapsed().as_secs_f64()
    );
    if args.json {
        print(true, &report, "")
    } else {
        for company in &report.companies {
            println!("{} {}", company.id, company.key);
        }
        Ok(())
    }
}
