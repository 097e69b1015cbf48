//! What one connection is doing — requests in flight, when it fell quiet, whether a client
//! started sending a request head, which protocol it speaks — and, from that, when it must be
//! closed. The IO wrapper ([`Observed`]) and the request guard ([`RequestGuard`]) write it; the
//! connection's driver reads it and waits on [`Activity::changed`].
//!
//! hyper's own HTTP/1 header timer cannot serve here: it also runs between kept-alive requests,
//! so an idle connection would be closed after the header timeout, and it does not run at all
//! while the auto builder is still sniffing the protocol.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use super::limits::ServerLimits;

/// The bytes an HTTP/2 client opens with (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Why a connection was closed before its client was done with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expiry {
    /// The request head did not arrive in time.
    HeaderRead,
    /// No request for the idle timeout.
    Idle,
}

/// A connection's activity, as the deadline rule sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub in_flight: usize,
    /// Whether any request was started on this connection.
    pub served_any: bool,
    /// When the connection opened or its last request finished.
    pub quiet_since: Instant,
    /// The first byte read since it fell quiet: a request head has begun.
    pub head_started: Option<Instant>,
    /// Whether the client opened with the HTTP/2 preface.
    pub http2: bool,
}

/// When the connection must be closed, and why; `None` while a request is in flight (its own
/// deadline is the revision's timeout, not ours).
///
/// - A fresh connection must send its first request within the header timeout (a socket that
///   sends nothing, or `G`, is closed).
/// - Between kept-alive HTTP/1 requests the idle timeout applies until a byte arrives; from
///   then the rest of the head must come within the header timeout.
/// - HTTP/2 clients send pings and window updates while idle, so bytes prove nothing there:
///   only the idle timeout applies, counted from the last request (or from the preface).
pub fn deadline(snapshot: &Snapshot, limits: &ServerLimits) -> Option<(Instant, Expiry)> {
    if snapshot.in_flight > 0 {
        return None;
    }
    let idle = (snapshot.quiet_since + limits.idle_timeout, Expiry::Idle);
    if snapshot.http2 {
        return Some(idle);
    }
    if !snapshot.served_any {
        let since = snapshot.quiet_since;
        return Some((since + limits.header_read_timeout, Expiry::HeaderRead));
    }
    match snapshot.head_started {
        Some(first_byte) => Some((first_byte + limits.header_read_timeout, Expiry::HeaderRead)),
        None => Some(idle),
    }
}

/// How far the client's first bytes match the HTTP/2 preface.
#[derive(Clone, Copy, Debug)]
enum Preface {
    Matching(usize),
    Http2,
    Http1,
}

#[derive(Debug)]
struct State {
    in_flight: usize,
    served_any: bool,
    quiet_since: Instant,
    head_started: Option<Instant>,
    preface: Preface,
}

/// One connection's activity, shared by its IO, its requests and its driver.
#[derive(Debug)]
pub struct Activity {
    state: Mutex<State>,
    changed: Notify,
}

impl Activity {
    pub fn new(opened: Instant) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                in_flight: 0,
                served_any: false,
                quiet_since: opened,
                head_started: None,
                preface: Preface::Matching(0),
            }),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain data updated in single statements: a panic elsewhere cannot leave
        // it half-written, so a poisoned lock is still good to read.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn snapshot(&self) -> Snapshot {
        let state = self.lock();
        Snapshot {
            in_flight: state.in_flight,
            served_any: state.served_any,
            quiet_since: state.quiet_since,
            head_started: state.head_started,
            http2: matches!(state.preface, Preface::Http2),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    /// Resolves after the deadline may have moved earlier or a request finished; a change
    /// before the call is not lost (it leaves a permit).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// A request began; it counts as in flight until the guard (kept with its response body)
    /// is dropped.
    pub fn request_started(self: &Arc<Self>) -> RequestGuard {
        let mut state = self.lock();
        state.in_flight += 1;
        state.served_any = true;
        state.head_started = None;
        RequestGuard {
            activity: self.clone(),
        }
    }

    fn bytes_read(&self, bytes: &[u8], now: Instant) {
        let mut state = self.lock();
        let mut earlier_deadline = false;
        if state.in_flight == 0 && state.head_started.is_none() {
            state.head_started = Some(now);
            earlier_deadline = true;
        }
        if let Preface::Matching(matched) = state.preface {
            let wanted = &H2_PREFACE[matched..];
            let take = bytes.len().min(wanted.len());
            state.preface = if bytes[..take] != wanted[..take] {
                Preface::Http1
            } else if take == wanted.len() {
                Preface::Http2
            } else {
                Preface::Matching(matched + take)
            };
        }
        drop(state);
        if earlier_deadline {
            self.changed.notify_one();
        }
    }
}

/// Marks a request in flight on its connection until dropped.
#[derive(Debug)]
pub struct RequestGuard {
    activity: Arc<Activity>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let mut state = self.activity.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.quiet_since = Instant::now();
            state.head_started = None;
            drop(state);
            self.activity.changed.notify_one();
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request in flight until it is sent or dropped; framing
    /// (size hint, end of stream) passes through unchanged.
    pub struct Tracked<B> {
        #[pin]
        inner: B,
        guard: RequestGuard,
    }
}

impl<B> Tracked<B> {
    pub fn new(inner: B, guard: RequestGuard) -> Self {
        Self { inner, guard }
    }
}

impl<B: Body> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's socket that reports what it reads to the connection's [`Activity`].
#[derive(Debug)]
pub struct Observed<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> Observed<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Observed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && buf.filled().len() > before
        {
            self.activity
                .bytes_read(&buf.filled()[before..], Instant::now());
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Observed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits() -> ServerLimits {
        ServerLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            ..ServerLimits::default()
        }
    }

    fn quiet(at: Instant) -> Snapshot {
        Snapshot {
            in_flight: 0,
            served_any: false,
            quiet_since: at,
            head_started: None,
            http2: false,
        }
    }

    #[test]
    fn a_fresh_connection_gets_the_header_timeout_even_before_a_byte() {
        let opened = Instant::now();
        assert_eq!(
            deadline(&quiet(opened), &limits()),
            Some((opened + Duration::from_secs(10), Expiry::HeaderRead))
        );
    }

    #[test]
    fn a_request_in_flight_has_no_connection_deadline() {
        let snapshot = Snapshot {
            in_flight: 1,
            served_any: true,
            ..quiet(Instant::now())
        };
        assert_eq!(deadline(&snapshot, &limits()), None);
    }

    #[test]
    fn between_kept_alive_requests_idle_applies_until_a_head_begins() {
        let finished = Instant::now();
        let idle = Snapshot {
            served_any: true,
            ..quiet(finished)
        };
        assert_eq!(
            deadline(&idle, &limits()),
            Some((finished + Duration::from_secs(75), Expiry::Idle))
        );
        let first_byte = finished + Duration::from_secs(30);
        let started = Snapshot {
            head_started: Some(first_byte),
            ..idle
        };
        assert_eq!(
            deadline(&started, &limits()),
            Some((first_byte + Duration::from_secs(10), Expiry::HeaderRead))
        );
    }

    #[test]
    fn http2_connections_only_time_out_when_idle() {
        let opened = Instant::now();
        let snapshot = Snapshot {
            http2: true,
            head_started: Some(opened),
            ..quiet(opened)
        };
        assert_eq!(
            deadline(&snapshot, &limits()),
            Some((opened + Duration::from_secs(75), Expiry::Idle))
        );
    }

    #[test]
    fn the_preface_is_recognised_across_reads_and_anything_else_is_http1() {
        let now = Instant::now();
        let h2 = Activity::new(now);
        h2.bytes_read(&H2_PREFACE[..5], now);
        assert!(!h2.snapshot().http2);
        h2.bytes_read(&H2_PREFACE[5..], now);
        assert!(h2.snapshot().http2);

        let h1 = Activity::new(now);
        h1.bytes_read(b"PRI * HTTP/1.1\r\n", now);
        assert!(!h1.snapshot().http2);
        h1.bytes_read(&H2_PREFACE[16..], now);
        assert!(!h1.snapshot().http2, "a decision, once made, stays");
    }

    #[test]
    fn requests_count_in_flight_and_quiet_restarts_when_the_last_ends() {
        let opened = Instant::now();
        let activity = Activity::new(opened);
        activity.bytes_read(b"GET / HTTP/1.1\r\n", opened);
        assert_eq!(activity.snapshot().head_started, Some(opened));
        let first = activity.request_started();
        let second = activity.request_started();
        assert_eq!(activity.in_flight(), 2);
        assert_eq!(activity.snapshot().head_started, None);
        activity.bytes_read(b"more body", opened);
        assert_eq!(
            activity.snapshot().head_started,
            None,
            "bytes of a request in flight start no head"
        );
        drop(first);
        assert_eq!(activity.snapshot().quiet_since, opened);
        drop(second);
        let snapshot = activity.snapshot();
        assert_eq!(snapshot.in_flight, 0);
        assert!(snapshot.served_any);
        assert!(snapshot.quiet_since >= opened);
    }
}
