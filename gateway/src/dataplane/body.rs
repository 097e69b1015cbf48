//! The gateway's response body: the replica's body, carrying what must live exactly as long as
//! the response is being sent — the request's replica slot and its in-flight count.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use wisp_activator::Lease;
use wisp_runtime::{BodyError, ResponseBody};

use super::backend::ReplicaBackend;
use crate::metrics::InFlight;

/// A response body that holds the request's slot until it is done (or dropped because the
/// client left), so the slot is freed the moment the last byte is out and not before.
pub struct GatewayBody {
    inner: ResponseBody,
    _lease: Option<Lease<ReplicaBackend>>,
    _in_flight: Option<InFlight>,
}

impl GatewayBody {
    pub(crate) fn new(
        inner: ResponseBody,
        lease: Option<Lease<ReplicaBackend>>,
        in_flight: Option<InFlight>,
    ) -> Self {
        Self {
            inner,
            _lease: lease,
            _in_flight: in_flight,
        }
    }

    /// A body the gateway wrote itself (404, 503, 504): nothing to hold.
    pub(crate) fn plain(inner: ResponseBody) -> Self {
        Self::new(inner, None, None)
    }
}

impl Body for GatewayBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
