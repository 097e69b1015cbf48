//! `--memory-reset auto`, the default: the page faults of 32 fresh instances of a component
//! decide how its pool slots are reset. The componentize-py hello writes all over CPython's heap
//! and moves to the whole-prefix reset; the Rust counter stays with the dirty-page one; every
//! answer is right before, during and after the move, each from a fresh instance.

mod answers;
mod settle;

use answers::call;
use http::StatusCode;
use settle::{settled, wait_until};
use wisp_runtime::{
    ArtifactSource, MemoryReset, Replica, ReplicaIdentity, ReplicaLimits, ResetState, Runtime,
    RuntimeConfig,
};

/// More than the fresh instances counted before the choice (32).
const ENOUGH_TO_DECIDE: usize = 40;

async fn serve(replica: &Replica, requests: usize, expected_body: &str) {
    for _ in 0..requests {
        let answer = call(replica, "/").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.body, expected_body);
        assert_eq!(answer.instance, "fresh");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_guest_moves_to_the_whole_prefix_reset() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let prepared = runtime
        .prepare(&ArtifactSource::parse(wisp_samples::PY_HELLO))
        .await
        .unwrap();
    assert_eq!(prepared.memory_reset(), ResetState::Counting);
    // No component has moved: the whole-prefix engine does not exist yet.
    assert_eq!(runtime.whole_prefix_warm_slots(), 0);
    let replica = prepared.start_replica(&ReplicaIdentity::default(), ReplicaLimits::default());
    serve(&replica, ENOUGH_TO_DECIDE, "Hello from wisp!\n").await;
    wait_until(|| prepared.memory_reset() == ResetState::WholePrefix).await;
    assert_eq!(prepared.memory_reset(), ResetState::WholePrefix);
    // Instances now start in the other engine, in replicas old and new: its pool keeps their
    // slots warm.
    serve(&replica, 5, "Hello from wisp!\n").await;
    // The last instance gives its slot back a moment after its answer.
    wait_until(|| runtime.whole_prefix_warm_slots() > 0).await;
    assert!(runtime.whole_prefix_warm_slots() > 0);
    let another = prepared.start_replica(&ReplicaIdentity::default(), ReplicaLimits::default());
    serve(&another, 5, "Hello from wisp!\n").await;
    // A revision prepared later with the same component shares the choice: nothing to count.
    let again = runtime
        .prepare(&ArtifactSource::parse(wisp_samples::PY_HELLO))
        .await
        .unwrap();
    assert_eq!(again.memory_reset(), ResetState::WholePrefix);
    // Instances of both engines gave their memory back.
    assert_eq!(settled(&replica).await, (0, 0));
    assert_eq!(settled(&another).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_guest_keeps_the_dirty_page_reset() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let prepared = runtime
        .prepare(&ArtifactSource::parse(wisp_samples::COUNTER))
        .await
        .unwrap();
    let replica = prepared.start_replica(&ReplicaIdentity::default(), ReplicaLimits::default());
    serve(&replica, ENOUGH_TO_DECIDE, "1\n").await;
    wait_until(|| prepared.memory_reset() != ResetState::Counting).await;
    assert_eq!(prepared.memory_reset(), ResetState::DirtyPages);
    assert_eq!(runtime.whole_prefix_warm_slots(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_setting_other_than_auto_is_kept_as_it_is() {
    for (setting, expected) in [
        (MemoryReset::DirtyPages, ResetState::DirtyPages),
        (MemoryReset::WholePrefix, ResetState::WholePrefix),
    ] {
        let runtime = Runtime::new(RuntimeConfig {
            memory_reset: setting,
            ..RuntimeConfig::default()
        })
        .unwrap();
        let prepared = runtime
            .prepare(&ArtifactSource::parse(wisp_samples::COUNTER))
            .await
            .unwrap();
        assert_eq!(prepared.memory_reset(), expected);
        let replica = prepared.start_replica(&ReplicaIdentity::default(), ReplicaLimits::default());
        serve(&replica, ENOUGH_TO_DECIDE, "1\n").await;
        assert_eq!(prepared.memory_reset(), expected, "{setting:?}");
    }
}
