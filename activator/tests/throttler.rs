//! The throttler's behaviour through its public API, with a fake backend and paused time.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Fake, config, settle, throttler};
use futures::FutureExt;
use wisp_activator::{Backend, ThrottleError, Throttler, ThrottlerConfig};

#[tokio::test(start_paused = true)]
async fn buffered_requests_go_out_in_arrival_order_when_capacity_appears() {
    let (t, _) = throttler(1);
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (task_t, order) = (t.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let lease = task_t.acquire().await.unwrap();
            order.lock().unwrap().push(i);
            tokio::time::sleep(Duration::from_millis(1)).await;
            drop(lease);
        }));
        // Each request is queued before the next arrives.
        settle(|| t.stats().queued == i + 1).await;
    }
    t.update_backends([Fake::new(1)]);
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn a_revision_at_zero_buffers_and_the_first_request_pokes_once() {
    let (t, counts) = throttler(0);
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let t = t.clone();
            tokio::spawn(async move { t.call(3).await })
        })
        .collect();
    settle(|| t.stats().queued == 5).await;
    assert_eq!(counts.pokes(), 1, "one poke per stretch at zero");
    assert_eq!(counts.in_flight(), 5, "queued requests count as demand");

    t.update_backends([Fake::new(7)]);
    for task in tasks {
        assert_eq!(task.await.unwrap(), Ok(7));
    }
    assert_eq!(counts.in_flight(), 0);
    assert_eq!(counts.pokes(), 1, "served requests do not poke");

    // Back at zero: the next request pokes again.
    t.update_backends([]);
    let waiting = tokio::spawn({
        let t = t.clone();
        async move { t.call(0).await }
    });
    settle(|| t.stats().queued == 1).await;
    assert_eq!(counts.pokes(), 2);
    t.update_backends([Fake::new(8)]);
    assert_eq!(waiting.await.unwrap(), Ok(8));
}

#[tokio::test(start_paused = true)]
async fn a_request_at_zero_after_everyone_gave_up_pokes_again() {
    let hooks = common::Counting::default();
    let counts = hooks.0.clone();
    let t: Throttler<Fake> = Throttler::new(
        ThrottlerConfig {
            timeout: Duration::from_secs(1),
            ..config(0)
        },
        hooks,
    );
    assert_eq!(t.call(0).await, Err(ThrottleError::Timeout));
    assert_eq!(counts.pokes(), 1);
    assert_eq!(t.call(0).await, Err(ThrottleError::Timeout));
    assert_eq!(
        counts.pokes(),
        2,
        "the autoscaler may have given up; ask again"
    );
}

#[tokio::test(start_paused = true)]
async fn adding_backends_releases_waiters() {
    let (t, _) = throttler(2);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let t = t.clone();
            tokio::spawn(async move {
                let lease = t.acquire().await.unwrap();
                let id = *lease.backend_id();
                // Hold the slot until the test is over.
                std::future::pending::<()>().await;
                drop(lease);
                id
            })
        })
        .collect();
    settle(|| t.stats().queued == 4).await;
    t.update_backends([Fake::new(1)]);
    settle(|| t.stats().queued == 2).await;
    assert_eq!(t.in_flight(&1), Some(2));
    t.update_backends([Fake::new(1), Fake::new(2)]);
    settle(|| t.stats().queued == 0).await;
    assert_eq!(t.in_flight(&2), Some(2));
    for task in tasks {
        task.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_refuses_with_queue_full() {
    let t: Throttler<Fake> = Throttler::new(
        ThrottlerConfig {
            max_queue: 2,
            ..config(1)
        },
        common::Counting::default(),
    );
    let _queued: Vec<_> = (0..2)
        .map(|_| {
            let t = t.clone();
            tokio::spawn(async move { t.acquire().await.map(|_| ()) })
        })
        .collect();
    settle(|| t.stats().queued == 2).await;
    assert_eq!(
        t.acquire().await.map(|_| ()),
        Err(ThrottleError::QueueFull { depth: 2 })
    );
}

#[tokio::test(start_paused = true)]
async fn waiting_past_the_timeout_fails_with_timeout_and_leaves_the_queue() {
    let hooks = common::Counting::default();
    let counts = hooks.0.clone();
    let t: Throttler<Fake> = Throttler::new(
        ThrottlerConfig {
            timeout: Duration::from_secs(5),
            ..config(1)
        },
        hooks,
    );
    let started = tokio::time::Instant::now();
    assert_eq!(t.call(0).await, Err(ThrottleError::Timeout));
    assert_eq!(started.elapsed(), Duration::from_secs(5), "paused clock");
    assert_eq!(t.stats().queued, 0);
    assert_eq!(
        counts.in_flight(),
        0,
        "a timed-out request is no longer demand"
    );
}

#[tokio::test(start_paused = true)]
async fn the_timeout_covers_queue_time_not_just_the_call() {
    let t: Throttler<Fake> = Throttler::new(
        ThrottlerConfig {
            timeout: Duration::from_secs(5),
            ..config(1)
        },
        common::Counting::default(),
    );
    let waiter = tokio::spawn({
        let t = t.clone();
        async move { t.call(0).await }
    });
    // Capacity appears after 3 s of the 5 s: in time.
    tokio::time::sleep(Duration::from_secs(3)).await;
    t.update_backends([Fake::new(1)]);
    assert_eq!(waiter.await.unwrap(), Ok(1));
}

#[tokio::test(start_paused = true)]
async fn a_request_dropped_while_queued_frees_its_place() {
    let (t, counts) = throttler(1);
    t.set_max_queue(1);
    // Polled once: it queues; then its future is dropped (the client went away).
    assert!(t.acquire().now_or_never().is_none());
    assert_eq!(t.stats().queued, 0);
    assert_eq!(counts.in_flight(), 0);
    let waiter = tokio::spawn({
        let t = t.clone();
        async move { t.call(0).await }
    });
    settle(|| t.stats().queued == 1).await;
    waiter.abort();
    assert!(waiter.await.unwrap_err().is_cancelled());
    assert_eq!(t.stats().queued, 0);
    // The place is free again, and a backend's slot is not lost to the cancelled request.
    let next = tokio::spawn({
        let t = t.clone();
        async move { t.call(0).await }
    });
    settle(|| t.stats().queued == 1).await;
    t.update_backends([Fake::new(1)]);
    assert_eq!(next.await.unwrap(), Ok(1));
    assert_eq!(t.in_flight(&1), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn container_concurrency_one_is_never_exceeded_under_parallel_load() {
    let (t, counts) = throttler(1);
    let backends: Vec<_> = (1..=4).map(Fake::new).collect();
    t.update_backends(backends[..1].iter().cloned());
    let tasks: Vec<_> = (0..400)
        .map(|_| {
            let t = t.clone();
            tokio::spawn(async move { t.call(5).await })
        })
        .collect();
    // More backends arrive while requests are in flight.
    tokio::task::yield_now().await;
    t.update_backends(backends.iter().cloned());
    for task in tasks {
        assert!(task.await.unwrap().is_ok());
    }
    for backend in &backends {
        assert!(backend.max_concurrent() <= 1, "backend {}", backend.id);
    }
    let calls: u32 = backends.iter().map(Fake::calls).sum();
    assert_eq!(calls, 400);
    assert_eq!(counts.in_flight(), 0);
    assert_eq!(t.stats().in_flight, 0);
}

#[tokio::test]
async fn power_of_two_choices_sends_to_the_less_loaded_backend() {
    let (t, _) = throttler(0);
    t.update_backends([Fake::new(1), Fake::new(2)]);
    let first = t.acquire().await.unwrap();
    let second = t.acquire().await.unwrap();
    assert_ne!(
        first.backend_id(),
        second.backend_id(),
        "1-0 goes to the idle one"
    );
    // Keep adding: with two backends p2c compares both, so loads never differ by more than 1.
    let mut held = vec![first, second];
    for _ in 0..20 {
        held.push(t.acquire().await.unwrap());
        let (a, b) = (t.in_flight(&1).unwrap(), t.in_flight(&2).unwrap());
        assert!(a.abs_diff(b) <= 1, "{a} vs {b}");
    }
}

#[tokio::test]
async fn first_available_fills_backends_in_order() {
    let (t, _) = throttler(2);
    t.update_backends([Fake::new(1), Fake::new(2), Fake::new(3)]);
    let a = t.acquire().await.unwrap();
    let b = t.acquire().await.unwrap();
    let c = t.acquire().await.unwrap();
    assert_eq!(
        [*a.backend_id(), *b.backend_id(), *c.backend_id()],
        [1, 1, 2]
    );
    drop(a);
    assert_eq!(*t.acquire().await.unwrap().backend_id(), 1, "first again");
}

#[tokio::test]
async fn round_robin_continues_after_the_last_pick() {
    let (t, _) = throttler(4);
    t.update_backends([Fake::new(1), Fake::new(2), Fake::new(3)]);
    let mut order = Vec::new();
    for _ in 0..7 {
        let lease = t.acquire().await.unwrap();
        order.push(*lease.backend_id());
    }
    assert_eq!(order, [1, 2, 3, 1, 2, 3, 1]);
}

#[tokio::test(start_paused = true)]
async fn a_removed_backend_takes_no_new_requests_and_finishes_its_own() {
    let (t, _) = throttler(1);
    let (one, two) = (Fake::new(1), Fake::new(2));
    t.update_backends([one.clone(), two.clone()]);
    let on_one = t.acquire().await.unwrap();
    assert_eq!(*on_one.backend_id(), 1);
    t.update_backends([two.clone()]);
    assert_eq!(t.stats().draining, 1);
    assert!(!t.is_drained(&1));

    // New work goes to backend 2 only, even once backend 1's slot frees.
    let on_two = t.acquire().await.unwrap();
    assert_eq!(*on_two.backend_id(), 2);
    let queued = tokio::spawn({
        let t = t.clone();
        async move { *t.acquire().await.unwrap().backend_id() }
    });
    settle(|| t.stats().queued == 1).await;

    // The draining backend's request still runs to completion.
    assert_eq!(on_one.backend().call(0).await, 1);
    drop(on_one);
    assert!(t.is_drained(&1));
    assert_eq!(t.in_flight(&1), None);
    assert_eq!(t.stats().queued, 1, "backend 1's freed slot is not reused");
    drop(on_two);
    assert_eq!(queued.await.unwrap(), 2);
    assert_eq!(one.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn out_of_the_path_requests_go_straight_to_the_least_loaded_backend() {
    let (t, _) = throttler(1);
    t.set_activator_in_path(false);
    t.update_backends([Fake::new(1), Fake::new(2)]);
    let leases: Vec<_> = futures::future::join_all((0..4).map(|_| t.acquire()))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    // Beyond cc = 1 per backend: the backend enforces its own limit when the activator is
    // out of the path; the spread stays even.
    assert_eq!((t.in_flight(&1), t.in_flight(&2)), (Some(2), Some(2)));
    assert_eq!(t.stats().queued, 0);
    drop(leases);

    // With no backend at all, even an out-of-path request waits for one.
    t.update_backends([]);
    let waiter = tokio::spawn({
        let t = t.clone();
        async move { t.call(0).await }
    });
    settle(|| t.stats().queued == 1).await;
    t.update_backends([Fake::new(3)]);
    assert_eq!(waiter.await.unwrap(), Ok(3));
}

#[tokio::test(start_paused = true)]
async fn leaving_the_path_releases_requests_held_by_the_breakers() {
    let (t, _) = throttler(1);
    t.update_backends([Fake::new(1)]);
    let held = t.acquire().await.unwrap();
    let waiter = tokio::spawn({
        let t = t.clone();
        async move { t.call(0).await }
    });
    settle(|| t.stats().queued == 1).await;
    t.set_activator_in_path(false);
    assert_eq!(waiter.await.unwrap(), Ok(1));
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn raising_container_concurrency_releases_waiters() {
    let (t, _) = throttler(1);
    t.update_backends([Fake::new(1)]);
    let _held = t.acquire().await.unwrap();
    let waiter = tokio::spawn({
        let t = t.clone();
        async move { t.call(0).await }
    });
    settle(|| t.stats().queued == 1).await;
    t.set_container_concurrency(2);
    assert_eq!(waiter.await.unwrap(), Ok(1));
}

/// Many threads, short deadlines, aborted clients and backend churn at once; only end states
/// are checked (nothing about how long anything took).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn churn_with_timeouts_and_aborts_leaks_no_slot_and_no_demand() {
    let (t, counts) = throttler(2);
    let backends: Vec<_> = (1..=3).map(Fake::new).collect();
    t.update_backends(backends[..1].iter().cloned());
    let tasks: Vec<_> = (0..600u32)
        .map(|i| {
            let t = t.clone();
            tokio::spawn(async move {
                let deadline =
                    tokio::time::Instant::now() + Duration::from_micros(u64::from(i % 7) * 300);
                match t.acquire_until(deadline).await {
                    Ok(lease) => {
                        lease.backend().call(i % 4).await;
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            })
        })
        .collect();
    for round in 0..20usize {
        t.update_backends(backends[..1 + round % 3].iter().cloned());
        tokio::task::yield_now().await;
    }
    t.update_backends(backends.iter().cloned());
    for (i, task) in tasks.into_iter().enumerate() {
        if i % 5 == 0 {
            task.abort();
        }
        match task.await {
            Ok(Ok(())) | Ok(Err(ThrottleError::Timeout)) => {}
            Err(join) => assert!(join.is_cancelled()),
            Ok(Err(other)) => panic!("unexpected {other}"),
        }
    }
    for backend in &backends {
        assert!(backend.max_concurrent() <= 2, "backend {}", backend.id);
    }
    let stats = t.stats();
    assert_eq!((stats.queued, stats.in_flight, stats.draining), (0, 0, 0));
    assert_eq!(counts.in_flight(), 0);
}
