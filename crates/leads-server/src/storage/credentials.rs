//! Credentials: company and app API keys, app installations, user tokens and teams, and the
//! records they are stored as.

use super::StoreResult;
use crate::domain::{AppId, CompanyId, KeyId, Permissions, UserId, UserTokenId};
use async_trait::async_trait;
use serde::Serialize;

/// An API key as stored: its secret exists only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: KeyId,
    pub company_id: CompanyId,
    pub permissions: Permissions,
    pub created_at: leads_types::Timestamp,
    pub revoked: bool,
    /// SHA-256 of the secret; the secret itself is never stored.
    pub secret_hash: [u8; 32],
}

/// An app: a third party that companies install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct App {
    pub id: String,
    pub title: String,
    pub created_at: leads_types::Timestamp,
}

/// An app installed on a company: its keys may act for the company with at most these
/// permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppInstall {
    pub app_id: String,
    pub company_id: String,
    pub permissions: Permissions,
    pub created_at: leads_types::Timestamp,
}

/// An app's API key as stored: its secret exists only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppKey {
    pub id: KeyId,
    pub app_id: AppId,
    pub permissions: Permissions,
    pub created_at: leads_types::Timestamp,
    pub revoked: bool,
    /// SHA-256 of the secret; the secret itself is never stored.
    pub secret_hash: [u8; 32],
}

/// Whose keys to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOwner {
    Company(CompanyId),
    App(AppId),
}

/// A key as listed for people: what it is, never its secret or hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyListing {
    pub id: String,
    /// Set for a company's key.
    pub company_id: Option<String>,
    /// Set for an app's key.
    pub app_id: Option<String>,
    pub permissions: Permissions,
    pub created_at: leads_types::Timestamp,
    pub revoked_at: Option<leads_types::Timestamp>,
}

/// A user OAuth token as stored: its secret exists only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserToken {
    pub id: UserTokenId,
    pub user_id: UserId,
    pub scopes: Permissions,
    pub created_at: leads_types::Timestamp,
    /// Milliseconds; from then on the token is refused.
    pub expires_at: i64,
    pub revoked: bool,
    /// SHA-256 of the secret; the secret itself is never stored.
    pub secret_hash: [u8; 32],
}

/// A user on a company's team: their tokens act for the company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamMember {
    pub company_id: String,
    pub user_id: String,
    pub created_at: leads_types::Timestamp,
}

/// What authentication looks up on every request, and what the admin commands issue and
/// revoke.
#[async_trait]
pub trait CredentialStore: Send + Sync + 'static {
    /// The key whose secret hashes to `hash`, revoked or not.
    async fn find_api_key(&self, hash: [u8; 32]) -> StoreResult<Option<ApiKey>>;

    /// The app key whose secret hashes to `hash`, revoked or not.
    async fn find_app_key(&self, hash: [u8; 32]) -> StoreResult<Option<AppKey>>;

    /// The user token whose secret hashes to `hash`, revoked or expired or not.
    async fn find_user_token(&self, hash: [u8; 32]) -> StoreResult<Option<UserToken>>;

    /// The permissions `app` was installed on `company` with; `None` when it is not installed.
    async fn app_installation(
        &self,
        app: AppId,
        company: CompanyId,
    ) -> StoreResult<Option<Permissions>>;

    /// Whether `user` is on `company`'s team.
    async fn is_on_team(&self, company: CompanyId, user: UserId) -> StoreResult<bool>;

    /// Whether the company API key `id` exists and is not revoked.
    async fn api_key_is_valid(&self, id: KeyId) -> StoreResult<bool>;

    /// Issues a key for `company`; an unknown company is
    /// [`StoreError::NotFound`](super::StoreError::NotFound).
    async fn create_api_key(
        &self,
        company: CompanyId,
        permissions: Permissions,
        secret_hash: [u8; 32],
    ) -> StoreResult<ApiKey>;
    async fn create_app(&self, title: String) -> StoreResult<App>;
    /// Installs `app` on `company` with `permissions`, or changes the permissions of an
    /// installation that exists. An unknown app or company is
    /// [`StoreError::NotFound`](super::StoreError::NotFound).
    async fn install_app(
        &self,
        app: AppId,
        company: CompanyId,
        permissions: Permissions,
    ) -> StoreResult<AppInstall>;
    /// Removes the installation; the app's keys cannot act for the company from now on.
    /// False when it was not installed.
    async fn uninstall_app(&self, app: AppId, company: CompanyId) -> StoreResult<bool>;
    async fn create_app_key(
        &self,
        app: AppId,
        permissions: Permissions,
        secret_hash: [u8; 32],
    ) -> StoreResult<AppKey>;
    /// The keys of a company or an app, oldest first, revoked ones included.
    async fn list_keys(&self, owner: KeyOwner) -> StoreResult<Vec<KeyListing>>;
    /// Revokes a company's or an app's key: every request with it is refused from now on.
    /// False when there is no such key; revoking a revoked key changes nothing.
    async fn revoke_key(&self, id: KeyId) -> StoreResult<bool>;
    /// Issues a token for `user`, refused from `expires_at` (milliseconds) on.
    async fn create_user_token(
        &self,
        user: UserId,
        scopes: Permissions,
        expires_at: i64,
        secret_hash: [u8; 32],
    ) -> StoreResult<UserToken>;
    /// As [`Self::revoke_key`], for user tokens.
    async fn revoke_user_token(&self, id: UserTokenId) -> StoreResult<bool>;
    /// Puts the user on the company's team; already being on it is a
    /// [`StoreError::Conflict`](super::StoreError::Conflict).
    async fn add_to_team(&self, company: CompanyId, user: UserId) -> StoreResult<TeamMember>;
    /// Takes the user off the team. False when they were not on it.
    async fn remove_from_team(&self, company: CompanyId, user: UserId) -> StoreResult<bool>;
}
