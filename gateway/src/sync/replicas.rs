//! Every `status_interval`: replica counts into Revision status (only those that changed), the
//! Pods that mirror ready replicas created and deleted in one batch, and the Node refreshed when
//! it changed. Never on the request path: the data plane is only read here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::Value;
use wisp_api::knative::Revision;
use wisp_api::revision_key::RevisionKey;

use super::pods::{self, PodKey, REVISION_LABEL};
use super::status;
use super::write::write_status;
use super::{Serving, Shared, now};

/// API calls in flight at once in one batch.
const CONCURRENT_WRITES: usize = 16;

/// Runs until dropped.
pub(super) async fn run(shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(shared.options.status_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut replicas = ReplicaStatus::default();
    let mut pods = Pods::default();
    let mut node = NodeStatus {
        since: now(),
        written: None,
        log: Log::default(),
    };
    loop {
        interval.tick().await;
        let serving = shared.serving();
        let counts: BTreeMap<RevisionKey, (i32, i32)> = serving
            .keys()
            .filter_map(|key| {
                let state = shared.data_plane.revision_state(key)?;
                let ready = i32::try_from(state.ready_replicas).unwrap_or(i32::MAX);
                Some((key.clone(), (ready, state.desired_replicas)))
            })
            .collect();
        replicas.sync(&shared, &counts).await;
        pods.sync(&shared, &serving, &counts).await;
        node.sync(&shared).await;
    }
}

/// The counts last written per revision.
#[derive(Default)]
struct ReplicaStatus {
    written: HashMap<RevisionKey, (i32, i32)>,
}

impl ReplicaStatus {
    async fn sync(&mut self, shared: &Shared, counts: &BTreeMap<RevisionKey, (i32, i32)>) {
        self.written.retain(|key, _| counts.contains_key(key));
        let changed: Vec<(RevisionKey, (i32, i32))> = counts
            .iter()
            .filter(|(key, count)| self.written.get(*key) != Some(*count))
            .map(|(key, count)| (key.clone(), *count))
            .collect();
        let written: Vec<(RevisionKey, (i32, i32))> = futures::stream::iter(changed)
            .map(|(key, count)| async move {
                write_replicas(shared, &key, count)
                    .await
                    .then_some((key, count))
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .filter_map(std::future::ready)
            .collect()
            .await;
        self.written.extend(written);
    }
}

/// Writes one revision's counts; whether its status now holds them.
async fn write_replicas(shared: &Shared, key: &RevisionKey, (actual, desired): (i32, i32)) -> bool {
    let api: Api<Revision> = Api::namespaced(shared.client.clone(), &key.namespace);
    let result = write_status(
        &api,
        &key.name,
        shared.cached(key),
        |revision: &Revision| {
            let current = revision.status.clone().unwrap_or_default();
            let next = status::replicas(&current, actual, desired, &now());
            (next != current).then(|| Revision {
                status: Some(next),
                ..revision.clone()
            })
        },
    )
    .await;
    match result {
        Ok(_) => true,
        Err(error) => {
            tracing::warn!(revision = %key, %error, "cannot write replica counts");
            false
        }
    }
}

/// The Pods this node made, so a batch only creates and deletes the difference.
#[derive(Default)]
struct Pods {
    /// Whether this node's Pods left from a previous run were found (they are deleted if
    /// their replicas are gone).
    listed: bool,
    existing: BTreeSet<PodKey>,
    log: Log,
}

impl Pods {
    async fn sync(
        &mut self,
        shared: &Shared,
        serving: &BTreeMap<RevisionKey, Serving>,
        counts: &BTreeMap<RevisionKey, (i32, i32)>,
    ) {
        if !self.listed {
            match self.list(shared).await {
                Ok(()) => self.listed = true,
                Err(error) => {
                    self.log.warn("cannot list this node's Pods", &error);
                    return;
                }
            }
        }
        let ready: BTreeMap<RevisionKey, u32> = counts
            .iter()
            .map(|(key, (ready, _))| (key.clone(), u32::try_from(*ready).unwrap_or(0)))
            .collect();
        let desired = pods::desired_pods(serving, &ready);
        let create: Vec<(PodKey, Value)> = desired
            .iter()
            .filter(|(key, _)| !self.existing.contains(*key))
            .filter_map(|(pod_key, (revision, index))| {
                let serving = serving.get(revision)?;
                let pod = pods::pod(revision, serving, *index, &shared.options.node_name, &now());
                Some((pod_key.clone(), pod))
            })
            .collect();
        let delete: Vec<PodKey> = self
            .existing
            .iter()
            .filter(|key| !desired.contains_key(*key))
            .cloned()
            .collect();
        if create.is_empty() && delete.is_empty() {
            return;
        }
        let created: Vec<Result<PodKey, kube::Error>> = futures::stream::iter(create)
            .map(|(key, pod)| create_pod(shared, key, pod))
            .buffer_unordered(CONCURRENT_WRITES)
            .collect()
            .await;
        let deleted: Vec<Result<PodKey, kube::Error>> = futures::stream::iter(delete)
            .map(|key| delete_pod(shared, key))
            .buffer_unordered(CONCURRENT_WRITES)
            .collect()
            .await;
        let mut failure = None;
        for result in created {
            match result {
                Ok(key) => {
                    self.existing.insert(key);
                }
                Err(error) => failure = Some(error),
            }
        }
        for result in deleted {
            match result {
                Ok(key) => {
                    self.existing.remove(&key);
                }
                Err(error) => failure = Some(error),
            }
        }
        match failure {
            Some(error) => self.log.warn("cannot write Pods", &error),
            None => self.log.ok(),
        }
    }

    async fn list(&mut self, shared: &Shared) -> Result<(), kube::Error> {
        let api: Api<Pod> = Api::all(shared.node_client.clone());
        let list = api
            .list(&ListParams::default().labels(REVISION_LABEL))
            .await?;
        for pod in list {
            let on_this_node = pod.spec.as_ref().and_then(|spec| spec.node_name.as_deref())
                == Some(shared.options.node_name.as_str());
            if let (true, Some(namespace), Some(name)) =
                (on_this_node, pod.metadata.namespace, pod.metadata.name)
            {
                self.existing.insert((namespace, name));
            }
        }
        Ok(())
    }
}

async fn create_pod(shared: &Shared, key: PodKey, pod: Value) -> Result<PodKey, kube::Error> {
    let api: Api<Pod> = Api::namespaced(shared.node_client.clone(), &key.0);
    let status = pod.get("status").cloned().unwrap_or_default();
    let typed: Pod = serde_json::from_value(pod).map_err(kube::Error::SerdeError)?;
    let kept_status = match api.create(&PostParams::default(), &typed).await {
        Ok(created) => created.status.is_some_and(|s| s.phase.is_some()),
        // Left from an earlier attempt whose answer was lost: it is ours all the same.
        Err(kube::Error::Api(status)) if status.code == 409 => false,
        Err(error) => return Err(error),
    };
    if !kept_status {
        patch_status(&api, &key.1, status).await?;
    }
    Ok(key)
}

/// Sets an object's status where the server keeps it: through the status subresource (a real
/// Kubernetes, which ignores status in the object), or in the object itself (the embedded
/// server, where pods and nodes have no subresource).
async fn patch_status<K>(api: &Api<K>, name: &str, status: Value) -> Result<(), kube::Error>
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

async fn delete_pod(shared: &Shared, key: PodKey) -> Result<PodKey, kube::Error> {
    let api: Api<Pod> = Api::namespaced(shared.node_client.clone(), &key.0);
    match api.delete(&key.1, &DeleteParams::default()).await {
        Ok(_) => Ok(key),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(key),
        Err(error) => Err(error),
    }
}

/// The Node as last written.
struct NodeStatus {
    since: String,
    written: Option<Value>,
    log: Log,
}

impl NodeStatus {
    async fn sync(&mut self, shared: &Shared) {
        let name = &shared.options.node_name;
        let status = pods::node_status(name, &shared.data_plane.node_usage(), &self.since);
        if self.written.as_ref() == Some(&status) {
            return;
        }
        match write_node(shared, name, &status).await {
            Ok(()) => {
                self.written = Some(status);
                self.log.ok();
            }
            Err(error) => self.log.warn("cannot write the Node", &error),
        }
    }
}

async fn write_node(shared: &Shared, name: &str, status: &Value) -> Result<(), kube::Error> {
    let api: Api<Node> = Api::all(shared.node_client.clone());
    if api.get_opt(name).await?.is_none() {
        let mut object = pods::node(name);
        object["status"] = status.clone();
        let typed: Node = serde_json::from_value(object).map_err(kube::Error::SerdeError)?;
        match api.create(&PostParams::default(), &typed).await {
            Ok(created)
                if created
                    .status
                    .as_ref()
                    .is_some_and(|s| s.capacity.is_some()) =>
            {
                return Ok(());
            }
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => return Err(error),
        }
    }
    patch_status(&api, name, status.clone()).await
}

/// Logs a failing write once per distinct error instead of every interval.
#[derive(Default)]
struct Log {
    last: Option<String>,
}

impl Log {
    fn warn(&mut self, what: &str, error: &kube::Error) {
        let message = error.to_string();
        if self.last.as_deref() != Some(message.as_str()) {
            tracing::warn!(error = %message, "{what}; retrying every status interval");
            self.last = Some(message);
        }
    }

    fn ok(&mut self) {
        self.last = None;
    }
}
