//! Inline SVG charts for the HTML report and the history site (`crate::history`), drawn with
//! plotters' SVG backend: no JavaScript, no network, a self-contained file. Text inside the SVG is limited to axis numbers, fixed
//! series labels and event numbers (the event descriptions go in an escaped table beside).

use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::summary::{EndpointWindow, Event, Window};

const WIDTH: u32 = 760;
const HEIGHT: u32 = 260;

/// One line on a chart.
pub(crate) struct Line {
    pub label: &'static str,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    /// Dashed lines are the baseline.
    pub dashed: bool,
}

pub(crate) const P50: RGBColor = RGBColor(31, 119, 180);
pub(crate) const P95: RGBColor = RGBColor(255, 127, 14);
pub(crate) const P99: RGBColor = RGBColor(214, 39, 40);
pub(crate) const REQS: RGBColor = RGBColor(31, 119, 180);
pub(crate) const ERRS: RGBColor = RGBColor(214, 39, 40);
pub(crate) const EVENT: RGBColor = RGBColor(120, 120, 120);

/// A vertical line across a chart at `x`, with a short label at its top (an event's number,
/// a change point's number).
pub(crate) struct Marker {
    pub x: f64,
    pub label: String,
    pub color: RGBColor,
}

/// The axes of a chart: what x and y are, the x range, and optionally how to write an x value
/// (a night's date instead of its index).
pub(crate) struct Axes<'a> {
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub x_range: std::ops::Range<f64>,
    pub x_label: Option<&'a dyn Fn(f64) -> String>,
    /// At most this many x labels.
    pub x_labels: usize,
}

/// Draws lines against seconds, with numbered vertical markers at `events`. `Err` carries
/// plotters' message; callers show it instead of the chart.
pub(super) fn line_chart(y_desc: &str, lines: &[Line], events: &[Event]) -> Result<String, String> {
    let x_max = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)).chain(events.iter().map(|e| e.t)).fold(1.0, f64::max);
    let markers: Vec<Marker> =
        events.iter().enumerate().map(|(i, e)| Marker { x: e.t, label: format!("{}", i + 1), color: EVENT }).collect();
    let axes = Axes { x_desc: "seconds", y_desc, x_range: 0.0..x_max, x_label: None, x_labels: 10 };
    chart(&axes, lines, &markers)
}

/// Draws lines on `axes`, with labelled vertical `markers`: the one chart style of the HTML
/// report and the history site. `Err` carries plotters' message.
pub(crate) fn chart(axes: &Axes<'_>, lines: &[Line], markers: &[Marker]) -> Result<String, String> {
    let y_max = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).fold(0.0, f64::max);
    let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(axes.x_range.clone(), 0f64..y_max)
            .map_err(|e| e.to_string())?;
        let x_label = axes.x_label.map(|f| move |x: &f64| f(*x));
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(axes.x_desc).y_desc(axes.y_desc).x_labels(axes.x_labels).light_line_style(RGBColor(235, 235, 235));
        if let Some(f) = &x_label {
            mesh.x_label_formatter(f);
        }
        mesh.draw().map_err(|e| e.to_string())?;
        for m in markers {
            chart
                .draw_series(std::iter::once(PathElement::new(vec![(m.x, 0.0), (m.x, y_max)], m.color.stroke_width(1))))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(std::iter::once(Text::new(m.label.clone(), (m.x, y_max * 0.97), ("sans-serif", 12).into_font())))
                .map_err(|e| e.to_string())?;
        }
        for l in lines.iter().filter(|l| !l.points.is_empty()) {
            let color = l.color;
            let style = color.stroke_width(if l.dashed { 1 } else { 2 });
            let anno = if l.dashed {
                chart.draw_series(DashedLineSeries::new(l.points.iter().copied(), 6, 4, style))
            } else {
                chart.draw_series(LineSeries::new(l.points.iter().copied(), style))
            }
            .map_err(|e| e.to_string())?;
            let anno = anno.label(l.label);
            if l.dashed {
                anno.legend(move |(x, y)| DashedPathElement::new(vec![(x, y), (x + 18, y)], 4, 3, color.stroke_width(1)));
            } else {
                anno.legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn series(ws: &[EndpointWindow], pick: fn(&EndpointWindow) -> Option<f64>) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, f64)> = ws.iter().filter_map(|w| pick(w).filter(|x| x.is_finite()).map(|y| (f64::from(w.t), y))).collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

/// p50/p95/p99 per second, head solid, base dashed.
pub(super) fn latency(head: &[EndpointWindow], base: Option<&[EndpointWindow]>, events: &[Event]) -> Result<String, String> {
    let mut lines = vec![
        Line { label: "p50", points: series(head, |w| w.p50), color: P50, dashed: false },
        Line { label: "p95", points: series(head, |w| w.p95), color: P95, dashed: false },
        Line { label: "p99", points: series(head, |w| w.p99), color: P99, dashed: false },
    ];
    if let Some(b) = base.filter(|b| !b.is_empty()) {
        lines.push(Line { label: "base p50", points: series(b, |w| w.p50), color: P50, dashed: true });
        lines.push(Line { label: "base p95", points: series(b, |w| w.p95), color: P95, dashed: true });
        lines.push(Line { label: "base p99", points: series(b, |w| w.p99), color: P99, dashed: true });
    }
    line_chart("latency (ms)", &lines, events)
}

/// Requests and errors per second, head solid, base dashed.
pub(super) fn throughput(head: &[EndpointWindow], base: Option<&[EndpointWindow]>, events: &[Event]) -> Result<String, String> {
    let mut lines = vec![
        Line { label: "requests/s", points: series(head, |w| Some(w.requests as f64)), color: REQS, dashed: false },
        Line { label: "errors/s", points: series(head, |w| Some(w.errors as f64)), color: ERRS, dashed: false },
    ];
    if let Some(b) = base.filter(|b| !b.is_empty()) {
        lines.push(Line { label: "base requests/s", points: series(b, |w| Some(w.requests as f64)), color: REQS, dashed: true });
        lines.push(Line { label: "base errors/s", points: series(b, |w| Some(w.errors as f64)), color: ERRS, dashed: true });
    }
    line_chart("per second", &lines, events)
}

/// The whole suite: requests, errors and active virtual users per second.
pub(super) fn suite(head: &[Window], base: Option<&[Window]>, events: &[Event]) -> Result<String, String> {
    let pts = |ws: &[Window], pick: fn(&Window) -> f64| -> Vec<(f64, f64)> { ws.iter().map(|w| (f64::from(w.t), pick(w))).collect() };
    let mut lines = vec![
        Line { label: "requests/s", points: pts(head, |w| w.requests as f64), color: REQS, dashed: false },
        Line { label: "errors/s", points: pts(head, |w| w.errors as f64), color: ERRS, dashed: false },
        Line { label: "active VUs", points: pts(head, |w| f64::from(w.active_vus)), color: RGBColor(44, 160, 44), dashed: false },
    ];
    if let Some(b) = base.filter(|b| !b.is_empty()) {
        lines.push(Line { label: "base requests/s", points: pts(b, |w| w.requests as f64), color: REQS, dashed: true });
    }
    line_chart("per second", &lines, events)
}
