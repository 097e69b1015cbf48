//! `bench large-guest`: how fast a large component (the componentize-py hello, ~20 MB, a whole
//! CPython inside) starts. A cold start has three costs: compiling (once per digest per machine,
//! then read from the compile cache), starting the process, and instantiating (per request with
//! fresh instances; copy-on-write memory images make it cheap). Each is measured on its own,
//! beside `wasmtime serve` starting the same component.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::peers::{self, Peer};
use crate::report;
use crate::target::Target;

/// The guests measured: (sample name, label).
const GUESTS: &[(&str, &str)] = &[
    ("py-hello", "componentize-py hello"),
    ("js-hello", "ComponentizeJS hello"),
    ("hello", "Rust wstd hello"),
];

pub fn run(seconds: u64) -> anyhow::Result<String> {
    let wisp = peers::fresh_wisp_binary()?;
    let wasmtime = peers::locate("WASMTIME", "wasmtime", None);
    let mut table = String::from(
        "| guest | size | wisp run: first answer, empty compile cache | wisp run: first answer, cache warm | fresh instance: instantiate p50 / p99 | request p50, fresh instance each | wasmtime serve: first answer, two starts (its own compile cache as it finds it) |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for (sample, label) in GUESTS {
        let Some(component) = wisp_samples::path(sample) else {
            table.push_str(&format!(
                "| {label} | sample `{sample}` was not built | | | | | |\n"
            ));
            continue;
        };
        let row = measure_guest(&wisp, wasmtime.as_deref(), component, seconds)
            .with_context(|| format!("measuring {label}"))?;
        table.push_str(&format!("| {label} | {row}\n"));
    }
    if wasmtime.is_none() {
        table.push_str(
            "\nwasmtime serve is missing: set $WASMTIME or `cargo install wasmtime-cli --version 48.0.8 --locked`\n",
        );
    }
    Ok(table)
}

fn measure_guest(
    wisp: &Path,
    wasmtime: Option<&Path>,
    component: &Path,
    seconds: u64,
) -> anyhow::Result<String> {
    let size = std::fs::metadata(component)
        .with_context(|| format!("cannot read {}", component.display()))?
        .len();
    let path = component.display().to_string();
    let cache = std::env::temp_dir().join(format!(
        "wisp-bench-large-guest-{}-{}",
        std::process::id(),
        component
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or("guest")
    ));
    let _ = std::fs::remove_dir_all(&cache);

    let cold = first_answer(|| peers::start_wisp_run_with(wisp, &path, &cache, &[]))?;
    let (warm, peer) = first_answer_keep(|| peers::start_wisp_run_with(wisp, &path, &cache, &[]))?;
    let target = Target::parse(&format!("{}/", peer.url))?;
    let steady = super::measure(
        &target,
        1,
        Duration::from_secs(seconds),
        Duration::from_secs(1),
    )?;
    drop(peer);
    let _ = std::fs::remove_dir_all(&cache);

    let wasmtime_starts = match wasmtime {
        Some(wasmtime) => {
            let first = first_answer(|| peers::start_wasmtime_serve_with(wasmtime, &path, &[]))?;
            let second = first_answer(|| peers::start_wasmtime_serve_with(wasmtime, &path, &[]))?;
            format!("{} / {}", seconds_text(first), seconds_text(second))
        }
        None => "missing".into(),
    };
    Ok(format!(
        "{:.1} MB | {} | {} | {} / {} | {} | {wasmtime_starts} |",
        size as f64 / 1e6,
        seconds_text(cold),
        seconds_text(warm),
        report::micros(steady.instantiate_us.value_at_quantile(0.5)),
        report::micros(steady.instantiate_us.value_at_quantile(0.99)),
        report::micros(steady.latency_us.value_at_quantile(0.5)),
    ))
}

fn seconds_text(duration: Duration) -> String {
    if duration >= Duration::from_secs(1) {
        format!("{:.2} s", duration.as_secs_f64())
    } else {
        format!("{:.0} ms", duration.as_secs_f64() * 1e3)
    }
}

/// From starting the server process to its first 200 answer.
fn first_answer(start: impl FnOnce() -> anyhow::Result<Peer>) -> anyhow::Result<Duration> {
    Ok(first_answer_keep(start)?.0)
}

fn first_answer_keep(
    start: impl FnOnce() -> anyhow::Result<Peer>,
) -> anyhow::Result<(Duration, Peer)> {
    let began = Instant::now();
    let peer = start()?;
    let address = peer
        .url
        .strip_prefix("http://")
        .context("the server announced a URL that is not http://")?
        .to_owned();
    let status = get_status(&address)?;
    let elapsed = began.elapsed();
    if status != 200 {
        bail!("{} answered {status} to its first request", peer.name);
    }
    Ok((elapsed, peer))
}

/// One `GET /` over a fresh connection; the status code.
fn get_status(address: &str) -> anyhow::Result<u16> {
    let mut stream =
        TcpStream::connect(address).with_context(|| format!("cannot connect to {address}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("{address} answered something that is not HTTP: {text:.80}"))
}
