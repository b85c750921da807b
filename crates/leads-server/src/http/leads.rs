//! `/api/v1/leads`: the leads resource.

use super::error::ApiError;
use super::query::ListRequest;
use super::{json, AppState};
use crate::auth::Credential;
use crate::domain::Permission;
use crate::pagination::Positioned;
use crate::storage::LeadRow;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use leads_types::{ErrorBody, Lead, LeadMember, LeadProduct, LeadUser, Page, PageInfo, Timestamp};
use serde_json::value::RawValue;

/// What reading leads takes, as Whop's API documents it.
pub const READ_PERMISSIONS: [Permission; 3] = [
    Permission::LeadBasicRead,
    Permission::MemberBasicRead,
    Permission::AccessPassBasicRead,
];

/// List a company's leads, newest first, a page at a time.
///
/// Cursors are opaque keyset positions bound to the company: `after=end_cursor` continues
/// with older leads, `before=start_cursor` goes back to newer ones, and both together select the
/// leads strictly between them. `has_next_page` and `has_previous_page` are exact.
#[utoipa::path(
    get,
    path = "/leads",
    tag = "leads",
    operation_id = "listLeads",
    params(
        ("company_id" = String, Query, description = "The company whose leads to list.", pattern = r"^biz_[0-9A-Za-z]{14}$", example = "biz_xxxxxxxxxxxxxx"),
        ("account_id" = Option<String>, Query, description = "The name newer SDKs use for company_id; must agree with it when both are given.", pattern = r"^biz_[0-9A-Za-z]{14}$"),
        ("first" = Option<i64>, Query, description = "Page size, taken from the newest end of the window; neither first nor last means first=20. Not with last.", minimum = 1, maximum = 100),
        ("last" = Option<i64>, Query, description = "Page size, taken from the oldest end of the window. Not with first.", minimum = 1, maximum = 100),
        ("after" = Option<String>, Query, description = "A cursor from an earlier page: only leads older than it."),
        ("before" = Option<String>, Query, description = "A cursor from an earlier page: only leads newer than it."),
        ("created_after" = Option<String>, Query, description = "Only leads created strictly after this instant (RFC 3339).", format = DateTime),
        ("created_before" = Option<String>, Query, description = "Only leads created strictly before this instant (RFC 3339).", format = DateTime),
        ("product_ids[]" = Option<Vec<String>>, Query, description = "Only leads of these products (at most 100, with product_ids).", style = Form, explode),
        ("product_ids" = Option<Vec<String>>, Query, description = "The same filter, as repeated product_ids=.", style = Form, explode),
    ),
    responses(
        (status = 200, description = "A page of leads", body = leads_types::Page<Lead>),
        (status = 400, description = "A parameter is missing or invalid; `param` names it", body = ErrorBody),
        (status = 401, description = "No credential, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "The credential may not act for this company or lacks a permission", body = ErrorBody),
        (status = 503, description = "The database is unavailable or the request timed out", body = ErrorBody),
    )
)]
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
