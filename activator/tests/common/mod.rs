//! A fake backend and counting demand hooks shared by the integration tests.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use wisp_activator::{Backend, DemandHooks, Throttler, ThrottlerConfig};

/// A backend that counts its own concurrent calls and remembers the highest count seen.
#[derive(Clone, Debug)]
pub struct Fake {
    pub id: u32,
    pub stats: Arc<FakeStats>,
}

#[derive(Debug, Default)]
pub struct FakeStats {
    pub current: AtomicU32,
    pub max: AtomicU32,
    pub calls: AtomicU32,
}

impl Fake {
    pub fn new(id: u32) -> Self {
        Self {
            id,
            stats: Arc::default(),
        }
    }

    pub fn max_concurrent(&self) -> u32 {
        self.stats.max.load(Ordering::SeqCst)
    }

    pub fn calls(&self) -> u32 {
        self.stats.calls.load(Ordering::SeqCst)
    }
}

impl Backend for Fake {
    type Id = u32;
    /// How many times to yield while "handling" the request.
    type Request = u32;
    /// The id of the backend that served it.
    type Response = u32;

    fn id(&self) -> u32 {
        self.id
    }

    async fn call(&self, yields: u32) -> u32 {
        let now = self.stats.current.fetch_add(1, Ordering::SeqCst) + 1;
        self.stats.max.fetch_max(now, Ordering::SeqCst);
        self.stats.calls.fetch_add(1, Ordering::SeqCst);
        // Leaves the count even when the call is dropped midway (an aborted client).
        let _leave = Leave(&self.stats.current);
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
        self.id
    }
}

struct Leave<'a>(&'a AtomicU32);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Demand hooks that count every event.
#[derive(Clone, Debug, Default)]
pub struct Counting(pub Arc<Counts>);

#[derive(Debug, Default)]
pub struct Counts {
    pub entered: AtomicUsize,
    pub left: AtomicUsize,
    pub pokes: AtomicUsize,
}

impl Counts {
    pub fn entered(&self) -> usize {
        self.entered.load(Ordering::SeqCst)
    }
    pub fn left(&self) -> usize {
        self.left.load(Ordering::SeqCst)
    }
    pub fn pokes(&self) -> usize {
        self.pokes.load(Ordering::SeqCst)
    }
    /// Requests the autoscaler currently sees as demand.
    pub fn in_flight(&self) -> usize {
        self.entered() - self.left()
    }
}

impl DemandHooks for Counting {
    fn request_entered(&self) {
        self.0.entered.fetch_add(1, Ordering::SeqCst);
    }
    fn request_left(&self) {
        self.0.left.fetch_add(1, Ordering::SeqCst);
    }
    fn poke(&self) {
        self.0.pokes.fetch_add(1, Ordering::SeqCst);
    }
}

pub fn config(cc: u32) -> ThrottlerConfig {
    ThrottlerConfig {
        container_concurrency: cc,
        seed: Some(42),
        ..ThrottlerConfig::default()
    }
}

pub fn throttler(cc: u32) -> (Throttler<Fake>, Arc<Counts>) {
    let hooks = Counting::default();
    let counts = hooks.0.clone();
    (Throttler::new(config(cc), hooks), counts)
}

/// Lets spawned tasks run until `done` holds (paused-time tests never sleep for real).
pub async fn settle(mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("condition not reached");
}
