//! How a request ended, beside its status: metrics and logs must tell a node or replica out of
//! capacity (the client may retry) apart from a guest that failed (retrying will not help).

/// Attached to every response a replica returns, as a response extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// The guest answered (whatever status it chose).
    Served,
    /// Shed or failed for want of capacity: instance slots, replica memory or queue room.
    Overload,
    /// The guest trapped, failed or broke its contract.
    GuestFault,
    /// The request's deadline passed.
    Timeout,
    /// The request body was over the limit.
    BodyTooLarge,
}
