//! Revisions over their life, shared by `wisp up` and the genuine API server: scale to zero
//! and back, and deletion through the garbage collector.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::{Kube, WAIT, image, ksvc};

/// A Service that scales to zero after a 6 s window (the shortest Knative allows).
pub fn quick_to_zero(name: &str) -> String {
    ksvc(name, &image("hello")).replace(
        "  template:\n    spec:",
        "  template:\n    metadata:\n      annotations:\n        autoscaling.knative.dev/window: 6s\n    spec:",
    )
}

/// A `config-autoscaler` that removes the last replica 1 s after the decision (Knative: 30 s).
pub const FAST_AUTOSCALER: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-autoscaler\n  \
                                   namespace: knative-serving\ndata:\n  scale-to-zero-grace-period: 1s\n";

pub fn replicas(revision: &Value) -> (i64, i64) {
    (
        revision["status"]["desiredReplicas"].as_i64().unwrap_or(-1),
        revision["status"]["actualReplicas"].as_i64().unwrap_or(-1),
    )
}

/// Scale to zero and back as kubectl, the Pods and every node's `/metrics` see it: an idle
/// revision goes to zero, a request from zero is answered (a counted cold start) and, with light
/// load after it, brings a replica back on each node the load reaches, as Running Pods bound to
/// wisp Nodes; idle again it goes back to zero.
/// Needs `config-autoscaler` with `scale-to-zero-grace-period: 1s` (see [`FAST_AUTOSCALER`]).
pub fn scale_to_zero_and_back(up: &Kube) {
    up.apply(&quick_to_zero("zero"));
    up.wait_ready("ksvc", "zero");
    assert_eq!(up.http_get(&up.host("zero"), "/").0, 200);

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
    wait_for_pods(up, "zero-00001", 0);

    // A request from zero is answered (a cold start) and brings a replica back.
    let (status, body) = up.http_get(&up.host("zero"), "/");
    assert_eq!((status, body.as_str()), (200, "Hello from wisp!\n"));
    // Light load from here on holds the replicas while their state is checked, so no check
    // races the 6 s window on a slow machine; the load stops before the way back to zero. Each
    // node the load reaches runs a replica of its own: one on `wisp up`, one or two behind the
    // balancer of two nodes.
    let load = KeepBusy::start(up, "zero");
    let nodes = up.node_names().len() as i64;
    let woken = |actual: i64| (1..=nodes).contains(&actual);
    let deadline = Instant::now() + WAIT;
    loop {
        // Summed over the nodes: the balancer sent the request to one of them.
        let every_node = up.all_metrics();
        let sample = |family: &str| -> f64 {
            every_node
                .iter()
                .filter_map(|metrics| {
                    metrics
                        .lines()
                        .find(|l| {
                            l.starts_with(&format!("wisp_{family}"))
                                && l.contains("revision=\"zero-00001\"")
                        })
                        .and_then(|l| l.rsplit(' ').next())
                        .and_then(|v| v.parse::<f64>().ok())
                })
                .sum()
        };
        let cold_starts = sample("revision_cold_starts");
        let actual = sample("autoscaler_actual_replicas");
        if cold_starts >= 1.0 && woken(actual as i64) && actual.fract() == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cold starts {cold_starts}, actual replicas {actual}:\n{}",
            every_node.join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Settled: the revision's replicas, desired and ready, are its Pods, all Running.
    let deadline = Instant::now() + WAIT;
    let (count, pods) = loop {
        let revision = up.get("revision", "zero-00001").expect("the revision");
        let (desired, actual) = replicas(&revision);
        let pods = up.list("pods", Some("serving.knative.dev/revision=zero-00001"));
        let running = pods.iter().all(|pod| pod["status"]["phase"] == "Running");
        if desired == actual && woken(actual) && pods.len() as i64 == actual && running {
            break (actual, pods);
        }
        assert!(
            Instant::now() < deadline,
            "replicas {desired}/{actual} with {} pods ({pods:?})",
            pods.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for pod in &pods {
        assert_eq!(pod["status"]["phase"], "Running", "{pod}");
        let node_name = pod["spec"]["nodeName"].as_str().unwrap_or("");
        assert!(
            up.node_names().iter().any(|node| node == node_name),
            "bound to a wisp node: {pod}"
        );
    }
    let node_name = pods[0]["spec"]["nodeName"].as_str().unwrap_or("");
    let printed = up.kubectl(&[
        "get",
        "pods",
        "-l",
        "serving.knative.dev/revision=zero-00001",
    ]);
    assert!(printed.contains("Running"), "{printed}");
    let node = up.get("node", node_name).expect("the node is reported");
    assert!(node["status"]["capacity"]["memory"].is_string(), "{node}");
    assert!(
        node["status"]["allocatable"]["memory"].is_string(),
        "{node}"
    );

    // Idle again: back to zero, the pod goes.
    load.stop();
    up.wait_for("revision", "zero-00001", "scaled back to zero", |r| {
        replicas(r) == (0, 0)
    });
    wait_for_pods(up, "zero-00001", 0);

    let _ = watch.kill();
    let _ = watch.wait();
    let lines = seen.lock().expect("lines").clone();
    // In order: at zero, up to one (the cold start), back to zero. The watch's first line is the
    // revision as it was when the watch began (one replica after creation), so "1 1" alone
    // could be that line rather than the way up.
    let after = |from: usize, needle: &str| {
        lines[from..]
            .iter()
            .position(|l| l == needle)
            .map(|i| from + i + 1)
            .unwrap_or_else(|| {
                panic!("kubectl -w never saw {needle:?} after line {from}: {lines:?}")
            })
    };
    let zero = after(0, "zero-00001 0 0");
    let up_again = after(zero, &format!("zero-00001 {count} {count}"));
    after(up_again, "zero-00001 0 0");
}

/// A request to a Service every 100 ms, every one answered 200, until stopped.
struct KeepBusy {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<String>>,
    runtime: tokio::runtime::Handle,
}

impl KeepBusy {
    fn start(up: &Kube, service: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let http = up.http().clone();
        let url = format!("http://{}/", up.gateway);
        let host = up.host(service);
        let task = up.runtime().spawn({
            let stop = stop.clone();
            async move {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match http.get(&url).header("host", &host).send().await {
                        Ok(response) if response.status() == 200 => {}
                        Ok(response) => failures.push(response.status().to_string()),
                        Err(error) => failures.push(error.to_string()),
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                failures
            }
        });
        Self {
            stop,
            task,
            runtime: up.runtime().handle().clone(),
        }
    }

    /// Stops the load; every request it sent must have been answered 200.
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let failures = self.runtime.block_on(self.task).expect("load task");
        assert!(
            failures.is_empty(),
            "requests under load failed: {failures:?}"
        );
    }
}

/// Waits until `revision` has `count` Pods; returns them.
pub fn wait_for_pods(up: &Kube, revision: &str, count: usize) -> Vec<Value> {
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

/// Waits until `revision` has at least one Pod; returns them.
pub fn wait_for_some_pods(up: &Kube, revision: &str) -> Vec<Value> {
    let selector = format!("serving.knative.dev/revision={revision}");
    let deadline = Instant::now() + WAIT;
    loop {
        let pods = up.list("pods", Some(&selector));
        if !pods.is_empty() {
            return pods;
        }
        assert!(Instant::now() < deadline, "{revision} never had a Pod");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Deleting a Service removes its Configuration, Route, Revisions and Pods (through the
/// API server's garbage collector) and its host answers 404.
pub fn deleting_a_service_removes_its_children_and_its_host(up: &Kube) {
    let manifest = ksvc("gone", &image("hello")).replace(
        "  template:\n    spec:",
        "  template:\n    metadata:\n      annotations:\n        autoscaling.knative.dev/min-scale: \"1\"\n    spec:",
    );
    up.apply(&manifest);
    up.wait_ready("ksvc", "gone");
    assert_eq!(up.http_get(&up.host("gone"), "/").0, 200);
    // At least one replica: `min-scale` is the revision's (one in all), but each node starts
    // its share of `initial-scale` (one) before the autoscaler settles.
    let revision = up.wait_for("revision", "gone-00001", "has its replica", |r| {
        replicas(r).1 >= 1
    });
    let pods = wait_for_some_pods(up, "gone-00001");
    assert!(
        pods.len() as i64 <= replicas(&revision).1.max(2),
        "{pods:?}"
    );

    up.kubectl(&["delete", "ksvc", "gone"]);
    up.wait_gone("configuration", "gone");
    up.wait_gone("route", "gone");
    up.wait_gone("revision", "gone-00001");
    let deadline = Instant::now() + WAIT;
    loop {
        let pods = up.list("pods", Some("serving.knative.dev/revision=gone-00001"));
        let (status, _) = up.http_get(&up.host("gone"), "/");
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

/// A replica's Pod deleted by a user waits `Terminating` for its node, as for a kubelet; the
/// node confirms (grace period 0) and, its replica still running, makes the Pod again.
pub fn a_deleted_replica_pod_is_confirmed_by_its_node_and_made_again(up: &Kube) {
    let manifest = ksvc("kept", &image("hello")).replace(
        "  template:\n    spec:",
        "  template:\n    metadata:\n      annotations:\n        autoscaling.knative.dev/min-scale: \"1\"\n    spec:",
    );
    up.apply(&manifest);
    up.wait_ready("ksvc", "kept");
    let pods = wait_for_some_pods(up, "kept-00001");
    let name = pods[0]["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let uid = pods[0]["metadata"]["uid"].as_str().unwrap_or("").to_owned();
    up.kubectl(&["delete", "pod", &name, "--wait=false"]);
    // A Pod is made, then its status written (a genuine API server sets a new Pod's phase to
    // Pending whatever it is given), so the new Pod may be seen Pending first.
    up.wait_for("pod", &name, "was made again and runs", |pod| {
        pod["metadata"]["uid"].as_str() != Some(uid.as_str())
            && pod["metadata"].get("deletionTimestamp").is_none()
            && pod["status"]["phase"] == "Running"
    });
    assert_eq!(up.http_get(&up.host("kept"), "/").0, 200);
}
