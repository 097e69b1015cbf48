//! The HTTP server loop: HTTP/1.1 and HTTP/2 over cleartext (h2c, by prior knowledge) on one
//! port, a task per connection, every connection bounded in time and size, the number of
//! connections bounded, and a graceful drain with a deadline.
//!
//! - At most [`ServerLimits::max_connections`] are open; while they are, the loop stops
//!   accepting, so new ones wait in the kernel's listen backlog (and are served once one
//!   closes) while the open ones keep working.
//! - A connection is closed when its request head is slow ([`ServerLimits::header_read_timeout`])
//!   or it has no request for [`ServerLimits::idle_timeout`] (see [`activity::deadline`]). A
//!   head larger than [`ServerLimits::max_header_bytes`] or with more than
//!   [`ServerLimits::max_headers`] fields gets hyper's `431 Request Header Fields Too Large`
//!   (HTTP/2: h2's 431 on the stream).
//! - On shutdown the listener closes at once; idle connections are closed, kept-alive ones are
//!   told to close after their current response (HTTP/1 `Connection: close`, HTTP/2 GOAWAY),
//!   and whatever is still open when [`ServerLimits::grace_period`] ends is cut.

mod activity;
mod connection;
mod limits;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

pub use activity::Expiry;
pub use limits::{LimitsError, MIN_HEADER_BYTES, ServerLimits};

use crate::metrics::ConnectionMetrics;
use activity::{Activity, Observed, Tracked};

/// How long a connection with nothing in flight may take to close by itself once told to (to
/// flush a last response, send a GOAWAY) before it is cut.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Serves HTTP on a listener within [`ServerLimits`], counting into [`ConnectionMetrics`].
#[derive(Clone, Debug)]
pub struct Server {
    limits: ServerLimits,
    metrics: ConnectionMetrics,
}

impl Server {
    /// A server with `limits`. Values no server could run with (see
    /// [`ServerLimits::validate`], which command lines call to refuse them) are raised to the
    /// nearest workable one: one connection, [`MIN_HEADER_BYTES`], one header, one stream.
    pub fn new(limits: ServerLimits) -> Self {
        let limits = ServerLimits {
            max_connections: limits.max_connections.clamp(1, u32::MAX as usize),
            max_header_bytes: limits
                .max_header_bytes
                .clamp(MIN_HEADER_BYTES, u32::MAX as usize),
            max_headers: limits.max_headers.max(1),
            max_concurrent_streams: limits.max_concurrent_streams.max(1),
            ..limits
        };
        Self {
            limits,
            metrics: ConnectionMetrics::default(),
        }
    }

    /// Counts connections into `metrics`.
    pub fn with_metrics(mut self, metrics: ConnectionMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn limits(&self) -> &ServerLimits {
        &self.limits
    }

    /// Serves `handler` on `listener` until `shutdown` resolves, then drains (see the module
    /// doc) and returns once every connection is closed — within the grace period. The handler
    /// gets each request with the address of the peer that sent it.
    pub async fn serve<H, F, B>(
        &self,
        listener: TcpListener,
        handler: H,
        shutdown: impl Future<Output = ()>,
    ) where
        H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Response<B>> + Send + 'static,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let builder = self.builder();
        let slots = Arc::new(Semaphore::new(self.limits.max_connections));
        // `None` while serving; the instant the drain began once it has.
        let (drain, draining) = watch::channel(None::<Instant>);
        tokio::pin!(shutdown);
        loop {
            if slots.available_permits() == 0 {
                tracing::debug!(
                    max_connections = self.limits.max_connections,
                    "at the connection limit: new connections wait in the listen backlog"
                );
                self.metrics.limit_reached();
            }
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_closed) => break,
                },
                () = &mut shutdown => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Running out of file descriptors must not end the server: back off.
                        tracing::warn!(%error, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let activity = Activity::new(Instant::now());
            let handler = handler.clone();
            let requests = activity.clone();
            let service = service_fn(move |request| {
                let guard = requests.request_started();
                let response = handler(request, peer);
                async move {
                    // The request counts as in flight until its body is sent (or dropped), so
                    // the guard travels with the body.
                    let response = response.await.map(move |body| Tracked::new(body, guard));
                    Ok::<_, Infallible>(response)
                }
            });
            let io = TokioIo::new(Observed::new(stream, activity.clone()));
            let connection = builder
                .serve_connection_with_upgrades(io, service)
                .into_owned();
            let driver = connection::Driver {
                limits: self.limits.clone(),
                metrics: self.metrics.clone(),
                activity,
                peer,
            };
            let draining = draining.clone();
            self.metrics.opened();
            tokio::spawn(async move {
                driver.drive(connection, draining).await;
                drop(slot);
            });
        }
        drop(listener);
        let _ = drain.send(Some(Instant::now()));
        // Every connection task returns its slot when it ends, and each ends by the deadline.
        let all = u32::try_from(self.limits.max_connections).unwrap_or(u32::MAX);
        let everyone_gone = slots.acquire_many(all);
        let bound = self.limits.grace_period + CLOSE_LINGER + Duration::from_secs(1);
        if tokio::time::timeout(bound, everyone_gone).await.is_err() {
            tracing::warn!("connections still open after the grace period; stopping anyway");
        }
    }

    fn builder(&self) -> auto::Builder<TokioExecutor> {
        let limits = &self.limits;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .keep_alive(true)
            // Our own deadlines replace hyper's header timer (see `activity`).
            .header_read_timeout(None)
            .max_buf_size(limits.max_header_bytes)
            .max_headers(limits.max_headers);
        builder
            .http2()
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(limits.max_concurrent_streams);
        builder
    }
}

/// Resolves on the first SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
