//! Ticks for axes of whole numbers (replicas, requests, seconds): a step of 1, 2 or 5 times a
//! power of ten, never less than 1, so every tick is a different whole number — left to itself,
//! plotters puts ticks at halves on a short axis, and whole-number labels then repeat (0, 0, 1,
//! 1, 2 …).

/// At most this many intervals on a count axis (about 30 px each on a 320 px chart).
const MAX_COUNT_INTERVALS: u64 = 10;
/// At most this many intervals on a time axis (about 70 px each on a 960 px chart).
const MAX_TIME_INTERVALS: u64 = 12;

/// A count axis from zero: where it ends and where its ticks are.
#[derive(Debug, Clone, PartialEq)]
pub struct CountAxis {
    /// The first tick above the peak, so the highest value never runs along the frame.
    pub top: f64,
    /// `0, step, 2·step, …, top`.
    pub ticks: Vec<f64>,
}

/// The axis for whole-number values from 0 to `peak`.
pub fn count_axis(peak: u64) -> CountAxis {
    // `peak / step + 1` intervals reach the first tick above the peak.
    let step = nice_steps()
        .find(|step| peak / step < MAX_COUNT_INTERVALS)
        .unwrap_or(u64::MAX);
    let intervals = peak / step + 1;
    CountAxis {
        top: (intervals as f64) * step as f64,
        ticks: (0..=intervals).map(|i| (i as f64) * step as f64).collect(),
    }
}

/// Ticks at whole seconds from 0 to at most `end`.
pub fn time_ticks(end: f64) -> Vec<f64> {
    let span = if end.is_finite() && end > 0.0 {
        end.floor() as u64
    } else {
        0
    };
    let step = nice_steps()
        .find(|step| span / step <= MAX_TIME_INTERVALS)
        .unwrap_or(u64::MAX);
    (0..=span / step)
        .map(|i| (i as f64) * step as f64)
        .collect()
}

/// 1, 2, 5, 10, 20, 50, … up to the largest that fits a `u64`, then `u64::MAX`.
fn nice_steps() -> impl Iterator<Item = u64> {
    (0..)
        .map_while(|power| 10u64.checked_pow(power))
        .flat_map(|unit| [unit, unit.saturating_mul(2), unit.saturating_mul(5)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(ticks: &[f64]) -> Vec<u64> {
        ticks.iter().map(|t| *t as u64).collect()
    }

    #[test]
    fn count_axes_tick_whole_numbers_once_each_whatever_the_peak() {
        let cases: [(u64, u64, &[u64]); 7] = [
            (0, 1, &[0, 1]),
            (1, 2, &[0, 1, 2]),
            (3, 4, &[0, 1, 2, 3, 4]),
            (9, 10, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
            (17, 18, &[0, 2, 4, 6, 8, 10, 12, 14, 16, 18]),
            (250, 300, &[0, 50, 100, 150, 200, 250, 300]),
            (1000, 1200, &[0, 200, 400, 600, 800, 1000, 1200]),
        ];
        for (peak, top, ticks) in cases {
            let axis = count_axis(peak);
            assert_eq!(axis.top, top as f64, "peak {peak}");
            assert_eq!(whole(&axis.ticks), ticks, "peak {peak}");
        }
    }

    #[test]
    fn every_count_axis_is_whole_distinct_and_above_its_peak() {
        for peak in (0..2000).chain([u64::MAX / 3, u64::MAX]) {
            let axis = count_axis(peak);
            assert!(axis.top > peak as f64 || peak == u64::MAX, "peak {peak}");
            assert!(axis.ticks.len() >= 2 && axis.ticks.len() as u64 <= MAX_COUNT_INTERVALS + 1);
            assert_eq!(axis.ticks.last(), Some(&axis.top));
            for pair in axis.ticks.windows(2) {
                assert!(pair[1] - pair[0] >= 1.0, "peak {peak}: {:?}", axis.ticks);
                assert_eq!(pair[0].fract(), 0.0);
            }
        }
    }

    #[test]
    fn time_ticks_are_whole_seconds_within_the_run() {
        assert_eq!(whole(&time_ticks(1.0)), [0, 1]);
        assert_eq!(whole(&time_ticks(3.7)), [0, 1, 2, 3]);
        assert_eq!(whole(&time_ticks(12.0)).len(), 13);
        assert_eq!(whole(&time_ticks(28.4)), [0, 5, 10, 15, 20, 25]);
        assert_eq!(
            whole(&time_ticks(125.0)),
            (0..=120).step_by(10).collect::<Vec<_>>()
        );
        assert_eq!(
            whole(&time_ticks(131.0)),
            (0..=120).step_by(20).collect::<Vec<_>>()
        );
        assert_eq!(whole(&time_ticks(0.0)), [0]);
        assert_eq!(whole(&time_ticks(f64::NAN)), [0]);
    }
}
