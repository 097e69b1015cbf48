//! What one scenario run recorded, on one clock from the run's start: the requests' timeline,
//! the revision's replicas and autoscaler state sampled alongside, the phases, and the cold
//! starts. The runner fills it; reports read it. Plain data.

use std::time::Duration;

use crate::generator::Timeline;

/// A whole scenario run.
#[derive(Debug, Default)]
pub struct RunRecord {
    /// The scenario's name (reports are named after it).
    pub scenario: String,
    pub description: String,
    /// Every request of every phase, bucketed by the second (from the run's start) it was due.
    pub timeline: Timeline,
    /// The phases as they ran.
    pub phases: Vec<PhaseSpan>,
    /// Samples of the target revisions' state, in time order.
    pub samples: Vec<ScalingSample>,
    /// When (from the run's start) a request found its revision at zero and waited for a
    /// replica, with how long it waited: from the gateway's cold-start counter and histogram.
    pub cold_starts: Vec<ColdStart>,
    /// What the machine was, for the report's footer (e.g. `2 cores, Linux 6.1`).
    pub machine: String,
    /// Why the run stopped before its end, if it did; everything above is what ran until then.
    pub failure: Option<Failure>,
}

/// Where and why a run stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The failed phase's index in the scenario (as `phases[i]` there, and in
    /// [`RunRecord::phases`], where it is the last); `None` when the set-up failed, before any.
    pub phase: Option<usize>,
    /// What failed, for people: `phases[3] (wait for 5 replicas)` or `set-up`.
    pub what: String,
    /// Why.
    pub message: String,
}

/// One phase of the run, from its start to its end on the run's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseSpan {
    /// The phase kind (`constant`, `ramp`, `burst`, `idle`, `wait-for`, `apply`, …).
    pub kind: String,
    /// A short human description, e.g. `ramp 0→50 rps over 20s`.
    pub label: String,
    pub start: Duration,
    pub end: Duration,
}

/// The state of the target revisions at one instant (summed over the targets when several).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalingSample {
    pub at: Duration,
    /// The autoscaler's desired replicas (`-1` while it has no data).
    pub desired: i64,
    /// Ready replicas.
    pub actual: i64,
    /// Whether any target revision is in panic mode.
    pub panic: bool,
    /// Requests waiting in the activator.
    pub queued: i64,
}

/// A cold start seen in the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColdStart {
    pub at: Duration,
    /// How long the request waited for its replica, when known.
    pub wait: Option<Duration>,
}
