//! PATCH bodies (reference §2.5): JSON merge patch, JSON patch (with `test`), apply patch
//! (create-or-merge) and strategic merge patch for built-in kinds, each turned into the new
//! state of the object. Pure.

use serde_json::{Map, Value};

use crate::registry::Resource;

use super::status::ApiError;

/// Which patch a request carries, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/strategic-merge-patch+json` (built-in kinds only).
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// The patch type of a media type, or 415 naming the ones accepted.
    pub fn from_media_type(media_type: &str, resource: &Resource) -> Result<Self, ApiError> {
        match media_type {
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/json-patch+json" => Ok(Self::Json),
            "application/apply-patch+yaml" => Ok(Self::Apply),
            "application/strategic-merge-patch+json" if resource.built_in() => Ok(Self::Strategic),
            "application/strategic-merge-patch+json" => {
                Err(ApiError::unsupported_media_type(format!(
                    "the body of the request was in an unknown format - accepted media types \
                     include: application/json-patch+json, application/merge-patch+json, \
                     application/apply-patch+yaml (strategic merge patch needs a built-in \
                     kind's schema; {} is a custom resource: use `kubectl patch --type=merge`)",
                    resource.kind
                )))
            }
            other => Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format ({other:?}) - accepted media \
                 types include: application/json-patch+json, application/merge-patch+json, \
                 application/apply-patch+yaml{}",
                if resource.built_in() {
                    ", application/strategic-merge-patch+json"
                } else {
                    ""
                }
            ))),
        }
    }
}

/// The object after applying `patch` of `kind` to `current`.
pub fn apply(kind: PatchType, current: &Value, patch: &Value) -> Result<Value, ApiError> {
    let mut patched = current.clone();
    match kind {
        PatchType::Merge | PatchType::Apply => {
            require_object(patch)?;
            json_patch::merge(&mut patched, patch);
        }
        PatchType::Strategic => {
            require_object(patch)?;
            // Without Go's per-field patch strategies, a strategic merge patch of the built-in
            // kinds served here (namespaces, configmaps, events, leases) behaves as a merge patch once
            // its `$`-directives are gone: none of their lists merge by key in practice.
            json_patch::merge(&mut patched, &without_directives(patch));
        }
        PatchType::Json => {
            let operations: json_patch::Patch =
                serde_json::from_value(patch.clone()).map_err(|error| {
                    ApiError::bad_request(format!(
                        "the JSON patch is malformed: {error}; send a list of RFC 6902 operations \
                         such as [{{\"op\":\"replace\",\"path\":\"/spec/x\",\"value\":1}}]"
                    ))
                })?;
            // One operation at a time so an absent-is-null `test` can be decided on the
            // document as the earlier operations left it; `patched` is a copy, so a failure
            // part-way still changes nothing.
            if operations.0.len() > MAX_JSON_PATCH_OPERATIONS {
                return Err(unprocessable(format!(
                    "the JSON patch has {} operations; the most this server applies is \
                     {MAX_JSON_PATCH_OPERATIONS}: split it, or send a merge patch",
                    operations.0.len()
                )));
            }
            let mut copied = 0usize;
            for (index, operation) in operations.0.iter().enumerate() {
                if tests_absent_as_null(&patched, operation) {
                    continue;
                }
                // `copy` is the one operation that can grow a document beyond what the body
                // carried (each copy of a copy doubles it): bound the total copied.
                if let json_patch::PatchOperation::Copy(copy) = operation
                    && let Some(source) = patched.pointer(copy.from.as_str())
                {
                    copied = copied.saturating_add(serialized_size(source, MAX_COPIED_BYTES));
                    if copied > MAX_COPIED_BYTES {
                        return Err(unprocessable(format!(
                            "the JSON patch copies more than {MAX_COPIED_BYTES} bytes \
                             (operation '/{index}'); an object cannot grow that much"
                        )));
                    }
                }
                json_patch::patch(&mut patched, std::slice::from_ref(operation))
                    .map_err(|error| json_patch_failed(index, &error))?;
            }
        }
    }
    Ok(patched)
}

/// The annotation in which `kubectl apply` (client-side) keeps what it last applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What the real server does after a server-side apply by kubectl (`fieldManager=kubectl`) of
/// an object a client-side apply annotated: it rewrites the annotation to the configuration
/// just applied (without the annotation itself), so a later client-side apply diffs against
/// it. Another manager, or no annotation, leaves it alone.
pub fn sync_last_applied(field_manager: Option<&str>, applied: &Value, patched: &mut Value) {
    if field_manager != Some("kubectl") {
        return;
    }
    let Some(annotations) = patched
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if !annotations.contains_key(LAST_APPLIED) {
        return;
    }
    let mut configuration = applied.clone();
    if let Some(own) = configuration
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        own.remove(LAST_APPLIED);
    }
    // Go's encoder: compact, keys sorted (as serde_json's map keeps them), a final newline.
    annotations.insert(
        LAST_APPLIED.into(),
        Value::String(format!("{configuration}\n")),
    );
}

/// A JSON patch operation that failed (a `test` that did not match, a missing path): the real
/// server's 422 says only that, with empty details, whatever went wrong — kubectl prints "The
/// request is invalid: the server rejected our request due to an error in our request". What
/// failed is logged, for the operator.
fn json_patch_failed(index: usize, error: &json_patch::PatchError) -> ApiError {
    tracing::debug!(
        "JSON patch operation '/{index}' failed at path '{}': {}",
        error.path,
        error.kind
    );
    ApiError {
        code: http::StatusCode::UNPROCESSABLE_ENTITY,
        reason: "Invalid",
        message: "the server rejected our request due to an error in our request".to_owned(),
        details: Some(Box::default()),
    }
}

/// Whether `operation` is a `test` for `null` of a path that is absent (under a parent that
/// exists). Go's json-patch, which the real server uses, lets that pass, and kube-rs's
/// `finalizer` helper relies on it to add the first finalizer (`test /metadata/finalizers
/// null`, then `add`); the Rust json-patch crate would fail it as an invalid path.
fn tests_absent_as_null(document: &Value, operation: &json_patch::PatchOperation) -> bool {
    let json_patch::PatchOperation::Test(test) = operation else {
        return false;
    };
    let path = test.path.as_str();
    let parent = path.rsplit_once('/').map_or("", |(parent, _)| parent);
    test.value.is_null() && document.pointer(path).is_none() && document.pointer(parent).is_some()
}

/// Most operations in one JSON patch (the real server's bound too).
const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Most bytes the `copy` operations of one JSON patch may duplicate in all: the request-body
/// limit, since no legitimate object outgrows what one request may carry.
const MAX_COPIED_BYTES: usize = super::body::DEFAULT_MAX_BODY;

fn unprocessable(message: String) -> ApiError {
    ApiError {
        code: http::StatusCode::UNPROCESSABLE_ENTITY,
        reason: "Invalid",
        message,
        details: None,
    }
}

/// The length of `value` as compact JSON, counted without building it and cut short past
/// `limit` (anything above the limit is refused anyway).
fn serialized_size(value: &Value, limit: usize) -> usize {
    struct Counter {
        bytes: usize,
        limit: usize,
    }
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.bytes += buf.len();
            if self.bytes > self.limit {
                return Err(std::io::Error::other("over the limit"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter { bytes: 0, limit };
    let _ = serde_json::to_writer(&mut counter, value);
    counter.bytes
}

fn require_object(patch: &Value) -> Result<(), ApiError> {
    if patch.is_object() {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "the patch must be a JSON object (the fields to change)",
        ))
    }
}

/// `patch` without strategic-merge directives (`$patch`, `$setElementOrder/…`, `$retainKeys`,
/// `$deleteFromPrimitiveList/…`), at every depth.
fn without_directives(patch: &Value) -> Value {
    match patch {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(key, _)| !key.starts_with('$'))
                .map(|(key, value)| (key.clone(), without_directives(value)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::lookup;
    use serde_json::json;

    #[test]
    fn merge_patch_replaces_lists_and_removes_nulls() {
        let current = json!({"spec": {"a": 1, "b": [1, 2], "c": "x"}});
        let patched = apply(
            PatchType::Merge,
            &current,
            &json!({"spec": {"b": [3], "c": null}}),
        )
        .expect("valid");
        assert_eq!(patched, json!({"spec": {"a": 1, "b": [3]}}));
    }

    #[test]
    fn json_patch_test_failure_is_unprocessable() {
        let current = json!({"metadata": {"finalizers": ["a"]}});
        let failed = apply(
            PatchType::Json,
            &current,
            &json!([{"op": "test", "path": "/metadata/finalizers", "value": ["b"]},
                    {"op": "remove", "path": "/metadata/finalizers/0"}]),
        )
        .expect_err("test fails");
        assert_eq!(failed.code, http::StatusCode::UNPROCESSABLE_ENTITY);
        // The real server's body, word for word: no hint of what failed, empty details.
        let status = failed.to_status();
        assert_eq!(
            status["message"],
            "the server rejected our request due to an error in our request"
        );
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(status["details"], json!({}));
        let applied = apply(
            PatchType::Json,
            &current,
            &json!([{"op": "test", "path": "/metadata/finalizers", "value": ["a"]},
                    {"op": "remove", "path": "/metadata/finalizers/0"}]),
        )
        .expect("test passes");
        assert_eq!(applied, json!({"metadata": {"finalizers": []}}));
        assert!(apply(PatchType::Json, &current, &json!({"op": "x"})).is_err());
    }

    #[test]
    fn json_patch_test_of_null_passes_for_an_absent_path() {
        let current = json!({"metadata": {"name": "x"}});
        let added = apply(
            PatchType::Json,
            &current,
            &json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
                    {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}]),
        )
        .expect("absent tests as null");
        assert_eq!(
            added,
            json!({"metadata": {"name": "x", "finalizers": ["f"]}})
        );
        // Present, or a non-null expectation, or a missing parent: still a failed test.
        for (document, value, path) in [
            (&added, json!(null), "/metadata/finalizers"),
            (&current, json!(["f"]), "/metadata/finalizers"),
            (&current, json!(null), "/status/conditions"),
        ] {
            let failed = apply(
                PatchType::Json,
                document,
                &json!([{"op": "test", "path": path, "value": value},
                        {"op": "add", "path": "/metadata/finalizers", "value": ["g"]}]),
            )
            .expect_err("test fails");
            // The refusal no longer names the operation (the real server's does not either),
            // but only the test can fail here: the `add` has `/metadata` in every document.
            assert_eq!(failed.code, http::StatusCode::UNPROCESSABLE_ENTITY);
        }
        let second = apply(
            PatchType::Json,
            &current,
            &json!([{"op": "add", "path": "/metadata/labels", "value": {}},
                    {"op": "remove", "path": "/metadata/nothing"}]),
        )
        .expect_err("second operation fails");
        assert_eq!(second.code, http::StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn kubectls_server_side_apply_rewrites_the_last_applied_annotation() {
        let applied =
            json!({"kind": "Service", "metadata": {"name": "x"}, "spec": {"b": 1, "a": 2}});
        let annotated = |value: &str| json!({"metadata": {"name": "x", "annotations": {LAST_APPLIED: value, "k": "v"}}});
        let mut patched = annotated("old");
        sync_last_applied(Some("kubectl"), &applied, &mut patched);
        assert_eq!(
            patched["metadata"]["annotations"][LAST_APPLIED],
            "{\"kind\":\"Service\",\"metadata\":{\"name\":\"x\"},\"spec\":{\"a\":2,\"b\":1}}\n"
        );
        assert_eq!(patched["metadata"]["annotations"]["k"], "v");
        // Another manager, or an object no client-side apply annotated: unchanged.
        let mut other = annotated("old");
        sync_last_applied(Some("helm"), &applied, &mut other);
        assert_eq!(other, annotated("old"));
        let mut bare = json!({"metadata": {"name": "x"}});
        sync_last_applied(Some("kubectl"), &applied, &mut bare);
        assert_eq!(bare, json!({"metadata": {"name": "x"}}));
    }

    #[test]
    fn a_copy_bomb_is_refused_before_it_grows() {
        let current = json!({"spec": {"seed": "x".repeat(1024)}});
        let bomb: Vec<Value> = (0..40)
            .map(|i| json!({"op": "copy", "from": "/spec", "path": format!("/spec/c{i}")}))
            .collect();
        let error = apply(PatchType::Json, &current, &Value::Array(bomb)).expect_err("bomb");
        assert_eq!(error.code, http::StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            error.message.contains("copies more than"),
            "{}",
            error.message
        );
        let small = json!([{"op": "copy", "from": "/spec/seed", "path": "/spec/again"}]);
        let copied = apply(PatchType::Json, &current, &small).expect("one copy is fine");
        assert_eq!(copied["spec"]["again"], current["spec"]["seed"]);
    }

    #[test]
    fn strategic_merge_only_for_built_in_kinds() {
        let services = lookup("serving.knative.dev", "v1", "services").expect("registered");
        let namespaces = lookup("", "v1", "namespaces").expect("registered");
        let refused =
            PatchType::from_media_type("application/strategic-merge-patch+json", services)
                .expect_err("custom resource");
        assert_eq!(refused.code, http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            PatchType::from_media_type("application/strategic-merge-patch+json", namespaces).ok(),
            Some(PatchType::Strategic)
        );
        let leases = lookup("coordination.k8s.io", "v1", "leases").expect("registered");
        assert_eq!(
            PatchType::from_media_type("application/strategic-merge-patch+json", leases).ok(),
            Some(PatchType::Strategic)
        );
        let patched = apply(
            PatchType::Strategic,
            &json!({"metadata": {"labels": {"a": "1"}}}),
            &json!({"metadata": {"labels": {"b": "2"}, "$setElementOrder/x": []}, "$patch": "merge"}),
        )
        .expect("valid");
        assert_eq!(
            patched,
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}})
        );
    }
}
