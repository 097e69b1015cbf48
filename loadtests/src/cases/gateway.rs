//! Warm `hello` through the gateway — of `wisp up` (a Service applied through its API) and of
//! `wisp serve` (the same Service from a manifest file): routing, activator, replica — beside
//! the runtime alone (`wisp run`), `wasmtime serve -S cli` and the plain hyper ceiling:
//! throughput at many connections, and the latency the gateway adds at one connection.

use std::time::Duration;

use crate::closed_loop::RunResult;
use crate::manifests::ServiceManifest;
use crate::peers::{self, Peer};
use crate::report::{self, Row};
use crate::target::Target;

use super::cluster::Cluster;
use super::{Scratch, gateway_target, measure, wasmtime, wisp_binary};

pub const WASMTIME_SERVE: &str = "wasmtime serve -S cli";
const UP: &str = "wisp up (gateway → activator → replica)";
const GATEWAY: &str = "wisp serve (gateway → activator → replica)";
const RUNTIME: &str = "wisp run (runtime alone)";

pub struct Settings {
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub rounds: usize,
}

struct Server {
    name: &'static str,
    target: Option<Target>,
    missing: Option<String>,
    _peer: Option<Peer>,
    _cluster: Option<Cluster>,
}

pub fn run(settings: &Settings) -> anyhow::Result<String> {
    let scratch = Scratch::new("gateway")?;
    let wisp = wisp_binary()?;
    let component = wisp_samples::HELLO;
    // Stays warm for the whole run: this case measures the request path, not scaling.
    let hello = ServiceManifest::new("hello", component).autoscaling("min-scale", "1");
    let manifest = scratch.manifest(std::slice::from_ref(&hello))?;

    let mut servers = Vec::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let up = runtime.block_on(async {
        let cluster = Cluster::start(&wisp, &[]).await?;
        cluster.create(std::slice::from_ref(&hello), 1).await?;
        cluster.wait_ready(1).await?;
        anyhow::Ok(cluster)
    })?;
    let mut up_target = Target::parse(&format!("http://{}/", up.gateway()))?;
    up_target.host = super::service_host("hello");
    servers.push(Server {
        name: UP,
        target: Some(up_target),
        missing: None,
        _peer: None,
        _cluster: Some(up),
    });
    let gateway = peers::start_wisp_serve(&wisp, &manifest, &scratch.cache(), &[], "8Gi")?;
    servers.push(Server {
        name: GATEWAY,
        target: Some(gateway_target(&gateway.url, "hello")?),
        missing: None,
        _cluster: None,
        _peer: Some(gateway),
    });
    let run = peers::start_wisp_run(&wisp, component, &scratch.cache())?;
    servers.push(Server {
        name: RUNTIME,
        target: Some(Target::parse(&format!("{}/", run.url))?),
        missing: None,
        _cluster: None,
        _peer: Some(run),
    });
    match wasmtime() {
        Ok(path) => {
            let peer = peers::start_wasmtime_serve(&path, component)?;
            servers.push(Server {
                name: WASMTIME_SERVE,
                target: Some(Target::parse(&format!("{}/", peer.url))?),
                missing: None,
                _peer: Some(peer),
                _cluster: None,
            });
        }
        Err(missing) => servers.push(Server {
            name: WASMTIME_SERVE,
            target: None,
            missing: Some(missing),
            _peer: None,
            _cluster: None,
        }),
    }
    let ceiling = peers::start_ceiling()?;
    servers.push(Server {
        name: "plain hyper (ceiling)",
        target: Some(Target::parse(&format!("{}/", ceiling.url))?),
        missing: None,
        _cluster: None,
        _peer: Some(ceiling),
    });

    let throughput = interleaved(&servers, settings, settings.connections)?;
    let latency = interleaved(&servers, settings, 1)?;

    let added = |quantile: f64| -> Option<(i64, i64)> {
        let of = |name: &str| {
            servers
                .iter()
                .zip(&latency)
                .find(|(server, _)| server.name == name)
                .and_then(|(_, result)| result.as_ref())
                .map(|result| result.latency_us.value_at_quantile(quantile) as i64)
        };
        Some((of(UP)? - of(RUNTIME)?, of(GATEWAY)? - of(RUNTIME)?))
    };
    let rows = |results: Vec<Option<RunResult>>| -> Vec<Row> {
        servers
            .iter()
            .zip(results)
            .map(|(server, result)| Row {
                name: server.name.to_owned(),
                result,
                missing: server.missing.clone(),
            })
            .collect()
    };
    let (p50, p99) = (added(0.5), added(0.99));
    let mut out = format!(
        "hello, {} interleaved rounds of {}s per server (each after {}s warm-up); load generator on 1 thread; {}\n\n",
        settings.rounds,
        settings.duration.as_secs(),
        settings.warmup.as_secs(),
        report::machine_line()
    );
    out.push_str(&format!("{} connections:\n\n", settings.connections));
    out.push_str(&report::throughput_table(&rows(throughput), WASMTIME_SERVE));
    out.push_str("\n1 connection:\n\n");
    out.push_str(&report::throughput_table(&rows(latency), WASMTIME_SERVE));
    let show = |added: Option<(i64, i64)>, pick: fn((i64, i64)) -> i64| {
        added.map_or("n/a".into(), |added| signed_micros(pick(added)))
    };
    out.push_str(&format!(
        "\nlatency the gateway adds over the runtime alone (1 connection): wisp up p50 {}, p99 {}; wisp serve p50 {}, p99 {}\n",
        show(p50, |(up, _)| up),
        show(p99, |(up, _)| up),
        show(p50, |(_, serve)| serve),
        show(p99, |(_, serve)| serve),
    ));
    Ok(out)
}

fn signed_micros(value: i64) -> String {
    if value < 0 {
        format!("-{}", report::micros(value.unsigned_abs()))
    } else {
        report::micros(value as u64)
    }
}

/// Every server in rounds A B C D A B C D …, so a disturbance of the machine falls on all alike.
fn interleaved(
    servers: &[Server],
    settings: &Settings,
    connections: usize,
) -> anyhow::Result<Vec<Option<RunResult>>> {
    let mut results: Vec<Option<RunResult>> = servers.iter().map(|_| None).collect();
    for _ in 0..settings.rounds.max(1) {
        for (server, total) in servers.iter().zip(results.iter_mut()) {
            let Some(target) = &server.target else {
                continue;
            };
            let round = measure(target, connections, settings.duration, settings.warmup)?;
            match total {
                Some(total) => total.merge(&round),
                None => *total = Some(round),
            }
        }
    }
    Ok(results)
}
