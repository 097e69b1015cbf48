//! The soak's load: open-loop streams of `GET`s to one Service through the gateway, each request
//! recorded with when it was due and how it ended. A stream can be paused (its Service is being
//! let go to zero): requests due meanwhile are not sent and not counted.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::ledger::{Outcome, Request};

/// How long one request may take before it counts as timed out: above any Service's own
/// request timeout in the soak, so the gateway's answer (504) comes first.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests of one stream unanswered at once before the next ones are dropped (and lost).
const MAX_IN_FLIGHT: usize = 2_000;
/// Idle keep-alive connections are closed client-side well before the gateway's own idle
/// timeout, so a request never races the server closing its connection.
const CLIENT_IDLE: Duration = Duration::from_millis(500);

/// A keep-alive HTTP/1.1 client for the gateway at `gateway` (loopback, checked by the caller).
#[derive(Clone)]
pub struct Gateway {
    client: Client<HttpConnector, Empty<Bytes>>,
    addr: SocketAddr,
}

impl Gateway {
    pub fn new(addr: SocketAddr) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(CLIENT_IDLE)
            .build(connector);
        Self { client, addr }
    }

    /// Sends `GET path` with `Host: host` and reads the answer whole.
    pub async fn get(&self, host: &str, path: &str) -> Outcome {
        let request = http::Request::get(format!("http://{}{path}", self.addr))
            .header(http::header::HOST, host)
            .body(Empty::new());
        let Ok(request) = request else {
            return Outcome::Broken;
        };
        let exchange = async {
            let response = self.client.request(request).await.map_err(|error| {
                if error.is_connect() {
                    Outcome::Refused
                } else {
                    Outcome::Broken
                }
            })?;
            let status = response.status().as_u16();
            response
                .into_body()
                .collect()
                .await
                .map_err(|_| Outcome::Broken)?;
            Ok::<_, Outcome>(Outcome::Status(status))
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(Ok(outcome) | Err(outcome)) => outcome,
            Err(_) => Outcome::TimedOut,
        }
    }
}

/// One stream's schedule and where it records.
pub struct Stream {
    pub gateway: Gateway,
    pub host: String,
    pub path: String,
    /// Requests per second.
    pub rate: f64,
    /// The run's clock.
    pub started: Instant,
    /// Requests are due until this long after `started`.
    pub until: Duration,
    /// While true, requests due are skipped.
    pub paused: watch::Receiver<bool>,
    pub records: Arc<Mutex<Vec<Request>>>,
}

impl Stream {
    /// Sends the stream's requests on schedule, then waits for the last answers.
    pub async fn run(self) {
        let mut in_flight = JoinSet::new();
        let interval = 1.0 / self.rate;
        for index in 0u64.. {
            let due = Duration::from_secs_f64(index as f64 * interval);
            if due >= self.until {
                break;
            }
            tokio::time::sleep_until((self.started + due).into()).await;
            while in_flight.try_join_next().is_some() {}
            if *self.paused.borrow() {
                continue;
            }
            if in_flight.len() >= MAX_IN_FLIGHT {
                self.record(due, Outcome::Dropped);
                continue;
            }
            let (gateway, host, path) =
                (self.gateway.clone(), self.host.clone(), self.path.clone());
            let (records, started) = (self.records.clone(), self.started);
            in_flight.spawn(async move {
                let outcome = gateway.get(&host, &path).await;
                let request = Request {
                    due,
                    ended: started.elapsed(),
                    outcome,
                };
                records
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(request);
            });
        }
        while in_flight.join_next().await.is_some() {}
    }

    fn record(&self, due: Duration, outcome: Outcome) {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Request {
                due,
                ended: due,
                outcome,
            });
    }
}
