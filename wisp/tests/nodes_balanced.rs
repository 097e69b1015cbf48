//! Three nodes behind a real load balancer: `wisp up` (node `local`) and two `wisp node`s that
//! join it, with haproxy in front checking each gateway's `/healthz`. A Service applied with
//! kubectl answers through the balancer from every node; `min-scale` is shared out over the
//! nodes; every node scales it to zero and back;
//! a new revision rolls out across the three under steady load without a failed request; a
//! node killed with SIGKILL under load costs at most the requests it had in flight, turns
//! `Ready=Unknown` and loses its Pods while the others serve on, and rejoins when restarted.

mod cluster;
mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::{Up, WAIT, condition, image, join, ksvc};
use common::WispProcess;
use serde_json::Value;
use wisp_loadtests::balancer::Balancer;

/// Requests in flight at once in the steady loads.
const CONCURRENCY: usize = 4;

/// Node leases short enough that a killed node lapses within a test (kubelet default: 40 s).
const LEASE: &[&str] = &["--node-lease-duration", "3s"];

/// A `config-autoscaler` that removes the last replica 1 s after the decision (Knative: 30 s).
const FAST_AUTOSCALER: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-autoscaler\n  \
                               namespace: knative-serving\ndata:\n  scale-to-zero-grace-period: 1s\n";

/// The `env` sample (it prints `K_REVISION`) with a 6 s window and `GENERATION=value`.
fn env_service(name: &str, generation: &str) -> String {
    ksvc(name, &image("env")).replace(
        "  template:\n    spec:",
        "  template:\n    metadata:\n      annotations:\n        autoscaling.knative.dev/window: 6s\n    spec:",
    ) + &format!("        env:\n        - name: GENERATION\n          value: \"{generation}\"\n")
}

/// A cluster of three nodes and the balancer in front of their gateways.
struct Nodes {
    up: Up,
    joined: BTreeMap<&'static str, WispProcess>,
    balancer: Balancer,
}

impl Nodes {
    fn start() -> Self {
        let up = Up::start(LEASE);
        up.apply(FAST_AUTOSCALER);
        let joined: BTreeMap<&'static str, WispProcess> = ["n2", "n3"]
            .into_iter()
            .map(|name| (name, join(up.data_dir(), name, LEASE)))
            .collect();
        let mut backends = vec![("local", up.gateway)];
        backends.extend(
            joined
                .iter()
                .map(|(name, node)| (*name, node.addr("gateway"))),
        );
        let balancer = Balancer::start(&backends).expect("haproxy in front of the nodes");
        let nodes = Self {
            up,
            joined,
            balancer,
        };
        nodes.wait_nodes("local, n2 and n3 are Ready", |nodes| {
            ["local", "n2", "n3"]
                .iter()
                .all(|name| ready(nodes, name) == Some("True"))
        });
        nodes
    }

    /// Waits until `check` holds for `kubectl get nodes`.
    fn wait_nodes(&self, what: &str, check: impl Fn(&[Value]) -> bool) {
        self.wait_list("nodes", None, what, check);
    }

    fn wait_list(
        &self,
        kind: &str,
        selector: Option<&str>,
        what: &str,
        check: impl Fn(&[Value]) -> bool,
    ) {
        let deadline = Instant::now() + WAIT;
        let mut last = Vec::new();
        while Instant::now() < deadline {
            last = self.up.list(kind, selector);
            if check(&last) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "never: {what}; last {kind}:\n{}\nwisp up logs:\n{}",
            serde_json::to_string_pretty(&last).unwrap_or_default(),
            cluster::tail(&self.up.process.logs())
        );
    }

    /// GET `/` of Service `name` through the balancer.
    fn get(&self, name: &str) -> (u16, String) {
        let request = self
            .up
            .http()
            .get(format!("http://{}/", self.balancer.addr))
            .header("host", self.up.host(name))
            .timeout(Duration::from_secs(60));
        self.up.runtime().block_on(async move {
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    (status, response.text().await.unwrap_or_default())
                }
                Err(error) => (0, error.to_string()),
            }
        })
    }

    /// The nodes the Pods of `revision` are bound to.
    fn pod_nodes(&self, revision: &str) -> Vec<String> {
        let selector = format!("serving.knative.dev/revision={revision}");
        let mut nodes: Vec<String> = self
            .up
            .list("pods", Some(&selector))
            .iter()
            .filter_map(|pod| pod["spec"]["nodeName"].as_str().map(str::to_owned))
            .collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// Sends requests through the balancer until every node has a replica of `revision`.
    fn warm_every_node(&self, name: &str, revision: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            for _ in 0..6 {
                let (status, body) = self.get(name);
                assert_eq!(status, 200, "{body}");
            }
            if self.pod_nodes(revision) == ["local", "n2", "n3"] {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{revision} never had a replica on every node: {:?}",
                self.pod_nodes(revision)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn ready<'a>(nodes: &'a [Value], name: &str) -> Option<&'a str> {
    nodes
        .iter()
        .find(|node| node["metadata"]["name"] == name)
        .and_then(|node| condition(node, "Ready"))
}

/// A steady closed-loop load through the balancer: `CONCURRENCY` requests in flight.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    /// The `K_REVISION` line of each answer, counted.
    revisions: Arc<Mutex<BTreeMap<String, u64>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(nodes: &Nodes, name: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let revisions = Arc::new(Mutex::new(BTreeMap::new()));
        let url = format!("http://{}/", nodes.balancer.addr);
        let tasks = (0..CONCURRENCY)
            .map(|_| {
                let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
                let (failures, revisions) = (failures.clone(), revisions.clone());
                let request = nodes
                    .up
                    .http()
                    .get(&url)
                    .header("host", nodes.up.host(name))
                    .timeout(Duration::from_secs(30));
                nodes.up.runtime().spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let Some(request) = request.try_clone() else {
                            return;
                        };
                        let answer = match request.send().await {
                            Ok(response) => {
                                let status = response.status().as_u16();
                                (status, response.text().await.unwrap_or_default())
                            }
                            Err(error) => (0, error.to_string()),
                        };
                        match answer {
                            (200, body) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                let revision = body
                                    .lines()
                                    .find(|line| line.starts_with("K_REVISION="))
                                    .unwrap_or("")
                                    .to_owned();
                                *revisions
                                    .lock()
                                    .expect("counts")
                                    .entry(revision)
                                    .or_default() += 1;
                            }
                            (status, body) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                failures
                                    .lock()
                                    .expect("failures")
                                    .push(format!("{status}: {}", body.trim()));
                            }
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            ok,
            failed,
            failures,
            revisions,
            tasks,
        }
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Stops the load; returns (succeeded, failed, the failures, answers per revision).
    fn stop(self, nodes: &Nodes) -> (u64, u64, Vec<String>, BTreeMap<String, u64>) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = nodes.up.runtime().block_on(task);
        }
        let (ok, failed) = (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        );
        let failures = self.failures.lock().expect("failures").clone();
        let revisions = self.revisions.lock().expect("counts").clone();
        (ok, failed, failures, revisions)
    }
}

/// Keeps the load going until at least `count` more requests succeeded.
fn serve_more(load: &Load, count: u64) {
    let target = load.counts().0 + count;
    let deadline = Instant::now() + WAIT;
    while load.counts().0 < target {
        assert!(
            Instant::now() < deadline,
            "the load stalled at {:?}",
            load.counts()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn three_nodes_serve_scale_to_zero_and_roll_out_behind_a_balancer() {
    let nodes = Nodes::start();
    let wide = nodes.up.kubectl(&["get", "nodes"]);
    assert_eq!(wide.matches(" Ready ").count(), 3, "{wide}");

    nodes.up.apply(&env_service("split", "1"));
    nodes.up.wait_ready("ksvc", "split");
    nodes.warm_every_node("split", "split-00001");
    let pods = nodes.up.kubectl(&["get", "pods", "-o", "wide"]);
    let header: Vec<&str> = pods
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let node_column = header
        .iter()
        .position(|h| *h == "NODE")
        .expect("a NODE column");
    for node in ["local", "n2", "n3"] {
        let pod = format!("split-00001-{node}-1");
        assert!(
            pods.lines().any(|line| {
                let cells: Vec<&str> = line.split_whitespace().collect();
                cells.first() == Some(&pod.as_str()) && cells.get(node_column) == Some(&node)
            }),
            "{pod} on {node} in:\n{pods}"
        );
    }
    // The Revision's counts are the sums over the nodes.
    nodes
        .up
        .wait_for("revision", "split-00001", "counting three replicas", |r| {
            r["status"]["actualReplicas"].as_i64() == Some(3)
        });

    // min-scale is the revision's, not each node's: 2 over three nodes is one replica on each
    // of the first two by name, and it stays so with no traffic at all (the third node's
    // initial replica goes after the 6 s window).
    nodes.up.apply(&ksvc("floor", &image("hello")).replace(
        "  template:\n    spec:",
        "  template:\n    metadata:\n      annotations:\n        autoscaling.knative.dev/min-scale: \"2\"\n        \
         autoscaling.knative.dev/window: 6s\n    spec:",
    ));
    nodes.up.wait_ready("ksvc", "floor");
    nodes.up.wait_for(
        "revision",
        "floor-00001",
        "holding two replicas in all",
        |r| {
            r["status"]["actualReplicas"].as_i64() == Some(2)
                && r["status"]["desiredReplicas"].as_i64() == Some(2)
        },
    );
    nodes.wait_list(
        "pods",
        Some("serving.knative.dev/revision=floor-00001"),
        "floor-00001 on local and n2",
        |pods| {
            let mut on: Vec<&str> = pods
                .iter()
                .filter_map(|pod| pod["spec"]["nodeName"].as_str())
                .collect();
            on.sort_unstable();
            on == ["local", "n2"]
        },
    );

    // Idle: every node scales it to zero; then the balancer's requests bring it back on each.
    nodes
        .up
        .wait_for("revision", "split-00001", "at zero", |r| {
            r["status"]["actualReplicas"].as_i64() == Some(0)
        });
    nodes.wait_list(
        "pods",
        Some("serving.knative.dev/revision=split-00001"),
        "no Pods of split-00001",
        <[Value]>::is_empty,
    );
    nodes.warm_every_node("split", "split-00001");

    // A new revision under steady load: not one request fails, and the new one takes over.
    let load = Load::start(&nodes, "split");
    serve_more(&load, 50);
    nodes.up.apply(&env_service("split", "2"));
    nodes
        .up
        .wait_for("ksvc", "split", "serving split-00002", |s| {
            s["status"]["latestReadyRevisionName"] == "split-00002"
                && s["status"]["traffic"][0]["revisionName"] == "split-00002"
                && condition(s, "Ready") == Some("True")
        });
    serve_more(&load, 200);
    let (ok, failed, failures, revisions) = load.stop(&nodes);
    eprintln!(
        "rollout across three nodes: {ok} succeeded, {failed} failed, by revision {revisions:?}"
    );
    assert_eq!(failed, 0, "failed during the rollout: {failures:?}");
    assert!(
        revisions
            .get("K_REVISION=split-00002")
            .copied()
            .unwrap_or(0)
            > 0,
        "{revisions:?}"
    );
    // Once the route is Ready on every node, nobody serves the old revision any more.
    let answers: Vec<String> = (0..9).map(|_| nodes.get("split").1).collect();
    for body in answers {
        assert!(body.contains("K_REVISION=split-00002"), "{body}");
    }
}

#[test]
fn a_killed_node_costs_only_its_requests_in_flight_and_rejoins() {
    let mut nodes = Nodes::start();
    nodes.up.apply(&env_service("steady", "1"));
    nodes.up.wait_ready("ksvc", "steady");
    nodes.warm_every_node("steady", "steady-00001");

    let load = Load::start(&nodes, "steady");
    serve_more(&load, 50);
    let mut n3 = nodes.joined.remove("n3").expect("n3");
    n3.kill();
    // The Node lapses, its Pods go, and the sums drop — while the survivors serve.
    nodes.wait_nodes("n3 is Unknown", |list| ready(list, "n3") == Some("Unknown"));
    nodes.wait_list(
        "pods",
        Some("serving.knative.dev/revision=steady-00001"),
        "n3's Pods are gone",
        |pods| pods.iter().all(|pod| pod["spec"]["nodeName"] != "n3"),
    );
    nodes
        .up
        .wait_for("revision", "steady-00001", "counting the survivors", |r| {
            r["status"]["actualReplicas"]
                .as_i64()
                .is_some_and(|n| n <= 2)
        });
    let (_, failed_after_kill) = load.counts();
    serve_more(&load, 200);
    let (ok, failed, failures, _) = load.stop(&nodes);
    eprintln!(
        "SIGKILL of one node of three under load: {ok} succeeded, {failed} failed ({failures:?})"
    );
    assert!(
        failed <= CONCURRENCY as u64,
        "more failed ({failed}) than were in flight ({CONCURRENCY}): {failures:?}"
    );
    assert_eq!(
        failed, failed_after_kill,
        "requests failed after the node was marked gone"
    );

    // It restarts under its name and rejoins: Ready again, serving again.
    let n3 = join(nodes.up.data_dir(), "n3", LEASE);
    nodes.wait_nodes("n3 is Ready again", |list| {
        ready(list, "n3") == Some("True")
    });
    // A new port: the balancer is told about it, as a cloud SLB learns a node's new endpoint.
    nodes.joined.insert("n3", n3);
    let mut backends = vec![("local", nodes.up.gateway)];
    backends.extend(
        nodes
            .joined
            .iter()
            .map(|(name, node)| (*name, node.addr("gateway"))),
    );
    nodes.balancer = Balancer::start(&backends).expect("haproxy in front of the nodes");
    nodes.warm_every_node("steady", "steady-00001");
}
