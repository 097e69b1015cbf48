//! The load generator: open-loop (requests leave on a schedule whatever the responses do, so
//! latency counts from when each request was *due* and a slow target cannot hide its slowness —
//! no coordinated omission, as vegeta) or closed-loop (N workers, each sending its next request
//! when the previous one answered), over keep-alive HTTP/1.1 or h2c, to loopback targets only.
//! Both modes produce the same [`Timeline`]: per-second buckets and whole-run totals.
//!
//! The schedule ([`rate`]) and the bookkeeping ([`timeline`]) are pure; [`run`] does the I/O.

pub mod live;
mod pool;
pub mod rate;
mod run;
pub mod timeline;

use std::net::IpAddr;
use std::time::Duration;

pub use live::{LiveFigures, LiveSink, LiveWindow};
pub use pool::Protocol;
pub use rate::{RateError, RateShape, Schedule, Step};
pub use run::{run, run_live};
pub use timeline::{Counts, Outcome, Percentiles, Second, Timeline};

use crate::target::Target;

/// Requests in flight at once in open loop unless told otherwise; past it, requests are dropped.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;
/// How long one request may take (from when it was due) before it counts as a timeout.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a run waits at its end for requests still in flight.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// How requests are paced.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Requests leave on `shape`'s schedule; one due while `max_in_flight` requests are
    /// unanswered is counted as dropped, never sent late.
    Open {
        shape: RateShape,
        max_in_flight: usize,
    },
    /// `workers` loops, each sending its next request when the previous one has been answered.
    Closed { workers: usize },
}

/// One run of the generator.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// Where `GET`s go; `target.host` is the Host header (set it to route by host through the
    /// gateway) and `target.path` the request path.
    pub target: Target,
    pub protocol: Protocol,
    pub mode: Mode,
    /// Load stops being sent after this long. At least one of `duration` and `max_requests`.
    pub duration: Option<Duration>,
    /// At most this many requests are released.
    pub max_requests: Option<u64>,
    /// See [`DEFAULT_REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
    /// See [`DEFAULT_GRACE`]; requests still unanswered after it count as timeouts.
    pub grace: Duration,
}

impl Load {
    /// Open loop at `shape` over HTTP/1.1 for `duration`, with the default cap, timeout and grace.
    pub fn open(target: Target, shape: RateShape, duration: Duration) -> Self {
        Self::with_mode(
            target,
            Mode::Open {
                shape,
                max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            },
            duration,
        )
    }

    /// Closed loop with `workers` over HTTP/1.1 for `duration`, with the default timeout and grace.
    pub fn closed(target: Target, workers: usize, duration: Duration) -> Self {
        Self::with_mode(target, Mode::Closed { workers }, duration)
    }

    fn with_mode(target: Target, mode: Mode, duration: Duration) -> Self {
        Self {
            target,
            protocol: Protocol::Http1,
            mode,
            duration: Some(duration),
            max_requests: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            grace: DEFAULT_GRACE,
        }
    }

    /// Checks the run is bounded, aimed at loopback, and can send at all.
    pub fn validate(&self) -> Result<(), GeneratorError> {
        // `Target::parse` refuses other addresses, but the fields are public: check again here.
        if !self.target.addr.ip().is_loopback() {
            return Err(GeneratorError::NotLoopback(self.target.addr.ip()));
        }
        if self.duration.is_none() && self.max_requests.is_none() {
            return Err(GeneratorError::Unbounded);
        }
        match &self.mode {
            Mode::Open {
                max_in_flight: 0, ..
            } => return Err(GeneratorError::NoCapacity),
            Mode::Closed { workers: 0 } => return Err(GeneratorError::NoCapacity),
            Mode::Open { shape, .. } => shape.validate()?,
            Mode::Closed { .. } => {}
        }
        if let Protocol::H2c { connections: 0 } = self.protocol {
            return Err(GeneratorError::NoCapacity);
        }
        run::request(&self.target, self.protocol)
            .map(|_| ())
            .map_err(|error| GeneratorError::BadRequest(error.to_string()))
    }
}

/// A run that cannot start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeneratorError {
    #[error("{0} is not a loopback address; load is only ever sent to 127.0.0.0/8 or ::1")]
    NotLoopback(IpAddr),
    #[error("a run needs a duration, a maximum request count, or both")]
    Unbounded,
    #[error("a run needs at least one worker, connection and request in flight")]
    NoCapacity,
    #[error(transparent)]
    Rate(#[from] RateError),
    #[error("the target's host and path do not make an HTTP request: {0}")]
    BadRequest(String),
}
