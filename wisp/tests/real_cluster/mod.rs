//! wisp on a genuine Kubernetes control plane, as a cluster operator runs it: `scripts/kube-env`
//! starts etcd, kube-apiserver and kube-controller-manager on loopback; `deploy/kubernetes/` is
//! applied with kubectl; two `wisp controller`s and two `wisp node`s run as the Deployment and
//! the DaemonSet would run them — each with a token of its own ServiceAccount from `kubectl
//! create token`, so RBAC is exercised exactly as shipped — and haproxy balances the nodes'
//! gateways (the LoadBalancer Service's part). No kubelet runs, so two things are done by hand
//! that a cluster does itself: the processes start here instead of in Pods, and the webhook
//! configurations reach the controller at `clientConfig.url` instead of through the
//! `wisp-webhook` Service.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use wisp_loadtests::balancer::Balancer;

use crate::cluster::{Kube, WAIT, shared_cache};
use crate::common::WispProcess;

/// The admin user `scripts/kube-env` puts in its static token file.
pub const ADMIN_USER: &str = "kube-env-admin";

/// The repository's root.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the wisp crate sits in the repository")
        .to_path_buf()
}

/// A genuine control plane started by `scripts/kube-env up`, stopped when dropped (and by the
/// script's watchdog when this process dies without dropping it).
pub struct KubeEnv {
    dir: TempDir,
    /// The admin kubeconfig (group `system:masters`).
    pub kubeconfig: PathBuf,
    kubectl_home: TempDir,
}

impl KubeEnv {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("kube-env dir");
        let output = Command::new(repository().join("scripts/kube-env"))
            .arg("up")
            .arg(dir.path())
            .args(["--owner-pid", &std::process::id().to_string()])
            .stdin(Stdio::null())
            .output()
            .expect("scripts/kube-env runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let kubeconfig = stdout
            .lines()
            .find_map(|line| line.strip_prefix("kubeconfig: "))
            .map(PathBuf::from);
        let Some(kubeconfig) = kubeconfig.filter(|_| output.status.success()) else {
            panic!(
                "scripts/kube-env up could not start a genuine API server ({}):\n{stdout}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        };
        Self {
            dir,
            kubeconfig,
            kubectl_home: tempfile::tempdir().expect("kubectl home"),
        }
    }

    /// kubectl as the admin; `stdin` fed when given.
    pub fn kubectl_with_input(&self, args: &[&str], stdin: Option<&str>) -> Output {
        kubectl(&self.kubeconfig, self.kubectl_home.path(), args, stdin)
    }

    /// kubectl as the admin, expected to succeed; its stdout.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let output = self.kubectl_with_input(args, None);
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A kubeconfig at `path` for ServiceAccount `namespace/name`, with a token of its own as
    /// `kubectl create token` issues it (what the kubelet mounts into the Pod).
    pub fn service_account_kubeconfig(&self, namespace: &str, name: &str, path: &Path) {
        let token = self.kubectl(&[
            "create",
            "token",
            name,
            "--namespace",
            namespace,
            "--duration",
            "24h",
        ]);
        let admin = std::fs::read_to_string(&self.kubeconfig).expect("admin kubeconfig");
        let server = field(&admin, "server:");
        let ca = field(&admin, "certificate-authority-data:");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-env\n  cluster:\n    \
             server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {name}\n  \
             user:\n    token: {}\ncontexts:\n- name: {name}\n  context:\n    cluster: kube-env\n    \
             user: {name}\n    namespace: {namespace}\ncurrent-context: {name}\n",
            token.trim()
        );
        std::fs::write(path, text).expect("write kubeconfig");
    }

    /// The tails of the control plane's own logs, for failure messages.
    pub fn logs(&self) -> String {
        ["kube-apiserver", "kube-controller-manager"]
            .iter()
            .map(|name| {
                let path = self.dir.path().join("logs").join(format!("{name}.log"));
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                format!("--- {name}, last lines\n{}", last_lines(&text, 15))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for KubeEnv {
    fn drop(&mut self) {
        let _ = Command::new(repository().join("scripts/kube-env"))
            .arg("down")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The last `count` lines of `text`.
fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// The value after `key` on the first line that has it.
fn field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(key))
        .map(|value| value.trim().to_owned())
        .unwrap_or_else(|| panic!("no {key} in the kubeconfig"))
}

/// Runs kubectl with `kubeconfig` and a discovery cache under `home`.
pub fn kubectl(kubeconfig: &Path, home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new("kubectl");
    command
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env("KUBECACHEDIR", home.join("cache"))
        .env("HOME", home)
        .env_remove("KUBECONFIG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("kubectl runs");
    if let Some(text) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("kubectl output")
}

/// The wisp Nodes the tests run (the DaemonSet names them `wisp-$(NODE_NAME)`).
pub const NODES: [&str; 2] = ["wisp-a", "wisp-b"];

/// `deploy/kubernetes/` applied to a genuine API server, with two controllers, two nodes and
/// a balancer in front of the nodes' gateways.
pub struct WispOnKube {
    pub env: KubeEnv,
    pub controllers: Vec<WispProcess>,
    pub nodes: Vec<WispProcess>,
    pub balancer: Balancer,
    credentials: TempDir,
}

impl WispOnKube {
    pub fn start() -> Self {
        let env = KubeEnv::start();
        env.kubectl(&[
            "apply",
            "-k",
            &repository().join("deploy/kubernetes").display().to_string(),
        ]);
        env.kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/services.serving.knative.dev",
            "crd/configurations.serving.knative.dev",
            "crd/revisions.serving.knative.dev",
            "crd/routes.serving.knative.dev",
        ]);
        // Replicas go 1 s after the scale-to-zero decision instead of 30 s (Knative's default),
        // so scaling to zero fits in a test.
        env.kubectl(&[
            "patch",
            "configmap",
            "config-autoscaler",
            "--namespace",
            "knative-serving",
            "--type",
            "merge",
            "--patch",
            r#"{"data":{"scale-to-zero-grace-period":"1s"}}"#,
        ]);

        let credentials = tempfile::tempdir().expect("credentials dir");
        let controller_kubeconfig = credentials.path().join("controller.kubeconfig");
        let node_kubeconfig = credentials.path().join("node.kubeconfig");
        env.service_account_kubeconfig("wisp-system", "wisp-controller", &controller_kubeconfig);
        env.service_account_kubeconfig("wisp-system", "wisp-node", &node_kubeconfig);

        let controllers: Vec<WispProcess> = ["controller-a", "controller-b"]
            .iter()
            .map(|identity| {
                // The Deployment's arguments and downward-API environment (500-controller.yaml),
                // with a kubeconfig for the in-cluster credentials and loopback for 0.0.0.0.
                let kubeconfig = controller_kubeconfig.display().to_string();
                WispProcess::start_with_env(
                    &[
                        "controller",
                        "--kubeconfig",
                        &kubeconfig,
                        &format!("--identity={identity}"),
                        "--webhook-addr=127.0.0.1:0",
                    ],
                    &[("POD_NAME", identity), ("POD_NAMESPACE", "wisp-system")],
                    1,
                )
            })
            .collect();
        let webhook = controllers[0].value("webhook").to_owned();
        point_webhooks_at(&env, &webhook);

        let cache = shared_cache();
        let nodes: Vec<WispProcess> = NODES
            .iter()
            .map(|name| {
                // The DaemonSet's arguments (600-node.yaml) on loopback, with a kubeconfig for
                // the in-cluster credentials and a compile cache shared by the tests.
                let name_flag = format!("--name={name}");
                let args: Vec<&std::ffi::OsStr> = vec![
                    "node".as_ref(),
                    "--kubeconfig".as_ref(),
                    node_kubeconfig.as_os_str(),
                    name_flag.as_ref(),
                    "--gateway-addr=127.0.0.1:0".as_ref(),
                    "--metrics-addr=127.0.0.1:0".as_ref(),
                    "--address=127.0.0.1".as_ref(),
                    "--allocatable-memory=1536Mi".as_ref(),
                    "--cache-dir".as_ref(),
                    cache.as_os_str(),
                ];
                WispProcess::start(&args, 2)
            })
            .collect();
        let backends: Vec<(&str, SocketAddr)> = NODES
            .iter()
            .zip(&nodes)
            .map(|(name, node)| (*name, node.addr("gateway")))
            .collect();
        let balancer = Balancer::start(&backends).expect("haproxy in front of the nodes");
        Self {
            env,
            controllers,
            nodes,
            balancer,
            credentials,
        }
    }

    /// A [`Kube`] acting in a new namespace `namespace`, once the namespace's `default`
    /// ServiceAccount exists (without it the ServiceAccount admission plugin refuses Pods).
    pub fn kube(&self, namespace: &str) -> Kube {
        self.env.kubectl(&["create", "namespace", namespace]);
        let deadline = Instant::now() + WAIT;
        while !self
            .env
            .kubectl_with_input(
                &["get", "serviceaccount", "default", "--namespace", namespace],
                None,
            )
            .status
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "kube-controller-manager never made namespace {namespace}'s default ServiceAccount"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let names = ["controller-a", "controller-b"]
            .into_iter()
            .chain(NODES)
            .map(str::to_owned);
        let readers: Vec<_> = names
            .zip(self.controllers.iter().chain(&self.nodes))
            .map(|(name, process)| (name, process.log_reader()))
            .collect();
        let control_plane = self.env.dir().to_path_buf();
        let logs = Arc::new(move || {
            let mut text = String::new();
            for name in ["kube-apiserver", "kube-controller-manager"] {
                let log = std::fs::read_to_string(control_plane.join(format!("logs/{name}.log")))
                    .unwrap_or_default();
                text.push_str(&format!(
                    "--- {name}, last lines\n{}\n",
                    last_lines(&log, 10)
                ));
            }
            for (name, read) in &readers {
                text.push_str(&format!(
                    "--- {name}, last lines\n{}\n",
                    last_lines(&read(), 30)
                ));
            }
            text
        });
        Kube::new(
            self.env.kubeconfig.clone(),
            namespace,
            self.balancer.addr,
            self.nodes.iter().map(|node| node.addr("metrics")).collect(),
            NODES.iter().map(|name| (*name).to_owned()).collect(),
            ADMIN_USER,
            logs,
        )
    }

    /// The kubeconfig of the nodes' ServiceAccount.
    pub fn node_kubeconfig(&self) -> PathBuf {
        self.credentials.path().join("node.kubeconfig")
    }
}

/// Points both webhook configurations at `webhook` (`https://127.0.0.1:PORT`) instead of the
/// `wisp-webhook` Service no kubelet backs here, then waits until the controller has put its CA
/// back into them and a defaulting round trip works.
fn point_webhooks_at(env: &KubeEnv, webhook: &str) {
    for (kind, name, path) in [
        (
            "mutatingwebhookconfiguration",
            "webhook.serving.knative.dev",
            "/defaulting",
        ),
        (
            "validatingwebhookconfiguration",
            "validation.webhook.serving.knative.dev",
            "/validation",
        ),
    ] {
        let patch = format!(
            r#"[{{"op":"replace","path":"/webhooks/0/clientConfig","value":{{"url":"{webhook}{path}"}}}}]"#
        );
        env.kubectl(&["patch", kind, name, "--type", "json", "--patch", &patch]);
        let deadline = Instant::now() + WAIT;
        loop {
            let bundle = env.kubectl(&[
                "get",
                kind,
                name,
                "-o",
                "jsonpath={.webhooks[0].clientConfig.caBundle}",
            ]);
            if !bundle.trim().is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no wisp controller put its CA into {kind} {name}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
