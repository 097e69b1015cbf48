//! API request bodies applied to a stored object, then read back. Input: one byte choosing the
//! patch type (merge, JSON, apply) and a JSON patch document, applied to a Knative Service.
//!
//! Invariants: nothing panics; and whatever the store accepts (`storable::check` passes on the
//! patched object's text) decodes back to exactly that object — the store never holds what a
//! read cannot return.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use wisp_control::apiserver::patch::{self, PatchType};
use wisp_control::store::ObjectKey;
use wisp_control::store::storable;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let kind = match selector % 3 {
        0 => PatchType::Merge,
        1 => PatchType::Json,
        _ => PatchType::Apply,
    };
    let Ok(document) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let current = json!({
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "hello", "namespace": "default", "labels": {"a": "b"}},
        "spec": {"template": {"spec": {"containers": [{"image": "hello.wasm"}]}}},
    });
    let Ok(patched) = patch::apply(kind, &current, &document) else {
        return;
    };
    let Ok(text) = serde_json::to_string(&patched) else {
        return;
    };
    let key = ObjectKey::new("services.serving.knative.dev", "default", "hello");
    if storable::check(&key, &text).is_ok() {
        let read: Value = serde_json::from_str(&text).expect("an accepted object reads back");
        assert_eq!(read, patched, "an accepted object reads back unchanged");
    }
});
