//! Drives one connection: polls hyper's connection future while watching its deadlines, and on
//! drain asks it to close, then cuts it when its requests are done or the grace period ends.

use std::fmt::Display;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper_util::server::graceful::GracefulConnection;
use tokio::sync::watch;
use tokio::time::sleep_until;

use super::CLOSE_LINGER;
use super::activity::{Activity, Expiry, deadline};
use super::limits::ServerLimits;
use crate::metrics::{CloseReason, ConnectionMetrics};

pub(super) struct Driver {
    pub limits: ServerLimits,
    pub metrics: ConnectionMetrics,
    pub activity: Arc<Activity>,
    pub peer: SocketAddr,
}

/// How a connection ended.
enum Outcome {
    /// By itself: the client closed it, or hyper ended it (an error, `Connection: close`).
    Finished,
    Expired(Expiry),
    /// Shutdown began at this instant.
    Draining(Instant),
}

impl Driver {
    /// Runs `connection` to its end; `draining` turns `Some(start)` when the server drains.
    pub async fn drive<C>(self, connection: C, mut draining: watch::Receiver<Option<Instant>>)
    where
        C: GracefulConnection,
        C::Error: Display,
    {
        tokio::pin!(connection);
        let outcome = loop {
            if let Some(started) = *draining.borrow() {
                break Outcome::Draining(started);
            }
            let snapshot = self.activity.snapshot();
            let due = deadline(&snapshot, &self.limits);
            tokio::select! {
                result = connection.as_mut() => {
                    self.log_end(result);
                    break Outcome::Finished;
                }
                () = self.activity.changed() => {}
                () = wait_until(due.map(|(at, _)| at)) => {
                    // Activity between computing the deadline and now may have moved it on.
                    let now = Instant::now();
                    if let Some((at, why)) = deadline(&self.activity.snapshot(), &self.limits)
                        && at <= now
                    {
                        break Outcome::Expired(why);
                    }
                }
                changed = draining.changed() => {
                    if changed.is_err() {
                        // The server is gone without draining (its task was dropped): close.
                        break Outcome::Draining(Instant::now());
                    }
                }
            }
        };
        match outcome {
            Outcome::Finished => {}
            Outcome::Expired(why) => {
                let reason = match why {
                    Expiry::HeaderRead => CloseReason::HeaderTimeout,
                    Expiry::Idle => CloseReason::IdleTimeout,
                };
                tracing::debug!(peer = %self.peer, reason = reason.as_str(), "closing the connection");
                self.metrics.closed_by_server(reason);
                // Dropping the connection closes the socket.
            }
            Outcome::Draining(started) => self.drain(connection, started).await,
        }
        self.metrics.finished();
    }

    /// Asks the connection to close once its requests are answered (idle HTTP/1 connections
    /// close at once, HTTP/2 ones get a GOAWAY); a connection with nothing in flight gets
    /// [`CLOSE_LINGER`] to do so, one with requests in flight until the grace period ends.
    async fn drain<C>(&self, mut connection: std::pin::Pin<&mut C>, started: Instant)
    where
        C: GracefulConnection,
        C::Error: Display,
    {
        connection.as_mut().graceful_shutdown();
        let hard = started + self.limits.grace_period;
        loop {
            let quiet = self.activity.in_flight() == 0;
            let until = if quiet {
                hard.min(Instant::now() + CLOSE_LINGER)
            } else {
                hard
            };
            tokio::select! {
                result = connection.as_mut() => {
                    self.log_end(result);
                    return;
                }
                () = self.activity.changed() => {}
                () = sleep_until(until.into()) => {
                    if self.activity.in_flight() > 0 {
                        tracing::debug!(
                            peer = %self.peer,
                            "cutting the connection: the shutdown grace period ended"
                        );
                        self.metrics.closed_by_server(CloseReason::DrainDeadline);
                    } else {
                        tracing::debug!(peer = %self.peer, "closing an idle connection on shutdown");
                    }
                    return;
                }
            }
        }
    }

    fn log_end<E: Display>(&self, result: Result<(), E>) {
        if let Err(error) = result {
            tracing::debug!(peer = %self.peer, %error, "connection ended with an error");
        }
    }
}

/// Sleeps until `at`, or forever when there is no deadline.
async fn wait_until(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
