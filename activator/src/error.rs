//! Why the throttler refused a request; each maps to one HTTP status at the gateway.

use thiserror::Error;

#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum ThrottleError {
    /// The revision's queue was at its bound: 503 with `Retry-After`.
    #[error("activator queue full ({depth} requests waiting)")]
    QueueFull { depth: usize },
    /// The request waited for capacity past its deadline: 504 "activator request timeout".
    #[error("activator request timeout")]
    Timeout,
    /// The throttler was shut down (the revision went away) while the request waited: 503.
    #[error("revision is no longer served")]
    Closed,
}
