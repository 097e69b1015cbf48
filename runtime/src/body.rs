//! Request bodies on their way into a guest: streamed frame by frame, cut off at the size limit.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Passes frames through until more than `limit` bytes have gone by, then fails the stream and
/// raises a flag, so the replica can answer 413 instead of blaming the guest.
pub struct LimitedBody<B> {
    inner: B,
    remaining: u64,
    limit: u64,
    exceeded: Arc<AtomicBool>,
}

impl<B> LimitedBody<B> {
    pub fn new(inner: B, limit: u64) -> (Self, Arc<AtomicBool>) {
        let exceeded = Arc::new(AtomicBool::new(false));
        let body = Self {
            inner,
            remaining: limit,
            limit,
            exceeded: exceeded.clone(),
        };
        (body, exceeded)
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    /// The error type the WASI HTTP host hands to the guest as an `error-code`.
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let length = data.len() as u64;
                    if length > this.remaining {
                        this.exceeded.store(true, Ordering::Release);
                        this.remaining = 0;
                        let error =
                            wasmtime_wasi_http::Error::HttpRequestBodySize(Some(this.limit));
                        return Poll::Ready(Some(Err(error)));
                    }
                    this.remaining -= length;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(transport_error(error.into())))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Keeps hyper's errors recognisable to the guest (e.g. a client that went away), and describes
/// anything else.
fn transport_error(error: BoxError) -> wasmtime_wasi_http::Error {
    match error.downcast::<hyper::Error>() {
        Ok(error) => wasmtime_wasi_http::Error::Hyper(*error),
        Err(error) => wasmtime_wasi_http::Error::InternalError(Some(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};

    #[tokio::test]
    async fn passes_bodies_within_the_limit() {
        let (body, exceeded) = LimitedBody::new(Full::new(Bytes::from_static(b"hello")), 5);
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hello");
        assert!(!exceeded.load(Ordering::Acquire));
    }

    #[tokio::test]
    async fn fails_and_flags_bodies_over_the_limit() {
        let frames = futures::stream::iter(
            ["abc", "def"].map(|s| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(s)))),
        );
        let (body, exceeded) = LimitedBody::new(StreamBody::new(frames), 4);
        let error = body.collect().await.err().unwrap();
        assert!(
            matches!(
                error,
                wasmtime_wasi_http::Error::HttpRequestBodySize(Some(4))
            ),
            "{error:?}"
        );
        assert!(exceeded.load(Ordering::Acquire));
    }
}
