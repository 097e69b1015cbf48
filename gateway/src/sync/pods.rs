//! Replicas as Pods and the node as a Node, the objects `kubectl get pods,nodes` shows: one
//! Pod per ready replica of each serving revision, and this node with its memory.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use wisp_api::knative::labels;
use wisp_api::revision_key::RevisionKey;

use super::Serving;
use crate::dataplane::NodeUsage;

/// A Pod's `namespace/name`.
pub type PodKey = (String, String);

/// The label every replica Pod has, naming its revision (also how the sync finds its Pods).
pub const REVISION_LABEL: &str = labels::REVISION;
/// The label naming the uid of a replica Pod's revision.
pub const REVISION_UID_LABEL: &str = labels::REVISION_UID;
/// Pods one node lists as its capacity: memory, not this count, is what admits a replica.
pub const MAX_PODS: u32 = 1000;

/// `{revision}-{n}` for the revision's `n`th replica (from 1). Replicas have no identity in the
/// data plane, so the `n`th name lives as long as the revision has at least `n` replicas.
pub fn pod_name(revision: &str, index: u32) -> String {
    format!("{revision}-{index}")
}

/// The Pods that should exist: `ready` replicas of each serving revision.
pub fn desired_pods(
    serving: &BTreeMap<RevisionKey, Serving>,
    ready: &BTreeMap<RevisionKey, u32>,
) -> BTreeMap<PodKey, (RevisionKey, u32)> {
    serving
        .keys()
        .flat_map(|key| {
            let count = ready.get(key).copied().unwrap_or(0);
            (1..=count).map(move |index| {
                (
                    (key.namespace.clone(), pod_name(&key.name, index)),
                    (key.clone(), index),
                )
            })
        })
        .collect()
}

/// The Pod of replica `index` of `key`, status included (a server that drops status on create
/// gets it again through the status subresource: see [`pod_status`]).
pub fn pod(key: &RevisionKey, serving: &Serving, index: u32, node_name: &str, now: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(&key.name, index),
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
            "nodeName": node_name,
            "containers": [{"name": serving.container_name, "image": serving.image}],
        },
        "status": pod_status(serving, now),
    })
}

/// A running, ready replica's `status`.
pub fn pod_status(serving: &Serving, now: &str) -> Value {
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
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
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

/// The Node object (metadata and spec) for this node.
pub fn node(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                wisp_api::nodes::NODE_LABEL: "true",
                "kubernetes.io/os": std::env::consts::OS,
                "kubernetes.io/arch": architecture(),
                "node.kubernetes.io/instance-type": "wisp",
            },
        },
        "spec": {},
    })
}

/// The Node's `status`: memory from the data plane's node usage, a Ready
/// condition (stamped `since`, when the sync started, so an unchanged node compares equal).
pub fn node_status(name: &str, usage: &NodeUsage, since: &str) -> Value {
    let resources = json!({
        "memory": usage.allocatable.to_string(),
        "pods": MAX_PODS.to_string(),
    });
    json!({
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "wisp data plane is serving",
                "lastHeartbeatTime": since,
                "lastTransitionTime": since,
            }],
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": name},
            ],
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

    #[test]
    fn one_pod_per_ready_replica() {
        let a = RevisionKey::new("default", "a-00001");
        let b = RevisionKey::new("team", "b-00001");
        let serving = BTreeMap::from([(a.clone(), serving()), (b.clone(), serving())]);
        let ready = BTreeMap::from([(a.clone(), 2), (b.clone(), 0)]);
        let pods = desired_pods(&serving, &ready);
        assert_eq!(
            pods.keys().cloned().collect::<Vec<_>>(),
            vec![
                ("default".to_owned(), "a-00001-1".to_owned()),
                ("default".to_owned(), "a-00001-2".to_owned()),
            ]
        );
        assert_eq!(pods[&("default".into(), "a-00001-2".into())], (a, 2));
    }

    #[test]
    fn a_pod_names_its_revision_node_and_container() {
        let key = RevisionKey::new("default", "a-00001");
        let pod = pod(&key, &serving(), 1, "local", "2026-01-01T00:00:00Z");
        assert_eq!(pod["metadata"]["name"], "a-00001-1");
        assert_eq!(pod["metadata"]["labels"][labels::REVISION], "a-00001");
        assert_eq!(pod["metadata"]["labels"]["app"], "a-00001");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert_eq!(pod["spec"]["nodeName"], "local");
        assert_eq!(pod["spec"]["containers"][0]["name"], "user-container");
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(pod["status"]["podIP"], "127.0.0.1");
        let typed: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod).unwrap();
        assert_eq!(
            typed.spec.unwrap().containers[0].image.as_deref(),
            Some("hello.wasm")
        );
    }

    #[test]
    fn the_node_reports_its_memory() {
        let usage = NodeUsage {
            allocatable: 4 << 30,
            used: 1 << 20,
            replicas: 1,
        };
        let status = node_status("local", &usage, "2026-01-01T00:00:00Z");
        assert_eq!(status["capacity"]["memory"], "4294967296");
        assert_eq!(status["conditions"][0]["status"], "True");
        let mut object = node("local");
        object["status"] = status;
        let typed: k8s_openapi::api::core::v1::Node = serde_json::from_value(object).unwrap();
        assert!(typed.status.unwrap().node_info.is_some());
    }
}
