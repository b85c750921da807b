//! The test harness: a real server on a free port over a fresh database per test, and
//! fixtures made through the same storage interface the server uses.
//!
//! Every HTTP-level test is written once as `async fn name(app: TestApp)` and listed in
//! [`conformance!`], which runs it on every backend.

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod browser;
pub mod cluster;
pub mod credentials;
pub mod receiver;

use leads_server::admin;
use leads_server::app::{self, Config};
use leads_server::domain::{LeadId, Permissions};
use leads_server::storage::{self, SeedBatch, SeedLead, Stores, User};
use leads_types::Timestamp;
use reqwest::StatusCode;
use serde_json::Value;

/// Which storage backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// The server `LEADS_TEST_DATABASE_URL` names; each test gets a database of its own there.
    Postgres,
}

/// Runs each listed test once per backend. Without `LEADS_TEST_DATABASE_URL` the PostgreSQL
/// variant of each test still exists, and says loudly that it was skipped.
///
/// `conformance!(configured by f; tests...)` builds each server with the configuration `f`
/// (a `fn(&mut Config)` in the test file) changes from the default.
#[macro_export]
macro_rules! conformance {
    (configured by $configure:ident; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::common::TestApp::spawn_or_skip_with(
                        $crate::common::Backend::Sqlite,
                        super::$configure,
                    )
                    .await
                    .expect("SQLite is always available");
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $crate::common::TestApp::spawn_or_skip_with(
                        $crate::common::Backend::Postgres,
                        super::$configure,
                    )
                    .await
                    else {
                        return;
                    };
                    super::$name(app).await;
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::common::TestApp::spawn($crate::common::Backend::Sqlite).await;
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) =
                        $crate::common::TestApp::spawn_or_skip($crate::common::Backend::Postgres).await
                    else {
                        return;
                    };
                    super::$name(app).await;
                }
            )*
        }
    };
}

/// A running server and handles on its stores.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub stores: Stores,
    pub backend: Backend,
    /// The database the server runs on; another instance can be started on it.
    pub database_url: String,
    _dir: Option<tempfile::TempDir>,
    _database: Option<PgDatabase>,
}

impl TestApp {
    /// A server over a fresh database of `backend`; panics when that backend cannot be had.
    pub async fn spawn(backend: Backend) -> TestApp {
        match Self::spawn_or_skip(backend).await {
            Some(app) => app,
            None => panic!("{backend:?} is not available to this test run"),
        }
    }

    /// A server over a fresh database of `backend`, or `None` (with a loud note) when the
    /// backend is PostgreSQL and no server was named.
    pub async fn spawn_or_skip(backend: Backend) -> Option<TestApp> {
        Self::spawn_or_skip_with(backend, |_| {}).await
    }

    /// As [`Self::spawn_or_skip`], with a configuration `configure` changes from the default.
    pub async fn spawn_or_skip_with(
        backend: Backend,
        configure: impl FnOnce(&mut Config),
    ) -> Option<TestApp> {
        init_logs();
        let (url, dir, database) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("leads.db").display());
                (url, Some(dir), None)
            }
            Backend::Postgres => {
                let database = PgDatabase::create().await?;
                (database.url.clone(), None, Some(database))
            }
        };
        let mut config = Config {
            database_url: url.clone(),
            ..Config::default()
        };
        configure(&mut config);
        let stores = storage::open(&url).await.expect("open store");
        let base = serve_on(stores.clone(), &config).await;
        let mut app = TestApp {
            base,
            http: reqwest::Client::new(),
            stores,
            backend,
            database_url: url.clone(),
            _dir: None,
            _database: None,
        };
        app._dir = dir;
        app._database = database;
        Some(app)
    }

    /// One more server instance on the database at `url`, as a second process behind a load
    /// balancer would be. It does not own the database: drop it before the first.
    pub async fn instance_on(url: &str, backend: Backend) -> TestApp {
        let stores = storage::open(url).await.expect("open store");
        Self::instance_over(stores, url, backend).await
    }

    /// Another server instance on the database at `url`, configured as `configure` says.
    pub async fn instance_with(
        url: &str,
        backend: Backend,
        configure: impl FnOnce(&mut Config),
    ) -> TestApp {
        let stores = storage::open(url).await.expect("open store");
        let mut config = Config {
            database_url: url.to_owned(),
            ..Config::default()
        };
        configure(&mut config);
        let base = serve_on(stores.clone(), &config).await;
        TestApp {
            base,
            http: reqwest::Client::new(),
            stores,
            backend,
            database_url: url.to_owned(),
            _dir: None,
            _database: None,
        }
    }

    /// A server instance over `stores`, already opened on the database at `url`.
    pub async fn instance_over(stores: Stores, url: &str, backend: Backend) -> TestApp {
        let config = Config {
            database_url: url.to_owned(),
            ..Config::default()
        };
        let base = serve_on(stores.clone(), &config).await;
        TestApp {
            base,
            http: reqwest::Client::new(),
            stores,
            backend,
            database_url: url.to_owned(),
            _dir: None,
            _database: None,
        }
    }

    /// Points this app at a new server instance over the same store, configured by
    /// `configure` (JWT keys, rate limits): another process behind the same load balancer.
    pub async fn reconfigure(&mut self, configure: impl FnOnce(&mut Config)) {
        let mut config = Config::default();
        configure(&mut config);
        self.base = serve_on(self.stores.clone(), &config).await;
    }

    /// A company with `products` products and a key holding `permissions` (all when `None`).
    pub async fn company(&self, products: usize, permissions: Option<&str>) -> Company {
        let store = self.stores.directory.as_ref();
        let company = admin::create_company(store, "Acme").await.expect("company");
        let mut product_ids = Vec::new();
        for i in 0..products {
            let product = admin::create_product(store, &company.id, &format!("Product {i}"))
                .await
                .expect("product");
            product_ids.push(product.id);
        }
        let (_, key) =
            admin::create_key(self.stores.credentials.as_ref(), &company.id, permissions)
                .await
                .expect("key");
        Company {
            id: company.id,
            key,
            products: product_ids,
        }
    }

    /// Another key for an existing company.
    pub async fn key(&self, company: &Company, permissions: Option<&str>) -> String {
        admin::create_key(self.stores.credentials.as_ref(), &company.id, permissions)
            .await
            .expect("key")
            .1
    }

    /// Inserts leads with the given creation times and products (by index into the company's
    /// products), each for a new user. Returns them with ids, in insertion order.
    pub async fn leads(&self, company: &Company, specs: &[(i64, Option<usize>)]) -> Vec<Fixture> {
        let mut batch = SeedBatch::default();
        let mut made = Vec::new();
        for &(created_at, product) in specs {
            let user = admin::create_user(
                self.stores.directory.as_ref(),
                &format!("u{}", leads_server::domain::ids::random_base62(10)),
                Some("someone@example.com"),
                Some("Some One"),
            )
            .await
            .expect("user");
            let id = LeadId::generate();
            let product_id = product.map(|i| company.products[i].clone());
            made.push(Fixture {
                id: id.as_str().to_owned(),
                created_at,
                product: product_id.clone(),
                user: user.clone(),
            });
            batch.leads.push(SeedLead {
                id,
                company_id: company.id.clone(),
                user_id: user.id,
                product_id,
                referrer: Some("https://example.com/".into()),
                metadata: Some(r#"{"source":"test"}"#.into()),
                created_at,
            });
        }
        self.stores
            .directory
            .insert_seed(batch)
            .await
            .expect("insert leads");
        made
    }

    /// A new user with an email and a name.
    pub async fn user(&self) -> User {
        admin::create_user(
            self.stores.directory.as_ref(),
            &format!("u{}", leads_server::domain::ids::random_base62(10)),
            Some("someone@example.com"),
            Some("Some One"),
        )
        .await
        .expect("user")
    }

    /// Any request with a key, an optional JSON body and extra headers; the answer's status,
    /// headers and JSON body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request");
        let headers = response.headers().clone();
        let (status, body) = read(response).await;
        (status, headers, body)
    }

    /// `POST /api/v1/exports` with `body`; the answer's status and body.
    pub async fn create_export(&self, key: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, body) = self
            .send(
                reqwest::Method::POST,
                "/api/v1/exports",
                key,
                Some(&body),
                &[],
            )
            .await;
        (status, body)
    }

    /// Polls the export `id` until it leaves pending/processing (at most 30 s); answers it as
    /// last read.
    pub async fn export_finished(&self, key: &str, id: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (status, body) = self.get(&format!("/api/v1/exports/{id}"), Some(key)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let state = body["status"].as_str().unwrap().to_owned();
            if state != "pending" && state != "processing" {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "export {id} still {state}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.expect("request");
        read(response).await
    }

    /// `GET /api/v1/leads?{query}` with a key; the answer must be 200.
    pub async fn list(&self, key: &str, query: &str) -> Page {
        let (status, body) = self.get(&format!("/api/v1/leads?{query}"), Some(key)).await;
        assert_eq!(status, StatusCode::OK, "GET /leads?{query}: {body}");
        Page::from(body)
    }

    /// Walks `query` forward with `first=n`, checking both flags on every page; the ids visited.
    pub async fn walk_forward(
        &self,
        key: &str,
        query: &str,
        n: usize,
        total: usize,
    ) -> Vec<String> {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let cursor = after
                .as_ref()
                .map(|c| format!("&after={c}"))
                .unwrap_or_default();
            let page = self.list(key, &format!("{query}&first={n}{cursor}")).await;
            if page.ids.is_empty() {
                assert!(!page.has_next && !page.has_previous && page.end_cursor.is_none());
                break;
            }
            seen.extend(page.ids.iter().cloned());
            assert_eq!(
                page.has_previous,
                seen.len() > page.ids.len(),
                "{query}: has_previous_page"
            );
            assert_eq!(page.has_next, seen.len() < total, "{query}: has_next_page");
            assert!(seen.len() <= total + n, "{query}: the walk does not end");
            after = page.end_cursor.clone();
        }
        seen
    }

    /// Walks `query` backward with `last=n`, checking both flags on every page; the ids in list order.
    pub async fn walk_backward(
        &self,
        key: &str,
        query: &str,
        n: usize,
        total: usize,
    ) -> Vec<String> {
        let mut pages: Vec<Vec<String>> = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let cursor = before
                .as_ref()
                .map(|c| format!("&before={c}"))
                .unwrap_or_default();
            let page = self.list(key, &format!("{query}&last={n}{cursor}")).await;
            if page.ids.is_empty() {
                assert!(!page.has_next && !page.has_previous);
                break;
            }
            let after_this: usize = pages.iter().map(Vec::len).sum();
            assert_eq!(page.has_next, after_this > 0, "{query}: has_next_page");
            assert_eq!(
                page.has_previous,
                after_this + page.ids.len() < total,
                "{query}: has_previous_page"
            );
            assert!(after_this <= total + n, "{query}: the walk does not end");
            before = page.start_cursor.clone();
            pages.push(page.ids);
        }
        pages.into_iter().rev().flatten().collect()
    }
}

/// Serves the app over `store` on a free port until the test ends; answers its base URL.
async fn serve_on(stores: Stores, config: &Config) -> String {
    let built = app::build_with_stores(stores, config)
        .await
        .expect("build app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(app::serve(
        listener,
        built.router,
        config.limits.clone(),
        std::future::pending(),
    ));
    base
}

pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text:?}"));
    (status, body)
}

pub struct Company {
    pub id: String,
    pub key: String,
    pub products: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Fixture {
    pub id: String,
    pub created_at: i64,
    pub product: Option<String>,
    pub user: User,
}

/// A list page as a client reads it.
#[derive(Debug, Clone)]
pub struct Page {
    pub ids: Vec<String>,
    pub body: Value,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
    pub has_next: bool,
    pub has_previous: bool,
}

impl From<Value> for Page {
    fn from(body: Value) -> Self {
        let ids = body["data"]
            .as_array()
            .expect("data is an array")
            .iter()
            .map(|lead| lead["id"].as_str().expect("id").to_owned())
            .collect();
        let info = &body["page_info"];
        let cursor = |v: &Value| v.as_str().map(str::to_owned);
        Page {
            ids,
            start_cursor: cursor(&info["start_cursor"]),
            end_cursor: cursor(&info["end_cursor"]),
            has_next: info["has_next_page"].as_bool().expect("has_next_page"),
            has_previous: info["has_previous_page"]
                .as_bool()
                .expect("has_previous_page"),
            body,
        }
    }
}

/// The ids of `leads` in list order: newest first, ties by id descending.
pub fn list_order(leads: &[Fixture]) -> Vec<String> {
    let mut sorted: Vec<&Fixture> = leads.iter().collect();
    sorted.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    sorted.into_iter().map(|l| l.id.clone()).collect()
}

/// A database of its own for one test, on the PostgreSQL server `LEADS_TEST_DATABASE_URL`
/// names, dropped when the test ends (passed or failed).
pub struct PgDatabase {
    /// The URL of this test's database.
    pub url: String,
    admin_url: String,
    name: String,
}

/// Test databases are named `leads_t_<unix seconds>_<random>`; ones this old were left behind by
/// a run that was killed, and are dropped by the next.
const STALE_TEST_DATABASE_SECS: u64 = 6 * 3600;

impl PgDatabase {
    /// A fresh database, or `None` (with a loud note) when `LEADS_TEST_DATABASE_URL` is unset.
    pub async fn create() -> Option<PgDatabase> {
        let Some(admin_url) = std::env::var("LEADS_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            skipped_loudly();
            return None;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let name = format!(
            "leads_t_{now}_{}",
            leads_server::domain::ids::random_base62(10).to_lowercase()
        );
        let admin = admin_client(&admin_url).await;
        drop_stale_databases(&admin, now).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        Some(PgDatabase {
            url: with_database(&admin_url, &name),
            admin_url,
            name,
        })
    }
}

impl PgDatabase {
    /// Sets `setting` to `value` for every session opened on this database from now on
    /// (`ALTER DATABASE ... SET`), as a managed service's parameter group would.
    pub async fn set(&self, setting: &str, value: &str) {
        admin_client(&self.admin_url)
            .await
            .batch_execute(&format!(
                "ALTER DATABASE {} SET {setting} = '{value}'",
                self.name
            ))
            .await
            .unwrap_or_else(|e| panic!("ALTER DATABASE SET {setting}: {e}"));
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread with a
        // runtime of its own does the work, and the test waits for it.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let admin = admin_client(&admin_url).await;
                // FORCE ends the connections the test's servers still hold.
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// Says that PostgreSQL tests are skipped: once per test binary, straight to stderr, which the
/// test harness does not capture (it only captures `eprintln!`), so it shows in every run.
fn skipped_loudly() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED (PostgreSQL): LEADS_TEST_DATABASE_URL is not set; every postgres:: test \
             of this binary passes without running ***\n"
        );
    });
}

/// A plain connection to the server `url` names, for creating and dropping databases. The
/// server's own `pgbouncer=true` is left out of the URL; what runs on this connection is sent
/// over the simple protocol, which a transaction pooler passes through.
pub async fn admin_client(url: &str) -> tokio_postgres::Client {
    let url = without_pgbouncer(url);
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot connect to LEADS_TEST_DATABASE_URL ({}): {e}",
                storage::redact_url(&url)
            )
        });
    tokio::spawn(connection);
    client
}

/// `url` without the `pgbouncer` parameter, which only the leads server reads.
fn without_pgbouncer(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let rest: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            form_urlencoded::parse(query.as_bytes()).filter(|(name, _)| name != "pgbouncer"),
        )
        .finish();
    if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{rest}")
    }
}

async fn drop_stale_databases(admin: &tokio_postgres::Client, now: u64) {
    let Ok(messages) = admin
        .simple_query("SELECT datname FROM pg_database WHERE datname LIKE 'leads\\_t\\_%'")
        .await
    else {
        return;
    };
    for message in messages {
        let tokio_postgres::SimpleQueryMessage::Row(row) = message else {
            continue;
        };
        let Some(name) = row.get(0).map(str::to_owned) else {
            continue;
        };
        let made = name
            .split('_')
            .nth(2)
            .and_then(|secs| secs.parse::<u64>().ok());
        if made.is_some_and(|made| made + STALE_TEST_DATABASE_SECS < now) {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (authority, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let authority = authority.split('/').next().unwrap_or(authority);
    match query {
        Some(query) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

/// An RFC 3339 string for a millisecond instant.
pub fn rfc3339(millis: i64) -> String {
    Timestamp::from_millis(millis)
        .expect("in range")
        .to_string()
}

/// A URL-encoded query value.
pub fn enc(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Millisecond instants where many leads share one millisecond: `count` leads over
/// `count / 3` distinct instants.
pub fn crowded_times(count: usize) -> Vec<i64> {
    let base = 1_700_000_000_000;
    (0..count).map(|i| base + (i as i64 / 3) * 1000).collect()
}

fn init_logs() {
    // Quiet by default; TEST_LOG=1 shows the server's logs.
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("debug,hyper=info")
                .with_test_writer()
                .try_init();
        }
    });
}

/// Every permission name, for keys that should hold all but some.
pub fn permissions_without(excluded: &str) -> String {
    Permissions::all()
        .iter()
        .map(|p| p.name())
        .filter(|name| *name != excluded)
        .collect::<Vec<_>>()
        .join(",")
}

/// The official SDKs, driven by the scripts in `tests/sdk` (see its README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sdk {
    /// npm `@whop/sdk`
    TypeScript,
    /// PyPI `whop-sdk` 2.x: sends `account_id` and repeated `product_ids=`.
    Python,
    /// PyPI `whop-sdk` 0.0.x: sends `company_id` and `product_ids[]=`.
    PythonLegacy,
}

impl Sdk {
    fn dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sdk")
    }

    /// The program and script that run this SDK, or `None` (with a loud note) when its
    /// packages are not installed. With `LEADS_REQUIRE_SDK_TESTS=1`, as the test script sets,
    /// a missing install fails the test instead.
    pub fn command(self) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
        let dir = Self::dir();
        let (program, script, installed) = match self {
            Sdk::TypeScript => (
                "node".into(),
                dir.join("ts/driver.mjs"),
                dir.join("ts/node_modules/@whop/sdk"),
            ),
            Sdk::Python => (
                dir.join("py/.venv/bin/python"),
                dir.join("py/driver.py"),
                dir.join("py/.venv/bin/python"),
            ),
            Sdk::PythonLegacy => (
                dir.join("py-legacy/.venv/bin/python"),
                dir.join("py-legacy/driver.py"),
                dir.join("py-legacy/.venv/bin/python"),
            ),
        };
        if installed.exists() {
            return Some((program, script));
        }
        let note = format!(
            "{self:?} SDK is not installed ({} is missing); run tests/sdk/install.sh",
            installed.display()
        );
        if std::env::var("LEADS_REQUIRE_SDK_TESTS").as_deref() == Ok("1") {
            panic!("{note}");
        }
        // Straight to the stderr handle: libtest captures eprintln! of passing tests.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("\n*** SKIPPED: {note} ***\n\n").as_bytes(),
        );
        None
    }

    /// Runs one driver command against `app` with `key`; returns the JSON line it printed.
    pub async fn run(self, app: &TestApp, key: &str, command: &str, args: Value) -> Option<Value> {
        let (program, script) = self.command()?;
        let output = tokio::process::Command::new(program)
            .arg(script)
            .arg(command)
            .arg(args.to_string())
            .env("WHOP_API_KEY", key)
            .env("WHOP_BASE_URL", format!("{}/api/v1", app.base))
            .kill_on_drop(true)
            .output()
            .await
            .expect("run the SDK driver");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{self:?} driver failed: {}\nstdout: {stdout}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        Some(
            serde_json::from_str(stdout.trim())
                .unwrap_or_else(|e| panic!("{self:?} driver printed {stdout:?}: {e}")),
        )
    }
}

/// The `id` column of a CSV file of leads (an export's, say), in order.
pub fn csv_ids(bytes: &[u8]) -> Vec<String> {
    let mut reader = csv::ReaderBuilder::new().from_reader(bytes);
    let at = reader
        .headers()
        .expect("a header row")
        .iter()
        .position(|h| h == "id")
        .expect("an id column");
    reader
        .records()
        .map(|r| r.expect("a record")[at].to_owned())
        .collect()
}
