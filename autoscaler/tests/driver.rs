//! The real-time driver on paused tokio time: it steps the loop every second by itself, and
//! subscribers hear about decisions without polling.

use std::sync::Arc;
use std::time::Duration;

use wisp_autoscaler::driver;
use wisp_autoscaler::{Autoscaler, AutoscalerConfig, Clock, RevisionKey, RevisionSpec, Timestamp};

/// Reads tokio's (pausable) clock, so the driver's interval and the autoscaler agree on time.
struct TokioClock {
    start: tokio::time::Instant,
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.start.elapsed().as_millis() as u64)
    }
}

#[tokio::test(start_paused = true)]
async fn driver_takes_an_idle_revision_to_zero_and_notifies_subscribers() {
    let clock = Arc::new(TokioClock {
        start: tokio::time::Instant::now(),
    });
    let autoscaler = Arc::new(Autoscaler::new(AutoscalerConfig::default(), clock));
    let handle = autoscaler
        .register(
            RevisionKey::new("default", "idle"),
            RevisionSpec::default(),
            0,
        )
        .unwrap();
    handle.set_ready(1);
    let mut view = handle.subscribe();
    let loop_task = tokio::spawn(driver::run(autoscaler.clone()));

    // The revision becomes Active once its replica is ready…
    view.changed().await.unwrap();
    // …and, idle, reaches zero after the stable window (the activator is already in the path).
    let zero = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            if view.borrow_and_update().replicas == 0 {
                break;
            }
            view.changed().await.unwrap();
        }
    })
    .await;
    assert!(zero.is_ok(), "still {:?}", handle.view());
    loop_task.abort();
}
