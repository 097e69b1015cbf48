//! Whether this node should get traffic: what `/healthz` answers (on the metrics port, and on
//! the gateway port for a load balancer's checks) and what the Node's `Ready` condition says.
//!
//! A node is healthy only between its initial load (every revision and route the API held at
//! start-up is served, see [`crate::sync::run`]) and the start of its drain: before, a balancer
//! would send requests a half-loaded gateway answers 404; after, the node is about to stop.

use http::{Method, StatusCode};
use tokio::sync::watch;

/// Where the node is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Loading what the API holds; not ready for traffic yet.
    Loading,
    /// Serving everything the API holds.
    Serving,
    /// Shutting down: still answers, but asks to be taken out of rotation.
    Draining,
}

/// The shared, observable phase of a node. Cheap to clone; every clone sees the same phase.
#[derive(Clone, Debug)]
pub struct Health {
    phase: watch::Sender<Phase>,
}

impl Health {
    /// A node that starts loading.
    pub fn loading() -> Self {
        Self {
            phase: watch::Sender::new(Phase::Loading),
        }
    }

    /// A process with nothing to load (`wisp serve`): healthy from the start.
    pub fn serving() -> Self {
        Self {
            phase: watch::Sender::new(Phase::Serving),
        }
    }

    /// The initial load is done. A node already draining stays draining.
    pub fn loaded(&self) {
        self.phase.send_if_modified(|phase| {
            let changed = *phase == Phase::Loading;
            if changed {
                *phase = Phase::Serving;
            }
            changed
        });
    }

    /// The node is shutting down: from now on it is never healthy again.
    pub fn drain(&self) {
        self.phase.send_replace(Phase::Draining);
    }

    /// The phase now.
    pub fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// A receiver that wakes on every phase change.
    pub fn subscribe(&self) -> watch::Receiver<Phase> {
        self.phase.subscribe()
    }
}

/// What `/healthz` answers in `phase`: 200 `ok` only while serving.
pub fn answer(phase: Phase) -> (StatusCode, &'static str) {
    match phase {
        Phase::Serving => (StatusCode::OK, "ok"),
        Phase::Loading => (
            StatusCode::SERVICE_UNAVAILABLE,
            "loading the revisions and routes the API holds\n",
        ),
        Phase::Draining => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
    }
}

/// Whether a request to the gateway port is a health check rather than a request for a route:
/// `GET` or `HEAD` of `/healthz` whose host (port aside) is missing, empty, an IP literal or
/// `localhost`. Route hosts are always `{route}.{namespace}.{domain}` (at least two dots
/// before the domain), so none of these is ever a route's host and no user path is shadowed:
/// `GET /healthz` with `Host: hello.default.localhost` still reaches the Service.
pub fn is_gateway_check(method: &Method, path: &str, host: Option<&str>) -> bool {
    if path != "/healthz" || (method != Method::GET && method != Method::HEAD) {
        return false;
    }
    let Some(host) = host else {
        return true;
    };
    // A bare IPv6 literal has colons of its own: it is an IP before any port is stripped.
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = strip_port(host);
    name.is_empty()
        || name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok()
}

/// `host` without its `:port`, and an IPv6 literal without its brackets.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_only_between_the_load_and_the_drain() {
        let health = Health::loading();
        assert_eq!(answer(health.phase()).0, StatusCode::SERVICE_UNAVAILABLE);
        health.loaded();
        assert_eq!(answer(health.phase()), (StatusCode::OK, "ok"));
        health.drain();
        assert_eq!(answer(health.phase()).0, StatusCode::SERVICE_UNAVAILABLE);
        health.loaded();
        assert_eq!(health.phase(), Phase::Draining);
    }

    #[test]
    fn gateway_checks_never_take_a_route_host() {
        let get = Method::GET;
        for host in [
            None,
            Some(""),
            Some("10.0.0.7"),
            Some("10.0.0.7:8080"),
            Some("[::1]:8080"),
            Some("::1"),
            Some("localhost"),
            Some("LOCALHOST:8080"),
        ] {
            assert!(is_gateway_check(&get, "/healthz", host), "{host:?}");
        }
        assert!(is_gateway_check(&Method::HEAD, "/healthz", None));
        for host in [
            "hello.default.localhost",
            "hello.default.localhost:8080",
            "hello.default.example.com",
        ] {
            assert!(!is_gateway_check(&get, "/healthz", Some(host)), "{host}");
        }
        assert!(!is_gateway_check(&Method::POST, "/healthz", None));
        assert!(!is_gateway_check(&get, "/healthz/x", None));
        assert!(!is_gateway_check(&get, "/", Some("127.0.0.1")));
    }
}
