//! The load generator: a fixed number of keep-alive HTTP/1.1 connections on loopback, each
//! sending its next request as soon as the previous answer has been read (a closed loop, like
//! `wrk`), with every latency recorded in an HDR histogram.
//!
//! It runs on the caller's runtime; `main` gives it a single thread, so the load generator
//! costs at most one of the machine's cores, as `wrk -t1` would.

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Makes the requests of a scenario. `connection` is the connection's index, `sequence` counts
/// that connection's requests from 0, so together they tell every request of a run apart.
pub trait Workload: Send + Sync + 'static {
    fn request(&self, connection: usize, sequence: u64) -> Request<Full<Bytes>>;

    /// Told the body of every 200 answer, as it comes; nothing by default.
    fn answered(&self, _body: Bytes) {}
}

/// What one timed run saw.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Answers with the expected status.
    pub ok: u64,
    /// Other statuses and transport errors.
    pub errors: u64,
    /// The first error, to say what went wrong.
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Latencies of good answers, in microseconds.
    pub latency: Histogram<u64>,
}

impl Outcome {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn empty() -> Self {
        Self {
            ok: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            latency: new_histogram(),
        }
    }

    fn absorb(&mut self, other: Outcome) {
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latency
            .add(&other.latency)
            .expect("histograms of one shape");
    }
}

/// Microseconds from 1 to one minute, three significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Opens `connections` connections to `addr` and keeps them busy with `workload` for
/// `duration`. Requests still in flight at the end are waited for and counted.
pub async fn run(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    workload: Arc<dyn Workload>,
) -> Outcome {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|index| tokio::spawn(drive(addr, index, deadline, workload.clone())))
        .collect();
    let mut total = Outcome::empty();
    for task in tasks {
        match task.await {
            Ok(outcome) => total.absorb(outcome),
            Err(e) => {
                total.errors += 1;
                total.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    total.elapsed = started.elapsed();
    total
}

/// One connection's loop; reconnects after a transport error.
async fn drive(
    addr: SocketAddr,
    index: usize,
    deadline: Instant,
    workload: Arc<dyn Workload>,
) -> Outcome {
    let mut outcome = Outcome::empty();
    let mut sequence = 0u64;
    'connect: while Instant::now() < deadline {
        let mut sender = match connect(addr).await {
            Ok(sender) => sender,
            Err(e) => {
                fail(&mut outcome, format!("connect: {e:#}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while Instant::now() < deadline {
            let request = workload.request(index, sequence);
            sequence += 1;
            let sent = Instant::now();
            let answer = match sender.send_request(request).await {
                Ok(response) => {
                    let status = response.status();
                    response
                        .into_body()
                        .collect()
                        .await
                        .map(|body| (status, body.to_bytes()))
                }
                Err(e) => Err(e),
            };
            match answer {
                Ok((StatusCode::OK, body)) => {
                    outcome.ok += 1;
                    let micros = sent.elapsed().as_micros().max(1) as u64;
                    outcome.latency.saturating_record(micros);
                    workload.answered(body);
                }
                Ok((status, body)) => {
                    let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                    fail(&mut outcome, format!("HTTP {status}: {text}"));
                }
                Err(e) => {
                    fail(&mut outcome, format!("transport: {e}"));
                    continue 'connect;
                }
            }
        }
    }
    outcome
}

fn fail(outcome: &mut Outcome, message: String) {
    outcome.errors += 1;
    outcome.first_error.get_or_insert(message);
}

/// A new keep-alive connection, ready for requests.
pub async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// A request with the headers every request of the benchmark carries.
pub fn request(
    method: Method,
    addr: SocketAddr,
    path: &str,
    key: &str,
    body: Option<Vec<u8>>,
) -> Request<Full<Bytes>> {
    let builder = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::AUTHORIZATION, format!("Bearer {key}"));
    match body {
        Some(body) => builder
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body))),
        None => builder.body(Full::new(Bytes::new())),
    }
    .expect("a valid request")
}

/// A GET of a dashboard page, with a session cookie instead of a bearer token.
pub fn page(addr: SocketAddr, path: &str, cookie: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::COOKIE, format!("leads_session={cookie}"))
        .body(Full::new(Bytes::new()))
        .expect("a valid request")
}

/// A client for the few requests that prepare a run (walking to a deep cursor, checking
/// answers), on one kept-alive connection.
pub struct Client {
    addr: SocketAddr,
    key: String,
    sender: SendRequest<Full<Bytes>>,
}

impl Client {
    pub async fn new(addr: SocketAddr, key: &str) -> Result<Self> {
        Ok(Self {
            addr,
            key: key.to_owned(),
            sender: connect(addr).await?,
        })
    }

    /// Signs in to the dashboard with the client's key; answers the session cookie's value.
    pub async fn sign_in(&mut self) -> Result<String> {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("api_key", &self.key)
            .finish();
        let request = Request::builder()
            .method(Method::POST)
            .uri("/dashboard/sign-in")
            .header(hyper::header::HOST, self.addr.to_string())
            .header(
                hyper::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request");
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let cookie = response
            .headers()
            .get(hyper::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("leads_session="))
            .and_then(|v| v.split(';').next())
            .map(str::to_owned);
        response.into_body().collect().await?;
        match cookie {
            Some(cookie) if status == StatusCode::SEE_OTHER => Ok(cookie),
            _ => Err(anyhow!(
                "signing in to the dashboard: HTTP {status}, no session"
            )),
        }
    }

    /// GETs a dashboard page with the session `cookie`; it must answer 200 with HTML.
    pub async fn get_page(&mut self, path: &str, cookie: &str) -> Result<()> {
        self.sender.ready().await?;
        let response = self
            .sender
            .send_request(page(self.addr, path, cookie))
            .await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if status != StatusCode::OK || !body.starts_with(b"<!doctype html>") {
            return Err(anyhow!(
                "GET {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ));
        }
        Ok(())
    }

    /// GETs `path` and parses the 200 answer's JSON.
    pub async fn get_json(&mut self, path: &str) -> Result<serde_json::Value> {
        let body = self.send(Method::GET, path, None).await?;
        serde_json::from_slice(&body).with_context(|| format!("GET {path}: not JSON"))
    }

    /// POSTs `body` as JSON to `path` and parses the 200 answer's JSON.
    pub async fn post_json(
        &mut self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        let body = self
            .send(Method::POST, path, Some(serde_json::to_vec(body)?))
            .await?;
        serde_json::from_slice(&body).with_context(|| format!("POST {path}: not JSON"))
    }

    /// GETs `path` and answers the 200 answer's body as text.
    pub async fn get_text(&mut self, path: &str) -> Result<String> {
        let body = self.send(Method::GET, path, None).await?;
        Ok(String::from_utf8(body.to_vec())?)
    }

    async fn send(&mut self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Bytes> {
        let request = request(method.clone(), self.addr, path, &self.key, body);
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if status != StatusCode::OK {
            return Err(anyhow!(
                "{method} {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        Ok(body)
    }
}
