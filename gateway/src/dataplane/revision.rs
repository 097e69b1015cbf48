//! One revision in the data plane: its replicas, its activator throttler, its autoscaler handle
//! and metrics, and the task that applies the autoscaler's decisions to the node.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use wisp_activator::{Backend, DemandHooks, Throttler, ThrottlerConfig};
use wisp_api::instance_reuse::InstanceReuse;
use wisp_api::revision_key::RevisionKey;
use wisp_autoscaler::{Reachability, RevisionHandle};
use wisp_runtime::{PreparedComponent, ReplicaIdentity, ReplicaLimits};

use super::backend::ReplicaBackend;
use super::config::RevisionConfig;
use super::node::{NodeCapacity, Unschedulable};
use super::status::{CountsVersion, ReplicaCounts, RevisionState};
use crate::metrics::{
    AutoscalerView, DataPlaneMetrics, NodeMetrics, RevisionLabels, RevisionMetrics,
};

/// Longest request deadline honoured (a day): far beyond Knative's `max-revision-timeout-seconds`,
/// and short enough that deadline arithmetic can never overflow.
const MAX_REVISION_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// Everything the request path and the scaler share about one revision.
pub(crate) struct RevisionEntry {
    pub(crate) config: RevisionConfig,
    pub(crate) labels: RevisionLabels,
    pub(crate) prepared: PreparedComponent,
    identity: ReplicaIdentity,
    limits: ReplicaLimits,
    pub(crate) throttler: Throttler<ReplicaBackend>,
    pub(crate) autoscaler: RevisionHandle,
    pub(crate) metrics: RevisionMetrics,
    node: Arc<NodeCapacity>,
    node_metrics: NodeMetrics,
    counts_version: Arc<CountsVersion>,
    /// Replicas this revision may hold on the node.
    max_replicas: usize,
    /// Replicas taking requests, oldest first.
    replicas: Mutex<Vec<ReplicaBackend>>,
    /// `replicas.len()`, readable on the request path without the lock.
    ready: AtomicU32,
    /// When the revision last went from no replica to some: where a cold start's wait ends. A
    /// request that waits on past it waits for a busy replica's capacity, not for a start.
    serving_since: Mutex<Option<Instant>>,
    /// The last refresh of the sampled metrics found the revision at rest: no replica, none
    /// wanted, nothing queued or observed. Until a request comes or a decision is applied
    /// (which refreshes), refreshing again would write the same values.
    at_rest: AtomicBool,
    /// The current annotations: the one part of a revision that may change.
    annotations: Mutex<BTreeMap<String, String>>,
    /// Whether a route sends it traffic, as last told to the autoscaler.
    reachability: Mutex<Reachability>,
    /// Why the revision has fewer replicas than the autoscaler wants, while it does.
    unschedulable: Mutex<Option<Unschedulable>>,
    scaler: Mutex<Option<JoinHandle<()>>>,
    /// Serialises applying decisions, with what the last one left.
    applying: Mutex<Applied>,
    /// Serialises refreshing the sampled metrics.
    refreshing: Mutex<()>,
}

/// What applying decisions left, kept under the lock that serialises them.
#[derive(Default)]
struct Applied {
    /// [`RevisionEntry::close`] ran: a closed revision starts no replica.
    closed: bool,
    /// The counts the last decision left: the version moves only when they change (a decision
    /// often changes only what the counts leave out).
    counts: Option<ReplicaCounts>,
}

/// Forwards the activator's demand events to the autoscaler.
struct AutoscalerDemand {
    handle: RevisionHandle,
    entry: Weak<RevisionEntry>,
}

impl DemandHooks for AutoscalerDemand {
    fn request_entered(&self) {
        self.handle.request_started();
    }
    fn request_left(&self) {
        self.handle.request_finished();
    }
    fn poke(&self) {
        self.handle.poke();
        // The decision the poke made is applied here, on the request's own thread, while the
        // revision has no replica: waiting for the scaler task to be scheduled cost a burst
        // from zero milliseconds on a node busy accepting that burst's connections. The task
        // applies it again after, finding nothing left to do.
        if let Some(entry) = self.entry.upgrade()
            && entry.ready() == 0
        {
            entry.apply();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain lists and options, consistent between statements: keep serving after a panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) struct EntryParts<'a> {
    pub config: RevisionConfig,
    pub prepared: PreparedComponent,
    pub memory_limit: u64,
    pub max_request_body: u64,
    pub max_queue: usize,
    /// Replicas the revision may hold on the node.
    pub max_replicas: usize,
    pub autoscaler: RevisionHandle,
    /// The registry the revision's series are created in.
    pub metrics: &'a DataPlaneMetrics,
    pub node: Arc<NodeCapacity>,
    pub node_metrics: NodeMetrics,
    pub reachability: Reachability,
    pub counts_version: Arc<CountsVersion>,
}

impl RevisionEntry {
    pub(crate) fn new(parts: EntryParts<'_>) -> Arc<Self> {
        let EntryParts {
            config,
            prepared,
            memory_limit,
            max_request_body,
            max_queue,
            max_replicas,
            autoscaler,
            metrics,
            node,
            node_metrics,
            reachability,
            counts_version,
        } = parts;
        let timeout = config.timeout.min(MAX_REVISION_TIMEOUT);
        let container_concurrency = config.container_concurrency;
        let demand = autoscaler.clone();
        let throttler = move |entry: &Weak<RevisionEntry>| {
            Throttler::new(
                ThrottlerConfig {
                    container_concurrency,
                    max_queue,
                    timeout,
                    activator_in_path: true,
                    seed: None,
                },
                AutoscalerDemand {
                    handle: demand,
                    entry: entry.clone(),
                },
            )
        };
        let identity = ReplicaIdentity {
            service: config.service.clone(),
            configuration: config.configuration.clone(),
            revision: config.key.name.clone(),
            env: config.env.clone(),
            // The guest never listens; PORT is informational, and 8080 is Knative's default.
            port: 8080,
        };
        let limits = ReplicaLimits {
            concurrency: Some(config.container_concurrency).filter(|cc| *cc > 0),
            memory: memory_limit,
            timeout,
            max_request_body,
            reuse: instance_reuse(&config),
        };
        let labels = RevisionLabels::new(
            config.key.namespace.clone(),
            config.service.clone(),
            config.configuration.clone(),
            config.key.name.clone(),
        );
        let metrics = metrics.revision(&labels);
        Arc::new_cyclic(|entry| Self {
            throttler: throttler(entry),
            annotations: Mutex::new(config.annotations.clone()),
            reachability: Mutex::new(reachability),
            config,
            labels,
            prepared,
            identity,
            limits,
            autoscaler,
            metrics,
            node,
            node_metrics,
            counts_version,
            max_replicas,
            replicas: Mutex::new(Vec::new()),
            ready: AtomicU32::new(0),
            serving_since: Mutex::new(None),
            at_rest: AtomicBool::new(false),
            unschedulable: Mutex::new(None),
            scaler: Mutex::new(None),
            applying: Mutex::new(Applied::default()),
            refreshing: Mutex::new(()),
        })
    }

    pub(crate) fn key(&self) -> &RevisionKey {
        &self.config.key
    }

    pub(crate) fn annotations(&self) -> BTreeMap<String, String> {
        lock(&self.annotations).clone()
    }

    pub(crate) fn set_annotations(&self, annotations: BTreeMap<String, String>) {
        *lock(&self.annotations) = annotations;
    }

    pub(crate) fn reachability(&self) -> Reachability {
        *lock(&self.reachability)
    }

    pub(crate) fn set_reachability(&self, reachability: Reachability) {
        *lock(&self.reachability) = reachability;
    }

    pub(crate) fn ready(&self) -> u32 {
        self.ready.load(Ordering::Acquire)
    }

    /// How much of a cold request's `queued` time it spent waiting for the revision's first
    /// replica to start (the rest it queued behind busy replicas).
    pub(crate) fn cold_start_wait(&self, arrived: Instant, queued: Duration) -> Duration {
        lock(&self.serving_since)
            .map_or(queued, |since| since.saturating_duration_since(arrived))
            .min(queued)
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.limits.timeout
    }

    pub(crate) fn unschedulable(&self) -> Option<Unschedulable> {
        *lock(&self.unschedulable)
    }

    /// Applies the autoscaler's current decision (the initial scale) now, so the revision
    /// has its replicas when it is published, then starts the task that applies later ones.
    pub(crate) fn start_scaler(self: &Arc<Self>) {
        self.apply();
        let entry = self.clone();
        let task = tokio::spawn(async move { entry.run_scaler().await });
        if let Some(previous) = lock(&self.scaler).replace(task) {
            previous.abort();
        }
    }

    async fn run_scaler(&self) {
        let mut views = self.autoscaler.subscribe();
        let mut freed = self.node.subscribe_freed();
        loop {
            views.borrow_and_update();
            let short = self.apply();
            if short {
                // Short of room on the node: try again when a replica anywhere gives memory back.
                tokio::select! {
                    changed = views.changed() => if changed.is_err() { return },
                    changed = freed.changed() => if changed.is_err() { return },
                }
            } else if views.changed().await.is_err() {
                return;
            }
        }
    }

    /// Applies the autoscaler's newest decision: the activator's mode, then the replica count.
    /// Returns whether the node could not admit every replica wanted.
    fn apply(&self) -> bool {
        // One applier at a time, each reading the newest decision under the lock: the scaler
        // task and a request's poke both apply, and whichever comes last must not apply an
        // older decision than the other did. A closed revision applies nothing.
        let mut applied = lock(&self.applying);
        if applied.closed {
            return false;
        }
        let view = self.autoscaler.view();
        self.throttler.set_activator_in_path(view.activator_in_path);
        let short = self.scale_to(view.replicas);
        // After the change is visible. A decision published after `view` is read here, or
        // by the apply it wakes, so no change goes without a move.
        let counts = self.replica_counts();
        if applied.counts.replace(counts) != Some(counts) {
            self.counts_version.moved();
        }
        self.refresh_metrics();
        let usage = self.node.usage();
        self.node_metrics.set_replicas(usage.replicas);
        self.node_metrics.set_memory(usage.allocatable, usage.used);
        short
    }

    /// Refreshes the revision's scaling series and the node's (after every decision, and every
    /// autoscaler step, since the observed values change without the decision changing).
    pub(crate) fn refresh_metrics(&self) {
        // The periodic refresh and an apply's may run at once: one at a time, so the last
        // reads the newest status and the at-rest mark is never left from an older one.
        let _refreshing = lock(&self.refreshing);
        let status = self.autoscaler.status();
        let view = status.view;
        let ready = self.ready();
        self.metrics.set_replicas(view.desired_scale, ready);
        let (stable, panic) = status.observed.map_or((0.0, 0.0), |o| (o.stable, o.panic));
        self.metrics.set_autoscaler_view(AutoscalerView {
            panicking: view.panicking,
            stable,
            panic,
            excess_burst_capacity: i64::from(view.excess_burst_capacity),
        });
        let queued = self.throttler.stats().queued;
        self.metrics.set_queue_depth(queued);
        let at_rest = ready == 0
            && view.replicas == 0
            && !view.panicking
            && stable == 0.0
            && panic == 0.0
            && queued == 0;
        self.at_rest.store(at_rest, Ordering::Release);
    }

    /// Whether the periodic refresh may pass this revision by: at rest at its last refresh,
    /// and still without a replica or a request. A request at zero pokes the autoscaler, whose
    /// decision is applied and refreshes the metrics itself.
    pub(crate) fn metrics_at_rest(&self) -> bool {
        self.at_rest.load(Ordering::Acquire)
            && self.ready() == 0
            && self.metrics.requests_in_flight() == 0
    }

    /// Starts or stops replicas until `target` are ready (or the node is full, or the revision
    /// holds its share of it); returns whether it fell short. A target of billions costs no
    /// more than the share: each replica is admitted one at a time. Removed replicas drain: the throttler sends them nothing new
    /// and they finish what they hold. The ready count and the schedulability note are updated
    /// before the throttler releases waiting requests, so a request served by a new replica
    /// never finds them stale.
    fn scale_to(&self, target: u32) -> bool {
        let target = target as usize;
        let mut replicas = lock(&self.replicas);
        let mut short = None;
        let changed = replicas.len() != target;
        let was_empty = replicas.is_empty();
        if replicas.len() < target {
            while replicas.len() < target {
                if replicas.len() >= self.max_replicas {
                    short = Some(Unschedulable::RevisionCap {
                        max_replicas_per_revision: self.max_replicas,
                    });
                    break;
                }
                match self.node.reserve(self.limits.memory) {
                    Ok(reservation) => {
                        let replica = self
                            .prepared
                            .start_replica(&self.identity, self.limits.clone());
                        replicas.push(ReplicaBackend::new(replica, reservation));
                    }
                    Err(unschedulable) => {
                        short = Some(unschedulable);
                        break;
                    }
                }
            }
        } else if replicas.len() > target {
            // Stop the least busy first: they drain soonest.
            let mut by_load: Vec<(u32, usize)> = replicas
                .iter()
                .enumerate()
                .map(|(i, r)| (self.throttler.in_flight(&r.id()).unwrap_or(0), i))
                .collect();
            by_load.sort_unstable();
            let mut doomed: Vec<usize> = by_load
                .into_iter()
                .take(replicas.len() - target)
                .map(|(_, i)| i)
                .collect();
            doomed.sort_unstable_by(|a, b| b.cmp(a));
            for i in doomed {
                replicas.remove(i);
            }
        }
        let ready = u32::try_from(replicas.len()).unwrap_or(u32::MAX);
        if was_empty && ready > 0 {
            *lock(&self.serving_since) = Some(Instant::now());
        }
        self.ready.store(ready, Ordering::Release);
        self.note_schedulability(short);
        if changed {
            self.throttler.update_backends(replicas.iter().cloned());
        }
        drop(replicas);
        self.autoscaler.set_ready(ready);
        short.is_some()
    }

    fn note_schedulability(&self, outcome: Option<Unschedulable>) {
        let mut current = lock(&self.unschedulable);
        match (&*current, &outcome) {
            (None, Some(reason)) => tracing::warn!(
                namespace = %self.key().namespace,
                revision = %self.key().name,
                ready = self.ready(),
                "revision is short of replicas; requests stay queued until the node has room or they time out: {reason}"
            ),
            (Some(_), None) => tracing::info!(
                namespace = %self.key().namespace,
                revision = %self.key().name,
                ready = self.ready(),
                "revision has every replica it wants again"
            ),
            _ => {}
        }
        *current = outcome;
    }

    /// Takes the revision out of service: queued requests fail (503), replicas drain, the
    /// scaler stops.
    pub(crate) fn close(&self) {
        // Held to the end: an apply under way finishes first, and none starts after.
        let mut applied = lock(&self.applying);
        applied.closed = true;
        if let Some(task) = lock(&self.scaler).take() {
            task.abort();
        }
        self.throttler.shutdown();
        lock(&self.replicas).clear();
        self.throttler.update_backends(std::iter::empty());
        self.ready.store(0, Ordering::Release);
        *lock(&self.unschedulable) = None;
        self.counts_version.moved();
    }

    pub(crate) fn replica_counts(&self) -> ReplicaCounts {
        let view = self.autoscaler.view();
        ReplicaCounts {
            desired: view.desired_scale,
            wanted: view.replicas,
            ready: self.ready(),
            unschedulable: self.unschedulable(),
        }
    }

    pub(crate) fn state(&self) -> RevisionState {
        let view = self.autoscaler.view();
        let stats = self.throttler.stats();
        RevisionState {
            key: self.key().clone(),
            digest: self.prepared.digest().to_string(),
            desired_replicas: view.desired_scale,
            wanted_replicas: view.replicas,
            ready_replicas: self.ready(),
            draining_replicas: stats.draining,
            queued: stats.queued,
            in_flight: stats.in_flight,
            activator_in_path: stats.activator_in_path,
            panicking: view.panicking,
            activation_failed: view.failed(),
            unschedulable: self.unschedulable().map(|u| u.to_string()),
        }
    }
}

/// The revision's instance reuse choice. Admission refuses bad `wisp.dev/` annotations, so a
/// bad one here came past it (a server without wisp's webhooks): it is logged and the revision
/// keeps a fresh instance per request.
fn instance_reuse(config: &RevisionConfig) -> InstanceReuse {
    InstanceReuse::from_annotations(&config.annotations).unwrap_or_else(|errors| {
        for error in errors {
            tracing::warn!(
                namespace = %config.key.namespace,
                revision = %config.key.name,
                "ignoring an invalid annotation, the revision keeps a fresh instance per request: {error}"
            );
        }
        InstanceReuse::default()
    })
}
