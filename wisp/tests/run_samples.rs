//! Each sample behaves as described, through real HTTP against `wisp run`.

mod common;

use common::{WispRun, client};
use futures::StreamExt;

#[tokio::test]
async fn hello_answers_over_http1_and_h2c() {
    let wisp = WispRun::start(wisp_samples::HELLO, &[]);
    let response = client().get(wisp.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    let timing = response.headers()["server-timing"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(timing.contains("instantiate;dur="), "{timing}");
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(response.text().await.unwrap(), "Hello from wisp!\n");

    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = h2.get(wisp.url("/")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.text().await.unwrap(), "Hello from wisp!\n");
}

#[tokio::test]
async fn hello_built_with_the_plain_wasi_crate_serves_too() {
    let wisp = WispRun::start(wisp_samples::HELLO_WASI, &[]);
    let response = client().get(wisp.url("/x")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "Hello from wisp!\n");
}

#[tokio::test]
async fn echo_returns_method_path_headers_and_body() {
    let wisp = WispRun::start(wisp_samples::ECHO, &[]);
    let response = client()
        .put(wisp.url("/some/path?q=1"))
        .header("x-custom", "value-1")
        .body("the body")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["echo-method"], "PUT");
    assert_eq!(headers["echo-path"], "/some/path?q=1");
    assert_eq!(headers["echo-header-x-custom"], "value-1");
    assert_eq!(response.text().await.unwrap(), "the body");
}

/// 100 MB go through the guest and back; the process never holds them whole.
#[tokio::test]
async fn echo_streams_a_100_mb_body_both_ways() {
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 1600; // 100 MiB + a bit: 1600 × 64 KiB = 104,857,600 bytes
    let wisp = WispRun::start(wisp_samples::ECHO, &["--max-body", "200Mi"]);
    let before = wisp.peak_rss();
    let upload = futures::stream::iter(0..CHUNKS)
        .map(|i| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![(i % 251) as u8; CHUNK])));
    let response = client()
        .post(wisp.url("/"))
        .body(reqwest::Body::wrap_stream(upload))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut received = 0usize;
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        for (offset, byte) in chunk.iter().enumerate() {
            let index = (received + offset) / CHUNK;
            assert_eq!(
                *byte,
                (index % 251) as u8,
                "byte {} differs",
                received + offset
            );
        }
        received += chunk.len();
    }
    assert_eq!(received, CHUNK * CHUNKS);
    let growth = wisp.peak_rss().saturating_sub(before);
    assert!(
        growth < 64 * 1024 * 1024,
        "peak RSS grew by {growth} bytes while echoing 100 MiB: the body was buffered"
    );
}

#[tokio::test]
async fn sleep_holds_the_request_for_the_asked_time() {
    let wisp = WispRun::start(wisp_samples::SLEEP, &[]);
    let response = client().get(wisp.url("/?ms=150")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["slept_ms"], 150);
    let (start, end) = (
        body["start_unix_ns"].as_u64().unwrap(),
        body["end_unix_ns"].as_u64().unwrap(),
    );
    assert!(
        end >= start + 150_000_000,
        "guest clock shows {start}..{end}"
    );
}

#[tokio::test]
async fn cpu_does_the_asked_work() {
    let wisp = WispRun::start(wisp_samples::CPU, &[]);
    let text = client()
        .get(wisp.url("/?n=1000"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.starts_with("n=1000 result="), "{text}");
    let bad = client().get(wisp.url("/?n=x")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_trap_is_a_500_with_a_short_reason_and_a_log_line() {
    let wisp = WispRun::start(wisp_samples::TRAP, &[]);
    let response = client().get(wisp.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 500);
    let text = response.text().await.unwrap();
    assert!(text.starts_with("guest trapped:"), "{text}");
    assert!(text.len() < 200, "reason should be short: {text}");
    // The guest's panic message reaches the log, tagged with its revision.
    assert!(wisp.wait_for_log("deliberate panic"), "{}", wisp.logs());
    assert!(wisp.logs().contains("revision=\"trap\""), "{}", wisp.logs());
}

#[tokio::test]
async fn a_guest_that_never_answers_gets_a_504_at_its_deadline() {
    let wisp = WispRun::start(wisp_samples::SPIN, &["--timeout", "500ms"]);
    let response = client().get(wisp.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 504);
    assert!(response.text().await.unwrap().contains("timeout"));
    // The server is still healthy afterwards.
    let again = client().get(wisp.url("/")).send().await.unwrap();
    assert_eq!(again.status(), 504);
}

#[tokio::test]
async fn memory_beyond_the_limit_fails_the_request_only() {
    let wisp = WispRun::start(wisp_samples::HOG, &["--memory", "64Mi"]);
    let within = client().get(wisp.url("/?mb=8")).send().await.unwrap();
    assert_eq!(within.status(), 200);
    assert_eq!(within.text().await.unwrap(), "allocated 8 MiB\n");
    let beyond = client().get(wisp.url("/")).send().await.unwrap();
    assert_eq!(beyond.status(), 500);
    assert!(wisp.wait_for_log("allocation failed"), "{}", wisp.logs());
    // The memory went back to the replica: the next request can use it again.
    let again = client().get(wisp.url("/?mb=32")).send().await.unwrap();
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn env_shows_the_given_and_the_knative_variables() {
    let wisp = WispRun::start(wisp_samples::ENV, &["--env", "GREETING=hi there"]);
    let text = client()
        .get(wisp.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let port = wisp.base.rsplit(':').next().unwrap();
    for expected in [
        "GREETING=hi there".to_owned(),
        "K_SERVICE=env".to_owned(),
        "K_CONFIGURATION=env".to_owned(),
        "K_REVISION=env".to_owned(),
        format!("PORT={port}"),
    ] {
        assert!(
            text.lines().any(|line| line == expected),
            "{expected} missing in:\n{text}"
        );
    }
}

#[tokio::test]
async fn a_stack_overflow_is_a_500() {
    let wisp = WispRun::start(wisp_samples::TRAP, &[]);
    let response = client()
        .get(wisp.url("/?kind=overflow"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.text().await.unwrap(),
        "guest trapped: stack overflow\n"
    );
}

#[tokio::test]
async fn outgoing_http_is_denied_with_a_clear_error_to_the_guest() {
    let wisp = WispRun::start(wisp_samples::FETCH, &[]);
    let response = client()
        .get(wisp.url("/?url=http://127.0.0.1:9/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let text = response.text().await.unwrap();
    assert!(text.contains("HttpRequestDenied"), "{text}");
    assert!(
        wisp.wait_for_log("denied an outgoing HTTP request"),
        "{}",
        wisp.logs()
    );
}
