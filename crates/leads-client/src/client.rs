//! The client: configuration, and sending one request with retries.

use crate::error::{ApiError, Error};
use crate::leads::Leads;
use crate::retry;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Where requests go unless told otherwise: Whop's own API.
pub const DEFAULT_BASE_URL: &str = "https://api.whop.com/api/v1";
/// How long one attempt may take, unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a failed request is tried again, unless told otherwise.
pub const DEFAULT_MAX_RETRIES: u32 = 2;

/// The environment variable holding the API key, as the official SDKs read it.
pub const API_KEY_ENV: &str = "WHOP_API_KEY";
/// The environment variable holding the base URL, as the official SDKs read it.
pub const BASE_URL_ENV: &str = "WHOP_BASE_URL";

/// The request header that makes a create safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The answer header holding the server's id for the request.
pub const REQUEST_ID: &str = "x-request-id";

/// A client of the leads API. Cheap to clone: clones share one connection pool.
///
/// ```
/// # fn main() -> Result<(), leads_client::Error> {
/// use leads_client::Client;
/// use std::time::Duration;
///
/// let client = Client::builder()
///     .api_key("key_xxxxxxxxxxxxx")
///     .base_url("http://127.0.0.1:8080/api/v1")
///     .timeout(Duration::from_secs(10))
///     .max_retries(5)
///     .header("x-team", "growth")
///     .build()?;
/// assert_eq!(client.base_url().as_str(), "http://127.0.0.1:8080/api/v1");
/// // The key never shows in logs.
/// assert!(!format!("{client:?}").contains("key_xxxxxxxxxxxxx"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: Url,
    authorization: HeaderValue,
    headers: HeaderMap,
    max_retries: u32,
    generate_idempotency_keys: bool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url.as_str())
            .field("api_key", &"<redacted>")
            .field("max_retries", &self.inner.max_retries)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client with this API key and otherwise the defaults, like
    /// `new Whop({ apiKey })`: the base URL is `WHOP_BASE_URL` when set, else Whop's API.
    pub fn new(api_key: impl Into<String>) -> Result<Client, Error> {
        Client::builder().api_key(api_key).build()
    }

    /// A client configured from `WHOP_API_KEY` (required) and `WHOP_BASE_URL` (optional),
    /// as the official SDKs are.
    pub fn from_env() -> Result<Client, Error> {
        Client::builder().build()
    }

    /// A builder for every setting; what it is not told it reads from the environment
    /// ([`API_KEY_ENV`], [`BASE_URL_ENV`]) or takes from the defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The leads resource.
    pub fn leads(&self) -> Leads {
        Leads::new(self.clone())
    }

    /// The webhooks resource: endpoints, their deliveries, replays and tests.
    pub fn webhooks(&self) -> crate::webhooks::Webhooks {
        crate::webhooks::Webhooks::new(self.clone())
    }

    /// The statistics resource.
    pub fn stats(&self) -> crate::stats::Stats {
        crate::stats::Stats::new(self.clone())
    }

    /// The exports resource.
    pub fn exports(&self) -> crate::exports::Exports {
        crate::exports::Exports::new(self.clone())
    }

    /// The HTTP client underneath, for requests outside the API's routes (download links).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The URL every route is relative to, such as `https://api.whop.com/api/v1`.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// The URL of a route: the base URL with these path segments (each percent-encoded as
    /// needed) added.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Sends a request, retrying as [`retry`] says, and reads a 2xx answer's JSON body.
    pub(crate) async fn send<T: DeserializeOwned>(&self, request: Request) -> Result<T, Error> {
        let inner = &self.inner;
        // A POST may create something each time it arrives; only a key lets the server tell a
        // retry from a second request, so without one it is sent once, unless told otherwise.
        let mut idempotency_key = request.idempotency_key;
        if request.method == Method::POST
            && idempotency_key.is_none()
            && inner.generate_idempotency_keys
        {
            idempotency_key = Some(generated_idempotency_key());
        }
        let retriable = request.method != Method::POST || idempotency_key.is_some();
        let key_header = idempotency_key
            .map(|key| {
                HeaderValue::from_str(&key)
                    .map_err(|_| Error::Config(format!("invalid idempotency key {key:?}")))
            })
            .transpose()?;

        let mut retries = 0;
        loop {
            let mut builder = inner
                .http
                .request(request.method.clone(), request.url.clone())
                .headers(inner.headers.clone())
                .header(AUTHORIZATION, inner.authorization.clone())
                .header(ACCEPT, "application/json");
            if let Some(key) = &key_header {
                builder = builder.header(IDEMPOTENCY_KEY, key.clone());
            }
            if let Some(body) = &request.body {
                builder = builder
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            let may_retry = retriable && retries < inner.max_retries;
            let response = match builder.send().await {
                Ok(response) => response,
                Err(error) if may_retry && !error.is_builder() => {
                    tokio::time::sleep(wait(retries, None)).await;
                    retries += 1;
                    continue;
                }
                Err(error) => return Err(Error::transport(&request.url, error)),
            };
            let status = response.status();
            let headers = response.headers().clone();
            if !status.is_success() && may_retry && retry::should_retry(status, &headers) {
                // Read the body anyway so the connection can be reused.
                let _ = response.bytes().await;
                tokio::time::sleep(wait(retries, Some(&headers))).await;
                retries += 1;
                continue;
            }
            let request_id = headers
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response
                .bytes()
                .await
                .map_err(|e| Error::transport(&request.url, e))?;
            if !status.is_success() {
                return Err(Error::from_status(ApiError::from_body(
                    status.as_u16(),
                    request_id,
                    &body,
                )));
            }
            return serde_json::from_slice(&body)
                .map_err(|e| Error::decode(&request.url, status.as_u16(), e, request_id));
        }
    }
}

fn wait(retries: u32, headers: Option<&HeaderMap>) -> Duration {
    retry::delay(retries, headers, SystemTime::now(), rand::random::<f64>())
}

/// A fresh key for a POST the caller allowed to be retried without naming one.
fn generated_idempotency_key() -> String {
    format!("leads-client-retry-{:032x}", rand::random::<u128>())
}

/// One API call, before it is sent.
pub(crate) struct Request {
    pub method: Method,
    pub url: Url,
    pub body: Option<Vec<u8>>,
    pub idempotency_key: Option<String>,
}

impl Request {
    pub fn new(method: Method, url: Url) -> Self {
        Request {
            method,
            url,
            body: None,
            idempotency_key: None,
        }
    }

    pub fn json(mut self, body: &impl serde::Serialize) -> Self {
        // Serialising the wire types (plain structs, string keys) cannot fail.
        self.body = Some(serde_json::to_vec(body).expect("wire types serialize"));
        self
    }
}

/// Settings for a [`Client`]; see [`Client::builder`].
#[derive(Clone, Default)]
pub struct ClientBuilder {
    api_key: Option<String>,
    base_url: Option<String>,
    timeout: Option<Duration>,
    max_retries: Option<u32>,
    headers: Vec<(String, String)>,
    generate_idempotency_keys: bool,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The API key, sent as `Authorization: Bearer <key>`. Default: `WHOP_API_KEY`.
    pub fn api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(api_key.into());
        self
    }

    /// The URL routes are relative to, such as `http://127.0.0.1:8080/api/v1`.
    /// Default: `WHOP_BASE_URL`, else [`DEFAULT_BASE_URL`].
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// How long one attempt may take, from sending to the end of the answer's body.
    /// Default: [`DEFAULT_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How often a failed request is tried again (0: never). Default: [`DEFAULT_MAX_RETRIES`].
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = Some(max_retries);
        self
    }

    /// A header sent with every request, such as `Api-Version-Date`.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Also retry POSTs made without an idempotency key, sending a generated one so the server
    /// can tell a retry from a second request. Default: `false` (such a POST is sent once).
    pub fn generate_idempotency_keys(mut self, generate: bool) -> Self {
        self.generate_idempotency_keys = generate;
        self
    }

    /// Builds the client. Fails when there is no API key, the base URL is not an http(s) URL,
    /// a header is not valid, or TLS cannot be set up.
    pub fn build(self) -> Result<Client, Error> {
        self.build_with_env(|name| std::env::var(name).ok())
    }

    fn build_with_env(self, env: impl Fn(&str) -> Option<String>) -> Result<Client, Error> {
        let from_env = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        let api_key = self
            .api_key
            .or_else(|| from_env(API_KEY_ENV))
            .ok_or_else(|| {
                Error::Config(format!(
                    "no API key: pass one to the client or set {API_KEY_ENV}"
                ))
            })?;
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", api_key.trim()))
            .map_err(|_| Error::Config("the API key holds characters a header cannot".into()))?;
        authorization.set_sensitive(true);

        let base_url = self
            .base_url
            .or_else(|| from_env(BASE_URL_ENV))
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let base_url = parse_base_url(&base_url)?;

        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::Config(format!("invalid header name {name:?}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| Error::Config(format!("invalid value for header {name}")))?;
            headers.append(name, value);
        }

        let http = reqwest::Client::builder()
            .user_agent(concat!("leads-client/", env!("CARGO_PKG_VERSION")))
            .timeout(self.timeout.unwrap_or(DEFAULT_TIMEOUT))
            .build()
            .map_err(|e| Error::Config(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base_url,
                authorization,
                headers,
                max_retries: self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
                generate_idempotency_keys: self.generate_idempotency_keys,
            }),
        })
    }
}

fn parse_base_url(text: &str) -> Result<Url, Error> {
    let invalid = |why: &str| Error::Config(format!("invalid base URL {text:?}: {why}"));
    let mut url = Url::parse(text.trim()).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(invalid("it must be an http:// or https:// URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it must not have a query or fragment"));
    }
    // `https://host/api/v1/` and `https://host/api/v1` mean the same base.
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn reads_the_key_and_base_url_from_the_environment_like_the_sdks() {
        let client = Client::builder()
            .build_with_env(env(&[
                (API_KEY_ENV, "key_env"),
                (BASE_URL_ENV, "http://127.0.0.1:9/api/v1/"),
            ]))
            .unwrap();
        assert_eq!(client.base_url().as_str(), "http://127.0.0.1:9/api/v1");
        assert_eq!(
            client.inner.authorization.to_str().unwrap(),
            "Bearer key_env"
        );
    }

    #[test]
    fn defaults_to_whops_api_and_settings_win_over_the_environment() {
        let client = Client::builder()
            .build_with_env(env(&[(API_KEY_ENV, "key_env"), (BASE_URL_ENV, "")]))
            .unwrap();
        assert_eq!(client.base_url().as_str(), DEFAULT_BASE_URL);
        assert_eq!(client.inner.max_retries, DEFAULT_MAX_RETRIES);
        let client = Client::builder()
            .api_key("key_given")
            .base_url("https://leads.example.com")
            .build_with_env(env(&[(API_KEY_ENV, "key_env"), (BASE_URL_ENV, "http://x")]))
            .unwrap();
        assert_eq!(client.base_url().as_str(), "https://leads.example.com/");
        assert_eq!(
            client.inner.authorization.to_str().unwrap(),
            "Bearer key_given"
        );
        assert_eq!(
            client.url(&["leads", "lead_a/b"]).as_str(),
            "https://leads.example.com/leads/lead_a%2Fb"
        );
    }

    #[test]
    fn a_missing_key_or_bad_setting_is_a_config_error() {
        let error = Client::builder().build_with_env(env(&[])).unwrap_err();
        assert!(
            matches!(&error, Error::Config(m) if m.contains(API_KEY_ENV)),
            "{error}"
        );
        for base in ["ftp://x", "not a url", "http://x/api?a=1", "mailto:a@b"] {
            let error = Client::builder()
                .api_key("k")
                .base_url(base)
                .build_with_env(env(&[]))
                .unwrap_err();
            assert!(matches!(error, Error::Config(_)), "{base}");
        }
        let error = Client::builder()
            .api_key("k")
            .header("bad header", "v")
            .build_with_env(env(&[]))
            .unwrap_err();
        assert!(matches!(error, Error::Config(_)));
    }

    #[test]
    fn route_urls_extend_the_base_path() {
        let client = Client::builder()
            .api_key("k")
            .base_url("http://127.0.0.1:8080/api/v1")
            .build_with_env(env(&[]))
            .unwrap();
        assert_eq!(
            client.url(&["leads"]).as_str(),
            "http://127.0.0.1:8080/api/v1/leads"
        );
    }
}
