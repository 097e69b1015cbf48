//! The memory envelope of a replica: every instance it runs draws linear memory — and the host
//! memory its requests make wisp hold (header fields, buffered bodies, its resource table) — from
//! one shared budget, so a replica's `resources.limits.memory` holds however many requests run at
//! once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

/// Bytes of linear memory a replica may hand out across its live instances.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
    /// Woken whenever memory is given back, for requests waiting to start an instance.
    released: Notify,
}

impl MemoryBudget {
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicU64::new(0),
            released: Notify::new(),
        })
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Whether `bytes` more would fit right now.
    pub fn has_room_for(&self, bytes: u64) -> bool {
        self.used().saturating_add(bytes) <= self.limit
    }

    /// Resolves after the next release of memory (register before checking, then re-check).
    pub fn released(&self) -> tokio::sync::futures::Notified<'_> {
        self.released.notified()
    }

    fn try_charge(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn release(&self, bytes: u64) {
        if bytes > 0 {
            self.used.fetch_sub(bytes, Ordering::AcqRel);
            self.released.notify_waiters();
        }
    }
}

/// Why a charge was refused: the request alone went past what one instance may hold (the
/// guest's own doing), or the replica's shared budget was taken by requests running beside it
/// (overload: the same request would fit later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryRefusal {
    InstanceCap,
    SharedBudget,
}

/// Host memory a guest asked wisp to hold beyond what one request may: the trap that ends the
/// request. Carries what it was for, so the answer can say so.
#[derive(Debug, thiserror::Error)]
#[error(
    "guest exceeded its memory limit with {what}: {requested} more bytes would pass the {limit} bytes \
     one request may hold"
)]
pub struct HostMemoryExceeded {
    pub what: &'static str,
    pub requested: u64,
    pub limit: u64,
    pub refusal: MemoryRefusal,
}

/// Most table elements one instance may have: enough for any real guest's function tables,
/// small enough that a runaway `table.grow` cannot eat host memory.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// The per-instance `ResourceLimiter`: charges growth to the replica's budget and gives it back
/// when the instance's store is dropped.
pub struct InstanceLimiter {
    budget: Arc<MemoryBudget>,
    per_instance_max: u64,
    charged: u64,
    refused: Option<MemoryRefusal>,
}

impl InstanceLimiter {
    pub fn new(budget: Arc<MemoryBudget>, per_instance_max: u64) -> Self {
        Self {
            budget,
            per_instance_max,
            charged: 0,
            refused: None,
        }
    }

    /// Bytes this instance holds of its replica's budget.
    pub fn per_instance_max(&self) -> u64 {
        self.per_instance_max
    }

    pub fn charged(&self) -> u64 {
        self.charged
    }

    /// The first charge refused during this instance's life, if any: what the request's failure
    /// (a trap after an allocation failed) is blamed on.
    pub fn refused(&self) -> Option<MemoryRefusal> {
        self.refused
    }

    /// Charges `bytes` of memory this instance uses, linear or host-side.
    pub fn try_charge(&mut self, bytes: u64) -> Result<(), MemoryRefusal> {
        let refusal = if self.charged.saturating_add(bytes) > self.per_instance_max {
            Some(MemoryRefusal::InstanceCap)
        } else if !self.budget.try_charge(bytes) {
            Some(MemoryRefusal::SharedBudget)
        } else {
            None
        };
        match refusal {
            None => {
                self.charged += bytes;
                Ok(())
            }
            Some(refusal) => {
                self.refused.get_or_insert(refusal);
                Err(refusal)
            }
        }
    }

    /// Charges host memory held for the guest, failing the request with [`HostMemoryExceeded`]
    /// when it does not fit.
    pub fn charge_host(&mut self, what: &'static str, bytes: u64) -> wasmtime::Result<()> {
        self.try_charge(bytes).map_err(|refusal| {
            wasmtime::Error::new(HostMemoryExceeded {
                what,
                requested: bytes,
                limit: self.per_instance_max,
                refusal,
            })
        })
    }
}

impl wasmtime::ResourceLimiter for InstanceLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Refusing (rather than trapping) makes `memory.grow` return -1, so the guest's allocator
        // sees an ordinary allocation failure it may handle.
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        let growth = desired.saturating_sub(current) as u64;
        Ok(self.try_charge(growth).is_ok())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|max| desired <= max))
    }
}

impl Drop for InstanceLimiter {
    fn drop(&mut self) {
        self.budget.release(self.charged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn instances_share_the_budget_and_return_it_when_dropped() {
        let budget = MemoryBudget::new(100);
        let mut first = InstanceLimiter::new(budget.clone(), 80);
        let mut second = InstanceLimiter::new(budget.clone(), 80);
        assert!(first.memory_growing(0, 60, None).unwrap());
        assert!(
            !second.memory_growing(0, 60, None).unwrap(),
            "over the shared budget"
        );
        assert!(second.memory_growing(0, 40, None).unwrap());
        assert_eq!(budget.used(), 100);
        drop(first);
        assert_eq!(budget.used(), 40);
        assert!(second.memory_growing(40, 80, None).unwrap());
        assert!(
            !second.memory_growing(80, 90, None).unwrap(),
            "over the per-instance cap"
        );
        drop(second);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_refusal_says_whether_the_instance_or_the_replica_ran_out() {
        let budget = MemoryBudget::new(100);
        let mut first = InstanceLimiter::new(budget.clone(), 80);
        let mut second = InstanceLimiter::new(budget.clone(), 80);
        assert_eq!(first.try_charge(81), Err(MemoryRefusal::InstanceCap));
        assert_eq!(first.try_charge(70), Ok(()));
        assert_eq!(second.try_charge(40), Err(MemoryRefusal::SharedBudget));
        assert_eq!(first.refused(), Some(MemoryRefusal::InstanceCap));
        assert_eq!(second.refused(), Some(MemoryRefusal::SharedBudget));
        let error = second.charge_host("header fields", 40).unwrap_err();
        let exceeded = error.downcast_ref::<HostMemoryExceeded>().unwrap();
        assert_eq!(
            (exceeded.what, exceeded.refusal),
            ("header fields", MemoryRefusal::SharedBudget)
        );
        drop(first);
        assert_eq!(second.charge_host("header fields", 40).ok(), Some(()));
        assert_eq!(budget.used(), 40);
    }

    #[test]
    fn tables_are_capped() {
        let mut limiter = InstanceLimiter::new(MemoryBudget::new(1), 1);
        assert!(limiter.table_growing(0, 10, None).unwrap());
        assert!(
            !limiter
                .table_growing(0, MAX_TABLE_ELEMENTS + 1, None)
                .unwrap()
        );
        assert!(!limiter.table_growing(0, 10, Some(5)).unwrap());
    }
}
