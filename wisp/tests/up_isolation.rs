//! `wisp up` with hostile guests beside a well-behaved Service: 200 requests spinning in one
//! Service leave `kubectl get ksvc` answering and `hello` serving, and a guest that makes the
//! host hold 100 KiB header fields fails its own request with a message saying so, is counted as
//! a guest fault, and leaves wisp's memory bounded.

mod cluster;
mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cluster::{Up, image, ksvc};

/// Peak resident memory `wisp up` may reach here: the API server, the controllers, a node with
/// 200 spin instances (about 2 MiB each) and the flood guest's 256 MiB replica limit, with room.
const PEAK_RSS_BOUND: u64 = 1024 * 1024 * 1024;

const SPINNING: usize = 200;

fn with_min_scale(manifest: &str, min_scale: u32) -> String {
    manifest.replace(
        "  template:\n    spec:",
        &format!(
            "  template:\n    metadata:\n      annotations:\n        autoscaling.knative.dev/min-scale: \"{min_scale}\"\n    spec:"
        ),
    )
}

/// The sum of a metric's samples whose labels contain every one of `labels`.
fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn spinning_and_flooding_guests_leave_the_api_and_other_services_answering() {
    let up = Up::start(&[]);
    up.apply(&ksvc("hello", &image("hello")));
    // Four replicas from the start: room in their memory for 200 spinning instances.
    up.apply(&with_min_scale(&ksvc("spin", &image("spin")), 4));
    up.apply(&ksvc("flood", &image("flood")));
    for name in ["hello", "spin", "flood"] {
        up.wait_ready("ksvc", name);
    }

    // 200 requests to spin, each on its own connection, never answered.
    let gateway = up.gateway;
    let request = format!("GET / HTTP/1.1\r\nhost: {}\r\n\r\n", up.host("spin"));
    let spinning: Vec<TcpStream> = (0..SPINNING)
        .map(|_| {
            let mut stream = TcpStream::connect(gateway).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            stream
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let in_flight = metric_sum(
            &up.metrics(),
            "wisp_revision_requests_in_flight",
            &[r#"service="spin""#],
        );
        if in_flight >= SPINNING as f64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {in_flight} requests to spin in flight"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The control plane answers, and so does another Service.
    for _ in 0..10 {
        let printed = up.kubectl(&["get", "ksvc"]);
        for name in ["hello", "spin", "flood"] {
            assert!(printed.contains(name), "{printed}");
        }
    }
    for _ in 0..50 {
        let (status, body) = up.http_get(&up.host("hello"), "/");
        assert_eq!((status, body.as_str()), (200, "Hello from wisp!\n"));
    }

    // A guest holding 100 KiB header fields fails its own request, and says why.
    let (status, body) = up.http_get(&up.host("flood"), "/?what=headers");
    assert_eq!(status, 500, "{body}");
    assert!(
        body.starts_with("guest exceeded its memory limit with header fields"),
        "{body}"
    );
    let (status, body) = up.http_get(&up.host("hello"), "/");
    assert_eq!((status, body.as_str()), (200, "Hello from wisp!\n"));
    let metrics = up.metrics();
    assert_eq!(
        metric_sum(
            &metrics,
            "wisp_revision_request_failures_total",
            &[r#"service="flood""#, r#"reason="guest_fault""#],
        ),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        metric_sum(
            &metrics,
            "wisp_revision_request_failures_total",
            &[r#"service="hello""#],
        ),
        0.0
    );

    let peak = up.process.peak_rss();
    eprintln!("wisp up peak resident memory: {} MiB", peak >> 20);
    assert!(peak < PEAK_RSS_BOUND, "peak RSS {} MiB", peak >> 20);
    drop(spinning);
}
