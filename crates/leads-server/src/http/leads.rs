//! `/api/v1/leads`: the leads resource.

use super::body::JsonBody;
use super::error::ApiError;
use super::json;
use super::lead_bodies::{lead_change, new_lead};
use super::query::ListRequest;
use crate::auth::{Access, Credential};
use crate::domain::{CompanyId, IdempotencyClaim, IdempotencyKey, LeadId, Permission};
use crate::pagination::{CursorCodec, Positioned};
use crate::storage::{CredentialStore, LeadRow, LeadStore};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use leads_types::{CreateLead, ErrorBody, Lead, Page, PageInfo, UpdateLead};
use std::sync::Arc;

/// What reading leads takes, as Whop's API documents it.
pub const READ_PERMISSIONS: [Permission; 3] = [
    Permission::LeadBasicRead,
    Permission::MemberBasicRead,
    Permission::AccessPassBasicRead,
];

/// What listing with the `email` filter takes: reading, and seeing emails.
pub const EMAIL_FILTER_PERMISSIONS: [Permission; 4] = [
    Permission::LeadBasicRead,
    Permission::MemberBasicRead,
    Permission::AccessPassBasicRead,
    Permission::MemberEmailRead,
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
        ("company_id" = String, Query, description = "The company whose leads to list. Any id of 1 to 255 characters without control characters is accepted, as Whop accepts any string as an ID; one that names no company is answered like any unknown company.", min_length = 1, max_length = 255, example = "biz_xxxxxxxxxxxxxx"),
        ("account_id" = Option<String>, Query, description = "The name newer SDKs use for company_id; must agree with it when both are given.", min_length = 1, max_length = 255),
        ("first" = Option<i64>, Query, description = "Page size, taken from the newest end of the window; neither first nor last means first=20. Not with last.", minimum = 1, maximum = 100),
        ("last" = Option<i64>, Query, description = "Page size, taken from the oldest end of the window. Not with first.", minimum = 1, maximum = 100),
        ("after" = Option<String>, Query, description = "A cursor from an earlier page: only leads older than it."),
        ("before" = Option<String>, Query, description = "A cursor from an earlier page: only leads newer than it."),
        ("created_after" = Option<String>, Query, description = "Only leads created strictly after this instant (RFC 3339). A leap second (second 60, any fraction) means the start of the next minute.", format = DateTime),
        ("created_before" = Option<String>, Query, description = "Only leads created strictly before this instant (RFC 3339). A leap second (second 60, any fraction) means the start of the next minute.", format = DateTime),
        ("product_ids[]" = Option<Vec<String>>, Query, description = "Only leads of these products (at most 100, with product_ids). Each is any id of 1 to 255 characters without control characters; one that names no product of the company matches no lead.", style = Form, explode),
        ("product_ids" = Option<Vec<String>>, Query, description = "The same filter, as repeated product_ids=.", style = Form, explode),
        ("query" = Option<String>, Query, description = "Extension (not Whop's; the official SDKs never send it). Only leads whose user's username, name or email, or whose referrer, contains this text, compared after Unicode case folding. One or two characters match the start of the username, name or email only. No character is a wildcard. Emails take part only for a credential with member:email:read. A search's cursors are bound to its query and email.", min_length = 1, max_length = 100),
        ("email" = Option<String>, Query, description = "Extension (not Whop's; the official SDKs never send it). Only leads of the users whose email is exactly this address, compared after Unicode case folding. Needs member:email:read (403 otherwise).", min_length = 1, max_length = 255),
    ),
    responses(
        (status = 200, description = "A page of leads", body = leads_types::Page<Lead>),
        (status = 400, description = "A parameter is missing or invalid (an id that is empty, over 255 characters or has control characters; a time that is not RFC 3339; a query or email empty, too long or with control characters; a parameter given twice); `param` names it", body = ErrorBody),
        (status = 401, description = "No credential, or an unknown, revoked or expired one", body = ErrorBody),
        (status = 403, description = "The credential may not act for this company (a user token whose user is not on its team included) or lacks a permission (email= needs member:email:read)", body = ErrorBody),
        (status = 429, description = "Too many requests of this operation with this credential", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"),
                    ("Retry-After-Ms" = u64, description = "Milliseconds to wait before retrying"))),
        (status = 503, description = "The database is unavailable or the request timed out", body = ErrorBody),
    )
)]
pub async fn list(
    State(leads): State<Arc<dyn LeadStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    State(cursors): State<CursorCodec>,
    credential: Credential,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let request = ListRequest::parse(query.as_deref().unwrap_or(""), &cursors)?;
    let (page, _) = list_page(
        leads.as_ref(),
        credentials.as_ref(),
        &cursors,
        &credential,
        request,
    )
    .await?;
    json(&page)
}

/// One page of a list request as `GET /leads` answers it, with what the credential may do for
/// the company: authorized as the list route authorizes (403 for a company the credential may
/// not act for), emails shown only with `member:email:read`. The dashboard's table is this page.
pub async fn list_page(
    leads: &dyn LeadStore,
    credentials: &dyn CredentialStore,
    cursors: &CursorCodec,
    credential: &Credential,
    mut request: ListRequest,
) -> Result<(Page<Lead>, Access), ApiError> {
    let company = request.filter.company.clone();
    // Filtering by email would tell a credential that cannot see emails whose they are.
    let by_email = request
        .filter
        .search
        .as_ref()
        .is_some_and(|s| s.email.is_some());
    let needed: &[Permission] = if by_email {
        &EMAIL_FILTER_PERMISSIONS
    } else {
        &READ_PERMISSIONS
    };
    let (access, recheck) = credential
        .authorize_deferred(credentials, &company, needed)
        .await?;
    let view = LeadView::new(&access);
    let scope = match &mut request.filter.search {
        Some(search) => {
            // A query matches emails only for a credential that may see them: no oracle.
            search.emails_visible = view.show_email;
            search.cursor_scope()
        }
        None => Vec::new(),
    };
    let page = credential.rechecked(
        leads
            .list_leads(request.filter, request.page, recheck)
            .await?,
    )?;
    let cursor =
        |row: Option<&LeadRow>| row.map(|r| cursors.encode_scoped(&company, &scope, &r.position()));
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
    Ok((body, access))
}

/// Record a lead for a company and answer it, once it is durable.
///
/// A user token records its own user (leave `user_id` out, or name that user), for any company.
///
/// With an `Idempotency-Key`, a retry of the same body answers the lead the first request made
/// (marked `Idempotent-Replayed: true`) and writes nothing; the key with another body is a 409.
#[utoipa::path(
    post,
    path = "/leads",
    tag = "leads",
    operation_id = "createLead",
    request_body(content = CreateLead, content_type = "application/json"),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the create safe to retry: per credential, remembered at least 24 hours.", min_length = 1, max_length = 255),
    ),
    responses(
        (status = 200, description = "The lead, recorded", body = Lead,
            headers(("Idempotent-Replayed" = String, description = "`true` when answered from an earlier request with the same Idempotency-Key"))),
        (status = 400, description = "A parameter is missing or invalid (including a top-level key given more than once, or a string that is not valid Unicode: a lone UTF-16 surrogate escape), or the body is not a JSON object; `param` names the parameter", body = ErrorBody),
        (status = 401, description = "No credential, or an unknown, revoked or expired one", body = ErrorBody),
        (status = 403, description = "The credential may not act for this company or lacks a permission", body = ErrorBody),
        (status = 409, description = "The Idempotency-Key was used with a different body", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 429, description = "Too many requests of this operation with this credential", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"),
                    ("Retry-After-Ms" = u64, description = "Milliseconds to wait before retrying"))),
        (status = 503, description = "The database is unavailable or the request timed out", body = ErrorBody),
    )
)]
pub async fn create(
    State(leads): State<Arc<dyn LeadStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    credential: Credential,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateLead>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let lead = new_lead(body, credential.acting_user())?;
    let access = credential
        .authorize_own_lead(
            credentials.as_ref(),
            &lead.company,
            &lead.user,
            &WRITE_PERMISSIONS,
        )
        .await?;
    let claim = key.map(|key| IdempotencyClaim {
        credential: credential.id().to_owned(),
        key,
        fingerprint: lead.fingerprint(),
    });
    // What this request asked for, which a replay may have to show instead of the lead as it
    // is now (see below).
    let asked = (
        lead.referrer.as_ref().map(|r| r.as_str().to_owned()),
        lead.metadata.as_ref().map(|m| m.as_str().to_owned()),
    );
    let company = lead.company.clone();
    let mut created = leads.create_lead(lead, claim).await?;
    if created.replayed
        && credential.acting_user().is_some()
        && credential
            .access(credentials.as_ref(), &company)
            .await?
            .is_none()
    {
        // A user token off the company's team may record its own user as a lead but never
        // read the company's records: a replay shows what the request sent (its fingerprint
        // is the same), not the referrer and notes the company has written since.
        (created.row.referrer, created.row.metadata) = asked;
    }
    let mut response = json(&LeadView::new(&access).lead(created.row)?)?;
    if created.replayed {
        response.headers_mut().insert(
            HeaderName::from_static(IDEMPOTENT_REPLAYED),
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// Retrieve one lead of the credential's company.
///
/// A lead of another company is answered exactly like one that does not exist; so is any lead of
/// a company whose team a user token's user is not on, even a lead about that user.
#[utoipa::path(
    get,
    path = "/leads/{id}",
    tag = "leads",
    operation_id = "retrieveLead",
    params(("id" = String, Path, description = "The lead's id: any id of 1 to 255 characters without control characters; one that names no lead the credential may see is a 404.", min_length = 1, max_length = 255, example = "lead_xxxxxxxxxxxxx")),
    responses(
        (status = 200, description = "The lead", body = Lead),
        (status = 400, description = "The path's id is over 255 characters or has control characters; `param` is `id`", body = ErrorBody),
        (status = 401, description = "No credential, or an unknown, revoked or expired one", body = ErrorBody),
        (status = 403, description = "The credential lacks a permission", body = ErrorBody),
        (status = 404, description = "No such lead (or not one this credential may see)", body = ErrorBody),
        (status = 429, description = "Too many requests of this operation with this credential", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"),
                    ("Retry-After-Ms" = u64, description = "Milliseconds to wait before retrying"))),
        (status = 503, description = "The database is unavailable or the request timed out", body = ErrorBody),
    )
)]
pub async fn retrieve(
    State(leads): State<Arc<dyn LeadStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    credential: Credential,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    credential.require(&READ_PERMISSIONS)?;
    let id = lead_id(id)?;
    let (lead, _) = find_lead(leads.as_ref(), credentials.as_ref(), &credential, &id, None).await?;
    json(&lead)
}

/// One lead as `GET /leads/{id}` answers it, with what the credential may do in its company:
/// absent and unseeable leads are both 404. With `only_in`, so is a lead of any other company:
/// a dashboard session acts for one company only.
pub async fn find_lead(
    leads: &dyn LeadStore,
    credentials: &dyn CredentialStore,
    credential: &Credential,
    id: &LeadId,
    only_in: Option<&CompanyId>,
) -> Result<(Lead, Access), ApiError> {
    credential.require(&READ_PERMISSIONS)?;
    let (company, access) = credential
        .authorize_lead(credentials, leads, id, &READ_PERMISSIONS)
        .await?;
    if only_in.is_some_and(|only| *only != company) {
        return Err(no_such_lead());
    }
    let row = leads
        .find_lead(company, id.clone())
        .await?
        .ok_or_else(no_such_lead)?;
    let lead = LeadView::new(&access).lead(row)?;
    Ok((lead, access))
}

/// Update a lead's `metadata` and/or `referrer`.
///
/// A key left out keeps its value, `null` clears it, and `metadata` replaces the whole object.
/// `updated_at` moves forward; `created_at` never changes.
#[utoipa::path(
    patch,
    path = "/leads/{id}",
    tag = "leads",
    operation_id = "updateLead",
    params(("id" = String, Path, description = "The lead's id: any id of 1 to 255 characters without control characters; one that names no lead the credential may see is a 404.", min_length = 1, max_length = 255, example = "lead_xxxxxxxxxxxxx")),
    request_body(content = UpdateLead, content_type = "application/json"),
    responses(
        (status = 200, description = "The lead as it now is", body = Lead),
        (status = 400, description = "A parameter is invalid (including the path's id, a top-level key given more than once, or a string that is not valid Unicode: a lone UTF-16 surrogate escape), or the body is not a JSON object; `param` names the parameter", body = ErrorBody),
        (status = 401, description = "No credential, or an unknown, revoked or expired one", body = ErrorBody),
        (status = 403, description = "The credential lacks a permission", body = ErrorBody),
        (status = 404, description = "No such lead (or not one this credential may see)", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 429, description = "Too many requests of this operation with this credential", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"),
                    ("Retry-After-Ms" = u64, description = "Milliseconds to wait before retrying"))),
        (status = 503, description = "The database is unavailable or the request timed out", body = ErrorBody),
    )
)]
pub async fn update(
    State(leads): State<Arc<dyn LeadStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    credential: Credential,
    id: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<UpdateLead>,
) -> Result<Response, ApiError> {
    credential.require(&WRITE_PERMISSIONS)?;
    let id = lead_id(id)?;
    let lead = change_lead(
        leads.as_ref(),
        credentials.as_ref(),
        &credential,
        &id,
        body,
        None,
    )
    .await?;
    json(&lead)
}

/// Applies an update body to a lead as `PATCH /leads/{id}` does (the same validation, the same
/// authorization) and answers the lead as it now is. With `only_in`, a lead of any other
/// company is a 404 too: a dashboard session acts for one company only.
pub async fn change_lead(
    leads: &dyn LeadStore,
    credentials: &dyn CredentialStore,
    credential: &Credential,
    id: &LeadId,
    body: UpdateLead,
    only_in: Option<&CompanyId>,
) -> Result<Lead, ApiError> {
    credential.require(&WRITE_PERMISSIONS)?;
    let change = lead_change(body)?;
    let (company, access) = credential
        .authorize_lead(credentials, leads, id, &WRITE_PERMISSIONS)
        .await?;
    if only_in.is_some_and(|only| *only != company) {
        return Err(no_such_lead());
    }
    let row = leads
        .update_lead(company, id.clone(), change)
        .await?
        .ok_or_else(no_such_lead)?;
    LeadView::new(&access).lead(row)
}

/// The same answer for an absent lead, another company's lead and an id that could be one but
/// names nothing (`4`, `lead_doesnotexist00`), so ids cannot be probed.
fn no_such_lead() -> ApiError {
    ApiError::not_found("No such lead.")
}

/// The path's id. Text no id can be (over 255 characters, or with control characters) is a 400
/// naming `id`; bytes that are not UTF-8 once percent-decoded name no lead, like any unknown id.
pub fn lead_id(path: Result<Path<String>, PathRejection>) -> Result<LeadId, ApiError> {
    let Ok(Path(text)) = path else {
        return Err(no_such_lead());
    };
    LeadId::parse(&text).map_err(|why| ApiError::invalid("id", why))
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

/// How a credential sees a company's leads: emails only with `member:email:read` there.
pub struct LeadView {
    show_email: bool,
}

impl LeadView {
    pub fn new(access: &Access) -> Self {
        Self {
            show_email: access.can(Permission::MemberEmailRead),
        }
    }

    pub fn lead(&self, row: LeadRow) -> Result<Lead, ApiError> {
        row.into_lead(self.show_email).map_err(ApiError::internal)
    }
}
