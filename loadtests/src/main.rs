//! `wisp-loadtests`: benchmarks of wisp against its peers, measured side by side in one run.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use wisp_loadtests::cases;
use wisp_loadtests::cases::guests::WispPath;
use wisp_loadtests::closed_loop::RunResult;
use wisp_loadtests::peers::{self, Peer};
use wisp_loadtests::report::{self, Row};
use wisp_loadtests::target::Target;

#[derive(Parser)]
#[command(
    name = "wisp-loadtests",
    about = "Benchmarks of wisp against its peers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmarks: each case measures wisp and its peers back to back and prints ratios.
    Bench {
        #[command(subcommand)]
        case: BenchCase,
    },
    /// The scale-to-zero demo: starts `wisp up` in a temporary data directory, plays a scenario
    /// against it with live progress, prints a summary and writes an HTML and Markdown report.
    Demo {
        /// The scenario to play.
        #[arg(long, default_value_os_t = wisp_loadtests::wisp_up::repository_root().join("loadtests/scenarios/scale-to-zero.yaml"))]
        scenario: std::path::PathBuf,
        /// Where the report is written.
        #[arg(long, default_value_os_t = wisp_loadtests::wisp_up::repository_root().join("target/loadtests-reports"))]
        report_dir: std::path::PathBuf,
        /// Relative image paths of the scenario's manifests resolve against this directory.
        #[arg(long, default_value_os_t = wisp_loadtests::wisp_up::repository_root())]
        image_dir: std::path::PathBuf,
    },
    /// The soak: steady load on several Services beside a hostile one, rollouts, trips to zero
    /// and one `kill -9` of `wisp up`, all at once; reports every lost request and plots RSS.
    /// Exits 1 when a request was lost, memory went over the plan's limit, or an event failed.
    Soak {
        /// The plan to play.
        #[arg(long, default_value_os_t = wisp_loadtests::wisp_up::repository_root().join("loadtests/scenarios/soak.yaml"))]
        plan: std::path::PathBuf,
        /// Load for this long instead of the plan's duration (e.g. `2m`).
        #[arg(long, value_parser = duration_arg)]
        duration: Option<Duration>,
        /// Kill `wisp up` at this time instead of the plan's.
        #[arg(long, value_parser = duration_arg)]
        kill_at: Option<Duration>,
        /// Roll out new revisions this often instead of the plan's.
        #[arg(long, value_parser = duration_arg)]
        rollout_every: Option<Duration>,
        /// Take Services to zero this often instead of the plan's.
        #[arg(long, value_parser = duration_arg)]
        scale_to_zero_every: Option<Duration>,
        /// Where the report is written.
        #[arg(long, default_value_os_t = wisp_loadtests::wisp_up::repository_root().join("target/loadtests-reports"))]
        report_dir: std::path::PathBuf,
        /// Relative image paths of the manifests resolve against this directory.
        #[arg(long, default_value_os_t = wisp_loadtests::wisp_up::repository_root())]
        image_dir: std::path::PathBuf,
    },
    /// The plain hyper server used as the HTTP ceiling (started by `bench`).
    #[command(hide = true)]
    CeilingServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: SocketAddr,
    },
}

/// How long and how hard a closed-loop case runs.
#[derive(clap::Args)]
struct LoadArgs {
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds measured per server and round.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Seconds of warm-up per server before measuring.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Interleaved rounds per server.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

#[derive(Subcommand)]
enum BenchCase {
    /// Warm `hello` throughput and latency: `wisp run` vs `wasmtime serve -S cli` vs plain hyper;
    /// then each guest toolchain's hello, fresh and reused, beside `wasmtime serve` with the same
    /// instance settings.
    Run {
        #[command(flatten)]
        load: LoadArgs,
        /// Only the first table (the Rust hello beside plain hyper), not the guests'.
        #[arg(long)]
        skip_guests: bool,
    },
    /// Warm `hello` through the gateway (`wisp up`, `wisp serve`) vs the runtime alone
    /// (`wisp run`), `wasmtime serve -S cli` and plain hyper: throughput, and the latency the
    /// gateway adds; then each guest toolchain's hello as a Service of `wisp up`, fresh and
    /// reused, beside `wasmtime serve` with the same instance settings.
    Gateway {
        #[command(flatten)]
        load: LoadArgs,
        /// Only the hello tables, not the guests'.
        #[arg(long)]
        skip_guests: bool,
    },
    /// How fast a large component (componentize-py's ~20 MB hello) starts: compiling with an
    /// empty compile cache, starting with it warm, and instantiating per request, beside
    /// `wasmtime serve` starting the same component.
    LargeGuest {
        /// Seconds of fresh-instance requests measured per guest.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Cold starts through `wisp up`: N Services at zero replicas, each hit once, then again warm.
    /// Also, when docker-registry is installed: the same from a local registry, and create →
    /// Ready for a component pulled the first time beside one from a file and cached ones.
    ColdStart {
        #[arg(long, default_value_t = 1000)]
        services: usize,
        /// Rounds of the create → Ready case (four Services each).
        #[arg(long, default_value_t = 10)]
        registry_rounds: usize,
    },
    /// A burst of concurrent requests against a Service at zero replicas, through `wisp up`.
    Burst {
        #[arg(long, default_value_t = 1000)]
        requests: usize,
        /// The Service's containerConcurrency.
        #[arg(long, default_value_t = 10)]
        container_concurrency: u32,
        /// Bursts per case, interleaved.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// N Services created through `wisp up`'s API until all are Ready: time, memory and CPU,
    /// beside the same creates on the API server alone, and through a wisp controller and node
    /// on the genuine kube-apiserver + etcd (`scripts/kube-env`).
    Services {
        #[arg(long, default_value_t = 10_000)]
        services: usize,
        /// Creates in flight at once.
        #[arg(long, default_value_t = 32)]
        in_flight: usize,
        /// Leave out the row on the genuine kube-apiserver (which takes minutes at 10,000).
        #[arg(long)]
        skip_kube: bool,
    },
    /// Replicas from a create: a Service wanting N replicas, timed from the create to all ready (the data plane makes them in one update).
    Replicas {
        #[arg(long, default_value_t = 1000)]
        replicas: u32,
        /// Rounds, each a new Service.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// `wisp up` alone and with two joined `wisp node`s behind haproxy: scale from zero and warm
    /// throughput through the balancer, the API requests an idle node makes, and the requests
    /// that fail when a node is killed under load.
    Nodes {
        /// Services at zero, each hit once through the balancer.
        #[arg(long, default_value_t = 300)]
        services: usize,
        /// Connections of the warm closed loop.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Seconds of each closed loop.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// What 200 requests spinning in one Service cost the others, through `wisp up`: p50/p99
    /// of a well-behaved Service and of `kubectl get ksvc`, quiet and while they spin, as ratios.
    Isolation {
        /// Requests to the `spin` sample held open.
        #[arg(long, default_value_t = 200)]
        spinning: usize,
        /// Connections of the closed loop on `hello`.
        #[arg(long, default_value_t = 8)]
        connections: usize,
        /// Seconds of each closed loop.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// `kubectl get ksvc` calls per phase.
        #[arg(long, default_value_t = 20)]
        kubectl_calls: usize,
    },
    /// The API server (`wisp api-server`) through kube-rs: Knative Service creates, lists,
    /// watch fan-out delay, and the server's memory; then the same on the genuine
    /// kube-apiserver + etcd (`scripts/kube-env`, the Knative CRDs only), with ratios.
    Api {
        /// Knative Services created.
        #[arg(long, default_value_t = 10_000)]
        services: usize,
        /// Creates in flight at once.
        #[arg(long, default_value_t = 32)]
        in_flight: usize,
        /// Concurrent watches on the services collection.
        #[arg(long, default_value_t = 1_000)]
        watchers: usize,
        /// Writes whose delivery to every watch is timed.
        #[arg(long, default_value_t = 20)]
        writes: usize,
        /// Milliseconds between two timed writes.
        #[arg(long, default_value_t = 100)]
        write_spacing_ms: u64,
        /// Also measure the genuine kube-apiserver with wisp's admission webhooks on every
        /// write (all of deploy/kubernetes applied, a standby `wisp controller` serving them).
        #[arg(long)]
        kube_webhooks: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let report = match Cli::parse().command {
        Command::CeilingServer { addr } => return ceiling_server(addr),
        Command::Demo {
            scenario,
            report_dir,
            image_dir,
        } => return demo(scenario, report_dir, image_dir),
        Command::Soak {
            plan,
            duration,
            kill_at,
            rollout_every,
            scale_to_zero_every,
            report_dir,
            image_dir,
        } => {
            let overrides = wisp_loadtests::soak::Overrides {
                duration,
                kill_at,
                rollout_every,
                scale_to_zero_every,
            };
            return soak(plan, overrides, report_dir, image_dir);
        }
        Command::Bench { case } => match case {
            BenchCase::Run { load, skip_guests } => {
                bench_run(
                    load.connections,
                    Duration::from_secs(load.seconds),
                    Duration::from_secs(load.warmup),
                    load.rounds,
                )?;
                if !skip_guests {
                    print!("\n{}", guest_table(&load, WispPath::Run)?);
                }
                return Ok(());
            }
            BenchCase::Gateway { load, skip_guests } => {
                let hello = cases::gateway::run(&cases::gateway::Settings {
                    connections: load.connections,
                    duration: Duration::from_secs(load.seconds),
                    warmup: Duration::from_secs(load.warmup),
                    rounds: load.rounds,
                })?;
                if skip_guests {
                    hello
                } else {
                    format!("{hello}\n{}", guest_table(&load, WispPath::Up)?)
                }
            }
            BenchCase::LargeGuest { seconds } => {
                let table = cases::large_guest::run(seconds)?;
                format!(
                    "each guest started by wisp run and by wasmtime serve; {}\n\n{table}",
                    report::machine_line()
                )
            }
            BenchCase::ColdStart {
                services,
                registry_rounds,
            } => cases::scale::cold_starts(services, registry_rounds)?,
            BenchCase::Burst {
                requests,
                container_concurrency,
                rounds,
            } => cases::scale::burst(requests, container_concurrency, rounds)?,
            BenchCase::Services {
                services,
                in_flight,
                skip_kube,
            } => cases::services::run(services, in_flight, !skip_kube)?,
            BenchCase::Replicas { replicas, rounds } => cases::replicas::run(replicas, rounds)?,
            BenchCase::Nodes {
                services,
                connections,
                seconds,
            } => cases::nodes::run(services, connections, seconds)?,
            BenchCase::Isolation {
                spinning,
                connections,
                seconds,
                kubectl_calls,
            } => cases::isolation::run(&cases::isolation::Settings {
                spinning,
                connections,
                duration: Duration::from_secs(seconds),
                kubectl_calls,
            })?,
            BenchCase::Api {
                services,
                in_flight,
                watchers,
                writes,
                write_spacing_ms,
                kube_webhooks,
            } => bench_api(
                &cases::api::Settings {
                    services,
                    in_flight,
                    watchers,
                    watched_writes: writes,
                    write_spacing: Duration::from_millis(write_spacing_ms),
                },
                kube_webhooks,
            ),
        },
    };
    print!("{report}");
    Ok(())
}

/// `bench api`: wisp api-server, then the genuine kube-apiserver + etcd (and, when asked, the
/// same with wisp's webhooks); a server that fails to start or finish gets a row saying why.
fn bench_api(settings: &cases::api::Settings, kube_webhooks: bool) -> String {
    let mut runs = vec![(
        "wisp api-server (SQLite)".to_owned(),
        cases::api::run(settings).map_err(|error| format!("{error:#}")),
    )];
    runs.push((
        "kube-apiserver 1.34 + etcd 3.5, CRDs only, no webhooks".to_owned(),
        cases::api::run_on_kube(settings, false).map_err(|error| {
            eprintln!("bench api on the genuine kube-apiserver failed: {error:#}");
            format!("{error}")
        }),
    ));
    if kube_webhooks {
        runs.push((
            "kube-apiserver 1.34 + etcd 3.5, wisp's admission webhooks".to_owned(),
            cases::api::run_on_kube(settings, true).map_err(|error| {
                eprintln!("bench api with wisp's webhooks failed: {error:#}");
                format!("{error}")
            }),
        ));
    }
    cases::api::compare(&runs)
}

fn demo(
    scenario: std::path::PathBuf,
    report_dir: std::path::PathBuf,
    image_dir: std::path::PathBuf,
) -> anyhow::Result<()> {
    let (wisp, runtime) = wisp_and_runtime()?;
    runtime.block_on(wisp_loadtests::demo::run(
        &wisp_loadtests::demo::DemoOptions {
            wisp,
            scenario,
            report_dir,
            image_dir,
            verbose: true,
        },
    ))?;
    Ok(())
}

fn soak(
    plan: std::path::PathBuf,
    overrides: wisp_loadtests::soak::Overrides,
    report_dir: std::path::PathBuf,
    image_dir: std::path::PathBuf,
) -> anyhow::Result<()> {
    let (wisp, runtime) = wisp_and_runtime()?;
    let options = wisp_loadtests::soak::SoakOptions {
        wisp,
        plan,
        overrides,
        report_dir,
        image_dir,
    };
    let outcome = runtime.block_on(wisp_loadtests::soak::play(&options, |line| {
        println!("{line}")
    }))?;
    print!(
        "{}",
        wisp_loadtests::soak::report::markdown_page(&outcome.record)
    );
    println!(
        "report: {} and {}; wisp up's log: {}",
        outcome.markdown.display(),
        outcome.html.display(),
        outcome.log.display()
    );
    if !outcome.record.problems().is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

/// The `wisp` binary the demo and the soak start, and a runtime to drive them.
fn wisp_and_runtime() -> anyhow::Result<(std::path::PathBuf, tokio::runtime::Runtime)> {
    let wisp = peers::fresh_wisp_binary()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    Ok((wisp, runtime))
}

/// A duration such as `90s`, `2m` or `1m30s`.
fn duration_arg(text: &str) -> Result<Duration, String> {
    wisp_loadtests::scenario::parse_duration(text)
        .map_err(|error| format!("{text:?} {error}; write e.g. 90s or 2m"))
}

fn ceiling_server(addr: SocketAddr) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("listening on http://{}", listener.local_addr()?);
        wisp_loadtests::ceiling::serve(listener).await?;
        Ok(())
    })
}

/// The load generator runs on one thread (like `wrk -t1`), the same for every server.
fn measure(
    peer: &Peer,
    connections: usize,
    duration: Duration,
    warmup: Duration,
) -> anyhow::Result<RunResult> {
    let target = Target::parse(&format!("{}/", peer.url))?;
    cases::measure(&target, connections, duration, warmup)
}

/// Measures every server in interleaved rounds (A B C A B C …), so a disturbance of the shared
/// machine falls on all of them alike; each server's figures are over all its rounds.
fn bench_run(
    connections: usize,
    duration: Duration,
    warmup: Duration,
    rounds: usize,
) -> anyhow::Result<()> {
    let component = wisp_samples::HELLO;
    let cache = std::env::temp_dir().join(format!("wisp-bench-cache-{}", std::process::id()));
    let wisp = peers::fresh_wisp_binary()?;

    let mut servers: Vec<(String, Option<Peer>, Option<String>)> = Vec::new();
    servers.push((
        "wisp run".into(),
        Some(peers::start_wisp_run(&wisp, component, &cache)?),
        None,
    ));
    match peers::locate("WASMTIME", "wasmtime", None) {
        Some(path) => servers.push((
            WASMTIME_SERVE.into(),
            Some(peers::start_wasmtime_serve(&path, component)?),
            None,
        )),
        None => servers.push((
            WASMTIME_SERVE.into(),
            None,
            Some(
                "missing: set $WASMTIME or `cargo install wasmtime-cli --version 48.0.8 --locked`"
                    .into(),
            ),
        )),
    }
    servers.push((
        "plain hyper (ceiling)".into(),
        Some(peers::start_ceiling()?),
        None,
    ));

    let mut results: Vec<Option<RunResult>> = servers.iter().map(|_| None).collect();
    for _ in 0..rounds.max(1) {
        for ((_, peer, _), total) in servers.iter().zip(results.iter_mut()) {
            let Some(peer) = peer else { continue };
            let round = measure(peer, connections, duration, warmup)?;
            match total {
                Some(total) => total.merge(&round),
                None => *total = Some(round),
            }
        }
    }
    let instantiate = results[0].as_ref().map_or((0, 0), |wisp| {
        (
            wisp.instantiate_us.value_at_quantile(0.5),
            wisp.instantiate_us.value_at_quantile(0.99),
        )
    });
    let rows: Vec<Row> = servers
        .into_iter()
        .zip(results)
        .map(|((name, _peer, missing), result)| Row {
            name,
            result,
            missing,
        })
        .collect();
    let _ = std::fs::remove_dir_all(&cache);

    println!(
        "hello, {connections} connections, {rounds} interleaved rounds of {}s per server (each after {}s warm-up); load generator on 1 thread; {}\n",
        duration.as_secs(),
        warmup.as_secs(),
        report::machine_line()
    );
    print!("{}", report::throughput_table(&rows, WASMTIME_SERVE));
    println!(
        "\nwisp instantiation per request (Server-Timing): p50 {}, p99 {}",
        report::micros(instantiate.0),
        report::micros(instantiate.1)
    );
    Ok(())
}

/// Each toolchain's hello through `path` and `wasmtime serve` with the same instance settings,
/// with a line saying how it was measured.
fn guest_table(load: &LoadArgs, path: WispPath) -> anyhow::Result<String> {
    let wisp = peers::fresh_wisp_binary()?;
    let wasmtime = cases::guests::wasmtime_binary();
    let settings = cases::guests::Settings {
        duration: Duration::from_secs(load.seconds),
        warmup: Duration::from_secs(load.warmup),
        rounds: load.rounds,
    };
    let table = match path {
        WispPath::Run => cases::guests::run(&wisp, wasmtime.as_deref(), &settings)?,
        WispPath::Up => cases::guests::run_through_up(&wisp, wasmtime.as_deref(), &settings)?,
    };
    let through = match path {
        WispPath::Run => "served by `wisp run`",
        WispPath::Up => "each a Service of `wisp up` (min-scale 1) behind its gateway",
    };
    Ok(format!(
        "each guest's hello {through}, {} interleaved rounds of {}s per server (each after {}s warm-up), the same instance settings on both sides; {}\n\n{table}",
        settings.rounds,
        settings.duration.as_secs(),
        settings.warmup.as_secs(),
        report::machine_line()
    ))
}

const WASMTIME_SERVE: &str = cases::gateway::WASMTIME_SERVE;
