//! Node admission: like a kubelet, the node admits a replica only while the sum of its replicas'
//! memory limits stays within its allocatable memory. A reservation is held by the replica and
//! given back when the replica is gone (drained), which wakes revisions waiting for room.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

/// What the node has admitted, for metrics and status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeUsage {
    pub allocatable: u64,
    /// Sum of the memory limits of admitted replicas (draining ones included).
    pub used: u64,
    pub replicas: usize,
}

/// Why a replica was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the node cannot admit a replica with a {}Mi memory limit: {}Mi of its {}Mi allocatable memory are free",
    mib(*.wanted),
    mib(.allocatable.saturating_sub(*.used)),
    mib(*.allocatable)
)]
pub struct Unschedulable {
    pub wanted: u64,
    pub used: u64,
    pub allocatable: u64,
}

fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1024 * 1024)
}

/// The node's memory ledger. Shared as `Arc<NodeCapacity>`.
#[derive(Debug)]
pub struct NodeCapacity {
    allocatable: u64,
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
    pub fn new(allocatable: u64) -> Arc<Self> {
        Arc::new(Self {
            allocatable,
            state: Mutex::new(Ledger::default()),
            freed: watch::channel(0).0,
        })
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // Two integers updated together: still consistent after a panic elsewhere.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a replica with a `bytes` memory limit, or says why not.
    pub fn reserve(self: &Arc<Self>, bytes: u64) -> Result<Reservation, Unschedulable> {
        let mut ledger = self.ledger();
        match ledger.used.checked_add(bytes) {
            Some(total) if total <= self.allocatable => {
                ledger.used = total;
                ledger.replicas += 1;
                Ok(Reservation {
                    node: self.clone(),
                    bytes,
                })
            }
            _ => Err(Unschedulable {
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
        let node = NodeCapacity::new(100 * MI);
        let freed = node.subscribe_freed();
        let a = node.reserve(60 * MI).expect("fits");
        let b = node.reserve(40 * MI).expect("fits exactly");
        let refused = node.reserve(MI).expect_err("full");
        assert_eq!(refused.used, 100 * MI);
        assert_eq!(
            refused.to_string(),
            "the node cannot admit a replica with a 1Mi memory limit: 0Mi of its 100Mi allocatable memory are free"
        );
        assert_eq!(node.usage().replicas, 2);
        drop(a);
        assert!(freed.has_changed().unwrap_or(false));
        assert_eq!(
            node.usage(),
            NodeUsage {
                allocatable: 100 * MI,
                used: 40 * MI,
                replicas: 1
            }
        );
        drop(b);
        assert_eq!(node.usage().used, 0);
    }

    #[test]
    fn an_oversized_request_never_overflows() {
        let node = NodeCapacity::new(u64::MAX);
        let _a = node.reserve(u64::MAX - 1).expect("fits");
        assert!(node.reserve(2).is_err());
    }
}
