//! Object metadata the three controllers share: ownership, label propagation, timestamps.

use std::collections::BTreeMap;
use std::time::SystemTime;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};
use wisp_api::knative::labels;

use super::Error;

/// Now, as conditions stamp it (RFC 3339, whole seconds).
pub(super) fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// A controller reference to `owner`: the API server's garbage collector deletes the child
/// with it, and `blockOwnerDeletion` keeps a foreground delete of the owner waiting for it.
pub(super) fn controller_reference<K>(owner: &K) -> Result<OwnerReference, Error>
where
    K: Resource<DynamicType = ()>,
{
    Ok(OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.name_any(),
        uid: uid(owner)?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// Whether `meta` names `uid` as its controller.
pub(super) fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.uid == uid)
}

/// The labels or annotations of a parent that its children carry too.
pub(super) fn propagated(map: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    map.iter()
        .filter(|(key, _)| labels::propagates(key))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The object's namespace (every Knative kind is namespaced).
pub(super) fn namespace<K>(object: &K) -> Result<String, Error>
where
    K: Resource<DynamicType = ()>,
{
    object
        .namespace()
        .ok_or_else(|| missing::<K>(object, "namespace"))
}

/// The object's uid (set by the API server on create).
pub(super) fn uid<K>(object: &K) -> Result<String, Error>
where
    K: Resource<DynamicType = ()>,
{
    object.uid().ok_or_else(|| missing::<K>(object, "uid"))
}

fn missing<K>(object: &K, field: &'static str) -> Error
where
    K: Resource<DynamicType = ()>,
{
    Error::MissingField {
        kind: K::kind(&()).into_owned(),
        name: object.name_any(),
        field,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wisp_api::knative::Service;

    fn service() -> Service {
        let mut svc = Service::new("hello", Default::default());
        svc.metadata.namespace = Some("default".into());
        svc.metadata.uid = Some("uid-1".into());
        svc
    }

    #[test]
    fn a_controller_reference_names_the_owner() {
        let reference = controller_reference(&service()).expect("has a uid");
        assert_eq!(reference.api_version, "serving.knative.dev/v1");
        assert_eq!(reference.kind, "Service");
        assert_eq!(reference.name, "hello");
        assert_eq!(reference.uid, "uid-1");
        let meta = ObjectMeta {
            owner_references: Some(vec![reference.clone()]),
            ..ObjectMeta::default()
        };
        assert!(is_controlled_by(&meta, "uid-1"));
        assert!(!is_controlled_by(&meta, "uid-2"));
        let not_controller = ObjectMeta {
            owner_references: Some(vec![OwnerReference {
                controller: None,
                ..reference
            }]),
            ..ObjectMeta::default()
        };
        assert!(!is_controlled_by(&not_controller, "uid-1"));
    }

    #[test]
    fn objects_without_server_fields_are_errors() {
        let mut svc = service();
        svc.metadata.uid = None;
        svc.metadata.namespace = None;
        assert!(controller_reference(&svc).is_err());
        assert!(namespace(&svc).is_err());
        assert!(uid(&svc).is_err());
    }

    #[test]
    fn controller_keys_are_not_propagated() {
        let map = BTreeMap::from([
            ("juicy".to_owned(), "yes".to_owned()),
            (labels::SERVICE.to_owned(), "x".to_owned()),
            (
                "kubectl.kubernetes.io/last-applied-configuration".to_owned(),
                "{}".to_owned(),
            ),
            (labels::CREATOR.to_owned(), "alice".to_owned()),
        ]);
        let kept: Vec<String> = propagated(&map).into_keys().collect();
        assert_eq!(kept, ["juicy", labels::CREATOR]);
    }
}
