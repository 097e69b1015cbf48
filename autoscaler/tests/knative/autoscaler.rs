//! Knative's decider tests (`pkg/autoscaler/scaling/autoscaler_test.go` in knative/serving),
//! ported case by case with Knative's inputs and expected results. Every scale check compares the
//! whole result — validity, desired pods and excess burst capacity — as Knative's `expectScale`
//! does, with the EBC computed by Knative's own `expectedEBC` formula.
//!
//! Knative's decider reads its metric (concurrency or RPS) from a metric client; wisp's decider is
//! handed the observed stable and panic values, and the revision picks which windows they come
//! from (see `rps_revision_reads_the_request_rate_windows` below for that part).
//!
//! Not ported, and why:
//! * `TestCantCountPods`, `TestNewFail`: wisp's ready count is a number the data plane sets, not
//!   an Endpoints lookup that can fail.
//! * `TestAutoscalerStartMetrics`, `TestAutoscalerMetrics`: they check OpenTelemetry gauges
//!   wisp does not export under those names; the scale results they also check are ported.
//! * `BenchmarkAutoscaler`: wisp has its own criterion bench (`benches/autoscaler.rs`).

use std::time::Duration;

use wisp_autoscaler::annotations::ScalingMetric;
use wisp_autoscaler::decider::{Decider, Observed, ScaleResult};
use wisp_autoscaler::revision::RevisionState;
use wisp_autoscaler::spec::{Reachability, ResolvedSpec, RevisionSpec};
use wisp_autoscaler::{AutoscalerConfig, Stat, Timestamp};

const TARGET_UTILIZATION: f64 = 0.75;
const STABLE_WINDOW: Duration = Duration::from_secs(60);
const TICK: Duration = Duration::from_secs(2);

/// Knative's `time.Now()` in these tests: any instant well past zero.
fn now() -> Timestamp {
    Timestamp::from_secs(1_000)
}

/// `newTestAutoscalerWithScalingMetric`'s `DeciderSpec`.
fn spec_with(metric: ScalingMetric, target: f64, tbc: f64) -> ResolvedSpec {
    let mut s =
        ResolvedSpec::resolve(&AutoscalerConfig::default(), &RevisionSpec::default()).unwrap();
    s.metric = metric;
    s.target_value = target;
    s.total_value = target / TARGET_UTILIZATION;
    s.target_burst_capacity = tbc;
    s.panic_threshold = 2.0;
    s.max_scale_up_rate = 10.0;
    s.max_scale_down_rate = 10.0;
    s.activator_capacity = 150.0;
    s.stable_window = STABLE_WINDOW;
    s.reachability = Reachability::Reachable;
    s.scale_down_delay = Duration::ZERO;
    s
}

fn spec(target: f64, tbc: f64) -> ResolvedSpec {
    spec_with(ScalingMetric::Concurrency, target, tbc)
}

/// `newTestAutoscaler`: created with one ready pod.
fn autoscaler(target: f64, tbc: f64) -> Decider {
    Decider::new(spec(target, tbc), 1, now())
}

/// Knative's `expectedEBC`.
fn expected_ebc(total_capacity: f64, tbc: f64, recorded: f64, pods: f64) -> i32 {
    (total_capacity / TARGET_UTILIZATION * pods - tbc - recorded).floor() as i32
}

fn valid(desired: i32, excess_burst_capacity: i32) -> ScaleResult {
    ScaleResult {
        desired,
        excess_burst_capacity,
        valid: true,
    }
}

/// Knative's `expectScale`: the whole result must match.
#[track_caller]
fn expect_scale(
    d: &mut Decider,
    at: Timestamp,
    ready: u32,
    (stable, panic): (f64, f64),
    want: ScaleResult,
) {
    let got = d.scale(at, ready, Some(Observed { stable, panic }));
    assert_eq!(got, want, "stable {stable}, panic {panic}, ready {ready}");
}

/// The scale-down-delay tests' spec: no TBC, no total, panic threshold 100.
fn delay_spec(reachable: bool) -> ResolvedSpec {
    let mut s = spec(10.0, 0.0);
    s.total_value = 0.0;
    s.panic_threshold = 100.0;
    s.scale_down_delay = Duration::from_secs(300);
    s.reachability = if reachable {
        Reachability::Reachable
    } else {
        Reachability::Unreachable
    };
    s
}

fn at(secs: u64) -> Timestamp {
    Timestamp::ZERO + Duration::from_secs(secs)
}

#[test]
fn scale_down_delay() {
    // The fake pod counter of these tests reports 0 ready pods.
    let mut d = Decider::new(delay_spec(true), 0, Timestamp::ZERO);
    // simple
    expect_scale(&mut d, at(2), 0, (40.0, 40.0), valid(4, 0));
    expect_scale(&mut d, at(300), 0, (0.0, 0.0), valid(4, 0));
    expect_scale(&mut d, at(302), 0, (0.0, 0.0), valid(0, 0));
    // gradual
    expect_scale(&mut d, at(540), 0, (40.0, 40.0), valid(4, 0));
    expect_scale(&mut d, at(600), 0, (30.0, 30.0), valid(4, 0));
    expect_scale(&mut d, at(660), 0, (0.0, 0.0), valid(4, 0));
    expect_scale(&mut d, at(840), 0, (0.0, 0.0), valid(3, 0));
    expect_scale(&mut d, at(900), 0, (0.0, 0.0), valid(0, 0));
}

#[test]
fn scale_down_delay_not_reachable() {
    let mut d = Decider::new(delay_spec(true), 0, Timestamp::ZERO);
    expect_scale(&mut d, at(2), 0, (40.0, 40.0), valid(4, 0));
    expect_scale(&mut d, at(60), 0, (0.0, 0.0), valid(4, 0));
    // Another revision takes the traffic: the delay no longer applies.
    d.update_spec(delay_spec(false));
    expect_scale(&mut d, at(2), 0, (0.0, 0.0), valid(0, 0));
}

#[test]
fn scale_down_delay_zero() {
    let mut s = delay_spec(true);
    s.scale_down_delay = Duration::ZERO;
    s.reachability = Reachability::Unknown;
    let mut d = Decider::new(s, 0, Timestamp::ZERO);
    expect_scale(&mut d, at(0), 0, (40.0, 40.0), valid(4, 0));
    // No delay window at all: the next evaluation, half a second later, scales down.
    let half_second_later = Timestamp::ZERO + Duration::from_millis(500);
    expect_scale(&mut d, half_second_later, 0, (20.0, 20.0), valid(2, 0));
}

#[test]
fn no_data_no_autoscale() {
    let mut d = autoscaler(10.0, 100.0);
    assert_eq!(d.scale(now(), 1, None), ScaleResult::INVALID);
    assert_eq!(
        ScaleResult::INVALID,
        ScaleResult {
            desired: 0,
            excess_burst_capacity: 0,
            valid: false
        }
    );
}

#[test]
fn metrics_with_rps() {
    let mut d = Decider::new(spec_with(ScalingMetric::Rps, 10.0, 100.0), 1, now());
    expect_scale(
        &mut d,
        now() + Duration::from_secs(61),
        1,
        (100.0, 99.0),
        valid(10, expected_ebc(10.0, 100.0, 99.0, 1.0)),
    );
    // Knative's gauge for this case reports panic mode on: ceil(99 / 10) / 1 ≥ 2.
    assert!(d.is_panicking());
}

#[test]
fn stable_mode_increase_with_concurrency_default() {
    let mut d = autoscaler(10.0, 101.0);
    let ebc = expected_ebc(10.0, 101.0, 10.0, 1.0);
    expect_scale(&mut d, now(), 1, (50.0, 10.0), valid(5, ebc));
    expect_scale(&mut d, now(), 1, (100.0, 10.0), valid(10, ebc));
}

#[test]
fn stable_mode_increase_with_rps() {
    let mut d = Decider::new(spec_with(ScalingMetric::Rps, 10.0, 101.0), 1, now());
    let ebc = expected_ebc(10.0, 101.0, 50.0, 1.0);
    expect_scale(&mut d, now(), 1, (50.0, 50.0), valid(5, ebc));
    let ebc = expected_ebc(10.0, 101.0, 99.0, 1.0);
    expect_scale(&mut d, now(), 1, (100.0, 99.0), valid(10, ebc));
}

#[test]
fn unpanic_after_slow_increase() {
    let mut d = autoscaler(1.0, 98.0);
    let start = now();
    let ebc = expected_ebc(1.0, 98.0, 25.0, 10.0);
    expect_scale(&mut d, start, 10, (11.0, 25.0), valid(25, ebc));
    assert!(d.is_panicking());
    // Half a stable window later, one pod added per cycle: +15.
    let mid = start + STABLE_WINDOW / 2;
    let ebc = expected_ebc(1.0, 98.0, 41.0, 40.0);
    expect_scale(&mut d, mid, 40, (30.0, 41.0), valid(41, ebc));
    assert!(d.is_panicking(), "41 / 40 < 2: panic time must not move");
    // The end of the window: panic ends.
    let end = mid + STABLE_WINDOW / 2 + TICK;
    let ebc = expected_ebc(1.0, 98.0, 56.0, 55.0);
    expect_scale(&mut d, end, 55, (50.0, 56.0), valid(50, ebc));
    assert!(!d.is_panicking());
}

#[test]
fn extend_panic_window() {
    let mut d = autoscaler(1.0, 98.0);
    let start = now();
    let ebc = expected_ebc(1.0, 98.0, 25.0, 10.0);
    expect_scale(&mut d, start, 10, (11.0, 25.0), valid(25, ebc));
    let mid = start + STABLE_WINDOW / 2;
    let ebc = expected_ebc(1.0, 98.0, 80.0, 40.0);
    expect_scale(&mut d, mid, 40, (30.0, 80.0), valid(80, ebc));
    // Still surging: panic time moved to `mid`, so one more window from `start` keeps panicking.
    let ebc = expected_ebc(1.0, 98.0, 1.0, 40.0);
    expect_scale(
        &mut d,
        start + STABLE_WINDOW + TICK,
        40,
        (1.0, 1.0),
        valid(80, ebc),
    );
}

#[test]
fn stable_mode_decrease() {
    let mut d = autoscaler(10.0, 98.0);
    let ebc = expected_ebc(10.0, 98.0, 100.0, 8.0);
    expect_scale(&mut d, now(), 8, (100.0, 100.0), valid(10, ebc));
    let ebc = expected_ebc(10.0, 98.0, 50.0, 8.0);
    expect_scale(&mut d, now(), 8, (50.0, 50.0), valid(5, ebc));
}

#[test]
fn stable_mode_no_traffic_scale_to_zero() {
    let mut d = autoscaler(10.0, 75.0);
    let ebc = expected_ebc(10.0, 75.0, 0.0, 1.0);
    expect_scale(&mut d, now(), 1, (1.0, 0.0), valid(1, ebc));
    expect_scale(&mut d, now(), 1, (0.0, 0.0), valid(0, ebc));
}

#[test]
fn activation_scale() {
    let mut s = spec(10.0, 75.0);
    s.activation_scale = 2;
    let mut d = Decider::new(s, 1, now());
    let ebc = expected_ebc(10.0, 75.0, 0.0, 1.0);
    expect_scale(&mut d, now(), 1, (0.0, 0.0), valid(0, ebc));
    expect_scale(&mut d, now(), 1, (1.0, 0.0), valid(2, ebc));
}

/// Traffic grows exponentially; each scale-up brings concurrency back to the target of 1 until
/// it stabilises at 1296.
#[test]
fn panic_mode_exponential_track_and_stabilize() {
    let mut d = autoscaler(1.0, 101.0);
    let ebc = |recorded, pods| expected_ebc(1.0, 101.0, recorded, pods);
    expect_scale(&mut d, now(), 1, (6.0, 6.0), valid(6, ebc(6.0, 1.0)));
    let mut tm = now();
    expect_scale(&mut d, tm, 6, (36.0, 36.0), valid(36, ebc(36.0, 6.0)));
    assert!(d.is_panicking());
    tm = tm + Duration::from_secs(1);
    expect_scale(&mut d, tm, 36, (216.0, 216.0), valid(216, ebc(216.0, 36.0)));
    expect_scale(
        &mut d,
        tm,
        216,
        (1296.0, 1296.0),
        valid(1296, ebc(1296.0, 216.0)),
    );
    tm = tm + Duration::from_secs(1);
    expect_scale(
        &mut d,
        tm,
        1296,
        (1296.0, 1296.0),
        valid(1296, ebc(1296.0, 1296.0)),
    );
}

/// `TestAutoscalerScale`'s table.
#[test]
fn scale_table() {
    struct Case {
        label: &'static str,
        decider: Decider,
        ready: u32,
        observed: (f64, f64),
        want: ScaleResult,
    }
    let panicking = |target: f64, tbc: f64| {
        Decider::new(
            spec(target, tbc),
            5,
            now().saturating_sub(Duration::from_secs(5)),
        )
    };
    let with = |target: f64, tbc: f64, change: &dyn Fn(&mut ResolvedSpec)| {
        let mut s = spec(target, tbc);
        change(&mut s);
        Decider::new(s, 1, now())
    };
    let cases = [
        Case {
            label: "no data at zero: no autoscale",
            decider: autoscaler(10.0, 100.0),
            ready: 1,
            observed: (0.0, 0.0),
            want: valid(0, expected_ebc(10.0, 100.0, 0.0, 1.0)),
        },
        Case {
            label: "stable mode, unlimited TBC",
            decider: autoscaler(181.0, -1.0),
            ready: 1,
            observed: (21.0, 26.0),
            want: valid(1, -1),
        },
        Case {
            label: "TBC 0",
            decider: autoscaler(10.0, 0.0),
            ready: 1,
            observed: (50.0, 49.0),
            want: valid(5, 0),
        },
        Case {
            label: "stable mode, no change",
            decider: autoscaler(10.0, 100.0),
            ready: 1,
            observed: (50.0, 50.0),
            want: valid(5, expected_ebc(10.0, 100.0, 50.0, 1.0)),
        },
        Case {
            label: "panic, stable larger than panic",
            decider: panicking(1.0, 100.0),
            ready: 5,
            observed: (50.0, 30.0),
            want: valid(50, expected_ebc(1.0, 100.0, 30.0, 5.0)),
        },
        Case {
            label: "panic, stable less than panic",
            decider: panicking(1.0, 100.0),
            ready: 5,
            observed: (20.0, 30.0),
            want: valid(30, expected_ebc(1.0, 100.0, 30.0, 5.0)),
        },
        Case {
            label: "stable mode, no change, already scaled",
            decider: autoscaler(10.0, 100.0),
            ready: 5,
            observed: (50.0, 50.0),
            want: valid(5, expected_ebc(10.0, 100.0, 50.0, 5.0)),
        },
        Case {
            label: "stable mode, increase with a small scale-up rate",
            decider: with(1.0, 1982.0, &|s| s.max_scale_up_rate = 1.1),
            ready: 2,
            observed: (3.0, 3.1),
            want: valid(3, expected_ebc(1.0, 1982.0, 3.1, 2.0)),
        },
        Case {
            label: "stable mode, decrease with a small scale-down rate",
            decider: with(10.0, 1982.0, &|s| s.max_scale_down_rate = 1.1),
            ready: 100,
            observed: (1.0, 1.0),
            want: valid(90, expected_ebc(10.0, 1982.0, 1.0, 100.0)),
        },
        Case {
            label: "stable mode, decrease while unreachable",
            decider: with(10.0, 1982.0, &|s| {
                s.max_scale_down_rate = 1.1;
                s.reachability = Reachability::Unreachable;
            }),
            ready: 100,
            observed: (1.0, 1.0),
            want: valid(1, expected_ebc(10.0, 1982.0, 1.0, 100.0)),
        },
        Case {
            label: "panic mode doubles the pod count",
            decider: autoscaler(10.0, 84.0),
            ready: 1,
            observed: (50.0, 100.0),
            want: valid(10, expected_ebc(10.0, 84.0, 100.0, 1.0)),
        },
    ];
    for mut case in cases {
        let (stable, panic) = case.observed;
        let got = case
            .decider
            .scale(now(), case.ready, Some(Observed { stable, panic }));
        assert_eq!(got, case.want, "{}", case.label);
    }
}

#[test]
fn panic_then_unpanic_scale_down() {
    let mut d = autoscaler(10.0, 93.0);
    let ebc = |recorded, pods| expected_ebc(10.0, 93.0, recorded, pods);
    expect_scale(&mut d, now(), 1, (100.0, 100.0), valid(10, ebc(100.0, 1.0)));
    let panic_time = now();
    expect_scale(
        &mut d,
        panic_time,
        10,
        (100.0, 1000.0),
        valid(100, ebc(1000.0, 10.0)),
    );
    // Traffic dropped; the scale holds while panicking.
    let later = panic_time + Duration::from_secs(30);
    expect_scale(&mut d, later, 10, (1.0, 1.0), valid(100, ebc(1.0, 10.0)));
    // Scale down after the stable window.
    let after = panic_time + Duration::from_secs(61);
    expect_scale(&mut d, after, 10, (1.0, 1.0), valid(1, ebc(1.0, 10.0)));
}

#[test]
fn rate_limit_scale_up() {
    let mut d = autoscaler(10.0, 61.0);
    // 100 pods are needed, but only ×10 per step.
    let ebc = |pods| expected_ebc(10.0, 61.0, 1001.0, pods);
    expect_scale(&mut d, now(), 1, (1000.0, 1001.0), valid(10, ebc(1.0)));
    expect_scale(&mut d, now(), 10, (1000.0, 1001.0), valid(100, ebc(10.0)));
}

#[test]
fn rate_limit_scale_down() {
    let mut d = autoscaler(10.0, 61.0);
    let ebc = |pods| expected_ebc(10.0, 61.0, 1.0, pods);
    expect_scale(&mut d, now(), 100, (1.0, 1.0), valid(10, ebc(100.0)));
    expect_scale(&mut d, now(), 10, (1.0, 1.0), valid(1, ebc(10.0)));
}

#[test]
fn use_one_pod_as_minimum_if_endpoints_not_found() {
    let mut d = autoscaler(10.0, 81.0);
    let ebc = expected_ebc(10.0, 81.0, 888.0, 0.0);
    expect_scale(&mut d, now(), 0, (1000.0, 888.0), valid(10, ebc));
}

#[test]
fn update_target() {
    let mut d = autoscaler(10.0, 77.0);
    let ebc = expected_ebc(10.0, 77.0, 101.0, 1.0);
    expect_scale(&mut d, now(), 1, (100.0, 101.0), valid(10, ebc));
    let mut updated = spec(1.0, 71.0);
    updated.activator_capacity = 21.0;
    d.update_spec(updated);
    let ebc = expected_ebc(1.0, 71.0, 101.0, 10.0);
    expect_scale(&mut d, now(), 10, (100.0, 101.0), valid(100, ebc));
}

#[test]
fn start_in_panic_mode() {
    let mut s = spec(100.0, 11.0);
    s.total_value = 120.0;
    s.panic_threshold = 220.0;
    for ready in 0..2 {
        let d = Decider::new(s.clone(), ready, now());
        assert!(!d.is_panicking(), "created at scale {ready}");
        assert_eq!(d.max_panic_pods(), ready as i32);
    }
    let d = Decider::new(s, 2, now());
    assert!(d.is_panicking(), "created at scale 2");
    assert_eq!(d.max_panic_pods(), 2);
}

/// The RPS metric end to end through a revision: request counts, not concurrency, drive the
/// decision, and the excess burst capacity is computed from the panic-window request rate.
#[test]
fn rps_revision_reads_the_request_rate_windows() {
    let decide = |metric: ScalingMetric| {
        let mut s = spec_with(metric, 10.0, 101.0);
        s.panic_window = Duration::from_secs(6);
        let mut revision = RevisionState::new(s, 1, Timestamp::ZERO);
        // A full stable window of 50 requests/s, each second's requests overlapping 500-fold.
        for second in 0..60 {
            revision.record(
                at(second),
                Stat {
                    concurrency: 500.0,
                    requests: 50.0,
                },
            );
        }
        revision.decide(at(59), 1);
        let ebc = revision.reconcile(at(59), 1).excess_burst_capacity;
        (revision.decider_desired(), ebc)
    };
    let (rps_desired, rps_ebc) = decide(ScalingMetric::Rps);
    assert_eq!(rps_desired, 5, "50 rps at a target of 10 rps per pod");
    assert_eq!(rps_ebc, expected_ebc(10.0, 101.0, 50.0, 1.0));
    let (concurrency_desired, concurrency_ebc) = decide(ScalingMetric::Concurrency);
    assert_eq!(
        concurrency_desired, 10,
        "500 in flight, capped at ×10 of one pod"
    );
    assert_eq!(concurrency_ebc, expected_ebc(10.0, 101.0, 500.0, 1.0));
}
