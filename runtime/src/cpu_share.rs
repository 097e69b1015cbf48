//! Fair CPU between revisions. A busy guest yields at every epoch tick, but a revision with 200
//! requests spinning would still fill the executor's run queue, and another revision's request
//! would wait behind all of them at each step: whichever guest is polled first after an epoch tick
//! runs until the next, and nearly every task in the queue is the busy revision's. So the
//! threads are shared out as turns: with `N` threads and `A` revisions that have requests in
//! their guests, each revision may run `max(1, N / A)` guests at once — all `N` when it is alone.
//! A guest takes a turn of its revision before each poll and gives it back when the poll ends; a
//! guest that finds no turn free goes to the back of the run queue and tries again when it comes
//! round, so the other requests of a busy revision queue behind their own, never in front of
//! another revision's.
//!
//! The turns are a counter, not a semaphore, on purpose: a semaphore wakes its next waiter from
//! the worker that released it, and tokio runs such a wake-up next (its LIFO slot), so one
//! revision's guests would hand the thread to each other ahead of everything queued.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

/// What the revisions of a node share: the threads, and how many revisions want them now.
#[derive(Debug)]
struct Threads {
    count: usize,
    active_revisions: AtomicUsize,
}

/// The running turns of one revision on this node.
#[derive(Debug)]
pub struct Turns {
    threads: Arc<Threads>,
    /// Requests of the revision inside their guest (running, yielded or waiting for I/O).
    guests: AtomicUsize,
    running: AtomicUsize,
}

impl Turns {
    fn new(threads: Arc<Threads>) -> Self {
        Self {
            threads,
            guests: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
        }
    }

    fn limit(&self) -> usize {
        let active = self.threads.active_revisions.load(Ordering::Acquire).max(1);
        (self.threads.count / active).max(1)
    }

    fn try_take(&self) -> bool {
        let limit = self.limit();
        self.running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |running| {
                (running < limit).then_some(running + 1)
            })
            .is_ok()
    }

    fn enter(&self) {
        if self.guests.fetch_add(1, Ordering::AcqRel) == 0 {
            self.threads.active_revisions.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn leave(&self) {
        if self.guests.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.threads.active_revisions.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn give_back(&self) {
        self.running.fetch_sub(1, Ordering::AcqRel);
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
                count: threads.max(1),
                active_revisions: AtomicUsize::new(0),
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

/// Polls `inner` only while holding a turn of its revision's share.
pub struct Fair<F> {
    inner: Pin<Box<F>>,
    share: CpuShare,
}

impl<F: Future> Fair<F> {
    pub fn new(inner: F, share: CpuShare) -> Self {
        share.enter();
        Self {
            inner: Box::pin(inner),
            share,
        }
    }
}

impl<F> Drop for Fair<F> {
    fn drop(&mut self) {
        self.share.leave();
    }
}

impl<F: Future> Future for Fair<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        if !this.share.try_take() {
            // Woken by itself while running, a tokio task goes to the back of the queue.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let polled = this.inner.as_mut().poll(cx);
        // Given back after every poll: a guest that yields lets the next request of its
        // revision run, and one waiting for I/O holds no turn.
        this.share.give_back();
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
    fn the_threads_are_split_between_the_revisions_that_run_guests() {
        let shares = CpuShares::new(4);
        let (a, b) = (shares.of(&Arc::from("a")), shares.of(&Arc::from("b")));
        let alone = Fair::new(std::future::pending::<()>(), a.clone());
        assert_eq!(a.limit(), 4, "a revision alone may use every thread");
        let beside = Fair::new(std::future::pending::<()>(), b.clone());
        let another_of_a = Fair::new(std::future::pending::<()>(), a.clone());
        assert_eq!((a.limit(), b.limit()), (2, 2), "two revisions: half each");
        drop(beside);
        assert_eq!(a.limit(), 4);
        drop((alone, another_of_a));
        assert_eq!(shares.threads.active_revisions.load(Ordering::SeqCst), 0);
    }

    /// Each poll of a busy step holds the thread for a while, as a guest between two epoch
    /// ticks does; with one turn, no two steps of the revision are ever inside a poll at once,
    /// though two threads could run them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_the_turns_of_a_share_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let share: CpuShare = CpuShares::new(1).of(&Arc::from("busy"));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (running, most) = (running.clone(), most.clone());
                tokio::spawn(Fair::new(
                    async move {
                        for _ in 0..5 {
                            let mut yielded = false;
                            std::future::poll_fn(|cx| {
                                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                                most.fetch_max(now, Ordering::SeqCst);
                                std::thread::sleep(std::time::Duration::from_millis(5));
                                running.fetch_sub(1, Ordering::SeqCst);
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
