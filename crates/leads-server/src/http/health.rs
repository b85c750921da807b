//! Operational routes outside `/api/v1`.

use super::error::ApiError;
use super::AppState;
use crate::metrics::PoolLabels;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

/// `GET /healthz`: the process is up and serving.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database answers, so requests can be served.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.ping().await?;
    Ok(Json(json!({"status": "ready"})))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    for pool in state.store.pool_status() {
        let labels = PoolLabels { pool: pool.name };
        state
            .metrics
            .pool_in_use
            .get_or_create(&labels)
            .set(pool.in_use as i64);
        state
            .metrics
            .pool_size
            .get_or_create(&labels)
            .set(pool.size as i64);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
