//! What the data plane reports about a revision: for the control plane's Revision status
//! (`actualReplicas`, `desiredReplicas`, `imageDigest`, conditions) and for tests and tools.

use std::sync::atomic::{AtomicU64, Ordering};

use wisp_api::revision_key::RevisionKey;

use super::node::Unschedulable;

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

impl RevisionState {
    /// Why `node` runs fewer replicas than the autoscaler wants, while it does: the replicas
    /// wanted and running and the limit reached, with what to change (the message of the
    /// Revision's `ReplicasScheduled=False` condition).
    pub fn capped(&self, node: &str) -> Option<String> {
        let reason = self.unschedulable.as_deref()?;
        Some(capped_message(
            node,
            self.ready_replicas,
            self.wanted_replicas,
            reason,
        ))
    }
}

/// The numbers a revision's status takes from the data plane, read without copying any
/// string: the sync compares them every status interval, for every revision the node serves,
/// to find the few that changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaCounts {
    /// As [`RevisionState::desired_replicas`].
    pub desired: i32,
    /// As [`RevisionState::wanted_replicas`].
    pub wanted: u32,
    /// As [`RevisionState::ready_replicas`].
    pub ready: u32,
    pub unschedulable: Option<Unschedulable>,
}

impl ReplicaCounts {
    /// As [`RevisionState::capped`].
    pub fn capped(&self, node: &str) -> Option<String> {
        let reason = self.unschedulable?;
        Some(capped_message(node, self.ready, self.wanted, reason))
    }
}

fn capped_message(node: &str, ready: u32, wanted: u32, reason: impl std::fmt::Display) -> String {
    format!("node {node} runs {ready} of the {wanted} replicas the revision wants: {reason}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capped_revision_says_how_many_run_of_how_many_and_why() {
        let mut state = RevisionState {
            key: RevisionKey::new("default", "greedy-00001"),
            digest: "sha256:00".into(),
            desired_replicas: 2_000_000_000,
            wanted_replicas: 2_000_000_000,
            ready_replicas: 5,
            draining_replicas: 0,
            queued: 0,
            in_flight: 0,
            activator_in_path: false,
            panicking: false,
            activation_failed: false,
            unschedulable: None,
        };
        assert_eq!(state.capped("n1"), None);
        state.unschedulable = Some("the node runs at most 5 replicas".into());
        assert_eq!(
            state.capped("n1").as_deref(),
            Some(
                "node n1 runs 5 of the 2000000000 replicas the revision wants: the node runs at \
                 most 5 replicas"
            )
        );
    }

    #[test]
    fn counts_say_capped_as_the_full_state_does() {
        let mut counts = ReplicaCounts {
            desired: 3,
            wanted: 3,
            ready: 1,
            unschedulable: None,
        };
        assert_eq!(counts.capped("n1"), None);
        let reason = Unschedulable::RevisionCap {
            max_replicas_per_revision: 1,
        };
        counts.unschedulable = Some(reason);
        assert_eq!(
            counts.capped("n1"),
            Some(format!(
                "node n1 runs 1 of the 3 replicas the revision wants: {reason}"
            ))
        );
    }
}

/// Moves on after any revision's [`ReplicaCounts`] may have changed (a decision applied, a
/// revision added, replaced or removed). The sync reads it before the counts: while it stays
/// where it was, no count moved, and thousands of idle revisions need not be read again.
#[derive(Debug, Default)]
pub(crate) struct CountsVersion(AtomicU64);

impl CountsVersion {
    /// After the change is visible to readers of the counts.
    pub(crate) fn moved(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}
