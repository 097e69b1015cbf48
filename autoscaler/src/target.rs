//! Resolving the per-pod scaling target (reference §3): `total` is the most a pod should carry,
//! `target` the level the autoscaler aims for.

use crate::annotations::ScalingMetric;
use crate::config::{AutoscalerConfig, TARGET_MIN};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScalingTarget {
    /// Per-pod level to aim for (`TargetValue`).
    pub target: f64,
    /// Per-pod capacity (`TotalValue`), used for burst capacity and activator sizing.
    pub total: f64,
}

/// Knative's `ResolveMetricTarget`. `container_concurrency` 0 means unlimited;
/// `annotation_utilization` is a fraction.
pub fn resolve_target(
    config: &AutoscalerConfig,
    metric: ScalingMetric,
    container_concurrency: u32,
    annotation_target: Option<f64>,
    annotation_utilization: Option<f64>,
) -> ScalingTarget {
    let cc = f64::from(container_concurrency);
    let (mut total, mut utilization) = match metric {
        ScalingMetric::Rps => (config.rps_target_default, config.target_utilization),
        ScalingMetric::Concurrency => (
            if container_concurrency > 0 {
                cc
            } else {
                config.container_concurrency_target_default
            },
            config.container_concurrency_target_fraction,
        ),
    };
    if let Some(annotated) = annotation_target {
        total = annotated;
        // Never aim above the hard limit.
        if metric == ScalingMetric::Concurrency && container_concurrency > 0 {
            total = annotated.min(cc);
        }
    }
    if let Some(u) = annotation_utilization {
        utilization = u;
    }
    ScalingTarget {
        target: (total * utilization).max(TARGET_MIN),
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_70_of_100_for_concurrency_and_140_of_200_for_rps() {
        let c = AutoscalerConfig::default();
        let t = resolve_target(&c, ScalingMetric::Concurrency, 0, None, None);
        assert!((t.target - 70.0).abs() < 1e-9 && t.total == 100.0);
        let t = resolve_target(&c, ScalingMetric::Rps, 0, None, None);
        assert!((t.target - 140.0).abs() < 1e-9 && t.total == 200.0);
    }

    #[test]
    fn annotation_target_is_capped_by_container_concurrency_only_for_concurrency() {
        let c = AutoscalerConfig::default();
        let t = resolve_target(&c, ScalingMetric::Concurrency, 5, Some(50.0), Some(1.0));
        assert_eq!((t.target, t.total), (5.0, 5.0));
        let t = resolve_target(&c, ScalingMetric::Rps, 5, Some(50.0), Some(1.0));
        assert_eq!((t.target, t.total), (50.0, 50.0));
    }

    #[test]
    fn target_never_drops_below_the_knative_minimum() {
        let c = AutoscalerConfig::default();
        let t = resolve_target(&c, ScalingMetric::Concurrency, 0, Some(0.01), Some(0.01));
        assert_eq!(t.target, TARGET_MIN);
    }
}
