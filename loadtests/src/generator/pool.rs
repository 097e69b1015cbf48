//! Keep-alive connections to one loopback address: HTTP/1.1 connections reused one request at a
//! time, or a few h2c (HTTP/2 with prior knowledge) connections shared by all requests.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Which HTTP the generator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 with keep-alive: one connection per request in flight, reused once answered.
    Http1,
    /// h2c with prior knowledge, requests multiplexed over this many connections (at least one).
    H2c { connections: usize },
}

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    #[error("connecting: {0}")]
    Connect(#[from] std::io::Error),
    #[error("{0}")]
    Http(#[from] hyper::Error),
}

type Body = Empty<Bytes>;

pub(crate) enum Pool {
    Http1 {
        addr: SocketAddr,
        idle: Mutex<Vec<http1::SendRequest<Body>>>,
    },
    H2c {
        addr: SocketAddr,
        connections: Vec<tokio::sync::Mutex<Option<http2::SendRequest<Body>>>>,
        next: AtomicUsize,
    },
}

impl Pool {
    pub(crate) fn new(addr: SocketAddr, protocol: Protocol) -> Self {
        match protocol {
            Protocol::Http1 => Pool::Http1 {
                addr,
                idle: Mutex::new(Vec::new()),
            },
            Protocol::H2c { connections } => Pool::H2c {
                addr,
                connections: (0..connections.max(1))
                    .map(|_| tokio::sync::Mutex::new(None))
                    .collect(),
                next: AtomicUsize::new(0),
            },
        }
    }

    /// Sends `request` and reads the response body whole; the status is what is kept.
    pub(crate) async fn send(&self, request: Request<Body>) -> Result<StatusCode, SendError> {
        match self {
            Pool::Http1 { addr, idle } => {
                let mut sender = match take_idle(idle).await {
                    Some(sender) => sender,
                    None => connect_http1(*addr).await?,
                };
                // An idle connection may not have finished its previous response yet.
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                response.into_body().collect().await?;
                // Only a connection whose response was read whole can carry the next request.
                if let Ok(mut idle) = idle.lock() {
                    idle.push(sender);
                }
                Ok(status)
            }
            Pool::H2c {
                addr,
                connections,
                next,
            } => {
                let slot = &connections[next.fetch_add(1, Ordering::Relaxed) % connections.len()];
                let mut sender = {
                    let mut slot = slot.lock().await;
                    match slot.as_ref() {
                        Some(live) if !live.is_closed() => live.clone(),
                        _ => {
                            let fresh = connect_h2c(*addr).await?;
                            *slot = Some(fresh.clone());
                            fresh
                        }
                    }
                };
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                response.into_body().collect().await?;
                Ok(status)
            }
        }
    }
}

/// An idle connection still open; ones the server has closed meanwhile are dropped.
async fn take_idle(
    idle: &Mutex<Vec<http1::SendRequest<Body>>>,
) -> Option<http1::SendRequest<Body>> {
    loop {
        let mut sender = idle.lock().ok()?.pop()?;
        if !sender.is_closed() && sender.ready().await.is_ok() {
            return Some(sender);
        }
    }
}

async fn connect_tcp(addr: SocketAddr) -> Result<TokioIo<tokio::net::TcpStream>, SendError> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    // Small requests must not wait for Nagle's algorithm.
    stream.set_nodelay(true)?;
    Ok(TokioIo::new(stream))
}

async fn connect_http1(addr: SocketAddr) -> Result<http1::SendRequest<Body>, SendError> {
    let (sender, connection) = http1::handshake(connect_tcp(addr).await?).await?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn connect_h2c(addr: SocketAddr) -> Result<http2::SendRequest<Body>, SendError> {
    let (sender, connection) =
        http2::handshake(TokioExecutor::new(), connect_tcp(addr).await?).await?;
    tokio::spawn(connection);
    Ok(sender)
}
