//! From the embedded object schema to a CRD's `openAPIV3Schema`, which a genuine kube-apiserver
//! accepts only when it is *structural* (apiextensions-apiserver 1.34:
//! `pkg/apiserver/schema/validation.go`, and `pkg/apis/apiextensions/validation` for the
//! keyword rules).
//!
//! The embedded schemas are written to be structural already, with one exception the real
//! server forbids: a root `metadata` that describes ObjectMeta. The API server owns that schema,
//! so a CRD may say no more than `type: object` there, and [`structural`] reduces it to that.
//! Everything else is checked, not rewritten: a construct the real server would refuse (a
//! `$ref`, a node without a type, `properties` beside `additionalProperties`, …) is reported with
//! its path, so a schema edit that would break `kubectl apply` of the CRDs fails in a unit test
//! instead of on someone's cluster.

use serde_json::{Map, Value, json};

/// Keywords a CRD schema node may carry (apiextensions `JSONSchemaProps`, less what structural
/// schemas forbid or wisp never needs: `$ref`, `allOf`/`anyOf`/`oneOf`/`not`,
/// `patternProperties`, `dependencies`, `definitions`, `additionalItems`, `id`, `$schema`).
/// The junctors are left out on purpose: a structural schema may use them only for value
/// validation with every field repeated outside them, which is easy to get wrong, and the
/// embedded server's validator does not read them.
const KEYWORDS: &[&str] = &[
    "description",
    "type",
    "format",
    "title",
    "default",
    "example",
    "externalDocs",
    "enum",
    "nullable",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
];

/// The types an OpenAPI v3 schema node may have in a CRD.
const TYPES: &[&str] = &["object", "array", "string", "integer", "number", "boolean"];

/// Where a node sits: the real server words "has no type" differently for each, and some rules
/// apply at the root only.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Field,
    Item,
}

/// `schema` (a whole object schema, as `crate::schema::schema_of` gives it) as a CRD's
/// `openAPIV3Schema`, or every reason the real server would refuse it (each with its path).
pub fn structural(schema: &Value) -> Result<Value, Vec<String>> {
    let mut out = schema.clone();
    if let Some(properties) = out.get_mut("properties").and_then(Value::as_object_mut)
        && properties.contains_key("metadata")
    {
        // The server validates ObjectMeta itself; a CRD may not restate it (anything beyond
        // `type: object`, even a description, is "metadata is implicitly specified").
        properties.insert("metadata".to_owned(), json!({"type": "object"}));
    }
    let mut problems = Vec::new();
    check(&out, "", Level::Root, &mut problems);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Appends to `problems` what is wrong with `node` at `path` and below.
fn check(node: &Value, path: &str, level: Level, problems: &mut Vec<String>) {
    let here = if path.is_empty() { "<root>" } else { path };
    let Value::Object(node) = node else {
        problems.push(format!("{here}: a schema must be a mapping"));
        return;
    };
    let mut report = |message: String| problems.push(format!("{here}: {message}"));

    for key in node.keys() {
        if !KEYWORDS.contains(&key.as_str()) {
            report(format!("{key} is not allowed in a structural schema"));
        }
    }

    let type_ = node.get("type").and_then(Value::as_str);
    let int_or_string = flag(node, "x-kubernetes-int-or-string");
    let preserve = node.get("x-kubernetes-preserve-unknown-fields");
    match (node.get("type"), type_) {
        (Some(_), Some(t)) if TYPES.contains(&t) => {}
        (Some(other), _) => report(format!("type {other} is not an OpenAPI type")),
        (None, _) => {}
    }
    if preserve.is_some_and(|p| p != &Value::Bool(true)) {
        report("x-kubernetes-preserve-unknown-fields must be true or absent".to_owned());
    }
    if int_or_string && type_.is_some() {
        report("x-kubernetes-int-or-string must not have a type".to_owned());
    }
    if type_.is_none() && !int_or_string && !flag(node, "x-kubernetes-preserve-unknown-fields") {
        report(
            match level {
                Level::Root => "type must not be empty at the root",
                Level::Field => "type must not be empty for specified object fields",
                Level::Item => "type must not be empty for specified array items",
            }
            .to_owned(),
        );
    }
    if level == Level::Root && type_ != Some("object") {
        report("type must be object at the root".to_owned());
    }
    if node.get("uniqueItems") == Some(&Value::Bool(true)) {
        report("uniqueItems cannot be true".to_owned());
    }
    if flag(node, "x-kubernetes-embedded-resource") && type_ != Some("object") {
        report("x-kubernetes-embedded-resource needs type object".to_owned());
    }

    if let Some(properties) = node.get("properties") {
        match properties {
            Value::Object(properties) => {
                for (name, field) in properties {
                    check(field, &join(path, name), Level::Field, problems);
                }
            }
            _ => problems.push(format!("{here}: properties must be a mapping")),
        }
    }
    if let Some(additional) = node.get("additionalProperties") {
        let mut report = |message: &str| problems.push(format!("{here}: {message}"));
        if level == Level::Root {
            report("additionalProperties must not be used at the root");
        }
        if node.contains_key("properties") {
            report("additionalProperties and properties are mutual exclusive");
        }
        match additional {
            Value::Object(_) => check(additional, &join(path, "*"), Level::Field, problems),
            _ => report("additionalProperties must be a schema, not a boolean"),
        }
    }
    match (type_, node.get("items")) {
        (_, Some(items @ Value::Object(_))) => {
            check(items, &format!("{path}[]"), Level::Item, problems);
        }
        (_, Some(_)) => problems.push(format!("{here}: items must be one schema")),
        (Some("array"), None) => problems.push(format!("{here}: items must be specified")),
        _ => {}
    }
    if level == Level::Root {
        check_root_fields(node, problems);
    }
    check_list_and_map_types(node, here, problems);
}

/// The root's `apiVersion`, `kind` and `metadata`, which the server reads itself.
fn check_root_fields(root: &Map<String, Value>, problems: &mut Vec<String>) {
    let field = |name: &str| root.get("properties").and_then(|p| p.get(name));
    for name in ["apiVersion", "kind"] {
        if let Some(schema) = field(name)
            && schema.get("type").and_then(Value::as_str) != Some("string")
        {
            problems.push(format!("{name}: type must be string"));
        }
    }
    if let Some(metadata) = field("metadata")
        && metadata != &json!({"type": "object"})
    {
        problems.push(
            "metadata: must not specify anything other than type object (the server owns \
             ObjectMeta's schema)"
                .to_owned(),
        );
    }
}

/// `x-kubernetes-list-type`, `x-kubernetes-list-map-keys` and `x-kubernetes-map-type`, which
/// server-side apply merges by: the real server checks them when the CRD is written.
fn check_list_and_map_types(node: &Map<String, Value>, here: &str, problems: &mut Vec<String>) {
    let mut report = |message: String| problems.push(format!("{here}: {message}"));
    let type_ = node.get("type").and_then(Value::as_str);
    let items = node.get("items");
    let item_type = items.and_then(|i| i.get("type")).and_then(Value::as_str);
    match node.get("x-kubernetes-list-type").map(|t| (t, t.as_str())) {
        None => {
            if node.contains_key("x-kubernetes-list-map-keys") {
                report("x-kubernetes-list-map-keys needs x-kubernetes-list-type map".to_owned());
            }
        }
        Some((_, Some("atomic"))) => {}
        Some((_, Some("set"))) => {
            if matches!(item_type, Some("object" | "array")) {
                report("a list of type set must have scalar items".to_owned());
            }
        }
        Some((_, Some("map"))) => {
            let keys: Vec<&str> = node
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|keys| keys.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if keys.is_empty() {
                report("a list of type map needs x-kubernetes-list-map-keys".to_owned());
            }
            if item_type != Some("object") {
                report("a list of type map must have object items".to_owned());
            }
            let required: Vec<&str> = items
                .and_then(|i| i.get("required"))
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for key in keys {
                let property = items
                    .and_then(|i| i.get("properties"))
                    .and_then(|p| p.get(key));
                let has_default = property.is_some_and(|p| p.get("default").is_some());
                if property.is_none() {
                    report(format!(
                        "list map key {key:?} is not a property of the items"
                    ));
                } else if !required.contains(&key) && !has_default {
                    report(format!(
                        "list map key {key:?} must be required or have a default"
                    ));
                }
            }
        }
        Some((other, _)) => report(format!(
            "x-kubernetes-list-type {other} is not one of atomic, set, map"
        )),
    }
    if node.contains_key("x-kubernetes-list-type") && type_ != Some("array") {
        report("x-kubernetes-list-type needs type array".to_owned());
    }
    if let Some(map_type) = node.get("x-kubernetes-map-type") {
        if !matches!(map_type.as_str(), Some("atomic" | "granular")) {
            report(format!(
                "x-kubernetes-map-type {map_type} is not one of atomic, granular"
            ));
        }
        if type_ != Some("object") {
            report("x-kubernetes-map-type needs type object".to_owned());
        }
    }
}

/// Whether the boolean keyword `name` is set on `node`.
fn flag(node: &Map<String, Value>, name: &str) -> bool {
    node.get(name).and_then(Value::as_bool).unwrap_or(false)
}

/// `path.name`, or `name` at the root.
fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(properties: Value) -> Value {
        json!({"type": "object", "properties": properties})
    }

    fn problems(schema: &Value) -> Vec<String> {
        structural(schema).expect_err("not structural")
    }

    #[test]
    fn root_metadata_becomes_a_bare_object() {
        let schema = root(json!({
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {
                "description": "ObjectMeta",
                "type": "object",
                "properties": {"labels": {"type": "object", "additionalProperties": {"type": "string"}}},
            },
            "spec": {"type": "object", "properties": {"metadata": {"type": "object",
                "properties": {"name": {"type": "string"}}}}},
        }));
        let out = structural(&schema).expect("structural");
        assert_eq!(out["properties"]["metadata"], json!({"type": "object"}));
        // Only the root's: a template's metadata is an ordinary field.
        assert_eq!(
            out["properties"]["spec"]["properties"]["metadata"]["properties"]["name"]["type"],
            "string"
        );
    }

    #[test]
    fn every_node_needs_a_type_unless_int_or_string_or_preserved() {
        let schema = root(json!({
            "a": {"description": "no type"},
            "b": {"type": "array", "items": {"description": "no type either"}},
            "c": {"x-kubernetes-int-or-string": true},
            "d": {"x-kubernetes-preserve-unknown-fields": true},
            "e": {"type": "object", "additionalProperties": {"x-kubernetes-int-or-string": true}},
        }));
        assert_eq!(
            problems(&schema),
            [
                "a: type must not be empty for specified object fields",
                "b[]: type must not be empty for specified array items",
            ]
        );
        assert_eq!(
            problems(&json!({"properties": {}})),
            [
                "<root>: type must not be empty at the root",
                "<root>: type must be object at the root"
            ]
        );
    }

    #[test]
    fn references_and_junctors_are_refused() {
        let schema = root(json!({
            "a": {"$ref": "#/components/schemas/X"},
            "b": {"$use": "Container", "type": "object"},
            "c": {"type": "string", "anyOf": [{"type": "string"}]},
            "d": {"type": "string", "x-kubernetes-typo": true},
        }));
        let found = problems(&schema);
        for expected in [
            "a: $ref is not allowed in a structural schema",
            "b: $use is not allowed in a structural schema",
            "c: anyOf is not allowed in a structural schema",
            "d: x-kubernetes-typo is not allowed in a structural schema",
        ] {
            assert!(
                found.iter().any(|p| p == expected),
                "{expected} in {found:?}"
            );
        }
    }

    #[test]
    fn maps_are_properties_or_additional_properties_never_both() {
        let schema = root(json!({
            "m": {"type": "object", "properties": {"x": {"type": "string"}},
                "additionalProperties": {"type": "string"}},
            "n": {"type": "object", "additionalProperties": true},
        }));
        assert_eq!(
            problems(&schema),
            [
                "m: additionalProperties and properties are mutual exclusive",
                "n: additionalProperties must be a schema, not a boolean",
            ]
        );
        let map_at_root = json!({"type": "object", "additionalProperties": {"type": "string"}});
        assert_eq!(
            problems(&map_at_root),
            ["<root>: additionalProperties must not be used at the root"]
        );
    }

    #[test]
    fn arrays_need_items_and_list_maps_need_required_keys() {
        let schema = root(json!({
            "a": {"type": "array"},
            "env": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
            "ok": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "required": ["name"],
                    "properties": {"name": {"type": "string"}}}},
            "set": {"type": "array", "x-kubernetes-list-type": "set",
                "items": {"type": "object"}},
        }));
        assert_eq!(
            problems(&schema),
            [
                "a: items must be specified",
                "env: list map key \"name\" must be required or have a default",
                "set: a list of type set must have scalar items",
            ]
        );
    }

    #[test]
    fn preserve_unknown_fields_false_and_int_or_string_with_a_type_are_refused() {
        let schema = root(json!({
            "a": {"type": "object", "x-kubernetes-preserve-unknown-fields": false},
            "b": {"type": "string", "x-kubernetes-int-or-string": true},
            "c": {"type": "date"},
        }));
        assert_eq!(
            problems(&schema),
            [
                "a: x-kubernetes-preserve-unknown-fields must be true or absent",
                "b: x-kubernetes-int-or-string must not have a type",
                "c: type \"date\" is not an OpenAPI type",
            ]
        );
    }

    #[test]
    fn root_api_version_and_kind_are_strings() {
        let schema = root(json!({"kind": {"type": "integer"}}));
        assert_eq!(problems(&schema), ["kind: type must be string"]);
    }
}
