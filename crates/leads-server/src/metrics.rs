//! Prometheus metrics: what `/metrics` shows.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
    pub method: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OperationLabels {
    /// Method and route, as `GET /api/v1/leads`.
    pub operation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PoolLabels {
    pub pool: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `success` (2xx), `failure` (another status), `unreachable` (no answer: refused,
    /// unresolvable, timed out) or `gone` (410, which disables the endpoint).
    pub outcome: &'static str,
}

/// The server's metrics, registered once per application.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    pub in_flight: Gauge,
    pub pool_in_use: Family<PoolLabels, Gauge>,
    pub pool_size: Family<PoolLabels, Gauge>,
    pub rate_limited: Family<OperationLabels, Counter>,
    /// Webhook delivery attempts, by outcome.
    pub webhook_attempts: Family<OutcomeLabels, Counter>,
    /// Webhook messages not yet delivered or given up (set when `/metrics` is read).
    pub webhook_queue_depth: Gauge,
    /// Age in seconds of the oldest of them (set when `/metrics` is read).
    pub webhook_oldest_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// From the commit that wrote a message to its successful delivery.
    pub webhook_delivery_latency: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("leads");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ])
        });
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response head, by route and method",
            latency.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "Requests being handled now",
            in_flight.clone(),
        );
        let pool_in_use = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections_in_use",
            "Database connections busy with a request",
            pool_in_use.clone(),
        );
        let pool_size = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database connections the pool may hold",
            pool_size.clone(),
        );
        let rate_limited = Family::<OperationLabels, Counter>::default();
        registry.register(
            "rate_limited_requests",
            "Requests refused with 429 for exceeding a credential's rate limit, by operation",
            rate_limited.clone(),
        );
        let webhook_attempts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "webhook_attempts",
            "Webhook delivery attempts, by outcome",
            webhook_attempts.clone(),
        );
        let webhook_queue_depth = Gauge::default();
        registry.register(
            "webhook_queue_depth",
            "Webhook messages waiting to be delivered (every instance's, from the database)",
            webhook_queue_depth.clone(),
        );
        let webhook_oldest_age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "webhook_oldest_message_age_seconds",
            "Age of the oldest webhook message not yet delivered; 0 when none waits",
            webhook_oldest_age.clone(),
        );
        let webhook_delivery_latency = Histogram::new([
            0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0, 3600.0, 86400.0,
        ]);
        registry.register(
            "webhook_delivery_latency_seconds",
            "Time from the commit that wrote a webhook message to its successful delivery",
            webhook_delivery_latency.clone(),
        );
        Arc::new(Self {
            registry,
            webhook_attempts,
            webhook_queue_depth,
            webhook_oldest_age,
            webhook_delivery_latency,
            requests,
            latency,
            in_flight,
            pool_in_use,
            pool_size,
            rate_limited,
        })
    }

    /// The registry in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}
