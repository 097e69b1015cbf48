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

/// At most this many ticks on a log axis before only the powers of ten are kept.
const MAX_LOG_TICKS: usize = 10;

/// Ticks for a log axis from `low` to `high` (both > 0): 1, 2 and 5 times the powers of ten
/// within it, or only the powers of ten when that would be too many. A range too narrow to hold
/// two such values (1.2 to 1.9) is ticked at its ends instead, so the axis always has labels.
pub fn log_ticks(low: f64, high: f64) -> Vec<f64> {
    if !(low.is_finite() && high.is_finite() && low > 0.0 && high > low) {
        return Vec::new();
    }
    let first = low.log10().floor() as i32;
    let last = high.log10().ceil() as i32;
    let within = |multiples: &[f64]| -> Vec<f64> {
        (first..=last)
            .flat_map(|power| multiples.iter().map(move |m| m * 10f64.powi(power)))
            // A relative tolerance: 10^-1 × 5 is not exactly 0.5 in binary.
            .filter(|tick| *tick >= low * (1.0 - 1e-9) && *tick <= high * (1.0 + 1e-9))
            .collect()
    };
    let ticks = within(&[1.0, 2.0, 5.0]);
    if ticks.len() > MAX_LOG_TICKS {
        return within(&[1.0]);
    }
    if ticks.len() < 2 {
        return vec![low, high];
    }
    ticks
}

/// A millisecond value as a tick label: whole above 10, else at most two significant digits
/// ("0.5", "2", "1.3"), without trailing zeros.
pub fn ms_label(value: f64) -> String {
    if value >= 10.0 {
        return format!("{value:.0}");
    }
    let decimals = (1 - value.log10().floor() as i32).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
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

    #[test]
    fn log_ticks_are_one_two_five_within_the_range() {
        let ticks = log_ticks(0.3, 60.0);
        let labels: Vec<String> = ticks.iter().map(|t| ms_label(*t)).collect();
        assert_eq!(labels, ["0.5", "1", "2", "5", "10", "20", "50"]);
    }

    #[test]
    fn wide_log_ranges_keep_the_powers_of_ten_and_narrow_ones_their_ends() {
        let labels =
            |ticks: Vec<f64>| -> Vec<String> { ticks.iter().map(|t| ms_label(*t)).collect() };
        assert_eq!(
            labels(log_ticks(0.1, 10_000.0)),
            ["0.1", "1", "10", "100", "1000", "10000"]
        );
        assert_eq!(labels(log_ticks(1.23, 1.87)), ["1.2", "1.9"]);
        assert!(log_ticks(0.0, 1.0).is_empty());
        assert!(log_ticks(2.0, 1.0).is_empty());
    }

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
