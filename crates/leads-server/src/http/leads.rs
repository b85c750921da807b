//! `/api/v1/leads`: the leads resource.

use super::body::JsonBody;
use super::error::ApiError;
use super::lead_bodies::{lead_change, new_lead};
use super::query::ListRequest;
use super::{json, AppState};
use crate::auth::Credential;
use crate::domain::{IdempotencyClaim, IdempotencyKey, LeadId, Permission};
use crate::pagination::Positioned;
use crate::storage::LeadRow;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use leads_types::{
    CreateLead, Lead, LeadMember, LeadProduct, LeadUser, Page, PageInfo, Timestamp, UpdateLead,
};
use serde_json::value::RawValue;

/// What reading leads takes, as Whop's API documents it.
pub const READ_PERMISSIONS: [Permission; 3] = [
    Permission::LeadBasicRead,
    Permission::MemberBasicRead,
    Permission::AccessPassBasicRead,
];

/// What writing leads takes: `lead:manage` and everything reading takes.
pub const WRITE_PERMISSIONS: [Permission; 4] = [
    Permission::LeadManage,
    Permission::LeadBasicRead,
    Permission::MemberBasicRead,
    Permission::AccessPassBasicRead,
];

/// The request header that makes a create safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on a create answered from an earlier request with the same idempotency key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// `GET /api/v1/leads`: a company's leads, newest first, a page at a time.
pub async fn list(
    State(state): State<AppState>,
    credential: Credential,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let request = ListRequest::parse(query.as_deref().unwrap_or(""), &state.cursors)?;
    credential.authorize(&request.filter.company, &READ_PERMISSIONS)?;
    let company = request.filter.company.clone();
    let page = state.store.list_leads(request.filter, request.page).await?;
    let view = LeadView::new(&credential);
    let cursor = |row: Option<&LeadRow>| row.map(|r| state.cursors.encode(&company, &r.position()));
    let body = Page {
        page_info: PageInfo {
            start_cursor: cursor(page.rows.first()),
            end_cursor: cursor(page.rows.last()),
            has_next_page: page.has_next_page,
            has_previous_page: page.has_previous_page,
        },
        data: page
            .rows
            .into_iter()
            .map(|row| view.lead(row))
            .collect::<Result<_, _>>()?,
    };
    json(&body)
}

/// `POST /api/v1/leads`: records a lead and answers it, once it is durable.
///
/// With an `Idempotency-Key`, a retry of the same body answers the lead the first request made
/// (marked `Idempotent-Replayed: true`) and writes nothing; the key with another body is a 409.
pub async fn create(
    State(state): State<AppState>,
    credential: Credential,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateLead>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let lead = new_lead(body)?;
    credential.authorize(&lead.company, &WRITE_PERMISSIONS)?;
    let claim = key.map(|key| IdempotencyClaim {
        credential: credential.id().to_owned(),
        key,
        fingerprint: lead.fingerprint(),
    });
    let created = state.store.create_lead(lead, claim).await?;
    let mut response = json(&LeadView::new(&credential).lead(created.row)?)?;
    if created.replayed {
        response.headers_mut().insert(
            HeaderName::from_static(IDEMPOTENT_REPLAYED),
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// `GET /api/v1/leads/{id}`: one lead of the caller's company.
pub async fn retrieve(
    State(state): State<AppState>,
    credential: Credential,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    credential.require(&READ_PERMISSIONS)?;
    let id = lead_id(id)?;
    let row = state
        .store
        .find_lead(credential.company.clone(), id)
        .await?
        .ok_or_else(no_such_lead)?;
    json(&LeadView::new(&credential).lead(row)?)
}

/// `PATCH /api/v1/leads/{id}`: changes `metadata` and/or `referrer`; `updated_at` moves on.
pub async fn update(
    State(state): State<AppState>,
    credential: Credential,
    id: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<UpdateLead>,
) -> Result<Response, ApiError> {
    credential.require(&WRITE_PERMISSIONS)?;
    let id = lead_id(id)?;
    let change = lead_change(body)?;
    let row = state
        .store
        .update_lead(credential.company.clone(), id, change)
        .await?
        .ok_or_else(no_such_lead)?;
    json(&LeadView::new(&credential).lead(row)?)
}

/// The same answer for a malformed id, an absent lead and another company's lead, so ids
/// cannot be probed.
fn no_such_lead() -> ApiError {
    ApiError::not_found("No such lead.")
}

fn lead_id(path: Result<Path<String>, PathRejection>) -> Result<LeadId, ApiError> {
    path.ok()
        .and_then(|Path(text)| LeadId::parse(&text))
        .ok_or_else(no_such_lead)
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let invalid = |why: &dyn std::fmt::Display| ApiError::invalid("Idempotency-Key", why);
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(invalid(&"was given more than once"));
    }
    let text = value
        .to_str()
        .map_err(|_| invalid(&"must be printable ASCII"))?;
    IdempotencyKey::parse(text)
        .map(Some)
        .map_err(|why| invalid(&why))
}

/// How a credential sees leads: emails only with `member:email:read`.
pub struct LeadView {
    show_email: bool,
}

impl LeadView {
    pub fn new(credential: &Credential) -> Self {
        Self {
            show_email: credential.can(Permission::MemberEmailRead),
        }
    }

    pub fn lead(&self, row: LeadRow) -> Result<Lead, ApiError> {
        let metadata = row
            .metadata
            .map(RawValue::from_string)
            .transpose()
            .map_err(|e| {
                ApiError::internal(format!("stored metadata of {} is not JSON: {e}", row.id))
            })?;
        let time = |millis: i64| {
            Timestamp::from_millis(millis)
                .ok_or_else(|| ApiError::internal(format!("stored time {millis} out of range")))
        };
        Ok(Lead {
            created_at: time(row.created_at)?,
            updated_at: time(row.updated_at)?,
            id: row.id.into_string(),
            referrer: row.referrer,
            metadata,
            user: LeadUser {
                id: row.user_id,
                email: row.user_email.filter(|_| self.show_email),
                name: row.user_name,
                username: row.user_username,
            },
            product: row
                .product_id
                .zip(row.product_title)
                .map(|(id, title)| LeadProduct { id, title }),
            member: row.member_id.map(|id| LeadMember { id }),
        })
    }
}
