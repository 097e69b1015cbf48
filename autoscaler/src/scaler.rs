//! The scaler (reference §6, Knative's KPA `scaler.scale`, `handleScaleToZero` and
//! `computeActiveCondition`): bounds the decider's desired scale, gates the step to zero, and
//! tracks the revision's Active / Inactive / Activating state.
//!
//! Where Knative probes the activator over HTTP to learn whether it is in the path, wisp's data
//! plane knows that in-process, so "activator in the path since T" is an input here.

use std::time::Duration;

use crate::clock::Timestamp;
use crate::spec::ResolvedSpec;

/// Knative's re-queue delay after marking a PA Inactive while the SKS is already in Proxy mode.
const PROXY_REQUEUE: Duration = Duration::from_secs(3);

/// The PA's `Active` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    /// Active = Unknown: capacity was asked for and is not ready yet.
    Activating,
    /// Active = True.
    Active,
    /// Active = False: scaled (or about to scale) to zero.
    Inactive,
}

/// Why the revision is in its current state, as Knative's condition reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivityReason {
    /// Activating: requests are being buffered while replicas start.
    Queued,
    /// Inactive: no traffic.
    NoTraffic,
    /// Inactive because activation did not finish within progress-deadline + 30 s: the revision
    /// failed to start.
    TimedOut,
}

/// What the scaler remembers between reconciles (Knative keeps this in the PA status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScalerState {
    pub activity: Activity,
    pub reason: Option<ActivityReason>,
    /// Last transition time of the Active condition.
    pub since: Timestamp,
    pub scale_target_initialized: bool,
    /// `status.desiredScale`: -1 while unknown.
    pub desired_scale: i32,
    /// The replica count currently applied (Knative's `deployment.spec.replicas`).
    pub replicas: u32,
}

impl ScalerState {
    /// A freshly created PA: Activating, with the deployment created at the initial scale.
    pub fn new(spec: &ResolvedSpec, now: Timestamp) -> Self {
        Self {
            activity: Activity::Activating,
            reason: None,
            since: now,
            scale_target_initialized: false,
            desired_scale: -1,
            replicas: spec.initial_scale,
        }
    }

    fn active_for(&self, now: Timestamp) -> Duration {
        if self.activity == Activity::Active {
            now - self.since
        } else {
            Duration::ZERO
        }
    }

    fn inactive_for(&self, now: Timestamp) -> Duration {
        if self.activity == Activity::Inactive {
            now - self.since
        } else {
            Duration::ZERO
        }
    }

    fn mark(&mut self, activity: Activity, reason: Option<ActivityReason>, now: Timestamp) {
        if self.activity != activity {
            self.since = now;
        }
        self.activity = activity;
        self.reason = reason;
    }
}

/// What the data plane reports that the scaler needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScalerInputs {
    /// The decider's last desired scale (-1 = unknown yet).
    pub decider_desired: i32,
    pub ready: u32,
    /// Since when the activator has been in the revision's path; `None` if it is not.
    pub activator_in_path_since: Option<Timestamp>,
}

/// The result of one reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScalerOutcome {
    /// Knative's `want`: the bounded desired scale, -1 when nothing should be applied.
    pub want: i32,
    /// Reconcile again after this long (a time-based condition will then have changed).
    pub requeue_after: Option<Duration>,
}

/// One KPA reconcile: apply bounds and the scale-to-zero gate, update the replicas to run and
/// the Active condition.
pub fn reconcile(
    spec: &ResolvedSpec,
    state: &mut ScalerState,
    inputs: ScalerInputs,
    now: Timestamp,
) -> ScalerOutcome {
    let mut requeue = None;
    let want = scale(spec, state, inputs, now, &mut requeue);
    // A known scale is never replaced by "unknown".
    if !(state.desired_scale >= 0 && want == -1) {
        state.desired_scale = want;
    }
    update_activity(spec, state, want, inputs.ready, now);
    ScalerOutcome {
        want,
        requeue_after: requeue,
    }
}

/// Knative's `min` and `max` for the PA, with the initial scale folded in until the revision
/// first reached it.
pub fn scale_bounds(spec: &ResolvedSpec, state: &ScalerState) -> (u32, u32) {
    let mut min = spec.min_scale();
    if spec.initial_scale > 1 && !state.scale_target_initialized && spec.reachable() {
        min = min.max(spec.initial_scale);
    }
    (min, spec.max_scale)
}

fn scale(
    spec: &ResolvedSpec,
    state: &mut ScalerState,
    inputs: ScalerInputs,
    now: Timestamp,
    requeue: &mut Option<Duration>,
) -> i32 {
    let desired = inputs.decider_desired;
    if desired < 0 && state.activity != Activity::Activating {
        return desired; // metrics are not being collected yet
    }
    let (min, max) = scale_bounds(spec, state);
    let mut bounded = i64::from(desired).max(i64::from(min));
    if max > 0 {
        bounded = bounded.min(i64::from(max));
    }
    // A negative (unknown) desired scale gets here only while Activating; with no minimum it
    // counts as 0, so the zero gate decides: wait for the activation or for its timeout.
    let bounded = bounded.max(0) as u32;

    match gate_scale_to_zero(spec, state, inputs, bounded, now, requeue) {
        Gate::Apply(target) => {
            state.replicas = target;
            i32::try_from(target).unwrap_or(i32::MAX)
        }
        Gate::Hold(want) => want,
    }
}

/// What the scale-to-zero gate decided.
enum Gate {
    /// Run this many replicas.
    Apply(u32),
    /// Leave the replicas alone and report this `want` (0, or -1 while activating).
    Hold(i32),
}

/// `handleScaleToZero`; only a bounded desired scale of 0 is gated.
fn gate_scale_to_zero(
    spec: &ResolvedSpec,
    state: &ScalerState,
    inputs: ScalerInputs,
    bounded: u32,
    now: Timestamp,
    requeue: &mut Option<Duration>,
) -> Gate {
    if bounded != 0 {
        return Gate::Apply(bounded);
    }
    if !spec.enable_scale_to_zero {
        return Gate::Apply(1);
    }
    match state.activity {
        Activity::Activating => {
            // Knative's `CanFailActivation`: strictly longer than the timeout.
            if now - state.since > spec.activation_timeout {
                return Gate::Apply(0);
            }
            *requeue = Some(spec.activation_timeout - (now - state.since));
            Gate::Hold(-1)
        }
        Activity::Active => {
            let active_for = state.active_for(now);
            if active_for >= spec.stable_window {
                // Leave the replicas; `want` 0 marks the revision Inactive and puts the activator
                // in the path. The next reconcile (right away in wisp) may then take it to zero.
                if inputs.activator_in_path_since.is_some() {
                    *requeue = Some(PROXY_REQUEUE);
                }
                return Gate::Hold(0);
            }
            // Shrink to one pod for the rest of the stable window, then look again.
            *requeue = Some(spec.stable_window - active_for);
            Gate::Apply(1)
        }
        Activity::Inactive => {
            // Knative probes the activator here; wisp knows whether it is in the path.
            let Some(in_path_since) = inputs.activator_in_path_since else {
                *requeue = Some(Duration::from_secs(1));
                return Gate::Hold(0);
            };
            let grace = spec.scale_to_zero_grace_period;
            let retention = spec.pod_retention();
            let inactive_for = state.inactive_for(now);
            if inactive_for >= grace.max(retention) {
                return Gate::Apply(0);
            }
            if retention > Duration::ZERO && inactive_for < retention {
                *requeue = Some(retention - inactive_for);
                return Gate::Hold(0);
            }
            let proxy_for = now - in_path_since;
            if proxy_for >= grace {
                return Gate::Apply(0);
            }
            *requeue = Some(grace - proxy_for);
            Gate::Hold(0)
        }
    }
}

/// `computeActiveCondition`.
fn update_activity(
    spec: &ResolvedSpec,
    state: &mut ScalerState,
    want: i32,
    ready: u32,
    now: Timestamp,
) {
    let (min, _) = scale_bounds(spec, state);
    let min_ready = if state.scale_target_initialized {
        min.max(1)
    } else {
        min.max(spec.initial_scale)
    };
    if ready >= min_ready {
        state.scale_target_initialized = true;
    }
    if want == 0 || min_ready == 0 {
        // Knative re-marks a timed-out PA `NoTraffic` on the next reconcile and fails the Revision
        // through the Deployment's progress deadline instead; wisp has no Deployment, so the
        // failure stays on the state until the revision activates again.
        let timed_out = (state.activity == Activity::Activating && min_ready > 0)
            || (state.activity == Activity::Inactive
                && state.reason == Some(ActivityReason::TimedOut));
        let reason = if timed_out {
            ActivityReason::TimedOut
        } else {
            ActivityReason::NoTraffic
        };
        state.mark(Activity::Inactive, Some(reason), now);
    } else if ready < min_ready {
        if want > 0 || state.activity != Activity::Inactive {
            state.mark(Activity::Activating, Some(ActivityReason::Queued), now);
        } else if state.reason != Some(ActivityReason::TimedOut) {
            state.mark(Activity::Inactive, Some(ActivityReason::NoTraffic), now);
        }
    } else if want > 0 || state.activity != Activity::Inactive {
        state.mark(Activity::Active, None, now);
    }
}
