//! Requests measured one at a time: a sequence over one keep-alive connection (cold starts, each
//! to a different host), and a burst of requests released together on their own connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::sync::Barrier;

/// Latencies (µs) of successful requests and what happened to the rest.
pub struct Outcome {
    pub latency_us: Histogram<u64>,
    pub ok: u64,
    pub non_2xx: u64,
    pub errors: u64,
}

impl Default for Outcome {
    fn default() -> Self {
        Self::new()
    }
}

impl Outcome {
    pub fn new() -> Self {
        Self {
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3)
                .expect("constant histogram bounds are valid"),
            ok: 0,
            non_2xx: 0,
            errors: 0,
        }
    }

    fn record(&mut self, result: Result<(StatusCode, Duration), ()>) {
        match result {
            Ok((status, latency)) if status.is_success() => {
                self.ok += 1;
                let _ = self
                    .latency_us
                    .record(latency.as_micros().max(1).min(u128::from(u64::MAX)) as u64);
            }
            Ok(_) => self.non_2xx += 1,
            Err(()) => self.errors += 1,
        }
    }

    pub fn merge(&mut self, other: &Outcome) {
        let _ = self.latency_us.add(&other.latency_us);
        self.ok += other.ok;
        self.non_2xx += other.non_2xx;
        self.errors += other.errors;
    }
}

type Sender = http1::SendRequest<Empty<Bytes>>;

async fn connect(addr: SocketAddr) -> Result<Sender, ()> {
    let stream = tokio::net::TcpStream::connect(addr).await.map_err(|_| ())?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| ())?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn send(sender: &mut Sender, host: &str, path: &str) -> Result<(StatusCode, Duration), ()> {
    let request = http::Request::get(path)
        .header(http::header::HOST, host)
        .body(Empty::new())
        .map_err(|_| ())?;
    let sent = Instant::now();
    // The connection takes the next request only once it has finished the previous response;
    // sending before that fails with "connection was not ready" (a client-side error that a
    // balancer's slightly later end of response made visible).
    sender.ready().await.map_err(|_| ())?;
    let response = sender.send_request(request).await.map_err(|_| ())?;
    let status = response.status();
    response.into_body().collect().await.map_err(|_| ())?;
    Ok((status, sent.elapsed()))
}

/// One keep-alive connection that is opened again after a failure.
struct Reconnecting {
    addr: SocketAddr,
    sender: Option<Sender>,
}

impl Reconnecting {
    async fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            sender: connect(addr).await.ok(),
        }
    }

    async fn send(&mut self, host: &str, path: &str) -> Result<(StatusCode, Duration), ()> {
        let result = match self.sender.as_mut() {
            Some(live) => send(live, host, path).await,
            None => Err(()),
        };
        if result.is_err() {
            self.sender = connect(self.addr).await.ok();
        }
        result
    }
}

/// One request to each host in turn, over one keep-alive connection.
pub async fn sequence(addr: SocketAddr, hosts: &[String], path: &str) -> Outcome {
    let mut outcome = Outcome::new();
    let mut connection = Reconnecting::new(addr).await;
    for host in hosts {
        outcome.record(connection.send(host, path).await);
    }
    outcome
}

/// Two requests to each host in turn over one keep-alive connection: the first of each pair is
/// recorded in the first outcome, the second in the other — so both halves see the same
/// moments of the run (a cold start and the warm request right after it).
pub async fn pairs(addr: SocketAddr, hosts: &[String], path: &str) -> (Outcome, Outcome) {
    let (mut first, mut second) = (Outcome::new(), Outcome::new());
    let mut connection = Reconnecting::new(addr).await;
    for host in hosts {
        first.record(connection.send(host, path).await);
        second.record(connection.send(host, path).await);
    }
    (first, second)
}

/// `count` requests to `host`, each on its own connection, all released at once after every
/// connection is open; latency counts from the release.
pub async fn burst(addr: SocketAddr, host: &str, path: &str, count: usize) -> Outcome {
    let barrier = Arc::new(Barrier::new(count));
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let (barrier, host, path) = (barrier.clone(), host.to_owned(), path.to_owned());
            tokio::spawn(async move {
                let mut sender = connect(addr).await;
                barrier.wait().await;
                let mut outcome = Outcome::new();
                let result = match sender.as_mut() {
                    Ok(sender) => send(sender, &host, &path).await,
                    Err(()) => Err(()),
                };
                outcome.record(result);
                outcome
            })
        })
        .collect();
    let mut total = Outcome::new();
    for task in tasks {
        match task.await {
            Ok(outcome) => total.merge(&outcome),
            Err(_) => total.errors += 1,
        }
    }
    total
}
