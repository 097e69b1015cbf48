//! The request path: route by host, go through the revision's throttler (which counts demand,
//! queues while there is no capacity and pokes the autoscaler at zero), run the request on the
//! granted replica, and answer with proxy, request-id and `Server-Timing` headers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Body;
use wisp_activator::ThrottleError;
use wisp_api::revision_key::RevisionKey;
use wisp_runtime::{RequestOutcome, RequestTimings, plain_response};

use super::DataPlane;
use super::body::GatewayBody;
use super::revision::RevisionEntry;
use crate::metrics::FailureReason;
use crate::request_id;
use crate::routing::{authority_of, forwarded};

/// Seconds a client is told to wait before retrying a request the activator turned away.
const RETRY_AFTER_SECONDS: &str = "1";

impl DataPlane {
    /// Serves one request that arrived from `peer`. Never fails: every outcome is a response.
    pub async fn handle<B>(
        &self,
        mut request: Request<B>,
        peer: SocketAddr,
    ) -> Response<GatewayBody>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let arrived = Instant::now();
        let request_id = request_id::assign(request.headers_mut());
        let authority = authority_of(&request).unwrap_or("").to_owned();
        let routed = self.inner.router.lookup(&authority);
        let mut response = match routed {
            Err(not_found) => {
                gateway_response(StatusCode::NOT_FOUND, not_found.body(), Duration::ZERO)
            }
            Ok(resolved) => match self.lookup(&resolved.namespace, &resolved.revision) {
                None => gateway_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "revision {}/{} of route {} is not ready yet; retry shortly\n",
                        resolved.namespace, resolved.revision, resolved.route
                    ),
                    Duration::ZERO,
                )
                .with_retry_after(),
                Some(entry) => {
                    let trusted = &self.inner.config.trusted_proxies;
                    forwarded::apply(request.headers_mut(), peer, "http", &authority, trusted);
                    self.dispatch(&entry, request, request_id.clone(), arrived)
                        .await
                }
            },
        };
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(request_id::HEADER, value);
        }
        response
    }

    /// Sends `GET path` to the revision `key` the way a request from a route would go (through
    /// its throttler, starting a replica if it has none), as a kubelet's HTTP readiness probe
    /// reaches a container. Returns the status and the start of the body (for messages), or
    /// `None` when the revision is not here. The guest runs on the guests' runtime when the
    /// data plane has one (see [`DataPlaneConfig::guest_runtime`]).
    pub async fn probe(&self, key: &RevisionKey, path: &str) -> Option<(StatusCode, String)> {
        let Some(guests) = self.inner.config.guest_runtime.clone() else {
            return self.probe_here(key, path).await;
        };
        let (this, key, path) = (self.clone(), key.clone(), path.to_owned());
        on_runtime(&guests, async move { this.probe_here(&key, &path).await })
            .await
            .flatten()
    }

    async fn probe_here(&self, key: &RevisionKey, path: &str) -> Option<(StatusCode, String)> {
        /// Enough of a failing body to say why in a condition message.
        const BODY_EXCERPT: usize = 300;
        let entry = self.entry(key)?;
        let request = Request::get(path)
            .header(header::USER_AGENT, "wisp-probe")
            .body(http_body_util::Empty::<Bytes>::new())
            .ok()?;
        let request_id: Arc<str> = Arc::from(format!("probe-{}", key.name));
        let response = self
            .dispatch(&entry, request, request_id, Instant::now())
            .await;
        let status = response.status();
        let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(
            response.into_body(),
            64 * 1024,
        ))
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
        let mut text = String::from_utf8_lossy(&body).trim().to_owned();
        if text.len() > BODY_EXCERPT {
            let cut = (0..=BODY_EXCERPT)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            text.truncate(cut);
            text.push('…');
        }
        Some((status, text))
    }

    /// Through the revision's throttler to a replica.
    async fn dispatch<B>(
        &self,
        entry: &Arc<RevisionEntry>,
        request: Request<B>,
        request_id: Arc<str>,
        arrived: Instant,
    ) -> Response<GatewayBody>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let metrics = &entry.metrics;
        let in_flight = metrics.in_flight();
        let cold = entry.ready() == 0;
        let deadline = arrived + entry.timeout();
        let lease = match entry.throttler.acquire_until(deadline.into()).await {
            Ok(lease) => lease,
            Err(error) => {
                let queued = arrived.elapsed();
                let response = throttle_error_response(entry, &error, queued);
                metrics.observe_request(response.status().as_u16(), queued);
                metrics.observe_failure(match error {
                    ThrottleError::Timeout => FailureReason::Timeout,
                    ThrottleError::QueueFull { .. } | ThrottleError::Closed => {
                        FailureReason::Overload
                    }
                });
                return response;
            }
        };
        let queued = arrived.elapsed();
        let cold_wait = cold.then(|| entry.cold_start_wait(arrived, queued));
        if let Some(wait) = cold_wait {
            metrics.cold_start(wait);
        }
        let response = lease
            .backend()
            .replica()
            .handle_until(request, request_id, deadline)
            .await;
        if let Some(timings) = response.extensions().get::<RequestTimings>()
            && !timings.instantiate.is_zero()
        {
            self.inner
                .node_metrics
                .instance_started(timings.instantiate);
        }
        metrics.observe_request(response.status().as_u16(), arrived.elapsed());
        if let Some(reason) = response
            .extensions()
            .get::<RequestOutcome>()
            .and_then(|outcome| failure_reason(*outcome))
        {
            metrics.observe_failure(reason);
        }
        let (mut parts, body) = response.into_parts();
        prepend_queue_timing(&mut parts.headers, queued, cold_wait);
        Response::from_parts(parts, GatewayBody::new(body, Some(lease), Some(in_flight)))
    }
}

fn failure_reason(outcome: RequestOutcome) -> Option<FailureReason> {
    match outcome {
        RequestOutcome::Served => None,
        RequestOutcome::Overload => Some(FailureReason::Overload),
        RequestOutcome::GuestFault => Some(FailureReason::GuestFault),
        RequestOutcome::Timeout => Some(FailureReason::Timeout),
        RequestOutcome::BodyTooLarge => Some(FailureReason::BodyTooLarge),
    }
}

fn throttle_error_response(
    entry: &RevisionEntry,
    error: &ThrottleError,
    queued: Duration,
) -> Response<GatewayBody> {
    let key = entry.key();
    match error {
        ThrottleError::QueueFull { depth } => gateway_response(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "revision {}/{} is overloaded: {depth} requests are already waiting for capacity; retry shortly\n",
                key.namespace, key.name
            ),
            queued,
        )
        .with_retry_after(),
        ThrottleError::Timeout => {
            let why = match entry.unschedulable() {
                Some(reason) => format!(" ({reason})"),
                None => String::new(),
            };
            gateway_response(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "activator request timeout: revision {}/{} had no free replica within its {}s timeout{why}\n",
                    key.namespace,
                    key.name,
                    entry.timeout().as_secs_f64()
                ),
                queued,
            )
        }
        ThrottleError::Closed => gateway_response(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "revision {}/{} was removed while the request waited; retry\n",
                key.namespace, key.name
            ),
            queued,
        )
        .with_retry_after(),
    }
}

/// A response the gateway writes itself, with the time it queued as its only timing.
fn gateway_response(status: StatusCode, text: String, queued: Duration) -> Response<GatewayBody> {
    let mut response = plain_response(status, text);
    prepend_queue_timing(response.headers_mut(), queued, None);
    response.map(GatewayBody::plain)
}

trait WithRetryAfter {
    fn with_retry_after(self) -> Self;
}

impl WithRetryAfter for Response<GatewayBody> {
    fn with_retry_after(mut self) -> Self {
        self.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
        self
    }
}

/// `Server-Timing: queue;dur=…` first, then the replica's own entries (wait, instantiate,
/// handler), as one header value.
/// `queue` is the whole wait in the activator; `cold`, on a request that arrived while the
/// revision had no replica, the part of it spent waiting for one to start.
fn prepend_queue_timing(headers: &mut http::HeaderMap, queued: Duration, cold: Option<Duration>) {
    let mut queue = format!("queue;dur={:.3}", queued.as_secs_f64() * 1e3);
    if let Some(cold) = cold {
        queue.push_str(&format!(", cold;dur={:.3}", cold.as_secs_f64() * 1e3));
    }
    let value = match headers.get(SERVER_TIMING).and_then(|v| v.to_str().ok()) {
        Some(rest) if !rest.is_empty() => format!("{queue}, {rest}"),
        _ => queue,
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(SERVER_TIMING, value);
    }
}

const SERVER_TIMING: &str = "server-timing";

/// Runs `work` on `runtime` and waits for it from wherever the caller runs; `None` when it
/// panicked or the runtime is shutting down.
async fn on_runtime<T: Send + 'static>(
    runtime: &tokio::runtime::Handle,
    work: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    runtime.spawn(work).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_time_leads_the_server_timing() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            SERVER_TIMING,
            HeaderValue::from_static("wait;dur=0.001, instantiate;dur=0.020, handler;dur=0.100"),
        );
        prepend_queue_timing(&mut headers, Duration::from_micros(1500), None);
        assert_eq!(
            headers[SERVER_TIMING],
            "queue;dur=1.500, wait;dur=0.001, instantiate;dur=0.020, handler;dur=0.100"
        );
        let mut empty = http::HeaderMap::new();
        prepend_queue_timing(&mut empty, Duration::ZERO, None);
        assert_eq!(empty[SERVER_TIMING], "queue;dur=0.000");
        let mut cold = http::HeaderMap::new();
        prepend_queue_timing(
            &mut cold,
            Duration::from_micros(2500),
            Some(Duration::from_micros(300)),
        );
        assert_eq!(cold[SERVER_TIMING], "queue;dur=2.500, cold;dur=0.300");
    }

    #[test]
    fn work_handed_to_another_runtime_runs_on_its_threads() {
        let guests = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("test-guests")
            .build()
            .unwrap();
        let control = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let thread = control.block_on(on_runtime(guests.handle(), async {
            std::thread::current().name().map(str::to_owned)
        }));
        assert_eq!(thread.flatten().as_deref(), Some("test-guests"));
    }
}
