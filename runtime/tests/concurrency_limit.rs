//! A replica's concurrency limit: requests beyond it wait (up to ten per slot, like Knative's
//! queue-proxy) until their deadline; more than that are refused at once with 503.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use wisp_runtime::{ArtifactSource, ReplicaIdentity, ReplicaLimits, Runtime, RuntimeConfig};

fn get() -> Request<Full<Bytes>> {
    Request::get("/")
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..2000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_is_bounded_and_ends_at_the_deadline() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let prepared = runtime
        .prepare(&ArtifactSource::parse(wisp_samples::SPIN))
        .await
        .unwrap();
    let replica = prepared.start_replica(
        &ReplicaIdentity::default(),
        ReplicaLimits {
            concurrency: Some(1),
            timeout: Duration::from_secs(2),
            ..ReplicaLimits::default()
        },
    );

    let first = tokio::spawn({
        let replica = replica.clone();
        async move { replica.handle(get(), "first".into()).await.status() }
    });
    wait_until("the first request runs", || replica.in_flight() == 1).await;

    let queued: Vec<_> = (0..10)
        .map(|i| {
            let replica = replica.clone();
            tokio::spawn(
                async move { replica.handle(get(), format!("q{i}").into()).await.status() },
            )
        })
        .collect();
    wait_until("ten requests wait", || replica.waiting() == 10).await;

    let refused = replica.handle(get(), "refused".into()).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");

    assert_eq!(first.await.unwrap(), 504);
    for status in futures::future::join_all(queued).await {
        assert_eq!(status.unwrap(), 504);
    }
    assert_eq!(replica.waiting(), 0);
    assert_eq!(replica.in_flight(), 0);
}
