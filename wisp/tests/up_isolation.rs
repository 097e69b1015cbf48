//! `wisp up` with hostile guests beside a well-behaved Service: 200 requests spinning in one
//! Service leave `kubectl get ksvc` answering and `hello` serving, and a guest that makes the
//! host hold 100 KiB header fields fails its own request with a message saying so, is counted as
//! a guest fault, and leaves wisp's memory bounded. A node out of instance slots sheds the
//! excess with 503 and `Retry-After`, counted as overload.

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

/// More requests than the node has instance slots (and room to wait for one): the excess is shed
/// with 503 and `Retry-After`, never a 500, and the gateway counts it as overload, not as a
/// guest fault. The ones admitted are all answered.
#[test]
fn a_node_out_of_instance_slots_sheds_with_503_counted_as_overload() {
    const REQUESTS: usize = 30;
    let up = Up::start(&["--max-instances", "1"]);
    up.apply(&ksvc("sleep", &image("sleep")));
    up.wait_ready("ksvc", "sleep");
    let url = format!("http://{}/?ms=300", up.gateway);
    let host = up.host("sleep");
    let answers = up.runtime().block_on(async {
        let requests = (0..REQUESTS).map(|_| {
            let request = up.http().get(&url).header("host", &host).send();
            async move {
                let response = request.await.expect("an answer");
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|value| value.to_str().unwrap_or_default().to_owned());
                (
                    status,
                    retry_after,
                    response.text().await.unwrap_or_default(),
                )
            }
        });
        futures::future::join_all(requests).await
    });
    let shed: Vec<_> = answers
        .iter()
        .filter(|(status, ..)| *status == 503)
        .collect();
    let served = answers.iter().filter(|(status, ..)| *status == 200).count();
    assert_eq!(served + shed.len(), REQUESTS, "{answers:#?}");
    assert!(served >= 1, "{answers:#?}");
    assert!(
        !shed.is_empty(),
        "one slot and its waiting room cannot take {REQUESTS}: {answers:#?}"
    );
    for (_, retry_after, body) in &shed {
        assert!(retry_after.is_some(), "{answers:#?}");
        assert!(body.contains("retry shortly"), "{body}");
    }
    let metrics = up.metrics();
    let counted = |reason: &str| {
        metric_sum(
            &metrics,
            "wisp_revision_request_failures_total",
            &[r#"service="sleep""#, &format!(r#"reason="{reason}""#)],
        )
    };
    assert_eq!(counted("overload"), shed.len() as f64, "{metrics}");
    assert_eq!(counted("guest_fault"), 0.0, "{metrics}");
}
