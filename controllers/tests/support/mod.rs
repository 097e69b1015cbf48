//! The controllers' test cluster: wisp's embedded API server on an ephemeral loopback port over
//! a fresh data directory, with its own async runtime and a kube-rs client for its admin
//! identity. The controllers reach it over HTTPS only, as they would reach a real cluster.

#![allow(dead_code)]

use std::net::SocketAddr;

use tempfile::TempDir;
use tokio::runtime::Runtime;
use wisp_control::apiserver::{ApiServer, ApiServerConfig};

/// An API server for one test.
pub struct Cluster {
    runtime: Runtime,
    server: Option<ApiServer>,
    _dir: TempDir,
}

impl Cluster {
    /// Starts a server on 127.0.0.1:0 over a new data directory.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("data dir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let config = ApiServerConfig::new(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)));
        let server = runtime
            .block_on(ApiServer::start(config))
            .expect("API server starts");
        Self {
            runtime,
            server: Some(server),
            _dir: dir,
        }
    }

    /// The runtime the server runs on; tests spawn their tasks here.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// A client with the admin identity.
    pub fn client(&self) -> kube::Client {
        self.client_of(self.server().kubeconfig())
    }

    /// A client with the node identity.
    pub fn node_client(&self) -> kube::Client {
        self.client_of(self.server().node_kubeconfig())
    }

    fn server(&self) -> &ApiServer {
        self.server.as_ref().expect("running")
    }

    fn client_of(&self, path: &std::path::Path) -> kube::Client {
        self.runtime.block_on(async {
            let kubeconfig = kube::config::Kubeconfig::read_from(path).expect("kubeconfig parses");
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .expect("kubeconfig is usable");
            kube::Client::try_from(config).expect("client")
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}
