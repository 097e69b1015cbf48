//! Encoding tests: what a scrape shows after the request path, the autoscaler loop and the
//! replica manager wrote through their handles.

use std::time::Duration;

use super::*;

fn labels(revision: &str) -> RevisionLabels {
    RevisionLabels::new("default", "hello", "hello-config", revision)
}

/// The label block of `revision` as the encoder writes it.
fn revision_series(revision: &str) -> String {
    format!(
        r#"namespace="default",service="hello",configuration="hello-config",revision="{revision}""#
    )
}

/// The value of the one sample named `name` whose labels are exactly `labels`.
fn sample(text: &str, name: &str, labels: &str) -> String {
    let prefix = format!("{name}{{{labels}}} ");
    let values: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .collect();
    assert_eq!(values.len(), 1, "one sample {prefix}in:\n{text}");
    values[0].to_owned()
}

fn assert_family(text: &str, family: &str, kind: &str) {
    assert!(
        text.lines()
            .any(|line| line == format!("# TYPE {family} {kind}")),
        "family {family} of type {kind} in:\n{text}"
    );
}

fn encode(metrics: &DataPlaneMetrics) -> String {
    match metrics.encode() {
        Ok(text) => text,
        Err(error) => panic!("encode: {error}"),
    }
}

#[test]
fn every_family_is_exported_with_its_type_labels_and_values() {
    let metrics = DataPlaneMetrics::new();
    let revision = metrics.revision(&labels("hello-00001"));
    for status in [200, 204, 503, 404, 301, 101] {
        revision.observe_request(status, Duration::from_micros(30));
    }
    revision.observe_request(200, Duration::from_millis(2));
    revision.observe_failure(FailureReason::Overload);
    revision.observe_failure(FailureReason::Overload);
    revision.observe_failure(FailureReason::GuestFault);
    revision.request_started();
    revision.request_started();
    revision.request_finished();
    revision.set_queue_depth(7);
    revision.cold_start(Duration::from_micros(1500));
    revision.set_replicas(5, 3);
    revision.set_autoscaler_view(AutoscalerView {
        panicking: true,
        stable: 12.5,
        panic: 40.25,
        excess_burst_capacity: -30,
    });
    let node = metrics.node(&NodeLabels::new("node-a"));
    node.set_replicas(4);
    node.set_memory(1 << 30, 256 << 20);
    for micros in [7, 20, 300] {
        node.instance_started(Duration::from_micros(micros));
    }

    let text = encode(&metrics);
    let rev = revision_series("hello-00001");
    let class = |class: &str| format!(r#"{rev},code_class="{class}""#);

    assert_family(&text, "wisp_revision_requests", "counter");
    assert_eq!(
        sample(&text, "wisp_revision_requests_total", &class("1xx")),
        "1"
    );
    assert_eq!(
        sample(&text, "wisp_revision_requests_total", &class("2xx")),
        "3"
    );
    assert_eq!(
        sample(&text, "wisp_revision_requests_total", &class("3xx")),
        "1"
    );
    assert_eq!(
        sample(&text, "wisp_revision_requests_total", &class("4xx")),
        "1"
    );
    assert_eq!(
        sample(&text, "wisp_revision_requests_total", &class("5xx")),
        "1"
    );

    assert_family(&text, "wisp_revision_request_failures", "counter");
    let reason = |reason: &str| format!(r#"{rev},reason="{reason}""#);
    for (why, count) in [
        ("overload", "2"),
        ("guest_fault", "1"),
        ("timeout", "0"),
        ("body_too_large", "0"),
    ] {
        assert_eq!(
            sample(&text, "wisp_revision_request_failures_total", &reason(why)),
            count,
            "{why}"
        );
    }

    assert_family(&text, "wisp_revision_request_duration_seconds", "histogram");
    let duration = "wisp_revision_request_duration_seconds";
    assert_eq!(sample(&text, &format!("{duration}_count"), &rev), "7");
    let bucket = |le: &str| format!(r#"le="{le}",{rev}"#);
    assert_eq!(
        sample(&text, &format!("{duration}_bucket"), &bucket("0.000025")),
        "0"
    );
    assert_eq!(
        sample(&text, &format!("{duration}_bucket"), &bucket("0.00005")),
        "6"
    );
    assert_eq!(
        sample(&text, &format!("{duration}_bucket"), &bucket("0.0025")),
        "7"
    );
    assert_eq!(
        sample(&text, &format!("{duration}_bucket"), &bucket("+Inf")),
        "7"
    );

    assert_family(&text, "wisp_revision_requests_in_flight", "gauge");
    assert_eq!(sample(&text, "wisp_revision_requests_in_flight", &rev), "1");
    assert_family(&text, "wisp_activator_queue_depth", "gauge");
    assert_eq!(sample(&text, "wisp_activator_queue_depth", &rev), "7");

    assert_family(&text, "wisp_revision_cold_starts", "counter");
    assert_eq!(sample(&text, "wisp_revision_cold_starts_total", &rev), "1");
    let cold = "wisp_revision_cold_start_duration_seconds";
    assert_family(&text, cold, "histogram");
    assert_eq!(sample(&text, &format!("{cold}_count"), &rev), "1");
    assert_eq!(sample(&text, &format!("{cold}_sum"), &rev), "0.0015");
    assert_eq!(
        sample(&text, &format!("{cold}_bucket"), &bucket("0.001")),
        "0"
    );
    assert_eq!(
        sample(&text, &format!("{cold}_bucket"), &bucket("0.002")),
        "1"
    );

    for (family, value) in [
        ("wisp_autoscaler_desired_replicas", "5"),
        ("wisp_autoscaler_actual_replicas", "3"),
        ("wisp_autoscaler_panic_mode", "1"),
        ("wisp_autoscaler_stable_observed", "12.5"),
        ("wisp_autoscaler_panic_observed", "40.25"),
        ("wisp_autoscaler_excess_burst_capacity", "-30"),
    ] {
        assert_family(&text, family, "gauge");
        assert_eq!(sample(&text, family, &rev), value, "{family}");
    }

    let node_labels = r#"node="node-a""#;
    for (family, value) in [
        ("wisp_node_replicas", "4"),
        ("wisp_node_memory_allocatable_bytes", "1073741824"),
        ("wisp_node_memory_used_bytes", "268435456"),
    ] {
        assert_family(&text, family, "gauge");
        assert_eq!(sample(&text, family, node_labels), value, "{family}");
    }
    assert_family(&text, "wisp_node_instances_started", "counter");
    assert_eq!(
        sample(&text, "wisp_node_instances_started_total", node_labels),
        "3"
    );
    let inst = "wisp_node_instantiation_duration_seconds";
    assert_family(&text, inst, "histogram");
    assert_eq!(sample(&text, &format!("{inst}_count"), node_labels), "3");
    let node_bucket = |le: &str| format!(r#"le="{le}",{node_labels}"#);
    assert_eq!(
        sample(&text, &format!("{inst}_bucket"), &node_bucket("0.00001")),
        "1"
    );
    assert_eq!(
        sample(&text, &format!("{inst}_bucket"), &node_bucket("0.000025")),
        "2"
    );
    assert_eq!(
        sample(&text, &format!("{inst}_bucket"), &node_bucket("0.0005")),
        "3"
    );

    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
}

#[test]
fn leaving_panic_mode_and_unknown_desired_scale_are_exported() {
    let metrics = DataPlaneMetrics::new();
    let revision = metrics.revision(&labels("hello-00001"));
    revision.set_autoscaler_view(AutoscalerView {
        panicking: true,
        ..AutoscalerView::default()
    });
    revision.set_autoscaler_view(AutoscalerView::default());
    revision.set_replicas(-1, 0);
    let text = encode(&metrics);
    let rev = revision_series("hello-00001");
    assert_eq!(sample(&text, "wisp_autoscaler_panic_mode", &rev), "0");
    assert_eq!(
        sample(&text, "wisp_autoscaler_desired_replicas", &rev),
        "-1"
    );
}

#[test]
fn status_codes_fall_into_their_class_and_invalid_ones_count_as_server_errors() {
    for (status, class) in [
        (100, "1xx"),
        (101, "1xx"),
        (199, "1xx"),
        (200, "2xx"),
        (204, "2xx"),
        (299, "2xx"),
        (301, "3xx"),
        (304, "3xx"),
        (400, "4xx"),
        (404, "4xx"),
        (429, "4xx"),
        (499, "4xx"),
        (500, "5xx"),
        (503, "5xx"),
        (504, "5xx"),
        (599, "5xx"),
        // Not valid HTTP status codes: documented to count as 5xx.
        (0, "5xx"),
        (99, "5xx"),
        (600, "5xx"),
        (999, "5xx"),
        (u16::MAX, "5xx"),
    ] {
        assert_eq!(CodeClass::of(status).as_str(), class, "status {status}");
    }
    for (index, class) in CodeClass::ALL.into_iter().enumerate() {
        assert_eq!(class.index(), index);
    }
}

/// The request path holds one handle per revision: many observations through it (and its
/// clones, from several threads) must land in the same five series, never create new ones.
/// Allocation cannot be measured here; the design guarantees it (the handle holds the
/// `Counter`/`Histogram` themselves, so `observe_request` is an array index, an atomic add and
/// a histogram update), and this test pins the observable half: no series growth, exact counts.
#[test]
fn a_handle_updates_its_existing_series_however_often_it_is_used() {
    let metrics = DataPlaneMetrics::new();
    let revision = metrics.revision(&labels("hello-00001"));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let revision = revision.clone();
            std::thread::spawn(move || {
                for _ in 0..2_500 {
                    let _in_flight = revision.in_flight();
                    revision.observe_request(200, Duration::from_micros(40));
                }
            })
        })
        .collect();
    for thread in threads {
        assert!(thread.join().is_ok(), "observer thread panicked");
    }
    // A second handle for the same labels is the same series, not a new one.
    metrics
        .revision(&labels("hello-00001"))
        .observe_request(200, Duration::from_micros(40));

    let text = encode(&metrics);
    let counters = text
        .lines()
        .filter(|line| line.starts_with("wisp_revision_requests_total{"))
        .count();
    assert_eq!(counters, CodeClass::ALL.len());
    let rev = revision_series("hello-00001");
    assert_eq!(
        sample(
            &text,
            "wisp_revision_requests_total",
            &format!(r#"{rev},code_class="2xx""#)
        ),
        "10001"
    );
    assert_eq!(
        sample(&text, "wisp_revision_request_duration_seconds_count", &rev),
        "10001"
    );
    assert_eq!(sample(&text, "wisp_revision_requests_in_flight", &rev), "0");
}

#[test]
fn a_dropped_in_flight_guard_leaves_the_gauge() {
    let metrics = DataPlaneMetrics::new();
    let revision = metrics.revision(&labels("hello-00001"));
    let rev = revision_series("hello-00001");
    let first = revision.in_flight();
    let second = revision.in_flight();
    assert_eq!(
        sample(&encode(&metrics), "wisp_revision_requests_in_flight", &rev),
        "2"
    );
    drop(first);
    drop(second);
    assert_eq!(
        sample(&encode(&metrics), "wisp_revision_requests_in_flight", &rev),
        "0"
    );
}

#[test]
fn removing_a_revision_or_node_drops_its_series_and_keeps_the_others() {
    let metrics = DataPlaneMetrics::new();
    let gone = metrics.revision(&labels("hello-00001"));
    let kept = metrics.revision(&labels("hello-00002"));
    gone.observe_request(200, Duration::from_millis(1));
    gone.cold_start(Duration::from_millis(1));
    kept.observe_request(200, Duration::from_millis(1));
    let node_gone = metrics.node(&NodeLabels::new("node-a"));
    let _node_kept = metrics.node(&NodeLabels::new("node-b"));
    node_gone.instance_started(Duration::from_micros(10));

    assert!(metrics.remove_revision(&labels("hello-00001")));
    assert!(!metrics.remove_revision(&labels("hello-00001")));
    assert!(metrics.remove_node(&NodeLabels::new("node-a")));
    assert!(!metrics.remove_node(&NodeLabels::new("node-a")));

    // A stale handle may still be written to; that must not resurrect the series.
    gone.observe_request(500, Duration::from_millis(1));
    node_gone.set_replicas(3);

    let text = encode(&metrics);
    assert!(!text.contains(r#"revision="hello-00001""#), "{text}");
    assert!(!text.contains(r#"node="node-a""#), "{text}");
    let rev = revision_series("hello-00002");
    assert_eq!(
        sample(
            &text,
            "wisp_revision_requests_total",
            &format!(r#"{rev},code_class="2xx""#)
        ),
        "1"
    );
    assert_eq!(sample(&text, "wisp_node_replicas", r#"node="node-b""#), "0");
    // The families stay declared even with no series left.
    assert_family(&text, "wisp_revision_requests", "counter");
}

#[test]
fn label_values_are_escaped() {
    let metrics = DataPlaneMetrics::new();
    metrics
        .revision(&RevisionLabels::new("ns", "svc", "cfg", "we\"ird\\\nname"))
        .observe_request(200, Duration::ZERO);
    metrics.node(&NodeLabels::new("a\"b"));
    let text = encode(&metrics);
    assert!(
        text.contains(r#"revision="we\"ird\\\nname",code_class="2xx"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"wisp_node_replicas{node="a\"b"} 0"#),
        "{text}"
    );
    // Every sample is still one line: nothing the values held broke the exposition.
    assert!(
        text.lines()
            .all(|line| line.starts_with('#') || line.starts_with("wisp_"))
    );
}
