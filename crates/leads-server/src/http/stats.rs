//! `/api/v1/stats/time_series`: lead statistics, as Whop's statistics resource shapes them.
//!
//! The catalog (`GET /stats/time_series`) and one metric over a window
//! (`GET /stats/time_series/{metric}`), with the parameter names of the official Python SDK
//! 2.6.0 (`client.stats.time_series.retrieve(metric, from_=..., to=..., account_id=...)`).
//! `company_id` is accepted for `account_id`, and `referrer` (a filter and a breakdown) is this
//! product's own property.

use super::error::ApiError;
use super::json;
use super::leads::READ_PERMISSIONS;
use crate::auth::Credential;
use crate::domain::stats::{self as grid, Bound, Interval, Metric, Property, WindowError};
use crate::domain::{CompanyId, ProductId};
use crate::storage::stats::{plan, CountQuery, GroupBy, StatsStore};
use crate::storage::CredentialStore;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use chrono_tz::Tz;
use leads_types::stats::{
    Breakdown, Metric as MetricEntry, MetricList, Point, TimeSeries, TimeSeriesData, Total,
};
use leads_types::ErrorBody;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The name a breakdown gives leads without a product or without a referrer, and the filter
/// value that selects them.
pub const NONE: &str = "none";

/// List the metrics that can be charted.
///
/// Each has a `key` for `GET /stats/time_series/{metric}`, a `unit` (`count` or `percent`) and
/// the `properties` it can be filtered (`product=`, `referrer=`) or broken down
/// (`breakdown_by=`) by.
#[utoipa::path(
    get,
    path = "/stats/time_series",
    tag = "stats",
    operation_id = "listTimeSeries",
    responses(
        (status = 200, description = "The metric catalog", body = MetricList),
        (status = 401, description = "No credential, or an unknown, revoked or expired one", body = ErrorBody),
        (status = 429, description = "Too many requests of this operation with this credential", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"),
                    ("Retry-After-Ms" = u64, description = "Milliseconds to wait before retrying"))),
    )
)]
pub async fn list(_credential: Credential) -> Result<Response, ApiError> {
    let properties: Vec<String> = Property::ALL.iter().map(|p| p.name().to_owned()).collect();
    json(&MetricList {
        data: Metric::ALL
            .iter()
            .map(|m| MetricEntry {
                key: m.key().to_owned(),
                name: m.name().to_owned(),
                description: m.description().to_owned(),
                unit: m.unit().to_owned(),
                properties: properties.clone(),
            })
            .collect(),
    })
}

/// Retrieve a lead metric as a series of points over a window.
///
/// Points run oldest first, one per period of `interval` in `time_zone` (periods without leads
/// included), each stamped with the unix second its period starts; the first may start before
/// `from`, but counts only what lies in the window. `totals` hold whole-window values: a rate
/// is converted over new leads of the whole window, never an average of the points. With
/// `breakdown_by`, each point lists the property values that had leads in its period.
#[utoipa::path(
    get,
    path = "/stats/time_series/{metric}",
    tag = "stats",
    operation_id = "retrieveTimeSeries",
    params(
        ("metric" = String, Path, description = "new_leads, converted_leads or lead_conversion_rate.", example = "new_leads"),
        ("account_id" = Option<String>, Query, description = "The company whose leads to count (the Python SDK's name); this or company_id is required. Any id of 1 to 255 characters without control characters is accepted; one that names no company is answered like any unknown company.", min_length = 1, max_length = 255),
        ("company_id" = Option<String>, Query, description = "The same, by the name the leads list uses.", min_length = 1, max_length = 255),
        ("from" = String, Query, description = "Start of the window, included: a date (YYYY-MM-DD), the start of that day in time_zone, or an RFC 3339 instant used exactly.", example = "2024-01-01"),
        ("to" = String, Query, description = "End of the window: a date (YYYY-MM-DD), the end of that day in time_zone (included), or an RFC 3339 instant used exactly (excluded).", example = "2024-01-31"),
        ("interval" = Option<String>, Query, description = "Period width: minute, five_minutes, thirty_minutes, hour, day (default), week (from Monday), month or year."),
        ("time_zone" = Option<String>, Query, description = "IANA time zone the periods follow; UTC by default.", example = "America/New_York"),
        ("product" = Option<String>, Query, description = "Only leads of this product id, or `none` for leads without a product."),
        ("referrer" = Option<String>, Query, description = "Only leads whose referrer URL has this host (case-insensitive), or `none` for leads without a referrer. An extension of this server."),
        ("breakdown_by" = Option<String>, Query, description = "`product` (named by product id) or `referrer` (named by host); `none` names leads without one."),
    ),
    responses(
        (status = 200, description = "The series", body = TimeSeries),
        (status = 400, description = "A parameter is missing or invalid (an unknown metric, interval or time zone, a bad date, `to` before `from`, more than 10,000 points); `param` names it", body = ErrorBody),
        (status = 401, description = "No credential, or an unknown, revoked or expired one", body = ErrorBody),
        (status = 403, description = "The credential may not act for this company, or lacks a permission", body = ErrorBody),
        (status = 429, description = "Too many requests of this operation with this credential", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"),
                    ("Retry-After-Ms" = u64, description = "Milliseconds to wait before retrying"))),
        (status = 503, description = "The database is unavailable or the request timed out", body = ErrorBody),
    )
)]
pub async fn retrieve(
    State(credentials): State<Arc<dyn CredentialStore>>,
    State(stats): State<Arc<dyn StatsStore>>,
    credential: Credential,
    metric: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let metric = metric
        .ok()
        .and_then(|Path(key)| Metric::parse(&key))
        .ok_or_else(|| {
            ApiError::invalid(
                "metric",
                "must be one of new_leads, converted_leads, lead_conversion_rate",
            )
        })?;
    let request = SeriesRequest::parse(query.as_deref().unwrap_or(""))?;
    credential
        .authorize(credentials.as_ref(), &request.company, &READ_PERMISSIONS)
        .await?;
    let tally = Tally::count(stats.as_ref(), &request).await?;
    let points = tally
        .starts
        .iter()
        .enumerate()
        .map(|(i, start)| Point {
            timestamp: start.div_euclid(1000),
            value: metric.value(tally.periods[i].0, tally.periods[i].1),
            breakdown: request.breakdown.map(|_| {
                tally.per_period[i]
                    .iter()
                    .map(|(name, (leads, converted))| Breakdown {
                        name: name.clone(),
                        value: metric.value(*leads, *converted),
                    })
                    .collect()
            }),
        })
        .collect();
    let totals = match request.breakdown {
        None => {
            let (leads, converted) = tally.totals();
            vec![Total {
                name: metric.key().to_owned(),
                value: metric.value(leads, converted),
            }]
        }
        Some(_) => tally
            .by_name
            .into_iter()
            .map(|(name, (leads, converted))| Total {
                name,
                value: metric.value(leads, converted),
            })
            .collect(),
    };
    json(&TimeSeries {
        data: TimeSeriesData { points, totals },
    })
}

/// New and converted leads counted over a request's window: per period, and with a breakdown
/// per period and group and per group over the whole window. Every metric is a function of
/// these two counts ([`Metric::value`]), so one tally serves them all (the dashboard draws its
/// KPIs, chart and breakdowns from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Where each period starts, in milliseconds, oldest first.
    pub starts: Vec<i64>,
    /// `(new, converted)` per period.
    pub periods: Vec<(i64, i64)>,
    /// With a breakdown, `(new, converted)` per group name per period; else empty.
    pub per_period: Vec<BTreeMap<String, (i64, i64)>>,
    /// With a breakdown, `(new, converted)` per group name over the whole window; else empty.
    /// Leads without the property are named [`NONE`].
    pub by_name: BTreeMap<String, (i64, i64)>,
}

impl Tally {
    /// Counts the request's window in the stats store. The caller has authorized the request.
    pub async fn count(stats: &dyn StatsStore, request: &SeriesRequest) -> Result<Self, ApiError> {
        let grid = grid::grid(request.from, request.to, request.interval, request.zone)
            .map_err(window_error)?;
        let rows = stats
            .lead_counts(CountQuery {
                company: request.company.clone(),
                spans: plan(&grid.segments),
                product: request.product.clone(),
                referrer_host: request.referrer_host.clone(),
                group_by: request.breakdown.map(|p| match p {
                    Property::Product => GroupBy::Product,
                    Property::Referrer => GroupBy::ReferrerHost,
                }),
            })
            .await?;

        let mut periods = vec![(0i64, 0i64); grid.starts.len()];
        let mut groups: HashMap<(usize, String), (i64, i64)> = HashMap::new();
        for row in rows {
            let Some(period) = grid.period_of(row.at) else {
                continue;
            };
            periods[period].0 += row.leads;
            periods[period].1 += row.converted;
            if request.breakdown.is_some() {
                let entry = groups.entry((period, row.key)).or_default();
                entry.0 += row.leads;
                entry.1 += row.converted;
            }
        }
        let mut per_period: Vec<BTreeMap<String, (i64, i64)>> = vec![
            BTreeMap::new();
            if request.breakdown.is_some() {
                grid.starts.len()
            } else {
                0
            }
        ];
        let mut by_name: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for ((period, key), (leads, converted)) in groups {
            if leads == 0 {
                continue;
            }
            let name = if key.is_empty() { NONE.to_owned() } else { key };
            let total = by_name.entry(name.clone()).or_default();
            total.0 += leads;
            total.1 += converted;
            per_period[period].insert(name, (leads, converted));
        }
        Ok(Self {
            starts: grid.starts,
            periods,
            per_period,
            by_name,
        })
    }

    /// `(new, converted)` over the whole window.
    pub fn totals(&self) -> (i64, i64) {
        self.periods
            .iter()
            .fold((0, 0), |(l, c), (pl, pc)| (l + pl, c + pc))
    }
}

fn window_error(error: WindowError) -> ApiError {
    match error {
        WindowError::Reversed => ApiError::invalid("to", "must not be before from"),
        WindowError::TooManyPoints => ApiError::invalid(
            "interval",
            format_args!(
                "makes more than {} points over this window; choose a wider interval or a shorter window",
                grid::MAX_POINTS
            ),
        ),
        WindowError::OutOfRange(param) => ApiError::invalid(param, "is out of range"),
    }
}

/// A validated `GET /stats/time_series/{metric}` query.
#[derive(Debug, Clone)]
pub struct SeriesRequest {
    pub company: CompanyId,
    /// The window, `[from, to)` in milliseconds.
    pub from: i64,
    pub to: i64,
    pub interval: Interval,
    pub zone: Tz,
    /// A product key: a product id, or `""` for leads without one.
    pub product: Option<String>,
    /// A referrer host key, or `""` for leads without a referrer.
    pub referrer_host: Option<String>,
    pub breakdown: Option<Property>,
}

impl SeriesRequest {
    /// Parses and validates a query string of `GET /stats/time_series/{metric}`; each failure
    /// is a 400 naming its parameter.
    pub fn parse(query: &str) -> Result<Self, ApiError> {
        let mut given: HashMap<&'static str, String> = HashMap::new();
        let mut company: Option<(&'static str, String)> = None;
        for (key, value) in super::query::query_pairs(query)? {
            // An empty value means "not given", as for the list.
            if value.is_empty() {
                continue;
            }
            let name = match key.as_ref() {
                name @ ("account_id" | "company_id") => {
                    let name = if name == "account_id" {
                        "account_id"
                    } else {
                        "company_id"
                    };
                    match &company {
                        Some((_, earlier)) if *earlier != value => {
                            return Err(ApiError::invalid(
                                name,
                                "names a different company than company_id/account_id given before",
                            ))
                        }
                        _ => company = Some((name, value.into_owned())),
                    }
                    continue;
                }
                "from" => "from",
                "to" => "to",
                "interval" => "interval",
                "time_zone" => "time_zone",
                "product" => "product",
                "referrer" => "referrer",
                "breakdown_by" => "breakdown_by",
                _ => continue, // Parameters of other metrics and API versions are ignored.
            };
            if given.insert(name, value.into_owned()).is_some() {
                return Err(ApiError::invalid(name, "was given more than once"));
            }
        }
        let (company_param, company_text) =
            company.ok_or_else(|| ApiError::missing("account_id"))?;
        let company =
            CompanyId::parse(&company_text).map_err(|why| ApiError::invalid(company_param, why))?;
        let bound = |name: &'static str| -> Result<Bound, ApiError> {
            let text = given.get(name).ok_or_else(|| ApiError::missing(name))?;
            Bound::parse(text).ok_or_else(|| {
                ApiError::invalid(
                    name,
                    "must be a date (YYYY-MM-DD) or an RFC 3339 date-time such as 2024-01-01T00:00:00Z",
                )
            })
        };
        let (from, to) = (bound("from")?, bound("to")?);
        let interval = match given.get("interval") {
            None => Interval::Day,
            Some(text) => Interval::parse(text).ok_or_else(|| {
                ApiError::invalid(
                    "interval",
                    "must be one of minute, five_minutes, thirty_minutes, hour, day, week, month, year",
                )
            })?,
        };
        let zone = match given.get("time_zone") {
            None => Tz::UTC,
            Some(text) => text.parse::<Tz>().map_err(|_| {
                ApiError::invalid(
                    "time_zone",
                    "must be an IANA time zone such as America/New_York",
                )
            })?,
        };
        let product = match given.get("product").map(String::as_str) {
            None => None,
            Some(NONE) => Some(String::new()),
            Some(text) => Some(
                ProductId::parse(text)
                    .map_err(|why| ApiError::invalid("product", why))?
                    .into_string(),
            ),
        };
        let referrer_host = given.get("referrer").map(|text| {
            let host = text.trim().to_lowercase();
            if host == NONE {
                String::new()
            } else {
                host
            }
        });
        let breakdown = given
            .get("breakdown_by")
            .map(|text| {
                Property::parse(text)
                    .ok_or_else(|| ApiError::invalid("breakdown_by", "must be product or referrer"))
            })
            .transpose()?;
        let (from, to) = grid::window(from, to, zone).map_err(window_error)?;
        Ok(Self {
            company,
            from,
            to,
            interval,
            zone,
            product,
            referrer_host,
            breakdown,
        })
    }
}
