//! Starting `wisp run` (and other wisp commands) as a real process on ephemeral loopback
//! ports, for end-to-end tests.

#![allow(dead_code)]

pub mod sockets;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `wisp run`; killed when dropped.
pub struct WispRun {
    child: Child,
    pub base: String,
    stderr: Arc<Mutex<String>>,
    _cache: Option<tempfile::TempDir>,
}

impl WispRun {
    /// Serves `component` with a fresh private compile cache.
    pub fn start(component: &str, extra: &[&str]) -> Self {
        let cache = tempfile::tempdir().expect("temp dir");
        let mut run = Self::start_with_cache(component, cache.path(), extra);
        run._cache = Some(cache);
        run
    }

    pub fn start_with_cache(component: &str, cache: &Path, extra: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wisp"));
        command
            .args(["run", component, "--addr", "127.0.0.1:0", "--cache-dir"])
            .arg(cache)
            .args(extra);
        Self::spawn(command)
    }

    /// Serves `component` with the process's virtual address space capped at `kib` KiB
    /// (`ulimit -v`), as on hosts with little address space.
    pub fn start_with_address_space_limit(component: &str, kib: u64) -> Self {
        let mut command = Command::new("bash");
        command.arg("-c").arg(format!(
            "ulimit -v {kib} && exec \"$0\" run \"$1\" --addr 127.0.0.1:0 --no-cache"
        ));
        command.arg(env!("CARGO_BIN_EXE_wisp")).arg(component);
        Self::spawn(command)
    }

    fn spawn(mut command: Command) -> Self {
        let mut child = command
            .env("WISP_LOG", "info,wisp_runtime::replica=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wisp");
        let stderr = collect(child.stderr.take().expect("stderr"));
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("read stdout");
        let base = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                let _ = child.wait();
                panic!(
                    "wisp did not start: stdout {first:?}, stderr:\n{}",
                    stderr.lock().unwrap()
                )
            })
            .to_owned();
        Self {
            child,
            base,
            stderr,
            _cache: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process has logged so far.
    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (bounded) until the logs contain `needle`.
    pub fn wait_for_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.logs().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn terminate(&self) {
        terminate(&self.child);
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        wait_exit(&mut self.child)
    }

    /// Peak resident memory of the process so far, in bytes.
    pub fn peak_rss(&self) -> u64 {
        peak_rss(self.child.id())
    }
}

/// Sends SIGTERM.
fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Waits (bounded) for a process to exit.
fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "wisp did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `VmHWM` of a process: its peak resident memory so far, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmHWM value");
    kib * 1024
}

impl Drop for WispRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running wisp started with any arguments, whose first stdout lines announce what it serves
/// (as `wisp serve` prints `gateway: URL`, `metrics: URL`, …); killed when dropped.
pub struct WispProcess {
    child: Child,
    /// The first stdout lines, as read at start.
    pub lines: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl WispProcess {
    /// Runs `wisp ARGS…` and waits for its first `lines` lines of stdout; panics with its logs
    /// when it exits before printing them.
    pub fn start<S: AsRef<std::ffi::OsStr>>(args: &[S], lines: usize) -> Self {
        Self::start_with_env(args, &[], lines)
    }

    /// [`Self::start`] with environment variables `env` set, as a Pod's downward API would.
    pub fn start_with_env<S: AsRef<std::ffi::OsStr>>(
        args: &[S],
        env: &[(&str, &str)],
        lines: usize,
    ) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wisp"))
            .args(args)
            .envs(env.iter().copied())
            .env("WISP_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wisp");
        let stderr = collect(child.stderr.take().expect("stderr"));
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut read = Vec::with_capacity(lines);
        while read.len() < lines {
            let mut line = String::new();
            let n = stdout.read_line(&mut line).expect("read stdout");
            if n == 0 {
                let status = child.wait();
                panic!(
                    "wisp ended ({status:?}) after printing {read:?}; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
            read.push(line.trim_end().to_owned());
        }
        // Keep draining stdout so the process never blocks on a full pipe.
        collect(stdout.into_inner());
        Self {
            child,
            lines: read,
            stderr,
        }
    }

    /// Peak resident memory of the process so far, in bytes.
    pub fn peak_rss(&self) -> u64 {
        peak_rss(self.child.id())
    }

    /// The value of the first start-up line `KEY: VALUE`.
    pub fn value(&self, key: &str) -> &str {
        let prefix = format!("{key}: ");
        self.lines
            .iter()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {key:?} line in {:?}", self.lines))
    }

    /// `HOST:PORT` of a `KEY: http://HOST:PORT` line.
    pub fn addr(&self, key: &str) -> std::net::SocketAddr {
        let url = self.value(key);
        url.strip_prefix("http://")
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("{key}: {url:?} is not http://HOST:PORT"))
    }

    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// A reader of the logs that outlives borrows of the process.
    pub fn log_reader(&self) -> Arc<dyn Fn() -> String + Send + Sync> {
        let stderr = self.stderr.clone();
        Arc::new(move || stderr.lock().map(|text| text.clone()).unwrap_or_default())
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        terminate(&self.child);
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        wait_exit(&mut self.child)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGKILL (no chance to flush or shut down) and reaps the process.
    pub fn kill(&mut self) -> ExitStatus {
        let _ = self.child.kill();
        wait_exit(&mut self.child)
    }
}

impl Drop for WispProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `wisp ARGS…` to completion, for commands that should refuse their input; returns
/// (exit code, stdout, stderr). Panics if it is still running after a minute (it was expected
/// to stop, not to serve).
pub fn run_to_end<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wisp");
    let stdout = collect(child.stdout.take().expect("stdout"));
    let stderr = collect(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "wisp did not exit; stdout:\n{}\nstderr:\n{}",
                stdout.lock().unwrap(),
                stderr.lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The collectors finish once the pipes close; give them a moment to take the last bytes.
    let read = |text: &Arc<Mutex<String>>| {
        let settle = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(text) > 1 && Instant::now() < settle {
            std::thread::sleep(Duration::from_millis(5));
        }
        text.lock().unwrap().clone()
    };
    (status.code(), read(&stdout), read(&stderr))
}

fn collect(mut stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 8192];
        while let Ok(n) = stream.read(&mut buffer) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
    text
}

/// Runs `wisp run` on something that should be refused; returns (exit code, stderr).
pub fn run_expecting_failure(component: &Path) -> (Option<i32>, String) {
    let cache = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .arg("run")
        .arg(component)
        .args(["--addr", "127.0.0.1:0", "--cache-dir"])
        .arg(cache.path())
        .stdin(Stdio::null())
        .output()
        .expect("run wisp");
    assert!(
        output.stdout.is_empty(),
        "nothing may be served: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}
