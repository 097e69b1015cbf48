//! Reading a revision's scaling state from the gateway's `/metrics` text (the OpenMetrics
//! exposition `wisp up` serves): desired and actual replicas, panic mode, activator queue depth
//! and the cold-start count, summed over the revisions of the Services a run targets. Pure
//! parsing, so a scenario runner can sample `/metrics` into its record.

use std::collections::{BTreeMap, BTreeSet};

/// The scaling state of the selected revisions at one scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScalingState {
    /// Sum of the autoscaler's desired replicas (a revision without data, `-1`, counts 0).
    pub desired: i64,
    /// Sum of ready replicas.
    pub actual: i64,
    /// Whether any selected revision is in panic mode.
    pub panic: bool,
    /// Requests waiting in the activator.
    pub queued: i64,
    /// Cold starts so far (a counter: differences between scrapes are new cold starts).
    pub cold_starts: u64,
    /// Total seconds cold-started requests waited for their replica (the histogram's sum), so
    /// the mean wait of new cold starts is the difference between scrapes over their count.
    pub cold_start_wait_seconds: f64,
    /// Whether any sample of the selected Services was present at all.
    pub seen: bool,
}

/// Sums the samples of `text` whose `namespace` and `service` labels name one of `services`
/// (`(namespace, service)` pairs).
pub fn scaling_state(text: &str, services: &BTreeSet<(String, String)>) -> ScalingState {
    let mut state = ScalingState::default();
    for line in text.lines() {
        let Some((name, labels, value)) = sample(line) else {
            continue;
        };
        let selected = match (label(labels, "namespace"), label(labels, "service")) {
            (Some(namespace), Some(service)) => {
                services.contains(&(namespace.to_owned(), service.to_owned()))
            }
            _ => false,
        };
        if !selected {
            continue;
        }
        state.seen = true;
        match name {
            "wisp_autoscaler_desired_replicas" => state.desired += (value as i64).max(0),
            "wisp_autoscaler_actual_replicas" => state.actual += value as i64,
            "wisp_autoscaler_panic_mode" => state.panic |= value > 0.0,
            "wisp_activator_queue_depth" => state.queued += value as i64,
            "wisp_revision_cold_starts_total" => state.cold_starts += value as u64,
            "wisp_revision_cold_start_duration_seconds_sum" => {
                state.cold_start_wait_seconds += value;
            }
            _ => {}
        }
    }
    state
}

/// `wisp_revision_cold_starts_total` per Service of `namespace` (summed over its revisions), as
/// the data plane counted them: requests that arrived while the revision had no ready replica.
pub fn cold_starts_by_service(text: &str, namespace: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for (name, labels, value) in text.lines().filter_map(sample) {
        if name != "wisp_revision_cold_starts_total"
            || label(labels, "namespace") != Some(namespace)
        {
            continue;
        }
        if let Some(service) = label(labels, "service") {
            *counts.entry(service.to_owned()).or_insert(0) += value as u64;
        }
    }
    counts
}

/// `name{labels} value` (labels optional); comments and malformed lines are `None`.
fn sample(line: &str) -> Option<(&str, &str, f64)> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.trim().parse().ok()?;
    match series.split_once('{') {
        Some((name, rest)) => Some((name, rest.strip_suffix('}')?, value)),
        None => Some((series, "", value)),
    }
}

/// The value of label `key` in `a="x",b="y"` (wisp's values never contain quotes or commas
/// unescaped: Kubernetes names cannot).
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    labels.split(',').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP wisp_autoscaler_desired_replicas Replicas the autoscaler wants.
# TYPE wisp_autoscaler_desired_replicas gauge
wisp_autoscaler_desired_replicas{namespace="default",service="sleep",configuration="sleep",revision="sleep-00001"} 3
wisp_autoscaler_desired_replicas{namespace="default",service="sleep",configuration="sleep",revision="sleep-00002"} -1
wisp_autoscaler_desired_replicas{namespace="default",service="other",configuration="other",revision="other-00001"} 7
wisp_autoscaler_actual_replicas{namespace="default",service="sleep",configuration="sleep",revision="sleep-00001"} 2
wisp_autoscaler_panic_mode{namespace="default",service="sleep",configuration="sleep",revision="sleep-00001"} 1
wisp_activator_queue_depth{namespace="default",service="sleep",configuration="sleep",revision="sleep-00001"} 4
wisp_revision_cold_starts_total{namespace="default",service="sleep",configuration="sleep",revision="sleep-00001"} 5
wisp_revision_cold_starts_total{namespace="team",service="sleep",configuration="sleep",revision="sleep-00001"} 9
wisp_revision_cold_start_duration_seconds_sum{namespace="default",service="sleep",configuration="sleep",revision="sleep-00001"} 0.002
wisp_revision_cold_start_duration_seconds_count{namespace="default",service="sleep",configuration="sleep",revision="sleep-00001"} 5
# EOF
"#;

    fn select(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
        pairs
            .iter()
            .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
            .collect()
    }

    #[test]
    fn cold_starts_are_counted_per_service_of_the_namespace() {
        let extra = "wisp_revision_cold_starts_total{namespace=\"default\",service=\"sleep\",configuration=\"sleep\",revision=\"sleep-00002\"} 2\n";
        let counts = cold_starts_by_service(&format!("{TEXT}{extra}"), "default");
        assert_eq!(counts, BTreeMap::from([("sleep".to_owned(), 7)]));
        let counts = cold_starts_by_service(TEXT, "team");
        assert_eq!(counts, BTreeMap::from([("sleep".to_owned(), 9)]));
    }

    #[test]
    fn sums_the_selected_services_only() {
        let state = scaling_state(TEXT, &select(&[("default", "sleep")]));
        assert_eq!(
            state,
            ScalingState {
                desired: 3,
                actual: 2,
                panic: true,
                queued: 4,
                cold_starts: 5,
                cold_start_wait_seconds: 0.002,
                seen: true,
            }
        );
    }

    #[test]
    fn several_services_add_up_and_absent_ones_are_unseen() {
        let both = scaling_state(TEXT, &select(&[("default", "sleep"), ("default", "other")]));
        assert_eq!(both.desired, 10);
        let none = scaling_state(TEXT, &select(&[("default", "missing")]));
        assert!(!none.seen);
        assert_eq!(none, ScalingState::default());
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let text = "garbage\nwisp_autoscaler_actual_replicas{namespace=\"default\",service=\"a\"} x\n\
                    wisp_autoscaler_actual_replicas{namespace=\"default\",service=\"a\"} 2\n";
        let state = scaling_state(text, &select(&[("default", "a")]));
        assert_eq!(state.actual, 2);
    }
}
