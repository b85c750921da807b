//! `leads stats`: a lead metric over time, fetched over the API and printed as a table with a
//! bar for each period (or as the API's JSON).

use crate::cli::Failure;
use crate::remote::ConnectionArgs;
use chrono::DateTime;
use chrono_tz::Tz;
use clap::{Args, ValueEnum};
use leads_client::TimeSeriesParams;
use leads_types::stats::TimeSeries;
use std::io::{self, Write};

/// The longest bar, in characters.
const BAR_WIDTH: usize = 40;

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// new_leads, converted_leads or lead_conversion_rate.
    metric: String,
    /// The company whose leads to count (biz_...).
    #[arg(long)]
    company: String,
    /// Start of the window: a date (YYYY-MM-DD) or an RFC 3339 time.
    #[arg(long)]
    from: String,
    /// End of the window: a date (included) or an RFC 3339 time (excluded).
    #[arg(long)]
    to: String,
    /// minute, five_minutes, thirty_minutes, hour, day, week, month or year.
    #[arg(long, default_value = "day")]
    interval: String,
    /// IANA time zone the periods follow, such as America/New_York.
    #[arg(long, default_value = "UTC")]
    time_zone: String,
    /// Split each period by product or by referrer host.
    #[arg(long, value_enum)]
    breakdown: Option<Breakdown>,
    /// Only this product's leads (prod_..., or none).
    #[arg(long)]
    product: Option<String>,
    /// Only leads from this referrer host (or none).
    #[arg(long)]
    referrer: Option<String>,
    #[arg(long, value_enum, default_value_t = StatsFormat::Table)]
    format: StatsFormat,
    #[command(flatten)]
    connection: ConnectionArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Breakdown {
    Product,
    Referrer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StatsFormat {
    /// One line per period: its start in the time zone, the value and a bar.
    Table,
    /// The API's answer as it came.
    Json,
}

pub async fn run(args: StatsArgs) -> Result<(), Failure> {
    let zone: Tz = args.time_zone.parse().map_err(|_| Failure {
        message: format!("--time-zone {:?} is not an IANA time zone", args.time_zone),
        code: 2,
    })?;
    let client = args.connection.client()?;
    let mut params = TimeSeriesParams::new(args.metric, args.company, args.from, args.to);
    params.interval = Some(args.interval.clone());
    params.time_zone = Some(args.time_zone);
    params.product = args.product;
    params.referrer = args.referrer;
    params.breakdown_by = args.breakdown.map(|b| match b {
        Breakdown::Product => "product".to_owned(),
        Breakdown::Referrer => "referrer".to_owned(),
    });
    let series = client.stats().retrieve(&params).await?;
    let text = match args.format {
        StatsFormat::Json => {
            serde_json::to_string_pretty(&series).map_err(|e| Failure {
                message: e.to_string(),
                code: 1,
            })? + "\n"
        }
        StatsFormat::Table => table(&series, zone, &args.interval),
    };
    io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| Failure {
            message: format!("cannot write the output: {e}"),
            code: 1,
        })
}

/// A number as the table shows it: whole numbers without decimals, rates with two.
fn show(value: Option<f64>) -> String {
    match value {
        None => "-".to_owned(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", v as i64),
        Some(v) => format!("{v:.2}"),
    }
}

/// The table: a line per period with its bar, then the totals.
fn table(series: &TimeSeries, zone: Tz, interval: &str) -> String {
    let label = |timestamp: i64| {
        let at = DateTime::from_timestamp(timestamp, 0).map(|t| t.with_timezone(&zone));
        match (at, interval) {
            (Some(at), "day" | "week" | "month" | "year") => at.format("%Y-%m-%d").to_string(),
            (Some(at), _) => at.format("%Y-%m-%d %H:%M").to_string(),
            (None, _) => timestamp.to_string(),
        }
    };
    let points = &series.data.points;
    let max = points.iter().filter_map(|p| p.value).fold(0.0f64, f64::max);
    let labels: Vec<String> = points.iter().map(|p| label(p.timestamp)).collect();
    let values: Vec<String> = points.iter().map(|p| show(p.value)).collect();
    let label_width = labels.iter().map(String::len).max().unwrap_or(0).max(6);
    let value_width = values.iter().map(String::len).max().unwrap_or(0).max(5);
    let mut out = format!("{:label_width$}  {:>value_width$}\n", "PERIOD", "VALUE");
    for (i, point) in points.iter().enumerate() {
        let bar = match point.value {
            Some(v) if max > 0.0 => "█".repeat(((v / max) * BAR_WIDTH as f64).round() as usize),
            _ => String::new(),
        };
        let mut line = format!(
            "{:label_width$}  {:>value_width$}  {bar}",
            labels[i], values[i]
        );
        if let Some(breakdown) = &point.breakdown {
            let parts: Vec<String> = breakdown
                .iter()
                .map(|b| format!("{}={}", b.name, show(b.value)))
                .collect();
            if !parts.is_empty() {
                line.push_str(&format!("  {}", parts.join(" ")));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for total in &series.data.totals {
        out.push_str(&format!("total {}: {}\n", total.name, show(total.value)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use leads_types::stats::{Point, TimeSeriesData, Total};

    #[test]
    fn the_table_shows_local_periods_values_and_bars() {
        let series = TimeSeries {
            data: TimeSeriesData {
                points: vec![
                    Point {
                        timestamp: 1_709_960_400,
                        value: Some(4.0),
                        breakdown: None,
                    },
                    Point {
                        timestamp: 1_710_046_800,
                        value: Some(2.0),
                        breakdown: None,
                    },
                ],
                totals: vec![Total {
                    name: "new_leads".into(),
                    value: Some(6.0),
                }],
            },
        };
        let text = table(&series, "America/New_York".parse().unwrap(), "day");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "PERIOD      VALUE");
        assert_eq!(lines[1], format!("2024-03-09      4  {}", "█".repeat(40)));
        assert_eq!(lines[2], format!("2024-03-10      2  {}", "█".repeat(20)));
        assert_eq!(lines[3], "total new_leads: 6");
    }
}
