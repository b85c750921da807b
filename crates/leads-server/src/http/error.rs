//! The one error type of the API, rendered as the contract's JSON error body.

use crate::storage::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use leads_types::{ErrorBody, ErrorDetail};
use std::time::Duration;

/// How long to wait before retrying, in milliseconds, which both SDKs prefer to `retry-after`.
pub const RETRY_AFTER_MS: &str = "retry-after-ms";

/// A wait in whole milliseconds, rounded up and never 0, so a client that waits that long
/// finds the request allowed.
fn ceil_millis(wait: Duration) -> u64 {
    (wait.as_nanos().div_ceil(1_000_000) as u64).max(1)
}

/// The header the official SDKs obey over their own retry rules.
pub const SHOULD_RETRY: &str = "x-should-retry";

/// An answer other than success. Every non-2xx response the server sends is one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub code: Option<&'static str>,
    pub param: Option<String>,
    /// How long to wait before retrying (a 429), sent as `retry-after` and `retry-after-ms`.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            code: None,
            param: None,
            retry_after: None,
        }
    }

    pub fn missing(param: &str) -> Self {
        Self {
            code: Some("parameter_missing"),
            param: Some(param.to_owned()),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                format!("Missing required parameter: {param}."),
            )
        }
    }

    /// A parameter was given but is not acceptable; `why` completes "Invalid <param>: ".
    pub fn invalid(param: &str, why: impl std::fmt::Display) -> Self {
        Self {
            code: Some("parameter_invalid"),
            param: Some(param.to_owned()),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                format!("Invalid parameter {param}: {why}."),
            )
        }
    }

    /// A parameter named twice, in the query string or at a JSON body's top level.
    pub fn repeated(param: &str) -> Self {
        Self::invalid(param, "was given more than once")
    }

    pub fn invalid_json(why: impl std::fmt::Display) -> Self {
        Self {
            code: Some("invalid_json"),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                format!("The request body is not valid JSON: {why}."),
            )
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// Too many requests of one operation with one credential; retry after `wait`.
    pub fn rate_limited(wait: Duration) -> Self {
        Self {
            retry_after: Some(wait),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many requests of this operation with this credential; retry in {} ms.",
                    ceil_millis(wait)
                ),
            )
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// A failure that is ours, not the client's: logged here with its cause, shown plainly.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server failed to handle this request.",
        )
    }

    /// The contract's `type` for a status.
    pub fn kind(status: StatusCode) -> &'static str {
        match status.as_u16() {
            400 | 405 | 413 | 414 | 415 | 431 => "invalid_request_error",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            409 => "conflict",
            422 => "unprocessable_entity",
            429 => "rate_limit_exceeded",
            503 | 408 | 504 => "service_unavailable",
            _ => "internal_server_error",
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                kind: Self::kind(self.status).to_owned(),
                message: self.message.clone(),
                code: self.code.map(str::to_owned),
                param: self.param.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Some(wait) = self.retry_after {
            let millis = ceil_millis(wait);
            let headers = response.headers_mut();
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(millis.div_ceil(1000)),
            );
            headers.insert(RETRY_AFTER_MS, HeaderValue::from(millis));
        }
        if self.status == StatusCode::CONFLICT {
            // A conflict stays one however often it is retried; the SDKs retry 409 unless told.
            response
                .headers_mut()
                .insert(SHOULD_RETRY, HeaderValue::from_static("false"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(message) => ApiError::not_found(message),
            StoreError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, message),
            StoreError::Invalid { param, reason } => ApiError::invalid(param, reason),
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "database unavailable");
                // A second: an outage, a failover or a lock held past the statement timeout
                // is usually over by then, and the SDKs wait this long before retrying.
                ApiError {
                    retry_after: Some(Duration::from_secs(1)),
                    ..ApiError::unavailable("The database is unavailable; retry shortly.")
                }
            }
            StoreError::Internal(cause) => ApiError::internal(cause),
        }
    }
}

/// Gives any error response that is not already JSON (the framework's own 404, 405, 413,
/// timeouts) the contract's shape, so no response leaves in another.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    // The dashboard's error pages are HTML, for people.
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if is_json || is_page {
        return response;
    }
    let message = match status {
        StatusCode::NOT_FOUND => "No such route.",
        StatusCode::METHOD_NOT_ALLOWED => "This route does not accept that method.",
        StatusCode::PAYLOAD_TOO_LARGE => "The request body is too large.",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "The request body must be application/json.",
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => {
            "The request took too long; retry shortly."
        }
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "The request headers are too large.",
        _ => status.canonical_reason().unwrap_or("The request failed."),
    };
    let mut error = ApiError::new(status, message);
    if status == StatusCode::REQUEST_TIMEOUT {
        error.status = StatusCode::SERVICE_UNAVAILABLE;
    }
    let mut rebuilt = error.into_response();
    if let Some(allow) = response.headers().get(header::ALLOW) {
        rebuilt.headers_mut().insert(header::ALLOW, allow.clone());
    }
    rebuilt
}
