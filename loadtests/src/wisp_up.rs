//! A `wisp up` process for scenarios and the demo: a fresh data directory, every port
//! ephemeral on loopback, images resolved from the repository root; stopped when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::runner::Endpoints;

/// How long `wisp up` may take to print its start-up lines (it compiles the manifests' components).
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// A running `wisp up`.
pub struct WispUp {
    child: Child,
    pub endpoints: Endpoints,
    /// The data directory (removed when dropped, unless given by the caller).
    _data_dir: Option<tempfile::TempDir>,
}

/// The repository root, where `samples/knative/*.yaml` image paths are relative to.
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

impl WispUp {
    /// Starts `wisp` (the binary at `wisp`) with `wisp up` over a new temporary data directory.
    pub fn start(wisp: &Path, image_dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(wisp, image_dir, &[])
    }

    /// [`WispUp::start`] with more `wisp up` flags (`--manifests DIR`, `--max-instances N`, …).
    pub fn start_with(wisp: &Path, image_dir: &Path, flags: &[&str]) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir().context("cannot make a temporary data directory")?;
        let mut command = Command::new(wisp);
        command
            .arg("up")
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["--api-addr", "127.0.0.1:0", "--gateway-addr", "127.0.0.1:0"])
            .args(["--metrics-addr", "127.0.0.1:0", "--image-dir"])
            .arg(image_dir)
            .arg("--allow-path")
            .arg(wisp_samples::dir())
            .args(flags)
            .env("WISP_LOG", "warn")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {} up", wisp.display()))?;
        let lines = announcement(&mut child, "kubeconfig", "wisp up")?;
        let value = |key: &str| announced(&lines, key, "wisp up");
        let address = |key: &str| announced_addr(&lines, key, "wisp up");
        let endpoints = Endpoints {
            gateway: address("gateway")?,
            metrics: address("metrics")?,
            kubeconfig: PathBuf::from(value("kubeconfig")?),
        };
        Ok(Self {
            child,
            endpoints,
            _data_dir: Some(data_dir),
        })
    }
}

/// Reads `child`'s stdout until a `{last}: …` line, then keeps draining it in the background
/// (so the child never blocks on a full pipe); the lines read. `what` names the process in
/// errors. The child is killed when it does not get there within [`START_TIMEOUT`].
pub fn announcement(child: &mut Child, last: &str, what: &str) -> anyhow::Result<Vec<String>> {
    let stdout = child
        .stdout
        .take()
        .with_context(|| format!("no stdout from {what}"))?;
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = sender.send(line);
        }
    });
    let prefix = format!("{last}: ");
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.starts_with(&prefix)) {
        match receiver.recv_timeout(START_TIMEOUT) {
            Ok(line) => lines.push(line),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{what} did not start within {START_TIMEOUT:?}; its log is above");
            }
        }
    }
    Ok(lines)
}

/// The value of the start-up line `key: VALUE`.
pub fn announced(lines: &[String], key: &str, what: &str) -> anyhow::Result<String> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .map(str::to_owned)
        .with_context(|| format!("{what} printed no {key:?} line: {lines:?}"))
}

/// The address of the start-up line `key: http://HOST:PORT`.
pub fn announced_addr(lines: &[String], key: &str, what: &str) -> anyhow::Result<SocketAddr> {
    let url = announced(lines, key, what)?;
    url.trim_start_matches("http://")
        .parse()
        .with_context(|| format!("{key}: {url:?} is not http://HOST:PORT"))
}

impl WispUp {
    /// The process id (for its memory and CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for WispUp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
