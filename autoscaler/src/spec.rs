//! A revision's scaling spec: what the data plane tells the autoscaler about a revision, and the
//! fully resolved parameters (Knative's `DeciderSpec` plus the scaler's bounds) derived from it and
//! the cluster configuration.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::annotations::{Aggregation, AnnotationOverrides, ScalingMetric};
use crate::config::AutoscalerConfig;
use crate::error::ConfigError;
use crate::target::resolve_target;

/// Knative's 30 s added to the progress deadline before an activation counts as failed.
pub const ACTIVATION_TIMEOUT_BUFFER: Duration = Duration::from_secs(30);

/// Whether the revision receives traffic from a route (`PA.spec.reachability`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Reachability {
    Reachable,
    Unreachable,
    /// Not known yet; treated as reachable for bounds, as Knative does.
    #[default]
    Unknown,
}

/// What the data plane knows about a revision.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RevisionSpec {
    /// `metadata.annotations` of the revision (only `autoscaling.knative.dev/*` and the progress
    /// deadline are read).
    pub annotations: BTreeMap<String, String>,
    /// `spec.containerConcurrency`; 0 means unlimited.
    pub container_concurrency: u32,
    pub reachability: Reachability,
}

/// Every parameter the decider and scaler use for one revision, resolved and validated.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedSpec {
    pub metric: ScalingMetric,
    pub aggregation: Aggregation,
    pub target_value: f64,
    pub total_value: f64,
    /// -1 = activator always in the path; 0 = only at zero.
    pub target_burst_capacity: f64,
    /// Ratio, e.g. 2.0 for 200%.
    pub panic_threshold: f64,
    pub stable_window: Duration,
    pub panic_window: Duration,
    pub max_scale_up_rate: f64,
    pub max_scale_down_rate: f64,
    pub scale_down_delay: Duration,
    pub initial_scale: u32,
    /// 1 when not set (no effect).
    pub activation_scale: u32,
    pub reachability: Reachability,
    /// Before the Unreachable override: see [`ResolvedSpec::min_scale`].
    pub annotated_min_scale: u32,
    /// 0 means no limit.
    pub max_scale: u32,
    pub enable_scale_to_zero: bool,
    pub scale_to_zero_grace_period: Duration,
    pub scale_to_zero_pod_retention_period: Duration,
    pub activation_timeout: Duration,
    pub activator_capacity: f64,
}

impl ResolvedSpec {
    /// Resolves a revision against the cluster configuration (reference §2.1, §3, §6.2).
    pub fn resolve(
        config: &AutoscalerConfig,
        revision: &RevisionSpec,
    ) -> Result<Self, ConfigError> {
        let o = AnnotationOverrides::parse(&revision.annotations)?;
        let target = resolve_target(
            config,
            o.metric,
            revision.container_concurrency,
            o.target,
            o.target_utilization,
        );
        let stable_window = o.stable_window.unwrap_or(config.stable_window);
        let panic_pct = o
            .panic_window_percentage
            .unwrap_or(config.panic_window_percentage);
        let min_scale = o.min_scale.unwrap_or(config.min_scale);
        let max_scale = o.max_scale.unwrap_or(config.max_scale);
        check_scale_bounds(config, &o, min_scale, max_scale)?;

        // A 0 annotation the cluster does not allow falls back to the cluster value.
        let initial_scale = match o.initial_scale {
            Some(0) if !config.allow_zero_initial_scale => config.initial_scale,
            Some(n) => n,
            None => config.initial_scale,
        };
        Ok(ResolvedSpec {
            metric: o.metric,
            aggregation: o.aggregation,
            target_value: target.target,
            total_value: target.total,
            target_burst_capacity: o
                .target_burst_capacity
                .unwrap_or(config.target_burst_capacity),
            panic_threshold: o
                .panic_threshold_percentage
                .unwrap_or(config.panic_threshold_percentage)
                / 100.0,
            stable_window,
            panic_window: panic_window(stable_window, panic_pct),
            max_scale_up_rate: config.max_scale_up_rate,
            max_scale_down_rate: config.max_scale_down_rate,
            scale_down_delay: o.scale_down_delay.unwrap_or(config.scale_down_delay),
            initial_scale,
            activation_scale: o.activation_scale.unwrap_or(1),
            reachability: revision.reachability,
            annotated_min_scale: min_scale,
            max_scale,
            enable_scale_to_zero: config.enable_scale_to_zero,
            scale_to_zero_grace_period: config.scale_to_zero_grace_period,
            scale_to_zero_pod_retention_period: o
                .scale_to_zero_pod_retention_period
                .unwrap_or(config.scale_to_zero_pod_retention_period),
            activation_timeout: o.progress_deadline.unwrap_or(config.progress_deadline)
                + ACTIVATION_TIMEOUT_BUFFER,
            activator_capacity: config.activator_capacity,
        })
    }

    /// Knative's decider treats anything but Unreachable as reachable.
    pub fn reachable(&self) -> bool {
        self.reachability != Reachability::Unreachable
    }

    /// `min-scale`, forced to 0 when Unreachable.
    pub fn min_scale(&self) -> u32 {
        if self.reachability == Reachability::Unreachable {
            0
        } else {
            self.annotated_min_scale
        }
    }

    /// Retention applies only while reachable.
    pub fn pod_retention(&self) -> Duration {
        if self.reachability == Reachability::Unreachable {
            Duration::ZERO
        } else {
            self.scale_to_zero_pod_retention_period
        }
    }

    /// Stable-window buckets and panic-window buckets at 1 s granularity.
    pub fn window_buckets(&self) -> (usize, usize) {
        (
            self.stable_window.as_secs().max(1) as usize,
            self.panic_window.as_secs().max(1) as usize,
        )
    }
}

/// Panic window = stable × pct/100, rounded to whole seconds, at least one bucket (1 s).
pub fn panic_window(stable_window: Duration, percentage: f64) -> Duration {
    let secs = (stable_window.as_secs_f64() * percentage / 100.0).round();
    Duration::from_secs((secs as u64).max(1))
}

fn check_scale_bounds(
    config: &AutoscalerConfig,
    o: &AnnotationOverrides,
    min_scale: u32,
    max_scale: u32,
) -> Result<(), ConfigError> {
    let min_key = "autoscaling.knative.dev/min-scale";
    let max_key = "autoscaling.knative.dev/max-scale";
    if max_scale > 0 && min_scale > max_scale {
        return Err(ConfigError::invalid(
            min_key,
            &min_scale.to_string(),
            format!("an integer ≤ max-scale ({max_scale})"),
        ));
    }
    if o.max_scale.is_some()
        && config.max_scale_limit > 0
        && (max_scale == 0 || max_scale > config.max_scale_limit)
    {
        return Err(ConfigError::invalid(
            max_key,
            &max_scale.to_string(),
            format!(
                "an integer from 1 to the cluster's max-scale-limit ({})",
                config.max_scale_limit
            ),
        ));
    }
    if let Some(activation) = o.activation_scale {
        let key = "autoscaling.knative.dev/activation-scale";
        if max_scale > 0 && activation > max_scale {
            return Err(ConfigError::invalid(
                key,
                &activation.to_string(),
                format!("an integer ≤ max-scale ({max_scale})"),
            ));
        }
        if activation < min_scale {
            return Err(ConfigError::invalid(
                key,
                &activation.to_string(),
                format!("an integer ≥ min-scale ({min_scale})"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revision(pairs: &[(&str, &str)]) -> RevisionSpec {
        RevisionSpec {
            annotations: pairs
                .iter()
                .map(|(k, v)| (format!("autoscaling.knative.dev/{k}"), v.to_string()))
                .collect(),
            ..RevisionSpec::default()
        }
    }

    #[test]
    fn defaults_resolve_to_knative_decider_spec() {
        let s =
            ResolvedSpec::resolve(&AutoscalerConfig::default(), &RevisionSpec::default()).unwrap();
        assert_eq!(s.total_value, 100.0);
        assert_eq!(s.target_burst_capacity, 211.0);
        assert_eq!(s.panic_window, Duration::from_secs(6));
        assert_eq!(s.panic_threshold, 2.0);
        assert_eq!(s.activation_timeout, Duration::from_secs(630));
        assert_eq!(s.window_buckets(), (60, 6));
    }

    #[test]
    fn min_scale_is_forced_to_zero_when_unreachable() {
        let mut r = revision(&[("min-scale", "2")]);
        r.reachability = Reachability::Unreachable;
        let s = ResolvedSpec::resolve(&AutoscalerConfig::default(), &r).unwrap();
        assert_eq!(s.min_scale(), 0);
        r.reachability = Reachability::Unknown;
        let s = ResolvedSpec::resolve(&AutoscalerConfig::default(), &r).unwrap();
        assert_eq!(s.min_scale(), 2);
    }

    #[test]
    fn disallowed_zero_initial_scale_falls_back_to_the_cluster_value() {
        let s = ResolvedSpec::resolve(
            &AutoscalerConfig::default(),
            &revision(&[("initial-scale", "0")]),
        )
        .unwrap();
        assert_eq!(s.initial_scale, 1);
    }

    #[test]
    fn cross_checks_between_min_max_and_activation_scale() {
        let c = AutoscalerConfig::default();
        assert!(
            ResolvedSpec::resolve(&c, &revision(&[("min-scale", "5"), ("max-scale", "2")]))
                .is_err()
        );
        let err = ResolvedSpec::resolve(
            &c,
            &revision(&[("activation-scale", "5"), ("max-scale", "3")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("activation-scale"));
    }
}
