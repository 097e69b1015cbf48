//! Closed-loop load: a fixed number of keep-alive HTTP/1.1 connections, each sending its next
//! request as soon as the previous response has been read whole (like `wrk`).

use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

use crate::target::Target;

#[derive(Debug, Clone)]
pub struct ClosedLoop {
    pub target: Target,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// What one run measured (after the warm-up).
pub struct RunResult {
    pub elapsed: Duration,
    pub ok: u64,
    pub non_2xx: u64,
    pub errors: u64,
    /// Latency of each successful request, in microseconds.
    pub latency_us: Histogram<u64>,
    /// The `instantiate` entry of `Server-Timing`, in microseconds, where the server sent one.
    pub instantiate_us: Histogram<u64>,
}

impl RunResult {
    fn new() -> Self {
        Self {
            elapsed: Duration::ZERO,
            ok: 0,
            non_2xx: 0,
            errors: 0,
            latency_us: new_histogram(),
            instantiate_us: new_histogram(),
        }
    }

    pub fn requests_per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// Adds another run's counts, time and histograms to this one.
    pub fn merge(&mut self, other: &RunResult) {
        self.elapsed += other.elapsed;
        self.ok += other.ok;
        self.non_2xx += other.non_2xx;
        self.errors += other.errors;
        let _ = self.latency_us.add(&other.latency_us);
        let _ = self.instantiate_us.add(&other.instantiate_us);
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("constant histogram bounds are valid")
}

impl ClosedLoop {
    /// Runs the load; connection failures are counted, not fatal.
    pub async fn run(&self) -> RunResult {
        let started = Instant::now();
        let measure_from = started + self.warmup;
        let stop_at = measure_from + self.duration;
        let workers: Vec<_> = (0..self.connections.max(1))
            .map(|_| tokio::spawn(connection_loop(self.target.clone(), measure_from, stop_at)))
            .collect();
        let mut total = RunResult::new();
        for worker in workers {
            if let Ok(result) = worker.await {
                total.merge(&result);
            }
        }
        // Workers report counts, not time: the measured span is the same for all of them.
        total.elapsed = self.duration;
        total
    }
}

async fn connection_loop(target: Target, measure_from: Instant, stop_at: Instant) -> RunResult {
    let mut result = RunResult::new();
    while Instant::now() < stop_at {
        let Ok(stream) = tokio::net::TcpStream::connect(target.addr).await else {
            result.errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok((mut sender, connection)) = http1::handshake(TokioIo::new(stream)).await else {
            result.errors += 1;
            continue;
        };
        let driver = tokio::spawn(connection);
        while Instant::now() < stop_at {
            let request = http::Request::get(target.path.as_str())
                .header(http::header::HOST, target.host.as_str())
                .body(Empty::<Bytes>::new());
            let Ok(request) = request else {
                result.errors += 1;
                break;
            };
            // Sending before the connection has finished the previous response fails with
            // "connection was not ready": wait for it (not timed: the request is not sent yet).
            if sender.ready().await.is_err() {
                result.errors += 1;
                break;
            }
            let sent = Instant::now();
            let response = match sender.send_request(request).await {
                Ok(response) => response,
                Err(_) => {
                    result.errors += 1;
                    break;
                }
            };
            let status = response.status();
            let instantiate = instantiate_micros(response.headers());
            if response.into_body().collect().await.is_err() {
                result.errors += 1;
                break;
            }
            if sent < measure_from {
                continue;
            }
            if status.is_success() {
                result.ok += 1;
                let _ = result
                    .latency_us
                    .record(sent.elapsed().as_micros().max(1) as u64);
                if let Some(micros) = instantiate {
                    let _ = result.instantiate_us.record(micros.max(1));
                }
            } else {
                result.non_2xx += 1;
            }
        }
        driver.abort();
    }
    result
}

/// Reads `instantiate;dur=<ms>` out of `Server-Timing`.
fn instantiate_micros(headers: &http::HeaderMap) -> Option<u64> {
    headers.get_all("server-timing").iter().find_map(|value| {
        let text = value.to_str().ok()?;
        text.split(',').find_map(|metric| {
            let metric = metric.trim();
            let rest = metric.strip_prefix("instantiate;dur=")?;
            let millis: f64 = rest.split(';').next()?.parse().ok()?;
            Some((millis * 1000.0).round() as u64)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_instantiate_time_from_server_timing() {
        let mut headers = http::HeaderMap::new();
        headers.append(
            "server-timing",
            "wait;dur=0.001, instantiate;dur=0.045, handler;dur=0.2"
                .parse()
                .unwrap(),
        );
        assert_eq!(instantiate_micros(&headers), Some(45));
        assert_eq!(instantiate_micros(&http::HeaderMap::new()), None);
    }
}
