//! `bench run`'s guest table: each toolchain's `hello` served by `wisp run` and by `wasmtime
//! serve` with the same instance settings, measured in interleaved rounds, as ratios. Fresh
//! instances per request measure instantiation; reused ones measure the HTTP path around the
//! guest. The goal (issue 18): at least 2× `wasmtime serve` where instances are fresh, 1.3× where
//! they are reused.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::closed_loop::RunResult;
use crate::peers::{self, Peer};
use crate::report;
use crate::target::Target;

/// One row: a guest, how its instances are used, and how many connections load it.
pub struct GuestRow {
    pub label: &'static str,
    /// The sample's name in `wisp_samples`.
    pub sample: &'static str,
    pub wasip3: bool,
    /// `--max-instance-reuse-count` on both sides; `None` keeps each side's default.
    pub reuse: Option<u32>,
    pub connections: usize,
}

impl GuestRow {
    fn reused(&self) -> bool {
        self.wasip3 || self.reuse.is_some_and(|count| count > 1)
    }

    /// The ratio the issue asks wisp to reach on this row.
    fn goal(&self) -> f64 {
        if self.reused() { 1.3 } else { 2.0 }
    }

    fn reuse_args(&self) -> Vec<String> {
        self.reuse
            .map(|count| vec!["--max-instance-reuse-count".to_owned(), count.to_string()])
            .unwrap_or_default()
    }
}

/// The rows of issue 18's table, and the JavaScript guest.
pub const ROWS: &[GuestRow] = &[
    GuestRow {
        label: "Rust wstd hello, WASIp2, fresh",
        sample: "hello",
        wasip3: false,
        reuse: None,
        connections: 64,
    },
    GuestRow {
        label: "Rust spin-sdk 7 hello, WASIp3, reused (defaults: 128, 16 at once)",
        sample: "p3-hello",
        wasip3: true,
        reuse: None,
        connections: 64,
    },
    GuestRow {
        label: "componentize-py hello, WASIp2, fresh",
        sample: "py-hello",
        wasip3: false,
        reuse: None,
        connections: 8,
    },
    GuestRow {
        label: "componentize-py hello, WASIp2, reuse 128",
        sample: "py-hello",
        wasip3: false,
        reuse: Some(128),
        connections: 8,
    },
    GuestRow {
        label: "ComponentizeJS hello, WASIp2, fresh",
        sample: "js-hello",
        wasip3: false,
        reuse: None,
        connections: 8,
    },
    // The `fetch`-event `js-hello` cannot be reused (StarlingMonkey throws on an instance's second
    // `respondWith`, every other request a 500); `js-hello-handler` is the same hello exporting
    // `wasi:http/incoming-handler` itself.
    GuestRow {
        label: "ComponentizeJS hello (incoming-handler export), WASIp2, reuse 128",
        sample: "js-hello-handler",
        wasip3: false,
        reuse: Some(128),
        connections: 8,
    },
];

pub struct Settings {
    pub duration: Duration,
    pub warmup: Duration,
    pub rounds: usize,
}

struct Measured {
    wisp: RunResult,
    wasmtime: Option<RunResult>,
}

/// Measures every row and returns the Markdown table (with a line per row that could not run).
pub fn run(wisp: &Path, wasmtime: Option<&Path>, settings: &Settings) -> anyhow::Result<String> {
    let cache =
        std::env::temp_dir().join(format!("wisp-bench-guests-cache-{}", std::process::id()));
    let mut table = String::from(
        "| guest | conns | wisp run req/s | p50 | wasmtime serve req/s | p50 | wisp ÷ wasmtime | goal |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for row in ROWS {
        let Some(component) = wisp_samples::path(row.sample) else {
            table.push_str(&format!(
                "| {} | {} | sample `{}` was not built | | | | | |\n",
                row.label, row.connections, row.sample
            ));
            continue;
        };
        let measured = measure_row(wisp, wasmtime, row, component, &cache, settings)
            .with_context(|| format!("measuring {}", row.label))?;
        table.push_str(&table_row(row, &measured));
    }
    let _ = std::fs::remove_dir_all(&cache);
    if wasmtime.is_none() {
        table.push_str(
            "\nwasmtime serve is missing: set $WASMTIME or `cargo install wasmtime-cli --version 48.0.8 --locked`\n",
        );
    }
    Ok(table)
}

fn measure_row(
    wisp: &Path,
    wasmtime: Option<&Path>,
    row: &GuestRow,
    component: &Path,
    cache: &Path,
    settings: &Settings,
) -> anyhow::Result<Measured> {
    let component = component.display().to_string();
    let wisp_peer = peers::start_wisp_run_with(wisp, &component, cache, &row.reuse_args())?;
    let wasmtime_peer = match wasmtime {
        Some(path) => {
            let mut args = row.reuse_args();
            if row.wasip3 {
                args.extend(["-S", "p3", "-W", "component-model-async"].map(String::from));
            }
            Some(peers::start_wasmtime_serve_with(path, &component, &args)?)
        }
        None => None,
    };
    let mut wisp_total: Option<RunResult> = None;
    let mut wasmtime_total: Option<RunResult> = None;
    for _ in 0..settings.rounds.max(1) {
        merge(&mut wisp_total, measure(&wisp_peer, row, settings)?);
        if let Some(peer) = &wasmtime_peer {
            merge(&mut wasmtime_total, measure(peer, row, settings)?);
        }
    }
    Ok(Measured {
        wisp: wisp_total.context("no round measured")?,
        wasmtime: wasmtime_total,
    })
}

fn measure(peer: &Peer, row: &GuestRow, settings: &Settings) -> anyhow::Result<RunResult> {
    let target = Target::parse(&format!("{}/", peer.url))?;
    super::measure(&target, row.connections, settings.duration, settings.warmup)
}

fn merge(total: &mut Option<RunResult>, round: RunResult) {
    match total {
        Some(total) => total.merge(&round),
        None => *total = Some(round),
    }
}

fn table_row(row: &GuestRow, measured: &Measured) -> String {
    let wisp_rps = measured.wisp.requests_per_second();
    let failures = |result: &RunResult| {
        let failed = result.non_2xx + result.errors;
        if failed == 0 {
            String::new()
        } else {
            format!(" ({failed} failed)")
        }
    };
    let (wasmtime_rps, wasmtime_p50, ratio, goal) = match &measured.wasmtime {
        Some(wasmtime) => {
            let rps = wasmtime.requests_per_second();
            let ratio = wisp_rps / rps.max(f64::EPSILON);
            let met = if ratio >= row.goal() {
                "met"
            } else {
                "not met"
            };
            (
                format!("{rps:.0}{}", failures(wasmtime)),
                report::micros(wasmtime.latency_us.value_at_quantile(0.5)),
                format!("{ratio:.2}×"),
                format!("≥ {:.1}×: {met}", row.goal()),
            )
        }
        None => ("missing".into(), String::new(), "n/a".into(), String::new()),
    };
    format!(
        "| {} | {} | {wisp_rps:.0}{} | {} | {wasmtime_rps} | {wasmtime_p50} | {ratio} | {goal} |\n",
        row.label,
        row.connections,
        failures(&measured.wisp),
        report::micros(measured.wisp.latency_us.value_at_quantile(0.5)),
    )
}

/// Where `wasmtime` is: `$WASMTIME` or `PATH`.
pub fn wasmtime_binary() -> Option<PathBuf> {
    peers::locate("WASMTIME", "wasmtime", None)
}
