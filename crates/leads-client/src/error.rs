//! What a call can fail with: one enum, a variant per kind of failure.

use leads_types::ErrorBody;
use std::fmt;

/// Every way a call can fail.
///
/// An answer from the API with a non-2xx status is one of the status variants, each carrying
/// the [`ApiError`] the server sent (boxed, to keep `Result`s small); [`Error::api`] gives it
/// whatever the status.
/// The rest are failures to get an answer at all, or to read it.
///
/// ```
/// use leads_client::{ApiError, Error};
///
/// fn explain(error: &Error) -> String {
///     match error {
///         Error::NotFound(_) => "no such lead".to_owned(),
///         Error::RateLimited(api) => format!("slow down: {}", api.message),
///         other => other.to_string(),
///     }
/// }
/// # let _ = explain;
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 400: a parameter is missing or invalid (see [`ApiError::param`]).
    #[error("{0}")]
    BadRequest(Box<ApiError>),
    /// 401: no API key, or one the server does not know.
    #[error("{0}")]
    Unauthorized(Box<ApiError>),
    /// 403: the key lacks a permission, or may not act for that company.
    #[error("{0}")]
    PermissionDenied(Box<ApiError>),
    /// 404: no such lead (or route), or one the key may not see.
    #[error("{0}")]
    NotFound(Box<ApiError>),
    /// 409: the request collides with another (an idempotency key reused with another body).
    #[error("{0}")]
    Conflict(Box<ApiError>),
    /// 422: well-formed but not acceptable.
    #[error("{0}")]
    UnprocessableEntity(Box<ApiError>),
    /// 429: too many requests; retried automatically before it is returned.
    #[error("{0}")]
    RateLimited(Box<ApiError>),
    /// 5xx: the server failed or is unavailable; retried automatically before it is returned.
    #[error("{0}")]
    Server(Box<ApiError>),
    /// Any other non-2xx status (405, 408, 413, ...).
    #[error("{0}")]
    OtherStatus(Box<ApiError>),
    /// No answer within the client's timeout.
    #[error("request to {url} timed out")]
    Timeout {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach {url}: {}", causes(source))]
    Connection {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// A 2xx answer whose body is not what the API promises.
    #[error("unexpected response from {url} (status {status}): {message}")]
    Decode {
        url: String,
        status: u16,
        message: String,
        request_id: Option<String>,
    },
    /// The client is misconfigured: no API key, a bad base URL, a header that is not valid.
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// The API's error, for any status variant.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::BadRequest(e)
            | Error::Unauthorized(e)
            | Error::PermissionDenied(e)
            | Error::NotFound(e)
            | Error::Conflict(e)
            | Error::UnprocessableEntity(e)
            | Error::RateLimited(e)
            | Error::Server(e)
            | Error::OtherStatus(e) => Some(e),
            _ => None,
        }
    }

    /// The HTTP status of the answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Decode { status, .. } => Some(*status),
            other => other.api().map(|e| e.status),
        }
    }

    /// The server's id for the request, to quote when asking its operators.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Decode { request_id, .. } => request_id.as_deref(),
            other => other.api().and_then(|e| e.request_id.as_deref()),
        }
    }

    /// Sorts an error answer into its variant.
    pub(crate) fn from_status(error: ApiError) -> Self {
        let error = Box::new(error);
        match error.status {
            400 => Error::BadRequest(error),
            401 => Error::Unauthorized(error),
            403 => Error::PermissionDenied(error),
            404 => Error::NotFound(error),
            409 => Error::Conflict(error),
            422 => Error::UnprocessableEntity(error),
            429 => Error::RateLimited(error),
            500..=599 => Error::Server(error),
            _ => Error::OtherStatus(error),
        }
    }

    /// A 2xx answer whose body did not parse.
    pub(crate) fn decode(
        url: &reqwest::Url,
        status: u16,
        error: serde_json::Error,
        request_id: Option<String>,
    ) -> Self {
        Error::Decode {
            url: without_query(url),
            status,
            message: error.to_string(),
            request_id,
        }
    }

    /// A transport failure: a timeout, or anything else that kept an answer from arriving.
    pub(crate) fn transport(url: &reqwest::Url, source: reqwest::Error) -> Self {
        let url = without_query(url);
        if source.is_timeout() {
            Error::Timeout { url, source }
        } else {
            Error::Connection { url, source }
        }
    }
}

/// An error answer as the API describes it: `{"error": {"type", "message", "code"?, "param"?}}`,
/// with the status and request id it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The error's `type`, such as `invalid_request_error` or `not_found`.
    pub kind: String,
    /// What went wrong, in words meant for a person.
    pub message: String,
    /// A machine-readable reason, such as `parameter_missing`, where the API gives one.
    pub code: Option<String>,
    /// The parameter at fault, where there is one.
    pub param: Option<String>,
    /// The `x-request-id` of the answer, where the server sends one.
    pub request_id: Option<String>,
}

impl ApiError {
    /// Reads an error answer's body. A body not in the contract's shape (from a proxy, say)
    /// still makes an error, with the status's usual `type` and the body's text as message.
    pub(crate) fn from_body(status: u16, request_id: Option<String>, body: &[u8]) -> Self {
        if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) {
            let detail = parsed.error;
            return ApiError {
                status,
                kind: detail.kind,
                message: detail.message,
                code: detail.code,
                param: detail.param,
                request_id,
            };
        }
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let message = if text.is_empty() {
            reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("request failed")
                .to_owned()
        } else {
            text.chars().take(500).collect()
        };
        ApiError {
            status,
            kind: default_kind(status).to_owned(),
            message,
            code: None,
            param: None,
            request_id,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.message, self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, ", request {id}")?;
        }
        f.write_str(")")
    }
}

/// The contract's `type` for a status, for bodies that do not say.
fn default_kind(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        422 => "unprocessable_entity",
        429 => "rate_limit_exceeded",
        503 => "service_unavailable",
        _ => "internal_server_error",
    }
}

/// A URL for messages: the query may hold cursors and filters nobody needs to see there.
fn without_query(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

/// Why a request failed, in one line: reqwest's own text repeats the URL and hides the useful
/// part ("connection refused") in its causes.
fn causes(error: &reqwest::Error) -> String {
    match std::error::Error::source(error) {
        Some(source) => chain(source),
        None => error.to_string(),
    }
}

/// An error and its causes in one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contract_body_keeps_every_field() {
        let body = br#"{"error": {"type": "invalid_request_error", "message": "Missing required parameter: company_id.", "code": "parameter_missing", "param": "company_id"}}"#;
        let error = Error::from_status(ApiError::from_body(400, Some("req_1".into()), body));
        let Error::BadRequest(api) = &error else {
            panic!("{error:?}")
        };
        assert_eq!(api.kind, "invalid_request_error");
        assert_eq!(api.param.as_deref(), Some("company_id"));
        assert_eq!(error.status(), Some(400));
        assert_eq!(error.request_id(), Some("req_1"));
        assert_eq!(
            error.to_string(),
            "Missing required parameter: company_id. (400 parameter_missing, request req_1)"
        );
    }

    #[test]
    fn a_foreign_body_still_makes_an_error_of_its_status() {
        let error = Error::from_status(ApiError::from_body(502, None, b"<html>Bad Gateway</html>"));
        assert!(matches!(&error, Error::Server(api) if api.message == "<html>Bad Gateway</html>"));
        let error = Error::from_status(ApiError::from_body(429, None, b""));
        assert!(
            matches!(&error, Error::RateLimited(api) if api.kind == "rate_limit_exceeded" && api.message == "Too Many Requests")
        );
        assert!(matches!(
            Error::from_status(ApiError::from_body(405, None, b"")),
            Error::OtherStatus(_)
        ));
    }
}
