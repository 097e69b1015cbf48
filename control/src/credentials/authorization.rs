//! What the node identity ([`super::NODE_USER`]) may do: the one rule, as a pure function of the
//! request, so it is tested with plain values and documented in one place.

use wisp_api::nodes::NODE_LEASE_NAMESPACE;

/// One request as the authorizer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete` or `deletecollection`.
    pub verb: &'a str,
    /// The API group (`""` for the core group).
    pub group: &'a str,
    /// The resource's plural, e.g. `pods`.
    pub resource: &'a str,
    /// Whether the request is for the `status` subresource.
    pub status: bool,
    /// The namespace in the URL, if any.
    pub namespace: Option<&'a str>,
}

/// Whether the node identity may make `request`. It may:
///
/// - `get`, `list`, `watch` every resource (and status subresource), in every namespace,
///   except `secrets`, which it may only `get` by name: a node reads the `imagePullSecrets` a
///   revision names, never the list of every tenant's credentials (nor a watch of them);
/// - `create`, `update`, `patch`, `delete` `nodes` and `pods` (and their `status`);
/// - `create`, `get`, `update`, `patch`, `delete` `leases` (`coordination.k8s.io`) in the
///   namespace `kube-node-lease` only;
/// - `update`, `patch` `revisions/status` and `routes/status` (`serving.knative.dev`): the
///   status subresource only, never the object;
/// - `create`, `patch` `events`.
///
/// Everything else is refused: `deletecollection` of anything; creating, updating, patching or
/// deleting Services, Configurations, Revisions or Routes, ConfigMaps, Namespaces, or Leases
/// outside `kube-node-lease`.
pub fn node_may(request: &Request<'_>) -> bool {
    let Request {
        verb,
        group,
        resource,
        status,
        namespace,
    } = *request;
    if (group, resource) == ("", "secrets") {
        return verb == "get" && !status;
    }
    if matches!(verb, "get" | "list" | "watch") {
        return true;
    }
    match (group, resource) {
        ("", "nodes" | "pods") => matches!(verb, "create" | "update" | "patch" | "delete"),
        ("coordination.k8s.io", "leases") => {
            !status
                && namespace == Some(NODE_LEASE_NAMESPACE)
                && matches!(verb, "create" | "update" | "patch" | "delete")
        }
        ("serving.knative.dev", "revisions" | "routes") => {
            status && matches!(verb, "update" | "patch")
        }
        ("" | "events.k8s.io", "events") => !status && matches!(verb, "create" | "patch"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn may(verb: &str, group: &str, resource: &str, status: bool, namespace: &str) -> bool {
        let namespace = (!namespace.is_empty()).then_some(namespace);
        node_may(&Request {
            verb,
            group,
            resource,
            status,
            namespace,
        })
    }

    const KNATIVE: &str = "serving.knative.dev";
    const LEASES: &str = "coordination.k8s.io";

    #[test]
    fn reads_everything() {
        for (group, resource) in [
            (KNATIVE, "services"),
            (KNATIVE, "revisions"),
            ("", "configmaps"),
            ("", "namespaces"),
            (LEASES, "leases"),
        ] {
            for verb in ["get", "list", "watch"] {
                assert!(
                    may(verb, group, resource, false, "default"),
                    "{verb} {resource}"
                );
            }
        }
    }

    #[test]
    fn reads_secrets_only_by_name() {
        assert!(may("get", "", "secrets", false, "default"));
        for verb in [
            "list",
            "watch",
            "create",
            "update",
            "patch",
            "delete",
            "deletecollection",
        ] {
            assert!(!may(verb, "", "secrets", false, "default"), "{verb}");
            assert!(
                !may(verb, "", "secrets", false, ""),
                "{verb} (all namespaces)"
            );
        }
    }

    #[test]
    fn writes_its_node_pods_and_events() {
        for verb in ["create", "update", "patch", "delete"] {
            assert!(may(verb, "", "pods", false, "default"), "{verb}");
            assert!(may(verb, "", "nodes", false, ""), "{verb}");
        }
        assert!(may("patch", "", "nodes", true, ""));
        assert!(may("update", "", "pods", true, "default"));
        assert!(may("create", "", "events", false, "default"));
        assert!(may("patch", "events.k8s.io", "events", false, "default"));
        assert!(!may("delete", "", "events", false, "default"));
        assert!(!may("deletecollection", "", "pods", false, "default"));
    }

    #[test]
    fn writes_leases_only_in_kube_node_lease() {
        for verb in ["create", "update", "patch", "delete"] {
            assert!(
                may(verb, LEASES, "leases", false, "kube-node-lease"),
                "{verb}"
            );
            assert!(!may(verb, LEASES, "leases", false, "default"), "{verb}");
            assert!(!may(verb, LEASES, "leases", false, "kube-system"), "{verb}");
        }
    }

    #[test]
    fn writes_revision_and_route_status_only() {
        for resource in ["revisions", "routes"] {
            assert!(may("update", KNATIVE, resource, true, "default"));
            assert!(may("patch", KNATIVE, resource, true, "default"));
            for verb in ["create", "update", "patch", "delete"] {
                assert!(
                    !may(verb, KNATIVE, resource, false, "default"),
                    "{verb} {resource}"
                );
            }
        }
    }

    #[test]
    fn writes_nothing_else() {
        for (group, resource) in [
            (KNATIVE, "services"),
            (KNATIVE, "configurations"),
            ("", "configmaps"),
            ("", "namespaces"),
        ] {
            for verb in ["create", "update", "patch", "delete"] {
                for status in [false, true] {
                    assert!(
                        !may(verb, group, resource, status, "default"),
                        "{verb} {resource}"
                    );
                }
            }
        }
    }
}
