//! A replica: one unit of a revision's capacity. It is a resource envelope (concurrency and
//! memory limits shared by the instances it runs) around the linked, pre-instantiated component;
//! every request gets a fresh `Store` and instance, dropped after the response — unless the
//! revision chose instance reuse, when a clean instance goes back to the replica's pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::Either;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::{Engine, Store};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p3::bindings::ServicePre;

use crate::admission::{self, InstanceSlots, Shed};
use crate::body::LimitedBody;
use crate::config::{ReplicaIdentity, ReplicaLimits};
use crate::cpu_share::{CpuShare, Fair};
use crate::gather;
use crate::host::{Host, MAX_RESOURCES, RESOURCE_TABLE_RESERVATION};
use crate::limits::{HostMemoryExceeded, InstanceLimiter, MemoryBudget, MemoryRefusal};
use crate::memory_reset::{CountFaults, ResetChoice};
use crate::outcome::RequestOutcome;
use crate::p3_instances::{Job, P3Head, P3Policy, P3Pool, Pick};
use crate::pool::{Live, ReusePolicy, SerialPool};
use crate::response::{ResponseBody, plain_response};
use crate::world::Linked;

/// How long a response head may wait for its body to end, so a small response leaves in one
/// write; a guest still writing after this streams as usual.
const GATHER_BUDGET: Duration = Duration::from_millis(2);

/// Requests that may wait per concurrency slot (Knative's queue-proxy allows 10 × cc).
const QUEUE_PER_SLOT: usize = 10;

/// Requests that may wait for room in a replica's memory: with `containerConcurrency: 0` nothing
/// else bounds how many arrive at once, so this is the replica's queue.
const MEMORY_QUEUE: usize = 1000;

/// Seconds a shed client is told to wait before retrying.
const RETRY_AFTER_SECONDS: &str = "1";

/// How a request went, beside the response itself (also attached to the response as an
/// extension, and as a `Server-Timing` header).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestTimings {
    /// Waiting for a free concurrency slot of the replica.
    pub wait: Duration,
    /// Creating the store and instantiating the component.
    pub instantiate: Duration,
    /// From the instance being ready to the guest's response head.
    pub handler: Duration,
    /// Whether the request got a fresh instance or one that served earlier requests.
    pub instance: InstanceUse,
}

/// Which instance served a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InstanceUse {
    /// Made for this request.
    #[default]
    Fresh,
    /// Kept from earlier requests of the same replica (the revision chose reuse).
    Reused,
}

impl InstanceUse {
    fn as_str(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Reused => "reused",
        }
    }
}

impl RequestTimings {
    /// The `Server-Timing` header value, in milliseconds as the header wants.
    pub fn server_timing(&self) -> String {
        format!(
            "wait;dur={:.3}, instantiate;dur={:.3}, handler;dur={:.3}, instance;desc={}",
            self.wait.as_secs_f64() * 1e3,
            self.instantiate.as_secs_f64() * 1e3,
            self.handler.as_secs_f64() * 1e3,
            self.instance.as_str()
        )
    }
}

/// A replica of a prepared component. Cloning shares the replica.
#[derive(Clone)]
pub struct Replica {
    inner: Arc<ReplicaInner>,
    /// Closes the instance pool once the last handle to the replica is gone.
    _closer: Option<Arc<PoolCloser>>,
}

pub(crate) struct ReplicaInner {
    engine: Engine,
    linked: Linked,
    /// How the component's slots are reset: its fresh instances are counted while that is
    /// being chosen, and start in the whole-prefix engine once it is.
    reset: Arc<ResetChoice>,
    revision: Arc<str>,
    env: Vec<(String, String)>,
    limits: ReplicaLimits,
    per_instance_memory: u64,
    memory: Arc<MemoryBudget>,
    slots: Option<Arc<Semaphore>>,
    instance_slots: Arc<InstanceSlots>,
    cpu_share: CpuShare,
    /// What one instance of the component has been seen to take from the budget by the time it
    /// is ready to handle a request: how much room a request waits for before it starts one.
    footprint: AtomicU64,
    in_flight: AtomicUsize,
    waiting: AtomicUsize,
    waiting_for_memory: AtomicUsize,
    /// Idle instances kept for the next request, when the revision chose reuse.
    pool: Option<Arc<SerialPool>>,
    /// The instances of a WASIp3 component, each driven by a task of its own.
    p3: Option<Arc<P3Pool<InFlight>>>,
}

impl Replica {
    pub(crate) fn new(
        linked: Linked,
        reset: Arc<ResetChoice>,
        identity: &ReplicaIdentity,
        limits: ReplicaLimits,
        per_instance_memory: u64,
        instance_slots: Arc<InstanceSlots>,
        cpu_share: CpuShare,
    ) -> Self {
        let mut env = identity.env.clone();
        env.push(("PORT".into(), identity.port.to_string()));
        env.push(("K_SERVICE".into(), identity.service.clone()));
        env.push(("K_CONFIGURATION".into(), identity.configuration.clone()));
        env.push(("K_REVISION".into(), identity.revision.clone()));
        let slots = limits
            .concurrency
            .filter(|limit| *limit > 0)
            .map(|limit| Arc::new(Semaphore::new(limit as usize)));
        let per_instance_memory = per_instance_memory.min(limits.memory);
        let (pool, p3) = match &linked {
            Linked::P2(_) => (
                ReusePolicy::p2(&limits.reuse)
                    .map(|policy| SerialPool::new(policy, per_instance_memory)),
                None,
            ),
            Linked::P3(_) => (None, Some(P3Pool::new(P3Policy::new(&limits.reuse)))),
        };
        let closer = match (&pool, &p3) {
            (Some(pool), _) => Some(Arc::new(PoolCloser::Serial(pool.clone()))),
            (_, Some(p3)) => Some(Arc::new(PoolCloser::Concurrent(p3.clone()))),
            _ => None,
        };
        Self {
            _closer: closer,
            inner: Arc::new(ReplicaInner {
                engine: linked.engine().clone(),
                linked,
                reset,
                revision: Arc::from(identity.revision.as_str()),
                env,
                memory: MemoryBudget::new(limits.memory),
                per_instance_memory,
                limits,
                slots,
                instance_slots,
                cpu_share,
                footprint: AtomicU64::new(RESOURCE_TABLE_RESERVATION),
                in_flight: AtomicUsize::new(0),
                waiting: AtomicUsize::new(0),
                waiting_for_memory: AtomicUsize::new(0),
                pool,
                p3,
            }),
        }
    }

    /// Requests admitted and not yet finished (including a streaming response body).
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Relaxed)
    }

    /// Requests waiting for a concurrency slot.
    pub fn waiting(&self) -> usize {
        self.inner.waiting.load(Ordering::Relaxed)
    }

    /// Linear memory its instances hold right now.
    pub fn memory_in_use(&self) -> u64 {
        self.inner.memory.used()
    }

    /// Instances kept idle for the next request (always 0 without instance reuse).
    pub fn idle_instances(&self) -> usize {
        match (&self.inner.pool, &self.inner.p3) {
            (Some(pool), _) => pool.idle(),
            (_, Some(p3)) => p3.idle(),
            _ => 0,
        }
    }

    /// Instances alive now, busy or idle.
    pub fn instances(&self) -> usize {
        match &self.inner.p3 {
            Some(p3) => p3.instances(),
            None => self.in_flight() + self.idle_instances(),
        }
    }

    /// Serves one request in a fresh instance. Never fails: every fault of the guest becomes a
    /// response (500 trap, 504 deadline, 413 body too large), and none of them reaches the host
    /// or another request; a request the replica or node has no capacity for waits for it (a
    /// bounded number may wait) or is shed with 503 and `Retry-After`. The response carries a
    /// [`RequestOutcome`] extension that says which.
    pub async fn handle<B>(
        &self,
        request: Request<B>,
        request_id: Arc<str>,
    ) -> Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let deadline = Instant::now() + self.inner.limits.timeout;
        self.handle_until(request, request_id, deadline).await
    }

    /// [`Replica::handle`] with the deadline set by the caller: a request that already waited
    /// elsewhere (an activator queue) keeps one deadline for its whole life.
    pub async fn handle_until<B>(
        &self,
        request: Request<B>,
        request_id: Arc<str>,
        deadline: Instant,
    ) -> Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let admitted = Instant::now();
        let head_request = request.method() == http::Method::HEAD;
        let limit = self.inner.limits.max_request_body;
        if declared_length(&request).is_some_and(|length| length > limit) {
            return too_large(limit);
        }
        if let (Linked::P3(pre), Some(p3)) = (&self.inner.linked, &self.inner.p3) {
            let started = P3Start {
                pre,
                pool: p3,
                admitted,
                head_request,
                limit,
            };
            return self.handle_p3(started, request, request_id, deadline).await;
        }
        let Linked::P2(pre) = &self.inner.linked else {
            return guest_fault("the component's world has no request path".into());
        };
        let pre = match self.inner.reset.whole_prefix() {
            Some(moved) => moved.pre.clone(),
            None => pre.clone(),
        };
        let (guard, instance) = match self.admit(deadline).await {
            Ok(admitted) => admitted,
            Err(shed) => return self.shed_response(&shed),
        };
        let instance_use = match instance {
            Instance::Reuse(_) => InstanceUse::Reused,
            Instance::New(_) => InstanceUse::Fresh,
        };
        let wait = admitted.elapsed();
        let (request, body_exceeded) = limit_body(request, limit);

        let (sender, mut receiver) = tokio::sync::oneshot::channel();
        let instantiated = Arc::new(InstantiatedAt::default());
        let work = run_guest(
            self.inner.clone(),
            pre,
            request,
            sender,
            request_id.clone(),
            deadline,
            instantiated.clone(),
            guard,
            instance,
        );
        let mut guest: GuestFuture = Box::pin(Fair::new(work, self.inner.cpu_share.clone()));
        // Run the guest on this task until it sets its response head: a small handler usually
        // finishes right here, with no task spawned and no wake-up across threads. Dropping this
        // future before then (the client left) drops the guest and cancels it.
        let (head, outcome) = tokio::select! {
            biased;
            head = &mut receiver => (head, None),
            outcome = &mut guest => ((&mut receiver).await, Some(outcome)),
        };
        let responded = Instant::now();
        let instantiate = instantiated.get();
        let mut timings = RequestTimings {
            wait,
            instantiate,
            handler: responded.saturating_duration_since(admitted + wait + instantiate),
            instance: instance_use,
        };
        let mut response = match head {
            Ok(head) => {
                // The guest may still be writing the body: its own task carries it on.
                if outcome.is_none() {
                    tokio::spawn(guest);
                }
                match head {
                    Ok(response) => {
                        let response =
                            response.map(|body| body.map_err(BodyError::from).boxed_unsync());
                        let mut response =
                            gather::gather(response, GATHER_BUDGET, head_request).await;
                        response.extensions_mut().insert(RequestOutcome::Served);
                        response
                    }
                    Err(_) if body_exceeded.load(Ordering::Acquire) => too_large(limit),
                    Err(code) => guest_error_response(&code),
                }
            }
            Err(_) => {
                let outcome = match outcome {
                    Some(outcome) => outcome,
                    None => guest.await,
                };
                timings.handler =
                    Instant::now().saturating_duration_since(admitted + wait + instantiate);
                if body_exceeded.load(Ordering::Acquire) {
                    too_large(limit)
                } else {
                    self.failure_response(outcome, &request_id)
                }
            }
        };
        if let Ok(value) = HeaderValue::from_str(&timings.server_timing()) {
            response.headers_mut().append("server-timing", value);
        }
        response.extensions_mut().insert(timings);
        response
    }

    /// Waits, in turn, for a concurrency slot of the replica (when it has a limit), then takes
    /// an idle instance when the replica keeps them, or else waits for room in its memory for
    /// one more instance and an instance slot of the node — each until the request's deadline,
    /// with a bounded number waiting.
    async fn admit(&self, deadline: Instant) -> Result<(InFlight, Instance), Shed> {
        let inner = &self.inner;
        let concurrency = self.concurrency_slot(deadline).await?;
        if let Some(live) = inner.pool.as_ref().and_then(|pool| pool.checkout()) {
            return Ok((
                InFlight::enter(inner.clone(), concurrency),
                Instance::Reuse(live),
            ));
        }
        let footprint = inner.footprint.load(Ordering::Relaxed);
        admission::memory_room(
            &inner.memory,
            footprint,
            &inner.waiting_for_memory,
            MEMORY_QUEUE,
            deadline,
        )
        .await?;
        let slot = inner.instance_slots.acquire(deadline).await?;
        Ok((
            InFlight::enter(inner.clone(), concurrency),
            Instance::New(slot),
        ))
    }

    /// A request to a WASIp3 component: it goes to an instance's task (an idle one, one whose
    /// requests all wait on I/O, or a new one), and this waits for the head it sends back.
    async fn handle_p3<B>(
        &self,
        p3: P3Start<'_>,
        request: Request<B>,
        request_id: Arc<str>,
        deadline: Instant,
    ) -> Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let inner = &self.inner;
        let concurrency = match self.concurrency_slot(deadline).await {
            Ok(permit) => permit,
            Err(shed) => return self.shed_response(&shed),
        };
        let wait = p3.admitted.elapsed();
        let (request, body_exceeded) = limit_body(request, p3.limit);
        let request = request.map(|body| {
            body.map_err(|error| wasmtime_wasi_http::Error::InternalError(Some(error.to_string())))
                .boxed_unsync()
        });
        let (head, answer) = tokio::sync::oneshot::channel();
        let job = Box::new(Job {
            request,
            head,
            deadline,
            guard: InFlight::enter(inner.clone(), concurrency),
        });
        let instantiated = Arc::new(InstantiatedAt::default());
        let instance = match p3.pool.pick(job, false) {
            Pick::Sent => InstanceUse::Reused,
            Pick::NeedInstance(job) => {
                match self
                    .start_p3_instance(&p3, job, &request_id, deadline, &instantiated)
                    .await
                {
                    Ok(Some(())) => InstanceUse::Fresh,
                    Ok(None) => InstanceUse::Reused,
                    Err(response) => return response,
                }
            }
        };
        let answer = answer.await;
        let instantiate = instantiated.get();
        let timings = RequestTimings {
            wait,
            instantiate,
            handler: Instant::now().saturating_duration_since(p3.admitted + wait + instantiate),
            instance,
        };
        let mut response = match answer {
            Ok(P3Head::Response(response)) => {
                let mut response = gather::gather(response, GATHER_BUDGET, p3.head_request).await;
                response.extensions_mut().insert(RequestOutcome::Served);
                response
            }
            Ok(_) if body_exceeded.load(Ordering::Acquire) => too_large(p3.limit),
            Ok(P3Head::GuestError(code)) => {
                guest_fault(format!("guest answered with an error: {code}"))
            }
            Ok(P3Head::TimedOut) => self.failure_response(GuestOutcome::TimedOut, &request_id),
            Ok(P3Head::Failed(error, refused)) => {
                self.failure_response(GuestOutcome::Shared(error, refused), &request_id)
            }
            Err(_) => overloaded(format!(
                "the instance serving revision {} stopped before it answered; retry\n",
                inner.revision
            )),
        };
        if let Ok(value) = HeaderValue::from_str(&timings.server_timing()) {
            response.headers_mut().append("server-timing", value);
        }
        response.extensions_mut().insert(timings);
        response
    }

    /// Starts a WASIp3 instance for `job`: at once when the replica's memory and the node have
    /// room; otherwise the job goes to any instance with room for it (`Ok(None)`), or waits for
    /// room until its deadline. `Ok(Some(()))` when a new instance took it.
    async fn start_p3_instance(
        &self,
        p3: &P3Start<'_>,
        job: Box<Job<InFlight>>,
        request_id: &Arc<str>,
        deadline: Instant,
        instantiated: &Arc<InstantiatedAt>,
    ) -> Result<Option<()>, Response<ResponseBody>> {
        let inner = &self.inner;
        p3.pool.wait_for_ending(deadline).await;
        let footprint = inner.footprint.load(Ordering::Relaxed);
        let slot_now = if inner.memory.has_room_for(footprint) {
            inner.instance_slots.try_acquire()
        } else {
            None
        };
        let (job, slot) = match slot_now {
            Some(slot) => (job, slot),
            None => {
                let job = match p3.pool.pick(job, true) {
                    Pick::Sent => return Ok(None),
                    Pick::NeedInstance(job) => job,
                };
                let room = admission::memory_room(
                    &inner.memory,
                    footprint,
                    &inner.waiting_for_memory,
                    MEMORY_QUEUE,
                    deadline,
                )
                .await;
                let slot = match room {
                    Ok(()) => inner.instance_slots.acquire(deadline).await,
                    Err(shed) => Err(shed),
                };
                match slot {
                    Ok(slot) => (job, slot),
                    Err(shed) => return Err(self.shed_response(&shed)),
                }
            }
        };
        let store = match new_store(inner, &inner.engine, request_id) {
            Ok(store) => store,
            Err(outcome) => return Err(self.failure_response(outcome, request_id)),
        };
        let started = Instant::now();
        let replica = inner.clone();
        let instantiated = instantiated.clone();
        let task = p3
            .pool
            .start(p3.pre.clone(), store, slot, job, move |store| {
                instantiated.mark(started);
                replica
                    .footprint
                    .fetch_max(store.data().limiter.charged(), Ordering::Relaxed);
            });
        tokio::spawn(Fair::new(task, inner.cpu_share.clone()));
        Ok(Some(()))
    }

    /// A concurrency slot of the replica when it has a limit (`containerConcurrency`), waited
    /// for until the deadline with at most [`QUEUE_PER_SLOT`] requests per slot waiting.
    async fn concurrency_slot(
        &self,
        deadline: Instant,
    ) -> Result<Option<OwnedSemaphorePermit>, Shed> {
        let inner = &self.inner;
        let Some(slots) = &inner.slots else {
            return Ok(None);
        };
        let max_waiting = inner.limits.concurrency.unwrap_or(0) as usize * QUEUE_PER_SLOT;
        admission::concurrency_slot(slots, &inner.waiting, max_waiting, deadline)
            .await
            .map(Some)
    }

    fn shed_response(&self, shed: &Shed) -> Response<ResponseBody> {
        let revision = &*self.inner.revision;
        match shed {
            Shed::QueueFull { what, waiting } => overloaded(format!(
                "revision {revision} is overloaded: {waiting} requests already wait for {what}; retry shortly\n"
            )),
            Shed::Deadline { what } => {
                let seconds = self.inner.limits.timeout.as_secs_f64();
                let mut response = plain_response(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "request exceeded the revision timeout of {seconds}s while it waited for {what}\n"
                    ),
                );
                response.extensions_mut().insert(RequestOutcome::Timeout);
                response
            }
            Shed::Stopping => overloaded(format!(
                "replica of revision {revision} is stopping; retry\n"
            )),
        }
    }

    fn failure_response(&self, outcome: GuestOutcome, request_id: &str) -> Response<ResponseBody> {
        let revision = &*self.inner.revision;
        match outcome {
            GuestOutcome::Finished => {
                tracing::warn!(
                    revision,
                    request = request_id,
                    "guest returned without setting a response"
                );
                guest_fault("guest returned without sending a response".into())
            }
            GuestOutcome::TimedOut => {
                let seconds = self.inner.limits.timeout.as_secs_f64();
                tracing::warn!(
                    revision,
                    request = request_id,
                    seconds,
                    "guest exceeded its deadline"
                );
                let mut response = plain_response(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("request exceeded the revision timeout of {seconds}s\n"),
                );
                response.extensions_mut().insert(RequestOutcome::Timeout);
                response
            }
            GuestOutcome::Failed(error, refused) => {
                self.fault_response(&error, refused, request_id)
            }
            GuestOutcome::Shared(error, refused) => {
                self.fault_response(&error, refused, request_id)
            }
        }
    }

    /// The answer to a request whose instance failed with `error`: 503 when the node or the
    /// replica ran out of room (the same request may succeed in a moment), 500 naming the
    /// guest's fault otherwise.
    fn fault_response(
        &self,
        error: &wasmtime::Error,
        refused: Option<MemoryRefusal>,
        request_id: &str,
    ) -> Response<ResponseBody> {
        let revision = &*self.inner.revision;
        let limit = self.inner.limits.memory;
        if let Some(pool) = error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
            tracing::warn!(revision, request = request_id, %pool, "no free instance slot in the node's pool");
            return overloaded(format!(
                "node has no free instance slot for revision {revision} ({pool}); retry shortly\n"
            ));
        }
        let exceeded = error.downcast_ref::<HostMemoryExceeded>();
        let refused = exceeded.map(|e| e.refusal).or(refused);
        if refused == Some(MemoryRefusal::SharedBudget) {
            tracing::warn!(revision, request = request_id, limit, error = %format!("{error:#}"), "replica out of memory");
            return overloaded(format!(
                "replica of revision {revision} is out of memory: the requests running at once hold its {limit} byte limit; retry shortly\n"
            ));
        }
        let mut reason = match exceeded {
            Some(exceeded) => exceeded.to_string(),
            None => failure_reason(error),
        };
        if exceeded.is_none() && refused == Some(MemoryRefusal::InstanceCap) {
            reason.push_str(&format!(
                " (after an allocation past the {} byte memory limit of one request was refused)",
                self.inner.per_instance_memory
            ));
        }
        tracing::warn!(revision, request = request_id, error = %format!("{error:#}"), "guest failed: {reason}");
        guest_fault(reason)
    }
}

/// 503 with `Retry-After`: no capacity now, the same request may succeed in a moment.
fn overloaded(text: String) -> Response<ResponseBody> {
    let mut response = plain_response(StatusCode::SERVICE_UNAVAILABLE, text);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    response.extensions_mut().insert(RequestOutcome::Overload);
    response
}

/// 500 naming what the guest did wrong.
fn guest_fault(reason: String) -> Response<ResponseBody> {
    let mut response = plain_response(StatusCode::INTERNAL_SERVER_ERROR, format!("{reason}\n"));
    response.extensions_mut().insert(RequestOutcome::GuestFault);
    response
}

/// The error type of response bodies leaving a replica.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

type GuestFuture = std::pin::Pin<Box<dyn Future<Output = GuestOutcome> + Send>>;

enum GuestOutcome {
    Finished,
    TimedOut,
    /// The error, and the first memory charge refused during the instance's life (an
    /// allocation failure the guest may have trapped on).
    Failed(wasmtime::Error, Option<MemoryRefusal>),
    /// The same, for an instance that failed under several requests at once (WASIp3).
    Shared(Arc<wasmtime::Error>, Option<MemoryRefusal>),
}

/// The instance a request runs in: one kept from earlier requests, or a new one to make with
/// the node instance slot it already holds.
enum Instance {
    Reuse(Live),
    New(OwnedSemaphorePermit),
}

type HeadSender = tokio::sync::oneshot::Sender<
    Result<Response<wasmtime_wasi_http::p2::body::HyperOutgoingBody>, ErrorCode>,
>;

#[allow(clippy::too_many_arguments)]
async fn run_guest(
    replica: Arc<ReplicaInner>,
    pre: ProxyPre<Host>,
    request: Request<LimitedBody<BoxedIncoming>>,
    sender: HeadSender,
    request_id: Arc<str>,
    deadline: Instant,
    instantiated: Arc<InstantiatedAt>,
    _in_flight: InFlight,
    instance: Instance,
) -> GuestOutcome {
    let started = Instant::now();
    let (mut running, mut proxy, served) = match instance {
        Instance::Reuse(live) => {
            let Live {
                mut store,
                proxy,
                served,
                slot,
            } = live;
            store.data_mut().begin_request(&request_id);
            store.set_epoch_deadline(1);
            (Running { store, slot }, Some(proxy), served)
        }
        // The store comes from the pre's engine: the node's, or the whole-prefix one.
        Instance::New(slot) => match new_store(&replica, pre.engine(), &request_id) {
            Ok(store) => (Running { store, slot }, None, 1),
            Err(outcome) => return outcome,
        },
    };
    // While the component's slot reset is being chosen, a fresh instance's first request is
    // counted (see `memory_reset`), its store marking its slot as held for as long as it lives.
    let counted = (proxy.is_none() && replica.reset.counting()).then(|| {
        let (watch, sample) = replica.reset.watch_new_instance();
        running.store.data_mut().watch_slot(watch);
        sample
    });
    let store = &mut running.store;
    let responded = Arc::new(AtomicBool::new(false));
    let work = async {
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let responded = responded.clone();
        let outparam = store
            .data_mut()
            .http()
            .new_response_outparam_from_callback(move |head| {
                responded.store(true, Ordering::Release);
                // The receiver is gone when the client left; the guest need not know.
                let _ = sender.send(head);
            })?;
        let ready = match proxy.take() {
            Some(ready) => ready,
            None => {
                let ready = pre.instantiate_async(&mut *store).await?;
                let elapsed = instantiated.mark(started);
                replica
                    .footprint
                    .fetch_max(store.data().limiter.charged(), Ordering::Relaxed);
                tracing::debug!(
                    revision = &*replica.revision,
                    request = &*request_id,
                    ?elapsed,
                    "instance started"
                );
                ready
            }
        };
        ready
            .wasi_http_incoming_handler()
            .call_handle(&mut *store, incoming, outparam)
            .await?;
        Ok::<_, wasmtime::Error>(ready)
    };
    let work = match counted {
        Some(true) => {
            let answered = responded.clone();
            let served = move |result: &wasmtime::Result<_>| {
                result.is_ok() && answered.load(Ordering::Acquire)
            };
            Either::Left(CountFaults::new(work, replica.reset.clone(), served))
        }
        _ => Either::Right(work),
    };
    match tokio::time::timeout_at(deadline.into(), work).await {
        Ok(Ok(ready)) => {
            if let Some(pool) = &replica.pool
                && responded.load(Ordering::Acquire)
            {
                // Someone waits for the memory or node slot this instance holds: give it back
                // rather than keep it idle.
                let pressure = replica.waiting_for_memory.load(Ordering::Relaxed) > 0
                    || replica.instance_slots.waiting() > 0;
                let Running { store, slot } = running;
                let live = Live {
                    store,
                    proxy: ready,
                    served,
                    slot,
                };
                if let Some(reason) = pool.checkin(live, pressure) {
                    tracing::debug!(
                        revision = &*replica.revision,
                        ?reason,
                        served,
                        "instance retired"
                    );
                }
            }
            GuestOutcome::Finished
        }
        Ok(Err(error)) => GuestOutcome::Failed(error, running.store.data().limiter.refused()),
        Err(_) => GuestOutcome::TimedOut,
    }
}

/// What a WASIp3 request carries to its dispatch.
struct P3Start<'a> {
    pre: &'a ServicePre<Host>,
    pool: &'a Arc<P3Pool<InFlight>>,
    admitted: Instant,
    head_request: bool,
    limit: u64,
}

/// Closes a replica's instances when the last handle to it goes (scale-down): requests still
/// running finish, and their instances are dropped instead of kept.
enum PoolCloser {
    Serial(Arc<SerialPool>),
    Concurrent(Arc<P3Pool<InFlight>>),
}

impl Drop for PoolCloser {
    fn drop(&mut self) {
        match self {
            Self::Serial(pool) => pool.close(),
            Self::Concurrent(pool) => pool.close(),
        }
    }
}

/// The instance a request runs in, dropped (store first, then its node slot) unless it goes
/// back to the pool.
struct Running {
    store: Store<Host>,
    slot: OwnedSemaphorePermit,
}

/// A store for one new instance, its resource table charged to the replica, yielding to the
/// scheduler at every epoch tick.
fn new_store(
    replica: &ReplicaInner,
    engine: &Engine,
    request_id: &Arc<str>,
) -> Result<Store<Host>, GuestOutcome> {
    let limiter = InstanceLimiter::new(replica.memory.clone(), replica.per_instance_memory);
    let host = Host::new(&replica.env, &replica.revision, request_id, limiter);
    let mut store = Store::new(engine, host);
    store.limiter(|host| &mut host.limiter);
    if let Err(error) = store
        .data_mut()
        .limiter
        .charge_host("its resource table", RESOURCE_TABLE_RESERVATION)
    {
        let refused = store.data().limiter.refused();
        return Err(GuestOutcome::Failed(error, refused));
    }
    // Yield to the scheduler at every epoch tick, so a guest that computes forever still lets
    // other requests run and can be cancelled at its deadline.
    store.set_epoch_deadline(1);
    // tokio's own yield: the guest goes to the back of the run queue (a plain self-wake would
    // put it in the worker's LIFO slot, ahead of everything waiting), so busy guests and the
    // requests beside them take turns.
    store.epoch_deadline_callback(|_| {
        Ok(wasmtime::UpdateDeadline::YieldCustom(
            1,
            Box::pin(tokio::task::yield_now()),
        ))
    });
    Ok(store)
}

/// How long instantiation took, for the `Server-Timing` split between instantiate and handler;
/// zero when the guest failed before it was instantiated.
#[derive(Default)]
struct InstantiatedAt(AtomicU64);

impl InstantiatedAt {
    fn mark(&self, started: Instant) -> Duration {
        let elapsed = started.elapsed();
        self.0.store(elapsed.as_nanos() as u64, Ordering::Release);
        elapsed
    }

    fn get(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Acquire))
    }
}

type BoxedIncoming = http_body_util::combinators::UnsyncBoxBody<Bytes, BodyError>;

fn limit_body<B>(
    request: Request<B>,
    limit: u64,
) -> (Request<LimitedBody<BoxedIncoming>>, Arc<AtomicBool>)
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BodyError>,
{
    let (mut parts, body) = request.into_parts();
    if !parts.headers.contains_key(header::HOST) && parts.uri.authority().is_none() {
        // HTTP/1.0 clients may omit Host; the guest API requires an authority.
        parts
            .headers
            .insert(header::HOST, HeaderValue::from_static("localhost"));
    }
    let (body, exceeded) = LimitedBody::new(body.map_err(Into::into).boxed_unsync(), limit);
    (Request::from_parts(parts, body), exceeded)
}

fn declared_length<B>(request: &Request<B>) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn too_large(limit: u64) -> Response<ResponseBody> {
    let mut response = plain_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than the {limit} byte limit\n"),
    );
    response
        .extensions_mut()
        .insert(RequestOutcome::BodyTooLarge);
    response
}

fn guest_error_response(code: &ErrorCode) -> Response<ResponseBody> {
    guest_fault(format!("guest answered with an error: {code:?}"))
}

/// A short, plain reason for the client; the full error goes to the log.
fn failure_reason(error: &wasmtime::Error) -> String {
    if let Some(wasmtime::component::ResourceTableError::Full) =
        error.downcast_ref::<wasmtime::component::ResourceTableError>()
    {
        return format!(
            "guest exceeded its limit of {MAX_RESOURCES} resources (streams, pollables, header fields, bodies) held at once"
        );
    }
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::StackOverflow) => "guest trapped: stack overflow".into(),
        Some(trap) => format!("guest trapped: {trap}"),
        None => format!("guest failed: {}", error.root_cause()),
    }
}

/// Counts a request as in flight from admission until its guest task ends, and holds its
/// concurrency slot for as long.
pub(crate) struct InFlight {
    replica: Arc<ReplicaInner>,
    _concurrency: Option<OwnedSemaphorePermit>,
}

impl InFlight {
    fn enter(replica: Arc<ReplicaInner>, concurrency: Option<OwnedSemaphorePermit>) -> Self {
        replica.in_flight.fetch_add(1, Ordering::Relaxed);
        Self {
            replica,
            _concurrency: concurrency,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.replica.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
