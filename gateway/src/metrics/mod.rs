//! The data plane's Prometheus metrics (DESIGN §6 "Observable"): per-revision request, scaling
//! and cold-start series, per-node capacity and instantiation series, their text encoding, and
//! the admin endpoint that serves them.
//!
//! Cost model: label sets are resolved once, when a revision or node is registered
//! ([`DataPlaneMetrics::revision`], [`DataPlaneMetrics::node`]); the handles returned hold the
//! metrics themselves, so the request path updates atomics and never hashes labels, takes the
//! family lock or allocates. Scrapes take the family locks briefly to encode.
//!
//! Naming follows Prometheus conventions (prefix `wisp_`, base units, `_total` on counters,
//! unit suffixes added by the registry) and Knative's label names.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use wisp_gateway::metrics::{AutoscalerView, DataPlaneMetrics, NodeLabels, RevisionLabels};
//!
//! let metrics = Arc::new(DataPlaneMetrics::new());
//! // When a revision joins the data plane: resolve its series once, keep the handle with it.
//! let labels = RevisionLabels::new("default", "hello", "hello", "hello-00001");
//! let revision = metrics.revision(&labels);
//!
//! // Request path: a guard for in-flight, then one call with the outcome.
//! let started = Instant::now();
//! let in_flight = revision.in_flight();
//! // … route, maybe queue in the activator, maybe cold-start (`revision.cold_start(waited)`) …
//! revision.observe_request(200, started.elapsed());
//! drop(in_flight);
//!
//! // Autoscaler loop, per revision per tick.
//! revision.set_replicas(3, 2);
//! revision.set_queue_depth(0);
//! revision.set_autoscaler_view(AutoscalerView {
//!     panicking: false,
//!     stable: 1.5,
//!     panic: 2.0,
//!     excess_burst_capacity: -10,
//! });
//!
//! // Replica manager, per node.
//! let node = metrics.node(&NodeLabels::new("local"));
//! node.set_replicas(2);
//! node.set_memory(8 << 30, 256 << 20);
//! node.instance_started(Duration::from_micros(12));
//!
//! // The revision is deleted: its series leave the export.
//! metrics.remove_revision(&labels);
//! assert!(!metrics.encode()?.contains("hello-00001"));
//! # Ok::<(), wisp_gateway::metrics::EncodeError>(())
//! ```

mod admin;
mod buckets;
mod connections;
mod encode;
mod labels;
mod node;
mod revision;

#[cfg(test)]
mod tests;

use prometheus_client::registry::Registry;

pub use admin::{serve_admin, serve_admin_with_health};
pub use connections::{CloseReason, ConnectionMetrics};
pub use encode::{CONTENT_TYPE, EncodeError};
pub use labels::{CodeClass, FailureReason, NodeLabels, RevisionLabels};
pub use node::{CompiledTotals, NodeMetrics};
pub use revision::{AutoscalerView, InFlight, RevisionMetrics};

use connections::ConnectionFamilies;
use node::NodeFamilies;
use revision::RevisionFamilies;

/// Prefix of every metric name.
pub const PREFIX: &str = "wisp";

/// The registry of the data plane's metrics and the families in it. One per process, shared
/// as `Arc<DataPlaneMetrics>` between the request path, the autoscaler loop, the replica
/// manager and the admin endpoint.
#[derive(Debug)]
pub struct DataPlaneMetrics {
    registry: Registry,
    revisions: RevisionFamilies,
    nodes: NodeFamilies,
    connections: ConnectionFamilies,
}

impl DataPlaneMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let revisions = RevisionFamilies::register(&mut registry);
        let nodes = NodeFamilies::register(&mut registry);
        let connections = ConnectionFamilies::register(&mut registry);
        Self {
            registry,
            revisions,
            nodes,
            connections,
        }
    }

    /// The handle for a revision's series, creating them (at zero) when new. Call it once per
    /// revision, when the revision is added to the data plane, not per request. Calling it
    /// again with the same labels returns a handle onto the same series.
    pub fn revision(&self, labels: &RevisionLabels) -> RevisionMetrics {
        self.revisions.handle(labels)
    }

    /// Drops a deleted revision's series from the export; returns whether it had any.
    pub fn remove_revision(&self, labels: &RevisionLabels) -> bool {
        self.revisions.remove(labels)
    }

    /// The handle for a node's series, creating them when new.
    pub fn node(&self, labels: &NodeLabels) -> NodeMetrics {
        self.nodes.handle(labels)
    }

    /// Drops a node's series from the export; returns whether it had any.
    pub fn remove_node(&self, labels: &NodeLabels) -> bool {
        self.nodes.remove(labels)
    }

    /// The handle for the connection series of the listener named `listener` (`gateway`,
    /// `admin`), creating them when new.
    pub fn connections(&self, listener: &'static str) -> ConnectionMetrics {
        self.connections.handle(listener)
    }

    /// The registry, for encoding or for composing with other registries.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The OpenMetrics text exposition of every series, `# EOF` included.
    pub fn encode(&self) -> Result<String, EncodeError> {
        encode::encode_text(&self.registry)
    }
}

impl Default for DataPlaneMetrics {
    fn default() -> Self {
        Self::new()
    }
}
