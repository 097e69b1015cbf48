//! A hostile revision that asks for two billion replicas of almost no memory, applied straight
//! to the data plane (as an object stored before admission refused such specs would be): the
//! node stops at its caps, says why in the revision's state, and other revisions still start
//! and serve while the process's memory stays bounded.

use http::StatusCode;
use wisp_api::quantity::MIN_REPLICA_MEMORY;
use wisp_gateway::dataplane::DataPlaneConfig;
use wisp_runtime::MIB;

use super::harness::{Options, Plane, annotated, host, revision};

/// The process's resident memory, from `/proc/self/status`.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// What this test lets the process grow by while two revisions demand billions of replicas:
/// 30 replicas' worth of bookkeeping, far below what even a thousandth of the demand would take.
const RSS_GROWTH_BOUND: u64 = 256 * MIB;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_demanding_billions_of_replicas_stops_at_the_caps_and_others_still_serve() {
    let mut data_plane = DataPlaneConfig::new(64 * 1024 * MIB);
    data_plane.max_replicas = 30;
    data_plane.max_replicas_per_revision = 20;
    let plane = Plane::start_with(Options {
        data_plane,
        max_instances: 50,
    })
    .await;
    let before = rss_bytes();

    // A one-byte memory limit (no component runs in it) and min-scale 2e9.
    let mut greedy = annotated(
        revision("greedy", wisp_samples::HELLO),
        &[("min-scale", "2000000000")],
    );
    greedy.memory_limit = Some(1);
    let greedy = plane.serve(greedy).await;
    // One autoscaler step applies min-scale.
    plane.advance(1);
    plane
        .wait_for(&greedy, "the revision's share of the node", |s| {
            s.ready_replicas == 20 && s.unschedulable.is_some()
        })
        .await;
    let state = plane.state(&greedy);
    assert_eq!(state.wanted_replicas, 2_000_000_000);
    assert_eq!(
        state.capped("local").as_deref(),
        Some(
            "node local runs 20 of the 2000000000 replicas the revision wants: the node runs at \
             most 20 replicas of one revision (--max-replicas-per-revision), so that other \
             revisions keep room; lower the revision's autoscaling.knative.dev/min-scale, raise \
             --max-replicas-per-revision, or add nodes"
        )
    );
    // Each of its replicas is charged the minimum, not one byte.
    let usage = plane.data_plane.node_usage();
    assert_eq!(usage.replicas, 20);
    assert_eq!(usage.used, 20 * MIN_REPLICA_MEMORY);

    // Its own requests fail (nothing instantiates in one byte) with a status and a reason.
    let own = plane.get(&host("greedy"), "/").await;
    assert_eq!(
        own.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        own.body
    );
    assert!(!own.body.is_empty());

    // Another revision still starts and serves.
    let polite = plane.serve(revision("polite", wisp_samples::HELLO)).await;
    let answer = plane.get(&host("polite"), "/").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, "Hello from wisp!\n");
    assert_eq!(plane.state(&polite).unschedulable, None);

    // A second greedy revision gets what is left of the node's cap, and says so.
    let mut second = annotated(
        revision("second", wisp_samples::HELLO),
        &[("min-scale", "2000000000")],
    );
    second.memory_limit = Some(2 * MIB);
    let second = plane.serve(second).await;
    plane.advance(1);
    plane
        .wait_for(&second, "the rest of the node", |s| {
            s.ready_replicas == 9 && s.unschedulable.is_some()
        })
        .await;
    assert_eq!(
        plane.state(&second).capped("local").as_deref(),
        Some(
            "node local runs 9 of the 2000000000 replicas the revision wants: the node runs at \
             most 30 replicas across all revisions (--max-replicas) and all are in use; raise \
             --max-replicas, lower the revision's autoscaling.knative.dev/min-scale, or add nodes"
        )
    );
    assert_eq!(plane.data_plane.node_usage().replicas, 30);
    // What fits serves: the second revision's replicas have memory enough to run.
    let served = plane.get(&host("second"), "/").await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.body);

    // Autoscaler steps keep asking for billions; the node stays at its caps.
    plane.advance(5);
    tokio::task::yield_now().await;
    assert_eq!(plane.data_plane.node_usage().replicas, 30);
    let answer = plane.get(&host("polite"), "/").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    let grown = rss_bytes().saturating_sub(before);
    eprintln!("resident memory grew by {} KiB", grown / 1024);
    assert!(
        grown < RSS_GROWTH_BOUND,
        "the process grew by {} MiB",
        grown / MIB
    );

    // When the greedy revision goes, its replicas go and the second gets more room.
    assert!(plane.data_plane.remove_revision(&greedy).await);
    plane
        .wait_for(&second, "its own share", |s| s.ready_replicas == 20)
        .await;
}
