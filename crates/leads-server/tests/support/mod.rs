//! TEMPORARY: a stand-in for the shared harness (`tests/common`) until it lands on main; the
//! write tests move onto it then. Same shape: a real server on a free port over a fresh database.

#![allow(dead_code)]

use leads_server::admin;
use leads_server::app::{self, Config};
use leads_server::storage::{self, Storage, User};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
}

#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::support::TestApp::spawn($crate::support::Backend::Sqlite).await;
                    super::$name(app).await;
                }
            )*
        }
    };
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn Storage>,
    pub backend: Backend,
    _dir: tempfile::TempDir,
}

pub struct Company {
    pub id: String,
    pub key: String,
    pub products: Vec<String>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("leads.db").display());
        let store = storage::open(&url).await.expect("open store");
        let config = Config {
            database_url: url,
            ..Config::default()
        };
        let built = app::build_with_store(store.clone(), &config)
            .await
            .expect("build app");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(app::serve(listener, built.router, std::future::pending()));
        TestApp {
            base,
            http: reqwest::Client::new(),
            store,
            backend,
            _dir: dir,
        }
    }

    pub async fn company(&self, products: usize, permissions: Option<&str>) -> Company {
        let store = self.store.as_ref();
        let company = admin::create_company(store, "Acme").await.expect("company");
        let mut product_ids = Vec::new();
        for i in 0..products {
            let product = admin::create_product(store, &company.id, &format!("Product {i}"))
                .await
                .expect("product");
            product_ids.push(product.id);
        }
        let (_, key) = admin::create_key(store, &company.id, permissions)
            .await
            .expect("key");
        Company {
            id: company.id,
            key,
            products: product_ids,
        }
    }

    pub async fn key(&self, company: &Company, permissions: Option<&str>) -> String {
        admin::create_key(self.store.as_ref(), &company.id, permissions)
            .await
            .expect("key")
            .1
    }

    pub async fn user(&self) -> User {
        admin::create_user(
            self.store.as_ref(),
            &format!("u{}", leads_server::domain::ids::random_base62(10)),
            Some("someone@example.com"),
            Some("Some One"),
        )
        .await
        .expect("user")
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        read(request.send().await.expect("request")).await
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Value) {
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
}

pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text:?}"));
    (status, body)
}
