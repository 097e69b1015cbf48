//! Typed route configuration, as the control plane will feed it (Knative `Route.spec.traffic`
//! after the controller resolved `latestRevision` to a name), and its validation.
//!
//! Validation happens once, when a table is built, so the request path only ever sees routes whose
//! percents sum to 100 and whose host names are well formed.

use std::collections::HashSet;

/// Longest DNS label; a route's host label (`{route}` or `{tag}-{route}`) must fit in one.
pub const MAX_LABEL: usize = 63;

/// One route: where `{name}.{namespace}.{domain}` and its tag hosts send traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteConfig {
    pub namespace: String,
    pub name: String,
    pub traffic: Vec<TrafficTarget>,
}

/// One entry of a route's traffic block. A revision may appear in several entries (for instance
/// once with a percent and once only tagged); entries with `percent: 0` are reachable only
/// through their tag host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrafficTarget {
    pub revision: String,
    pub percent: u32,
    pub tag: Option<String>,
}

impl TrafficTarget {
    /// An untagged entry carrying `percent` of the route's traffic.
    pub fn new(revision: impl Into<String>, percent: u32) -> Self {
        Self {
            revision: revision.into(),
            percent,
            tag: None,
        }
    }

    /// The same entry, also reachable at `{tag}-{route}.{namespace}.{domain}`.
    pub fn tagged(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }
}

/// Why a route was rejected or a host of it was left out; always names the route.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("route {namespace}/{name}: {problem}")]
pub struct RouteError {
    pub namespace: String,
    pub name: String,
    pub problem: RouteProblem,
}

/// The problem itself, kept apart from the route's identity so callers can match on it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteProblem {
    #[error("traffic is empty")]
    EmptyTraffic,
    #[error("traffic percents sum to {0}, not 100")]
    PercentSum(u64),
    #[error("traffic entry {index} names no revision")]
    EmptyRevision { index: usize },
    #[error("tag {0:?} appears more than once")]
    DuplicateTag(String),
    #[error("{what} {value:?} is not a DNS label (lowercase a-z, 0-9 and '-', at most 63)")]
    InvalidName { what: &'static str, value: String },
    #[error("route {0:?} is defined more than once; the first definition is kept")]
    DuplicateRoute(String),
    #[error("host {host:?} is already served by {owner}; this one is left out")]
    HostConflict { host: String, owner: String },
}

impl RouteConfig {
    /// A route with the given traffic block.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        traffic: Vec<TrafficTarget>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            traffic,
        }
    }

    /// Checks what Knative's admission would: names usable in host labels, a non-empty traffic
    /// block whose percents sum to exactly 100, named revisions and unique tags.
    pub fn validate(&self) -> Result<(), RouteError> {
        self.problem()
            .map_or(Ok(()), |problem| Err(self.error(problem)))
    }

    /// Wraps a problem with this route's identity.
    pub(crate) fn error(&self, problem: RouteProblem) -> RouteError {
        RouteError {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            problem,
        }
    }

    fn problem(&self) -> Option<RouteProblem> {
        if !is_dns_label(&self.namespace) {
            return Some(invalid("namespace", &self.namespace));
        }
        if !is_dns_label(&self.name) {
            return Some(invalid("route name", &self.name));
        }
        if self.traffic.is_empty() {
            return Some(RouteProblem::EmptyTraffic);
        }
        let mut tags = HashSet::new();
        for (index, target) in self.traffic.iter().enumerate() {
            if target.revision.is_empty() {
                return Some(RouteProblem::EmptyRevision { index });
            }
            if let Some(tag) = &target.tag {
                // The tag host's first label is `{tag}-{route}`, which must itself be a label.
                if !is_dns_label(tag) || tag.len() + 1 + self.name.len() > MAX_LABEL {
                    return Some(invalid("tag", tag));
                }
                if !tags.insert(tag.as_str()) {
                    return Some(RouteProblem::DuplicateTag(tag.clone()));
                }
            }
        }
        let sum: u64 = self.traffic.iter().map(|t| u64::from(t.percent)).sum();
        (sum != 100).then_some(RouteProblem::PercentSum(sum))
    }
}

fn invalid(what: &'static str, value: &str) -> RouteProblem {
    RouteProblem::InvalidName {
        what,
        value: value.to_owned(),
    }
}

/// RFC 1123 label as Kubernetes names use it: lowercase, so host matching can lowercase the
/// request's host and compare exactly.
pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_LABEL
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(traffic: Vec<TrafficTarget>) -> RouteConfig {
        RouteConfig::new("default", "hello", traffic)
    }

    fn problem(config: &RouteConfig) -> RouteProblem {
        config.validate().unwrap_err().problem
    }

    #[test]
    fn valid_routes_pass() {
        route(vec![TrafficTarget::new("hello-00001", 100)])
            .validate()
            .unwrap();
        // The same revision twice: once carrying traffic, once only tagged.
        route(vec![
            TrafficTarget::new("hello-00001", 100),
            TrafficTarget::new("hello-00001", 0).tagged("current"),
            TrafficTarget::new("hello-00002", 0).tagged("candidate"),
        ])
        .validate()
        .unwrap();
    }

    #[test]
    fn percents_must_sum_to_100() {
        let config = route(vec![
            TrafficTarget::new("a", 50),
            TrafficTarget::new("b", 40),
        ]);
        assert_eq!(problem(&config), RouteProblem::PercentSum(90));
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("default/hello"), "{message}");
        assert!(message.contains("90"), "{message}");
        // No overflow on absurd percents.
        let config = route(vec![
            TrafficTarget::new("a", u32::MAX),
            TrafficTarget::new("b", u32::MAX),
        ]);
        assert_eq!(
            problem(&config),
            RouteProblem::PercentSum(2 * u64::from(u32::MAX))
        );
    }

    #[test]
    fn empty_traffic_is_rejected() {
        assert_eq!(problem(&route(vec![])), RouteProblem::EmptyTraffic);
    }

    #[test]
    fn duplicate_tags_are_rejected() {
        let config = route(vec![
            TrafficTarget::new("a", 100).tagged("x"),
            TrafficTarget::new("b", 0).tagged("x"),
        ]);
        assert_eq!(problem(&config), RouteProblem::DuplicateTag("x".into()));
    }

    #[test]
    fn names_must_be_labels() {
        let bad = RouteConfig::new("Default", "hello", vec![TrafficTarget::new("a", 100)]);
        assert!(matches!(
            problem(&bad),
            RouteProblem::InvalidName {
                what: "namespace",
                ..
            }
        ));
        let bad = RouteConfig::new("default", "he.llo", vec![TrafficTarget::new("a", 100)]);
        assert!(matches!(
            problem(&bad),
            RouteProblem::InvalidName {
                what: "route name",
                ..
            }
        ));
        let bad = route(vec![TrafficTarget::new("a", 100).tagged("")]);
        assert!(matches!(
            problem(&bad),
            RouteProblem::InvalidName { what: "tag", .. }
        ));
        let long_tag = "t".repeat(MAX_LABEL - "hello".len());
        let bad = route(vec![TrafficTarget::new("a", 100).tagged(long_tag)]);
        assert!(matches!(
            problem(&bad),
            RouteProblem::InvalidName { what: "tag", .. }
        ));
        let bad = route(vec![TrafficTarget::new("", 100)]);
        assert_eq!(problem(&bad), RouteProblem::EmptyRevision { index: 0 });
    }
}
