//! What the data plane reports about a revision: for the control plane's Revision status
//! (`actualReplicas`, `desiredReplicas`, `imageDigest`, conditions) and for tests and tools.

use wisp_api::revision_key::RevisionKey;

/// A point-in-time view of one revision in the data plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionState {
    pub key: RevisionKey,
    /// `sha256:<hex>` of the component.
    pub digest: String,
    /// The autoscaler's bounded desired scale (`status.desiredReplicas`), -1 while unknown.
    pub desired_replicas: i32,
    /// The replica count the autoscaler asks the node to run now.
    pub wanted_replicas: u32,
    /// Replicas taking requests (`status.actualReplicas`).
    pub ready_replicas: u32,
    /// Removed replicas still finishing requests.
    pub draining_replicas: usize,
    /// Requests waiting in the activator.
    pub queued: usize,
    /// Requests holding a replica slot.
    pub in_flight: u32,
    pub activator_in_path: bool,
    pub panicking: bool,
    /// The revision could not be activated within its progress deadline.
    pub activation_failed: bool,
    /// Why the node runs fewer replicas than wanted, while it does.
    pub unschedulable: Option<String>,
}
