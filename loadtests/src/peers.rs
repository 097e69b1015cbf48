//! The servers a benchmark compares, started as child processes on ephemeral loopback ports:
//! `wisp run`, `wasmtime serve -S cli`, and the plain hyper ceiling. Binaries come from
//! environment variables or `PATH`; a missing one is reported, never faked.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};

/// A server process; killed when dropped.
pub struct Peer {
    pub name: String,
    pub url: String,
    child: Child,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Which line of the child's output announces its address, and how.
enum Announce {
    /// `listening on http://ADDR` on stdout (wisp and the ceiling).
    StdoutListening,
    /// `Serving HTTP on http://ADDR/` on stderr (`wasmtime serve`).
    StderrServing,
    /// `gateway: http://ADDR` on stdout (`wisp serve`).
    StdoutGateway,
    /// `api: https://ADDR` on stdout (`wisp api-server`).
    StdoutApi,
}

/// Finds a binary: `$VAR` if set, else `name` on `PATH`, else `fallback` if it exists.
pub fn locate(var: &str, name: &str, fallback: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path));
    }
    if let Some(path) = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
    {
        return Some(path);
    }
    fallback.filter(|path| path.is_file())
}

/// The `wisp` binary built next to this one (same profile), unless `$WISP` says otherwise.
/// Test executables live one level down, in `deps/`, so that level is skipped.
pub fn wisp_binary() -> Option<PathBuf> {
    let sibling = std::env::current_exe().ok().and_then(|exe| {
        let dir = exe.parent()?;
        let dir = if dir.ends_with("deps") {
            dir.parent()?
        } else {
            dir
        };
        Some(dir.join("wisp"))
    });
    if let Some(path) = std::env::var_os("WISP") {
        return Some(PathBuf::from(path));
    }
    sibling.filter(|path| path.is_file())
}

/// [`wisp_binary`] for a measurement: an error that says how to fix it when there is none, or
/// when it is older than the checkout's sources (a run would measure an old build). `$WISP` is
/// taken as given.
pub fn fresh_wisp_binary() -> anyhow::Result<PathBuf> {
    let binary = wisp_binary().context(
        "cannot find the wisp binary: build it with `cargo build --release -p wisp` or set $WISP",
    )?;
    if std::env::var_os("WISP").is_some() {
        return Ok(binary);
    }
    if let Some(source) =
        crate::freshness::newer_source(&binary, &crate::wisp_up::repository_root())
    {
        bail!(
            "{} is older than {}: it would run an old build. Rebuild it with `cargo build \
             --release -p wisp` (or `cargo build -p wisp` for target/debug), or set $WISP to the \
             binary to run",
            binary.display(),
            source.display()
        );
    }
    Ok(binary)
}

pub fn start_wisp_run(wisp: &Path, component: &str, cache: &Path) -> anyhow::Result<Peer> {
    start_wisp_run_with(wisp, component, cache, &[])
}

/// `wisp run` with `extra` flags (instance reuse, for one).
pub fn start_wisp_run_with(
    wisp: &Path,
    component: &str,
    cache: &Path,
    extra: &[String],
) -> anyhow::Result<Peer> {
    let mut command = Command::new(wisp);
    command
        .args(["run", component, "--addr", "127.0.0.1:0", "--cache-dir"])
        .arg(cache)
        .args(extra)
        .env("WISP_LOG", "warn");
    start("wisp run", command, Announce::StdoutListening)
}

/// `wisp serve MANIFEST` with `config-autoscaler` overrides (`key=value`) and room for
/// `allocatable` bytes of replica memory limits.
pub fn start_wisp_serve(
    wisp: &Path,
    manifest: &Path,
    cache: &Path,
    autoscaler: &[&str],
    allocatable: &str,
) -> anyhow::Result<Peer> {
    let mut command = Command::new(wisp);
    command
        .arg("serve")
        .arg(manifest)
        .args(["--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
        .args(["--allocatable-memory", allocatable, "--cache-dir"])
        .arg(cache)
        .env("WISP_LOG", "warn");
    for setting in autoscaler {
        command.args(["--autoscaler", setting]);
    }
    start("wisp serve", command, Announce::StdoutGateway)
}

/// `wisp api-server` over `data_dir` on a free loopback port; its kubeconfig (written before
/// the `api:` line is printed) is `data_dir/kubeconfig`.
pub fn start_wisp_api_server(wisp: &Path, data_dir: &Path) -> anyhow::Result<Peer> {
    let mut command = Command::new(wisp);
    command
        .arg("api-server")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--api-addr", "127.0.0.1:0"])
        .env("WISP_LOG", "warn");
    start("wisp api-server", command, Announce::StdoutApi)
}

pub fn start_wasmtime_serve(wasmtime: &Path, component: &str) -> anyhow::Result<Peer> {
    start_wasmtime_serve_with(wasmtime, component, &[])
}

/// `wasmtime serve -S cli` with `extra` options (instance reuse, WASIp3).
pub fn start_wasmtime_serve_with(
    wasmtime: &Path,
    component: &str,
    extra: &[String],
) -> anyhow::Result<Peer> {
    let mut command = Command::new(wasmtime);
    command
        .args(["serve", "-S", "cli", "--addr", "127.0.0.1:0"])
        .args(extra)
        .arg(component);
    start("wasmtime serve -S cli", command, Announce::StderrServing)
}

pub fn start_ceiling() -> anyhow::Result<Peer> {
    let exe = std::env::current_exe().context("cannot find this program's own path")?;
    let mut command = Command::new(exe);
    command.args(["ceiling-server", "--addr", "127.0.0.1:0"]);
    start("plain hyper (ceiling)", command, Announce::StdoutListening)
}

fn start(name: &str, mut command: Command, announce: Announce) -> anyhow::Result<Peer> {
    // Every peer inherits the caller's environment as is (RUST_BACKTRACE included): a server
    // whose speed depends on the shell it starts from should show it here.
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {name} ({command:?})"))?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let (sender, receiver) = mpsc::channel();
    spawn_reader(
        stdout,
        sender.clone(),
        matches!(
            announce,
            Announce::StdoutListening | Announce::StdoutGateway | Announce::StdoutApi
        ),
    );
    spawn_reader(stderr, sender, matches!(announce, Announce::StderrServing));
    let url = match receiver.recv_timeout(Duration::from_secs(60)) {
        Ok(url) => url,
        Err(_) => {
            let _ = child.kill();
            bail!("{name} did not announce its address within 60 s");
        }
    };
    Ok(Peer {
        name: name.to_owned(),
        url,
        child,
    })
}

/// Forwards the announced URL once; keeps draining the pipe so the child never blocks on it.
fn spawn_reader(
    stream: Option<impl std::io::Read + Send + 'static>,
    sender: mpsc::Sender<String>,
    announces: bool,
) {
    let Some(stream) = stream else { return };
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if !announces {
                continue;
            }
            let url = line
                .strip_prefix("listening on ")
                .or_else(|| line.strip_prefix("Serving HTTP on "))
                .or_else(|| line.strip_prefix("gateway: "))
                .or_else(|| line.strip_prefix("api: "))
                .map(|url| url.trim_end_matches('/').to_owned());
            if let Some(url) = url {
                let _ = sender.send(url);
            }
        }
    });
}
