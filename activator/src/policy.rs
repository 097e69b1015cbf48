//! Choosing a backend (Knative's `lb_policy.go`, reference §7.2), as pure functions over a
//! backend count and a load accessor, so they run under the revision lock without allocating.
//!
//! | cc | policy |
//! |---|---|
//! | 0 | power of two choices: the less loaded of two random backends, ties broken at random |
//! | 1–3 | first available, in backend order |
//! | > 3 | round robin, starting after the last pick |

/// A load-balancing policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbPolicy {
    PowerOfTwoChoices,
    FirstAvailable,
    RoundRobin,
}

impl LbPolicy {
    /// Knative's choice by `containerConcurrency`.
    pub fn for_container_concurrency(cc: u32) -> Self {
        match cc {
            0 => Self::PowerOfTwoChoices,
            1..=3 => Self::FirstAvailable,
            _ => Self::RoundRobin,
        }
    }

    /// Picks a backend index out of `count`, where `load(i)` is backend `i`'s in-flight count and
    /// a backend has room while `cc == 0 || load < cc`. `cursor` is the round-robin position
    /// (the index after the last pick), kept by the caller across calls.
    pub fn pick(
        self,
        count: usize,
        cc: u32,
        load: impl Fn(usize) -> u32,
        cursor: &mut usize,
        rng: &mut Rng,
    ) -> Option<usize> {
        let has_room = |i: usize| cc == 0 || load(i) < cc;
        match self {
            Self::PowerOfTwoChoices => {
                let picked = power_of_two(count, &load, rng)?;
                has_room(picked).then_some(picked)
            }
            Self::FirstAvailable => (0..count).find(|i| has_room(*i)),
            Self::RoundRobin => {
                let start = if *cursor < count { *cursor } else { 0 };
                let picked = (0..count)
                    .map(|step| (start + step) % count)
                    .find(|i| has_room(*i))?;
                *cursor = picked + 1;
                Some(picked)
            }
        }
    }
}

fn power_of_two(count: usize, load: &impl Fn(usize) -> u32, rng: &mut Rng) -> Option<usize> {
    match count {
        0 => None,
        1 => Some(0),
        _ => {
            let first = rng.below(count);
            // A second, different backend: draw from the others and skip over the first.
            let mut second = rng.below(count - 1);
            if second >= first {
                second += 1;
            }
            let (a, b) = (load(first), load(second));
            Some(match a.cmp(&b) {
                std::cmp::Ordering::Less => first,
                std::cmp::Ordering::Greater => second,
                std::cmp::Ordering::Equal if rng.next_u64() & 1 == 0 => first,
                std::cmp::Ordering::Equal => second,
            })
        }
    }
}

/// The backend with the fewest in-flight requests (first one on ties), for requests that go
/// straight to a backend when the activator is not in the path.
pub fn least_loaded(count: usize, load: impl Fn(usize) -> u32) -> Option<usize> {
    (0..count).min_by_key(|i| load(*i))
}

/// The policies' randomness: cheap, not cryptographic, and seedable for tests.
pub use wisp_api::xorshift::XorShift as Rng;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_follows_container_concurrency() {
        assert_eq!(
            LbPolicy::for_container_concurrency(0),
            LbPolicy::PowerOfTwoChoices
        );
        assert_eq!(
            LbPolicy::for_container_concurrency(1),
            LbPolicy::FirstAvailable
        );
        assert_eq!(
            LbPolicy::for_container_concurrency(3),
            LbPolicy::FirstAvailable
        );
        assert_eq!(LbPolicy::for_container_concurrency(4), LbPolicy::RoundRobin);
    }

    #[test]
    fn power_of_two_with_two_backends_takes_the_less_loaded() {
        let loads = [5, 2];
        let mut rng = Rng::seeded(7);
        for _ in 0..100 {
            let picked = LbPolicy::PowerOfTwoChoices.pick(2, 0, |i| loads[i], &mut 0, &mut rng);
            assert_eq!(picked, Some(1));
        }
    }

    #[test]
    fn power_of_two_never_picks_the_most_loaded_of_many() {
        let loads = [1, 1, 9, 1];
        let mut rng = Rng::seeded(3);
        for _ in 0..200 {
            let picked = LbPolicy::PowerOfTwoChoices.pick(4, 0, |i| loads[i], &mut 0, &mut rng);
            assert_ne!(picked, Some(2));
        }
    }

    #[test]
    fn power_of_two_breaks_ties_both_ways() {
        let mut rng = Rng::seeded(11);
        let mut seen = [0; 2];
        for _ in 0..200 {
            if let Some(i) = LbPolicy::PowerOfTwoChoices.pick(2, 0, |_| 0, &mut 0, &mut rng) {
                seen[i] += 1;
            }
        }
        assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
    }

    #[test]
    fn first_available_walks_in_order() {
        let loads = [1, 1, 0, 0];
        let picked = LbPolicy::FirstAvailable.pick(4, 1, |i| loads[i], &mut 0, &mut Rng::seeded(1));
        assert_eq!(picked, Some(2));
        let none = LbPolicy::FirstAvailable.pick(2, 1, |_| 1, &mut 0, &mut Rng::seeded(1));
        assert_eq!(none, None);
    }

    #[test]
    fn round_robin_starts_after_the_last_pick_and_skips_full_backends() {
        let mut cursor = 0;
        let mut rng = Rng::seeded(1);
        let order: Vec<_> = (0..5)
            .filter_map(|_| LbPolicy::RoundRobin.pick(3, 4, |_| 0, &mut cursor, &mut rng))
            .collect();
        assert_eq!(order, [0, 1, 2, 0, 1]);
        let loads = [0, 4, 0];
        let picked = LbPolicy::RoundRobin.pick(3, 4, |i| loads[i], &mut cursor, &mut rng);
        assert_eq!(picked, Some(2), "backend 1 is full");
        assert_eq!(cursor, 3);
    }

    #[test]
    fn least_loaded_prefers_the_first_on_ties() {
        assert_eq!(least_loaded(3, |i| [2, 1, 1][i]), Some(1));
        assert_eq!(least_loaded(0, |_| 0), None);
    }
}
