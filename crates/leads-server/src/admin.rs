//! Administration: the checks and writes behind `leads admin ...`.
//!
//! Admin commands take ids only in the shape this server makes them (`biz_...`, 18 characters),
//! so a typo is told apart from an absent record; the API's id inputs are wider (see
//! [`crate::domain::ids`]).

use crate::auth::jwt::{self, MintRequest, SigningKey};
use crate::auth::NewSecret;
use crate::domain::{AppId, CompanyId, KeyId, LeadId, Permissions, Timestamp, UserId, UserTokenId};
use crate::storage::{
    ApiKey, App, AppInstall, AppKey, Company, CredentialStore, DirectoryStore, KeyListing,
    KeyOwner, LeadStore, Member, Product, StoreError, TeamMember, User, UserToken,
};
use std::time::Duration;

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The input is wrong; the message says how to fix it.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type AdminResult<T> = Result<T, AdminError>;

fn invalid<T>(message: impl Into<String>) -> AdminResult<T> {
    Err(AdminError::Invalid(message.into()))
}

/// Checks a username: 1 to 64 letters, digits, `_`, `-` or `.`; the error completes "a username".
pub fn check_username(username: &str) -> Result<(), &'static str> {
    let valid = (1..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if valid {
        Ok(())
    } else {
        Err("is 1 to 64 letters, digits, '_', '-' or '.'")
    }
}

/// Checks that `email` is plausibly an email address (at most 254 characters, a local part, an
/// `@` and a domain with a dot, no whitespace); the error says it is not.
pub fn check_email(email: &str) -> Result<(), String> {
    let plausible = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.contains(char::is_whitespace);
    if plausible {
        Ok(())
    } else {
        Err(format!("{email:?} is not an email address"))
    }
}

/// Checks a title (a product's, a user's name): 1 to 200 characters without control characters,
/// once trimmed; answers it trimmed. The error completes "a {what} title".
pub fn check_title(text: &str) -> Result<String, &'static str> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 200 {
        return Err("must be 1 to 200 characters");
    }
    if text.chars().any(char::is_control) {
        return Err("cannot contain control characters");
    }
    Ok(text.to_owned())
}

fn title(text: &str, what: &str) -> AdminResult<String> {
    check_title(text).map_err(|why| AdminError::Invalid(format!("a {what} title {why}")))
}

pub fn parse_company(text: &str) -> AdminResult<CompanyId> {
    CompanyId::parse(text)
        .ok()
        .filter(CompanyId::is_generated)
        .ok_or_else(|| AdminError::Invalid(format!("{text:?} is not a company id (biz_...)")))
}

pub fn parse_user(text: &str) -> AdminResult<UserId> {
    UserId::parse(text)
        .ok()
        .filter(UserId::is_generated)
        .ok_or_else(|| AdminError::Invalid(format!("{text:?} is not a user id (user_...)")))
}

pub fn parse_app(text: &str) -> AdminResult<AppId> {
    AppId::parse(text)
        .ok()
        .filter(AppId::is_generated)
        .ok_or_else(|| AdminError::Invalid(format!("{text:?} is not an app id (app_...)")))
}

/// A comma-separated permission list; every permission when there is none.
pub fn parse_permissions(list: Option<&str>) -> AdminResult<Permissions> {
    match list {
        None => Ok(Permissions::all()),
        Some(list) => Permissions::parse_list(list).map_err(|name| {
            AdminError::Invalid(format!(
                "unknown permission {name:?}; known: {}",
                Permissions::all()
            ))
        }),
    }
}

pub async fn create_company(store: &dyn DirectoryStore, text: &str) -> AdminResult<Company> {
    Ok(store.create_company(title(text, "company")?).await?)
}

pub async fn create_product(
    store: &dyn DirectoryStore,
    company: &str,
    text: &str,
) -> AdminResult<Product> {
    let company = parse_company(company)?;
    Ok(store
        .create_product(company, title(text, "product")?)
        .await?)
}

pub async fn create_user(
    store: &dyn DirectoryStore,
    username: &str,
    email: Option<&str>,
    name: Option<&str>,
) -> AdminResult<User> {
    check_username(username).map_err(|why| AdminError::Invalid(format!("a username {why}")))?;
    if let Some(email) = email {
        check_email(email).map_err(AdminError::Invalid)?;
    }
    let name = name.map(|n| title(n, "user name")).transpose()?;
    Ok(store
        .create_user(username.to_owned(), email.map(str::to_owned), name)
        .await?)
}

pub async fn create_member(
    store: &dyn DirectoryStore,
    company: &str,
    user: &str,
) -> AdminResult<Member> {
    Ok(store
        .create_member(parse_company(company)?, parse_user(user)?)
        .await?)
}

/// Makes a company API key. Without a list it holds every permission. The secret is returned
/// here once and never again.
pub async fn create_key(
    store: &dyn CredentialStore,
    company: &str,
    permissions: Option<&str>,
) -> AdminResult<(ApiKey, String)> {
    let company = parse_company(company)?;
    let permissions = parse_permissions(permissions)?;
    let secret = NewSecret::company_key();
    let key = store
        .create_api_key(company, permissions, secret.hash)
        .await?;
    Ok((key, secret.secret))
}

/// Makes an app API key, as [`create_key`] does a company's.
pub async fn create_app_key(
    store: &dyn CredentialStore,
    app: &str,
    permissions: Option<&str>,
) -> AdminResult<(AppKey, String)> {
    let app = parse_app(app)?;
    let permissions = parse_permissions(permissions)?;
    let secret = NewSecret::app_key();
    let key = store.create_app_key(app, permissions, secret.hash).await?;
    Ok((key, secret.secret))
}

/// The keys of a company or of an app (exactly one of them), without their secrets.
pub async fn list_keys(
    store: &dyn CredentialStore,
    company: Option<&str>,
    app: Option<&str>,
) -> AdminResult<Vec<KeyListing>> {
    let owner = match (company, app) {
        (Some(company), None) => KeyOwner::Company(parse_company(company)?),
        (None, Some(app)) => KeyOwner::App(parse_app(app)?),
        _ => return invalid("name either --company or --app"),
    };
    Ok(store.list_keys(owner).await?)
}

/// Revokes a company's or an app's key; every instance refuses it from its next request on.
pub async fn revoke_key(store: &dyn CredentialStore, id: &str) -> AdminResult<()> {
    let id = KeyId::parse(id)
        .ok()
        .filter(KeyId::is_generated)
        .ok_or_else(|| AdminError::Invalid(format!("{id:?} is not a key id (key_...)")))?;
    if store.revoke_key(id.clone()).await? {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!("no key {id}")).into())
    }
}

pub async fn create_app(store: &dyn CredentialStore, text: &str) -> AdminResult<App> {
    Ok(store.create_app(title(text, "app")?).await?)
}

/// Installs an app on a company (or changes an installation's permissions): the app's keys may
/// act for the company with the permissions both they and the installation hold.
pub async fn install_app(
    store: &dyn CredentialStore,
    app: &str,
    company: &str,
    permissions: Option<&str>,
) -> AdminResult<AppInstall> {
    let (app, company) = (parse_app(app)?, parse_company(company)?);
    let permissions = parse_permissions(permissions)?;
    Ok(store.install_app(app, company, permissions).await?)
}

/// Uninstalls an app: its keys cannot act for the company from the next request on.
pub async fn uninstall_app(
    store: &dyn CredentialStore,
    app: &str,
    company: &str,
) -> AdminResult<()> {
    let (app, company) = (parse_app(app)?, parse_company(company)?);
    if store.uninstall_app(app.clone(), company.clone()).await? {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!("app {app} is not installed on company {company}")).into())
    }
}

/// How long a user token lives when not told: 30 days.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Issues a user OAuth token with `scopes` (every permission when left out) for `ttl`. The
/// secret is returned here once and never again.
pub async fn create_user_token(
    store: &dyn CredentialStore,
    user: &str,
    scopes: Option<&str>,
    ttl: Duration,
) -> AdminResult<(UserToken, String)> {
    let user = parse_user(user)?;
    let scopes = parse_permissions(scopes)?;
    if ttl.is_zero() || ttl > Duration::from_secs(10 * 365 * 24 * 3600) {
        return invalid("a token's lifetime is 1 second to 10 years");
    }
    let expires_at = Timestamp::now().as_millis() + ttl.as_millis() as i64;
    let secret = NewSecret::user_token();
    let token = store
        .create_user_token(user, scopes, expires_at, secret.hash)
        .await?;
    Ok((token, secret.secret))
}

pub async fn revoke_user_token(store: &dyn CredentialStore, id: &str) -> AdminResult<()> {
    let id = UserTokenId::parse(id)
        .ok()
        .filter(UserTokenId::is_generated)
        .ok_or_else(|| AdminError::Invalid(format!("{id:?} is not a user token id (utok_...)")))?;
    if store.revoke_user_token(id.clone()).await? {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!("no user token {id}")).into())
    }
}

/// Puts a user on a company's team: their tokens act for the company, within their scopes.
pub async fn add_to_team(
    store: &dyn CredentialStore,
    company: &str,
    user: &str,
) -> AdminResult<TeamMember> {
    Ok(store
        .add_to_team(parse_company(company)?, parse_user(user)?)
        .await?)
}

pub async fn remove_from_team(
    store: &dyn CredentialStore,
    company: &str,
    user: &str,
) -> AdminResult<()> {
    let (company, user) = (parse_company(company)?, parse_user(user)?);
    if store
        .remove_from_team(company.clone(), user.clone())
        .await?
    {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!(
            "user {user} is not on the team of company {company}"
        ))
        .into())
    }
}

/// What `leads admin jwt mint` signs.
#[derive(Debug, Clone, Default)]
pub struct MintOptions<'a> {
    pub company: &'a str,
    pub permissions: Option<&'a str>,
    pub ttl: Option<Duration>,
    pub issuer: Option<&'a str>,
    pub audience: Option<&'a str>,
    pub kid: Option<&'a str>,
}

/// How long a minted JWT lives when not told: an hour.
pub const DEFAULT_JWT_TTL: Duration = Duration::from_secs(3600);

/// A company-scoped JWT signed with the PEM private key `private_key`.
pub fn mint_jwt(private_key: &str, options: &MintOptions<'_>) -> AdminResult<String> {
    let key = SigningKey::from_pem(private_key).map_err(|e| AdminError::Invalid(e.to_string()))?;
    let request = MintRequest {
        company: parse_company(options.company)?,
        permissions: parse_permissions(options.permissions)?,
        ttl: options.ttl.unwrap_or(DEFAULT_JWT_TTL),
        issuer: options.issuer.map(str::to_owned),
        audience: options.audience.map(str::to_owned),
        kid: options.kid.map(str::to_owned),
    };
    jwt::mint(&key, &request).map_err(|e| AdminError::Invalid(e.to_string()))
}

pub async fn delete_lead(store: &dyn LeadStore, id: &str) -> AdminResult<()> {
    let id = LeadId::parse(id)
        .ok()
        .filter(LeadId::is_generated)
        .ok_or_else(|| AdminError::Invalid(format!("{id:?} is not a lead id (lead_...)")))?;
    if store.delete_lead(id.clone()).await? {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!("no lead {id}")).into())
    }
}
