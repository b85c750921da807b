//! The statistics resource: lead metrics over time (`/stats/time_series`).

use crate::client::{Client, Request};
use crate::error::Error;
use leads_types::stats::{MetricList, TimeSeries};
use reqwest::Method;

/// The statistics resource, from [`Client::stats`].
#[derive(Debug, Clone)]
pub struct Stats {
    client: Client,
}

impl Stats {
    pub(crate) fn new(client: Client) -> Self {
        Stats { client }
    }

    /// The metrics that can be charted (`GET /stats/time_series`).
    pub async fn list(&self) -> Result<MetricList, Error> {
        let url = self.client.url(&["stats", "time_series"]);
        self.client.send(Request::new(Method::GET, url)).await
    }

    /// One metric over a window (`GET /stats/time_series/{metric}`): points oldest first, one
    /// per period, and whole-window totals. A bad parameter is [`Error::BadRequest`] naming it.
    pub async fn retrieve(&self, params: &TimeSeriesParams) -> Result<TimeSeries, Error> {
        let mut url = self.client.url(&["stats", "time_series", &params.metric]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("account_id", &params.company_id);
            query.append_pair("from", &params.from);
            query.append_pair("to", &params.to);
            let optional = [
                ("interval", &params.interval),
                ("time_zone", &params.time_zone),
                ("product", &params.product),
                ("referrer", &params.referrer),
                ("breakdown_by", &params.breakdown_by),
            ];
            for (name, value) in optional {
                if let Some(value) = value {
                    query.append_pair(name, value);
                }
            }
        }
        self.client.send(Request::new(Method::GET, url)).await
    }
}

/// What [`Stats::retrieve`] asks for. `from` and `to` are dates (`YYYY-MM-DD`, whole days in
/// the time zone) or RFC 3339 instants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeSeriesParams {
    pub metric: String,
    pub company_id: String,
    pub from: String,
    pub to: String,
    /// `minute`, `five_minutes`, `thirty_minutes`, `hour`, `day` (the server's default),
    /// `week`, `month` or `year`.
    pub interval: Option<String>,
    /// An IANA zone; UTC when not given.
    pub time_zone: Option<String>,
    /// Only this product's leads (`none`: leads without a product).
    pub product: Option<String>,
    /// Only leads from this referrer host (`none`: without a referrer).
    pub referrer: Option<String>,
    /// `product` or `referrer`.
    pub breakdown_by: Option<String>,
}

impl TimeSeriesParams {
    pub fn new(
        metric: impl Into<String>,
        company_id: impl Into<String>,
        from: impl Into<String>,
        to: impl Into<String>,
    ) -> Self {
        TimeSeriesParams {
            metric: metric.into(),
            company_id: company_id.into(),
            from: from.into(),
            to: to.into(),
            interval: None,
            time_zone: None,
            product: None,
            referrer: None,
            breakdown_by: None,
        }
    }
}
