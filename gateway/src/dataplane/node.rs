//! Node admission: like a kubelet, the node admits a replica only while the sum of its replicas'
//! memory limits stays within its allocatable memory, and while it runs fewer replicas than its
//! cap (a kubelet's `maxPods`). A replica is charged at least [`MIN_REPLICA_MEMORY`], so a tiny
//! limit stored before admission refused it still cannot make replicas look free. A
//! reservation is held by the replica and given back when the replica is gone (drained), which
//! wakes revisions waiting for room.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;
use wisp_api::quantity::MIN_REPLICA_MEMORY;

/// The default of `--max-replicas`: replicas one node runs at most, across all revisions.
pub const DEFAULT_MAX_REPLICAS: usize = 1000;

/// The default share of a node's replicas one revision may hold: half, so one revision that
/// asks for millions still leaves room for every other to start.
pub fn default_max_replicas_per_revision(max_replicas: usize) -> usize {
    max_replicas.div_ceil(2).max(1)
}

/// What the node has admitted, for metrics and status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeUsage {
    pub allocatable: u64,
    /// Sum of the memory charged for admitted replicas (draining ones included).
    pub used: u64,
    pub replicas: usize,
    /// The most replicas the node runs at once.
    pub max_replicas: usize,
}

/// Why a replica was not admitted; the text says what to change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unschedulable {
    /// Its memory limit does not fit in what is left of the allocatable memory.
    #[error(
        "the node cannot admit a replica with a {}Mi memory limit: {}Mi of its {}Mi allocatable memory are free; lower the revision's resources.limits.memory or autoscaling.knative.dev/min-scale, give the node more memory (--allocatable-memory), or add nodes",
        mib(*.wanted),
        mib(.allocatable.saturating_sub(*.used)),
        mib(*.allocatable)
    )]
    Memory {
        wanted: u64,
        used: u64,
        allocatable: u64,
    },
    /// The revision already holds as many of the node's replicas as one revision may.
    #[error(
        "the node runs at most {max_replicas_per_revision} replicas of one revision (--max-replicas-per-revision), so that other revisions keep room; lower the revision's autoscaling.knative.dev/min-scale, raise --max-replicas-per-revision, or add nodes"
    )]
    RevisionCap { max_replicas_per_revision: usize },
    /// The node already runs as many replicas as it may.
    #[error(
        "the node runs at most {max_replicas} replicas across all revisions (--max-replicas) and all are in use; raise --max-replicas, lower the revision's autoscaling.knative.dev/min-scale, or add nodes"
    )]
    ReplicaCap { max_replicas: usize },
}

fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1024 * 1024)
}

/// The node's memory ledger. Shared as `Arc<NodeCapacity>`.
#[derive(Debug)]
pub struct NodeCapacity {
    allocatable: u64,
    max_replicas: usize,
    state: Mutex<Ledger>,
    /// Bumped whenever memory is given back.
    freed: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Ledger {
    used: u64,
    replicas: usize,
}

/// Memory reserved for one replica; released on drop.
#[derive(Debug)]
pub struct Reservation {
    node: Arc<NodeCapacity>,
    bytes: u64,
}

impl NodeCapacity {
    /// A node giving `allocatable` bytes to at most `max_replicas` replicas.
    pub fn new(allocatable: u64, max_replicas: usize) -> Arc<Self> {
        Arc::new(Self {
            allocatable,
            max_replicas,
            state: Mutex::new(Ledger::default()),
            freed: watch::channel(0).0,
        })
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // Two integers updated together: still consistent after a panic elsewhere.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a replica with a `limit` memory limit (charged at least [`MIN_REPLICA_MEMORY`]),
    /// or says why not.
    pub fn reserve(self: &Arc<Self>, limit: u64) -> Result<Reservation, Unschedulable> {
        let bytes = limit.max(MIN_REPLICA_MEMORY);
        let mut ledger = self.ledger();
        if ledger.replicas >= self.max_replicas {
            return Err(Unschedulable::ReplicaCap {
                max_replicas: self.max_replicas,
            });
        }
        match ledger.used.checked_add(bytes) {
            Some(total) if total <= self.allocatable => {
                ledger.used = total;
                ledger.replicas += 1;
                Ok(Reservation {
                    node: self.clone(),
                    bytes,
                })
            }
            _ => Err(Unschedulable::Memory {
                wanted: bytes,
                used: ledger.used,
                allocatable: self.allocatable,
            }),
        }
    }

    pub fn usage(&self) -> NodeUsage {
        let ledger = self.ledger();
        NodeUsage {
            allocatable: self.allocatable,
            used: ledger.used,
            replicas: ledger.replicas,
            max_replicas: self.max_replicas,
        }
    }

    /// Changes whenever memory is given back: revisions short of replicas wait on it.
    pub fn subscribe_freed(&self) -> watch::Receiver<u64> {
        self.freed.subscribe()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        {
            let mut ledger = self.node.ledger();
            ledger.used -= self.bytes;
            ledger.replicas -= 1;
        }
        self.node.freed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: u64 = 1024 * 1024;

    #[test]
    fn admits_up_to_allocatable_and_frees_on_drop() {
        let node = NodeCapacity::new(100 * MI, DEFAULT_MAX_REPLICAS);
        let freed = node.subscribe_freed();
        let a = node.reserve(60 * MI).expect("fits");
        let b = node.reserve(40 * MI).expect("fits exactly");
        let refused = node.reserve(2 * MI).expect_err("full");
        assert_eq!(
            refused,
            Unschedulable::Memory {
                wanted: 2 * MI,
                used: 100 * MI,
                allocatable: 100 * MI
            }
        );
        assert_eq!(
            refused.to_string(),
            "the node cannot admit a replica with a 2Mi memory limit: 0Mi of its 100Mi allocatable \
             memory are free; lower the revision's resources.limits.memory or \
             autoscaling.knative.dev/min-scale, give the node more memory (--allocatable-memory), \
             or add nodes"
        );
        assert_eq!(node.usage().replicas, 2);
        drop(a);
        assert!(freed.has_changed().unwrap_or(false));
        assert_eq!(
            node.usage(),
            NodeUsage {
                allocatable: 100 * MI,
                used: 40 * MI,
                replicas: 1,
                max_replicas: DEFAULT_MAX_REPLICAS,
            }
        );
        drop(b);
        assert_eq!(node.usage().used, 0);
    }

    #[test]
    fn an_oversized_request_never_overflows() {
        let node = NodeCapacity::new(u64::MAX, DEFAULT_MAX_REPLICAS);
        let _a = node.reserve(u64::MAX - 1).expect("fits");
        assert!(node.reserve(2).is_err());
    }

    #[test]
    fn the_replica_cap_holds_however_small_the_replicas() {
        let node = NodeCapacity::new(u64::MAX, 3);
        let held: Vec<Reservation> = (0..3).map(|_| node.reserve(1).expect("fits")).collect();
        let refused = node.reserve(1).expect_err("capped");
        assert_eq!(refused, Unschedulable::ReplicaCap { max_replicas: 3 });
        assert!(
            refused.to_string().contains("at most 3 replicas"),
            "{refused}"
        );
        assert!(
            refused.to_string().contains("raise --max-replicas"),
            "{refused}"
        );
        drop(held);
        assert!(node.reserve(1).is_ok());
    }

    #[test]
    fn a_tiny_limit_is_charged_the_minimum() {
        // A one-byte limit stored before admission refused it: 4 MiB hold 4 replicas, not 4
        // million.
        let node = NodeCapacity::new(4 * MIN_REPLICA_MEMORY, DEFAULT_MAX_REPLICAS);
        let held: Vec<Reservation> = (0..4).map(|_| node.reserve(1).expect("fits")).collect();
        assert!(matches!(node.reserve(1), Err(Unschedulable::Memory { .. })));
        assert_eq!(node.usage().used, 4 * MIN_REPLICA_MEMORY);
        drop(held);
        assert_eq!(node.usage().used, 0);
    }
}
