//! The immutable route table: every full host the gateway serves, mapped to where its traffic
//! goes. Built once per configuration change, then only read.
//!
//! Building resolves all ambiguity up front. Route `a-b` and tag `a` of route `b` in the same
//! namespace both claim `a-b.{ns}.{domain}`; the route's own host wins (it is the Service's URL,
//! while the tag host is an extra) and the tag host is reported as a conflict, never guessed at
//! request time. Between two claims of the same kind the earlier route in (namespace, name)
//! order wins, so the outcome does not depend on the order configurations arrived in.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::Arc;

use super::config::{RouteConfig, RouteError, RouteProblem};
use super::host::{self, Domain};
use super::split::WeightedTargets;

/// Where a host's requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// A route's main host: a weighted pick among the revisions with percent > 0.
    Split(WeightedTargets),
    /// A tag host: always exactly this revision.
    Revision(Arc<str>),
}

/// One host's entry: the route it belongs to and its destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostEntry {
    pub namespace: Arc<str>,
    pub route: Arc<str>,
    /// The tag, for a tag host.
    pub tag: Option<Arc<str>>,
    pub destination: Destination,
}

/// The outcome of routing one request. Cheap to produce: every field shares the table's strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub namespace: Arc<str>,
    pub route: Arc<str>,
    pub revision: Arc<str>,
    /// Set when the request came in on a tag host.
    pub tag: Option<Arc<str>>,
}

/// No route serves this host; the gateway answers 404 with [`NotFound::body`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no route for host {host:?}")]
pub struct NotFound {
    /// The host as the client sent it (port and case included), for the message.
    pub host: String,
}

/// Longest host echoed back in a 404 body; the rest is cut so a client cannot make us write a
/// large body.
const MAX_ECHOED_HOST: usize = 200;

impl NotFound {
    /// Short plain-text body naming the host, with control characters replaced so the echo is
    /// safe to print in a terminal or log.
    pub fn body(&self) -> String {
        not_found_body(&self.host)
    }
}

/// The 404 body for `host`: `no route for host "…"\n`.
pub fn not_found_body(host: &str) -> String {
    let mut shown: String = host
        .chars()
        .take(MAX_ECHOED_HOST)
        .map(|c| if c.is_control() || c == '"' { '?' } else { c })
        .collect();
    if host.chars().count() > MAX_ECHOED_HOST {
        shown.push('…');
    }
    format!("no route for host \"{shown}\"\n")
}

/// An immutable host → destination map for one domain.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    domain: Domain,
    hosts: HashMap<String, HostEntry>,
}

/// A table and what was left out of it. One bad route must not keep every other route from
/// being served, so building never fails as a whole; the control plane reports the problems on
/// the offending Routes' status.
#[derive(Debug)]
pub struct Built {
    pub table: RouteTable,
    pub problems: Vec<RouteError>,
}

impl RouteTable {
    /// Builds the table for `domain`: invalid routes are skipped, conflicting hosts resolved as
    /// the module documentation says, and both reported in [`Built::problems`].
    /// Takes the routes owned or borrowed: the data plane builds from the routes it keeps,
    /// without a copy of each.
    pub fn build<R: Borrow<RouteConfig>>(
        domain: Domain,
        routes: impl IntoIterator<Item = R>,
    ) -> Built {
        let mut routes: Vec<R> = routes.into_iter().collect();
        // Already in order when built from the data plane's routes; sorting them is one pass.
        routes.sort_by(|a, b| {
            let (a, b) = (a.borrow(), b.borrow());
            (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name))
        });
        let mut problems = Vec::new();
        let mut hosts = HashMap::with_capacity(routes.len());
        let mut valid = Vec::with_capacity(routes.len());
        let mut previous: Option<(&str, &str)> = None;

        // Pass 1: route hosts, which take precedence over any tag host.
        for route in routes.iter().map(Borrow::borrow) {
            let key = (route.namespace.as_str(), route.name.as_str());
            if previous == Some(key) {
                problems.push(route.error(RouteProblem::DuplicateRoute(route.name.clone())));
                continue;
            }
            previous = Some(key);
            if let Err(error) = route.validate() {
                problems.push(error);
                continue;
            }
            let namespace: Arc<str> = Arc::from(route.namespace.as_str());
            let name: Arc<str> = Arc::from(route.name.as_str());
            let split = route
                .traffic
                .iter()
                .map(|t| (t.revision.as_str(), t.percent));
            // Validation guarantees percents summing to 100, hence a positive weight.
            let Some(split) = WeightedTargets::new(split) else {
                continue;
            };
            let entry = HostEntry {
                namespace: namespace.clone(),
                route: name.clone(),
                tag: None,
                destination: Destination::Split(split),
            };
            let host = domain.route_host(&route.namespace, &route.name);
            if let Some(problem) = insert(&mut hosts, host, entry) {
                problems.push(route.error(problem));
                continue;
            }
            valid.push((route, namespace, name));
        }

        // Pass 2: tag hosts of the routes that made it in.
        for (route, namespace, name) in valid {
            for target in &route.traffic {
                let Some(tag) = &target.tag else { continue };
                let entry = HostEntry {
                    namespace: namespace.clone(),
                    route: name.clone(),
                    tag: Some(Arc::from(tag.as_str())),
                    destination: Destination::Revision(Arc::from(target.revision.as_str())),
                };
                let host = domain.tag_host(&route.namespace, &route.name, tag);
                if let Some(problem) = insert(&mut hosts, host, entry) {
                    problems.push(route.error(problem));
                }
            }
        }

        Built {
            table: RouteTable { domain, hosts },
            problems,
        }
    }

    /// Like [`RouteTable::build`], but any problem fails the whole build; for callers (tests,
    /// a static manifest file) that want all or nothing.
    pub fn try_build<R: Borrow<RouteConfig>>(
        domain: Domain,
        routes: impl IntoIterator<Item = R>,
    ) -> Result<Self, RouteError> {
        let built = Self::build(domain, routes);
        match built.problems.into_iter().next() {
            Some(error) => Err(error),
            None => Ok(built.table),
        }
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// Number of hosts served (route hosts and tag hosts).
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The entry for a `Host` / `:authority` value, normalised first.
    pub fn entry(&self, authority: &str) -> Option<&HostEntry> {
        let key = host::normalize(authority)?;
        self.hosts.get(key.as_ref())
    }

    /// Routes one request: the host's revision, picking by percent with `random` (uniform over
    /// `u64`) when the host is a split. Pure, so tests pass fixed or seeded numbers.
    pub fn resolve(&self, authority: &str, random: u64) -> Result<Resolved, NotFound> {
        let entry = self.entry(authority).ok_or_else(|| NotFound {
            host: authority.to_owned(),
        })?;
        let revision = match &entry.destination {
            Destination::Split(split) => split.pick(random).clone(),
            Destination::Revision(revision) => revision.clone(),
        };
        Ok(Resolved {
            namespace: entry.namespace.clone(),
            route: entry.route.clone(),
            revision,
            tag: entry.tag.clone(),
        })
    }

    /// Every served host with its entry, in no particular order.
    pub fn hosts(&self) -> impl Iterator<Item = (&str, &HostEntry)> {
        self.hosts
            .iter()
            .map(|(host, entry)| (host.as_str(), entry))
    }
}

/// Inserts unless the host is taken; then says who has it.
fn insert(
    hosts: &mut HashMap<String, HostEntry>,
    host: String,
    entry: HostEntry,
) -> Option<RouteProblem> {
    match hosts.entry(host) {
        Entry::Vacant(slot) => {
            slot.insert(entry);
            None
        }
        Entry::Occupied(slot) => Some(RouteProblem::HostConflict {
            host: slot.key().clone(),
            owner: Owner(slot.get()).to_string(),
        }),
    }
}

/// "route ns/name" or "tag t of route ns/name", for conflict messages.
struct Owner<'a>(&'a HostEntry);

impl fmt::Display for Owner<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        if let Some(tag) = &e.tag {
            write!(f, "tag {tag:?} of ")?;
        }
        write!(f, "route {}/{}", e.namespace, e.route)
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::TrafficTarget;
    use super::super::split::XorShift;
    use super::*;
    use std::collections::HashMap;

    fn route(ns: &str, name: &str, traffic: Vec<TrafficTarget>) -> RouteConfig {
        RouteConfig::new(ns, name, traffic)
    }

    fn table(routes: Vec<RouteConfig>) -> RouteTable {
        RouteTable::try_build(Domain::default(), routes).unwrap()
    }

    fn revision(table: &RouteTable, host: &str, random: u64) -> String {
        table.resolve(host, random).unwrap().revision.to_string()
    }

    #[test]
    fn route_host_splits_and_tag_hosts_pin() {
        let t = table(vec![route(
            "default",
            "hello",
            vec![
                TrafficTarget::new("hello-00001", 50).tagged("blue"),
                TrafficTarget::new("hello-00002", 50),
                TrafficTarget::new("hello-00003", 0).tagged("green"),
            ],
        )]);
        assert_eq!(t.len(), 3);
        let mut rng = XorShift::seeded(1);
        let mut counts: HashMap<String, usize> = HashMap::new();
        for _ in 0..2_000 {
            *counts
                .entry(revision(&t, "hello.default.localhost:8080", rng.next_u64()))
                .or_default() += 1;
        }
        assert_eq!(counts.len(), 2, "{counts:?}");
        for rev in ["hello-00001", "hello-00002"] {
            let share = counts[rev] as f64 / 2_000.0;
            assert!((share - 0.5).abs() <= 0.05, "{rev}: {share}");
        }
        // Tag hosts, including the percent-0 one, reach exactly their revision.
        for random in [0, 1 << 63, u64::MAX] {
            assert_eq!(
                revision(&t, "blue-hello.default.localhost", random),
                "hello-00001"
            );
            assert_eq!(
                revision(&t, "green-hello.default.localhost", random),
                "hello-00003"
            );
        }
        let green = t.resolve("GREEN-hello.default.localhost.", 0).unwrap();
        assert_eq!(&*green.namespace, "default");
        assert_eq!(&*green.route, "hello");
        assert_eq!(green.tag.as_deref(), Some("green"));
        assert_eq!(t.resolve("hello.default.localhost", 0).unwrap().tag, None);
    }

    #[test]
    fn host_forms_resolve_to_the_same_route() {
        let t = table(vec![route("ns", "r", vec![TrafficTarget::new("r-1", 100)])]);
        for host in [
            "r.ns.localhost",
            "R.NS.LocalHost",
            "r.ns.localhost.",
            "r.ns.localhost:80",
        ] {
            assert_eq!(revision(&t, host, 0), "r-1", "{host}");
        }
    }

    #[test]
    fn unknown_hosts_are_not_found() {
        let t = table(vec![route("ns", "r", vec![TrafficTarget::new("r-1", 100)])]);
        for host in [
            "r.ns.example.com",
            "r.other.localhost",
            "x.ns.localhost",
            "ns.localhost",
            "",
            "r.ns.localhost:x",
        ] {
            let error = t.resolve(host, 0).unwrap_err();
            assert_eq!(error.host, host);
        }
        let error = t.resolve("nope.default.localhost:8080", 0).unwrap_err();
        assert_eq!(
            error.body(),
            "no route for host \"nope.default.localhost:8080\"\n"
        );
    }

    #[test]
    fn not_found_body_is_short_and_printable() {
        let body = not_found_body(&format!("a\u{7}\"{}", "x".repeat(1_000)));
        assert!(body.starts_with("no route for host \"a??x"), "{body}");
        assert!(body.chars().count() < 240, "{}", body.len());
        assert!(body.ends_with("…\"\n"));
    }

    #[test]
    fn custom_domain() {
        let domain = Domain::new("Example.com").unwrap();
        let t = RouteTable::try_build(
            domain,
            vec![route("ns", "r", vec![TrafficTarget::new("r-1", 100)])],
        )
        .unwrap();
        assert_eq!(revision(&t, "r.ns.example.COM:443", 0), "r-1");
        assert!(t.resolve("r.ns.localhost", 0).is_err());
    }

    #[test]
    fn route_a_b_and_tag_a_of_route_b() {
        // Separate namespaces-free case: both hosts exist and are distinct when they do not
        // collide, and exact lookup picks the right one.
        let t = table(vec![
            route("ns", "a-b", vec![TrafficTarget::new("a-b-1", 100)]),
            route(
                "ns",
                "b",
                vec![
                    TrafficTarget::new("b-1", 100),
                    TrafficTarget::new("b-2", 0).tagged("c"),
                ],
            ),
        ]);
        assert_eq!(revision(&t, "a-b.ns.localhost", 0), "a-b-1");
        assert_eq!(revision(&t, "b.ns.localhost", 0), "b-1");
        assert_eq!(revision(&t, "c-b.ns.localhost", 0), "b-2");

        // Now they collide: route `a-b` owns `a-b.ns`, tag `a` of route `b` is reported.
        let built = RouteTable::build(
            Domain::default(),
            vec![
                route(
                    "ns",
                    "b",
                    vec![
                        TrafficTarget::new("b-1", 100),
                        TrafficTarget::new("b-2", 0).tagged("a"),
                    ],
                ),
                route("ns", "a-b", vec![TrafficTarget::new("a-b-1", 100)]),
            ],
        );
        let t = built.table;
        let resolved = t.resolve("a-b.ns.localhost", 0).unwrap();
        assert_eq!(&*resolved.route, "a-b");
        assert_eq!(&*resolved.revision, "a-b-1");
        assert_eq!(resolved.tag, None);
        assert_eq!(revision(&t, "b.ns.localhost", 0), "b-1");
        assert_eq!(built.problems.len(), 1, "{:?}", built.problems);
        let problem = &built.problems[0];
        assert_eq!(problem.name, "b");
        assert!(
            matches!(&problem.problem, RouteProblem::HostConflict { host, .. } if host == "a-b.ns.localhost")
        );
        assert!(problem.to_string().contains("route ns/a-b"), "{problem}");

        // The same tag in another namespace is no conflict at all.
        let t = table(vec![
            route("one", "a-b", vec![TrafficTarget::new("x", 100)]),
            route(
                "two",
                "b",
                vec![
                    TrafficTarget::new("y", 100),
                    TrafficTarget::new("z", 0).tagged("a"),
                ],
            ),
        ]);
        assert_eq!(revision(&t, "a-b.one.localhost", 0), "x");
        assert_eq!(revision(&t, "a-b.two.localhost", 0), "z");
    }

    #[test]
    fn tag_vs_tag_conflict_is_decided_by_route_order() {
        // Tag `x-y` of route `z` and tag `x` of route `y-z` share `x-y-z.ns`.
        let routes = vec![
            route(
                "ns",
                "z",
                vec![TrafficTarget::new("z-1", 100).tagged("x-y")],
            ),
            route(
                "ns",
                "y-z",
                vec![TrafficTarget::new("yz-1", 100).tagged("x")],
            ),
        ];
        let mut reversed = routes.clone();
        reversed.reverse();
        for routes in [routes, reversed] {
            let built = RouteTable::build(Domain::default(), routes);
            // "y-z" sorts before "z", so its tag wins either way.
            assert_eq!(revision(&built.table, "x-y-z.ns.localhost", 0), "yz-1");
            assert_eq!(built.problems.len(), 1);
            assert_eq!(built.problems[0].name, "z");
        }
    }

    #[test]
    fn invalid_and_duplicate_routes_are_skipped_not_fatal() {
        let built = RouteTable::build(
            Domain::default(),
            vec![
                route("ns", "good", vec![TrafficTarget::new("g-1", 100)]),
                route("ns", "bad", vec![TrafficTarget::new("b-1", 90)]),
                route("ns", "empty", vec![]),
                route("ns", "good", vec![TrafficTarget::new("g-2", 100)]),
            ],
        );
        assert_eq!(revision(&built.table, "good.ns.localhost", 0), "g-1");
        assert!(built.table.resolve("bad.ns.localhost", 0).is_err());
        assert!(built.table.resolve("empty.ns.localhost", 0).is_err());
        let mut problems: Vec<_> = built
            .problems
            .iter()
            .map(|p| (p.name.as_str(), p.problem.clone()))
            .collect();
        problems.sort_by_key(|(name, _)| *name);
        assert_eq!(
            problems,
            [
                ("bad", RouteProblem::PercentSum(90)),
                ("empty", RouteProblem::EmptyTraffic),
                ("good", RouteProblem::DuplicateRoute("good".into())),
            ]
        );
        let error = RouteTable::try_build(
            Domain::default(),
            vec![route("ns", "bad", vec![TrafficTarget::new("b-1", 90)])],
        )
        .unwrap_err();
        assert_eq!(error.problem, RouteProblem::PercentSum(90));
    }
}
