//! A runtime replica as the activator sees it: an id for the balancer, the replica, and the
//! node memory it holds, given back once the activator and every request are done with it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use wisp_activator::Backend;
use wisp_runtime::{Replica, ResponseBody};

use super::node::Reservation;

/// A request body of any kind, boxed (used by [`Backend::call`]; the gateway's own path calls
/// the replica with the connection's body type directly).
pub type BoxedRequestBody = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// One replica of a revision, shared by the replica set, the throttler and in-flight leases.
#[derive(Clone)]
pub struct ReplicaBackend {
    inner: Arc<Slot>,
}

struct Slot {
    id: u64,
    replica: Replica,
    _reservation: Reservation,
}

impl ReplicaBackend {
    pub fn new(replica: Replica, reservation: Reservation) -> Self {
        // Ids are node-wide and never reused, so a replacement never inherits a load count.
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Self {
            inner: Arc::new(Slot {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                replica,
                _reservation: reservation,
            }),
        }
    }

    pub fn replica(&self) -> &Replica {
        &self.inner.replica
    }
}

impl Backend for ReplicaBackend {
    type Id = u64;
    /// The request, its id, and its deadline.
    type Request = (Request<BoxedRequestBody>, Arc<str>, Instant);
    type Response = Response<ResponseBody>;

    fn id(&self) -> u64 {
        self.inner.id
    }

    async fn call(&self, (request, request_id, deadline): Self::Request) -> Self::Response {
        self.inner
            .replica
            .handle_until(request, request_id, deadline)
            .await
    }
}
