//! Hand-written SVG plots for the HTML report: lines (broken at gaps), dots, and min–max
//! bands, on axes with "nice" ticks, a legend, reference lines, an optional log x axis and
//! a fixed x range shared by every time plot. Rendering only: every value drawn was
//! computed before (`timeline`), nothing is derived here but pixel positions.

use std::fmt::Write as _;

/// Line colours (Tableau 10, readable on white and distinguishable in print).
pub const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];
/// The colour of the across-dummies band and of the simulation-wide line.
pub const BAND_COLOR: &str = "#7f7f7f";

const WIDTH: f64 = 1100.0;
const PLOT_HEIGHT: f64 = 240.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const TITLE_H: f64 = 28.0;
const LEGEND_ROW_H: f64 = 18.0;
const LEGEND_ITEM_W: f64 = 170.0;
const BOTTOM: f64 = 48.0;

/// A point in data units.
pub type Point = (f64, f64);

/// How a series is drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    /// Polylines, one per segment: nothing is drawn between segments (a gap).
    Line(Vec<Vec<Point>>),
    /// One dot per point.
    Dots(Vec<Point>),
    /// A filled area between two values (x, low, high), one polygon per segment.
    Band(Vec<Vec<(f64, f64, f64)>>),
}

/// One named series with its colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub color: String,
    pub mark: Mark,
    /// Dashed line (e.g. a figure from 1 s snapshots beside ones from samples).
    pub dashed: bool,
}

impl Series {
    /// An unbroken line.
    pub fn line(name: impl Into<String>, color: &str, points: Vec<Point>) -> Self {
        Self::segments(name, color, vec![points])
    }

    /// A line broken into segments.
    pub fn segments(name: impl Into<String>, color: &str, segments: Vec<Vec<Point>>) -> Self {
        Self {
            name: name.into(),
            color: color.to_owned(),
            mark: Mark::Line(segments),
            dashed: false,
        }
    }

    fn points(&self) -> Vec<Point> {
        match &self.mark {
            Mark::Line(segs) => segs.iter().flatten().copied().collect(),
            Mark::Dots(p) => p.clone(),
            Mark::Band(segs) => segs
                .iter()
                .flatten()
                .flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)])
                .collect(),
        }
    }
}

/// A plot.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Drawn in order (bands first, so lines stay on top).
    pub series: Vec<Series>,
    /// Dashed horizontal reference lines (value, label), e.g. the target RTF.
    pub hlines: Vec<(f64, String)>,
    /// Thin red vertical markers at these x values, e.g. loss events.
    pub vmarks: Vec<f64>,
    /// Plot x on a log10 scale (for latency CDFs spanning decades).
    pub log_x: bool,
    /// Keep 0 inside the y range.
    pub y_from_zero: bool,
    /// Fixed x range (data units): every time plot of a page shares one.
    pub x_range: Option<(f64, f64)>,
    /// The y axis ends here at most; higher values are clipped (and the label says so).
    pub y_cap: Option<f64>,
}

/// Maps data to pixels.
#[derive(Debug, Clone, Copy)]
struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    top: f64,
    log_x: bool,
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        let x = if self.log_x { x.log10() } else { x };
        LEFT + (x - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)
    }

    fn py(&self, y: f64) -> f64 {
        self.top + PLOT_HEIGHT - (y - self.y0) / (self.y1 - self.y0) * PLOT_HEIGHT
    }
}

/// The plot as an inline `<svg>` element. `id` must be unique in the page (clip path).
pub fn render(plot: &Plot, id: &str) -> String {
    let legend_rows = legend_rows(plot.series.len());
    let top = TITLE_H + legend_rows as f64 * LEGEND_ROW_H + 8.0;
    let height = top + PLOT_HEIGHT + BOTTOM;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="plot" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="{}">"#,
        escape(&plot.title)
    );
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="18" class="title">{}</text>"#,
        escape(&plot.title)
    );
    legend(&mut svg, plot);
    match data_frame(plot, top) {
        Some(frame) => body(&mut svg, plot, &frame, height, id),
        None => {
            let _ = write!(
                svg,
                r#"<text x="{}" y="{}" class="nodata">no data</text>"#,
                WIDTH / 2.0,
                top + PLOT_HEIGHT / 2.0
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn legend_rows(n: usize) -> usize {
    let per_row = ((WIDTH - LEFT - RIGHT) / LEGEND_ITEM_W).floor() as usize;
    n.div_ceil(per_row.max(1))
}

fn legend(svg: &mut String, plot: &Plot) {
    let per_row = ((WIDTH - LEFT - RIGHT) / LEGEND_ITEM_W).floor().max(1.0) as usize;
    for (i, s) in plot.series.iter().enumerate() {
        let x = LEFT + (i % per_row) as f64 * LEGEND_ITEM_W;
        let y = TITLE_H + (i / per_row) as f64 * LEGEND_ROW_H + 6.0;
        let color = escape(&s.color);
        let swatch = match s.mark {
            Mark::Line(_) => format!(
                r#"<rect x="{x}" y="{}" width="14" height="4" fill="{color}"/>"#,
                y - 4.0
            ),
            Mark::Dots(_) => format!(
                r#"<circle cx="{}" cy="{}" r="3" fill="{color}"/>"#,
                x + 7.0,
                y - 2.0
            ),
            Mark::Band(_) => format!(
                r#"<rect x="{x}" y="{}" width="14" height="10" fill="{color}" fill-opacity=".3"/>"#,
                y - 8.0
            ),
        };
        let _ = write!(
            svg,
            r#"{swatch}<text x="{}" y="{}" class="legend">{}</text>"#,
            x + 18.0,
            y,
            escape(&truncate(&s.name, 26))
        );
    }
}

fn body(svg: &mut String, plot: &Plot, f: &Frame, height: f64, id: &str) {
    axes(svg, plot, f, height);
    let clip = format!("clip-{}", escape(id));
    let _ = write!(
        svg,
        r#"<clipPath id="{clip}"><rect x="{LEFT}" y="{}" width="{}" height="{PLOT_HEIGHT}"/></clipPath><g clip-path="url(#{clip})">"#,
        f.top,
        WIDTH - LEFT - RIGHT
    );
    for x in &plot.vmarks {
        let px = f.px(*x);
        let _ = write!(
            svg,
            r#"<line x1="{px:.1}" x2="{px:.1}" y1="{}" y2="{}" class="mark"/>"#,
            f.top,
            f.top + PLOT_HEIGHT
        );
    }
    for s in &plot.series {
        match &s.mark {
            Mark::Line(segs) => polylines(svg, s, segs, f),
            Mark::Dots(points) => dots(svg, s, points, f),
            Mark::Band(segs) => band(svg, s, segs, f),
        }
    }
    svg.push_str("</g>");
    for (value, label) in &plot.hlines {
        let y = f.py(*value);
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" class="ref"/><text x="{}" y="{:.1}" class="reflabel">{}</text>"#,
            WIDTH - RIGHT,
            WIDTH - RIGHT - 4.0,
            y - 4.0,
            escape(label)
        );
    }
}

fn polylines(svg: &mut String, s: &Series, segments: &[Vec<Point>], f: &Frame) {
    let dash = if s.dashed {
        r#" stroke-dasharray="6 3""#
    } else {
        ""
    };
    let _ = write!(
        svg,
        r#"<g fill="none" stroke="{}" stroke-width="1.4"{dash}><title>{}</title>"#,
        escape(&s.color),
        escape(&s.name)
    );
    for seg in segments {
        let pts = pixels(seg, f);
        match pts.len() {
            0 => {}
            // A lone point between two gaps: a short tick, so it is not lost.
            1 => {
                let (x, y) = pts[0];
                let _ = write!(
                    svg,
                    r#"<path d="M{:.1} {y:.1}h1.5" stroke-linecap="round" stroke-width="2.5"/>"#,
                    x - 0.75
                );
            }
            _ => {
                let text: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                let _ = write!(svg, r#"<polyline points="{}"/>"#, text.join(" "));
            }
        }
    }
    svg.push_str("</g>");
}

fn dots(svg: &mut String, s: &Series, points: &[Point], f: &Frame) {
    // One path of zero-length round-capped segments: thousands of dots, one element.
    let mut d = String::new();
    for (x, y) in pixels(points, f) {
        let _ = write!(d, "M{x:.1} {y:.1}h0");
    }
    let _ = write!(
        svg,
        r#"<path class="dots" d="{d}" stroke="{}" stroke-width="3.2" stroke-linecap="round" fill="none"><title>{}</title></path>"#,
        escape(&s.color),
        escape(&s.name)
    );
}

fn band(svg: &mut String, s: &Series, segments: &[Vec<(f64, f64, f64)>], f: &Frame) {
    let _ = write!(
        svg,
        r#"<g fill="{}" fill-opacity=".25" stroke="none"><title>{}</title>"#,
        escape(&s.color),
        escape(&s.name)
    );
    for seg in segments {
        let ok: Vec<&(f64, f64, f64)> = seg
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite() && p.2.is_finite())
            .collect();
        if ok.is_empty() {
            continue;
        }
        let upper = ok.iter().map(|p| (f.px(p.0), f.py(p.2)));
        let lower = ok.iter().rev().map(|p| (f.px(p.0), f.py(p.1)));
        let pts: Vec<String> = upper
            .chain(lower)
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = write!(svg, r#"<polygon points="{}"/>"#, pts.join(" "));
    }
    svg.push_str("</g>");
}

/// Pixel positions of the usable points.
fn pixels(points: &[Point], f: &Frame) -> Vec<(f64, f64)> {
    points
        .iter()
        .filter(|p| usable(p, f.log_x))
        .map(|&(x, y)| (f.px(x), f.py(y)))
        .collect()
}

fn axes(svg: &mut String, plot: &Plot, f: &Frame, height: f64) {
    let (bottom, right) = (f.top + PLOT_HEIGHT, WIDTH - RIGHT);
    let _ = write!(
        svg,
        r#"<rect x="{LEFT}" y="{}" width="{}" height="{PLOT_HEIGHT}" class="area"/>"#,
        f.top,
        right - LEFT
    );
    for (value, label) in y_ticks(f) {
        let y = f.py(value);
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" x2="{right}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{}" y="{:.1}" class="ytick">{label}</text>"#,
            LEFT - 6.0,
            y + 4.0
        );
    }
    for (value, label) in x_ticks(f) {
        let x = f.px(value);
        let _ = write!(
            svg,
            r#"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{bottom}" class="grid"/><text x="{x:.1}" y="{}" class="xtick">{label}</text>"#,
            f.top,
            bottom + 16.0
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" class="xlabel">{}</text>"#,
        (LEFT + right) / 2.0,
        height - 8.0,
        escape(&plot.x_label)
    );
    let cy = f.top + PLOT_HEIGHT / 2.0;
    let _ = write!(
        svg,
        r#"<text x="16" y="{cy}" class="ylabel" transform="rotate(-90 16 {cy})">{}</text>"#,
        escape(&plot.y_label)
    );
}

fn usable(p: &(f64, f64), log_x: bool) -> bool {
    p.0.is_finite() && p.1.is_finite() && (!log_x || p.0 > 0.0)
}

/// The data range (x in log10 units when `log_x`), or `None` without any usable point.
fn data_frame(plot: &Plot, top: f64) -> Option<Frame> {
    let pts: Vec<(f64, f64)> = plot
        .series
        .iter()
        .flat_map(Series::points)
        .filter(|p| usable(p, plot.log_x))
        .map(|(x, y)| (if plot.log_x { x.log10() } else { x }, y))
        .collect();
    let (x0, x1) = match plot.x_range {
        Some(r) if !pts.is_empty() => r,
        _ => min_max(pts.iter().map(|p| p.0))?,
    };
    let ys = pts
        .iter()
        .map(|p| p.1)
        .chain(plot.hlines.iter().map(|h| h.0));
    let ys = ys.chain(plot.y_from_zero.then_some(0.0));
    let (y0, mut y1) = min_max(ys)?;
    if let Some(cap) = plot.y_cap {
        y1 = y1.min(cap);
    }
    let (x0, x1) = widen(x0, x1);
    let (y0, y1) = widen(y0, y1 + (y1 - y0) * 0.05);
    Some(Frame {
        x0,
        x1,
        y0,
        y1,
        top,
        log_x: plot.log_x,
    })
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// A zero-width range would divide by zero: widen it around its value.
fn widen(lo: f64, hi: f64) -> (f64, f64) {
    if hi - lo > f64::EPSILON * hi.abs().max(1.0) {
        (lo, hi)
    } else {
        let pad = (lo.abs() * 0.1).max(0.5);
        (lo - pad, hi + pad)
    }
}

/// A tick step of 1, 2 or 5 × 10^k giving about `target` ticks over `range`.
pub fn nice_step(range: f64, target: f64) -> f64 {
    let raw = range / target;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let factor = if norm < 1.5 {
        1.0
    } else if norm < 3.5 {
        2.0
    } else if norm < 7.5 {
        5.0
    } else {
        10.0
    };
    factor * mag
}

/// Tick values from `lo` to `hi` at a nice step, with labels of just enough decimals.
pub fn linear_ticks(lo: f64, hi: f64, target: f64) -> Vec<(f64, String)> {
    let step = nice_step(hi - lo, target);
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last)
        .take(50)
        .map(|k| {
            let v = k as f64 * step;
            (v, format!("{v:.decimals$}"))
        })
        .collect()
}

fn y_ticks(f: &Frame) -> Vec<(f64, String)> {
    linear_ticks(f.y0, f.y1, 5.0)
}

fn x_ticks(f: &Frame) -> Vec<(f64, String)> {
    if !f.log_x {
        return linear_ticks(f.x0, f.x1, 10.0);
    }
    log_ticks(f.x0, f.x1)
}

/// Ticks for a log10 axis spanning `lo..hi` (in log10 units): powers of ten, plus 2× and
/// 5× when fewer than three decades would leave the axis nearly unlabelled.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    let (first, last) = (lo.floor() as i32, hi.ceil() as i32);
    let mantissas: &[f64] = if hi - lo < 3.0 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    (first..=last)
        .take(20)
        .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
        .filter(|v| (lo..=hi).contains(&v.log10()))
        .map(|v| (v, si_label(v)))
        .collect()
}

fn si_label(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{}M", v / 1e6),
        v if v >= 1e3 => format!("{}k", v / 1e3),
        v => format!("{v}"),
    }
}

/// Keeps at most `max_points` points (≥ 2): the series is cut into buckets of equal
/// count and each bucket keeps its lowest and highest point, in x order, so spikes
/// survive (min/max decimation).
pub fn decimate(points: &[(f64, f64)], max_points: usize) -> Vec<(f64, f64)> {
    let max_points = max_points.max(2);
    if points.len() <= max_points {
        return points.to_vec();
    }
    let buckets = max_points / 2;
    let size = points.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(max_points);
    for chunk in points.chunks(size) {
        let by_y = |a: &&(f64, f64), b: &&(f64, f64)| a.1.total_cmp(&b.1);
        let (lo_i, _) = chunk
            .iter()
            .enumerate()
            .min_by(|a, b| by_y(&a.1, &b.1))
            .unwrap_or((0, &chunk[0]));
        let (hi_i, _) = chunk
            .iter()
            .enumerate()
            .max_by(|a, b| by_y(&a.1, &b.1))
            .unwrap_or((0, &chunk[0]));
        let (a, b) = (lo_i.min(hi_i), lo_i.max(hi_i));
        out.push(chunk[a]);
        if b != a {
            out.push(chunk[b]);
        }
    }
    out
}

/// Empirical CDF points (value, fraction ≤ value) of `values`, at most `max_points`
/// (≥ 2): evenly spaced ranks, always including the minimum and the maximum.
pub fn cdf(values: &[f64], max_points: usize) -> Vec<(f64, f64)> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    let keep = max_points.max(2).min(n);
    (0..keep)
        .map(|k| {
            let i = if keep == 1 {
                0
            } else {
                k * (n - 1) / (keep - 1)
            };
            (sorted[i], (i + 1) as f64 / n as f64)
        })
        .collect()
}

/// Escapes text for HTML and SVG content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_owned()
    } else {
        let head: String = s.chars().take(max_chars - 1).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_are_1_2_5_times_a_power_of_ten() {
        assert_eq!(nice_step(10.0, 5.0), 2.0);
        assert_eq!(nice_step(1.0, 10.0), 0.1);
        assert_eq!(nice_step(700.0, 5.0), 100.0);
        assert_eq!(nice_step(0.37, 5.0), 0.05);
    }

    #[test]
    fn ticks_lie_inside_the_range_with_matching_decimals() {
        let ticks = linear_ticks(0.55, 1.02, 5.0);
        let labels: Vec<&str> = ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0.6", "0.7", "0.8", "0.9", "1.0"]);
    }

    #[test]
    fn decimation_bounds_the_count_and_keeps_extremes() {
        let pts: Vec<(f64, f64)> = (0..100_000)
            .map(|i| {
                (
                    i as f64,
                    if i == 77_777 {
                        9e9
                    } else if i == 3 {
                        -5.0
                    } else {
                        (i % 7) as f64
                    },
                )
            })
            .collect();
        let out = decimate(&pts, 2000);
        assert!(out.len() <= 2000, "{}", out.len());
        assert!(out.contains(&(77_777.0, 9e9)));
        assert!(out.contains(&(3.0, -5.0)));
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0), "x order kept");
        assert_eq!(decimate(&pts[..10], 2000), pts[..10].to_vec());
    }

    #[test]
    fn cdf_is_monotone_and_ends_at_one() {
        let values: Vec<f64> = (0..10_000).rev().map(f64::from).collect();
        let c = cdf(&values, 500);
        assert!(c.len() <= 500);
        assert_eq!(c.first().unwrap().0, 0.0);
        assert_eq!(*c.last().unwrap(), (9999.0, 1.0));
        assert!(c.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        assert!(cdf(&[], 10).is_empty());
        assert_eq!(cdf(&[5.0], 10), vec![(5.0, 1.0)]);
    }

    #[test]
    fn empty_plot_says_no_data_and_hostile_names_are_escaped() {
        let svg = render(
            &Plot {
                title: "<t>".into(),
                ..Plot::default()
            },
            "p",
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("no data"));
        assert!(svg.contains("&lt;t&gt;") && !svg.contains("<t>"));
    }

    #[test]
    fn single_point_and_log_axis_render_finite_coordinates() {
        let plot = Plot {
            series: vec![Series::line(
                "a",
                PALETTE[0],
                vec![(100.0, 0.5), (0.0, 0.1), (10_000.0, 1.0)],
            )],
            log_x: true,
            ..Plot::default()
        };
        let svg = render(&plot, "p");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert!(svg.contains(">100<") && svg.contains(">10k<"));
        let labels: Vec<String> = log_ticks(2.0f64.log10() + 1.0, 4000f64.log10())
            .into_iter()
            .map(|t| t.1)
            .collect();
        assert_eq!(labels, ["20", "50", "100", "200", "500", "1k", "2k"]);
        let one = Plot {
            series: vec![Series::line("b", PALETTE[1], vec![(1.0, 1.0)])],
            ..Plot::default()
        };
        assert!(!render(&one, "q").contains("NaN"));
    }

    #[test]
    fn segments_are_separate_polylines_and_bands_are_polygons() {
        let plot = Plot {
            series: vec![
                Series {
                    name: "band".into(),
                    color: BAND_COLOR.into(),
                    mark: Mark::Band(vec![vec![(0.0, 0.5, 1.5), (1.0, 0.6, 1.4)]]),
                    dashed: false,
                },
                Series::segments(
                    "a",
                    PALETTE[0],
                    vec![vec![(0.0, 1.0), (1.0, 1.0)], vec![(3.0, 1.0), (4.0, 1.0)]],
                ),
                Series {
                    name: "d".into(),
                    color: PALETTE[1].into(),
                    mark: Mark::Dots(vec![(2.0, 3.0), (2.5, 9.0)]),
                    dashed: false,
                },
            ],
            x_range: Some((0.0, 10.0)),
            y_cap: Some(5.0),
            ..Plot::default()
        };
        let svg = render(&plot, "x");
        assert_eq!(svg.matches("<polyline").count(), 2, "one per segment");
        assert_eq!(svg.matches("<polygon").count(), 1);
        assert_eq!(svg.matches("h0").count(), 2, "one dot each");
        assert!(svg.contains(r#"clip-path="url(#clip-x)""#));
        assert!(svg.contains(">10<"), "x axis runs to the fixed 10: {svg}");
    }
}
