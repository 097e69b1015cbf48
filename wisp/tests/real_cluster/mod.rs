//! wisp on a genuine Kubernetes control plane, as a cluster operator runs it: `scripts/kube-env`
//! starts etcd, kube-apiserver and kube-controller-manager on loopback; `deploy/kubernetes/` is
//! applied with kubectl; two `wisp controller`s and two `wisp node`s run as the Deployment and
//! the DaemonSet would run them — each with a token of its own ServiceAccount from `kubectl
//! create token`, so RBAC is exercised exactly as shipped — and haproxy balances the nodes'
//! gateways (the LoadBalancer Service's part). No kubelet runs, so two things are done by hand
//! that a cluster does itself: the processes start here instead of in Pods, and the webhook
//! configurations reach the controller at `clientConfig.url` instead of through the
//! `wisp-webhook` Service. The control plane and the install are `wisp-loadtests`' (`kube_env`,
//! `wisp_on_kube`), which `bench services` and `bench api` run the same way.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wisp_loadtests::balancer::Balancer;
use wisp_loadtests::kube_env::KubeEnv;
use wisp_loadtests::wisp_on_kube::{self, Credentials};

use crate::cluster::{Kube, SharedCache, WAIT, shared_cache};
use crate::common::WispProcess;

/// The admin user `scripts/kube-env` puts in its static token file.
pub const ADMIN_USER: &str = "kube-env-admin";

/// The last `count` lines of `text`.
fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
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
    credentials: Credentials,
    /// Dropped after the nodes that compile into it.
    _cache: SharedCache,
}

impl WispOnKube {
    pub fn start() -> Self {
        let env = KubeEnv::start().unwrap_or_else(|error| panic!("{error:#}"));
        let ready = wisp_on_kube::install(&env)
            // Replicas go 1 s after the scale-to-zero decision instead of 30 s (Knative's
            // default), so scaling to zero fits in a test.
            .and_then(|()| {
                wisp_on_kube::configure_autoscaler(&env, &[("scale-to-zero-grace-period", "1s")])
            })
            .and_then(|()| Credentials::issue(&env));
        let credentials = ready.unwrap_or_else(|error| panic!("{error:#}\n{}", env.logs()));
        let controller_kubeconfig = credentials.controller();
        let node_kubeconfig = credentials.node();

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
        wisp_on_kube::point_webhooks_at(&env, &webhook)
            .unwrap_or_else(|error| panic!("{error:#}\n{}", env.logs()));

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
                    "--allow-path".as_ref(),
                    wisp_samples::dir().as_os_str(),
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
            _cache: cache,
        }
    }

    /// A [`Kube`] acting in a new namespace `namespace`, once the namespace's `default`
    /// ServiceAccount exists (without it the ServiceAccount admission plugin refuses Pods).
    pub fn kube(&self, namespace: &str) -> Kube {
        self.admin(&["create", "namespace", namespace]);
        let deadline = Instant::now() + WAIT;
        while self
            .env
            .kubectl(&["get", "serviceaccount", "default", "--namespace", namespace])
            .is_err()
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
        self.credentials.node()
    }

    /// kubectl as the admin, expected to succeed.
    fn admin(&self, args: &[&str]) -> String {
        self.env
            .kubectl(args)
            .unwrap_or_else(|error| panic!("{error:#}\n{}", self.env.logs()))
    }
}
