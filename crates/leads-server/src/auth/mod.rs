//! Authentication and permissions: who is calling, and what they may do for which company.
//!
//! Four kinds of bearer credential, told apart by their shape:
//!
//! | kind | token | acts for | permissions |
//! |---|---|---|---|
//! | company API key | `leads_ck_...` | its company | the key's |
//! | app API key | `leads_ak_...` | each company the app is installed on | the key's ∩ the installation's |
//! | company-scoped JWT | `header.claims.signature` | the company its claims name | the claims' |
//! | user OAuth token | `leads_ut_...` | companies whose team the user is on | the token's scopes |
//!
//! Outside a company's team a user token may do one thing there: record its own user as a lead
//! ([`Credential::authorize_own_lead`]), as Whop documents ("if authenticated as a user, that user
//! is used automatically"). It may not list, read or update the company's leads: they are the
//! company's records about the user (its notes in `metadata`, the `referrer` affiliate credit is
//! decided on), not the user's own.
//!
//! Every decision about what a credential may do is made here, in [`Credential::access`];
//! handlers call [`Credential::authorize`], [`Credential::authorize_lead`] or, to fold a key's
//! re-check into their own read, [`Credential::authorize_deferred`], and nothing else.
//! Credentials are checked against the database on every request, so a revoked key, an expired
//! token or an uninstalled app is refused at once by every instance. Company API keys are
//! remembered by the instance ([`key_cache`]), but a remembered key is still re-checked for
//! revocation in the request's own round trip.
//!
//! Auth knows nothing of HTTP routing or responses: it reads the stores it is handed
//! ([`CredentialStore`], and [`LeadStore`] to find whose a lead is) and refuses with
//! [`AuthError`], which `http` turns into the contract's error body. The request extractor
//! that calls [`authenticate`] lives in `http::extract`.

pub mod error;
pub mod jwt;
pub mod key_cache;
pub mod rate_limit;
pub mod secrets;

pub use error::AuthError;
pub use secrets::{hash_secret, NewSecret, APP_KEY_PREFIX, COMPANY_KEY_PREFIX, USER_TOKEN_PREFIX};

use crate::domain::{
    AppId, CompanyId, KeyId, LeadId, Permission, Permissions, Timestamp, UserId, UserTokenId,
};
use crate::storage::sessions::SecretKind;
use crate::storage::{CredentialStore, LeadStore};
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use jwt::JwtVerifier;
use key_cache::{KeyCache, RememberedKey};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The kinds of bearer credential the server accepts, with what each is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialKind {
    /// A company API key: acts for its one company.
    CompanyApiKey { key: KeyId, company: CompanyId },
    /// An app API key: acts for the companies its app is installed on.
    AppApiKey { key: KeyId, app: AppId },
    /// A JWT signed by a key the server trusts, naming one company. `id` is derived from the
    /// token (never the token itself), for logs, limits and idempotency.
    CompanyJwt { id: String, company: CompanyId },
    /// A user OAuth token: acts as its user.
    UserToken { token: UserTokenId, user: UserId },
}

/// An authenticated caller. `permissions` is the most it may ever do; what it may do for one
/// company is [`Credential::access`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub kind: CredentialKind,
    pub permissions: Permissions,
    /// Set for a company API key taken from the instance's memory: not yet confirmed unrevoked
    /// for this request.
    pub recheck: Option<Recheck>,
}

/// A remembered company API key that this request must still confirm is not revoked.
#[derive(Clone)]
pub struct Recheck {
    pub key: KeyId,
    hash: [u8; 32],
    cache: Arc<KeyCache>,
}

impl PartialEq for Recheck {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Recheck {}

impl std::fmt::Debug for Recheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recheck").field("key", &self.key).finish()
    }
}

/// What a credential may do for one company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub permissions: Permissions,
}

impl Access {
    pub fn can(&self, permission: Permission) -> bool {
        self.permissions.contains(permission)
    }

    /// Allows holding every permission in `needed`, or says which lack.
    pub fn require(&self, needed: &[Permission]) -> Result<(), AuthError> {
        require(self.permissions, needed)
    }
}

fn require(held: Permissions, needed: &[Permission]) -> Result<(), AuthError> {
    let missing = held.missing(needed);
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|p| p.name()).collect();
        return Err(AuthError::forbidden(format!(
            "This credential lacks the permission{} {}.",
            if names.len() > 1 { "s" } else { "" },
            names.join(", ")
        )));
    }
    Ok(())
}

fn cannot_act_for(company: &CompanyId) -> AuthError {
    AuthError::forbidden(format!("This credential cannot act for company {company}."))
}

/// The same answer for an absent lead and one the credential may not see.
fn no_such_lead() -> AuthError {
    AuthError::not_found("No such lead.")
}

impl Credential {
    /// The id logs, limits and idempotency keys know this credential by (never its secret).
    pub fn id(&self) -> &str {
        match &self.kind {
            CredentialKind::CompanyApiKey { key, .. } | CredentialKind::AppApiKey { key, .. } => {
                key.as_str()
            }
            CredentialKind::CompanyJwt { id, .. } => id,
            CredentialKind::UserToken { token, .. } => token.as_str(),
        }
    }

    /// The one company a company key or JWT is bound to.
    pub fn home_company(&self) -> Option<&CompanyId> {
        match &self.kind {
            CredentialKind::CompanyApiKey { company, .. }
            | CredentialKind::CompanyJwt { company, .. } => Some(company),
            CredentialKind::AppApiKey { .. } | CredentialKind::UserToken { .. } => None,
        }
    }

    /// The user a user token acts as.
    pub fn acting_user(&self) -> Option<&UserId> {
        match &self.kind {
            CredentialKind::UserToken { user, .. } => Some(user),
            _ => None,
        }
    }

    /// What this credential may do for `company`; `None` when it may not act for it at all: a
    /// company key or JWT of another company, an app not installed there, or a user token whose
    /// user is not on the company's team.
    pub async fn access(
        &self,
        credentials: &dyn CredentialStore,
        company: &CompanyId,
    ) -> Result<Option<Access>, AuthError> {
        let access = |permissions| Access { permissions };
        Ok(match &self.kind {
            CredentialKind::CompanyApiKey { company: own, .. }
            | CredentialKind::CompanyJwt { company: own, .. } => {
                (own == company).then(|| access(self.permissions))
            }
            CredentialKind::AppApiKey { app, .. } => credentials
                .app_installation(app.clone(), company.clone())
                .await?
                .map(|installed| access(self.permissions.intersection(installed))),
            CredentialKind::UserToken { user, .. } => credentials
                .is_on_team(company.clone(), user.clone())
                .await?
                .then(|| access(self.permissions)),
        })
    }

    /// Allows acting for `company` with every permission in `needed`, or says why not (403).
    pub async fn authorize(
        &self,
        credentials: &dyn CredentialStore,
        company: &CompanyId,
        needed: &[Permission],
    ) -> Result<Access, AuthError> {
        self.confirm(credentials).await?;
        self.decide(credentials, company, needed).await
    }

    /// [`Credential::authorize`] for recording a lead about `user` for `company`. A user token
    /// records only its own user (naming another is a 403) and may do so for any company, on its
    /// team or not (Whop: "if authenticated as a user, that user is used automatically"); off the
    /// team it acts with its scopes for that one lead. Every other credential is authorized as by
    /// [`Credential::authorize`].
    pub async fn authorize_own_lead(
        &self,
        credentials: &dyn CredentialStore,
        company: &CompanyId,
        user: &UserId,
        needed: &[Permission],
    ) -> Result<Access, AuthError> {
        let Some(me) = self.acting_user() else {
            return self.authorize(credentials, company, needed).await;
        };
        self.require(needed)?;
        if me != user {
            return Err(AuthError::forbidden(
                "A user token records leads of its own user only; leave user_id out.",
            ));
        }
        Ok(Access {
            permissions: self.permissions,
        })
    }

    /// [`Credential::authorize`], except that a remembered key's re-check is handed back for the
    /// caller to run inside its own read (`LeadStore::list_leads`); the caller must then pass what
    /// the read found to [`Credential::rechecked`] before answering anything.
    pub async fn authorize_deferred(
        &self,
        credentials: &dyn CredentialStore,
        company: &CompanyId,
        needed: &[Permission],
    ) -> Result<(Access, Option<KeyId>), AuthError> {
        match self.decide(credentials, company, needed).await {
            Ok(access) => Ok((access, self.recheck.as_ref().map(|r| r.key.clone()))),
            Err(refused) => {
                // A revoked key is unknown (401) before it is anything else.
                self.confirm(credentials).await?;
                Err(refused)
            }
        }
    }

    /// Takes the answer of a re-check run inside a read: `None` means the key is no longer
    /// valid, and it is forgotten and refused.
    pub fn rechecked<T>(&self, found: Option<T>) -> Result<T, AuthError> {
        match found {
            Some(value) => Ok(value),
            None => {
                if let Some(recheck) = &self.recheck {
                    recheck.cache.forget(&recheck.hash);
                }
                Err(unknown())
            }
        }
    }

    /// Confirms on its own round trip that a remembered key is still valid (401 when it was
    /// revoked since); nothing to do for any other credential, which was looked up already.
    pub async fn confirm(&self, credentials: &dyn CredentialStore) -> Result<(), AuthError> {
        let Some(recheck) = &self.recheck else {
            return Ok(());
        };
        let valid = credentials.api_key_is_valid(recheck.key.clone()).await?;
        self.rechecked(valid.then_some(()))
    }

    async fn decide(
        &self,
        credentials: &dyn CredentialStore,
        company: &CompanyId,
        needed: &[Permission],
    ) -> Result<Access, AuthError> {
        if self.home_company().is_some_and(|home| home != company) {
            return Err(cannot_act_for(company));
        }
        self.require(needed)?;
        let access = self
            .access(credentials, company)
            .await?
            .ok_or_else(|| cannot_act_for(company))?;
        access.require(needed)?;
        Ok(access)
    }

    /// Allows acting on the lead `id` with every permission in `needed`: answers the company to
    /// find it in and what this credential may do there. A lead that does not exist and one the
    /// credential may not see are both 404, so ids cannot be probed; a missing permission is 403.
    pub async fn authorize_lead(
        &self,
        credentials: &dyn CredentialStore,
        leads: &dyn LeadStore,
        id: &LeadId,
        needed: &[Permission],
    ) -> Result<(CompanyId, Access), AuthError> {
        self.confirm(credentials).await?;
        self.require(needed)?;
        if let Some(home) = self.home_company() {
            // The store looks only in this company, so another company's lead is not found.
            let access = Access {
                permissions: self.permissions,
            };
            return Ok((home.clone(), access));
        }
        let company = leads
            .lead_parties(id.clone())
            .await?
            .ok_or_else(no_such_lead)?
            .company;
        let access = self
            .access(credentials, &company)
            .await?
            .ok_or_else(no_such_lead)?;
        access.require(needed)?;
        Ok((company, access))
    }

    /// Allows acting on a resource of `company` (a webhook endpoint, say) with every
    /// permission in `needed`. A company the credential may not act for is answered as if the
    /// resource were absent (404, `absent`), so resource ids cannot be probed.
    pub async fn authorize_resource(
        &self,
        credentials: &dyn CredentialStore,
        company: &CompanyId,
        needed: &[Permission],
        absent: &'static str,
    ) -> Result<Access, AuthError> {
        self.confirm(credentials).await?;
        self.require(needed)?;
        let access = self
            .access(credentials, company)
            .await?
            .ok_or_else(|| AuthError::not_found(absent))?;
        access.require(needed)?;
        Ok(access)
    }

    /// Allows holding every permission in `needed`, whatever the company, or says which lack.
    pub fn require(&self, needed: &[Permission]) -> Result<(), AuthError> {
        require(self.permissions, needed)
    }
}

/// The bearer token of a request, or the 401 that its absence or shape deserves.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or_else(|| {
        AuthError::unauthorized("Missing credentials: send Authorization: Bearer <token>.")
    })?;
    if values.next().is_some() {
        return Err(AuthError::unauthorized(
            "Send exactly one Authorization header.",
        ));
    }
    let value = value.to_str().map_err(|_| {
        AuthError::unauthorized("The Authorization header must be printable ASCII.")
    })?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::unauthorized(
            "The Authorization header must use the Bearer scheme.",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::unauthorized("The bearer token is empty."));
    }
    if token.contains(char::is_whitespace) {
        return Err(AuthError::unauthorized(
            "The Authorization header must carry exactly one token.",
        ));
    }
    Ok(token)
}

fn unknown() -> AuthError {
    AuthError::unauthorized("Unknown or revoked credential.")
}

/// Whether a stored hash is the hash of the presented secret, compared in constant time. The
/// lookup matched on the hash already; comparing again keeps the decision itself independent of
/// how the database compares bytes.
fn same_hash(stored: &[u8; 32], presented: &[u8; 32]) -> bool {
    bool::from(stored.ct_eq(presented))
}

/// Resolves the request's bearer token to a credential.
///
/// A company API key found before comes from `keys` without a lookup, marked for re-checking.
pub async fn authenticate(
    credentials: &dyn CredentialStore,
    jwt: &JwtVerifier,
    keys: &Arc<KeyCache>,
    headers: &HeaderMap,
) -> Result<Credential, AuthError> {
    authenticate_token(credentials, jwt, keys, bearer_token(headers)?).await
}

/// The kind of stored secret a token is, by its prefix; `None` for a JWT or anything else.
pub fn secret_kind(token: &str) -> Option<SecretKind> {
    if token.starts_with(COMPANY_KEY_PREFIX) {
        Some(SecretKind::CompanyKey)
    } else if token.starts_with(APP_KEY_PREFIX) {
        Some(SecretKind::AppKey)
    } else if token.starts_with(USER_TOKEN_PREFIX) {
        Some(SecretKind::UserToken)
    } else {
        None
    }
}

/// Resolves a secret known by its kind and SHA-256 hash to a credential: what a bearer token of
/// that kind resolves to, and how a dashboard session, which keeps only the hash, is
/// re-authenticated on every request. Unknown, revoked and expired secrets are 401.
pub async fn authenticate_secret(
    credentials: &dyn CredentialStore,
    keys: &Arc<KeyCache>,
    kind: SecretKind,
    hash: [u8; 32],
) -> Result<Credential, AuthError> {
    match kind {
        SecretKind::CompanyKey => {
            if let Some(known) = keys.get(&hash) {
                return Ok(Credential {
                    kind: known.kind(),
                    permissions: known.permissions,
                    recheck: Some(Recheck {
                        key: known.key,
                        hash,
                        cache: keys.clone(),
                    }),
                });
            }
            let key = credentials.find_api_key(hash).await?.ok_or_else(unknown)?;
            if !same_hash(&key.secret_hash, &hash) || key.revoked {
                return Err(unknown());
            }
            let known = RememberedKey {
                key: key.id,
                company: key.company_id,
                permissions: key.permissions,
            };
            keys.remember(hash, known.clone());
            Ok(Credential {
                kind: known.kind(),
                permissions: known.permissions,
                recheck: None,
            })
        }
        SecretKind::AppKey => {
            let key = credentials.find_app_key(hash).await?.ok_or_else(unknown)?;
            if !same_hash(&key.secret_hash, &hash) || key.revoked {
                return Err(unknown());
            }
            Ok(Credential {
                kind: CredentialKind::AppApiKey {
                    key: key.id,
                    app: key.app_id,
                },
                permissions: key.permissions,
                recheck: None,
            })
        }
        SecretKind::UserToken => {
            let found = credentials
                .find_user_token(hash)
                .await?
                .ok_or_else(unknown)?;
            if !same_hash(&found.secret_hash, &hash) || found.revoked {
                return Err(unknown());
            }
            if found.expires_at <= Timestamp::now().as_millis() {
                return Err(AuthError::unauthorized("This token has expired."));
            }
            Ok(Credential {
                kind: CredentialKind::UserToken {
                    token: found.id,
                    user: found.user_id,
                },
                permissions: found.scopes,
                recheck: None,
            })
        }
    }
}

/// Resolves a bearer token (without its `Bearer ` scheme) to a credential.
pub async fn authenticate_token(
    credentials: &dyn CredentialStore,
    jwt: &JwtVerifier,
    keys: &Arc<KeyCache>,
    token: &str,
) -> Result<Credential, AuthError> {
    if let Some(kind) = secret_kind(token) {
        return authenticate_secret(credentials, keys, kind, hash_secret(token)).await;
    }
    if token.split('.').count() == 3 {
        let claims = jwt
            .verify(token)
            .map_err(|e| AuthError::unauthorized(e.to_string()))?;
        let digest = hash_secret(token);
        return Ok(Credential {
            kind: CredentialKind::CompanyJwt {
                id: format!("jwt_{}", hex::encode(&digest[..8])),
                company: claims.company,
            },
            permissions: claims.permissions,
            recheck: None,
        });
    }
    Err(unknown())
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
}
