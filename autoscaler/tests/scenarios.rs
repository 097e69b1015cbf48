//! Scenarios on simulated time, through the real loop (`Autoscaler::step` once a second) via the
//! simulator's data plane: replicas are ready 1 ms after being asked for.
//!
//! Ticks fall on even seconds (the first step at t = 0 ticks). A window of `W` one-second
//! buckets read at second `n` covers `[n − W + 1, n]`, so load that stops at second `T` leaves the
//! stable window at the first tick at or after `T + W − 1`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use wisp_autoscaler::simulate::{Row, SimulationOptions, Trace, simulate};
use wisp_autoscaler::{
    Activity, Autoscaler, AutoscalerConfig, Clock, ManualClock, RevisionKey, RevisionSpec,
    Timestamp,
};

fn run(trace: &str, annotations: &[(&str, &str)], config: &[(&str, &str)]) -> Vec<Row> {
    let to_map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let options = SimulationOptions {
        annotations: to_map(annotations),
        config: to_map(config),
        container_concurrency: 0,
        startup: Duration::from_millis(1),
    };
    simulate(&Trace::parse(trace).unwrap(), &options).unwrap()
}

fn at(rows: &[Row], t: u64) -> &Row {
    rows.iter().find(|r| r.t == t).unwrap()
}

/// The first second from which `desired` stays 0 to the end.
fn zero_from(rows: &[Row]) -> Option<u64> {
    let last_nonzero = rows.iter().rposition(|r| r.desired != 0)?;
    rows.get(last_nonzero + 1).map(|r| r.t)
}

const TARGET_10: [(&str, &str); 2] = [("target", "10"), ("target-utilization-percentage", "100")];

#[test]
fn step_to_500_reaches_50_replicas_through_panic_within_the_panic_window() {
    let rows = run("t,concurrency\n0,0\n10,500\n200,500\n", &TARGET_10, &[]);
    // The poke at t = 10 starts the scale-up before any tick.
    assert!(at(&rows, 10).desired > 1);
    assert!(at(&rows, 10).panicking);
    // The 6 s panic window is full of the new load by t = 15; the tick at t = 16 asks for all 50.
    assert_eq!(at(&rows, 16).desired, 50);
    assert!(rows.iter().all(|r| r.desired <= 50));
    // Ready follows 1 ms later; desired never drops while the load stays.
    assert_eq!(at(&rows, 17).ready, 50);
    assert!(rows.iter().filter(|r| r.t >= 16).all(|r| r.desired == 50));
    // Panic ends a stable window after the last over-threshold tick.
    assert!(!at(&rows, 200).panicking);
}

const SMALL_LOAD_UNTIL_100: &str = "t,concurrency\n0,5\n100,0\n300,0\n";

#[test]
fn load_stop_reaches_zero_after_stable_window_plus_grace() {
    // TBC 0 serves directly while there is load, so the activator enters the path only when the
    // desired scale drops to 0 (at the tick at t = 160); the grace period then runs in full.
    let rows = run(SMALL_LOAD_UNTIL_100, &[("target-burst-capacity", "0")], &[]);
    assert_eq!(at(&rows, 99).desired, 1);
    assert_eq!(zero_from(&rows), Some(100 + 60 + 30));
}

#[test]
fn load_stop_with_annotation_window_and_configured_grace() {
    let rows = run(
        SMALL_LOAD_UNTIL_100,
        &[("target-burst-capacity", "0"), ("window", "20s")],
        &[("scale-to-zero-grace-period", "10s")],
    );
    assert_eq!(zero_from(&rows), Some(100 + 20 + 10));
}

#[test]
fn load_stop_with_defaults_takes_the_fast_path() {
    // With the default TBC (211) a one-replica revision always has the activator in the path, so
    // the grace period has long elapsed when the desired scale reaches 0 (Knative §8.1 fast path;
    // Knative adds a 3 s re-queue that wisp does not need).
    let rows = run(SMALL_LOAD_UNTIL_100, &[], &[]);
    assert_eq!(zero_from(&rows), Some(100 + 60));
}

#[test]
fn min_scale_holds_after_load_stops() {
    let rows = run(SMALL_LOAD_UNTIL_100, &[("min-scale", "2")], &[]);
    assert!(rows.iter().filter(|r| r.t >= 2).all(|r| r.desired == 2));
    assert_eq!(at(&rows, 300).ready, 2);
}

#[test]
fn scale_down_delay_holds_the_higher_scale() {
    let trace = "t,concurrency\n0,100\n100,10\n400,10\n";
    let plain = run(trace, &TARGET_10, &[]);
    let delayed = run(
        trace,
        &[TARGET_10[0], TARGET_10[1], ("scale-down-delay", "60s")],
        &[],
    );
    let first_below = |rows: &[Row]| {
        rows.iter()
            .find(|r| r.t > 100 && r.desired < 10)
            .map(|r| r.t)
    };
    let plain_drop = first_below(&plain).unwrap();
    let delayed_drop = first_below(&delayed).unwrap();
    // Ticks are 2 s apart, so the last tick that wanted 10 replicas was at `plain_drop − 2`; the
    // delayed revision keeps that maximum for the whole 60 s delay, then follows it down.
    let last_ten = plain_drop - 2;
    assert!(
        delayed
            .iter()
            .filter(|r| r.t > 100 && r.t < last_ten + 60)
            .all(|r| r.desired == 10)
    );
    assert_eq!(delayed_drop, last_ten + 60);
    assert_eq!(at(&delayed, 400).desired, 1);
}

#[test]
fn disabled_scale_to_zero_keeps_one_replica() {
    let rows = run(
        SMALL_LOAD_UNTIL_100,
        &[],
        &[("enable-scale-to-zero", "false")],
    );
    assert!(rows.iter().all(|r| r.desired == 1));
    assert_eq!(at(&rows, 300).ready, 1);
}

#[test]
fn poke_at_zero_decides_without_a_tick() {
    let clock = Arc::new(ManualClock::new(Timestamp::ZERO));
    let autoscaler = Autoscaler::new(AutoscalerConfig::default(), clock.clone());
    let handle = autoscaler
        .register(
            RevisionKey::new("default", "cold"),
            RevisionSpec::default(),
            0,
        )
        .unwrap();
    handle.set_ready(1);
    for s in 0..=100 {
        clock.set(Timestamp::from_secs(s));
        autoscaler.step(clock.now());
    }
    assert_eq!(handle.view().replicas, 0);
    assert_eq!(handle.view().activity, Activity::Inactive);
    handle.set_ready(0);
    clock.set(Timestamp::from_secs(101));
    autoscaler.step(clock.now());

    // An odd second and a half: neither a tick nor a collector pass runs.
    let mut changes = autoscaler.subscribe();
    clock.set(Timestamp::from_millis(101_500));
    let request = handle.track_request();
    let decision = changes
        .try_recv()
        .expect("the poke publishes a decision at once");
    assert_eq!(decision.key, RevisionKey::new("default", "cold"));
    assert_eq!(decision.view.replicas, 1);
    assert!(
        decision.view.activator_in_path,
        "requests wait in the activator until ready"
    );

    // The replica comes up; the next collector pass marks the revision Active.
    handle.set_ready(1);
    clock.set(Timestamp::from_secs(102));
    autoscaler.step(clock.now());
    assert_eq!(handle.view().activity, Activity::Active);
    drop(request);
}

#[test]
fn activation_that_never_becomes_ready_fails_the_revision() {
    let clock = Arc::new(ManualClock::new(Timestamp::ZERO));
    let autoscaler = Autoscaler::new(AutoscalerConfig::default(), clock.clone());
    let handle = autoscaler
        .register(
            RevisionKey::new("default", "broken"),
            RevisionSpec::default(),
            0,
        )
        .unwrap();
    // The replica never becomes ready; nothing is observed, so the decider never has data.
    for s in 0..=700 {
        clock.set(Timestamp::from_secs(s));
        autoscaler.step(clock.now());
        if s < 630 {
            assert!(!handle.view().failed(), "t={s}");
        }
    }
    let view = handle.view();
    assert!(view.failed());
    assert_eq!(view.replicas, 0);
}

// ---------------------------------------------------------------------------------------------
// `t,rps` traces: the revision scales on the request rate (an RPS trace sets `metric: rps`).

#[test]
fn rps_step_to_500_reaches_50_replicas_through_panic() {
    let rows = run("t,rps\n0,0\n10,500\n200,500\n", &TARGET_10, &[]);
    assert!(at(&rows, 10).desired > 1, "the poke starts the scale-up");
    assert!(at(&rows, 10).panicking);
    assert_eq!(at(&rows, 16).desired, 50);
    assert!(rows.iter().all(|r| r.desired <= 50));
    assert!(rows.iter().filter(|r| r.t >= 16).all(|r| r.desired == 50));
    assert_eq!(at(&rows, 200).stable, Some(500.0));
    assert!(!at(&rows, 200).panicking);
}

#[test]
fn rps_uses_the_rps_target_default_of_140_per_replica() {
    // 700 rps at Knative's default RPS target (200 × 0.7 = 140) is 5 replicas; the same number as
    // concurrency (target 100 × 0.7 = 70) would be 10.
    let rows = run("t,rps\n0,700\n180,700\n", &[], &[]);
    assert_eq!(at(&rows, 180).desired, 5);
    assert_eq!(at(&rows, 180).ready, 5);
    let rows = run("t,concurrency\n0,700\n180,700\n", &[], &[]);
    assert_eq!(at(&rows, 180).desired, 10);
}

#[test]
fn rps_load_stop_reaches_zero_after_stable_window_plus_grace() {
    let rows = run(
        "t,rps\n0,5\n100,0\n300,0\n",
        &[("target-burst-capacity", "0")],
        &[],
    );
    assert_eq!(at(&rows, 99).desired, 1);
    assert_eq!(zero_from(&rows), Some(100 + 60 + 30));
}

#[test]
fn an_rps_trace_cannot_drive_a_concurrency_revision() {
    let options = SimulationOptions {
        annotations: BTreeMap::from([("metric".to_string(), "concurrency".to_string())]),
        ..SimulationOptions::default()
    };
    let err = simulate(&Trace::parse("t,rps\n0,5\n").unwrap(), &options).unwrap_err();
    assert!(err.to_string().contains("rps"), "{err}");
}
