//! Scaling from zero through `wisp serve`: many cold starts (each Service hit once while at
//! zero replicas, then again warm), and a burst of concurrent requests on a Service at zero —
//! each beside the same requests to `wasmtime serve`, which has no zero to start from.

use std::net::SocketAddr;

use crate::manifests::ServiceManifest;
use crate::one_shot::{self, Outcome};
use crate::peers;
use crate::report;
use crate::target::Target;

use super::{Scratch, require_open_files, service_host, wasmtime, wisp_binary};

/// Lets a new revision start at zero replicas (Knative's default initial scale is 1).
const ZERO_INITIAL_SCALE: &str = "allow-zero-initial-scale=true";

pub fn cold_starts(services: usize) -> anyhow::Result<String> {
    let scratch = Scratch::new("cold-start")?;
    let wisp = wisp_binary()?;
    let manifests: Vec<ServiceManifest> = (0..services)
        .map(|i| {
            ServiceManifest::new(format!("hello-{i:05}"), wisp_samples::HELLO)
                .autoscaling("initial-scale", "0")
        })
        .collect();
    let manifest = scratch.manifest(&manifests)?;
    let gateway = peers::start_wisp_serve(
        &wisp,
        &manifest,
        &scratch.cache(),
        &[ZERO_INITIAL_SCALE],
        "1024Gi",
    )?;
    let addr = Target::parse(&format!("{}/", gateway.url))?.addr;
    let hosts: Vec<String> = manifests.iter().map(|m| service_host(&m.name)).collect();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cold = runtime.block_on(one_shot::sequence(addr, &hosts, "/"));
    let warm = runtime.block_on(one_shot::sequence(addr, &hosts, "/"));
    let peer = match wasmtime() {
        Ok(path) => {
            let peer = peers::start_wasmtime_serve(&path, wisp_samples::HELLO)?;
            let target = Target::parse(&format!("{}/", peer.url))?;
            let same_host: Vec<String> = hosts.iter().map(|_| target.host.clone()).collect();
            Ok(runtime.block_on(one_shot::sequence(target.addr, &same_host, "/")))
        }
        Err(missing) => Err(missing),
    };

    let mut out = format!(
        "{services} Services of hello, each at zero replicas, each hit once in turn over one keep-alive connection; {}\n\n",
        report::machine_line()
    );
    out.push_str(&table(&[
        ("wisp serve: first request (cold start)", Ok(&cold)),
        ("wisp serve: second request (warm)", Ok(&warm)),
        (
            "wasmtime serve -S cli: same sequence (no scale to zero)",
            peer.as_ref().map_err(Clone::clone),
        ),
    ]));
    out.push_str(&format!(
        "\ncold start costs over warm: p50 {}, p99 {}\n",
        difference(&cold, &warm, 0.5),
        difference(&cold, &warm, 0.99)
    ));
    Ok(out)
}

pub fn burst(requests: usize, container_concurrency: u32) -> anyhow::Result<String> {
    require_open_files(requests * 2)?;
    let scratch = Scratch::new("burst")?;
    let wisp = wisp_binary()?;
    let manifest = scratch.manifest(&[ServiceManifest::new("burst", wisp_samples::HELLO)
        .autoscaling("initial-scale", "0")
        .container_concurrency(container_concurrency)])?;
    let gateway = peers::start_wisp_serve(
        &wisp,
        &manifest,
        &scratch.cache(),
        &[ZERO_INITIAL_SCALE],
        "64Gi",
    )?;
    let addr: SocketAddr = Target::parse(&format!("{}/", gateway.url))?.addr;
    let host = service_host("burst");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let from_zero = runtime.block_on(one_shot::burst(addr, &host, "/", requests));
    let warm = runtime.block_on(one_shot::burst(addr, &host, "/", requests));
    drop(gateway);
    let peer = match wasmtime() {
        Ok(path) => {
            let peer = peers::start_wasmtime_serve(&path, wisp_samples::HELLO)?;
            let target = Target::parse(&format!("{}/", peer.url))?;
            Ok(runtime.block_on(one_shot::burst(target.addr, &target.host, "/", requests)))
        }
        Err(missing) => Err(missing),
    };
    let mut out = format!(
        "{requests} concurrent requests of hello released at once, each on its own connection; wisp Service with containerConcurrency {container_concurrency}; {}\n\n",
        report::machine_line()
    );
    out.push_str(&table(&[
        ("wisp serve: burst from zero replicas", Ok(&from_zero)),
        ("wisp serve: same burst again (warm)", Ok(&warm)),
        (
            "wasmtime serve -S cli: same burst",
            peer.as_ref().map_err(Clone::clone),
        ),
    ]));
    Ok(out)
}

fn table(rows: &[(&str, Result<&Outcome, String>)]) -> String {
    let mut out = String::from(
        "| case | ok | non-2xx | errors | p50 | p99 | max |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for (name, outcome) in rows {
        match outcome {
            Ok(o) => out.push_str(&format!(
                "| {name} | {} | {} | {} | {} | {} | {} |\n",
                o.ok,
                o.non_2xx,
                o.errors,
                report::micros(o.latency_us.value_at_quantile(0.5)),
                report::micros(o.latency_us.value_at_quantile(0.99)),
                report::micros(o.latency_us.max())
            )),
            Err(missing) => out.push_str(&format!("| {name} | — | — | — | — | — | {missing} |\n")),
        }
    }
    out
}

fn difference(a: &Outcome, b: &Outcome, quantile: f64) -> String {
    let (a, b) = (
        a.latency_us.value_at_quantile(quantile),
        b.latency_us.value_at_quantile(quantile),
    );
    if a >= b {
        report::micros(a - b)
    } else {
        format!("-{}", report::micros(b - a))
    }
}
