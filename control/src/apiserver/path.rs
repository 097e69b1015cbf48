//! What a request path names (reference §2.1): a discovery or OpenAPI document, or a
//! resource collection, object or status subresource. Pure: the dispatcher decides what to do.

use crate::registry::{self, CORE_GROUP, Resource};

use super::status::ApiError;

/// The thing a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz`.
    Health,
    /// `/metrics` (authenticated).
    Metrics,
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    GroupList,
    /// `/apis/{group}`.
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`.
    ResourceList {
        /// API group (`""` for core).
        group: String,
        /// Version.
        version: String,
    },
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3`.
    OpenApiRoot,
    /// `/openapi/v3/{api/v1 | apis/group/version}`.
    OpenApiDocument(String),
    /// A collection, an object or its `/status`.
    Resource(ResourcePath),
}

/// A resource URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    /// The served resource.
    pub resource: &'static Resource,
    /// The namespace in the URL; `None` for cluster-scoped resources and all-namespace lists.
    pub namespace: Option<String>,
    /// The object's name; `None` for the collection.
    pub name: Option<String>,
    /// Whether the URL ends in `/status`.
    pub status: bool,
}

/// Parses `path` (without the query).
pub fn parse(path: &str) -> Result<Target, ApiError> {
    let segments: Vec<&str> = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .collect();
    let not_found = || ApiError::no_route(path);
    match segments.as_slice() {
        ["version"] => Ok(Target::Version),
        ["healthz" | "livez" | "readyz"] => Ok(Target::Health),
        ["metrics"] => Ok(Target::Metrics),
        ["api"] => Ok(Target::CoreVersions),
        ["apis"] => Ok(Target::GroupList),
        ["apis", group] => Ok(Target::Group((*group).to_owned())),
        ["openapi", "v2"] => Ok(Target::OpenApiV2),
        ["openapi", "v3"] => Ok(Target::OpenApiRoot),
        ["openapi", "v3", rest @ ..] if !rest.is_empty() => {
            Ok(Target::OpenApiDocument(rest.join("/")))
        }
        ["api", version] => Ok(Target::ResourceList {
            group: CORE_GROUP.to_owned(),
            version: (*version).to_owned(),
        }),
        ["apis", group, version] => Ok(Target::ResourceList {
            group: (*group).to_owned(),
            version: (*version).to_owned(),
        }),
        ["api", version, rest @ ..] => resource_path(CORE_GROUP, version, rest)
            .map(Target::Resource)
            .ok_or_else(not_found),
        ["apis", group, version, rest @ ..] => resource_path(group, version, rest)
            .map(Target::Resource)
            .ok_or_else(not_found),
        _ => Err(not_found()),
    }
}

/// The part after `/api/v1` or `/apis/{group}/{version}`.
fn resource_path(group: &str, version: &str, rest: &[&str]) -> Option<ResourcePath> {
    let find = |plural: &str| registry::lookup(group, version, plural);
    let valid = |segment: &&str| !segment.is_empty();
    if !rest.iter().all(valid) {
        return None;
    }
    // `/namespaces/{x}/...` is a namespaced URL only when the segment after `{x}` is a
    // namespaced plural; otherwise it is the Namespace object `{x}` itself (reference §2.1).
    if let ["namespaces", namespace, plural, tail @ ..] = rest
        && let Some(resource) = find(plural).filter(|resource| resource.namespaced)
    {
        return item(resource, Some(namespace), tail);
    }
    let [plural, tail @ ..] = rest else {
        return None;
    };
    let resource = find(plural)?;
    // A namespaced resource without a namespace is only a collection (list and watch across
    // every namespace, as `kubectl get -A` asks for).
    if resource.namespaced && !tail.is_empty() {
        return None;
    }
    item(resource, None, tail)
}

fn item(
    resource: &'static Resource,
    namespace: Option<&str>,
    tail: &[&str],
) -> Option<ResourcePath> {
    let path = |name: Option<&str>, status| ResourcePath {
        resource,
        namespace: namespace.map(str::to_owned),
        name: name.map(str::to_owned),
        status,
    };
    match tail {
        [] => Some(path(None, false)),
        [name] => Some(path(Some(name), false)),
        [name, "status"] if resource.has_status => Some(path(Some(name), true)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(path: &str) -> ResourcePath {
        match parse(path) {
            Ok(Target::Resource(found)) => found,
            other => panic!("{path} parsed as {other:?}"),
        }
    }

    #[test]
    fn knative_urls() {
        let found = resource("/apis/serving.knative.dev/v1/namespaces/default/services/hello");
        assert_eq!(found.resource.plural, "services");
        assert_eq!(found.namespace.as_deref(), Some("default"));
        assert_eq!(found.name.as_deref(), Some("hello"));
        assert!(!found.status);
        let status =
            resource("/apis/serving.knative.dev/v1/namespaces/default/services/hello/status");
        assert!(status.status);
        let all = resource("/apis/serving.knative.dev/v1/services");
        assert_eq!((all.namespace, all.name), (None, None));
    }

    #[test]
    fn namespace_object_versus_namespaced_collection() {
        let namespace = resource("/api/v1/namespaces/default");
        assert_eq!(namespace.resource.plural, "namespaces");
        assert_eq!(namespace.name.as_deref(), Some("default"));
        let pods = resource("/api/v1/namespaces/default/pods");
        assert_eq!(pods.resource.plural, "pods");
        assert_eq!(pods.namespace.as_deref(), Some("default"));
        let namespaces = resource("/api/v1/namespaces");
        assert_eq!(namespaces.name, None);
    }

    #[test]
    fn discovery_and_openapi() {
        assert_eq!(parse("/api").ok(), Some(Target::CoreVersions));
        assert_eq!(parse("/apis/").ok(), Some(Target::GroupList));
        assert_eq!(
            parse("/apis/serving.knative.dev/v1").ok(),
            Some(Target::ResourceList {
                group: "serving.knative.dev".into(),
                version: "v1".into()
            })
        );
        assert_eq!(
            parse("/openapi/v3/apis/serving.knative.dev/v1").ok(),
            Some(Target::OpenApiDocument(
                "apis/serving.knative.dev/v1".into()
            ))
        );
        assert_eq!(parse("/version").ok(), Some(Target::Version));
    }

    #[test]
    fn unknown_paths_are_not_found() {
        for path in [
            "/apis/serving.knative.dev/v1/namespaces/default/widgets",
            "/apis/serving.knative.dev/v1/services/hello",
            "/apis/serving.knative.dev/v1/namespaces/default/services/hello/scale",
            "/apis/serving.knative.dev/v1/namespaces//services",
            "/api/v1/namespaces/default/pods/p/status/x",
            "/nothing",
        ] {
            assert!(parse(path).is_err(), "{path}");
        }
    }
}
