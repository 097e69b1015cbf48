//! Instances a replica keeps between requests, when its revision chose reuse
//! (`wisp.dev/max-instance-reuse-count` above 1): a WASIp2 instance then serves requests one
//! at a time, in turn, until it has served its count, faulted, grown too large or sat idle too
//! long. Without that choice every request gets a fresh instance and nothing here runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::Proxy;
use wisp_api::instance_reuse::InstanceReuse;

use crate::host::{Host, MAX_RESOURCES};

/// `wasmtime serve`'s default idle timeout, for both worlds.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(1);

/// How a WASIp2 revision's instances are reused; `None` from [`ReusePolicy::p2`] means a
/// fresh instance per request, the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReusePolicy {
    pub max_requests: u32,
    pub idle_timeout: Duration,
}

impl ReusePolicy {
    pub(crate) fn p2(settings: &InstanceReuse) -> Option<Self> {
        let max_requests = settings.max_requests.map_or(1, |count| count.get());
        (max_requests > 1).then(|| Self {
            max_requests,
            idle_timeout: settings.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT),
        })
    }
}

/// One instance and what it holds for its whole life: its store (with the memory charged to
/// the replica) and an instance slot of the node, given back after the store is gone (fields
/// drop in order).
pub(crate) struct Live {
    pub store: Store<Host>,
    pub proxy: Proxy,
    /// Requests it has served, the one running now included.
    pub served: u32,
    pub slot: OwnedSemaphorePermit,
}

/// Why an instance is not kept for another request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retire {
    /// It served its `max-instance-reuse-count`.
    Count,
    /// It holds more than three quarters of one instance's memory cap: linear memory never
    /// shrinks, so the next request could fail where a fresh instance would not.
    Memory,
    /// It kept more than half the resource handles a request may hold.
    Handles,
    /// Another request waits for the memory or node slot it holds.
    Pressure,
    /// The replica is stopping.
    Closed,
}

/// A replica's idle instances, warmest first out.
pub(crate) struct SerialPool {
    policy: ReusePolicy,
    per_instance_memory: u64,
    state: Mutex<PoolState>,
    closed: AtomicBool,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Idle>,
    reaper_running: bool,
}

struct Idle {
    live: Live,
    since: Instant,
}

impl SerialPool {
    pub(crate) fn new(policy: ReusePolicy, per_instance_memory: u64) -> Arc<Self> {
        Arc::new(Self {
            policy,
            per_instance_memory,
            state: Mutex::new(PoolState::default()),
            closed: AtomicBool::new(false),
        })
    }

    /// The most recently used idle instance, ready for one more request.
    pub(crate) fn checkout(&self) -> Option<Live> {
        let mut live = self.lock().idle.pop()?.live;
        live.served += 1;
        Some(live)
    }

    /// Takes an instance back after a request it answered cleanly, unless it should retire;
    /// says which when it does (the instance is then dropped, giving back its memory and slot).
    pub(crate) fn checkin(self: &Arc<Self>, mut live: Live, pressure: bool) -> Option<Retire> {
        if let Some(reason) = self.retire_reason(&mut live, pressure) {
            return Some(reason);
        }
        let mut state = self.lock();
        state.idle.push(Idle {
            live,
            since: Instant::now(),
        });
        if !state.reaper_running {
            state.reaper_running = true;
            tokio::spawn(reap_idle(Arc::downgrade(self), self.policy.idle_timeout));
        }
        None
    }

    fn retire_reason(&self, live: &mut Live, pressure: bool) -> Option<Retire> {
        if self.closed.load(Ordering::Acquire) {
            Some(Retire::Closed)
        } else if live.served >= self.policy.max_requests {
            Some(Retire::Count)
        } else if pressure {
            Some(Retire::Pressure)
        } else if live.store.data().limiter.charged() > self.per_instance_memory / 4 * 3 {
            Some(Retire::Memory)
        } else if live.store.data_mut().resources_held() > MAX_RESOURCES / 2 {
            Some(Retire::Handles)
        } else {
            None
        }
    }

    /// Instances waiting for a request now.
    pub(crate) fn idle(&self) -> usize {
        self.lock().idle.len()
    }

    /// Drops every idle instance and keeps none from now on: the replica is stopping.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let idle = std::mem::take(&mut self.lock().idle);
        drop(idle);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // The state is a list and a flag, consistent after every statement: a panic elsewhere
        // while it was held leaves nothing half-done.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Removes the instances idle since `cutoff` or earlier; returns when the next one expires,
    /// or `None` (and marks the reaper stopped) when none is left.
    fn expire(&self, now: Instant, idle_timeout: Duration) -> Option<Instant> {
        let mut state = self.lock();
        let (expired, kept): (Vec<Idle>, Vec<Idle>) = std::mem::take(&mut state.idle)
            .into_iter()
            .partition(|idle| idle.since + idle_timeout <= now);
        state.idle = kept;
        let next = state.idle.iter().map(|idle| idle.since).min();
        if next.is_none() {
            state.reaper_running = false;
        }
        drop(state);
        drop(expired);
        next.map(|since| since + idle_timeout)
    }
}

/// Drops instances once they have been idle for the timeout; ends when none is left (the next
/// checkin starts another) or the pool is gone.
async fn reap_idle(pool: Weak<SerialPool>, idle_timeout: Duration) {
    let mut wake = Instant::now() + idle_timeout;
    loop {
        tokio::time::sleep_until(wake.into()).await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        match pool.expire(Instant::now(), idle_timeout) {
            Some(next) => wake = next,
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    #[test]
    fn wasip2_reuses_only_when_asked_for_more_than_one_request() {
        assert_eq!(ReusePolicy::p2(&InstanceReuse::default()), None);
        let one = InstanceReuse {
            max_requests: NonZeroU32::new(1),
            ..InstanceReuse::default()
        };
        assert_eq!(ReusePolicy::p2(&one), None);
        let many = InstanceReuse {
            max_requests: NonZeroU32::new(128),
            max_concurrent: NonZeroU32::new(16),
            idle_timeout: None,
        };
        assert_eq!(
            ReusePolicy::p2(&many),
            Some(ReusePolicy {
                max_requests: 128,
                idle_timeout: DEFAULT_IDLE_TIMEOUT
            })
        );
    }
}
