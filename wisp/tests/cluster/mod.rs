//! Harness of the `wisp up` end-to-end tests: a `wisp up` process on ephemeral loopback ports
//! over a fresh data directory (compiled components shared between tests through one cache
//! directory), the real kubectl aimed at it, and HTTP through its gateway by Host header.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::common::WispProcess;

/// How long one wait for a condition may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(60);

/// A Kubernetes API with wisp serving it, as the tests drive it: the real kubectl aimed at one
/// namespace with a discovery cache of its own, HTTP through a gateway by Host header, and the
/// logs to show when a check fails. `wisp up` is one ([`Up`] derefs to it); a genuine
/// kube-apiserver with `wisp controller`s and `wisp node`s is another (`kube_conformance.rs`).
pub struct Kube {
    pub kubeconfig: PathBuf,
    pub gateway: SocketAddr,
    pub metrics: SocketAddr,
    /// Every node's metrics address (`metrics` is the first).
    all_metrics: Vec<SocketAddr>,
    /// The wisp Nodes that serve this API.
    nodes: Vec<String>,
    /// The user kubectl acts as (recorded as Knative's creator).
    admin_user: String,
    namespace: String,
    kubectl_home: TempDir,
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    logs: Arc<dyn Fn() -> String + Send + Sync>,
}

/// A killed `wisp up`'s data directory, holding the shared compile cache until it restarts.
pub struct Stopped {
    pub dir: TempDir,
    cache: Option<SharedCache>,
}

impl Stopped {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl From<TempDir> for Stopped {
    fn from(dir: TempDir) -> Self {
        Self { dir, cache: None }
    }
}

/// A running `wisp up`.
pub struct Up {
    pub process: WispProcess,
    pub dir: TempDir,
    kube: Kube,
    /// Dropped after the process (fields drop in order), which has then stopped using it.
    _cache: SharedCache,
}

impl std::ops::Deref for Up {
    type Target = Kube;

    fn deref(&self) -> &Kube {
        &self.kube
    }
}

/// The sample component `name` as an image reference (absolute path).
pub fn image(name: &str) -> String {
    wisp_samples::path(name)
        .unwrap_or_else(|| panic!("no sample {name}"))
        .display()
        .to_string()
}

/// How many [`SharedCache`] guards are alive in this test process.
static CACHE_USERS: Mutex<usize> = Mutex::new(0);

/// The prefix of the shared compile caches' directory names in the temporary directory.
const CACHE_PREFIX: &str = "wisp-up-tests-cache-";

/// One cache of compiled components for the tests of a run, so each component compiles once
/// while any test uses it; removed when the last user drops its guard, and a run that died
/// without doing so (SIGKILL, abort) has its directory removed by the next run.
pub struct SharedCache {
    path: PathBuf,
}

impl SharedCache {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn as_os_str(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }
}

impl Drop for SharedCache {
    fn drop(&mut self) {
        let mut users = CACHE_USERS.lock().unwrap_or_else(|e| e.into_inner());
        *users -= 1;
        if *users == 0 {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The shared compile cache, held until the guard drops.
pub fn shared_cache() -> SharedCache {
    let mut users = CACHE_USERS.lock().unwrap_or_else(|e| e.into_inner());
    let temp = std::env::temp_dir();
    if *users == 0 {
        remove_caches_of_dead_runs(&temp);
    }
    let path = temp.join(format!("{CACHE_PREFIX}{}", std::process::id()));
    std::fs::create_dir_all(&path).expect("cache dir");
    *users += 1;
    SharedCache { path }
}

/// Removes the caches whose test process is gone (named by its pid, which `/proc` no longer
/// lists).
fn remove_caches_of_dead_runs(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(CACHE_PREFIX))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Up {
    /// Starts `wisp up` over a new data directory.
    pub fn start(extra: &[&str]) -> Self {
        Self::start_in(tempfile::tempdir().expect("data dir"), extra)
    }

    /// Starts `wisp up` over `dir` (a restart when it is what [`Up::kill`] handed back).
    pub fn start_in(dir: impl Into<Stopped>, extra: &[&str]) -> Self {
        let Stopped {
            dir,
            cache: previous,
        } = dir.into();
        let cache = shared_cache();
        // Only now may the killed run's guard go: the cache, with what it compiled, carries
        // over to the restart.
        drop(previous);
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "up".as_ref(),
            "--data-dir".as_ref(),
            dir.path().as_os_str(),
            "--api-addr".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--gateway-addr".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--metrics-addr".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--cache-dir".as_ref(),
            cache.as_os_str(),
            "--allocatable-memory".as_ref(),
            "4Gi".as_ref(),
            "--allow-path".as_ref(),
            wisp_samples::dir().as_os_str(),
        ];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        let process = WispProcess::start(&args, 4);
        let api = process.value("api").to_owned();
        assert!(api.starts_with("https://127.0.0.1:"), "{api}");
        let gateway = process.addr("gateway");
        let metrics = process.addr("metrics");
        let kubeconfig = PathBuf::from(process.value("kubeconfig"));
        assert_eq!(kubeconfig, dir.path().join("kubeconfig"));
        let read = process.log_reader();
        let logs = Arc::new(move || tail(&read()));
        Self {
            _cache: cache,
            process,
            dir,
            kube: Kube::new(
                kubeconfig,
                "default",
                gateway,
                vec![metrics],
                vec!["local".to_owned()],
                "wisp-admin",
                logs,
            ),
        }
    }

    /// Kills the process (SIGKILL) and hands back the data directory, with the compile cache
    /// still held, for restart tests.
    pub fn kill(mut self) -> Stopped {
        self.process.kill();
        Stopped {
            dir: std::mem::replace(&mut self.dir, tempfile::tempdir().expect("placeholder")),
            cache: Some(shared_cache()),
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Kube {
    /// A view of the API at `kubeconfig` whose kubectl commands act in `namespace`.
    pub fn new(
        kubeconfig: PathBuf,
        namespace: &str,
        gateway: SocketAddr,
        metrics: Vec<SocketAddr>,
        nodes: Vec<String>,
        admin_user: &str,
        logs: Arc<dyn Fn() -> String + Send + Sync>,
    ) -> Self {
        let kubectl_home = tempfile::tempdir().expect("kubectl home");
        // A copy whose context acts in `namespace`, as a user's would after `kubectl config
        // set-context --current --namespace`: manifests naming another namespace still apply.
        let own = kubectl_home.path().join("kubeconfig");
        std::fs::copy(&kubeconfig, &own).expect("copy the kubeconfig");
        let set = wisp_loadtests::kubectl_tool::command_or_fail()
            .arg("--kubeconfig")
            .arg(&own)
            .args([
                "config",
                "set-context",
                "--current",
                "--namespace",
                namespace,
            ])
            .output()
            .expect("kubectl runs");
        assert!(set.status.success(), "{set:?}");
        Self {
            kubeconfig: own,
            gateway,
            metrics: metrics[0],
            all_metrics: metrics,
            nodes,
            admin_user: admin_user.to_owned(),
            namespace: namespace.to_owned(),
            kubectl_home,
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime"),
            http: crate::common::client(),
            logs,
        }
    }

    /// The namespace kubectl commands act in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The host of Service `name` in this namespace with the default domain.
    pub fn host(&self, name: &str) -> String {
        format!("{name}.{}.localhost", self.namespace)
    }

    /// The names of the wisp Nodes serving this API.
    pub fn node_names(&self) -> &[String] {
        &self.nodes
    }

    /// The user kubectl acts as.
    pub fn admin_user(&self) -> &str {
        &self.admin_user
    }

    /// The last of what the processes serving this API logged, for failure messages.
    pub fn logs(&self) -> String {
        (self.logs)()
    }

    /// A kubectl command aimed at this cluster, with its own discovery cache.
    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut command = wisp_loadtests::kubectl_tool::command_or_fail();
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env("KUBECACHEDIR", self.kubectl_home.path().join("cache"))
            .env("HOME", self.kubectl_home.path())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null());
        command
    }

    /// Runs kubectl, feeding `stdin` when given.
    pub fn kubectl_with_input(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = self.kubectl_command(args);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        if stdin.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command.spawn().expect("kubectl runs");
        if let Some(text) = stdin {
            use std::io::Write;
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(text.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// Runs kubectl and expects success; returns stdout.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let output = self.kubectl_with_input(args, None);
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {}\nwisp logs:\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs kubectl and expects failure; returns stderr.
    pub fn kubectl_fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let output = self.kubectl_with_input(args, stdin);
        assert!(
            !output.status.success(),
            "kubectl {args:?} should fail: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// `kubectl apply -f -` with `yaml`.
    pub fn apply(&self, yaml: &str) -> String {
        let output = self.kubectl_with_input(&["apply", "-f", "-"], Some(yaml));
        assert!(
            output.status.success(),
            "apply failed: {}\n{yaml}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `kubectl get KIND NAME -o json`, or `None` when it does not exist.
    pub fn get(&self, kind: &str, name: &str) -> Option<Value> {
        let output = self.kubectl_with_input(&["get", kind, name, "-o", "json"], None);
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains("NotFound"),
                "kubectl get {kind} {name}: {stderr}"
            );
            return None;
        }
        Some(serde_json::from_slice(&output.stdout).expect("kubectl prints JSON"))
    }

    /// `kubectl get KIND [-l SELECTOR] -o json`'s items.
    pub fn list(&self, kind: &str, selector: Option<&str>) -> Vec<Value> {
        let mut args = vec!["get", kind, "-o", "json"];
        if let Some(selector) = selector {
            args.extend(["-l", selector]);
        }
        let listed: Value = serde_json::from_str(&self.kubectl(&args)).expect("JSON list");
        listed["items"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until `check` holds for `kubectl get KIND NAME`; returns the object then. Fails
    /// with the last object seen and the logs.
    pub fn wait_for(
        &self,
        kind: &str,
        name: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait_for_within(WAIT, kind, name, what, check)
    }

    /// [`Self::wait_for`] with a deadline of its own (a Python or JavaScript guest is compiled
    /// before its revision is Ready: tens of seconds when the whole suite shares two cores).
    pub fn wait_for_within(
        &self,
        wait: Duration,
        kind: &str,
        name: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + wait;
        let mut last = None;
        while Instant::now() < deadline {
            last = self.get(kind, name);
            if let Some(object) = &last
                && check(object)
            {
                return object.clone();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{kind} {name} never {what}; last seen:\n{}\nwisp logs:\n{}",
            serde_json::to_string_pretty(&last).unwrap_or_default(),
            self.logs()
        );
    }

    /// Waits for `Ready=True` on `kind name`.
    pub fn wait_ready(&self, kind: &str, name: &str) -> Value {
        self.wait_for(kind, name, "became Ready", |o| {
            condition(o, "Ready") == Some("True")
        })
    }

    /// Waits up to `wait` for `Ready=True` on `kind name`.
    pub fn wait_ready_within(&self, wait: Duration, kind: &str, name: &str) -> Value {
        self.wait_for_within(wait, kind, name, "became Ready", |o| {
            condition(o, "Ready") == Some("True")
        })
    }

    /// Waits for `Ready=False` on `kind name`.
    pub fn wait_failed(&self, kind: &str, name: &str) -> Value {
        self.wait_for(kind, name, "became Ready=False", |o| {
            condition(o, "Ready") == Some("False")
        })
    }

    /// Waits until `kind name` is gone.
    pub fn wait_gone(&self, kind: &str, name: &str) {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.get(kind, name).is_none() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{kind} {name} was never deleted");
    }

    /// GET `path` from the gateway with `Host: host` (`host` without the port).
    pub fn http_get(&self, host: &str, path: &str) -> (u16, String) {
        self.request("GET", host, path)
    }

    pub fn request(&self, method: &str, host: &str, path: &str) -> (u16, String) {
        self.runtime
            .block_on(self.request_async(method, host, path))
    }

    /// [`Kube::request`] for tests that send many at once on [`Kube::runtime`].
    pub async fn request_async(&self, method: &str, host: &str, path: &str) -> (u16, String) {
        let url = format!("http://{}{path}", self.gateway);
        let method: reqwest::Method = method.parse().expect("method");
        let request = self
            .http
            .request(method, url)
            .header("host", host)
            .timeout(Duration::from_secs(120));
        let response = request.send().await.expect("gateway answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// The async runtime, for tests that send many requests at once.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The gateway's text at `/metrics`.
    pub fn metrics(&self) -> String {
        self.metrics_of(self.metrics)
    }

    /// Every node's text at `/metrics`.
    pub fn all_metrics(&self) -> Vec<String> {
        self.all_metrics
            .iter()
            .map(|addr| self.metrics_of(*addr))
            .collect()
    }

    fn metrics_of(&self, addr: SocketAddr) -> String {
        let url = format!("http://{addr}/metrics");
        let http = self.http.clone();
        self.runtime.block_on(async move {
            http.get(url)
                .send()
                .await
                .expect("metrics answer")
                .text()
                .await
                .expect("metrics text")
        })
    }
}

/// `wisp node` joining the `wisp up` of `data_dir` as `name` with the `node.kubeconfig` it wrote,
/// on ephemeral loopback ports, with a compile cache of its own; `extra` flags after those.
pub fn join(data_dir: &Path, name: &str, extra: &[&str]) -> WispProcess {
    let kubeconfig = data_dir.join("node.kubeconfig");
    let cache = data_dir.join(format!("{name}-cache"));
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "node".as_ref(),
        "--kubeconfig".as_ref(),
        kubeconfig.as_os_str(),
        "--name".as_ref(),
        name.as_ref(),
        "--gateway-addr".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--metrics-addr".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--cache-dir".as_ref(),
        cache.as_os_str(),
        "--allocatable-memory".as_ref(),
        "4Gi".as_ref(),
        "--allow-path".as_ref(),
        wisp_samples::dir().as_os_str(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    WispProcess::start(&args, 2)
}

/// The last part of a long log, for failure messages.
pub fn tail(logs: &str) -> String {
    let lines: Vec<&str> = logs.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// The status of condition `type_` of `object`.
pub fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a str> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?["status"]
        .as_str()
}

/// The condition `type_` itself.
pub fn condition_of<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// A Knative Service manifest running `image`, in the namespace kubectl acts in.
pub fn ksvc(name: &str, image: &str) -> String {
    format!(
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: {name}\n\
         spec:\n  template:\n    spec:\n      containers:\n      - image: {image}\n"
    )
}

/// `manifest` (a Service from [`ksvc`]) with `annotations` on its revision template.
pub fn with_annotations(manifest: &str, annotations: &[(&str, &str)]) -> String {
    let lines: String = annotations
        .iter()
        .map(|(key, value)| format!("        {key}: \"{value}\"\n"))
        .collect();
    let annotated = manifest.replace(
        "  template:\n    spec:",
        &format!("  template:\n    metadata:\n      annotations:\n{lines}    spec:"),
    );
    assert_ne!(annotated, manifest, "the template has no spec to annotate");
    annotated
}
