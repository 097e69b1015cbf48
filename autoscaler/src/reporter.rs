//! Request accounting for one revision (Knative's activator `ConcurrencyReporter` with the
//! time-weighted `RequestStats`, reference §4.3): in-flight requests, including time spent queued,
//! averaged over each reporting period, plus the "immediate stat on first sight" that makes a
//! cold start wake the autoscaler without waiting for a tick.
//!
//! Pure and clock-driven: the caller passes the time of every event.

use crate::clock::Timestamp;

/// One reporting period's load: average concurrency and the number of requests that arrived.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stat {
    pub concurrency: f64,
    /// Arrivals in the period; with 1-second periods this is requests per second.
    pub requests: f64,
}

/// Accounting for one revision.
#[derive(Clone, Debug, Default)]
pub struct ConcurrencyReporter {
    in_flight: u32,
    /// `None` while the revision is untracked (idle for a whole period).
    period: Option<Period>,
}

#[derive(Clone, Debug)]
struct Period {
    last_change: Timestamp,
    seconds: f64,
    weighted: f64,
    arrivals: u32,
    /// 1 for the first periodic report after the immediate stat, so that request is not counted
    /// twice.
    first_adjust: f64,
}

impl Period {
    fn new(now: Timestamp) -> Self {
        Self {
            last_change: now,
            seconds: 0.0,
            weighted: 0.0,
            arrivals: 0,
            first_adjust: 1.0,
        }
    }

    fn accumulate(&mut self, now: Timestamp, in_flight: u32) {
        if now > self.last_change {
            let secs = (now - self.last_change).as_secs_f64();
            self.seconds += secs;
            self.weighted += f64::from(in_flight) * secs;
            self.last_change = now;
        }
    }
}

impl ConcurrencyReporter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Whether the revision had activity recently enough to still be reported each period.
    pub fn is_tracking(&self) -> bool {
        self.period.is_some()
    }

    /// A request arrived (or started waiting). Returns the immediate stat `(1, 1)` when the
    /// revision was not being tracked, for the caller to record and poke with at once.
    pub fn request_in(&mut self, now: Timestamp) -> Option<Stat> {
        let first_sight = self.period.is_none();
        let period = self.period.get_or_insert_with(|| Period::new(now));
        period.accumulate(now, self.in_flight);
        period.arrivals += 1;
        self.in_flight += 1;
        first_sight.then_some(Stat {
            concurrency: 1.0,
            requests: 1.0,
        })
    }

    /// A request finished (or gave up waiting).
    pub fn request_out(&mut self, now: Timestamp) {
        if let Some(period) = self.period.as_mut() {
            period.accumulate(now, self.in_flight);
        }
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// The periodic (1 s) report. `None` when the revision is not tracked. A period whose
    /// average is 0 with nothing in flight ends the tracking, so the next request is a "first
    /// sight" again.
    pub fn report(&mut self, now: Timestamp) -> Option<Stat> {
        let in_flight = self.in_flight;
        let period = self.period.as_mut()?;
        period.accumulate(now, in_flight);
        let average = if period.seconds > 0.0 {
            period.weighted / period.seconds
        } else {
            0.0
        };
        let stat = Stat {
            concurrency: (average - period.first_adjust).max(0.0),
            requests: f64::from(period.arrivals) - period.first_adjust,
        };
        period.seconds = 0.0;
        period.weighted = 0.0;
        period.arrivals = 0;
        period.first_adjust = 0.0;
        if average == 0.0 && in_flight == 0 {
            self.period = None;
        }
        Some(stat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_weighted_average_over_the_period() {
        let mut r = ConcurrencyReporter::new();
        let t0 = Timestamp::from_secs(10);
        r.request_in(t0);
        r.report(t0); // consume the first-sight adjustment
        r.request_in(Timestamp::from_millis(10_500));
        let stat = r.report(Timestamp::from_secs(11)).unwrap();
        assert!((stat.concurrency - 1.5).abs() < 1e-9);
        assert_eq!(stat.requests, 1.0);
    }

    #[test]
    fn idle_period_stops_tracking_so_the_next_request_is_first_again() {
        let mut r = ConcurrencyReporter::new();
        assert!(r.request_in(Timestamp::from_secs(0)).is_some());
        assert!(r.request_in(Timestamp::from_secs(0)).is_none());
        r.request_out(Timestamp::from_millis(500));
        r.request_out(Timestamp::from_millis(500));
        assert!(r.report(Timestamp::from_secs(1)).is_some());
        assert!(r.is_tracking());
        assert_eq!(r.report(Timestamp::from_secs(2)), Some(Stat::default()));
        assert!(!r.is_tracking());
        assert!(r.report(Timestamp::from_secs(3)).is_none());
        assert!(r.request_in(Timestamp::from_secs(4)).is_some());
    }
}
