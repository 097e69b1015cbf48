//! Instance reuse, the revision's explicit choice: the `counter` guest counts the requests its
//! instance served, so each answer shows whether state was carried over; `Server-Timing` says
//! `instance;desc=fresh` or `reused`. Reuse never crosses replicas, never survives a fault, gives
//! memory back by retiring large instances, and ends when the replica goes.

mod answers;
mod settle;

use std::num::NonZeroU32;
use std::time::Duration;

use answers::call;
use http::StatusCode;
use settle::{settled, wait_until};
use wisp_api::instance_reuse::InstanceReuse;
use wisp_runtime::{
    ArtifactSource, MIB, MemoryReset, PreparedComponent, Replica, ReplicaIdentity, ReplicaLimits,
    Runtime, RuntimeConfig,
};

/// Serial calls: (counter, instance) of each.
async fn counts(replica: &Replica, path: &str, n: usize) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    for _ in 0..n {
        let answer = call(replica, path).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        seen.push((answer.body.trim().to_owned(), answer.instance));
    }
    seen
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(count, instance)| (count.to_string(), instance.to_string()))
        .collect()
}

fn reuse(count: u32, idle: Duration) -> ReplicaLimits {
    ReplicaLimits {
        timeout: Duration::from_secs(60),
        reuse: InstanceReuse {
            max_requests: NonZeroU32::new(count),
            max_concurrent: None,
            idle_timeout: Some(idle),
        },
        ..ReplicaLimits::default()
    }
}

async fn counter(runtime: &Runtime) -> PreparedComponent {
    runtime
        .prepare(&ArtifactSource::parse(wisp_samples::COUNTER))
        .await
        .unwrap()
}

const LONG_IDLE: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_reuse_every_request_gets_a_fresh_instance() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let replica = counter(&runtime)
        .await
        .start_replica(&ReplicaIdentity::default(), ReplicaLimits::default());
    assert_eq!(
        counts(&replica, "/", 3).await,
        pairs(&[("1", "fresh"), ("1", "fresh"), ("1", "fresh")])
    );
    assert_eq!(replica.idle_instances(), 0);
    assert_eq!(settled(&replica).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_instance_serves_its_count_then_a_fresh_one_takes_over() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let replica = counter(&runtime)
        .await
        .start_replica(&ReplicaIdentity::default(), reuse(3, LONG_IDLE));
    assert_eq!(
        counts(&replica, "/", 5).await,
        pairs(&[
            ("1", "fresh"),
            ("2", "reused"),
            ("3", "reused"),
            ("1", "fresh"),
            ("2", "reused"),
        ])
    );
    assert_eq!(replica.idle_instances(), 1);
}

/// The whole-prefix reset rewrites the slot's first 16 MiB from the image and unmaps the rest:
/// each fresh instance still starts from the component's initial memory, whether the last one
/// wrote inside the prefix or far past it (20 MiB kept).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_prefix_reset_gives_every_fresh_instance_its_initial_memory() {
    let runtime = Runtime::new(RuntimeConfig {
        memory_reset: MemoryReset::WholePrefix,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let fresh = counter(&runtime)
        .await
        .start_replica(&ReplicaIdentity::default(), ReplicaLimits::default());
    for path in ["/", "/?keep_kib=64", "/?keep_kib=20480", "/"] {
        assert_eq!(
            counts(&fresh, path, 3).await,
            pairs(&[("1", "fresh"), ("1", "fresh"), ("1", "fresh")]),
            "{path}"
        );
    }
    let reused = counter(&runtime)
        .await
        .start_replica(&ReplicaIdentity::default(), reuse(2, LONG_IDLE));
    assert_eq!(
        counts(&reused, "/?keep_kib=20480", 4).await,
        pairs(&[
            ("1", "fresh"),
            ("2", "reused"),
            ("1", "fresh"),
            ("2", "reused"),
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_never_share_an_instance() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let prepared = counter(&runtime).await;
    let first = prepared.start_replica(&ReplicaIdentity::default(), reuse(100, LONG_IDLE));
    let second = prepared.start_replica(&ReplicaIdentity::default(), reuse(100, LONG_IDLE));
    assert_eq!(
        counts(&first, "/", 2).await,
        pairs(&[("1", "fresh"), ("2", "reused")])
    );
    assert_eq!(
        counts(&second, "/", 1).await,
        pairs(&[("1", "fresh")]),
        "the second replica must not see the first one's instance"
    );
    assert_eq!(counts(&first, "/", 1).await, pairs(&[("3", "reused")]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_in_a_reused_instance_does_not_reach_the_next_request() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let replica = counter(&runtime)
        .await
        .start_replica(&ReplicaIdentity::default(), reuse(100, LONG_IDLE));
    assert_eq!(
        counts(&replica, "/", 2).await,
        pairs(&[("1", "fresh"), ("2", "reused")])
    );
    let trapped = call(&replica, "/?trap=1").await;
    assert_eq!(trapped.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        trapped.body.starts_with("guest trapped"),
        "{}",
        trapped.body
    );
    assert_eq!(trapped.instance, "reused");
    assert_eq!(
        counts(&replica, "/", 2).await,
        pairs(&[("1", "fresh"), ("2", "reused")]),
        "the trapped instance must be gone"
    );
}

/// An instance that keeps 1 MiB per request is retired once it holds three quarters of one
/// instance's memory cap, so no request ever fails for what earlier requests left behind, and
/// the replica never holds more than its limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limits_hold_with_reuse() {
    const LIMIT: u64 = 16 * MIB;
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let replica = counter(&runtime).await.start_replica(
        &ReplicaIdentity::default(),
        ReplicaLimits {
            memory: LIMIT,
            ..reuse(1000, LONG_IDLE)
        },
    );
    let mut fresh_starts = 0;
    let mut longest_life = 0;
    for _ in 0..40 {
        let answer = call(&replica, "/?keep_kib=1024").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let served: u32 = answer.body.trim().parse().unwrap();
        longest_life = longest_life.max(served);
        if answer.instance == "fresh" {
            fresh_starts += 1;
        }
        assert!(replica.memory_in_use() <= LIMIT);
    }
    assert!(
        fresh_starts >= 3,
        "40 MiB kept in 1 MiB steps under a 16 MiB limit needs several instances; saw {fresh_starts}"
    );
    assert!(longest_life > 1, "instances were not reused at all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_instances_go_after_their_timeout() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let replica = counter(&runtime).await.start_replica(
        &ReplicaIdentity::default(),
        reuse(100, Duration::from_millis(200)),
    );
    assert_eq!(counts(&replica, "/", 1).await, pairs(&[("1", "fresh")]));
    wait_until(|| replica.idle_instances() == 0).await;
    assert_eq!(replica.idle_instances(), 0, "the idle instance was kept");
    assert_eq!(
        settled(&replica).await,
        (0, 0),
        "its memory was not given back"
    );
    assert_eq!(runtime.instance_slots().in_use(), 0);
    assert_eq!(
        counts(&replica, "/", 1).await,
        pairs(&[("1", "fresh")]),
        "after the idle timeout a request gets a fresh instance"
    );
}

/// Scale to zero: when the replica goes, its idle instances go with it at once (memory and the
/// node's instance slots come back), however long their idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_down_drops_idle_instances() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let replica = counter(&runtime)
        .await
        .start_replica(&ReplicaIdentity::default(), reuse(100, LONG_IDLE));
    let calls: Vec<_> = (0..4).map(|_| call(&replica, "/")).collect();
    for answer in futures::future::join_all(calls).await {
        assert_eq!(answer.status, StatusCode::OK);
    }
    assert!(replica.idle_instances() >= 1);
    assert!(runtime.instance_slots().in_use() >= 1);
    drop(replica);
    wait_until(|| runtime.instance_slots().in_use() == 0).await;
    assert_eq!(runtime.instance_slots().in_use(), 0);
}
