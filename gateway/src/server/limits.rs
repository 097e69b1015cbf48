//! How long, how large and how many: the bounds every listener of wisp puts on its clients.

use std::time::Duration;

/// The smallest `max_header_bytes` hyper can work with (its HTTP/1 read buffer's minimum).
pub const MIN_HEADER_BYTES: usize = 8 * 1024;

/// Bounds on a listener's connections. The defaults suit a gateway behind a cloud load
/// balancer (whose idle timeout, typically 60 s, stays below ours so it never reuses a
/// connection we are closing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections open at once; the next one waits in the listen backlog until one closes.
    pub max_connections: usize,
    /// A request's head (request line and headers) must arrive within this much time of the
    /// connection opening, or of its first byte on a kept-alive connection; else the
    /// connection is closed.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed (HTTP/1 keep-alive
    /// between requests, an HTTP/2 connection with no open stream).
    pub idle_timeout: Duration,
    /// Largest request head: HTTP/1 request line and headers, HTTP/2 header list (431 beyond).
    pub max_header_bytes: usize,
    /// Most header fields in an HTTP/1 request (431 beyond).
    pub max_headers: usize,
    /// Most requests in flight at once on one HTTP/2 connection.
    pub max_concurrent_streams: u32,
    /// On shutdown, how long in-flight requests get to finish before their connections are cut.
    pub grace_period: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_concurrent_streams: 100,
            grace_period: Duration::from_secs(30),
        }
    }
}

/// A limit that no server could run with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitsError {
    #[error("the maximum number of connections is 0; allow at least 1 (e.g. 10000)")]
    NoConnections,
    #[error(
        "the maximum number of connections {0} is more than {max}; lower it",
        max = u32::MAX
    )]
    TooManyConnections(usize),
    #[error("the header read timeout is 0; give clients time to send a request, e.g. 10s")]
    NoHeaderTime,
    #[error("the idle timeout is 0; keep idle connections open a while, e.g. 75s")]
    NoIdleTime,
    #[error(
        "the maximum header size {0} bytes is below the {MIN_HEADER_BYTES} bytes HTTP/1 needs; \
         raise it (e.g. 64Ki)"
    )]
    HeadersTooSmall(usize),
    #[error("the maximum header size {0} bytes is more than 4Gi; lower it (e.g. 64Ki)")]
    HeadersTooLarge(usize),
    #[error("the maximum number of headers is 0; allow at least one (e.g. 100)")]
    NoHeaders,
    #[error("the maximum number of HTTP/2 streams is 0; allow at least one (e.g. 100)")]
    NoStreams,
}

impl ServerLimits {
    /// Checks that a server can run with these limits (hyper panics on some of them).
    pub fn validate(&self) -> Result<(), LimitsError> {
        if self.max_connections == 0 {
            return Err(LimitsError::NoConnections);
        }
        if u32::try_from(self.max_connections).is_err() {
            return Err(LimitsError::TooManyConnections(self.max_connections));
        }
        if self.header_read_timeout.is_zero() {
            return Err(LimitsError::NoHeaderTime);
        }
        if self.idle_timeout.is_zero() {
            return Err(LimitsError::NoIdleTime);
        }
        if self.max_header_bytes < MIN_HEADER_BYTES {
            return Err(LimitsError::HeadersTooSmall(self.max_header_bytes));
        }
        if u32::try_from(self.max_header_bytes).is_err() {
            return Err(LimitsError::HeadersTooLarge(self.max_header_bytes));
        }
        if self.max_headers == 0 {
            return Err(LimitsError::NoHeaders);
        }
        if self.max_concurrent_streams == 0 {
            return Err(LimitsError::NoStreams);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(ServerLimits::default().validate(), Ok(()));
    }

    #[test]
    fn limits_no_server_could_run_with_are_refused() {
        let base = ServerLimits::default();
        let cases = [
            (
                ServerLimits {
                    max_connections: 0,
                    ..base.clone()
                },
                LimitsError::NoConnections,
            ),
            (
                ServerLimits {
                    max_header_bytes: 4096,
                    ..base.clone()
                },
                LimitsError::HeadersTooSmall(4096),
            ),
            (
                ServerLimits {
                    idle_timeout: Duration::ZERO,
                    ..base.clone()
                },
                LimitsError::NoIdleTime,
            ),
            (
                ServerLimits {
                    max_headers: 0,
                    ..base.clone()
                },
                LimitsError::NoHeaders,
            ),
        ];
        for (limits, expected) in cases {
            assert_eq!(limits.validate(), Err(expected));
        }
        assert!(
            LimitsError::HeadersTooSmall(4096)
                .to_string()
                .contains("raise it")
        );
    }
}
