//! Knative's multiscaler tests (`pkg/autoscaler/scaling/multiscaler_test.go`) and KPA scaler tests
//! (`pkg/reconciler/autoscaling/kpa/scaler_test.go`, `TestScaler` and `TestDisableScaleToZero`),
//! ported with Knative's inputs and expected results.
//!
//! How Knative's fixtures map onto wisp:
//! * A Deployment patch (`wantScaling`) is a change of `ScalerState::replicas`; the scaler's
//!   returned scale (`desiredScale`) is `ScalerOutcome::want`.
//! * Knative re-enqueues the PA through a callback (`wantCBCount`) or an asynchronous activator
//!   probe (`wantAsyncProbeCount`); wisp returns `requeue_after` for both.
//! * Knative probes the activator before scaling to zero; wisp's data plane knows whether the
//!   activator is in the path, so a successful probe is `activator_in_path_since = Some(..)` (since
//!   the SKS went to Proxy mode) and a failed or wrong probe response is `None`.
//!
//! Not ported, and why: `TestMultiscalerCreateTBC42` and `…TBCMinus1` are acceptance vector V21
//! and `TestMultiScalerScaleFromZero` is V22 (`acceptance.rs`); `TestSameSign` tests a Go helper
//! that `only_a_change_of_capacity_sign_is_a_change` covers through behaviour;
//! `TestActivatorProbe` tests Knative's HTTP probe, which wisp does not have (see above).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use wisp_autoscaler::decider::Observed;
use wisp_autoscaler::revision::RevisionState;
use wisp_autoscaler::scaler::{Activity, ScalerInputs, ScalerState, reconcile};
use wisp_autoscaler::spec::{Reachability, ResolvedSpec, RevisionSpec};
use wisp_autoscaler::{
    Autoscaler, AutoscalerConfig, Clock, ManualClock, RevisionKey, Stat, Timestamp,
};

// ---------------------------------------------------------------------------------------------
// The multiscaler

fn now() -> Timestamp {
    Timestamp::from_secs(10_000)
}

/// A revision whose decider wants one pod for a concurrency of 1 (Knative's fake uniScaler
/// returns `{1, 1, true}`).
fn revision(tbc: &str) -> RevisionState {
    let spec = ResolvedSpec::resolve(
        &AutoscalerConfig::default(),
        &RevisionSpec {
            annotations: [
                ("target", "1"),
                ("target-utilization-percentage", "100"),
                ("target-burst-capacity", tbc),
            ]
            .into_iter()
            .map(|(k, v)| (format!("autoscaling.knative.dev/{k}"), v.to_string()))
            .collect(),
            container_concurrency: 0,
            reachability: Reachability::Reachable,
        },
    )
    .unwrap();
    RevisionState::new(spec, 0, now())
}

fn load(revision: &mut RevisionState, at: Timestamp, concurrency: f64) {
    revision.record(
        at,
        Stat {
            concurrency,
            requests: concurrency,
        },
    );
}

#[test]
fn multiscaler_scaling_reports_once_per_change() {
    let mut r = revision("0");
    assert_eq!(r.decider_desired(), -1, "no decision before the first tick");
    assert_eq!(r.view().excess_burst_capacity, 0);
    load(&mut r, now(), 1.0);
    assert!(
        r.decide(now(), 0),
        "the first decision is a change watchers hear of"
    );
    assert_eq!(r.decider_desired(), 1);
    assert!(
        !r.decide(now() + Duration::from_secs(2), 0),
        "same result: no notification"
    );
}

/// `TestMultiScalerScaling`'s end: once deleted, a revision is no longer evaluated, however
/// much its state would have changed (it would have gone to zero here).
#[test]
fn a_deleted_revision_is_decided_no_more() {
    let clock = Arc::new(ManualClock::new(Timestamp::ZERO));
    let autoscaler = Autoscaler::new(AutoscalerConfig::default(), clock.clone());
    let key = RevisionKey::new("ns", "r");
    let handle = autoscaler
        .register(key.clone(), RevisionSpec::default(), 0)
        .unwrap();
    let mut decisions = autoscaler.subscribe();
    handle.set_ready(1);
    autoscaler.step(clock.now());
    // The collect pass (the ready count changed) and the tick may each publish a view.
    let mut decided = Vec::new();
    while let Ok(decision) = decisions.try_recv() {
        decided.push(decision.key);
    }
    assert!(
        !decided.is_empty() && decided.iter().all(|k| *k == key),
        "{decided:?}"
    );
    assert!(autoscaler.unregister(&key));
    for second in 1..=200 {
        clock.set(Timestamp::from_secs(second));
        autoscaler.step(clock.now());
    }
    assert!(
        decisions.try_recv().is_err(),
        "a deleted revision was decided"
    );
    assert!(autoscaler.view(&key).is_none());
}

#[test]
fn only_a_change_of_capacity_sign_is_a_change() {
    // Target and total 1, TBC 1, half a request in flight: one pod is wanted whether one or two
    // are ready, but only two leave spare burst capacity (floor(2 − 1 − 0.5) = 0, while
    // floor(1 − 1 − 0.5) = −1).
    let mut r = revision("1");
    load(&mut r, now(), 0.5);
    assert!(r.decide(now(), 2));
    let before = r.reconcile(now(), 2);
    assert_eq!((before.desired_scale, before.excess_burst_capacity), (1, 0));
    let later = now() + Duration::from_secs(1);
    assert!(
        r.decide(later, 1),
        "EBC sign flipped with the desired scale unchanged"
    );
    assert_eq!(r.decider_desired(), 1);
    assert_eq!(r.reconcile(later, 1).excess_burst_capacity, -1);
    assert!(!r.decide(later, 1), "nothing changed: no notification");
}

#[test]
fn multiscaler_scale_to_zero_is_reported() {
    let mut r = revision("0");
    // No requests in a window that has seen a sample: the decider wants zero.
    load(&mut r, now(), 0.0);
    assert!(r.decide(now(), 1));
    assert_eq!(r.decider_desired(), 0);
}

#[test]
fn multiscaler_update_changes_the_target() {
    let mut r = revision("0");
    load(&mut r, now(), 10.0);
    r.decide(now(), 10);
    assert_eq!(
        r.decider_desired(),
        10,
        "target 1: ten pods for ten in flight"
    );
    let mut spec = r.spec().clone();
    spec.target_value = 0.5;
    r.update_spec(spec);
    r.decide(now(), 10);
    assert_eq!(r.decider_desired(), 20, "target 0.5: twenty pods");
    assert_eq!(
        r.last_observed(),
        Some(Observed {
            stable: 10.0,
            panic: 10.0
        }),
        "the windows keep their history across an update that keeps their shape"
    );
}

// ---------------------------------------------------------------------------------------------
// The KPA scaler

const STABLE_WINDOW: u64 = 300;
const PA_STABLE_WINDOW: u64 = 45;
const GRACE: u64 = 60;
const PROGRESS_DEADLINE: u64 = 121;
const ACTIVATION_TIMEOUT: u64 = PROGRESS_DEADLINE + 30;

#[derive(Clone, Copy)]
enum Mark {
    /// `newKPA`: conditions initialised, i.e. Activating since now.
    Fresh,
    Active(i64),
    Inactive(i64),
    Activating(i64),
}

/// How long before now the activator went into the path; `None` when it is not (Knative's SKS in
/// Serve mode, or a probe that fails).
#[derive(Clone, Copy)]
enum Proxy {
    Serving,
    For(u64),
}

struct Case {
    label: &'static str,
    start_replicas: u32,
    scale_to: i32,
    annotations: &'static [(&'static str, &'static str)],
    config: &'static [(&'static str, &'static str)],
    reachability: Reachability,
    mark: Mark,
    initialized: bool,
    proxy: Proxy,
    want: i32,
    want_scaling: bool,
    want_requeue: bool,
}

const BASE: Case = Case {
    label: "",
    start_replicas: 1,
    scale_to: 0,
    annotations: &[],
    config: &[],
    reachability: Reachability::Unknown,
    mark: Mark::Fresh,
    initialized: false,
    proxy: Proxy::Serving,
    want: 0,
    want_scaling: false,
    want_requeue: false,
};

/// `secs` before now, counted so `s(-1)` is one second after that.
fn ago(secs: i64) -> Timestamp {
    if secs >= 0 {
        now().saturating_sub(Duration::from_secs(secs as u64))
    } else {
        now() + Duration::from_secs(secs.unsigned_abs())
    }
}

fn run(case: &Case) {
    let mut config: BTreeMap<String, String> = BTreeMap::from([
        ("max-scale-up-rate".to_string(), "12.0".to_string()),
        ("stable-window".to_string(), format!("{STABLE_WINDOW}s")),
        (
            "scale-to-zero-grace-period".to_string(),
            format!("{GRACE}s"),
        ),
        ("target-burst-capacity".to_string(), "200".to_string()),
        (
            "progress-deadline".to_string(),
            format!("{PROGRESS_DEADLINE}s"),
        ),
    ]);
    for (k, v) in case.config {
        config.insert(k.to_string(), v.to_string());
    }
    let config = AutoscalerConfig::from_map_strict(&config).unwrap();
    let annotations = case
        .annotations
        .iter()
        .map(|(k, v)| {
            let key = if k.contains('/') {
                k.to_string()
            } else {
                format!("autoscaling.knative.dev/{k}")
            };
            (key, v.to_string())
        })
        .collect();
    let spec = ResolvedSpec::resolve(
        &config,
        &RevisionSpec {
            annotations,
            container_concurrency: 0,
            reachability: case.reachability,
        },
    )
    .unwrap();
    let (activity, since) = match case.mark {
        Mark::Fresh => (Activity::Activating, now()),
        Mark::Active(s) => (Activity::Active, ago(s)),
        Mark::Inactive(s) => (Activity::Inactive, ago(s)),
        Mark::Activating(s) => (Activity::Activating, ago(s)),
    };
    let mut state = ScalerState {
        activity,
        reason: None,
        since,
        scale_target_initialized: case.initialized,
        desired_scale: -1,
        replicas: case.start_replicas,
    };
    let in_path_since = match case.proxy {
        Proxy::Serving => None,
        Proxy::For(secs) => Some(ago(secs as i64)),
    };
    let outcome = reconcile(
        &spec,
        &mut state,
        ScalerInputs {
            decider_desired: case.scale_to,
            ready: case.start_replicas,
            activator_in_path_since: in_path_since,
        },
        now(),
    );
    let label = case.label;
    assert_eq!(outcome.want, case.want, "{label}: desired scale");
    let scaled = state.replicas != case.start_replicas;
    assert_eq!(
        scaled, case.want_scaling,
        "{label}: scaled to {}",
        state.replicas
    );
    if case.want_scaling {
        assert_eq!(
            i64::from(state.replicas),
            i64::from(case.want),
            "{label}: replicas"
        );
    }
    assert_eq!(
        outcome.requeue_after.is_some(),
        case.want_requeue,
        "{label}: requeue {:?}",
        outcome.requeue_after
    );
}

const SW: i64 = STABLE_WINDOW as i64;
const PSW: i64 = PA_STABLE_WINDOW as i64;
const G: i64 = GRACE as i64;
const AT: i64 = ACTIVATION_TIMEOUT as i64;
const WINDOW_45S: &[(&str, &str)] = &[("window", "45s")];

#[test]
fn scaler() {
    let cases = [
        Case {
            label: "waits to scale to zero (just before idle period)",
            mark: Mark::Active(SW - 1),
            want: 1,
            want_requeue: true,
            ..BASE
        },
        Case {
            label: "waits to scale to zero (just before idle period), custom PA window",
            annotations: WINDOW_45S,
            mark: Mark::Active(PSW - 1),
            want: 1,
            want_requeue: true,
            ..BASE
        },
        Case {
            label: "custom PA window, check for standard window, no probe",
            annotations: WINDOW_45S,
            mark: Mark::Active(SW),
            ..BASE
        },
        Case {
            label: "scale to 1 waiting for idle expires",
            start_replicas: 10,
            mark: Mark::Active(SW - 1),
            want: 1,
            want_scaling: true,
            want_requeue: true,
            ..BASE
        },
        Case {
            label: "waits to scale to zero after idle period",
            mark: Mark::Active(SW),
            ..BASE
        },
        Case {
            label: "waits to scale to zero after idle period; sks in proxy mode",
            mark: Mark::Active(SW),
            proxy: Proxy::For(0),
            want_requeue: true,
            ..BASE
        },
        Case {
            label: "waits to scale to zero after idle period (custom PA window)",
            annotations: WINDOW_45S,
            mark: Mark::Active(PSW),
            ..BASE
        },
        Case {
            label: "can scale to zero after grace period, but 0 PA retention",
            annotations: &[("scale-to-zero-pod-retention-period", "0s")],
            config: &[("scale-to-zero-pod-retention-period", "120s")],
            mark: Mark::Inactive(G),
            proxy: Proxy::For(0),
            want_scaling: true,
            ..BASE
        },
        Case {
            label: "can't scale to zero after grace period, but before last pod retention",
            config: &[("scale-to-zero-pod-retention-period", "120s")],
            mark: Mark::Inactive(G),
            proxy: Proxy::For(0),
            want_requeue: true,
            ..BASE
        },
        Case {
            label: "can't scale to zero after grace period, but before last pod retention, pa defined",
            annotations: &[("scale-to-zero-pod-retention-period", "120s")],
            config: &[("scale-to-zero-pod-retention-period", "0s")],
            mark: Mark::Inactive(G),
            proxy: Proxy::For(0),
            want_requeue: true,
            ..BASE
        },
        Case {
            label: "scale to zero after grace period, and after last pod retention",
            config: &[("scale-to-zero-pod-retention-period", "60s")],
            mark: Mark::Inactive(G),
            proxy: Proxy::For(0),
            want_scaling: true,
            ..BASE
        },
        Case {
            label: "scale to zero after grace period",
            mark: Mark::Inactive(G),
            proxy: Proxy::For(0),
            want_scaling: true,
            ..BASE
        },
        Case {
            label: "waits to scale to zero (just before grace period)",
            mark: Mark::Inactive(G - 1),
            proxy: Proxy::For(0),
            want_requeue: true,
            ..BASE
        },
        Case {
            label: "waits to scale to zero (just before grace period, sks short)",
            mark: Mark::Inactive(G - 1),
            proxy: Proxy::For(GRACE - 1),
            want_requeue: true,
            ..BASE
        },
        Case {
            label: "waits to scale to zero (just before grace period, sks in proxy long) and last pod timeout positive",
            config: &[("scale-to-zero-pod-retention-period", "42s")],
            mark: Mark::Inactive(G - 1),
            proxy: Proxy::For(GRACE),
            want_scaling: true,
            ..BASE
        },
        Case {
            label: "waits to scale to zero (just before grace period, sks in proxy long)",
            mark: Mark::Inactive(G - 1),
            proxy: Proxy::For(GRACE),
            want_scaling: true,
            ..BASE
        },
        Case {
            label: "scale to zero with TBC=-1",
            annotations: &[("target-burst-capacity", "-1")],
            mark: Mark::Inactive(G),
            proxy: Proxy::For(G as u64),
            want_scaling: true,
            ..BASE
        },
        Case {
            label: "scale to zero after grace period, but fail prober",
            mark: Mark::Inactive(G),
            proxy: Proxy::Serving,
            want_requeue: true,
            ..BASE
        },
        Case {
            label: "waits to scale to zero while activating until after deadline exceeded",
            mark: Mark::Activating(AT / 2),
            want: -1,
            want_requeue: true,
            ..BASE
        },
        Case {
            label: "scale to zero while activating after deadline exceeded",
            mark: Mark::Activating(AT + 1),
            want_scaling: true,
            ..BASE
        },
        Case {
            label: "scale to zero while activating after revision deadline exceeded",
            annotations: &[("serving.knative.dev/progress-deadline", "5s")],
            mark: Mark::Activating(5 + 30 + 1),
            want_scaling: true,
            ..BASE
        },
        Case {
            label: "scale down to minScale before grace period",
            start_replicas: 10,
            annotations: &[("min-scale", "2")],
            reachability: Reachability::Reachable,
            mark: Mark::Inactive(G - 1),
            want: 2,
            want_scaling: true,
            ..BASE
        },
        Case {
            label: "scale down to minScale after grace period",
            start_replicas: 10,
            annotations: &[("min-scale", "2")],
            reachability: Reachability::Reachable,
            mark: Mark::Inactive(G),
            want: 2,
            want_scaling: true,
            ..BASE
        },
        Case {
            label: "scale to zero ignore last pod retention if revision is unreachable",
            config: &[("scale-to-zero-pod-retention-period", "600s")],
            reachability: Reachability::Unreachable,
            mark: Mark::Inactive(G),
            proxy: Proxy::For(0),
            want_scaling: true,
            ..BASE
        },
        Case {
            label: "can't scale to zero if revision is unreachable, but before deadline",
            config: &[("scale-to-zero-pod-retention-period", "600s")],
            reachability: Reachability::Unreachable,
            mark: Mark::Inactive(G - 1),
            proxy: Proxy::For(0),
            want_requeue: true,
            ..BASE
        },
        Case {
            label: "ignore minScale if unreachable",
            start_replicas: 10,
            annotations: &[("min-scale", "2")],
            reachability: Reachability::Unreachable,
            mark: Mark::Inactive(G),
            proxy: Proxy::For(0),
            want_scaling: true,
            ..BASE
        },
        Case {
            label: "observe minScale if reachability unknown",
            start_replicas: 10,
            annotations: &[("min-scale", "2")],
            mark: Mark::Inactive(G),
            proxy: Proxy::For(0),
            want: 2,
            want_scaling: true,
            ..BASE
        },
        Case {
            label: "scales up",
            scale_to: 10,
            want: 10,
            want_scaling: true,
            ..BASE
        },
        Case {
            label: "scales up to maxScale",
            scale_to: 10,
            annotations: &[("max-scale", "8")],
            want: 8,
            want_scaling: true,
            ..BASE
        },
        Case {
            label: "scale up inactive revision",
            scale_to: 10,
            mark: Mark::Inactive(G / 2),
            want: 10,
            want_scaling: true,
            ..BASE
        },
        Case {
            label: "does not scale up from zero with no metrics",
            start_replicas: 0,
            scale_to: -1,
            mark: Mark::Inactive(0),
            want: -1,
            ..BASE
        },
        Case {
            label: "scales up from zero to desired one",
            start_replicas: 0,
            scale_to: 1,
            want: 1,
            want_scaling: true,
            ..BASE
        },
        Case {
            label: "scales up from zero to desired high scale",
            start_replicas: 0,
            scale_to: 10,
            want: 10,
            want_scaling: true,
            ..BASE
        },
        Case {
            label: "negative scale does not scale",
            start_replicas: 12,
            scale_to: -1,
            mark: Mark::Active(0),
            want: -1,
            ..BASE
        },
        Case {
            label: "initial scale attained, but now time to scale down",
            start_replicas: 2,
            annotations: &[("initial-scale", "2")],
            mark: Mark::Active(120),
            initialized: true,
            want: 1,
            want_scaling: true,
            want_requeue: true,
            ..BASE
        },
        Case {
            label: "haven't scaled to initial scale, override desired scale with initial scale",
            start_replicas: 0,
            scale_to: 1,
            annotations: &[("initial-scale", "2")],
            mark: Mark::Activating(0),
            want: 2,
            want_scaling: true,
            ..BASE
        },
        Case {
            label: "initial scale reached for the first time",
            start_replicas: 5,
            scale_to: 1,
            annotations: &[("initial-scale", "5")],
            mark: Mark::Activating(0),
            want: 5,
            ..BASE
        },
        Case {
            label: "reaching initial scale zero",
            start_replicas: 0,
            annotations: &[("initial-scale", "0")],
            config: &[("allow-zero-initial-scale", "true")],
            mark: Mark::Inactive(0),
            proxy: Proxy::For(0),
            want_requeue: true,
            ..BASE
        },
        Case {
            label: "unreachable revision with initialScale > 1 can scale to 0",
            start_replicas: 2,
            annotations: &[("initial-scale", "2")],
            reachability: Reachability::Unreachable,
            mark: Mark::Active(120),
            want: 1,
            want_scaling: true,
            want_requeue: true,
            ..BASE
        },
    ];
    for case in &cases {
        run(case);
    }
}

#[test]
fn disable_scale_to_zero() {
    const NO_ZERO: &[(&str, &str)] = &[("enable-scale-to-zero", "false")];
    let base = Case {
        start_replicas: 10,
        config: NO_ZERO,
        reachability: Reachability::Reachable,
        mark: Mark::Active(0),
        ..BASE
    };
    let cases = [
        Case {
            label: "EnableScaleToZero == false and minScale == 0",
            want: 1,
            want_scaling: true,
            ..base
        },
        Case {
            label: "EnableScaleToZero == false and minScale == 2",
            annotations: &[("min-scale", "2")],
            want: 2,
            want_scaling: true,
            ..base
        },
        Case {
            label: "EnableScaleToZero == false and desire pod is -1(initial value)",
            scale_to: -1,
            want: -1,
            ..base
        },
    ];
    for case in &cases {
        run(case);
    }
}
