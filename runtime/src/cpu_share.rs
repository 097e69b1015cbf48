//! Fair CPU between revisions, and room for everything else. A busy guest yields at every epoch
//! tick (10 ms), but 200 requests spinning in one revision would still take every thread: each
//! time a slice ends, the next task in the run queue is almost always another spinning guest, so
//! a request of another Service — or the gateway's own connection tasks — advances one place in
//! the queue per slice, and waits seconds.
//!
//! So guests that *burn* (a poll that ran a whole slice or close to it: CPU-bound code) take
//! turns: all revisions' burning guests together hold at most `N - 1` of the `N` guest threads
//! (one thread always cycles the queue, so short requests and connection tasks are never stuck
//! behind slices), split between the revisions that have burning guests: `max(1, (N - 1) / A)`
//! each. A burning guest that finds no turn free goes to the back of the run queue and tries
//! again when it comes round, so a busy revision's requests queue behind their own. Guests that
//! do not burn — short handlers, guests waiting for I/O — run without a turn.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A poll that ran this long is CPU-bound work (an epoch slice is 10 ms; a handler's step takes
/// microseconds).
const BURNING_POLL: Duration = Duration::from_millis(2);

/// What the revisions of a node share: the turns, and how many revisions have burning guests.
#[derive(Debug)]
struct Threads {
    turns: usize,
    burning_revisions: AtomicUsize,
}

/// The running turns of one revision on this node.
#[derive(Debug)]
pub struct Turns {
    threads: Arc<Threads>,
    /// Requests of the revision whose guest burns.
    burning: AtomicUsize,
    running: AtomicUsize,
}

impl Turns {
    fn new(threads: Arc<Threads>) -> Self {
        Self {
            threads,
            burning: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
        }
    }

    fn limit(&self) -> usize {
        let burning = self
            .threads
            .burning_revisions
            .load(Ordering::Acquire)
            .max(1);
        (self.threads.turns / burning).max(1)
    }

    fn try_take(&self) -> bool {
        let limit = self.limit();
        self.running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |running| {
                (running < limit).then_some(running + 1)
            })
            .is_ok()
    }

    fn give_back(&self) {
        self.running.fetch_sub(1, Ordering::AcqRel);
    }

    fn start_burning(&self) {
        if self.burning.fetch_add(1, Ordering::AcqRel) == 0 {
            self.threads
                .burning_revisions
                .fetch_add(1, Ordering::AcqRel);
        }
    }

    fn stop_burning(&self) {
        if self.burning.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.threads
                .burning_revisions
                .fetch_sub(1, Ordering::AcqRel);
        }
    }
}

pub type CpuShare = Arc<Turns>;

/// One [`CpuShare`] per revision name, kept while a replica of it lives.
#[derive(Debug)]
pub struct CpuShares {
    threads: Arc<Threads>,
    shares: Mutex<HashMap<Arc<str>, Weak<Turns>>>,
}

impl CpuShares {
    /// Shares of `threads` threads that run guests.
    pub fn new(threads: usize) -> Self {
        Self {
            threads: Arc::new(Threads {
                turns: threads.saturating_sub(1).max(1),
                burning_revisions: AtomicUsize::new(0),
            }),
            shares: Mutex::new(HashMap::new()),
        }
    }

    /// The share of `revision`, shared by all its replicas on the node.
    pub fn of(&self, revision: &Arc<str>) -> CpuShare {
        let mut shares = self
            .shares
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(share) = shares.get(revision).and_then(Weak::upgrade) {
            return share;
        }
        // Forget revisions that are gone, so the map never outgrows the live ones.
        shares.retain(|_, share| share.strong_count() > 0);
        let share = Arc::new(Turns::new(self.threads.clone()));
        shares.insert(revision.clone(), Arc::downgrade(&share));
        share
    }
}

/// Polls `inner`, taking a turn of its revision's share first once it has been seen to burn.
pub struct Fair<F> {
    inner: Pin<Box<F>>,
    share: CpuShare,
    burning: bool,
}

impl<F: Future> Fair<F> {
    pub fn new(inner: F, share: CpuShare) -> Self {
        Self {
            inner: Box::pin(inner),
            share,
            burning: false,
        }
    }
}

impl<F> Drop for Fair<F> {
    fn drop(&mut self) {
        if self.burning {
            self.share.stop_burning();
        }
    }
}

impl<F: Future> Future for Fair<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let turn = this.burning;
        if turn && !this.share.try_take() {
            // Woken by itself while running, a tokio task goes to the back of the queue.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let started = Instant::now();
        let polled = this.inner.as_mut().poll(cx);
        if turn {
            // Given back after every poll: the next burning request of the revision runs.
            this.share.give_back();
        } else if polled.is_pending() && started.elapsed() >= BURNING_POLL {
            this.burning = true;
            this.share.start_burning();
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_of_one_revision_share_one_share() {
        let shares = CpuShares::new(2);
        let a: Arc<str> = Arc::from("a");
        let first = shares.of(&a);
        let second = shares.of(&a);
        assert!(Arc::ptr_eq(&first, &second));
        assert!(!Arc::ptr_eq(&first, &shares.of(&Arc::from("b"))));
        drop((first, second));
        let _c = shares.of(&Arc::from("c"));
        assert_eq!(
            shares.shares.lock().unwrap().len(),
            1,
            "gone revisions forgotten"
        );
    }

    #[test]
    fn burning_revisions_split_all_threads_but_one() {
        let shares = CpuShares::new(5);
        let (a, b) = (shares.of(&Arc::from("a")), shares.of(&Arc::from("b")));
        assert_eq!(a.limit(), 4, "one of the five threads is left for the rest");
        a.start_burning();
        a.start_burning();
        assert_eq!(a.limit(), 4, "a revision burning alone may use the four");
        b.start_burning();
        assert_eq!(
            (a.limit(), b.limit()),
            (2, 2),
            "two burning revisions: half each"
        );
        b.stop_burning();
        assert_eq!(a.limit(), 4);
        a.stop_burning();
        a.stop_burning();
        assert_eq!(shares.threads.burning_revisions.load(Ordering::SeqCst), 0);
        assert_eq!(CpuShares::new(1).threads.turns, 1, "one thread: one turn");
    }

    #[tokio::test]
    async fn a_guest_that_burns_is_counted_until_it_ends() {
        let shares = CpuShares::new(2);
        let share = shares.of(&Arc::from("a"));
        let mut busy = Box::pin(Fair::new(
            std::future::poll_fn(|_| {
                std::thread::sleep(BURNING_POLL);
                Poll::<()>::Pending
            }),
            share.clone(),
        ));
        let mut quick = Box::pin(Fair::new(std::future::pending::<()>(), share.clone()));
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(quick.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            share.burning.load(Ordering::SeqCst),
            0,
            "a quick poll does not burn"
        );
        assert!(busy.as_mut().poll(&mut cx).is_pending());
        assert_eq!(share.burning.load(Ordering::SeqCst), 1);
        assert_eq!(shares.threads.burning_revisions.load(Ordering::SeqCst), 1);
        drop(busy);
        assert_eq!(shares.threads.burning_revisions.load(Ordering::SeqCst), 0);
    }

    /// Each poll of a busy step holds the thread for a while, as a guest between two epoch
    /// ticks does; with one turn (two threads, one left for the rest), no two steps of the
    /// revision are ever inside a poll at once once they are seen to burn, though two threads
    /// could run them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_the_turns_of_a_share_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let share: CpuShare = CpuShares::new(2).of(&Arc::from("busy"));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (running, most) = (running.clone(), most.clone());
                tokio::spawn(Fair::new(
                    async move {
                        // The first poll runs before the guest is known to burn: not counted.
                        let mut first = true;
                        for _ in 0..5 {
                            let mut yielded = false;
                            std::future::poll_fn(|cx| {
                                let counted = !std::mem::take(&mut first);
                                if counted {
                                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                                    most.fetch_max(now, Ordering::SeqCst);
                                }
                                std::thread::sleep(std::time::Duration::from_millis(5));
                                if counted {
                                    running.fetch_sub(1, Ordering::SeqCst);
                                }
                                if yielded {
                                    return Poll::Ready(());
                                }
                                yielded = true;
                                cx.waker().wake_by_ref();
                                Poll::Pending
                            })
                            .await;
                        }
                    },
                    share.clone(),
                ))
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
        assert_eq!(share.running.load(Ordering::SeqCst), 0);
    }
}
