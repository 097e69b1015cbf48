//! The gateway's route table from Route objects: each Route's `status.traffic` (what the Route
//! controller resolved), never its spec.

use kube::ResourceExt;
use wisp_api::knative::Route;
use wisp_api::revision_key::RevisionKey;

use crate::routing::{RouteConfig, TrafficTarget};

/// `namespace/name` of a Route.
pub type RouteKey = (String, String);

/// The key of a Route.
pub fn route_key(route: &Route) -> RouteKey {
    (
        route.namespace().unwrap_or_else(|| "default".into()),
        route.name_any(),
    )
}

/// The route the gateway serves for `route`: its `status.traffic` entries that name a revision.
/// `None` while the Route controller has resolved nothing yet.
pub fn route_config(route: &Route) -> Option<RouteConfig> {
    let status = route.status.as_ref()?;
    let traffic: Vec<TrafficTarget> = status
        .traffic
        .iter()
        .filter_map(|entry| {
            let revision = entry.revision_name.as_deref().filter(|r| !r.is_empty())?;
            // Out-of-range percents stay visible to validation (which reports the sum)
            // instead of wrapping into a plausible number.
            let percent = u32::try_from(entry.percent.unwrap_or(0).max(0)).unwrap_or(u32::MAX);
            let mut target = TrafficTarget::new(revision, percent);
            target.tag = entry.tag.clone().filter(|tag| !tag.is_empty());
            Some(target)
        })
        .collect();
    if traffic.is_empty() {
        return None;
    }
    let (namespace, name) = route_key(route);
    Some(RouteConfig::new(namespace, name, traffic))
}

/// The revisions a route sends traffic to.
pub fn revisions_of(config: &RouteConfig) -> impl Iterator<Item = RevisionKey> + '_ {
    config
        .traffic
        .iter()
        .map(|target| RevisionKey::new(&config.namespace, &target.revision))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, traffic: serde_json::Value) -> Route {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Route",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"traffic": [{"configurationName": name, "percent": 100}]},
            "status": {"traffic": traffic},
        }))
        .unwrap()
    }

    #[test]
    fn status_traffic_becomes_the_table() {
        let routes = [
            route(
                "b",
                serde_json::json!([
                    {"revisionName": "b-00002", "percent": 90, "latestRevision": true},
                    {"revisionName": "b-00001", "percent": 10, "tag": "old", "url": "http://old-b"},
                    {"revisionName": "b-00002", "tag": "new"},
                ]),
            ),
            route(
                "a",
                serde_json::json!([{"revisionName": "a-00001", "percent": 100}]),
            ),
            route("pending", serde_json::json!([])),
        ];
        let configs: Vec<RouteConfig> = routes.iter().filter_map(route_config).collect();
        assert_eq!(
            configs.len(),
            2,
            "a route with no resolved traffic is not served"
        );
        assert_eq!(configs[1].name, "a");
        assert_eq!(
            configs[0].traffic,
            vec![
                TrafficTarget::new("b-00002", 90),
                TrafficTarget::new("b-00001", 10).tagged("old"),
                TrafficTarget::new("b-00002", 0).tagged("new"),
            ]
        );
        assert_eq!(
            revisions_of(&configs[0]).collect::<Vec<_>>(),
            vec![
                RevisionKey::new("default", "b-00002"),
                RevisionKey::new("default", "b-00001"),
                RevisionKey::new("default", "b-00002"),
            ]
        );
    }

    #[test]
    fn negative_percents_do_not_wrap() {
        let config = route_config(&route(
            "a",
            serde_json::json!([{"revisionName": "a-1", "percent": -5}]),
        ))
        .unwrap();
        assert_eq!(config.traffic[0].percent, 0);
        assert!(config.validate().is_err());
    }
}
