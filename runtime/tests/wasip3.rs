//! WASIp3 components (`wasi:http/handler@0.3`, spin-sdk 7): detected from their exports and
//! served beside WASIp2 ones, several requests at once on one instance, with the same limits,
//! deadlines, fault containment and Server-Timing. `p3-counter` answers the number of requests
//! its instance has taken, so each answer shows which instance served it.

mod settle;

use std::num::NonZeroU32;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use settle::{settled, wait_until};
use wisp_api::instance_reuse::InstanceReuse;
use wisp_runtime::{
    ArtifactSource, MIB, PreparedComponent, Replica, ReplicaIdentity, ReplicaLimits,
    RequestOutcome, Runtime, RuntimeConfig, World,
};

struct Answer {
    status: StatusCode,
    body: String,
    instance: String,
    outcome: Option<RequestOutcome>,
}

async fn call(replica: &Replica, path: &str) -> Answer {
    let request = Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = replica.handle(request, "test".into()).await;
    let status = response.status();
    let outcome = response.extensions().get::<RequestOutcome>().copied();
    let instance = response
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .and_then(|timing| {
            timing
                .split(", ")
                .find_map(|metric| metric.strip_prefix("instance;desc="))
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        instance,
        outcome,
    }
}

async fn prepare(runtime: &Runtime, sample: &str) -> PreparedComponent {
    runtime
        .prepare(&ArtifactSource::parse(sample))
        .await
        .unwrap()
}

fn limits() -> ReplicaLimits {
    ReplicaLimits {
        timeout: Duration::from_secs(60),
        ..ReplicaLimits::default()
    }
}

fn count(answer: &Answer) -> u32 {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body.trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_world_is_told_from_the_exports() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    assert_eq!(
        prepare(&runtime, wisp_samples::P3_COUNTER).await.world(),
        World::WasiP3
    );
    assert_eq!(
        prepare(&runtime, wisp_samples::COUNTER).await.world(),
        World::WasiP2
    );
}

/// By default a WASIp3 instance serves many requests in turn, as `wasmtime serve` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_are_reused_by_default() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let replica = prepare(&runtime, wisp_samples::P3_COUNTER)
        .await
        .start_replica(&ReplicaIdentity::default(), limits());
    let first = call(&replica, "/").await;
    assert_eq!((count(&first), first.instance.as_str()), (1, "fresh"));
    let second = call(&replica, "/").await;
    assert_eq!((count(&second), second.instance.as_str()), (2, "reused"));
    assert_eq!(second.outcome, Some(RequestOutcome::Served));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reuse_count_of_one_gives_every_request_a_fresh_instance() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let replica = prepare(&runtime, wisp_samples::P3_COUNTER)
        .await
        .start_replica(
            &ReplicaIdentity::default(),
            ReplicaLimits {
                reuse: InstanceReuse {
                    max_requests: NonZeroU32::new(1),
                    ..InstanceReuse::default()
                },
                ..limits()
            },
        );
    for _ in 0..3 {
        let answer = call(&replica, "/").await;
        assert_eq!((count(&answer), answer.instance.as_str()), (1, "fresh"));
    }
}

/// With room for only two instances on the node, 32 requests that each wait 300 ms all succeed:
/// one instance holds up to 16 of them at once (the default), so two hold them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_serves_many_requests_at_once() {
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: 2,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let replica = prepare(&runtime, wisp_samples::P3_COUNTER)
        .await
        .start_replica(&ReplicaIdentity::default(), limits());
    let calls: Vec<_> = (0..32).map(|_| call(&replica, "/?ms=300")).collect();
    let answers = futures::future::join_all(calls).await;
    let counts: Vec<u32> = answers.iter().map(count).collect();
    let fresh = answers.iter().filter(|a| a.instance == "fresh").count();
    assert!(
        fresh <= 2,
        "{fresh} instances started on a node with room for 2"
    );
    assert!(
        counts.iter().any(|n| *n >= 16),
        "no instance took 16 requests: {counts:?}"
    );
    assert!(runtime.instance_slots().in_use() <= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_ends_the_instance_and_the_next_request_gets_a_fresh_one() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let replica = prepare(&runtime, wisp_samples::P3_COUNTER)
        .await
        .start_replica(&ReplicaIdentity::default(), limits());
    assert_eq!(count(&call(&replica, "/").await), 1);
    let trapped = call(&replica, "/?trap=1").await;
    assert_eq!(trapped.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        trapped.body.starts_with("guest trapped"),
        "{}",
        trapped.body
    );
    assert_eq!(trapped.outcome, Some(RequestOutcome::GuestFault));
    let after = call(&replica, "/").await;
    assert_eq!((count(&after), after.instance.as_str()), (1, "fresh"));
}

/// A request past its deadline gets 504; its instance (whose task cannot be cancelled) takes no
/// further request, so the next one starts fresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_deadline_gets_504_and_retires_its_instance() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let replica = prepare(&runtime, wisp_samples::P3_COUNTER)
        .await
        .start_replica(
            &ReplicaIdentity::default(),
            ReplicaLimits {
                timeout: Duration::from_millis(500),
                ..limits()
            },
        );
    let slow = call(&replica, "/?ms=60000").await;
    assert_eq!(slow.status, StatusCode::GATEWAY_TIMEOUT, "{}", slow.body);
    assert_eq!(slow.outcome, Some(RequestOutcome::Timeout));
    let after = call(&replica, "/").await;
    assert_eq!((count(&after), after.instance.as_str()), (1, "fresh"));
}

/// An instance that keeps 1 MiB per request is retired at three quarters of its memory cap:
/// no request fails for what earlier ones left, and the replica stays within its limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limits_hold_with_reuse() {
    const LIMIT: u64 = 16 * MIB;
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let replica = prepare(&runtime, wisp_samples::P3_COUNTER)
        .await
        .start_replica(
            &ReplicaIdentity::default(),
            ReplicaLimits {
                memory: LIMIT,
                ..limits()
            },
        );
    let mut fresh = 0;
    for _ in 0..40 {
        let answer = call(&replica, "/?keep_kib=1024").await;
        count(&answer);
        if answer.instance == "fresh" {
            fresh += 1;
        }
        assert!(replica.memory_in_use() <= LIMIT);
    }
    assert!(
        fresh >= 3,
        "40 MiB kept under a 16 MiB limit needs several instances; saw {fresh}"
    );
}

/// Scale to zero: dropping the replica ends its idle instances at once (memory and node slots
/// come back), however long they would otherwise be kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_down_ends_idle_instances() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let replica = prepare(&runtime, wisp_samples::P3_COUNTER)
        .await
        .start_replica(
            &ReplicaIdentity::default(),
            ReplicaLimits {
                reuse: InstanceReuse {
                    idle_timeout: Some(Duration::from_secs(600)),
                    ..InstanceReuse::default()
                },
                ..limits()
            },
        );
    assert_eq!(count(&call(&replica, "/").await), 1);
    // The instance is idle once the body of its answer is out, a moment after the client has it.
    wait_until(|| replica.idle_instances() != 0).await;
    assert_eq!(replica.idle_instances(), 1);
    let probe = replica.clone();
    drop(replica);
    // A clone keeps the replica: only the last handle closes it.
    assert_eq!(probe.idle_instances(), 1);
    drop(probe);
    wait_until(|| runtime.instance_slots().in_use() == 0).await;
    assert_eq!(runtime.instance_slots().in_use(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_instances_end_after_their_timeout() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let replica = prepare(&runtime, wisp_samples::P3_COUNTER)
        .await
        .start_replica(
            &ReplicaIdentity::default(),
            ReplicaLimits {
                reuse: InstanceReuse {
                    idle_timeout: Some(Duration::from_millis(200)),
                    ..InstanceReuse::default()
                },
                ..limits()
            },
        );
    assert_eq!(count(&call(&replica, "/").await), 1);
    wait_until(|| replica.instances() == 0).await;
    assert_eq!(replica.instances(), 0, "the idle instance was kept");
    assert_eq!(settled(&replica).await, (0, 0));
    let after = call(&replica, "/").await;
    assert_eq!((count(&after), after.instance.as_str()), (1, "fresh"));
}
