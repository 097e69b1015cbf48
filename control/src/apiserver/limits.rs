//! How much of the server one burst of requests may take, as kube-apiserver bounds it without
//! priority and fairness: a cap on read-only and on mutating requests in flight
//! (`--max-requests-inflight`, `--max-mutating-requests-inflight`), answered past the cap with
//! 429 and `Retry-After: 1`, and a time limit on every request (`--request-timeout`), past which
//! it answers 504 and its work is dropped. Watches are long-running: they hold no slot and keep
//! their own `timeoutSeconds`, as on the real server.
//!
//! A client's `?timeout=` (kubectl's `--request-timeout`) shortens the limit for its request,
//! never lengthens it; a malformed one is a 400, as on kube-apiserver.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::path::{self, Target};
use super::status::{ApiError, Details};

/// kube-apiserver's default `--max-requests-inflight`.
pub const DEFAULT_MAX_REQUESTS_INFLIGHT: usize = 400;
/// kube-apiserver's default `--max-mutating-requests-inflight`.
pub const DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT: usize = 200;
/// kube-apiserver's default `--request-timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Seconds a refused client is told to wait; kube-apiserver says 1 too.
const RETRY_AFTER_SECONDS: u64 = 1;

/// The caps and the time limit; a cap of 0 means no cap, as for kube-apiserver's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Read-only requests (get, list, discovery…) served at once.
    pub max_requests_inflight: usize,
    /// Mutating requests (create, update, patch, delete) served at once.
    pub max_mutating_requests_inflight: usize,
    /// How long a request that is not a watch may run.
    pub request_timeout: Duration,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_requests_inflight: DEFAULT_MAX_REQUESTS_INFLIGHT,
            max_mutating_requests_inflight: DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// How a request is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A watch: not counted and not timed (it has `timeoutSeconds`).
    LongRunning,
    /// GET and HEAD that are not watches, and OPTIONS.
    ReadOnly,
    /// Everything else.
    Mutating,
}

impl Class {
    /// The class of a request with this method, path and raw query.
    pub fn of(method: &Method, path: &str, query: Option<&str>) -> Self {
        match *method {
            Method::GET | Method::HEAD => {
                let collection = matches!(
                    path::parse(path),
                    Ok(Target::Resource(target)) if target.name.is_none()
                );
                if collection && asks_to_watch(query) {
                    Self::LongRunning
                } else {
                    Self::ReadOnly
                }
            }
            Method::OPTIONS => Self::ReadOnly,
            _ => Self::Mutating,
        }
    }
}

/// `watch=true` (or `1`, or bare), read the way the query parser reads it.
fn asks_to_watch(query: Option<&str>) -> bool {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(key, _)| key == "watch")
        .last()
        .is_some_and(|(_, value)| matches!(value.as_ref(), "true" | "1" | ""))
}

/// The two caps in force; cheap to share.
#[derive(Debug, Clone)]
pub struct Inflight {
    limits: RequestLimits,
    read_only: Option<Arc<Semaphore>>,
    mutating: Option<Arc<Semaphore>>,
}

/// A request's slot, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
}

impl Inflight {
    /// Caps as `limits` says.
    pub fn new(limits: RequestLimits) -> Self {
        let cap = |size: usize| {
            (size > 0).then(|| Arc::new(Semaphore::new(size.min(Semaphore::MAX_PERMITS))))
        };
        Self {
            limits,
            read_only: cap(limits.max_requests_inflight),
            mutating: cap(limits.max_mutating_requests_inflight),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> RequestLimits {
        self.limits
    }

    /// A slot for a request of `class`, or the 429 to answer when its cap is reached.
    pub fn admit(&self, class: Class) -> Result<Slot, ApiError> {
        let semaphore = match class {
            Class::LongRunning => None,
            Class::ReadOnly => self.read_only.as_ref(),
            Class::Mutating => self.mutating.as_ref(),
        };
        let Some(semaphore) = semaphore else {
            return Ok(Slot { _permit: None });
        };
        match Arc::clone(semaphore).try_acquire_owned() {
            Ok(permit) => Ok(Slot {
                _permit: Some(permit),
            }),
            Err(_) => Err(self.too_many(class)),
        }
    }

    fn too_many(&self, class: Class) -> ApiError {
        let (cap, kind, flag) = match class {
            Class::Mutating => (
                self.limits.max_mutating_requests_inflight,
                "mutating",
                "--max-mutating-requests-inflight",
            ),
            _ => (
                self.limits.max_requests_inflight,
                "read-only",
                "--max-requests-inflight",
            ),
        };
        ApiError {
            code: StatusCode::TOO_MANY_REQUESTS,
            reason: "TooManyRequests",
            message: format!(
                "too many requests: the server is already serving {cap} {kind} requests, its \
                 limit ({flag}); retry after {RETRY_AFTER_SECONDS} second, or start the server \
                 with a larger {flag}"
            ),
            details: Some(Box::new(Details {
                retry_after_seconds: Some(RETRY_AFTER_SECONDS),
                ..Details::default()
            })),
        }
    }

    /// How long a request may run: `--request-timeout`, or the client's shorter `?timeout=`.
    pub fn timeout_for(&self, query: Option<&str>) -> Result<Duration, ApiError> {
        let server = self.limits.request_timeout;
        let Some(asked) = client_timeout(query)? else {
            return Ok(server);
        };
        // As kube-apiserver: zero means "no limit of mine", and a client cannot go beyond the
        // server's.
        Ok(if asked.is_zero() {
            server
        } else {
            asked.min(server)
        })
    }

    /// The 504 for a request that ran out of time.
    pub fn timed_out(&self, limit: Duration) -> ApiError {
        ApiError {
            code: StatusCode::GATEWAY_TIMEOUT,
            reason: "Timeout",
            message: format!(
                "request did not complete within {} (the server's --request-timeout, or the \
                 request's shorter ?timeout=) and was abandoned; a write may or may not have been \
                 applied: read the object before retrying",
                humantime::format_duration(limit)
            ),
            details: Some(Box::new(Details {
                retry_after_seconds: Some(0),
                ..Details::default()
            })),
        }
    }
}

/// The `timeout` query parameter (a Go duration such as `30s` or `1m30s`), when given.
fn client_timeout(query: Option<&str>) -> Result<Option<Duration>, ApiError> {
    let Some((_, value)) = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(key, _)| key == "timeout")
        .last()
    else {
        return Ok(None);
    };
    if value.is_empty() {
        return Ok(None);
    }
    go_duration(&value).map(Some).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid timeout specified in the request URL: {value:?}: give a duration such as \
             \"30s\" or \"1m30s\""
        ))
    })
}

/// Parses a Go `time.Duration` string (`300ms`, `1.5h`, `2h45m`), as kubectl sends it. A
/// negative one counts as zero; one too long for any clock is `None`, like any malformed one.
fn go_duration(text: &str) -> Option<Duration> {
    let (negative, mut rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_end];
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let seconds_per_unit = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        let part = Duration::try_from_secs_f64(value * seconds_per_unit).ok()?;
        total = total.checked_add(part)?;
    }
    Some(if negative { Duration::ZERO } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(read: usize, mutating: usize) -> Inflight {
        Inflight::new(RequestLimits {
            max_requests_inflight: read,
            max_mutating_requests_inflight: mutating,
            request_timeout: Duration::from_secs(60),
        })
    }

    #[test]
    fn watches_are_long_running_and_everything_else_counts() {
        let services = "/apis/serving.knative.dev/v1/namespaces/default/services";
        let get = |path: &str, query| Class::of(&Method::GET, path, query);
        assert_eq!(get(services, Some("watch=true")), Class::LongRunning);
        assert_eq!(
            get(services, Some("watch=1&timeoutSeconds=5")),
            Class::LongRunning
        );
        assert_eq!(get(services, Some("watch")), Class::LongRunning);
        assert_eq!(get(services, Some("watch=false")), Class::ReadOnly);
        assert_eq!(get(services, Some("limit=500")), Class::ReadOnly);
        assert_eq!(get(services, None), Class::ReadOnly);
        // A GET of one object is a get whatever its query says: it cannot dodge the cap.
        assert_eq!(
            get(&format!("{services}/hello"), Some("watch=true")),
            Class::ReadOnly
        );
        assert_eq!(get("/version", Some("watch=true")), Class::ReadOnly);
        assert_eq!(Class::of(&Method::POST, services, None), Class::Mutating);
        assert_eq!(
            Class::of(&Method::DELETE, services, Some("watch=true")),
            Class::Mutating
        );
        assert_eq!(
            Class::of(&Method::PATCH, &format!("{services}/hello"), None),
            Class::Mutating
        );
    }

    #[test]
    fn each_cap_refuses_past_its_size_and_frees_slots_when_they_drop() {
        let inflight = limits(2, 1);
        let first = inflight.admit(Class::ReadOnly).expect("first");
        let _second = inflight.admit(Class::ReadOnly).expect("second");
        let refused = inflight.admit(Class::ReadOnly).expect_err("third");
        assert_eq!(refused.code, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.reason, "TooManyRequests");
        assert!(
            refused.message.contains("--max-requests-inflight"),
            "{}",
            refused.message
        );
        assert_eq!(
            refused.details.as_ref().and_then(|d| d.retry_after_seconds),
            Some(1)
        );
        // The mutating cap is apart: reads filling theirs take nothing from writes.
        let write = inflight.admit(Class::Mutating).expect("a write");
        let refused = inflight.admit(Class::Mutating).expect_err("a second write");
        assert!(
            refused.message.contains("--max-mutating-requests-inflight"),
            "{}",
            refused.message
        );
        // Watches are never refused.
        for _ in 0..10 {
            inflight.admit(Class::LongRunning).expect("a watch");
        }
        drop(first);
        drop(write);
        inflight.admit(Class::ReadOnly).expect("a freed read slot");
        inflight.admit(Class::Mutating).expect("a freed write slot");
    }

    #[test]
    fn a_cap_of_zero_means_no_cap() {
        let inflight = limits(0, 0);
        let slots: Vec<Slot> = (0..1000)
            .map(|_| inflight.admit(Class::Mutating).expect("uncapped"))
            .collect();
        assert_eq!(slots.len(), 1000);
        inflight.admit(Class::ReadOnly).expect("uncapped");
    }

    #[test]
    fn the_client_timeout_only_shortens_the_servers() {
        let inflight = limits(1, 1);
        let timeout = |query| inflight.timeout_for(Some(query));
        assert_eq!(timeout("timeout=32s"), Ok(Duration::from_secs(32)));
        assert_eq!(timeout("timeout=1m30s"), Ok(Duration::from_secs(60)));
        assert_eq!(timeout("timeout=1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(timeout("timeout=0"), Ok(Duration::from_secs(60)));
        assert_eq!(timeout("timeout=0s"), Ok(Duration::from_secs(60)));
        assert_eq!(timeout("timeout=-5s"), Ok(Duration::from_secs(60)));
        assert_eq!(timeout("timeout="), Ok(Duration::from_secs(60)));
        assert_eq!(inflight.timeout_for(None), Ok(Duration::from_secs(60)));
        for bad in [
            "timeout=5",
            "timeout=abc",
            "timeout=1d",
            "timeout=.s",
            "timeout=1..2s",
            "timeout=99999999999999999999999h",
            "timeout=-",
        ] {
            let error = timeout(bad).expect_err(bad);
            assert_eq!(error.code, StatusCode::BAD_REQUEST);
            assert!(
                error.message.starts_with("invalid timeout"),
                "{}",
                error.message
            );
        }
    }

    #[test]
    fn go_durations_parse_as_go_parses_them() {
        assert_eq!(go_duration("2h45m"), Some(Duration::from_secs(9900)));
        assert_eq!(go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(go_duration("300us"), Some(Duration::from_micros(300)));
        assert_eq!(go_duration("10µs"), Some(Duration::from_micros(10)));
        assert_eq!(go_duration("7ns"), Some(Duration::from_nanos(7)));
        assert_eq!(go_duration(""), None);
        assert_eq!(go_duration("s"), None);
        assert_eq!(go_duration("5"), None);
    }

    #[test]
    fn the_timeout_status_names_the_limit() {
        let error = limits(1, 1).timed_out(Duration::from_secs(3));
        assert_eq!(error.code, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(error.reason, "Timeout");
        assert!(error.message.contains("3s"), "{}", error.message);
    }
}
