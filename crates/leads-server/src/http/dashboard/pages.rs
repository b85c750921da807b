//! The leads page and a lead's page, with its edit form.

use super::charts;
use super::session::SignedIn;
use super::{render, render_with, Chrome, PageError};
use crate::domain::stats::Metric;
use crate::domain::{CompanyId, Permission};
use crate::http::error::ApiError;
use crate::http::leads::{change_lead, find_lead, lead_id, list_page};
use crate::http::query::ListRequest;
use crate::http::stats::{SeriesRequest, Tally, NONE};
use crate::pagination::CursorCodec;
use crate::storage::{CredentialStore, DirectoryStore, LeadStore, StatsStore};
use askama::Template;
use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{Datelike, Days, NaiveDate, Utc};
use leads_types::{Lead, UpdateLead};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::Arc;

/// Rows of the leads table per page.
pub const PAGE_SIZE: usize = 50;
/// The window shown when none is chosen: the last 30 days, today included.
const DEFAULT_WINDOW_DAYS: u64 = 30;
/// Windows longer than this many days are charted per week rather than per day.
const DAILY_UP_TO_DAYS: i64 = 90;
/// Bars of a breakdown chart at most: the groups with the most new leads.
const BREAKDOWN_BARS: usize = 8;

/// The leads page's filters as the URL carries them (`product`, `from`, `to`, `query`) and the
/// list's cursor (`after` or `before`). What was typed is kept to show it again.
#[derive(Debug, Default)]
pub(super) struct Filters {
    product: String,
    from_text: String,
    to_text: String,
    query: String,
    after: Option<String>,
    before: Option<String>,
    from: NaiveDate,
    to: NaiveDate,
    from_error: Option<String>,
    to_error: Option<String>,
}

impl Filters {
    /// The filters of a query string (or a form's body, which has the same form). Unknown keys
    /// and empty values are ignored; a date that cannot be read is kept with its error, and the
    /// window falls back to the default.
    pub(super) fn parse(query: &str) -> Self {
        let mut given: HashMap<String, String> = HashMap::new();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            if !value.is_empty() {
                given.insert(key.into_owned(), value.into_owned());
            }
        }
        let today = Utc::now().date_naive();
        let default_from = today - Days::new(DEFAULT_WINDOW_DAYS - 1);
        let mut filters = Filters {
            product: given.remove("product").unwrap_or_default(),
            query: given.remove("query").unwrap_or_default(),
            after: given.remove("after"),
            before: given.remove("before"),
            from: default_from,
            to: today,
            ..Filters::default()
        };
        // Dates the list's RFC 3339 bounds can carry, a day either side included.
        let date = |text: &str| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .filter(|d| (1970..=9998).contains(&d.year()))
        };
        const DATE_ERROR: &str = "Enter a date from 1970-01-01 to 9998-12-31, as YYYY-MM-DD.";
        if let Some(text) = given.remove("from") {
            match date(&text) {
                Some(from) => filters.from = from,
                None => filters.from_error = Some(DATE_ERROR.into()),
            }
            filters.from_text = text;
        }
        if let Some(text) = given.remove("to") {
            match date(&text) {
                Some(to) => filters.to = to,
                None => filters.to_error = Some(DATE_ERROR.into()),
            }
            filters.to_text = text;
        }
        if filters.to < filters.from && filters.to_error.is_none() {
            filters.to_error = Some("Must not be before From.".into());
            filters.to = filters.from;
        }
        if filters.from_text.is_empty() {
            filters.from_text = filters.from.to_string();
        }
        if filters.to_text.is_empty() {
            filters.to_text = filters.to.to_string();
        }
        filters
    }

    /// Whether a date was refused (the page shows why beside it).
    pub(super) fn has_errors(&self) -> bool {
        self.from_error.is_some() || self.to_error.is_some()
    }

    /// The window as the list's exclusive bounds, in milliseconds (see [`list_bounds`]).
    pub(super) fn bounds_millis(&self) -> (i64, i64) {
        window_millis(self.from, self.to)
    }

    /// The chosen product as the list's `product_ids`.
    pub(super) fn product_ids(&self) -> Vec<String> {
        (!self.product.is_empty())
            .then(|| self.product.clone())
            .into_iter()
            .collect()
    }

    /// The search text, if any.
    pub(super) fn query(&self) -> Option<String> {
        (!self.query.is_empty()).then(|| self.query.clone())
    }

    /// The days of the window.
    fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    fn weekly(&self) -> bool {
        self.days() > DAILY_UP_TO_DAYS
    }

    /// This view's URL with the dates as they were typed, so the page shows each refused one
    /// beside its field.
    pub(super) fn typed_href(&self) -> String {
        self.url(&self.from_text, &self.to_text, None)
    }

    /// This view's URL with `extra` (a cursor) added: filters stay in the URL so a view can be
    /// bookmarked and shared.
    fn href(&self, extra: Option<(&str, &str)>) -> String {
        self.url(&self.from.to_string(), &self.to.to_string(), extra)
    }

    fn url(&self, from: &str, to: &str, extra: Option<(&str, &str)>) -> String {
        let mut url = form_urlencoded::Serializer::new(String::new());
        if !self.product.is_empty() {
            url.append_pair("product", &self.product);
        }
        url.append_pair("from", from);
        url.append_pair("to", to);
        if !self.query.is_empty() {
            url.append_pair("query", &self.query);
        }
        if let Some((key, value)) = extra {
            url.append_pair(key, value);
        }
        format!("/dashboard?{}", url.finish())
    }

    /// The `GET /api/v1/leads` query string this view's table is the page of.
    fn list_query(&self, company: &CompanyId) -> String {
        let mut url = form_urlencoded::Serializer::new(String::new());
        url.append_pair("company_id", company.as_str());
        match (&self.after, &self.before) {
            (_, Some(before)) => {
                url.append_pair("last", &PAGE_SIZE.to_string());
                url.append_pair("before", before);
            }
            (Some(after), None) => {
                url.append_pair("first", &PAGE_SIZE.to_string());
                url.append_pair("after", after);
            }
            (None, None) => {
                url.append_pair("first", &PAGE_SIZE.to_string());
            }
        }
        let (after, before) = list_bounds(self.from, self.to);
        url.append_pair("created_after", &after);
        url.append_pair("created_before", &before);
        if !self.product.is_empty() {
            url.append_pair("product_ids", &self.product);
        }
        if !self.query.is_empty() {
            url.append_pair("query", &self.query);
        }
        url.finish()
    }

    /// The `GET /api/v1/stats/time_series/{metric}` query string of this view's window, broken
    /// down by `breakdown_by`.
    fn stats_query(&self, company: &CompanyId, breakdown_by: &str) -> String {
        let mut url = form_urlencoded::Serializer::new(String::new());
        url.append_pair("account_id", company.as_str());
        url.append_pair("from", &self.from.to_string());
        url.append_pair("to", &self.to.to_string());
        url.append_pair("interval", if self.weekly() { "week" } else { "day" });
        url.append_pair("breakdown_by", breakdown_by);
        if !self.product.is_empty() {
            url.append_pair("product", &self.product);
        }
        url.finish()
    }
}

/// The list's strict bounds for the days `from..=to` in UTC, as RFC 3339: from a millisecond
/// before `from` starts to the moment after `to` ends. The statistics count the same days.
pub fn list_bounds(from: NaiveDate, to: NaiveDate) -> (String, String) {
    let (after, before) = window_millis(from, to);
    let format = |millis: i64| {
        chrono::DateTime::<Utc>::from_timestamp_millis(millis)
            .expect("a date of 1970 to 9998")
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    };
    (format(after), format(before))
}

/// [`list_bounds`] in milliseconds since the Unix epoch.
fn window_millis(from: NaiveDate, to: NaiveDate) -> (i64, i64) {
    let midnight = |day: NaiveDate| {
        day.and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp_millis()
    };
    (midnight(from) - 1, midnight(to + Days::new(1)))
}

struct ProductOption {
    id: String,
    title: String,
    selected: bool,
}

/// One row of a breakdown table.
struct BreakdownRow {
    name: String,
    new_leads: i64,
    converted: i64,
    rate: String,
}

/// One row of the leads table.
struct TableRow {
    id: String,
    created_at: String,
    user: String,
    email: String,
    product: String,
    referrer: String,
    member: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard/leads.html")]
struct LeadsPage {
    chrome: Chrome,
    products: Vec<ProductOption>,
    from: String,
    to: String,
    query: String,
    /// The filters **Download CSV** exports: the window shown, and the product.
    export_product: String,
    export_from: String,
    export_to: String,
    from_error: Option<String>,
    to_error: Option<String>,
    new_leads: i64,
    converted: i64,
    rate: String,
    period: &'static str,
    series_chart: String,
    product_chart: String,
    product_rows: Vec<BreakdownRow>,
    referrer_chart: String,
    referrer_rows: Vec<BreakdownRow>,
    rows: Vec<TableRow>,
    show_email: bool,
    next_href: Option<String>,
    prev_href: Option<String>,
}

/// `GET /dashboard`: KPIs, the chart, breakdowns and the list, for the URL's filters.
pub async fn leads(
    State(leads): State<Arc<dyn LeadStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    State(directory): State<Arc<dyn DirectoryStore>>,
    State(stats): State<Arc<dyn StatsStore>>,
    State(cursors): State<CursorCodec>,
    signed_in: SignedIn,
    RawQuery(query): RawQuery,
) -> Result<Response, Response> {
    let (company, chrome) = signed_in.acting().map_err(IntoResponse::into_response)?;
    let fail = |e: ApiError| PageError::from(e).within(&chrome).into_response();
    let filters = Filters::parse(query.as_deref().unwrap_or(""));
    let credential = &signed_in.credential;

    let request = ListRequest::parse(&filters.list_query(&company), &cursors).map_err(fail)?;
    let (page, access) = list_page(
        leads.as_ref(),
        credentials.as_ref(),
        &cursors,
        credential,
        request,
    )
    .await
    .map_err(fail)?;

    let by_product =
        SeriesRequest::parse(&filters.stats_query(&company, "product")).map_err(fail)?;
    let by_referrer =
        SeriesRequest::parse(&filters.stats_query(&company, "referrer")).map_err(fail)?;
    let products = directory
        .list_products(company.clone())
        .await
        .map_err(|e| fail(e.into()))?;
    let titles: HashMap<&str, &str> = products
        .iter()
        .map(|p| (p.id.as_str(), p.title.as_str()))
        .collect();
    let products_tally = Tally::count(stats.as_ref(), &by_product)
        .await
        .map_err(fail)?;
    let referrers_tally = Tally::count(stats.as_ref(), &by_referrer)
        .await
        .map_err(fail)?;

    let (new_leads, converted) = products_tally.totals();
    let period = if filters.weekly() { "week" } else { "day" };
    let series_chart = charts::series(
        &format!(
            "Line chart of new and converted leads per {period} from {} to {}: {new_leads} new, {converted} converted",
            filters.from, filters.to
        ),
        &products_tally,
    )
    .map_err(fail)?;
    let product_name = |name: &str| match name {
        NONE => "No product".to_owned(),
        id => titles
            .get(id)
            .map_or_else(|| id.to_owned(), |t| (*t).to_owned()),
    };
    let referrer_name = |name: &str| match name {
        NONE => "No referrer".to_owned(),
        host => host.to_owned(),
    };
    let product_rows = breakdown_rows(&products_tally, product_name);
    let referrer_rows = breakdown_rows(&referrers_tally, referrer_name);
    let bars = |rows: &[BreakdownRow]| -> Vec<charts::Bar> {
        rows.iter()
            .map(|r| charts::Bar {
                name: r.name.clone(),
                new_leads: r.new_leads,
            })
            .collect()
    };
    let product_chart =
        charts::bars("New leads by product", &bars(&product_rows), BREAKDOWN_BARS).map_err(fail)?;
    let referrer_chart = charts::bars(
        "New leads by referrer",
        &bars(&referrer_rows),
        BREAKDOWN_BARS,
    )
    .map_err(fail)?;

    let show_email = access.can(Permission::MemberEmailRead);
    let next_href = page
        .page_info
        .has_next_page
        .then_some(page.page_info.end_cursor.as_deref())
        .flatten()
        .map(|cursor| filters.href(Some(("after", cursor))));
    let prev_href = page
        .page_info
        .has_previous_page
        .then_some(page.page_info.start_cursor.as_deref())
        .flatten()
        .map(|cursor| filters.href(Some(("before", cursor))));
    let rows = page.data.iter().map(table_row).collect();
    render(&LeadsPage {
        products: products
            .iter()
            .map(|p| ProductOption {
                id: p.id.clone(),
                title: p.title.clone(),
                selected: p.id == filters.product,
            })
            .collect(),
        from: filters.from_text.clone(),
        to: filters.to_text.clone(),
        query: filters.query.clone(),
        export_product: filters.product.clone(),
        export_from: filters.from.to_string(),
        export_to: filters.to.to_string(),
        from_error: filters.from_error.clone(),
        to_error: filters.to_error.clone(),
        new_leads,
        converted,
        rate: rate(new_leads, converted),
        period,
        series_chart,
        product_chart,
        product_rows,
        referrer_chart,
        referrer_rows,
        rows,
        show_email,
        next_href,
        prev_href,
        chrome: chrome.clone(),
    })
    .map_err(|e| e.within(&chrome).into_response())
}

/// A conversion rate as the statistics API computes it, to one decimal, or a dash for none.
fn rate(new_leads: i64, converted: i64) -> String {
    Metric::LeadConversionRate
        .value(new_leads, converted)
        .map_or_else(|| "–".to_owned(), |r| format!("{r:.1}%"))
}

/// A tally's groups, most new leads first, named for people.
fn breakdown_rows(tally: &Tally, name: impl Fn(&str) -> String) -> Vec<BreakdownRow> {
    let mut rows: Vec<BreakdownRow> = tally
        .by_name
        .iter()
        .map(|(key, (new_leads, converted))| BreakdownRow {
            name: name(key),
            new_leads: *new_leads,
            converted: *converted,
            rate: rate(*new_leads, *converted),
        })
        .collect();
    rows.sort_by(|a, b| b.new_leads.cmp(&a.new_leads).then(a.name.cmp(&b.name)));
    rows
}

fn table_row(lead: &Lead) -> TableRow {
    TableRow {
        id: lead.id.clone(),
        created_at: lead.created_at.to_string(),
        user: match &lead.user.name {
            Some(name) => format!("{name} ({})", lead.user.username),
            None => lead.user.username.clone(),
        },
        email: lead.user.email.clone().unwrap_or_default(),
        product: lead
            .product
            .as_ref()
            .map(|p| p.title.clone())
            .unwrap_or_default(),
        referrer: lead.referrer.clone().unwrap_or_default(),
        member: if lead.member.is_some() {
            "Member"
        } else {
            "Not yet"
        },
    }
}

/// What the edit form shows: the text as typed, and an error beside each field it concerns.
#[derive(Debug, Default)]
struct EditForm {
    referrer: String,
    metadata: String,
    referrer_error: Option<String>,
    metadata_error: Option<String>,
    other_error: Option<String>,
}

#[derive(Template)]
#[template(path = "dashboard/lead.html")]
struct LeadPage {
    chrome: Chrome,
    lead: Lead,
    metadata: String,
    saved: bool,
    form: EditForm,
}

/// Metadata as indented JSON, for reading and editing; empty for none.
fn pretty(metadata: Option<&RawValue>) -> String {
    metadata
        .and_then(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).ok())
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_default()
}

fn lead_page(chrome: Chrome, lead: Lead, saved: bool, form: Option<EditForm>) -> LeadPage {
    let metadata = pretty(lead.metadata.as_deref());
    let form = form.unwrap_or_else(|| EditForm {
        referrer: lead.referrer.clone().unwrap_or_default(),
        metadata: metadata.clone(),
        ..EditForm::default()
    });
    LeadPage {
        chrome,
        lead,
        metadata,
        saved,
        form,
    }
}

/// `GET /dashboard/leads/{id}`: every field of a lead of the session's company, and the form.
/// A lead of another company is a 404, whatever id the URL names.
pub async fn lead(
    State(leads): State<Arc<dyn LeadStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    signed_in: SignedIn,
    id: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, Response> {
    let (company, chrome) = signed_in.acting().map_err(IntoResponse::into_response)?;
    let fail = |e: ApiError| PageError::from(e).within(&chrome).into_response();
    let id = lead_id(id).map_err(fail)?;
    let (lead, _) = find_lead(
        leads.as_ref(),
        credentials.as_ref(),
        &signed_in.credential,
        &id,
        Some(&company),
    )
    .await
    .map_err(fail)?;
    let saved = query.as_deref() == Some("saved=1");
    render(&lead_page(chrome.clone(), lead, saved, None))
        .map_err(|e| e.within(&chrome).into_response())
}

/// The edit form: text fields, so an empty one means `null` (clears the field).
#[derive(Deserialize)]
pub struct EditFields {
    csrf_token: Option<String>,
    #[serde(default)]
    referrer: String,
    #[serde(default)]
    metadata: String,
}

/// `POST /dashboard/leads/{id}`: changes `referrer` and `metadata` as `PATCH /leads/{id}` does,
/// with the same validation; an error is shown beside its field with the typed text kept.
pub async fn update_lead(
    State(leads): State<Arc<dyn LeadStore>>,
    State(credentials): State<Arc<dyn CredentialStore>>,
    signed_in: SignedIn,
    id: Result<Path<String>, PathRejection>,
    form: Result<Form<EditFields>, FormRejection>,
) -> Result<Response, Response> {
    let (company, chrome) = signed_in.acting().map_err(IntoResponse::into_response)?;
    let fail = |e: ApiError| PageError::from(e).within(&chrome).into_response();
    let fields = form.ok().map(|Form(f)| f);
    signed_in
        .check_csrf(fields.as_ref().and_then(|f| f.csrf_token.as_deref()))
        .map_err(IntoResponse::into_response)?;
    let Some(fields) = fields else {
        return Err(fail(ApiError::invalid("body", "must be a form")));
    };
    let id = lead_id(id).map_err(fail)?;
    let mut form = EditForm {
        referrer: fields.referrer.clone(),
        metadata: fields.metadata.clone(),
        ..EditForm::default()
    };
    let referrer = fields.referrer.trim();
    let metadata = fields.metadata.trim();
    let body = match metadata_value(metadata) {
        Ok(metadata) => Some(UpdateLead {
            metadata: Some(metadata),
            referrer: Some((!referrer.is_empty()).then(|| referrer.to_owned())),
        }),
        Err(why) => {
            form.metadata_error = Some(why);
            None
        }
    };
    let outcome = match body {
        Some(body) => change_lead(
            leads.as_ref(),
            credentials.as_ref(),
            &signed_in.credential,
            &id,
            body,
            Some(&company),
        )
        .await
        .map(|_| ()),
        None => Ok(()),
    };
    match outcome {
        Ok(()) if form.metadata_error.is_none() => {
            return Ok(Redirect::to(&format!("/dashboard/leads/{id}?saved=1")).into_response())
        }
        Ok(()) => {}
        Err(error) if error.status == StatusCode::BAD_REQUEST => match error.param.as_deref() {
            Some("referrer") => form.referrer_error = Some(error.message),
            Some("metadata") => form.metadata_error = Some(error.message),
            _ => form.other_error = Some(error.message),
        },
        Err(error) => return Err(fail(error)),
    }
    // The form again, with what was typed and each error beside its field.
    show_form(
        (leads.as_ref(), credentials.as_ref()),
        &signed_in,
        &company,
        &id,
        form,
        chrome,
    )
    .await
}

/// Metadata as the form's text gives it: empty clears it, anything else must be JSON (whose
/// shape the PATCH validation then judges).
fn metadata_value(text: &str) -> Result<Option<Box<RawValue>>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    RawValue::from_string(text.to_owned())
        .map(Some)
        .map_err(|e| format!("Invalid parameter metadata: is not valid JSON ({e})."))
}

/// The lead's page again, with the form as it was sent and its errors (400).
async fn show_form(
    (leads, credentials): (&dyn LeadStore, &dyn CredentialStore),
    signed_in: &SignedIn,
    company: &CompanyId,
    id: &crate::domain::LeadId,
    form: EditForm,
    chrome: Chrome,
) -> Result<Response, Response> {
    let fail = |e: ApiError| PageError::from(e).within(&chrome).into_response();
    let (lead, _) = find_lead(leads, credentials, &signed_in.credential, id, Some(company))
        .await
        .map_err(fail)?;
    render_with(
        StatusCode::BAD_REQUEST,
        &lead_page(chrome.clone(), lead, false, Some(form)),
    )
    .map_err(|e| e.within(&chrome).into_response())
}
