//! The guest tables of `bench run` and `bench gateway`: each toolchain's `hello` served by wisp
//! (`wisp run`, or a Service of `wisp up` behind its gateway) and by `wasmtime serve` with the
//! same instance settings, measured in interleaved rounds, as ratios. Fresh
//! instances per request measure instantiation; reused ones measure the HTTP path around the
//! guest. The goal (issue 18): at least 2× `wasmtime serve` where instances are fresh, 1.3× where
//! they are reused. The last rows tune how a slot's memory is reset the same way on both sides
//! (`--memory-reset whole-prefix`, and `wasmtime serve`'s `-O pooling-…` equivalents), so
//! what the setting buys is not credited to wisp alone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::closed_loop::RunResult;
use crate::manifests::ServiceManifest;
use crate::peers;
use crate::report;
use crate::target::Target;

use super::cluster::Cluster;
use super::gateway_target;

/// One row: a guest, how its instances are used, and how many connections load it.
pub struct GuestRow {
    pub label: &'static str,
    /// The sample's name in `wisp_samples`.
    pub sample: &'static str,
    pub wasip3: bool,
    /// `--max-instance-reuse-count` on both sides; `None` keeps each side's default.
    pub reuse: Option<u32>,
    pub connections: usize,
    /// How both sides reset an instance's memory slot.
    pub reset: SlotReset,
}

/// How a row's servers reset a pool slot's memory for the next instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotReset {
    /// Each side's default: wisp's `auto` (the dirty pages it finds with PAGEMAP_SCAN are
    /// rewritten, or the first 16 MiB whole for a component whose fresh instances take hundreds
    /// of page faults), `wasmtime serve` unmaps the slot.
    Defaults,
    /// Both rewrite the first 16 MiB whole and keep it mapped, 1 MiB of tables likewise.
    WholePrefix,
}

/// `wasmtime serve`'s flags for what `--memory-reset whole-prefix` does in wisp.
const WASMTIME_WHOLE_PREFIX: [&str; 6] = [
    "-O",
    "pooling-memory-keep-resident=16777216",
    "-O",
    "pooling-table-keep-resident=1048576",
    "-O",
    "pooling-pagemap-scan=n",
];

impl SlotReset {
    /// Flags of `wisp run` and `wisp up`.
    fn wisp_args(self) -> Vec<String> {
        match self {
            Self::Defaults => Vec::new(),
            Self::WholePrefix => vec!["--memory-reset".into(), "whole-prefix".into()],
        }
    }

    fn wasmtime_args(self) -> Vec<String> {
        match self {
            Self::Defaults => Vec::new(),
            Self::WholePrefix => WASMTIME_WHOLE_PREFIX.map(String::from).to_vec(),
        }
    }
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
        reset: SlotReset::Defaults,
    },
    GuestRow {
        label: "Rust spin-sdk 7 hello, WASIp3, reused (defaults: 128, 16 at once)",
        sample: "p3-hello",
        wasip3: true,
        reuse: None,
        connections: 64,
        reset: SlotReset::Defaults,
    },
    GuestRow {
        label: "componentize-py hello, WASIp2, fresh",
        sample: "py-hello",
        wasip3: false,
        reuse: None,
        connections: 8,
        reset: SlotReset::Defaults,
    },
    GuestRow {
        label: "componentize-py hello, WASIp2, reuse 128",
        sample: "py-hello",
        wasip3: false,
        reuse: Some(128),
        connections: 8,
        reset: SlotReset::Defaults,
    },
    GuestRow {
        label: "ComponentizeJS hello, WASIp2, fresh",
        sample: "js-hello",
        wasip3: false,
        reuse: None,
        connections: 8,
        reset: SlotReset::Defaults,
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
        reset: SlotReset::Defaults,
    },
    // The same Python rows with the slot reset wisp's `auto` picks for them, given to both
    // sides: what is left is wisp's own lead.
    GuestRow {
        label: "componentize-py hello, WASIp2, fresh, whole-prefix reset on both sides",
        sample: "py-hello",
        wasip3: false,
        reuse: None,
        connections: 8,
        reset: SlotReset::WholePrefix,
    },
    GuestRow {
        label: "componentize-py hello, WASIp2, reuse 128, whole-prefix reset on both sides",
        sample: "py-hello",
        wasip3: false,
        reuse: Some(128),
        connections: 8,
        reset: SlotReset::WholePrefix,
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

/// Which of wisp's paths serves the guests: the runtime alone, or the whole request path of a
/// cluster (gateway, activator, replica) with each guest a Service applied to `wisp up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WispPath {
    Run,
    Up,
}

impl WispPath {
    fn column(self) -> &'static str {
        match self {
            Self::Run => "wisp run",
            Self::Up => "wisp up",
        }
    }
}

/// Measures every row through `wisp run` and returns the Markdown table (with a line per row
/// that could not run).
pub fn run(wisp: &Path, wasmtime: Option<&Path>, settings: &Settings) -> anyhow::Result<String> {
    let cache =
        std::env::temp_dir().join(format!("wisp-bench-guests-cache-{}", std::process::id()));
    let measured = ROWS
        .iter()
        .map(|row| {
            let Some(component) = wisp_samples::path(row.sample) else {
                return Ok(None);
            };
            let component = component.display().to_string();
            let mut args = row.reuse_args();
            args.extend(row.reset.wisp_args());
            let peer = peers::start_wisp_run_with(wisp, &component, &cache, &args)
                .with_context(|| format!("starting wisp run for {}", row.label))?;
            let target = Target::parse(&format!("{}/", peer.url))?;
            measure_row(&target, wasmtime, row, &component, settings)
                .with_context(|| format!("measuring {}", row.label))
                .map(Some)
        })
        .collect::<anyhow::Result<Vec<_>>>();
    let _ = std::fs::remove_dir_all(&cache);
    Ok(table(WispPath::Run, &measured?, wasmtime.is_some()))
}

/// Measures every row through `wisp up`: each guest a Service (kept at one replica, its
/// instance settings as `wisp.dev/` annotations) behind the gateway. The slot reset is a node's
/// setting, so the rows of each reset get a cluster of their own.
pub fn run_through_up(
    wisp: &Path,
    wasmtime: Option<&Path>,
    settings: &Settings,
) -> anyhow::Result<String> {
    let mut measured: Vec<Option<Measured>> = ROWS.iter().map(|_| None).collect();
    for reset in [SlotReset::Defaults, SlotReset::WholePrefix] {
        for (index, result) in measure_through_up(wisp, wasmtime, settings, reset)? {
            measured[index] = Some(result);
        }
    }
    Ok(table(WispPath::Up, &measured, wasmtime.is_some()))
}

/// The rows with `reset` whose sample was built, each measured through one cluster started
/// with that reset: (row index, measurement).
fn measure_through_up(
    wisp: &Path,
    wasmtime: Option<&Path>,
    settings: &Settings,
    reset: SlotReset,
) -> anyhow::Result<Vec<(usize, Measured)>> {
    let services: Vec<(usize, &GuestRow, ServiceManifest)> = ROWS
        .iter()
        .enumerate()
        .filter(|(_, row)| row.reset == reset)
        .filter_map(|(index, row)| {
            let component = wisp_samples::path(row.sample)?;
            Some((
                index,
                row,
                row.service(index, &component.display().to_string()),
            ))
        })
        .collect();
    if services.is_empty() {
        return Ok(Vec::new());
    }
    let manifests: Vec<ServiceManifest> = services.iter().map(|(_, _, s)| s.clone()).collect();
    let flags = reset.wisp_args();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cluster = runtime.block_on(async {
        let cluster = Cluster::start(wisp, &flags).await?;
        cluster.create(&manifests, manifests.len()).await?;
        cluster.wait_ready(manifests.len()).await?;
        anyhow::Ok(cluster)
    })?;
    let gateway = format!("http://{}", cluster.gateway());
    let measured = services
        .iter()
        .map(|(index, row, service)| {
            let target = gateway_target(&gateway, &service.name)?;
            measure_row(&target, wasmtime, row, &service.component, settings)
                .with_context(|| format!("measuring {} through wisp up", row.label))
                .map(|measured| (*index, measured))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    drop(cluster);
    Ok(measured)
}

impl GuestRow {
    /// The row as a Service of `wisp up`, named after its place in [`ROWS`].
    fn service(&self, index: usize, component: &str) -> ServiceManifest {
        let service =
            ServiceManifest::new(format!("guest-{index}"), component).autoscaling("min-scale", "1");
        match self.reuse {
            Some(count) => {
                service.annotation("wisp.dev/max-instance-reuse-count", &count.to_string())
            }
            None => service,
        }
    }
}

fn table(path: WispPath, measured: &[Option<Measured>], has_wasmtime: bool) -> String {
    let column = path.column();
    let mut table = format!(
        "| guest | conns | {column} req/s | p50 | wasmtime serve req/s | p50 | wisp ÷ wasmtime | goal |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for (row, measured) in ROWS.iter().zip(measured) {
        match measured {
            Some(measured) => table.push_str(&table_row(row, measured)),
            None => table.push_str(&format!(
                "| {} | {} | sample `{}` was not built | | | | | |\n",
                row.label, row.connections, row.sample
            )),
        }
    }
    if !has_wasmtime {
        table.push_str(
            "\nwasmtime serve is missing: set $WASMTIME or `cargo install wasmtime-cli --version 48.0.8 --locked`\n",
        );
    }
    table
}

/// Starts `wasmtime serve` with the row's instance settings and measures it and `wisp` in
/// interleaved rounds.
fn measure_row(
    wisp: &Target,
    wasmtime: Option<&Path>,
    row: &GuestRow,
    component: &str,
    settings: &Settings,
) -> anyhow::Result<Measured> {
    let wasmtime_peer = match wasmtime {
        Some(path) => {
            let mut args = row.reuse_args();
            args.extend(row.reset.wasmtime_args());
            if row.wasip3 {
                args.extend(["-S", "p3", "-W", "component-model-async"].map(String::from));
            }
            Some(peers::start_wasmtime_serve_with(path, component, &args)?)
        }
        None => None,
    };
    let wasmtime_target = wasmtime_peer
        .as_ref()
        .map(|peer| Target::parse(&format!("{}/", peer.url)))
        .transpose()?;
    let mut wisp_total: Option<RunResult> = None;
    let mut wasmtime_total: Option<RunResult> = None;
    for _ in 0..settings.rounds.max(1) {
        merge(&mut wisp_total, measure(wisp, row, settings)?);
        if let Some(target) = &wasmtime_target {
            merge(&mut wasmtime_total, measure(target, row, settings)?);
        }
    }
    Ok(Measured {
        wisp: wisp_total.context("no round measured")?,
        wasmtime: wasmtime_total,
    })
}

fn measure(target: &Target, row: &GuestRow, settings: &Settings) -> anyhow::Result<RunResult> {
    super::measure(target, row.connections, settings.duration, settings.warmup)
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
