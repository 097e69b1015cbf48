//! Property tests over random load and ready-count sequences (simulated time only).

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use wisp_autoscaler::decider::{Decider, Observed};
use wisp_autoscaler::reporter::Stat;
use wisp_autoscaler::revision::RevisionState;
use wisp_autoscaler::spec::{Reachability, ResolvedSpec, RevisionSpec};
use wisp_autoscaler::{AutoscalerConfig, Timestamp};

/// One 2-second step: the load recorded in each of its seconds and the ready count.
#[derive(Clone, Debug)]
struct Step {
    load: f64,
    ready: u32,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (
            prop_oneof![Just(0.0), 0.0..50.0f64, 0.0..5000.0f64],
            0u32..120,
        )
            .prop_map(|(load, ready)| Step { load, ready }),
        1..120,
    )
}

fn revision_spec(min: u32, max: u32, target: u32, tbc: i32) -> ResolvedSpec {
    let mut annotations = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        annotations.insert(format!("autoscaling.knative.dev/{k}"), v);
    };
    set("min-scale", min.to_string());
    set("max-scale", max.to_string());
    set("target", target.to_string());
    set("target-burst-capacity", tbc.to_string());
    set("window", "20s".to_string());
    let spec = RevisionSpec {
        annotations,
        container_concurrency: 0,
        reachability: Reachability::Reachable,
    };
    ResolvedSpec::resolve(&AutoscalerConfig::default(), &spec).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn replicas_stay_within_min_and_max_scale(
        bounds in (0u32..10).prop_flat_map(|min| (Just(min), (min.max(1))..(min + 40))),
        target in 1u32..200,
        tbc in prop_oneof![Just(-1), Just(0), Just(211)],
        steps in steps(),
    ) {
        let (min, max) = bounds;
        let spec = revision_spec(min, max, target, tbc);
        let mut state = RevisionState::new(spec, 0, Timestamp::ZERO);
        for (i, step) in steps.iter().enumerate() {
            let now = Timestamp::from_secs(2 * i as u64 + 2);
            state.record(now.saturating_sub(Duration::from_secs(1)), Stat { concurrency: step.load, requests: 0.0 });
            state.record(now, Stat { concurrency: step.load, requests: 0.0 });
            let view = state.evaluate(now, step.ready);
            prop_assert!(view.replicas <= max, "replicas {} > max {max}", view.replicas);
            prop_assert!(view.desired_scale <= max as i32);
            prop_assert!(view.replicas >= min, "replicas {} < min {min}", view.replicas);
        }
    }

    #[test]
    fn panic_never_scales_down_and_scale_up_respects_the_rate(
        target in 1.0..100.0f64,
        up_rate in 1.1..20.0f64,
        down_rate in 1.1..20.0f64,
        activation in prop_oneof![Just(1u32), 2u32..10],
        initial_ready in 0u32..5,
        observations in prop::collection::vec((0.0..5000.0f64, 0.0..5000.0f64, 0u32..300), 1..150),
    ) {
        let mut spec = ResolvedSpec::resolve(&AutoscalerConfig::default(), &RevisionSpec::default()).unwrap();
        spec.target_value = target;
        spec.total_value = target / 0.7;
        spec.max_scale_up_rate = up_rate;
        spec.max_scale_down_rate = down_rate;
        spec.activation_scale = activation;
        spec.reachability = Reachability::Reachable;
        let mut decider = Decider::new(spec, initial_ready, Timestamp::ZERO);
        let mut previous: Option<i32> = None;
        for (i, (stable, panic, ready)) in observations.into_iter().enumerate() {
            let now = Timestamp::from_secs(2 * i as u64);
            let was_panicking = decider.is_panicking();
            let r = decider.scale(now, ready, Some(Observed { stable, panic }));
            prop_assert!(r.valid);
            if let Some(prev) = previous {
                if was_panicking && decider.is_panicking() {
                    prop_assert!(r.desired >= prev, "panic scaled down {prev} → {}", r.desired);
                }
                let up_cap = (up_rate * f64::from(ready.max(1))).ceil() as i32;
                // Activation scale may jump past the cap (Knative applies it after the clamp).
                let ceiling = up_cap.max(activation as i32).max(prev);
                prop_assert!(r.desired <= ceiling, "scale-up to {} beyond cap {up_cap} (prev {prev})", r.desired);
            }
            previous = Some(r.desired);
        }
    }
}
