//! Per-request observation: request ids, one log line per request, metrics, and the header
//! size limit (checked here, before any handler, so the 431 is JSON like every other error).

use super::error::ApiError;
use crate::metrics::{Metrics, RequestLabels, RouteLabels};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

pub const REQUEST_ID: &str = "x-request-id";

/// Request heads larger than this (all header names and values) are refused with 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Where authentication records which credential a request used, for the request's log line.
#[derive(Debug, Clone, Default)]
pub struct CredentialSlot(Arc<OnceLock<String>>);

impl CredentialSlot {
    pub fn record(&self, id: &str) {
        let _ = self.0.set(id.to_owned());
    }

    fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// The client's request id when it is a sane one, else a new one.
fn request_id(request: &Request) -> HeaderValue {
    request
        .headers()
        .get(REQUEST_ID)
        .filter(|v| {
            let bytes = v.as_bytes();
            !bytes.is_empty() && bytes.len() <= 200 && bytes.iter().all(|b| b.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            let id = format!("req_{}", crate::domain::ids::random_base62(20));
            HeaderValue::from_str(&id).expect("base62 is a valid header value")
        })
}

struct InFlight<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pub async fn observe(
    State(metrics): State<Arc<Metrics>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request_id(&request);
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let slot = CredentialSlot::default();
    request.extensions_mut().insert(slot.clone());
    let head_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();

    metrics.in_flight.inc();
    let in_flight = InFlight(&metrics.in_flight);
    let mut response = if head_bytes > MAX_HEADER_BYTES {
        ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("The request headers are larger than {MAX_HEADER_BYTES} bytes."),
        )
        .into_response()
    } else {
        next.run(request).await
    };
    drop(in_flight);

    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route: route.clone(),
            method: method.clone(),
            status,
        })
        .inc();
    metrics
        .latency
        .get_or_create(&RouteLabels {
            route: route.clone(),
            method: method.clone(),
        })
        .observe(elapsed.as_secs_f64());
    tracing::info!(
        target: "leads::request",
        method,
        route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        request_id = id.to_str().unwrap_or_default(),
        credential = slot.get().unwrap_or("-"),
    );
    response.headers_mut().insert(REQUEST_ID, id);
    response
}
