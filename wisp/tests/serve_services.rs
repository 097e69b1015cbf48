//! `wisp serve FILE.yaml` end to end: Knative Services from a YAML file served through the data
//! plane, reached by their Knative host names on one loopback port.

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use common::{WispProcess, client, run_to_end};

/// `hello` starts at zero replicas (so its first request is a cold start); `env` is loaded by a
/// path relative to the manifest, gets an environment variable and a tag.
fn manifest(hello: &str, env_relative: &str) -> String {
    format!(
        r#"# Two Services, as kubectl would take them.
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/initial-scale: "0"
    spec:
      containers:
        - image: {hello}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: env
  namespace: default
spec:
  template:
    spec:
      containerConcurrency: 5
      containers:
        - image: {env_relative}
          env:
            - name: GREETING
              value: from the manifest
          resources:
            limits:
              memory: 64Mi
  traffic:
    - latestRevision: true
      percent: 100
    - revisionName: env-00001
      tag: current
"#
    )
}

fn write_manifest(dir: &Path) -> PathBuf {
    let components = dir.join("components");
    std::fs::create_dir(&components).unwrap();
    std::fs::copy(wisp_samples::ENV, components.join("env.wasm")).unwrap();
    let path = dir.join("services.yaml");
    std::fs::write(&path, manifest(wisp_samples::HELLO, "components/env.wasm")).unwrap();
    path
}

/// `serve FILE` on ephemeral loopback ports with no disk cache, then `extra`.
fn serve_args(file: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["serve".into(), file.into()];
    for arg in [
        "--addr",
        "127.0.0.1:0",
        "--metrics-addr",
        "127.0.0.1:0",
        "--no-cache",
    ]
    .iter()
    .chain(extra)
    {
        args.push(arg.into());
    }
    args
}

async fn get(gateway: std::net::SocketAddr, host: &str) -> (u16, String) {
    let response = client()
        .get(format!("http://{gateway}/"))
        .header("host", host)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn serves_the_services_of_a_file_by_host() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_manifest(dir.path());
    // Two services: `gateway:`, `metrics:` and two `service` lines.
    let mut wisp = WispProcess::start(
        &serve_args(&file, &["--autoscaler", "allow-zero-initial-scale=true"]),
        4,
    );
    let gateway = wisp.addr("gateway");
    let metrics = wisp.addr("metrics");
    assert!(gateway.ip().is_loopback() && gateway.port() != 0);
    assert!(metrics.ip().is_loopback() && metrics.port() != 0);
    assert_ne!(gateway.port(), metrics.port());
    let port = gateway.port();
    assert_eq!(
        wisp.lines[2..],
        [
            format!("service default/hello: http://hello.default.localhost:{port}"),
            format!("service default/env: http://env.default.localhost:{port}"),
        ]
    );

    let (status, body) = get(gateway, "hello.default.localhost").await;
    assert_eq!(status, 200, "{body}\n{}", wisp.logs());
    assert_eq!(body, "Hello from wisp!\n");

    let (status, body) = get(gateway, &format!("env.default.localhost:{port}")).await;
    assert_eq!(status, 200, "{body}");
    let lines: Vec<&str> = body.lines().collect();
    for expected in [
        "GREETING=from the manifest",
        "K_SERVICE=env",
        "K_CONFIGURATION=env",
        "K_REVISION=env-00001",
    ] {
        assert!(
            lines.contains(&expected),
            "{expected} missing from:\n{body}"
        );
    }
    // The tag host reaches the same revision.
    let (status, body) = get(gateway, "current-env.default.localhost").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.lines().any(|line| line == "K_REVISION=env-00001"),
        "{body}"
    );

    let (status, body) = get(gateway, "nope.default.localhost").await;
    assert_eq!(status, 404);
    assert!(body.contains("nope.default.localhost"), "{body}");

    let text = client()
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let cold_starts: f64 = text
        .lines()
        .find(|line| {
            line.starts_with("wisp_revision_cold_starts_total{")
                && line.contains(r#"service="hello""#)
                && line.contains(r#"revision="hello-00001""#)
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no cold-start count for hello in:\n{text}"));
    assert!(cold_starts >= 1.0, "hello started at zero: {cold_starts}");

    wisp.terminate();
    let status = wisp.wait_exit();
    assert!(status.success(), "{status:?}\n{}", wisp.logs());
}

fn serve_expecting_failure(yaml: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, yaml).unwrap();
    run_to_end(&serve_args(&file, &[]))
}

fn good_service(name: &str) -> String {
    format!(
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n      containers:\n        - image: {}\n",
        wisp_samples::HELLO
    )
}

#[test]
fn a_bad_manifest_exits_2_naming_the_document() {
    let unknown_kind = format!(
        "{}---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n",
        good_service("hello")
    );
    let (code, stdout, stderr) = serve_expecting_failure(&unknown_kind);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "nothing may be served: {stdout}");
    assert!(stderr.contains("bad.yaml, document 2: "), "{stderr}");
    assert!(stderr.contains("Deployment"), "{stderr}");

    let missing_image = format!(
        "{}---\n{}",
        good_service("hello"),
        good_service("broken").replace(&format!("- image: {}", wisp_samples::HELLO), "- name: app")
    );
    let (code, stdout, stderr) = serve_expecting_failure(&missing_image);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "nothing may be served: {stdout}");
    assert!(
        stderr.contains("bad.yaml, document 2 (service default/broken): "),
        "{stderr}"
    );
    assert!(stderr.contains("image is empty"), "{stderr}");
}

#[test]
fn a_component_that_cannot_load_exits_2_naming_the_service() {
    let yaml = good_service("ghost").replace(wisp_samples::HELLO, "missing/ghost.wasm");
    let (code, stdout, stderr) = serve_expecting_failure(&yaml);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "nothing may be announced: {stdout}");
    assert!(
        stderr.contains("bad.yaml, document 1 (service default/ghost): "),
        "{stderr}"
    );
    assert!(stderr.contains("ghost.wasm"), "{stderr}");
}
