//! `wisp-loadtests`: benchmarks of wisp against its peers, measured side by side in one run.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use wisp_loadtests::closed_loop::ClosedLoop;
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
    /// The plain hyper server used as the HTTP ceiling (started by `bench`).
    #[command(hide = true)]
    CeilingServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: SocketAddr,
    },
}

#[derive(Subcommand)]
enum BenchCase {
    /// Warm `hello` throughput and latency: `wisp run` vs `wasmtime serve -S cli` vs plain hyper.
    Run {
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Seconds measured per server.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Seconds of warm-up per server before measuring.
        #[arg(long, default_value_t = 2)]
        warmup: u64,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::CeilingServer { addr } => ceiling_server(addr),
        Command::Bench {
            case:
                BenchCase::Run {
                    connections,
                    seconds,
                    warmup,
                },
        } => bench_run(
            connections,
            Duration::from_secs(seconds),
            Duration::from_secs(warmup),
        ),
    }
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
) -> anyhow::Result<wisp_loadtests::closed_loop::RunResult> {
    let target = Target::parse(&format!("{}/", peer.url))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(
        ClosedLoop {
            target,
            connections,
            warmup,
            duration,
        }
        .run(),
    ))
}

fn bench_run(connections: usize, duration: Duration, warmup: Duration) -> anyhow::Result<()> {
    let component = wisp_samples::HELLO;
    let cache = std::env::temp_dir().join(format!("wisp-bench-cache-{}", std::process::id()));
    let mut rows = Vec::new();

    let wisp = peers::wisp_binary().context(
        "cannot find the wisp binary: build it with `cargo build --release -p wisp` or set $WISP",
    )?;
    let peer = peers::start_wisp_run(&wisp, component, &cache)?;
    let wisp_result = measure(&peer, connections, duration, warmup)?;
    drop(peer);

    let wasmtime = peers::locate("WASMTIME", "wasmtime", None);
    let wasmtime_row = match wasmtime {
        Some(path) => {
            let peer = peers::start_wasmtime_serve(&path, component)?;
            Row {
                name: peer.name.clone(),
                result: Some(measure(&peer, connections, duration, warmup)?),
                missing: None,
            }
        }
        None => Row {
            name: "wasmtime serve -S cli".into(),
            result: None,
            missing: Some(
                "missing: set $WASMTIME or `cargo install wasmtime-cli --version 48.0.8 --locked`"
                    .into(),
            ),
        },
    };

    let ceiling = peers::start_ceiling()?;
    let ceiling_result = measure(&ceiling, connections, duration, warmup)?;
    drop(ceiling);
    let _ = std::fs::remove_dir_all(&cache);

    let instantiate = (
        wisp_result.instantiate_us.value_at_quantile(0.5),
        wisp_result.instantiate_us.value_at_quantile(0.99),
    );
    rows.push(Row {
        name: "wisp run".into(),
        result: Some(wisp_result),
        missing: None,
    });
    rows.push(wasmtime_row);
    rows.push(Row {
        name: "plain hyper (ceiling)".into(),
        result: Some(ceiling_result),
        missing: None,
    });

    println!(
        "hello, {connections} connections, {}s per server after {}s warm-up; load generator on 1 thread; {}\n",
        duration.as_secs(),
        warmup.as_secs(),
        report::machine_line()
    );
    print!(
        "{}",
        report::throughput_table(&rows, "wasmtime serve -S cli")
    );
    println!(
        "\nwisp instantiation per request (Server-Timing): p50 {}, p99 {}",
        report::micros(instantiate.0),
        report::micros(instantiate.1)
    );
    Ok(())
}
