//! The data plane (DESIGN §3): revisions with their replicas, the route table, the activator
//! and the autoscaler composed into one request path.
//!
//! The control plane feeds it through a typed interface — [`DataPlane::apply_revision`],
//! [`DataPlane::remove_revision`], [`DataPlane::set_routes`] (or [`DataPlane::update_routes`],
//! route by route) — and reads
//! [`DataPlane::revision_state`] back for Revision status. Requests enter through
//! [`DataPlane::handle`] (served on a listener by [`DataPlane::serve`]).
//!
//! Per request: `Host` → route → weighted pick of a revision (or a tag's revision) → the
//! revision's throttler, which counts the request as demand, hands it a replica slot or queues
//! it (poking the autoscaler when the revision is at zero) → the replica runs a fresh instance →
//! the response streams back holding its slot until the body ends.
//!
//! Scaling: each revision has a task that applies the autoscaler's view as soon as it changes
//! (start or drain replicas within the node's allocatable memory, move the activator in or out
//! of the path). The autoscaler's own loop runs every second ([`DataPlane::run_autoscaler`]), or
//! under a test's control with a manual clock ([`DataPlane::step`]).

mod backend;
mod body;
mod config;
mod error;
mod handler;
mod node;
mod registry;
mod revision;
mod route_set;
mod status;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tokio::net::TcpListener;
use wisp_api::revision_key::RevisionKey;
use wisp_autoscaler::spec::ResolvedSpec;
use wisp_autoscaler::{Autoscaler, Clock, Reachability, RevisionSpec};
use wisp_runtime::{ArtifactSource, PreparedComponent, Runtime};

pub use backend::{BoxedRequestBody, ReplicaBackend};
pub use body::GatewayBody;
pub use config::{DEFAULT_MEMORY_LIMIT, DEFAULT_REVISION_TIMEOUT, DataPlaneConfig, RevisionConfig};
pub use error::DataPlaneError;
pub use node::{
    DEFAULT_MAX_REPLICAS, NodeCapacity, NodeUsage, Unschedulable, default_max_replicas_per_revision,
};
pub use route_set::RouteChange;
use status::CountsVersion;
pub use status::{ReplicaCounts, RevisionState};

use crate::metrics::{CompiledTotals, DataPlaneMetrics, NodeLabels, NodeMetrics};
use crate::routing::{Domain, RouteConfig, RouteError, RouteTable, Router};
use registry::Registry;
use revision::{EntryParts, RevisionEntry};
use route_set::RouteSet;

/// Whether `entry` already runs `config`: the same spec, and the recorded bytes when a digest
/// is recorded.
fn runs(entry: &RevisionEntry, config: &RevisionConfig) -> bool {
    entry.config.same_spec(config)
        && config
            .recorded_digest
            .is_none_or(|recorded| recorded == entry.prepared.digest())
}

/// The data plane of one node. Cheap to clone (shares everything).
#[derive(Clone)]
pub struct DataPlane {
    inner: Arc<Inner>,
}

struct Inner {
    config: DataPlaneConfig,
    runtime: Runtime,
    autoscaler: Arc<Autoscaler>,
    router: Router,
    domain: RwLock<Domain>,
    routes: Mutex<RouteSet>,
    /// Revisions whose new reachability the autoscaler refused; tried again on each publish.
    refused_reachability: Mutex<HashSet<RevisionKey>>,
    /// Serialises configuration changes (revisions, routes, domain) so each sees the others
    /// whole; the request path never takes it.
    control: tokio::sync::Mutex<()>,
    revisions: RwLock<Registry>,
    metrics: Arc<DataPlaneMetrics>,
    node: Arc<NodeCapacity>,
    node_metrics: NodeMetrics,
    counts_version: Arc<CountsVersion>,
}

impl DataPlane {
    /// A data plane on `runtime`, its autoscaler reading time from `clock` (a `SystemClock` in
    /// production, a `ManualClock` in tests that step time themselves).
    pub fn new(runtime: Runtime, config: DataPlaneConfig, clock: Arc<dyn Clock>) -> Self {
        let metrics = Arc::new(DataPlaneMetrics::new());
        let node_metrics = metrics.node(&NodeLabels::new(config.node_name.clone()));
        let node = NodeCapacity::new(config.allocatable_memory, config.max_replicas);
        node_metrics.set_memory(config.allocatable_memory, 0);
        let autoscaler = Arc::new(Autoscaler::new(config.autoscaler.clone(), clock));
        let domain = config.domain.clone();
        Self {
            inner: Arc::new(Inner {
                router: Router::new(
                    RouteTable::build(domain.clone(), Vec::<RouteConfig>::new()).table,
                ),
                domain: RwLock::new(domain),
                routes: Mutex::new(RouteSet::default()),
                refused_reachability: Mutex::new(HashSet::new()),
                control: tokio::sync::Mutex::new(()),
                revisions: RwLock::new(Registry::default()),
                config,
                runtime,
                autoscaler,
                metrics,
                node,
                node_metrics,
                counts_version: Arc::default(),
            }),
        }
    }

    pub fn metrics(&self) -> &Arc<DataPlaneMetrics> {
        &self.inner.metrics
    }

    pub fn autoscaler(&self) -> &Arc<Autoscaler> {
        &self.inner.autoscaler
    }

    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    pub fn node_usage(&self) -> NodeUsage {
        self.inner.node.usage()
    }

    /// Adds a revision, or updates one already here. Fetches and compiles the component (or
    /// finds it cached), so it can take a while the first time; the revision takes requests
    /// once this returns. A revision applied again with only its annotations changed keeps its
    /// replicas; any other change replaces it (Knative revisions are immutable). Invalid input
    /// changes nothing.
    pub async fn apply_revision(
        &self,
        config: RevisionConfig,
    ) -> Result<RevisionState, DataPlaneError> {
        let invalid = |source| DataPlaneError::Autoscaling {
            revision: config.key.clone(),
            source,
        };
        let unchanged_spec = self
            .entry(&config.key)
            .is_some_and(|entry| runs(&entry, &config));
        // Compiling can take seconds: done before the control lock, so other changes go on.
        let prepared = if unchanged_spec {
            None
        } else {
            match self.prepare(&config).await {
                Ok(prepared) => Some(prepared),
                Err(error) => {
                    self.remove_unrecorded(&config).await;
                    return Err(error);
                }
            }
        };

        let _control = self.inner.control.lock().await;
        let spec = self.scaling_spec(&config);
        ResolvedSpec::resolve(&self.inner.autoscaler.config(), &spec).map_err(invalid)?;
        let existing = self.entry(&config.key);
        if let Some(entry) = &existing
            && runs(entry, &config)
        {
            if entry.annotations() != config.annotations {
                entry.set_annotations(config.annotations);
                entry.set_reachability(spec.reachability);
                self.inner
                    .autoscaler
                    .register(config.key.clone(), spec, entry.ready())
                    .map_err(invalid)?;
            }
            return Ok(entry.state());
        }
        let prepared = match prepared {
            Some(prepared) => prepared,
            // The revision changed while its component was being prepared: prepare again
            // (from the loader's memory, as the component is known by now).
            None => self.prepare(&config).await?,
        };
        if existing.is_some() {
            // A fresh autoscaler state for the replacement; the old entry keeps its detached
            // handle until it is closed below.
            self.inner.autoscaler.unregister(&config.key);
        }
        let handle = self
            .inner
            .autoscaler
            .register(config.key.clone(), spec, 0)
            .map_err(invalid)?;
        let memory_limit = config
            .memory_limit
            .unwrap_or(self.inner.config.default_memory_limit);
        let entry = RevisionEntry::new(EntryParts {
            reachability: self.reachability(&config.key),
            metrics: &self.inner.metrics,
            prepared,
            memory_limit,
            max_request_body: self.inner.config.max_request_body,
            max_queue: self.inner.config.max_queue,
            max_replicas: self.inner.config.max_replicas_per_revision,
            autoscaler: handle,
            node: self.inner.node.clone(),
            node_metrics: self.inner.node_metrics.clone(),
            counts_version: self.inner.counts_version.clone(),
            config,
        });
        entry.start_scaler();
        // Published before the old one closes, so new requests never find the revision gone.
        let displaced = self.write_revisions().insert(entry.clone());
        self.inner.counts_version.moved();
        if let Some(old) = displaced {
            old.close();
            if old.labels != entry.labels {
                self.inner.metrics.remove_revision(&old.labels);
            }
        }
        tracing::info!(
            namespace = %entry.key().namespace,
            revision = %entry.key().name,
            digest = %entry.prepared.digest(),
            origin = ?entry.prepared.origin(),
            "revision ready"
        );
        Ok(entry.state())
    }

    /// Fetches and compiles (or finds cached) the revision's component: the bytes of its
    /// recorded digest, once it has one.
    async fn prepare(&self, config: &RevisionConfig) -> Result<PreparedComponent, DataPlaneError> {
        let source = ArtifactSource::parse(&config.component);
        self.inner
            .runtime
            .prepare_recorded(&source, config.recorded_digest, &config.pull_credentials)
            .await
            .map_err(|source| DataPlaneError::Component {
                revision: config.key.clone(),
                source,
            })
    }

    /// After a failed prepare: a revision here that runs other bytes than the digest recorded
    /// for it (another node recorded first) must not go on serving them.
    async fn remove_unrecorded(&self, config: &RevisionConfig) {
        let stray = self.entry(&config.key).is_some_and(|entry| {
            entry.config.same_spec(config)
                && config
                    .recorded_digest
                    .is_some_and(|recorded| recorded != entry.prepared.digest())
        });
        if stray {
            tracing::warn!(
                namespace = %config.key.namespace,
                revision = %config.key.name,
                "the revision runs other bytes than its recorded digest; removing it"
            );
            self.remove_revision(&config.key).await;
        }
    }

    /// Removes a revision: requests queued for it get 503, its replicas finish what they hold.
    /// Returns whether it was here.
    pub async fn remove_revision(&self, key: &RevisionKey) -> bool {
        let _control = self.inner.control.lock().await;
        let removed = self.write_revisions().remove(key);
        match removed {
            Some(entry) => {
                self.inner.counts_version.moved();
                entry.close();
                self.inner.autoscaler.unregister(entry.key());
                self.inner.metrics.remove_revision(&entry.labels);
                true
            }
            None => false,
        }
    }

    /// Replaces every route at once; requests see the old table or the new one, never a mix.
    /// Invalid routes are left out and returned. Revisions no route sends traffic to become
    /// unreachable for the autoscaler (they scale to zero whatever their min-scale).
    pub async fn set_routes(&self, routes: Vec<RouteConfig>) -> Vec<RouteError> {
        let _control = self.inner.control.lock().await;
        let mut flipped = Vec::new();
        let mut problems = self.route_set().replace_all(routes, &mut flipped);
        problems.extend(self.publish_routes(&flipped));
        problems
    }

    /// Changes only the routes `changes` name; the table is published whole as
    /// [`DataPlane::set_routes`] does. Returns the problems of the whole new table (a change
    /// can make a host conflict with a route it did not name).
    pub async fn update_routes(&self, changes: Vec<RouteChange>) -> Vec<RouteError> {
        let _control = self.inner.control.lock().await;
        let mut flipped = Vec::new();
        {
            let mut routes = self.route_set();
            for change in changes {
                routes.apply(change, &mut flipped);
            }
        }
        self.publish_routes(&flipped)
    }

    /// Changes the domain (`config-domain`) and rebuilds the route table for it.
    pub async fn set_domain(&self, domain: Domain) -> Vec<RouteError> {
        let _control = self.inner.control.lock().await;
        *self
            .inner
            .domain
            .write()
            .unwrap_or_else(PoisonError::into_inner) = domain;
        self.publish_routes(&[])
    }

    fn route_set(&self) -> std::sync::MutexGuard<'_, RouteSet> {
        self.inner
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Builds and swaps in the table for the routes held, then tells the autoscaler about the
    /// revisions in `flipped`, whose reachability changed; the caller holds the control lock.
    fn publish_routes(&self, flipped: &[RevisionKey]) -> Vec<RouteError> {
        let built = RouteTable::build(self.domain(), self.route_set().configs());
        self.inner.router.replace(built.table);
        let refused: Vec<RevisionKey> = std::mem::take(&mut *self.refused_reachability())
            .into_iter()
            .collect();
        for key in flipped.iter().chain(&refused) {
            if let Some(entry) = self.entry(key)
                && !self.set_reachability(&entry, self.reachability(key))
            {
                self.refused_reachability().insert(key.clone());
            }
        }
        built.problems
    }

    pub fn domain(&self) -> Domain {
        self.inner
            .domain
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The revision's state now, if it is here.
    pub fn revision_state(&self, key: &RevisionKey) -> Option<RevisionState> {
        // Not under the registry's lock: a revision's state takes its autoscaler's and
        // throttler's locks.
        self.entry(key).map(|entry| entry.state())
    }

    /// Whether the revision is here (applied and not removed). Cheaper than
    /// [`DataPlane::revision_state`], which copies its names and spells its digest: the route
    /// sync asks this for every revision a changed route names.
    pub fn has_revision(&self, key: &RevisionKey) -> bool {
        self.with_entry(key, |_| ()).is_some()
    }

    /// Read before [`DataPlane::replica_counts`]: while it returns what it did before the last
    /// reads, none of those counts has changed since.
    pub fn replica_counts_version(&self) -> u64 {
        self.inner.counts_version.get()
    }

    /// The revision's replica counts now, if it is here: the part of
    /// [`DataPlane::revision_state`] its status takes, without copying anything.
    pub fn replica_counts(&self, key: &RevisionKey) -> Option<ReplicaCounts> {
        self.with_entry(key, RevisionEntry::replica_counts)
    }

    /// `read` of the revision's entry, under the registry's read lock: for the questions the
    /// sync asks thousands of times a second, without the `Arc` clone of [`DataPlane::entry`].
    fn with_entry<T>(
        &self,
        key: &RevisionKey,
        read: impl FnOnce(&RevisionEntry) -> T,
    ) -> Option<T> {
        self.read_revisions()
            .get(&key.namespace, &key.name)
            .map(|entry| read(entry))
    }

    /// One second of the autoscaler's loop at the clock's current time, then the metrics that
    /// are sampled rather than pushed. [`DataPlane::run_autoscaler`] calls it every second;
    /// tests on a manual clock call it after advancing time.
    pub fn step(&self) {
        let now = self.inner.autoscaler.clock().now();
        self.inner.autoscaler.step(now);
        // Revisions at rest are passed by: with thousands at zero, refreshing each every
        // second was most of an idle node's CPU.
        let entries: Vec<Arc<RevisionEntry>> = self
            .read_revisions()
            .entries()
            .filter(|entry| !entry.metrics_at_rest())
            .cloned()
            .collect();
        for entry in entries {
            entry.refresh_metrics();
        }
        let usage = self.inner.node.usage();
        let loader = self.inner.runtime.loader_stats();
        self.inner.node_metrics.set_compiled(CompiledTotals {
            memory_bytes: loader.memory_bytes.load(Ordering::Relaxed),
            memory_evictions: loader.memory_evictions.load(Ordering::Relaxed),
            disk_evictions: loader.disk_evictions.load(Ordering::Relaxed),
        });
        self.inner.node_metrics.set_replicas(usage.replicas);
        self.inner
            .node_metrics
            .set_memory(usage.allocatable, usage.used);
    }

    /// Runs [`DataPlane::step`] every second, until the task is dropped.
    pub async fn run_autoscaler(self) {
        let mut interval = tokio::time::interval(wisp_autoscaler::multiscaler::COLLECT_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            interval.tick().await;
            self.step();
        }
    }

    /// The gateway's server: the configured connection limits, counted as the `gateway`
    /// listener.
    fn server(&self) -> crate::server::Server {
        crate::server::Server::new(self.inner.config.server.clone())
            .with_metrics(self.inner.metrics.connections("gateway"))
    }

    /// Serves the gateway on `listener` until `shutdown` resolves, then lets in-flight requests
    /// finish within the configured grace period.
    pub async fn serve(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let data_plane = self.clone();
        self.server()
            .serve(
                listener,
                move |request, peer: SocketAddr| {
                    let data_plane = data_plane.clone();
                    async move { data_plane.handle(request, peer).await }
                },
                shutdown,
            )
            .await;
    }

    /// Like [`serve`](Self::serve), and answers a load balancer's health checks from `health`
    /// itself: `GET /healthz` to the node rather than to a route (the rule is
    /// [`crate::health::is_gateway_check`]) gets 200 `ok` while the node serves, 503 while it
    /// loads or drains.
    pub async fn serve_with_health(
        &self,
        listener: TcpListener,
        health: crate::health::Health,
        shutdown: impl Future<Output = ()>,
    ) {
        let data_plane = self.clone();
        self.server()
            .serve(
                listener,
                move |request: http::Request<hyper::body::Incoming>, peer: SocketAddr| {
                    let data_plane = data_plane.clone();
                    // Only a `/healthz` request pays for the host check and the phase read.
                    let phase = (request.uri().path() == "/healthz"
                        && crate::health::is_gateway_check(
                            request.method(),
                            request.uri().path(),
                            crate::routing::authority_of(&request),
                        ))
                    .then(|| health.phase());
                    async move {
                        if let Some(phase) = phase {
                            let (status, text) = crate::health::answer(phase);
                            wisp_runtime::plain_response(status, text.to_owned())
                                .map(body::GatewayBody::plain)
                        } else {
                            data_plane.handle(request, peer).await
                        }
                    }
                },
                shutdown,
            )
            .await;
    }

    fn scaling_spec(&self, config: &RevisionConfig) -> RevisionSpec {
        RevisionSpec {
            annotations: config.annotations.clone(),
            container_concurrency: config.container_concurrency,
            reachability: self.reachability(&config.key),
        }
    }

    fn reachability(&self, key: &RevisionKey) -> Reachability {
        if self.route_set().is_routed(&key.namespace, &key.name) {
            Reachability::Reachable
        } else {
            Reachability::Unreachable
        }
    }

    /// Tells the autoscaler that `entry` is now `reachability`, if that is news. Returns
    /// whether the autoscaler has it (false: it refused, see below).
    fn set_reachability(&self, entry: &RevisionEntry, reachability: Reachability) -> bool {
        if entry.reachability() == reachability {
            return true;
        }
        let key = entry.key();
        let spec = RevisionSpec {
            annotations: entry.annotations(),
            container_concurrency: entry.config.container_concurrency,
            reachability,
        };
        // The annotations were accepted when the revision was applied; should the cluster
        // configuration reject them now, the revision keeps its previous spec, and the next
        // publish of the routes tries again.
        match self
            .inner
            .autoscaler
            .register(key.clone(), spec, entry.ready())
        {
            Ok(_) => {
                entry.set_reachability(reachability);
                true
            }
            Err(error) => {
                tracing::warn!(
                    namespace = %key.namespace,
                    revision = %key.name,
                    %error,
                    "cannot update whether the revision is routed"
                );
                false
            }
        }
    }

    fn refused_reachability(&self) -> std::sync::MutexGuard<'_, HashSet<RevisionKey>> {
        self.inner
            .refused_reachability
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn entry(&self, key: &RevisionKey) -> Option<Arc<RevisionEntry>> {
        self.lookup(&key.namespace, &key.name)
    }

    /// The request path's lookup, by the route table's names.
    fn lookup(&self, namespace: &str, name: &str) -> Option<Arc<RevisionEntry>> {
        self.read_revisions().get(namespace, name).cloned()
    }

    fn read_revisions(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.inner
            .revisions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_revisions(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.inner
            .revisions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
