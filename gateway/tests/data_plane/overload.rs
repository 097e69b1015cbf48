//! Overload and isolation: a full activator queue, timeouts that include queue time, node
//! admission, containerConcurrency 1, and faulty revisions beside a healthy one.

use std::sync::Arc;

use http::StatusCode;
use wisp_gateway::dataplane::DataPlaneConfig;
use wisp_runtime::MIB;

use crate::harness::{Options, Plane, annotated, host, revision};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after() {
    let mut data_plane = DataPlaneConfig::new(4096 * MIB);
    data_plane.max_queue = 4;
    let plane = Arc::new(
        Plane::start_with(Options {
            data_plane,
            max_instances: 50,
        })
        .await,
    );
    let mut config = annotated(revision("full", wisp_samples::SLEEP), &[("max-scale", "1")]);
    config.container_concurrency = 1;
    let key = plane.serve(config).await;

    let mut held = Vec::new();
    let spawn = |plane: Arc<Plane>| {
        tokio::spawn(async move { plane.get(&host("full"), "/?ms=60000").await.status })
    };
    held.push(spawn(plane.clone()));
    plane
        .wait_for(&key, "one request running", |s| s.in_flight == 1)
        .await;
    for _ in 0..4 {
        held.push(spawn(plane.clone()));
    }
    plane.wait_for(&key, "four queued", |s| s.queued == 4).await;

    let refused = plane.get(&host("full"), "/?ms=1").await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.body
    );
    assert_eq!(refused.headers["retry-after"], "1");
    assert!(refused.body.contains("overloaded"), "{}", refused.body);
    for request in held {
        request.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queueing_behind_a_busy_replica_counts_toward_the_timeout() {
    let plane = Arc::new(Plane::start().await);
    let mut config = annotated(revision("slow", wisp_samples::SLEEP), &[("max-scale", "1")]);
    config.container_concurrency = 1;
    config.timeout = std::time::Duration::from_secs(1);
    let key = plane.serve(config).await;
    let first = {
        let plane = plane.clone();
        tokio::spawn(async move { plane.get(&host("slow"), "/?ms=900").await.status })
    };
    plane
        .wait_for(&key, "one request running", |s| s.in_flight == 1)
        .await;
    // Queued for about 0.9 s while the first holds the only slot, then given 0.5 s of work:
    // its deadline counts from its arrival, so the work outlasts it. (Were the deadline to
    // restart at the replica, this request would be answered 200.)
    let queued = plane.get(&host("slow"), "/?ms=500").await;
    assert_eq!(
        queued.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        queued.body
    );
    let timing = queued.headers["server-timing"].to_str().unwrap();
    assert!(
        !timing.starts_with("queue;dur=0.000"),
        "it queued: {timing}"
    );
    first.await.expect("first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_the_node_cannot_admit_queues_says_why_and_starts_when_room_frees() {
    let mut data_plane = DataPlaneConfig::new(100 * MIB);
    data_plane.default_memory_limit = 64 * MIB;
    let plane = Arc::new(
        Plane::start_with(Options {
            data_plane,
            max_instances: 20,
        })
        .await,
    );
    let first = plane.serve(revision("first", wisp_samples::HELLO)).await;
    assert_eq!(plane.get(&host("first"), "/").await.status, StatusCode::OK);

    let mut impatient = revision("impatient", wisp_samples::HELLO);
    impatient.timeout = std::time::Duration::from_secs(1);
    let impatient = plane.serve(impatient).await;
    // Queue time alone runs past the timeout: the activator answers 504 and says why.
    let answer = plane.get(&host("impatient"), "/").await;
    assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(
        answer.body.contains("activator request timeout"),
        "{}",
        answer.body
    );
    assert!(answer.body.contains("cannot admit"), "{}", answer.body);
    let state = plane.state(&impatient);
    assert_eq!(state.ready_replicas, 0);
    assert!(state.unschedulable.is_some(), "{state:?}");
    assert!(plane.data_plane.remove_revision(&impatient).await);

    // A patient revision waits; when the first revision goes away, its memory goes to the
    // waiting revision, whose queued request is then served.
    let patient = plane.serve(revision("patient", wisp_samples::HELLO)).await;
    let pending = {
        let plane = plane.clone();
        tokio::spawn(async move { plane.get(&host("patient"), "/").await.status })
    };
    plane
        .wait_for(&patient, "a queued request", |s| s.queued == 1)
        .await;
    assert!(plane.state(&patient).unschedulable.is_some());
    assert!(plane.data_plane.remove_revision(&first).await);
    assert_eq!(pending.await.expect("pending"), StatusCode::OK);
    assert!(plane.state(&patient).unschedulable.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_concurrency_one_is_never_exceeded() {
    let plane = Arc::new(Plane::start().await);
    let mut config = annotated(
        revision("single", wisp_samples::SLEEP),
        &[("max-scale", "1")],
    );
    config.container_concurrency = 1;
    let key = plane.serve(config).await;

    let mut clients = Vec::new();
    for _ in 0..8 {
        let plane = plane.clone();
        clients.push(tokio::spawn(async move {
            let mut intervals = Vec::new();
            for _ in 0..4 {
                let answer = plane.get(&host("single"), "/?ms=10").await;
                assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
                intervals.push(interval_of(&answer.body));
            }
            intervals
        }));
    }
    // While the clients run, the activator holds the revision to one request at a time (in the
    // path, it hands out one slot per replica); the guests' own clocks must agree.
    while !clients.iter().all(|c| c.is_finished()) {
        let state = plane.state(&key);
        assert!(state.activator_in_path, "{state:?}");
        assert!(state.in_flight <= 1, "{state:?}");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let mut intervals = Vec::new();
    for client in clients {
        intervals.extend(client.await.expect("client"));
    }
    intervals.sort_unstable();
    assert_eq!(intervals.len(), 32);
    for pair in intervals.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "requests overlapped: {:?} and {:?}",
            pair[0],
            pair[1]
        );
    }
}

/// `(start, end)` in Unix nanoseconds from the sleep sample's JSON.
fn interval_of(body: &str) -> (u128, u128) {
    let number = |key: &str| -> u128 {
        let start = body.find(key).expect(key) + key.len() + 2;
        body[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .expect("number")
    };
    (number("\"start_unix_ns"), number("\"end_unix_ns"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_revisions_do_not_disturb_a_healthy_one() {
    let plane = Arc::new(Plane::start().await);
    plane.serve(revision("hello", wisp_samples::HELLO)).await;
    let mut spin = revision("spin", wisp_samples::SPIN);
    spin.timeout = std::time::Duration::from_millis(500);
    plane.serve(spin).await;
    let mut hog = revision("hog", wisp_samples::HOG);
    hog.memory_limit = Some(32 * MIB);
    plane.serve(hog).await;
    plane.serve(revision("trap", wisp_samples::TRAP)).await;

    let mut faults = Vec::new();
    for (service, expected) in [
        ("spin", StatusCode::GATEWAY_TIMEOUT),
        ("hog", StatusCode::INTERNAL_SERVER_ERROR),
        ("trap", StatusCode::INTERNAL_SERVER_ERROR),
    ] {
        for _ in 0..2 {
            let plane = plane.clone();
            faults.push(tokio::spawn(async move {
                for _ in 0..5 {
                    let answer = plane.get(&host(service), "/").await;
                    // The two hog clients share one replica's memory: whichever runs out
                    // beside the other is told to retry (overload), not blamed.
                    if service == "hog" && answer.status == StatusCode::SERVICE_UNAVAILABLE {
                        assert!(answer.body.contains("is out of memory"), "{}", answer.body);
                        continue;
                    }
                    assert_eq!(answer.status, expected, "{service}: {}", answer.body);
                }
            }));
        }
    }
    for _ in 0..200 {
        let answer = plane.get(&host("hello"), "/").await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.body, "Hello from wisp!\n");
    }
    for fault in faults {
        fault.await.expect("fault client");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_change_leaves_the_revision_serving() {
    let plane = Plane::start().await;
    let config = revision("steadfast", wisp_samples::HELLO);
    let key = plane.serve(config.clone()).await;
    assert_eq!(
        plane.get(&host("steadfast"), "/").await.status,
        StatusCode::OK
    );

    // A changed spec (a replacement) with an annotation the autoscaler rejects.
    let mut changed = annotated(config, &[("min-scale", "many")]);
    changed.container_concurrency = 3;
    let error = plane
        .data_plane
        .apply_revision(changed)
        .await
        .expect_err("invalid annotation");
    assert!(error.to_string().contains("min-scale"), "{error}");
    let answer = plane.get(&host("steadfast"), "/").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(plane.state(&key).ready_replicas, 1);
}
