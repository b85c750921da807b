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
use leads_types::{Lead, LeadMember, LeadProduct, LeadUser, Page, PageInfo, Timestamp};
use serde_json::value::RawValue;

/// What reading leads takes, as Whop's API documents it.
pub const READ_PERMISSIONS: [Permission; 3] = [
    Permission::LeadBasicRead,
    Permission::MemberBasicRead,
    Permission::AccessPassBasicRead,
];

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
