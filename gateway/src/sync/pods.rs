//! Replicas as Pods and the node as a Node, the objects `kubectl get pods,nodes` shows: one
//! Pod per ready replica of each serving revision, bound to this node, and this node as a
//! virtual kubelet would register it (labels, taint, capacity, addresses, `Ready`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Value, json};
use wisp_api::knative::labels;
use wisp_api::nodes::{NODE_LABEL, TAINT_KEY, TAINT_VALUE};
use wisp_api::revision_key::RevisionKey;

use super::Serving;
use crate::dataplane::NodeUsage;
use crate::health::Phase;

/// A Pod's `namespace/name`.
pub type PodKey = (String, String);

/// The label every replica Pod has, naming its revision (also how the sync finds its Pods).
pub const REVISION_LABEL: &str = labels::REVISION;
/// The label naming the uid of a replica Pod's revision.
pub const REVISION_UID_LABEL: &str = labels::REVISION_UID;

/// Longest pod name spelled out in full: a DNS label's length, so the name also fits where
/// Kubernetes wants a label (a hostname, a label value).
const MAX_SPELLED_NAME: usize = 63;

/// `{revision}-{node}-{n}` for the revision's `n`th replica (from 1) on `node`, so the Pods of
/// one revision on different nodes never share a name. When that would exceed 63 characters
/// the node is written as the first 8 hex digits of the FNV-1a hash of its name instead
/// (`{revision}-{hash}-{n}`): stable across restarts and builds, so a node finds its Pods
/// again. Replicas have no identity in the data plane, so the `n`th name lives as long as the
/// revision has at least `n` replicas on the node.
pub fn pod_name(revision: &str, node: &str, index: u32) -> String {
    let spelled = format!("{revision}-{node}-{index}");
    if spelled.len() <= MAX_SPELLED_NAME {
        return spelled;
    }
    format!("{revision}-{}-{index}", short_hash(node))
}

/// 8 hex digits of the FNV-1a hash of `text` (32 bits of a 64-bit hash).
fn short_hash(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:08x}", hash >> 32)
}

/// The Pods that should exist on `node`: `ready` replicas of each serving revision.
pub fn desired_pods(
    serving: &BTreeMap<RevisionKey, Serving>,
    ready: &BTreeMap<RevisionKey, u32>,
    node: &str,
) -> BTreeMap<PodKey, (RevisionKey, u32)> {
    serving
        .keys()
        .flat_map(|key| {
            let count = ready.get(key).copied().unwrap_or(0);
            (1..=count).map(move |index| {
                (
                    (key.namespace.clone(), pod_name(&key.name, node, index)),
                    (key.clone(), index),
                )
            })
        })
        .collect()
}

/// The Pod of replica `index` of `key` on `node`, status included (a server that drops status
/// on create gets it again through the status subresource: see [`pod_status`]).
pub fn pod(key: &RevisionKey, serving: &Serving, index: u32, node: &NodeInfo, now: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(&key.name, &node.name, index),
            "namespace": key.namespace,
            "labels": {
                labels::REVISION: key.name,
                labels::CONFIGURATION: serving.configuration,
                labels::SERVICE: serving.service,
                labels::REVISION_UID: serving.uid,
                "app": key.name,
            },
            "ownerReferences": [{
                "apiVersion": "serving.knative.dev/v1",
                "kind": "Revision",
                "name": key.name,
                "uid": serving.uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "nodeName": node.name,
            "containers": [{"name": serving.container_name, "image": serving.image}],
        },
        "status": pod_status(serving, node.address, now),
    })
}

/// A running, ready replica's `status`: it runs in the node's process, so its IP is the node's.
pub fn pod_status(serving: &Serving, address: IpAddr, now: &str) -> Value {
    let condition =
        |type_: &str| json!({"type": type_, "status": "True", "lastTransitionTime": now});
    json!({
            "phase": "Running",
            "conditions": [
                condition("PodScheduled"),
                condition("Initialized"),
                condition("ContainersReady"),
                condition("Ready"),
            ],
            "hostIP": address.to_string(),
            "hostIPs": [{"ip": address.to_string()}],
            "podIP": address.to_string(),
            "podIPs": [{"ip": address.to_string()}],
            "startTime": now,
            "containerStatuses": [{
                "name": serving.container_name,
                "image": serving.image,
                "imageID": "",
                "ready": true,
                "started": true,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            }],
    })
}

/// What the Node says about this node beyond its usage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// The Node's name (a DNS-1123 subdomain).
    pub name: String,
    /// `InternalIP`, and the IP of its Pods.
    pub address: IpAddr,
    /// The gateway's port (`daemonEndpoints.kubeletEndpoint.Port`).
    pub port: u16,
    /// CPU capacity: the machine's cores.
    pub cpus: u32,
}

/// The Node object (metadata and spec) for this node: wisp's label, and the `NoSchedule`
/// taint that keeps container Pods off a node that only runs WebAssembly.
pub fn node(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": node_labels(name),
        },
        "spec": {
            "taints": [taint()],
        },
    })
}

/// The labels of this node's Node.
pub fn node_labels(name: &str) -> Value {
    json!({
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": std::env::consts::OS,
        "kubernetes.io/arch": architecture(),
        NODE_LABEL: "true",
        "node.kubernetes.io/instance-type": "wisp",
    })
}

/// wisp's taint.
pub fn taint() -> Value {
    json!({"key": TAINT_KEY, "value": TAINT_VALUE, "effect": "NoSchedule"})
}

/// The patch that takes over a Node this node finds already there (its own, from an earlier
/// run, or one made by someone else): wisp's labels merged in, and wisp's taint added to the
/// `taints` it has unless it is there, so taints others set (a controller's `not-ready`)
/// stay. `None` when the Node already has both.
pub fn takeover(name: &str, existing: &Value) -> Option<Value> {
    let labels = node_labels(name);
    let current_labels = &existing["metadata"]["labels"];
    let labels_ok = labels
        .as_object()
        .is_some_and(|wanted| wanted.iter().all(|(k, v)| &current_labels[k] == v));
    let mut taints: Vec<Value> = existing["spec"]["taints"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let tainted = taints
        .iter()
        .any(|t| t["key"] == TAINT_KEY && t["effect"] == "NoSchedule" && t["value"] == TAINT_VALUE);
    if labels_ok && tainted {
        return None;
    }
    if !tainted {
        taints.retain(|t| t["key"] != TAINT_KEY);
        taints.push(taint());
    }
    Some(json!({"metadata": {"labels": labels}, "spec": {"taints": taints}}))
}

/// The Node's `status`: memory from the data plane's node usage, CPU from the machine, and a
/// `Ready` condition from the node's phase, stamped `since` (when the phase last changed), so
/// an unchanged node compares equal. There is no periodic heartbeat here: the Lease is it.
pub fn node_status(info: &NodeInfo, usage: &NodeUsage, phase: Phase, since: &str) -> Value {
    let resources = json!({
        "cpu": info.cpus.to_string(),
        "memory": usage.allocatable.to_string(),
        // A kubelet's maxPods: the node's replica cap (`--max-replicas`).
        "pods": usage.max_replicas.to_string(),
    });
    let (status, reason, message) = match phase {
        Phase::Serving => ("True", "KubeletReady", "wisp node is serving"),
        Phase::Loading => (
            "False",
            "KubeletNotReady",
            "wisp node is loading the revisions and routes the API holds",
        ),
        Phase::Draining => ("False", "KubeletNotReady", "wisp node is shutting down"),
    };
    json!({
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{
                "type": "Ready",
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": since,
                "lastTransitionTime": since,
            }],
            "addresses": [
                {"type": "InternalIP", "address": info.address.to_string()},
                {"type": "Hostname", "address": info.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": info.port}},
            "nodeInfo": {
                "architecture": architecture(),
                "operatingSystem": std::env::consts::OS,
                "kubeletVersion": concat!("wisp-", env!("CARGO_PKG_VERSION")),
                "containerRuntimeVersion": "wasmtime://48",
                "kubeProxyVersion": "",
                "kernelVersion": "",
                "osImage": "",
                "bootID": "",
                "machineID": "",
                "systemUUID": "",
            },
    })
}

/// Go's name of this architecture, as Kubernetes labels use it.
fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serving() -> Serving {
        Serving {
            uid: "u-1".into(),
            service: "hello".into(),
            configuration: "hello".into(),
            image: "hello.wasm".into(),
            container_name: "user-container".into(),
        }
    }

    fn info() -> NodeInfo {
        NodeInfo {
            name: "n2".into(),
            address: IpAddr::from([10, 0, 0, 7]),
            port: 8080,
            cpus: 4,
        }
    }

    #[test]
    fn one_pod_per_ready_replica() {
        let a = RevisionKey::new("default", "a-00001");
        let b = RevisionKey::new("team", "b-00001");
        let serving = BTreeMap::from([(a.clone(), serving()), (b.clone(), serving())]);
        let ready = BTreeMap::from([(a.clone(), 2), (b.clone(), 0)]);
        let pods = desired_pods(&serving, &ready, "local");
        assert_eq!(
            pods.keys().cloned().collect::<Vec<_>>(),
            vec![
                ("default".to_owned(), "a-00001-local-1".to_owned()),
                ("default".to_owned(), "a-00001-local-2".to_owned()),
            ]
        );
        assert_eq!(pods[&("default".into(), "a-00001-local-2".into())], (a, 2));
    }

    #[test]
    fn pod_names_are_unique_across_nodes_and_short_when_they_must_be() {
        assert_eq!(pod_name("a-00001", "local", 1), "a-00001-local-1");
        assert_ne!(pod_name("a-00001", "n1", 1), pod_name("a-00001", "n2", 1));
        let long_node = "node-with-a-rather-long-name.zone-a.example.com";
        let short = pod_name("hello-world-00001", long_node, 12);
        assert_eq!(
            short,
            format!("hello-world-00001-{}-12", short_hash(long_node))
        );
        assert_eq!(short, pod_name("hello-world-00001", long_node, 12));
        assert!(short.len() <= 63, "{short}");
        assert_ne!(
            short_hash(long_node),
            short_hash("another-node.zone-a.example.com")
        );
    }

    #[test]
    fn a_pod_names_its_revision_node_and_container() {
        let key = RevisionKey::new("default", "a-00001");
        let pod = pod(&key, &serving(), 1, &info(), "2026-01-01T00:00:00Z");
        assert_eq!(pod["metadata"]["name"], "a-00001-n2-1");
        assert_eq!(pod["metadata"]["labels"][labels::REVISION], "a-00001");
        assert_eq!(pod["metadata"]["labels"]["app"], "a-00001");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert_eq!(pod["spec"]["nodeName"], "n2");
        assert_eq!(pod["spec"]["containers"][0]["name"], "user-container");
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(pod["status"]["podIP"], "10.0.0.7");
        assert_eq!(pod["status"]["hostIP"], "10.0.0.7");
        let typed: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod).unwrap();
        assert_eq!(
            typed.spec.unwrap().containers[0].image.as_deref(),
            Some("hello.wasm")
        );
    }

    #[test]
    fn the_node_is_tainted_labelled_and_reports_its_capacity() {
        let usage = NodeUsage {
            allocatable: 4 << 30,
            used: 1 << 20,
            replicas: 1,
            max_replicas: 1000,
        };
        let status = node_status(&info(), &usage, Phase::Serving, "2026-01-01T00:00:00Z");
        assert_eq!(status["capacity"]["memory"], "4294967296");
        assert_eq!(status["capacity"]["cpu"], "4");
        assert_eq!(status["allocatable"]["pods"], "1000");
        assert_eq!(status["conditions"][0]["status"], "True");
        assert_eq!(status["addresses"][0]["address"], "10.0.0.7");
        assert_eq!(status["addresses"][1]["address"], "n2");
        assert_eq!(status["daemonEndpoints"]["kubeletEndpoint"]["Port"], 8080);
        let mut object = node("n2");
        object["status"] = status;
        let typed: k8s_openapi::api::core::v1::Node = serde_json::from_value(object).unwrap();
        let labels = typed.metadata.labels.unwrap();
        assert_eq!(labels[NODE_LABEL], "true");
        assert_eq!(labels["kubernetes.io/hostname"], "n2");
        assert_eq!(labels["node.kubernetes.io/instance-type"], "wisp");
        let taints = typed.spec.unwrap().taints.unwrap();
        assert_eq!(
            (
                taints[0].key.as_str(),
                taints[0].value.as_deref(),
                taints[0].effect.as_str()
            ),
            (TAINT_KEY, Some(TAINT_VALUE), "NoSchedule")
        );
        let status = typed.status.unwrap();
        assert!(status.node_info.is_some());
        assert_eq!(
            status
                .daemon_endpoints
                .unwrap()
                .kubelet_endpoint
                .unwrap()
                .port,
            8080
        );
    }

    #[test]
    fn the_node_is_ready_only_between_its_load_and_its_drain() {
        let usage = NodeUsage {
            allocatable: 1,
            used: 0,
            replicas: 0,
            max_replicas: 1000,
        };
        let ready = |phase| {
            let status = node_status(&info(), &usage, phase, "t");
            let condition = &status["conditions"][0];
            (
                condition["status"].as_str().unwrap().to_owned(),
                condition["reason"].as_str().unwrap().to_owned(),
                condition["message"].as_str().unwrap().to_owned(),
            )
        };
        let loading = ready(Phase::Loading);
        assert_eq!(
            (loading.0.as_str(), loading.1.as_str()),
            ("False", "KubeletNotReady")
        );
        assert_eq!(
            loading.2,
            "wisp node is loading the revisions and routes the API holds"
        );
        assert_eq!(ready(Phase::Serving).0, "True");
        let draining = ready(Phase::Draining);
        assert_eq!(
            (draining.0.as_str(), draining.2.as_str()),
            ("False", "wisp node is shutting down")
        );
    }

    #[test]
    fn a_node_found_already_there_is_taken_over_keeping_other_taints() {
        let mut mine = node("n2");
        assert_eq!(takeover("n2", &mine), None);
        mine["spec"]["taints"] =
            json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]);
        let patch = takeover("n2", &mine).unwrap();
        let taints = patch["spec"]["taints"].as_array().unwrap();
        assert_eq!(taints.len(), 2);
        assert_eq!(taints[1], taint());
        let old = json!({"metadata": {"name": "n2", "labels": {"kubernetes.io/hostname": "n2"}}});
        let patch = takeover("n2", &old).unwrap();
        assert_eq!(patch["metadata"]["labels"][NODE_LABEL], "true");
        assert_eq!(patch["spec"]["taints"], json!([taint()]));
    }
}
