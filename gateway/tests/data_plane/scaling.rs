//! Scaling from and to zero on a simulated autoscaler clock: cold starts, a burst from zero,
//! scale to zero after the window and grace period, and cycles under a steady stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use http::StatusCode;
use wisp_gateway::dataplane::DataPlaneConfig;
use wisp_runtime::MIB;

use wisp_gateway::routing::{RouteConfig, TrafficTarget};

use crate::harness::{Answer, NS, Options, Plane, annotated, host, revision, series};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_at_zero_answers_its_first_request_and_counts_a_cold_start() {
    let plane = Plane::start().await;
    let key = plane.serve(revision("hello", wisp_samples::HELLO)).await;
    assert_eq!(plane.state(&key).ready_replicas, 1, "initial scale");
    plane.idle_until_zero(&key).await;

    let answer = plane.get(&host("hello"), "/").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "Hello from wisp!\n");
    assert_eq!(plane.state(&key).ready_replicas, 1);

    plane.advance(1);
    let metrics = plane.metrics();
    assert_eq!(
        series(&metrics, "wisp_revision_cold_starts_total", "hello-00001"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        series(
            &metrics,
            "wisp_revision_cold_start_duration_seconds_count",
            "hello-00001"
        ),
        Some(1.0)
    );
    // Warm now: the next request is no cold start.
    assert_eq!(plane.get(&host("hello"), "/").await.status, StatusCode::OK);
    let metrics = plane.metrics();
    assert_eq!(
        series(&metrics, "wisp_revision_cold_starts_total", "hello-00001"),
        Some(1.0)
    );
    assert_eq!(
        series(&metrics, "wisp_autoscaler_actual_replicas", "hello-00001"),
        Some(1.0)
    );
}

/// A request that arrives while its revision has no replica waits for one to start (its cold
/// start), and may then wait again, behind a busy replica. Only the first wait is the cold
/// start's, in the metric and in Server-Timing's `cold`; `queue` has both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_is_the_wait_for_a_replica_not_the_queue_behind_a_busy_one() {
    let plane = Arc::new(Plane::start_sized(32 * MIB, 16 * MIB, 100).await);
    let mut config = annotated(
        revision("single", wisp_samples::SLEEP),
        &[("max-scale", "1")],
    );
    config.container_concurrency = 1;
    let key = plane.serve_at_zero(config).await;
    // A revision holding the whole node keeps the other at zero, its requests queued, until
    // it goes: both requests below are certain to arrive at zero.
    let hog = plane
        .serve(annotated(
            revision("hog", wisp_samples::HELLO),
            &[("min-scale", "2"), ("initial-scale", "2")],
        ))
        .await;
    plane
        .wait_for(&hog, "the node full", |s| s.ready_replicas == 2)
        .await;

    let send = || {
        let plane = plane.clone();
        tokio::spawn(async move { plane.get(&host("single"), "/?ms=1500").await })
    };
    let first = send();
    plane
        .wait_for(&key, "the first request queued", |s| s.queued == 1)
        .await;
    let second = send();
    plane
        .wait_for(&key, "both requests queued", |s| s.queued == 2)
        .await;
    assert_eq!(plane.state(&key).ready_replicas, 0);
    assert!(plane.data_plane.remove_revision(&hog).await);
    let first = first.await.expect("first request");
    let second = second.await.expect("second request");
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);

    let (first_cold, second_cold) = (timing(&first, "cold"), timing(&second, "cold"));
    // Both waits for the replica end when it starts; the second began later.
    assert!(
        second_cold <= first_cold,
        "cold waits: first {first_cold} ms, second {second_cold} ms"
    );
    // The one replica takes one request at a time: the second queued on behind the first's
    // 1.5 s, and that part is not its cold start.
    let second_queue = timing(&second, "queue");
    assert!(
        second_queue >= second_cold + 1500.0 - 0.002,
        "second request: queue {second_queue} ms, cold {second_cold} ms"
    );
    let metrics = plane.metrics();
    assert_eq!(
        series(&metrics, "wisp_revision_cold_starts_total", "single-00001"),
        Some(2.0),
        "{metrics}"
    );
    let recorded = series(
        &metrics,
        "wisp_revision_cold_start_duration_seconds_sum",
        "single-00001",
    )
    .unwrap_or(f64::NAN);
    let from_headers = (first_cold + second_cold) / 1e3;
    assert!(
        (recorded - from_headers).abs() < 1e-5,
        "the metric's cold-start wait ({recorded} s) is not the headers' ({from_headers} s)"
    );
}

/// One `Server-Timing` entry's duration in milliseconds.
fn timing(answer: &Answer, name: &str) -> f64 {
    let header = answer
        .headers
        .get("server-timing")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    header
        .split(", ")
        .find_map(|entry| entry.strip_prefix(&format!("{name};dur=")))
        .and_then(|duration| duration.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in Server-Timing: {header:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_500_from_zero_all_succeeds_and_scales_to_fifty() {
    let plane = Arc::new(Plane::start_sized(4096 * MIB, 16 * MIB, 600).await);
    let mut config = annotated(
        revision("burst", wisp_samples::SLEEP),
        &[("target-utilization-percentage", "100")],
    );
    config.container_concurrency = 10;
    let key = plane.serve_at_zero(config).await;

    let mut requests = Vec::new();
    for _ in 0..500 {
        let plane = plane.clone();
        requests.push(tokio::spawn(async move {
            plane.get(&host("burst"), "/?ms=8000").await.status
        }));
    }
    // Every request is in the revision (queued or running) before the autoscaler looks.
    plane
        .wait_for(&key, "500 requests in", |s| {
            s.queued + s.in_flight as usize == 500
        })
        .await;
    // Knative's panic window (6 s by default) averages over its whole length, so the count
    // climbs as the window fills with the burst: 17, 34, … then 500 / 10 per replica = 50.
    let mut wanted = Vec::new();
    for _ in 0..10 {
        plane.advance(1);
        wanted.push(plane.state(&key).wanted_replicas);
    }
    assert_eq!(
        wanted.iter().max(),
        Some(&50),
        "wanted replicas per second: {wanted:?}"
    );
    assert!(plane.state(&key).panicking);
    plane
        .wait_for(&key, "50 ready replicas", |s| s.ready_replicas == 50)
        .await;
    for request in requests {
        assert_eq!(request.await.expect("request"), StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_revisions_reach_zero_after_window_and_grace_and_start_again() {
    let plane = Plane::start().await;
    let key = plane
        .serve_at_zero(revision("idle", wisp_samples::HELLO))
        .await;
    assert_eq!(plane.get(&host("idle"), "/").await.status, StatusCode::OK);
    plane.advance(1);
    assert_eq!(plane.state(&key).ready_replicas, 1);

    let config = plane.data_plane.autoscaler().config();
    let window = config.stable_window.as_secs();
    let grace = config.scale_to_zero_grace_period.as_secs();
    let idle_seconds = plane.idle_until_zero(&key).await;
    assert!(
        idle_seconds <= window + grace + 5,
        "reached zero only after {idle_seconds}s idle"
    );
    assert!(
        idle_seconds >= window,
        "reached zero after only {idle_seconds}s idle"
    );

    // The component stayed compiled and loaded at zero: starting again loads nothing.
    let loads = || {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = plane.data_plane.runtime().loader_stats();
        stats.compiles.load(Relaxed)
            + stats.disk_hits.load(Relaxed)
            + stats.memory_hits.load(Relaxed)
    };
    let loads_at_zero = loads();
    let answer = plane.get(&host("idle"), "/").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(loads(), loads_at_zero);
    assert_eq!(
        series(
            &plane.metrics(),
            "wisp_revision_cold_starts_total",
            "idle-00001"
        ),
        Some(2.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_stream_through_scale_cycles_loses_nothing() {
    let plane = Arc::new(Plane::start_sized(4096 * MIB, 16 * MIB, 100).await);
    let mut config = annotated(
        revision("cycle", wisp_samples::SLEEP),
        &[("target-utilization-percentage", "100")],
    );
    config.container_concurrency = 1;
    let key = plane.serve_at_zero(config).await;

    let active_clients = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for id in 0..8 {
        let (plane, active, stop, answered) = (
            plane.clone(),
            active_clients.clone(),
            stop.clone(),
            answered.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if id >= active.load(Ordering::Relaxed) {
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    continue;
                }
                let answer = plane.get(&host("cycle"), "/?ms=3").await;
                answered.fetch_add(1, Ordering::Relaxed);
                if !answer.status.is_success() {
                    failures.push(format!("{} {}", answer.status, answer.body));
                }
            }
            failures
        }));
    }

    let mut peak = 0;
    let mut zeros = 0;
    for cycle in 0..2 {
        // Up: 8 clients for 40 simulated seconds; down: 1 client; then idle until zero.
        for (clients, seconds) in [(8, 40), (1, 70)] {
            active_clients.store(clients, Ordering::Relaxed);
            for _ in 0..seconds {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                plane.advance(1);
                peak = peak.max(plane.state(&key).ready_replicas);
            }
        }
        active_clients.store(0, Ordering::Relaxed);
        let mut idle = 0;
        while plane.state(&key).ready_replicas > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            plane.advance(1);
            idle += 1;
            assert!(
                idle < 400,
                "cycle {cycle}: never reached zero: {:?}",
                plane.state(&key)
            );
        }
        zeros += 1;
    }
    active_clients.store(8, Ordering::Relaxed);
    for _ in 0..10 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        plane.advance(1);
    }
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for client in clients {
        failures.extend(client.await.expect("client"));
    }
    assert!(
        failures.is_empty(),
        "{} failed of {}: {:?}",
        failures.len(),
        answered.load(Ordering::Relaxed),
        &failures[..failures.len().min(5)]
    );
    assert!(
        peak >= 4,
        "8 clients at containerConcurrency 1 should scale up; peak {peak}"
    );
    assert_eq!(zeros, 2);
    let cold = series(
        &plane.metrics(),
        "wisp_revision_cold_starts_total",
        "cycle-00001",
    )
    .unwrap_or(0.0);
    assert!(cold >= 3.0, "a cold start per cycle, got {cold}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activator_leaves_the_path_only_with_spare_burst_capacity() {
    let plane = Plane::start().await;
    // Default target burst capacity (211) with one replica: not enough spare room, so requests
    // stay buffered in the activator.
    let buffered = plane.serve(revision("buffered", wisp_samples::HELLO)).await;
    // Target burst capacity 0: once a replica is ready, requests go straight to it.
    let direct = plane
        .serve(annotated(
            revision("direct", wisp_samples::HELLO),
            &[("target-burst-capacity", "0")],
        ))
        .await;
    for service in ["buffered", "direct"] {
        assert_eq!(plane.get(&host(service), "/").await.status, StatusCode::OK);
    }
    plane.advance(2);
    plane
        .wait_for(&direct, "the activator out of the path", |s| {
            !s.activator_in_path
        })
        .await;
    let state = plane.state(&buffered);
    assert!(state.activator_in_path, "{state:?}");
    assert_eq!(plane.get(&host("direct"), "/").await.status, StatusCode::OK);
}

/// The node's status sync reads every revision's counts only when this version has moved: it
/// must move with every change of a revision's counts, and stay put while revisions idle.
/// (The scaler task moves it just after a change is visible, so a read right after seeing the
/// change may come before that one move: a still revision is allowed one, where a version
/// moved by every step would move at least once per evaluation.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replica_counts_version_moves_with_the_counts_and_only_with_them() {
    let plane = Plane::start().await;
    let version = || plane.data_plane.replica_counts_version();
    let before_apply = version();
    let key = plane.serve(revision("counted", wisp_samples::HELLO)).await;
    assert_ne!(version(), before_apply, "a revision added");
    plane.idle_until_zero(&key).await;

    let at_zero = version();
    let counts = plane.data_plane.replica_counts(&key);
    plane.advance(30);
    assert_eq!(
        plane.data_plane.replica_counts(&key),
        counts,
        "idle at zero"
    );
    assert!(
        version() - at_zero <= 1,
        "nothing changed while idle at zero, yet the version moved from {at_zero} to {}",
        version()
    );

    let before_request = version();
    assert_eq!(
        plane.get(&host("counted"), "/").await.status,
        StatusCode::OK
    );
    // The answer may come back before the apply that started its replica moved the version.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while version() == before_request {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the version never moved for a cold start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(
        plane
            .data_plane
            .replica_counts(&key)
            .map(|counts| counts.ready),
        Some(1)
    );
    plane.advance(1);
    let one_replica = version();
    plane.advance(10);
    assert!(
        version() - one_replica <= 1,
        "nothing changed with one idle replica, yet the version moved from {one_replica} to {}",
        version()
    );

    assert!(plane.data_plane.remove_revision(&key).await);
    assert_ne!(version(), one_replica, "a revision removed");
    assert_eq!(plane.data_plane.replica_counts(&key), None);
}

/// A request at zero starts its revision's replica itself: the autoscaler's decision is applied
/// on the request's thread, not only by the scaler task, so a burst from zero waits for no task
/// to be scheduled. Here the scaler task never runs at all (its runtime is gone), and the
/// request is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_at_zero_starts_a_replica_without_the_scaler_task() {
    let mut data_plane = DataPlaneConfig::new(4096 * MIB);
    data_plane.autoscaler.allow_zero_initial_scale = true;
    let plane = Plane::start_with(Options {
        data_plane,
        max_instances: 100,
    })
    .await;
    let mut config = annotated(
        revision("inline", wisp_samples::HELLO),
        &[("initial-scale", "0")],
    );
    config.timeout = std::time::Duration::from_secs(10);
    let key = config.key.clone();
    let service = config.service.clone();
    // Applied from a runtime of its own, dropped at once: the scaler task spawned there is
    // dropped with it before it can apply anything.
    let applying = plane.data_plane.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime
            .block_on(applying.apply_revision(config))
            .map(drop)
            .map_err(|error| error.to_string())
    })
    .join()
    .expect("apply thread")
    .expect("apply revision");
    plane
        .add_route(RouteConfig::new(
            NS,
            service,
            vec![TrafficTarget::new(&key.name, 100)],
        ))
        .await;
    assert_eq!(plane.state(&key).ready_replicas, 0, "initial scale 0");

    let answer = plane.get(&host("inline"), "/").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(plane.state(&key).ready_replicas, 1);
}
