//! Signing in and out, choosing a company, and the [`SignedIn`] extractor every page takes.
//!
//! The browser holds one cookie, [`SESSION_COOKIE`]: a random token, `HttpOnly` and
//! `SameSite=Strict` (and `Secure` behind an `https` public URL), scoped to `/dashboard`. The
//! database holds the session under the token's hash ([`crate::storage::sessions`]). The key a
//! person signs in with travels once, in the sign-in form's POST body; it is never put in a
//! URL, a page, browser storage or a log, and only its hash is kept.

use super::{render, render_with, Chrome, PageError};
use crate::auth::{authenticate_secret, hash_secret, secret_kind, AuthError, Credential};
use crate::domain::{CompanyId, Timestamp};
use crate::http::extract::admit;
use crate::http::leads::READ_PERMISSIONS;
use crate::http::AppState;
use crate::storage::sessions::{ChoosableCompany, Chooser, Session, SessionStore};
use crate::storage::CredentialStore;
use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "leads_session";

/// Random base62 characters of a session token: about 256 bits.
const TOKEN_CHARS: usize = 43;
/// Random base62 characters of a CSRF token: about 190 bits.
const CSRF_CHARS: usize = 32;

/// A request of a signed-in browser: its session and the credential it acts with, resolved
/// again on this request (a revoked key is refused here, and its sessions deleted). Taking it
/// requires a session: without one, the page redirects to the sign-in page.
pub struct SignedIn {
    pub session: Session,
    pub credential: Credential,
}

impl SignedIn {
    /// The page header of this session.
    pub fn chrome(&self) -> Chrome {
        Chrome {
            signed_in: true,
            company: self
                .session
                .company
                .as_ref()
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default(),
            csrf_token: self.session.csrf_token.clone(),
            can_switch: self.credential.home_company().is_none(),
        }
    }

    /// The company the session acts for, or the redirect to choosing one.
    pub fn company(&self) -> Result<&CompanyId, Redirect> {
        self.session
            .company
            .as_ref()
            .ok_or_else(|| Redirect::to("/dashboard/company"))
    }

    /// What a page of the session's company starts from: the company, and the page header;
    /// or the redirect to choosing a company.
    pub fn acting(&self) -> Result<(CompanyId, Chrome), Redirect> {
        let company = self.company()?;
        Ok((company.clone(), self.chrome()))
    }

    /// Refuses a form whose `csrf_token` is not this session's (403): a page of another site
    /// cannot know it, so it cannot post as this browser.
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<(), PageError> {
        let expected = self.session.csrf_token.as_bytes();
        match sent {
            Some(sent) if bool::from(sent.as_bytes().ct_eq(expected)) => Ok(()),
            _ => Err(PageError::new(
                StatusCode::FORBIDDEN,
                "This form's CSRF token is missing or wrong. Reload the page and send it again.",
            )
            .within(&self.chrome())),
        }
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(token) = session_token(&parts.headers) else {
            return Err(to_sign_in(None, state));
        };
        let now = Timestamp::now().as_millis();
        let session = state
            .sessions
            .touch_session(hash_secret(&token), now)
            .await
            .map_err(|e| PageError::from(e).into_response())?;
        let Some(session) = session else {
            return Err(to_sign_in(Some("expired"), state));
        };
        let credential = match resolve(state, &session).await {
            Ok(credential) => credential,
            Err(AuthError::Unauthorized(_)) => {
                // Revoked or expired since sign-in: every session made with it ends now.
                state
                    .sessions
                    .delete_credential_sessions(session.credential_hash)
                    .await
                    .map_err(|e| PageError::from(e).into_response())?;
                return Err(to_sign_in(Some("revoked"), state));
            }
            Err(other) => {
                return Err(
                    PageError::from(crate::http::error::ApiError::from(other)).into_response()
                )
            }
        };
        admit(parts, state, &credential).map_err(|e| PageError::from(e).into_response())?;
        Ok(SignedIn {
            session,
            credential,
        })
    }
}

/// The session's credential, as the API would resolve its key on this request.
async fn resolve(state: &AppState, session: &Session) -> Result<Credential, AuthError> {
    let credential = authenticate_secret(
        state.credentials.as_ref(),
        &state.keys,
        session.credential_kind,
        session.credential_hash,
    )
    .await?;
    credential.confirm(state.credentials.as_ref()).await?;
    Ok(credential)
}

/// The session token of the request's cookies, if any.
fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == SESSION_COOKIE && !c.value().is_empty())
        .map(|c| c.value().to_owned())
}

/// The `Set-Cookie` value of a session token; `None` clears the cookie.
fn session_cookie(token: Option<&str>, state: &AppState) -> HeaderValue {
    let mut cookie = cookie::Cookie::build((SESSION_COOKIE, token.unwrap_or("").to_owned()))
        .path("/dashboard")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .secure(state.dashboard.secure_cookies);
    if token.is_none() {
        cookie = cookie.max_age(cookie::time::Duration::ZERO);
    }
    HeaderValue::from_str(&cookie.build().to_string()).expect("a cookie of base62 is a header")
}

/// A redirect to the sign-in page that clears the session cookie, saying why when there is a
/// reason (`expired`, `revoked`, `signed_out`).
fn to_sign_in(reason: Option<&str>, state: &AppState) -> Response {
    let target = match reason {
        Some(reason) => format!("/dashboard/sign-in?ended={reason}"),
        None => "/dashboard/sign-in".to_owned(),
    };
    let mut response = Redirect::to(&target).into_response();
    if reason.is_some() {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, session_cookie(None, state));
    }
    response
}

#[derive(Template)]
#[template(path = "dashboard/sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    notice: Option<&'static str>,
    error: Option<String>,
}

/// `GET /dashboard/sign-in`: the form, and why the last session ended when it did.
pub async fn sign_in_page(RawQuery(query): RawQuery) -> Result<Response, PageError> {
    let ended = form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "ended")
        .map(|(_, v)| v.into_owned());
    let notice = match ended.as_deref() {
        Some("expired") => Some("Your session has ended. Sign in again."),
        Some("revoked") => Some("The key this session used is no longer valid. Sign in again."),
        Some("signed_out") => Some("You have signed out."),
        _ => None,
    };
    render(&SignInPage {
        chrome: Chrome::default(),
        notice,
        error: None,
    })
}

/// The sign-in form. The key is read from the body only and dropped once hashed.
#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    api_key: String,
}

/// `POST /dashboard/sign-in`: checks the key as the API would, keeps a session for it and sets
/// the cookie; a credential that acts for several companies goes on to choose one.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let refuse = |status: StatusCode, message: String| {
        render_with(
            status,
            &SignInPage {
                chrome: Chrome::default(),
                notice: None,
                error: Some(message),
            },
        )
    };
    let key = form.map(|Form(f)| f.api_key).unwrap_or_default();
    let key = key.trim();
    if key.is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "Enter an API key.".into());
    }
    let Some(kind) = secret_kind(key) else {
        let message = if key.split('.').count() == 3 {
            "A company-scoped JWT cannot start a session: sign in with a company API key, an app API key or a user token."
        } else {
            "Unknown or revoked credential."
        };
        return refuse(StatusCode::UNAUTHORIZED, message.into());
    };
    let hash = hash_secret(key);
    let credential = match authenticate_secret(state.credentials.as_ref(), &state.keys, kind, hash)
        .await
    {
        Ok(credential) => credential,
        Err(AuthError::Unauthorized(message)) => return refuse(StatusCode::UNAUTHORIZED, message),
        Err(other) => return Err(crate::http::error::ApiError::from(other).into()),
    };
    let company = match credential.home_company() {
        Some(home) => Some(home.clone()),
        None => {
            let choosable =
                choosable(&state.sessions, state.credentials.as_ref(), &credential).await?;
            if choosable.is_empty() {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "This credential cannot read the leads of any company.".into(),
                );
            }
            (choosable.len() == 1).then(|| choosable[0].id.clone())
        }
    };
    let token = crate::domain::ids::random_base62(TOKEN_CHARS);
    let now = Timestamp::now().as_millis();
    let chose = company.is_some();
    state
        .sessions
        .create_session(Session {
            id_hash: hash_secret(&token),
            credential_kind: kind,
            credential_hash: hash,
            company,
            csrf_token: crate::domain::ids::random_base62(CSRF_CHARS),
            created_at: now,
            last_seen_at: now,
        })
        .await?;
    let target = if chose {
        "/dashboard"
    } else {
        "/dashboard/company"
    };
    let mut response = Redirect::to(target).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(Some(&token), &state));
    Ok(response)
}

/// A form that carries only the session's CSRF token (sign-out), or that and a company.
#[derive(Deserialize)]
pub struct SessionForm {
    csrf_token: Option<String>,
    company_id: Option<String>,
}

/// `POST /dashboard/sign-out`: ends the session and clears the cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    signed_in: SignedIn,
    form: Result<Form<SessionForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = form.ok().map(|Form(f)| f);
    signed_in.check_csrf(form.as_ref().and_then(|f| f.csrf_token.as_deref()))?;
    state
        .sessions
        .delete_session(signed_in.session.id_hash)
        .await?;
    Ok(to_sign_in(Some("signed_out"), &state))
}

/// The companies a credential without a home company may read leads of, as the API decides:
/// an app's installations and a user's teams, kept where [`Credential::access`] allows reading.
async fn choosable(
    sessions: &Arc<dyn SessionStore>,
    credentials: &dyn CredentialStore,
    credential: &Credential,
) -> Result<Vec<ChoosableCompany>, PageError> {
    let chooser = match &credential.kind {
        crate::auth::CredentialKind::AppApiKey { app, .. } => Chooser::App(app.clone()),
        crate::auth::CredentialKind::UserToken { user, .. } => Chooser::User(user.clone()),
        _ => return Ok(Vec::new()),
    };
    let mut kept = Vec::new();
    for company in sessions.choosable_companies(chooser).await? {
        let access = credential
            .access(credentials, &company.id)
            .await
            .map_err(crate::http::error::ApiError::from)?;
        if access.is_some_and(|a| a.require(&READ_PERMISSIONS).is_ok()) {
            kept.push(company);
        }
    }
    Ok(kept)
}

#[derive(Template)]
#[template(path = "dashboard/company.html")]
struct ChooserPage {
    chrome: Chrome,
    companies: Vec<ChoosableCompany>,
    current: String,
    error: Option<String>,
}

/// `GET /dashboard/company`: which company an app key or user token acts for.
pub async fn chooser(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, PageError> {
    if signed_in.credential.home_company().is_some() {
        return Ok(Redirect::to("/dashboard").into_response());
    }
    let companies = choosable(
        &state.sessions,
        state.credentials.as_ref(),
        &signed_in.credential,
    )
    .await
    .map_err(|e| e.within(&signed_in.chrome()))?;
    render(&ChooserPage {
        chrome: signed_in.chrome(),
        current: signed_in.chrome().company,
        companies,
        error: None,
    })
}

/// `POST /dashboard/company`: acts for the chosen company from now on; one the credential
/// may not read is refused, whatever id the form carries.
pub async fn choose(
    State(state): State<AppState>,
    signed_in: SignedIn,
    form: Result<Form<SessionForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = form.ok().map(|Form(f)| f);
    signed_in.check_csrf(form.as_ref().and_then(|f| f.csrf_token.as_deref()))?;
    let chrome = signed_in.chrome();
    let companies = choosable(
        &state.sessions,
        state.credentials.as_ref(),
        &signed_in.credential,
    )
    .await
    .map_err(|e| e.within(&chrome))?;
    let wanted = form.and_then(|f| f.company_id).unwrap_or_default();
    let Some(company) = companies.iter().find(|c| c.id.as_str() == wanted) else {
        return render_with(
            StatusCode::BAD_REQUEST,
            &ChooserPage {
                current: chrome.company.clone(),
                chrome,
                companies,
                error: Some("Choose one of these companies.".into()),
            },
        );
    };
    state
        .sessions
        .choose_company(signed_in.session.id_hash, company.id.clone())
        .await?;
    Ok(Redirect::to("/dashboard").into_response())
}

/// Refuses a POST whose `Origin` is another site's (403). Browsers send `Origin` with every
/// POST; the sign-in form has no session and no CSRF token yet, so this is what keeps another
/// site from signing a browser in with the attacker's key.
pub fn same_origin(headers: &HeaderMap) -> Result<(), PageError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest);
    match (origin_host, host) {
        (Some(origin), Some(host)) if origin.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err(PageError::new(
            StatusCode::FORBIDDEN,
            "This form was sent from another site.",
        )),
    }
}
