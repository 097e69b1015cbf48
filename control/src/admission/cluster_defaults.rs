//! `config-defaults` (namespace `knative-serving`): the cluster's defaults and limits for
//! revision specs, and the scale bounds of `config-autoscaler`, read live on every admitted
//! write.

use std::collections::BTreeMap;

use wisp_autoscaler::AutoscalerConfig;

/// The `config-defaults` keys admission uses, and the `config-autoscaler` scale bounds, with
/// Knative's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterDefaults {
    /// `revision-timeout-seconds`: `timeoutSeconds` when unset.
    pub revision_timeout_seconds: i64,
    /// `max-revision-timeout-seconds`: the largest `timeoutSeconds` accepted.
    pub max_revision_timeout_seconds: i64,
    /// `container-concurrency`: `containerConcurrency` when unset.
    pub container_concurrency: i64,
    /// `container-concurrency-max-limit`: the largest `containerConcurrency` accepted.
    pub container_concurrency_max_limit: i64,
    /// `config-autoscaler` `max-scale-limit`: the largest `max-scale` (and, in wisp, `min-scale`,
    /// `initial-scale` and `activation-scale`) a revision may ask for; 0 means none, Knative's
    /// default. With a limit, every revision must name a bounded `max-scale`.
    pub max_scale_limit: u32,
    /// `config-autoscaler` `max-scale`: a revision's `max-scale` when it sets none (0: none).
    pub max_scale: u32,
}

impl ClusterDefaults {
    /// Knative's values, used when the ConfigMap is absent.
    pub const KNATIVE: Self = Self {
        revision_timeout_seconds: 300,
        max_revision_timeout_seconds: 600,
        container_concurrency: 0,
        container_concurrency_max_limit: 1000,
        max_scale_limit: 0,
        max_scale: 0,
    };

    /// The defaults `data` (a ConfigMap's `data`) sets. A key that is missing keeps Knative's
    /// value; a value that is not a whole number, or a set that contradicts itself (a default
    /// above its maximum), is reported and Knative's value kept for it, so one typo cannot make
    /// every Service unwritable.
    pub fn from_data(data: &BTreeMap<String, String>) -> (Self, Vec<String>) {
        let mut problems = Vec::new();
        let mut read = |key: &str, fallback: i64| match data.get(key) {
            None => fallback,
            Some(text) => match text.trim().parse::<i64>() {
                Ok(value) if value >= 0 => value,
                _ => {
                    problems.push(format!(
                        "config-defaults {key}: {text:?} is not a whole number of 0 or more; \
                         using {fallback}"
                    ));
                    fallback
                }
            },
        };
        let knative = Self::KNATIVE;
        let mut defaults = Self {
            revision_timeout_seconds: read(
                "revision-timeout-seconds",
                knative.revision_timeout_seconds,
            ),
            max_revision_timeout_seconds: read(
                "max-revision-timeout-seconds",
                knative.max_revision_timeout_seconds,
            ),
            container_concurrency: read("container-concurrency", knative.container_concurrency),
            container_concurrency_max_limit: read(
                "container-concurrency-max-limit",
                knative.container_concurrency_max_limit,
            ),
            max_scale_limit: knative.max_scale_limit,
            max_scale: knative.max_scale,
        };
        if defaults.revision_timeout_seconds > defaults.max_revision_timeout_seconds {
            problems.push(format!(
                "config-defaults revision-timeout-seconds ({}) is above \
                 max-revision-timeout-seconds ({}); using both of Knative's values",
                defaults.revision_timeout_seconds, defaults.max_revision_timeout_seconds
            ));
            defaults.revision_timeout_seconds = knative.revision_timeout_seconds;
            defaults.max_revision_timeout_seconds = knative.max_revision_timeout_seconds;
        }
        if defaults.container_concurrency > defaults.container_concurrency_max_limit {
            problems.push(format!(
                "config-defaults container-concurrency ({}) is above \
                 container-concurrency-max-limit ({}); using both of Knative's values",
                defaults.container_concurrency, defaults.container_concurrency_max_limit
            ));
            defaults.container_concurrency = knative.container_concurrency;
            defaults.container_concurrency_max_limit = knative.container_concurrency_max_limit;
        }
        (defaults, problems)
    }

    /// These defaults with the scale bounds `data` (`config-autoscaler`'s) sets, read by the
    /// autoscaler's own parser so admission and the nodes agree on them. A ConfigMap the
    /// autoscaler refuses (the nodes then keep their previous settings) is reported; its
    /// `max-scale-limit` and `max-scale` still apply when they read on their own, so a typo
    /// in another key cannot lift the limit.
    pub fn with_autoscaler(mut self, data: &BTreeMap<String, String>) -> (Self, Vec<String>) {
        match AutoscalerConfig::from_map(data) {
            Ok(config) => {
                self.max_scale_limit = config.max_scale_limit;
                self.max_scale = config.max_scale;
                (self, Vec::new())
            }
            Err(error) => {
                let mut problems = vec![format!(
                    "config-autoscaler: {error}; admission reads max-scale-limit and max-scale \
                     on their own"
                )];
                let mut read = |key: &str| match data.get(key).map(|v| v.trim().parse::<u32>()) {
                    None => 0,
                    Some(Ok(value)) => value,
                    Some(Err(_)) => {
                        problems.push(format!(
                            "config-autoscaler {key}: {:?} is not a whole number of 0 or more; \
                             using 0 (none)",
                            data.get(key).map_or("", String::as_str)
                        ));
                        0
                    }
                };
                self.max_scale_limit = read("max-scale-limit");
                self.max_scale = read("max-scale");
                (self, problems)
            }
        }
    }
}

impl Default for ClusterDefaults {
    fn default() -> Self {
        Self::KNATIVE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn missing_keys_keep_knatives_values() {
        assert_eq!(
            ClusterDefaults::from_data(&data(&[])),
            (ClusterDefaults::KNATIVE, vec![])
        );
    }

    #[test]
    fn set_keys_are_read() {
        let (defaults, problems) = ClusterDefaults::from_data(&data(&[
            ("revision-timeout-seconds", "30"),
            ("max-revision-timeout-seconds", "3600"),
            ("container-concurrency", "4"),
            ("container-concurrency-max-limit", "10"),
        ]));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(defaults.revision_timeout_seconds, 30);
        assert_eq!(defaults.max_revision_timeout_seconds, 3600);
        assert_eq!(defaults.container_concurrency, 4);
        assert_eq!(defaults.container_concurrency_max_limit, 10);
    }

    #[test]
    fn scale_bounds_come_from_config_autoscaler() {
        let (defaults, problems) = ClusterDefaults::KNATIVE.with_autoscaler(&data(&[
            ("max-scale-limit", "100"),
            ("max-scale", "10"),
            ("_example", "ignored"),
        ]));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!((defaults.max_scale_limit, defaults.max_scale), (100, 10));
        assert_eq!(
            ClusterDefaults::KNATIVE.with_autoscaler(&data(&[])),
            (ClusterDefaults::KNATIVE, vec![])
        );
    }

    #[test]
    fn a_typo_elsewhere_in_config_autoscaler_keeps_the_limit() {
        let (defaults, problems) = ClusterDefaults::KNATIVE.with_autoscaler(&data(&[
            ("max-scale-limit", "100"),
            ("max-scale", "10"),
            ("stable-window", "soon"),
        ]));
        assert_eq!(defaults.max_scale_limit, 100);
        assert_eq!(defaults.max_scale, 10);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("stable-window"), "{problems:?}");
    }

    #[test]
    fn bad_values_are_reported_and_ignored() {
        let (defaults, problems) = ClusterDefaults::from_data(&data(&[
            ("revision-timeout-seconds", "soon"),
            ("container-concurrency", "50"),
            ("container-concurrency-max-limit", "10"),
        ]));
        assert_eq!(defaults, ClusterDefaults::KNATIVE);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("revision-timeout-seconds"));
    }
}
