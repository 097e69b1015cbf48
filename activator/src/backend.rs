//! What the activator sends requests to: one replica of a revision.
//!
//! The activator itself only needs an id to track a backend across updates; `call` lets the
//! throttler run a whole request ([`crate::Throttler::call`]). A gateway backend would be a
//! `wisp_runtime::Replica` wrapper whose `Request` is an `http::Request` plus a request id and
//! whose `Response` is the replica's `http::Response`.

use std::fmt::Debug;
use std::future::Future;

/// One backend (replica) of a revision. Cloning must be cheap (an `Arc` inside): the throttler
/// keeps one clone per backend and hands clones out with leases.
pub trait Backend: Clone + Send + Sync + 'static {
    /// Identifies the backend across [`crate::Throttler::update_backends`] calls, so a backend
    /// that stays keeps its in-flight count.
    type Id: Clone + Eq + Debug + Send + Sync + 'static;
    type Request: Send + 'static;
    type Response: Send + 'static;

    fn id(&self) -> Self::Id;

    /// Serves one request. Faults are the backend's to turn into responses.
    fn call(&self, request: Self::Request) -> impl Future<Output = Self::Response> + Send;
}
