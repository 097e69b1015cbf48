//! The routes a data plane serves, by namespace and name, changed one route at a time, with a
//! count of the routes that name each revision: whether a revision is reachable is one lookup,
//! and a change reports only the revisions whose reachability it flipped. At 10,000 routes a
//! rebuild that scanned every route per revision was quadratic.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use wisp_api::revision_key::RevisionKey;

use crate::routing::{RouteConfig, RouteError, RouteProblem};

/// One change to the served routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteChange {
    /// Serve this route (added, or replacing the route of the same namespace and name).
    Set(RouteConfig),
    /// Stop serving the route of this namespace and name.
    Remove { namespace: String, name: String },
}

/// The routes, ordered by (namespace, name) as the route table resolves conflicts.
#[derive(Debug, Default)]
pub(crate) struct RouteSet {
    routes: BTreeMap<(String, String), RouteConfig>,
    /// Per namespace, per revision: how many routes name it (once per route however many of
    /// its entries do). A revision absent here is named by none.
    routed: HashMap<String, HashMap<String, u32>>,
}

impl RouteSet {
    /// Applies `change`; pushes onto `flipped` each revision that became named by some route
    /// or by none.
    pub fn apply(&mut self, change: RouteChange, flipped: &mut Vec<RevisionKey>) {
        match change {
            RouteChange::Set(config) => {
                let key = (config.namespace.clone(), config.name.clone());
                if self.routes.get(&key) == Some(&config) {
                    return;
                }
                // Counted up before the old definition counts down, so a revision both name
                // never flips.
                self.count(&config, Step::Up, flipped);
                if let Some(old) = self.routes.insert(key, config) {
                    self.count(&old, Step::Down, flipped);
                }
            }
            RouteChange::Remove { namespace, name } => {
                if let Some(old) = self.routes.remove(&(namespace, name)) {
                    self.count(&old, Step::Down, flipped);
                }
            }
        }
    }

    /// Replaces every route with `routes`. A second definition of a route is left out and
    /// reported, the first kept (as [`crate::routing::RouteTable::build`] does).
    pub fn replace_all(
        &mut self,
        routes: Vec<RouteConfig>,
        flipped: &mut Vec<RevisionKey>,
    ) -> Vec<RouteError> {
        let mut next: BTreeMap<(String, String), RouteConfig> = BTreeMap::new();
        let mut duplicates = Vec::new();
        for config in routes {
            match next.entry((config.namespace.clone(), config.name.clone())) {
                Entry::Occupied(_) => {
                    duplicates.push(config.error(RouteProblem::DuplicateRoute(config.name.clone())))
                }
                Entry::Vacant(vacant) => {
                    vacant.insert(config);
                }
            }
        }
        let gone: Vec<(String, String)> = self
            .routes
            .keys()
            .filter(|key| !next.contains_key(*key))
            .cloned()
            .collect();
        for (namespace, name) in gone {
            self.apply(RouteChange::Remove { namespace, name }, flipped);
        }
        for config in next.into_values() {
            self.apply(RouteChange::Set(config), flipped);
        }
        duplicates
    }

    /// Whether some route names revision `name` of `namespace`.
    pub fn is_routed(&self, namespace: &str, name: &str) -> bool {
        self.routed
            .get(namespace)
            .is_some_and(|revisions| revisions.contains_key(name))
    }

    /// Every route, in (namespace, name) order.
    pub fn configs(&self) -> impl Iterator<Item = &RouteConfig> {
        self.routes.values()
    }

    fn count(&mut self, config: &RouteConfig, step: Step, flipped: &mut Vec<RevisionKey>) {
        // A revision named by several entries of one route counts once. A set, not a search
        // of the earlier entries: a Route's traffic block has no bound of its own.
        let revisions: BTreeSet<&str> = config
            .traffic
            .iter()
            .map(|target| target.revision.as_str())
            .collect();
        for revision in revisions {
            let flip = match step {
                Step::Up => {
                    let count = self
                        .routed
                        .entry(config.namespace.clone())
                        .or_default()
                        .entry(revision.to_owned())
                        .or_insert(0);
                    *count += 1;
                    *count == 1
                }
                Step::Down => self.count_down(&config.namespace, revision),
            };
            if flip {
                flipped.push(RevisionKey::new(&config.namespace, revision));
            }
        }
    }

    /// One route fewer names `revision`; returns whether none does now.
    fn count_down(&mut self, namespace: &str, revision: &str) -> bool {
        let Some(revisions) = self.routed.get_mut(namespace) else {
            return false;
        };
        let Some(count) = revisions.get_mut(revision) else {
            return false;
        };
        *count -= 1;
        if *count > 0 {
            return false;
        }
        revisions.remove(revision);
        if revisions.is_empty() {
            self.routed.remove(namespace);
        }
        true
    }
}

#[derive(Clone, Copy)]
enum Step {
    Up,
    Down,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::TrafficTarget;

    fn route(name: &str, revisions: &[(&str, u32)]) -> RouteConfig {
        RouteConfig::new(
            "ns",
            name,
            revisions
                .iter()
                .map(|(revision, percent)| TrafficTarget::new(*revision, *percent))
                .collect(),
        )
    }

    fn set(routes: &mut RouteSet, config: RouteConfig) -> Vec<String> {
        let mut flipped = Vec::new();
        routes.apply(RouteChange::Set(config), &mut flipped);
        names(flipped)
    }

    fn names(flipped: Vec<RevisionKey>) -> Vec<String> {
        let mut names: Vec<String> = flipped.into_iter().map(|key| key.name).collect();
        names.sort();
        names
    }

    fn remove(routes: &mut RouteSet, name: &str) -> Vec<String> {
        let mut flipped = Vec::new();
        routes.apply(
            RouteChange::Remove {
                namespace: "ns".into(),
                name: name.into(),
            },
            &mut flipped,
        );
        names(flipped)
    }

    #[test]
    fn a_revision_is_routed_while_any_route_names_it() {
        let mut routes = RouteSet::default();
        assert_eq!(set(&mut routes, route("a", &[("r1", 100)])), ["r1"]);
        assert_eq!(
            set(&mut routes, route("b", &[("r1", 50), ("r2", 50)])),
            ["r2"]
        );
        assert!(routes.is_routed("ns", "r1") && routes.is_routed("ns", "r2"));
        assert!(!routes.is_routed("other", "r1"), "namespaces are apart");

        assert_eq!(
            remove(&mut routes, "a"),
            Vec::<String>::new(),
            "b still names r1"
        );
        assert!(routes.is_routed("ns", "r1"));
        assert_eq!(
            set(&mut routes, route("b", &[("r3", 100)])),
            ["r1", "r2", "r3"]
        );
        assert!(!routes.is_routed("ns", "r1") && routes.is_routed("ns", "r3"));
        assert_eq!(remove(&mut routes, "b"), ["r3"]);
        assert_eq!(
            remove(&mut routes, "b"),
            Vec::<String>::new(),
            "already gone"
        );
        assert!(routes.routed.is_empty(), "no empty namespace is kept");
    }

    #[test]
    fn entries_naming_one_revision_count_once_and_unchanged_routes_flip_nothing() {
        let mut routes = RouteSet::default();
        let tagged = RouteConfig::new(
            "ns",
            "a",
            vec![
                TrafficTarget::new("r1", 100),
                TrafficTarget::new("r1", 0).tagged("pin"),
            ],
        );
        assert_eq!(set(&mut routes, tagged.clone()), ["r1"]);
        assert_eq!(set(&mut routes, tagged), Vec::<String>::new());
        assert_eq!(
            remove(&mut routes, "a"),
            ["r1"],
            "one count, gone with its route"
        );
        assert!(!routes.is_routed("ns", "r1"));
    }

    #[test]
    fn replacing_all_keeps_the_first_of_two_definitions_and_reports_the_second() {
        let mut routes = RouteSet::default();
        set(&mut routes, route("old", &[("r0", 100)]));
        let mut flipped = Vec::new();
        let problems = routes.replace_all(
            vec![
                route("b", &[("r2", 100)]),
                route("a", &[("r1", 100)]),
                route("a", &[("r9", 100)]),
            ],
            &mut flipped,
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].problem,
            RouteProblem::DuplicateRoute("a".into())
        );
        let served: Vec<&str> = routes.configs().map(|c| c.name.as_str()).collect();
        assert_eq!(served, ["a", "b"], "sorted, the first `a` kept");
        assert!(routes.is_routed("ns", "r1") && !routes.is_routed("ns", "r9"));
        assert!(!routes.is_routed("ns", "r0"));
        assert_eq!(names(flipped), ["r0", "r1", "r2"]);
    }
}
