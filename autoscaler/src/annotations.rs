//! Per-revision `autoscaling.knative.dev/*` annotations (reference §2.1): kebab-case keys with their
//! legacy camelCase aliases (kebab wins), each validated to the range Knative's webhook enforces.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{
    KPA_CLASS, TARGET_MIN, WINDOW_MAX, WINDOW_MIN, parse_duration, parse_f64, parse_u32,
};
use crate::error::ConfigError;

pub const PREFIX: &str = "autoscaling.knative.dev/";
/// Not an autoscaling key, but the scaler's activation timeout is derived from it.
pub const PROGRESS_DEADLINE: &str = "serving.knative.dev/progress-deadline";

/// `(kebab-case name, legacy camelCase alias)` of every annotation under [`PREFIX`].
const KEYS: &[(&str, Option<&str>)] = &[
    ("class", None),
    ("metric", None),
    ("target", None),
    (
        "target-utilization-percentage",
        Some("targetUtilizationPercentage"),
    ),
    ("target-burst-capacity", Some("targetBurstCapacity")),
    ("window", None),
    ("panic-window-percentage", Some("panicWindowPercentage")),
    (
        "panic-threshold-percentage",
        Some("panicThresholdPercentage"),
    ),
    ("initial-scale", Some("initialScale")),
    ("min-scale", Some("minScale")),
    ("max-scale", Some("maxScale")),
    ("activation-scale", None),
    (
        "metric-aggregation-algorithm",
        Some("metricAggregationAlgorithm"),
    ),
    (
        "scale-to-zero-pod-retention-period",
        Some("scaleToZeroPodRetentionPeriod"),
    ),
    ("scale-down-delay", Some("scaleDownDelay")),
];

/// Which signal a revision scales on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ScalingMetric {
    #[default]
    Concurrency,
    Rps,
}

/// How a metric window averages its buckets (reference §4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Aggregation {
    #[default]
    Linear,
    WeightedExponential,
}

/// The values a revision's annotations set; `None` means "use the cluster value".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnnotationOverrides {
    pub metric: ScalingMetric,
    pub aggregation: Aggregation,
    pub target: Option<f64>,
    /// As a fraction (80% → 0.8).
    pub target_utilization: Option<f64>,
    pub target_burst_capacity: Option<f64>,
    pub stable_window: Option<Duration>,
    pub panic_window_percentage: Option<f64>,
    pub panic_threshold_percentage: Option<f64>,
    pub initial_scale: Option<u32>,
    pub min_scale: Option<u32>,
    pub max_scale: Option<u32>,
    pub activation_scale: Option<u32>,
    pub scale_to_zero_pod_retention_period: Option<Duration>,
    pub scale_down_delay: Option<Duration>,
    pub progress_deadline: Option<Duration>,
}

/// The annotation keys wisp understands, for error messages (kebab-case; each camelCase alias
/// listed in the reference works too).
pub fn known_keys() -> String {
    let names: Vec<&str> = KEYS.iter().map(|(kebab, _)| *kebab).collect();
    format!("{PREFIX}{{{}}} or {PROGRESS_DEADLINE}", names.join(", "))
}

impl AnnotationOverrides {
    /// Parses a revision's annotations. Annotations outside `autoscaling.knative.dev/` are ignored
    /// (except the progress deadline); an unknown key inside it is an error, because a misspelt
    /// scaling knob that silently does nothing is worse than a rejected revision.
    pub fn parse(annotations: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        for key in annotations.keys() {
            if let Some(name) = key.strip_prefix(PREFIX) {
                let known = KEYS
                    .iter()
                    .any(|(kebab, camel)| *kebab == name || *camel == Some(name));
                if !known {
                    return Err(ConfigError::UnknownKey {
                        key: key.clone(),
                        known: known_keys(),
                    });
                }
            }
        }
        let lookup = Lookup { annotations };
        let mut o = AnnotationOverrides::default();

        if let Some((k, v)) = lookup.get("class", None)
            && v != KPA_CLASS
        {
            return Err(ConfigError::invalid(
                &k,
                v,
                "kpa.autoscaling.knative.dev (wisp implements only the KPA; remove the annotation)",
            ));
        }
        if let Some((k, v)) = lookup.get("metric", None) {
            o.metric = match v {
                "concurrency" => ScalingMetric::Concurrency,
                "rps" => ScalingMetric::Rps,
                _ => return Err(ConfigError::invalid(&k, v, "concurrency or rps")),
            };
        }
        if let Some((k, v)) = lookup.get(
            "metric-aggregation-algorithm",
            Some("metricAggregationAlgorithm"),
        ) {
            o.aggregation = match v {
                "linear" => Aggregation::Linear,
                "weighted-exponential" | "weightedExponential" => Aggregation::WeightedExponential,
                _ => {
                    return Err(ConfigError::invalid(
                        &k,
                        v,
                        "linear or weighted-exponential",
                    ));
                }
            };
        }
        if let Some((k, v)) = lookup.get("target", None) {
            let allowed = "a number ≥ 0.01";
            let t = parse_f64(&k, v, allowed)?;
            if t < TARGET_MIN {
                return Err(ConfigError::invalid(&k, v, allowed));
            }
            o.target = Some(t);
        }
        if let Some((k, v)) = lookup.get(
            "target-utilization-percentage",
            Some("targetUtilizationPercentage"),
        ) {
            let allowed = "a number from 1 to 100";
            let p = parse_f64(&k, v, allowed)?;
            if !(1.0..=100.0).contains(&p) {
                return Err(ConfigError::invalid(&k, v, allowed));
            }
            o.target_utilization = Some(p / 100.0);
        }
        if let Some((k, v)) = lookup.get("target-burst-capacity", Some("targetBurstCapacity")) {
            let allowed = "a number ≥ 0, or exactly -1";
            let tbc = parse_f64(&k, v, allowed)?;
            if tbc < 0.0 && tbc != -1.0 {
                return Err(ConfigError::invalid(&k, v, allowed));
            }
            o.target_burst_capacity = Some(tbc);
        }
        if let Some((k, v)) = lookup.get("window", None) {
            let allowed = "a duration from 6s to 1h in whole seconds";
            let w = parse_duration(&k, v, allowed)?;
            if w < WINDOW_MIN || w > WINDOW_MAX || w.subsec_nanos() != 0 {
                return Err(ConfigError::invalid(&k, v, allowed));
            }
            o.stable_window = Some(w);
        }
        if let Some((k, v)) = lookup.get("panic-window-percentage", Some("panicWindowPercentage")) {
            let allowed = "a number from 1 to 100";
            let p = parse_f64(&k, v, allowed)?;
            if !(1.0..=100.0).contains(&p) {
                return Err(ConfigError::invalid(&k, v, allowed));
            }
            o.panic_window_percentage = Some(p);
        }
        if let Some((k, v)) = lookup.get(
            "panic-threshold-percentage",
            Some("panicThresholdPercentage"),
        ) {
            let allowed = "a number from 110 to 1000";
            let p = parse_f64(&k, v, allowed)?;
            if !(110.0..=1000.0).contains(&p) {
                return Err(ConfigError::invalid(&k, v, allowed));
            }
            o.panic_threshold_percentage = Some(p);
        }
        if let Some((k, v)) = lookup.get("initial-scale", Some("initialScale")) {
            o.initial_scale = Some(parse_scale(&k, v, SCALE_ALLOWED)?);
        }
        if let Some((k, v)) = lookup.get("min-scale", Some("minScale")) {
            o.min_scale = Some(parse_scale(&k, v, SCALE_ALLOWED)?);
        }
        if let Some((k, v)) = lookup.get("max-scale", Some("maxScale")) {
            o.max_scale = Some(parse_scale(&k, v, SCALE_ALLOWED)?);
        }
        if let Some((k, v)) = lookup.get("activation-scale", None) {
            let allowed = "an integer from 2 to 2147483647";
            let a = parse_scale(&k, v, allowed)?;
            if a < 2 {
                return Err(ConfigError::invalid(&k, v, allowed));
            }
            o.activation_scale = Some(a);
        }
        if let Some((k, v)) = lookup.get(
            "scale-to-zero-pod-retention-period",
            Some("scaleToZeroPodRetentionPeriod"),
        ) {
            let allowed = "a duration from 0s to 1h";
            let d = parse_duration(&k, v, allowed)?;
            if d > WINDOW_MAX {
                return Err(ConfigError::invalid(&k, v, allowed));
            }
            o.scale_to_zero_pod_retention_period = Some(d);
        }
        if let Some((k, v)) = lookup.get("scale-down-delay", Some("scaleDownDelay")) {
            let allowed = "a duration from 0s to 1h in whole seconds";
            let d = parse_duration(&k, v, allowed)?;
            if d > WINDOW_MAX || d.subsec_nanos() != 0 {
                return Err(ConfigError::invalid(&k, v, allowed));
            }
            o.scale_down_delay = Some(d);
        }
        if let Some(v) = annotations.get(PROGRESS_DEADLINE) {
            let allowed = "a duration > 0 in whole seconds";
            let d = parse_duration(PROGRESS_DEADLINE, v.trim(), allowed)?;
            if d.is_zero() || d.subsec_nanos() != 0 {
                return Err(ConfigError::invalid(PROGRESS_DEADLINE, v, allowed));
            }
            o.progress_deadline = Some(d);
        }
        Ok(o)
    }
}

/// The largest replica count an annotation may ask for: Knative reads scales as `int32`
/// (`getIntGE0`), so a larger number is out of bounds there too.
pub const MAX_SCALE_VALUE: u32 = i32::MAX as u32;

const SCALE_ALLOWED: &str = "an integer from 0 to 2147483647";

/// A replica count: a whole number within Knative's `int32` range.
fn parse_scale(key: &str, value: &str, allowed: &str) -> Result<u32, ConfigError> {
    match parse_u32(key, value, allowed)? {
        n if n <= MAX_SCALE_VALUE => Ok(n),
        _ => Err(ConfigError::invalid(key, value, allowed)),
    }
}

struct Lookup<'a> {
    annotations: &'a BTreeMap<String, String>,
}

impl Lookup<'_> {
    /// The value of the kebab-case key, else of its camelCase alias, with the full key it came
    /// from (for error messages).
    fn get(&self, kebab: &str, camel: Option<&str>) -> Option<(String, &str)> {
        let kebab_key = format!("{PREFIX}{kebab}");
        if let Some(v) = self.annotations.get(&kebab_key) {
            return Some((kebab_key, v.trim()));
        }
        let camel_key = format!("{PREFIX}{}", camel?);
        self.annotations
            .get(&camel_key)
            .map(|v| (camel_key, v.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), v.to_string()))
            .collect()
    }

    #[test]
    fn no_annotations_means_no_overrides() {
        assert_eq!(
            AnnotationOverrides::parse(&BTreeMap::new()).unwrap(),
            AnnotationOverrides::default()
        );
    }

    #[test]
    fn camel_case_aliases_are_accepted_and_kebab_wins() {
        let o = AnnotationOverrides::parse(&ann(&[("minScale", "3")])).unwrap();
        assert_eq!(o.min_scale, Some(3));
        let o = AnnotationOverrides::parse(&ann(&[("minScale", "3"), ("min-scale", "5")])).unwrap();
        assert_eq!(o.min_scale, Some(5));
        let o = AnnotationOverrides::parse(&ann(&[("targetBurstCapacity", "-1")])).unwrap();
        assert_eq!(o.target_burst_capacity, Some(-1.0));
    }

    #[test]
    fn values_out_of_range_name_the_key_and_range() {
        let cases = [
            ("window", "5s", "6s to 1h"),
            ("panic-threshold-percentage", "100", "110 to 1000"),
            ("target-utilization-percentage", "0.5", "1 to 100"),
            ("target", "0", "0.01"),
            ("activation-scale", "1", "from 2 to 2147483647"),
            ("scale-down-delay", "2h", "0s to 1h"),
            ("metric", "cpu", "concurrency or rps"),
            ("class", "hpa.autoscaling.knative.dev", "KPA"),
            (
                "metric-aggregation-algorithm",
                "max",
                "weighted-exponential",
            ),
            ("maxScale", "-3", "from 0 to 2147483647"),
            // Knative reads scales as int32: 4e9 fits a u32 but is out of bounds.
            ("min-scale", "4000000000", "from 0 to 2147483647"),
            ("initial-scale", "2147483648", "from 0 to 2147483647"),
        ];
        for (key, value, fragment) in cases {
            let err = AnnotationOverrides::parse(&ann(&[(key, value)])).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(&format!("{PREFIX}{key}")) && text.contains(fragment),
                "{key}={value}: {text}"
            );
        }
    }

    #[test]
    fn the_largest_int32_is_the_largest_scale() {
        let o = AnnotationOverrides::parse(&ann(&[("min-scale", "2147483647")])).unwrap();
        assert_eq!(o.min_scale, Some(MAX_SCALE_VALUE));
    }

    #[test]
    fn unknown_autoscaling_keys_are_rejected_and_others_ignored() {
        let err = AnnotationOverrides::parse(&ann(&[("min-scal", "1")])).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownKey { .. }));
        let mut other = BTreeMap::new();
        other.insert("example.com/owner".to_string(), "me".to_string());
        assert!(AnnotationOverrides::parse(&other).is_ok());
    }

    #[test]
    fn weighted_exponential_has_two_spellings() {
        for v in ["weighted-exponential", "weightedExponential"] {
            let o =
                AnnotationOverrides::parse(&ann(&[("metric-aggregation-algorithm", v)])).unwrap();
            assert_eq!(o.aggregation, Aggregation::WeightedExponential);
        }
    }
}
