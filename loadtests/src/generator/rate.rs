//! Rate shapes and the open-loop send schedule they make: pure arithmetic, no clocks.
//!
//! Request `i` (counting from zero) leaves when the integral of the rate since the start reaches
//! `i`, so a constant rate `r` sends at `i / r` (as vegeta does) and a ramp or a step changes the
//! spacing exactly where the rate changes.

use std::time::Duration;

/// How many requests per second an open-loop run sends, as a function of time since its start.
#[derive(Debug, Clone, PartialEq)]
pub enum RateShape {
    /// The same rate all along.
    Constant(f64),
    /// From `from` to `to` linearly over `over`, then `to` for the rest of the run.
    Ramp { from: f64, to: f64, over: Duration },
    /// Each step's rate for its duration in turn; the last step's rate holds for the rest of the run.
    Steps(Vec<Step>),
}

/// One step of [`RateShape::Steps`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// Requests per second during the step.
    pub rate: f64,
    /// How long the step lasts.
    pub lasts: Duration,
}

/// A rate shape that cannot drive a run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RateError {
    /// A rate that is negative, infinite or not a number.
    #[error("{0} is not a rate: write a finite number of requests per second, 0 or more")]
    Invalid(f64),
    /// `Steps` with no step at all.
    #[error("a stepped rate needs at least one step")]
    NoSteps,
}

/// A stretch of time over which the rate moves linearly from `from` to `to`; `seconds` is `None`
/// for the last one, which lasts forever at `from`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    from: f64,
    to: f64,
    seconds: Option<f64>,
}

impl RateShape {
    /// Checks every rate is a finite number ≥ 0 and that steps are not empty.
    pub fn validate(&self) -> Result<(), RateError> {
        let rates: Vec<f64> = match self {
            RateShape::Constant(rate) => vec![*rate],
            RateShape::Ramp { from, to, .. } => vec![*from, *to],
            RateShape::Steps(steps) if steps.is_empty() => return Err(RateError::NoSteps),
            RateShape::Steps(steps) => steps.iter().map(|step| step.rate).collect(),
        };
        match rates
            .into_iter()
            .find(|rate| !rate.is_finite() || *rate < 0.0)
        {
            Some(bad) => Err(RateError::Invalid(bad)),
            None => Ok(()),
        }
    }

    /// The rate, in requests per second, `t` after the start.
    pub fn rate_at(&self, t: Duration) -> f64 {
        let mut start = 0.0;
        let t = t.as_secs_f64();
        for segment in self.segments() {
            match segment.seconds {
                Some(length) if t < start + length => {
                    return segment.from + (segment.to - segment.from) * (t - start) / length;
                }
                Some(length) => start += length,
                None => return segment.from,
            }
        }
        0.0
    }

    /// The send times this shape makes, as offsets from the start, in order. The iterator ends
    /// only where the rate stays at zero for good; bound it by time or count.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            segments: self.segments(),
            index: 0,
            segment_start: 0.0,
            count_at_segment_start: 0.0,
            next: 0,
        }
    }

    /// How many requests the schedule sends before `duration` has passed.
    pub fn count_before(&self, duration: Duration) -> u64 {
        self.schedule()
            .take_while(|offset| *offset < duration)
            .count() as u64
    }

    /// Zero-length pieces are left out: they hold no requests and would divide by zero.
    fn segments(&self) -> Vec<Segment> {
        let mut segments = Vec::new();
        let mut push = |from: f64, to: f64, lasts: Duration| {
            let seconds = lasts.as_secs_f64();
            if seconds > 0.0 {
                segments.push(Segment {
                    from,
                    to,
                    seconds: Some(seconds),
                });
            }
        };
        let hold = match self {
            RateShape::Constant(rate) => *rate,
            RateShape::Ramp { from, to, over } => {
                push(*from, *to, *over);
                *to
            }
            RateShape::Steps(steps) => {
                for step in steps {
                    push(step.rate, step.rate, step.lasts);
                }
                steps.last().map_or(0.0, |step| step.rate)
            }
        };
        segments.push(Segment {
            from: hold,
            to: hold,
            seconds: None,
        });
        segments
    }
}

/// The open-loop send times of a [`RateShape`], as offsets from the start of the run.
#[derive(Debug, Clone)]
pub struct Schedule {
    segments: Vec<Segment>,
    index: usize,
    segment_start: f64,
    count_at_segment_start: f64,
    next: u64,
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wanted = self.next as f64;
        loop {
            let segment = *self.segments.get(self.index)?;
            let needed = wanted - self.count_at_segment_start;
            let slope = match segment.seconds {
                Some(length) => (segment.to - segment.from) / length,
                None => 0.0,
            };
            let within = time_to_count(segment.from, slope, needed);
            match (within, segment.seconds) {
                (Some(tau), None) => return self.emit(tau),
                (Some(tau), Some(length)) if tau < length => return self.emit(tau),
                (_, Some(length)) => {
                    self.count_at_segment_start += (segment.from + segment.to) / 2.0 * length;
                    self.segment_start += length;
                    self.index += 1;
                }
                (None, None) => {
                    // The rate is zero from here on: nothing more will ever leave.
                    self.index = self.segments.len();
                    return None;
                }
            }
        }
    }
}

impl Schedule {
    fn emit(&mut self, tau: f64) -> Option<Duration> {
        self.next += 1;
        Duration::try_from_secs_f64(self.segment_start + tau).ok()
    }
}

/// The time after which a rate starting at `rate` and changing by `slope` per second has
/// sent `count` requests: the positive root of `slope/2·τ² + rate·τ = count`, written as
/// `2·count / (rate + √(rate² + 2·slope·count))` so that a zero slope needs no special case.
/// `None` if the rate falls to zero first. A request due right at the start of a stretch of zero
/// rate waits for the rate to rise again: its slot is filled by what comes after.
fn time_to_count(rate: f64, slope: f64, count: f64) -> Option<f64> {
    if count <= 0.0 {
        return (rate > 0.0 || slope > 0.0).then_some(0.0);
    }
    let discriminant = rate * rate + 2.0 * slope * count;
    if discriminant < 0.0 {
        return None;
    }
    let denominator = rate + discriminant.sqrt();
    (denominator > 0.0).then(|| 2.0 * count / denominator)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_constant_rate_sends_at_i_over_rate() {
        let shape = RateShape::Constant(200.0);
        let offsets: Vec<Duration> = shape.schedule().take(4).collect();
        assert_eq!(offsets, [secs(0.0), secs(0.005), secs(0.01), secs(0.015)]);
        assert_eq!(shape.count_before(Duration::from_secs(2)), 400);
        assert_eq!(shape.rate_at(Duration::from_secs(100)), 200.0);
    }

    #[test]
    fn a_ramp_sends_the_integral_of_its_rate() {
        // 0 → 100 rps over 10 s: the integral is 5·t², so 500 requests in the ramp, 20 in its
        // first two seconds, then 100 per second.
        let shape = RateShape::Ramp {
            from: 0.0,
            to: 100.0,
            over: Duration::from_secs(10),
        };
        assert_eq!(shape.rate_at(secs(2.5)), 25.0);
        assert_eq!(shape.rate_at(secs(11.0)), 100.0);
        assert_eq!(shape.count_before(Duration::from_secs(2)), 20);
        assert_eq!(shape.count_before(Duration::from_secs(10)), 500);
        assert_eq!(shape.count_before(Duration::from_secs(12)), 700);
        for (i, offset) in shape.schedule().take(500).enumerate() {
            let t = offset.as_secs_f64();
            assert!((5.0 * t * t - i as f64).abs() < 1e-6, "request {i} at {t}");
        }
    }

    #[test]
    fn a_downward_ramp_to_zero_ends_the_schedule() {
        let shape = RateShape::Ramp {
            from: 100.0,
            to: 0.0,
            over: Duration::from_secs(2),
        };
        assert_eq!(shape.schedule().count(), 100);
        assert_eq!(shape.rate_at(secs(1.0)), 50.0);
        assert_eq!(shape.rate_at(secs(3.0)), 0.0);
    }

    #[test]
    fn steps_change_the_spacing_at_their_boundaries() {
        let shape = RateShape::Steps(vec![
            Step {
                rate: 10.0,
                lasts: Duration::from_secs(1),
            },
            Step {
                rate: 0.0,
                lasts: Duration::from_secs(1),
            },
            Step {
                rate: 20.0,
                lasts: Duration::from_secs(1),
            },
        ]);
        let offsets: Vec<Duration> = shape
            .schedule()
            .take_while(|offset| *offset < Duration::from_secs(4))
            .collect();
        assert_eq!(offsets.len(), 10 + 20 + 20);
        assert!(offsets[..10].iter().all(|o| *o < secs(1.0)));
        assert_eq!(offsets[10], secs(2.0));
        assert!((offsets[11].as_secs_f64() - 2.05).abs() < 1e-9);
        assert!(offsets.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(shape.rate_at(secs(1.5)), 0.0);
        assert_eq!(shape.rate_at(secs(9.0)), 20.0);
    }

    #[test]
    fn a_zero_rate_sends_nothing() {
        assert_eq!(RateShape::Constant(0.0).schedule().next(), None);
    }

    #[test]
    fn bad_rates_are_refused() {
        assert_eq!(
            RateShape::Constant(-1.0).validate(),
            Err(RateError::Invalid(-1.0))
        );
        assert!(
            RateShape::Ramp {
                from: 1.0,
                to: f64::NAN,
                over: Duration::from_secs(1)
            }
            .validate()
            .is_err()
        );
        assert_eq!(RateShape::Steps(vec![]).validate(), Err(RateError::NoSteps));
        assert_eq!(RateShape::Constant(5.0).validate(), Ok(()));
    }
}
