//! The activator: a per-revision throttler that buffers requests while a revision lacks capacity,
//! balances them across replicas, and reports demand (including queued requests) to the autoscaler.
//!
//! What it is for (reference §7): [`Throttler`] admits each request onto a backend slot
//! (capacity = ready backends × `containerConcurrency`, open for cc = 0), queues the rest in a
//! bounded FIFO with a deadline, picks backends as Knative does ([`policy`]), drains removed
//! backends, and signals demand through [`DemandHooks`] from the moment a request enters,
//! including the one-off poke when a request finds its revision at zero.
//!
//! How a gateway uses it, per revision:
//!
//! * create a `Throttler::new(config, hooks)` when the revision appears (it starts at zero and
//!   in the path, so early requests queue rather than fail); `hooks` forwards to the
//!   autoscaler's `RevisionHandle` (`request_started` / `request_finished` / `poke`);
//! * on every replica change call [`Throttler::update_backends`]; on every autoscaler view call
//!   [`Throttler::set_activator_in_path`]; on spec changes `set_container_concurrency`;
//! * per request: `let lease = throttler.acquire().await?` then `lease.backend()` serves it and
//!   the lease is dropped once the response body is done (or [`Throttler::call`] for the whole
//!   thing); [`ThrottleError::QueueFull`] → 503 + `Retry-After`, [`ThrottleError::Timeout`] →
//!   504, [`ThrottleError::Closed`] → 503. Every request of the revision goes through
//!   `acquire`, in the path or not (out of the path it costs the same as the fast path), so the
//!   per-backend in-flight counts the balancer uses are complete.
//!
//! ```
//! use std::sync::Arc;
//! use wisp_activator::{Backend, DemandHooks, ThrottleError, Throttler, ThrottlerConfig};
//!
//! #[derive(Clone)]
//! struct Replica(u32);
//!
//! impl Backend for Replica {
//!     type Id = u32;
//!     type Request = String;
//!     type Response = String;
//!     fn id(&self) -> u32 { self.0 }
//!     async fn call(&self, request: String) -> String { format!("{} served {request}", self.0) }
//! }
//!
//! /// In the gateway this wraps the autoscaler's `RevisionHandle`.
//! struct Autoscaler;
//! impl DemandHooks for Autoscaler {
//!     fn request_entered(&self) { /* handle.request_started() */ }
//!     fn request_left(&self) { /* handle.request_finished() */ }
//!     fn poke(&self) { /* handle.poke() */ }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let config = ThrottlerConfig { container_concurrency: 1, ..ThrottlerConfig::default() };
//! let throttler = Throttler::new(config, Arc::new(Autoscaler));
//! // Replica manager: the ready replicas, in a stable order.
//! throttler.update_backends([Replica(1), Replica(2)]);
//! // Autoscaler view changes: `view.activator_in_path`.
//! throttler.set_activator_in_path(true);
//! // Per request; keep the lease until the response body is sent.
//! let lease = throttler.acquire().await?;
//! let response = lease.backend().call("GET /".to_string()).await;
//! assert_eq!(response, "1 served GET /");
//! drop(lease);
//! # Ok::<(), ThrottleError>(())
//! # }).unwrap();
//! ```
//!
//! What it is not for: it does no HTTP, knows nothing of WebAssembly or of the autoscaler crate
//! (the [`Backend`] and [`DemandHooks`] traits are the seams), does not probe backends (the
//! runtime's replicas are ready when started), and it is one activator per node: Knative's
//! multi-activator split is kept as pure functions in [`capacity`].

pub mod backend;
pub mod capacity;
pub mod demand;
pub mod error;
pub mod policy;
pub mod throttler;

pub use backend::Backend;
pub use demand::{DemandHooks, NoDemand};
pub use error::ThrottleError;
pub use policy::LbPolicy;
pub use throttler::{Lease, Throttler, ThrottlerConfig, ThrottlerStats};
