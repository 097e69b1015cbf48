//! The contract between wisp's nodes and its controllers beyond one machine (DESIGN §7): how a
//! `wisp node` presents itself (its Node's label and taint, its heartbeat Lease) and how it
//! reports what it serves, so the controllers can sum and gate without ever calling a node.
//!
//! A node writes only objects, or parts of objects, it alone owns:
//! * its `Node` (labelled [`NODE_LABEL`], tainted [`TAINT_KEY`]) and its Lease
//!   `kube-node-lease/<node>`;
//! * one entry of each Revision's `status.annotations`, keyed [`report_key`]`(node)`: a
//!   [`RevisionReport`] (did the component pass its checks here, this node's replica counts);
//! * one entry of each Route's `status.annotations`, keyed the same way: a [`RouteReport`] (the
//!   [`traffic_hash`] of the traffic this node's gateway serves for the route, or why it cannot).
//!
//! The controllers read those entries for the Ready nodes only (a node whose Lease lapsed stops
//! counting) and write everything else: Revision conditions and replica sums, Route
//! `IngressReady`. Knative's `status.annotations` is the field for exactly this ("additional
//! Status fields for the Resource to save some additional State"), so the CRDs need nothing new.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::knative::TrafficTarget;

/// The label every wisp node's `Node` carries (value `"true"`): how controllers and
/// DaemonSets tell wisp's virtual nodes from the machines of a cluster.
pub const NODE_LABEL: &str = "wisp.dev/node";

/// The key of the `NoSchedule` taint on every wisp node, so the scheduler never places a
/// container Pod on a node that runs only WebAssembly (value [`TAINT_VALUE`]).
pub const TAINT_KEY: &str = "wisp.dev/wasm-only";
/// The value of [`TAINT_KEY`].
pub const TAINT_VALUE: &str = "true";

/// The namespace of node heartbeat Leases, as the kubelet uses it.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// The kubelet's default node lease duration; a node renews every quarter of it.
pub const DEFAULT_NODE_LEASE_SECONDS: i32 = 40;

/// The status of a Node's `Ready` condition (`True`, `False`, `Unknown`), if it has one.
pub fn ready_status(node: &k8s_openapi::api::core::v1::Node) -> Option<&str> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
}

/// Whether a Node's `Ready` condition is True: the nodes whose reports count.
pub fn is_ready(node: &k8s_openapi::api::core::v1::Node) -> bool {
    ready_status(node) == Some("True")
}

/// Prefix of the per-node entries in `status.annotations`.
pub const REPORT_PREFIX: &str = "nodes.wisp.dev/";

/// The `status.annotations` key under which `node` reports.
pub fn report_key(node: &str) -> String {
    format!("{REPORT_PREFIX}{node}")
}

/// The node a `status.annotations` key belongs to, if it is a node report.
pub fn report_node(key: &str) -> Option<&str> {
    key.strip_prefix(REPORT_PREFIX)
        .filter(|node| !node.is_empty())
}

/// The `status.annotations` key of the digest (`sha256:…`) of the bytes a Revision was created
/// with, written once by the first node that loaded them and never changed: every node, after
/// every restart, runs those bytes or reports that the source changed.
pub const RECORDED_DIGEST_KEY: &str = "wisp.dev/image-digest";

/// The `status.annotations` key of the image reference every node pulls for a Revision whose
/// image is in an OCI registry: `REGISTRY/REPO@sha256:…` once the leader resolved the tag (as
/// Knative writes `containerStatuses[].imageDigest` when it creates a Revision), or the image
/// as written when it names a digest already or its registry is one whose tags are not
/// resolved (`registries-skipping-tag-resolving`). Written once and never changed; nodes do not
/// load such a Revision before it is there.
pub const PINNED_IMAGE_KEY: &str = "wisp.dev/pinned-image";

/// How far a node got with a revision's component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RevisionState {
    /// Being fetched, compiled or probed. Nodes of this version report only an outcome (Ready
    /// or Failed); earlier ones wrote this first, and the controllers still read it as "not
    /// reported yet".
    Deploying,
    /// Passed its checks: this node serves it.
    Ready,
    /// Cannot run here; `reason` and `message` say why.
    Failed,
}

/// One node's word on one revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionReport {
    pub state: RevisionState,
    /// The revision's generation the report is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// The container the component runs as (`containerStatuses[].name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// `sha256:…` of the component, once Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// Why it failed: a reason a program can match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why it failed: what a user can act on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Ready replicas on this node.
    #[serde(default)]
    pub actual: i32,
    /// Replicas this node's autoscaler wants (`-1`: it has no view yet).
    #[serde(default)]
    pub desired: i32,
    /// Why this node runs fewer replicas than its autoscaler wants, while it does: the limit
    /// it reached, the replicas wanted and running, and what to change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capped: Option<String>,
}

/// One node's word on one route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteReport {
    /// The [`traffic_hash`] of the route status this node's gateway serves.
    pub serving: String,
    /// Why the gateway left the route (or one of its hosts) out, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The reports of `annotations` (a `status.annotations` map), by node; entries that are not
/// node reports, or do not parse as `T`, are left out.
pub fn reports<'a, T: serde::de::DeserializeOwned>(
    annotations: &'a BTreeMap<String, String>,
) -> impl Iterator<Item = (&'a str, T)> + 'a {
    annotations.iter().filter_map(|(key, value)| {
        let node = report_node(key)?;
        let report = serde_json::from_str(value).ok()?;
        Some((node, report))
    })
}

/// The text of a report as it is stored in `status.annotations`.
pub fn encode<T: Serialize>(report: &T) -> String {
    // Serialising these plain structs cannot fail.
    serde_json::to_string(report).unwrap_or_default()
}

/// A stable digest of a route's served traffic and URL: what a node reports once its gateway
/// serves them, and what the Route controller compares reports with (Knative hashes its
/// Ingress spec the same way for ingress probing). Stable across processes and builds: FNV-1a
/// over the canonical JSON, so nodes and controllers of different builds agree.
pub fn traffic_hash(traffic: &[TrafficTarget], url: Option<&str>) -> String {
    let canonical = serde_json::to_string(&(traffic, url)).unwrap_or_default();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in canonical.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_keys_name_their_node() {
        assert_eq!(report_key("a"), "nodes.wisp.dev/a");
        assert_eq!(report_node("nodes.wisp.dev/a"), Some("a"));
        assert_eq!(report_node("nodes.wisp.dev/"), None);
        assert_eq!(report_node("other/a"), None);
    }

    #[test]
    fn reports_skip_foreign_and_unreadable_entries() {
        let ready = RevisionReport {
            state: RevisionState::Ready,
            generation: Some(1),
            container: None,
            image_digest: Some("sha256:ab".into()),
            reason: None,
            message: None,
            actual: 2,
            desired: 2,
            capped: None,
        };
        let annotations = BTreeMap::from([
            (report_key("a"), encode(&ready)),
            (report_key("b"), "not json".to_owned()),
            ("someone/else".to_owned(), encode(&ready)),
        ]);
        let found: Vec<(&str, RevisionReport)> = reports(&annotations).collect();
        assert_eq!(found, vec![("a", ready)]);
    }

    #[test]
    fn the_traffic_hash_changes_with_the_traffic_and_only_then() {
        let target = |revision: &str, percent| TrafficTarget {
            revision_name: Some(revision.into()),
            percent: Some(percent),
            ..TrafficTarget::default()
        };
        let url = Some("http://hello.default.localhost");
        let a = traffic_hash(&[target("a", 100)], url);
        assert_eq!(a, traffic_hash(&[target("a", 100)], url));
        assert_eq!(a.len(), 16);
        assert_ne!(a, traffic_hash(&[target("b", 100)], url));
        assert_ne!(a, traffic_hash(&[target("a", 50), target("b", 50)], url));
        assert_ne!(a, traffic_hash(&[target("a", 100)], None));
    }
}
