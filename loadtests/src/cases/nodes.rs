//! Beyond one machine, measured: `wisp up` alone and with two `wisp node`s joined, each behind
//! haproxy (the balancer the multi-node tests use): scale-from-zero latency and warm throughput
//! through the balancer with 1 and 3 nodes, the API requests an idle node costs the API server
//! (read off its `apiserver_request_total`), and the requests that fail when a node is killed
//! with SIGKILL under load. On one machine the nodes share its cores: the 3-node figures are not
//! a scaling claim, only what the extra hop and the extra processes cost.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::balancer::Balancer;
use crate::closed_loop::{ClosedLoop, RunResult};
use crate::manifests::ServiceManifest;
use crate::one_shot::{self, Outcome};
use crate::report::{self, micros};
use crate::runner::scrape;
use crate::scaling_metrics::scaling_state;
use crate::target::Target;
use crate::wisp_up::{announced_addr, announcement};

use super::cluster::Cluster;
use super::{service_host, wisp_binary};

/// How long the API server's request counter is watched while everything is idle.
const IDLE: Duration = Duration::from_secs(10);

/// A `wisp node` process joined to a cluster; killed when dropped.
struct WispNode {
    child: Child,
    gateway: SocketAddr,
    metrics: SocketAddr,
}

impl WispNode {
    fn join(wisp: &Path, data_dir: &Path, name: &str, cache: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(wisp)
            .arg("node")
            .arg("--kubeconfig")
            .arg(data_dir.join("node.kubeconfig"))
            .args(["--name", name, "--gateway-addr", "127.0.0.1:0"])
            .args([
                "--metrics-addr",
                "127.0.0.1:0",
                "--allocatable-memory",
                "4096Gi",
            ])
            .args(["--max-instances", "2000", "--node-lease-duration", "4s"])
            .arg("--cache-dir")
            .arg(cache)
            .arg("--allow-path")
            .arg(wisp_samples::dir())
            .env("WISP_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {} node", wisp.display()))?;
        let what = format!("wisp node {name}");
        let lines = announcement(&mut child, "metrics", &what)?;
        Ok(Self {
            gateway: announced_addr(&lines, "gateway", &what)?,
            metrics: announced_addr(&lines, "metrics", &what)?,
            child,
        })
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for WispNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What one cluster size measured.
struct Measured {
    nodes: usize,
    cold: Outcome,
    /// Cold starts the nodes counted for those requests (proof each was one).
    cold_starts: u64,
    warm: RunResult,
    idle_api_per_second: f64,
    /// Under load while a node was killed (3 nodes only).
    killed: Option<RunResult>,
}

/// The case: `services` Services at zero hit once each through the balancer, then a closed loop
/// of `connections` for `seconds` on one of them, for 1 and 3 nodes.
pub fn run(services: usize, connections: usize, seconds: u64) -> anyhow::Result<String> {
    crate::balancer::binary()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let single = measure(&runtime, 1, services, connections, seconds)?;
    let three = measure(&runtime, 3, services, connections, seconds)?;
    Ok(render(&[single, three], services, connections, seconds))
}

fn measure(
    runtime: &tokio::runtime::Runtime,
    nodes: usize,
    services: usize,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<Measured> {
    let wisp = wisp_binary()?;
    let manifests: Vec<ServiceManifest> = (0..services)
        .map(|i| {
            ServiceManifest::new(format!("hello-{i:04}"), wisp_samples::HELLO)
                .autoscaling("initial-scale", "0")
        })
        .collect();
    let cluster = runtime.block_on(Cluster::start(
        &wisp,
        &[
            "--allocatable-memory",
            "4096Gi",
            "--max-instances",
            "2000",
            "--node-lease-duration",
            "4s",
        ],
    ))?;
    let data_dir = cluster
        .wisp
        .endpoints
        .kubeconfig
        .parent()
        .context("the kubeconfig has no directory")?
        .to_path_buf();
    let mut joined = Vec::new();
    for index in 2..=nodes {
        let name = format!("n{index}");
        let cache = data_dir.join(format!("{name}-cache"));
        joined.push(WispNode::join(&wisp, &data_dir, &name, &cache)?);
    }
    let mut backends = vec![(
        "local".to_owned(),
        cluster.gateway(),
        cluster.wisp.endpoints.metrics,
    )];
    for (index, node) in joined.iter().enumerate() {
        backends.push((format!("n{}", index + 2), node.gateway, node.metrics));
    }
    let named: Vec<(&str, SocketAddr)> = backends
        .iter()
        .map(|(name, gateway, _)| (name.as_str(), *gateway))
        .collect();
    let balancer = Balancer::start(&named)?;
    runtime.block_on(async {
        cluster.wait_nodes_ready(nodes).await?;
        cluster
            .configure_autoscaler(&[("allow-zero-initial-scale", "true")])
            .await?;
        cluster.create(&manifests, 32).await?;
        cluster.wait_ready(manifests.len()).await
    })?;
    // Give the balancer's checks time to see every node healthy.
    std::thread::sleep(Duration::from_secs(1));

    let idle_before = runtime.block_on(cluster.api_requests())?;
    std::thread::sleep(IDLE);
    let idle_after = runtime.block_on(cluster.api_requests())?;
    let idle_api_per_second = (idle_after - idle_before) / IDLE.as_secs_f64();

    let hosts: Vec<String> = manifests.iter().map(|m| service_host(&m.name)).collect();
    let selected: BTreeSet<(String, String)> = manifests
        .iter()
        .map(|m| ("default".to_owned(), m.name.clone()))
        .collect();
    let cold_starts_now = || -> u64 {
        backends
            .iter()
            .filter_map(|(_, _, metrics)| runtime.block_on(scrape(*metrics)))
            .map(|text| scaling_state(&text, &selected).cold_starts)
            .sum()
    };
    let cold_before = cold_starts_now();
    let cold = runtime.block_on(one_shot::sequence(balancer.addr, &hosts, "/"));
    let cold_starts = cold_starts_now() - cold_before;

    let mut target = Target::parse(&format!("http://{}/", balancer.addr))?;
    target.host = service_host(&manifests[0].name);
    let load = ClosedLoop {
        target,
        connections,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(seconds),
    };
    let warm = runtime.block_on(load.run());
    let killed = joined.last_mut().map(|victim| {
        runtime.block_on(async {
            let running = load.run();
            let kill = async {
                // Into the measured part of the run.
                tokio::time::sleep(Duration::from_secs(1) + Duration::from_secs(seconds) / 3).await;
                victim.kill();
            };
            let (result, ()) = tokio::join!(running, kill);
            result
        })
    });
    Ok(Measured {
        nodes,
        cold,
        cold_starts,
        warm,
        idle_api_per_second,
        killed,
    })
}

fn render(rows: &[Measured], services: usize, connections: usize, seconds: u64) -> String {
    let single_rps = rows
        .first()
        .map_or(0.0, |row| row.warm.requests_per_second());
    let mut out = format!(
        "wisp up alone and with two joined wisp nodes, behind haproxy {}x (round robin, /healthz checks); {services} Services of hello at zero hit once each (cold), then {connections} connections for {seconds} s on one (warm); {}\n\n",
        crate::balancer::HAPROXY_LINE,
        report::machine_line()
    );
    out.push_str("| nodes | cold: ok | non-2xx | errors | cold starts counted | cold p50 | cold p99 | warm req/s | warm p50 | warm p99 | vs 1 node | idle API requests/s |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for row in rows {
        let rps = row.warm.requests_per_second();
        let ratio = if single_rps > 0.0 {
            format!("{:.2}×", rps / single_rps)
        } else {
            "n/a".to_owned()
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {:.1} |\n",
            row.nodes,
            row.cold.ok,
            row.cold.non_2xx,
            row.cold.errors,
            row.cold_starts,
            micros(row.cold.latency_us.value_at_quantile(0.5)),
            micros(row.cold.latency_us.value_at_quantile(0.99)),
            rps,
            micros(row.warm.latency_us.value_at_quantile(0.5)),
            micros(row.warm.latency_us.value_at_quantile(0.99)),
            ratio,
            row.idle_api_per_second,
        ));
    }
    for row in rows {
        if let Some(killed) = &row.killed {
            out.push_str(&format!(
                "\n*one of {} nodes killed with SIGKILL a third into a {seconds} s closed loop of {connections} connections: {} succeeded, {} non-2xx, {} connection errors*\n",
                row.nodes, killed.ok, killed.non_2xx, killed.errors
            ));
        }
    }
    if let [one, three] = rows {
        out.push_str(&format!(
            "\n*idle API requests per joined node: {:.1}/s (the difference between the two rows, over the two joined nodes)*\n",
            (three.idle_api_per_second - one.idle_api_per_second) / 2.0
        ));
    }
    out
}
