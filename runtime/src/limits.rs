//! The memory envelope of a replica: every instance it runs draws linear memory from one shared
//! budget, so a replica's `resources.limits.memory` holds however many requests run at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes of linear memory a replica may hand out across its live instances.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
}

impl MemoryBudget {
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicU64::new(0),
        })
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn try_charge(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
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
}

impl InstanceLimiter {
    pub fn new(budget: Arc<MemoryBudget>, per_instance_max: u64) -> Self {
        Self {
            budget,
            per_instance_max,
            charged: 0,
        }
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
        if maximum.is_some_and(|max| desired > max) || desired as u64 > self.per_instance_max {
            return Ok(false);
        }
        let growth = desired.saturating_sub(current) as u64;
        if !self.budget.try_charge(growth) {
            return Ok(false);
        }
        self.charged += growth;
        Ok(true)
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
