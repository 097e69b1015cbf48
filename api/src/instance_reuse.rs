//! Instance reuse, a revision's explicit choice: how many requests one instance of its component
//! may serve in turn, how many at once (WASIp3 components only), and how long an idle instance is
//! kept. Set with `wisp.dev/` annotations on the revision template, or `wisp run`'s flags named
//! like `wasmtime serve`'s; parsed here once for admission, the data plane and the CLI.
//!
//! Reuse trades isolation for speed: guest globals and heap live on between the requests one
//! instance serves, so it is for components whose language runtime is expensive to start
//! (Python, JavaScript) and whose requests may see each other's leftovers.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

/// Annotations under this prefix are wisp's own; admission refuses keys it does not know.
pub const ANNOTATION_PREFIX: &str = "wisp.dev/";
/// Requests one instance may serve in its life (`wasmtime serve --max-instance-reuse-count`).
pub const MAX_REUSE_COUNT: &str = "wisp.dev/max-instance-reuse-count";
/// Requests one WASIp3 instance may serve at once (`--max-instance-concurrent-reuse-count`).
pub const MAX_CONCURRENT_REUSE_COUNT: &str = "wisp.dev/max-instance-concurrent-reuse-count";
/// How long an idle instance is kept for the next request (`--idle-instance-timeout`).
pub const IDLE_INSTANCE_TIMEOUT: &str = "wisp.dev/idle-instance-timeout";

/// Every `wisp.dev/` annotation a revision template may carry.
pub const KNOWN_ANNOTATIONS: [&str; 3] = [
    MAX_REUSE_COUNT,
    MAX_CONCURRENT_REUSE_COUNT,
    IDLE_INSTANCE_TIMEOUT,
];

/// Longest idle timeout accepted: an idle instance holds memory and a node instance slot.
pub const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// Most requests one WASIp3 instance may hold at once: they share its resource table (2,048
/// handles) and its memory cap, so beyond this they would fail each other rather than queue.
pub const MAX_CONCURRENT_PER_INSTANCE: u32 = 100;

/// A revision's reuse settings; `None` takes the default of the component's world.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstanceReuse {
    pub max_requests: Option<NonZeroU32>,
    pub max_concurrent: Option<NonZeroU32>,
    pub idle_timeout: Option<Duration>,
}

/// A `wisp.dev/` annotation admission refuses, with the words a user needs to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReuseAnnotationError {
    #[error(
        "unknown wisp annotation {key:?}: the wisp.dev/ annotations a revision may carry are {}",
        KNOWN_ANNOTATIONS.join(", ")
    )]
    UnknownKey { key: String },
    #[error("{key}={value:?}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
}

impl ReuseAnnotationError {
    /// The annotation key the error is about.
    pub fn key(&self) -> &str {
        match self {
            Self::UnknownKey { key } | Self::Invalid { key, .. } => key,
        }
    }
}

impl InstanceReuse {
    /// Reads the reuse settings from a revision's annotations, reporting every bad
    /// `wisp.dev/` key (unknown keys included), not only the first.
    pub fn from_annotations(
        annotations: &BTreeMap<String, String>,
    ) -> Result<Self, Vec<ReuseAnnotationError>> {
        let mut reuse = Self::default();
        let mut errors = Vec::new();
        for (key, value) in annotations
            .iter()
            .filter(|(key, _)| key.starts_with(ANNOTATION_PREFIX))
        {
            let invalid = |reason: String| ReuseAnnotationError::Invalid {
                key: key.clone(),
                value: value.clone(),
                reason,
            };
            match key.as_str() {
                MAX_REUSE_COUNT => match parse_count(value) {
                    Ok(count) => reuse.max_requests = Some(count),
                    Err(reason) => errors.push(invalid(reason)),
                },
                MAX_CONCURRENT_REUSE_COUNT => match parse_concurrent_count(value) {
                    Ok(count) => reuse.max_concurrent = Some(count),
                    Err(reason) => errors.push(invalid(reason)),
                },
                IDLE_INSTANCE_TIMEOUT => match parse_idle_timeout(value) {
                    Ok(timeout) => reuse.idle_timeout = Some(timeout),
                    Err(reason) => errors.push(invalid(reason)),
                },
                _ => errors.push(ReuseAnnotationError::UnknownKey { key: key.clone() }),
            }
        }
        if errors.is_empty() {
            Ok(reuse)
        } else {
            Err(errors)
        }
    }
}

/// A whole number of requests, at least 1.
pub fn parse_count(text: &str) -> Result<NonZeroU32, String> {
    let trimmed = text.trim();
    let number: u32 = trimmed
        .parse()
        .map_err(|_| format!("expected a whole number of requests from 1 to {}", u32::MAX))?;
    NonZeroU32::new(number)
        .ok_or_else(|| "must be at least 1 (1 means a fresh instance per request)".into())
}

/// A number of requests one instance may hold at once: 1 to [`MAX_CONCURRENT_PER_INSTANCE`].
pub fn parse_concurrent_count(text: &str) -> Result<NonZeroU32, String> {
    let count = parse_count(text)?;
    if count.get() > MAX_CONCURRENT_PER_INSTANCE {
        return Err(format!(
            "must be at most {MAX_CONCURRENT_PER_INSTANCE}: the requests on one instance share its \
             2048 resource handles and its memory; more replicas or instances take more load"
        ));
    }
    Ok(count)
}

/// A duration as `wasmtime serve` reads `--idle-instance-timeout`: a bare number is seconds,
/// or a number with `s`, `ms`, `us`/`μs` or `ns`; more than zero, at most an hour.
pub fn parse_idle_timeout(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let expected = || {
        format!(
            "expected a duration such as 1s, 500ms or 2 (seconds); units s, ms, us, ns (got {trimmed:?})"
        )
    };
    let value: f64 = number.parse().map_err(|_| expected())?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "μs" => value / 1e6,
        "ns" => value / 1e9,
        _ => return Err(expected()),
    };
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err("must be more than zero".into());
    }
    if seconds > MAX_IDLE_TIMEOUT.as_secs_f64() {
        return Err(format!(
            "must be at most {}s: an idle instance holds memory and a node instance slot",
            MAX_IDLE_TIMEOUT.as_secs()
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_wisp_annotations_keep_every_default() {
        let parsed = InstanceReuse::from_annotations(&annotations(&[(
            "autoscaling.knative.dev/min-scale",
            "1",
        )]));
        assert_eq!(parsed, Ok(InstanceReuse::default()));
    }

    #[test]
    fn the_three_settings_are_read() {
        let parsed = InstanceReuse::from_annotations(&annotations(&[
            (MAX_REUSE_COUNT, "128"),
            (MAX_CONCURRENT_REUSE_COUNT, "16"),
            (IDLE_INSTANCE_TIMEOUT, "1500ms"),
        ]));
        assert_eq!(
            parsed,
            Ok(InstanceReuse {
                max_requests: NonZeroU32::new(128),
                max_concurrent: NonZeroU32::new(16),
                idle_timeout: Some(Duration::from_millis(1500)),
            })
        );
    }

    #[test]
    fn durations_read_as_wasmtime_serve_reads_them() {
        assert_eq!(parse_idle_timeout("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_idle_timeout("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_idle_timeout("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_idle_timeout("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_idle_timeout("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_idle_timeout("10μs"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_idle_timeout("100ns"), Ok(Duration::from_nanos(100)));
        for bad in ["", "s", "1m", "1h", "-1", "0", "0ms", "1e3", "nan", "7200"] {
            assert!(parse_idle_timeout(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn an_instance_holds_a_bounded_number_of_requests_at_once() {
        assert_eq!(
            parse_concurrent_count("100"),
            Ok(NonZeroU32::new(100).unwrap())
        );
        let too_many = parse_concurrent_count("101").unwrap_err();
        assert!(too_many.starts_with("must be at most 100"), "{too_many}");
        assert!(parse_concurrent_count("4294967295").is_err());
    }

    #[test]
    fn every_bad_key_is_reported_with_what_to_write_instead() {
        let errors = InstanceReuse::from_annotations(&annotations(&[
            (MAX_REUSE_COUNT, "0"),
            (MAX_CONCURRENT_REUSE_COUNT, "many"),
            (IDLE_INSTANCE_TIMEOUT, "1m"),
            ("wisp.dev/max-instances", "3"),
        ]))
        .unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 4, "{text:#?}");
        assert!(text[0].starts_with("wisp.dev/idle-instance-timeout=\"1m\": expected a duration"));
        assert_eq!(
            text[1],
            "wisp.dev/max-instance-concurrent-reuse-count=\"many\": expected a whole number of requests from 1 to 4294967295"
        );
        assert_eq!(
            text[2],
            "wisp.dev/max-instance-reuse-count=\"0\": must be at least 1 (1 means a fresh instance per request)"
        );
        assert_eq!(
            text[3],
            "unknown wisp annotation \"wisp.dev/max-instances\": the wisp.dev/ annotations a revision may carry are wisp.dev/max-instance-reuse-count, wisp.dev/max-instance-concurrent-reuse-count, wisp.dev/idle-instance-timeout"
        );
        assert_eq!(errors[3].key(), "wisp.dev/max-instances");
    }
}
