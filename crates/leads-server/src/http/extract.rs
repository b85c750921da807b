//! Where HTTP meets auth: the `Credential` extractor, and auth's refusals as API errors.

use super::error::ApiError;
use super::observe::CredentialSlot;
use super::AppState;
use crate::auth::{authenticate, AuthError, Credential};
use crate::metrics::OperationLabels;
use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;

/// Each refusal keeps its status and message: 401, 403 and 404 as auth words them, and a
/// store failure as any other store failure.
impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unauthorized(message) => ApiError::unauthorized(message),
            AuthError::Forbidden(message) => ApiError::forbidden(message),
            AuthError::NotFound(message) => ApiError::not_found(message),
            AuthError::Store(error) => error.into(),
        }
    }
}

/// The operation a request is for, as rate limits count them: method and route.
fn operation(parts: &Parts) -> String {
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    format!("{} {route}", parts.method)
}

/// Handlers take a `Credential` argument to require authentication. The credential's id is
/// recorded for the request's log line, and the request counts against its rate limit.
impl FromRequestParts<AppState> for Credential {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let credential = authenticate(
            state.credentials.as_ref(),
            &state.jwt,
            &state.keys,
            &parts.headers,
        )
        .await?;
        admit(parts, state, &credential)?;
        Ok(credential)
    }
}

/// Lets an authenticated credential's request in: records the credential for the request's
/// log line and counts the request against its rate limit (429 when over it). Bearer requests
/// and dashboard sessions both pass here.
pub(super) fn admit(
    parts: &Parts,
    state: &AppState,
    credential: &Credential,
) -> Result<(), ApiError> {
    if let Some(slot) = parts.extensions.get::<CredentialSlot>() {
        slot.record(credential.id());
    }
    let operation = operation(parts);
    if let Err(wait) = state.limiter.check(credential.id(), &operation) {
        state
            .metrics
            .rate_limited
            .get_or_create(&OperationLabels { operation })
            .inc();
        return Err(ApiError::rate_limited(wait));
    }
    Ok(())
}
