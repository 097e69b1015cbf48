//! The lifecycle of wisp's virtual nodes, as kube-controller-manager's node lifecycle
//! controller does it for kubelets: a node whose heartbeat Lease (`kube-node-lease/<node>`)
//! has not been renewed for its `leaseDurationSeconds` turns `Ready=Unknown`, and its Pods are
//! deleted at once (a wisp replica dies with its node; there is nothing to wait for), so the
//! Revision sums drop and the Route gates stop waiting for it. A node that comes back renews
//! its Lease, writes `Ready=True` and makes its Pods again itself.
//!
//! Expiry is judged as client-go's leader election judges it: from when this controller last
//! saw the Lease's `renewTime` change, on its own monotonic clock, never by comparing the
//! node's clock with ours.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::time::Instant;
use wisp_api::nodes::{
    DEFAULT_NODE_LEASE_SECONDS, NODE_LABEL, NODE_LEASE_NAMESPACE, is_ready, ready_status,
};

use super::meta;

/// How often leases are checked.
const TICK: Duration = Duration::from_secs(1);

/// Reason of `Ready=Unknown` on a lapsed node, as kube-controller-manager spells it.
pub(crate) const NODE_STATUS_UNKNOWN: &str = "NodeStatusUnknown";

/// Runs until the future is dropped.
pub(super) async fn run(client: Client) {
    let (nodes, node_writer) = reflector::store::<Node>();
    let (leases, lease_writer) = reflector::store::<Lease>();
    let selector = format!("{NODE_LABEL}=true");
    let node_events = reflector::reflector(
        node_writer,
        watcher(
            Api::<Node>::all(client.clone()),
            watcher::Config::default().labels(&selector),
        )
        .default_backoff(),
    );
    let lease_events = reflector::reflector(
        lease_writer,
        watcher(
            Api::<Lease>::namespaced(client.clone(), NODE_LEASE_NAMESPACE),
            watcher::Config::default(),
        )
        .default_backoff(),
    );
    let drain = futures::stream::select(
        node_events.map(|event| event.err().map(|e| format!("watching wisp Nodes: {e}"))),
        lease_events.map(|event| {
            event
                .err()
                .map(|e| format!("watching Leases in {NODE_LEASE_NAMESPACE}: {e}"))
        }),
    )
    .for_each(|problem| {
        if let Some(problem) = problem {
            tracing::warn!("{problem}");
        }
        futures::future::ready(())
    });
    tokio::join!(drain, check_forever(client, nodes, leases));
}

async fn check_forever(client: Client, nodes: Store<Node>, leases: Store<Lease>) {
    // Errors mean the writers are gone: the controller is stopping.
    let _ = nodes.wait_until_ready().await;
    let _ = leases.wait_until_ready().await;
    let mut watch = Renewals::default();
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let now = Instant::now();
        let mut lapsed = Vec::new();
        let names: Vec<String> = nodes.state().iter().map(|n| n.name_any()).collect();
        watch.forget_except(&names);
        for node in nodes.state() {
            let name = node.name_any();
            let lease = leases.get(&reflector::ObjectRef::new(&name).within(NODE_LEASE_NAMESPACE));
            if watch.lapsed(&name, lease.as_deref(), now) {
                lapsed.push(node);
            }
        }
        for node in lapsed {
            if let Err(error) = fail_node(&client, &node).await {
                tracing::warn!(node = %node.name_any(), %error, "cannot mark a lapsed node Unknown; retrying");
            }
        }
    }
}

/// When each node's Lease was last seen renewed, on this controller's clock.
#[derive(Default)]
struct Renewals {
    seen: HashMap<String, (Option<String>, Instant)>,
}

impl Renewals {
    fn forget_except(&mut self, names: &[String]) {
        self.seen.retain(|name, _| names.contains(name));
    }

    /// Whether `node`'s lease has gone unrenewed for longer than its duration. A lease seen for
    /// the first time starts its clock now: a controller that just started gives every node a
    /// full lease duration.
    fn lapsed(&mut self, node: &str, lease: Option<&Lease>, now: Instant) -> bool {
        // A node that has never had a Lease does not heartbeat through one (wisp up's own
        // node, until it renews a Lease): there is nothing to judge it by.
        let Some(lease) = lease else {
            return false;
        };
        let spec = lease.spec.as_ref();
        let renewed = spec
            .and_then(|s| s.renew_time.as_ref())
            .map(|t| t.0.to_string());
        let duration = spec
            .and_then(|s| s.lease_duration_seconds)
            .unwrap_or(DEFAULT_NODE_LEASE_SECONDS)
            .max(1);
        let entry = self
            .seen
            .entry(node.to_owned())
            .or_insert_with(|| (renewed.clone(), now));
        if entry.0 != renewed {
            *entry = (renewed, now);
        }
        let limit = Duration::from_secs(u64::try_from(duration).unwrap_or(1));
        now.duration_since(entry.1) > limit
    }
}

/// Marks `node` `Ready=Unknown` (when it still says otherwise) and deletes its Pods.
async fn fail_node(client: &Client, node: &Node) -> Result<(), kube::Error> {
    let name = node.name_any();
    if is_ready(node) || !is_unknown(node) {
        tracing::warn!(node = %name, "the node's Lease lapsed; marking it Unknown and deleting its Pods");
        let conditions = unknown_conditions(node, &meta::now());
        let patch = Patch::Merge(serde_json::json!({"status": {"conditions": conditions}}));
        let api: Api<Node> = Api::all(client.clone());
        match api
            .patch_status(&name, &PatchParams::default(), &patch)
            .await
        {
            Ok(_) => {}
            // The embedded API server keeps node status in the object itself.
            Err(kube::Error::Api(status)) if matches!(status.code, 404 | 405) => {
                api.patch(&name, &PatchParams::default(), &patch).await?;
            }
            Err(error) => return Err(error),
        }
    }
    let pods: Api<Pod> = Api::all(client.clone());
    let on_node = pods
        .list(&ListParams::default().fields(&format!("spec.nodeName={name}")))
        .await?;
    for pod in on_node {
        let Some(namespace) = pod.namespace() else {
            continue;
        };
        let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        match api
            .delete(&pod.name_any(), &DeleteParams::default().grace_period(0))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

fn is_unknown(node: &Node) -> bool {
    ready_status(node) == Some("Unknown")
}

/// The node's conditions with `Ready` (added if missing) set to Unknown.
fn unknown_conditions(node: &Node, now: &str) -> Vec<NodeCondition> {
    let mut conditions: Vec<NodeCondition> = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_ != "Ready")
        .collect();
    let time = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        now.parse()
            .unwrap_or_else(|_| k8s_openapi::jiff::Timestamp::now()),
    );
    conditions.push(NodeCondition {
        type_: "Ready".into(),
        status: "Unknown".into(),
        reason: Some(NODE_STATUS_UNKNOWN.into()),
        message: Some(format!(
            "wisp node stopped renewing its Lease {NODE_LEASE_NAMESPACE}/{}.",
            node.name_any()
        )),
        last_transition_time: Some(time.clone()),
        last_heartbeat_time: Some(time),
    });
    conditions
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn lease(renewed: &str, seconds: i32) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                renew_time: Some(MicroTime(renewed.parse().unwrap())),
                lease_duration_seconds: Some(seconds),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn a_lease_lapses_a_duration_after_its_last_seen_renewal() {
        let start = Instant::now();
        let mut renewals = Renewals::default();
        let first = lease("2026-01-01T00:00:00Z", 10);
        assert!(!renewals.lapsed("a", Some(&first), start));
        assert!(!renewals.lapsed("a", Some(&first), start + Duration::from_secs(10)));
        // Renewed at 9 s: the clock starts again then.
        let second = lease("2026-01-01T00:00:09Z", 10);
        assert!(!renewals.lapsed("a", Some(&second), start + Duration::from_secs(9)));
        assert!(!renewals.lapsed("a", Some(&second), start + Duration::from_secs(18)));
        assert!(renewals.lapsed("a", Some(&second), start + Duration::from_secs(20)));
    }

    #[test]
    fn a_node_without_a_lease_is_never_judged() {
        let start = Instant::now();
        let mut renewals = Renewals::default();
        assert!(!renewals.lapsed("a", None, start));
        assert!(!renewals.lapsed("a", None, start + Duration::from_secs(3600)));
    }

    #[test]
    fn ready_turns_unknown_and_other_conditions_stay() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a"},
            "status": {"conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True"},
            ]},
        }))
        .unwrap();
        let conditions = unknown_conditions(&node, "2026-01-01T00:00:00Z");
        assert_eq!(conditions.len(), 2);
        let ready = conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some(NODE_STATUS_UNKNOWN));
    }
}
