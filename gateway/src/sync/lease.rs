//! The node's heartbeat: the Lease `kube-node-lease/<node>`, renewed every quarter of its
//! duration as the kubelet does (PUT of the last returned object without a GET; on a conflict
//! or when it is gone, GET and write again, creating it when missing). It is owned by the Node,
//! so the garbage collector removes it with the Node; it is created only once the Node exists.
//!
//! An API that serves no Leases (or has no `kube-node-lease` namespace) is logged and retried:
//! the node serves all the same, only its liveness is not published.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::Api;
use kube::api::PostParams;
use wisp_api::nodes::NODE_LEASE_NAMESPACE;

use super::Shared;
use super::replicas::Log;

/// Runs until dropped.
pub(super) async fn run(shared: Arc<Shared>) {
    let seconds = lease_seconds(shared.options.lease_duration);
    let renew_every = shared.options.lease_duration / 4;
    // Until the Lease is written (the Node is not there yet, or the API refused), try again
    // sooner than a renewal.
    let retry_every = shared.options.status_interval.min(renew_every);
    let mut last: Option<Lease> = None;
    let mut log = Log::default();
    loop {
        match renew(&shared, last.take(), seconds).await {
            Ok(Some(lease)) => {
                last = Some(lease);
                log.ok();
            }
            Ok(None) => {}
            Err(error) => log.warn("cannot renew the node Lease", &error),
        }
        let pause = if last.is_some() {
            renew_every
        } else {
            retry_every
        };
        tokio::time::sleep(pause.max(Duration::from_millis(100))).await;
    }
}

/// `leaseDurationSeconds` for a duration: whole seconds, at least 1.
fn lease_seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX).max(1)
}

/// One renewal; the Lease as written, or `None` when the Node does not exist yet.
async fn renew(
    shared: &Shared,
    last: Option<Lease>,
    seconds: i32,
) -> Result<Option<Lease>, kube::Error> {
    let name = &shared.options.node_name;
    let api: Api<Lease> = Api::namespaced(shared.client.clone(), NODE_LEASE_NAMESPACE);
    if let Some(last) = last {
        match api
            .replace(
                name,
                &PostParams::default(),
                &renewed(last, name, seconds, None, now()),
            )
            .await
        {
            Ok(lease) => return Ok(Some(lease)),
            // Someone else wrote it, or it was deleted: read it again below.
            Err(kube::Error::Api(status)) if matches!(status.code, 404 | 409) => {}
            Err(error) => return Err(error),
        }
    }
    let nodes: Api<Node> = Api::all(shared.client.clone());
    let Some(node_uid) = nodes
        .get_opt(name)
        .await?
        .and_then(|node| node.metadata.uid)
    else {
        return Ok(None);
    };
    let written = match api.get_opt(name).await? {
        Some(current) => {
            let lease = renewed(current, name, seconds, Some(&node_uid), now());
            api.replace(name, &PostParams::default(), &lease).await?
        }
        None => {
            let lease = new_lease(name, seconds, &node_uid, now());
            api.create(&PostParams::default(), &lease).await?
        }
    };
    Ok(Some(written))
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// The Lease of node `name`, held by it and owned by its Node (uid `node_uid`).
fn new_lease(name: &str, seconds: i32, node_uid: &str, now: MicroTime) -> Lease {
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(NODE_LEASE_NAMESPACE.to_owned()),
            ..ObjectMeta::default()
        },
        spec: None,
    };
    renewed(lease, name, seconds, Some(node_uid), now)
}

/// `lease` renewed by node `name` at `now`; with `node_uid`, owned by that Node (a Lease left
/// from a Node deleted and made again points at the new one).
fn renewed(
    mut lease: Lease,
    name: &str,
    seconds: i32,
    node_uid: Option<&str>,
    now: MicroTime,
) -> Lease {
    let mut spec = lease.spec.take().unwrap_or_default();
    if spec.holder_identity.as_deref() != Some(name) {
        spec.holder_identity = Some(name.to_owned());
        spec.acquire_time = Some(now.clone());
    }
    spec.lease_duration_seconds = Some(seconds);
    spec.renew_time = Some(now);
    lease.spec = Some(spec);
    if let Some(uid) = node_uid {
        lease.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".to_owned(),
            kind: "Node".to_owned(),
            name: name.to_owned(),
            uid: uid.to_owned(),
            ..OwnerReference::default()
        }]);
    }
    lease
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> MicroTime {
        MicroTime(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap())
    }

    #[test]
    fn a_new_lease_is_held_by_the_node_and_owned_by_its_node_object() {
        let lease = new_lease("n2", 40, "uid-1", at(100));
        assert_eq!(lease.metadata.name.as_deref(), Some("n2"));
        assert_eq!(lease.metadata.namespace.as_deref(), Some("kube-node-lease"));
        let owner = &lease.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (
                owner.api_version.as_str(),
                owner.kind.as_str(),
                owner.name.as_str(),
                owner.uid.as_str()
            ),
            ("v1", "Node", "n2", "uid-1")
        );
        let spec = lease.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("n2"));
        assert_eq!(spec.lease_duration_seconds, Some(40));
        assert_eq!(spec.renew_time, Some(at(100)));
        assert_eq!(spec.acquire_time, Some(at(100)));
    }

    #[test]
    fn a_renewal_moves_only_the_renew_time_and_keeps_the_owner() {
        let lease = new_lease("n2", 40, "uid-1", at(100));
        let lease = renewed(lease, "n2", 40, None, at(110));
        let spec = lease.spec.as_ref().unwrap();
        assert_eq!(spec.renew_time, Some(at(110)));
        assert_eq!(spec.acquire_time, Some(at(100)));
        assert_eq!(
            lease.metadata.owner_references.as_ref().unwrap()[0].uid,
            "uid-1"
        );
        let taken = renewed(lease, "n2", 40, Some("uid-2"), at(120));
        assert_eq!(taken.metadata.owner_references.unwrap()[0].uid, "uid-2");
    }

    #[test]
    fn durations_round_to_whole_seconds_of_at_least_one() {
        assert_eq!(lease_seconds(Duration::from_secs(40)), 40);
        assert_eq!(lease_seconds(Duration::from_millis(500)), 1);
    }
}
