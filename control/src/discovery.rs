//! Discovery documents, built from the [`registry`], and the choice between
//! legacy and aggregated discovery from a request's `Accept` header.
//!
//! kubectl maps `ksvc` to a resource only through discovery (reference §0 item 1), so these
//! documents carry `shortNames`, `verbs`, `namespaced`, `kind`, `singularName`, `categories`
//! and one `<plural>/status` entry per status subresource. Aggregated discovery must be served
//! only in the exact version the client asked for (§0 item 2: kubectl 1.29 asks only for
//! `v2beta1` and breaks on a `v2` body), hence [`negotiate`]. Pure functions; the HTTP layer
//! sets the returned Content-Type and serialises the value.

use serde_json::{Map, Value, json};

use crate::registry::{self, CORE_GROUP, Resource, STATUS_VERBS};

/// Content-Type of a legacy discovery document.
pub const JSON: &str = "application/json";
/// Content-Type (and the Accept entry that asks for it) of aggregated discovery v2.
pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
/// Content-Type (and the Accept entry that asks for it) of aggregated discovery v2beta1.
pub const AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// Which representation of `/api` or `/apis` to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// `APIVersions` / `APIGroupList`; the client then fetches each group/version.
    Legacy,
    /// `APIGroupDiscoveryList` in `apidiscovery.k8s.io/<version>` (`v2` or `v2beta1`).
    Aggregated(AggregatedVersion),
}

/// The two aggregated discovery versions kubectl knows. Their bodies are identical apart from
/// `apiVersion`; what matters is never answering one when only the other was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregatedVersion {
    /// `apidiscovery.k8s.io/v2` (kubectl ≥ 1.30 lists it first).
    V2,
    /// `apidiscovery.k8s.io/v2beta1` (kubectl 1.29 asks only for this).
    V2Beta1,
}

impl AggregatedVersion {
    fn api_version(self) -> &'static str {
        match self {
            AggregatedVersion::V2 => "apidiscovery.k8s.io/v2",
            AggregatedVersion::V2Beta1 => "apidiscovery.k8s.io/v2beta1",
        }
    }

    /// The `v=` parameter value naming this version in a media type.
    fn param(self) -> &'static str {
        match self {
            AggregatedVersion::V2 => "v2",
            AggregatedVersion::V2Beta1 => "v2beta1",
        }
    }
}

impl Representation {
    /// The exact Content-Type to answer with.
    pub fn content_type(self) -> &'static str {
        match self {
            Representation::Legacy => JSON,
            Representation::Aggregated(AggregatedVersion::V2) => AGGREGATED_V2,
            Representation::Aggregated(AggregatedVersion::V2Beta1) => AGGREGATED_V2BETA1,
        }
    }
}

/// Decides how to answer `GET /api` or `GET /apis` from the `Accept` header (`None` if absent).
///
/// Media ranges are tried by descending `q` (ties keep the client's order, which is how
/// kubectl expresses preference); the first acceptable one wins:
/// * `application/json` with exactly `g=apidiscovery.k8s.io`, `v=v2|v2beta1`,
///   `as=APIGroupDiscoveryList` (any parameter order) → that aggregated version;
/// * `application/json`, `application/*` or `*/*` without other parameters → legacy;
/// * anything else (other `as=`/`g=`/`v=` values, protobuf, unknown parameters, `q=0`) is
///   skipped, so an unfamiliar request never gets an aggregated body it did not ask for.
///
/// If nothing is acceptable the answer is legacy JSON: the real server would send 406, but every
/// discovery client reads plain JSON and kubectl never sends such a header.
pub fn negotiate(accept: Option<&str>) -> Representation {
    let Some(accept) = accept else {
        return Representation::Legacy;
    };
    let mut ranges: Vec<(f32, Representation)> = accept
        .split(',')
        .filter_map(parse_range)
        .filter(|(q, _)| *q > 0.0)
        .collect();
    // Stable sort: equal q keeps header order.
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranges
        .first()
        .map_or(Representation::Legacy, |&(_, repr)| repr)
}

/// Parses one media range; `None` if it names no representation served here.
fn parse_range(range: &str) -> Option<(f32, Representation)> {
    let mut parts = range.split(';').map(str::trim);
    let media_type = parts.next()?.to_ascii_lowercase();
    let mut q = 1.0_f32;
    let (mut g, mut v, mut as_) = (None, None, None);
    for param in parts.filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=')?;
        let value = value.trim().trim_matches('"');
        match key.trim().to_ascii_lowercase().as_str() {
            // A malformed q makes the range unusable rather than silently preferred.
            "q" => q = value.parse().ok().filter(|q: &f32| q.is_finite())?,
            "g" => g = Some(value),
            "v" => v = Some(value),
            "as" => as_ = Some(value),
            _ => return None,
        }
    }
    let repr = match (g, v, as_) {
        (None, None, None) => match media_type.as_str() {
            "application/json" | "application/*" | "*/*" => Representation::Legacy,
            _ => return None,
        },
        (Some("apidiscovery.k8s.io"), Some(version), Some("APIGroupDiscoveryList"))
            if media_type == "application/json" =>
        {
            [AggregatedVersion::V2, AggregatedVersion::V2Beta1]
                .into_iter()
                .find(|a| a.param() == version)
                .map(Representation::Aggregated)?
        }
        _ => return None,
    };
    Some((q, repr))
}

/// Legacy `GET /api`: the core group's versions. `server_address` is `host:port` as the client
/// reached the server (kubectl ignores it, but the field is part of the type).
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": registry::versions_of(CORE_GROUP),
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    })
}

/// `{"groupVersion": "g/v", "version": "v"}`, the element of APIGroup version lists.
fn group_version_for_discovery(group: &str, version: &str) -> Value {
    json!({"groupVersion": format!("{group}/{version}"), "version": version})
}

/// Legacy `GET /apis`: every named group with its versions (core is not listed here).
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = registry::named_groups()
        .into_iter()
        .map(|group| {
            let versions = registry::versions_of(group);
            let preferred = versions.first().copied().unwrap_or("v1");
            json!({
                "name": group,
                "versions": versions
                    .iter()
                    .map(|v| group_version_for_discovery(group, v))
                    .collect::<Vec<_>>(),
                "preferredVersion": group_version_for_discovery(group, preferred),
            })
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// Legacy `GET /api/v1` (group `""`) or `GET /apis/<group>/<version>`: an `APIResourceList`
/// with one entry per resource and one per status subresource. `None` if not served (404).
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let mut entries = Vec::new();
    let mut group_version = None;
    for r in registry::resources_in(group, version) {
        group_version.get_or_insert_with(|| r.api_version());
        entries.push(legacy_entry(r));
        if r.has_status {
            entries.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": STATUS_VERBS,
            }));
        }
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version?,
        "resources": entries,
    }))
}

/// One legacy `APIResource`; `shortNames` and `categories` are omitted when empty, as upstream
/// does (`omitempty`).
fn legacy_entry(r: &Resource) -> Value {
    let mut entry = Map::new();
    entry.insert("name".into(), json!(r.plural));
    entry.insert("singularName".into(), json!(r.singular));
    entry.insert("namespaced".into(), json!(r.namespaced));
    entry.insert("kind".into(), json!(r.kind));
    entry.insert("verbs".into(), json!(r.verbs));
    insert_names(&mut entry, r);
    Value::Object(entry)
}

fn insert_names(entry: &mut Map<String, Value>, r: &Resource) {
    if !r.short_names.is_empty() {
        entry.insert("shortNames".into(), json!(r.short_names));
    }
    if !r.categories.is_empty() {
        entry.insert("categories".into(), json!(r.categories));
    }
}

/// Which aggregated document: `GET /api` (the core group only) or `GET /apis` (named groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// `/api`: one item named `""`.
    Core,
    /// `/apis`: one item per named group.
    Apis,
}

/// Aggregated `GET /api` or `GET /apis`: an `APIGroupDiscoveryList` in the requested version.
pub fn aggregated(root: Root, version: AggregatedVersion) -> Value {
    let groups = match root {
        Root::Core => vec![CORE_GROUP],
        Root::Apis => registry::named_groups(),
    };
    let items: Vec<Value> = groups
        .into_iter()
        .map(|group| {
            let versions: Vec<Value> = registry::versions_of(group)
                .into_iter()
                .map(|v| {
                    let resources: Vec<Value> = registry::resources_in(group, v)
                        .map(aggregated_entry)
                        .collect();
                    json!({"version": v, "freshness": "Current", "resources": resources})
                })
                .collect();
            json!({"metadata": {"name": group}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": version.api_version(),
        "metadata": {},
        "items": items,
    })
}

/// One `APIResourceDiscovery`, with its status subresource nested (not a separate entry).
fn aggregated_entry(r: &Resource) -> Value {
    let kind = json!({"group": r.group, "version": r.version, "kind": r.kind});
    let mut entry = Map::new();
    entry.insert("resource".into(), json!(r.plural));
    entry.insert("singularResource".into(), json!(r.singular));
    entry.insert(
        "scope".into(),
        json!(if r.namespaced {
            "Namespaced"
        } else {
            "Cluster"
        }),
    );
    entry.insert("responseKind".into(), kind.clone());
    entry.insert("verbs".into(), json!(r.verbs));
    insert_names(&mut entry, r);
    if r.has_status {
        entry.insert(
            "subresources".into(),
            json!([{"subresource": "status", "verbs": STATUS_VERBS, "responseKind": kind}]),
        );
    }
    Value::Object(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{COORDINATION_GROUP, SERVING_GROUP};

    /// Sorts every `verbs` array so golden comparisons ignore verb order, which the reference's
    /// two examples themselves disagree on and kubectl ignores.
    fn normalise(mut v: Value) -> Value {
        match &mut v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    let taken = std::mem::take(child);
                    *child = if k == "verbs" {
                        let mut verbs: Vec<String> = serde_json::from_value(taken).unwrap();
                        verbs.sort();
                        json!(verbs)
                    } else {
                        normalise(taken)
                    };
                }
            }
            Value::Array(items) => {
                for child in items.iter_mut() {
                    *child = normalise(std::mem::take(child));
                }
            }
            _ => {}
        }
        v
    }

    fn resources(list: &Value) -> &Vec<Value> {
        list["resources"].as_array().unwrap()
    }

    #[test]
    fn legacy_roots_match_the_reference() {
        assert_eq!(
            api_versions("127.0.0.1:6443"),
            json!({"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"127.0.0.1:6443"}]})
        );
        assert_eq!(
            api_group_list(),
            json!({"kind":"APIGroupList","apiVersion":"v1","groups":[
                {"name":"serving.knative.dev","versions":[{"groupVersion":"serving.knative.dev/v1","version":"v1"}],"preferredVersion":{"groupVersion":"serving.knative.dev/v1","version":"v1"}},
                {"name":"coordination.k8s.io","versions":[{"groupVersion":"coordination.k8s.io/v1","version":"v1"}],"preferredVersion":{"groupVersion":"coordination.k8s.io/v1","version":"v1"}}]})
        );
    }

    #[test]
    fn legacy_services_entries_match_the_reference() {
        let list = api_resource_list(SERVING_GROUP, "v1").unwrap();
        assert_eq!(list["kind"], "APIResourceList");
        assert_eq!(list["groupVersion"], "serving.knative.dev/v1");
        let golden = [
            json!({"name":"services","singularName":"service","namespaced":true,"kind":"Service",
             "verbs":["delete","deletecollection","get","list","patch","create","update","watch"],
             "shortNames":["kservice","ksvc"],"categories":["all","knative","serving"]}),
            json!({"name":"services/status","singularName":"","namespaced":true,"kind":"Service","verbs":["get","patch","update"]}),
        ];
        assert_eq!(resources(&list)[..2], golden);
    }

    #[test]
    fn every_legacy_entry_has_what_kubectl_needs() {
        for (group, root) in [
            (CORE_GROUP, "v1"),
            (SERVING_GROUP, "serving.knative.dev/v1"),
            (COORDINATION_GROUP, "coordination.k8s.io/v1"),
        ] {
            let list = api_resource_list(group, "v1").unwrap();
            assert_eq!(list["groupVersion"], root);
            let entries = resources(&list);
            for r in registry::resources_in(group, "v1") {
                let e = entries
                    .iter()
                    .find(|e| e["name"] == r.plural)
                    .unwrap_or_else(|| panic!("{} missing", r.plural));
                assert_eq!(e["singularName"], r.singular);
                assert_eq!(e["namespaced"], r.namespaced);
                assert_eq!(e["kind"], r.kind);
                assert_eq!(e["verbs"], json!(r.verbs));
                if r.short_names.is_empty() {
                    assert!(e.get("shortNames").is_none());
                } else {
                    assert_eq!(e["shortNames"], json!(r.short_names));
                }
                if r.categories.is_empty() {
                    assert!(e.get("categories").is_none());
                } else {
                    assert_eq!(e["categories"], json!(r.categories));
                }
                let status = entries
                    .iter()
                    .find(|e| e["name"] == format!("{}/status", r.plural));
                assert_eq!(status.is_some(), r.has_status, "{}/status", r.plural);
                if let Some(s) = status {
                    assert_eq!(s["kind"], r.kind);
                    assert_eq!(s["verbs"], json!(["get", "patch", "update"]));
                }
            }
            // Nothing but resources and their status entries.
            let expected = registry::resources_in(group, "v1")
                .map(|r| 1 + usize::from(r.has_status))
                .sum::<usize>();
            assert_eq!(entries.len(), expected);
        }
        let core = api_resource_list(CORE_GROUP, "v1").unwrap();
        let names: Vec<&str> = resources(&core)
            .iter()
            .filter_map(|e| e["name"].as_str())
            .collect();
        assert!(names.contains(&"namespaces/status"));
        assert!(!names.contains(&"pods/status") && !names.contains(&"configmaps/status"));
    }

    #[test]
    fn unknown_group_versions_are_not_served() {
        assert!(api_resource_list(SERVING_GROUP, "v2").is_none());
        assert!(api_resource_list("apps", "v1").is_none());
    }

    #[test]
    fn aggregated_apis_matches_the_reference() {
        let doc = aggregated(Root::Apis, AggregatedVersion::V2);
        let golden = json!({"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","metadata":{},
         "items":[{"metadata":{"name":"serving.knative.dev"},
           "versions":[{"version":"v1","freshness":"Current","resources":[
             {"resource":"services","singularResource":"service","scope":"Namespaced",
              "responseKind":{"group":"serving.knative.dev","version":"v1","kind":"Service"},
              "verbs":["get","list","watch","create","update","patch","delete","deletecollection"],
              "shortNames":["kservice","ksvc"],"categories":["all","knative","serving"],
              "subresources":[{"subresource":"status","verbs":["get","patch","update"],
                "responseKind":{"group":"serving.knative.dev","version":"v1","kind":"Service"}}]}]}]}]});
        // The reference shows services only; compare with the other resources and groups
        // removed.
        let mut only_services = doc.clone();
        if let Some(items) = only_services["items"].as_array_mut() {
            items.truncate(1);
        }
        only_services["items"][0]["versions"][0]["resources"]
            .as_array_mut()
            .unwrap()
            .retain(|r| r["resource"] == "services");
        assert_eq!(normalise(only_services), normalise(golden));

        let plurals: Vec<&str> = doc["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["resource"].as_str())
            .collect();
        assert_eq!(
            plurals,
            ["services", "configurations", "revisions", "routes"]
        );

        // Leases as the real server describes them: namespaced, writable, no short names,
        // no status subresource.
        let leases = &doc["items"][1];
        assert_eq!(leases["metadata"]["name"], "coordination.k8s.io");
        assert_eq!(
            normalise(leases["versions"][0]["resources"].clone()),
            normalise(
                json!([{"resource":"leases","singularResource":"lease","scope":"Namespaced",
              "responseKind":{"group":"coordination.k8s.io","version":"v1","kind":"Lease"},
              "verbs":["create","delete","deletecollection","get","list","patch","update","watch"]}])
            )
        );
    }

    #[test]
    fn aggregated_core_is_one_unnamed_group() {
        let doc = aggregated(Root::Core, AggregatedVersion::V2Beta1);
        assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2beta1");
        let items = doc["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["metadata"]["name"], "");
        let res = items[0]["versions"][0]["resources"].as_array().unwrap();
        let ns = res.iter().find(|r| r["resource"] == "namespaces").unwrap();
        assert_eq!(ns["scope"], "Cluster");
        assert_eq!(ns["shortNames"], json!(["ns"]));
        assert_eq!(
            ns["responseKind"],
            json!({"group":"","version":"v1","kind":"Namespace"})
        );
        let pods = res.iter().find(|r| r["resource"] == "pods").unwrap();
        assert_eq!(pods["verbs"], json!(["get", "list", "watch"]));
        assert_eq!(pods["categories"], json!(["all"]));
        assert!(pods.get("subresources").is_none());
        assert_eq!(res.len(), registry::resources_in(CORE_GROUP, "v1").count());
    }

    use AggregatedVersion::{V2, V2Beta1};
    use Representation::{Aggregated, Legacy};

    const KUBECTL_132: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    const KUBECTL_129: &str = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

    #[test]
    fn kubectl_132_gets_v2_with_the_exact_content_type() {
        let r = negotiate(Some(KUBECTL_132));
        assert_eq!(r, Aggregated(V2));
        assert_eq!(r.content_type(), AGGREGATED_V2);
        assert_eq!(
            r.content_type(),
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
    }

    #[test]
    fn kubectl_129_never_gets_v2() {
        let r = negotiate(Some(KUBECTL_129));
        assert_eq!(r, Aggregated(V2Beta1));
        assert_eq!(r.content_type(), AGGREGATED_V2BETA1);
        // Its v2beta1 entry alone still never yields v2.
        let only = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";
        assert_eq!(negotiate(Some(only)), Aggregated(V2Beta1));
    }

    #[test]
    fn plain_json_and_missing_headers_get_legacy() {
        for accept in [
            Some("application/json"),
            Some("application/json, */*"),
            Some("*/*"),
            Some(""),
            None,
        ] {
            let r = negotiate(accept);
            assert_eq!(r, Legacy, "{accept:?}");
            assert_eq!(r.content_type(), "application/json");
        }
    }

    #[test]
    fn mixed_lists_pick_the_first_acceptable_by_q_then_order() {
        let cases = [
            // Unservable entries are skipped, header order decides among the rest.
            (
                "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json",
                Aggregated(V2Beta1),
            ),
            (
                "application/json,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
                Legacy,
            ),
            (
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
                Legacy,
            ),
            (
                "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
                Aggregated(V2),
            ),
            // Parameter order and whitespace do not matter; values do.
            (
                "application/json; as=APIGroupDiscoveryList; v=v2; g=apidiscovery.k8s.io",
                Aggregated(V2),
            ),
            (
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscovery",
                Legacy,
            ),
            (
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;profile=x",
                Legacy,
            ),
            // q-values reorder; q=0 means "not acceptable".
            (
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0.5,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
                Aggregated(V2Beta1),
            ),
            (
                "application/json;q=0.9,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
                Aggregated(V2),
            ),
            (
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0,application/json",
                Legacy,
            ),
            (
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=abc,application/json",
                Legacy,
            ),
            // Nothing acceptable: legacy rather than an unrequested aggregated body.
            ("application/yaml", Legacy),
        ];
        for (accept, want) in cases {
            assert_eq!(negotiate(Some(accept)), want, "{accept}");
        }
    }
}
