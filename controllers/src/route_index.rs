//! Which Routes follow which Configuration and name which Revision, kept current from the
//! Route watch. The Route controller maps every Configuration and Revision event to the Routes
//! it concerns through this index: scanning every Route per event made applying N Services
//! cost N² comparisons.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::Event;
use wisp_api::knative::Route;

use super::route::referenced_configurations;

/// What a Route refers to, by name within its namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Reference {
    /// It follows this Configuration (its own name, or a target's `configurationName`).
    Configuration(String),
    /// Its spec or status traffic names this Revision.
    Revision(String),
}

/// `(namespace, route name)`.
type RouteName = (String, String);

#[derive(Default)]
struct Index {
    routes_by_reference: HashMap<(String, Reference), BTreeSet<String>>,
    references_of_route: HashMap<RouteName, BTreeSet<Reference>>,
    /// Routes seen since a relist began; at its end every other Route is forgotten.
    relisted: Option<HashSet<RouteName>>,
}

/// The index, shared between the watch that feeds it and the controller's mappers.
#[derive(Default)]
pub(super) struct RouteIndex {
    index: Mutex<Index>,
}

impl RouteIndex {
    /// Takes in one event of the Route watch.
    pub(super) fn observe(&self, event: &Event<Route>) {
        let mut index = self.lock();
        match event {
            Event::Init => index.relisted = Some(HashSet::new()),
            Event::InitApply(route) => {
                let name = route_name(route);
                if let Some(seen) = index.relisted.as_mut() {
                    seen.insert(name.clone());
                }
                index.set(name, references(route));
            }
            Event::InitDone => {
                if let Some(seen) = index.relisted.take() {
                    let gone: Vec<RouteName> = index
                        .references_of_route
                        .keys()
                        .filter(|name| !seen.contains(*name))
                        .cloned()
                        .collect();
                    for name in gone {
                        index.set(name, BTreeSet::new());
                    }
                }
            }
            Event::Apply(route) => index.set(route_name(route), references(route)),
            Event::Delete(route) => index.set(route_name(route), BTreeSet::new()),
        }
    }

    /// Routes of `namespace` that follow configuration `name`.
    pub(super) fn following(&self, namespace: &str, name: &str) -> Vec<ObjectRef<Route>> {
        self.lock().routes_of(
            namespace,
            [Reference::Configuration(name.to_owned())].into_iter(),
        )
    }

    /// Routes of `namespace` whose traffic names revision `name` or that follow its
    /// `configuration`.
    pub(super) fn concerning_revision(
        &self,
        namespace: &str,
        name: &str,
        configuration: Option<&str>,
    ) -> Vec<ObjectRef<Route>> {
        let references = std::iter::once(Reference::Revision(name.to_owned())).chain(
            configuration.map(|configuration| Reference::Configuration(configuration.to_owned())),
        );
        self.lock().routes_of(namespace, references)
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Index {
    /// Makes `references` the whole of what route `name` refers to.
    fn set(&mut self, name: RouteName, references: BTreeSet<Reference>) {
        let (namespace, route) = &name;
        let old = self.references_of_route.remove(&name).unwrap_or_default();
        for reference in old.difference(&references) {
            let key = (namespace.clone(), reference.clone());
            if let Some(routes) = self.routes_by_reference.get_mut(&key) {
                routes.remove(route);
                if routes.is_empty() {
                    self.routes_by_reference.remove(&key);
                }
            }
        }
        for reference in references.difference(&old) {
            self.routes_by_reference
                .entry((namespace.clone(), reference.clone()))
                .or_default()
                .insert(route.clone());
        }
        if !references.is_empty() {
            self.references_of_route.insert(name, references);
        }
    }

    fn routes_of(
        &self,
        namespace: &str,
        references: impl Iterator<Item = Reference>,
    ) -> Vec<ObjectRef<Route>> {
        let mut names = BTreeSet::new();
        for reference in references {
            if let Some(routes) = self
                .routes_by_reference
                .get(&(namespace.to_owned(), reference))
            {
                names.extend(routes.iter());
            }
        }
        names
            .into_iter()
            .map(|name| ObjectRef::new(name).within(namespace))
            .collect()
    }
}

fn route_name(route: &Route) -> RouteName {
    (route.namespace().unwrap_or_default(), route.name_any())
}

/// Everything `route` refers to, as [`super::route`]'s reconcile reads it.
fn references(route: &Route) -> BTreeSet<Reference> {
    let status_traffic = route.status.iter().flat_map(|status| &status.traffic);
    let revisions = route
        .spec
        .traffic
        .iter()
        .chain(status_traffic)
        .filter_map(|target| target.revision_name.clone())
        .map(Reference::Revision);
    referenced_configurations(route)
        .into_iter()
        .map(Reference::Configuration)
        .chain(revisions)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(namespace: &str, name: &str, spec: serde_json::Value) -> Route {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Route",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }))
        .unwrap()
    }

    fn with_status_traffic(mut route: Route, revisions: &[&str]) -> Route {
        let traffic: Vec<serde_json::Value> = revisions
            .iter()
            .map(|name| serde_json::json!({"revisionName": name, "percent": 100}))
            .collect();
        route.status =
            Some(serde_json::from_value(serde_json::json!({"traffic": traffic})).unwrap());
        route
    }

    fn names(refs: Vec<ObjectRef<Route>>) -> Vec<String> {
        refs.into_iter().map(|r| r.name).collect()
    }

    #[test]
    fn a_route_follows_its_own_name_and_every_configuration_its_targets_name() {
        let index = RouteIndex::default();
        index.observe(&Event::Apply(route(
            "team",
            "shop",
            serde_json::json!({"traffic": [
                {"configurationName": "cart", "percent": 50},
                {"revisionName": "pay-00002", "percent": 50},
            ]}),
        )));
        assert_eq!(names(index.following("team", "shop")), ["shop"]);
        assert_eq!(names(index.following("team", "cart")), ["shop"]);
        assert!(index.following("team", "pay").is_empty());
        assert!(index.following("other", "cart").is_empty());
        assert_eq!(
            names(index.concerning_revision("team", "pay-00002", Some("pay"))),
            ["shop"]
        );
        assert!(
            index
                .concerning_revision("team", "pay-00001", Some("pay"))
                .is_empty()
        );
    }

    #[test]
    fn status_traffic_counts_and_a_changed_route_forgets_what_it_no_longer_names() {
        let index = RouteIndex::default();
        let before = with_status_traffic(
            route("team", "a", serde_json::json!({"traffic": []})),
            &["b-00001"],
        );
        index.observe(&Event::Apply(before));
        assert_eq!(
            names(index.concerning_revision("team", "b-00001", None)),
            ["a"]
        );
        index.observe(&Event::Apply(route(
            "team",
            "a",
            serde_json::json!({"traffic": [{"revisionName": "b-00002", "percent": 100}]}),
        )));
        assert!(
            index
                .concerning_revision("team", "b-00001", None)
                .is_empty()
        );
        assert_eq!(
            names(index.concerning_revision("team", "b-00002", None)),
            ["a"]
        );
        // A revision of the route's own configuration concerns it whatever it is called.
        assert_eq!(
            names(index.concerning_revision("team", "a-00009", Some("a"))),
            ["a"]
        );
    }

    #[test]
    fn several_routes_and_deletes() {
        let index = RouteIndex::default();
        let spec =
            serde_json::json!({"traffic": [{"configurationName": "shared", "percent": 100}]});
        index.observe(&Event::Apply(route("team", "x", spec.clone())));
        index.observe(&Event::Apply(route("team", "y", spec)));
        assert_eq!(names(index.following("team", "shared")), ["x", "y"]);
        index.observe(&Event::Delete(route("team", "x", serde_json::json!({}))));
        assert_eq!(names(index.following("team", "shared")), ["y"]);
        assert!(index.following("team", "x").is_empty());
    }

    #[test]
    fn a_relist_forgets_routes_it_did_not_list() {
        let index = RouteIndex::default();
        index.observe(&Event::Apply(route("team", "old", serde_json::json!({}))));
        index.observe(&Event::Apply(route("team", "kept", serde_json::json!({}))));
        index.observe(&Event::Init);
        index.observe(&Event::InitApply(route(
            "team",
            "kept",
            serde_json::json!({}),
        )));
        index.observe(&Event::InitApply(route(
            "team",
            "new",
            serde_json::json!({}),
        )));
        // Until the relist is done the old route still counts (the store still has it).
        assert_eq!(names(index.following("team", "old")), ["old"]);
        index.observe(&Event::InitDone);
        assert!(index.following("team", "old").is_empty());
        assert_eq!(names(index.following("team", "kept")), ["kept"]);
        assert_eq!(names(index.following("team", "new")), ["new"]);
    }
}
