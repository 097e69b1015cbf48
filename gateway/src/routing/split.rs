//! Weighted choice of a revision by percent, and the cheap random numbers that drive it.
//!
//! The choice itself is a pure function of a random `u64` so tests can drive it with seeded or
//! hand-picked numbers; the request path feeds it from a per-thread xorshift generator, which
//! needs no lock and no dependency.

use std::cell::Cell;
use std::sync::Arc;

/// A route's revisions that carry traffic, with cumulative weights. Entries with percent 0 are
/// dropped (reachable only by tag) and a revision listed several times is merged, so a pick is
/// one binary search over at most a handful of entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightedTargets {
    /// `(revision, cumulative weight up to and including it)`, cumulative strictly increasing.
    entries: Vec<(Arc<str>, u64)>,
    total: u64,
}

impl WeightedTargets {
    /// Builds from `(revision, percent)` pairs; `None` when no pair has a positive percent.
    pub fn new<'a>(targets: impl IntoIterator<Item = (&'a str, u32)>) -> Option<Self> {
        let mut merged: Vec<(Arc<str>, u64)> = Vec::new();
        for (revision, percent) in targets {
            if percent == 0 {
                continue;
            }
            match merged.iter_mut().find(|(name, _)| &**name == revision) {
                Some((_, weight)) => *weight += u64::from(percent),
                None => merged.push((Arc::from(revision), u64::from(percent))),
            }
        }
        let mut total = 0;
        for (_, weight) in &mut merged {
            total += *weight;
            *weight = total;
        }
        (total > 0).then_some(Self {
            entries: merged,
            total,
        })
    }

    /// The revision for random number `random` (uniform over `u64`). Scaling by multiply-shift
    /// instead of `%` keeps every revision's share exact to within 2⁻⁶⁴.
    pub fn pick(&self, random: u64) -> &Arc<str> {
        let point = ((u128::from(random) * u128::from(self.total)) >> 64) as u64;
        let index = self
            .entries
            .partition_point(|(_, cumulative)| *cumulative <= point);
        // `point < total == last cumulative`, so `index` is in range; fall back to the last entry
        // rather than panic should that ever not hold.
        &self.entries[index.min(self.entries.len() - 1)].0
    }

    /// The revisions with their weights (not cumulative), in configuration order.
    pub fn weights(&self) -> impl Iterator<Item = (&Arc<str>, u64)> {
        let mut previous = 0;
        self.entries.iter().map(move |(name, cumulative)| {
            let weight = cumulative - previous;
            previous = *cumulative;
            (name, weight)
        })
    }

    /// Sum of the weights: 100 for a validated route.
    pub fn total(&self) -> u64 {
        self.total
    }
}

pub use wisp_api::xorshift::XorShift;

/// A random number from this thread's generator, seeded once per thread from std's randomly
/// keyed hasher so threads (and processes) do not share a sequence.
pub fn thread_random() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(std::thread::current().id()) | 1
        });
    }
    STATE.with(|state| {
        let mut rng = XorShift::seeded(state.get());
        let value = rng.next_u64();
        state.set(rng.state());
        value
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn counts(targets: &WeightedTargets, picks: usize, seed: u64) -> HashMap<String, usize> {
        let mut rng = XorShift::seeded(seed);
        let mut counts = HashMap::new();
        for _ in 0..picks {
            *counts
                .entry(targets.pick(rng.next_u64()).to_string())
                .or_default() += 1;
        }
        counts
    }

    #[test]
    fn fifty_fifty_over_2000_picks_is_within_5_percent() {
        let targets = WeightedTargets::new([("a", 50), ("b", 50)]).unwrap();
        let counts = counts(&targets, 2_000, 42);
        for revision in ["a", "b"] {
            let share = counts[revision] as f64 / 2_000.0;
            assert!((share - 0.5).abs() <= 0.05, "{revision}: {share}");
        }
    }

    #[test]
    fn the_5_percent_check_can_fail() {
        // The same check against a 60/40 split must fail, so the test above is not vacuous.
        let targets = WeightedTargets::new([("a", 60), ("b", 40)]).unwrap();
        let counts = counts(&targets, 2_000, 42);
        let share = counts["a"] as f64 / 2_000.0;
        assert!((share - 0.5).abs() > 0.05, "{share}");
    }

    #[test]
    fn zero_percent_is_never_picked() {
        let targets = WeightedTargets::new([("a", 100), ("b", 0)]).unwrap();
        let counts = counts(&targets, 10_000, 7);
        assert_eq!(counts.get("b"), None);
        assert_eq!(counts["a"], 10_000);
        // Extremes of the random range too.
        assert_eq!(&**targets.pick(0), "a");
        assert_eq!(&**targets.pick(u64::MAX), "a");
        assert!(WeightedTargets::new([("a", 0)]).is_none());
    }

    #[test]
    fn boundaries_are_exact() {
        let targets = WeightedTargets::new([("a", 1), ("b", 99)]).unwrap();
        // `a` owns exactly the first 1/100 of the range.
        let edge = (u128::from(u64::MAX) + 1).div_ceil(100);
        assert_eq!(&**targets.pick(edge as u64 - 1), "a");
        assert_eq!(&**targets.pick(edge as u64), "b");
        assert_eq!(&**targets.pick(u64::MAX), "b");
    }

    #[test]
    fn three_way_split() {
        let targets = WeightedTargets::new([("a", 20), ("b", 30), ("c", 50)]).unwrap();
        let counts = counts(&targets, 10_000, 3);
        for (revision, percent) in [("a", 20.0), ("b", 30.0), ("c", 50.0)] {
            let share = counts[revision] as f64 / 100.0;
            assert!(
                (share - percent).abs() <= 2.0,
                "{revision}: {share}% vs {percent}%"
            );
        }
    }

    #[test]
    fn repeated_revisions_are_merged() {
        let targets = WeightedTargets::new([("a", 30), ("b", 40), ("a", 30)]).unwrap();
        let weights: Vec<_> = targets.weights().map(|(n, w)| (n.to_string(), w)).collect();
        assert_eq!(weights, [("a".to_owned(), 60), ("b".to_owned(), 40)]);
        assert_eq!(targets.total(), 100);
    }

    #[test]
    fn thread_random_varies() {
        let a = thread_random();
        let b = thread_random();
        assert_ne!(a, b);
    }

    /// Splits of 1–5 targets summing to 100, some with percent 0.
    fn splits() -> impl Strategy<Value = Vec<u32>> {
        prop::collection::vec(0u32..=100, 1..=5).prop_filter_map("needs a positive", |raw| {
            let sum: u32 = raw.iter().sum();
            if sum == 0 {
                return None;
            }
            // Scale to 100 and give the rounding remainder to the largest entry.
            let mut percents: Vec<u32> = raw.iter().map(|p| p * 100 / sum).collect();
            let short = 100 - percents.iter().sum::<u32>();
            let largest = (0..raw.len()).max_by_key(|&i| raw[i])?;
            percents[largest] += short;
            Some(percents)
        })
    }

    proptest! {
        #[test]
        fn picks_follow_percents(percents in splits(), seed in any::<u64>()) {
            let names: Vec<String> = (0..percents.len()).map(|i| format!("rev-{i}")).collect();
            let targets = WeightedTargets::new(
                names.iter().map(String::as_str).zip(percents.iter().copied()),
            )
            .unwrap();
            let picks = 20_000;
            let counts = counts(&targets, picks, seed);
            for (name, &percent) in names.iter().zip(&percents) {
                let count = counts.get(name).copied().unwrap_or(0);
                if percent == 0 {
                    prop_assert_eq!(count, 0, "{} has percent 0", name);
                } else {
                    let share = count as f64 * 100.0 / picks as f64;
                    // 20,000 picks: one standard deviation is at most 0.36 points.
                    prop_assert!(
                        (share - f64::from(percent)).abs() <= 2.0,
                        "{}: {}% picked vs {}% configured", name, share, percent
                    );
                }
            }
        }
    }
}
