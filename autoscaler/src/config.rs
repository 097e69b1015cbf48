//! The cluster-wide `config-autoscaler` values (reference §2.1) with Knative's defaults and
//! validation, plus the one `config-deployment` value the scaler needs (`progress-deadline`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::duration::parse_go_duration;
use crate::error::ConfigError;

/// The only class wisp implements; Knative's HPA class has no equivalent here.
pub const KPA_CLASS: &str = "kpa.autoscaling.knative.dev";
/// Knative's floor for any per-pod target (`autoscaling.TargetMin`).
pub const TARGET_MIN: f64 = 0.01;
pub const WINDOW_MIN: Duration = Duration::from_secs(6);
pub const WINDOW_MAX: Duration = Duration::from_secs(3600);

/// Every key `AutoscalerConfig::from_map` understands, for "unknown key" messages.
pub const CONFIG_KEYS: &[&str] = &[
    "pod-autoscaler-class",
    "enable-scale-to-zero",
    "container-concurrency-target-percentage",
    "container-concurrency-target-default",
    "requests-per-second-target-default",
    "target-burst-capacity",
    "stable-window",
    "panic-window-percentage",
    "panic-threshold-percentage",
    "max-scale-up-rate",
    "max-scale-down-rate",
    "scale-to-zero-grace-period",
    "scale-to-zero-pod-retention-period",
    "scale-down-delay",
    "activator-capacity",
    "initial-scale",
    "allow-zero-initial-scale",
    "min-scale",
    "max-scale",
    "max-scale-limit",
    "progress-deadline",
];

/// `config-autoscaler` as Knative's `autoscalerconfig.Config`, already validated.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoscalerConfig {
    pub pod_autoscaler_class: String,
    pub enable_scale_to_zero: bool,
    /// `container-concurrency-target-percentage` as a fraction in (0, 1].
    pub container_concurrency_target_fraction: f64,
    pub container_concurrency_target_default: f64,
    pub rps_target_default: f64,
    /// Utilisation for RPS; Knative's ConfigMap cannot change it, only the annotation can.
    pub target_utilization: f64,
    pub target_burst_capacity: f64,
    pub stable_window: Duration,
    pub panic_window_percentage: f64,
    pub panic_threshold_percentage: f64,
    pub max_scale_up_rate: f64,
    pub max_scale_down_rate: f64,
    pub scale_to_zero_grace_period: Duration,
    pub scale_to_zero_pod_retention_period: Duration,
    pub scale_down_delay: Duration,
    pub activator_capacity: f64,
    pub initial_scale: u32,
    pub allow_zero_initial_scale: bool,
    pub min_scale: u32,
    pub max_scale: u32,
    pub max_scale_limit: u32,
    /// `config-deployment/progress-deadline`; activation times out 30 s after it.
    pub progress_deadline: Duration,
}

impl Default for AutoscalerConfig {
    fn default() -> Self {
        Self {
            pod_autoscaler_class: KPA_CLASS.to_string(),
            enable_scale_to_zero: true,
            container_concurrency_target_fraction: 0.7,
            container_concurrency_target_default: 100.0,
            rps_target_default: 200.0,
            target_utilization: 0.7,
            target_burst_capacity: 211.0,
            stable_window: Duration::from_secs(60),
            panic_window_percentage: 10.0,
            panic_threshold_percentage: 200.0,
            max_scale_up_rate: 1000.0,
            max_scale_down_rate: 2.0,
            scale_to_zero_grace_period: Duration::from_secs(30),
            scale_to_zero_pod_retention_period: Duration::ZERO,
            scale_down_delay: Duration::ZERO,
            activator_capacity: 100.0,
            initial_scale: 1,
            allow_zero_initial_scale: false,
            min_scale: 0,
            max_scale: 0,
            max_scale_limit: 0,
            progress_deadline: Duration::from_secs(600),
        }
    }
}

impl AutoscalerConfig {
    /// Reads ConfigMap data the way Knative does: missing keys take defaults and unknown keys are
    /// ignored (ConfigMaps carry `_example` and keys of other versions). Use
    /// [`AutoscalerConfig::from_map_strict`] where a typo should be reported.
    pub fn from_map(data: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut c = AutoscalerConfig::default();
        fn get<'a>(
            data: &'a BTreeMap<String, String>,
            key: &'static str,
        ) -> Option<(&'static str, &'a str)> {
            data.get(key).map(|v| (key, v.trim()))
        }

        if let Some((_, v)) = get(data, "pod-autoscaler-class") {
            c.pod_autoscaler_class = v.to_string();
        }
        if let Some((k, v)) = get(data, "enable-scale-to-zero") {
            c.enable_scale_to_zero = parse_bool(k, v)?;
        }
        if let Some((k, v)) = get(data, "allow-zero-initial-scale") {
            c.allow_zero_initial_scale = parse_bool(k, v)?;
        }
        if let Some((k, v)) = get(data, "container-concurrency-target-percentage") {
            c.container_concurrency_target_fraction = parse_f64(k, v, "a number in (0, 100]")?;
        }
        if let Some((k, v)) = get(data, "container-concurrency-target-default") {
            c.container_concurrency_target_default = parse_f64(k, v, "a number ≥ 0.01")?;
        }
        if let Some((k, v)) = get(data, "requests-per-second-target-default") {
            c.rps_target_default = parse_f64(k, v, "a number ≥ 0.01")?;
        }
        if let Some((k, v)) = get(data, "target-burst-capacity") {
            c.target_burst_capacity = parse_f64(k, v, "a number ≥ 0, or -1")?;
        }
        if let Some((k, v)) = get(data, "stable-window") {
            c.stable_window = parse_duration(k, v, "a duration from 6s to 1h in whole seconds")?;
        }
        if let Some((k, v)) = get(data, "panic-window-percentage") {
            c.panic_window_percentage = parse_f64(k, v, "a number from 1 to 100")?;
        }
        if let Some((k, v)) = get(data, "panic-threshold-percentage") {
            c.panic_threshold_percentage = parse_f64(k, v, "a number")?;
        }
        if let Some((k, v)) = get(data, "max-scale-up-rate") {
            c.max_scale_up_rate = parse_f64(k, v, "a number > 1")?;
        }
        if let Some((k, v)) = get(data, "max-scale-down-rate") {
            c.max_scale_down_rate = parse_f64(k, v, "a number > 1")?;
        }
        if let Some((k, v)) = get(data, "scale-to-zero-grace-period") {
            c.scale_to_zero_grace_period = parse_duration(k, v, "a duration > 0, e.g. 30s")?;
        }
        if let Some((k, v)) = get(data, "scale-to-zero-pod-retention-period") {
            c.scale_to_zero_pod_retention_period = parse_duration(k, v, "a duration ≥ 0, e.g. 0s")?;
        }
        if let Some((k, v)) = get(data, "scale-down-delay") {
            c.scale_down_delay = parse_duration(k, v, "a duration ≥ 0 in whole seconds")?;
        }
        if let Some((k, v)) = get(data, "activator-capacity") {
            c.activator_capacity = parse_f64(k, v, "a number ≥ 1")?;
        }
        if let Some((k, v)) = get(data, "initial-scale") {
            c.initial_scale = parse_u32(k, v, "an integer ≥ 0")?;
        }
        if let Some((k, v)) = get(data, "min-scale") {
            c.min_scale = parse_u32(k, v, "an integer ≥ 0")?;
        }
        if let Some((k, v)) = get(data, "max-scale") {
            c.max_scale = parse_u32(k, v, "an integer ≥ 0")?;
        }
        if let Some((k, v)) = get(data, "max-scale-limit") {
            c.max_scale_limit = parse_u32(k, v, "an integer ≥ 0")?;
        }
        if let Some((k, v)) = get(data, "progress-deadline") {
            c.progress_deadline = parse_duration(k, v, "a duration > 0 in whole seconds")?;
        }

        // For legacy reasons Knative reads a value ≤ 1 as a fraction already.
        if c.container_concurrency_target_fraction > 1.0 {
            c.container_concurrency_target_fraction /= 100.0;
        }
        c.validate(data)?;
        Ok(c)
    }

    /// Like [`AutoscalerConfig::from_map`], but an unknown key is an error: for command-line input,
    /// where a misspelt key would otherwise silently do nothing.
    pub fn from_map_strict(data: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        if let Some(key) = data.keys().find(|k| !CONFIG_KEYS.contains(&k.as_str())) {
            return Err(ConfigError::UnknownKey {
                key: key.clone(),
                known: CONFIG_KEYS.join(", "),
            });
        }
        Self::from_map(data)
    }

    fn validate(&self, data: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        let raw = |key: &str| data.get(key).cloned().unwrap_or_default();
        let fail = |key: &str, allowed: &str| Err(ConfigError::invalid(key, &raw(key), allowed));

        let tu = self.container_concurrency_target_fraction;
        if !(tu > 0.0 && tu <= 1.0) {
            return fail(
                "container-concurrency-target-percentage",
                "a number in (0, 100]",
            );
        }
        if tu * self.container_concurrency_target_default < TARGET_MIN {
            return fail(
                "container-concurrency-target-default",
                "a number whose product with the target percentage is ≥ 0.01",
            );
        }
        if self.rps_target_default < TARGET_MIN {
            return fail("requests-per-second-target-default", "a number ≥ 0.01");
        }
        if self.target_burst_capacity < 0.0 && self.target_burst_capacity != -1.0 {
            return fail("target-burst-capacity", "a number ≥ 0, or exactly -1");
        }
        if self.stable_window < WINDOW_MIN
            || self.stable_window > WINDOW_MAX
            || self.stable_window.subsec_nanos() != 0
        {
            return fail("stable-window", "a duration from 6s to 1h in whole seconds");
        }
        if !(1.0..=100.0).contains(&self.panic_window_percentage) {
            return fail("panic-window-percentage", "a number from 1 to 100");
        }
        if self.max_scale_up_rate <= 1.0 {
            return fail("max-scale-up-rate", "a number > 1");
        }
        if self.max_scale_down_rate <= 1.0 {
            return fail("max-scale-down-rate", "a number > 1");
        }
        if self.scale_to_zero_grace_period.is_zero() {
            return fail("scale-to-zero-grace-period", "a duration > 0, e.g. 30s");
        }
        if self.scale_down_delay.subsec_nanos() != 0 {
            return fail("scale-down-delay", "a duration ≥ 0 in whole seconds");
        }
        if self.activator_capacity < 1.0 {
            return fail("activator-capacity", "a number ≥ 1");
        }
        if self.initial_scale == 0 && !self.allow_zero_initial_scale {
            return fail(
                "initial-scale",
                "an integer ≥ 1 (0 needs allow-zero-initial-scale: \"true\")",
            );
        }
        if self.max_scale != 0 && self.min_scale > self.max_scale {
            return fail("min-scale", "an integer ≤ max-scale when max-scale > 0");
        }
        if self.max_scale_limit > 0
            && (self.max_scale == 0 || self.max_scale > self.max_scale_limit)
        {
            return fail(
                "max-scale",
                &format!(
                    "an integer from 1 to max-scale-limit ({})",
                    self.max_scale_limit
                ),
            );
        }
        if self.progress_deadline.is_zero() || self.progress_deadline.subsec_nanos() != 0 {
            return fail("progress-deadline", "a duration > 0 in whole seconds");
        }
        Ok(())
    }
}

pub(crate) fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    // Go's strconv.ParseBool, which Knative's ConfigMap helpers use.
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(ConfigError::invalid(key, value, "true or false")),
    }
}

pub(crate) fn parse_f64(key: &str, value: &str, allowed: &str) -> Result<f64, ConfigError> {
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(ConfigError::invalid(key, value, allowed)),
    }
}

pub(crate) fn parse_u32(key: &str, value: &str, allowed: &str) -> Result<u32, ConfigError> {
    value
        .parse::<u32>()
        .map_err(|_| ConfigError::invalid(key, value, allowed))
}

pub(crate) fn parse_duration(
    key: &str,
    value: &str,
    allowed: &str,
) -> Result<Duration, ConfigError> {
    parse_go_duration(value).ok_or_else(|| ConfigError::invalid(key, value, allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_config_map_gives_knative_defaults() {
        let c = AutoscalerConfig::from_map(&BTreeMap::new()).unwrap();
        assert_eq!(c, AutoscalerConfig::default());
        assert_eq!(c.target_burst_capacity, 211.0);
        assert_eq!(c.stable_window, Duration::from_secs(60));
    }

    #[test]
    fn percentage_above_one_is_a_percentage_and_at_most_one_a_fraction() {
        let c =
            AutoscalerConfig::from_map(&map(&[("container-concurrency-target-percentage", "80")]))
                .unwrap();
        assert!((c.container_concurrency_target_fraction - 0.8).abs() < 1e-12);
        let c =
            AutoscalerConfig::from_map(&map(&[("container-concurrency-target-percentage", "0.5")]))
                .unwrap();
        assert_eq!(c.container_concurrency_target_fraction, 0.5);
    }

    #[test]
    fn invalid_values_name_the_key_and_range() {
        let cases = [
            ("stable-window", "5s", "6s to 1h"),
            ("stable-window", "61500ms", "whole seconds"),
            ("target-burst-capacity", "-2", "-1"),
            ("max-scale-up-rate", "1", "> 1"),
            ("max-scale-down-rate", "0.5", "> 1"),
            ("panic-window-percentage", "0.5", "1 to 100"),
            ("container-concurrency-target-percentage", "120", "(0, 100]"),
            ("activator-capacity", "0.5", "≥ 1"),
            ("scale-to-zero-grace-period", "0s", "> 0"),
            ("enable-scale-to-zero", "yes", "true or false"),
            ("initial-scale", "0", "allow-zero-initial-scale"),
            ("min-scale", "-1", "≥ 0"),
        ];
        for (key, value, fragment) in cases {
            let err = AutoscalerConfig::from_map(&map(&[(key, value)])).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(key) && text.contains(fragment),
                "{key}={value}: {text}"
            );
        }
    }

    #[test]
    fn zero_initial_scale_is_allowed_when_the_cluster_allows_it() {
        let c = AutoscalerConfig::from_map(&map(&[
            ("initial-scale", "0"),
            ("allow-zero-initial-scale", "true"),
        ]))
        .unwrap();
        assert_eq!(c.initial_scale, 0);
    }

    #[test]
    fn max_scale_limit_requires_a_bounded_max_scale() {
        let err = AutoscalerConfig::from_map(&map(&[("max-scale-limit", "10")])).unwrap_err();
        assert!(err.to_string().contains("max-scale"));
        let ok = AutoscalerConfig::from_map(&map(&[("max-scale-limit", "10"), ("max-scale", "5")]));
        assert!(ok.is_ok());
    }

    #[test]
    fn min_scale_above_max_scale_is_rejected() {
        let err = AutoscalerConfig::from_map(&map(&[("min-scale", "5"), ("max-scale", "3")]))
            .unwrap_err();
        assert!(err.to_string().contains("min-scale"));
    }

    #[test]
    fn strict_parsing_reports_unknown_keys_and_lenient_ignores_them() {
        let data = map(&[("stable-windw", "30s")]);
        assert!(AutoscalerConfig::from_map(&data).is_ok());
        let err = AutoscalerConfig::from_map_strict(&data).unwrap_err();
        assert!(err.to_string().contains("stable-windw"));
    }
}
