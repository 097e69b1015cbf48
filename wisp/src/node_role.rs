//! The node role: the data plane (gateway, activator, autoscaler, runtime) kept in step with a
//! Kubernetes API through one identity, with its metrics and health endpoint — what
//! `wisp node` runs alone and `wisp up` runs next to the API server and the controllers.
//!
//! Life: [`bind`] the ports first (a port in use fails at once), [`Bound::start`] the sync and
//! loops, [`Node::wait_loaded`] for what the API held at start-up, then [`Node::run`] until
//! SIGINT/SIGTERM. The drain: `/healthz` turns 503 and the Node `Ready=False` at once, the
//! gateway keeps serving for `--drain-delay` (so a load balancer's checks notice and stop
//! sending), then stops accepting, closes idle connections and lets in-flight requests finish
//! within `--grace-period` (connections still busy then are cut).
//!
//! The gateway, and with it every guest (readiness probes included), runs on a [`GuestRuntime`]
//! of its own; the sync, the autoscaler loop and the metrics endpoint stay on the caller's
//! runtime, beside the API server and the controllers of `wisp up`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use wisp_autoscaler::SystemClock;
use wisp_gateway::dataplane::{DataPlane, DataPlaneConfig};
use wisp_gateway::health::{Health, Phase};
use wisp_gateway::sync::SyncOptions;
use wisp_runtime::{Runtime, RuntimeConfig};

use crate::cache_args::CacheLimits;
use crate::guest_runtime::GuestRuntime;
use crate::server_args::ServerArgs;
use crate::{cli_values, host_memory, listen};

/// The flags of the node role, shared by `wisp node` and `wisp up`.
#[derive(clap::Args, Clone, Debug)]
pub struct NodeArgs {
    /// Address of the gateway Services are reached through; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub gateway_addr: SocketAddr,
    /// Address of `/metrics` and `/healthz`; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub metrics_addr: SocketAddr,
    /// Memory the node gives to replicas (their memory limits add up to at most this), e.g.
    /// 4Gi. Default: the machine's total memory.
    #[arg(long, value_parser = cli_values::memory)]
    pub allocatable_memory: Option<u64>,
    /// The largest memory limit a revision may set (the size of an instance slot), e.g. 1Gi.
    #[arg(long, value_parser = cli_values::memory, default_value = "512Mi")]
    pub max_memory_per_instance: u64,
    /// Most instances alive at once across all Services (the size of the instance pool).
    #[arg(long, default_value_t = 1000)]
    pub max_instances: u32,
    /// Most replicas the node runs at once across all revisions (a kubelet's maxPods; also the
    /// Node's `pods` capacity). A revision that wants more (a huge min-scale, a burst) runs
    /// what fits and its Revision gets `ReplicasScheduled=False` saying why.
    #[arg(long, default_value_t = wisp_gateway::dataplane::DEFAULT_MAX_REPLICAS as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_replicas: u64,
    /// Most replicas one revision may hold on the node, so a revision that asks for millions
    /// leaves room for the others. Default: half of --max-replicas.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_replicas_per_revision: Option<u64>,
    /// Relative image paths of revisions resolve against this directory. Default: the
    /// directory the command starts in — so restart it from the same place, or pass this flag.
    #[arg(long, value_name = "DIR")]
    pub image_dir: Option<PathBuf>,
    /// Where compiled components are kept between runs. Default: `wisp up`: `cache` in the
    /// data directory; `wisp node`: `$XDG_CACHE_HOME/wisp` or `~/.cache/wisp`.
    #[arg(long, env = "WISP_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The IP the Node publishes as its `InternalIP` (and its Pods' IP): where a load
    /// balancer reaches this gateway. Default: the gateway's bound IP, or 127.0.0.1 when it is
    /// bound to all addresses.
    #[arg(long, value_name = "IP")]
    pub address: Option<IpAddr>,
    /// `leaseDurationSeconds` of the node's heartbeat Lease in `kube-node-lease`; it is renewed
    /// every quarter of it.
    #[arg(long, value_parser = cli_values::duration, default_value = "40s")]
    pub node_lease_duration: Duration,
    /// On SIGTERM/SIGINT, how long the node keeps serving after it stopped advertising itself
    /// as ready (`/healthz` 503, Node `Ready=False`), so load balancers stop sending first.
    #[arg(long, value_parser = cli_values::duration_or_zero, default_value = "5s")]
    pub drain_delay: Duration,
    /// The gateway's and metrics port's connection limits, and the trusted proxies.
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub cache_limits: CacheLimits,
    #[command(flatten)]
    pub sources: crate::source_args::SourceArgs,
    #[command(flatten)]
    pub loading: crate::load_args::LoadArgs,
}

/// The node's listeners, bound.
pub struct Bound {
    gateway: TcpListener,
    admin: TcpListener,
    pub gateway_addr: SocketAddr,
    pub admin_addr: SocketAddr,
}

/// Binds the gateway and metrics ports.
pub async fn bind(args: &NodeArgs) -> anyhow::Result<Bound> {
    let gateway = listen::bind(args.gateway_addr, "--gateway-addr").await?;
    let admin = listen::bind(args.metrics_addr, "--metrics-addr").await?;
    Ok(Bound {
        gateway_addr: gateway.local_addr()?,
        admin_addr: admin.local_addr()?,
        gateway,
        admin,
    })
}

/// A started node.
pub struct Node {
    data_plane: DataPlane,
    gateway: TcpListener,
    health: Health,
    drain_delay: Duration,
    background: JoinSet<&'static str>,
    admin_server: JoinHandle<()>,
    stop_serving: watch::Sender<bool>,
    guests: GuestRuntime,
}

impl Bound {
    /// Starts the data plane named `name` against the API `client` reaches (the node identity
    /// is enough): its sync, autoscaler loop and metrics endpoint. The gateway serves from
    /// [`Node::run`] on. `default_cache_dir` is used without `--cache-dir`.
    pub fn start(
        self,
        args: &NodeArgs,
        client: kube::Client,
        name: &str,
        default_cache_dir: Option<PathBuf>,
    ) -> anyhow::Result<Node> {
        let allocatable = args
            .allocatable_memory
            .unwrap_or_else(host_memory::total_bytes);
        anyhow::ensure!(
            allocatable > 0,
            "--allocatable-memory is 0; give replicas some memory, e.g. --allocatable-memory 4Gi"
        );
        let image_base_dir = match args.image_dir.clone() {
            Some(dir) => dir,
            None => std::env::current_dir()
                .context("cannot read the current directory; pass --image-dir")?,
        };
        let runtime = Runtime::new(args.loading.apply(RuntimeConfig {
            max_instances: args.max_instances,
            max_memory_per_instance: args.max_memory_per_instance.max(wisp_runtime::MIB),
            cache_dir: args.cache_dir.clone().or(default_cache_dir),
            cache_max_bytes: args.cache_limits.compile_cache_bytes(),
            image_cache_max_bytes: args.cache_limits.image_cache_bytes(),
            sources: args.sources.policy(&image_base_dir)?,
            ..RuntimeConfig::default()
        }))?;
        let limits = args.server.limits()?;
        let mut data_plane_config = DataPlaneConfig::new(allocatable);
        data_plane_config.node_name = name.to_owned();
        data_plane_config.server = limits.clone();
        data_plane_config.trusted_proxies = args.server.trusted_proxies();
        let max_replicas = usize::try_from(args.max_replicas).unwrap_or(usize::MAX);
        data_plane_config.max_replicas = max_replicas;
        data_plane_config.max_replicas_per_revision = match args.max_replicas_per_revision {
            Some(share) => usize::try_from(share)
                .unwrap_or(usize::MAX)
                .min(max_replicas),
            None => wisp_gateway::dataplane::default_max_replicas_per_revision(max_replicas),
        };
        let guests = GuestRuntime::start()?;
        data_plane_config.guest_runtime = Some(guests.handle().clone());
        let data_plane = DataPlane::new(runtime, data_plane_config, Arc::new(SystemClock::new()));
        let health = Health::loading();
        let (stop_serving, serving_stopped) = watch::channel(false);

        // Each runs for the life of the process; one that ends is a bug worth stopping for.
        let (loaded, initial_sync) = tokio::sync::oneshot::channel();
        let mut background = JoinSet::new();
        let options = SyncOptions {
            node_name: name.to_owned(),
            image_base_dir,
            status_interval: Duration::from_secs(1),
            address: advertised(args.address, self.gateway_addr),
            gateway_port: self.gateway_addr.port(),
            lease_duration: args.node_lease_duration,
            health: health.clone(),
        };
        let sync_data_plane = data_plane.clone();
        background.spawn(async move {
            wisp_gateway::sync::run(sync_data_plane, client, options, loaded).await;
            "the data plane's sync with the API"
        });
        let autoscaler = data_plane.clone();
        background.spawn(async move {
            autoscaler.run_autoscaler().await;
            "the autoscaler loop"
        });
        let loaded_health = health.clone();
        tokio::spawn(async move {
            // An error means the sync ended before its load: the node never turns ready.
            if initial_sync.await.is_ok() {
                loaded_health.loaded();
            }
        });
        let admin_server = tokio::spawn(wisp_gateway::metrics::serve_admin_with_health(
            self.admin,
            data_plane.metrics().clone(),
            health.clone(),
            limits,
            listen::stopped(serving_stopped),
        ));
        Ok(Node {
            data_plane,
            gateway: self.gateway,
            health,
            drain_delay: args.drain_delay,
            background,
            admin_server,
            stop_serving,
            guests,
        })
    }
}

impl Node {
    /// Waits until the data plane serves what the API held at start-up, at most `within`;
    /// whether it does.
    pub async fn wait_loaded(&self, within: Duration) -> bool {
        let mut phase = self.health.subscribe();
        let loaded = phase.wait_for(|phase| *phase != Phase::Loading);
        matches!(tokio::time::timeout(within, loaded).await, Ok(Ok(_)))
    }

    /// Serves until `stopped` fires, then drains (see the module doc) and returns. An error
    /// when one of the node's loops ended on its own, which is a bug.
    pub async fn run(mut self, stopped: watch::Receiver<bool>) -> anyhow::Result<()> {
        let serving_stopped = self.stop_serving.subscribe();
        let (data_plane, serving_health) = (self.data_plane.clone(), self.health.clone());
        // Registered with the guests' runtime, whose driver then reports its readiness.
        let gateway = {
            let gateway = self
                .gateway
                .into_std()
                .context("cannot hand the gateway's listener to the guests' runtime")?;
            let _guests = self.guests.handle().enter();
            TcpListener::from_std(gateway)
                .context("cannot hand the gateway's listener to the guests' runtime")?
        };
        let serving = self.guests.handle().spawn(async move {
            data_plane
                .serve_with_health(gateway, serving_health, listen::stopped(serving_stopped))
                .await;
        });
        let serve = async move {
            if let Err(error) = serving.await {
                tracing::error!(%error, "the gateway ended abnormally");
            }
        };
        let health = self.health.clone();
        let stop_serving = self.stop_serving;
        let delay = self.drain_delay;
        let drain = async move {
            listen::stopped(stopped).await;
            health.drain();
            tracing::info!(
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "draining: no longer ready; serving on until load balancers notice"
            );
            tokio::time::sleep(delay).await;
            let _ = stop_serving.send(true);
        };
        let failed = tokio::select! {
            ((), ()) = async { tokio::join!(serve, drain) } => None,
            Some(ended) = self.background.join_next() => Some(match ended {
                Ok(task) => format!("{task} stopped unexpectedly"),
                Err(error) => format!("a background task failed: {error}"),
            }),
        };
        self.background.abort_all();
        if let Some(failure) = failed {
            anyhow::bail!("{failure}; the node cannot go on (the log above says why)");
        }
        if let Err(error) = self.admin_server.await {
            tracing::warn!(%error, "the metrics server ended abnormally");
        }
        Ok(())
    }
}

/// The IP the Node advertises: `--address`, else the gateway's bound IP unless it is a
/// wildcard, else loopback.
fn advertised(address: Option<IpAddr>, gateway: SocketAddr) -> IpAddr {
    address.unwrap_or_else(|| {
        let bound = gateway.ip();
        if bound.is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            bound
        }
    })
}

/// A kube client for the identity of a kubeconfig file.
pub async fn client_from(path: &Path) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("cannot read the kubeconfig {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .with_context(|| format!("the kubeconfig {} is not usable", path.display()))?;
    kube::Client::try_from(config).context("cannot build a Kubernetes client")
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Probe {
        #[command(flatten)]
        node: NodeArgs,
    }

    #[test]
    fn the_node_takes_the_cache_limits_but_not_no_cache() {
        let node = Probe::try_parse_from(["probe", "--cache-max-size", "1Gi"])
            .unwrap()
            .node;
        assert_eq!(node.cache_limits.compile_cache_bytes(), 1024 * 1024 * 1024);
        assert_eq!(
            node.cache_limits.image_cache_bytes(),
            wisp_oci::DEFAULT_IMAGE_CACHE_BYTES
        );
        assert!(Probe::try_parse_from(["probe", "--no-cache"]).is_err());
    }

    #[test]
    fn the_node_advertises_a_reachable_address() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let bound: SocketAddr = "10.0.0.7:8080".parse().unwrap();
        let flag: IpAddr = "192.168.1.2".parse().unwrap();
        assert_eq!(advertised(None, any), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(advertised(None, bound), bound.ip());
        assert_eq!(advertised(Some(flag), bound), flag);
    }
}
