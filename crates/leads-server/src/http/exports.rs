//! `/api/v1/exports`: Whop's asynchronous exports, of the `leads` resource.
//!
//! Creating an export only records the job; the [export worker](crate::exports::worker) writes
//! the file. Reading a `completed` export mints a fresh short-lived `download_url` on this
//! server (`/exports/{id}/download?token=...`), which needs no `Authorization` header.

use super::body::JsonBody;
use super::error::ApiError;
use super::json;
use super::query::{time_bound, MAX_PRODUCT_IDS};
use crate::auth::Credential;
use crate::domain::search::{EmailQuery, SearchQuery};
use crate::domain::{CompanyId, ExportId, Permission, ProductId, Timestamp};
use crate::exports::links::LinkSigner;
use crate::exports::RETENTION;
use crate::formats::csv::LeadColumn;
use crate::pagination::PageSize;
use crate::storage::exports::{ExportFilter, ExportSpec};
use crate::storage::{CredentialStore, ExportRow, ExportStatus, ExportStore};
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono_tz::Tz;
use leads_types::exports::{CreateExport, Export};
use leads_types::{ErrorBody, Page, PageInfo};
use std::path::PathBuf;
use std::sync::Arc;

/// What exporting leads takes: Whop's `lead:basic:export` and everything reading leads takes
/// ([`super::leads::READ_PERMISSIONS`]).
pub const EXPORT_PERMISSIONS: [Permission; 4] = [
    Permission::LeadBasicExport,
    Permission::LeadBasicRead,
    Permission::MemberBasicRead,
    Permission::AccessPassBasicRead,
];

/// What exporting with the `email` filter takes: exporting, and seeing emails.
pub const EMAIL_FILTER_EXPORT_PERMISSIONS: [Permission; 5] = [
    Permission::LeadBasicExport,
    Permission::LeadBasicRead,
    Permission::MemberBasicRead,
    Permission::AccessPassBasicRead,
    Permission::MemberEmailRead,
];

/// The one resource this server exports.
pub const LEADS: &str = "leads";

/// Where finished files are and how links to them are made.
#[derive(Debug, Clone)]
pub struct ExportFiles {
    pub signer: LinkSigner,
    /// The URL clients reach this server at; the request's own scheme and host when `None`.
    pub public_url: Option<String>,
    pub dir: PathBuf,
}

/// Start an export of a company's leads.
///
/// Answers the export at once, `pending`; poll `GET /exports/{id}` until `status` is
/// `completed` and `download_url` is set. The file is CSV (RFC 4180, UTF-8, a header row) of
/// exactly the leads the list shows for the same filters, newest first.
#[utoipa::path(
    post,
    path = "/exports",
    tag = "exports",
    operation_id = "createExport",
    request_body(content = CreateExport, content_type = "application/json"),
    responses(
        (status = 200, description = "The export, pending", body = Export),
        (status = 400, description = "A parameter is missing or invalid (a resource other than leads, an unknown column, filter or time zone, a bad date); `param` names it", body = ErrorBody),
        (status = 401, description = "No credential, or an unknown, revoked or expired one", body = ErrorBody),
        (status = 403, description = "The credential may not act for this company, or lacks a permission (lead:basic:export and the read permissions)", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 429, description = "Too many requests of this operation with this credential", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"),
                    ("Retry-After-Ms" = u64, description = "Milliseconds to wait before retrying"))),
        (status = 503, description = "The database is unavailable or the request timed out", body = ErrorBody),
    )
)]
pub async fn create(
    State(exports): State<Arc<dyn ExportStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    State(files): State<Arc<ExportFiles>>,
    credential: Credential,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateExport>,
) -> Result<Response, ApiError> {
    match body.resource.as_deref() {
        None | Some("") => return Err(ApiError::missing("resource")),
        Some(LEADS) => {}
        Some(other) => {
            return Err(ApiError::invalid(
                "resource",
                format_args!("{other:?} is not exported by this server; only leads is"),
            ))
        }
    }
    let company = company_of(
        &credential,
        body.account_id.as_deref(),
        body.company_id.as_deref(),
    )?;
    let mut columns = Vec::new();
    for name in body.columns.unwrap_or_default() {
        let column = name
            .parse::<LeadColumn>()
            .map_err(|e| ApiError::invalid("columns", e))?;
        columns.push(column.name().to_owned());
    }
    let timezone = match body.timezone.as_deref() {
        None | Some("") => Tz::UTC,
        Some(text) => text.parse::<Tz>().map_err(|_| {
            ApiError::invalid(
                "timezone",
                "must be an IANA time zone such as America/New_York",
            )
        })?,
    };
    let filters = Filters::parse(body.filters.as_ref())?;
    let row = start_export(
        exports.as_ref(),
        credentials.as_ref(),
        &credential,
        company,
        columns,
        filters,
        timezone,
    )
    .await?;
    json(&view(&files, &headers, row))
}

/// Records a `pending` export of `company`'s leads for `credential`, authorized as
/// `POST /exports` authorizes (the export permissions, and `member:email:read` for the `email`
/// filter): what the route and the dashboard's **Download CSV** both do. `columns` are names of
/// [`LeadColumn`] (empty means all); emails are written only for a credential that may read
/// them.
pub async fn start_export(
    exports: &dyn ExportStore,
    credentials: &dyn CredentialStore,
    credential: &Credential,
    company: CompanyId,
    columns: Vec<String>,
    filters: Filters,
    timezone: Tz,
) -> Result<ExportRow, ApiError> {
    // Filtering by email would tell a credential that cannot see emails whose they are, as
    // on the list.
    let needed: &[Permission] = if filters.email.is_some() {
        &EMAIL_FILTER_EXPORT_PERMISSIONS
    } else {
        &EXPORT_PERMISSIONS
    };
    let access = credential.authorize(credentials, &company, needed).await?;
    let now = Timestamp::now().as_millis();
    let row = ExportRow {
        id: ExportId::generate(),
        company,
        resource: LEADS.to_owned(),
        status: ExportStatus::Pending,
        spec: ExportSpec {
            columns,
            product_ids: filters.product_ids,
            created_after: filters.created_after,
            created_before: filters.created_before,
            query: filters.query,
            email: filters.email,
            timezone: timezone.name().to_owned(),
            include_email: access.can(Permission::MemberEmailRead),
        },
        progress_percent: 0,
        failure_reason: None,
        file_name: None,
        row_count: None,
        created_at: now,
        updated_at: now,
        expires_at: now + RETENTION.as_millis() as i64,
    };
    exports.create_export(row.clone()).await?;
    Ok(row)
}

/// List a company's exports, newest first, a page at a time.
///
/// Only exports of resources this server exports (`leads`) exist. `after=end_cursor` continues
/// with the next page.
#[utoipa::path(
    get,
    path = "/exports",
    tag = "exports",
    operation_id = "listExports",
    params(
        ("account_id" = Option<String>, Query, description = "The company whose exports to list; the credential's own company when left out.", min_length = 1, max_length = 255),
        ("company_id" = Option<String>, Query, description = "The same, by the name the leads list uses. An extension of this server.", min_length = 1, max_length = 255),
        ("resource" = Option<String>, Query, description = "Only exports of this resource; any other than leads lists nothing."),
        ("status" = Option<String>, Query, description = "Only exports in this status: pending, processing, completed, failed or expired."),
        ("created_after" = Option<String>, Query, description = "Only exports created at or after this instant (RFC 3339).", format = DateTime),
        ("created_before" = Option<String>, Query, description = "Only exports created at or before this instant (RFC 3339).", format = DateTime),
        ("order" = Option<String>, Query, description = "The field to sort by: created_at."),
        ("direction" = Option<String>, Query, description = "desc (newest first, the default) or asc."),
        ("first" = Option<i64>, Query, description = "Page size; 20 when left out. An extension of this server.", minimum = 1, maximum = 100),
        ("after" = Option<String>, Query, description = "The end_cursor of the previous page. An extension of this server."),
    ),
    responses(
        (status = 200, description = "A page of exports", body = leads_types::Page<Export>),
        (status = 400, description = "A parameter is missing or invalid; `param` names it", body = ErrorBody),
        (status = 401, description = "No credential, or an unknown, revoked or expired one", body = ErrorBody),
        (status = 403, description = "The credential may not act for this company, or lacks a permission", body = ErrorBody),
        (status = 429, description = "Too many requests of this operation with this credential", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"),
                    ("Retry-After-Ms" = u64, description = "Milliseconds to wait before retrying"))),
        (status = 503, description = "The database is unavailable or the request timed out", body = ErrorBody),
    )
)]
pub async fn list(
    State(exports): State<Arc<dyn ExportStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    State(files): State<Arc<ExportFiles>>,
    credential: Credential,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let request = ListExports::parse(query.as_deref().unwrap_or(""), &credential)?;
    credential
        .authorize(
            credentials.as_ref(),
            &request.filter.company,
            &EXPORT_PERMISSIONS,
        )
        .await?;
    let limit = request.filter.limit;
    let mut rows = if request.other_resource {
        Vec::new()
    } else {
        exports.list_exports(request.filter).await?
    };
    let has_next_page = rows.len() > limit;
    rows.truncate(limit);
    let cursor = |row: Option<&ExportRow>| row.map(|r| encode_cursor(r.created_at, &r.id));
    let body = Page {
        page_info: PageInfo {
            start_cursor: cursor(rows.first()),
            end_cursor: cursor(rows.last()),
            has_next_page,
            has_previous_page: request.after_given,
        },
        data: rows
            .into_iter()
            .map(|row| view(&files, &headers, row))
            .collect(),
    };
    json(&body)
}

/// Retrieve an export: its status and, once `completed`, a fresh download link.
///
/// Another company's export is answered exactly like one that does not exist.
#[utoipa::path(
    get,
    path = "/exports/{id}",
    tag = "exports",
    operation_id = "retrieveExport",
    params(("id" = String, Path, description = "The export's id.", min_length = 1, max_length = 255, example = "exprt_xxxxxxxxxxxx")),
    responses(
        (status = 200, description = "The export", body = Export),
        (status = 400, description = "The path's id is over 255 characters or has control characters; `param` is `id`", body = ErrorBody),
        (status = 401, description = "No credential, or an unknown, revoked or expired one", body = ErrorBody),
        (status = 403, description = "The credential lacks a permission", body = ErrorBody),
        (status = 404, description = "No such export (or not one this credential may see)", body = ErrorBody),
        (status = 429, description = "Too many requests of this operation with this credential", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"),
                    ("Retry-After-Ms" = u64, description = "Milliseconds to wait before retrying"))),
        (status = 503, description = "The database is unavailable or the request timed out", body = ErrorBody),
    )
)]
pub async fn retrieve(
    State(exports): State<Arc<dyn ExportStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    State(files): State<Arc<ExportFiles>>,
    credential: Credential,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    credential.require(&EXPORT_PERMISSIONS)?;
    let Ok(Path(id)) = id else {
        return Err(no_such_export());
    };
    let id = ExportId::parse(&id).map_err(|why| ApiError::invalid("id", why))?;
    let row = exports.export_by_id(id).await?.ok_or_else(no_such_export)?;
    if credential
        .access(credentials.as_ref(), &row.company)
        .await?
        .is_none()
    {
        return Err(no_such_export());
    }
    credential
        .authorize(credentials.as_ref(), &row.company, &EXPORT_PERMISSIONS)
        .await?;
    json(&view(&files, &headers, row))
}

/// Download an export's file with the token of its `download_url`.
///
/// Needs no `Authorization` header: the token, signed and bound to the export and its company,
/// is the permission, for 15 minutes by default. The file streams as `text/csv` with
/// `content-disposition: attachment`. An extension in form: Whop answers presigned links to its
/// storage; this server serves the file itself.
#[utoipa::path(
    get,
    path = "/exports/{id}/download",
    tag = "exports",
    operation_id = "downloadExport",
    security(()),
    params(
        ("id" = String, Path, description = "The export's id.", example = "exprt_xxxxxxxxxxxx"),
        ("token" = String, Query, description = "The token of the export's download_url."),
    ),
    responses(
        (status = 200, description = "The file", content_type = "text/csv",
            headers(("Content-Disposition" = String, description = "attachment; filename=\"leads-exprt_....csv\""))),
        (status = 403, description = "The token is missing, expired, altered, or another export's", body = ErrorBody),
        (status = 404, description = "The export has expired and its file is deleted, or the file is not in this instance's export directory", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
pub async fn download(
    State(exports): State<Arc<dyn ExportStore>>,
    State(files): State<Arc<ExportFiles>>,
    id: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let refused =
        |why: &dyn std::fmt::Display| ApiError::forbidden(format!("This download link {why}."));
    let token = form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .find(|(key, _)| key == "token")
        .map(|(_, value)| value.into_owned())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| refused(&"has no token"))?;
    let not_issued = || refused(&"is not one this server issued");
    let id = id
        .ok()
        .and_then(|Path(id)| ExportId::parse(&id).ok())
        .ok_or_else(not_issued)?;
    let row = exports.export_by_id(id).await?.ok_or_else(not_issued)?;
    files
        .signer
        .verify(&row.id, &row.company, &token, Timestamp::now().as_millis())
        .map_err(|why| refused(&why))?;
    let gone = || ApiError::not_found("This export's file is not available: it has expired.");
    let name = match (&row.status, &row.file_name) {
        (ExportStatus::Completed, Some(name)) => name.clone(),
        _ => return Err(gone()),
    };
    let file = match tokio::fs::File::open(files.dir.join(&name)).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(export = %row.id, "a completed export's file is missing from the export directory");
            return Err(ApiError::not_found(
                "This export's file is not in this server's export directory.",
            ));
        }
        Err(e) => {
            return Err(ApiError::internal(format!(
                "cannot open an export file: {e}"
            )))
        }
    };
    let length = file.metadata().await.ok().map(|m| m.len());
    let mut response =
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024))
            .into_response();
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    let disposition = format!("attachment; filename=\"leads-{}.csv\"", row.id);
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Some(length) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn no_such_export() -> ApiError {
    ApiError::not_found("No such export.")
}

/// The company a request names (`account_id`, or `company_id`; they must agree), or the
/// credential's own. Each given id must be one (an empty one is a 400 naming it); a query
/// string's empty values never get here, as they mean "not given" there.
fn company_of(
    credential: &Credential,
    account_id: Option<&str>,
    company_id: Option<&str>,
) -> Result<CompanyId, ApiError> {
    let parse = |param: &str, text: Option<&str>| {
        text.map(|t| CompanyId::parse(t).map_err(|why| ApiError::invalid(param, why)))
            .transpose()
    };
    match (
        parse("account_id", account_id)?,
        parse("company_id", company_id)?,
    ) {
        (Some(a), Some(c)) if a != c => Err(ApiError::invalid(
            "company_id",
            "names a different company than account_id",
        )),
        (Some(company), _) | (None, Some(company)) => Ok(company),
        (None, None) => credential
            .home_company()
            .cloned()
            .ok_or_else(|| ApiError::missing("account_id")),
    }
}

/// The export as the API shows it; a `completed` one with a freshly minted link.
fn view(files: &ExportFiles, headers: &HeaderMap, row: ExportRow) -> Export {
    let download_url = (row.status == ExportStatus::Completed)
        .then(|| format!("{}{}", base_url(files, headers), download_path(files, &row)));
    row.to_export(download_url)
}

/// The path and query of a fresh download link to `row`'s file
/// (`/api/v1/exports/{id}/download?token=...`), valid for the signer's lifetime from now.
pub fn download_path(files: &ExportFiles, row: &ExportRow) -> String {
    let token = files
        .signer
        .token(&row.id, &row.company, Timestamp::now().as_millis());
    let token: String = form_urlencoded::byte_serialize(token.as_bytes()).collect();
    format!("/api/v1/exports/{}/download?token={token}", row.id)
}

/// Where clients reach this server: the configured public URL, or the scheme (from
/// `x-forwarded-proto`, else http) and `Host` of the request.
fn base_url(files: &ExportFiles, headers: &HeaderMap) -> String {
    if let Some(url) = &files.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

/// The filters of `POST /exports`: the leads list's own. Time bounds are exclusive
/// milliseconds; `query` and `email` (extensions) are kept as given, and must parse as the
/// list's [`SearchQuery`] and [`EmailQuery`].
#[derive(Debug, Default)]
pub struct Filters {
    pub product_ids: Vec<String>,
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    pub query: Option<String>,
    pub email: Option<String>,
}

impl Filters {
    fn parse(value: Option<&serde_json::Value>) -> Result<Self, ApiError> {
        let mut filters = Filters::default();
        let object = match value {
            None | Some(serde_json::Value::Null) => return Ok(filters),
            Some(serde_json::Value::Object(object)) => object,
            Some(_) => return Err(ApiError::invalid("filters", "must be an object")),
        };
        for (key, value) in object {
            if value.is_null() {
                continue;
            }
            let param = format!("filters.{key}");
            let text = |value: &serde_json::Value| {
                value
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::invalid(&param, "must be a string"))
            };
            match key.as_str() {
                "created_after" => {
                    filters.created_after = Some(time_bound(&param, &text(value)?, false)?);
                }
                "created_before" => {
                    filters.created_before = Some(time_bound(&param, &text(value)?, true)?);
                }
                "product_ids" => {
                    let items = value
                        .as_array()
                        .ok_or_else(|| ApiError::invalid(&param, "must be an array of ids"))?;
                    if items.len() > MAX_PRODUCT_IDS {
                        return Err(ApiError::invalid(
                            &param,
                            format_args!("must have at most {MAX_PRODUCT_IDS} ids"),
                        ));
                    }
                    for item in items {
                        // Ids are strings, or integers meaning their decimal text.
                        let item = match item {
                            serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => {
                                serde_json::Value::String(n.to_string())
                            }
                            other => other.clone(),
                        };
                        let id = ProductId::parse(&text(&item)?)
                            .map_err(|why| ApiError::invalid(&param, format_args!("each id {why}")))?
                            .into_string();
                        if !filters.product_ids.contains(&id) {
                            filters.product_ids.push(id);
                        }
                    }
                }
                "query" => {
                    let text = text(value)?;
                    SearchQuery::parse(&text).map_err(|why| ApiError::invalid(&param, why))?;
                    filters.query = Some(text);
                }
                "email" => {
                    let text = text(value)?;
                    EmailQuery::parse(&text).map_err(|why| ApiError::invalid(&param, why))?;
                    filters.email = Some(text);
                }
                _ => {
                    return Err(ApiError::invalid(
                        &param,
                        "is not a filter of leads; the filters are created_after, created_before, product_ids, query and email",
                    ))
                }
            }
        }
        Ok(filters)
    }
}

/// A validated `GET /exports` query.
struct ListExports {
    filter: ExportFilter,
    /// A `resource` other than leads: nothing to list.
    other_resource: bool,
    after_given: bool,
}

impl ListExports {
    fn parse(query: &str, credential: &Credential) -> Result<Self, ApiError> {
        let mut given: std::collections::HashMap<&'static str, String> = Default::default();
        for (key, value) in super::query::query_pairs(query)? {
            if value.is_empty() {
                continue; // an empty value means "not given", as for the leads list
            }
            let name = match key.as_ref() {
                "account_id" => "account_id",
                "company_id" => "company_id",
                "resource" => "resource",
                "status" => "status",
                "created_after" => "created_after",
                "created_before" => "created_before",
                "order" => "order",
                "direction" => "direction",
                "first" => "first",
                "after" => "after",
                _ => continue,
            };
            if given.insert(name, value.into_owned()).is_some() {
                return Err(ApiError::repeated(name));
            }
        }
        let company = company_of(
            credential,
            given.get("account_id").map(String::as_str),
            given.get("company_id").map(String::as_str),
        )?;
        let status = given
            .get("status")
            .map(|text| {
                ExportStatus::parse(text).ok_or_else(|| {
                    ApiError::invalid(
                        "status",
                        "must be one of pending, processing, completed, failed, expired",
                    )
                })
            })
            .transpose()?;
        let instant = |name: &'static str| {
            given
                .get(name)
                .map(|text| {
                    Timestamp::parse(text)
                        .map(|t| t.as_millis())
                        .ok_or_else(|| {
                            ApiError::invalid(
                                name,
                                "must be an RFC 3339 date-time such as 2023-12-01T05:00:00.401Z",
                            )
                        })
                })
                .transpose()
        };
        if let Some(order) = given.get("order") {
            if order != "created_at" {
                return Err(ApiError::invalid("order", "must be created_at"));
            }
        }
        let ascending = match given.get("direction").map(String::as_str) {
            None | Some("desc") => false,
            Some("asc") => true,
            Some(_) => return Err(ApiError::invalid("direction", "must be asc or desc")),
        };
        let size = match given.get("first") {
            None => PageSize::default(),
            Some(text) => text
                .parse::<i64>()
                .ok()
                .and_then(PageSize::new)
                .ok_or_else(|| ApiError::invalid("first", "must be an integer from 1 to 100"))?,
        };
        let after = given
            .get("after")
            .map(|text| {
                decode_cursor(text)
                    .ok_or_else(|| ApiError::invalid("after", "is not a cursor this server issued"))
            })
            .transpose()?;
        Ok(Self {
            other_resource: given.get("resource").is_some_and(|r| r != LEADS),
            after_given: after.is_some(),
            filter: ExportFilter {
                company,
                status,
                created_after: instant("created_after")?,
                created_before: instant("created_before")?,
                ascending,
                after,
                limit: size.get(),
            },
        })
    }
}

/// An export's place in the list, as an opaque cursor. It needs no signature: the list is
/// always of the caller's own company, so an altered cursor can only seek within it.
fn encode_cursor(created_at: i64, id: &ExportId) -> String {
    URL_SAFE_NO_PAD.encode(format!("{created_at}:{id}"))
}

fn decode_cursor(text: &str) -> Option<(i64, ExportId)> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (at, id) = text.split_once(':')?;
    Some((at.parse().ok()?, ExportId::parse(id).ok()?))
}
