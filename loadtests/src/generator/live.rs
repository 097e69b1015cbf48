//! Live figures of running loads, for a progress line: what happened in the last whole second
//! of a clock shared by every load that records into the same [`LiveSink`] (so several loads at
//! once read as one), by *event* time — a request counts as sent in the second it left and as
//! succeeded or failed in the second its outcome arrived, so a finished second never changes
//! (unlike the [`Timeline`](super::Timeline), which buckets by the second a request was due).
//!
//! The window is pure (times are offsets given to it); [`LiveSink`] adds the clock and a short
//! lock per event.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::timeline::{Outcome, new_histogram};

/// What every load sharing a sink did in one whole second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveFigures {
    /// The second, counted from the sink's epoch.
    pub second: u64,
    /// Requests released in the second (dropped ones included).
    pub sent: u64,
    /// Requests answered 2xx in the second.
    pub succeeded: u64,
    /// Requests that failed, timed out or were dropped in the second.
    pub errors: u64,
    /// The 99th percentile latency of the requests answered in the second, if any.
    pub p99: Option<Duration>,
}

/// One second's events, latencies kept so that several loads' seconds merge exactly.
#[derive(Debug, Clone)]
struct LiveSecond {
    second: u64,
    sent: u64,
    succeeded: u64,
    errors: u64,
    latency_us: Histogram<u64>,
}

impl LiveSecond {
    fn new(second: u64) -> Self {
        Self {
            second,
            sent: 0,
            succeeded: 0,
            errors: 0,
            latency_us: new_histogram(2),
        }
    }

    /// Empties it for `second`, keeping the histogram's allocation.
    fn reuse(&mut self, second: u64) {
        self.second = second;
        self.sent = 0;
        self.succeeded = 0;
        self.errors = 0;
        self.latency_us.reset();
    }

    fn figures(&self) -> LiveFigures {
        LiveFigures {
            second: self.second,
            sent: self.sent,
            succeeded: self.succeeded,
            errors: self.errors,
            p99: (!self.latency_us.is_empty())
                .then(|| Duration::from_micros(self.latency_us.value_at_quantile(0.99))),
        }
    }
}

/// The current second and the one before it: events of a task that read the clock just before
/// a second ended but took the lock just after still land in their own second.
#[derive(Debug, Clone)]
pub struct LiveWindow {
    current: LiveSecond,
    previous: LiveSecond,
}

impl Default for LiveWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveWindow {
    /// A window at second zero with nothing in it.
    pub fn new() -> Self {
        Self {
            current: LiveSecond::new(0),
            // Never read as second zero's predecessor: there is none.
            previous: LiveSecond::new(u64::MAX),
        }
    }

    /// A request released `at` after the epoch.
    pub fn sent(&mut self, at: Duration) {
        if let Some(second) = self.second_mut(at) {
            second.sent += 1;
        }
    }

    /// A request's outcome, arrived `at` after the epoch. A dropped request was never sent, so
    /// the caller counts it with [`sent`](Self::sent) as well.
    pub fn finished(&mut self, at: Duration, outcome: &Outcome) {
        let Some(second) = self.second_mut(at) else {
            return;
        };
        match outcome {
            Outcome::Answered { status, latency } => {
                if status.is_success() {
                    second.succeeded += 1;
                } else {
                    second.errors += 1;
                }
                let micros = u64::try_from(latency.as_micros())
                    .unwrap_or(u64::MAX)
                    .max(1);
                second.latency_us.saturating_record(micros);
            }
            Outcome::TransportError | Outcome::Timeout | Outcome::Dropped => second.errors += 1,
        }
    }

    /// The figures of the whole second before the one `now` is in (all zero when nothing
    /// happened in it, or `now` is in second zero).
    pub fn last_whole_second(&self, now: Duration) -> LiveFigures {
        let Some(wanted) = now.as_secs().checked_sub(1) else {
            return LiveFigures::default();
        };
        [&self.current, &self.previous]
            .into_iter()
            .find(|second| second.second == wanted)
            .map_or(
                LiveFigures {
                    second: wanted,
                    ..LiveFigures::default()
                },
                LiveSecond::figures,
            )
    }

    /// The bucket for `at`, moving the window forward when `at` is past it; `None` for an
    /// event older than the window holds (it is left out of the live figures only).
    fn second_mut(&mut self, at: Duration) -> Option<&mut LiveSecond> {
        let second = at.as_secs();
        if second > self.current.second {
            std::mem::swap(&mut self.current, &mut self.previous);
            if self.previous.second + 1 == second {
                // The old current second is now the previous one; reuse the older one.
                self.current.reuse(second);
            } else {
                // A quiet gap: neither bucket is the second just before `second`.
                self.previous.reuse(second - 1);
                self.current.reuse(second);
            }
        }
        [&mut self.current, &mut self.previous]
            .into_iter()
            .find(|bucket| bucket.second == second)
    }
}

/// A live window on a clock, shared by every load that records into it (clones share it).
#[derive(Debug, Clone)]
pub struct LiveSink {
    epoch: Instant,
    window: Arc<Mutex<LiveWindow>>,
}

impl LiveSink {
    /// A sink whose seconds count from `epoch` (e.g. the start of a scenario run, so that its
    /// seconds are the run's).
    pub fn new(epoch: Instant) -> Self {
        Self {
            epoch,
            window: Arc::new(Mutex::new(LiveWindow::new())),
        }
    }

    /// The figures of the last whole second, every load together.
    pub fn last_whole_second(&self) -> LiveFigures {
        let now = self.epoch.elapsed();
        self.lock().last_whole_second(now)
    }

    pub(super) fn sent(&self) {
        let now = self.epoch.elapsed();
        self.lock().sent(now);
    }

    pub(super) fn finished(&self, outcome: &Outcome) {
        let now = self.epoch.elapsed();
        self.lock().finished(now, outcome);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LiveWindow> {
        // Live figures are only shown; a panic mid-update costs at most one odd second.
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn answered(status: u16, millis: u64) -> Outcome {
        Outcome::Answered {
            status: StatusCode::from_u16(status).unwrap(),
            latency: ms(millis),
        }
    }

    #[test]
    fn a_second_reads_once_it_is_whole_and_counts_every_event_in_it() {
        let mut window = LiveWindow::new();
        // Two loads' events interleaved in second 3; their outcomes come back in second 3 or 4.
        for i in 0..10 {
            window.sent(ms(3000 + i * 10));
        }
        for i in 0..8 {
            window.finished(ms(3100 + i), &answered(200, 10 + i));
        }
        window.finished(ms(3500), &answered(503, 1000));
        window.finished(ms(3600), &Outcome::Timeout);
        window.sent(ms(3700));
        window.finished(ms(3700), &Outcome::Dropped);
        window.finished(ms(4100), &answered(200, 400));

        assert_eq!(window.last_whole_second(ms(3999)).sent, 0, "second 2");
        let third = window.last_whole_second(ms(4200));
        assert_eq!(
            (third.second, third.sent, third.succeeded, third.errors),
            (3, 11, 8, 3)
        );
        // The 503's latency counts: it was answered.
        let p99 = third.p99.unwrap();
        assert!((990..=1010).contains(&p99.as_millis()), "{p99:?}");
        let fourth = window.last_whole_second(ms(5000));
        assert_eq!((fourth.second, fourth.sent, fourth.succeeded), (4, 0, 1));
    }

    #[test]
    fn a_late_event_lands_in_its_own_second_and_a_stale_one_is_left_out() {
        let mut window = LiveWindow::new();
        window.sent(ms(5000));
        window.sent(ms(6001));
        // Read its clock at 5.999 s, took the lock after the 6.001 s event.
        window.sent(ms(5999));
        window.sent(ms(4000));
        assert_eq!(window.last_whole_second(ms(6500)).sent, 2);
        assert_eq!(window.last_whole_second(ms(7000)).sent, 1);
    }

    #[test]
    fn quiet_seconds_read_as_zero_and_do_not_keep_old_figures() {
        let mut window = LiveWindow::new();
        window.sent(ms(1000));
        window.finished(ms(1200), &answered(200, 5));
        window.sent(ms(9000));
        for now in [3000, 8999] {
            let quiet = window.last_whole_second(ms(now));
            assert_eq!((quiet.sent, quiet.succeeded, quiet.p99), (0, 0, None));
        }
        assert_eq!(window.last_whole_second(ms(10_000)).sent, 1);
        // The gap moved both buckets: second 8 reads as empty, not as second 1.
        assert_eq!(
            window.last_whole_second(ms(9500)),
            LiveFigures {
                second: 8,
                ..LiveFigures::default()
            }
        );
        assert_eq!(window.last_whole_second(ms(500)), LiveFigures::default());
    }
}
