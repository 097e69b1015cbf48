//! Replica starts: one Service created through `wisp up`'s API whose revision wants N replicas
//! from the start (`initial-scale` = `min-scale` = N), timed from the create to the first and
//! to the last ready replica as `/metrics` reports them. No peer has replicas to start:
//! `wasmtime serve` makes an instance per request, which `bench gateway` measures.

use std::time::{Duration, Instant};

use crate::manifests::ServiceManifest;
use crate::report;

use super::cluster::Cluster;
use super::wisp_binary;

/// How often `/metrics` is read while replicas come up.
const SAMPLE_EVERY: Duration = Duration::from_millis(2);

pub fn run(replicas: u32, rounds: usize) -> anyhow::Result<String> {
    let wisp = wisp_binary()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let max_instances = (u64::from(replicas) * rounds.max(1) as u64 + 16).to_string();
    let timings = runtime.block_on(async {
        let cluster = Cluster::start(
            &wisp,
            &[
                "--max-instances",
                &max_instances,
                "--allocatable-memory",
                "4096Gi",
            ],
        )
        .await?;
        let mut timings = Vec::new();
        for round in 0..rounds.max(1) {
            let name = format!("replicas-{round}");
            let count = replicas.to_string();
            let service = ServiceManifest::new(&name, wisp_samples::HELLO)
                .autoscaling("initial-scale", &count)
                .autoscaling("min-scale", &count);
            let started = Instant::now();
            cluster.create(&[service], 1).await?;
            timings.push(
                cluster
                    .wait_replicas(&name, i64::from(replicas), SAMPLE_EVERY, started)
                    .await?,
            );
        }
        anyhow::Ok(timings)
    })?;

    let mut out = format!(
        "one Service of hello created with {replicas} replicas wanted from the start (initial-scale and min-scale {replicas}), timed from the create request to ready replicas in /metrics (read every {} ms), {} rounds, each a new Service; {}\n\n",
        SAMPLE_EVERY.as_millis(),
        timings.len(),
        report::machine_line()
    );
    out.push_str("| round | first replica ready | all ready | replica starts/s (create to all ready) |\n|---:|---:|---:|---:|\n");
    for (round, (first, all)) in timings.iter().enumerate() {
        out.push_str(&format!(
            "| {} | {:.1} ms | {:.1} ms | {:.0} |\n",
            round + 1,
            first.as_secs_f64() * 1e3,
            all.as_secs_f64() * 1e3,
            f64::from(replicas) / all.as_secs_f64().max(1e-9)
        ));
    }
    out.push_str("\nNo peer: wasmtime serve has no replicas (an instance per request; see `bench gateway`), and Knative Serving needs a Kubernetes cluster, not available on this machine.\n");
    Ok(out)
}
