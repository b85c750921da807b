//! Operational routes outside `/api/v1`.

use super::error::ApiError;
use crate::domain::Timestamp;
use crate::metrics::{Metrics, PoolLabels};
use crate::storage::{Database, WebhookStore};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

/// `GET /healthz`: the process is up and serving.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database answers, so requests can be served.
pub async fn readyz(State(database): State<Arc<dyn Database>>) -> Result<Json<Value>, ApiError> {
    database.ping().await?;
    Ok(Json(json!({"status": "ready"})))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(
    State(database): State<Arc<dyn Database>>,
    State(webhooks): State<Arc<dyn WebhookStore>>,
    State(metrics): State<Arc<Metrics>>,
) -> impl IntoResponse {
    // The outbox is the database's, so every instance shows the same queue.
    if let Ok(queue) = webhooks.queue_stats().await {
        metrics.webhook_queue_depth.set(queue.depth as i64);
        let age = queue.oldest_created_at.map_or(0.0, |at| {
            (Timestamp::now().as_millis() - at).max(0) as f64 / 1000.0
        });
        metrics.webhook_oldest_age.set(age);
    }
    for pool in database.pool_status() {
        let labels = PoolLabels { pool: pool.name };
        metrics
            .pool_in_use
            .get_or_create(&labels)
            .set(pool.in_use as i64);
        metrics
            .pool_size
            .get_or_create(&labels)
            .set(pool.size as i64);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
}
