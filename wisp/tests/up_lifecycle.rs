//! `wisp up` over its life: scale to zero and back as kubectl and `/metrics` see it, replicas
//! as Pods on the Node, a restart after SIGKILL serving every Service again, deleting a
//! Service, live `config-domain` changes, `--manifests`, and SIGTERM draining in-flight requests.

mod cluster;
mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::{Up, WAIT, host, image, ksvc};
use serde_json::Value;

/// A Service that scales to zero after a 6 s window (the shortest Knative allows).
fn quick_to_zero(name: &str) -> String {
    ksvc(name, &image("hello")).replace(
        "  template:\n    spec:",
        "  template:\n    metadata:\n      annotations:\n        autoscaling.knative.dev/window: 6s\n    spec:",
    )
}

/// A `config-autoscaler` that removes the last replica 1 s after the decision (Knative: 30 s).
const FAST_AUTOSCALER: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-autoscaler\n  \
                               namespace: knative-serving\ndata:\n  scale-to-zero-grace-period: 1s\n";

fn replicas(revision: &Value) -> (i64, i64) {
    (
        revision["status"]["desiredReplicas"].as_i64().unwrap_or(-1),
        revision["status"]["actualReplicas"].as_i64().unwrap_or(-1),
    )
}

#[test]
fn scale_to_zero_and_back_shows_in_kubectl_metrics_and_pods() {
    let manifests = tempfile::tempdir().expect("manifests dir");
    std::fs::write(manifests.path().join("10-autoscaler.yaml"), FAST_AUTOSCALER).expect("write");
    std::fs::write(
        manifests.path().join("20-service.yaml"),
        quick_to_zero("zero"),
    )
    .expect("write");
    let manifests_arg = manifests.path().display().to_string();
    let up = Up::start(&["--manifests", &manifests_arg]);
    // The start-up lines come once the manifests' Services are Ready: no waiting here.
    let service = up.get("ksvc", "zero").expect("applied from --manifests");
    assert_eq!(
        cluster::condition(&service, "Ready"),
        Some("True"),
        "{service}"
    );
    assert_eq!(up.http_get(&host("zero"), "/").0, 200);

    // Watch the revision's replicas as a user would.
    let mut watch = up
        .kubectl_command(&[
            "get",
            "revisions",
            "-w",
            "-o",
            "jsonpath={.metadata.name} {.status.desiredReplicas} {.status.actualReplicas}{\"\\n\"}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w");
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let seen = seen.clone();
        let stdout = watch.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                seen.lock().expect("lines").push(line);
            }
        });
    }

    // Idle after creation: it goes to zero.
    up.wait_for("revision", "zero-00001", "scaled to zero", |r| {
        replicas(r) == (0, 0)
    });
    wait_for_pods(&up, "zero-00001", 0);

    // A request from zero is answered (a cold start) and brings a replica back.
    let (status, body) = up.http_get(&host("zero"), "/");
    assert_eq!((status, body.as_str()), (200, "Hello from wisp!\n"));
    // At once, while the replica's 6 s window lasts: the metrics see the cold start and the
    // replica (gauges are sampled every second).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = up.metrics();
        let sample = |family: &str| {
            metrics
                .lines()
                .find(|l| {
                    l.starts_with(&format!("wisp_{family}"))
                        && l.contains("revision=\"zero-00001\"")
                })
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        let cold_starts = sample("revision_cold_starts").unwrap_or(0.0);
        let actual = sample("autoscaler_actual_replicas");
        if cold_starts >= 1.0 && actual == Some(1.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cold starts {cold_starts}, actual replicas {actual:?}:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    up.wait_for("revision", "zero-00001", "scaled to one", |r| {
        replicas(r) == (1, 1)
    });
    let pods = wait_for_pods(&up, "zero-00001", 1);
    assert_eq!(pods[0]["status"]["phase"], "Running");
    assert_eq!(pods[0]["spec"]["nodeName"], "local");
    let printed = up.kubectl(&[
        "get",
        "pods",
        "-l",
        "serving.knative.dev/revision=zero-00001",
    ]);
    assert!(printed.contains("Running"), "{printed}");
    let node = up.get("node", "local").expect("the node is reported");
    assert!(node["status"]["capacity"]["memory"].is_string(), "{node}");
    assert!(
        node["status"]["allocatable"]["memory"].is_string(),
        "{node}"
    );

    // Idle again: back to zero, the pod goes.
    up.wait_for("revision", "zero-00001", "scaled back to zero", |r| {
        replicas(r) == (0, 0)
    });
    wait_for_pods(&up, "zero-00001", 0);

    let _ = watch.kill();
    let _ = watch.wait();
    let lines = seen.lock().expect("lines").clone();
    let at = |needle: &str| lines.iter().position(|l| l == needle);
    let up_at = at("zero-00001 1 1").unwrap_or_else(|| panic!("never saw 1 1: {lines:?}"));
    assert!(
        lines[up_at..].iter().any(|l| l == "zero-00001 0 0"),
        "kubectl -w saw the way up but not back to zero: {lines:?}"
    );
}

/// Waits until `revision` has `count` Pods; returns them.
fn wait_for_pods(up: &Up, revision: &str, count: usize) -> Vec<Value> {
    let selector = format!("serving.knative.dev/revision={revision}");
    let deadline = Instant::now() + WAIT;
    loop {
        let pods = up.list("pods", Some(&selector));
        if pods.len() == count {
            return pods;
        }
        assert!(
            Instant::now() < deadline,
            "{revision} has {} pods, not {count}",
            pods.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn restart_after_sigkill_serves_every_service_again() {
    let up = Up::start(&[]);
    let names = ["one", "two", "three"];
    for name in names {
        up.apply(&ksvc(name, &image("hello")));
    }
    for name in names {
        up.wait_ready("ksvc", name);
        assert_eq!(up.http_get(&host(name), "/").0, 200);
    }
    let dir = up.kill();
    let up = Up::start_in(dir, &[]);
    // Served from the moment the start-up lines are out: no waiting for Ready first.
    for name in names {
        let (status, body) = up.http_get(&host(name), "/");
        assert_eq!(
            (status, body.as_str()),
            (200, "Hello from wisp!\n"),
            "{name}"
        );
    }
    for name in names {
        up.wait_ready("ksvc", name);
        up.wait_ready("revision", &format!("{name}-00001"));
    }
    assert_eq!(
        up.list("revisions", None).len(),
        3,
        "a restart makes no new revisions"
    );
}

#[test]
fn deleting_a_service_removes_its_children_and_its_host() {
    let up = Up::start(&[]);
    let manifest = ksvc("gone", &image("hello")).replace(
        "  template:\n    spec:",
        "  template:\n    metadata:\n      annotations:\n        autoscaling.knative.dev/min-scale: \"1\"\n    spec:",
    );
    up.apply(&manifest);
    up.wait_ready("ksvc", "gone");
    assert_eq!(up.http_get(&host("gone"), "/").0, 200);
    up.wait_for("revision", "gone-00001", "has its replica", |r| {
        replicas(r).1 == 1
    });
    wait_for_pods(&up, "gone-00001", 1);

    up.kubectl(&["delete", "ksvc", "gone"]);
    up.wait_gone("configuration", "gone");
    up.wait_gone("route", "gone");
    up.wait_gone("revision", "gone-00001");
    let deadline = Instant::now() + WAIT;
    loop {
        let pods = up.list("pods", Some("serving.knative.dev/revision=gone-00001"));
        let (status, _) = up.http_get(&host("gone"), "/");
        if pods.is_empty() && status == 404 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {} pods, host answers {status}",
            pods.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn config_domain_changes_urls_and_hosts_live() {
    let up = Up::start(&[]);
    up.apply(&ksvc("dom", &image("hello")));
    up.wait_ready("ksvc", "dom");
    up.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-domain\n  namespace: \
         knative-serving\ndata:\n  example.com: \"\"\n",
    );
    up.wait_for("ksvc", "dom", "moved to example.com", |s| {
        s["status"]["url"] == "http://dom.default.example.com"
    });
    let deadline = Instant::now() + WAIT;
    while up.http_get("dom.default.example.com", "/").0 != 200 {
        assert!(
            Instant::now() < deadline,
            "the gateway never served the new domain"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        up.http_get(&host("dom"), "/").0,
        404,
        "the old host is gone"
    );
}

#[test]
fn sigterm_lets_in_flight_requests_finish() {
    let mut up = Up::start(&[]);
    up.apply(&ksvc("drain", &image("sleep")));
    up.wait_ready("ksvc", "drain");
    let http = up.http().clone();
    let url = format!("http://{}/?ms=1500", up.gateway);
    let in_flight = up.runtime().spawn(async move {
        let response = http
            .get(url)
            .header("host", "drain.default.localhost")
            .send()
            .await
            .expect("answered");
        (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        )
    });
    std::thread::sleep(Duration::from_millis(400));
    up.process.terminate();
    let (status, body) = up.runtime().block_on(in_flight).expect("request task");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("slept_ms"), "{body}");
    let exit = up.process.wait_exit();
    assert!(
        exit.success(),
        "{exit:?}\n{}",
        cluster::tail(&up.process.logs())
    );
}
