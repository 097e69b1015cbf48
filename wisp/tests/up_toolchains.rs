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
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let body = response.bytes().await.expect("whole body").to_vec();
        Answer {
            status,
            content_type,
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
    up.wait_ready("ksvc", hello);
    up.wait_ready("ksvc", echo);

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
