//! Dashboard sessions: a browser signed in with a credential, kept in the database so that
//! every instance and every restart knows it.
//!
//! A session stores neither its own token nor the credential's secret: the cookie's token only
//! as its SHA-256 hash ([`Session::id_hash`]), the credential only as the hash its own table
//! keeps ([`Session::credential_hash`]). The dashboard resolves that hash to a credential on
//! every request through the same code the API authenticates bearer tokens with, so a session
//! can never do more than its credential, and a revoked credential ends it at once.

use super::StoreResult;
use crate::domain::{AppId, CompanyId, UserId};
use async_trait::async_trait;

/// How long a session may sit unused before it is over: 12 hours, in milliseconds.
pub const IDLE_EXPIRY_MILLIS: i64 = 12 * 60 * 60 * 1000;

/// A session's `last_seen_at` is written at most this often (milliseconds), so browsing costs a
/// write a minute, not one per page.
pub const TOUCH_EVERY_MILLIS: i64 = 60 * 1000;

/// Which kind of credential a session was signed in with: the table its hash is found in.
/// Company-scoped JWTs are not among them: they are verified, not looked up, and carry their own
/// expiry, so a browser session cannot follow their revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// A company API key (`api_keys`).
    CompanyKey,
    /// An app API key (`app_keys`).
    AppKey,
    /// A user OAuth token (`user_tokens`).
    UserToken,
}

impl SecretKind {
    /// The name stored in `dashboard_sessions.credential_kind`.
    pub fn name(self) -> &'static str {
        match self {
            SecretKind::CompanyKey => "company_key",
            SecretKind::AppKey => "app_key",
            SecretKind::UserToken => "user_token",
        }
    }

    /// The kind a stored name means; `None` for a name this build does not know.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "company_key" => Some(SecretKind::CompanyKey),
            "app_key" => Some(SecretKind::AppKey),
            "user_token" => Some(SecretKind::UserToken),
            _ => None,
        }
    }
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the cookie's token.
    pub id_hash: [u8; 32],
    pub credential_kind: SecretKind,
    /// SHA-256 of the credential's secret, as its own table keeps it.
    pub credential_hash: [u8; 32],
    /// The company the session acts for; `None` until an app key or a user token chose one.
    pub company: Option<CompanyId>,
    /// The token every form of this session must send back.
    pub csrf_token: String,
    /// Milliseconds.
    pub created_at: i64,
    /// Milliseconds; the session is over [`IDLE_EXPIRY_MILLIS`] after it.
    pub last_seen_at: i64,
}

/// Whose companies a session may choose among: an app's installations or a user's teams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chooser {
    App(AppId),
    User(UserId),
}

/// A company a session may choose, with its title for the chooser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChoosableCompany {
    pub id: CompanyId,
    pub title: String,
}

/// Where dashboard sessions are kept.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session.
    async fn create_session(&self, session: Session) -> StoreResult<()>;

    /// The session whose token hashes to `id_hash`, if it exists and was seen after
    /// `now - IDLE_EXPIRY_MILLIS`; an expired one is deleted and answered `None`. Marks it seen
    /// at `now` when it was last marked more than [`TOUCH_EVERY_MILLIS`] ago.
    async fn touch_session(&self, id_hash: [u8; 32], now: i64) -> StoreResult<Option<Session>>;

    /// Sets the company a session acts for (an app key's or a user token's choice).
    async fn choose_company(&self, id_hash: [u8; 32], company: CompanyId) -> StoreResult<bool>;

    /// Ends one session (sign-out). False when there was none.
    async fn delete_session(&self, id_hash: [u8; 32]) -> StoreResult<bool>;

    /// Ends every session signed in with the credential whose secret hashes to
    /// `credential_hash`: how a revoked key's sessions go. Answers how many there were.
    async fn delete_credential_sessions(&self, credential_hash: [u8; 32]) -> StoreResult<u64>;

    /// Deletes at most `limit` sessions last seen before `before` (milliseconds).
    async fn forget_idle_sessions(&self, before: i64, limit: u32) -> StoreResult<u64>;

    /// The companies an app is installed on, or whose team a user is on, by title.
    async fn choosable_companies(&self, chooser: Chooser) -> StoreResult<Vec<ChoosableCompany>>;
}
