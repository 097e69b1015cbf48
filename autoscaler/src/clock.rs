//! Time as the autoscaler sees it: a monotonic timestamp and a clock trait, so that tests and the
//! simulator run on simulated time instantly.

use std::ops::{Add, Sub};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A point in time, measured from an arbitrary epoch chosen by the clock.
///
/// Knative buckets by whole Unix seconds; any fixed epoch gives the same arithmetic, and a monotonic
/// one cannot jump backwards under NTP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(Duration);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(Duration::ZERO);

    pub const fn from_secs(secs: u64) -> Self {
        Timestamp(Duration::from_secs(secs))
    }

    pub const fn from_millis(millis: u64) -> Self {
        Timestamp(Duration::from_millis(millis))
    }

    pub const fn since_epoch(self) -> Duration {
        self.0
    }

    /// The whole second this instant falls in: the index of its 1-second bucket.
    pub const fn whole_secs(self) -> u64 {
        self.0.as_secs()
    }

    /// Time elapsed since `earlier`, or zero if `earlier` is in the future.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// This instant moved back by `d`, stopping at the epoch.
    pub fn saturating_sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(d))
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(rhs))
    }
}

impl Sub<Timestamp> for Timestamp {
    type Output = Duration;
    fn sub(self, rhs: Timestamp) -> Duration {
        self.saturating_since(rhs)
    }
}

/// Where the autoscaler gets "now" from.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// Wall-clock time from a monotonic source, with the epoch at the clock's creation.
#[derive(Debug)]
pub struct SystemClock {
    start: std::time::Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        Self {
            start: std::time::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.start.elapsed())
    }
}

/// A clock that only moves when told to: tests and the simulator advance it explicitly.
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
    // Serialises advance() so two advancing threads cannot interleave a read-modify-write.
    advance_lock: Mutex<()>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        let clock = Self::default();
        clock.set(start);
        clock
    }

    pub fn set(&self, t: Timestamp) {
        let nanos = u64::try_from(t.since_epoch().as_nanos()).unwrap_or(u64::MAX);
        self.nanos.store(nanos, Ordering::SeqCst);
    }

    pub fn advance(&self, d: Duration) {
        let _guard = self.advance_lock.lock();
        self.set(self.now() + d);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(Duration::from_nanos(self.nanos.load(Ordering::SeqCst)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::new(Timestamp::from_secs(5));
        assert_eq!(clock.now(), Timestamp::from_secs(5));
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), Timestamp::from_millis(6500));
        assert_eq!(clock.now().whole_secs(), 6);
    }

    #[test]
    fn saturating_since_never_goes_negative() {
        let early = Timestamp::from_secs(1);
        let late = Timestamp::from_secs(3);
        assert_eq!(late - early, Duration::from_secs(2));
        assert_eq!(early - late, Duration::ZERO);
    }
}
