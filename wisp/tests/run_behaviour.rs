//! `wisp run` as a process: refusing bad components, the compile cache across starts, limits,
//! and graceful shutdown.

mod common;

use common::{WispRun, client, run_expecting_failure};

#[test]
fn a_file_that_is_not_wasm_is_refused_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.wasm");
    std::fs::write(&path, "these are not the bytes you are looking for").unwrap();
    let (code, stderr) = run_expecting_failure(&path);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("is not a WebAssembly file"), "{stderr}");
    assert!(
        stderr.contains("wasm32-wasip2"),
        "the error says what to do: {stderr}"
    );
    assert_eq!(
        stderr
            .trim()
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1
    );
}

#[test]
fn a_core_module_is_refused_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("module.wasm");
    std::fs::write(
        &path,
        wat::parse_str("(module (func (export \"f\")))").unwrap(),
    )
    .unwrap();
    let (code, stderr) = run_expecting_failure(&path);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("is a core WebAssembly module, not a component"),
        "{stderr}"
    );
    assert!(stderr.contains("wasm-tools component new"), "{stderr}");
}

#[test]
fn a_component_without_the_http_handler_is_refused_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.wasm");
    std::fs::write(&path, wat::parse_str("(component)").unwrap()).unwrap();
    let (code, stderr) = run_expecting_failure(&path);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("does not export wasi:http/incoming-handler"),
        "{stderr}"
    );
    assert!(stderr.contains("wasi:http/proxy"), "{stderr}");
}

#[test]
fn a_missing_file_is_refused_with_exit_code_2() {
    let (code, stderr) = run_expecting_failure(std::path::Path::new("/nonexistent/app.wasm"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot read component file /nonexistent/app.wasm"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_second_start_loads_the_precompiled_component_and_a_truncated_one_is_rebuilt() {
    let cache = tempfile::tempdir().unwrap();
    let hello = wisp_samples::HELLO;

    let first = WispRun::start_with_cache(hello, cache.path(), &[]);
    assert!(
        first.wait_for_log("compiled the component"),
        "{}",
        first.logs()
    );
    drop(first);

    let second = WispRun::start_with_cache(hello, cache.path(), &[]);
    second.wait_for_log("serving");
    let logs = second.logs();
    assert!(
        logs.contains("loaded the precompiled component from the compile cache"),
        "{logs}"
    );
    assert!(
        !logs.contains("compiled the component"),
        "no compile on the second start: {logs}"
    );
    assert_eq!(
        client().get(second.url("/")).send().await.unwrap().status(),
        200
    );
    drop(second);

    let image = find_image(cache.path());
    let length = std::fs::metadata(&image).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap();
    file.set_len(length / 2).unwrap();
    drop(file);

    let third = WispRun::start_with_cache(hello, cache.path(), &[]);
    third.wait_for_log("serving");
    let logs = third.logs();
    assert!(
        logs.contains("discarded an unusable entry of the compile cache"),
        "{logs}"
    );
    assert!(logs.contains("compiled the component"), "{logs}");
    assert_eq!(
        client().get(third.url("/")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        std::fs::metadata(&image).unwrap().len(),
        length,
        "the entry was rebuilt"
    );
}

fn find_image(dir: &std::path::Path) -> std::path::PathBuf {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            for inner in std::fs::read_dir(&path).unwrap() {
                let inner = inner.unwrap().path();
                if inner.extension().is_some_and(|e| e == "cwasm") {
                    return inner;
                }
            }
        }
    }
    panic!("no precompiled image under {}", dir.display());
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let wisp = WispRun::start(wisp_samples::ECHO, &["--max-body", "1Ki"]);
    let declared = client()
        .post(wisp.url("/"))
        .body(vec![b'x'; 2048])
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), 413);
    assert!(declared.text().await.unwrap().contains("1024 byte limit"));

    // Without a declared length the limit trips while the guest streams: the client must not
    // receive the whole body back.
    let chunks = futures::stream::iter(
        (0..4).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'y'; 1024]))),
    );
    let streamed = client()
        .post(wisp.url("/"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    match streamed {
        Ok(response) if response.status() == 413 => {}
        Ok(response) => {
            let body = response.bytes().await;
            assert!(
                body.as_ref().map_or(true, |body| body.len() < 4096),
                "the whole over-limit body came back"
            );
        }
        Err(_) => {}
    }
    // Within the limit still works.
    let small = client()
        .post(wisp.url("/"))
        .body("ok")
        .send()
        .await
        .unwrap();
    assert_eq!(small.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn concurrency_1_serves_one_request_at_a_time() {
    let wisp = WispRun::start(wisp_samples::SLEEP, &["--concurrency", "1"]);
    let requests = (0..4).map(|_| {
        let url = wisp.url("/?ms=100");
        async move {
            let body: serde_json::Value = client()
                .get(url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (
                body["start_unix_ns"].as_u64().unwrap(),
                body["end_unix_ns"].as_u64().unwrap(),
            )
        }
    });
    let mut intervals = futures::future::join_all(requests).await;
    intervals.sort();
    for pair in intervals.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "requests overlapped: {pair:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_in_flight_requests_finish_then_exits_0() {
    let mut wisp = WispRun::start(wisp_samples::SLEEP, &[]);
    let url = wisp.url("/?ms=1500");
    let in_flight = tokio::spawn(async move { client().get(url).send().await });
    // The request must be inside the guest before the signal.
    assert!(wisp.wait_for_log("instance started"), "{}", wisp.logs());
    wisp.terminate();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("\"slept_ms\":1500"));
    let status = tokio::task::spawn_blocking(move || wisp.wait_exit())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// 1000 pool slots reserve terabytes of address space; under a 16 GiB `ulimit -v` that fails,
/// and wisp must still serve, on the on-demand allocator, saying so once.
#[tokio::test]
async fn without_address_space_for_the_pool_wisp_falls_back_to_on_demand_allocation() {
    let wisp = WispRun::start_with_address_space_limit(wisp_samples::HELLO, 16 * 1024 * 1024);
    let response = client().get(wisp.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(wisp.wait_for_log("allocator=OnDemand"), "{}", wisp.logs());
    let logs = wisp.logs();
    assert_eq!(
        logs.matches("falling back to on-demand allocation").count(),
        1,
        "{logs}"
    );
}

/// `wisp run` takes `wasmtime serve`'s reuse flags: with `--max-instance-reuse-count 2` an
/// instance serves two requests in turn (the `counter` sample answers how many its instance
/// served), and `Server-Timing` says which instance each request got. The idle timeout is long
/// so that a pause on a loaded machine cannot retire the instance between two requests.
#[tokio::test]
async fn reuse_flags_are_wasmtime_serves() {
    let wisp = WispRun::start(
        wisp_samples::COUNTER,
        &[
            "--max-instance-reuse-count",
            "2",
            "--idle-instance-timeout",
            "120s",
        ],
    );
    let mut seen = Vec::new();
    for _ in 0..4 {
        let response = client().get(wisp.url("/")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let timing = response.headers()["server-timing"]
            .to_str()
            .unwrap()
            .to_owned();
        let instance = if timing.contains("instance;desc=reused") {
            "reused"
        } else {
            assert!(timing.contains("instance;desc=fresh"), "{timing}");
            "fresh"
        };
        seen.push((response.text().await.unwrap(), instance));
    }
    assert_eq!(
        seen,
        vec![
            ("1\n".to_owned(), "fresh"),
            ("2\n".to_owned(), "reused"),
            ("1\n".to_owned(), "fresh"),
            ("2\n".to_owned(), "reused"),
        ]
    );
}

#[test]
fn a_bad_reuse_flag_is_refused_naming_the_fix() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args([
            "run",
            wisp_samples::COUNTER,
            "--idle-instance-timeout",
            "5m",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--idle-instance-timeout")
            && stderr.contains("expected a duration such as 1s, 500ms or 2 (seconds)"),
        "{stderr}"
    );
}
