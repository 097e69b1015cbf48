//! Replicas from a create: one Service created through `wisp up`'s API whose revision wants N
//! replicas from the start (`initial-scale` = `min-scale` = N), timed from the create request to
//! `/metrics` reporting all N ready. What that is: wisp's data plane makes a revision's replicas
//! in one pass (a replica is an envelope of concurrency and memory around the compiled
//! component; instances are made per request), so they become ready in one update, not one by
//! one. The time is the create's path through the API, the controllers and the compile-cache
//! lookup to that update; it is not N separate starts, and the table says how many updates the
//! sampler saw. No peer has replicas to start: `wasmtime serve` makes an instance per request,
//! which `bench gateway` measures.

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
        "one Service of hello created with {replicas} replicas wanted from the start (initial-scale and min-scale {replicas}), timed from the create request to all {replicas} ready in /metrics (read every {} ms), {} rounds, each a new Service; {}\n\n",
        SAMPLE_EVERY.as_millis(),
        timings.len(),
        report::machine_line()
    );
    out.push_str("| round | create → all ready | ready counts seen between 0 and all | replicas ready per second of that time |\n|---:|---:|---|---:|\n");
    for (round, ready) in timings.iter().enumerate() {
        let between = if ready.counts_between.is_empty() {
            "none: one update".to_owned()
        } else {
            ready
                .counts_between
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| {} | {:.1} ms | {between} | {:.0} |\n",
            round + 1,
            ready.all.as_secs_f64() * 1e3,
            f64::from(replicas) / ready.all.as_secs_f64().max(1e-9)
        ));
    }
    out.push_str("\nThe data plane makes a revision's replicas in one pass, so they are ready together: the time is the create request's way through the API, the controllers and the compile cache to that one update, and the last column divides it by the count (a rate of the whole, not of separate starts).\n");
    out.push_str("\nNo peer: wasmtime serve has no replicas (an instance per request; see `bench gateway`), and Knative Serving needs a Kubernetes cluster, not available on this machine.\n");
    Ok(out)
}
