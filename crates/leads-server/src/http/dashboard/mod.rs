//! The dashboard: server-rendered HTML pages under `/dashboard` for the people who own the
//! leads. Sign in with a credential, see the leads page (KPIs, a chart of new and converted
//! leads, breakdowns by product and referrer, the list with its filters and cursors), open a
//! lead and change its `referrer` and `metadata`, and download the list's leads as CSV through an
//! export.
//!
//! Every page is HTML rendered here from templates compiled into the binary (askama, checked at
//! compile time); charts are SVG drawn here (plotters). Nothing needs JavaScript. The stylesheet
//! is served from the binary too, and every response carries the security headers of
//! [`security_headers`]: a `Content-Security-Policy` of `default-src 'self'` forbids inline
//! scripts and styles, so there are none.
//!
//! A page does what its session's credential may do through the API's own code: the same
//! authentication ([`crate::auth::authenticate_secret`]), the same authorization, the same list,
//! lead and update functions as `/api/v1/leads` ([`super::leads::list_page`],
//! [`super::leads::find_lead`], [`super::leads::change_lead`]) and the same statistics
//! ([`super::stats::Tally`]). There is no second permission model.

mod charts;
mod exports;
mod pages;
mod session;

use super::AppState;
use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

pub use session::{SignedIn, SESSION_COOKIE};

/// How the dashboard is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DashboardSettings {
    /// Whether `/dashboard` (and the redirect of `/` to it) is served at all.
    pub enabled: bool,
    /// Whether the session cookie is `Secure`: set when `serve --public-url` is `https`.
    pub secure_cookies: bool,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            secure_cookies: false,
        }
    }
}

/// What every page's response says about where it may be loaded from and shown: scripts,
/// styles, images and forms only from this origin, never in a frame, never sniffed, no
/// `Referer` to other sites (`same-origin`, not `no-referrer`, under which browsers send
/// `Origin: null` with a form and the sign-in form's origin check could not tell), never cached
/// (pages show a company's data).
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The dashboard's routes, and `/` redirecting to it.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/dashboard") }))
        .route("/dashboard", get(pages::leads))
        .route("/dashboard/", get(|| async { Redirect::to("/dashboard") }))
        .route(
            "/dashboard/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route(
            "/dashboard/sign-out",
            axum::routing::post(session::sign_out),
        )
        .route(
            "/dashboard/company",
            get(session::chooser).post(session::choose),
        )
        .route(
            "/dashboard/leads/{id}",
            get(pages::lead).post(pages::update_lead),
        )
        .route("/dashboard/exports", axum::routing::post(exports::create))
        .route("/dashboard/exports/{id}", get(exports::show))
        .route("/dashboard/assets/dashboard.css", get(stylesheet))
        .route("/dashboard/{*rest}", get(not_found))
        .layer(axum::middleware::map_response(security_headers))
}

/// Adds the dashboard's security headers to a response.
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The stylesheet, compiled into the binary.
async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../../assets/dashboard.css"),
    )
        .into_response()
}

async fn not_found() -> PageError {
    PageError::new(StatusCode::NOT_FOUND, "No such page.")
}

/// What the header of every signed-in page shows and needs: the company acted for, and the
/// session's CSRF token for the sign-out form.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    pub signed_in: bool,
    pub company: String,
    pub csrf_token: String,
    /// Whether the credential may choose another company (an app key or a user token).
    pub can_switch: bool,
}

#[derive(Template)]
#[template(path = "dashboard/error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    status: u16,
    reason: &'a str,
    message: &'a str,
}

/// A page that could not be shown: its status and a message for people, as an HTML page.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
    pub chrome: Chrome,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            chrome: Chrome::default(),
        }
    }

    /// The same error, shown inside a signed-in page's header.
    pub fn within(mut self, chrome: &Chrome) -> Self {
        self.chrome = chrome.clone();
        self
    }
}

/// An API error keeps its status and message; internals were logged by `ApiError::internal`
/// and reach the page as its plain message.
impl From<super::error::ApiError> for PageError {
    fn from(error: super::error::ApiError) -> Self {
        Self::new(error.status, error.message)
    }
}

impl From<crate::storage::StoreError> for PageError {
    fn from(error: crate::storage::StoreError) -> Self {
        super::error::ApiError::from(error).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            chrome: self.chrome,
            status: self.status.as_u16(),
            reason: self.status.canonical_reason().unwrap_or("Error"),
            message: &self.message,
        };
        let html = page.render().unwrap_or_else(|error| {
            tracing::error!(%error, "the dashboard's error page failed to render");
            "<!doctype html><title>Error</title><p>The page failed to render.</p>".into()
        });
        (self.status, Html(html)).into_response()
    }
}

/// [`render`], answered with `status`: a form shown again with its errors, say.
pub fn render_with(status: StatusCode, template: &impl Template) -> Result<Response, PageError> {
    let mut response = render(template)?;
    *response.status_mut() = status;
    Ok(response)
}

/// Renders a template to an HTML response; one that fails to render (it cannot, short of a
/// bug) is logged and answered as a 500 page.
pub fn render(template: &impl Template) -> Result<Response, PageError> {
    template
        .render()
        .map(|html| Html(html).into_response())
        .map_err(|error| {
            tracing::error!(%error, "a dashboard template failed to render");
            PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server failed to render this page.",
            )
        })
}
