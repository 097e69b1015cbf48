//! Shared harness of the API server's end-to-end tests: a server on an ephemeral loopback port
//! over a fresh data directory, and helpers that run the real `kubectl` against it (with its
//! own discovery cache, so tests never see each other's servers) or build a kube-rs client.
//! The kubectl matrix also runs against a genuine kube-apiserver ([`Backend::Genuine`]).

#![allow(dead_code)]

mod genuine;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;
use tokio::runtime::Runtime;
use wisp_control::apiserver::{ApiServer, ApiServerConfig};

/// Which API server a [`Cluster`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// wisp's embedded API server, in-process.
    Embedded,
    /// A fresh genuine kube-apiserver (`scripts/kube-env`) with Knative Serving's CRDs and
    /// wisp's admission webhooks (served in-process).
    Genuine,
}

/// An API server for one test, with its own runtime so plain `#[test]`s can call kubectl.
pub struct Cluster {
    runtime: Runtime,
    server: Option<ApiServer>,
    genuine: Option<genuine::Genuine>,
    /// The data directory (database, credentials, kubeconfig).
    pub dir: TempDir,
    cache: TempDir,
}

impl Cluster {
    /// Starts a server on 127.0.0.1:0 over a new data directory.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("data dir");
        Self::start_in(dir)
    }

    /// Starts a server of `backend`.
    pub fn start_on(backend: Backend) -> Self {
        match backend {
            Backend::Embedded => Self::start(),
            Backend::Genuine => {
                let runtime = runtime();
                let cache = tempfile::tempdir().expect("kubectl cache dir");
                let genuine = genuine::Genuine::start(&runtime, cache.path());
                Self {
                    runtime,
                    server: None,
                    genuine: Some(genuine),
                    dir: tempfile::tempdir().expect("data dir"),
                    cache,
                }
            }
        }
    }

    /// Starts a server over an existing data directory (restarts).
    pub fn start_in(dir: TempDir) -> Self {
        let runtime = runtime();
        let config = ApiServerConfig::new(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)));
        let server = runtime
            .block_on(ApiServer::start(config))
            .expect("API server starts");
        Self {
            runtime,
            server: Some(server),
            genuine: None,
            dir,
            cache: tempfile::tempdir().expect("kubectl cache dir"),
        }
    }

    /// The running embedded server.
    pub fn server(&self) -> &ApiServer {
        self.server.as_ref().expect("a running embedded server")
    }

    /// The admin kubeconfig of the server.
    pub fn kubeconfig(&self) -> PathBuf {
        match &self.genuine {
            Some(genuine) => genuine.kubeconfig().to_path_buf(),
            None => self.server().kubeconfig().to_path_buf(),
        }
    }

    /// The runtime the server runs on (for kube-rs calls from a plain test).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// A kubectl command aimed at this server.
    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut command = wisp_loadtests::kubectl_tool::command_or_fail();
        command
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .env("KUBECACHEDIR", self.cache.path())
            .env("HOME", self.cache.path())
            .env_remove("KUBECONFIG");
        command
    }

    /// Runs kubectl with `args` (and `stdin`, if given).
    pub fn kubectl_with_input(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = self.kubectl_command(args);
        command
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("kubectl is on PATH");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        child.wait_with_output().expect("kubectl runs")
    }

    /// Runs kubectl.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with_input(args, None)
    }

    /// Runs kubectl, expecting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.kubectl(args);
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs kubectl with `yaml` on stdin, expecting success; returns stdout.
    pub fn ok_with(&self, args: &[&str], yaml: &str) -> String {
        let output = self.kubectl_with_input(args, Some(yaml));
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs kubectl, expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        self.fails_with(args, None)
    }

    /// Runs kubectl with optional stdin, expecting failure; returns stderr.
    pub fn fails_with(&self, args: &[&str], yaml: Option<&str>) -> String {
        let output = self.kubectl_with_input(args, yaml);
        assert!(
            !output.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// A kube-rs client for this server, built from the kubeconfig as a user would.
    pub fn client(&self) -> kube::Client {
        let path = self.kubeconfig();
        self.runtime.block_on(client_from(&path))
    }

    /// Stops the server and hands back its data directory (for restart tests).
    pub fn stop(mut self) -> TempDir {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("placeholder"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
        if let Some(webhook) = self.genuine.as_mut().and_then(|g| g.take_webhook()) {
            self.runtime.block_on(webhook.shutdown());
        }
    }
}

/// A runtime for one cluster's in-process servers.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A kube-rs client from a kubeconfig file.
pub async fn client_from(path: &Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("kubeconfig is usable");
    kube::Client::try_from(config).expect("client")
}

/// A Knative Service manifest.
pub fn ksvc(name: &str, image: &str) -> String {
    format!(
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: {name}\n  \
         namespace: default\nspec:\n  template:\n    spec:\n      containers:\n      - image: \
         {image}\n"
    )
}
