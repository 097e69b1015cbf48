//! Guests from every toolchain, served through `wisp up` as a user would run them: each
//! toolchain's `hello` and `echo` applied with kubectl as Knative Services (the echo with an
//! environment variable in its container spec), then driven with real HTTP through the gateway.
//!
//! One contract for every language (see `wisp_samples`): `hello` answers 200 `text/plain`
//! `Hello from wisp!\n`; `echo` answers `?env=NAME` with that variable's value (404
//! `NAME is not set\n` when unset) and echoes any other request's body byte for byte.
//! The WASIp3 pair (spin-sdk 7, `wasi:http/handler@0.3.0`) is held to the same contract as the
//! WASIp2 ones: nothing tells wisp which world a component is, it finds out.

mod cluster;
mod common;

use cluster::{Up, image};

/// Set in every echo Service's container spec; non-ASCII so the value's bytes are checked too.
/// How long a revision of these guests may take to become Ready: a 14-18 MB Python or
/// JavaScript component is compiled first, seconds on an idle machine and over a minute when
/// the whole suite shares two cores (the compile cache is empty on a clean clone).
const GUEST_COMPILE_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

const GREETING: &str = "héllo from the environment — ✓";

/// A Knative Service running the sample `sample`, with `GREETING` in its environment.
fn service(name: &str, sample: &str) -> String {
    format!(
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: {name}\n\
         spec:\n  template:\n    spec:\n      containers:\n      - image: {}\n        env:\n\
         \x20       - name: GREETING\n          value: \"{GREETING}\"\n",
        image(sample)
    )
}

/// One answer through the gateway: status, `content-type`, body bytes.
struct Answer {
    status: u16,
    content_type: String,
    server_timing: String,
    body: Vec<u8>,
}

fn send(up: &Up, method: &str, service: &str, path: &str, body: Vec<u8>) -> Answer {
    let url = format!("http://{}{path}", up.gateway);
    let request = up
        .http()
        .request(method.parse().expect("method"), url)
        .header("host", up.host(service))
        .body(body)
        .timeout(std::time::Duration::from_secs(120));
    up.runtime().block_on(async move {
        let response = request.send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default()
        };
        let (content_type, server_timing) = (header("content-type"), header("server-timing"));
        let body = response.bytes().await.expect("whole body").to_vec();
        Answer {
            status,
            content_type,
            server_timing,
            body,
        }
    })
}

/// `len` bytes covering every byte value, in no repeating pattern (xorshift), so that a guest that
/// decodes the body as text, drops or reorders chunks, or stops early cannot echo it.
fn binary_body(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if i < 256 { i as u8 } else { state as u8 }
        })
        .collect()
}

/// Applies `hello` and `echo` from one toolchain and checks the whole contract on both.
fn serves_the_contract(hello: &str, echo: &str) {
    let up = Up::start(&[]);
    up.apply(&service(hello, hello));
    up.apply(&service(echo, echo));
    up.wait_ready_within(GUEST_COMPILE_WAIT, "ksvc", hello);
    up.wait_ready_within(GUEST_COMPILE_WAIT, "ksvc", echo);

    for method in ["GET", "POST"] {
        let answer = send(&up, method, hello, "/any/path?x=1", b"ignored".to_vec());
        assert_eq!(
            (answer.status, answer.content_type.as_str()),
            (200, "text/plain"),
            "{hello} {method}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(answer.body, b"Hello from wisp!\n", "{hello} {method}");
    }

    let set = send(&up, "GET", echo, "/?env=GREETING", Vec::new());
    assert_eq!(
        (set.status, set.content_type.as_str()),
        (200, "text/plain"),
        "{echo}"
    );
    assert_eq!(
        String::from_utf8_lossy(&set.body),
        GREETING,
        "{echo}: ?env=GREETING"
    );

    let unset = send(&up, "GET", echo, "/?env=WISP_NO_SUCH_VARIABLE", Vec::new());
    assert_eq!(
        (unset.status, unset.content_type.as_str()),
        (404, "text/plain"),
        "{echo}"
    );
    assert_eq!(
        String::from_utf8_lossy(&unset.body),
        "WISP_NO_SUCH_VARIABLE is not set\n",
        "{echo}: ?env= of an unset variable"
    );

    let bodies: [(&str, Vec<u8>); 4] = [
        ("empty", Vec::new()),
        (
            "non-ASCII text",
            "ünïcödé, 中文, emoji 🦀 — and a NUL \0 byte\n".into(),
        ),
        ("300 KiB of every byte value", binary_body(300 * 1024)),
        ("1 MiB less one byte", binary_body((1 << 20) - 1)),
    ];
    for (what, body) in bodies {
        let answer = send(&up, "POST", echo, "/echo?other=1", body.clone());
        assert_eq!(
            (answer.status, answer.content_type.as_str()),
            (200, "text/plain"),
            "{echo}: {what}"
        );
        assert!(
            answer.body == body,
            "{echo}: {what}: echoed {} bytes, sent {}",
            answer.body.len(),
            body.len()
        );
    }
}

#[test]
fn rust_wstd_guests_serve_the_contract() {
    serves_the_contract("hello", "wstd-echo");
}

#[test]
fn rust_wasi_crate_guests_serve_the_contract() {
    serves_the_contract("hello-wasi", "wasi-echo");
}

#[test]
fn python_componentize_py_guests_serve_the_contract() {
    serves_the_contract("py-hello", "py-echo");
}

#[test]
fn javascript_componentize_js_guests_serve_the_contract() {
    serves_the_contract("js-hello", "js-echo");
}

#[test]
fn rust_spin_sdk_wasip3_guests_serve_the_contract() {
    serves_the_contract("p3-hello", "p3-echo");
}

/// A guest's answers on instances that serve many requests in turn
/// (`wisp.dev/max-instance-reuse-count`): the same contract, request after request, and at least
/// one request must have found its instance reused (`Server-Timing: instance;desc=reused`), or
/// the check proved nothing. componentize-js guests built on the `fetch` event cannot be reused
/// (StarlingMonkey throws "FetchEvent#respondWith can't be called twice on the same event" on an
/// instance's second request, and wisp answers 500 and drops the instance), so JavaScript is here
/// as `js-hello-handler`, which exports `wasi:http/incoming-handler` itself.
#[test]
fn reused_instances_keep_the_contract_request_after_request() {
    let hellos = [
        "hello",
        "hello-wasi",
        "py-hello",
        "js-hello-handler",
        "p3-hello",
    ];
    let echoes = ["wstd-echo", "wasi-echo", "py-echo", "p3-echo"];
    let up = Up::start(&[]);
    for name in hellos.iter().chain(&echoes) {
        let manifest = service(name, name).replace(
            "  template:\n    spec:",
            "  template:\n    metadata:\n      annotations:\n        \
             wisp.dev/max-instance-reuse-count: \"8\"\n        \
             wisp.dev/idle-instance-timeout: \"120s\"\n    spec:",
        );
        up.apply(&manifest);
    }
    for name in hellos.iter().chain(&echoes) {
        up.wait_ready_within(GUEST_COMPILE_WAIT, "ksvc", name);
    }
    for name in hellos.iter().chain(&echoes) {
        let mut reused = 0;
        for i in 0..6 {
            let (answer, expected, what) = if hellos.contains(name) {
                let answer = send(&up, "GET", name, "/", Vec::new());
                (answer, b"Hello from wisp!\n".to_vec(), "hello".to_string())
            } else if i % 2 == 0 {
                let answer = send(&up, "GET", name, "/?env=GREETING", Vec::new());
                (
                    answer,
                    GREETING.as_bytes().to_vec(),
                    "?env=GREETING".to_string(),
                )
            } else {
                let body = format!("request {i} — ü\n").into_bytes();
                let answer = send(&up, "POST", name, "/", body.clone());
                (answer, body, format!("echo of request {i}"))
            };
            assert_eq!(
                (answer.status, answer.content_type.as_str()),
                (200, "text/plain"),
                "{name}, request {i} ({what}): {}\n{}",
                String::from_utf8_lossy(&answer.body),
                up.logs()
            );
            assert_eq!(answer.body, expected, "{name}, request {i} ({what})");
            if answer.server_timing.contains("instance;desc=reused") {
                reused += 1;
            }
        }
        assert!(reused > 0, "{name}: no request found its instance reused");
    }
}

/// Every hello/echo pair of `wisp_samples` is one of the cases above, so a toolchain added to the
/// samples without a case here fails.
#[test]
fn every_toolchain_has_a_case() {
    let mut covered = [
        "hello",
        "wstd-echo",
        "hello-wasi",
        "wasi-echo",
        "py-hello",
        "py-echo",
        "js-hello",
        "js-echo",
        "p3-hello",
        "p3-echo",
        "js-hello-handler",
    ];
    let mut toolchain_guests: Vec<&str> = wisp_samples::ALL
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| name.contains("hello") || name.ends_with("-echo"))
        .collect();
    toolchain_guests.sort_unstable();
    covered.sort_unstable();
    assert_eq!(toolchain_guests, covered);
}
