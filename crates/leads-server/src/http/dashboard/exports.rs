//! **Download CSV**: the leads page's filters exported through the exports route's own code
//! ([`start_export`]), a page that shows the export's progress and reloads itself (a
//! `<meta http-equiv="refresh">`, so no script is needed) until the file is ready, and then
//! starts the download.

use super::pages::Filters;
use super::session::SignedIn;
use super::{render, Chrome, PageError};
use crate::domain::{ExportId, SearchQuery};
use crate::http::error::ApiError;
use crate::http::exports::ExportFiles;
use crate::http::exports::{
    download_path, start_export, Filters as ExportFilters, EXPORT_PERMISSIONS,
};
use crate::storage::{CredentialStore, ExportRow, ExportStatus, ExportStore};
use askama::Template;
use axum::extract::rejection::{PathRejection, RawFormRejection};
use axum::extract::{Path, RawForm, State};
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::Arc;

/// How often the progress page reloads itself while the export is being written, in seconds.
pub const REFRESH_SECONDS: u32 = 1;

/// `POST /dashboard/exports`: exports the leads the page's filters show (`product`, `from`,
/// `to`, `query`, as the leads page's URL carries them) to CSV, dates in UTC as the page shows
/// them, every column the credential may read; then shows the export's progress. Starting an
/// export changes state, so **Download CSV** is a form carrying the session's CSRF token.
pub async fn create(
    State(exports): State<Arc<dyn ExportStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    signed_in: SignedIn,
    form: Result<RawForm, RawFormRejection>,
) -> Result<Response, Response> {
    let (company, chrome) = signed_in.acting().map_err(IntoResponse::into_response)?;
    let fail = |e: ApiError| PageError::from(e).within(&chrome).into_response();
    let body = form.map(|RawForm(bytes)| bytes).unwrap_or_default();
    let text = std::str::from_utf8(&body).unwrap_or("");
    let sent = form_urlencoded::parse(text.as_bytes())
        .find(|(key, _)| key == "csrf_token")
        .map(|(_, value)| value.into_owned());
    signed_in
        .check_csrf(sent.as_deref())
        .map_err(IntoResponse::into_response)?;
    let filters = Filters::parse(text);
    if filters.has_errors() {
        // The page shows what is wrong beside the date it concerns.
        return Ok(Redirect::to(&filters.typed_href()).into_response());
    }
    // A search the list would refuse is refused here too, before any export is recorded.
    if let Some(query) = filters.query() {
        SearchQuery::parse(&query).map_err(|why| fail(ApiError::invalid("query", why)))?;
    }
    let (created_after, created_before) = filters.bounds_millis();
    let row = start_export(
        exports.as_ref(),
        credentials.as_ref(),
        &signed_in.credential,
        company,
        Vec::new(),
        ExportFilters {
            product_ids: filters.product_ids(),
            created_after: Some(created_after),
            created_before: Some(created_before),
            query: filters.query(),
            email: None,
        },
        chrono_tz::Tz::UTC,
    )
    .await
    .map_err(fail)?;
    Ok(Redirect::to(&format!("/dashboard/exports/{}", row.id)).into_response())
}

#[derive(Template)]
#[template(path = "dashboard/export.html")]
struct ExportPage {
    chrome: Chrome,
    id: String,
    status: &'static str,
    progress: i32,
    /// Seconds until the page reloads itself, while the file is being written.
    refresh: Option<u32>,
    /// The download link, once the file is ready.
    download: Option<String>,
    rows: Option<i64>,
    failure: Option<String>,
}

/// `GET /dashboard/exports/{id}`: an export of the session's company, its progress, and once it
/// is `completed` a fresh download link that the page follows at once. Another company's export
/// is a 404, whatever id the URL names.
pub async fn show(
    State(exports): State<Arc<dyn ExportStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    State(files): State<Arc<ExportFiles>>,
    signed_in: SignedIn,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Response> {
    let (company, chrome) = signed_in.acting().map_err(IntoResponse::into_response)?;
    let fail = |e: ApiError| PageError::from(e).within(&chrome).into_response();
    let no_such_export = || fail(ApiError::not_found("No such export."));
    let Ok(Path(id)) = id else {
        return Err(no_such_export());
    };
    let id = ExportId::parse(&id).map_err(|why| fail(ApiError::invalid("id", why)))?;
    signed_in
        .credential
        .authorize(credentials.as_ref(), &company, &EXPORT_PERMISSIONS)
        .await
        .map_err(|e| fail(e.into()))?;
    let row = exports
        .find_export(company, id)
        .await
        .map_err(|e| fail(e.into()))?
        .ok_or_else(no_such_export)?;
    render(&page(&files, chrome.clone(), &row)).map_err(|e| e.within(&chrome).into_response())
}

fn page(files: &ExportFiles, chrome: Chrome, row: &ExportRow) -> ExportPage {
    let working = matches!(row.status, ExportStatus::Pending | ExportStatus::Processing);
    let completed = row.status == ExportStatus::Completed;
    ExportPage {
        chrome,
        id: row.id.as_str().to_owned(),
        status: match row.status {
            ExportStatus::Pending => "Waiting to start",
            ExportStatus::Processing => "Writing the file",
            ExportStatus::Completed => "Ready",
            ExportStatus::Failed => "Failed",
            ExportStatus::Expired => "Expired",
        },
        progress: row.progress_percent.clamp(0, 100),
        refresh: working.then_some(REFRESH_SECONDS),
        download: completed.then(|| download_path(files, row)),
        rows: row.row_count,
        failure: (row.status == ExportStatus::Failed).then(|| {
            row.failure_reason
                .clone()
                .unwrap_or_else(|| "The export failed.".to_owned())
        }),
    }
}
