//! An SVG chart of a simulation: demand (left axis) against desired and ready replicas (right
//! axis), with panic periods shaded.
//!
//! Hand-written SVG rather than a plotting library: three polylines and two axes do not justify
//! a dependency tree (fonts, image codecs) in the workspace.

use std::fmt::Write as _;

use crate::simulate::Row;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 70.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const TICKS: u32 = 5;

const DEMAND_COLOUR: &str = "#1f77b4";
const DESIRED_COLOUR: &str = "#ff7f0e";
const READY_COLOUR: &str = "#2ca02c";

/// Renders the rows as a standalone SVG document. `demand_label` names the demand unit
/// (`concurrency` or `rps`).
pub fn render_svg(rows: &[Row], demand_label: &str) -> String {
    let t0 = rows.first().map_or(0, |r| r.t) as f64;
    let t1 = rows.last().map_or(1, |r| r.t).max(t0 as u64 + 1) as f64;
    let demand_max = nice_max(rows.iter().map(|r| r.demand).fold(0.0, f64::max));
    let replicas_max = nice_max(
        rows.iter()
            .map(|r| f64::from(r.desired.max(r.ready)))
            .fold(0.0, f64::max),
    );
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |t: f64| LEFT + (t - t0) / (t1 - t0) * plot_w;
    let y = |v: f64, max: f64| TOP + plot_h - v / max * plot_h;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);

    // Panic periods first, so the lines draw over them.
    for run in panic_runs(rows) {
        let (a, b) = (x(run.0 as f64), x((run.1 + 1).min(t1 as u64) as f64));
        let _ = writeln!(
            svg,
            r##"<rect x="{a:.1}" y="{TOP}" width="{:.1}" height="{plot_h}" fill="#d62728" fill-opacity="0.08"/>"##,
            (b - a).max(1.0)
        );
    }

    for i in 0..=TICKS {
        let f = f64::from(i) / f64::from(TICKS);
        let gy = TOP + plot_h - f * plot_h;
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{gy:.1}" x2="{:.1}" y2="{gy:.1}" stroke="#ddd"/>"##,
            LEFT + plot_w
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="{DEMAND_COLOUR}">{}</text>"##,
            LEFT - 6.0,
            gy + 4.0,
            fmt_num(f * demand_max)
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" fill="{DESIRED_COLOUR}">{}</text>"##,
            LEFT + plot_w + 6.0,
            gy + 4.0,
            fmt_num(f * replicas_max)
        );
        let t = t0 + f * (t1 - t0);
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}s</text>"#,
            x(t),
            TOP + plot_h + 18.0,
            fmt_num(t)
        );
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>"##
    );

    let demand: Vec<(f64, f64)> = rows.iter().map(|r| (r.t as f64, r.demand)).collect();
    let desired: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| (r.t as f64, f64::from(r.desired)))
        .collect();
    let ready: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| (r.t as f64, f64::from(r.ready)))
        .collect();
    let line = |svg: &mut String, points: &[(f64, f64)], max: f64, colour: &str, dash: &str| {
        let path: Vec<String> = points
            .iter()
            .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v, max)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}" points="{}"/>"#,
            path.join(" ")
        );
    };
    line(&mut svg, &demand, demand_max, DEMAND_COLOUR, "");
    line(&mut svg, &desired, replicas_max, DESIRED_COLOUR, "6 3");
    line(&mut svg, &ready, replicas_max, READY_COLOUR, "");

    let legend = [
        (DEMAND_COLOUR, format!("demand ({demand_label}, left axis)")),
        (DESIRED_COLOUR, "desired replicas (right axis)".to_string()),
        (READY_COLOUR, "ready replicas (right axis)".to_string()),
        ("#d62728", "panic mode (shaded)".to_string()),
    ];
    for (i, (colour, label)) in legend.iter().enumerate() {
        let lx = LEFT + i as f64 * 215.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{lx}" y="14" width="12" height="12" fill="{colour}"/><text x="{:.1}" y="24">{label}</text>"#,
            lx + 16.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 10.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// Inclusive `(first, last)` seconds of each panicking run.
fn panic_runs(rows: &[Row]) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for r in rows.iter().filter(|r| r.panicking) {
        match runs.last_mut() {
            Some(run) if run.1 + 1 == r.t => run.1 = r.t,
            _ => runs.push((r.t, r.t)),
        }
    }
    runs
}

/// A round axis maximum at or above `v` (1, 2 or 5 × 10^k), at least 1.
fn nice_max(v: f64) -> f64 {
    if v <= 1.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    for step in [1.0, 2.0, 5.0, 10.0] {
        if step * magnitude >= v {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

fn fmt_num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round())
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: u64, demand: f64, desired: u32, panicking: bool) -> Row {
        Row {
            t,
            demand,
            stable: None,
            panic: None,
            panicking,
            desired,
            ready: desired,
        }
    }

    #[test]
    fn renders_three_lines_and_shades_panic() {
        let rows = [
            row(0, 0.0, 0, false),
            row(1, 50.0, 5, true),
            row(2, 50.0, 5, true),
        ];
        let svg = render_svg(&rows, "concurrency");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(svg.contains("fill-opacity"));
    }

    #[test]
    fn axis_maxima_are_round() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(12.0), 20.0);
        assert_eq!(nice_max(500.0), 500.0);
    }
}
