//! Duplicate keys in a raw JSON body. A parsed `serde_json::Value` keeps only the last of two
//! equal keys, so `fieldValidation=Strict` (which refuses duplicates like unknown fields:
//! `strict decoding error: duplicate field "metadata.name"`) has to look at the bytes.

use std::collections::HashSet;
use std::fmt::{self, Write as _};

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The dotted paths (`metadata.name`, `spec.template.spec.containers[0].image`) of keys that
/// appear twice in one object of `body`, each once, in document order.
///
/// Never fails: a body that is not JSON yields what was found before the parser gave up (the
/// decoder that parses the body for real reports the syntax error). Nesting is bounded by
/// serde_json's recursion limit, so hostile input cannot exhaust the stack. Linear in the body:
/// the path is one stack of segments, written out only for a duplicate, and duplicates are
/// remembered in a set — a body of a million keys or array elements costs a pass, not a
/// million copies of a long path or a scan of every duplicate found so far.
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    let mut state = State::default();
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let _syntax_errors_are_reported_elsewhere = Scan(&mut state).deserialize(&mut deserializer);
    state.found
}

/// One step of the path from the body's root.
enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Default)]
struct State {
    path: Vec<Segment>,
    found: Vec<String>,
    reported: HashSet<String>,
}

impl State {
    /// The current path written out, `key` appended.
    fn path_to(&self, key: &str) -> String {
        let mut out = String::new();
        for segment in &self.path {
            match segment {
                Segment::Key(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Segment::Index(index) => {
                    let _ = write!(out, "[{index}]");
                }
            }
        }
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(key);
        out
    }
}

/// Walks one JSON value at the state's path, noting duplicate keys.
struct Scan<'a>(&'a mut State);

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
        let state = self.0;
        let mut index = 0usize;
        loop {
            state.path.push(Segment::Index(index));
            let element = seq.next_element_seed(Scan(&mut *state));
            state.path.pop();
            if element?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let state = self.0;
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                let child = state.path_to(&key);
                if state.reported.insert(child.clone()) {
                    state.found.push(child);
                }
            }
            state.path.push(Segment::Key(key.clone()));
            let value = map.next_value_seed(Scan(&mut *state));
            state.path.pop();
            value?;
            seen.insert(key);
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

    #[test]
    fn many_distinct_duplicates_and_long_arrays_under_a_long_path_are_one_pass() {
        // 100,000 keys each written twice, and 200,000 array elements under a 32 KiB path:
        // quadratic before (every duplicate scanned the ones found so far; every element
        // copied the path).
        let mut body = String::from("{");
        for i in 0..100_000 {
            body.push_str(&format!("\"k{i}\":1,\"k{i}\":2,"));
        }
        let long_key = "p".repeat(32 * 1024);
        body.push_str(&format!("\"{long_key}\":[{}0]}}", "0,".repeat(200_000)));
        let found = duplicate_fields(body.as_bytes());
        assert_eq!(found.len(), 100_000);
        assert_eq!(found[99_999], "k99999");
    }
}
