//! Everything the autoscaler keeps for one revision, and its two steps: `decide` (the decider
//! tick) and `reconcile` (the KPA reconcile that turns the decision into replicas and an
//! activator-facing view). Pure: time and the ready count are passed in.

use crate::activator::{activator_in_path, num_activators};
use crate::annotations::ScalingMetric;
use crate::clock::Timestamp;
use crate::decider::{Decider, Observed, initial_excess_burst_capacity};
use crate::reporter::Stat;
use crate::scaler::{Activity, ActivityReason, ScalerInputs, ScalerState, reconcile};
use crate::spec::ResolvedSpec;
use crate::window::MetricWindow;

/// What the data plane and the activator act on, per revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RevisionView {
    /// Replicas the data plane should run now.
    pub replicas: u32,
    /// `status.desiredScale`: the bounded desired scale, -1 while unknown.
    pub desired_scale: i32,
    /// Negative: not enough spare capacity for the target burst; keep the activator in the path.
    pub excess_burst_capacity: i32,
    /// Requests must go through the activator (buffering, throttling) rather than straight to
    /// replicas.
    pub activator_in_path: bool,
    /// How many activators should front the revision (for a multi-node activator tier).
    pub num_activators: u32,
    pub panicking: bool,
    pub activity: Activity,
    pub reason: Option<ActivityReason>,
}

impl RevisionView {
    /// The revision could not be activated within progress-deadline + 30 s: mark it failed.
    pub fn failed(&self) -> bool {
        self.reason == Some(ActivityReason::TimedOut)
    }
}

/// The four bucket series Knative keeps per revision.
#[derive(Clone, Debug)]
struct RevisionMetrics {
    stable_concurrency: MetricWindow,
    panic_concurrency: MetricWindow,
    stable_rps: MetricWindow,
    panic_rps: MetricWindow,
}

impl RevisionMetrics {
    fn new(spec: &ResolvedSpec) -> Self {
        let (stable, panic) = spec.window_buckets();
        let a = spec.aggregation;
        Self {
            stable_concurrency: MetricWindow::new(stable, a),
            panic_concurrency: MetricWindow::new(panic, a),
            stable_rps: MetricWindow::new(stable, a),
            panic_rps: MetricWindow::new(panic, a),
        }
    }

    fn record(&mut self, now: Timestamp, stat: Stat) {
        let t = now.whole_secs();
        self.stable_concurrency.record(t, stat.concurrency);
        self.panic_concurrency.record(t, stat.concurrency);
        self.stable_rps.record(t, stat.requests);
        self.panic_rps.record(t, stat.requests);
    }

    /// `None` is Knative's `ErrNoData`: nothing recorded within the stable window. With
    /// TBC = -1 Knative has no scrape target and reads zeros instead.
    fn observed(&self, spec: &ResolvedSpec, now: Timestamp) -> Option<Observed> {
        let t = now.whole_secs();
        let (stable, panic) = match spec.metric {
            ScalingMetric::Concurrency => (&self.stable_concurrency, &self.panic_concurrency),
            ScalingMetric::Rps => (&self.stable_rps, &self.panic_rps),
        };
        if stable.is_empty_at(t) && spec.target_burst_capacity != -1.0 {
            return None;
        }
        Some(Observed {
            stable: stable.average(t),
            panic: panic.average(t),
        })
    }
}

/// One revision's autoscaling state.
#[derive(Clone, Debug)]
pub struct RevisionState {
    spec: ResolvedSpec,
    metrics: RevisionMetrics,
    decider: Decider,
    /// The decider's last valid desired scale (-1 until the first valid decision).
    decider_desired: i32,
    excess_burst_capacity: i32,
    scaler: ScalerState,
    activator_in_path_since: Option<Timestamp>,
    requeue_at: Option<Timestamp>,
    last_observed: Option<Observed>,
    view: RevisionView,
}

impl RevisionState {
    /// A newly registered revision: decider created with the current ready count, activator in
    /// the path (Knative creates the SKS in Proxy mode), replicas at the initial scale.
    pub fn new(spec: ResolvedSpec, ready: u32, now: Timestamp) -> Self {
        let scaler = ScalerState::new(&spec, now);
        let excess_burst_capacity = initial_excess_burst_capacity(&spec);
        let decider = Decider::new(spec.clone(), ready, now);
        let view = RevisionView {
            replicas: scaler.replicas,
            desired_scale: -1,
            excess_burst_capacity,
            activator_in_path: true,
            num_activators: num_activators(&spec, ready),
            panicking: decider.is_panicking(),
            activity: scaler.activity,
            reason: scaler.reason,
        };
        Self {
            metrics: RevisionMetrics::new(&spec),
            spec,
            decider,
            decider_desired: -1,
            excess_burst_capacity,
            scaler,
            activator_in_path_since: Some(now),
            requeue_at: None,
            last_observed: None,
            view,
        }
    }

    pub fn spec(&self) -> &ResolvedSpec {
        &self.spec
    }

    pub fn view(&self) -> RevisionView {
        self.view
    }

    /// The decider's last valid desired scale, -1 before its first valid decision.
    pub fn decider_desired(&self) -> i32 {
        self.decider_desired
    }

    /// Whether demand should evaluate the revision at once (the poke): its desired scale is 0,
    /// or it has never had a valid decision. Knative pokes only at exactly 0, so a revision
    /// created at initial scale 0 waits for the next 2-second tick on its first request;
    /// wisp starts it at once, as it does every other cold start.
    pub fn at_zero(&self) -> bool {
        self.decider_desired <= 0
    }

    pub fn last_observed(&self) -> Option<Observed> {
        self.last_observed
    }

    pub fn requeue_at(&self) -> Option<Timestamp> {
        self.requeue_at
    }

    /// Replaces the spec. Windows are rebuilt (losing history) only when their shape changes.
    pub fn update_spec(&mut self, spec: ResolvedSpec) {
        if spec.window_buckets() != self.spec.window_buckets()
            || spec.aggregation != self.spec.aggregation
        {
            self.metrics = RevisionMetrics::new(&spec);
        }
        self.decider.update_spec(spec.clone());
        self.spec = spec;
    }

    /// Adds one stat to the windows (values in the same second add up).
    pub fn record(&mut self, now: Timestamp, stat: Stat) {
        self.metrics.record(now, stat);
    }

    /// The decider tick. Returns whether Knative would re-queue the PA: the desired scale or the
    /// sign of the excess burst capacity changed.
    pub fn decide(&mut self, now: Timestamp, ready: u32) -> bool {
        let observed = self.metrics.observed(&self.spec, now);
        self.last_observed = observed;
        let result = self.decider.scale(now, ready, observed);
        if !result.valid {
            return false;
        }
        let changed = result.desired != self.decider_desired
            || (result.excess_burst_capacity < 0) != (self.excess_burst_capacity < 0);
        self.decider_desired = result.desired;
        self.excess_burst_capacity = result.excess_burst_capacity;
        changed
    }

    /// The KPA reconcile: bounds, scale-to-zero gate, Active condition, activator-in-path.
    /// Returns the new view.
    pub fn reconcile(&mut self, now: Timestamp, ready: u32) -> RevisionView {
        // A state change re-triggers the reconcile in Knative (through the PA and SKS watches); in
        // wisp the second pass runs at once. Two passes reach a fixed point: the gate moves the
        // state at most Active → Inactive → scaled to zero.
        for _ in 0..3 {
            let before = (self.scaler.activity, self.view.activator_in_path);
            self.reconcile_once(now, ready);
            if before == (self.scaler.activity, self.view.activator_in_path) {
                break;
            }
        }
        self.view
    }

    fn reconcile_once(&mut self, now: Timestamp, ready: u32) {
        let outcome = reconcile(
            &self.spec,
            &mut self.scaler,
            ScalerInputs {
                decider_desired: self.decider_desired,
                ready,
                activator_in_path_since: self.activator_in_path_since,
            },
            now,
        );
        self.requeue_at = outcome.requeue_after.map(|d| now + d);
        let in_path = activator_in_path(outcome.want, self.excess_burst_capacity, ready);
        self.activator_in_path_since = match (in_path, self.activator_in_path_since) {
            (true, Some(since)) => Some(since),
            (true, None) => Some(now),
            (false, _) => None,
        };
        self.view = RevisionView {
            replicas: self.scaler.replicas,
            desired_scale: self.scaler.desired_scale,
            excess_burst_capacity: self.excess_burst_capacity,
            activator_in_path: in_path,
            num_activators: num_activators(&self.spec, ready),
            panicking: self.decider.is_panicking(),
            activity: self.scaler.activity,
            reason: self.scaler.reason,
        };
    }

    /// Decide and reconcile: one full evaluation, as on a tick or a poke.
    pub fn evaluate(&mut self, now: Timestamp, ready: u32) -> RevisionView {
        self.decide(now, ready);
        self.reconcile(now, ready)
    }
}
