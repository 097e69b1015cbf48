//! The metadata the server owns (reference §2.2): uid, creationTimestamp, generation, namespace
//! from the URL, generateName, and the rules that keep clients from changing them — plus the
//! status-subresource split (§2.8) and the finalizer rules of deletion (§2.7). Pure functions on
//! JSON, so every write path (create, update, patch, apply) shares them.

use std::time::SystemTime;

use serde_json::{Map, Value, json};

use crate::field_error::FieldError;
use crate::registry::Resource;

use super::status::ApiError;

/// Letters generated names end in: Kubernetes leaves out vowels (no accidental words) and
/// look-alike digits.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Length of the random suffix of a generated name.
const NAME_SUFFIX: usize = 5;

/// Longest name prefix kept from `generateName`, so prefix + suffix stays ≤ 63.
const MAX_GENERATED_PREFIX: usize = 63 - NAME_SUFFIX;

/// Now, as Kubernetes writes timestamps: RFC 3339 UTC, whole seconds, `Z`.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// A fresh object uid.
pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `prefix` plus five random characters, the way the real server expands `generateName`.
pub fn generate_name(prefix: &str) -> String {
    let mut random = [0u8; NAME_SUFFIX];
    // An all-zero suffix if the OS has no randomness still yields a valid name; the store's
    // AlreadyExists makes the caller retry with another draw.
    let _ = getrandom::fill(&mut random);
    let prefix: String = prefix.chars().take(MAX_GENERATED_PREFIX).collect();
    let suffix: String = random
        .iter()
        .map(|byte| char::from(NAME_ALPHABET[usize::from(*byte) % NAME_ALPHABET.len()]))
        .collect();
    format!("{prefix}{suffix}")
}

/// The object's `metadata` map, created if absent. Fails if the body is not an object or its
/// metadata is not one.
pub fn metadata_mut(object: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    let Some(fields) = object.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object (a Kubernetes object with apiVersion, kind, \
             metadata and spec)",
        ));
    };
    let metadata = fields
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if metadata.is_null() {
        *metadata = Value::Object(Map::new());
    }
    metadata
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))
}

/// A string field of `metadata`.
pub fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

/// `metadata.finalizers` as strings.
pub fn finalizers(object: &Value) -> Vec<&str> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The finalizer that records a delete's `Orphan` policy while other finalizers hold the
/// object (Kubernetes' `metav1.FinalizerOrphanDependents`): when they are gone, its dependents
/// are let go rather than deleted.
pub const ORPHAN_FINALIZER: &str = "orphan";

/// Whether finalizers other than [`ORPHAN_FINALIZER`] hold `object`.
pub fn held_by_others(object: &Value) -> bool {
    finalizers(object)
        .iter()
        .any(|finalizer| *finalizer != ORPHAN_FINALIZER)
}

/// Adds [`ORPHAN_FINALIZER`] to `object`'s finalizers, once.
pub fn add_orphan_finalizer(object: &mut Value) {
    if finalizers(object).contains(&ORPHAN_FINALIZER) {
        return;
    }
    if let Ok(metadata) = metadata_mut(object) {
        let list = metadata
            .entry("finalizers")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(items) = list.as_array_mut() {
            items.push(Value::String(ORPHAN_FINALIZER.to_owned()));
        }
    }
}

/// Whether deletion has started (`metadata.deletionTimestamp` set).
pub fn is_terminating(object: &Value) -> bool {
    object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|value| !value.is_null())
}

/// Checks `apiVersion` and `kind` against the URL's resource and fills them in when absent.
pub fn check_type(resource: &Resource, object: &mut Value) -> Result<(), ApiError> {
    let expected_version = resource.api_version();
    let fields = object.as_object_mut().ok_or_else(|| {
        ApiError::bad_request("the request body must be a JSON object (a Kubernetes object)")
    })?;
    match fields.get("apiVersion").and_then(Value::as_str) {
        Some(version) if version != expected_version => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({version}) does not match the expected API \
                 version ({expected_version})"
            )));
        }
        _ => {
            fields.insert("apiVersion".into(), expected_version.into());
        }
    }
    match fields.get("kind").and_then(Value::as_str) {
        Some(kind) if kind != resource.kind => Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({}) of {} at \
             this URL",
            resource.kind, resource.plural
        ))),
        _ => {
            fields.insert("kind".into(), resource.kind.into());
            Ok(())
        }
    }
}

/// Fills in what the server owns on a new object: namespace from the URL, uid,
/// creationTimestamp and generation 1 (the caller has named it: from the body, the URL of an
/// apply, or `generateName`, since the store key needs the name first). Drops fields a
/// client may not set on create (resourceVersion, deletion marks) and, for resources with a
/// status subresource, the status (§2.2).
pub fn prepare_create(
    resource: &Resource,
    namespace: Option<&str>,
    object: &mut Value,
) -> Result<(), ApiError> {
    check_type(resource, object)?;
    let metadata = metadata_mut(object)?;
    set_namespace(resource, namespace, metadata)?;
    for owned in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        metadata.remove(owned);
    }
    metadata.insert("uid".into(), new_uid().into());
    metadata.insert("creationTimestamp".into(), now().into());
    metadata.insert("generation".into(), 1.into());
    if resource.has_status
        && let Some(fields) = object.as_object_mut()
    {
        fields.remove("status");
    }
    Ok(())
}

/// The namespace an object gets: the URL's for namespaced kinds (a different one in the body is
/// an error), none for cluster-scoped kinds.
fn set_namespace(
    resource: &Resource,
    namespace: Option<&str>,
    metadata: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    if !resource.namespaced {
        metadata.remove("namespace");
        return Ok(());
    }
    let Some(url_namespace) = namespace else {
        return Err(ApiError::bad_request(format!(
            "{} are namespaced: write them under /namespaces/{{namespace}}/{}",
            resource.plural, resource.plural
        )));
    };
    match metadata.get("namespace").and_then(Value::as_str) {
        Some(body) if !body.is_empty() && body != url_namespace => {
            Err(ApiError::bad_request(format!(
                "the namespace of the provided object ({body}) does not match the namespace \
                 sent on the request ({url_namespace})"
            )))
        }
        _ => {
            metadata.insert("namespace".into(), url_namespace.into());
            Ok(())
        }
    }
}

/// Turns a client's new state of an existing object into what is stored: server-owned metadata
/// from `current`, the status kept (main resource of a kind with `/status`), and the finalizer
/// rule of a terminating object enforced. [`set_generation`] follows once defaults are in.
pub fn prepare_update(
    resource: &Resource,
    namespace: Option<&str>,
    name: &str,
    current: &Value,
    object: &mut Value,
) -> Result<(), ApiError> {
    check_type(resource, object)?;
    {
        let metadata = metadata_mut(object)?;
        set_namespace(resource, namespace, metadata)?;
        match metadata.get("name").and_then(Value::as_str) {
            Some(body) if !body.is_empty() && body != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body}) does not match the name on the URL ({name})"
                )));
            }
            _ => {
                metadata.insert("name".into(), name.into());
            }
        }
        for owned in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generateName",
        ] {
            match current.pointer(&format!("/metadata/{owned}")) {
                Some(value) => metadata.insert(owned.into(), value.clone()),
                None => metadata.remove(owned),
            };
        }
    }
    if resource.has_status
        && let Some(fields) = object.as_object_mut()
    {
        match current.get("status") {
            Some(status) => fields.insert("status".into(), status.clone()),
            None => fields.remove("status"),
        };
    }
    if is_terminating(current) {
        let before = finalizers(current);
        if let Some(added) = finalizers(object).into_iter().find(|f| !before.contains(f)) {
            return Err(ApiError::invalid(
                resource,
                name,
                vec![FieldError::forbidden(
                    "metadata.finalizers",
                    format!(
                        "Forbidden: no new finalizers can be added if the object is being \
                         deleted, found new finalizers [{added}]"
                    ),
                )],
            ));
        }
    }
    Ok(())
}

/// Sets `generation`: the current one, plus one when anything outside metadata and status
/// changed. Called after defaulting, so a default that restores what a patch dropped is no
/// change.
pub fn set_generation(current: &Value, object: &mut Value) -> Result<(), ApiError> {
    let generation = current
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let bumped = if spec_changed(current, object) {
        generation + 1
    } else {
        generation
    };
    metadata_mut(object)?.insert("generation".into(), bumped.into());
    Ok(())
}

/// The `/status` write: the current object with only its status replaced.
pub fn apply_status(current: &Value, object: &Value) -> Value {
    let mut updated = current.clone();
    if let Some(fields) = updated.as_object_mut() {
        match object.get("status") {
            Some(status) => fields.insert("status".into(), status.clone()),
            None => fields.remove("status"),
        };
    }
    updated
}

/// Whether anything but `metadata` and `status` differs (what bumps `generation`).
fn spec_changed(current: &Value, object: &Value) -> bool {
    let strip = |value: &Value| -> Value {
        let mut copy = value.clone();
        if let Some(fields) = copy.as_object_mut() {
            fields.remove("metadata");
            fields.remove("status");
        }
        copy
    };
    strip(current) != strip(object)
}

/// Starts a graceful deletion: `deletionTimestamp` now, `deletionGracePeriodSeconds` `grace`
/// (0 when finalizers hold the object; a running Pod's grace period), generation bumped, as the
/// real server does. An object already terminating only has its grace period shortened.
pub fn mark_deleted(object: &mut Value, grace: i64) {
    if is_terminating(object) {
        if let Ok(metadata) = metadata_mut(object) {
            let current = metadata
                .get("deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            metadata.insert(
                "deletionGracePeriodSeconds".into(),
                grace.min(current).into(),
            );
        }
        return;
    }
    if let Ok(metadata) = metadata_mut(object) {
        let generation = metadata
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        metadata.insert("deletionTimestamp".into(), now().into());
        metadata.insert("deletionGracePeriodSeconds".into(), grace.into());
        metadata.insert("generation".into(), json!(generation + 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::lookup;

    fn services() -> &'static Resource {
        lookup("serving.knative.dev", "v1", "services").expect("registered")
    }

    fn namespaces() -> &'static Resource {
        lookup("", "v1", "namespaces").expect("registered")
    }

    #[test]
    fn create_fills_server_fields_and_drops_status() {
        let mut object = json!({"metadata": {"name": "hello", "resourceVersion": "9"},
                                "spec": {}, "status": {"url": "x"}});
        prepare_create(services(), Some("default"), &mut object).expect("valid");
        assert_eq!(object["apiVersion"], "serving.knative.dev/v1");
        assert_eq!(object["kind"], "Service");
        assert_eq!(object["metadata"]["namespace"], "default");
        assert_eq!(object["metadata"]["generation"], 1);
        assert!(
            object["metadata"]["uid"]
                .as_str()
                .is_some_and(|uid| uid.len() == 36)
        );
        assert!(
            object["metadata"]["creationTimestamp"]
                .as_str()
                .is_some_and(|time| time.ends_with('Z') && time.len() == 20)
        );
        assert!(object["metadata"].get("resourceVersion").is_none());
        assert!(object.get("status").is_none());
    }

    #[test]
    fn generate_name_appends_five_characters() {
        let name = generate_name("hello-");
        assert!(name.starts_with("hello-") && name.len() == 11, "{name}");
        assert!(name[6..].bytes().all(|byte| NAME_ALPHABET.contains(&byte)));
        assert_eq!(generate_name(&"x".repeat(80)).len(), 63);
    }

    #[test]
    fn mismatches_are_refused() {
        let mut other_ns = json!({"metadata": {"name": "a", "namespace": "other"}});
        assert!(prepare_create(services(), Some("default"), &mut other_ns).is_err());
        let mut wrong_kind = json!({"kind": "Route", "metadata": {"name": "a"}});
        assert!(prepare_create(services(), Some("default"), &mut wrong_kind).is_err());
        let mut namespace = json!({"metadata": {"name": "x", "namespace": "y"}});
        prepare_create(namespaces(), None, &mut namespace).expect("cluster-scoped");
        assert!(namespace["metadata"].get("namespace").is_none());
    }

    #[test]
    fn generation_moves_only_with_the_spec() {
        let current = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": "hello", "namespace": "default", "uid": "u", "generation": 3,
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"a": 1}, "status": {"url": "kept"}});
        let mut labels_only = current.clone();
        labels_only["metadata"]["labels"] = json!({"x": "y"});
        labels_only["metadata"]["uid"] = json!("forged");
        labels_only["status"] = json!({"url": "ignored"});
        prepare_update(
            services(),
            Some("default"),
            "hello",
            &current,
            &mut labels_only,
        )
        .expect("valid");
        set_generation(&current, &mut labels_only).expect("object");
        assert_eq!(labels_only["metadata"]["generation"], 3);
        assert_eq!(labels_only["metadata"]["uid"], "u");
        assert_eq!(labels_only["status"]["url"], "kept");
        let mut new_spec = current.clone();
        new_spec["spec"]["a"] = json!(2);
        prepare_update(
            services(),
            Some("default"),
            "hello",
            &current,
            &mut new_spec,
        )
        .expect("valid");
        set_generation(&current, &mut new_spec).expect("object");
        assert_eq!(new_spec["metadata"]["generation"], 4);
    }

    #[test]
    fn no_new_finalizers_while_terminating() {
        let mut current = json!({"metadata": {"name": "hello", "namespace": "default",
            "finalizers": ["a"], "generation": 1}});
        mark_deleted(&mut current, 0);
        assert!(is_terminating(&current));
        assert_eq!(current["metadata"]["generation"], 2);
        let mut more = current.clone();
        more["metadata"]["finalizers"] = json!(["a", "b"]);
        assert!(prepare_update(services(), Some("default"), "hello", &current, &mut more).is_err());
        let mut fewer = current.clone();
        fewer["metadata"]["finalizers"] = json!([]);
        prepare_update(services(), Some("default"), "hello", &current, &mut fewer)
            .expect("removing is fine");
    }

    #[test]
    fn status_writes_touch_only_status() {
        let current = json!({"metadata": {"name": "a"}, "spec": {"x": 1}});
        let written = apply_status(
            &current,
            &json!({"metadata": {"name": "b"}, "spec": {"x": 2},
                                                    "status": {"ready": true}}),
        );
        assert_eq!(written["spec"]["x"], 1);
        assert_eq!(written["metadata"]["name"], "a");
        assert_eq!(written["status"]["ready"], true);
    }
}
