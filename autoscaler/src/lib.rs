//! wisp's autoscaler: Knative Serving's request-driven autoscaler (the KPA), re-implemented with
//! the same semantics so `autoscaling.knative.dev/*` annotations behave as users know them.
//!
//! What it is for: deciding, per revision, how many replicas to run and whether the activator
//! must stay in the request path — from concurrency or request-rate observations, the revision's
//! annotations and the `config-autoscaler` values. The pieces, leaves first:
//!
//! * [`config`], [`annotations`], [`spec`], [`target`]: configuration, per-revision overrides and
//!   target resolution (reference §2–§3);
//! * [`window`], [`max_window`]: bucketed metric windows and the scale-down-delay maximum (§4.5, §5);
//! * [`decider`]: the `Scale` function (§5); [`scaler`]: bounds, scale-to-zero gate and the
//!   Active / Inactive / Activating state (§6); [`activator`]: activator-in-path and activator
//!   count (§6.1, §7.5); [`reporter`]: time-weighted request accounting (§4.3);
//! * [`revision`]: one revision's state and evaluation; [`multiscaler`]: the registry a data plane
//!   talks to (register, record, poke, subscribe); [`driver`]: the 1-second real-time loop;
//! * [`simulate`], [`chart`]: replaying a demand trace on simulated time (`wisp autoscaler simulate`).
//!
//! How a data plane uses it (in production the clock is a [`SystemClock`] and
//! `tokio::spawn(wisp_autoscaler::driver::run(autoscaler.clone()))` calls `step` every second):
//!
//! ```
//! use std::sync::Arc;
//! use wisp_autoscaler::{Autoscaler, AutoscalerConfig, Clock, ManualClock, RevisionKey, RevisionSpec, Timestamp};
//!
//! let clock = Arc::new(ManualClock::new(Timestamp::ZERO));
//! let autoscaler = Autoscaler::new(AutoscalerConfig::default(), clock.clone());
//! // On a Revision add or change (annotations, containerConcurrency, reachability):
//! let revision = autoscaler.register(RevisionKey::new("default", "hello-00001"), RevisionSpec::default(), 0)?;
//! // The replica manager and the activator watch the revision's view; no polling.
//! let mut view = revision.subscribe();
//! // On the request path, for every request (queued in the activator or not):
//! let in_flight = revision.track_request();
//! // As replicas become ready or go away:
//! revision.set_ready(1);
//! autoscaler.step(clock.now());
//! drop(in_flight);
//! let decision = *view.borrow_and_update();
//! assert_eq!(decision.replicas, 1);
//! // On a Revision delete:
//! autoscaler.unregister(revision.key());
//! # Ok::<(), wisp_autoscaler::ConfigError>(())
//! ```
//!
//! What it is not for: it starts no replicas and routes no requests (the data plane applies its
//! decisions), does no network I/O, and reads no Kubernetes objects — the caller passes parsed
//! annotations and ConfigMap data. All time comes from a [`Clock`], so everything runs on
//! simulated time in tests.

pub mod activator;
pub mod annotations;
pub mod chart;
pub mod clock;
pub mod config;
pub mod decider;
pub mod driver;
pub mod duration;
pub mod error;
pub mod max_window;
pub mod multiscaler;
pub mod reporter;
pub mod revision;
pub mod scaler;
pub mod simulate;
pub mod spec;
pub mod target;
pub mod window;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use config::AutoscalerConfig;
pub use error::{ConfigError, SimulateError};
pub use multiscaler::{Autoscaler, Decision, RevisionHandle, RevisionStatus};
pub use reporter::Stat;
pub use revision::RevisionView;
pub use scaler::{Activity, ActivityReason};
pub use spec::{Reachability, RevisionSpec};
pub use wisp_api::revision_key::RevisionKey;
