//! Reading and editing the submitted object as plain JSON.
//!
//! Admission sees objects before any typed decoding, so every accessor here treats a missing
//! field, an explicit `null` and a value of the wrong JSON type alike as "not set": reporting
//! wrong types is the schema check's job, and admission must never panic on what a client sent.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The value under `key`, unless absent or `null`.
pub(crate) fn child<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.get(key).filter(|v| !v.is_null())
}

/// The string under `key`, if it is a string.
pub(crate) fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// The string under `key`, with an empty string counted as unset (Go's zero value).
pub(crate) fn nonempty_str<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    str_at(value, key).filter(|s| !s.is_empty())
}

/// The array under `key`, or an empty slice.
pub(crate) fn array<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The string-valued entries of the map under `key` (labels, annotations).
pub(crate) fn string_map(value: &Value, key: &str) -> BTreeMap<String, String> {
    value
        .get(key)
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// The object under `key`, created empty when absent or `null`; `None` when the field holds
/// something else (which defaulting then leaves for the schema check to refuse).
pub(crate) fn object_mut<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    let slot = map.entry(key.to_owned()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// Whether the field under `key` is absent or `null`.
pub(crate) fn is_unset(map: &Map<String, Value>, key: &str) -> bool {
    map.get(key).is_none_or(Value::is_null)
}

/// `base.field`, or just `field` at the root.
pub(crate) fn join(base: &str, field: &str) -> String {
    if base.is_empty() {
        field.to_owned()
    } else {
        format!("{base}.{field}")
    }
}

/// `base[index]`.
pub(crate) fn index(base: &str, index: usize) -> String {
    format!("{base}[{index}]")
}

/// How many changed leaves [`describe_changes`] lists before summarising the rest.
const MAX_LISTED_CHANGES: usize = 5;

/// A short `-old +new` account of what differs between two values, one changed leaf per
/// entry (`spec.containers[0].image: -"a" +"b"`), for messages that refuse a change.
pub(crate) fn describe_changes(old: &Value, new: &Value) -> String {
    let mut changes = Vec::new();
    collect_changes(old, new, "", &mut changes);
    let total = changes.len();
    changes.truncate(MAX_LISTED_CHANGES);
    let mut text = changes.join("; ");
    if total > MAX_LISTED_CHANGES {
        text.push_str(&format!("; and {} more", total - MAX_LISTED_CHANGES));
    }
    text
}

fn collect_changes(old: &Value, new: &Value, path: &str, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let left = a.get(key).unwrap_or(&Value::Null);
                let right = b.get(key).unwrap_or(&Value::Null);
                collect_changes(left, right, &join(path, key), out);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (left, right)) in a.iter().zip(b).enumerate() {
                collect_changes(left, right, &index(path, i), out);
            }
        }
        _ if old == new => {}
        _ => out.push(format!(
            "{}: -{} +{}",
            if path.is_empty() { "." } else { path },
            shown(old),
            shown(new)
        )),
    }
}

/// Longest rendering of one value inside a change description.
const MAX_SHOWN: usize = 60;

fn shown(value: &Value) -> String {
    if value.is_null() {
        return "<unset>".to_owned();
    }
    let text = value.to_string();
    if text.chars().count() > MAX_SHOWN {
        let cut: String = text.chars().take(MAX_SHOWN).collect();
        format!("{cut}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unset_and_wrong_types_read_as_absent() {
        let v = json!({"a": null, "b": 3, "c": "", "d": "x", "m": {"k": "v", "n": 1}});
        assert_eq!(child(&v, "a"), None);
        assert_eq!(str_at(&v, "b"), None);
        assert_eq!(nonempty_str(&v, "c"), None);
        assert_eq!(nonempty_str(&v, "d"), Some("x"));
        assert!(array(&v, "b").is_empty());
        let map = string_map(&v, "m");
        assert_eq!(map.len(), 1);
        assert_eq!(map["k"], "v");
    }

    #[test]
    fn object_mut_creates_missing_objects_but_not_over_other_types() {
        let mut map = json!({"n": null, "s": "text"})
            .as_object()
            .cloned()
            .unwrap();
        assert!(object_mut(&mut map, "n").is_some());
        assert!(object_mut(&mut map, "new").is_some());
        assert!(object_mut(&mut map, "s").is_none());
        assert_eq!(map["n"], json!({}));
        assert_eq!(map["s"], json!("text"));
    }

    #[test]
    fn changes_name_each_changed_leaf() {
        let old = json!({"spec": {"containers": [{"image": "a"}], "timeoutSeconds": 300}});
        let new = json!({"spec": {"containers": [{"image": "b"}], "timeoutSeconds": 300}, "x": 1});
        assert_eq!(
            describe_changes(&old, &new),
            r#"spec.containers[0].image: -"a" +"b"; x: -<unset> +1"#
        );
        assert_eq!(describe_changes(&old, &old), "");
    }

    #[test]
    fn long_change_lists_are_summarised() {
        let old = json!({"a": 1, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1, "g": 1});
        let new = json!({"a": 2, "b": 2, "c": 2, "d": 2, "e": 2, "f": 2, "g": 2});
        assert!(describe_changes(&old, &new).ends_with("; and 2 more"));
    }
}
