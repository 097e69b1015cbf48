//! `config-defaults` (namespace `knative-serving`): the cluster's defaults and limits for
//! revision specs, read live on every admitted write.

use std::collections::BTreeMap;

/// The `config-defaults` keys admission uses, with Knative's defaults.
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
}

impl ClusterDefaults {
    /// Knative's values, used when the ConfigMap is absent.
    pub const KNATIVE: Self = Self {
        revision_timeout_seconds: 300,
        max_revision_timeout_seconds: 600,
        container_concurrency: 0,
        container_concurrency_max_limit: 1000,
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
