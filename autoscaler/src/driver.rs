//! The real-time driver: calls [`Autoscaler::step`] once a second on the tokio runtime.

use std::sync::Arc;

use tokio::time::MissedTickBehavior;

use crate::multiscaler::{Autoscaler, COLLECT_INTERVAL};

/// Runs the loop until the task is dropped or aborted. A pass over 10,000 revisions takes
/// milliseconds of plain arithmetic, so it runs inline rather than on a blocking thread.
pub async fn run(autoscaler: Arc<Autoscaler>) {
    let mut interval = tokio::time::interval(COLLECT_INTERVAL);
    // After a stall, catch up with one pass rather than a burst: windows are keyed by time anyway.
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        let now = autoscaler.clock().now();
        autoscaler.step(now);
    }
}
