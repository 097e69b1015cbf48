//! Benchmark cases that need more than one closed-loop table: the gateway against the runtime
//! and its peers, scaling from zero (cold starts, bursts), and the API server.

pub mod api;
pub mod cluster;
pub mod create_to_ready;
pub mod gateway;
pub mod guests;
pub mod isolation;
pub mod large_guest;
pub mod nodes;
pub mod replicas;
pub mod scale;
pub mod services;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::closed_loop::{ClosedLoop, RunResult};
use crate::manifests::{self, ServiceManifest};
use crate::peers;
use crate::target::Target;

/// Host of a Service on the gateway (the default `localhost` domain).
pub fn service_host(name: &str) -> String {
    format!("{name}.default.localhost")
}

/// A gateway URL plus the Host of one of its services.
pub fn gateway_target(gateway_url: &str, service: &str) -> anyhow::Result<Target> {
    let mut target = Target::parse(&format!("{gateway_url}/"))?;
    target.host = service_host(service);
    Ok(target)
}

/// A closed loop on a fresh single-threaded runtime, so every server is measured alike.
pub fn measure(
    target: &Target,
    connections: usize,
    duration: Duration,
    warmup: Duration,
) -> anyhow::Result<RunResult> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(
        ClosedLoop {
            target: target.clone(),
            connections,
            warmup,
            duration,
        }
        .run(),
    ))
}

/// A scratch directory for one benchmark run: manifests and the compile cache.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(case: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("wisp-bench-{case}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the scratch directory {}", dir.display()))?;
        Ok(Self { dir })
    }

    /// Writes `services` as one manifest file and returns its path.
    pub fn manifest(&self, services: &[ServiceManifest]) -> anyhow::Result<PathBuf> {
        let path = self.dir.join("services.yaml");
        std::fs::write(&path, manifests::to_yaml(services))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    pub fn cache(&self) -> PathBuf {
        self.dir.join("cache")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn wisp_binary() -> anyhow::Result<PathBuf> {
    peers::fresh_wisp_binary()
}

/// `wasmtime serve` if it can be found, else the reason it is missing.
pub fn wasmtime() -> Result<PathBuf, String> {
    peers::locate("WASMTIME", "wasmtime", None).ok_or_else(|| {
        "missing: set $WASMTIME or `cargo install wasmtime-cli --version 48.0.8 --locked`".into()
    })
}

/// The soft limit on open files, from `/proc/self/limits`.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Fails early with a fix when `connections` sockets (each with a server side in another
/// process) will not fit under the open-files limit.
pub fn require_open_files(connections: usize) -> anyhow::Result<()> {
    let needed = connections as u64 + 64;
    match open_files_limit() {
        Some(limit) if limit < needed => anyhow::bail!(
            "{connections} connections need about {needed} open files but the limit is {limit}; raise it first, e.g. `ulimit -n {}`",
            needed * 2
        ),
        _ => Ok(()),
    }
}
