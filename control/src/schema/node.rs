//! Reading one schema node: which schema governs a field, and what JSON types a node accepts.
//! Shared by [`super::check`] and [`super::prune`] so the two can never disagree about which
//! fields are unknown.

use serde_json::Value;

/// What the schema says about one field of an object.
pub(super) enum FieldSchema<'a> {
    /// The field is described: by `properties`, or by an `additionalProperties` schema (maps).
    Known(&'a Value),
    /// The field is not described but kept: `x-kubernetes-preserve-unknown-fields` or
    /// `additionalProperties: true`.
    Preserved,
    /// The field is not part of the schema.
    Unknown,
}

/// Which schema governs field `key` of an object described by `schema`.
pub(super) fn field_schema<'a>(schema: &'a Value, key: &str) -> FieldSchema<'a> {
    if let Some(field) = schema.get("properties").and_then(|p| p.get(key)) {
        return FieldSchema::Known(field);
    }
    match schema.get("additionalProperties") {
        Some(additional @ Value::Object(_)) => FieldSchema::Known(additional),
        Some(Value::Bool(true)) => FieldSchema::Preserved,
        _ if flag(schema, "x-kubernetes-preserve-unknown-fields") => FieldSchema::Preserved,
        _ => FieldSchema::Unknown,
    }
}

/// Whether the boolean extension or keyword `name` is set on `schema`.
pub(super) fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

/// The OpenAPI name of a JSON value's type, as the upstream validator prints it: a number is
/// an `integer` when it has no fraction.
pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Whether `value` is of OpenAPI type `type_`.
pub(super) fn has_type(value: &Value, type_: &str) -> bool {
    match (type_, value) {
        // Upstream (kube-openapi) takes `3.0` as an integer: JSON does not distinguish them.
        ("integer", Value::Number(n)) => {
            n.is_i64()
                || n.is_u64()
                || n.as_f64()
                    .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
        }
        ("number", Value::Number(_)) => true,
        _ => type_name(value) == type_,
    }
}
