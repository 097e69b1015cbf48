//! The data plane's sync with the Kubernetes API (DESIGN §3): watches Revisions, Routes and
//! Knative's ConfigMaps and programs the [`DataPlane`] from them; writes Revision status
//! (Ready, image digest, replica counts), flips Routes' `IngressReady` once the gateway serves
//! them, and registers the node as a virtual kubelet would: a Node, its heartbeat Lease in
//! `kube-node-lease`, and its replicas as Pods bound to it. One client does all of it: the
//! node identity, which may read everything and write only those objects and the status
//! subresources of Revisions and Routes.
//!
//! The API is the only contract with the controllers (see the issue 6 contract): this module
//! never calls them. Every status write is a read-modify-write with the object's
//! resourceVersion, and skipped when it would change nothing.
//!
//! Modules: [`spec`] (a revision spec to a `RevisionConfig`, shared with `wisp serve`),
//! `convert` (a Revision object to it), `failure` (errors to reasons), `status` (status
//! computation), `route_table` (Routes to the route table), `pods` (Pod and Node objects) — all
//! pure; `revisions`, `routes`, `config_maps`, `replicas` (with `node`), `lease` are the watch
//! and write loops.

mod config_maps;
mod convert;
mod failure;
mod lease;
mod node;
mod pods;
mod ready_nodes;
mod replicas;
mod revisions;
mod route_table;
mod routes;
pub mod spec;
mod spread;
mod status;
mod write;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, oneshot, watch};
use wisp_api::knative::Revision;
use wisp_api::revision_key::RevisionKey;

use crate::dataplane::DataPlane;
use crate::health::Health;

/// Pause before a watch whose stream ended is started again.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// How the sync runs on this node.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// The Node this data plane reports as, and the `spec.nodeName` of its Pods.
    pub node_name: String,
    /// Relative image paths of revisions resolve against it.
    pub image_base_dir: PathBuf,
    /// How often replica counts, Pods and the Node are brought up to date (1 s).
    pub status_interval: Duration,
    /// The Node's `InternalIP` and its Pods' `hostIP`/`podIP`: where the gateway is reached.
    pub address: IpAddr,
    /// The gateway's port, published as the Node's kubelet endpoint.
    pub gateway_port: u16,
    /// The node Lease's `leaseDurationSeconds`; it is renewed every quarter of it.
    pub lease_duration: Duration,
    /// The node's phase, which its `Ready` condition follows (set by the caller: `loaded`,
    /// then drain).
    pub health: Health,
}

/// Runs the sync until the future is dropped. `client` (the node identity is enough) reads
/// Revisions, Routes and ConfigMaps, writes their status, and writes the Node, its Lease and
/// its Pods. Errors are logged and retried with backoff (an API without Leases included);
/// nothing here panics.
///
/// `loaded` is sent once the state the API held at startup is served: every Revision of the
/// first list had its first apply attempt (succeeded or failed, its status write done), a
/// route table built from the first Route list after that was programmed into the gateway
/// (its `IngressReady` writes done), and the first list of Knative's ConfigMaps was applied
/// (the gateway's domain). Statuses stored before a restart say Ready before the
/// gateway serves anything; from `loaded` on, they are true again.
pub async fn run(
    data_plane: DataPlane,
    client: kube::Client,
    options: SyncOptions,
    loaded: oneshot::Sender<()>,
) {
    let shared = Arc::new(Shared {
        data_plane,
        client,
        report_key: wisp_api::nodes::report_key(&options.node_name),
        options,
        revisions: Mutex::new(HashMap::new()),
        reports_seen: AtomicU64::new(0),
        serving: Mutex::new(ServingSet::default()),
        serving_changed: Notify::new(),
        share: watch::Sender::new(spread::Share::ALONE),
    });
    let (revisions_loaded, revisions_loaded_receiver) = watch::channel(false);
    let (routes_loaded, mut routes_loaded_receiver) = watch::channel(false);
    let (config_loaded, mut config_loaded_receiver) = watch::channel(false);
    let signal = async move {
        // Errors mean a loop ended, which they never do while `run` runs.
        let _ = routes_loaded_receiver.wait_for(|loaded| *loaded).await;
        let _ = config_loaded_receiver.wait_for(|loaded| *loaded).await;
        // The receiver may be gone: nobody waits then.
        let _ = loaded.send(());
        tracing::info!("the data plane serves what the API holds");
    };
    tokio::join!(
        signal,
        revisions::run(shared.clone(), revisions_loaded),
        routes::run(shared.clone(), revisions_loaded_receiver, routes_loaded),
        config_maps::run(shared.clone(), config_loaded),
        replicas::run(shared.clone()),
        ready_nodes::run(shared.clone()),
        lease::run(shared),
    );
}

/// State the loops share.
struct Shared {
    data_plane: DataPlane,
    client: kube::Client,
    options: SyncOptions,
    /// This node's key in a Revision's `status.annotations`.
    report_key: String,
    /// The latest Revision objects the watcher saw: status writes start from them.
    revisions: Mutex<HashMap<RevisionKey, Arc<Revision>>>,
    /// Moves when the watcher's copy of a revision first shows this node's report: the replica
    /// pass writes no counts before that report, and reads the counts again once it is there.
    reports_seen: AtomicU64,
    /// Revisions the data plane serves, with what their Pods show.
    serving: Mutex<ServingSet>,
    /// Woken when a revision starts or stops serving: routes waiting for it may be ready now.
    serving_changed: Notify,
    /// This node's place among the Ready nodes, for revision-wide replica floors.
    share: watch::Sender<spread::Share>,
}

/// What a serving revision's Pods and status need of its Revision.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Serving {
    uid: String,
    service: String,
    configuration: String,
    image: String,
    container_name: String,
}

impl Shared {
    fn cache(&self, key: &RevisionKey, revision: Option<&Arc<Revision>>) {
        let mut revisions = self
            .revisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let previous = match revision {
            Some(revision) => revisions.insert(key.clone(), Arc::clone(revision)),
            None => revisions.remove(key),
        };
        if first_report(
            previous.as_deref(),
            revision.map(Arc::as_ref),
            &self.report_key,
        ) {
            self.reports_seen.fetch_add(1, Ordering::Release);
        }
    }

    fn cached(&self, key: &RevisionKey) -> Option<Revision> {
        self.revisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .map(|revision| Revision::clone(revision))
    }

    fn start_serving(&self, key: &RevisionKey, serving: Serving) {
        {
            let mut set = self.serving.lock().unwrap_or_else(PoisonError::into_inner);
            if set.revisions.get(key) != Some(&serving) {
                set.revisions.insert(key.clone(), serving);
                set.generation += 1;
            }
        }
        self.serving_changed.notify_one();
    }

    fn stop_serving(&self, key: &RevisionKey) {
        let removed = {
            let mut set = self.serving.lock().unwrap_or_else(PoisonError::into_inner);
            let removed = set.revisions.remove(key).is_some();
            if removed {
                set.generation += 1;
            }
            removed
        };
        if removed {
            self.serving_changed.notify_one();
        }
    }

    /// Each serving revision's replica counts on this node, and the serving revisions that
    /// have ready replicas (the only ones with Pods), read in one pass under the lock — or
    /// `None` when nothing changed since `unchanged_since` was read. Once a second over every
    /// revision a node serves: with 10,000 serving, even reading each revision's counts to
    /// compare them kept a percent of a core busy while nothing happened, so the versions of
    /// the serving set and of the data plane's counts decide, and the counts are read only
    /// after a change.
    fn replica_counts(&self, unchanged_since: Option<&ReplicaSnapshot>) -> Option<ReplicaPass> {
        // The counts' version before the counts: a change racing this read moves it on, and
        // the next pass reads again.
        let counts_version = self.data_plane.replica_counts_version();
        let reports_seen = self.reports_seen.load(Ordering::Acquire);
        let serving = self.serving.lock().unwrap_or_else(PoisonError::into_inner);
        let snapshot = ReplicaSnapshot {
            serving_generation: serving.generation,
            counts_version,
            reports_seen,
        };
        if unchanged_since == Some(&snapshot) {
            return None;
        }
        let node_name = &self.options.node_name;
        let mut counts = BTreeMap::new();
        let mut with_replicas = BTreeMap::new();
        for (key, entry) in &serving.revisions {
            let Some(read) = self.data_plane.replica_counts(key) else {
                continue;
            };
            let replicas = status::Replicas {
                actual: i32::try_from(read.ready).unwrap_or(i32::MAX),
                desired: read.desired,
                capped: read.capped(node_name),
            };
            if replicas.actual > 0 {
                with_replicas.insert(key.clone(), entry.clone());
            }
            counts.insert(key.clone(), replicas);
        }
        Some(ReplicaPass {
            snapshot,
            counts,
            with_replicas,
        })
    }
}

/// The revisions the data plane serves; `generation` changes with them.
#[derive(Default)]
struct ServingSet {
    revisions: BTreeMap<RevisionKey, Serving>,
    generation: u64,
}

/// The versions a replica pass read under: equal at the next pass means the serving set and
/// every revision's counts are as they were.
#[derive(Debug, PartialEq)]
struct ReplicaSnapshot {
    serving_generation: u64,
    /// [`DataPlane::replica_counts_version`].
    counts_version: u64,
    /// [`Shared::reports_seen`].
    reports_seen: u64,
}

/// One replica pass's input: each serving revision's counts as its status spells them, and
/// the serving revisions with ready replicas.
struct ReplicaPass {
    snapshot: ReplicaSnapshot,
    counts: BTreeMap<RevisionKey, status::Replicas>,
    with_replicas: BTreeMap<RevisionKey, Serving>,
}

/// Whether `next` is the first copy of a revision to carry the report under `report_key`.
fn first_report(previous: Option<&Revision>, next: Option<&Revision>, report_key: &str) -> bool {
    let reported = |revision: &Revision| {
        revision
            .status
            .as_ref()
            .is_some_and(|status| status.annotations.contains_key(report_key))
    };
    next.is_some_and(reported) && !previous.is_some_and(reported)
}

/// Now, as condition timestamps spell it.
fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revision(annotations: &[(&str, &str)]) -> Revision {
        let mut revision: Revision = serde_json::from_value(serde_json::json!({
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Revision",
            "metadata": {"name": "a-00001", "namespace": "default"},
            "spec": {"containers": [{"image": "a.wasm"}]},
        }))
        .expect("a revision");
        revision.status = Some(wisp_api::knative::RevisionStatus {
            annotations: annotations
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
            ..Default::default()
        });
        revision
    }

    #[test]
    fn only_the_first_copy_with_this_nodes_report_counts_as_a_new_report() {
        let key = wisp_api::nodes::report_key("a");
        let other = wisp_api::nodes::report_key("b");
        let bare = revision(&[]);
        let by_other = revision(&[(&other, "{}")]);
        let reported = revision(&[(&key, "{}")]);
        assert!(
            first_report(None, Some(&reported), &key),
            "first seen reported"
        );
        assert!(first_report(Some(&bare), Some(&reported), &key));
        assert!(!first_report(Some(&reported), Some(&reported), &key));
        assert!(!first_report(Some(&bare), Some(&by_other), &key));
        assert!(!first_report(Some(&reported), None, &key), "deleted");
        assert!(!first_report(None, Some(&bare), &key));
    }
}
