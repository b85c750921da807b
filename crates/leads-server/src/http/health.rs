//! Operational routes outside `/api/v1`.

use super::error::ApiError;
use crate::metrics::{Metrics, PoolLabels};
use crate::storage::Database;
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
    State(metrics): State<Arc<Metrics>>,
) -> impl IntoResponse {
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
