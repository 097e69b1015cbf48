//! Where a scenario sends its load: the gateway (loopback only, checked by
//! [`crate::target::Target`]) and the Service(s) behind it, named by Host header.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use wisp_api::names::{validate_dns1035_label, validate_dns1123_label};

use super::values::{self, Checked, deserialize_checked};
use crate::target::{Target, TargetError};

/// Host names of Services through the gateway: `{name}.{namespace}.localhost`.
pub const DOMAIN: &str = "localhost";

/// The `target:` of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioTarget {
    /// The gateway's loopback address; `None` leaves it to the runner (the `wisp up` it started).
    pub gateway: Option<SocketAddr>,
    /// Which Service(s) the requests are for.
    pub services: TargetServices,
    /// Request path and query, starting with `/`.
    pub path: String,
}

/// The Service(s) a scenario loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetServices {
    /// `host: hello.default.localhost`: one Service, by the Host header as written.
    Host(String),
    /// `service: hello` (and `namespace:`, default `default`): one Service, by name.
    Service {
        /// The Service's name.
        name: String,
        /// Its namespace.
        namespace: String,
    },
    /// `services: {prefix, count, …}`: many Services, requests spread round-robin over them.
    Many(ManyServices),
}

/// `services: {prefix: many, count: 20, namespace: default, template: hello.yaml}`: Services
/// `many-1` … `many-20`, made from one Service manifest (its name replaced), and loaded in
/// turn: request `i` of a phase goes to Service `i mod count`, so a burst of `count` hits each
/// Service once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManyServices {
    /// Names are `{prefix}-1` to `{prefix}-{count}`.
    pub prefix: String,
    /// How many Services (at least 1).
    pub count: u32,
    /// Their namespace (default `default`).
    pub namespace: String,
    /// A Knative Service manifest to copy under each name; relative to the scenario file.
    pub template: Option<PathBuf>,
}

impl ManyServices {
    /// The Service names, `{prefix}-1` to `{prefix}-{count}`.
    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        (1..=self.count).map(|i| format!("{}-{i}", self.prefix))
    }
}

impl ScenarioTarget {
    /// The Host header of every Service loaded, in round-robin order.
    pub fn hosts(&self) -> Vec<String> {
        match &self.services {
            TargetServices::Host(host) => vec![host.clone()],
            TargetServices::Service { name, namespace } => vec![service_host(name, namespace)],
            TargetServices::Many(many) => many
                .names()
                .map(|name| service_host(&name, &many.namespace))
                .collect(),
        }
    }

    /// Ready-to-use targets (one per host) through this scenario's gateway, or `default` when
    /// the file names none.
    pub fn targets(&self, default: SocketAddr) -> Result<Vec<Target>, TargetError> {
        let gateway = self.gateway.unwrap_or(default);
        let base = Target::parse(&format!("http://{gateway}{}", self.path))?;
        Ok(self
            .hosts()
            .into_iter()
            .map(|host| Target {
                host,
                ..base.clone()
            })
            .collect())
    }
}

/// `{name}.{namespace}.localhost`, the host the gateway routes to that Service.
pub fn service_host(name: &str, namespace: &str) -> String {
    format!("{name}.{namespace}.{DOMAIN}")
}

fn gateway<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<SocketAddr>, D::Error> {
    struct GatewayVisitor;
    impl<'de> Visitor<'de> for GatewayVisitor {
        type Value = SocketAddr;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a loopback address and port, e.g. 127.0.0.1:8080")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<SocketAddr, E> {
            // The loopback rule is the load generator's own, so the two never disagree.
            match Target::parse(&format!("http://{text}/")) {
                Ok(target) => Ok(target.addr),
                Err(TargetError::NotLoopback(ip)) => Err(E::custom(format!(
                    "gateway {text}: {ip} is not a loopback address; load is only ever sent to \
                     127.0.0.0/8 or ::1, so write e.g. 127.0.0.1:8080"
                ))),
                Err(TargetError::Malformed(_)) => Err(E::custom(format!(
                    "gateway {text:?} is not a loopback IP address and port (host names are not \
                     resolved); write e.g. 127.0.0.1:8080 or [::1]:8080"
                ))),
            }
        }
    }
    deserializer.deserialize_str(GatewayVisitor).map(Some)
}

fn host<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    struct HostVisitor;
    impl<'de> Visitor<'de> for HostVisitor {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a Host header, e.g. hello.default.localhost")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
            if text.is_empty() || text.contains(['/', ' ']) {
                return Err(E::custom(format!(
                    "host {text:?} is not a host name; write just the Service's host, e.g. \
                     hello.default.localhost (the path goes in `path:`)"
                )));
            }
            Ok(text.to_owned())
        }
    }
    deserializer.deserialize_str(HostVisitor).map(Some)
}

fn path<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    struct PathVisitor;
    impl<'de> Visitor<'de> for PathVisitor {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a request path, e.g. / or /?ms=100")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
            if !text.starts_with('/') || text.contains(' ') {
                return Err(E::custom(format!(
                    "path {text:?} must start with / and have no spaces; write e.g. / or /?ms=100"
                )));
            }
            Ok(text.to_owned())
        }
    }
    deserializer.deserialize_str(PathVisitor).map(Some)
}

fn service_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    values::label(deserializer, "service", validate_dns1035_label).map(Some)
}

fn namespace<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    values::label(deserializer, "namespace", validate_dns1123_label).map(Some)
}

fn prefix<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    values::label(deserializer, "prefix", validate_dns1035_label)
}

fn service_count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    values::count(deserializer, "count", 1)
}

fn template<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<PathBuf>, D::Error> {
    values::non_empty(
        deserializer,
        "the template",
        "../../samples/knative/hello.yaml",
    )
    .map(|path| Some(PathBuf::from(path)))
}

/// The mapping as written, before `check`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTarget {
    #[serde(default, deserialize_with = "gateway")]
    gateway: Option<SocketAddr>,
    #[serde(default, deserialize_with = "host")]
    host: Option<String>,
    #[serde(default, deserialize_with = "service_name")]
    service: Option<String>,
    #[serde(default, deserialize_with = "namespace")]
    namespace: Option<String>,
    #[serde(default)]
    services: Option<ManyServices>,
    #[serde(default, deserialize_with = "path")]
    path: Option<String>,
}

impl Checked for ScenarioTarget {
    type Raw = RawTarget;
    const EXPECTING: &'static str =
        "a target mapping such as {gateway: 127.0.0.1:8080, service: hello}";

    fn check(raw: RawTarget) -> Result<Self, String> {
        let services = match (raw.host, raw.service, raw.services) {
            (Some(host), None, None) if raw.namespace.is_none() => TargetServices::Host(host),
            (None, Some(name), None) => TargetServices::Service {
                name,
                namespace: raw.namespace.unwrap_or_else(|| "default".to_owned()),
            },
            (None, None, Some(many)) if raw.namespace.is_none() => TargetServices::Many(many),
            (None, None, None) => {
                return Err("the target names no Service; write `service: hello` (with \
                            `namespace:` if not default), `host: hello.default.localhost`, or \
                            `services: {prefix: many, count: 20}`"
                    .into());
            }
            (_, None, _) => {
                return Err(
                    "`namespace` goes with `service`; with `host` write the full host, \
                            with `services` put `namespace` inside it"
                        .into(),
                );
            }
            _ => {
                return Err(
                    "the target names its Service more than one way; keep one of \
                            `service`, `host` or `services`"
                        .into(),
                );
            }
        };
        let target = ScenarioTarget {
            gateway: raw.gateway,
            services,
            path: raw.path.unwrap_or_else(|| "/".to_owned()),
        };
        Ok(target)
    }
}

impl<'de> Deserialize<'de> for ScenarioTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_checked(deserializer)
    }
}

/// The mapping as written, before `check`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMany {
    #[serde(deserialize_with = "prefix")]
    prefix: String,
    #[serde(deserialize_with = "service_count")]
    count: u32,
    #[serde(default, deserialize_with = "namespace")]
    namespace: Option<String>,
    #[serde(default, deserialize_with = "template")]
    template: Option<PathBuf>,
}

impl Checked for ManyServices {
    type Raw = RawMany;
    const EXPECTING: &'static str = "a mapping such as {prefix: many, count: 20}";

    fn check(raw: RawMany) -> Result<Self, String> {
        let longest = format!("{}-{}", raw.prefix, raw.count);
        if let Err(error) = validate_dns1035_label(&longest) {
            return Err(format!(
                "the last Service would be named {longest:?}, which is not valid: {error}; \
                 shorten the prefix"
            ));
        }
        Ok(ManyServices {
            prefix: raw.prefix,
            count: raw.count,
            namespace: raw.namespace.unwrap_or_else(|| "default".to_owned()),
            template: raw.template,
        })
    }
}

impl<'de> Deserialize<'de> for ManyServices {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_checked(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(yaml: &str) -> Result<ScenarioTarget, String> {
        serde_norway::from_str(yaml).map_err(|error| error.to_string())
    }

    #[test]
    fn names_the_service_three_ways() {
        let one = target("{gateway: 127.0.0.1:8080, service: hello}").unwrap();
        assert_eq!(one.gateway, Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(one.hosts(), ["hello.default.localhost"]);
        assert_eq!(one.path, "/");

        let host = target("{host: x.y.localhost, path: /?ms=5}").unwrap();
        assert_eq!(host.gateway, None);
        assert_eq!(host.hosts(), ["x.y.localhost"]);

        let many = target("services: {prefix: m, count: 3, namespace: ns}").unwrap();
        assert_eq!(
            many.hosts(),
            ["m-1.ns.localhost", "m-2.ns.localhost", "m-3.ns.localhost"]
        );
        let targets = many.targets("127.0.0.1:9".parse().unwrap()).unwrap();
        assert_eq!(targets.len(), 3);
        assert_eq!(targets[2].host, "m-3.ns.localhost");
        assert_eq!(targets[2].addr, "127.0.0.1:9".parse().unwrap());
    }

    #[test]
    fn refuses_what_is_not_loopback_or_ambiguous() {
        let cases = [
            (
                "{gateway: 'example.com:80', service: a}",
                "host names are not resolved",
            ),
            (
                "{gateway: '10.0.0.1:8080', service: a}",
                "10.0.0.1 is not a loopback address",
            ),
            (
                "{gateway: '[::2]:80', service: a}",
                "is not a loopback address",
            ),
            (
                "{gateway: 127.0.0.1, service: a}",
                "write e.g. 127.0.0.1:8080",
            ),
            (
                "{service: a, host: a.default.localhost}",
                "more than one way",
            ),
            (
                "{host: a.b.localhost, namespace: b}",
                "`namespace` goes with `service`",
            ),
            ("{gateway: '127.0.0.1:1'}", "names no Service"),
            ("{service: Hello}", "service \"Hello\" is not valid"),
            ("{service: a, path: x}", "must start with /"),
            (
                "{host: 'http://a.b.localhost/'}",
                "write just the Service's host",
            ),
            ("{service: a, port: 1}", "unknown field `port`"),
            ("services: {prefix: m, count: 0}", "count 0 is too small"),
        ];
        for (yaml, expected) in cases {
            let message = target(yaml).unwrap_err();
            assert!(message.contains(expected), "{yaml}: {message}");
        }
        let long = format!("services: {{prefix: {}, count: 100}}", "a".repeat(60));
        assert!(target(&long).unwrap_err().contains("shorten the prefix"));
    }
}
