//! Charts as SVG, drawn on the server: a line chart (lead time per week,
//! one line per series) and a bar chart (completeness per week).
//!
//! Our own small writer rather than plotters: two chart shapes with a few
//! dozen points each are about a hundred lines of markup, which maud
//! escapes like the rest of the page; plotters would bring a font stack and
//! a drawing backend for the same picture. Every point carries a `<title>`
//! (a tooltip, read by screen readers) and the chart a text summary.

use maud::{html, Markup};

const W: f64 = 640.0;
const H: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 44.0;

/// One line of a line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// A colour with enough contrast on white.
    pub colour: &'static str,
    /// One value per label; `None` where the week has no data.
    pub values: Vec<Option<f64>>,
}

fn nice_max(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if step * mag >= max {
            return step * mag;
        }
    }
    10.0 * mag
}

fn x_of(i: usize, n: usize) -> f64 {
    let span = W - LEFT - RIGHT;
    if n <= 1 {
        LEFT + span / 2.0
    } else {
        LEFT + span * i as f64 / (n - 1) as f64
    }
}

fn y_of(v: f64, max: f64) -> f64 {
    TOP + (H - TOP - BOTTOM) * (1.0 - v / max)
}

fn fmt(v: f64) -> String {
    if v >= 10.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn axes(labels: &[String], max: f64, unit: &str) -> Markup {
    let ticks = [0.0, 0.25, 0.5, 0.75, 1.0];
    // Every label when few, else about six of them.
    let every = labels.len().div_ceil(6).max(1);
    html! {
        @for t in ticks {
            @let y = y_of(max * t, max);
            line x1=(LEFT) x2=(W - RIGHT) y1=(y) y2=(y) stroke="#d0d0d0" stroke-width="1" {}
            text x=(LEFT - 6.0) y=(y + 4.0) text-anchor="end" font-size="11" fill="#333" { (fmt(max * t)) }
        }
        text x="12" y=(TOP + (H - TOP - BOTTOM) / 2.0) font-size="11" fill="#333"
            transform={ "rotate(-90 12 " (TOP + (H - TOP - BOTTOM) / 2.0) ")" } text-anchor="middle" { (unit) }
        @for (i, l) in labels.iter().enumerate() {
            @if i % every == 0 || i + 1 == labels.len() {
                text x=(x_of(i, labels.len())) y=(H - BOTTOM + 16.0) text-anchor="middle" font-size="11" fill="#333" { (l) }
            }
        }
    }
}

/// The `points` of each line of `values`: a line joins neighbouring weeks
/// only. A week without data breaks the line, so the chart does not draw a
/// trend through weeks nothing was measured in; a week alone between gaps
/// is its dot only.
fn segments(values: &[Option<f64>], n: usize, max: f64) -> Vec<String> {
    let mut out = Vec::new();
    let mut run: Vec<String> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => run.push(format!("{:.1},{:.1}", x_of(i, n), y_of(*v, max))),
            None => {
                if run.len() > 1 {
                    out.push(run.join(" "));
                }
                run.clear();
            }
        }
    }
    if run.len() > 1 {
        out.push(run.join(" "));
    }
    out
}

/// A line chart of `series` over `labels` (weeks), values in `unit`.
pub fn lines(title: &str, labels: &[String], series: &[Series], unit: &str) -> Markup {
    let max = nice_max(
        series
            .iter()
            .flat_map(|s| s.values.iter().flatten())
            .fold(0.0f64, |a, &b| a.max(b)),
    );
    let n = labels.len();
    let points: usize = series
        .iter()
        .map(|s| s.values.iter().flatten().count())
        .sum();
    html! {
        figure {
            svg.chart role="img" viewBox={ "0 0 " (W) " " (H) } xmlns="http://www.w3.org/2000/svg"
                aria-label={ (title) ": " (points) " data points over " (n) " weeks" } data-points=(points) {
                title { (title) }
                (axes(labels, max, unit))
                @for s in series {
                    @for path in segments(&s.values, n, max) {
                        polyline points=(path) fill="none" stroke=(s.colour) stroke-width="2" {}
                    }
                    @for (i, v) in s.values.iter().enumerate() {
                        @if let Some(v) = v {
                            circle.point cx=(format!("{:.1}", x_of(i, n))) cy=(format!("{:.1}", y_of(*v, max))) r="3.5" fill=(s.colour) {
                                title { (s.name) ", week of " (labels[i]) ": " (fmt(*v)) " " (unit) }
                            }
                        }
                    }
                }
                @for (k, s) in series.iter().enumerate() {
                    rect x=(LEFT + 8.0 + 120.0 * k as f64) y=(H - 16.0) width="12" height="4" fill=(s.colour) {}
                    text x=(LEFT + 24.0 + 120.0 * k as f64) y=(H - 10.0) font-size="11" fill="#333" { (s.name) }
                }
            }
            figcaption { (title) }
        }
    }
}

/// A bar chart of shares (0..=1) per label, shown as percentages.
pub fn bars(title: &str, labels: &[String], values: &[Option<f64>], colour: &str) -> Markup {
    let n = labels.len().max(1);
    let slot = (W - LEFT - RIGHT) / n as f64;
    let points = values.iter().flatten().count();
    html! {
        figure {
            svg.chart role="img" viewBox={ "0 0 " (W) " " (H) } xmlns="http://www.w3.org/2000/svg"
                aria-label={ (title) ": " (points) " weeks" } data-points=(points) {
                title { (title) }
                @for t in [0.0, 0.25, 0.5, 0.75, 1.0] {
                    @let y = y_of(t, 1.0);
                    line x1=(LEFT) x2=(W - RIGHT) y1=(y) y2=(y) stroke="#d0d0d0" stroke-width="1" {}
                    text x=(LEFT - 6.0) y=(y + 4.0) text-anchor="end" font-size="11" fill="#333" { (format!("{:.0}%", t * 100.0)) }
                }
                @let every = labels.len().div_ceil(6).max(1);
                @for (i, v) in values.iter().enumerate() {
                    @let x = LEFT + slot * i as f64 + slot * 0.15;
                    @if let Some(v) = v {
                        rect.point x=(format!("{x:.1}")) y=(format!("{:.1}", y_of(*v, 1.0))) width=(format!("{:.1}", slot * 0.7))
                            height=(format!("{:.1}", (H - TOP - BOTTOM) * v)) fill=(colour) {
                            title { "Week of " (labels[i]) ": " (format!("{:.0}%", v * 100.0)) " complete" }
                        }
                    }
                    @if i % every == 0 || i + 1 == labels.len() {
                        text x=(format!("{:.1}", x + slot * 0.35)) y=(H - BOTTOM + 16.0) text-anchor="middle" font-size="11" fill="#333" { (labels[i]) }
                    }
                }
            }
            figcaption { (title) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_chart_draws_a_titled_point_per_value() {
        let labels = vec![
            "11-02".to_string(),
            "11-09".to_string(),
            "11-16".to_string(),
        ];
        let svg = lines(
            "Lead time",
            &labels,
            &[Series {
                name: "median".into(),
                colour: "#0b4f9c",
                values: vec![Some(10.0), None, Some(30.0)],
            }],
            "hours",
        )
        .into_string();
        assert_eq!(svg.matches("<circle class=\"point\"").count(), 2);
        assert!(svg.contains("data-points=\"2\""), "{svg}");
        assert!(svg.contains("week of 11-16: 30 hours"), "{svg}");
        // The highest value is at the top of a nice scale (30 of 50).
        assert!(svg.contains(">50<"), "{svg}");
    }

    #[test]
    fn a_week_without_data_breaks_the_line() {
        let labels: Vec<String> = (1..=6).map(|d| format!("12-0{d}")).collect();
        let svg = lines(
            "Lead time",
            &labels,
            &[Series {
                name: "median".into(),
                colour: "#0b4f9c",
                values: vec![Some(1.0), Some(2.0), None, Some(3.0), None, Some(5.0)],
            }],
            "hours",
        )
        .into_string();
        // Weeks 1-2 joined; week 4 alone and week 6 alone are dots only.
        assert_eq!(svg.matches("<polyline").count(), 1, "{svg}");
        assert_eq!(svg.matches("<circle class=\"point\"").count(), 4);
        assert_eq!(
            segments(&[Some(1.0), None, Some(2.0)], 3, 5.0),
            Vec::<String>::new()
        );
        assert_eq!(
            segments(&[None, Some(1.0), Some(2.0), Some(3.0)], 4, 5.0).len(),
            1
        );
        assert_eq!(
            segments(&[Some(1.0), Some(1.0), None, Some(2.0), Some(2.0)], 5, 5.0).len(),
            2
        );
    }

    #[test]
    fn names_are_escaped_in_the_svg() {
        let svg = lines(
            "<b>",
            &["<i>".to_string()],
            &[Series {
                name: "<script>".into(),
                colour: "#000",
                values: vec![Some(1.0)],
            }],
            "h",
        )
        .into_string();
        assert!(!svg.contains("<script>") && !svg.contains("<b>") && !svg.contains("<i>"));
        assert!(svg.contains("&lt;script&gt;"));
    }

    #[test]
    fn scales_round_up_to_a_readable_maximum() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(21.0), 25.0);
        assert_eq!(nice_max(180.0), 200.0);
    }
}
