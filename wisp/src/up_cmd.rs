//! `wisp up`: the embedded single-machine cluster in one process — the Kubernetes-compatible
//! API server, the Knative controllers, the data plane (gateway, activator, autoscaler,
//! runtime) kept in step with the API, and the metrics endpoint.
//!
//! Contract (tests and scripts rely on it): once everything listens and `--manifests` are
//! applied (and their Services Ready, or failed, or two minutes passed), stdout gets `api: https://HOST:PORT`, `gateway: http://HOST:PORT`,
//! `metrics: http://HOST:PORT` and `kubeconfig: PATH` (written with the bound API address),
//! then a copy-paste example. SIGINT or SIGTERM stops accepting requests, lets in-flight ones
//! finish, and exits 0. Everything lives under `--data-dir`, so a restart serves every Service
//! again.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinSet;
use wisp_autoscaler::SystemClock;
use wisp_control::apiserver::{ApiServer, ApiServerConfig};
use wisp_gateway::dataplane::{DataPlane, DataPlaneConfig};
use wisp_gateway::sync::SyncOptions;
use wisp_runtime::{Runtime, RuntimeConfig};

use crate::{cli_values, host_memory, listen, manifests_dir};

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
    /// Address of the gateway Services are reached through; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    gateway_addr: SocketAddr,
    /// Address of `/metrics` and `/healthz`; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:9090")]
    metrics_addr: SocketAddr,
    /// Apply the YAML files of this directory at start-up (as `kubectl apply --server-side`).
    #[arg(long, value_name = "DIR")]
    manifests: Option<PathBuf>,
    /// Another name (DNS name or IP) clients reach the API by, added to its certificate
    /// (repeatable).
    #[arg(long = "tls-san", value_name = "NAME")]
    tls_san: Vec<String>,
    /// Memory the node gives to replicas (their memory limits add up to at most this), e.g.
    /// 4Gi. Default: the machine's total memory.
    #[arg(long, value_parser = cli_values::memory)]
    allocatable_memory: Option<u64>,
    /// The largest memory limit a revision may set (the size of an instance slot), e.g. 1Gi.
    #[arg(long, value_parser = cli_values::memory, default_value = "512Mi")]
    max_memory_per_instance: u64,
    /// Most instances alive at once across all Services (the size of the instance pool).
    #[arg(long, default_value_t = 1000)]
    max_instances: u32,
    /// Relative image paths of revisions resolve against this directory. Default: the directory
    /// `wisp up` starts in — so restart it from the same place, or pass this flag.
    #[arg(long, value_name = "DIR")]
    image_dir: Option<PathBuf>,
    /// Where compiled components are kept between runs. Default: `cache` in the data directory.
    #[arg(long, env = "WISP_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
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
    let gateway = listen::bind(args.gateway_addr, "--gateway-addr").await?;
    let admin = listen::bind(args.metrics_addr, "--metrics-addr").await?;
    let gateway_addr = gateway.local_addr()?;
    let admin_addr = admin.local_addr()?;

    let mut api_config = ApiServerConfig::new(&args.data_dir, args.api_addr);
    api_config.extra_names = args.tls_san.clone();
    let api = ApiServer::start(api_config)
        .await
        .with_context(|| format!("cannot start the API server in {}", args.data_dir.display()))?;
    let client = client_from(api.kubeconfig()).await?;
    let node_client = client_from(api.node_kubeconfig()).await?;

    let allocatable = args
        .allocatable_memory
        .unwrap_or_else(host_memory::total_bytes);
    anyhow::ensure!(
        allocatable > 0,
        "--allocatable-memory is 0; give replicas some memory, e.g. --allocatable-memory 4Gi"
    );
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: args.max_instances,
        max_memory_per_instance: args.max_memory_per_instance.max(wisp_runtime::MIB),
        cache_dir: Some(
            args.cache_dir
                .clone()
                .unwrap_or_else(|| args.data_dir.join("cache")),
        ),
        ..RuntimeConfig::default()
    })?;
    let mut data_plane_config = DataPlaneConfig::new(allocatable);
    data_plane_config.node_name = NODE_NAME.to_owned();
    let data_plane = DataPlane::new(runtime, data_plane_config, Arc::new(SystemClock::new()));

    let stopped = listen::shutdown_on_signal();
    let image_base_dir = match args.image_dir.clone() {
        Some(dir) => dir,
        None => std::env::current_dir()
            .context("cannot read the current directory; pass --image-dir")?,
    };
    // Each runs for the life of the process; one that ends is a bug worth stopping for, rather
    // than serving on with a control plane nobody reconciles.
    let (loaded, initial_sync) = tokio::sync::oneshot::channel();
    let mut background = JoinSet::new();
    background.spawn(crate::controller_cmd::embedded(client.clone()));
    let sync_data_plane = data_plane.clone();
    let sync_client = client.clone();
    background.spawn(async move {
        wisp_gateway::sync::run(
            sync_data_plane,
            sync_client,
            node_client,
            SyncOptions {
                node_name: NODE_NAME.to_owned(),
                image_base_dir,
                status_interval: Duration::from_secs(1),
            },
            loaded,
        )
        .await;
        "the data plane's sync with the API"
    });
    let autoscaler = data_plane.clone();
    background.spawn(async move {
        autoscaler.run_autoscaler().await;
        "the autoscaler loop"
    });
    let admin_server = tokio::spawn(wisp_gateway::metrics::serve_admin(
        admin,
        data_plane.metrics().clone(),
        listen::stopped(stopped.clone()),
    ));

    // After a restart the stored statuses say Ready before the gateway has loaded anything:
    // announce only once the data plane has caught up with what the API holds.
    if tokio::time::timeout(INITIAL_SYNC, initial_sync)
        .await
        .is_err()
    {
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
    for problem in manifests_dir::wait_for_services(&client, &applied, MANIFESTS_READY).await {
        tracing::warn!("{problem}");
    }
    announce(&api, gateway_addr, admin_addr)?;

    let failed = tokio::select! {
        () = data_plane.serve(gateway, listen::stopped(stopped)) => None,
        Some(ended) = background.join_next() => Some(match ended {
            Ok(task) => format!("{task} stopped unexpectedly"),
            Err(error) => format!("a background task failed: {error}"),
        }),
    };
    background.abort_all();
    if failed.is_none()
        && let Err(error) = admin_server.await
    {
        tracing::warn!(%error, "the metrics server ended abnormally");
    }
    api.shutdown().await;
    match failed {
        None => {
            tracing::info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        Some(failure) => anyhow::bail!("{failure}; wisp up cannot go on (the log above says why)"),
    }
}

/// A kube client for the identity of a kubeconfig the API server wrote.
async fn client_from(path: &Path) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("cannot read the kubeconfig {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .with_context(|| format!("the kubeconfig {} is not usable", path.display()))?;
    kube::Client::try_from(config).context("cannot build a Kubernetes client")
}

/// The machine-readable start-up lines, then an example to copy.
fn announce(api: &ApiServer, gateway: SocketAddr, admin: SocketAddr) -> anyhow::Result<()> {
    let kubeconfig = api.kubeconfig().display();
    let port = gateway.port();
    let mut out = std::io::stdout().lock();
    writeln!(out, "api: {}", api.url())?;
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
