//! `/api/v1/webhooks`: a company's webhook endpoints, their delivery log, replays and tests, in
//! the shapes of Whop's SDKs (`whop-sdk` 2.6.0 `client.webhooks.*`, `@whop/sdk` 0.0.42).
//!
//! Every route takes Whop's permission `developer:manage_webhook`. An endpoint of a company the
//! credential may not act for is answered like one that does not exist.

use super::body::JsonBody;
use super::error::ApiError;
use super::json;
use super::query::{page_size, time_bound};
use crate::auth::{Access, Credential};
use crate::domain::webhooks::{
    new_message_id, new_secret, EventList, EventType, WebhookUrl, API_VERSIONS,
};
use crate::domain::{CompanyId, DeliveryId, Permission, Timestamp, WebhookId};
use crate::pagination::{CursorCodec, PageSize};
use crate::storage::webhooks::{
    DeliveryRow, KeyPage, KeyPosition, ReplayWindow, WebhookChange, WebhookRow, WebhookStore,
    DELIVERY_RETENTION_MS,
};
use crate::storage::CredentialStore;
use crate::webhooks::{envelope, Answer, Sender};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use leads_types::webhooks::{
    CreateWebhook, DeletedWebhook, ReplayDelivery, ReplayQueued, ReplayWebhook, ReplayedDelivery,
    TestWebhook, TestedWebhook, UpdateWebhook, Webhook, WebhookDelivery,
};
use leads_types::{ErrorBody, Page, PageInfo};
use serde_json::value::RawValue;
use std::sync::Arc;

/// What every webhook route takes, as Whop documents it.
pub const PERMISSIONS: [Permission; 1] = [Permission::DeveloperManageWebhook];

const NO_SUCH_WEBHOOK: &str = "No such webhook.";

/// Create a webhook endpoint for a company.
///
/// The answer is the only one that shows `webhook_secret`: store it to verify deliveries. The
/// URL must be `http` or `https`, and must not resolve to a loopback, private, link-local,
/// multicast or unique-local address unless the server allows private targets.
#[utoipa::path(
    post,
    path = "/webhooks",
    tag = "webhooks",
    operation_id = "createWebhook",
    request_body(content = CreateWebhook, content_type = "application/json"),
    responses(
        (status = 200, description = "The endpoint, with its signing secret", body = Webhook),
        (status = 400, description = "A parameter is missing or invalid (`url` not http(s) or resolving to a private address, an unknown event, an unknown company); `param` names it", body = ErrorBody),
        (status = 401, description = "No credential, or an unknown, revoked or expired one", body = ErrorBody),
        (status = 403, description = "The credential may not act for this company or lacks developer:manage_webhook", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 429, description = "Too many requests of this operation with this credential", body = ErrorBody),
        (status = 503, description = "The database is unavailable or the request timed out", body = ErrorBody),
    )
)]
pub async fn create(
    State(webhooks): State<Arc<dyn WebhookStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    State(sender): State<Arc<Sender>>,
    credential: Credential,
    JsonBody(body): JsonBody<CreateWebhook>,
) -> Result<Response, ApiError> {
    let company = match body.resource_id {
        Some(text) => {
            CompanyId::parse(&text).map_err(|why| ApiError::invalid("resource_id", why))?
        }
        None => credential
            .home_company()
            .cloned()
            .ok_or_else(|| ApiError::missing("resource_id"))?,
    };
    let url = url(body.url.ok_or_else(|| ApiError::missing("url"))?, &sender).await?;
    let events = match body.events {
        Some(names) => events(&names)?,
        None => {
            EventList::parse(EventType::ALL.map(EventType::name)).map_err(ApiError::internal)?
        }
    };
    let api_version = api_version(body.api_version)?.unwrap_or_else(|| "v1".to_owned());
    let access = credential
        .authorize(credentials.as_ref(), &company, &PERMISSIONS)
        .await?;
    let row = WebhookRow {
        id: WebhookId::generate(),
        company,
        url,
        secret: new_secret(),
        events,
        enabled: body.enabled.unwrap_or(true),
        api_version,
        child_resource_events: body.child_resource_events.unwrap_or(false),
        show_email: access.can(Permission::MemberEmailRead),
        consecutive_failures: 0,
        failing_since: None,
        last_failure_at: None,
        disabled_at: None,
        disabled_reason: None,
        created_at: Timestamp::now().as_millis(),
    };
    let row = webhooks.create_webhook(row).await?;
    let secret = row.secret.clone();
    let mut webhook = view(row)?;
    webhook.webhook_secret = Some(secret);
    json(&webhook)
}

/// List a company's webhook endpoints, newest first.
#[utoipa::path(
    get,
    path = "/webhooks",
    tag = "webhooks",
    operation_id = "listWebhooks",
    params(
        ("account_id" = Option<String>, Query, description = "The company whose endpoints to list (the Python SDK's name); this or company_id, or the credential's own company.", min_length = 1, max_length = 255),
        ("company_id" = Option<String>, Query, description = "The TypeScript SDK's name for account_id.", min_length = 1, max_length = 255),
        ("has_failures" = Option<bool>, Query, description = "Only endpoints whose failure streak is (true) or is not (false) running."),
        ("first" = Option<i64>, Query, description = "Page size, 1 to 100; 20 by default.", minimum = 1, maximum = 100),
        ("after" = Option<String>, Query, description = "A cursor from an earlier page: the endpoints after it."),
    ),
    responses(
        (status = 200, description = "A page of endpoints; `webhook_secret` is null", body = leads_types::Page<Webhook>),
        (status = 400, description = "A parameter is invalid; `param` names it", body = ErrorBody),
        (status = 401, description = "No credential, or an unknown, revoked or expired one", body = ErrorBody),
        (status = 403, description = "The credential may not act for this company or lacks developer:manage_webhook", body = ErrorBody),
        (status = 429, description = "Too many requests of this operation with this credential", body = ErrorBody),
        (status = 503, description = "The database is unavailable or the request timed out", body = ErrorBody),
    )
)]
pub async fn list(
    State(webhooks): State<Arc<dyn WebhookStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    State(cursors): State<CursorCodec>,
    credential: Credential,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref().unwrap_or(""))?;
    let company = match params.one(&["account_id", "company_id"])? {
        Some((name, text)) => {
            CompanyId::parse(&text).map_err(|why| ApiError::invalid(name, why))?
        }
        None => credential
            .home_company()
            .cloned()
            .ok_or_else(|| ApiError::missing("account_id"))?,
    };
    let has_failures = match params.one(&["has_failures"])? {
        Some((name, text)) => Some(boolean(name, &text)?),
        None => None,
    };
    let scope = format!("webhooks:{company}");
    let (size, after) = params.page(&cursors, &scope)?;
    credential
        .authorize(credentials.as_ref(), &company, &PERMISSIONS)
        .await?;
    let page = webhooks
        .list_webhooks(company, has_failures, after, size.get())
        .await?;
    let cursor = |w: &WebhookRow| cursors.encode_key(&scope, w.created_at, w.id.as_str());
    json(&page_of(page, cursor, view)?)
}

/// Retrieve one webhook endpoint; `webhook_secret` is null.
#[utoipa::path(
    get,
    path = "/webhooks/{id}",
    tag = "webhooks",
    operation_id = "retrieveWebhook",
    params(("id" = String, Path, description = "The endpoint's id, `hook_...`.", min_length = 1, max_length = 255)),
    responses(
        (status = 200, description = "The endpoint", body = Webhook),
        (status = 400, description = "The path's id is over 255 characters or has control characters", body = ErrorBody),
        (status = 401, description = "No credential, or an unknown, revoked or expired one", body = ErrorBody),
        (status = 403, description = "The credential lacks developer:manage_webhook", body = ErrorBody),
        (status = 404, description = "No such endpoint (or not one this credential may see)", body = ErrorBody),
        (status = 429, description = "Too many requests of this operation with this credential", body = ErrorBody),
        (status = 503, description = "The database is unavailable or the request timed out", body = ErrorBody),
    )
)]
pub async fn retrieve(
    State(webhooks): State<Arc<dyn WebhookStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    credential: Credential,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let (row, _) = owned(&webhooks, &credentials, &credential, id).await?;
    json(&view(row)?)
}

/// Update a webhook endpoint: a field left out or `null` keeps its value.
///
/// Re-enabling an endpoint the server disabled clears its failure streak.
#[utoipa::path(
    patch,
    path = "/webhooks/{id}",
    tag = "webhooks",
    operation_id = "updateWebhook",
    params(("id" = String, Path, description = "The endpoint's id, `hook_...`.", min_length = 1, max_length = 255)),
    request_body(content = UpdateWebhook, content_type = "application/json"),
    responses(
        (status = 200, description = "The endpoint as it now is", body = Webhook),
        (status = 400, description = "A parameter is invalid; `param` names it", body = ErrorBody),
        (status = 401, description = "No credential, or an unknown, revoked or expired one", body = ErrorBody),
        (status = 403, description = "The credential lacks developer:manage_webhook", body = ErrorBody),
        (status = 404, description = "No such endpoint (or not one this credential may see)", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 429, description = "Too many requests of this operation with this credential", body = ErrorBody),
        (status = 503, description = "The database is unavailable or the request timed out", body = ErrorBody),
    )
)]
pub async fn update(
    State(webhooks): State<Arc<dyn WebhookStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    State(sender): State<Arc<Sender>>,
    credential: Credential,
    id: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<UpdateWebhook>,
) -> Result<Response, ApiError> {
    let change = WebhookChange {
        url: match body.url {
            Some(text) => Some(url(text, &sender).await?),
            None => None,
        },
        events: body.events.as_deref().map(events).transpose()?,
        enabled: body.enabled,
        api_version: api_version(body.api_version)?,
        child_resource_events: body.child_resource_events,
    };
    let (row, _) = owned(&webhooks, &credentials, &credential, id).await?;
    let row = webhooks
        .update_webhook(row.id, change)
        .await?
        .ok_or_else(|| ApiError::not_found(NO_SUCH_WEBHOOK))?;
    json(&view(row)?)
}

/// Delete a webhook endpoint, with its queued messages and delivery log.
#[utoipa::path(
    delete,
    path = "/webhooks/{id}",
    tag = "webhooks",
    operation_id = "deleteWebhook",
    params(("id" = String, Path, description = "The endpoint's id, `hook_...`.", min_length = 1, max_length = 255)),
    responses(
        (status = 200, description = "Deleted", body = DeletedWebhook),
        (status = 400, description = "The path's id is over 255 characters or has control characters", body = ErrorBody),
        (status = 401, description = "No credential, or an unknown, revoked or expired one", body = ErrorBody),
        (status = 403, description = "The credential lacks developer:manage_webhook", body = ErrorBody),
        (status = 404, description = "No such endpoint (or not one this credential may see)", body = ErrorBody),
        (status = 429, description = "Too many requests of this operation with this credential", body = ErrorBody),
        (status = 503, description = "The database is unavailable or the request timed out", body = ErrorBody),
    )
)]
pub async fn delete(
    State(webhooks): State<Arc<dyn WebhookStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    credential: Credential,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let (row, _) = owned(&webhooks, &credentials, &credential, id).await?;
    if !webhooks.delete_webhook(row.id.clone()).await? {
        return Err(ApiError::not_found(NO_SUCH_WEBHOOK));
    }
    json(&DeletedWebhook {
        deleted: true,
        id: row.id.into_string(),
    })
}

/// List an endpoint's delivery attempts, newest first; kept 30 days.
#[utoipa::path(
    get,
    path = "/webhooks/{id}/deliveries",
    tag = "webhooks",
    operation_id = "listWebhookDeliveries",
    params(
        ("id" = String, Path, description = "The endpoint's id, `hook_...`.", min_length = 1, max_length = 255),
        ("first" = Option<i64>, Query, description = "Page size, 1 to 100; 20 by default.", minimum = 1, maximum = 100),
        ("after" = Option<String>, Query, description = "A cursor from an earlier page: the attempts after it."),
    ),
    responses(
        (status = 200, description = "A page of attempts", body = leads_types::Page<WebhookDelivery>),
        (status = 400, description = "A parameter is invalid; `param` names it", body = ErrorBody),
        (status = 401, description = "No credential, or an unknown, revoked or expired one", body = ErrorBody),
        (status = 403, description = "The credential lacks developer:manage_webhook", body = ErrorBody),
        (status = 404, description = "No such endpoint (or not one this credential may see)", body = ErrorBody),
        (status = 429, description = "Too many requests of this operation with this credential", body = ErrorBody),
        (status = 503, description = "The database is unavailable or the request timed out", body = ErrorBody),
    )
)]
pub async fn deliveries(
    State(webhooks): State<Arc<dyn WebhookStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    State(cursors): State<CursorCodec>,
    credential: Credential,
    id: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref().unwrap_or(""))?;
    let (row, _) = owned(&webhooks, &credentials, &credential, id).await?;
    let scope = format!("deliveries:{}", row.id);
    let (size, after) = params.page(&cursors, &scope)?;
    let page = webhooks
        .list_deliveries(row.id.clone(), after, size.get())
        .await?;
    let cursor = |d: &DeliveryRow| cursors.encode_key(&scope, d.sent_at, d.id.as_str());
    let company = row.company.as_str().to_owned();
    json(&page_of(page, cursor, |d| delivery_view(d, &company))?)
}

/// Send one past delivery's payload again, now, to the endpoint's current URL, and answer what
/// the receiver said. The `webhook-id` is the original's unless `regenerate_id`.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/deliveries/{delivery_id}/replay",
    tag = "webhooks",
    operation_id = "replayWebhookDelivery",
    params(
        ("id" = String, Path, description = "The endpoint's id, `hook_...`.", min_length = 1, max_length = 255),
        ("delivery_id" = String, Path, description = "The attempt's id, `whdel_...`.", min_length = 1, max_length = 255),
    ),
    request_body(content = ReplayDelivery, content_type = "application/json"),
    responses(
        (status = 200, description = "What the receiver answered", body = ReplayedDelivery),
        (status = 400, description = "A parameter is invalid; `param` names it", body = ErrorBody),
        (status = 401, description = "No credential, or an unknown, revoked or expired one", body = ErrorBody),
        (status = 403, description = "The credential lacks developer:manage_webhook", body = ErrorBody),
        (status = 404, description = "No such endpoint or attempt", body = ErrorBody),
        (status = 409, description = "The endpoint is disabled", body = ErrorBody),
        (status = 429, description = "Too many requests of this operation with this credential", body = ErrorBody),
        (status = 503, description = "The database is unavailable or the request timed out", body = ErrorBody),
    )
)]
pub async fn replay_delivery(
    State(webhooks): State<Arc<dyn WebhookStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    State(sender): State<Arc<Sender>>,
    credential: Credential,
    path: Result<Path<(String, String)>, PathRejection>,
    JsonBody(body): JsonBody<ReplayDelivery>,
) -> Result<Response, ApiError> {
    let Ok(Path((id, delivery_id))) = path else {
        return Err(ApiError::not_found(NO_SUCH_WEBHOOK));
    };
    let (row, _) = owned(&webhooks, &credentials, &credential, Ok(Path(id))).await?;
    let delivery_id =
        DeliveryId::parse(&delivery_id).map_err(|why| ApiError::invalid("delivery_id", why))?;
    let original = webhooks
        .find_delivery(row.id.clone(), delivery_id)
        .await?
        .ok_or_else(|| ApiError::not_found("No such delivery."))?;
    require_enabled(&row)?;
    let (message_id, body_text) = if body.regenerate_id.unwrap_or(false) {
        let message_id = new_message_id(Timestamp::now().as_millis());
        let mut envelope: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&original.request_body).map_err(ApiError::internal)?;
        envelope.insert("id".into(), message_id.clone().into());
        (message_id, serde_json::Value::Object(envelope).to_string())
    } else {
        (original.message_id.clone(), original.request_body.clone())
    };
    let sent_at = Timestamp::now().as_millis();
    let answer = sender
        .send(&row.url, &message_id, &body_text, &row.secret)
        .await;
    webhooks
        .log_delivery(DeliveryRow {
            id: DeliveryId::generate_at(sent_at),
            webhook: row.id.clone(),
            message_id,
            event_type: original.event_type.clone(),
            request_body: body_text,
            response_code: i64::from(answer.status),
            response_body: answer.logged_body(),
            total_time_ms: answer.elapsed.as_millis() as i64,
            sent_at,
            success: answer.success(),
            message_row: original.message_row.clone(),
            replayed_from: Some(original.id.into_string()),
        })
        .await?;
    json(&ReplayedDelivery {
        status: answer.status,
        success: answer.success(),
        body: answer.body,
    })
}

/// Send again, once each and in the background, the messages with attempts in a window; each
/// re-send shows in the delivery log. The `webhook-id` is kept unless `regenerate_ids`.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/replay",
    tag = "webhooks",
    operation_id = "replayWebhook",
    params(("id" = String, Path, description = "The endpoint's id, `hook_...`.", min_length = 1, max_length = 255)),
    request_body(content = ReplayWebhook, content_type = "application/json"),
    responses(
        (status = 200, description = "The replay was queued", body = ReplayQueued),
        (status = 400, description = "A parameter is missing or invalid; `param` names it", body = ErrorBody),
        (status = 401, description = "No credential, or an unknown, revoked or expired one", body = ErrorBody),
        (status = 403, description = "The credential lacks developer:manage_webhook", body = ErrorBody),
        (status = 404, description = "No such endpoint (or not one this credential may see)", body = ErrorBody),
        (status = 409, description = "The endpoint is disabled", body = ErrorBody),
        (status = 429, description = "Too many requests of this operation with this credential", body = ErrorBody),
        (status = 503, description = "The database is unavailable or the request timed out", body = ErrorBody),
    )
)]
pub async fn replay(
    State(webhooks): State<Arc<dyn WebhookStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    credential: Credential,
    id: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<ReplayWebhook>,
) -> Result<Response, ApiError> {
    let now = Timestamp::now().as_millis();
    let sent_after = body
        .sent_after
        .as_deref()
        .ok_or_else(|| ApiError::missing("sent_after"))
        .and_then(|text| time_bound("sent_after", text, false))?
        .max(now - DELIVERY_RETENTION_MS);
    let sent_before = match body.sent_before.as_deref() {
        Some(text) => time_bound("sent_before", text, true)?,
        None => now + 1,
    };
    let events = body.events.as_deref().map(events).transpose()?;
    let (row, _) = owned(&webhooks, &credentials, &credential, id).await?;
    require_enabled(&row)?;
    webhooks
        .replay_window(
            row.id,
            ReplayWindow {
                sent_after,
                sent_before,
                events,
                failed_only: body.failed_only.unwrap_or(false),
                regenerate_ids: body.regenerate_ids.unwrap_or(false),
            },
        )
        .await?;
    json(&ReplayQueued { queued: true })
}

/// Send a sample event of one type to the endpoint, now, signed like any delivery, and answer
/// what the receiver said. The sample is not logged as a delivery.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/test",
    tag = "webhooks",
    operation_id = "testWebhook",
    params(("id" = String, Path, description = "The endpoint's id, `hook_...`.", min_length = 1, max_length = 255)),
    request_body(content = TestWebhook, content_type = "application/json"),
    responses(
        (status = 200, description = "What the receiver answered", body = TestedWebhook),
        (status = 400, description = "`event` is missing or not an event this server sends", body = ErrorBody),
        (status = 401, description = "No credential, or an unknown, revoked or expired one", body = ErrorBody),
        (status = 403, description = "The credential lacks developer:manage_webhook", body = ErrorBody),
        (status = 404, description = "No such endpoint (or not one this credential may see)", body = ErrorBody),
        (status = 429, description = "Too many requests of this operation with this credential", body = ErrorBody),
        (status = 503, description = "The database is unavailable or the request timed out", body = ErrorBody),
    )
)]
pub async fn test(
    State(webhooks): State<Arc<dyn WebhookStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    State(sender): State<Arc<Sender>>,
    credential: Credential,
    id: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<TestWebhook>,
) -> Result<Response, ApiError> {
    let name = body.event.ok_or_else(|| ApiError::missing("event"))?;
    let event = EventType::parse(&name).ok_or_else(|| {
        ApiError::invalid(
            "event",
            format!("{name:?} is not an event this server sends"),
        )
    })?;
    let (row, _) = owned(&webhooks, &credentials, &credential, id).await?;
    let now = Timestamp::now().as_millis();
    let message_id = new_message_id(now);
    let body = envelope(
        &message_id,
        event.name(),
        row.company.as_str(),
        now,
        &sample_data(event, now),
    )
    .map_err(ApiError::internal)?;
    let answer = sender.send(&row.url, &message_id, &body, &row.secret).await;
    json(&TestedWebhook {
        status: answer.status,
        success: answer.success(),
        body: answer_json(&answer),
    })
}

/// The receiver's body as JSON: its own JSON, else its text, else `null`.
fn answer_json(answer: &Answer) -> serde_json::Value {
    if answer.body.trim().is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::from_str(&answer.body).unwrap_or_else(|_| answer.body.clone().into())
}

/// A sample `data` for a test event: a made-up lead of the shape real events carry.
fn sample_data(event: EventType, now: i64) -> String {
    let at = Timestamp::from_millis(now)
        .unwrap_or_else(Timestamp::now)
        .to_string();
    let lead = serde_json::json!({
        "id": "lead_xxxxxxxxxxxxx", "created_at": at, "updated_at": at,
        "referrer": "https://example.com/", "metadata": {"sample": true},
        "user": {"id": "user_xxxxxxxxxxxxx", "email": null, "name": "Sample User", "username": "sample"},
        "product": null,
        "member": if event == EventType::LeadConverted { serde_json::json!({"id": "mber_xxxxxxxxxxxxx"}) } else { serde_json::Value::Null },
    });
    match event {
        EventType::LeadDeleted => serde_json::json!({"id": "lead_xxxxxxxxxxxxx"}),
        EventType::LeadUpdated => {
            let mut lead = lead;
            lead["previous_attributes"] = serde_json::json!({"referrer": null});
            lead
        }
        EventType::ExportCompleted | EventType::ExportFailed => {
            serde_json::json!({"id": "exp_xxxxxxxxxxxxx", "resource": "leads"})
        }
        EventType::LeadCreated | EventType::LeadConverted => lead,
    }
    .to_string()
}

fn require_enabled(row: &WebhookRow) -> Result<(), ApiError> {
    if row.enabled {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "The webhook is disabled; enable it (PATCH enabled=true) to replay deliveries.",
    ))
}

/// The endpoint the path names, if the credential may manage it.
async fn owned(
    webhooks: &Arc<dyn WebhookStore>,
    credentials: &Arc<dyn CredentialStore>,
    credential: &Credential,
    id: Result<Path<String>, PathRejection>,
) -> Result<(WebhookRow, Access), ApiError> {
    credential.require(&PERMISSIONS)?;
    let Ok(Path(text)) = id else {
        return Err(ApiError::not_found(NO_SUCH_WEBHOOK));
    };
    let id = WebhookId::parse(&text).map_err(|why| ApiError::invalid("id", why))?;
    let row = webhooks
        .find_webhook(id)
        .await?
        .ok_or_else(|| ApiError::not_found(NO_SUCH_WEBHOOK))?;
    let access = credential
        .authorize_resource(
            credentials.as_ref(),
            &row.company,
            &PERMISSIONS,
            NO_SUCH_WEBHOOK,
        )
        .await?;
    Ok((row, access))
}

/// An endpoint URL: well-formed, and a target the server may send to.
async fn url(text: String, sender: &Sender) -> Result<WebhookUrl, ApiError> {
    let url = WebhookUrl::parse(&text).map_err(|why| ApiError::invalid("url", why))?;
    sender
        .check_target(&url)
        .await
        .map_err(|why| ApiError::invalid("url", why))?;
    Ok(url)
}

fn events(names: &[String]) -> Result<EventList, ApiError> {
    EventList::parse(names.iter().map(String::as_str))
        .map_err(|why| ApiError::invalid("events", why))
}

fn api_version(version: Option<String>) -> Result<Option<String>, ApiError> {
    match version {
        Some(v) if !API_VERSIONS.contains(&v.as_str()) => Err(ApiError::invalid(
            "api_version",
            format!("must be one of {}", API_VERSIONS.join(", ")),
        )),
        other => Ok(other),
    }
}

fn boolean(name: &str, text: &str) -> Result<bool, ApiError> {
    match text {
        "true" | "True" | "1" => Ok(true),
        "false" | "False" | "0" => Ok(false),
        _ => Err(ApiError::invalid(name, "must be true or false")),
    }
}

fn time(millis: i64) -> Result<Timestamp, ApiError> {
    Timestamp::from_millis(millis)
        .ok_or_else(|| ApiError::internal(format!("stored time {millis} out of range")))
}

/// An endpoint as the API shows it, without its secret.
fn view(row: WebhookRow) -> Result<Webhook, ApiError> {
    let events: Vec<String> = row.events.iter().map(|e| e.name().to_owned()).collect();
    Ok(Webhook {
        id: row.id.into_string(),
        api_version: row.api_version,
        api_version_date: None,
        child_resource_events: row.child_resource_events,
        consecutive_failures: row.consecutive_failures,
        created_at: time(row.created_at)?,
        disabled_at: row.disabled_at.map(time).transpose()?,
        disabled_reason: row.disabled_reason,
        enabled: row.enabled,
        testable_events: events.clone(),
        events,
        failing_since: row.failing_since.map(time).transpose()?,
        last_failure_at: row.last_failure_at.map(time).transpose()?,
        resource_id: row.company.into_string(),
        url: row.url.as_str().to_owned(),
        webhook_secret: None,
    })
}

fn delivery_view(d: DeliveryRow, company: &str) -> Result<WebhookDelivery, ApiError> {
    let raw = |text: String| RawValue::from_string(text).map_err(ApiError::internal);
    Ok(WebhookDelivery {
        id: d.id.into_string(),
        event: Some(d.event_type),
        replayed_from: d.replayed_from,
        request_body: raw(d.request_body)?,
        resource_id: company.to_owned(),
        response_body: d.response_body.map(raw).transpose()?,
        response_code: d.response_code,
        sent_at: time(d.sent_at)?,
        success: d.success,
        total_time: d.total_time_ms as f64 / 1000.0,
    })
}

fn page_of<R, T>(
    page: KeyPage<R>,
    cursor: impl Fn(&R) -> String,
    show: impl Fn(R) -> Result<T, ApiError>,
) -> Result<Page<T>, ApiError> {
    let start_cursor = page.rows.first().map(&cursor);
    let end_cursor = page.rows.last().map(&cursor);
    Ok(Page {
        page_info: PageInfo {
            start_cursor,
            // The SDKs walk on while end_cursor is set; the last page ends the walk.
            end_cursor: end_cursor.filter(|_| page.has_next_page),
            has_next_page: page.has_next_page,
            has_previous_page: false,
        },
        data: page.rows.into_iter().map(show).collect::<Result<_, _>>()?,
    })
}

/// A list's query string: each parameter at most once, an empty value as not given, unknown
/// ones ignored.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Result<Self, ApiError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (key, value) in super::query::query_pairs(query)? {
            if value.is_empty() {
                continue;
            }
            if pairs.iter().any(|(k, _)| *k == key) {
                return Err(ApiError::repeated(&key));
            }
            pairs.push((key.into_owned(), value.into_owned()));
        }
        Ok(Self(pairs))
    }

    /// The value of whichever of `names` was given (they are aliases; they must agree).
    fn one(&self, names: &[&'static str]) -> Result<Option<(&'static str, String)>, ApiError> {
        let mut found: Option<(&'static str, String)> = None;
        for name in names {
            if let Some((_, value)) = self.0.iter().find(|(k, _)| k == name) {
                if let Some((first, earlier)) = &found {
                    if earlier != value {
                        return Err(ApiError::invalid(
                            name,
                            format!("names a different value than {first}"),
                        ));
                    }
                }
                found = Some((name, value.clone()));
            }
        }
        Ok(found)
    }

    /// `first` and `after`; `last` and `before` are refused (these lists page forwards only).
    fn page(
        &self,
        cursors: &CursorCodec,
        scope: &str,
    ) -> Result<(PageSize, Option<KeyPosition>), ApiError> {
        for backwards in ["last", "before"] {
            if self.one(&[backwards])?.is_some() {
                return Err(ApiError::invalid(
                    backwards,
                    "is not supported here: this list pages forwards with first and after",
                ));
            }
        }
        let size = match self.one(&["first"])? {
            Some((name, text)) => page_size(name, &text)?,
            None => PageSize::default(),
        };
        let after = match self.one(&["after"])? {
            Some((name, text)) => {
                let (at, id) = cursors
                    .decode_key(scope, &text)
                    .map_err(|why| ApiError::invalid(name, why))?;
                Some(KeyPosition { at, id })
            }
            None => None,
        };
        Ok((size, after))
    }
}
