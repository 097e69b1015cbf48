//! A `wisp up` process for scenarios, the demo and the soak: a fresh data directory, every port
//! ephemeral on loopback, images resolved from the repository root; it can be killed and
//! restarted on the same directory and ports; stopped when dropped.

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
    /// The API server's address (from its `api: https://HOST:PORT` line).
    api: SocketAddr,
    /// How it was started, to start it again the same way.
    launch: Launch,
}

/// How a `wisp up` is started: the same every time, on the same data directory.
struct Launch {
    wisp: PathBuf,
    image_dir: PathBuf,
    flags: Vec<String>,
    /// Where its log goes (appended to across restarts); the caller's stderr when `None`.
    log: Option<PathBuf>,
    /// The data directory (removed when dropped).
    data_dir: tempfile::TempDir,
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
        Self::start_logging(wisp, image_dir, flags, None)
    }

    /// [`WispUp::start_with`], its log (stderr) appended to `log` rather than shown.
    pub fn start_logging(
        wisp: &Path,
        image_dir: &Path,
        flags: &[&str],
        log: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let launch = Launch {
            wisp: wisp.to_path_buf(),
            image_dir: image_dir.to_path_buf(),
            flags: flags.iter().map(|flag| (*flag).to_owned()).collect(),
            log: log.map(Path::to_path_buf),
            data_dir: tempfile::tempdir().context("cannot make a temporary data directory")?,
        };
        let ephemeral = SocketAddr::from(([127, 0, 0, 1], 0));
        let (child, api, endpoints) = launch.spawn([ephemeral; 3])?;
        Ok(Self {
            child,
            endpoints,
            api,
            launch,
        })
    }

    /// Kills the process with SIGKILL (nothing drained, nothing flushed) and starts `wisp up`
    /// again on the same data directory and the same addresses, as a supervisor would after a
    /// crash; returns once the new process announced itself (its ports bound, the state it
    /// finds in its store loaded).
    pub fn kill_and_restart(&mut self) -> anyhow::Result<()> {
        self.child.kill().context("cannot kill wisp up")?;
        self.child
            .wait()
            .context("cannot reap the killed wisp up")?;
        let before = [self.api, self.endpoints.gateway, self.endpoints.metrics];
        let (child, api, endpoints) = self.launch.spawn(before)?;
        self.child = child;
        let after = [api, endpoints.gateway, endpoints.metrics];
        anyhow::ensure!(
            before == after,
            "the restarted wisp up listens elsewhere ({after:?}) than before ({before:?})"
        );
        self.endpoints = endpoints;
        Ok(())
    }
}

impl Launch {
    /// Starts `wisp up` on `[api, gateway, metrics]`; the API address and endpoints it announces.
    fn spawn(
        &self,
        [api, gateway, metrics]: [SocketAddr; 3],
    ) -> anyhow::Result<(Child, SocketAddr, Endpoints)> {
        let stderr = match &self.log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("cannot open the log {}", path.display()))?,
            ),
            None => Stdio::inherit(),
        };
        let mut command = Command::new(&self.wisp);
        command
            .arg("up")
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .arg("--api-addr")
            .arg(api.to_string())
            .arg("--gateway-addr")
            .arg(gateway.to_string())
            .arg("--metrics-addr")
            .arg(metrics.to_string())
            .arg("--image-dir")
            .arg(&self.image_dir)
            .arg("--allow-path")
            .arg(wisp_samples::dir())
            .args(&self.flags)
            .env("WISP_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {} up", self.wisp.display()))?;
        let lines = announcement(&mut child, "kubeconfig", "wisp up")?;
        let value = |key: &str| announced(&lines, key, "wisp up");
        let address = |key: &str| announced_addr(&lines, key, "wisp up");
        let api_url = value("api")?;
        let api = api_url
            .trim_start_matches("https://")
            .parse()
            .with_context(|| format!("api: {api_url:?} is not https://HOST:PORT"))?;
        let endpoints = Endpoints {
            gateway: address("gateway")?,
            metrics: address("metrics")?,
            kubeconfig: PathBuf::from(value("kubeconfig")?),
        };
        Ok((child, api, endpoints))
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
