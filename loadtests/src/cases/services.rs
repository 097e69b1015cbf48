//! The control plane at scale: N Knative Services created through `wisp up`'s API and brought
//! to Ready (Configuration, Route, Revision and the data plane's status for each), with the
//! process's memory and CPU, beside the same creates stored by the API server alone
//! (`wisp api-server`), the floor under any control plane built on it. The Services start at
//! zero replicas (`allow-zero-initial-scale`), so this measures the controllers, not replicas.
//! Knative Serving itself needs a Kubernetes cluster, which this machine does not have: it is
//! reported as missing rather than quoted from elsewhere.

use std::time::{Duration, Instant};

use crate::manifests::ServiceManifest;
use crate::peers;
use crate::report;

use super::api::{Memory, memory};
use super::cluster::{self, Cluster, cpu_time};
use super::{Scratch, wisp_binary};

/// How long the process is watched after the last Service became Ready, for its idle CPU.
const IDLE_WINDOW: Duration = Duration::from_secs(10);

struct Measured {
    created: Duration,
    ready: Option<Duration>,
    memory: Memory,
    cpu: Duration,
    idle_cpu: Option<Duration>,
}

pub fn run(count: usize, in_flight: usize) -> anyhow::Result<String> {
    let wisp = wisp_binary()?;
    let manifests: Vec<ServiceManifest> = (0..count)
        .map(|i| {
            ServiceManifest::new(format!("svc-{i:05}"), wisp_samples::HELLO)
                .autoscaling("initial-scale", "0")
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let up = runtime.block_on(async {
        let cluster = Cluster::start(&wisp, &[]).await?;
        cluster
            .configure_autoscaler(&[("allow-zero-initial-scale", "true")])
            .await?;
        let pid = cluster.wisp.pid();
        let cpu_before = cpu_time(pid)?;
        let started = Instant::now();
        cluster.create(&manifests, in_flight).await?;
        let created = started.elapsed();
        cluster.wait_ready(count).await?;
        let ready = started.elapsed();
        let cpu = cpu_time(pid)?.saturating_sub(cpu_before);
        let idle_from = cpu_time(pid)?;
        tokio::time::sleep(IDLE_WINDOW).await;
        let idle_cpu = cpu_time(pid)?.saturating_sub(idle_from);
        anyhow::Ok(Measured {
            created,
            ready: Some(ready),
            memory: memory(pid)?,
            cpu,
            idle_cpu: Some(idle_cpu),
        })
    })?;

    let scratch = Scratch::new("services")?;
    let data_dir = scratch.dir.join("data");
    let server = peers::start_wisp_api_server(&wisp, &data_dir)?;
    let alone = runtime.block_on(async {
        let client = cluster::client(&data_dir.join("kubeconfig")).await?;
        let pid = server.pid();
        let cpu_before = cpu_time(pid)?;
        let started = Instant::now();
        cluster::create_services(&client, &manifests, in_flight).await?;
        let created = started.elapsed();
        anyhow::Ok(Measured {
            created,
            ready: None,
            memory: memory(pid)?,
            cpu: cpu_time(pid)?.saturating_sub(cpu_before),
            idle_cpu: None,
        })
    })?;

    let mut out = format!(
        "{count} Knative Services of hello created through the API with kube-rs, {in_flight} creates in flight, all at zero replicas; {}\n\n",
        report::machine_line()
    );
    out.push_str("| server | created in | creates/s | all Ready after | Services Ready/s | RSS at the end | peak RSS | CPU used | CPU in the 10 s after |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (name, measured) in [
        ("wisp up (API, controllers, data plane)", &up),
        ("wisp api-server (storage alone)", &alone),
    ] {
        let per_second = |elapsed: Duration| count as f64 / elapsed.as_secs_f64().max(1e-9);
        out.push_str(&format!(
            "| {name} | {:.1} s | {:.0} | {} | {} | {} | {} | {:.1} s | {} |\n",
            measured.created.as_secs_f64(),
            per_second(measured.created),
            measured
                .ready
                .map_or("—".to_owned(), |d| format!("{:.1} s", d.as_secs_f64())),
            measured
                .ready
                .map_or("—".to_owned(), |d| format!("{:.0}", per_second(d))),
            mib(measured.memory.rss_kib),
            mib(measured.memory.hwm_kib),
            measured.cpu.as_secs_f64(),
            measured
                .idle_cpu
                .map_or("—".to_owned(), |d| format!("{:.2} s", d.as_secs_f64())),
        ));
    }
    out.push_str("| Knative Serving | — | — | — | — | — | — | — | missing: needs a Kubernetes cluster, not available on this machine |\n");
    Ok(out)
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}
