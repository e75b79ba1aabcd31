//! The latency-against-load chart of `make bench-controlplane`, as a small SVG file.
//!
//! Hand-written rather than drawn with a plotting crate: three panels of three polylines with
//! axes, ticks and a legend are about a hundred lines of SVG text, while `plotters` (even with
//! the SVG backend only) would add a dependency tree for one picture. The file is plain SVG
//! 1.1 that browsers and GitHub render as is.

use std::fmt::Write as _;

/// (clients, median ms, p99 ms, creates/s)
pub type Point = (usize, f64, f64, f64);

/// Picks the plotted figure of a point.
type Pick = fn(&Point) -> f64;

/// One line of the chart: a setup's figures at each client count.
pub struct Series<'a> {
    pub label: &'a str,
    pub colour: &'a str,
    pub points: Vec<Point>,
}

const PANEL_W: f64 = 300.0;
const PANEL_H: f64 = 260.0;
const LEFT: f64 = 60.0;
const TOP: f64 = 80.0;
const GAP: f64 = 80.0;

/// A tick step of 1, 2 or 5 times a power of ten giving about five ticks up to `max`.
fn tick_step(max: f64) -> f64 {
    let rough = (max / 5.0).max(f64::MIN_POSITIVE);
    let power = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * power)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Draws one panel at x offset `x0`; `value` picks the plotted figures of a point.
#[allow(clippy::too_many_arguments)]
fn panel(
    out: &mut String,
    x0: f64,
    title: &str,
    unit: &str,
    clients: &[usize],
    series: &[Series<'_>],
    lines: &[(&str, Pick)],
) {
    let max = series
        .iter()
        .flat_map(|s| s.points.iter())
        .flat_map(|p| lines.iter().map(move |(_, f)| f(p)))
        .fold(0.0f64, f64::max);
    let step = tick_step(max * 1.05);
    let top = (max * 1.05 / step).ceil().max(1.0) * step;
    let y = |v: f64| TOP + PANEL_H - v / top * PANEL_H;
    // Client counts are doubled each step, so they sit at equal distances.
    let n = clients.len().max(2) as f64;
    let x = |i: usize| x0 + 20.0 + i as f64 * (PANEL_W - 40.0) / (n - 1.0);
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="14" font-weight="bold">{}</text>"#,
        x0,
        TOP - 10.0,
        escape(title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{x0:.1}" y="{TOP:.1}" width="{PANEL_W:.1}" height="{PANEL_H:.1}" fill="none" stroke="#999"/>"##
    );
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let _ = writeln!(
            out,
            r##"<line x1="{x0:.1}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            x0 + PANEL_W,
            x0 - 6.0,
            y(v) + 4.0,
            trim_number(v),
            yy = y(v),
        );
        v += step;
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="11" transform="rotate(-90 {:.1} {:.1})" text-anchor="middle">{}</text>"#,
        x0 - 42.0,
        TOP + PANEL_H / 2.0,
        x0 - 42.0,
        TOP + PANEL_H / 2.0,
        escape(unit)
    );
    for (i, c) in clients.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{c}</text>"#,
            x(i),
            TOP + PANEL_H + 16.0
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">concurrent clients</text>"#,
        x0 + PANEL_W / 2.0,
        TOP + PANEL_H + 34.0
    );
    for s in series {
        for (dash, f) in lines {
            let pts: Vec<String> = s
                .points
                .iter()
                .filter_map(|p| {
                    let i = clients.iter().position(|c| *c == p.0)?;
                    Some(format!("{:.1},{:.1}", x(i), y(f(p))))
                })
                .collect();
            let _ = writeln!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2" stroke-dasharray="{}"/>"#,
                pts.join(" "),
                s.colour,
                dash
            );
            for p in &pts {
                let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(
                    out,
                    r#"<circle cx="{px}" cy="{py}" r="3" fill="{}"/>"#,
                    s.colour
                );
            }
        }
    }
}

fn trim_number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.1}")
    }
}

/// The whole chart: median and p99 create latency (dashed) and creates/s against the
/// number of concurrent clients, one colour per setup. `caption` goes under the title.
pub fn svg(title: &str, caption: &str, series: &[Series<'_>]) -> String {
    let mut clients: Vec<usize> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    clients.sort_unstable();
    clients.dedup();
    let width = LEFT + 3.0 * PANEL_W + 2.0 * GAP + 20.0;
    let height = TOP + PANEL_H + 100.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif">"#
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#fff"/><text x="{LEFT:.1}" y="20" font-size="15" font-weight="bold">{}</text><text x="{LEFT:.1}" y="38" font-size="11" fill="#555">{}</text>"##,
        escape(title),
        escape(caption)
    );
    // One panel per figure, each on its own scale: the p99 would flatten the medians.
    panel(
        &mut out,
        LEFT,
        "Median create latency",
        "milliseconds",
        &clients,
        series,
        &[("none", |p| p.1)],
    );
    panel(
        &mut out,
        LEFT + PANEL_W + GAP,
        "p99 create latency",
        "milliseconds",
        &clients,
        series,
        &[("6 4", |p| p.2)],
    );
    panel(
        &mut out,
        LEFT + 2.0 * (PANEL_W + GAP),
        "Creates per second",
        "creates/s",
        &clients,
        series,
        &[("none", |p| p.3)],
    );
    let legend_y = TOP + PANEL_H + 62.0;
    for (i, s) in series.iter().enumerate() {
        let lx = LEFT + i as f64 * 230.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx:.1}" x2="{:.1}" y1="{legend_y:.1}" y2="{legend_y:.1}" stroke="{}" stroke-width="3"/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"#,
            lx + 24.0,
            s.colour,
            lx + 30.0,
            legend_y + 4.0,
            escape(s.label)
        );
    }
    out.push_str("</svg>\n");
    out
}
