//! What a request waits for before its instance starts: a concurrency slot of its replica, an
//! instance slot of the node, and room in the replica's memory budget. Every wait ends at the
//! request's deadline, and only so many requests may wait at once; beyond that the request is
//! shed with 503 and `Retry-After` — overload, which the client may retry, never a guest fault.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::limits::MemoryBudget;

/// Why a request was not started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shed {
    /// Too many requests already wait for `what`.
    QueueFull { what: &'static str, waiting: usize },
    /// The request's deadline passed while it waited for `what`.
    Deadline { what: &'static str },
    /// The replica is being stopped.
    Stopping,
}

/// The node's instance slots: one per instance the engine's pool can hold, shared by every
/// replica, so a request waits for a free slot instead of failing to instantiate.
#[derive(Debug)]
pub struct InstanceSlots {
    slots: Arc<Semaphore>,
    total: usize,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// Requests that may wait per instance slot of the node (as Knative's queue-proxy lets ten
/// times the concurrency wait).
const WAITING_PER_INSTANCE_SLOT: usize = 10;

impl InstanceSlots {
    pub fn new(total: u32) -> Arc<Self> {
        let total = total.max(1) as usize;
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(total)),
            total,
            waiting: AtomicUsize::new(0),
            max_waiting: total.saturating_mul(WAITING_PER_INSTANCE_SLOT),
        })
    }

    /// Instances running right now.
    pub fn in_use(&self) -> usize {
        self.total - self.slots.available_permits()
    }

    /// Requests waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// A slot if one is free now, without waiting.
    pub fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    pub async fn acquire(&self, deadline: Instant) -> Result<OwnedSemaphorePermit, Shed> {
        wait_for_permit(
            &self.slots,
            &self.waiting,
            self.max_waiting,
            deadline,
            "an instance slot of the node",
        )
        .await
    }
}

/// A replica's concurrency slot (`containerConcurrency`), with at most `max_waiting` waiting.
pub async fn concurrency_slot(
    slots: &Arc<Semaphore>,
    waiting: &AtomicUsize,
    max_waiting: usize,
    deadline: Instant,
) -> Result<OwnedSemaphorePermit, Shed> {
    wait_for_permit(
        slots,
        waiting,
        max_waiting,
        deadline,
        "a concurrency slot of the replica",
    )
    .await
}

async fn wait_for_permit(
    semaphore: &Arc<Semaphore>,
    waiting: &AtomicUsize,
    max_waiting: usize,
    deadline: Instant,
    what: &'static str,
) -> Result<OwnedSemaphorePermit, Shed> {
    if let Ok(permit) = semaphore.clone().try_acquire_owned() {
        return Ok(permit);
    }
    let _waiting = Waiting::enter(waiting, max_waiting, what)?;
    match tokio::time::timeout_at(deadline.into(), semaphore.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(_)) => Err(Shed::Stopping),
        Err(_) => Err(Shed::Deadline { what }),
    }
}

/// Waits until `footprint` bytes (what one instance of the component takes to start) fit in the
/// replica's memory budget. Room is not reserved: a request that loses a race for it fails to
/// instantiate on the same shared budget, which is reported as overload too.
pub async fn memory_room(
    budget: &MemoryBudget,
    footprint: u64,
    waiting: &AtomicUsize,
    max_waiting: usize,
    deadline: Instant,
) -> Result<(), Shed> {
    const WHAT: &str = "room in the replica's memory";
    // An instance that can never fit is not kept waiting: it starts, and fails on the limit
    // with a message that says so.
    if budget.has_room_for(footprint) || footprint > budget.limit() {
        return Ok(());
    }
    let _waiting = Waiting::enter(waiting, max_waiting, WHAT)?;
    let wait = async {
        loop {
            let released = budget.released();
            if budget.has_room_for(footprint) {
                return;
            }
            released.await;
        }
    };
    tokio::time::timeout_at(deadline.into(), wait)
        .await
        .map_err(|_| Shed::Deadline { what: WHAT })
}

/// Counts a waiting request, also when the client gives up and the wait is dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize, limit: usize, what: &'static str) -> Result<Self, Shed> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |waiting| {
                (waiting < limit).then_some(waiting + 1)
            })
            .map(|_| Self(count))
            .map_err(|waiting| Shed::QueueFull { what, waiting })
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn instance_slots_queue_a_bounded_number_then_shed() {
        let slots = InstanceSlots::new(1);
        let deadline = Instant::now() + Duration::from_secs(30);
        let held = slots.acquire(deadline).await.unwrap();
        assert_eq!(slots.in_use(), 1);
        // Ten may wait for the one slot; the eleventh is shed at once.
        let waiters: Vec<_> = (0..10)
            .map(|_| {
                let slots = slots.clone();
                tokio::spawn(async move { slots.acquire(deadline).await.map(drop) })
            })
            .collect();
        while slots.waiting.load(Ordering::Acquire) < 10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            slots.acquire(deadline).await.err(),
            Some(Shed::QueueFull {
                what: "an instance slot of the node",
                waiting: 10
            })
        );
        drop(held);
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap(), Ok(()));
        }
        assert_eq!(slots.in_use(), 0);
    }

    #[tokio::test]
    async fn a_wait_for_a_slot_ends_at_the_deadline() {
        let slots = InstanceSlots::new(1);
        let _held = slots.acquire(Instant::now()).await.unwrap();
        let shed = slots.acquire(Instant::now()).await.err();
        assert_eq!(
            shed,
            Some(Shed::Deadline {
                what: "an instance slot of the node"
            })
        );
        assert_eq!(slots.waiting.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn memory_room_waits_for_a_release() {
        let budget = MemoryBudget::new(100);
        let mut holder = crate::limits::InstanceLimiter::new(budget.clone(), 100);
        holder.try_charge(80).unwrap();
        let waiting = AtomicUsize::new(0);
        let deadline = Instant::now() + Duration::from_secs(30);
        assert_eq!(
            memory_room(&budget, 30, &waiting, 0, deadline).await,
            Err(Shed::QueueFull {
                what: "room in the replica's memory",
                waiting: 0
            })
        );
        let waiter = memory_room(&budget, 30, &waiting, 1, deadline);
        let release = async {
            tokio::task::yield_now().await;
            drop(holder);
        };
        let (room, ()) = tokio::join!(waiter, release);
        assert_eq!(room, Ok(()));
    }
}
