//! One revision's throttler (Knative's `revisionThrottler`, reference §7.2): admits a request
//! when a backend has a free slot, otherwise parks it in a bounded FIFO queue until a slot
//! frees, a backend appears, or its deadline passes.
//!
//! Knative has a revision-wide breaker plus one breaker per pod, and a request that passes the
//! first but finds every pod busy (a race) loops back. Here both are one decision under the
//! revision's own lock: a request is admitted only together with the backend slot it will use,
//! and a freed slot is handed straight to the oldest waiter with its backend already reserved.
//! So that race cannot happen, waiters are served strictly in arrival order, and there is no
//! thundering herd. The lock is per revision (no contention across revisions), is a
//! `std::sync::Mutex` held for a few field updates, and is never held across an `.await`.
//!
//! Capacity is `cc × ready backends` (one activator takes every backend, see
//! [`crate::capacity`]); cc = 0 is open with a backend and closed without one.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::backend::Backend;
use crate::capacity::pod_capacity;
use crate::demand::DemandHooks;
use crate::error::ThrottleError;
use crate::policy::{LbPolicy, Rng, least_loaded};

/// Knative's revision breaker queue depth.
pub const DEFAULT_MAX_QUEUE: usize = 10_000;
/// Knative's default revision `timeoutSeconds`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// A throttler's settings at creation; all but the seed can change later.
#[derive(Clone, Debug)]
pub struct ThrottlerConfig {
    /// The revision's `containerConcurrency`; 0 means unlimited.
    pub container_concurrency: u32,
    /// Requests that may wait at once; one more gets [`ThrottleError::QueueFull`].
    pub max_queue: usize,
    /// Deadline for [`Throttler::acquire`] and [`Throttler::call`], queue time included.
    pub timeout: Duration,
    /// Whether requests go through the buffer and the per-backend breakers (see
    /// [`Throttler::set_activator_in_path`]). A new revision starts in the path, as in Knative.
    pub activator_in_path: bool,
    /// Seeds the power-of-two-choices randomness; `None` seeds from entropy.
    pub seed: Option<u64>,
}

impl Default for ThrottlerConfig {
    fn default() -> Self {
        Self {
            container_concurrency: 0,
            max_queue: DEFAULT_MAX_QUEUE,
            timeout: DEFAULT_TIMEOUT,
            activator_in_path: true,
            seed: None,
        }
    }
}

/// A point-in-time view for metrics and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottlerStats {
    /// Requests waiting in the queue.
    pub queued: usize,
    /// Backends taking new requests.
    pub backends: usize,
    /// Removed backends still finishing requests.
    pub draining: usize,
    /// Requests holding a lease, on active and draining backends.
    pub in_flight: u32,
    /// `cc × backends`, or open (`REVISION_MAX_CONCURRENCY`) for cc = 0 with a backend.
    pub capacity: u32,
    pub container_concurrency: u32,
    pub activator_in_path: bool,
}

/// A revision's throttler. Cheap to clone (shares the revision).
pub struct Throttler<B: Backend> {
    inner: Arc<Inner<B>>,
}

impl<B: Backend> Clone for Throttler<B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<B: Backend> {
    state: Mutex<State<B>>,
    hooks: Box<dyn DemandHooks>,
    timeout: Duration,
}

/// One backend as the throttler tracks it. `in_flight` and `draining` change only under the
/// revision lock; they are atomics so a lease can share the tracker after the backend is gone.
struct Tracker<B: Backend> {
    backend: B,
    id: B::Id,
    in_flight: AtomicU32,
    draining: AtomicBool,
}

impl<B: Backend> Tracker<B> {
    fn load(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

struct Waiter<B: Backend> {
    id: u64,
    grant: oneshot::Sender<Arc<Tracker<B>>>,
}

struct State<B: Backend> {
    cc: u32,
    in_path: bool,
    max_queue: usize,
    /// Backends taking new requests, in the order the caller gave them.
    active: Vec<Arc<Tracker<B>>>,
    /// Removed backends with requests still in flight.
    draining: Vec<Arc<Tracker<B>>>,
    waiters: VecDeque<Waiter<B>>,
    next_waiter: u64,
    /// Round-robin position: the index after the last pick.
    cursor: usize,
    rng: Rng,
    closed: bool,
}

enum Admission<B: Backend> {
    Now(Arc<Tracker<B>>),
    Queued(u64, oneshot::Receiver<Arc<Tracker<B>>>),
    Full(usize),
    Closed,
}

impl<B: Backend> State<B> {
    /// Reserves a slot on a backend chosen by the policy, or `None` if no backend has room.
    fn reserve(&mut self) -> Option<Arc<Tracker<B>>> {
        let active = &self.active;
        let load = |i: usize| active[i].load();
        let index = if self.in_path {
            LbPolicy::for_container_concurrency(self.cc).pick(
                active.len(),
                self.cc,
                load,
                &mut self.cursor,
                &mut self.rng,
            )
        } else {
            least_loaded(active.len(), load)
        }?;
        let tracker = active[index].clone();
        tracker.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(tracker)
    }

    fn admit(&mut self, poke: &mut bool) -> Admission<B> {
        if self.closed {
            return Admission::Closed;
        }
        // The first request of a cold start: no backend and nobody already waiting (who would
        // have poked). A burst at zero pokes once; a retry after everyone gave up pokes again.
        *poke = self.active.is_empty() && self.waiters.is_empty();
        // Only when nobody waits, so a newcomer never overtakes the queue. (Every change that
        // frees room dispatches to waiters at once, so with waiters there is normally no room;
        // this keeps FIFO even if that ever stops being true.)
        if self.waiters.is_empty()
            && let Some(tracker) = self.reserve()
        {
            return Admission::Now(tracker);
        }
        if self.waiters.len() >= self.max_queue {
            return Admission::Full(self.waiters.len());
        }
        let id = self.next_waiter;
        self.next_waiter += 1;
        let (grant, receiver) = oneshot::channel();
        self.waiters.push_back(Waiter { id, grant });
        Admission::Queued(id, receiver)
    }

    /// Hands free slots to waiters, oldest first.
    fn dispatch(&mut self) {
        while !self.waiters.is_empty() {
            let Some(tracker) = self.reserve() else {
                return;
            };
            let Some(waiter) = self.waiters.pop_front() else {
                self.unreserve(&tracker);
                return;
            };
            // The receiver is gone only if its future was dropped without deregistering,
            // which Waiting's Drop prevents; give the slot back and serve the next one anyway.
            if let Err(tracker) = waiter.grant.send(tracker) {
                self.unreserve(&tracker);
            }
        }
    }

    fn unreserve(&mut self, tracker: &Arc<Tracker<B>>) {
        let before = tracker.load();
        tracker
            .in_flight
            .store(before.saturating_sub(1), Ordering::Relaxed);
        if tracker.draining.load(Ordering::Relaxed) && before <= 1 {
            self.draining.retain(|t| !Arc::ptr_eq(t, tracker));
        }
    }

    /// A lease ended: free its slot and, unless its backend is draining, pass it on.
    fn release(&mut self, tracker: &Arc<Tracker<B>>) {
        self.unreserve(tracker);
        if !tracker.draining.load(Ordering::Relaxed) {
            self.dispatch();
        }
    }

    fn stats(&self) -> ThrottlerStats {
        let in_flight = self
            .active
            .iter()
            .chain(self.draining.iter())
            .map(|t| t.load())
            .sum();
        ThrottlerStats {
            queued: self.waiters.len(),
            backends: self.active.len(),
            draining: self.draining.len(),
            in_flight,
            capacity: pod_capacity(
                self.cc,
                u32::try_from(self.active.len()).unwrap_or(u32::MAX),
            ),
            container_concurrency: self.cc,
            activator_in_path: self.in_path,
        }
    }
}

/// A poisoned lock means a panic mid-update elsewhere; the state is counters and queues that
/// stay consistent between statements, so keep serving rather than cascade the panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<B: Backend> Throttler<B> {
    pub fn new(config: ThrottlerConfig, hooks: impl DemandHooks) -> Self {
        let rng = config.seed.map_or_else(Rng::from_entropy, Rng::seeded);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    cc: config.container_concurrency,
                    in_path: config.activator_in_path,
                    max_queue: config.max_queue,
                    active: Vec::new(),
                    draining: Vec::new(),
                    waiters: VecDeque::new(),
                    next_waiter: 0,
                    cursor: 0,
                    rng,
                    closed: false,
                }),
                hooks: Box::new(hooks),
                timeout: config.timeout,
            }),
        }
    }

    /// Waits for a backend slot for at most the configured timeout.
    pub async fn acquire(&self) -> Result<Lease<B>, ThrottleError> {
        self.acquire_until(Instant::now() + self.inner.timeout)
            .await
    }

    /// Waits for a backend slot until `deadline`. The request counts as demand from this call
    /// until the returned lease is dropped (or the call fails or is dropped).
    pub async fn acquire_until(&self, deadline: Instant) -> Result<Lease<B>, ThrottleError> {
        let entered = Entered::new(self.inner.clone());
        let mut poke = false;
        let admission = lock(&self.inner.state).admit(&mut poke);
        if poke {
            self.inner.hooks.poke();
        }
        let (id, receiver) = match admission {
            Admission::Now(tracker) => return Ok(Lease { tracker, entered }),
            Admission::Full(depth) => return Err(ThrottleError::QueueFull { depth }),
            Admission::Closed => return Err(ThrottleError::Closed),
            Admission::Queued(id, receiver) => (id, receiver),
        };
        let waiting = Waiting {
            inner: &self.inner,
            id,
            receiver: Some(receiver),
        };
        match tokio::time::timeout_at(deadline, waiting).await {
            Ok(Some(tracker)) => Ok(Lease { tracker, entered }),
            Ok(None) => Err(ThrottleError::Closed),
            Err(_elapsed) => Err(ThrottleError::Timeout),
        }
    }

    /// Acquires a slot and serves `request` on its backend; the configured timeout covers the
    /// queue time and the wait for the backend's response. For a response whose body streams
    /// after `call` returns, use [`Throttler::acquire`] and keep the lease with the body.
    pub async fn call(&self, request: B::Request) -> Result<B::Response, ThrottleError> {
        let deadline = Instant::now() + self.inner.timeout;
        let lease = self.acquire_until(deadline).await?;
        tokio::time::timeout_at(deadline, lease.backend().call(request))
            .await
            .map_err(|_elapsed| ThrottleError::Timeout)
    }

    /// Replaces the set of ready backends (in the order the load balancer should walk them).
    /// A backend whose id stays keeps its in-flight count; a removed one drains: it takes no
    /// new requests and its in-flight ones finish. New capacity goes to waiters at once.
    /// A backend that stays keeps the clone first given; duplicate ids after the first are
    /// ignored.
    pub fn update_backends(&self, backends: impl IntoIterator<Item = B>) {
        // Caller code (`id`) runs before the lock is taken.
        let incoming: Vec<(B::Id, B)> = backends.into_iter().map(|b| (b.id(), b)).collect();
        let mut state = lock(&self.inner.state);
        let mut previous = std::mem::take(&mut state.active);
        let mut next: Vec<Arc<Tracker<B>>> = Vec::with_capacity(incoming.len());
        for (id, backend) in incoming {
            if next.iter().any(|t| t.id == id) {
                continue;
            }
            let tracker = if let Some(i) = previous.iter().position(|t| t.id == id) {
                previous.swap_remove(i)
            } else if let Some(i) = state.draining.iter().position(|t| t.id == id) {
                // Back before it finished draining: it takes requests again.
                let tracker = state.draining.swap_remove(i);
                tracker.draining.store(false, Ordering::Relaxed);
                tracker
            } else {
                Arc::new(Tracker {
                    backend,
                    id,
                    in_flight: AtomicU32::new(0),
                    draining: AtomicBool::new(false),
                })
            };
            next.push(tracker);
        }
        for gone in previous {
            gone.draining.store(true, Ordering::Relaxed);
            if gone.load() > 0 {
                state.draining.push(gone);
            }
        }
        state.active = next;
        state.dispatch();
    }

    /// The revision's `containerConcurrency` changed (0 = unlimited).
    pub fn set_container_concurrency(&self, cc: u32) {
        let mut state = lock(&self.inner.state);
        state.cc = cc;
        state.dispatch();
    }

    /// Whether requests must go through the buffer (from the autoscaler's view: negative excess
    /// burst capacity, scaling to or from zero). When not in the path, a request goes straight
    /// to the least-loaded backend whatever its breaker says (the backend enforces its own
    /// concurrency, as queue-proxy does), and only waits here while there is no backend or
    /// earlier requests are still waiting.
    pub fn set_activator_in_path(&self, in_path: bool) {
        let mut state = lock(&self.inner.state);
        state.in_path = in_path;
        state.dispatch();
    }

    /// Changes the queue bound; requests already waiting stay.
    pub fn set_max_queue(&self, max_queue: usize) {
        lock(&self.inner.state).max_queue = max_queue;
    }

    /// The revision went away: waiting requests fail with [`ThrottleError::Closed`], new ones
    /// are refused. Leases already granted stay valid.
    pub fn shutdown(&self) {
        let mut state = lock(&self.inner.state);
        state.closed = true;
        // Dropping the senders wakes every waiter with `Closed`.
        state.waiters.clear();
    }

    /// In-flight leases on the backend `id`, if it is active or draining.
    pub fn in_flight(&self, id: &B::Id) -> Option<u32> {
        let state = lock(&self.inner.state);
        state
            .active
            .iter()
            .chain(state.draining.iter())
            .find(|t| t.id == *id)
            .map(|t| t.load())
    }

    /// Whether a removed backend has finished its in-flight requests (true for unknown ids).
    pub fn is_drained(&self, id: &B::Id) -> bool {
        !lock(&self.inner.state).draining.iter().any(|t| t.id == *id)
    }

    pub fn stats(&self) -> ThrottlerStats {
        lock(&self.inner.state).stats()
    }
}

/// Counts one request as demand until dropped.
struct Entered<B: Backend> {
    inner: Arc<Inner<B>>,
}

impl<B: Backend> Entered<B> {
    fn new(inner: Arc<Inner<B>>) -> Self {
        inner.hooks.request_entered();
        Self { inner }
    }
}

impl<B: Backend> Drop for Entered<B> {
    fn drop(&mut self) {
        self.inner.hooks.request_left();
    }
}

/// A slot on one backend. Dropping it frees the slot (handing it to the next waiter) and ends
/// the request's demand; keep it until the response body has been sent.
pub struct Lease<B: Backend> {
    tracker: Arc<Tracker<B>>,
    entered: Entered<B>,
}

impl<B: Backend> Lease<B> {
    pub fn backend(&self) -> &B {
        &self.tracker.backend
    }

    pub fn backend_id(&self) -> &B::Id {
        &self.tracker.id
    }
}

impl<B: Backend> Drop for Lease<B> {
    fn drop(&mut self) {
        lock(&self.entered.inner.state).release(&self.tracker);
        // `entered` drops after this, reporting the request as gone once its slot is free.
    }
}

impl<B: Backend> std::fmt::Debug for Lease<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("backend", &self.tracker.id)
            .finish_non_exhaustive()
    }
}

/// A queued request's wait for its grant. Dropping it (timeout, client gone) frees its place
/// in the queue, or gives back a slot granted in the meantime.
struct Waiting<'a, B: Backend> {
    inner: &'a Inner<B>,
    id: u64,
    receiver: Option<oneshot::Receiver<Arc<Tracker<B>>>>,
}

impl<B: Backend> Future for Waiting<'_, B> {
    /// `None`: the throttler shut down.
    type Output = Option<Arc<Tracker<B>>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(receiver) = this.receiver.as_mut() else {
            return Poll::Ready(None);
        };
        let granted = std::task::ready!(Pin::new(receiver).poll(cx));
        this.receiver = None;
        Poll::Ready(granted.ok())
    }
}

impl<B: Backend> Drop for Waiting<'_, B> {
    fn drop(&mut self) {
        let Some(mut receiver) = self.receiver.take() else {
            return;
        };
        let mut state = lock(&self.inner.state);
        // Grants are sent under this lock, so holding it, either we are still queued or the
        // grant (if any) is already in the channel.
        if let Some(position) = state.waiters.iter().position(|w| w.id == self.id) {
            state.waiters.remove(position);
        } else if let Ok(tracker) = receiver.try_recv() {
            state.release(&tracker);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demand::NoDemand;
    use futures::FutureExt;

    #[derive(Clone, Debug)]
    struct Fake(u32);

    impl Backend for Fake {
        type Id = u32;
        type Request = ();
        type Response = u32;
        fn id(&self) -> u32 {
            self.0
        }
        async fn call(&self, _request: ()) -> u32 {
            self.0
        }
    }

    fn throttler(cc: u32) -> Throttler<Fake> {
        Throttler::new(
            ThrottlerConfig {
                container_concurrency: cc,
                seed: Some(1),
                ..ThrottlerConfig::default()
            },
            NoDemand,
        )
    }

    #[tokio::test]
    async fn fast_path_admits_when_a_slot_is_free() {
        let t = throttler(1);
        t.update_backends([Fake(1)]);
        let lease = t.acquire().await.unwrap();
        assert_eq!(*lease.backend_id(), 1);
        assert_eq!(t.in_flight(&1), Some(1));
        drop(lease);
        assert_eq!(t.in_flight(&1), Some(0));
    }

    #[tokio::test]
    async fn capacity_is_cc_times_backends_and_open_for_zero() {
        let t = throttler(10);
        assert_eq!(t.stats().capacity, 0);
        t.update_backends([Fake(1), Fake(2), Fake(3)]);
        assert_eq!(t.stats().capacity, 30);
        t.set_container_concurrency(0);
        assert_eq!(
            t.stats().capacity,
            crate::capacity::REVISION_MAX_CONCURRENCY
        );
    }

    #[tokio::test]
    async fn a_backend_that_stays_keeps_its_count() {
        let t = throttler(2);
        t.update_backends([Fake(1)]);
        let _lease = t.acquire().await.unwrap();
        t.update_backends([Fake(2), Fake(1)]);
        assert_eq!(t.in_flight(&1), Some(1));
        assert_eq!(t.stats().backends, 2);
    }

    #[test]
    fn duplicate_ids_count_once_and_order_follows_the_caller() {
        let t = throttler(1);
        t.update_backends([Fake(3), Fake(1), Fake(3)]);
        assert_eq!(t.stats().backends, 2);
        let first = t.acquire().now_or_never();
        assert_eq!(first.and_then(Result::ok).map(|l| *l.backend_id()), Some(3));
    }

    #[tokio::test]
    async fn a_backend_back_while_draining_takes_requests_again() {
        let t = throttler(1);
        t.update_backends([Fake(1)]);
        let lease = t.acquire().await.unwrap();
        t.update_backends([]);
        assert!(!t.is_drained(&1));
        t.update_backends([Fake(1)]);
        assert_eq!(t.stats().draining, 0);
        drop(lease);
        let again = t.acquire().await.unwrap();
        assert_eq!(*again.backend_id(), 1);
    }

    #[tokio::test]
    async fn shutdown_fails_waiters_and_refuses_newcomers() {
        let t = throttler(1);
        let waiter = tokio::spawn({
            let t = t.clone();
            async move { t.acquire().await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        t.shutdown();
        assert_eq!(waiter.await.unwrap(), Err(ThrottleError::Closed));
        assert_eq!(t.acquire().await.map(|_| ()), Err(ThrottleError::Closed));
    }
}
