//! Authentication and permissions: who is calling, and what they may do.

use crate::domain::{CompanyId, KeyId, Permission, Permissions};
use crate::http::error::ApiError;
use crate::http::observe::CredentialSlot;
use crate::http::AppState;
use crate::storage::Storage;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a company API key's secret starts with, so a leaked one is recognisable.
pub const COMPANY_KEY_PREFIX: &str = "leads_ck_";

/// A freshly made secret: shown once, then only its hash is kept.
pub struct NewSecret {
    pub secret: String,
    pub hash: [u8; 32],
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewSecret { secret: <redacted> }")
    }
}

impl NewSecret {
    pub fn company_key() -> Self {
        let secret = format!(
            "{COMPANY_KEY_PREFIX}{}",
            crate::domain::ids::random_base62(40)
        );
        let hash = hash_secret(&secret);
        Self { secret, hash }
    }
}

pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The kinds of bearer credential the server accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialKind {
    /// A company API key: acts for its one company.
    CompanyApiKey(KeyId),
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub kind: CredentialKind,
    pub company: CompanyId,
    pub permissions: Permissions,
}

impl Credential {
    /// The id logs and limits know this credential by (never its secret).
    pub fn id(&self) -> &str {
        match &self.kind {
            CredentialKind::CompanyApiKey(id) => id.as_str(),
        }
    }

    /// Allows acting for `company` with every permission in `needed`, or says why not.
    pub fn authorize(&self, company: &CompanyId, needed: &[Permission]) -> Result<(), ApiError> {
        if !self.acts_for(company) {
            return Err(ApiError::forbidden(format!(
                "This credential cannot act for company {company}."
            )));
        }
        self.require(needed)
    }

    /// Whether this credential may act for `company`.
    pub fn acts_for(&self, company: &CompanyId) -> bool {
        &self.company == company
    }

    /// Allows holding every permission in `needed`, whatever the company, or says which lack.
    pub fn require(&self, needed: &[Permission]) -> Result<(), ApiError> {
        let missing = self.permissions.missing(needed);
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|p| p.name()).collect();
            return Err(ApiError::forbidden(format!(
                "This credential lacks the permission{} {}.",
                if names.len() > 1 { "s" } else { "" },
                names.join(", ")
            )));
        }
        Ok(())
    }

    pub fn can(&self, permission: Permission) -> bool {
        self.permissions.contains(permission)
    }
}

/// The bearer token of a request, or the 401 that its absence or shape deserves.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or_else(|| {
        ApiError::unauthorized("Missing credentials: send Authorization: Bearer <token>.")
    })?;
    if values.next().is_some() {
        return Err(ApiError::unauthorized(
            "Send exactly one Authorization header.",
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("The Authorization header must be printable ASCII."))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::unauthorized(
            "The Authorization header must use the Bearer scheme.",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::unauthorized("The bearer token is empty."));
    }
    if token.contains(char::is_whitespace) {
        return Err(ApiError::unauthorized(
            "The Authorization header must carry exactly one token.",
        ));
    }
    Ok(token)
}

/// Resolves the request's bearer token to a credential.
pub async fn authenticate(
    store: &dyn Storage,
    headers: &HeaderMap,
) -> Result<Credential, ApiError> {
    let token = bearer_token(headers)?;
    let hash = hash_secret(token);
    let unknown = || ApiError::unauthorized("Unknown or revoked credential.");
    let key = store.find_api_key(hash).await?.ok_or_else(unknown)?;
    // The lookup matched on the hash already; compare again in constant time so the check
    // itself never depends on timing of a byte-wise comparison in the database.
    if !bool::from(key.secret_hash_matches(&hash)) || key.revoked {
        return Err(unknown());
    }
    Ok(Credential {
        kind: CredentialKind::CompanyApiKey(key.id),
        company: key.company_id,
        permissions: key.permissions,
    })
}

/// Handlers take a `Credential` argument to require authentication; the credential's id is
/// recorded for the request's log line.
impl FromRequestParts<AppState> for Credential {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let credential = authenticate(state.store.as_ref(), &parts.headers).await?;
        if let Some(slot) = parts.extensions.get::<CredentialSlot>() {
            slot.record(credential.id());
        }
        Ok(credential)
    }
}

impl crate::storage::ApiKey {
    fn secret_hash_matches(&self, hash: &[u8; 32]) -> subtle::Choice {
        self.secret_hash.ct_eq(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
        headers
    }

    #[test]
    fn bearer_tokens_are_read_strictly() {
        assert_eq!(bearer_token(&headers(b"Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer_token(&headers(b"bearer abc")).unwrap(), "abc");
        assert!(bearer_token(&HeaderMap::new()).is_err());
        assert!(bearer_token(&headers(b"abc")).is_err());
        assert!(bearer_token(&headers(b"Bearer ")).is_err());
        assert!(bearer_token(&headers(b"Bearer a b")).is_err());
        assert!(bearer_token(&headers(b"Basic abc")).is_err());
        assert!(bearer_token(&headers("Bearer é".as_bytes())).is_err());
    }

    #[test]
    fn secrets_are_prefixed_and_never_debug_printed() {
        let secret = NewSecret::company_key();
        assert!(secret.secret.starts_with(COMPANY_KEY_PREFIX));
        assert_eq!(secret.hash, hash_secret(&secret.secret));
        assert!(!format!("{secret:?}").contains(&secret.secret));
    }
}
