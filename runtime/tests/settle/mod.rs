//! Waiting for a replica to give back what its requests held. A client has its whole answer
//! before the guest's task has dropped its instance (the response body ends first), so the
//! charges come back a moment after the last answer, not with it.

use std::time::{Duration, Instant};

use wisp_runtime::Replica;

/// Waits until no request is in flight and no memory is charged, or 30 s pass; returns the
/// memory still charged and the requests still in flight, for the caller to assert on.
pub async fn settled(replica: &Replica) -> (u64, usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = (replica.memory_in_use(), replica.in_flight());
        if now == (0, 0) || Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `done` holds, or 30 s pass; the caller asserts afterwards.
#[allow(
    dead_code,
    reason = "each test binary includes this module; not all of them wait so"
)]
pub async fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
