//! Scaling from zero through `wisp up` (Services created through its API, all Ready at zero
//! replicas first): many cold starts (each Service hit once while at zero replicas, then again
//! warm; with a local registry, as many again naming it, and create → Ready for pulls in
//! [`super::create_to_ready`]), and a burst of concurrent requests on a Service at zero — each
//! beside the same requests to `wasmtime serve`, which has no zero to start from.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::bail;

use crate::manifests::ServiceManifest;
use crate::one_shot::{self, Outcome};
use crate::peers;
use crate::registry::{self, LocalRegistry};
use crate::report;
use crate::target::Target;

use super::cluster::Cluster;
use super::create_to_ready;
use super::{Scratch, require_open_files, service_host, wasmtime, wisp_binary};

/// Creates at once while the Services are made.
const CREATES_IN_FLIGHT: usize = 32;

/// `wisp up` with room for `instances` replicas (memory limits are accounting, not reserved),
/// the Services created and Ready at zero replicas.
fn cluster_at_zero(
    runtime: &tokio::runtime::Runtime,
    services: &[ServiceManifest],
    instances: usize,
    extra_flags: &[String],
) -> anyhow::Result<Cluster> {
    let wisp = wisp_binary()?;
    let instances = (instances + 16).to_string();
    let mut flags = vec![
        "--max-instances",
        &instances,
        "--allocatable-memory",
        "4096Gi",
    ];
    flags.extend(extra_flags.iter().map(String::as_str));
    runtime.block_on(async {
        let cluster = Cluster::start(&wisp, &flags).await?;
        // Knative's default initial scale is 1; this lets a new revision start at zero.
        cluster
            .configure_autoscaler(&[("allow-zero-initial-scale", "true")])
            .await?;
        cluster.create(services, CREATES_IN_FLIGHT).await?;
        cluster.wait_ready(services.len()).await?;
        Ok(cluster)
    })
}

pub fn cold_starts(services: usize, registry_rounds: usize) -> anyhow::Result<String> {
    let wisp = wisp_binary()?;
    let scratch = Scratch::new("cold-start")?;
    // The registry case runs when docker-registry is there; its rows say why when it is not.
    let registry = registry::locate().and_then(|binary| {
        LocalRegistry::start(&binary).map_err(|error| {
            // One line: it goes into table rows.
            format!("docker-registry failed: {error:#}").replace('\n', " ")
        })
    });
    let image = match &registry {
        Ok(registry) => Ok(format!("{}/bench/hello:v1", registry.host())),
        Err(missing) => Err(missing.clone()),
    };
    if let Ok(registry) = &registry {
        registry.push(
            &wisp,
            std::path::Path::new(wisp_samples::HELLO),
            "bench/hello",
            "v1",
        )?;
    }
    let at_zero = |name: String, component: &str| {
        ServiceManifest::new(name, component).autoscaling("initial-scale", "0")
    };
    let file_services: Vec<ServiceManifest> = (0..services)
        .map(|i| at_zero(format!("hello-{i:05}"), wisp_samples::HELLO))
        .collect();
    let registry_services: Vec<ServiceManifest> = match &image {
        Ok(image) => (0..services)
            .map(|i| at_zero(format!("oci-{i:05}"), image))
            .collect(),
        Err(_) => Vec::new(),
    };
    let all: Vec<ServiceManifest> = file_services
        .iter()
        .chain(&registry_services)
        .cloned()
        .collect();
    // Every Service holds a replica for a while after its cold start (until the autoscaler's
    // window lets it go): room for all of them, so none waits for another's to be let go.
    let mut flags = vec!["--max-replicas".to_owned(), (all.len() + 16).to_string()];
    flags.extend(match &registry {
        // A registry on loopback is a private address to the node's source policy.
        Ok(registry) => vec![
            "--insecure-registry".into(),
            registry.host().to_owned(),
            "--allow-private-networks".into(),
            // The create → Ready case's components of their own.
            "--allow-path".into(),
            scratch.dir.display().to_string(),
        ],
        Err(_) => Vec::new(),
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cluster = cluster_at_zero(&runtime, &all, all.len(), &flags)?;

    let before = runtime.block_on(cluster.cold_starts())?;
    let (cold, warm) = runtime.block_on(one_shot::pairs(
        cluster.gateway(),
        &hosts(&file_services),
        "/",
    ));
    let registry_pairs = (!registry_services.is_empty()).then(|| {
        runtime.block_on(one_shot::pairs(
            cluster.gateway(),
            &hosts(&registry_services),
            "/",
        ))
    });
    let after = runtime.block_on(cluster.cold_starts())?;
    let proof = every_first_request_was_cold(&all, &before, &after)?;
    let peer = match wasmtime() {
        Ok(path) => {
            let peer = peers::start_wasmtime_serve(&path, wisp_samples::HELLO)?;
            let target = Target::parse(&format!("{}/", peer.url))?;
            let same_host: Vec<String> =
                file_services.iter().map(|_| target.host.clone()).collect();
            Ok(runtime.block_on(one_shot::sequence(target.addr, &same_host, "/")))
        }
        Err(missing) => Err(missing),
    };
    let to_ready = match &registry {
        Ok(registry) => Ok(runtime.block_on(create_to_ready::times_to_ready(
            &cluster,
            registry,
            &wisp,
            &scratch,
            registry_rounds,
        ))?),
        Err(missing) => Err(missing.clone()),
    };

    let mut out = format!(
        "{services} Services of hello from a file and {} naming it in a local registry by tag (`{}`), each at zero replicas, each hit twice in turn (a cold start, then warm) over one keep-alive connection; {}\n\n",
        registry_services.len(),
        image.as_deref().unwrap_or("no registry"),
        report::machine_line()
    );
    let registry_row = |pick: fn(&(Outcome, Outcome)) -> &Outcome| match (&registry_pairs, &image) {
        (Some(pairs), _) => Ok(pick(pairs)),
        (None, Err(missing)) => Err(missing.clone()),
        (None, Ok(_)) => Err("no Services".to_owned()),
    };
    out.push_str(&table(&[
        (
            "wisp up, image a file: first request (cold start)",
            Ok(&cold),
        ),
        ("wisp up, image a file: second request (warm)", Ok(&warm)),
        (
            "wisp up, image from the registry: first request (cold start)",
            registry_row(|pairs| &pairs.0),
        ),
        (
            "wisp up, image from the registry: second request (warm)",
            registry_row(|pairs| &pairs.1),
        ),
        (
            "wasmtime serve -S cli: same sequence (no scale to zero)",
            peer.as_ref().map_err(Clone::clone),
        ),
    ]));
    out.push_str(&format!(
        "\ncold start costs over warm (file): p50 {}, p99 {}\n\n{proof}\n",
        difference(&cold, &warm, 0.5),
        difference(&cold, &warm, 0.99)
    ));
    out.push_str(&format!(
        "\nFrom create to Ready, one Service at a time, {registry_rounds} rounds; each round a new component (the hello with a custom section of its own, so new bytes to pull and compile), first as a file and from the registry, then each again (cached):\n\n"
    ));
    out.push_str(&create_to_ready::ready_table(&to_ready));
    Ok(out)
}

fn hosts(services: &[ServiceManifest]) -> Vec<String> {
    services.iter().map(|m| service_host(&m.name)).collect()
}

/// Checks with the data plane's own counter (`wisp_revision_cold_starts_total`) that each
/// Service's first request was a cold start and its second was not: every Service's count went
/// from 0 to exactly 1. Returns the line saying so; an error names the Services where it did not.
fn every_first_request_was_cold(
    services: &[ServiceManifest],
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> anyhow::Result<String> {
    let wrong: Vec<String> = services
        .iter()
        .filter_map(|service| {
            let was = before.get(&service.name).copied().unwrap_or(0);
            let now = after.get(&service.name).copied().unwrap_or(0);
            (was != 0 || now != 1).then(|| format!("{} ({was} → {now})", service.name))
        })
        .collect();
    if !wrong.is_empty() {
        bail!(
            "the cold-start counter does not show one cold start per Service, so the \"cold\" row would not be what it says: {}",
            wrong.join(", ")
        );
    }
    Ok(format!(
        "wisp_revision_cold_starts_total, read from /metrics before and after: 0 → 1 for each of the {} Services (the first request of each was a cold start, the second was not)",
        services.len()
    ))
}

/// `rounds` bursts per case, interleaved (a burst is over in tens of milliseconds, so one
/// disturbance of the machine would otherwise decide a whole row). Every round's burst from
/// zero goes to a Service of its own that has never run.
pub fn burst(requests: usize, container_concurrency: u32, rounds: usize) -> anyhow::Result<String> {
    require_open_files(requests * 2)?;
    let rounds = rounds.max(1);
    let scratch = Scratch::new("burst")?;
    let wisp = wisp_binary()?;
    let services: Vec<ServiceManifest> = (0..rounds)
        .map(|round| {
            ServiceManifest::new(format!("burst-{round}"), wisp_samples::HELLO)
                .autoscaling("initial-scale", "0")
                .container_concurrency(container_concurrency)
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let cluster = cluster_at_zero(&runtime, &services, requests * rounds, &[])?;
    let gateway_addr: SocketAddr = cluster.gateway();
    let wasmtime_serve = match wasmtime() {
        Ok(path) => Ok(peers::start_wasmtime_serve(&path, wisp_samples::HELLO)?),
        Err(missing) => Err(missing),
    };
    let run = peers::start_wisp_run(&wisp, wisp_samples::HELLO, &scratch.cache())?;
    let ceiling = peers::start_ceiling()?;
    let direct = |peer: &peers::Peer| Target::parse(&format!("{}/", peer.url));
    let wasmtime_target = match &wasmtime_serve {
        Ok(peer) => Ok(direct(peer)?),
        Err(missing) => Err(missing.clone()),
    };
    let (run_target, ceiling_target) = (direct(&run)?, direct(&ceiling)?);

    let fire =
        |addr: SocketAddr, host: &str| runtime.block_on(one_shot::burst(addr, host, "/", requests));
    let mut from_zero = Rounds::default();
    let mut warm = Rounds::default();
    let mut on_wasmtime = Rounds::default();
    let mut runtime_alone = Rounds::default();
    let mut floor = Rounds::default();
    let cold_counted = |name: &str| -> anyhow::Result<u64> {
        let counts = runtime.block_on(cluster.cold_starts())?;
        Ok(counts.get(name).copied().unwrap_or(0))
    };
    let mut counted_cold = Vec::new();
    for service in &services {
        let host = service_host(&service.name);
        let before = cold_counted(&service.name)?;
        from_zero.add(fire(gateway_addr, &host));
        let after_cold = cold_counted(&service.name)?;
        warm.add(fire(gateway_addr, &host));
        let after_warm = cold_counted(&service.name)?;
        if before != 0 || after_cold == 0 || after_warm != after_cold {
            bail!(
                "the cold-start counter of {} went {before} → {after_cold} over the burst from zero and {after_cold} → {after_warm} over the warm one: the rows would not be what they say",
                service.name
            );
        }
        counted_cold.push(after_cold);
        if let Ok(target) = &wasmtime_target {
            on_wasmtime.add(fire(target.addr, &target.host));
        }
        runtime_alone.add(fire(run_target.addr, &run_target.host));
        floor.add(fire(ceiling_target.addr, &ceiling_target.host));
    }

    let mut out = format!(
        "{requests} concurrent requests of hello released at once, each on its own connection, {rounds} interleaved rounds; wisp Services with containerConcurrency {container_concurrency}; {}\n\n",
        report::machine_line()
    );
    out.push_str(&rounds_table(&[
        ("wisp up: burst from zero replicas", Ok(&from_zero)),
        ("wisp up: same burst again (warm)", Ok(&warm)),
        (
            "wasmtime serve -S cli: same burst",
            wasmtime_target.map(|_| &on_wasmtime),
        ),
        (
            "wisp run (runtime alone, warm): same burst",
            Ok(&runtime_alone),
        ),
        ("plain hyper (ceiling): same burst", Ok(&floor)),
    ]));
    let listed: Vec<String> = counted_cold.iter().map(u64::to_string).collect();
    out.push_str(&format!(
        "\nwisp_revision_cold_starts_total, read from /metrics around each burst: each burst from zero started from a count of 0 and counted on average {} of its {requests} requests as cold starts (round by round: {}; a request is counted when it arrived before the first replica was ready); each warm burst counted none\n",
        counted_cold.iter().sum::<u64>() / counted_cold.len().max(1) as u64,
        listed.join(", ")
    ));
    Ok(out)
}

/// One case's bursts: merged for the percentiles, and each round's p99 kept, because a burst's
/// p99 is about when its last requests finish, which one stall of the machine decides.
#[derive(Default)]
struct Rounds {
    merged: Outcome,
    p99s: Vec<u64>,
}

impl Rounds {
    fn add(&mut self, round: Outcome) {
        self.p99s.push(round.latency_us.value_at_quantile(0.99));
        self.merged.merge(&round);
    }

    fn median_p99(&self) -> u64 {
        let mut p99s = self.p99s.clone();
        p99s.sort_unstable();
        p99s.get(p99s.len() / 2).copied().unwrap_or(0)
    }
}

fn rounds_table(rows: &[(&str, Result<&Rounds, String>)]) -> String {
    let mut out = String::from(
        "| case | ok | non-2xx | errors | p50 | p99 | p99, median round | max |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (name, rounds) in rows {
        match rounds {
            Ok(r) => {
                let o = &r.merged;
                out.push_str(&format!(
                    "| {name} | {} | {} | {} | {} | {} | {} | {} |\n",
                    o.ok,
                    o.non_2xx,
                    o.errors,
                    report::micros(o.latency_us.value_at_quantile(0.5)),
                    report::micros(o.latency_us.value_at_quantile(0.99)),
                    report::micros(r.median_p99()),
                    report::micros(o.latency_us.max())
                ));
            }
            Err(missing) => {
                out.push_str(&format!("| {name} | — | — | — | — | — | — | {missing} |\n"))
            }
        }
    }
    out
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
