//! The HTTP layer: routes, the JSON error shape, and request limits.

pub mod body;
pub mod dashboard;
pub mod error;
pub mod exports;
pub mod extract;
pub mod health;
pub mod lead_bodies;
pub mod leads;
pub mod observe;
pub mod openapi;
pub mod query;
pub mod stats;
pub mod webhooks;

use crate::auth::jwt::JwtVerifier;
use crate::auth::key_cache::KeyCache;
use crate::auth::rate_limit::RateLimiter;
use crate::metrics::Metrics;
use crate::pagination::CursorCodec;
use crate::storage::stats::StatsStore;
use crate::storage::{
    CredentialStore, Database, DirectoryStore, ExportStore, LeadStore, SessionStore, WebhookStore,
};
use crate::webhooks::Sender;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use error::ApiError;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tower_http::timeout::TimeoutLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the handlers need, each part its own. A handler takes only the parts it touches
/// (`State(leads): State<Arc<dyn LeadStore>>`, say), so its signature shows which stores it
/// uses; the directory of companies and users is not here, as no route changes it.
#[derive(Clone)]
pub struct AppState {
    /// The database as a whole: readiness and pool metrics.
    pub database: Arc<dyn Database>,
    pub leads: Arc<dyn LeadStore>,
    /// What authentication looks credentials up in.
    pub credentials: Arc<dyn CredentialStore>,
    pub cursors: CursorCodec,
    pub metrics: Arc<Metrics>,
    pub jwt: Arc<JwtVerifier>,
    pub limiter: Arc<RateLimiter>,
    /// Company API keys this instance has looked up.
    pub keys: Arc<KeyCache>,
    /// Lead statistics.
    pub stats: Arc<dyn StatsStore>,
    /// Dashboard sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Companies and products: the dashboard's product filter lists them.
    pub directory: Arc<dyn DirectoryStore>,
    /// Whether the dashboard is served, and how its cookies are set.
    pub dashboard: dashboard::DashboardSettings,
    /// Webhook endpoints, their outbox and delivery log.
    pub webhooks: Arc<dyn WebhookStore>,
    /// Sends tests and replays, and checks endpoint URLs.
    pub sender: Arc<Sender>,
    /// Export jobs.
    pub exports: Arc<dyn ExportStore>,
    /// Export files and the links to them.
    pub export_files: Arc<exports::ExportFiles>,
}

/// Lets handlers take one part of [`AppState`] as `State<Part>`.
macro_rules! substates {
    ($($field:ident: $part:ty),* $(,)?) => {$(
        impl FromRef<AppState> for $part {
            fn from_ref(state: &AppState) -> Self {
                state.$field.clone()
            }
        }
    )*};
}

substates! {
    database: Arc<dyn Database>,
    leads: Arc<dyn LeadStore>,
    credentials: Arc<dyn CredentialStore>,
    stats: Arc<dyn StatsStore>,
    sessions: Arc<dyn SessionStore>,
    directory: Arc<dyn DirectoryStore>,
    webhooks: Arc<dyn WebhookStore>,
    sender: Arc<Sender>,
    exports: Arc<dyn ExportStore>,
    export_files: Arc<exports::ExportFiles>,
    cursors: CursorCodec,
    metrics: Arc<Metrics>,
}

/// The `/api/v1` routes and the OpenAPI document that describes them.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi;
    let v1 = OpenApiRouter::new()
        .routes(routes!(leads::list, leads::create))
        .routes(routes!(leads::retrieve, leads::update))
        .routes(routes!(stats::list))
        .routes(routes!(stats::retrieve))
        .routes(routes!(webhooks::list, webhooks::create))
        .routes(routes!(
            webhooks::retrieve,
            webhooks::update,
            webhooks::delete
        ))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::replay_delivery))
        .routes(routes!(webhooks::replay))
        .routes(routes!(webhooks::test))
        .routes(routes!(exports::list, exports::create))
        .routes(routes!(exports::retrieve))
        .routes(routes!(exports::download));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest("/api/v1", v1)
        .split_for_parts()
}

/// The vendor extension field that marks a parameter this server adds to a Whop operation: the
/// official SDKs never send it, and Whop's API has no such parameter.
pub const EXTENSION_FIELD: &str = "x-leads-extension";

/// The query parameters that are this server's extensions of a Whop operation, as (path,
/// method, name); their descriptions say so too, and `docs/api.md` marks them. Operations that
/// are this server's own (the statistics' catalog, say) are not listed: Whop has no such
/// operation to extend.
const EXTENSION_PARAMETERS: &[(&str, &str, &str)] = &[
    ("/api/v1/leads", "get", "query"),
    ("/api/v1/leads", "get", "email"),
    ("/api/v1/exports", "get", "company_id"),
    ("/api/v1/exports", "get", "first"),
    ("/api/v1/exports", "get", "after"),
    ("/api/v1/stats/time_series/{metric}", "get", "referrer"),
];

/// The OpenAPI document as served:
/// - every optional query parameter is marked `allowEmptyValue`, because every route reads an
///   empty value (`?first=`) as a parameter not given, which is how the TypeScript SDK sends
///   `null`;
/// - every parameter of [`EXTENSION_PARAMETERS`] carries [`EXTENSION_FIELD`]` = true`.
fn served_document(mut doc: serde_json::Value) -> String {
    if let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) {
        for (path, operations) in paths.iter_mut() {
            let Some(operations) = operations.as_object_mut() else {
                continue;
            };
            for (method, operation) in operations.iter_mut() {
                let parameters = operation
                    .get_mut("parameters")
                    .and_then(|p| p.as_array_mut());
                for parameter in parameters.into_iter().flatten() {
                    let optional_query =
                        parameter["in"] == "query" && parameter["required"] != true;
                    let extension = EXTENSION_PARAMETERS.contains(&(
                        path.as_str(),
                        method.as_str(),
                        parameter["name"].as_str().unwrap_or(""),
                    ));
                    let Some(fields) = parameter.as_object_mut() else {
                        continue;
                    };
                    if optional_query {
                        fields.insert("allowEmptyValue".into(), serde_json::Value::Bool(true));
                    }
                    if extension {
                        fields.insert(EXTENSION_FIELD.into(), serde_json::Value::Bool(true));
                    }
                }
            }
        }
    }
    doc.to_string()
}

/// The whole HTTP API over a store.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let (api, doc) = api();
    let doc = Arc::new(served_document(
        serde_json::to_value(&doc).expect("the OpenAPI document serializes"),
    ));
    let pages = if state.dashboard.enabled {
        dashboard::router()
    } else {
        Router::new()
    };
    Router::new()
        .merge(api)
        .merge(pages)
        .route(
            "/openapi.json",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    doc.as_str().to_owned(),
                )
            }),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(|| async { ApiError::not_found("No such route.") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .layer(axum::middleware::map_response(error::json_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            observe::observe,
        ))
        .with_state(state)
}

/// A JSON response, serialized once into bytes.
pub fn json<T: Serialize>(body: &T) -> Result<Response, ApiError> {
    let bytes = serde_json::to_vec(body).map_err(ApiError::internal)?;
    let mut response = bytes.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
