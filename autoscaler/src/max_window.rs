//! The sliding-maximum window behind `scale-down-delay` (Knative's `max.TimeWindow`): the largest
//! value recorded in the last `size` slots, kept as a descending deque so each record is O(1)
//! amortised.

use std::collections::VecDeque;
use std::time::Duration;

use crate::clock::Timestamp;

#[derive(Clone, Debug)]
pub struct MaxTimeWindow {
    /// (slot index, value), values strictly descending from front to back.
    maxima: VecDeque<(u64, i32)>,
    size: u64,
    granularity_secs: u64,
}

impl MaxTimeWindow {
    /// A window spanning `duration` in slots of `granularity` (both whole seconds).
    pub fn new(duration: Duration, granularity: Duration) -> Self {
        let granularity_secs = granularity.as_secs().max(1);
        let size = duration.as_secs().div_ceil(granularity_secs).max(1);
        Self {
            maxima: VecDeque::new(),
            size,
            granularity_secs,
        }
    }

    pub fn record(&mut self, now: Timestamp, value: i32) {
        let index = now.whole_secs() / self.granularity_secs;
        // A smaller, older value can never be the maximum again.
        while self.maxima.back().is_some_and(|&(_, v)| v <= value) {
            self.maxima.pop_back();
        }
        self.maxima.push_back((index, value));
        while self
            .maxima
            .front()
            .is_some_and(|&(i, _)| index.saturating_sub(i) >= self.size)
        {
            self.maxima.pop_front();
        }
    }

    /// The maximum over the window; 0 before anything was recorded.
    pub fn current(&self) -> i32 {
        self.maxima.front().map_or(0, |&(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_maximum_until_it_leaves_the_window() {
        let mut w = MaxTimeWindow::new(Duration::from_secs(10), Duration::from_secs(2));
        w.record(Timestamp::from_secs(0), 5);
        w.record(Timestamp::from_secs(2), 3);
        assert_eq!(w.current(), 5);
        w.record(Timestamp::from_secs(8), 1);
        assert_eq!(w.current(), 5);
        w.record(Timestamp::from_secs(10), 1);
        assert_eq!(w.current(), 3);
        w.record(Timestamp::from_secs(12), 1);
        assert_eq!(w.current(), 1);
    }
}
