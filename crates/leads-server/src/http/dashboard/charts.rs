//! Charts as SVG, drawn on the server with plotters: the leads page works without JavaScript,
//! and its pictures are text a screen reader is told about (`role="img"` and an `aria-label`
//! naming what the chart shows).

use crate::http::error::ApiError;
use crate::http::stats::Tally;
use chrono::DateTime;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

/// Colours with at least 4.5:1 contrast on white (WCAG AA for text, which legends are).
const NEW_COLOUR: RGBColor = RGBColor(0x1f, 0x4e, 0xb4);
const CONVERTED_COLOUR: RGBColor = RGBColor(0x1b, 0x6e, 0x35);
const TEXT_COLOUR: RGBColor = RGBColor(0x1a, 0x1a, 0x1a);

const SERIES_SIZE: (u32, u32) = (960, 300);
const BARS_SIZE: (u32, u32) = (560, 260);

fn chart_error(error: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("drawing a chart failed: {error}"))
}

/// Marks plotters' `<svg>` as an image with `label` for assistive technology, and lets it
/// shrink with the page (its `viewBox` keeps the proportions).
fn labelled(svg: String, label: &str) -> String {
    let label = askama::filters::escape(label, askama::filters::Html)
        .map(|escaped| escaped.to_string())
        .unwrap_or_default();
    svg.replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{label}\" class=\"chart\" "),
        1,
    )
}

/// New and converted leads per period of `tally`: two lines over the window.
pub fn series(label: &str, tally: &Tally) -> Result<String, ApiError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SERIES_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let n = tally.starts.len().max(1) as i32;
        let top = tally
            .periods
            .iter()
            .map(|(new, _)| *new)
            .max()
            .unwrap_or(0)
            .max(1);
        let text = ("sans-serif", 14).into_font().color(&TEXT_COLOUR);
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(0..(n - 1).max(1), 0..top + top / 10 + 1)
            .map_err(chart_error)?;
        let starts = &tally.starts;
        // Days and weeks within a year by day, longer windows by month and year.
        let long = match (starts.first(), starts.last()) {
            (Some(first), Some(last)) => last - first > 365 * 24 * 60 * 60 * 1000,
            _ => false,
        };
        let date = |i: &i32| {
            starts
                .get(*i as usize)
                .and_then(|ms| DateTime::from_timestamp_millis(*ms))
                .map(|t| t.format(if long { "%b %Y" } else { "%b %d" }).to_string())
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(8)
            .y_labels(6)
            .x_label_formatter(&date)
            .label_style(text.clone())
            .axis_style(TEXT_COLOUR)
            .light_line_style(RGBColor(0xe4, 0xe4, 0xe4))
            .draw()
            .map_err(chart_error)?;
        let line = |pick: fn(&(i64, i64)) -> i64| {
            tally
                .periods
                .iter()
                .enumerate()
                .map(move |(i, counts)| (i as i32, pick(counts)))
        };
        chart
            .draw_series(LineSeries::new(line(|c| c.0), NEW_COLOUR.stroke_width(2)))
            .map_err(chart_error)?
            .label("New leads")
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], NEW_COLOUR.stroke_width(2))
            });
        chart
            .draw_series(LineSeries::new(
                line(|c| c.1),
                CONVERTED_COLOUR.stroke_width(2),
            ))
            .map_err(chart_error)?
            .label("Converted")
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], CONVERTED_COLOUR.stroke_width(2))
            });
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(text)
            .background_style(WHITE.mix(0.9))
            .border_style(TEXT_COLOUR)
            .draw()
            .map_err(chart_error)?;
        root.present().map_err(chart_error)?;
    }
    Ok(labelled(svg, label))
}

/// A bar: a group's name and its count.
pub struct Bar {
    pub name: String,
    pub new_leads: i64,
}

/// New leads of a breakdown's groups (the largest first, at most `max`), as bars; empty for
/// no groups.
pub fn bars(label: &str, groups: &[Bar], max: usize) -> Result<String, ApiError> {
    if groups.is_empty() {
        return Ok(String::new());
    }
    let groups = &groups[..groups.len().min(max)];
    let description = groups
        .iter()
        .map(|g| format!("{} {}", g.name, g.new_leads))
        .collect::<Vec<_>>()
        .join(", ");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, BARS_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let top = groups.iter().map(|g| g.new_leads).max().unwrap_or(0).max(1);
        let text = ("sans-serif", 11).into_font().color(&TEXT_COLOUR);
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(44)
            .build_cartesian_2d(
                (0..groups.len() as i32 - 1).into_segmented(),
                0..top + top / 10 + 1,
            )
            .map_err(chart_error)?;
        let name = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) => groups
                .get(*i as usize)
                .map(|g| short(&g.name))
                .unwrap_or_default(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(groups.len())
            .y_labels(5)
            .x_label_formatter(&name)
            .label_style(text)
            .axis_style(TEXT_COLOUR)
            .light_line_style(RGBColor(0xe4, 0xe4, 0xe4))
            .draw()
            .map_err(chart_error)?;
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(NEW_COLOUR.filled())
                    .margin(6)
                    .data(
                        groups
                            .iter()
                            .enumerate()
                            .map(|(i, g)| (i as i32, g.new_leads)),
                    ),
            )
            .map_err(chart_error)?;
        root.present().map_err(chart_error)?;
    }
    Ok(labelled(svg, &format!("Bar chart: {label}: {description}")))
}

/// A name short enough to sit under its bar.
fn short(name: &str) -> String {
    const MAX: usize = 9;
    if name.chars().count() <= MAX {
        return name.to_owned();
    }
    let mut cut: String = name.chars().take(MAX - 1).collect();
    cut.push('…');
    cut
}
