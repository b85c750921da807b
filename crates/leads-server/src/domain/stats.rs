//! Lead statistics: the metrics, the intervals, and the grid of periods a window is cut into in
//! a time zone.
//!
//! Periods follow the wall clock of the time zone (IANA, through `chrono-tz`): a day is local
//! midnight to local midnight, so it lasts 23 or 25 hours across a daylight-saving change; weeks
//! start on Monday; months and years on the first day. Every zone's offset, and every change of
//! it, is a multiple of 15 minutes, so every period boundary of an interval of 15 minutes or
//! more falls on a quarter hour of UTC: what lets the stores count in quarter-hour buckets.

use super::Timestamp;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};
use chrono_tz::Tz;

/// A window holds at most this many periods (points).
pub const MAX_POINTS: usize = 10_000;

const MINUTE_MS: i64 = 60_000;

/// What can be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Leads created in each period.
    NewLeads,
    /// Leads created in each period whose user is now a member of the company: a cohort by
    /// creation time, so a conversion today raises the period the lead was created in.
    ConvertedLeads,
    /// `ConvertedLeads` divided by `NewLeads`, in percent (1.6 means 1.6%).
    LeadConversionRate,
}

impl Metric {
    pub const ALL: [Metric; 3] = [
        Metric::NewLeads,
        Metric::ConvertedLeads,
        Metric::LeadConversionRate,
    ];

    pub fn parse(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.key() == key)
    }

    pub fn key(self) -> &'static str {
        match self {
            Metric::NewLeads => "new_leads",
            Metric::ConvertedLeads => "converted_leads",
            Metric::LeadConversionRate => "lead_conversion_rate",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::NewLeads => "New leads",
            Metric::ConvertedLeads => "Converted leads",
            Metric::LeadConversionRate => "Lead conversion rate",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Metric::NewLeads => "Leads created in each period.",
            Metric::ConvertedLeads => {
                "Leads created in each period whose user is now a member of the company \
                 (a cohort by the lead's creation time)."
            }
            Metric::LeadConversionRate => {
                "Converted leads divided by new leads of each period, in percent (1.6 means \
                 1.6%); null for a period without leads."
            }
        }
    }

    /// `count` or `percent`, as Whop's catalog names units.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::NewLeads | Metric::ConvertedLeads => "count",
            Metric::LeadConversionRate => "percent",
        }
    }

    /// The metric's value over `leads` leads of which `converted` converted. A rate of no leads
    /// is `None`: there is nothing to divide.
    pub fn value(self, leads: i64, converted: i64) -> Option<f64> {
        match self {
            Metric::NewLeads => Some(leads as f64),
            Metric::ConvertedLeads => Some(converted as f64),
            Metric::LeadConversionRate => {
                (leads > 0).then(|| converted as f64 * 100.0 / leads as f64)
            }
        }
    }
}

/// What a lead metric can be filtered or broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Property {
    /// The lead's product id (`none` for leads without one).
    Product,
    /// The host of the lead's referrer URL, lowercased (`none` for leads without a referrer).
    Referrer,
}

impl Property {
    pub const ALL: [Property; 2] = [Property::Product, Property::Referrer];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Property::Product => "product",
            Property::Referrer => "referrer",
        }
    }
}

/// How wide each period is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Minute,
    FiveMinutes,
    ThirtyMinutes,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Interval {
    pub const ALL: [Interval; 8] = [
        Interval::Minute,
        Interval::FiveMinutes,
        Interval::ThirtyMinutes,
        Interval::Hour,
        Interval::Day,
        Interval::Week,
        Interval::Month,
        Interval::Year,
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Interval::Minute => "minute",
            Interval::FiveMinutes => "five_minutes",
            Interval::ThirtyMinutes => "thirty_minutes",
            Interval::Hour => "hour",
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
            Interval::Year => "year",
        }
    }

    /// The length of a sub-day interval, in milliseconds; `None` for calendar intervals.
    fn fixed_ms(self) -> Option<i64> {
        match self {
            Interval::Minute => Some(MINUTE_MS),
            Interval::FiveMinutes => Some(5 * MINUTE_MS),
            Interval::ThirtyMinutes => Some(30 * MINUTE_MS),
            Interval::Hour => Some(60 * MINUTE_MS),
            _ => None,
        }
    }
}

/// One end of a window as a client sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `YYYY-MM-DD`: the start (for `from`) or the end (for `to`) of that day in the time zone.
    Date(NaiveDate),
    /// An RFC 3339 instant, used exactly: milliseconds, rounded up when finer digits were given
    /// (the window includes `from` and excludes `to`, and leads are stored in milliseconds).
    Instant(i64),
}

impl Bound {
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() == 10 {
            return NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .map(Bound::Date);
        }
        let (ts, sub_milli) = Timestamp::parse_with_rest(text)?;
        Some(Bound::Instant(ts.as_millis() + i64::from(sub_milli)))
    }
}

/// The periods of a window: `starts[i]` is where period `i` begins on the grid (the first may
/// begin before `from`), and `segments[i]` is the part of it inside the window, `[from, to)` in
/// milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    pub starts: Vec<i64>,
    pub segments: Vec<(i64, i64)>,
}

impl Grid {
    /// The period an instant of the window falls in.
    pub fn period_of(&self, at: i64) -> Option<usize> {
        let i = self.starts.partition_point(|&s| s <= at);
        (i > 0 && at < self.segments[i - 1].1).then(|| i - 1)
    }
}

/// Why a window was refused; each names the parameter at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowError {
    /// `to` is before `from`.
    Reversed,
    /// More than [`MAX_POINTS`] periods.
    TooManyPoints,
    /// A bound outside the years the calendar supports.
    OutOfRange(&'static str),
}

/// `[from, to)` in milliseconds: a date `from` is its local midnight, a date `to` the next
/// day's local midnight.
pub fn window(from: Bound, to: Bound, zone: Tz) -> Result<(i64, i64), WindowError> {
    let from = match from {
        Bound::Instant(ms) => ms,
        Bound::Date(date) => start_of_day(zone, date).ok_or(WindowError::OutOfRange("from"))?,
    };
    let to = match to {
        Bound::Instant(ms) => ms,
        Bound::Date(date) => date
            .succ_opt()
            .and_then(|next| start_of_day(zone, next))
            .ok_or(WindowError::OutOfRange("to"))?,
    };
    if to < from {
        return Err(WindowError::Reversed);
    }
    Ok((from, to))
}

/// Cuts `[from, to)` into the periods of `interval` in `zone`.
pub fn grid(from: i64, to: i64, interval: Interval, zone: Tz) -> Result<Grid, WindowError> {
    let mut grid = Grid {
        starts: Vec::new(),
        segments: Vec::new(),
    };
    if from >= to {
        return Ok(grid);
    }
    let mut start = floor(from, interval, zone).ok_or(WindowError::OutOfRange("from"))?;
    while start < to {
        if grid.starts.len() == MAX_POINTS {
            return Err(WindowError::TooManyPoints);
        }
        let end = next(start, interval, zone).ok_or(WindowError::OutOfRange("to"))?;
        grid.starts.push(start);
        grid.segments.push((start.max(from), end.min(to)));
        start = end;
    }
    Ok(grid)
}

/// The offset of `zone` from UTC at `at`, in milliseconds.
fn offset_ms(zone: Tz, at: i64) -> Option<i64> {
    let utc = DateTime::from_timestamp_millis(at)?;
    Some(
        i64::from(
            zone.offset_from_utc_datetime(&utc.naive_utc())
                .fix()
                .local_minus_utc(),
        ) * 1000,
    )
}

/// The local date at `at`.
fn local_date(zone: Tz, at: i64) -> Option<NaiveDate> {
    Some(
        DateTime::from_timestamp_millis(at)?
            .with_timezone(&zone)
            .date_naive(),
    )
}

/// The first instant of `date` in `zone`: local midnight, or, where a change of offset skips
/// midnight, the first quarter hour after it that exists.
fn start_of_day(zone: Tz, date: NaiveDate) -> Option<i64> {
    let midnight = NaiveDateTime::new(date, NaiveTime::MIN);
    (0..=96).find_map(|quarter| {
        let local = midnight + Duration::minutes(15 * quarter);
        zone.from_local_datetime(&local)
            .earliest()
            .map(|t| t.timestamp_millis())
    })
}

/// The start of the period that holds `at`.
fn floor(at: i64, interval: Interval, zone: Tz) -> Option<i64> {
    if let Some(len) = interval.fixed_ms() {
        let local = at + offset_ms(zone, at)?;
        return Some(at - local.rem_euclid(len));
    }
    start_of_day(zone, calendar_floor(local_date(zone, at)?, interval)?)
}

fn calendar_floor(date: NaiveDate, interval: Interval) -> Option<NaiveDate> {
    match interval {
        Interval::Week => date.checked_sub_days(chrono::Days::new(u64::from(
            date.weekday().num_days_from_monday(),
        ))),
        Interval::Month => date.with_day(1),
        Interval::Year => NaiveDate::from_ymd_opt(date.year(), 1, 1),
        _ => Some(date),
    }
}

/// The start of the period after the one starting at `start`.
fn next(start: i64, interval: Interval, zone: Tz) -> Option<i64> {
    if let Some(len) = interval.fixed_ms() {
        // Step, then fall back onto the local grid in case the offset changed on the way by
        // less than the interval (a 30-minute daylight-saving shift under hourly periods).
        let stepped = start + len;
        let local = stepped + offset_ms(zone, stepped)?;
        let aligned = stepped - local.rem_euclid(len);
        return Some(if aligned > start { aligned } else { stepped });
    }
    let date = calendar_floor(local_date(zone, start)?, interval)?;
    let following = match interval {
        Interval::Day => date.succ_opt()?,
        Interval::Week => date.checked_add_days(chrono::Days::new(7))?,
        Interval::Month => date.checked_add_months(chrono::Months::new(1))?,
        _ => date.checked_add_months(chrono::Months::new(12))?,
    };
    start_of_day(zone, following)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        Timestamp::parse(text).expect("instant").as_millis()
    }

    fn zone(name: &str) -> Tz {
        name.parse().expect("zone")
    }

    #[test]
    fn a_new_york_day_lasts_23_hours_in_march_and_25_in_november() {
        let ny = zone("America/New_York");
        let march = grid(
            ms("2024-03-10T05:00:00Z"),
            ms("2024-03-11T04:00:00Z"),
            Interval::Day,
            ny,
        )
        .expect("grid");
        assert_eq!(
            march.segments,
            vec![(ms("2024-03-10T05:00:00Z"), ms("2024-03-11T04:00:00Z"))]
        );
        let (from, to) = window(
            Bound::parse("2024-11-03").unwrap(),
            Bound::parse("2024-11-03").unwrap(),
            ny,
        )
        .expect("window");
        assert_eq!(
            (from, to),
            (ms("2024-11-03T04:00:00Z"), ms("2024-11-04T05:00:00Z"))
        );
    }

    #[test]
    fn kathmandu_hours_start_at_quarter_past() {
        let kathmandu = zone("Asia/Kathmandu");
        let g = grid(
            ms("2024-01-01T00:00:00Z"),
            ms("2024-01-01T02:00:00Z"),
            Interval::Hour,
            kathmandu,
        )
        .expect("grid");
        assert_eq!(
            g.starts,
            vec![
                ms("2023-12-31T23:15:00Z"),
                ms("2024-01-01T00:15:00Z"),
                ms("2024-01-01T01:15:00Z")
            ]
        );
        assert_eq!(g.segments[0].0, ms("2024-01-01T00:00:00Z"));
        assert_eq!(g.segments[2].1, ms("2024-01-01T02:00:00Z"));
    }

    #[test]
    fn weeks_start_on_monday_in_the_zone() {
        let kolkata = zone("Asia/Kolkata");
        // Wednesday 2024-01-03 in Kolkata; its week began Monday 2024-01-01 00:00 +05:30.
        let g = grid(
            ms("2024-01-03T12:00:00Z"),
            ms("2024-01-04T00:00:00Z"),
            Interval::Week,
            kolkata,
        )
        .expect("grid");
        assert_eq!(g.starts, vec![ms("2023-12-31T18:30:00Z")]);
    }

    #[test]
    fn windows_of_more_than_ten_thousand_points_are_refused() {
        let utc = zone("UTC");
        assert_eq!(
            grid(0, 10_001 * MINUTE_MS, Interval::Minute, utc),
            Err(WindowError::TooManyPoints)
        );
        assert_eq!(
            grid(0, 10_000 * MINUTE_MS, Interval::Minute, utc).map(|g| g.starts.len()),
            Ok(10_000)
        );
    }

    #[test]
    fn rates_of_no_leads_are_null() {
        assert_eq!(Metric::LeadConversionRate.value(0, 0), None);
        assert_eq!(Metric::LeadConversionRate.value(8, 1), Some(12.5));
    }
}
