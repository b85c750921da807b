//! Wire types of `/stats/time_series`: Whop's statistics resource, for lead metrics.
//!
//! Shapes follow the official Python SDK 2.6.0 (`whop_sdk/stats/time_series/types/`): a metric
//! catalog, and a series of points (oldest first, one per period) with whole-window totals.

use serde::{Deserialize, Serialize};

/// `GET /stats/time_series`: the metrics that can be charted.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricList {
    pub data: Vec<Metric>,
}

/// One metric of the catalog.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metric {
    /// What to put in `GET /stats/time_series/{metric}`, for example `new_leads`.
    pub key: String,
    /// Human-readable name, for example `New leads`.
    pub name: String,
    pub description: String,
    /// `count` (an integer) or `percent` (a number where 1.6 means 1.6%).
    pub unit: String,
    /// The properties a series can be filtered by (`property=value`) or broken down by
    /// (`breakdown_by=property`).
    pub properties: Vec<String>,
}

/// `GET /stats/time_series/{metric}`: one metric over a window.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeSeries {
    pub data: TimeSeriesData,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeSeriesData {
    /// One entry per period, oldest first; periods without leads are included.
    pub points: Vec<Point>,
    /// Whole-window values: one named for the metric's key, or one per property value when
    /// broken down. A rate here is measured over the whole window, never averaged over points.
    pub totals: Vec<Total>,
}

/// One period of a series.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Unix timestamp (seconds) of the period's start.
    pub timestamp: i64,
    /// The metric's value for the period, in its unit; `null` for a rate of a period without
    /// leads.
    pub value: Option<f64>,
    /// Present only when broken down: one entry per property value seen in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<Vec<Breakdown>>,
}

/// One property value's share of a period.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    /// The property value: a product id (or `none`), or a referrer host (or `none`).
    pub name: String,
    pub value: Option<f64>,
}

/// A whole-window value.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Total {
    /// The property value this total is for, or the metric's key when not broken down.
    pub name: String,
    pub value: Option<f64>,
}
