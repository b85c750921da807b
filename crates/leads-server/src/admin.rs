//! Administration: the checks and writes behind `leads admin ...`.

use crate::auth::NewSecret;
use crate::domain::{CompanyId, LeadId, Permissions, UserId};
use crate::storage::{ApiKey, Company, Member, Product, Storage, StoreError, User};

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

fn title(text: &str, what: &str) -> AdminResult<String> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 200 {
        return invalid(format!("a {what} title must be 1 to 200 characters"));
    }
    if text.chars().any(char::is_control) {
        return invalid(format!("a {what} title cannot contain control characters"));
    }
    Ok(text.to_owned())
}

pub fn parse_company(text: &str) -> AdminResult<CompanyId> {
    CompanyId::parse(text)
        .ok_or_else(|| AdminError::Invalid(format!("{text:?} is not a company id (biz_...)")))
}

pub fn parse_user(text: &str) -> AdminResult<UserId> {
    UserId::parse(text)
        .ok_or_else(|| AdminError::Invalid(format!("{text:?} is not a user id (user_...)")))
}

pub async fn create_company(store: &dyn Storage, text: &str) -> AdminResult<Company> {
    Ok(store.create_company(title(text, "company")?).await?)
}

pub async fn create_product(
    store: &dyn Storage,
    company: &str,
    text: &str,
) -> AdminResult<Product> {
    let company = parse_company(company)?;
    Ok(store
        .create_product(company, title(text, "product")?)
        .await?)
}

pub async fn create_user(
    store: &dyn Storage,
    username: &str,
    email: Option<&str>,
    name: Option<&str>,
) -> AdminResult<User> {
    let valid_username = (1..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if !valid_username {
        return invalid("a username is 1 to 64 letters, digits, '_', '-' or '.'");
    }
    if let Some(email) = email {
        let plausible = email.len() <= 254
            && email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
            && !email.contains(char::is_whitespace);
        if !plausible {
            return invalid(format!("{email:?} is not an email address"));
        }
    }
    let name = name.map(|n| title(n, "user name")).transpose()?;
    Ok(store
        .create_user(username.to_owned(), email.map(str::to_owned), name)
        .await?)
}

pub async fn create_member(store: &dyn Storage, company: &str, user: &str) -> AdminResult<Member> {
    Ok(store
        .create_member(parse_company(company)?, parse_user(user)?)
        .await?)
}

/// Makes a company API key. Without a list it holds every permission. The secret is returned
/// here once and never again.
pub async fn create_key(
    store: &dyn Storage,
    company: &str,
    permissions: Option<&str>,
) -> AdminResult<(ApiKey, String)> {
    let company = parse_company(company)?;
    let permissions = match permissions {
        None => Permissions::all(),
        Some(list) => Permissions::parse_list(list).map_err(|name| {
            AdminError::Invalid(format!(
                "unknown permission {name:?}; known: {}",
                Permissions::all()
            ))
        })?,
    };
    let secret = NewSecret::company_key();
    let key = store
        .create_api_key(company, permissions, secret.hash)
        .await?;
    Ok((key, secret.secret))
}

pub async fn delete_lead(store: &dyn Storage, id: &str) -> AdminResult<()> {
    let id = LeadId::parse(id)
        .ok_or_else(|| AdminError::Invalid(format!("{id:?} is not a lead id (lead_...)")))?;
    if store.delete_lead(id.clone()).await? {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!("no lead {id}")).into())
    }
}
