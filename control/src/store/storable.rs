//! What the store accepts, checked on the text it is about to write: no larger than etcd's
//! default request limit makes an object on a real cluster, no deeper than any Kubernetes object
//! needs, and readable back by the very decoder every read uses. An object that passes is one
//! every GET, LIST, watch and DELETE can handle; one that does not is refused and nothing is
//! stored (a JSON patch of nested `add`s once built an object 250 levels deep that no read could
//! decode and no delete could remove).

use serde::de::IgnoredAny;

use super::error::StoreError;
use super::key::ObjectKey;

/// The largest object stored, as its JSON text: 1.5 MiB, what etcd's default
/// `--max-request-bytes` lets a real cluster store.
pub const MAX_OBJECT_BYTES: usize = 1536 * 1024;

/// The deepest nesting of objects and arrays an object may have. Real objects stay under about
/// twenty (a Knative Service's probe under its container under its template is eleven); the
/// reader's decoder refuses past 127, and a client's may refuse sooner.
pub const MAX_OBJECT_DEPTH: usize = 100;

/// Refuses `json` (the text about to be stored for `key`) when it is too large, too deep or does
/// not decode.
pub fn check(key: &ObjectKey, json: &str) -> Result<(), StoreError> {
    if json.len() > MAX_OBJECT_BYTES {
        return Err(StoreError::TooLarge {
            key: key.clone(),
            bytes: json.len(),
            limit: MAX_OBJECT_BYTES,
        });
    }
    let depth = depth(json);
    if depth > MAX_OBJECT_DEPTH {
        return Err(StoreError::TooDeep {
            key: key.clone(),
            depth,
            limit: MAX_OBJECT_DEPTH,
        });
    }
    serde_json::from_str::<IgnoredAny>(json).map_err(|error| StoreError::Unreadable {
        key: key.clone(),
        reason: error.to_string(),
    })?;
    Ok(())
}

/// Whether stored text can be decoded by the readers, judged without decoding it (lists answer
/// from stored text): its nesting is within what the decoder takes.
pub(crate) fn readable(json: &str) -> bool {
    depth(json) <= MAX_READABLE_DEPTH
}

/// serde_json's recursion limit: 128 levels, of which the outermost value takes one.
const MAX_READABLE_DEPTH: usize = 127;

/// The deepest nesting of `{`/`[` in JSON text, strings skipped (escapes included). Linear and
/// allocation-free, so even a list of thousands of objects can afford it.
pub(crate) fn depth(json: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    for byte in json.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ObjectKey {
        ObjectKey::new("configmaps", "default", "c")
    }

    fn nested(levels: usize) -> String {
        format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert_eq!(depth("1"), 0);
        assert_eq!(depth(r#"{"a":[1,{"b":2}]}"#), 3);
        assert_eq!(depth(r#"{"a":"[[[{{{\"[[["}"#), 1);
        assert_eq!(depth(&nested(250)), 250);
    }

    #[test]
    fn the_readable_depth_is_exactly_what_the_decoder_takes() {
        let deepest = nested(MAX_READABLE_DEPTH);
        assert!(readable(&deepest));
        assert!(serde_json::from_str::<serde_json::Value>(&deepest).is_ok());
        let deeper = nested(MAX_READABLE_DEPTH + 1);
        assert!(!readable(&deeper));
        assert!(serde_json::from_str::<serde_json::Value>(&deeper).is_err());
    }

    /// Found by the `patch_read_back` fuzz target: an integer past `u64` is kept as a float,
    /// and without serde_json's `float_roundtrip` the text written did not read back as the
    /// same number.
    #[test]
    fn numbers_read_back_as_written() {
        let written: serde_json::Value =
            serde_json::from_str(r#"{"n":22222222222223125503,"f":0.30000000000000004}"#).unwrap();
        let text = serde_json::to_string(&written).unwrap();
        assert!(check(&key(), &text).is_ok());
        let read: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(read, written);
    }

    #[test]
    fn too_large_too_deep_and_undecodable_objects_are_refused() {
        assert!(check(&key(), r#"{"data":{"a":"b"}}"#).is_ok());
        let large = format!(r#"{{"data":{{"a":"{}"}}}}"#, "x".repeat(MAX_OBJECT_BYTES));
        assert!(matches!(
            check(&key(), &large),
            Err(StoreError::TooLarge { bytes, .. }) if bytes == large.len()
        ));
        let deep = format!(r#"{{"spec":{}}}"#, nested(MAX_OBJECT_DEPTH));
        assert!(matches!(
            check(&key(), &deep),
            Err(StoreError::TooDeep { depth, .. }) if depth == MAX_OBJECT_DEPTH + 1
        ));
        assert!(check(&key(), &nested(MAX_OBJECT_DEPTH)).is_ok());
        assert!(matches!(
            check(&key(), "{\"a\":"),
            Err(StoreError::Unreadable { .. })
        ));
    }
}
