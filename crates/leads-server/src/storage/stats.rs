//! Lead statistics in storage: counts of leads and of converted leads, kept up to date by every
//! write that changes them, and read back by time range.
//!
//! See [`StatsStore`] for the design.

use super::StoreResult;
use crate::domain::CompanyId;
use async_trait::async_trait;
use std::collections::HashMap;

/// A quarter hour, the finest bucket, in milliseconds.
pub const QUARTER_MS: i64 = 900_000;
/// A UTC day, the coarse bucket, in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// Where counts are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// The leads themselves, through the `(company_id, created_at, id)` index: for the edges of
    /// a window that are not on a quarter hour, and for minute and five-minute periods.
    Raw,
    /// Quarter-hour buckets of `lead_counts` (`level = 0`).
    Quarter,
    /// UTC-day buckets of `lead_counts` (`level = 1`).
    Day,
}

impl Level {
    /// The `level` column of `lead_counts`; `None` for [`Level::Raw`].
    pub fn column(self) -> Option<i64> {
        match self {
            Level::Raw => None,
            Level::Quarter => Some(0),
            Level::Day => Some(1),
        }
    }
}

/// A time range to read at one level: `[from, to)` in milliseconds, on that level's bucket
/// boundaries (any millisecond for [`Level::Raw`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub level: Level,
    pub from: i64,
    pub to: i64,
}

/// What to split counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Product,
    ReferrerHost,
}

/// A read of a company's lead counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountQuery {
    pub company: CompanyId,
    /// Disjoint ranges, each read at its level; [`plan`] makes them.
    pub spans: Vec<Span>,
    /// Only leads of this product key (a product id, or `""` for leads without a product).
    pub product: Option<String>,
    /// Only leads with this referrer host key (see [`referrer_host`]).
    pub referrer_host: Option<String>,
    pub group_by: Option<GroupBy>,
}

/// Counts of one bucket (or one lead, at [`Level::Raw`]): `at` is the bucket's start (or the
/// lead's `created_at`) in milliseconds, `key` the group's product or referrer host key (`""`
/// when not grouped). Several rows may share `at` and `key`; their counts add up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountRow {
    pub at: i64,
    pub key: String,
    pub leads: i64,
    pub converted: i64,
}

/// Counts of a company's leads and converted leads over time.
///
/// # Design
///
/// `lead_counts` holds, per company, bucket, product and referrer host, how many leads were
/// created in the bucket and how many of those have converted (their user is a member of the
/// company: a cohort by creation time). Buckets come at two levels: quarter hours and UTC days.
/// Every time zone's offset is a multiple of 15 minutes and changes only on quarter hours, so
/// any period of 15 minutes or more in any zone (a New York day of 23 hours, a week in
/// Kathmandu at +05:45) is a whole number of quarter-hour buckets; a period that holds whole
/// UTC days reads those from the day level, so a UTC day or week series over two years reads a
/// few hundred rows per product and host rather than tens of thousands. What is not on a
/// quarter hour (the edges of a window given as instants, minute and five-minute periods) is
/// read from the leads themselves, a window of at most 10,000 minutes or quarter hours.
///
/// The counts are written in the same transaction as the writes they count, so they are never
/// out of step: a lead's create (not its idempotent replay) adds it, its erasure takes it away,
/// a change of its referrer moves it between hosts, a member's creation moves the user's past
/// leads in that company from unconverted to converted in their own buckets, and `leads seed`
/// adds each batch's leads after summing them in memory. On PostgreSQL a create appends its lead
/// to `lead_count_deltas` instead (migration 12: an append costs a create far less than adding to
/// a hot row), [`StatsStore::fold_lead_counts`] moves those rows into `lead_counts` every second,
/// and readers sum both in one snapshot; rows of `lead_counts` written by earlier versions' creates
/// carry a shard number, and readers sum the shards. The cost of a read depends on the
/// window, the interval and the number of products and hosts, never on the number of leads.
#[async_trait]
pub trait StatsStore: Send + Sync + 'static {
    /// The counts of `query`, in no particular order, read in one snapshot.
    async fn lead_counts(&self, query: CountQuery) -> StoreResult<Vec<CountRow>>;

    /// Moves counts written ahead into `lead_counts`; answers how many leads' counts it moved.
    /// Reads answer the same before and after. PostgreSQL creates append each lead to
    /// `lead_count_deltas` (migration 12) and `leads serve` calls this every
    /// [`FOLD_EVERY`](crate::app::FOLD_EVERY); SQLite counts every write in `lead_counts`
    /// directly, so there is nothing to move and it answers 0.
    async fn fold_lead_counts(&self) -> StoreResult<u64>;
}

/// The ranges to read for periods `segments` (each `[from, to)` in milliseconds, in order and
/// adjacent): whole UTC days from the day level, whole quarter hours from the quarter level, the
/// rest from the leads. Adjacent ranges of one level are merged; each range lies within one
/// period, or is raw or of whole buckets that each lie within one.
pub fn plan(segments: &[(i64, i64)]) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    let mut push = |level, from: i64, to: i64| {
        if from >= to {
            return;
        }
        if let Some(last) = spans.last_mut() {
            if last.level == level && last.to == from {
                last.to = to;
                return;
            }
        }
        spans.push(Span { level, from, to });
    };
    for &(from, to) in segments {
        let (q_from, q_to) = (ceil(from, QUARTER_MS), floor(to, QUARTER_MS));
        if q_from >= q_to {
            push(Level::Raw, from, to);
            continue;
        }
        push(Level::Raw, from, q_from);
        let (d_from, d_to) = (ceil(q_from, DAY_MS), floor(q_to, DAY_MS));
        if d_from < d_to {
            push(Level::Quarter, q_from, d_from);
            push(Level::Day, d_from, d_to);
            push(Level::Quarter, d_to, q_to);
        } else {
            push(Level::Quarter, q_from, q_to);
        }
        push(Level::Raw, q_to, to);
    }
    spans
}

fn floor(at: i64, unit: i64) -> i64 {
    at - at.rem_euclid(unit)
}

fn ceil(at: i64, unit: i64) -> i64 {
    floor(at + unit - 1, unit)
}

/// The key a referrer is counted under: the host of the URL, lowercased, without user info or
/// port (`https://Www.Google.com:443/x` is `www.google.com`); a referrer without a scheme is
/// read as starting with its host (`x.com/path` is `x.com`); `""` for none. A referrer with no
/// host at all (`https:///path`) is counted under `unknown`.
pub fn referrer_host(referrer: Option<&str>) -> String {
    let Some(referrer) = referrer else {
        return String::new();
    };
    let rest = match referrer.find("://") {
        Some(at)
            if referrer[..at]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            &referrer[at + 3..]
        }
        _ => referrer,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = if host_port.starts_with('[') {
        // An IPv6 literal keeps its brackets; only a port after them goes.
        host_port.split_inclusive(']').next().unwrap_or(host_port)
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    let host = host.trim().to_lowercase();
    if host.is_empty() {
        "unknown".to_owned()
    } else {
        host
    }
}

/// One lead as statistics see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedLead<'a> {
    pub company: &'a str,
    pub product: Option<&'a str>,
    pub referrer: Option<&'a str>,
    pub created_at: i64,
    pub converted: bool,
}

/// The key of a `lead_counts` row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountKey {
    pub company: String,
    /// The `level` column: 0 for quarter hours, 1 for UTC days.
    pub level: i64,
    pub bucket: i64,
    pub product: String,
    pub referrer_host: String,
}

/// Changes to `lead_counts` summed in memory, to be added in one go: a seed batch's leads, a
/// conversion's past leads, or one lead.
#[derive(Debug, Default)]
pub struct Tally {
    changes: HashMap<CountKey, (i64, i64)>,
}

impl Tally {
    /// Adds `sign` (1 or -1) times `lead` at both levels: to the lead count, and to the
    /// converted count if it converted.
    pub fn add(&mut self, lead: &CountedLead<'_>, sign: i64) {
        let host = referrer_host(lead.referrer);
        for (level, unit) in [(0, QUARTER_MS), (1, DAY_MS)] {
            let key = CountKey {
                company: lead.company.to_owned(),
                level,
                bucket: floor(lead.created_at, unit),
                product: lead.product.unwrap_or("").to_owned(),
                referrer_host: host.clone(),
            };
            let entry = self.changes.entry(key).or_default();
            entry.0 += sign;
            entry.1 += sign * i64::from(lead.converted);
        }
    }

    /// Adds `sign` times one conversion of `lead`: its converted count only.
    pub fn convert(&mut self, lead: &CountedLead<'_>, sign: i64) {
        let host = referrer_host(lead.referrer);
        for (level, unit) in [(0, QUARTER_MS), (1, DAY_MS)] {
            let key = CountKey {
                company: lead.company.to_owned(),
                level,
                bucket: floor(lead.created_at, unit),
                product: lead.product.unwrap_or("").to_owned(),
                referrer_host: host.clone(),
            };
            self.changes.entry(key).or_default().1 += sign;
        }
    }

    /// The changes that change something, in key order (so concurrent writers lock rows in
    /// the same order): `(key, leads, converted)`.
    pub fn into_rows(self) -> Vec<(CountKey, i64, i64)> {
        let mut rows: Vec<_> = self
            .changes
            .into_iter()
            .filter(|(_, (leads, converted))| *leads != 0 || *converted != 0)
            .map(|(key, (leads, converted))| (key, leads, converted))
            .collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        rows
    }
}

/// Folds leads read at [`Level::Raw`] into rows of `query`: filters by referrer host (the
/// stores filter by product themselves) and keys them by the group.
pub fn raw_rows<'a>(
    query: &CountQuery,
    leads: impl IntoIterator<Item = (i64, Option<String>, Option<String>, bool)> + 'a,
) -> Vec<CountRow> {
    leads
        .into_iter()
        .filter_map(|(at, product, referrer, converted)| {
            let host = referrer_host(referrer.as_deref());
            if query
                .referrer_host
                .as_ref()
                .is_some_and(|only| *only != host)
            {
                return None;
            }
            let key = match query.group_by {
                None => String::new(),
                Some(GroupBy::Product) => product.unwrap_or_default(),
                Some(GroupBy::ReferrerHost) => host,
            };
            Some(CountRow {
                at,
                key,
                leads: 1,
                converted: i64::from(converted),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrer_hosts_are_lowercased_hosts_without_port_or_user() {
        assert_eq!(
            referrer_host(Some("https://Www.Google.com:443/x?q=1")),
            "www.google.com"
        );
        assert_eq!(referrer_host(Some("https://user:pw@x.com/")), "x.com");
        assert_eq!(referrer_host(Some("x.com/path")), "x.com");
        assert_eq!(referrer_host(Some("http://[::1]:8080/")), "[::1]");
        assert_eq!(referrer_host(Some("https:///path")), "unknown");
        assert_eq!(referrer_host(None), "");
    }

    #[test]
    fn plans_read_whole_days_from_the_day_level_and_edges_from_the_leads() {
        let h = 3_600_000;
        // 2 days and a bit, starting at 00:07:00 on day 0, as one period.
        let spans = plan(&[(7 * 60_000, 2 * DAY_MS + 90 * 60_000 + 1)]);
        assert_eq!(
            spans,
            vec![
                Span {
                    level: Level::Raw,
                    from: 7 * 60_000,
                    to: QUARTER_MS
                },
                Span {
                    level: Level::Quarter,
                    from: QUARTER_MS,
                    to: DAY_MS
                },
                Span {
                    level: Level::Day,
                    from: DAY_MS,
                    to: 2 * DAY_MS
                },
                Span {
                    level: Level::Quarter,
                    from: 2 * DAY_MS,
                    to: 2 * DAY_MS + 90 * 60_000
                },
                Span {
                    level: Level::Raw,
                    from: 2 * DAY_MS + 90 * 60_000,
                    to: 2 * DAY_MS + 90 * 60_000 + 1
                },
            ]
        );
        // Hours of a +05:30 zone: quarter hours only, merged into one range.
        let hours: Vec<_> = (0..3)
            .map(|i| (i * h + 30 * 60_000, (i + 1) * h + 30 * 60_000))
            .collect();
        assert_eq!(
            plan(&hours),
            vec![Span {
                level: Level::Quarter,
                from: 30 * 60_000,
                to: 3 * h + 30 * 60_000
            }]
        );
    }
}
