//! What the client's tests run against: the real server in-process on a free port over a fresh
//! database, or a stub that answers from a script and records what it was sent.

#![allow(dead_code)] // each test binary uses a different part

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use leads_client::Client;
use leads_server::app::{self, Config};
use leads_server::seed::{self, SeedOptions};
use leads_server::server::ServerLimits;
use leads_server::storage::{self, Stores};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The real server over a fresh SQLite database, with one seeded company.
pub struct TestServer {
    pub base_url: String,
    pub stores: Stores,
    pub company: String,
    pub key: String,
    pub products: Vec<String>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// A server whose one company has `leads` synthetic leads over three products.
    pub async fn start(leads: u32) -> TestServer {
        Self::start_with(leads, |_| {}).await
    }

    /// As [`Self::start`], with the configuration `configure` makes of the default.
    pub async fn start_with(leads: u32, configure: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("leads.db").display());
        let stores = storage::open(&url).await.expect("open store");
        let options = SeedOptions {
            companies: 1,
            leads_per_company: leads,
            products_per_company: 3,
        };
        let report = seed::seed(&stores.directory, options, |_| {})
            .await
            .expect("seed");
        let company = &report.companies[0];
        let mut config = Config {
            database_url: url,
            ..Config::default()
        };
        configure(&mut config);
        let built = app::build_with_stores(stores.clone(), &config)
            .await
            .expect("build app");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}/api/v1", listener.local_addr().expect("addr"));
        tokio::spawn(app::serve(
            listener,
            built.router,
            ServerLimits::default(),
            std::future::pending(),
        ));
        TestServer {
            base_url,
            stores,
            company: company.id.clone(),
            key: company.key.clone(),
            products: company.products.clone(),
            _dir: dir,
        }
    }

    /// A client of this server with the company's key.
    pub fn client(&self) -> Client {
        self.client_with_key(&self.key)
    }

    pub fn client_with_key(&self, key: &str) -> Client {
        Client::builder()
            .api_key(key)
            .base_url(&self.base_url)
            .build()
            .expect("client")
    }

    /// Another key of the company, holding only `permissions`.
    pub async fn key(&self, permissions: &str) -> String {
        leads_server::admin::create_key(
            self.stores.credentials.as_ref(),
            &self.company,
            Some(permissions),
        )
        .await
        .expect("key")
        .1
    }

    /// A new user of the server, for creating leads.
    pub async fn user(&self) -> String {
        let name = format!("u{}", leads_server::domain::ids::random_base62(10));
        leads_server::admin::create_user(self.stores.directory.as_ref(), &name, None, None)
            .await
            .expect("user")
            .id
    }
}

/// One scripted answer of the stub.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    /// A 200 with a list page of leads with these ids.
    pub fn page(ids: &[&str], end_cursor: Option<&str>, has_next_page: bool) -> Reply {
        let data: Vec<Value> = ids.iter().map(|id| lead(id)).collect();
        Reply::json(
            200,
            json!({
                "data": data,
                "page_info": {
                    "start_cursor": end_cursor.map(|_| "start"),
                    "end_cursor": end_cursor,
                    "has_next_page": has_next_page,
                    "has_previous_page": false,
                }
            }),
        )
    }

    /// A 200 with one lead.
    pub fn lead(id: &str) -> Reply {
        Reply::json(200, lead(id))
    }

    /// An error answer in the contract's shape.
    pub fn error(status: u16, kind: &str, message: &str) -> Reply {
        Reply::json(status, json!({"error": {"type": kind, "message": message}}))
    }

    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn raw(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_owned()));
        self
    }

    /// Answers only after this long.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// A lead in the contract's shape.
pub fn lead(id: &str) -> Value {
    json!({
        "id": id,
        "created_at": "2023-12-01T05:00:00.401Z",
        "updated_at": "2023-12-01T05:00:00.401Z",
        "referrer": "https://twitter.com/whabormarket",
        "metadata": {},
        "user": {"id": "user_xxxxxxxxxxxxx", "email": null, "name": "John Doe", "username": "johndoe42"},
        "product": null,
        "member": null,
    })
}

/// A request as the stub received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The decoded query pairs, in order.
    pub fn query(&self) -> Vec<(String, String)> {
        let query = self.uri.query().unwrap_or("");
        form_urlencoded_pairs(query)
    }
}

fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .expect("url")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    seen: Vec<Seen>,
}

/// A server that answers each request with the next scripted reply, and records it. Once the
/// script runs out it answers 500 with `x-should-retry: false`.
pub struct Stub {
    pub base_url: String,
    script: Arc<Mutex<Script>>,
}

impl Stub {
    pub async fn start(replies: Vec<Reply>) -> Stub {
        let script = Arc::new(Mutex::new(Script {
            replies: replies.into(),
            seen: Vec::new(),
        }));
        let state = script.clone();
        let router = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    let reply = {
                        let mut script = state.lock().unwrap();
                        script.seen.push(Seen {
                            method,
                            uri,
                            headers,
                            body,
                            at: Instant::now(),
                        });
                        script.replies.pop_front()
                    };
                    let reply = reply.unwrap_or_else(|| {
                        Reply::error(500, "internal_server_error", "stub script exhausted")
                            .header("x-should-retry", "false")
                    });
                    tokio::time::sleep(reply.delay).await;
                    answer(reply)
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}/api/v1", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Stub { base_url, script }
    }

    /// A client of the stub with the defaults and key `key_test`.
    pub fn client(&self) -> Client {
        self.builder().build().expect("client")
    }

    pub fn builder(&self) -> leads_client::ClientBuilder {
        Client::builder()
            .api_key("key_test")
            .base_url(&self.base_url)
    }

    /// The requests received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.script.lock().unwrap().seen.clone()
    }
}

fn answer(reply: Reply) -> Response {
    let mut response = (
        StatusCode::from_u16(reply.status).expect("status"),
        reply.body,
    )
        .into_response();
    for (name, value) in reply.headers {
        response
            .headers_mut()
            .insert(name, value.parse().expect("header value"));
    }
    response
}

/// The time between consecutive requests.
pub fn gaps(seen: &[Seen]) -> Vec<Duration> {
    seen.windows(2).map(|w| w[1].at - w[0].at).collect()
}
