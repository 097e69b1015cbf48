//! `wisp serve` offered ten times a revision's capacity: every request is answered (queued in
//! the activator, not refused or dropped) and the process's memory stays bounded.

mod common;

use std::sync::Arc;

use common::{WispProcess, client};

const MIB: u64 = 1024 * 1024;

/// `slow`: the sleep sample, one request per replica at a time, at most two replicas: a
/// capacity of 2 requests at once.
fn manifest() -> String {
    format!(
        r#"apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: slow
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/max-scale: "2"
    spec:
      containerConcurrency: 1
      containers:
        - image: {}
"#,
        wisp_samples::SLEEP
    )
}

async fn get(http: &reqwest::Client, gateway: std::net::SocketAddr) -> u16 {
    let response = http
        .get(format!("http://{gateway}/?ms=20"))
        .header("host", "slow.default.localhost")
        .send()
        .await
        .expect("response");
    response.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_times_capacity_is_queued_answered_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slow.yaml");
    std::fs::write(&file, manifest()).unwrap();
    let wisp = WispProcess::start(
        &[
            "serve".as_ref(),
            file.as_os_str(),
            "--addr".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--metrics-addr".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--no-cache".as_ref(),
        ],
        3,
    );
    let gateway = wisp.addr("gateway");
    let http = Arc::new(client());
    for _ in 0..4 {
        assert_eq!(get(&http, gateway).await, 200, "{}", wisp.logs());
    }
    let before = wisp.peak_rss();

    // 20 clients against a capacity of 2, each sending its next request as soon as the last
    // is answered: 18 wait in the activator at any moment.
    let mut clients = Vec::new();
    for _ in 0..20 {
        let http = http.clone();
        clients.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..12 {
                statuses.push(get(&http, gateway).await);
            }
            statuses
        }));
    }
    let mut answered = 0;
    for client in clients {
        for status in client.await.expect("client") {
            assert_eq!(status, 200);
            answered += 1;
        }
    }
    assert_eq!(answered, 240);
    let after = wisp.peak_rss();
    assert!(
        after.saturating_sub(before) < 64 * MIB,
        "peak RSS grew from {} MiB to {} MiB under 10x capacity",
        before / MIB,
        after / MIB
    );
}
