//! Duplicate keys in a raw JSON body. A parsed `serde_json::Value` keeps only the last of two
//! equal keys, so `fieldValidation=Strict` (which refuses duplicates like unknown fields:
//! `strict decoding error: duplicate field "metadata.name"`) has to look at the bytes.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The dotted paths (`metadata.name`, `spec.template.spec.containers[0].image`) of keys that
/// appear twice in one object of `body`, each once, in document order.
///
/// Never fails: a body that is not JSON yields what was found before the parser gave up (the
/// decoder that parses the body for real reports the syntax error). Nesting is bounded by
/// serde_json's recursion limit, so hostile input cannot exhaust the stack.
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let _syntax_errors_are_reported_elsewhere = Scan {
        path: String::new(),
        found: &mut found,
    }
    .deserialize(&mut deserializer);
    found
}

/// Walks one JSON value at `path`, noting duplicate keys into `found`.
struct Scan<'a> {
    path: String,
    found: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Scan<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Scan { path, found } = self;
        let mut index = 0usize;
        while seq
            .next_element_seed(Scan {
                path: format!("{path}[{index}]"),
                found: &mut *found,
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Scan { path, found } = self;
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if !seen.insert(key) && !found.contains(&child) {
                found.push(child.clone());
            }
            map.next_value_seed(Scan {
                path: child,
                found: &mut *found,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_duplicates_at_any_depth_once_each() {
        let body = br#"{"metadata":{"name":"a","name":"b","labels":{"x":"1","x":"2","x":"3"}},
            "spec":{"template":{"spec":{"containers":[{"image":"a"},{"image":"b","image":"c"}]}}},
            "kind":"Service","kind":"Service"}"#;
        assert_eq!(
            duplicate_fields(body),
            [
                "metadata.name",
                "metadata.labels.x",
                "spec.template.spec.containers[1].image",
                "kind",
            ]
        );
    }

    #[test]
    fn equal_keys_in_different_objects_are_not_duplicates() {
        let body = br#"{"a":{"name":1},"b":{"name":2},"list":[{"name":1},{"name":2}]}"#;
        assert!(duplicate_fields(body).is_empty());
        // Escapes are decoded before comparing, as Go's decoder does.
        assert_eq!(duplicate_fields(br#"{"a":1,"\u0061":2}"#), ["a"]);
    }

    #[test]
    fn garbage_never_panics() {
        let deep_array = "[".repeat(100_000);
        let deep_object = r#"{"a":"#.repeat(100_000);
        let inputs: Vec<&[u8]> = vec![
            b"",
            b"null",
            b"{",
            b"{\"a\":1,\"a\"",
            b"\xff\xfe{}",
            b"[1,2,{\"a\":1,\"a\":2}",
            b"{\"a\":1}}}}trailing",
            deep_array.as_bytes(),
            deep_object.as_bytes(),
        ];
        for input in inputs {
            let _ = duplicate_fields(input);
        }
        // What was seen before the syntax error still counts.
        assert_eq!(duplicate_fields(b"{\"a\":1,\"a\":2,"), ["a"]);
    }
}
