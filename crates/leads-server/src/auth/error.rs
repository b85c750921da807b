//! What authentication and authorization refuse with. `http` answers each with the contract's
//! JSON error body (see `http::extract`).

use crate::storage::StoreError;

/// Why a request may not go ahead, with the message its client is shown.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No usable credential: missing, malformed, unknown, revoked or expired (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The credential may not do this for this company (403).
    #[error("{0}")]
    Forbidden(String),
    /// What was asked for does not exist, or is not the credential's to see; the two are
    /// answered alike so ids cannot be probed (404).
    #[error("{0}")]
    NotFound(String),
    /// The store could not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AuthError {
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized(message.into())
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }
}
