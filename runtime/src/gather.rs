//! Holding a guest's response head back for a moment, until its body has ended or a short
//! budget runs out. A guest sets the response head before it writes the body; sent at once, the
//! head, each chunk and the end of a small body would leave in separate writes. Gathered, a small
//! response goes out as one write with a `Content-Length`, like any plain HTTP server's.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::replica::BodyError;
use crate::response::ResponseBody;

/// Most of a body gathered before the head is released.
const MAX_GATHERED: usize = 64 * 1024;

/// Waits (at most `budget`) for the body to end, then returns the response with what was
/// gathered in front of the rest of the body. `head_request` says the request was a HEAD, whose
/// empty body says nothing of the length.
pub async fn gather(
    response: Response<ResponseBody>,
    budget: Duration,
    head_request: bool,
) -> Response<ResponseBody> {
    let (mut parts, mut body) = response.into_parts();
    let mut gathered = Gathered {
        frames: VecDeque::new(),
        error: None,
        ended: false,
        rest: None,
    };
    let mut length = 0usize;
    let deadline = tokio::time::Instant::now() + budget;
    while length < MAX_GATHERED {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                length += frame.data_ref().map_or(0, Bytes::len);
                gathered.frames.push_back(frame);
            }
            Ok(Some(Err(error))) => {
                gathered.error = Some(error);
                break;
            }
            Ok(None) => {
                gathered.ended = true;
                break;
            }
            Err(_) => break,
        }
    }
    let status = parts.status;
    let may_have_length = !head_request
        && !status.is_informational()
        && status != http::StatusCode::NO_CONTENT
        && status != http::StatusCode::NOT_MODIFIED;
    let whole = may_have_length
        && gathered.ended
        && gathered.error.is_none()
        && gathered.frames.iter().all(Frame::is_data);
    if whole
        && !parts.headers.contains_key(header::CONTENT_LENGTH)
        && !parts.headers.contains_key(header::TRANSFER_ENCODING)
    {
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    if !gathered.ended {
        gathered.rest = Some(body);
    }
    Response::from_parts(parts, gathered.boxed_unsync())
}

struct Gathered {
    frames: VecDeque<Frame<Bytes>>,
    error: Option<BodyError>,
    ended: bool,
    rest: Option<ResponseBody>,
}

impl Body for Gathered {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if let Some(frame) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(error) = self.error.take() {
            return Poll::Ready(Some(Err(error)));
        }
        match &mut self.rest {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
            && self.error.is_none()
            && self.rest.as_ref().is_none_or(|rest| rest.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let gathered: u64 = self
            .frames
            .iter()
            .filter_map(|frame| frame.data_ref().map(|data| data.len() as u64))
            .sum();
        match &self.rest {
            None if self.error.is_none() => SizeHint::with_exact(gathered),
            _ => {
                let mut hint = SizeHint::new();
                hint.set_lower(gathered);
                hint
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};

    fn response(body: ResponseBody) -> Response<ResponseBody> {
        Response::new(body)
    }

    #[tokio::test]
    async fn a_body_that_ends_in_time_gets_a_content_length() {
        let body = Full::new(Bytes::from_static(b"hello"))
            .map_err(|never| match never {})
            .boxed_unsync();
        let gathered = gather(response(body), Duration::from_millis(50), false).await;
        assert_eq!(gathered.headers()[header::CONTENT_LENGTH], "5");
        assert!(gathered.body().size_hint().exact() == Some(5));
        let bytes = gathered.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hello");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_body_is_released_after_the_budget_and_streams_on() {
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BodyError>>(4);
        sender
            .send(Ok(Frame::data(Bytes::from_static(b"first "))))
            .await
            .unwrap();
        let stream = tokio_stream_from(receiver);
        let body = StreamBody::new(stream).boxed_unsync();
        let gathered = gather(response(body), Duration::from_millis(2), false).await;
        assert!(!gathered.headers().contains_key(header::CONTENT_LENGTH));
        sender
            .send(Ok(Frame::data(Bytes::from_static(b"second"))))
            .await
            .unwrap();
        drop(sender);
        let bytes = gathered.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"first second");
    }

    fn tokio_stream_from(
        mut receiver: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, BodyError>>,
    ) -> impl futures::Stream<Item = Result<Frame<Bytes>, BodyError>> {
        futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
    }
}
