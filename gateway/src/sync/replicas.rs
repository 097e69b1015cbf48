//! Every `status_interval`: replica counts into Revision status (only those that changed), the
//! Pods that mirror ready replicas created and deleted in one batch, and the Node refreshed when
//! it changed. Never on the request path: the data plane is only read here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::Value;
use wisp_api::knative::Revision;
use wisp_api::revision_key::RevisionKey;

use super::node::{self, NodeStatus};
use super::pods::{self, PodKey, REVISION_LABEL, REVISION_UID_LABEL};
use super::status::{self, Replicas};
use super::write::write_status;
use super::{Serving, Shared, now};

/// API calls in flight at once in one batch.
const CONCURRENT_WRITES: usize = 16;

/// How often this node's Pods are listed again, so Pods deleted behind the sync's back (the
/// garbage collector after their Revision went, a user) are made again.
const RELIST: Duration = Duration::from_secs(10);

/// Runs until dropped.
pub(super) async fn run(shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(shared.options.status_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut replicas = ReplicaStatus::default();
    let mut pods = Pods::new(shared.options.status_interval);
    let mut node = NodeStatus::new(shared.options.status_interval);
    // What the last pass read, once everything it read is written: until something changes,
    // or the Pods are due to be listed again, there is nothing to do.
    let mut written: Option<super::ReplicaSnapshot> = None;
    loop {
        interval.tick().await;
        let unchanged_since = written.as_ref().filter(|_| !pods.relist_due());
        match shared.replica_counts(unchanged_since) {
            None => pods.skip_tick(),
            Some(pass) => {
                // Pods first: a reader who sees actualReplicas N finds N Pods. A revision whose
                // Pods could not be written keeps its old counts until they are.
                let unsynced = pods.sync(&shared, &pass.with_replicas, &pass.counts).await;
                let complete = unsynced.is_empty();
                let synced: BTreeMap<RevisionKey, Replicas> = pass
                    .counts
                    .into_iter()
                    .filter(|(key, _)| !unsynced.contains(key))
                    .collect();
                let all_written = replicas.sync(&shared, &synced).await;
                written = (complete && all_written).then_some(pass.snapshot);
            }
        }
        node.sync(&shared).await;
    }
}

/// The counts last written per revision.
#[derive(Default)]
struct ReplicaStatus {
    written: HashMap<RevisionKey, Replicas>,
}

impl ReplicaStatus {
    /// Writes the counts that differ from those last written; whether every write that could
    /// be made was (a revision this node has not reported on yet waits for its report, which
    /// moves [`super::Shared::reports_seen`] and so brings the counts back to a later pass).
    async fn sync(&mut self, shared: &Shared, counts: &BTreeMap<RevisionKey, Replicas>) -> bool {
        self.written.retain(|key, _| counts.contains_key(key));
        let changed: Vec<(RevisionKey, Replicas)> = counts
            .iter()
            .filter(|(key, count)| self.written.get(*key) != Some(*count))
            .map(|(key, count)| (key.clone(), count.clone()))
            .collect();
        let outcomes: Vec<(RevisionKey, Replicas, CountsWrite)> = futures::stream::iter(changed)
            .map(|(key, count)| async move {
                let outcome = write_replicas(shared, &key, &count).await;
                (key, count, outcome)
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .collect()
            .await;
        let mut all_written = true;
        for (key, count, outcome) in outcomes {
            match outcome {
                CountsWrite::Written => {
                    self.written.insert(key, count);
                }
                CountsWrite::Unreported => {
                    tracing::debug!(revision = %key, "replica counts wait for this node's report");
                }
                CountsWrite::Failed => all_written = false,
            }
        }
        all_written
    }
}

/// How writing one revision's counts went.
#[derive(Debug, PartialEq, Eq)]
enum CountsWrite {
    /// The status holds them: written, already there, or the revision is gone.
    Written,
    /// This node has not reported on the revision yet (its first report is the apply's
    /// outcome, and counts alone would make a report that says nothing of it).
    Unreported,
    /// The API refused, or conflicts outlasted the attempts: try again on the next pass.
    Failed,
}

/// Writes one revision's counts into this node's report. Whether this node reported yet is
/// read from the watcher's copy, the same copy whose first report moves
/// [`super::Shared::reports_seen`] and so brings the counts back.
async fn write_replicas(shared: &Shared, key: &RevisionKey, counts: &Replicas) -> CountsWrite {
    let node = shared.options.node_name.as_str();
    let cached = shared.cached(key);
    let reported = cached
        .as_ref()
        .and_then(|revision| revision.status.as_ref())
        .is_some_and(|status| status::own_report(status, node).is_some());
    if !reported {
        return CountsWrite::Unreported;
    }
    let api: Api<Revision> = Api::namespaced(shared.client.clone(), &key.namespace);
    let result = write_status(&api, &key.name, cached, |revision: &Revision| {
        let current = revision.status.clone().unwrap_or_default();
        // `None`: the report went since the cached copy (the controller dropped it); the
        // node's next outcome write makes a new one, and the counts follow it.
        let next = status::replicas(&current, node, counts)?;
        (next != current).then(|| Revision {
            status: Some(next),
            ..revision.clone()
        })
    })
    .await;
    match result {
        Ok(_) => CountsWrite::Written,
        Err(error) => {
            tracing::warn!(revision = %key, %error, "cannot write replica counts");
            CountsWrite::Failed
        }
    }
}

/// The Revision a Pod was made for: its uid tells a revision recreated under the same name
/// (whose old Pods the garbage collector deletes) from the one the Pod belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Owner {
    revision: RevisionKey,
    uid: String,
}

/// The Pods to delete (no longer desired, or made for another uid) and to create (missing, or
/// replacing one of another uid), each with the revision it concerns.
fn plan(
    existing: &BTreeMap<PodKey, Owner>,
    desired: &BTreeMap<PodKey, Owner>,
) -> (Vec<(PodKey, RevisionKey)>, Vec<PodKey>) {
    let delete = existing
        .iter()
        .filter(|(key, owner)| desired.get(*key) != Some(*owner))
        .map(|(key, owner)| (key.clone(), owner.revision.clone()))
        .collect();
    let create = desired
        .iter()
        .filter(|(key, owner)| existing.get(*key) != Some(*owner))
        .map(|(key, _)| key.clone())
        .collect();
    (delete, create)
}

/// The Pods this node made, so a batch only creates and deletes the difference.
struct Pods {
    /// Ticks left before this node's Pods are listed again (`0`: list on this tick). The first
    /// list finds Pods left from a previous run; later ones repair drift.
    relist_in: u32,
    relist_every: u32,
    existing: BTreeMap<PodKey, Owner>,
    log: Log,
}

impl Pods {
    fn new(status_interval: Duration) -> Self {
        let every = RELIST.as_millis() / status_interval.as_millis().max(1);
        Self {
            relist_in: 0,
            relist_every: u32::try_from(every).unwrap_or(u32::MAX).max(1),
            existing: BTreeMap::new(),
            log: Log::default(),
        }
    }

    /// Whether this tick lists the Pods again (so it must not be skipped).
    fn relist_due(&self) -> bool {
        self.relist_in == 0
    }

    /// A tick with nothing to sync: it still counts towards the next list.
    fn skip_tick(&mut self) {
        self.relist_in = self.relist_in.saturating_sub(1);
    }

    /// Creates and deletes Pods until each serving revision has one per ready replica
    /// (`with_replicas`: the serving revisions that have any). Returns the revisions whose Pods
    /// are not as counted (a write failed, or this node's Pods could not be listed).
    async fn sync(
        &mut self,
        shared: &Shared,
        serving: &BTreeMap<RevisionKey, Serving>,
        counts: &BTreeMap<RevisionKey, Replicas>,
    ) -> BTreeSet<RevisionKey> {
        if self.relist_in == 0 {
            match self.list(shared).await {
                Ok(existing) => {
                    self.existing = existing;
                    self.relist_in = self.relist_every;
                }
                Err(error) => {
                    self.log.warn("cannot list this node's Pods", &error);
                    return counts.keys().cloned().collect();
                }
            }
        }
        self.relist_in -= 1;
        let ready: BTreeMap<RevisionKey, u32> = counts
            .iter()
            .filter(|(key, _)| serving.contains_key(*key))
            .map(|(key, counts)| (key.clone(), u32::try_from(counts.actual).unwrap_or(0)))
            .collect();
        let node = &shared.options.node_name;
        let desired: BTreeMap<PodKey, (Owner, u32)> = pods::desired_pods(serving, &ready, node)
            .into_iter()
            .filter_map(|(pod_key, (revision, index))| {
                let uid = serving.get(&revision)?.uid.clone();
                Some((pod_key, (Owner { revision, uid }, index)))
            })
            .collect();
        let owners: BTreeMap<PodKey, Owner> = desired
            .iter()
            .map(|(key, (owner, _))| (key.clone(), owner.clone()))
            .collect();
        let (delete, create) = plan(&self.existing, &owners);
        if create.is_empty() && delete.is_empty() {
            self.log.ok();
            return BTreeSet::new();
        }
        let mut unsynced = BTreeSet::new();
        let mut failure = None;
        // Deletes first: a Pod of a recreated revision is replaced under the same name.
        let deleted: Vec<(PodKey, RevisionKey, Result<(), kube::Error>)> =
            futures::stream::iter(delete)
                .map(|(key, revision)| async move {
                    let result = delete_pod(shared, &key).await;
                    (key, revision, result)
                })
                .buffer_unordered(CONCURRENT_WRITES)
                .collect()
                .await;
        for (key, revision, result) in deleted {
            match result {
                Ok(()) => {
                    self.existing.remove(&key);
                }
                Err(error) => {
                    unsynced.insert(revision);
                    failure = Some(error);
                }
            }
        }
        let info = node::info(&shared.options);
        let create: Vec<(PodKey, Owner, Value)> = create
            .into_iter()
            .filter(|key| !self.existing.contains_key(key))
            .filter_map(|key| {
                let (owner, index) = desired.get(&key)?;
                let serving = serving.get(&owner.revision)?;
                let pod = pods::pod(&owner.revision, serving, *index, &info, &now());
                Some((key, owner.clone(), pod))
            })
            .collect();
        let created: Vec<(PodKey, Owner, Result<(), kube::Error>)> = futures::stream::iter(create)
            .map(|(key, owner, pod)| async move {
                let result = create_pod(shared, &key, pod).await;
                (key, owner, result)
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .collect()
            .await;
        for (key, owner, result) in created {
            match result {
                Ok(()) => {
                    self.existing.insert(key, owner);
                }
                Err(error) => {
                    unsynced.insert(owner.revision);
                    failure = Some(error);
                }
            }
        }
        match failure {
            Some(error) => self.log.warn("cannot write Pods", &error),
            None => self.log.ok(),
        }
        unsynced
    }

    /// This node's replica Pods as the API has them.
    async fn list(&self, shared: &Shared) -> Result<BTreeMap<PodKey, Owner>, kube::Error> {
        let api: Api<Pod> = Api::all(shared.client.clone());
        let on_node = format!("spec.nodeName={}", shared.options.node_name);
        let list = api
            .list(
                &ListParams::default()
                    .labels(REVISION_LABEL)
                    .fields(&on_node),
            )
            .await?;
        let mut existing = BTreeMap::new();
        for pod in list {
            // The field selector already chose them; a node never touches another's Pods, even
            // through a server that ignored it.
            let on_this_node = pod.spec.as_ref().and_then(|spec| spec.node_name.as_deref())
                == Some(shared.options.node_name.as_str());
            let labels = pod.metadata.labels.unwrap_or_default();
            if let (true, Some(namespace), Some(name), Some(revision)) = (
                on_this_node,
                pod.metadata.namespace,
                pod.metadata.name,
                labels.get(REVISION_LABEL),
            ) {
                // A Pod someone deleted (a user, the garbage collector) waits, Terminating, for
                // its node to confirm, as a kubelet would once the container stopped: owned by
                // no one here, it is deleted with a grace period of 0 and, while its replica
                // still runs, made again. A Pod without the UID label is replaced the same way.
                let terminating = pod.metadata.deletion_timestamp.is_some();
                let owner = Owner {
                    revision: RevisionKey::new(&namespace, revision),
                    uid: match labels.get(REVISION_UID_LABEL) {
                        Some(uid) if !terminating => uid.clone(),
                        _ => String::new(),
                    },
                };
                existing.insert((namespace, name), owner);
            }
        }
        Ok(existing)
    }
}

async fn create_pod(shared: &Shared, key: &PodKey, pod: Value) -> Result<(), kube::Error> {
    let api: Api<Pod> = Api::namespaced(shared.client.clone(), &key.0);
    let status = pod.get("status").cloned().unwrap_or_default();
    let sent_phase = status
        .get("phase")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let typed: Pod = serde_json::from_value(pod).map_err(kube::Error::SerdeError)?;
    let kept_status = match api.create(&PostParams::default(), &typed).await {
        // A real kube-apiserver drops the status sent on create and answers `Pending`: only
        // the phase we sent means the server kept it (the embedded one does).
        Ok(created) => created.status.and_then(|s| s.phase) == sent_phase,
        // Left from an earlier attempt whose answer was lost: it is ours all the same.
        Err(kube::Error::Api(status)) if status.code == 409 => false,
        Err(error) => return Err(error),
    };
    if !kept_status {
        patch_status(&api, &key.1, status).await?;
    }
    Ok(())
}

/// Sets an object's status where the server keeps it: through the status subresource (a real
/// Kubernetes, which ignores status in the object), or in the object itself (the embedded
/// server, where pods and nodes have no subresource).
pub(super) async fn patch_status<K>(
    api: &Api<K>,
    name: &str,
    status: Value,
) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + std::fmt::Debug + k8s_openapi::serde::de::DeserializeOwned,
{
    let patch = Patch::Merge(serde_json::json!({ "status": status }));
    match api
        .patch_status(name, &PatchParams::default(), &patch)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(error)) if matches!(error.code, 404 | 405) => api
            .patch(name, &PatchParams::default(), &patch)
            .await
            .map(drop),
        Err(error) => Err(error),
    }
}

async fn delete_pod(shared: &Shared, key: &PodKey) -> Result<(), kube::Error> {
    let api: Api<Pod> = Api::namespaced(shared.client.clone(), &key.0);
    // The replica has already stopped in this process. A real kube-apiserver keeps a Pod bound
    // to a node `Terminating` until that node's kubelet confirms with a grace period of 0 — the
    // node is wisp, so it confirms at once.
    match api
        .delete(&key.1, &DeleteParams::default().grace_period(0))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(error),
    }
}

/// Logs a failing write once per distinct error instead of every interval.
#[derive(Default)]
pub(super) struct Log {
    last: Option<String>,
}

impl Log {
    pub(super) fn warn(&mut self, what: &str, error: &kube::Error) {
        let message = error.to_string();
        if self.last.as_deref() != Some(message.as_str()) {
            tracing::warn!(error = %message, "{what}; retrying every status interval");
            self.last = Some(message);
        }
    }

    pub(super) fn ok(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(revision: &str, uid: &str) -> Owner {
        Owner {
            revision: RevisionKey::new("default", revision),
            uid: uid.into(),
        }
    }

    fn pod(name: &str) -> PodKey {
        ("default".into(), name.into())
    }

    #[test]
    fn only_the_difference_is_created_and_deleted() {
        let existing = BTreeMap::from([
            (pod("a-1"), owner("a", "u-a")),
            (pod("a-2"), owner("a", "u-a")),
        ]);
        let desired = BTreeMap::from([
            (pod("a-1"), owner("a", "u-a")),
            (pod("b-1"), owner("b", "u-b")),
        ]);
        let (delete, create) = plan(&existing, &desired);
        assert_eq!(delete, vec![(pod("a-2"), RevisionKey::new("default", "a"))]);
        assert_eq!(create, vec![pod("b-1")]);
    }

    #[test]
    fn a_revision_recreated_under_its_name_gets_its_pods_again() {
        // The old revision's Pod (which the garbage collector deletes with it) is replaced.
        let existing = BTreeMap::from([(pod("a-1"), owner("a", "u-old"))]);
        let desired = BTreeMap::from([(pod("a-1"), owner("a", "u-new"))]);
        let (delete, create) = plan(&existing, &desired);
        assert_eq!(delete, vec![(pod("a-1"), RevisionKey::new("default", "a"))]);
        assert_eq!(create, vec![pod("a-1")]);
    }

    #[test]
    fn pods_are_relisted_about_every_ten_seconds() {
        assert_eq!(Pods::new(Duration::from_secs(1)).relist_every, 10);
        assert_eq!(Pods::new(Duration::from_millis(100)).relist_every, 100);
        assert_eq!(Pods::new(Duration::from_secs(60)).relist_every, 1);
    }
}
