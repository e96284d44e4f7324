//! Daily bar charts as inline SVG, drawn on the server by `plotters` (no script, no geometry of our
//! own). Every chart stands above a table of the same numbers, which is its text alternative.
use chrono::NaiveDate;
use plotters::prelude::*;

use crate::web::PageError;

/// Width and height of the drawing in SVG units; the page scales it to its box.
const SIZE: (u32, u32) = (720, 240);
const BAR: RGBColor = RGBColor(0x14, 0x6e, 0xb4);

/// One daily series: its values (clicks, purchases, or money in major units) by day, oldest first.
pub struct Series<'a> {
    /// What the bars count, for the y axis: `"clicks"`, `"USD"`.
    pub unit: &'a str,
    pub points: Vec<(NaiveDate, f64)>,
}

/// The series as an SVG bar chart (`<svg …>…</svg>`), one bar per day; an empty series draws empty
/// axes.
pub fn bars(series: &Series<'_>) -> Result<String, PageError> {
    let mut svg = String::new();
    draw(series, &mut svg).map_err(|e| PageError::Unexpected(anyhow::anyhow!("chart: {e}")))?;
    Ok(svg)
}

fn draw(series: &Series<'_>, out: &mut String) -> Result<(), String> {
    let points = &series.points;
    let root = SVGBackend::with_string(out, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let max = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let top = if max > 0.0 { max * 1.1 } else { 1.0 };
    let mut chart = ChartBuilder::on(&root)
        .margin(8)
        .x_label_area_size(34)
        .y_label_area_size(80)
        .build_cartesian_2d((0..points.len().max(1)).into_segmented(), 0f64..top)
        .map_err(|e| e.to_string())?;
    let day = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => points
            .get(*i)
            .map(|p| p.0.format("%m-%d").to_string())
            .unwrap_or_default(),
        SegmentValue::Last => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(8)
        .y_labels(5)
        .x_label_formatter(&day)
        .y_desc(series.unit)
        .y_label_formatter(&|v| {
            if top >= 10.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        })
        // The drawing is scaled down to its box: labels are drawn large to stay readable.
        .label_style(("sans-serif", 18))
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(
            Histogram::vertical(&chart)
                .style(BAR.filled())
                .margin(1)
                .data(points.iter().enumerate().map(|(i, p)| (i, p.1))),
        )
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_draws_one_bar_per_day_with_dated_axis() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let points = (0..30)
            .map(|i| (d + chrono::Days::new(i), i as f64))
            .collect();
        let svg = bars(&Series {
            unit: "USD",
            points,
        })
        .unwrap();
        assert!(svg.starts_with("<svg"), "{svg:.80}");
        assert!(svg.contains("11-01"), "the first day labels the axis");
        assert!(svg.contains("USD"), "the unit names the y axis");
        // 29 days have a value above zero; each is a filled rectangle.
        assert!(svg.matches("<rect").count() >= 29);
    }

    #[test]
    fn an_empty_series_still_draws() {
        let svg = bars(&Series {
            unit: "clicks",
            points: vec![],
        })
        .unwrap();
        assert!(svg.contains("</svg>"));
    }
}
