//! The report's four charts as inline SVG strings, drawn with plotters: requests and errors per
//! second, latency percentiles per second, replicas with cold starts and panic periods, and the
//! run's latency histogram. Each chart stands alone; a chart that fails to draw becomes a small
//! SVG saying so rather than failing the whole report.

use std::error::Error;
use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::combinators::LogCoord;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::ticks::{count_axis, log_ticks, ms_label, time_ticks};
use crate::record::{PhaseSpan, RunRecord};

const SIZE: (u32, u32) = (960, 320);
const FONT: &str = "sans-serif";
/// Log-scale axes need a positive floor: 0.1 ms is below anything a loopback request takes.
const LOG_FLOOR_MS: f64 = 0.1;
const HISTOGRAM_BINS: usize = 40;

type Drawn = Result<(), Box<dyn Error>>;
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Requests per second that succeeded, and errors per second (failed, timed out or dropped).
pub fn requests(record: &RunRecord) -> String {
    svg(|root| {
        let seconds = &record.timeline.seconds;
        let ok: Vec<(f64, f64)> = seconds
            .iter()
            .map(|s| (s.index as f64, s.counts.succeeded as f64))
            .collect();
        let errors: Vec<(f64, f64)> = seconds
            .iter()
            .map(|s| {
                let c = s.counts;
                (s.index as f64, (c.failed() + c.timeouts + c.dropped) as f64)
            })
            .collect();
        let peak = ok.iter().chain(&errors).map(|p| p.1).fold(0.0, f64::max);
        let y = count_axis(peak as u64);
        let top = y.top;
        let mut chart = ChartBuilder::on(root)
            .caption("Requests per second", (FONT, 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(time_axis(record), Ticked::new(0.0..top, y.ticks))?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("requests/s")
            .x_label_formatter(&whole)
            .y_label_formatter(&whole)
            .draw()?;
        phases(&mut chart, &record.phases, 0.0, top)?;
        chart
            .draw_series(LineSeries::new(ok, GREEN.stroke_width(2)))?
            .label("succeeded")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
        chart
            .draw_series(LineSeries::new(errors, RED.stroke_width(2)))?
            .label("errors")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
        legend(&mut chart)
    })
}

/// p50, p90 and p99 latency of each second's answered requests, on a log scale.
pub fn latency(record: &RunRecord) -> String {
    svg(|root| {
        let per_second: Vec<(f64, [f64; 3])> = record
            .timeline
            .seconds
            .iter()
            .filter_map(|s| {
                let p = s.percentiles()?;
                Some((s.index as f64, [ms(p.p50), ms(p.p90), ms(p.p99)]))
            })
            .collect();
        let highest = per_second
            .iter()
            .flat_map(|(_, p)| p.iter().copied())
            .fold(10.0, f64::max);
        let top = highest * 2.0;
        let mut chart = ChartBuilder::on(root)
            .caption("Latency per second", (FONT, 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(time_axis(record), (LOG_FLOOR_MS..top).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("ms (log)")
            .x_label_formatter(&whole)
            .draw()?;
        phases(&mut chart, &record.phases, LOG_FLOOR_MS, top)?;
        for (i, (name, color)) in [("p50", BLUE), ("p90", MAGENTA), ("p99", RED)]
            .into_iter()
            .enumerate()
        {
            let points = per_second.iter().map(|(x, p)| (*x, p[i].max(LOG_FLOOR_MS)));
            chart
                .draw_series(
                    runs(points)
                        .into_iter()
                        .map(|run| PathElement::new(run, color.stroke_width(2))),
                )?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        legend(&mut chart)
    })
}

/// Desired and ready replicas as step lines, panic periods shaded, cold starts as marks.
pub fn replicas(record: &RunRecord) -> String {
    svg(|root| {
        let samples = &record.samples;
        let highest = samples
            .iter()
            .map(|s| s.desired.max(s.actual))
            .max()
            .unwrap_or(0);
        let y = count_axis(u64::try_from(highest).unwrap_or(0));
        let top = y.top;
        let end = x_end(record);
        let mut chart = ChartBuilder::on(root)
            .caption("Replicas", (FONT, 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(time_axis(record), Ticked::new(0.0..top, y.ticks))?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("replicas")
            .x_label_formatter(&whole)
            .y_label_formatter(&whole)
            .draw()?;
        phases(&mut chart, &record.phases, 0.0, top)?;
        let panic = RED.mix(0.18);
        chart
            .draw_series(
                panic_periods(record, end)
                    .into_iter()
                    .map(|(from, to)| Rectangle::new([(from, 0.0), (to, top)], panic.filled())),
            )?
            .label("panic mode")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], panic.filled()));
        let cold = BLUE.mix(0.7);
        chart
            .draw_series(record.cold_starts.iter().map(|c| {
                let x = c.at.as_secs_f64();
                PathElement::new(vec![(x, 0.0), (x, top * 0.25)], cold.stroke_width(2))
            }))?
            .label("cold start")
            .legend(move |(x, y)| PathElement::new(vec![(x + 10, y - 6), (x + 10, y + 6)], cold));
        // The autoscaler reports -1 until it has data: no desired count to draw then.
        let desired = steps(
            samples
                .iter()
                .filter(|s| s.desired >= 0)
                .map(|s| (s.at.as_secs_f64(), s.desired as f64)),
        );
        let actual = steps(
            samples
                .iter()
                .map(|s| (s.at.as_secs_f64(), s.actual as f64)),
        );
        chart
            .draw_series(LineSeries::new(desired, BLACK.mix(0.6).stroke_width(2)))?
            .label("desired")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.6)));
        chart
            .draw_series(LineSeries::new(actual, GREEN.stroke_width(2)))?
            .label("ready")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
        legend(&mut chart)
    })
}

/// How many answered requests took how long, over the whole run, in log-spaced bins.
pub fn histogram(record: &RunRecord) -> String {
    svg(|root| {
        let latency = &record.timeline.latency_us;
        let (low, high) = if latency.is_empty() {
            (LOG_FLOOR_MS, 1000.0)
        } else {
            let low = (latency.min() as f64 / 1000.0).max(LOG_FLOOR_MS);
            let high = (latency.max() as f64 / 1000.0).max(low * 1.1);
            (low, high)
        };
        let edges: Vec<f64> = (0..=HISTOGRAM_BINS)
            .map(|i| low * (high / low).powf(i as f64 / HISTOGRAM_BINS as f64))
            .collect();
        let mut counts = [0u64; HISTOGRAM_BINS];
        for value in latency.iter_recorded() {
            let at = (value.value_iterated_to() as f64 / 1000.0).max(low);
            let bin = ((at / low).ln() / (high / low).ln() * HISTOGRAM_BINS as f64) as usize;
            counts[bin.min(HISTOGRAM_BINS - 1)] += value.count_at_value();
        }
        let y = count_axis(counts.iter().copied().max().unwrap_or(0));
        let mut chart = ChartBuilder::on(root)
            .caption("Latency histogram (whole run)", (FONT, 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(
                LogTicked::new(edges[0]..edges[HISTOGRAM_BINS]),
                Ticked::new(0.0..y.top, y.ticks),
            )?;
        chart
            .configure_mesh()
            .x_desc("ms (log)")
            .y_desc("requests")
            .x_label_formatter(&|ms| ms_label(*ms))
            .y_label_formatter(&whole)
            .draw()?;
        chart.draw_series(counts.iter().enumerate().filter(|(_, c)| **c > 0).map(
            |(i, count)| {
                Rectangle::new(
                    [(edges[i], 0.0), (edges[i + 1], *count as f64)],
                    BLUE.mix(0.6).filled(),
                )
            },
        ))?;
        Ok(())
    })
}

/// A process's resident memory over a run, in MiB: the samples, the limit it must stay
/// under (a dashed line) and, when it was killed and restarted, the outage (a shaded band).
pub fn resident_memory(
    samples_mib: &[(f64, f64)],
    limit_mib: f64,
    outage: Option<(f64, f64)>,
    end: f64,
) -> String {
    svg(|root| {
        let peak = samples_mib.iter().map(|p| p.1).fold(limit_mib, f64::max);
        let y = count_axis(peak.ceil() as u64);
        let top = y.top;
        let end = samples_mib.iter().map(|p| p.0).fold(end.max(1.0), f64::max);
        let mut chart = ChartBuilder::on(root)
            .caption("wisp up resident memory (RSS)", (FONT, 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(
                Ticked::new(0.0..end, time_ticks(end)),
                Ticked::new(0.0..top, y.ticks),
            )?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("MiB")
            .x_label_formatter(&whole)
            .y_label_formatter(&whole)
            .draw()?;
        let down = RED.mix(0.18);
        chart
            .draw_series(
                outage
                    .into_iter()
                    .map(|(from, to)| Rectangle::new([(from, 0.0), (to, top)], down.filled())),
            )?
            .label("killed, restarting")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], down.filled()));
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, limit_mib), (end, limit_mib)],
                6,
                4,
                BLACK.mix(0.6).stroke_width(1),
            ))?
            .label("limit")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.6)));
        // A gap in the samples (the outage) breaks the line rather than bridging it.
        for (index, part) in gaps(samples_mib).into_iter().enumerate() {
            let series = chart.draw_series(LineSeries::new(part, BLUE.stroke_width(2)))?;
            if index == 0 {
                series
                    .label("RSS")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
            }
        }
        legend(&mut chart)
    })
}

/// `points` split where consecutive ones are more than 2 s apart.
fn gaps(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut parts: Vec<Vec<(f64, f64)>> = Vec::new();
    for point in points {
        match parts.last_mut() {
            Some(part) if part.last().is_some_and(|last| point.0 - last.0 <= 2.0) => {
                part.push(*point)
            }
            _ => parts.push(vec![*point]),
        }
    }
    parts
}

/// Draws into a fresh SVG string; a failure becomes a chart that says so.
fn svg(draw: impl FnOnce(&Area<'_>) -> Drawn) -> String {
    let mut out = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE)
            .map_err(Into::into)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(Into::into))
    };
    match drawn {
        Ok(()) => out,
        Err(error) => failed(&error.to_string()),
    }
}

fn failed(reason: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}"><text x="10" y="20">chart could not be drawn: {}</text></svg>"#,
        SIZE.0,
        SIZE.1,
        super::html::escape(reason)
    )
}

/// Labelled bands behind a time chart, alternating shades so neighbours stay apart.
fn phases<X, Y>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<X, Y>>,
    phases: &[PhaseSpan],
    bottom: f64,
    top: f64,
) -> Drawn
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let shades = [RGBColor(230, 236, 245), RGBColor(245, 240, 228)];
    chart.draw_series(phases.iter().enumerate().map(|(i, phase)| {
        Rectangle::new(
            [
                (phase.start.as_secs_f64(), bottom),
                (phase.end.as_secs_f64(), top),
            ],
            shades[i % 2].mix(0.6).filled(),
        )
    }))?;
    chart.draw_series(phases.iter().map(|phase| {
        Text::new(
            phase.kind.clone(),
            (phase.start.as_secs_f64(), top),
            (FONT, 11).into_font().color(&BLACK.mix(0.7)),
        )
    }))?;
    Ok(())
}

fn legend<'a, 'b: 'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>,
) -> Drawn
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

/// Contiguous runs of samples in panic mode, each lasting until the next sample (or `end`).
fn panic_periods(record: &RunRecord, end: f64) -> Vec<(f64, f64)> {
    let mut periods = Vec::new();
    let mut from = None;
    for sample in &record.samples {
        let at = sample.at.as_secs_f64();
        match (sample.panic, from) {
            (true, None) => from = Some(at),
            (false, Some(start)) => {
                periods.push((start, at));
                from = None;
            }
            _ => {}
        }
    }
    if let Some(start) = from {
        periods.push((start, end));
    }
    periods
}

/// Splits a per-second series where seconds are missing: a second without answers has no
/// latency, and joining across it would draw latencies nobody measured.
fn runs(points: impl Iterator<Item = (f64, f64)>) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    for point in points {
        match out.last_mut() {
            Some(run) if run.last().is_some_and(|last| point.0 - last.0 <= 1.0) => run.push(point),
            _ => out.push(vec![point]),
        }
    }
    // A lone second would draw as nothing: give it a short stroke across its second.
    for run in &mut out {
        if let [only] = run[..] {
            run.push((only.0 + 0.9, only.1));
        }
    }
    out
}

/// A sampled value holds until the next sample: draw it as a staircase, not a slope.
fn steps(points: impl Iterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (x, y) in points {
        if let Some(&(_, previous)) = out.last() {
            out.push((x, previous));
        }
        out.push((x, y));
    }
    out
}

/// The time axis of a run, ticked at whole seconds.
fn time_axis(record: &RunRecord) -> Ticked {
    let end = x_end(record);
    Ticked::new(0.0..end, time_ticks(end))
}

/// A linear axis ticked where it is told (and without light grid lines between the ticks).
/// plotters' own `with_key_points` wrapper would do, but it leaves a plain `f64` axis with no
/// label formatter, so the mesh cannot be drawn.
struct Ticked {
    linear: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ticked {
    fn new(range: Range<f64>, ticks: Vec<f64>) -> Self {
        Self {
            linear: range.into(),
            ticks,
        }
    }
}

impl Ranged for Ticked {
    type ValueType = f64;
    // Labels are always given a formatter (`whole`); this only makes the mesh drawable.
    type FormatOption = DefaultFormatting;

    fn range(&self) -> Range<f64> {
        self.linear.range()
    }

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.linear.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }
}

/// A log axis ticked at [`log_ticks`]: plotters' own log axis finds no key points on a range
/// within one decade or two, which left the histogram's x axis without a single label.
struct LogTicked {
    log: LogCoord<f64>,
    ticks: Vec<f64>,
}

impl LogTicked {
    fn new(range: Range<f64>) -> Self {
        let ticks = log_ticks(range.start, range.end);
        Self {
            log: range.log_scale().into(),
            ticks,
        }
    }
}

impl Ranged for LogTicked {
    type ValueType = f64;
    // Labels are always given a formatter (`ms_label`); this only makes the mesh drawable.
    type FormatOption = DefaultFormatting;

    fn range(&self) -> Range<f64> {
        self.log.range()
    }

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.log.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }
}

/// The time axis covers every second, phase, sample and cold start (at least one second).
fn x_end(record: &RunRecord) -> f64 {
    let seconds = record.timeline.seconds.len() as f64;
    let phases = record.phases.iter().map(|p| p.end.as_secs_f64());
    let samples = record.samples.iter().map(|s| s.at.as_secs_f64());
    let colds = record.cold_starts.iter().map(|c| c.at.as_secs_f64());
    phases
        .chain(samples)
        .chain(colds)
        .chain([seconds, record.timeline.elapsed.as_secs_f64(), 1.0])
        .fold(0.0, f64::max)
}

fn whole(value: &f64) -> String {
    format!("{value:.0}")
}

fn ms(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ScalingSample;
    use std::time::Duration;

    fn empty() -> RunRecord {
        RunRecord::default()
    }

    #[test]
    fn every_chart_draws_an_svg_from_nothing() {
        let record = empty();
        for chart in [
            requests(&record),
            latency(&record),
            replicas(&record),
            histogram(&record),
            resident_memory(&[], 512.0, None, 0.0),
            resident_memory(&[(0.0, 100.0), (1.0, 120.0)], 512.0, Some((1.0, 3.0)), 4.0),
        ] {
            assert!(chart.starts_with("<svg"), "{chart}");
            assert!(chart.trim_end().ends_with("</svg>"), "{chart}");
            assert!(!chart.contains("could not be drawn"), "{chart}");
        }
    }

    #[test]
    fn the_histogram_x_axis_is_labelled() {
        let mut record = empty();
        for us in [300, 800, 2_000, 9_000, 40_000] {
            let _ = record.timeline.latency_us.record(us);
        }
        let chart = histogram(&record);
        // Labels are SVG text elements whose whole content is the number, on a line of its own.
        for label in ["0.5", "1", "2", "5", "10", "20"] {
            assert!(
                chart.contains(&format!(">\n{label}\n</text>")),
                "no {label} tick: {chart}"
            );
        }
        assert!(chart.contains(">\nms (log)\n</text>"));
    }

    #[test]
    fn runs_break_where_seconds_are_missing() {
        let split = runs([(0.0, 1.0), (1.0, 2.0), (4.0, 3.0)].into_iter());
        assert_eq!(
            split,
            vec![vec![(0.0, 1.0), (1.0, 2.0)], vec![(4.0, 3.0), (4.9, 3.0)]]
        );
    }

    #[test]
    fn memory_lines_break_at_gaps() {
        let parts = gaps(&[(0.0, 1.0), (1.0, 2.0), (5.0, 3.0), (6.0, 3.0)]);
        assert_eq!(
            parts,
            vec![vec![(0.0, 1.0), (1.0, 2.0)], vec![(5.0, 3.0), (6.0, 3.0)]]
        );
    }

    #[test]
    fn steps_hold_each_value_until_the_next_sample() {
        let points = steps([(0.0, 0.0), (2.0, 3.0), (5.0, 1.0)].into_iter());
        assert_eq!(
            points,
            vec![(0.0, 0.0), (2.0, 0.0), (2.0, 3.0), (5.0, 3.0), (5.0, 1.0)]
        );
    }

    #[test]
    fn panic_periods_run_from_first_to_next_calm_sample() {
        let mut record = empty();
        for (secs, panic) in [(0, false), (1, true), (2, true), (3, false), (4, true)] {
            record.samples.push(ScalingSample {
                at: Duration::from_secs(secs),
                desired: 1,
                actual: 1,
                panic,
                queued: 0,
            });
        }
        assert_eq!(panic_periods(&record, 9.0), vec![(1.0, 3.0), (4.0, 9.0)]);
    }
}
