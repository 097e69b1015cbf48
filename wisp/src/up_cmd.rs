//! `wisp up`: the embedded single-machine cluster in one process — the Kubernetes-compatible
//! API server, the Knative controllers, and one node named `local` (the data plane: gateway,
//! activator, autoscaler, runtime, kept in step with the API; see [`crate::node_role`]) with
//! its metrics endpoint. `--no-controller` and `--no-node` leave those roles out, for
//! controllers and nodes run as processes of their own (`wisp node` joins with the
//! `node.kubeconfig` of the data directory).
//!
//! Contract (tests and scripts rely on it): once everything listens and `--manifests` are
//! applied (and their Services Ready, or failed, or two minutes passed), stdout gets
//! `api: https://HOST:PORT`, `gateway: http://HOST:PORT`, `metrics: http://HOST:PORT` and
//! `kubeconfig: PATH` (written with the bound API address), then a copy-paste example. With
//! `--no-node` there is no `gateway:` or `metrics:` line, and start-up waits neither for a data
//! plane nor for the manifests' Services to be Ready. SIGINT or SIGTERM drains the node
//! (`--drain-delay`), stops accepting requests, lets in-flight ones finish, and exits 0.
//! Everything lives under `--data-dir`, so a restart serves every Service again.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinSet;
use wisp_control::apiserver::{ApiServer, ApiServerConfig};

use crate::node_role::{self, NodeArgs, client_from};
use crate::{listen, manifests_dir};

/// How long start-up waits for the Services of `--manifests` to become Ready before it
/// announces itself anyway (a large component over a slow link may take longer).
const MANIFESTS_READY: Duration = Duration::from_secs(120);

/// How long start-up waits for the data plane to load the revisions and routes already stored
/// (each compiled component is cached, so this is quick unless the cache was cleared).
const INITIAL_SYNC: Duration = Duration::from_secs(120);

/// The name the node reports itself as (`kubectl get nodes`).
const NODE_NAME: &str = "local";

#[derive(clap::Args)]
pub struct UpArgs {
    /// Holds the database (wisp.db), the credentials, the kubeconfig and the compile cache.
    #[arg(long, default_value_os_t = crate::api_server_cmd::default_data_dir())]
    data_dir: PathBuf,
    /// Address of the HTTPS Kubernetes API; port 0 picks a free port (the `api:` line names it).
    #[arg(long, default_value = "127.0.0.1:6443")]
    api_addr: SocketAddr,
    /// Apply the YAML files of this directory at start-up (as `kubectl apply --server-side`).
    #[arg(long, value_name = "DIR")]
    manifests: Option<PathBuf>,
    /// Another name (DNS name or IP) clients reach the API by, added to its certificate
    /// (repeatable).
    #[arg(long = "tls-san", value_name = "NAME")]
    tls_san: Vec<String>,
    /// Run no Knative controllers (they run as `wisp controller` processes instead).
    #[arg(long)]
    no_controller: bool,
    /// Run no node: no gateway and no metrics port (nodes join with `wisp node`).
    #[arg(long)]
    no_node: bool,
    #[command(flatten)]
    api_limits: crate::api_limits_args::ApiLimitsArgs,
    #[command(flatten)]
    node: NodeArgs,
}

pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    crate::block_on(up(args))
}

async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let manifests = match &args.manifests {
        Some(dir) => manifests_dir::read(dir)?,
        None => Vec::new(),
    };
    // Bind first: a port in use fails in a moment, before anything else starts.
    let bound = if args.no_node {
        None
    } else {
        Some(node_role::bind(&args.node).await?)
    };

    let mut api_config = ApiServerConfig::new(&args.data_dir, args.api_addr);
    api_config.extra_names = args.tls_san.clone();
    args.api_limits.apply(&mut api_config);
    let api = match crate::api_server_cmd::start(api_config).await? {
        Ok(api) => api,
        Err(code) => return Ok(code),
    };
    let client = client_from(api.kubeconfig()).await?;

    let stopped = listen::shutdown_on_signal();
    // Runs for the life of the process; if it ends, that is a bug worth stopping for, rather
    // than serving on with a control plane nobody reconciles.
    let mut background = JoinSet::new();
    if !args.no_controller {
        background.spawn(crate::controller_cmd::embedded(
            client.clone(),
            args.node.loading.registries.clone(),
        ));
    }
    let node = match bound {
        Some(bound) => {
            let addrs = (bound.gateway_addr, bound.admin_addr);
            // The node has only the node identity, as a `wisp node` that joins has.
            let node_client = client_from(api.node_kubeconfig()).await?;
            let cache = args.data_dir.join("cache");
            let node = bound.start(&args.node, node_client, NODE_NAME, Some(cache))?;
            Some((node, addrs))
        }
        None => None,
    };

    if let Some((node, _)) = &node
        && !node.wait_loaded(INITIAL_SYNC).await
    {
        // After a restart the stored statuses say Ready before the gateway has loaded
        // anything: announce only once the data plane has caught up with what the API holds.
        tracing::warn!(
            "the data plane has not loaded every stored revision after {}s; announcing anyway",
            INITIAL_SYNC.as_secs()
        );
    }
    let applied = manifests_dir::apply(&client, &manifests).await?;
    if !applied.is_empty() {
        let names: Vec<String> = applied.iter().map(ToString::to_string).collect();
        tracing::info!(objects = ?names, "applied the manifests");
    }
    if node.is_some() {
        for problem in manifests_dir::wait_for_services(&client, &applied, MANIFESTS_READY).await {
            tracing::warn!("{problem}");
        }
    }
    announce(&api, node.as_ref().map(|(_, addrs)| *addrs))?;

    let serving = async {
        match node {
            Some((node, _)) => node.run(stopped).await,
            None => {
                listen::stopped(stopped).await;
                Ok(())
            }
        }
    };
    let result = tokio::select! {
        served = serving => served,
        Some(ended) = background.join_next() => Err(match ended {
            Ok(task) => anyhow::anyhow!("{task} stopped unexpectedly"),
            Err(error) => anyhow::anyhow!("a background task failed: {error}"),
        }),
    };
    background.abort_all();
    api.shutdown().await;
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            anyhow::bail!("{failure:#}; wisp up cannot go on (the log above says why)")
        }
    }
}

/// The machine-readable start-up lines, then an example to copy. `node` holds the gateway and
/// metrics addresses, when this process runs a node.
fn announce(api: &ApiServer, node: Option<(SocketAddr, SocketAddr)>) -> anyhow::Result<()> {
    let kubeconfig = api.kubeconfig().display();
    let mut out = std::io::stdout().lock();
    writeln!(out, "api: {}", api.url())?;
    let Some((gateway, admin)) = node else {
        writeln!(out, "kubeconfig: {kubeconfig}")?;
        writeln!(out)?;
        writeln!(out, "Nodes join with:")?;
        writeln!(
            out,
            "  wisp node --kubeconfig {} --name node-1",
            api.node_kubeconfig().display()
        )?;
        out.flush().context("cannot write to stdout")?;
        return Ok(());
    };
    let port = gateway.port();
    writeln!(out, "gateway: http://{gateway}")?;
    writeln!(out, "metrics: http://{admin}")?;
    writeln!(out, "kubeconfig: {kubeconfig}")?;
    writeln!(out)?;
    writeln!(out, "Try it (from the repository root):")?;
    writeln!(out, "  export KUBECONFIG={kubeconfig}")?;
    writeln!(out, "  kubectl apply -f samples/knative/hello.yaml")?;
    writeln!(out, "  kubectl wait ksvc/hello --for=condition=Ready")?;
    writeln!(out, "  curl http://hello.default.localhost:{port}/")?;
    out.flush().context("cannot write to stdout")?;
    Ok(())
}
