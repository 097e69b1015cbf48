//! Histogram bucket bounds, in seconds.
//!
//! Fixed lists rather than generated series, so the bounds are round numbers an operator can
//! read, and so each list puts a bound on the targets the project measures itself against
//! (50 µs added latency, 2 ms cold start). Each list is short: observing scans it linearly.

/// Request latency as seen by the gateway: tens of microseconds for a warm `hello` up to a
/// minute for a slow handler or a request that waited out its queue timeout.
pub const REQUEST_LATENCY: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Cold start: from a request finding no replica to its replica ready. Sub-millisecond when the
/// compiled artifact is cached (a link), seconds when the component must be compiled first.
pub const COLD_START: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Instantiating a component for one request: microseconds with a pre-instantiated image.
pub const INSTANTIATION: &[f64] = &[
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_strictly_increasing() {
        for bounds in [REQUEST_LATENCY, COLD_START, INSTANTIATION] {
            assert!(
                bounds.windows(2).all(|pair| pair[0] < pair[1]),
                "{bounds:?}"
            );
        }
    }
}
