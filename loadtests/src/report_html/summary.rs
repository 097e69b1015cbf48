//! The numbers a report leads with, computed from a [`RunRecord`] alone: pure functions, so the
//! HTML and Markdown pages agree and the arithmetic is tested without rendering anything.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::generator::Percentiles;
use crate::record::{PhaseSpan, RunRecord};

/// Phase kinds that send requests (as `scenario::phase` names them); `idle`, `wait-for` and
/// `apply` only wait or act.
const LOAD_KINDS: &[&str] = &["constant", "ramp", "step", "burst"];

/// Whether a phase of this kind sends load.
pub fn is_load_phase(kind: &str) -> bool {
    LOAD_KINDS.contains(&kind)
}

/// The whole run in a few numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Requests released (dropped included).
    pub requests: u64,
    /// Requests answered 2xx.
    pub succeeded: u64,
    /// `succeeded / requests`, `None` when nothing was sent.
    pub success_rate: Option<f64>,
    /// Latency of the whole run's answered requests.
    pub latency: Option<Percentiles>,
    /// Cold starts seen.
    pub cold_starts: usize,
    /// Median wait of the cold starts whose wait is known.
    pub cold_start_p50: Option<Duration>,
    /// 99th percentile wait of the cold starts whose wait is known.
    pub cold_start_p99: Option<Duration>,
    /// The most ready replicas sampled.
    pub peak_replicas: i64,
    /// From the start of the first load phase to the first sample at the peak replicas.
    pub time_to_peak: Option<Duration>,
    /// From the last request before the first scale-down to zero, to the first sample at zero.
    pub time_to_zero: Option<Duration>,
}

impl Summary {
    /// Summarises a run.
    pub fn of(record: &RunRecord) -> Self {
        let totals = record.timeline.totals;
        let waits: Vec<Duration> = record.cold_starts.iter().filter_map(|c| c.wait).collect();
        let peak_replicas = record.samples.iter().map(|s| s.actual).max().unwrap_or(0);
        Self {
            requests: totals.sent,
            succeeded: totals.succeeded,
            success_rate: ratio(totals.succeeded, totals.sent),
            latency: record.timeline.percentiles(),
            cold_starts: record.cold_starts.len(),
            cold_start_p50: nearest_rank(&waits, 0.5),
            cold_start_p99: nearest_rank(&waits, 0.99),
            peak_replicas,
            time_to_peak: time_to_peak(record, peak_replicas),
            time_to_zero: time_to_zero(record),
        }
    }
}

/// One phase's share of the requests.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseRow {
    pub kind: String,
    pub label: String,
    pub duration: Duration,
    /// Requests due in the seconds that started within the phase.
    pub requests: u64,
    pub success_rate: Option<f64>,
    pub p99: Option<Duration>,
}

impl PhaseRow {
    /// The rows of a run, one per phase in order. The timeline is kept by the second, so a
    /// second is credited to the phase it started in: exact for phases on whole seconds.
    pub fn all(record: &RunRecord) -> Vec<Self> {
        record
            .phases
            .iter()
            .map(|phase| Self::of(record, phase))
            .collect()
    }

    fn of(record: &RunRecord, phase: &PhaseSpan) -> Self {
        let mut requests = 0;
        let mut succeeded = 0;
        let mut latency: Option<Histogram<u64>> = None;
        for second in &record.timeline.seconds {
            let at = Duration::from_secs(second.index);
            if at < phase.start || at >= phase.end {
                continue;
            }
            requests += second.counts.sent;
            succeeded += second.counts.succeeded;
            match latency.as_mut() {
                // Both sides share bounds, so adding cannot fail; a failure would only lose a p99.
                Some(sum) => {
                    let _ = sum.add(&second.latency_us);
                }
                None => latency = Some(second.latency_us.clone()),
            }
        }
        Self {
            kind: phase.kind.clone(),
            label: phase.label.clone(),
            duration: phase.end.saturating_sub(phase.start),
            requests,
            success_rate: ratio(succeeded, requests),
            p99: latency
                .as_ref()
                .and_then(Percentiles::of)
                .map(|percentiles| percentiles.p99),
        }
    }
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The nearest-rank percentile: the smallest value with at least `quantile` of them at or below.
fn nearest_rank(values: &[Duration], quantile: f64) -> Option<Duration> {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied()
}

/// When load began: the first load phase, or the first second that sent anything.
fn load_start(record: &RunRecord) -> Option<Duration> {
    record
        .phases
        .iter()
        .find(|phase| is_load_phase(&phase.kind))
        .map(|phase| phase.start)
        .or_else(|| {
            record
                .timeline
                .seconds
                .iter()
                .find(|second| second.counts.sent > 0)
                .map(|second| Duration::from_secs(second.index))
        })
}

fn time_to_peak(record: &RunRecord, peak: i64) -> Option<Duration> {
    if peak <= 0 {
        return None;
    }
    let start = load_start(record)?;
    record
        .samples
        .iter()
        .find(|sample| sample.at >= start && sample.actual == peak)
        .map(|sample| sample.at - start)
}

/// The first scale-down to zero after load is the one a scale-to-zero scenario waits for (a
/// revision created with one replica may go to zero before any load; a later burst may wake it
/// again, and the run may end before it sleeps a second time).
fn time_to_zero(record: &RunRecord) -> Option<Duration> {
    record
        .samples
        .windows(2)
        .filter(|pair| pair[0].actual > 0 && pair[1].actual == 0)
        .find_map(|pair| {
            let zero = pair[1].at;
            let last_request = last_request_before(record, zero)?;
            Some(zero.saturating_sub(last_request))
        })
}

/// The end of the last load phase before `at`; without phases, the end of the last second that
/// sent anything before `at`.
fn last_request_before(record: &RunRecord, at: Duration) -> Option<Duration> {
    let from_phases = record
        .phases
        .iter()
        .filter(|phase| is_load_phase(&phase.kind) && phase.end <= at)
        .map(|phase| phase.end)
        .max();
    from_phases.or_else(|| {
        record
            .timeline
            .seconds
            .iter()
            .filter(|second| second.counts.sent > 0)
            .map(|second| Duration::from_secs(second.index + 1))
            .filter(|end| *end <= at)
            .max()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::{Outcome, Timeline};
    use crate::record::{ColdStart, ScalingSample};
    use http::StatusCode;

    fn ok(millis: u64) -> Outcome {
        Outcome::Answered {
            status: StatusCode::OK,
            latency: Duration::from_millis(millis),
        }
    }

    fn sample(secs: u64, actual: i64) -> ScalingSample {
        ScalingSample {
            at: Duration::from_secs(secs),
            desired: actual,
            actual,
            panic: false,
            queued: 0,
        }
    }

    fn phase(kind: &str, start: u64, end: u64) -> PhaseSpan {
        PhaseSpan {
            kind: kind.into(),
            label: format!("{kind} {start}-{end}"),
            start: Duration::from_secs(start),
            end: Duration::from_secs(end),
        }
    }

    fn record() -> RunRecord {
        let mut timeline = Timeline::new();
        for second in 2..6 {
            for _ in 0..9 {
                timeline.record(Duration::from_secs(second), ok(10));
            }
            timeline.record(Duration::from_secs(second), Outcome::Timeout);
        }
        timeline.finish(Duration::from_secs(12));
        RunRecord {
            scenario: "s".into(),
            description: String::new(),
            timeline,
            phases: vec![
                phase("idle", 0, 2),
                phase("constant", 2, 6),
                phase("wait-for", 6, 12),
            ],
            samples: vec![
                sample(0, 0),
                sample(2, 0),
                sample(3, 1),
                sample(4, 3),
                sample(5, 3),
                sample(9, 1),
                sample(10, 0),
                sample(11, 0),
            ],
            cold_starts: vec![
                ColdStart {
                    at: Duration::from_secs(2),
                    wait: Some(Duration::from_millis(300)),
                },
                ColdStart {
                    at: Duration::from_secs(3),
                    wait: Some(Duration::from_millis(100)),
                },
                ColdStart {
                    at: Duration::from_secs(3),
                    wait: None,
                },
            ],
            machine: String::new(),
            failure: None,
        }
    }

    #[test]
    fn summary_counts_rates_and_scaling_times() {
        let summary = Summary::of(&record());
        assert_eq!(summary.requests, 40);
        assert_eq!(summary.succeeded, 36);
        assert_eq!(summary.success_rate, Some(0.9));
        assert_eq!(summary.cold_starts, 3);
        assert_eq!(summary.cold_start_p50, Some(Duration::from_millis(100)));
        assert_eq!(summary.cold_start_p99, Some(Duration::from_millis(300)));
        assert_eq!(summary.peak_replicas, 3);
        assert_eq!(summary.time_to_peak, Some(Duration::from_secs(2)));
        assert_eq!(summary.time_to_zero, Some(Duration::from_secs(4)));
        assert!(summary.latency.is_some());
    }

    #[test]
    fn an_empty_record_has_no_rates_or_times() {
        let record = RunRecord::default();
        let summary = Summary::of(&record);
        assert_eq!(summary.requests, 0);
        assert_eq!(summary.success_rate, None);
        assert_eq!(summary.latency, None);
        assert_eq!(summary.cold_start_p50, None);
        assert_eq!(summary.time_to_peak, None);
        assert_eq!(summary.time_to_zero, None);
        assert!(PhaseRow::all(&record).is_empty());
    }

    #[test]
    fn phase_rows_take_the_seconds_that_start_in_them() {
        let rows = PhaseRow::all(&record());
        assert_eq!(rows.len(), 3);
        assert_eq!((rows[0].requests, rows[0].success_rate), (0, None));
        assert_eq!(rows[1].requests, 40);
        assert_eq!(rows[1].success_rate, Some(0.9));
        assert_eq!(rows[1].duration, Duration::from_secs(4));
        let p99 = rows[1].p99.unwrap().as_millis();
        assert!((9..=11).contains(&p99), "{p99}");
        assert_eq!(rows[2].requests, 0);
    }

    #[test]
    fn without_phases_the_timeline_dates_the_load() {
        let mut record = record();
        record.phases.clear();
        let summary = Summary::of(&record);
        assert_eq!(summary.time_to_peak, Some(Duration::from_secs(2)));
        // The last request was due in second 5, which ends at 6s; zero was seen at 10s.
        assert_eq!(summary.time_to_zero, Some(Duration::from_secs(4)));
    }
}
