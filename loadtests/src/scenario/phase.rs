//! The phases of a scenario, read from one-key mappings (`- ramp: {from: 0, to: 50, duration: 20s}`),
//! and what each plans: requests scheduled and time taken.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::values::{self, Checked, deserialize_checked};

/// Every phase kind, as the YAML key that names it.
pub const PHASE_KINDS: &[&str] = &[
    "constant", "ramp", "step", "burst", "idle", "wait-for", "apply",
];

/// One step of a scenario, run after the previous one ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Steady load for a while: open loop at a rate, or closed loop with N workers.
    Constant(Constant),
    /// Open-loop rate changing linearly from one value to another.
    Ramp(Ramp),
    /// Open-loop rates held one after another, each for the same time.
    Step(Step),
    /// N requests sent at once, all concurrent.
    Burst(Burst),
    /// No load for a while.
    Idle(Duration),
    /// No load until the revision (of every Service loaded, for `services:`) has the given
    /// number of replicas, at most `timeout`.
    WaitFor(WaitFor),
    /// Applies a manifest (e.g. a new revision), then goes on at once: load phases after it run
    /// while the rollout happens. A relative path is relative to the scenario file.
    Apply(PathBuf),
}

/// How a constant phase generates load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// Open loop: requests leave on schedule at this many per second whatever the responses do.
    Rate(f64),
    /// Closed loop: this many workers, each sending its next request when the previous answered.
    Concurrency(u32),
}

/// `constant: {rate: 20, duration: 30s}` or `constant: {concurrency: 4, duration: 30s}`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Constant {
    /// Open or closed loop, and how much.
    pub load: Load,
    /// How long the load lasts.
    pub duration: Duration,
}

/// `ramp: {from: 0, to: 50, duration: 20s}`; either end may be 0, not both.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    /// Requests per second at the start.
    pub from: f64,
    /// Requests per second at the end.
    pub to: f64,
    /// How long the ramp takes.
    pub duration: Duration,
}

/// `step: {rates: [100, 200, 300], hold: 10s}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Requests per second of each step, in order.
    pub rates: Vec<f64>,
    /// How long each rate is held.
    pub hold: Duration,
}

/// `burst: {requests: 50}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Burst {
    /// How many requests leave at once (at least 1).
    pub requests: u32,
}

/// `wait-for: {replicas: 0, timeout: 90s}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitFor {
    /// The replica count to wait for (0: scaled to zero).
    pub replicas: u32,
    /// The longest to wait; the runner reports a failure past it.
    pub timeout: Duration,
}

/// Requests an open-loop span schedules: the schedule sends request `i` once the integral of
/// the rate reaches `i` (request 0 at the start), so `⌈∫rate⌉` requests leave before it ends.
/// The epsilon keeps `0.1 × 30 = 3.0000000000000004` at 3.
fn scheduled(integral: f64) -> u64 {
    (integral - 1e-9).ceil().max(0.0) as u64
}

impl Phase {
    /// The YAML key of this phase.
    pub fn kind(&self) -> &'static str {
        match self {
            Phase::Constant(_) => "constant",
            Phase::Ramp(_) => "ramp",
            Phase::Step(_) => "step",
            Phase::Burst(_) => "burst",
            Phase::Idle(_) => "idle",
            Phase::WaitFor(_) => "wait-for",
            Phase::Apply(_) => "apply",
        }
    }

    /// Requests the phase sends, or `None` for a closed-loop phase, whose count depends on how
    /// fast the target answers.
    pub fn scheduled_requests(&self) -> Option<u64> {
        match self {
            Phase::Constant(Constant {
                load: Load::Rate(rate),
                duration,
            }) => Some(scheduled(rate * duration.as_secs_f64())),
            Phase::Constant(Constant {
                load: Load::Concurrency(_),
                ..
            }) => None,
            Phase::Ramp(ramp) => Some(scheduled(
                (ramp.from + ramp.to) / 2.0 * ramp.duration.as_secs_f64(),
            )),
            Phase::Step(step) => Some(
                step.rates
                    .iter()
                    .map(|rate| scheduled(rate * step.hold.as_secs_f64()))
                    .sum(),
            ),
            Phase::Burst(burst) => Some(u64::from(burst.requests)),
            Phase::Idle(_) | Phase::WaitFor(_) | Phase::Apply(_) => Some(0),
        }
    }

    /// The time the phase takes by its own schedule: zero for a burst, a wait or an apply,
    /// which last as long as the system takes (see [`Phase::max_wait`]).
    pub fn planned_duration(&self) -> Duration {
        match self {
            Phase::Constant(constant) => constant.duration,
            Phase::Ramp(ramp) => ramp.duration,
            Phase::Step(step) => step.hold.saturating_mul(step.rates.len() as u32),
            Phase::Idle(duration) => *duration,
            Phase::Burst(_) | Phase::WaitFor(_) | Phase::Apply(_) => Duration::ZERO,
        }
    }

    /// The longest a `wait-for` phase may wait on top of its planned duration; zero otherwise.
    pub fn max_wait(&self) -> Duration {
        match self {
            Phase::WaitFor(wait) => wait.timeout,
            _ => Duration::ZERO,
        }
    }
}

impl<'de> Deserialize<'de> for Phase {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(PhaseVisitor)
    }
}

struct PhaseVisitor;

impl<'de> Visitor<'de> for PhaseVisitor {
    type Value = Phase;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a phase: a mapping with one key naming it, e.g. `idle: 10s`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Phase, A::Error> {
        let kinds = PHASE_KINDS.join(", ");
        let Some(kind) = map.next_key::<String>()? else {
            return Err(de::Error::custom(format!(
                "the phase is empty; write one key naming it ({kinds}), e.g. `idle: 10s`"
            )));
        };
        let phase = match kind.as_str() {
            "constant" => Phase::Constant(map.next_value::<Constant>()?),
            "ramp" => Phase::Ramp(map.next_value::<Ramp>()?),
            "step" => Phase::Step(map.next_value::<Step>()?),
            "burst" => Phase::Burst(map.next_value::<Burst>()?),
            "idle" => Phase::Idle(map.next_value::<IdleSpan>()?.0),
            "wait-for" => Phase::WaitFor(map.next_value::<WaitFor>()?),
            "apply" => Phase::Apply(PathBuf::from(map.next_value::<ManifestPath>()?.0)),
            other => {
                return Err(de::Error::custom(format!(
                    "unknown phase `{other}`; write one of {kinds}"
                )));
            }
        };
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "a phase has one key, but `{kind}` has `{extra}` beside it; indent `{extra}` under \
                 `{kind}:` if it is one of its settings, or start a new list item (`- {extra}: …`)"
            )));
        }
        Ok(phase)
    }
}

struct IdleSpan(Duration);

impl<'de> Deserialize<'de> for IdleSpan {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        values::span(deserializer).map(IdleSpan)
    }
}

struct ManifestPath(String);

impl<'de> Deserialize<'de> for ManifestPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        values::non_empty(
            deserializer,
            "the manifest path",
            "`apply: manifests/hello-v2.yaml`",
        )
        .map(ManifestPath)
    }
}

fn positive_rate<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    values::rate(deserializer, false)
}

fn ramp_rate<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    values::rate(deserializer, true)
}

fn some_positive_rate<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    positive_rate(deserializer).map(Some)
}

fn some_concurrency<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    values::count(deserializer, "concurrency", 1).map(Some)
}

fn rates<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f64>, D::Error> {
    struct Rate(f64);
    impl<'de> Deserialize<'de> for Rate {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            positive_rate(deserializer).map(Rate)
        }
    }
    struct RatesVisitor;
    impl<'de> Visitor<'de> for RatesVisitor {
        type Value = Vec<f64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of rates, e.g. [100, 200, 300]")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f64>, A::Error> {
            let mut rates = Vec::new();
            while let Some(Rate(rate)) = seq.next_element()? {
                rates.push(rate);
            }
            if rates.is_empty() {
                return Err(de::Error::custom(
                    "the list of rates is empty; write at least one, e.g. [100, 200, 300]",
                ));
            }
            Ok(rates)
        }
    }
    deserializer.deserialize_seq(RatesVisitor)
}

fn burst_requests<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    values::count(deserializer, "requests", 1)
}

fn replicas<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    values::count(deserializer, "replicas", 0)
}

/// The mapping as written, before `check`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConstant {
    #[serde(default, deserialize_with = "some_positive_rate")]
    rate: Option<f64>,
    #[serde(default, deserialize_with = "some_concurrency")]
    concurrency: Option<u32>,
    #[serde(deserialize_with = "values::span")]
    duration: Duration,
}

impl Checked for Constant {
    type Raw = RawConstant;
    const EXPECTING: &'static str = "a mapping such as {rate: 20, duration: 30s}";

    fn check(raw: RawConstant) -> Result<Self, String> {
        let load = match (raw.rate, raw.concurrency) {
            (Some(rate), None) => Load::Rate(rate),
            (None, Some(workers)) => Load::Concurrency(workers),
            (Some(_), Some(_)) => {
                return Err(
                    "a constant phase has both rate and concurrency; keep `rate` for an \
                            open loop or `concurrency` for a closed loop"
                        .into(),
                );
            }
            (None, None) => {
                return Err(
                    "a constant phase needs `rate: N` (open loop, requests per second) \
                            or `concurrency: N` (closed loop, workers)"
                        .into(),
                );
            }
        };
        Ok(Constant {
            load,
            duration: raw.duration,
        })
    }
}

impl<'de> Deserialize<'de> for Constant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_checked(deserializer)
    }
}

/// The mapping as written, before `check`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRamp {
    #[serde(deserialize_with = "ramp_rate")]
    from: f64,
    #[serde(deserialize_with = "ramp_rate")]
    to: f64,
    #[serde(deserialize_with = "values::span")]
    duration: Duration,
}

impl Checked for Ramp {
    type Raw = RawRamp;
    const EXPECTING: &'static str = "a mapping such as {from: 0, to: 50, duration: 20s}";

    fn check(raw: RawRamp) -> Result<Self, String> {
        if raw.from == 0.0 && raw.to == 0.0 {
            return Err(
                "a ramp from 0 to 0 sends nothing; give `to` a rate above 0, \
                        or use an `idle` phase for a gap"
                    .into(),
            );
        }
        Ok(Ramp {
            from: raw.from,
            to: raw.to,
            duration: raw.duration,
        })
    }
}

impl<'de> Deserialize<'de> for Ramp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_checked(deserializer)
    }
}

/// The mapping as written, before `check`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStep {
    #[serde(deserialize_with = "rates")]
    rates: Vec<f64>,
    #[serde(deserialize_with = "values::span")]
    hold: Duration,
}

impl Checked for Step {
    type Raw = RawStep;
    const EXPECTING: &'static str = "a mapping such as {rates: [100, 200, 300], hold: 10s}";

    fn check(raw: RawStep) -> Result<Self, String> {
        Ok(Step {
            rates: raw.rates,
            hold: raw.hold,
        })
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_checked(deserializer)
    }
}

/// The mapping as written, before `check`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBurst {
    #[serde(deserialize_with = "burst_requests")]
    requests: u32,
}

impl Checked for Burst {
    type Raw = RawBurst;
    const EXPECTING: &'static str = "a mapping such as {requests: 50}";

    fn check(raw: RawBurst) -> Result<Self, String> {
        Ok(Burst {
            requests: raw.requests,
        })
    }
}

impl<'de> Deserialize<'de> for Burst {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_checked(deserializer)
    }
}

/// The mapping as written, before `check`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWaitFor {
    #[serde(deserialize_with = "replicas")]
    replicas: u32,
    #[serde(deserialize_with = "values::span")]
    timeout: Duration,
}

impl Checked for WaitFor {
    type Raw = RawWaitFor;
    const EXPECTING: &'static str = "a mapping such as {replicas: 0, timeout: 90s}";

    fn check(raw: RawWaitFor) -> Result<Self, String> {
        Ok(WaitFor {
            replicas: raw.replicas,
            timeout: raw.timeout,
        })
    }
}

impl<'de> Deserialize<'de> for WaitFor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_checked(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(yaml: &str) -> Result<Phase, String> {
        serde_norway::from_str(yaml).map_err(|error| error.to_string())
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn reads_every_kind() {
        assert_eq!(
            phase("constant: {rate: 2.5, duration: 4s}"),
            Ok(Phase::Constant(Constant {
                load: Load::Rate(2.5),
                duration: secs(4)
            }))
        );
        assert_eq!(
            phase("constant:\n  concurrency: 3\n  duration: 1m\n"),
            Ok(Phase::Constant(Constant {
                load: Load::Concurrency(3),
                duration: secs(60)
            }))
        );
        assert_eq!(
            phase("ramp: {from: 0, to: 10, duration: 10s}"),
            Ok(Phase::Ramp(Ramp {
                from: 0.0,
                to: 10.0,
                duration: secs(10)
            }))
        );
        assert_eq!(
            phase("step: {rates: [1, 2], hold: 5s}"),
            Ok(Phase::Step(Step {
                rates: vec![1.0, 2.0],
                hold: secs(5)
            }))
        );
        assert_eq!(
            phase("burst: {requests: 7}"),
            Ok(Phase::Burst(Burst { requests: 7 }))
        );
        assert_eq!(
            phase("idle: 500ms"),
            Ok(Phase::Idle(Duration::from_millis(500)))
        );
        assert_eq!(
            phase("wait-for: {replicas: 0, timeout: 2m}"),
            Ok(Phase::WaitFor(WaitFor {
                replicas: 0,
                timeout: secs(120)
            }))
        );
        assert_eq!(
            phase("apply: v2.yaml"),
            Ok(Phase::Apply(PathBuf::from("v2.yaml")))
        );
    }

    #[test]
    fn rejects_bad_values_with_what_to_write() {
        let cases = [
            (
                "sprint: 5s",
                "unknown phase `sprint`; write one of constant, ramp",
            ),
            ("constant: {rate: -5, duration: 1s}", "rate -5 is negative"),
            ("constant: {rate: 0, duration: 1s}", "use an `idle` phase"),
            ("constant: {duration: 1s}", "needs `rate: N`"),
            (
                "constant: {rate: 1, concurrency: 2, duration: 1s}",
                "both rate and concurrency",
            ),
            (
                "constant: {concurrency: 0, duration: 1s}",
                "concurrency 0 is too small",
            ),
            (
                "constant: {rate: 1, duration: 0s}",
                "is zero; write a duration above zero",
            ),
            ("constant: {rate: 1, duration: 10}", "has no unit"),
            (
                "constant: {rate: 1, durations: 1s}",
                "unknown field `durations`",
            ),
            (
                "ramp: {from: 5, to: -1, duration: 1s}",
                "rate -1 is negative",
            ),
            ("ramp: {from: 0, to: 0, duration: 1s}", "a ramp from 0 to 0"),
            ("step: {rates: [], hold: 1s}", "list of rates is empty"),
            ("step: {rates: [1, 0], hold: 1s}", "rate 0 sends nothing"),
            ("burst: {requests: 0}", "requests 0 is too small"),
            (
                "burst: {requests: 1.5}",
                "requests 1.5 is not a whole number",
            ),
            (
                "burst: {requests: many}",
                "expected a whole number of at least 1",
            ),
            (
                "wait-for: {replicas: -1, timeout: 1s}",
                "replicas -1 is too small",
            ),
            ("idle: 0s", "is zero"),
            ("apply: ''", "the manifest path is empty"),
            ("{}", "the phase is empty"),
            ("{idle: 1s, burst: {requests: 1}}", "a phase has one key"),
        ];
        for (yaml, expected) in cases {
            let message = phase(yaml).unwrap_err();
            assert!(message.contains(expected), "{yaml}: {message}");
        }
    }

    #[test]
    fn counts_scheduled_requests_and_time() {
        let count = |yaml: &str| phase(yaml).unwrap().scheduled_requests();
        assert_eq!(count("constant: {rate: 0.1, duration: 30s}"), Some(3));
        assert_eq!(count("constant: {rate: 3, duration: 500ms}"), Some(2));
        assert_eq!(count("constant: {concurrency: 3, duration: 5s}"), None);
        assert_eq!(count("ramp: {from: 0, to: 10, duration: 10s}"), Some(50));
        assert_eq!(count("ramp: {from: 10, to: 0, duration: 10s}"), Some(50));
        assert_eq!(
            count("step: {rates: [100, 200, 300], hold: 10s}"),
            Some(6000)
        );
        assert_eq!(count("burst: {requests: 9}"), Some(9));
        assert_eq!(count("idle: 3s"), Some(0));

        let time = |yaml: &str| {
            let phase = phase(yaml).unwrap();
            (phase.planned_duration(), phase.max_wait())
        };
        assert_eq!(
            time("step: {rates: [1, 2, 3], hold: 10s}"),
            (secs(30), secs(0))
        );
        assert_eq!(time("burst: {requests: 9}"), (secs(0), secs(0)));
        assert_eq!(
            time("wait-for: {replicas: 0, timeout: 90s}"),
            (secs(0), secs(90))
        );
    }
}
