//! Random sequences of acquire / release / cancel / add / remove against the throttler's
//! invariants: no backend ever holds more than `cc` leases, nobody waits while a backend has
//! room, waiters are served in arrival order, and demand equals queued plus leased requests.

mod common;

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use common::{Fake, throttler};
use proptest::prelude::*;
use wisp_activator::{Lease, ThrottleError};

#[derive(Clone, Debug)]
enum Op {
    Acquire,
    Release(usize),
    Cancel(usize),
    Add(u32),
    Remove(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Acquire),
        3 => any::<usize>().prop_map(Op::Release),
        1 => any::<usize>().prop_map(Op::Cancel),
        1 => (0..5u32).prop_map(Op::Add),
        1 => (0..5u32).prop_map(Op::Remove),
    ]
}

type Acquiring = Pin<Box<dyn Future<Output = Result<Lease<Fake>, ThrottleError>>>>;

proptest! {
    #[test]
    fn per_backend_in_flight_never_exceeds_cc(
        cc in 1..=4u32,
        ops in proptest::collection::vec((op(), proptest::bool::weighted(0.7)), 1..200),
    ) {
        // The deadline timer needs a runtime context; the futures are polled by hand.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let _context = runtime.enter();
        let (t, counts) = throttler(cc);
        let mut cx = Context::from_waker(Waker::noop());
        let mut backends: BTreeSet<u32> = BTreeSet::new();
        let mut pending: Vec<(u64, Acquiring)> = Vec::new();
        let mut leases: Vec<Lease<Fake>> = Vec::new();
        let mut arrivals = 0u64;

        // Without a poll after an op, a grant can sit unobserved in a waiter that is then
        // cancelled: its slot must come back.
        for (op, poll) in ops {
            match op {
                Op::Acquire => {
                    let t = t.clone();
                    let mut future: Acquiring = Box::pin(async move { t.acquire().await });
                    // The first poll is the request's arrival.
                    match future.as_mut().poll(&mut cx) {
                        Poll::Ready(result) => {
                            leases.push(result.map_err(|e| TestCaseError::fail(format!("{e}")))?);
                        }
                        Poll::Pending => pending.push((arrivals, future)),
                    }
                    arrivals += 1;
                }
                Op::Release(i) if !leases.is_empty() => {
                    leases.swap_remove(i % leases.len());
                }
                Op::Cancel(i) if !pending.is_empty() => {
                    drop(pending.remove(i % pending.len()));
                }
                Op::Add(id) => {
                    backends.insert(id);
                    t.update_backends(backends.iter().map(|id| Fake::new(*id)));
                }
                Op::Remove(id) => {
                    backends.remove(&id);
                    t.update_backends(backends.iter().map(|id| Fake::new(*id)));
                }
                Op::Release(_) | Op::Cancel(_) => {}
            }

            // The throttler's own counts hold whether or not the waiters have been polled.
            let stats = t.stats();
            for id in 0..5u32 {
                let n = t.in_flight(&id).unwrap_or(0);
                prop_assert!(n <= cc, "backend {id}: {n} > cc {cc}");
                if stats.queued > 0 && backends.contains(&id) {
                    prop_assert!(n >= cc, "backend {id} has room while requests wait");
                }
            }
            prop_assert!(stats.queued <= pending.len());
            prop_assert_eq!(counts.in_flight(), pending.len() + leases.len());
            if !poll {
                continue;
            }

            // Poll every waiter; those granted must be the oldest ones.
            let mut still = Vec::with_capacity(pending.len());
            let mut granted = Vec::new();
            for (seq, mut future) in pending.drain(..) {
                match future.as_mut().poll(&mut cx) {
                    Poll::Ready(result) => granted.push((seq, result)),
                    Poll::Pending => still.push((seq, future)),
                }
            }
            pending = still;
            let oldest_waiting = pending.iter().map(|(seq, _)| *seq).min();
            for (seq, result) in granted {
                let lease = result.map_err(|e| TestCaseError::fail(format!("{e}")))?;
                if let Some(oldest) = oldest_waiting {
                    prop_assert!(seq < oldest, "request {seq} overtook {oldest}");
                }
                leases.push(lease);
            }

            let on = |id: u32| leases.iter().filter(|l| *l.backend_id() == id).count() as u32;
            for id in 0..5u32 {
                match t.in_flight(&id) {
                    Some(n) => prop_assert_eq!(n, on(id)),
                    None => prop_assert_eq!(on(id), 0),
                }
            }
            for lease in &leases {
                prop_assert!(
                    backends.contains(lease.backend_id()) || !t.is_drained(lease.backend_id()),
                    "a lease on a removed backend keeps it draining"
                );
            }
            let stats = t.stats();
            prop_assert_eq!(stats.queued, pending.len());
            prop_assert_eq!(stats.in_flight as usize, leases.len());
            prop_assert_eq!(counts.in_flight(), pending.len() + leases.len());
        }

        drop(pending);
        drop(leases);
        prop_assert_eq!(counts.in_flight(), 0);
        prop_assert_eq!(t.stats().in_flight, 0);
        prop_assert_eq!(t.stats().draining, 0);
    }
}
