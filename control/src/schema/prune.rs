//! Pruning: dropping what the schema does not describe, as the real server does for custom
//! resources before it stores them (under `fieldValidation=Ignore` or `Warn`; under `Strict`
//! the same fields are refused instead, so pruning a checked object is a no-op for them).

use serde_json::Value;

use super::node::{FieldSchema, field_schema, flag};
use crate::registry::Resource;

/// Removes unknown fields (what the real server does for CRDs under fieldValidation=Ignore/Warn:
/// pruning).
///
/// Like the real server it also drops `null` values of fields that are not `nullable` (so a
/// `"containerConcurrency": null` reads as absent, not as a type error). Fields preserved by
/// `x-kubernetes-preserve-unknown-fields` are kept as they are; values of the wrong type are
/// left for [`super::check`] to report. A resource without a schema is left untouched.
pub fn prune(resource: &Resource, object: &mut Value) {
    if let Some(schema) = super::schema_of(resource) {
        prune_node(schema, object);
    }
}

fn prune_node(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.retain(|key, child| match field_schema(schema, key) {
                FieldSchema::Known(child_schema) => {
                    !child.is_null() || flag(child_schema, "nullable")
                }
                FieldSchema::Preserved => true,
                FieldSchema::Unknown => false,
            });
            for (key, child) in fields.iter_mut() {
                if let FieldSchema::Known(child_schema) = field_schema(schema, key) {
                    prune_node(child_schema, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    prune_node(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{CORE_GROUP, SERVING_GROUP, lookup};
    use crate::schema::check;
    use serde_json::json;

    #[test]
    fn unknown_fields_go_known_and_preserved_ones_stay() {
        let ksvc = lookup(SERVING_GROUP, "v1", "services").expect("services");
        let mut object = json!({
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "bogus": 1,
            "metadata": {"name": "a", "labelz": {}, "labels": {"x": "y"}},
            "spec": {
                "foo": {"bar": 1},
                "template": {
                    "metadata": {"kept": true},
                    "spec": {
                        "containerConcurrency": null,
                        "containers": [{"image": "a", "imagee": "b", "securityContext": {"anything": 1}}],
                        "volumes": [{"name": "v", "emptyDir": {}}],
                    },
                },
                "traffic": [{"percent": 100, "latest": true}],
            },
        });
        let before = check(ksvc, &object);
        assert_eq!(before.unknown.len(), 5, "{before:?}");
        prune(ksvc, &mut object);
        assert_eq!(
            object,
            json!({
                "apiVersion": "serving.knative.dev/v1",
                "kind": "Service",
                "metadata": {"name": "a", "labels": {"x": "y"}},
                "spec": {
                    "template": {
                        "metadata": {"kept": true},
                        "spec": {
                            "containers": [{"image": "a", "securityContext": {"anything": 1}}],
                            "volumes": [{"name": "v", "emptyDir": {}}],
                        },
                    },
                    "traffic": [{"percent": 100}],
                },
            })
        );
        assert!(check(ksvc, &object).is_clean());
    }

    #[test]
    fn wrong_types_are_left_for_check() {
        let cm = lookup(CORE_GROUP, "v1", "configmaps").expect("configmaps");
        let mut object = json!({"data": ["not", "a", "map"], "immutable": "yes"});
        prune(cm, &mut object);
        assert_eq!(
            object,
            json!({"data": ["not", "a", "map"], "immutable": "yes"})
        );
        assert_eq!(check(cm, &object).invalid.len(), 2);
    }

    #[test]
    fn non_objects_are_left_alone() {
        let cm = lookup(CORE_GROUP, "v1", "configmaps").expect("configmaps");
        for mut v in [json!(null), json!(3), json!([{"a": 1}])] {
            let before = v.clone();
            prune(cm, &mut v);
            assert_eq!(v, before);
        }
    }
}
