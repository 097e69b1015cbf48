//! A second node joins `wisp up`: `wisp node` with the `node.kubeconfig` of the data
//! directory registers a tainted, Ready Node next to `local`, serves the same Services through
//! its own gateway, reports its replicas as Pods bound to it, answers `/healthz` on both ports,
//! and drains on SIGTERM.

mod cluster;
mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use cluster::{Up, WAIT, condition, image, ksvc};
use common::WispProcess;
use serde_json::Value;

/// `wisp node` joining as `name`, with a drain delay long enough for the Node's status
/// interval (1 s) to publish Ready=False first.
fn join(data_dir: &Path, name: &str) -> WispProcess {
    cluster::join(data_dir, name, &["--drain-delay", "3s"])
}

/// GET `path` from `gateway` with `Host: host_header` (none when `None`).
fn get(up: &Up, gateway: SocketAddr, host_header: Option<&str>, path: &str) -> (u16, String) {
    let mut request = up
        .http()
        .get(format!("http://{gateway}{path}"))
        .timeout(Duration::from_secs(60));
    if let Some(host) = host_header {
        request = request.header("host", host);
    }
    up.runtime().block_on(async move {
        let response = request.send().await.expect("gateway answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    })
}

/// Waits until `check` holds for the items of `kubectl get KIND -A -o json`.
fn wait_for_list(up: &Up, kind: &str, what: &str, check: impl Fn(&[Value]) -> bool) {
    let deadline = Instant::now() + WAIT;
    let mut last = Vec::new();
    while Instant::now() < deadline {
        last = up.list(kind, None);
        if check(&last) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "{kind} never {what}; last seen:\n{}\nwisp logs:\n{}",
        serde_json::to_string_pretty(&last).unwrap_or_default(),
        cluster::tail(&up.process.logs())
    );
}

fn node_named<'a>(nodes: &'a [Value], name: &str) -> Option<&'a Value> {
    nodes.iter().find(|node| node["metadata"]["name"] == name)
}

fn tainted_and_ready(node: &Value) -> bool {
    let tainted = node["spec"]["taints"].as_array().is_some_and(|taints| {
        taints
            .iter()
            .any(|t| t["key"] == "wisp.dev/wasm-only" && t["effect"] == "NoSchedule")
    });
    tainted
        && node["metadata"]["labels"]["wisp.dev/node"] == "true"
        && condition(node, "Ready") == Some("True")
}

#[test]
fn a_second_node_joins_and_serves_every_service() {
    let up = Up::start(&[]);
    let mut n2 = join(up.data_dir(), "n2");
    let n2_gateway = n2.addr("gateway");
    let n2_metrics = n2.addr("metrics");

    wait_for_list(
        &up,
        "nodes",
        "showed local and n2 Ready and tainted",
        |nodes| {
            ["local", "n2"]
                .iter()
                .all(|name| node_named(nodes, name).is_some_and(tainted_and_ready))
        },
    );
    let nodes = up.list("nodes", None);
    let n2_node = node_named(&nodes, "n2").expect("n2");
    assert_eq!(n2_node["status"]["addresses"][0]["address"], "127.0.0.1");
    assert_eq!(
        n2_node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"],
        u64::from(n2_gateway.port())
    );

    // The heartbeat Leases.
    let deadline = Instant::now() + WAIT;
    loop {
        let listed: Value = serde_json::from_str(&up.kubectl(&[
            "get",
            "lease",
            "-n",
            "kube-node-lease",
            "-o",
            "json",
        ]))
        .expect("JSON");
        let holders: Vec<&str> = listed["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|lease| lease["spec"]["holderIdentity"].as_str())
            .collect();
        if holders.contains(&"n2") && holders.contains(&"local") {
            break;
        }
        assert!(Instant::now() < deadline, "no node Leases: {listed}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Both nodes are healthy on both ports.
    for gateway in [up.gateway, n2_gateway] {
        assert_eq!(
            get(&up, gateway, Some("127.0.0.1"), "/healthz"),
            (200, "ok".into())
        );
    }
    assert_eq!(get(&up, n2_metrics, None, "/healthz"), (200, "ok".into()));

    up.apply(&ksvc("both", &image("hello")));
    up.wait_ready("ksvc", "both");
    for gateway in [up.gateway, n2_gateway] {
        let deadline = Instant::now() + WAIT;
        loop {
            let (status, body) = get(&up, gateway, Some(&up.host("both")), "/");
            if status == 200 {
                assert_eq!(body, "Hello from wisp!\n");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{gateway} never served the Service: {status} {body}\nnode logs:\n{}",
                cluster::tail(&n2.logs())
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // A route's own /healthz still reaches the Service.
    assert_eq!(
        get(&up, n2_gateway, Some(&up.host("both")), "/healthz").1,
        "Hello from wisp!\n"
    );

    wait_for_list(&up, "pods", "showed a replica on each node", |pods| {
        ["local", "n2"].iter().all(|node| {
            pods.iter().any(|pod| {
                pod["spec"]["nodeName"] == *node
                    && pod["metadata"]["name"]
                        .as_str()
                        .is_some_and(|name| name.starts_with(&format!("both-00001-{node}-")))
            })
        })
    });
    let wide = up.kubectl(&["get", "pods", "-o", "wide"]);
    for node in ["n2", "local"] {
        assert!(
            on_its_node(&wide, &format!("both-00001-{node}-1"), node),
            "the NODE column shows each replica's node:\n{wide}"
        );
    }

    // SIGTERM: not ready at once, then gone with exit 0.
    n2.terminate();
    let deadline = Instant::now() + WAIT;
    loop {
        let nodes = up.list("nodes", None);
        if node_named(&nodes, "n2").and_then(|node| condition(node, "Ready")) == Some("False") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "n2 never turned NotReady while draining"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let exit = n2.wait_exit();
    assert!(exit.success(), "{exit:?}\n{}", cluster::tail(&n2.logs()));
}

#[test]
fn a_bad_node_name_is_refused() {
    let (code, _, stderr) = common::run_to_end(&["node", "--name", "Not_A_Name"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--name"), "{stderr}");
}

#[test]
fn wisp_up_without_node_or_controllers_announces_only_the_api_and_nodes_join_it() {
    let dir = tempfile::tempdir().expect("data dir");
    let data_dir = dir.path().as_os_str();
    let args: Vec<&std::ffi::OsStr> = vec![
        "up".as_ref(),
        "--data-dir".as_ref(),
        data_dir,
        "--api-addr".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--no-node".as_ref(),
        "--no-controller".as_ref(),
    ];
    let api = WispProcess::start(&args, 2);
    assert!(
        api.value("api").starts_with("https://127.0.0.1:"),
        "{:?}",
        api.lines
    );
    let kubeconfig = api.value("kubeconfig").to_owned();
    assert!(
        !api.lines.iter().any(|line| line.starts_with("gateway:")),
        "{:?}",
        api.lines
    );

    let solo = join(dir.path(), "solo");
    let home = tempfile::tempdir().expect("kubectl home");
    let deadline = Instant::now() + WAIT;
    loop {
        let output = wisp_loadtests::kubectl_tool::command_or_fail()
            .args([
                "--kubeconfig",
                &kubeconfig,
                "get",
                "node",
                "solo",
                "-o",
                "json",
            ])
            .env("HOME", home.path())
            .env_remove("KUBECONFIG")
            .output()
            .expect("kubectl runs");
        let node: Option<Value> = serde_json::from_slice(&output.stdout).ok();
        if node.as_ref().is_some_and(tainted_and_ready) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node solo never Ready: {}\n{}\nnode logs:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            cluster::tail(&solo.logs())
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether `kubectl get pods -o wide` output has a row for `pod` whose NODE column is `node`.
fn on_its_node(wide: &str, pod: &str, node: &str) -> bool {
    let mut lines = wide.lines();
    let Some(header) = lines.next() else {
        return false;
    };
    let Some(column) = header.split_whitespace().position(|h| h == "NODE") else {
        return false;
    };
    lines.any(|line| {
        let cells: Vec<&str> = line.split_whitespace().collect();
        cells.first() == Some(&pod) && cells.get(column) == Some(&node)
    })
}
