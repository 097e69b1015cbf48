//! Host memory a guest makes wisp hold is charged to its replica and bounded, and a replica or
//! node out of capacity sheds with 503 rather than blaming the guest: each test runs a hostile
//! guest beside a well-behaved one, checks what the hostile request's client gets, that the
//! other replica keeps answering, and that this process's memory stays under a stated bound.

mod settle;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use settle::settled;
use wisp_runtime::{
    ArtifactSource, MIB, Replica, ReplicaIdentity, ReplicaLimits, RequestOutcome, Runtime,
    RuntimeConfig,
};

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// This process's resident memory, from /proc.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .unwrap();
    kib * 1024
}

struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    outcome: Option<RequestOutcome>,
    body: String,
}

async fn call(replica: &Replica, path: &str) -> Answer {
    let response = replica.handle(get(path), "test".into()).await;
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let outcome = response.extensions().get::<RequestOutcome>().copied();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        retry_after,
        outcome,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn replica_of(runtime: &Runtime, sample: &str, limits: ReplicaLimits) -> Replica {
    runtime
        .prepare(&ArtifactSource::parse(sample))
        .await
        .unwrap()
        .start_replica(&ReplicaIdentity::default(), limits)
}

fn limits(memory: u64) -> ReplicaLimits {
    ReplicaLimits {
        memory,
        timeout: Duration::from_secs(60),
        ..ReplicaLimits::default()
    }
}

async fn hello_still_answers(hello: &Replica) {
    let answer = call(hello, "/").await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (StatusCode::OK, "Hello from wisp!\n")
    );
}

/// A guest that keeps header fields of 100 KiB, or unread outgoing bodies, or pollables, fails
/// its own request with a message naming what it held, gives every byte back, and the process
/// grows by no more than the replica's limit (plus slack for the allocator), however long the
/// guest would have gone on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_holding_host_memory_fails_its_own_request() {
    const LIMIT: u64 = 64 * MIB;
    /// Room for the test's own allocations, the allocator's caches and the compiled guests.
    const SLACK: u64 = 64 * MIB;
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let flood = replica_of(&runtime, wisp_samples::FLOOD, limits(LIMIT)).await;
    let hello = replica_of(&runtime, wisp_samples::HELLO, limits(LIMIT)).await;
    hello_still_answers(&hello).await;
    let before = rss_bytes();

    for (what, expected) in [
        (
            "headers",
            "guest exceeded its memory limit with header fields",
        ),
        (
            "bodies",
            "guest exceeded its memory limit with outgoing body buffers",
        ),
        ("resources", "guest exceeded its limit of 2048 resources"),
    ] {
        // Alone, the request runs into its own limit: the guest's fault.
        let path = format!("/?what={what}");
        let alone = call(&flood, &path).await;
        assert_eq!(
            alone.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{what}: {}",
            alone.body
        );
        assert!(alone.body.starts_with(expected), "{what}: {}", alone.body);
        assert_eq!(alone.outcome, Some(RequestOutcome::GuestFault));
        // Several at once: whichever runs out of the shared budget first is told to retry.
        let answers = futures::future::join_all((0..4).map(|_| call(&flood, &path))).await;
        for answer in answers {
            assert!(
                answer.status == StatusCode::INTERNAL_SERVER_ERROR
                    || answer.status == StatusCode::SERVICE_UNAVAILABLE,
                "{what}: {} {}",
                answer.status,
                answer.body
            );
            if answer.status == StatusCode::INTERNAL_SERVER_ERROR {
                assert!(answer.body.starts_with(expected), "{what}: {}", answer.body);
                assert_eq!(answer.outcome, Some(RequestOutcome::GuestFault));
            } else {
                // Out of room because the other requests held the budget: overload, retry.
                assert_eq!(answer.retry_after.as_deref(), Some("1"), "{what}");
                assert_eq!(answer.outcome, Some(RequestOutcome::Overload));
            }
        }
        assert_eq!(
            settled(&flood).await,
            (0, 0),
            "{what}: every charge given back"
        );
        hello_still_answers(&hello).await;
        let grown = rss_bytes().saturating_sub(before);
        assert!(
            grown < LIMIT + SLACK,
            "{what}: the process grew by {} MiB, more than the replica's {} MiB limit plus {} MiB",
            grown / MIB,
            LIMIT / MIB,
            SLACK / MIB
        );
    }
}

/// A request may log a bounded amount; the request itself still succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_flooding_its_log_is_served() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let flood = replica_of(&runtime, wisp_samples::FLOOD, limits(64 * MIB)).await;
    let answer = call(&flood, "/?what=logs&kib=8192").await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (StatusCode::OK, "logged 8192 KiB\n")
    );
    assert_eq!(answer.outcome, Some(RequestOutcome::Served));
}

/// With no concurrency limit, requests that together need more memory than the replica has
/// are never answered 500: each waits for room, or is shed with 503 and `Retry-After`, or
/// runs out of room beside the others (503 too); each one that gets room is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_out_of_memory_sheds_with_503() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    // Each hog request takes about 3 MiB beyond its instance's own memory: two fit, not ten.
    let hog = replica_of(&runtime, wisp_samples::HOG, limits(10 * MIB)).await;
    let hello = replica_of(&runtime, wisp_samples::HELLO, limits(64 * MIB)).await;
    let answers = futures::future::join_all((0..10).map(|_| call(&hog, "/?mb=3"))).await;
    let mut served = 0;
    for answer in &answers {
        match answer.status {
            StatusCode::OK => {
                assert_eq!(answer.body, "allocated 3 MiB\n");
                served += 1;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(
                    answer.body.contains("out of memory") || answer.body.contains("overloaded"),
                    "{}",
                    answer.body
                );
                assert_eq!(answer.retry_after.as_deref(), Some("1"));
                assert_eq!(answer.outcome, Some(RequestOutcome::Overload));
            }
            other => panic!("{other}: {}", answer.body),
        }
    }
    assert!(served >= 1, "at least the first request had room");
    assert_eq!(settled(&hog).await, (0, 0), "every charge given back");
    hello_still_answers(&hello).await;

    // One request alone past what it may hold is the guest's own fault.
    let alone = call(&hog, "/").await;
    assert_eq!(
        alone.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        alone.body
    );
    assert!(alone.body.starts_with("guest trapped"), "{}", alone.body);
    assert!(
        alone
            .body
            .contains("memory limit of one request was refused"),
        "{}",
        alone.body
    );
    assert_eq!(alone.outcome, Some(RequestOutcome::GuestFault));
}

/// A node out of instance slots queues requests for a slot (a bounded number), and sheds the
/// rest with 503: never a failed instantiation reported as the guest's fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_out_of_instance_slots_queues_then_sheds() {
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: 2,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let sleep = replica_of(&runtime, wisp_samples::SLEEP, limits(64 * MIB)).await;
    // Two run, twenty wait (ten per slot), the rest are shed.
    let answers = futures::future::join_all((0..30).map(|_| call(&sleep, "/?ms=300"))).await;
    let served = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .count();
    let shed: Vec<_> = answers
        .iter()
        .filter(|a| a.status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert_eq!(served + shed.len(), answers.len(), "only 200s and 503s");
    assert!(
        served >= 22,
        "two running and twenty waiting are served: {served}"
    );
    for answer in shed {
        assert!(
            answer
                .body
                .contains("requests already wait for an instance slot of the node"),
            "{}",
            answer.body
        );
        assert_eq!(answer.retry_after.as_deref(), Some("1"));
        assert_eq!(answer.outcome, Some(RequestOutcome::Overload));
    }
    assert_eq!(runtime.instance_slots().in_use(), 0);
}

/// The least memory admission lets a replica have is enough for the smallest sample to serve:
/// a limit admitted must never mean a revision that cannot run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smallest_admitted_replica_serves_the_smallest_sample() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let smallest = replica_of(
        &runtime,
        wisp_samples::HELLO_WASI,
        limits(wisp_api::quantity::MIN_REPLICA_MEMORY),
    )
    .await;
    for _ in 0..3 {
        let answer = call(&smallest, "/").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
}
