//! Samples the target Services' scaling state from `/metrics` every 250 ms for the whole run,
//! turning increments of the cold-start counter into cold starts on the run's clock.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

use crate::record::{ColdStart, ScalingSample};
use crate::scaling_metrics::{ScalingState, scaling_state};

/// How often `/metrics` is read.
const INTERVAL: Duration = Duration::from_millis(250);

#[derive(Default)]
struct Samples {
    samples: Vec<ScalingSample>,
    cold_starts: Vec<ColdStart>,
}

/// A running sampler.
pub struct Sampler {
    shared: Arc<Mutex<Samples>>,
    task: JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling `metrics` for `services` (`(namespace, name)`), times relative to `started`.
    pub fn start(
        metrics: SocketAddr,
        services: BTreeSet<(String, String)>,
        started: Instant,
    ) -> Self {
        let shared = Arc::new(Mutex::new(Samples::default()));
        let sink = shared.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut previous: Option<ScalingState> = None;
            loop {
                tick.tick().await;
                let Some(text) = scrape(metrics).await else {
                    continue;
                };
                let at = started.elapsed();
                let state = scaling_state(&text, &services);
                let mut samples = sink.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(before) = previous {
                    let new = state.cold_starts.saturating_sub(before.cold_starts);
                    // The gateway's histogram gives their total wait: each gets the mean.
                    let waited = state.cold_start_wait_seconds - before.cold_start_wait_seconds;
                    let wait = (new > 0 && waited >= 0.0)
                        .then(|| Duration::from_secs_f64(waited / new as f64));
                    for _ in 0..new {
                        samples.cold_starts.push(ColdStart { at, wait });
                    }
                }
                previous = Some(state);
                samples.samples.push(ScalingSample {
                    at,
                    desired: state.desired,
                    actual: state.actual,
                    panic: state.panic,
                    queued: state.queued,
                });
            }
        });
        Self { shared, task }
    }

    /// The latest sample, if any.
    pub fn latest(&self) -> Option<ScalingSample> {
        self.lock().samples.last().copied()
    }

    /// Waits until the sampled ready replicas equal `replicas`; `Err(last seen)` after `timeout`.
    pub async fn wait_for_actual(&self, replicas: i64, timeout: Duration) -> Result<(), i64> {
        let deadline = Instant::now() + timeout;
        loop {
            let latest = self.latest();
            if latest.is_some_and(|s| s.actual == replicas) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(latest.map_or(-1, |s| s.actual));
            }
            tokio::time::sleep(INTERVAL).await;
        }
    }

    /// Stops sampling after one more scrape (so the last phase's cold starts are counted);
    /// returns the samples and the cold starts seen.
    pub async fn stop(&self) -> (Vec<ScalingSample>, Vec<ColdStart>) {
        tokio::time::sleep(INTERVAL * 2).await;
        self.task.abort();
        let mut samples = self.lock();
        (
            std::mem::take(&mut samples.samples),
            std::mem::take(&mut samples.cold_starts),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Samples> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `GET /metrics` over a fresh HTTP/1.1 connection; `None` when it fails (the next tick retries).
pub async fn scrape(metrics: SocketAddr) -> Option<String> {
    let stream = tokio::net::TcpStream::connect(metrics).await.ok()?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(connection);
    let request = http::Request::get("/metrics")
        .header(http::header::HOST, metrics.to_string())
        .body(Empty::<Bytes>::new())
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    let body = response.into_body().collect().await.ok()?.to_bytes();
    String::from_utf8(body.to_vec()).ok()
}
