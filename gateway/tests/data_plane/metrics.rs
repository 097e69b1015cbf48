//! The admin endpoint exports every per-revision and per-node series the data plane keeps.

use http::StatusCode;
use http_body_util::{BodyExt, Empty};

use crate::harness::{Plane, annotated, host, revision, series};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_cover_requests_scaling_and_the_node() {
    let plane = Plane::start().await;
    plane
        .serve_at_zero(revision("observed", wisp_samples::HELLO))
        .await;
    assert_eq!(
        plane.get(&host("observed"), "/").await.status,
        StatusCode::OK
    );
    assert_eq!(
        plane.get(&host("nobody"), "/").await.status,
        StatusCode::NOT_FOUND
    );
    plane.advance(2);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics = plane.data_plane.metrics().clone();
    tokio::spawn(wisp_gateway::metrics::serve_admin(
        listener,
        metrics,
        wisp_gateway::server::ServerLimits::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let response = client
        .get(format!("http://{admin}/metrics").parse().unwrap())
        .await
        .expect("scrape");
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    let labels = r#"namespace="default",service="observed",configuration="observed",revision="observed-00001""#;
    for series in [
        "wisp_revision_requests_total",
        "wisp_revision_request_duration_seconds_count",
        "wisp_revision_requests_in_flight",
        "wisp_activator_queue_depth",
        "wisp_revision_cold_starts_total",
        "wisp_revision_cold_start_duration_seconds_count",
        "wisp_autoscaler_desired_replicas",
        "wisp_autoscaler_actual_replicas",
        "wisp_autoscaler_panic_mode",
        "wisp_autoscaler_stable_observed",
        "wisp_autoscaler_panic_observed",
        "wisp_autoscaler_excess_burst_capacity",
    ] {
        assert!(
            text.lines()
                .any(|line| line.starts_with(series) && line.contains(labels)),
            "no {series} for the revision in:\n{text}"
        );
    }
    assert!(
        text.contains(&format!(
            "wisp_revision_requests_total{{{labels},code_class=\"2xx\"}} 1"
        )),
        "{text}"
    );
    for series in [
        "wisp_node_replicas{node=\"local\"} 1",
        "wisp_node_memory_allocatable_bytes{node=\"local\"}",
        "wisp_node_memory_used_bytes{node=\"local\"}",
        "wisp_node_instances_started_total{node=\"local\"}",
        "wisp_node_instantiation_duration_seconds_count{node=\"local\"}",
    ] {
        assert!(text.contains(series), "no {series} in:\n{text}");
    }
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observed_values_follow_every_step_even_when_the_decision_holds() {
    let plane = std::sync::Arc::new(Plane::start().await);
    let key = plane
        .serve(annotated(
            revision("steady", wisp_samples::SLEEP),
            &[("min-scale", "1")],
        ))
        .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let plane = plane.clone();
        held.push(tokio::spawn(async move {
            plane.get(&host("steady"), "/?ms=60000").await
        }));
    }
    plane
        .wait_for(&key, "three requests running", |s| s.in_flight == 3)
        .await;
    // The decision (one replica) holds throughout; the stable average keeps climbing as the
    // 60-second window fills with 3s.
    plane.advance(8);
    let early = series(
        &plane.metrics(),
        "wisp_autoscaler_stable_observed",
        "steady-00001",
    );
    plane.advance(12);
    let later = series(
        &plane.metrics(),
        "wisp_autoscaler_stable_observed",
        "steady-00001",
    );
    assert_eq!(plane.state(&key).wanted_replicas, 1);
    match (early, later) {
        (Some(early), Some(later)) => assert!(later > early, "{early} then {later}"),
        other => panic!("no stable_observed series: {other:?}"),
    }
    for request in held {
        request.abort();
    }
}
