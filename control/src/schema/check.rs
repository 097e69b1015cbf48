//! Field validation against a schema: unknown fields and type errors, reported the way the
//! real API server reports them for custom resources (reference §1.4).
//!
//! Unknown fields are only collected (dotted paths); the HTTP layer decides what they mean
//! under the request's `fieldValidation` (400 `strict decoding error: unknown field "spec.foo"`,
//! a `Warning` header, or nothing). Type and enum errors are always errors, worded like
//! apiextensions-apiserver's (kube-openapi's) so kubectl prints the familiar line.

use serde_json::Value;

use super::node::{FieldSchema, field_schema, flag, has_type, type_name};
use crate::field_error::{CauseReason, FieldError};
use crate::registry::Resource;

/// What a check found, in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldReport {
    /// Fields the schema does not describe, as dotted paths
    /// (`spec.template.spec.containers[0].imagee`).
    pub unknown: Vec<String>,
    /// Values of the wrong JSON type, or outside an enum.
    pub invalid: Vec<FieldError>,
}

impl FieldReport {
    /// Whether nothing was found.
    pub fn is_clean(&self) -> bool {
        self.unknown.is_empty() && self.invalid.is_empty()
    }
}

/// Walks `object` against the schema: unknown fields (dotted path, e.g. "spec.foo",
/// "spec.template.spec.containers[0].imagee") and type errors (wrong JSON type, e.g. a string
/// where an integer is required; enum violations; int-or-string). apiVersion/kind/metadata are
/// handled like the real server (metadata fields by ObjectMeta).
///
/// A resource without a schema yields an empty report. `null` values are not type errors: the
/// real server drops them before validating ([`super::prune`] does the same).
pub fn check(resource: &Resource, object: &Value) -> FieldReport {
    let mut report = FieldReport::default();
    if let Some(schema) = super::schema_of(resource) {
        walk(schema, object, "", &mut report);
    }
    report
}

fn walk(schema: &Value, value: &Value, path: &str, report: &mut FieldReport) {
    if value.is_null() {
        return;
    }
    if let Some(error) = type_error(schema, value, path) {
        // Nothing below a value of the wrong type can be judged against the schema.
        report.invalid.push(error);
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        report.invalid.push(not_supported(path, value, allowed));
    }
    match value {
        Value::Object(fields) => {
            for (key, child) in fields {
                let child_path = join(path, key);
                match field_schema(schema, key) {
                    FieldSchema::Known(child_schema) => {
                        walk(child_schema, child, &child_path, report)
                    }
                    FieldSchema::Preserved => {}
                    FieldSchema::Unknown => report.unknown.push(child_path),
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    walk(item_schema, item, &format!("{path}[{index}]"), report);
                }
            }
        }
        _ => {}
    }
}

/// `path.key`, or `key` at the root.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The type error of `value` under `schema`, if any, in kube-openapi's words:
/// `Invalid value: "string": spec.x in body must be of type integer: "string"`.
fn type_error(schema: &Value, value: &Value, path: &str) -> Option<FieldError> {
    let expected = if flag(schema, "x-kubernetes-int-or-string") {
        if has_type(value, "integer") || value.is_string() {
            return None;
        }
        // kube-openapi joins a multi-type's names with a comma.
        "integer,string"
    } else {
        let expected = schema.get("type").and_then(Value::as_str)?;
        if has_type(value, expected) {
            return None;
        }
        expected
    };
    let actual = type_name(value);
    Some(FieldError::new(
        path,
        CauseReason::TypeInvalid,
        format!(
            "Invalid value: \"{actual}\": {path} in body must be of type {expected}: \"{actual}\""
        ),
    ))
}

/// An enum violation, as `field.NotSupported` words it:
/// `Unsupported value: "FOO": supported values: "TCP", "UDP", "SCTP"`.
fn not_supported(path: &str, value: &Value, allowed: &[Value]) -> FieldError {
    let allowed: Vec<String> = allowed.iter().map(Value::to_string).collect();
    FieldError::new(
        path,
        CauseReason::NotSupported,
        format!(
            "Unsupported value: {value}: supported values: {}",
            allowed.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{CORE_GROUP, SERVING_GROUP, lookup};
    use serde_json::json;

    fn ksvc() -> &'static Resource {
        lookup(SERVING_GROUP, "v1", "services").expect("services")
    }

    fn core(plural: &str) -> &'static Resource {
        lookup(CORE_GROUP, "v1", plural).expect(plural)
    }

    fn service(spec: Value) -> Value {
        json!({
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": {"name": "hello", "namespace": "default", "labels": {"app": "x"}},
            "spec": spec,
        })
    }

    #[test]
    fn a_typical_service_is_clean() {
        let object = service(json!({
            "template": {
                "metadata": {"annotations": {"autoscaling.knative.dev/target": "10"}},
                "spec": {
                    "containerConcurrency": 0,
                    "timeoutSeconds": 300,
                    "containers": [{
                        "name": "user-container",
                        "image": "ghcr.io/knative/helloworld-go:latest",
                        "env": [{"name": "TARGET", "value": "World"},
                                {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}],
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "128Mi", "cpu": 1}},
                        "readinessProbe": {"tcpSocket": {"port": 0}, "successThreshold": 1},
                        "volumeMounts": [{"name": "v", "mountPath": "/data", "readOnly": true}],
                    }],
                    "volumes": [{"name": "v", "configMap": {"name": "c"}}],
                    "enableServiceLinks": false,
                },
            },
            "traffic": [{"latestRevision": true, "percent": 100, "tag": "current"}],
        }));
        let report = check(ksvc(), &object);
        assert!(report.is_clean(), "{report:?}");
    }

    #[test]
    fn unknown_fields_at_several_depths_in_document_order() {
        let mut object = service(json!({
            "foo": 1,
            "template": {"spec": {"containers": [{"image": "a"}, {"imagee": "b", "ports": [{"containerPort": 1, "hostPort": 2}]}]}},
            "traffic": [{"percent": 100, "latest": true}],
        }));
        object["bogus"] = json!({"deep": true});
        object["metadata"]["labelz"] = json!({});
        let report = check(ksvc(), &object);
        assert_eq!(
            report.unknown,
            [
                "bogus",
                "metadata.labelz",
                "spec.foo",
                "spec.template.spec.containers[1].imagee",
                "spec.template.spec.containers[1].ports[0].hostPort",
                "spec.traffic[0].latest",
            ]
        );
        assert!(report.invalid.is_empty(), "{:?}", report.invalid);
    }

    #[test]
    fn wrong_types_are_reported_in_the_crd_style() {
        let object = service(json!({
            "template": {"spec": {"containerConcurrency": "string", "containers": [{"image": 7, "args": ["a", 1]}]}},
            "traffic": {"percent": 100},
        }));
        let report = check(ksvc(), &object);
        let found: Vec<(&str, CauseReason, &str)> = report
            .invalid
            .iter()
            .map(|e| (e.field.as_str(), e.reason, e.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "spec.template.spec.containerConcurrency",
                    CauseReason::TypeInvalid,
                    "Invalid value: \"string\": spec.template.spec.containerConcurrency in body must be of type integer: \"string\""
                ),
                (
                    "spec.template.spec.containers[0].args[1]",
                    CauseReason::TypeInvalid,
                    "Invalid value: \"integer\": spec.template.spec.containers[0].args[1] in body must be of type string: \"integer\""
                ),
                (
                    "spec.template.spec.containers[0].image",
                    CauseReason::TypeInvalid,
                    "Invalid value: \"integer\": spec.template.spec.containers[0].image in body must be of type string: \"integer\""
                ),
                (
                    "spec.traffic",
                    CauseReason::TypeInvalid,
                    "Invalid value: \"object\": spec.traffic in body must be of type array: \"object\""
                ),
            ]
        );
        assert!(report.unknown.is_empty());
    }

    #[test]
    fn integers_numbers_and_int_or_string() {
        let spec = |containers: Value, timeout: Value| {
            service(
                json!({"template": {"spec": {"timeoutSeconds": timeout, "containers": containers}}}),
            )
        };
        let limits =
            |memory: Value| json!([{"image": "a", "resources": {"limits": {"memory": memory}}}]);

        // A whole float is an integer, as upstream takes it; a fraction is a number.
        assert!(check(ksvc(), &spec(limits(json!("1Gi")), json!(3.0))).is_clean());
        let report = check(ksvc(), &spec(limits(json!(1024)), json!(2.5)));
        assert_eq!(report.invalid.len(), 1, "{report:?}");
        assert!(
            report.invalid[0]
                .message
                .contains("must be of type integer: \"number\"")
        );

        for bad in [json!(true), json!({"a": 1}), json!([1])] {
            let report = check(ksvc(), &spec(limits(bad.clone()), json!(1)));
            assert_eq!(report.invalid.len(), 1, "{bad}: {report:?}");
            let error = &report.invalid[0];
            assert_eq!(
                error.field,
                "spec.template.spec.containers[0].resources.limits.memory"
            );
            assert_eq!(error.reason, CauseReason::TypeInvalid);
            assert!(
                error.message.contains("must be of type integer,string"),
                "{}",
                error.message
            );
        }
    }

    #[test]
    fn enums_are_not_supported_values() {
        let object = service(
            json!({"template": {"spec": {"containers": [{"image": "a", "ports": [{"protocol": "HTTP"}]}]}}}),
        );
        let report = check(ksvc(), &object);
        assert_eq!(report.invalid.len(), 1);
        assert_eq!(report.invalid[0].reason, CauseReason::NotSupported);
        assert_eq!(
            report.invalid[0].message,
            "Unsupported value: \"HTTP\": supported values: \"TCP\", \"UDP\", \"SCTP\""
        );
    }

    #[test]
    fn preserved_subtrees_accept_anything_but_their_known_fields_are_checked() {
        let object = service(json!({"template": {
            "metadata": {"anything": {"goes": 1}, "labels": {"a": "b"}},
            "spec": {
                "containers": [{"image": "a", "securityContext": {"runAsUser": 1000, "x": [1]}, "livenessProbe": {"httpGet": {"path": "/"}}}],
                "volumes": [{"name": "v", "emptyDir": {}, "whatever": 1}, {"name": 5}],
            },
        }}));
        let report = check(ksvc(), &object);
        assert!(report.unknown.is_empty(), "{report:?}");
        assert_eq!(report.invalid.len(), 1, "{report:?}");
        assert_eq!(
            report.invalid[0].field,
            "spec.template.spec.volumes[1].name"
        );
    }

    #[test]
    fn metadata_is_checked_as_object_meta() {
        let object = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": "n",
                "labels": {"a": 1},
                "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "u", "blockOwnerDeletion": "yes", "extra": 1}],
                "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:metadata": {}}}],
                "generation": 3,
                "finalizers": ["kubernetes"],
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        });
        let report = check(core("namespaces"), &object);
        assert_eq!(report.unknown, ["metadata.ownerReferences[0].extra"]);
        let fields: Vec<&str> = report.invalid.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.labels.a",
                "metadata.ownerReferences[0].blockOwnerDeletion"
            ]
        );
        assert!(
            check(core("namespaces"), &json!({"apiVersion": 1})).invalid[0]
                .message
                .contains("apiVersion in body must be of type string")
        );
    }

    #[test]
    fn nulls_are_not_type_errors() {
        let object = service(
            json!({"template": {"spec": {"containerConcurrency": null, "containers": null}}, "traffic": null}),
        );
        assert!(check(ksvc(), &object).is_clean());
    }

    #[test]
    fn core_kinds_have_schemas_too() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v", "n": 1}, "dta": {}});
        let report = check(core("configmaps"), &cm);
        assert_eq!(report.unknown, ["dta"]);
        assert_eq!(report.invalid[0].field, "data.n");

        let event = json!({"involvedObject": {"kind": "Pod", "name": "p"}, "count": "3", "reason": "Started", "source": {"component": "wisp"}});
        let report = check(core("events"), &event);
        assert_eq!(report.invalid.len(), 1);
        assert_eq!(report.invalid[0].field, "count");

        let node = json!({"status": {"allocatable": {"memory": "8Gi", "pods": 110}, "nodeInfo": {"kubeletVersion": "v1.32.0"}, "daemonEndpoints": {}}});
        assert!(check(core("nodes"), &node).is_clean());
        let pod = json!({"spec": {"containers": [{"image": "a"}], "dnsPolicy": "ClusterFirst"}, "status": {"phase": "Running", "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0}]}});
        assert!(check(core("pods"), &pod).is_clean());
    }
}
