//! WASIp3 components (`wasi:http/handler@0.3`): each instance is driven by a task of its own,
//! which runs the store's event loop (`run_concurrent`) for as long as the instance lives. The
//! loop must keep running after a handler returns its response, because a WASIp3 body moves
//! through the store; and one instance may serve several requests at once, each a task of the
//! async component model. Requests reach a worker through its queue; the replica picks the
//! worker (see [`P3Pool::pick`]).
//!
//! What an instance may do follows `wasmtime serve`'s defaults unless the revision says
//! otherwise: 128 requests in its life, 16 at once, kept 1 s when idle. A trap ends the instance
//! and every request on it; a request past its deadline gets 504 and the instance takes no more
//! requests (a guest task cannot be cancelled), ending once the others finish.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::sync::{Notify, OwnedSemaphorePermit, mpsc, oneshot};
use wasmtime::Store;
use wasmtime::component::Accessor;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p3::bindings::{Service, ServicePre};
use wisp_api::instance_reuse::InstanceReuse;

use crate::host::Host;
use crate::pool::DEFAULT_IDLE_TIMEOUT;

/// `wasmtime serve`'s defaults for WASIp3 instances.
const DEFAULT_MAX_REQUESTS: u32 = 128;
const DEFAULT_MAX_CONCURRENT: u32 = 16;

/// How a WASIp3 revision's instances are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct P3Policy {
    pub max_requests: u32,
    pub max_concurrent: u32,
    pub idle_timeout: Duration,
}

impl P3Policy {
    pub(crate) fn new(settings: &InstanceReuse) -> Self {
        let max_requests = settings
            .max_requests
            .map_or(DEFAULT_MAX_REQUESTS, |count| count.get());
        Self {
            max_requests,
            max_concurrent: settings
                .max_concurrent
                .map_or(DEFAULT_MAX_CONCURRENT, |count| count.get())
                .min(max_requests),
            idle_timeout: settings.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT),
        }
    }
}

/// The response body type leaving a replica.
pub(crate) type OutBody = http_body_util::combinators::UnsyncBoxBody<Bytes, crate::BodyError>;

/// What a request hears back from the worker that took it.
pub(crate) enum P3Head {
    Response(Response<OutBody>),
    /// The guest answered with an error code instead of a response.
    GuestError(String),
    /// Its deadline passed before the guest answered.
    TimedOut,
    /// The instance failed (trap, or could not start): the error and any memory refusal.
    Failed(Arc<wasmtime::Error>, Option<crate::MemoryRefusal>),
}

/// One request handed to a worker. `guard` is whatever the request holds while it runs (its
/// concurrency slot), dropped when the guest is done with it, body included.
pub(crate) struct Job<G> {
    pub request: Request<RequestBody>,
    pub head: oneshot::Sender<P3Head>,
    pub deadline: Instant,
    pub guard: G,
}

pub(crate) type RequestBody =
    http_body_util::combinators::UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// A worker's counts, changed only under its lock so a request is never sent to a worker that
/// has just decided to stop.
#[derive(Debug, Default)]
struct WorkerState {
    accepting: bool,
    in_flight: u32,
    assigned: u32,
    /// Requests sent to it that have not had their response head yet.
    unanswered: u32,
}

/// The replica's handle on one instance's task.
pub(crate) struct Worker<G> {
    state: Mutex<WorkerState>,
    jobs: Mutex<Option<mpsc::UnboundedSender<Box<Job<G>>>>>,
    /// The task is parked: every request it holds waits on I/O, so one more may share it.
    parked: AtomicBool,
}

impl<G> Worker<G> {
    fn lock(&self) -> MutexGuard<'_, WorkerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `job` if the worker may take it now; gives it back otherwise.
    fn try_send(&self, job: Box<Job<G>>, policy: &P3Policy) -> Result<(), Box<Job<G>>> {
        let mut state = self.lock();
        if !state.accepting
            || state.in_flight >= policy.max_concurrent
            || state.assigned >= policy.max_requests
        {
            return Err(job);
        }
        let jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = jobs.as_ref() else {
            return Err(job);
        };
        match sender.send(job) {
            Ok(()) => {
                state.in_flight += 1;
                state.assigned += 1;
                state.unanswered += 1;
                Ok(())
            }
            Err(mpsc::error::SendError(job)) => Err(job),
        }
    }

    /// Whether it takes requests, how many it holds, and whether all of those have their
    /// response head (only their bodies are still moving).
    fn load(&self) -> (bool, u32, bool) {
        let state = self.lock();
        (state.accepting, state.in_flight, state.unanswered == 0)
    }

    fn stop_accepting(&self) {
        self.lock().accepting = false;
    }

    fn answered(&self) {
        let mut state = self.lock();
        state.unanswered = state.unanswered.saturating_sub(1);
    }

    /// It takes no more requests and has answered all it has: it ends once their bodies are
    /// out, giving back its memory.
    fn about_to_end(&self) -> bool {
        let state = self.lock();
        !state.accepting && state.unanswered == 0
    }
}

/// How much a worker is preferred for the next request: (rank, requests held), lower first.
type Preference = (u8, u32);

/// A replica's WASIp3 instances.
pub(crate) struct P3Pool<G> {
    pub policy: P3Policy,
    workers: Mutex<Vec<Arc<Worker<G>>>>,
    closed: AtomicBool,
    /// Told whenever an instance ends.
    ended: Notify,
}

/// Whether a request reuses an instance or needs a new one.
pub(crate) enum Pick<G> {
    /// Sent to a running instance.
    Sent,
    /// No instance can take it now: start one (or wait for one).
    NeedInstance(Box<Job<G>>),
}

impl<G: Send + 'static> P3Pool<G> {
    pub(crate) fn new(policy: P3Policy) -> Arc<Self> {
        Arc::new(Self {
            policy,
            workers: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            ended: Notify::new(),
        })
    }

    fn workers(&self) -> MutexGuard<'_, Vec<Arc<Worker<G>>>> {
        self.workers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends the request to an instance that is idle, or whose requests all wait on I/O (as
    /// `wasmtime serve` stacks requests: CPU-bound ones spread over instances); with
    /// `any_room`, to the least loaded instance with room when no new one can start now.
    pub(crate) fn pick(&self, mut job: Box<Job<G>>, any_room: bool) -> Pick<G> {
        // One pass, no allocation: this runs for every request. An idle instance takes the
        // request at once; otherwise the best other candidate is tried at the end.
        let workers = self.workers();
        // (rank, requests held) of the best candidate so far; lower is better.
        let mut best: Option<(Preference, &Arc<Worker<G>>)> = None;
        for worker in workers.iter() {
            let (accepting, in_flight, all_answered) = worker.load();
            if !accepting || in_flight >= self.policy.max_concurrent {
                continue;
            }
            let rank = if in_flight == 0 {
                match worker.try_send(job, &self.policy) {
                    Ok(()) => return Pick::Sent,
                    Err(back) => {
                        job = back;
                        continue;
                    }
                }
            } else if all_answered || worker.parked.load(Ordering::Acquire) {
                1
            } else if any_room {
                2
            } else {
                continue;
            };
            if best.is_none_or(|(key, _)| (rank, in_flight) < key) {
                best = Some(((rank, in_flight), worker));
            }
        }
        if let Some((_, worker)) = best {
            match worker.try_send(job, &self.policy) {
                Ok(()) => return Pick::Sent,
                Err(back) => job = back,
            }
        }
        Pick::NeedInstance(job)
    }

    /// Instances alive now (idle or busy).
    pub(crate) fn instances(&self) -> usize {
        self.workers().len()
    }

    /// Instances with no request now.
    pub(crate) fn idle(&self) -> usize {
        self.workers()
            .iter()
            .filter(|worker| matches!(worker.load(), (true, 0, _)))
            .count()
    }

    /// Takes no more requests: idle instances end at once, busy ones when their requests end.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        for worker in self.workers().iter() {
            worker.stop_accepting();
            worker
                .jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
        }
    }

    fn remove(&self, gone: &Arc<Worker<G>>) {
        self.workers().retain(|worker| !Arc::ptr_eq(worker, gone));
        self.ended.notify_waiters();
    }

    /// Waits (until `deadline` at most) for the instances that are about to end: a new
    /// instance started beside one retired for its size would find the replica's memory still
    /// held by it.
    pub(crate) async fn wait_for_ending(&self, deadline: Instant) {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if !self.workers().iter().any(|worker| worker.about_to_end()) {
                return;
            }
            if tokio::time::timeout_at(deadline.into(), ended)
                .await
                .is_err()
            {
                return;
            }
        }
    }

    /// Starts an instance's task for `first` (whose node slot and memory room the caller
    /// secured): instantiates `pre` in `store`, then serves `first` and whatever else the pool
    /// sends it. Returns the future to spawn (the caller wraps it for CPU fairness).
    pub(crate) fn start(
        self: &Arc<Self>,
        pre: ServicePre<Host>,
        store: Store<Host>,
        slot: OwnedSemaphorePermit,
        first: Box<Job<G>>,
        on_instantiated: impl FnOnce(&Store<Host>) + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (sender, receiver) = mpsc::unbounded_channel();
        let worker = Arc::new(Worker {
            state: Mutex::new(WorkerState {
                accepting: !self.closed.load(Ordering::Acquire),
                in_flight: 1,
                assigned: 1,
                unanswered: 1,
            }),
            jobs: Mutex::new(Some(sender)),
            parked: AtomicBool::new(false),
        });
        if !self.closed.load(Ordering::Acquire) {
            self.workers().push(worker.clone());
        }
        let task = WorkerTask {
            pool: Arc::downgrade(self),
            policy: self.policy,
            worker: worker.clone(),
        };
        ParkWatch {
            inner: Box::pin(task.run(pre, store, slot, first, receiver, on_instantiated)),
            worker,
        }
    }
}

struct WorkerTask<G> {
    pool: Weak<P3Pool<G>>,
    policy: P3Policy,
    worker: Arc<Worker<G>>,
}

/// Head senders of the requests an instance holds, kept outside its event loop so that when
/// the loop fails every request still waiting hears why.
type Pending = Mutex<HashMap<u64, oneshot::Sender<P3Head>>>;

enum JobEnd {
    Done,
    Expired,
}

impl<G: Send + 'static> WorkerTask<G> {
    async fn run(
        self,
        pre: ServicePre<Host>,
        mut store: Store<Host>,
        _slot: OwnedSemaphorePermit,
        first: Box<Job<G>>,
        mut jobs: mpsc::UnboundedReceiver<Box<Job<G>>>,
        on_instantiated: impl FnOnce(&Store<Host>) + Send + 'static,
    ) {
        let pending: Pending = Mutex::new(HashMap::new());
        // Instantiating runs guest code (its start function) too: it gets the first request's
        // deadline like the rest of that request.
        let instantiated =
            tokio::time::timeout_at(first.deadline.into(), pre.instantiate_async(&mut store)).await;
        let service = match instantiated {
            Ok(Ok(service)) => service,
            failed => {
                self.worker.stop_accepting();
                match failed {
                    Ok(Err(error)) => {
                        let refused = store.data().limiter.refused();
                        let _ = first.head.send(P3Head::Failed(Arc::new(error), refused));
                    }
                    _ => {
                        let _ = first.head.send(P3Head::TimedOut);
                    }
                }
                // Requests sent to it meanwhile never started: dropped, their clients retry.
                jobs.close();
                while jobs.recv().await.is_some() {}
                drop(store);
                self.finish();
                return;
            }
        };
        on_instantiated(&store);
        let result = store
            .run_concurrent(async |accessor| {
                self.serve_all(accessor, &service, &pending, first, &mut jobs)
                    .await
            })
            .await
            .and_then(|inner| inner);
        self.worker.stop_accepting();
        if let Err(error) = result {
            let error = Arc::new(error);
            let refused = store.data().limiter.refused();
            tracing::warn!(error = %format!("{error:#}"), "WASIp3 instance failed; its requests fail with it");
            let waiting: Vec<_> = pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .drain()
                .collect();
            for (_, head) in waiting {
                let _ = head.send(P3Head::Failed(error.clone(), refused));
            }
        }
        // Requests sent to a failed instance before it stopped accepting never started: dropping
        // them tells their clients to retry (503).
        jobs.close();
        while jobs.recv().await.is_some() {}
        drop(store);
        self.finish();
    }

    fn finish(&self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.remove(&self.worker);
        }
    }

    async fn serve_all(
        &self,
        accessor: &Accessor<Host>,
        service: &Service,
        pending: &Pending,
        first: Box<Job<G>>,
        jobs: &mut mpsc::UnboundedReceiver<Box<Job<G>>>,
    ) -> wasmtime::Result<()> {
        let mut running = FuturesUnordered::new();
        let mut next_id = 0_u64;
        let mut admit = |job: Box<Job<G>>| {
            next_id += 1;
            serve_one(accessor, service, pending, &self.worker, next_id, job)
        };
        running.push(admit(first));
        let mut idle_since: Option<Instant> = None;
        loop {
            let accepting = self.worker.lock().accepting;
            // Requests sent before it stopped accepting are served all the same.
            let receiving = accepting || !jobs.is_empty();
            if running.is_empty() && !receiving {
                return Ok(());
            }
            if running.is_empty() {
                idle_since.get_or_insert_with(Instant::now);
            } else {
                idle_since = None;
            }
            let idle_deadline = idle_since.map(|since| since + self.policy.idle_timeout);
            tokio::select! {
                job = jobs.recv(), if receiving => match job {
                    Some(job) => running.push(admit(job)),
                    None => self.worker.stop_accepting(),
                },
                Some(end) = running.next(), if !running.is_empty() => {
                    let mut state = self.worker.lock();
                    state.in_flight = state.in_flight.saturating_sub(1);
                    match end? {
                        JobEnd::Done => {}
                        JobEnd::Expired => state.accepting = false,
                    }
                    if state.assigned >= self.policy.max_requests {
                        state.accepting = false;
                    }
                    drop(state);
                }
                () = sleep_until(idle_deadline), if idle_deadline.is_some() => {
                    let mut state = self.worker.lock();
                    if state.in_flight == 0 {
                        state.accepting = false;
                        return Ok(());
                    }
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// One request on the instance: its response head goes back as soon as the guest returns
/// it, and the request stays here while its body streams (the body moves through the store).
async fn serve_one<G>(
    accessor: &Accessor<Host>,
    service: &Service,
    pending: &Pending,
    worker: &Worker<G>,
    id: u64,
    job: Box<Job<G>>,
) -> wasmtime::Result<JobEnd> {
    let Job {
        request,
        head,
        deadline,
        guard,
    } = *job;
    pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id, head);
    let answer = |reply: P3Head| {
        if let Some(head) = pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id)
        {
            worker.answered();
            let _ = head.send(reply);
        }
    };
    let work = async {
        // `Request::from_http` by hand: its future would borrow the hooks it reads the
        // forbidden headers from, so the headers are filtered first.
        let (parts, body) = request.into_parts();
        let headers = accessor.with(|mut access| {
            wasmtime_wasi_http::FieldMap::new_immutable(access.get().http().hooks, parts.headers)
        });
        let uri = parts.uri.into_parts();
        let (request, request_io) = wasmtime_wasi_http::p3::Request::new(
            parts.method,
            uri.scheme,
            uri.authority,
            uri.path_and_query,
            headers,
            None,
            body,
        );
        match service.handle(accessor, request).await? {
            Ok(response) => {
                // Linear memory never shrinks: past three quarters of its cap an instance
                // serves out its requests and makes way for a fresh one. Decided before the
                // client has its answer, so its next request goes elsewhere.
                let (charged, cap) = accessor.with(|mut access| {
                    let limiter = &access.get().limiter;
                    (limiter.charged(), limiter.per_instance_max())
                });
                if charged > cap / 4 * 3 {
                    worker.stop_accepting();
                }
                let response =
                    accessor.with(|mut access| response.into_http(&mut access, request_io))?;
                let (done, finished) = oneshot::channel();
                let response = response.map(|body| {
                    WatchedBody {
                        inner: body,
                        _done: done,
                    }
                    .map_err(crate::BodyError::from)
                    .boxed_unsync()
                });
                answer(P3Head::Response(response));
                // The body moves only while this instance's loop runs: stay until it is read
                // to its end or dropped.
                let _ = finished.await;
            }
            Err(code) => answer(P3Head::GuestError(format!("{code:?}"))),
        }
        Ok::<_, wasmtime::Error>(())
    };
    let end = match tokio::time::timeout_at(deadline.into(), work).await {
        Ok(Ok(())) => JobEnd::Done,
        Ok(Err(error)) => {
            // A trap: the whole instance goes, and every request on it hears the error.
            drop(guard);
            return Err(error);
        }
        Err(_) => {
            // Its task cannot be cancelled: the instance takes nothing more, and ends once the
            // requests it holds are done.
            worker.stop_accepting();
            answer(P3Head::TimedOut);
            JobEnd::Expired
        }
    };
    drop(guard);
    Ok(end)
}

/// A response body that says when it is gone (read to its end, or dropped by a client that
/// left), so the instance knows the request is over.
struct WatchedBody<B> {
    inner: B,
    _done: oneshot::Sender<()>,
}

impl<B: Body + Unpin> Body for WatchedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Records whether the worker's task is parked (its last poll returned `Pending`), which tells
/// the pool every request on the instance waits on I/O.
struct ParkWatch<F, G> {
    inner: Pin<Box<F>>,
    worker: Arc<Worker<G>>,
}

impl<F: Future<Output = ()>, G> Future for ParkWatch<F, G> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.worker.parked.store(false, Ordering::Release);
        let poll = self.inner.as_mut().poll(cx);
        if poll.is_pending() {
            self.worker.parked.store(true, Ordering::Release);
        }
        poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    #[test]
    fn wasip3_follows_wasmtime_serve_unless_told_otherwise() {
        assert_eq!(
            P3Policy::new(&InstanceReuse::default()),
            P3Policy {
                max_requests: 128,
                max_concurrent: 16,
                idle_timeout: Duration::from_secs(1)
            }
        );
        let fresh = InstanceReuse {
            max_requests: NonZeroU32::new(1),
            ..InstanceReuse::default()
        };
        assert_eq!(
            P3Policy::new(&fresh).max_concurrent,
            1,
            "an instance never serves more at once than in its life"
        );
    }
}
