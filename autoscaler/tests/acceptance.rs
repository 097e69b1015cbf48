//! Knative's acceptance vectors (reference §9) that concern the autoscaler: one test per vector,
//! with Knative's inputs and expected outputs.
//!
//! Decider vectors (V1–V20) use Knative's harness from `autoscaler_test.go`: `TotalValue =
//! target / 0.75`, panic threshold 2.0, max scale-up and scale-down rates 10, stable window 60 s,
//! reachable, no scale-down delay, decider created with one ready pod. Every decision is checked
//! whole — validity, desired pods and excess burst capacity — as Knative's `expectScale` does.
//! `knative/autoscaler.rs` ports the rest of Knative's decider tests, `knative/kpa.rs` its
//! multiscaler and KPA scaler tests (modules of this test binary: one binary links faster than
//! three).
//!
//! Where wisp deliberately differs:
//! * V24–V25: Knative probes the activator over HTTP before scaling to zero; wisp's data plane
//!   knows in-process whether the activator is in the path, so "probe succeeds" is
//!   `activator_in_path_since = Some(..)` and "probe fails" is `None` (the scaler holds and looks
//!   again after 1 s, as Knative does after its async probe).
//! * V32: wisp has no pod sampling — every request passes through its own accounting, so the
//!   "sample" is always every replica (n = N) and nothing is extrapolated. The test checks that the
//!   recorded value is the exact revision-wide total for Knative's N values.
//! * V33: the activator's reporter is [`ConcurrencyReporter`]; in wisp it is the one accounting
//!   point for both queued and in-replica requests.
//! * V34–V35 (throttler capacity and pod assignment) belong to the activator crate, not here.
//! * The poke: Knative evaluates at once only when the last desired scale is exactly 0, so the
//!   first request to a revision created with initial scale 0 (desired still -1) waits for the
//!   next 2-second tick; wisp also pokes while no decision has been made yet (see
//!   `RevisionState::at_zero`).

#[path = "knative/autoscaler.rs"]
mod knative_autoscaler;
#[path = "knative/kpa.rs"]
mod knative_kpa;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use wisp_autoscaler::activator::num_activators;
use wisp_autoscaler::annotations::ScalingMetric;
use wisp_autoscaler::decider::{Decider, Observed, ScaleResult, initial_excess_burst_capacity};
use wisp_autoscaler::reporter::{ConcurrencyReporter, Stat};
use wisp_autoscaler::revision::RevisionState;
use wisp_autoscaler::scaler::{
    Activity, ActivityReason, ScalerInputs, ScalerOutcome, ScalerState, reconcile,
};
use wisp_autoscaler::spec::{Reachability, ResolvedSpec, RevisionSpec, panic_window};
use wisp_autoscaler::target::resolve_target;
use wisp_autoscaler::window::MetricWindow;
use wisp_autoscaler::{
    Autoscaler, AutoscalerConfig, Clock, ManualClock, RevisionKey, Timestamp,
    annotations::Aggregation,
};

// ---------------------------------------------------------------------------------------------
// Harness

fn t(secs: u64) -> Timestamp {
    Timestamp::from_secs(1_000 + secs)
}

fn harness_spec(target: f64, tbc: f64) -> ResolvedSpec {
    let mut s =
        ResolvedSpec::resolve(&AutoscalerConfig::default(), &RevisionSpec::default()).unwrap();
    s.target_value = target;
    s.total_value = target / 0.75;
    s.target_burst_capacity = tbc;
    s.panic_threshold = 2.0;
    s.max_scale_up_rate = 10.0;
    s.max_scale_down_rate = 10.0;
    s.stable_window = Duration::from_secs(60);
    s.reachability = Reachability::Reachable;
    s.scale_down_delay = Duration::ZERO;
    s
}

fn decider(spec: ResolvedSpec) -> Decider {
    Decider::new(spec, 1, t(0))
}

fn obs(stable: f64, panic: f64) -> Option<Observed> {
    Some(Observed { stable, panic })
}

/// Knative's `expectScale`: a valid result with the desired count and the excess burst capacity
/// Knative's `expectedEBC` gives for the decider's spec — TBC 0 gives 0, TBC -1 gives -1, otherwise
/// `floor(ready × total − TBC − panic)`.
#[track_caller]
fn expect_scale(
    d: &mut Decider,
    now: Timestamp,
    ready: u32,
    observed: Option<Observed>,
    desired: i32,
) {
    let panic = observed.map_or(0.0, |o| o.panic);
    let spec = d.spec().clone();
    let tbc = spec.target_burst_capacity;
    let excess_burst_capacity = if tbc == 0.0 {
        0
    } else if tbc < 0.0 {
        -1
    } else {
        (spec.total_value * f64::from(ready) - tbc - panic).floor() as i32
    };
    let want = ScaleResult {
        desired,
        excess_burst_capacity,
        valid: true,
    };
    assert_eq!(
        d.scale(now, ready, observed),
        want,
        "{observed:?} with {ready} ready"
    );
}

fn assert_ebc(result: ScaleResult, expected: i32) {
    assert!(
        (result.excess_burst_capacity - expected).abs() <= 1,
        "EBC {} not within 1 of {expected}",
        result.excess_burst_capacity
    );
}

// ---------------------------------------------------------------------------------------------
// V1–V20: the decider

#[test]
fn v01_stable_mode_scales_to_stable_value() {
    let mut d = decider(harness_spec(10.0, 101.0));
    let r = d.scale(t(0), 1, obs(50.0, 10.0));
    assert_eq!(r.desired, 5);
    assert!(!d.is_panicking(), "ceil(10/10) = 1 < 2 must not panic");
    assert_ebc(r, -98);
    expect_scale(&mut d, t(2), 1, obs(100.0, 10.0), 10);
}

#[test]
fn v02_ready_pods_raise_the_panic_bar() {
    let mut d = decider(harness_spec(10.0, 0.0));
    expect_scale(&mut d, t(0), 8, obs(100.0, 100.0), 10);
    assert!(!d.is_panicking());
    expect_scale(&mut d, t(2), 8, obs(50.0, 50.0), 5);
}

#[test]
fn v03_any_load_keeps_one_pod_and_none_gives_zero() {
    let mut d = decider(harness_spec(10.0, 75.0));
    expect_scale(&mut d, t(0), 1, obs(1.0, 0.0), 1);
    expect_scale(&mut d, t(2), 1, obs(0.0, 0.0), 0);
}

#[test]
fn v04_activation_scale_is_the_first_step_from_zero() {
    let mut spec = harness_spec(10.0, 0.0);
    spec.activation_scale = 2;
    let mut d = decider(spec);
    expect_scale(&mut d, t(0), 1, obs(0.0, 0.0), 0);
    expect_scale(&mut d, t(2), 1, obs(1.0, 0.0), 2);
}

#[test]
fn v05_panic_takes_the_larger_of_stable_and_panic() {
    let mut d = decider(harness_spec(10.0, 84.0));
    let r = d.scale(t(0), 1, obs(50.0, 100.0));
    assert!(d.is_panicking());
    assert_eq!(r.desired, 10);
    assert_ebc(r, -171);
}

#[test]
fn v06_scale_up_is_capped_by_the_up_rate() {
    let mut d = decider(harness_spec(10.0, 0.0));
    expect_scale(&mut d, t(0), 1, obs(1000.0, 1001.0), 10);
    expect_scale(&mut d, t(2), 10, obs(1000.0, 1001.0), 100);
}

#[test]
fn v07_scale_down_is_floored_by_the_down_rate() {
    let mut d = decider(harness_spec(10.0, 0.0));
    expect_scale(&mut d, t(0), 100, obs(1.0, 1.0), 10);
    expect_scale(&mut d, t(2), 10, obs(1.0, 1.0), 1);
}

#[test]
fn v08_up_rate_near_one_still_allows_one_more_pod() {
    let mut spec = harness_spec(1.0, 0.0);
    spec.max_scale_up_rate = 1.1;
    let mut d = decider(spec);
    expect_scale(&mut d, t(0), 2, obs(3.0, 3.1), 3);
}

#[test]
fn v09_down_rate_applies_only_while_reachable() {
    let mut spec = harness_spec(10.0, 0.0);
    spec.max_scale_down_rate = 1.1;
    let mut d = decider(spec.clone());
    expect_scale(&mut d, t(0), 100, obs(1.0, 1.0), 90);
    spec.reachability = Reachability::Unreachable;
    let mut d = decider(spec);
    expect_scale(&mut d, t(0), 100, obs(1.0, 1.0), 1);
}

#[test]
fn v10_no_scale_down_in_panic_until_a_stable_window_passes() {
    let mut d = decider(harness_spec(10.0, 93.0));
    expect_scale(&mut d, t(0), 1, obs(100.0, 100.0), 10);
    assert!(d.is_panicking());
    let panic_at = 2;
    expect_scale(&mut d, t(panic_at), 10, obs(1000.0, 1000.0), 100);
    expect_scale(&mut d, t(panic_at + 30), 10, obs(1.0, 1.0), 100);
    expect_scale(&mut d, t(panic_at + 61), 10, obs(1.0, 1.0), 1);
    assert!(!d.is_panicking());
}

#[test]
fn v11_panicking_provisions_for_the_larger_window() {
    let mut d = Decider::new(harness_spec(1.0, 0.0), 5, t(0));
    assert!(d.is_panicking() && d.max_panic_pods() == 5);
    expect_scale(&mut d, t(0), 5, obs(50.0, 30.0), 50);
    let mut d = Decider::new(harness_spec(1.0, 0.0), 5, t(0));
    expect_scale(&mut d, t(0), 5, obs(20.0, 30.0), 30);
}

#[test]
fn v12_panic_high_water_mark_then_exit_after_stable_window() {
    let mut d = Decider::new(harness_spec(1.0, 98.0), 10, t(0));
    expect_scale(&mut d, t(0), 10, obs(11.0, 25.0), 25);
    expect_scale(&mut d, t(30), 40, obs(30.0, 41.0), 41);
    assert!(d.is_panicking(), "41/40 < 2 keeps panicTime at t0");
    expect_scale(&mut d, t(62), 55, obs(50.0, 56.0), 50);
    assert!(!d.is_panicking());
}

#[test]
fn v13_crossing_the_threshold_again_moves_panic_time() {
    let mut d = Decider::new(harness_spec(1.0, 98.0), 10, t(0));
    expect_scale(&mut d, t(0), 10, obs(11.0, 25.0), 25);
    expect_scale(&mut d, t(30), 40, obs(30.0, 80.0), 80);
    // panicTime moved to t0+30s, so at t0+62s the decider is still panicking and holds 80.
    expect_scale(&mut d, t(62), 55, obs(50.0, 56.0), 80);
    assert!(d.is_panicking());
}

#[test]
fn v14_growth_within_the_up_rate_each_step() {
    let mut d = decider(harness_spec(1.0, 101.0));
    let steps = [
        (1, 6.0, 6),
        (6, 36.0, 36),
        (36, 216.0, 216),
        (216, 1296.0, 1296),
    ];
    for (i, (ready, value, want)) in steps.into_iter().enumerate() {
        let now = t(2 * i as u64);
        expect_scale(&mut d, now, ready, obs(value, value), want);
    }
    expect_scale(&mut d, t(10), 1296, obs(1296.0, 1296.0), 1296);
}

#[test]
fn v15_zero_ready_counts_as_one_for_caps_but_zero_for_ebc() {
    let mut d = decider(harness_spec(10.0, 81.0));
    let r = d.scale(t(0), 0, obs(1000.0, 888.0));
    assert_eq!(r.desired, 10);
    assert_ebc(r, -969);
}

#[test]
fn v16_new_decider_panics_only_with_more_than_one_ready() {
    for (ready, panicking, max_panic) in [(0, false, 0), (1, false, 1), (2, true, 2)] {
        let d = Decider::new(harness_spec(10.0, 0.0), ready, t(0));
        assert_eq!(d.is_panicking(), panicking, "ready {ready}");
        assert_eq!(d.max_panic_pods(), max_panic, "ready {ready}");
    }
}

fn delayed_spec() -> ResolvedSpec {
    let mut spec = harness_spec(10.0, 0.0);
    spec.scale_down_delay = Duration::from_secs(300);
    spec.panic_threshold = 100.0;
    spec
}

#[test]
fn v17_scale_down_delay_holds_the_maximum() {
    let mut d = Decider::new(delayed_spec(), 1, Timestamp::ZERO);
    let at = Timestamp::from_secs;
    expect_scale(&mut d, at(2), 1, obs(40.0, 40.0), 4);
    expect_scale(&mut d, at(300), 1, obs(0.0, 0.0), 4);
    expect_scale(&mut d, at(302), 1, obs(0.0, 0.0), 0);
}

#[test]
fn v18_older_maxima_leave_the_delay_window_in_turn() {
    let mut d = Decider::new(delayed_spec(), 1, Timestamp::ZERO);
    let at = Timestamp::from_secs;
    expect_scale(&mut d, at(2), 1, obs(40.0, 40.0), 4);
    expect_scale(&mut d, at(300), 1, obs(0.0, 0.0), 4);
    expect_scale(&mut d, at(302), 1, obs(0.0, 0.0), 0);
    let steps = [
        (540, 40.0, 4),
        (600, 30.0, 4),
        (660, 0.0, 4),
        (840, 0.0, 3),
        (900, 0.0, 0),
    ];
    for (secs, value, want) in steps {
        expect_scale(&mut d, at(secs), 1, obs(value, value), want);
    }
}

#[test]
fn v19_delay_is_ignored_once_unreachable() {
    let mut d = Decider::new(delayed_spec(), 1, Timestamp::ZERO);
    let at = Timestamp::from_secs;
    expect_scale(&mut d, at(2), 1, obs(40.0, 40.0), 4);
    let mut spec = delayed_spec();
    spec.reachability = Reachability::Unreachable;
    d.update_spec(spec);
    expect_scale(&mut d, at(4), 1, obs(0.0, 0.0), 0);
}

#[test]
fn v20_burst_capacity_minus_one_and_zero() {
    let mut d = decider(harness_spec(181.0, -1.0));
    let r = d.scale(t(0), 1, obs(21.0, 26.0));
    assert_eq!((r.desired, r.excess_burst_capacity), (1, -1));
    let mut d = decider(harness_spec(10.0, 0.0));
    let r = d.scale(t(0), 1, obs(50.0, 49.0));
    assert_eq!((r.desired, r.excess_burst_capacity), (5, 0));
}

// ---------------------------------------------------------------------------------------------
// V21–V22: the multiscaler

#[test]
fn v21_new_decider_status() {
    let mut spec = harness_spec(25.0 * 0.75, 42.0);
    spec.initial_scale = 2;
    spec.total_value = 25.0;
    let state = RevisionState::new(spec.clone(), 0, t(0));
    assert_eq!(state.decider_desired(), -1);
    assert_eq!(state.view().desired_scale, -1);
    assert_eq!(state.view().excess_burst_capacity, 8);
    spec.target_burst_capacity = -1.0;
    assert_eq!(initial_excess_burst_capacity(&spec), -1);
    assert_eq!(
        RevisionState::new(spec, 0, t(0))
            .view()
            .excess_burst_capacity,
        -1
    );
}

#[test]
fn v22_stat_at_zero_evaluates_without_a_tick() {
    let clock = Arc::new(ManualClock::new(Timestamp::ZERO));
    let autoscaler = Autoscaler::new(AutoscalerConfig::default(), clock.clone());
    let key = RevisionKey::new("default", "hello-00001");
    let handle = autoscaler
        .register(key.clone(), RevisionSpec::default(), 0)
        .unwrap();
    handle.set_ready(1);
    // Idle for long enough to go to zero through the loop.
    for s in 0..=200 {
        clock.set(Timestamp::from_secs(s));
        autoscaler.step(clock.now());
    }
    assert_eq!(handle.view().replicas, 0);
    handle.set_ready(0);
    for s in 201..=400 {
        clock.set(Timestamp::from_secs(s));
        autoscaler.step(clock.now());
    }
    let mut views = handle.subscribe();
    views.mark_unchanged();
    // Half a second after the last step: no tick or collect runs before the assertion.
    clock.set(Timestamp::from_millis(400_500));
    handle.request_started();
    assert!(views.has_changed().unwrap());
    let view = handle.view();
    assert_eq!(view.replicas, 1);
    assert_eq!(view.desired_scale, 1);
    assert!(view.activator_in_path);
}

// ---------------------------------------------------------------------------------------------
// V23–V28: the scaler

fn scaler_spec(pairs: &[(&str, &str)], config: &AutoscalerConfig) -> ResolvedSpec {
    let annotations: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let revision = RevisionSpec {
        annotations,
        container_concurrency: 0,
        reachability: Reachability::Reachable,
    };
    ResolvedSpec::resolve(config, &revision).unwrap()
}

fn kpa_config() -> AutoscalerConfig {
    AutoscalerConfig {
        stable_window: Duration::from_secs(300),
        scale_to_zero_grace_period: Duration::from_secs(60),
        ..AutoscalerConfig::default()
    }
}

fn state(activity: Activity, since: Timestamp, replicas: u32) -> ScalerState {
    ScalerState {
        activity,
        reason: None,
        since,
        scale_target_initialized: true,
        desired_scale: 1,
        replicas,
    }
}

fn inputs(desired: i32, ready: u32, in_path_since: Option<Timestamp>) -> ScalerInputs {
    ScalerInputs {
        decider_desired: desired,
        ready,
        activator_in_path_since: in_path_since,
    }
}

const NOW: u64 = 10_000;

#[test]
fn v23_active_revision_shrinks_to_one_then_goes_inactive() {
    let spec = scaler_spec(&[], &kpa_config());
    let now = t(NOW);
    let mut s = state(
        Activity::Active,
        now.saturating_sub(Duration::from_secs(299)),
        10,
    );
    let out = reconcile(&spec, &mut s, inputs(0, 10, None), now);
    assert_eq!(out.want, 1);
    assert_eq!(s.replicas, 1);
    assert_eq!(out.requeue_after, Some(Duration::from_secs(1)));

    let mut s = state(
        Activity::Active,
        now.saturating_sub(Duration::from_secs(300)),
        10,
    );
    let out = reconcile(&spec, &mut s, inputs(0, 10, None), now);
    assert_eq!(out.want, 0);
    assert_eq!(s.replicas, 10, "no patch: the deployment is left alone");
    assert_eq!(s.activity, Activity::Inactive);
}

fn inactive_case(
    config: &AutoscalerConfig,
    annotations: &[(&str, &str)],
    inactive_for: u64,
    proxy_for: u64,
) -> (ScalerOutcome, u32) {
    let spec = scaler_spec(annotations, config);
    let now = t(NOW);
    let mut s = state(
        Activity::Inactive,
        now.saturating_sub(Duration::from_secs(inactive_for)),
        1,
    );
    let in_path = Some(now.saturating_sub(Duration::from_secs(proxy_for)));
    let out = reconcile(&spec, &mut s, inputs(0, 1, in_path), now);
    (out, s.replicas)
}

#[test]
fn v24_inactive_revision_waits_for_grace_and_retention() {
    let c = kpa_config();
    // Inactive for exactly the grace period: zero.
    assert_eq!(inactive_case(&c, &[], 60, 0).1, 0);
    // grace − 1 s and proxying < grace: wait.
    let (out, replicas) = inactive_case(&c, &[], 59, 59);
    assert_eq!((out.want, replicas), (0, 1));
    assert_eq!(out.requeue_after, Some(Duration::from_secs(1)));
    // grace − 1 s but the activator has been in the path ≥ grace: zero (fast path).
    assert_eq!(inactive_case(&c, &[], 59, 60).1, 0);
    // Retention 2 × grace: still waiting at grace.
    let long = AutoscalerConfig {
        scale_to_zero_pod_retention_period: Duration::from_secs(120),
        ..kpa_config()
    };
    let (out, replicas) = inactive_case(&long, &[], 60, 600);
    assert_eq!(replicas, 1);
    assert_eq!(out.requeue_after, Some(Duration::from_secs(60)));
    // Retention = grace: zero.
    let equal = AutoscalerConfig {
        scale_to_zero_pod_retention_period: Duration::from_secs(60),
        ..kpa_config()
    };
    assert_eq!(inactive_case(&equal, &[], 60, 60).1, 0);
    // Annotation retention "0" overrides the ConfigMap's 2 × grace: zero.
    let ann = [(
        "autoscaling.knative.dev/scale-to-zero-pod-retention-period",
        "0",
    )];
    assert_eq!(inactive_case(&long, &ann, 60, 60).1, 0);
}

#[test]
fn v25_activator_not_in_path_blocks_scale_to_zero() {
    let c = kpa_config();
    let spec = scaler_spec(&[], &c);
    let now = t(NOW);
    let mut s = state(
        Activity::Inactive,
        now.saturating_sub(Duration::from_secs(120)),
        1,
    );
    let out = reconcile(&spec, &mut s, inputs(0, 1, None), now);
    assert_eq!(
        s.replicas, 1,
        "no scale while the activator is not in the path"
    );
    assert_eq!(out.requeue_after, Some(Duration::from_secs(1)));

    // TBC −1: the activator is always in the path (wisp's view says so), straight to zero.
    let spec = scaler_spec(
        &[("autoscaling.knative.dev/target-burst-capacity", "-1")],
        &c,
    );
    let mut revision = RevisionState::new(spec, 1, now);
    assert!(revision.view().activator_in_path);
    let mut s = state(
        Activity::Inactive,
        now.saturating_sub(Duration::from_secs(120)),
        1,
    );
    let spec = revision.spec().clone();
    let out = reconcile(&spec, &mut s, inputs(0, 1, Some(now)), now);
    assert_eq!((out.want, s.replicas), (0, 0));
    // And the full revision path keeps it in the path whatever the load.
    revision.record(
        now,
        Stat {
            concurrency: 1.0,
            requests: 1.0,
        },
    );
    assert!(revision.evaluate(now, 1).activator_in_path);
}

#[test]
fn v26_activation_timeout_fails_the_revision() {
    let c = kpa_config();
    let spec = scaler_spec(&[("serving.knative.dev/progress-deadline", "121s")], &c);
    let now = t(NOW);
    let mut s = state(
        Activity::Activating,
        now.saturating_sub(Duration::from_secs(75)),
        1,
    );
    s.scale_target_initialized = false;
    let out = reconcile(&spec, &mut s, inputs(0, 0, Some(now)), now);
    assert_eq!(out.want, -1);
    assert_eq!(out.requeue_after, Some(Duration::from_secs(151 - 75)));
    assert_eq!(s.replicas, 1);

    // Knative's `CanFailActivation` needs strictly longer than the timeout: at exactly 151 s the
    // activation still holds.
    let mut s = state(
        Activity::Activating,
        now.saturating_sub(Duration::from_secs(151)),
        1,
    );
    s.scale_target_initialized = false;
    let out = reconcile(&spec, &mut s, inputs(0, 0, Some(now)), now);
    assert_eq!((out.want, s.replicas), (-1, 1));
    assert_eq!(s.activity, Activity::Activating);

    let mut s = state(
        Activity::Activating,
        now.saturating_sub(Duration::from_secs(152)),
        1,
    );
    s.scale_target_initialized = false;
    let out = reconcile(&spec, &mut s, inputs(0, 0, Some(now)), now);
    assert_eq!((out.want, s.replicas), (0, 0));
    assert_eq!(s.activity, Activity::Inactive);
    assert_eq!(s.reason, Some(ActivityReason::TimedOut));
}

#[test]
fn v27_min_scale_holds_unless_unreachable() {
    let c = kpa_config();
    let now = t(NOW);
    let expected = [
        (Reachability::Reachable, 2),
        (Reachability::Unreachable, 0),
        (Reachability::Unknown, 2),
    ];
    for (reachability, want) in expected {
        let mut spec = scaler_spec(&[("autoscaling.knative.dev/min-scale", "2")], &c);
        spec.reachability = reachability;
        let long_ago = now.saturating_sub(Duration::from_secs(3600));
        let mut s = state(Activity::Inactive, long_ago, 10);
        reconcile(&spec, &mut s, inputs(0, 10, Some(long_ago)), now);
        assert_eq!(s.replicas, want, "{reachability:?}");
    }
}

#[test]
fn v28_max_initial_and_no_scale_to_zero_bounds() {
    let c = kpa_config();
    let now = t(NOW);
    let active_long = now.saturating_sub(Duration::from_secs(3600));

    let spec = scaler_spec(&[("autoscaling.knative.dev/max-scale", "8")], &c);
    let mut s = state(Activity::Active, active_long, 5);
    assert_eq!(reconcile(&spec, &mut s, inputs(10, 5, None), now).want, 8);

    let spec = scaler_spec(&[("autoscaling.knative.dev/initial-scale", "2")], &c);
    let mut s = state(Activity::Activating, now, 0);
    s.scale_target_initialized = false;
    assert_eq!(reconcile(&spec, &mut s, inputs(1, 0, None), now).want, 2);

    let off = AutoscalerConfig {
        enable_scale_to_zero: false,
        ..kpa_config()
    };
    let spec = scaler_spec(&[], &off);
    let mut s = state(Activity::Active, active_long, 3);
    assert_eq!(reconcile(&spec, &mut s, inputs(0, 3, None), now).want, 1);
    let spec = scaler_spec(&[("autoscaling.knative.dev/min-scale", "2")], &off);
    let mut s = state(Activity::Active, active_long, 3);
    assert_eq!(reconcile(&spec, &mut s, inputs(0, 3, None), now).want, 2);
}

// ---------------------------------------------------------------------------------------------
// V29–V33, V36: target resolution, windows, reporting, activator count

#[test]
fn v29_target_resolution() {
    let fixture = AutoscalerConfig {
        container_concurrency_target_fraction: 1.0,
        ..AutoscalerConfig::default()
    };
    let r = resolve_target(&fixture, ScalingMetric::Concurrency, 10, None, Some(0.8));
    assert_eq!((r.target, r.total), (8.0, 10.0));
    let r = resolve_target(&fixture, ScalingMetric::Concurrency, 1, Some(10.0), None);
    assert_eq!((r.target, r.total), (1.0, 1.0));
    let r = resolve_target(&fixture, ScalingMetric::Rps, 0, None, None);
    assert!((r.target - 140.0).abs() < 1e-9 && r.total == 200.0);
    let r = resolve_target(&fixture, ScalingMetric::Rps, 0, Some(300.0), None);
    assert!((r.target - 210.0).abs() < 1e-9 && r.total == 300.0);
}

#[test]
fn v30_panic_window_from_stable_window_and_percentage() {
    let s = Duration::from_secs;
    assert_eq!(panic_window(s(60), 10.0), s(6));
    assert_eq!(panic_window(s(10), 10.0), s(1));
    assert_eq!(panic_window(s(600), 10.0), s(60));
    assert_eq!(panic_window(s(60), 51.0), s(31));
    // The same through annotations.
    let spec = scaler_spec(
        &[
            ("autoscaling.knative.dev/window", "60s"),
            ("autoscaling.knative.dev/panic-window-percentage", "51"),
        ],
        &AutoscalerConfig::default(),
    );
    assert_eq!(spec.panic_window, s(31));
}

#[test]
fn v31_linear_buckets_partial_window_and_stale_tail() {
    let mut w = MetricWindow::new(5, Aggregation::Linear);
    w.record(0, 1.0);
    assert_eq!(w.average(0), 1.0);
    for (second, value) in [(1, 2.0), (2, 3.0), (3, 4.0), (4, 5.0)] {
        w.record(second, value);
    }
    assert_eq!(w.average(4), 3.0);
    assert_eq!(w.average(6), 4.0);
    assert_eq!(w.average(10), 0.0);
    w.record(6, 91.0);
    assert_eq!(w.average(6), 20.6);
}

#[test]
fn v32_no_sampling_every_replica_is_counted() {
    for replicas in [1u32, 2, 5, 10, 100, 1000] {
        let clock = Arc::new(ManualClock::new(Timestamp::ZERO));
        let autoscaler = Autoscaler::new(AutoscalerConfig::default(), clock.clone());
        let handle = autoscaler
            .register(
                RevisionKey::new("ns", "r"),
                RevisionSpec::default(),
                replicas,
            )
            .unwrap();
        // One request in flight per replica, collected each second; once the first-sight
        // adjustment has left the panic window, it reads exactly N — nothing is extrapolated.
        clock.set(Timestamp::from_millis(500));
        let guards: Vec<_> = (0..replicas).map(|_| handle.track_request()).collect();
        for second in 1..=10 {
            clock.set(Timestamp::from_secs(second));
            autoscaler.step(clock.now());
        }
        let observed = handle.status().observed.unwrap();
        assert_eq!(observed.panic, f64::from(replicas), "N = {replicas}");
        drop(guards);
    }
}

#[test]
fn v33_activator_reporter_first_sight_and_adjustment() {
    let mut r = ConcurrencyReporter::new();
    let t0 = Timestamp::from_secs(0);
    assert_eq!(
        r.request_in(t0),
        Some(Stat {
            concurrency: 1.0,
            requests: 1.0
        })
    );
    assert_eq!(r.request_in(t0), None);
    assert_eq!(
        r.report(Timestamp::from_secs(1)),
        Some(Stat {
            concurrency: 1.0,
            requests: 1.0
        })
    );
    assert_eq!(
        r.report(Timestamp::from_secs(2)),
        Some(Stat {
            concurrency: 2.0,
            requests: 0.0
        })
    );
}

#[test]
fn v36_activator_count() {
    let mut spec = harness_spec(7.5, 200.0);
    spec.total_value = 10.0;
    spec.activator_capacity = 100.0;
    for ready in 1..=10 {
        assert_eq!(num_activators(&spec, ready), 3, "ready {ready}");
    }
    for ready in 11..=12 {
        assert_eq!(num_activators(&spec, ready), 4, "ready {ready}");
    }
    spec.target_burst_capacity = 0.0;
    assert_eq!(num_activators(&spec, 12), 2);
    let defaults =
        ResolvedSpec::resolve(&AutoscalerConfig::default(), &RevisionSpec::default()).unwrap();
    assert_eq!(num_activators(&defaults, 0), 3);
    assert_eq!(num_activators(&defaults, 1), 4);
}
