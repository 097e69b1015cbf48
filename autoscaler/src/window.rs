//! Metric windows (reference §4.5): a ring of 1-second buckets averaged linearly (Knative's
//! `TimedFloat64Buckets`) or with exponentially decaying weights (`WeightedFloat64Buckets`).
//!
//! Times are whole seconds; callers pass [`Timestamp::whole_secs`](crate::Timestamp::whole_secs).

use crate::annotations::Aggregation;

/// Knative rounds linear averages to 6 decimals so float noise cannot flip a `ceil`.
const PRECISION: f64 = 1e6;
/// Target total weight of the exponential window (`1 - (1 - m)^nb`).
const WEIGHT_TARGET: f64 = 0.9999;
/// Floor on the smoothing coefficient, so long windows still react.
const MIN_SMOOTHING: f64 = 0.2;

/// One bucketed series over a fixed window.
#[derive(Clone, Debug)]
pub struct MetricWindow {
    buckets: Vec<f64>,
    first_write: u64,
    /// `None` until the first record (Go's zero time: infinitely long ago).
    last_write: Option<u64>,
    total: f64,
    aggregation: Aggregation,
    smoothing: f64,
}

impl MetricWindow {
    /// A window of `buckets` one-second buckets (at least one).
    pub fn new(buckets: usize, aggregation: Aggregation) -> Self {
        let n = buckets.max(1);
        Self {
            buckets: vec![0.0; n],
            first_write: 0,
            last_write: None,
            total: 0.0,
            aggregation,
            smoothing: smoothing_coefficient(n),
        }
    }

    /// The number of one-second buckets (the window length in seconds).
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty_at(&self, now_secs: u64) -> bool {
        match self.last_write {
            None => true,
            Some(last) => now_secs.saturating_sub(last) > self.window(),
        }
    }

    fn window(&self) -> u64 {
        self.buckets.len() as u64
    }

    fn slot(&self, secs: u64) -> usize {
        (secs % self.window()) as usize
    }

    /// Adds `value` to the bucket of second `t`; values in the same second add up.
    pub fn record(&mut self, t: u64, value: f64) {
        let window = self.window();
        match self.last_write {
            None => self.reset_at(t),
            Some(last) if t != last => {
                // Knative keeps a write only if `t + window` is after the last write: a value a
                // whole window old would land in the newest bucket's ring slot.
                if t + window <= last {
                    return; // older than the window: irrelevant now
                }
                // A late write older than every write so far starts the partial window earlier.
                if t < self.first_write {
                    self.first_write = t;
                }
                if t > last {
                    if t - last >= window {
                        self.reset_at(t);
                    } else {
                        // Seconds with no write between the last one and now become explicit zeros.
                        for s in last + 1..=t {
                            let i = self.slot(s);
                            self.total -= self.buckets[i];
                            self.buckets[i] = 0.0;
                        }
                    }
                    self.last_write = Some(t);
                }
            }
            Some(_) => {}
        }
        let i = self.slot(t);
        self.buckets[i] += value;
        self.total += value;
    }

    fn reset_at(&mut self, t: u64) {
        self.buckets.iter_mut().for_each(|b| *b = 0.0);
        self.total = 0.0;
        self.first_write = t;
        self.last_write = Some(t);
    }

    /// The window's average at second `now`, by the configured aggregation.
    pub fn average(&self, now_secs: u64) -> f64 {
        match self.aggregation {
            Aggregation::Linear => self.linear_average(now_secs),
            Aggregation::WeightedExponential => self.weighted_average(now_secs),
        }
    }

    fn linear_average(&self, now: u64) -> f64 {
        let Some(last) = self.last_write else {
            return 0.0;
        };
        let window = self.window();
        let written = (last - self.first_write + 1) as f64;
        if now <= last {
            // A partial window divides only by the seconds written so far.
            return round6(self.total / written.min(window as f64));
        }
        let stale = now - last;
        if stale >= window {
            return 0.0;
        }
        // Seconds after the last write hold data from the previous lap; drop them and shorten the
        // window instead of counting them as zeros.
        let mut sum = self.total;
        for s in last + 1..=now {
            sum -= self.buckets[self.slot(s)];
        }
        round6(sum / written.min((window - stale) as f64))
    }

    fn weighted_average(&self, now: u64) -> f64 {
        let Some(last) = self.last_write else {
            return 0.0;
        };
        let window = self.window();
        if now >= last && now - last >= window {
            return 0.0;
        }
        let m = self.smoothing;
        let mut multiplier = m;
        let mut count = window;
        if now > last {
            let skipped = now - last;
            multiplier *= (1.0 - m).powi(skipped as i32);
            count -= skipped;
        }
        let mut sum = 0.0;
        for i in 0..count {
            sum += self.buckets[self.slot(last + window - i)] * multiplier;
            multiplier *= 1.0 - m;
        }
        sum
    }
}

/// `max(1 − (1 − 0.9999)^(1/nb), 0.2)`.
pub fn smoothing_coefficient(buckets: usize) -> f64 {
    (1.0 - (1.0 - WEIGHT_TARGET).powf(1.0 / buckets as f64)).max(MIN_SMOOTHING)
}

fn round6(v: f64) -> f64 {
    (v * PRECISION).round() / PRECISION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_in_the_same_second_add_up() {
        let mut w = MetricWindow::new(5, Aggregation::Linear);
        w.record(10, 1.0);
        w.record(10, 2.0);
        assert_eq!(w.average(10), 3.0);
    }

    #[test]
    fn values_older_than_the_window_are_dropped() {
        let mut w = MetricWindow::new(5, Aggregation::Linear);
        w.record(20, 4.0);
        w.record(14, 100.0);
        assert_eq!(w.average(20), 4.0);
    }

    #[test]
    fn a_value_exactly_a_window_old_is_dropped_not_added_to_the_newest_bucket() {
        let mut w = MetricWindow::new(5, Aggregation::Linear);
        w.record(10, 4.0);
        // 5 + 5 is not after 10: Knative drops it (same ring slot as second 10).
        w.record(5, 100.0);
        assert_eq!(w.average(10), 4.0);
    }

    #[test]
    fn a_late_write_before_the_first_one_widens_the_partial_window() {
        let mut w = MetricWindow::new(5, Aggregation::Linear);
        w.record(11, 4.0);
        w.record(10, 2.0);
        // Knative moves firstWrite back to 10: (2 + 4) / 2 buckets.
        assert_eq!(w.average(11), 3.0);
    }

    #[test]
    fn a_gap_of_a_whole_window_restarts_the_partial_window() {
        let mut w = MetricWindow::new(5, Aggregation::Linear);
        w.record(0, 10.0);
        w.record(1, 10.0);
        w.record(7, 2.0);
        assert_eq!(w.average(7), 2.0);
    }

    #[test]
    fn empty_means_no_write_within_the_window() {
        let mut w = MetricWindow::new(5, Aggregation::Linear);
        assert!(w.is_empty_at(0));
        w.record(10, 1.0);
        assert!(!w.is_empty_at(15));
        assert!(w.is_empty_at(16));
    }

    #[test]
    fn smoothing_coefficients_match_knative() {
        assert_eq!(smoothing_coefficient(60), 0.2);
        assert!((smoothing_coefficient(6) - 0.7846).abs() < 1e-4);
        assert!((smoothing_coefficient(40) - 0.20567).abs() < 1e-5);
    }

    #[test]
    fn weighted_single_fresh_sample_reads_as_m_times_v() {
        let mut w = MetricWindow::new(60, Aggregation::WeightedExponential);
        w.record(100, 10.0);
        assert!((w.average(100) - 2.0).abs() < 1e-12);
        // One second later it decays by (1 − m).
        assert!((w.average(101) - 1.6).abs() < 1e-12);
        assert_eq!(w.average(160), 0.0);
    }

    #[test]
    fn weighted_favours_recent_data() {
        // Knative's own doc example: [10, 10, 5, 5] newest last with m = 0.6 → 5.544.
        let mut w = MetricWindow::new(4, Aggregation::WeightedExponential);
        w.smoothing = 0.6;
        for (t, v) in [(0, 10.0), (1, 10.0), (2, 5.0), (3, 5.0)] {
            w.record(t, v);
        }
        assert!((w.average(3) - 5.544).abs() < 1e-9);
    }
}
