//! What a run measured: one outcome per request, gathered into per-second buckets (by the second
//! the request was due to leave) and whole-run totals. Pure bookkeeping, no clocks.

use std::time::Duration;

use hdrhistogram::Histogram;
use http::StatusCode;

/// Latencies are kept in microseconds up to ten minutes; longer ones are clamped to that.
const MAX_LATENCY_US: u64 = 600_000_000;

/// What became of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response arrived (its body read whole) this long after the request was due to leave.
    Answered {
        status: StatusCode,
        latency: Duration,
    },
    /// The connection failed, or the response was malformed or cut short.
    TransportError,
    /// No answer within the request timeout, or still in flight when the run's grace ran out.
    Timeout,
    /// Never sent: the in-flight cap was reached when it was due.
    Dropped,
}

/// Request counts; every request is counted in `sent` and in exactly one other field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests the run released (answered or not, dropped included).
    pub sent: u64,
    /// Answered 2xx.
    pub succeeded: u64,
    /// Answered 3xx.
    pub redirects: u64,
    /// Answered 4xx.
    pub client_errors: u64,
    /// Answered 5xx.
    pub server_errors: u64,
    /// Failed at the connection or protocol level, or answered with a status outside 200–599.
    pub transport_errors: u64,
    /// See [`Outcome::Timeout`].
    pub timeouts: u64,
    /// See [`Outcome::Dropped`].
    pub dropped: u64,
}

impl Counts {
    /// Requests that got an answer other than 2xx, or a transport error.
    pub fn failed(&self) -> u64 {
        self.redirects + self.client_errors + self.server_errors + self.transport_errors
    }

    /// `succeeded + failed + timeouts + dropped`: equal to `sent` when nothing went missing.
    pub fn accounted(&self) -> u64 {
        self.succeeded + self.failed() + self.timeouts + self.dropped
    }

    fn count(&mut self, outcome: &Outcome) {
        self.sent += 1;
        let field = match outcome {
            Outcome::Answered { status, .. } => match status.as_u16() {
                200..=299 => &mut self.succeeded,
                300..=399 => &mut self.redirects,
                400..=499 => &mut self.client_errors,
                500..=599 => &mut self.server_errors,
                _ => &mut self.transport_errors,
            },
            Outcome::TransportError => &mut self.transport_errors,
            Outcome::Timeout => &mut self.timeouts,
            Outcome::Dropped => &mut self.dropped,
        };
        *field += 1;
    }

    fn add(&mut self, other: &Counts) {
        self.sent += other.sent;
        self.succeeded += other.succeeded;
        self.redirects += other.redirects;
        self.client_errors += other.client_errors;
        self.server_errors += other.server_errors;
        self.transport_errors += other.transport_errors;
        self.timeouts += other.timeouts;
        self.dropped += other.dropped;
    }
}

/// Latency percentiles of a set of answered requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Percentiles {
    /// `None` when the histogram is empty.
    pub fn of(histogram: &Histogram<u64>) -> Option<Self> {
        if histogram.is_empty() {
            return None;
        }
        let at = |quantile| Duration::from_micros(histogram.value_at_quantile(quantile));
        Some(Self {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: Duration::from_micros(histogram.max()),
        })
    }
}

/// One second of a run: the requests due to leave in it.
#[derive(Debug, Clone)]
pub struct Second {
    /// Seconds since the start of the run.
    pub index: u64,
    pub counts: Counts,
    /// Latency (µs) of every answered request, whatever its status; two significant digits,
    /// which keeps a long run's many histograms small.
    pub latency_us: Histogram<u64>,
}

impl Second {
    fn new(index: u64) -> Self {
        Self {
            index,
            counts: Counts::default(),
            latency_us: new_histogram(2),
        }
    }

    /// p50/p90/p99/max of this second's answered requests, if any.
    pub fn percentiles(&self) -> Option<Percentiles> {
        Percentiles::of(&self.latency_us)
    }
}

/// A whole run: per-second buckets, totals, and the run's latency histogram.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// One per second from the start, empty seconds included.
    pub seconds: Vec<Second>,
    pub totals: Counts,
    /// Latency (µs) of every answered request of the run, three significant digits.
    pub latency_us: Histogram<u64>,
    /// How long the run sent load (its duration, or until its last request left), grace excluded.
    pub elapsed: Duration,
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new()
    }
}

impl Timeline {
    /// An empty timeline.
    pub fn new() -> Self {
        Self {
            seconds: Vec::new(),
            totals: Counts::default(),
            latency_us: new_histogram(3),
            elapsed: Duration::ZERO,
        }
    }

    /// Counts one request that was due `at` after the start.
    pub fn record(&mut self, at: Duration, outcome: Outcome) {
        let second = self.second_mut(at.as_secs());
        second.counts.count(&outcome);
        if let Outcome::Answered { latency, .. } = outcome {
            let micros = u64::try_from(latency.as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            second.latency_us.saturating_record(micros);
            self.latency_us.saturating_record(micros);
        }
        self.totals.count(&outcome);
    }

    /// Sets the run's length and makes sure every second of it has a bucket, even an empty one.
    pub fn finish(&mut self, elapsed: Duration) {
        self.elapsed = elapsed;
        let seconds = elapsed.as_secs_f64().ceil() as u64;
        if seconds > 0 {
            self.second_mut(seconds - 1);
        }
    }

    /// The sum of the per-second counts (equal to `totals` by construction; a check for readers).
    pub fn sum_of_seconds(&self) -> Counts {
        let mut sum = Counts::default();
        for second in &self.seconds {
            sum.add(&second.counts);
        }
        sum
    }

    /// p50/p90/p99/max of the whole run, if anything was answered.
    pub fn percentiles(&self) -> Option<Percentiles> {
        Percentiles::of(&self.latency_us)
    }

    /// Adds `other` — a phase that started `offset` after this run's start — to this timeline:
    /// its second `i` lands in second `offset + i` (whole seconds: a runner that starts phases
    /// on whole seconds of the run keeps every request in the second it was due), its totals
    /// and latencies are added, and the run lasts at least until the phase ended.
    pub fn absorb(&mut self, other: &Timeline, offset: Duration) {
        let shift = offset.as_secs();
        for second in &other.seconds {
            let into = self.second_mut(shift + second.index);
            into.counts.add(&second.counts);
            let _ = into.latency_us.add(&second.latency_us);
        }
        self.totals.add(&other.totals);
        let _ = self.latency_us.add(&other.latency_us);
        let end = Duration::from_secs(shift) + other.elapsed;
        if end > self.elapsed {
            self.finish(end);
        }
    }

    fn second_mut(&mut self, index: u64) -> &mut Second {
        while self.seconds.len() as u64 <= index {
            let next = self.seconds.len() as u64;
            self.seconds.push(Second::new(next));
        }
        let position = usize::try_from(index).unwrap_or(usize::MAX);
        let last = self.seconds.len() - 1;
        &mut self.seconds[position.min(last)]
    }
}

pub(super) fn new_histogram(significant_digits: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, significant_digits)
        .expect("constant histogram bounds are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16, millis: u64) -> Outcome {
        Outcome::Answered {
            status: StatusCode::from_u16(status).unwrap(),
            latency: Duration::from_millis(millis),
        }
    }

    #[test]
    fn a_phase_absorbed_at_an_offset_keeps_its_seconds_and_counts() {
        let mut phase = Timeline::new();
        phase.record(Duration::from_millis(100), answered(200, 10));
        phase.record(Duration::from_millis(1500), answered(500, 20));
        phase.finish(Duration::from_secs(2));
        let mut run = Timeline::new();
        run.record(Duration::from_millis(10), answered(200, 5));
        run.finish(Duration::from_secs(1));
        run.absorb(&phase, Duration::from_secs(3));
        assert_eq!(run.seconds.len(), 5);
        assert_eq!(run.seconds[3].counts.succeeded, 1);
        assert_eq!(run.seconds[4].counts.server_errors, 1);
        assert_eq!(run.totals.sent, 3);
        assert_eq!(run.sum_of_seconds(), run.totals);
        assert_eq!(run.latency_us.len(), 3);
        assert_eq!(run.elapsed, Duration::from_secs(5));
    }

    #[test]
    fn outcomes_land_in_the_second_they_were_due_and_in_one_class() {
        let mut timeline = Timeline::new();
        timeline.record(Duration::from_millis(100), answered(200, 10));
        timeline.record(Duration::from_millis(999), answered(204, 30));
        timeline.record(Duration::from_millis(1000), answered(302, 1));
        timeline.record(Duration::from_millis(2500), answered(404, 1));
        timeline.record(Duration::from_millis(2600), answered(503, 1));
        timeline.record(Duration::from_millis(2700), Outcome::TransportError);
        timeline.record(Duration::from_millis(2800), Outcome::Timeout);
        timeline.record(Duration::from_millis(2900), Outcome::Dropped);
        timeline.finish(Duration::from_millis(4500));

        assert_eq!(timeline.seconds.len(), 5);
        assert_eq!(timeline.seconds[0].counts.sent, 2);
        assert_eq!(timeline.seconds[0].counts.succeeded, 2);
        assert_eq!(timeline.seconds[1].counts.redirects, 1);
        let third = timeline.seconds[2].counts;
        assert_eq!(
            (
                third.client_errors,
                third.server_errors,
                third.transport_errors
            ),
            (1, 1, 1)
        );
        assert_eq!((third.timeouts, third.dropped, third.sent), (1, 1, 5));
        assert_eq!(timeline.seconds[4].counts, Counts::default());
        assert_eq!(timeline.totals.sent, 8);
        assert_eq!(timeline.totals.accounted(), 8);
        assert_eq!(timeline.totals.failed(), 4);
        assert_eq!(timeline.sum_of_seconds(), timeline.totals);
        assert_eq!(timeline.latency_us.len(), 5);
        assert_eq!(timeline.seconds[2].latency_us.len(), 2);
    }

    #[test]
    fn percentiles_come_from_the_answered_requests() {
        let mut timeline = Timeline::new();
        assert_eq!(timeline.percentiles(), None);
        for millis in 1..=100 {
            timeline.record(Duration::ZERO, answered(200, millis));
        }
        let run = timeline.percentiles().unwrap();
        let near = |d: Duration, millis: f64| (d.as_secs_f64() * 1000.0 - millis).abs() <= 0.1;
        assert!(near(run.p50, 50.0), "{run:?}");
        assert!(near(run.p99, 99.0), "{run:?}");
        assert!(near(run.max, 100.0), "{run:?}");
        let second = timeline.seconds[0].percentiles().unwrap();
        assert!(
            (second.p90.as_secs_f64() - 0.090).abs() < 0.001,
            "{second:?}"
        );
    }
}
